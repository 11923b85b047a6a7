//! The one HTTP error type of the JSON endpoints (the pages answer the same errors as HTML).
//!
//! Client errors (4xx) carry a message meant for the caller and are not logged: they are the
//! caller's to fix. `Internal` answers an opaque 500; its cause rides on the response
//! ([`InternalCause`]) and [`log_errors`], one middleware, logs it once with its cause chain
//! (axum's `examples/error-handling`). `Unavailable` is for a store that cannot take data right now: the caller retries.
//! `Unprocessable` is for a well-formed request the service will not carry out as asked (a
//! search stopped at the store's time limit): retrying it unchanged would fail the same way.

use std::sync::Arc;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ingest::NotStored;
use crate::store::ReadRefused;

/// How long a client should wait when the store cannot take events.
const RETRY_AFTER_NOT_STORED_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    #[error("{message}")]
    Unavailable { message: String, retry_after_secs: u64 },
    #[error("{0}")]
    Unprocessable(String),
    /// The request clashes with what is there (a saved search's name taken, a limit reached).
    #[error("{0}")]
    Conflict(String),
    /// A `q` that does not parse: 400 with the character `position` where it is wrong.
    #[error("{}", .0.message)]
    BadQuery(crate::search::QueryError),
    #[error("internal error")]
    Internal(anyhow::Error),
}

impl ApiError {
    /// Why an ingest request was refused, as the monitor counts it per project.
    pub fn refusal_reason(&self) -> &'static str {
        match self {
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::PayloadTooLarge(_) => "too_large",
            ApiError::Unavailable { .. } | ApiError::Internal(_) => "unavailable",
            _ => "rejected",
        }
    }
}

impl From<NotStored> for ApiError {
    fn from(error: NotStored) -> Self {
        ApiError::Unavailable { message: error.to_string(), retry_after_secs: RETRY_AFTER_NOT_STORED_SECS }
    }
}

/// A store's error is internal, except a read the store refused: that one the caller can act on.
impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        match error.downcast_ref::<ReadRefused>() {
            Some(refused @ ReadRefused::Busy { retry_after_secs }) => {
                ApiError::Unavailable { message: refused.to_string(), retry_after_secs: *retry_after_secs }
            }
            Some(refused @ ReadRefused::TooSlow { .. }) => ApiError::Unprocessable(refused.to_string()),
            None => ApiError::Internal(error),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs, .. } | ApiError::Unavailable { retry_after_secs, .. } => {
                Some(*retry_after_secs)
            }
            _ => None,
        };
        let body = match &self {
            ApiError::BadQuery(error) => json!({ "error": error.message, "position": error.position }),
            other => json!({ "error": other.to_string() }),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::Internal(cause) = self {
            response.extensions_mut().insert(InternalCause(Arc::new(cause)));
        }
        response
    }
}

/// The cause of a 500, carried on its response for [`log_errors`]; never sent to the client.
#[derive(Clone)]
pub struct InternalCause(pub Arc<anyhow::Error>);

/// Logs the cause of every 500 a handler answered, once, here (inside the request's trace span).
pub async fn log_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(error = format!("{cause:#}"), "request failed");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_reads_answer_503_with_retry_after_or_422_and_other_store_errors_500() {
        let busy = anyhow::Error::new(ReadRefused::Busy { retry_after_secs: 10 }).context("reading the store");
        let response = ApiError::from(busy).into_response();
        assert_eq!(
            (response.status(), response.headers().get(header::RETRY_AFTER)),
            (StatusCode::SERVICE_UNAVAILABLE, Some(&HeaderValue::from_static("10")))
        );
        let slow = ApiError::from(anyhow::Error::new(ReadRefused::TooSlow { limit_secs: 10.0 }));
        assert_eq!(slow.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            slow.to_string(),
            "the search took longer than 10 s and was stopped; narrow the time range or add filters"
        );
        let internal = ApiError::from(anyhow::anyhow!("disk on fire")).into_response();
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = internal.extensions().get::<InternalCause>().map(|InternalCause(cause)| cause.to_string());
        assert_eq!(cause.as_deref(), Some("disk on fire"), "the cause rides on the response, for log_errors");
    }
}
