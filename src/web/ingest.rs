//! `POST /api/v1/events`: the public ingest endpoint.
//!
//! The key decides the project; the body is split into events, each normalised or rejected with a
//! reason; the accepted ones are made durable by the store before the 202 goes out.

use std::io::Read;
use std::net::IpAddr;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use ulid::Ulid;

use crate::issues::{Changes, Occurrence};

use super::AppState;
use super::auth::authorization;
use super::limits::ClientIp;
use crate::batch::{self, BodyError, BodyFormat};
use crate::error::ApiError;
use crate::event::{self, Context, StoredEvent};
use crate::project::Project;

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
    ClientIp(client): ClientIp,
    request: Request,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let (parts, body) = request.into_parts();
    let request = IngestRequest { headers: parts.headers, query_key: params.key, client, body };
    let ingested = ingest(&state, request).await?;
    Ok((StatusCode::ACCEPTED, Json(IngestAnswer { accepted: ingested.ids.len(), rejected: ingested.rejected })))
}

/// One ingest request as it arrived.
pub struct IngestRequest {
    pub headers: HeaderMap,
    /// The `?key=` parameter, if any.
    pub query_key: Option<String>,
    /// The client's address (behind trusted proxies, from `X-Forwarded-For`).
    pub client: IpAddr,
    pub body: Body,
}

/// What an ingest request stored, and what it refused.
#[derive(Debug)]
pub struct Ingested {
    /// The stored events' ids, in the order they came.
    pub ids: Vec<Ulid>,
    pub rejected: Vec<Rejection>,
}

/// The ingest workflow: admit the request (address rate, key, origin, content type and
/// encoding), read the body within the limits and charge its key, normalise each event, and make
/// the accepted ones durable. A refused request stores nothing; a refused event is listed.
pub async fn ingest(state: &AppState, request: IngestRequest) -> Result<Ingested, ApiError> {
    let IngestRequest { headers, query_key, client, body } = request;
    state.limits.check_ip(client).map_err(|retry_after_secs| ApiError::TooManyRequests {
        message: "too many requests from this address".into(),
        retry_after_secs,
    })?;
    let (key, project) = project_for_key(state, &headers, query_key.as_deref())?;
    let stored = store_batch(state, (key, project), (&headers, client), body).await;
    // The monitor tells a team that its events are being refused, by reason.
    match &stored {
        Ok(ingested) if !ingested.rejected.is_empty() => {
            state.refusals.count(&project.name, "rejected", ingested.rejected.len() as u64);
        }
        Ok(_) => {}
        Err(error) => state.refusals.count(&project.name, error.refusal_reason(), 1),
    }
    stored
}

/// The project's part of ingest: origin, body, events, store, then what is derived from them.
async fn store_batch(
    state: &AppState,
    (key, project): (&str, &Project),
    (headers, client): (&HeaderMap, std::net::IpAddr),
    body: Body,
) -> Result<Ingested, ApiError> {
    check_origin(project, headers)?;
    // Before the body is read: nothing of a refused request reaches a store.
    if let Some(why) = state.disk.refusal() {
        return Err(ApiError::Unavailable { message: why, retry_after_secs: crate::disk::RETRY_AFTER_SECS });
    }
    let format = body_format(headers)?;
    let encoding = content_encoding(headers)?;
    let bytes = read_body(state, key, encoding, body).await?;
    let batch = batch::parse(format, &bytes, state.config.limits.events_per_request).map_err(|e| match e {
        BodyError::TooManyEvents { .. } => ApiError::PayloadTooLarge(e.to_string()),
        BodyError::Malformed(_) | BodyError::NoEvents => ApiError::BadRequest(e.to_string()),
    })?;
    let (accepted, rejected) = normalise_batch(state, project, client, batch);
    let ids = accepted.iter().map(|e| e.id).collect::<Vec<_>>();
    // On a store the issue follower reads back (CloudWatch), it records them: once, whichever
    // task ingested them.
    let occurrences =
        if state.store.issue_follow_interval().is_some() { Vec::new() } else { Occurrence::of(&accepted) };
    let hits = state.alerts.matches(&accepted);
    let live = state.tail.is_watched().then(|| accepted.clone());
    state.store.append(accepted).await.map_err(|e| {
        state.metrics.reject_many("unavailable", ids.len() as u64);
        tracing::error!(error = format!("{e:#}"), events = ids.len(), "could not store an ingest batch");
        ApiError::Unavailable {
            message: "the events could not be stored; nothing of this request was kept, retry later".into(),
            retry_after_secs: RETRY_AFTER_UNAVAILABLE_SECS,
        }
    })?;
    // The events are stored: the index and the alerts are derived from them, and a failure
    // here loses none.
    let changes = state.issues.record(occurrences).await.unwrap_or_else(|error| {
        tracing::error!(error = format!("{error:#}"), "could not update the issue index");
        Changes::default()
    });
    state.alerts.observe(hits, &changes, &[], crate::event::unix_ms(time::OffsetDateTime::now_utc()));
    state.metrics.accepted.inc_by(ids.len() as u64);
    if let Some(events) = live {
        state.tail.publish(events);
    }
    Ok(Ingested { ids, rejected })
}

