//! The Sentry SDKs' door (protocols.md): `POST /api/{sentry_id}/envelope/` and `/store/`. It
//! finds the key wherever the SDK put it, reads the body like every door (`intake`: limits, four
//! encodings), decodes it (`crate::ingest::sentry`) and hands the drafts to the one pipeline.
//! Answers are the ones the SDKs understand: `200 {"id"}`, errors as `{"detail"}`, and `429` with
//! `X-Sentry-Rate-Limits` so that they back off.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower_http::cors::{Any, CorsLayer};

use super::AppState;
use super::error::ApiError;
use super::intake::{self, Encodings};
use super::limits::ClientIp;
use crate::ingest::Batch;
use crate::ingest::sentry::{self, Decoded, Malformed};
use crate::project::Project;

/// Which endpoint: the body is an envelope, or `/store/`'s single event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Envelope,
    Store,
}

impl Endpoint {
    /// The content types the SDKs send (the browser SDK's `text/plain` avoids a preflight), or
    /// none; anything else is a `415` before the body is read.
    fn check_content_type(self, headers: &HeaderMap) -> Result<(), ApiError> {
        let declared = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?")).unwrap_or("");
        let media = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let accepted: &[&str] = match self {
            Endpoint::Envelope => &["", "application/x-sentry-envelope", "text/plain"],
            Endpoint::Store => &["", "application/x-sentry-envelope", "text/plain", "application/json"],
        };
        if accepted.contains(&media.as_str()) {
            return Ok(());
        }
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type `{declared}` is not supported here; send {}",
            accepted[1..].join(", ")
        )))
    }
}

pub async fn ingest_envelope(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path(sentry_id): Path<String>,
    request: Request,
) -> Result<Json<Value>, SentryError> {
    accept(&state, client, &sentry_id, request, Endpoint::Envelope).await
}

pub async fn ingest_store(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path(sentry_id): Path<String>,
    request: Request,
) -> Result<Json<Value>, SentryError> {
    accept(&state, client, &sentry_id, request, Endpoint::Store).await
}

/// CORS for browsers on other origins: as for our own ingest, plus the headers the SDKs send
/// and read.
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::AUTHORIZATION,
            HeaderName::from_static("x-sentry-auth"),
        ])
        .expose_headers([
            HeaderName::from_static("x-sentry-rate-limits"),
            header::RETRY_AFTER,
            HeaderName::from_static("x-sentry-error"),
        ])
        .max_age(Duration::from_secs(3600))
}

async fn accept(
    state: &AppState,
    client: std::net::IpAddr,
    sentry_id: &str,
    request: Request,
    endpoint: Endpoint,
) -> Result<Json<Value>, SentryError> {
    state.limits.check_ip(client).map_err(|retry_after_secs| ApiError::TooManyRequests {
        message: "too many requests from this address".into(),
        retry_after_secs,
    })?;
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    endpoint.check_content_type(headers)?;
    let declared = sentry_key(headers, parts.uri.query());
    if let Some(key) = &declared {
        // Before the body is read: nothing of a refused request reaches a store.
        authorize(state, key, sentry_id, headers)?;
    }
    let (encoding, received) = intake::receive(state, headers, body, Encodings::SENTRY).await?;
    let key = match declared {
        Some(key) => key,
        None => envelope_dsn_key(state, encoding, &received, endpoint)?,
    };
    let project = authorize(state, &key, sentry_id, headers)?;
    let mut event_id = None;
    let outcome = async {
        let bytes = intake::inflate(state, &key, encoding, &received)?;
        let decoded = decode(&bytes, endpoint).map_err(|Malformed(why)| ApiError::BadRequest(why))?;
        for discarded in &decoded.discarded {
            state.metrics.sdk_discarded(&project.name, &discarded.reason, &discarded.category, discarded.quantity);
        }
        let max = state.config.limits.events_per_request;
        if decoded.drafts.len() > max {
            return Err(ApiError::PayloadTooLarge(format!(
                "the envelope holds {} events and logs; at most {max} are accepted per request",
                decoded.drafts.len()
            )));
        }
        event_id = decoded.event_id;
        let batch =
            Batch { default_env: Some(project.default_env.clone()), drafts: decoded.drafts, client_ip: Some(client) };
        Ok(state.pipeline.accept(&project, batch, OffsetDateTime::now_utc()).await?)
    }
    .await;
    intake::count_refusals(state, &project, outcome.as_ref());
    outcome?;
    Ok(Json(match event_id {
        Some(id) => json!({ "id": id }),
        None => json!({}),
    }))
}

fn decode(bytes: &[u8], endpoint: Endpoint) -> Result<Decoded, Malformed> {
    match endpoint {
        Endpoint::Envelope => sentry::decode_envelope(bytes),
        Endpoint::Store => sentry::decode_store(bytes),
    }
}

