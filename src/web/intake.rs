//! What every ingest door shares, whatever its wire format: the sender ([`Sender`], an extractor:
//! the address's rate, then the ingest key and its project), the project's origin rule and the
//! disk gate ([`admit`]), the body read within the limits and inflated ([`read_body`]), and the
//! monitor's count of what was refused ([`count_refusals`]).

use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::Deserialize;

use super::AppState;
use super::auth::authorization;
use super::error::ApiError;
use super::limits::ClientIp;
use crate::ingest::Accepted;
use crate::project::{KEY_HEADER, Project};

/// Who sends: the client's address (behind trusted proxies, from `X-Forwarded-For`), already
/// within its request rate, and the ingest key with the project it opens, from
/// `X-Logboard-Key`, `Authorization: Bearer`, or `?key=`.
pub struct Sender {
    pub client: IpAddr,
    pub key: String,
    pub project: Arc<Project>,
}

#[derive(Debug, Deserialize)]
struct KeyParam {
    key: Option<String>,
}

impl FromRequestParts<AppState> for Sender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(ClientIp(client)) = ClientIp::from_request_parts(parts, state).await;
        state.limits.check_ip(client).map_err(|retry_after_secs| ApiError::TooManyRequests {
            message: "too many requests from this address".into(),
            retry_after_secs,
        })?;
        let query_key = Query::<KeyParam>::try_from_uri(&parts.uri).ok().and_then(|Query(param)| param.key);
        let key = ingest_key(&parts.headers, query_key.as_deref()).ok_or_else(|| {
            ApiError::Unauthorized(
                "an ingest key is required: X-Logboard-Key header, Authorization: Bearer, or ?key=".into(),
            )
        })?;
        let project = state.projects.by_key(&key).ok_or_else(|| ApiError::Unauthorized("unknown ingest key".into()))?;
        Ok(Sender { client, project: Arc::clone(project), key })
    }
}

/// The key from `X-Logboard-Key`, `Authorization: Bearer`, or `?key=`, in that order.
fn ingest_key(headers: &HeaderMap, query_key: Option<&str>) -> Option<String> {
    let header_key = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok());
    let bearer =
        authorization(headers).and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token));
    header_key.or(bearer).or(query_key).map(str::trim).filter(|k| !k.is_empty()).map(str::to_string)
}

/// Before the body is read, so nothing of a refused request reaches a store: the project's
/// origin rule (browsers send `Origin`; server clients send none) and the disk gate.
pub fn admit(state: &AppState, project: &Project, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !project.allowed_origins.iter().any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin)) {
            return Err(ApiError::Forbidden(format!(
                "origin `{origin}` is not allowed to send to project `{}`",
                project.name
            )));
        }
    }
    if let Some(why) = state.disk.refusal() {
        return Err(ApiError::Unavailable { message: why, retry_after_secs: crate::disk::RETRY_AFTER_SECS });
    }
    Ok(())
}

/// The body within the size limit, inflated. The key's byte bucket is charged what gets stored,
/// the inflated size: the compressed size first, so an empty bucket refuses before inflating.
pub async fn read_body(state: &AppState, key: &str, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let (encoding, received) = receive(state, headers, body, Encodings::OURS).await?;
    inflate(state, key, encoding, &received)
}

/// The body as it came, within the size limit, and its encoding (one of `accepted`).
pub async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    accepted: Encodings,
) -> Result<(Encoding, Bytes), ApiError> {
    let encoding = content_encoding(headers, accepted)?;
    let limit = state.config.limits.body_bytes;
    let received = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("the body is over the limit of {limit} bytes")))?;
    Ok((encoding, received))
}

/// A body [`receive`]d, inflated, with the key's byte bucket charged as [`read_body`] says.
pub fn inflate(state: &AppState, key: &str, encoding: Encoding, received: &[u8]) -> Result<Vec<u8>, ApiError> {
    let over_rate = |retry_after_secs| ApiError::TooManyRequests {
        message: "this ingest key is over its byte rate; slow down".into(),
        retry_after_secs,
    };
    state.limits.take_key_bytes(key, received.len()).map_err(over_rate)?;
    let bytes = decompress(encoding, received, state.config.limits.body_bytes)?;
    state.limits.take_key_bytes(key, bytes.len().saturating_sub(received.len())).map_err(over_rate)?;
    Ok(bytes)
}

/// The monitor tells a team that its events are being refused, by reason.
pub fn count_refusals(state: &AppState, project: &Project, outcome: Result<&Accepted, &ApiError>) {
    match outcome {
        Ok(accepted) if !accepted.rejected.is_empty() => {
            state.refusals.count(&project.name, "rejected", accepted.rejected.len() as u64);
        }
        Ok(_) => {}
        Err(error) => state.refusals.count(&project.name, error.refusal_reason(), 1),
    }
}

/// A `Content-Encoding` we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

/// The encodings a door accepts besides none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encodings(&'static [(&'static str, Encoding)]);

impl Encodings {
    /// `POST /api/v1/events` and OTLP.
    pub const OURS: Encodings =
        Encodings(&[("gzip", Encoding::Gzip), ("x-gzip", Encoding::Gzip), ("deflate", Encoding::Deflate)]);
    /// What the Sentry SDKs send.
    pub const SENTRY: Encodings = Encodings(&[
        ("gzip", Encoding::Gzip),
        ("x-gzip", Encoding::Gzip),
        ("deflate", Encoding::Deflate),
        ("br", Encoding::Brotli),
        ("zstd", Encoding::Zstd),
    ]);

    fn names(self) -> String {
        let names: Vec<&str> = self.0.iter().map(|(name, _)| *name).filter(|name| !name.starts_with("x-")).collect();
        names.join(", ")
    }
}

fn content_encoding(headers: &HeaderMap, accepted: Encodings) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else { return Ok(Encoding::Identity) };
    let value = value.to_str().unwrap_or("?").trim();
    let lower = value.to_ascii_lowercase();
    if lower.is_empty() || lower == "identity" {
        return Ok(Encoding::Identity);
    }
    accepted.0.iter().find(|(name, _)| *name == lower).map(|(_, encoding)| *encoding).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Encoding `{value}` is not supported; send {} or no encoding",
            accepted.names()
        ))
    })
}

/// The largest zstd window accepted, as a power of two: 8 MiB.
const ZSTD_MAX_WINDOW_LOG: u32 = 23;

/// Inflates the body, stopping one byte past `limit` so a decompression bomb costs nothing.
pub fn decompress(encoding: Encoding, body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => return Ok(body.to_vec()),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
        // HTTP's "deflate" is zlib-wrapped; some clients send raw deflate, so accept both.
        Encoding::Deflate if body.first().is_some_and(|b| b & 0x0f == 8) => {
            Box::new(flate2::read::ZlibDecoder::new(body))
        }
        Encoding::Deflate => Box::new(flate2::read::DeflateDecoder::new(body)),
        Encoding::Brotli => Box::new(brotli_decompressor::Decompressor::new(body, 4096)),
        Encoding::Zstd => {
            let undecodable =
                |e: std::io::Error| ApiError::BadRequest(format!("the body could not be decompressed: {e}"));
            let mut decoder = zstd::stream::read::Decoder::new(body).map_err(undecodable)?;
            // A frame may ask for a window of up to 2 GiB; 8 MiB is what encoders use by default.
            decoder.window_log_max(ZSTD_MAX_WINDOW_LOG).map_err(undecodable)?;
            Box::new(decoder)
        }
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
