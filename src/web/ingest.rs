//! `POST /api/v1/events`: our own JSON door. It decodes the body (`crate::ingest::json`) into
//! drafts and hands them to the one ingest pipeline; what the doors share (key, origin, disk
//! gate, body limits, encodings) is `intake`'s. Accepted events are durable before the 202.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use time::OffsetDateTime;

use super::AppState;
use super::error::ApiError;
use super::intake::{self, Sender};
use crate::ingest::json::{self, BodyError, BodyFormat};
use crate::ingest::{Accepted, Batch, Refused};

#[derive(Debug, Serialize)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub rejected: Vec<Refused>,
}

pub async fn ingest_events(
    State(state): State<AppState>,
    sender: Sender,
    request: Request,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let (parts, body) = request.into_parts();
    let outcome = accept_json(&state, &sender, &parts.headers, body).await;
    intake::count_refusals(&state, &sender.project, outcome.as_ref());
    let accepted = outcome?;
    Ok((StatusCode::ACCEPTED, Json(IngestAnswer { accepted: accepted.ids.len(), rejected: accepted.rejected })))
}

/// Admits the request, reads and decodes its body, and hands its events to the pipeline. A
/// refused request stores nothing; a refused event is listed.
pub async fn accept_json(
    state: &AppState,
    sender: &Sender,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, ApiError> {
    intake::admit(state, &sender.project, headers)?;
    let format = body_format(headers)?;
    let bytes = intake::read_body(state, &sender.key, headers, body).await?;
    let decoded = json::decode_body(format, &bytes, state.config.limits.events_per_request).map_err(|e| match e {
        BodyError::TooManyEvents { .. } => ApiError::PayloadTooLarge(e.to_string()),
        BodyError::Malformed(_) | BodyError::NoEvents => ApiError::BadRequest(e.to_string()),
    })?;
    let batch = Batch { default_env: decoded.env, drafts: decoded.drafts, client_ip: Some(sender.client) };
    Ok(state.pipeline.accept(&sender.project, batch, OffsetDateTime::now_utc()).await?)
}

fn body_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?"));
    BodyFormat::from_content_type(content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Type `{}` is not supported; send application/json, text/plain (JSON) or application/x-ndjson",
            content_type.unwrap_or("")
        ))
    })
}