/// The project that `key` opens, if it is the one `sentry_id` names, within its origin rule and
/// the disk gate.
fn authorize(state: &AppState, key: &str, sentry_id: &str, headers: &HeaderMap) -> Result<Arc<Project>, ApiError> {
    let project = state.projects.by_key(key).ok_or_else(|| ApiError::Unauthorized("unknown sentry_key".into()))?;
    if sentry_id.parse::<u64>().ok() != project.sentry_id {
        return Err(ApiError::Forbidden(format!("this key does not belong to project {sentry_id}")));
    }
    intake::admit(state, project, headers)?;
    Ok(Arc::clone(project))
}

/// The key of the envelope header's `dsn`: what an SDK that sends no auth header relies on.
fn envelope_dsn_key(
    state: &AppState,
    encoding: intake::Encoding,
    received: &[u8],
    endpoint: Endpoint,
) -> Result<String, ApiError> {
    let missing = || {
        ApiError::Unauthorized(
            "a key is required: X-Sentry-Auth: Sentry sentry_key=..., ?sentry_key=, or the envelope's dsn".into(),
        )
    };
    if endpoint == Endpoint::Store {
        return Err(missing());
    }
    let bytes = intake::decompress(encoding, received, state.config.limits.body_bytes)?;
    let header = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let header: Value = serde_json::from_slice(header).map_err(|_| missing())?;
    header.get("dsn").and_then(Value::as_str).and_then(sentry::dsn_key).ok_or_else(missing)
}

#[derive(Debug, Deserialize)]
struct KeyParam {
    sentry_key: Option<String>,
}

/// The key from `X-Sentry-Auth` or `Authorization: Sentry sentry_key=...`, else `?sentry_key=`.
fn sentry_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = |name: HeaderName| {
        let value = headers.get(name)?.to_str().ok()?.trim();
        let (scheme, fields) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("sentry") {
            return None;
        }
        fields.split(',').find_map(|field| {
            let (name, value) = field.split_once('=')?;
            (name.trim() == "sentry_key").then(|| value.trim().to_string())
        })
    };
    let from_query = || serde_urlencoded::from_str::<KeyParam>(query?).ok()?.sentry_key;
    from_header(HeaderName::from_static("x-sentry-auth"))
        .or_else(|| from_header(header::AUTHORIZATION))
        .or_else(from_query)
        .filter(|key| !key.is_empty())
}

/// An error as the SDKs read it: `{"detail": ...}`, and on 429 `X-Sentry-Rate-Limits` for every
/// category, so that they back off for `Retry-After`.
#[derive(Debug)]
pub struct SentryError(ApiError);

impl From<ApiError> for SentryError {
    fn from(error: ApiError) -> Self {
        SentryError(error)
    }
}

impl IntoResponse for SentryError {
    fn into_response(self) -> Response {
        let detail = self.0.to_string();
        let rate_limited = match &self.0 {
            ApiError::TooManyRequests { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        };
        // The error's own answer keeps its status, Retry-After and (for a 500) its logged cause.
        let mut response = self.0.into_response();
        *response.body_mut() = Body::from(json!({ "detail": detail }).to_string());
        let headers = response.headers_mut();
        if let Some(secs) = rate_limited
            && let Ok(value) = HeaderValue::from_str(&format!("{secs}::project"))
        {
            headers.insert(HeaderName::from_static("x-sentry-rate-limits"), value);
        }
        if let Ok(value) = HeaderValue::from_str(&detail) {
            headers.insert(HeaderName::from_static("x-sentry-error"), value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().expect("header"));
        }
        headers
    }

    #[test]
    fn the_key_comes_from_either_auth_header_then_the_query() {
        let auth = "Sentry sentry_key=abc_1, sentry_version=7, sentry_client=sentry.python/2.0";
        assert_eq!(sentry_key(&headers(&[("x-sentry-auth", auth)]), None).as_deref(), Some("abc_1"));
        assert_eq!(sentry_key(&headers(&[("authorization", auth)]), None).as_deref(), Some("abc_1"));
        assert_eq!(
            sentry_key(&HeaderMap::new(), Some("sentry_version=7&sentry_key=q_key&sentry_client=js")).as_deref(),
            Some("q_key")
        );
        assert_eq!(sentry_key(&headers(&[("authorization", "Bearer abc")]), None), None);
        assert_eq!(sentry_key(&HeaderMap::new(), Some("sentry_key=")), None);
        assert_eq!(sentry_key(&HeaderMap::new(), None), None);
    }

    #[test]
    fn a_rate_limit_answers_429_with_the_headers_the_sdks_read() {
        let error = SentryError(ApiError::TooManyRequests { message: "slow down".into(), retry_after_secs: 7 });
        let response = error.into_response();
        assert_eq!(response.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(header("retry-after").as_deref(), Some("7"));
        assert_eq!(header("x-sentry-rate-limits").as_deref(), Some("7::project"));
        assert_eq!(header("x-sentry-error").as_deref(), Some("slow down"));
    }
}
