//! `POST /api/v1/events`: the public ingest endpoint.
//!
//! The key decides the project; the body is split into events, each normalised or rejected with a
//! reason; the accepted ones are made durable by the store before the 202 goes out.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::AppState;
use crate::batch::{self, BodyError, BodyFormat};
use crate::config::ProjectConfig;
use crate::error::ApiError;
use crate::event::{self, Context};
use crate::scrub::Scrubber;

pub const KEY_HEADER: &str = "x-logboard-key";
/// How long a client should wait when the store cannot take events.
const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 5;

#[derive(Debug, Deserialize)]
pub struct IngestParams {
    key: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, Serialize)]
pub struct Rejection {
    pub index: usize,
    pub reason: String,
}

pub async fn ingest_events(
    State(state): State<AppState>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let project = project_for_key(&state, &headers, params.key.as_deref())?;
    check_origin(project, &headers)?;
    let format = body_format(&headers)?;
    let limits = &state.config.limits;
    let bytes = to_bytes(body, limits.body_bytes)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("the body is over the limit of {} bytes", limits.body_bytes)))?;
    let batch = batch::parse(format, &bytes, limits.events_per_request).map_err(|e| match e {
        BodyError::TooManyEvents { .. } => ApiError::PayloadTooLarge(e.to_string()),
        BodyError::Malformed(_) | BodyError::NoEvents => ApiError::BadRequest(e.to_string()),
    })?;

    let builtin = Scrubber::builtin(true);
    let ctx = Context {
        scrubber: state.scrubbers.get(&project.name).unwrap_or(&builtin),
        project,
        default_env: batch.env.as_deref(),
        received_at: OffsetDateTime::now_utc(),
        max_event_bytes: limits.event_bytes,
    };
    let mut accepted = Vec::with_capacity(batch.events.len());
    let mut rejected = Vec::new();
    for (index, raw) in batch.events.into_iter().enumerate() {
        match event::normalise(raw, &ctx) {
            Ok(event) => accepted.push(event),
            Err(reason) => rejected.push(Rejection { index, reason }),
        }
    }
    let count = accepted.len();
    state.store.append(accepted).await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), events = count, "could not store an ingest batch");
        ApiError::Unavailable {
            message: "the events could not be stored; nothing of this request was kept, retry later".into(),
            retry_after_secs: RETRY_AFTER_UNAVAILABLE_SECS,
        }
    })?;
    Ok((StatusCode::ACCEPTED, Json(IngestAnswer { accepted: count, rejected })))
}

/// The key from `X-Logboard-Key`, `Authorization: Bearer`, or `?key=`, and the project it opens.
fn project_for_key<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    query_key: Option<&str>,
) -> Result<&'a ProjectConfig, ApiError> {
    let header_key = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok());
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let key = header_key.or(bearer).or(query_key).map(str::trim).filter(|k| !k.is_empty()).ok_or_else(|| {
        ApiError::Unauthorized(
            "an ingest key is required: X-Logboard-Key header, Authorization: Bearer, or ?key=".into(),
        )
    })?;
    state.config.project_by_key(key).ok_or_else(|| ApiError::Unauthorized("unknown ingest key".into()))
}

/// Browsers send `Origin`; it must be one the project allows. Server clients send none.
fn check_origin(project: &ProjectConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("");
    if project.allowed_origins.iter().any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("origin `{origin}` is not allowed to send to project `{}`", project.name)))
    }
}

fn body_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        let encoding = encoding.to_str().unwrap_or("").trim();
        if !encoding.eq_ignore_ascii_case("identity") {
            return Err(ApiError::UnsupportedMediaType(format!("Content-Encoding `{encoding}` is not supported")));
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?"));
    BodyFormat::from_content_type(content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Type `{}` is not supported; send application/json, text/plain (JSON) or application/x-ndjson",
            content_type.unwrap_or("")
        ))
    })
}