/// The body within the size limit, inflated. The key's byte bucket is charged what gets stored,
/// the inflated size: the compressed size first, so an empty bucket refuses before inflating.
async fn read_body(state: &AppState, key: &str, encoding: Encoding, body: Body) -> Result<Vec<u8>, ApiError> {
    let limit = state.config.limits.body_bytes;
    let received = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("the body is over the limit of {limit} bytes")))?;
    let over_rate = |retry_after_secs| ApiError::TooManyRequests {
        message: "this ingest key is over its byte rate; slow down".into(),
        retry_after_secs,
    };
    state.limits.take_key_bytes(key, received.len()).map_err(over_rate)?;
    let bytes = decompress(encoding, &received, limit)?;
    state.limits.take_key_bytes(key, bytes.len().saturating_sub(received.len())).map_err(over_rate)?;
    Ok(bytes)
}

/// Each raw event normalised, or listed with the reason it was refused.
fn normalise_batch(
    state: &AppState,
    project: &Project,
    client: IpAddr,
    batch: batch::Batch,
) -> (Vec<StoredEvent>, Vec<Rejection>) {
    let ctx = Context {
        project,
        default_env: batch.env.as_deref(),
        received_at: OffsetDateTime::now_utc(),
        max_event_bytes: state.config.limits.event_bytes,
    };
    let mut accepted = Vec::with_capacity(batch.events.len());
    let mut rejected = Vec::new();
    state.metrics.received.inc_by(batch.events.len() as u64);
    for (index, raw) in batch.events.into_iter().enumerate() {
        match event::normalise(raw, &ctx) {
            Ok(mut event) => {
                if project.store_client_ip {
                    event.extra.get_or_insert_default().insert("client_ip".into(), client.to_string().into());
                }
                accepted.push(event);
            }
            Err(rejection) => {
                state.metrics.reject(rejection.kind.label());
                rejected.push(Rejection { index, reason: rejection.to_string() });
            }
        }
    }
    (accepted, rejected)
}

/// The key from `X-Logboard-Key`, `Authorization: Bearer`, or `?key=`, and the project it opens.
fn project_for_key<'a, 'k>(
    state: &'a AppState,
    headers: &'k HeaderMap,
    query_key: Option<&'k str>,
) -> Result<(&'k str, &'a Project), ApiError> {
    let header_key = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok());
    let bearer =
        authorization(headers).and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token));
    let key = header_key.or(bearer).or(query_key).map(str::trim).filter(|k| !k.is_empty()).ok_or_else(|| {
        ApiError::Unauthorized(
            "an ingest key is required: X-Logboard-Key header, Authorization: Bearer, or ?key=".into(),
        )
    })?;
    let project = state.projects.by_key(key).ok_or_else(|| ApiError::Unauthorized("unknown ingest key".into()))?;
    Ok((key, project))
}

/// Browsers send `Origin`; it must be one the project allows. Server clients send none.
fn check_origin(project: &Project, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("");
    if project.allowed_origins.iter().any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("origin `{origin}` is not allowed to send to project `{}`", project.name)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else { return Ok(Encoding::Identity) };
    let value = value.to_str().unwrap_or("?").trim();
    match value.to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding `{value}` is not supported; send gzip, deflate or no encoding"
        ))),
    }
}

/// Inflates the body, stopping one byte past `limit` so a decompression bomb costs nothing.
fn decompress(encoding: Encoding, body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => return Ok(body.to_vec()),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
        // HTTP's "deflate" is zlib-wrapped; some clients send raw deflate, so accept both.
        Encoding::Deflate if body.first().is_some_and(|b| b & 0x0f == 8) => {
            Box::new(flate2::read::ZlibDecoder::new(body))
        }
        Encoding::Deflate => Box::new(flate2::read::DeflateDecoder::new(body)),
    };
    let mut inflated = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| ApiError::BadRequest(format!("the body could not be decompressed: {e}")))?;
    if inflated.len() > limit {
        return Err(ApiError::PayloadTooLarge(format!("the decompressed body is over the limit of {limit} bytes")));
    }
    Ok(inflated)
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
