//! OpenTelemetry's door (protocols.md): `POST /v1/logs`, OTLP/HTTP in protobuf or JSON. The key
//! and project come as for our own ingest ([`Sender`]); the body is read by `intake`, decoded by
//! `crate::ingest::otlp` and handed to the one pipeline. The answer is an
//! `ExportLogsServiceResponse` in the request's content type, with the records refused one by one
//! in `partialSuccess`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use prost::Message as _;
use serde_json::json;
use time::OffsetDateTime;

use super::AppState;
use super::error::ApiError;
use super::intake::{self, Sender};
use crate::ingest::otlp::{self, Malformed};
use crate::ingest::{Accepted, Batch};

/// OTLP's two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

pub async fn ingest_logs(
    State(state): State<AppState>,
    sender: Sender,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let format = format(&parts.headers)?;
    let outcome = accept_logs(&state, &sender, &parts.headers, body, format).await;
    intake::count_refusals(&state, &sender.project, outcome.as_ref());
    Ok(answer(&outcome?, format))
}

async fn accept_logs(
    state: &AppState,
    sender: &Sender,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<Accepted, ApiError> {
    intake::admit(state, &sender.project, headers)?;
    let bytes = intake::read_body(state, &sender.key, headers, body).await?;
    let request = match format {
        Format::Protobuf => otlp::decode_protobuf(&bytes),
        Format::Json => otlp::decode_json(&bytes),
    }
    .map_err(|Malformed(why)| ApiError::BadRequest(why))?;
    let drafts = otlp::drafts(request);
    let max = state.config.limits.events_per_request;
    if drafts.len() > max {
        return Err(ApiError::PayloadTooLarge(format!(
            "the request holds {} log records; at most {max} are accepted per request",
            drafts.len()
        )));
    }
    let batch = Batch { default_env: Some(sender.project.default_env.clone()), drafts, client_ip: Some(sender.client) };
    Ok(state.pipeline.accept(&sender.project, batch, OffsetDateTime::now_utc()).await?)
}

fn format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?")).unwrap_or("");
    match content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type `{content_type}` is not supported; send application/x-protobuf or application/json"
        ))),
    }
}

/// The `ExportLogsServiceResponse`: empty when every record was kept.
fn answer(accepted: &Accepted, format: Format) -> Response {
    let rejected = accepted.rejected.len();
    let error_message = accepted
        .rejected
        .iter()
        .take(5)
        .map(|refused| format!("record {}: {}", refused.index, refused.reason))
        .collect::<Vec<_>>()
        .join("; ");
    match format {
        Format::Protobuf => {
            let partial_success = (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message,
            });
            let body = ExportLogsServiceResponse { partial_success }.encode_to_vec();
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"))], body).into_response()
        }
        Format::Json => {
            // proto3's JSON form writes 64-bit integers as strings.
            let body = if rejected > 0 {
                json!({"partialSuccess": {"rejectedLogRecords": rejected.to_string(), "errorMessage": error_message}})
            } else {
                json!({})
            };
            axum::Json(body).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Refused;

    #[test]
    fn content_types_choose_the_format() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().expect("header"));
            format(&headers).ok()
        };
        assert_eq!(with("application/x-protobuf"), Some(Format::Protobuf));
        assert_eq!(with("application/json; charset=utf-8"), Some(Format::Json));
        assert_eq!(with("text/plain"), None);
        assert!(format(&HeaderMap::new()).is_err());
    }

    #[tokio::test]
    async fn refused_records_are_a_partial_success_in_either_format() {
        let accepted =
            Accepted { ids: Vec::new(), rejected: vec![Refused { index: 2, reason: "unknown env `qa`".into() }] };
        let body = axum::body::to_bytes(answer(&accepted, Format::Json).into_body(), 4096).await.expect("body");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).expect("json"),
            json!({"partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "record 2: unknown env `qa`"}})
        );
        let body = axum::body::to_bytes(answer(&accepted, Format::Protobuf).into_body(), 4096).await.expect("body");
        let decoded = ExportLogsServiceResponse::decode(body).expect("protobuf");
        assert_eq!(decoded.partial_success.map(|p| p.rejected_log_records), Some(1));
        let all_kept = answer(&Accepted::default(), Format::Json).into_body();
        assert_eq!(&axum::body::to_bytes(all_kept, 64).await.expect("body")[..], b"{}");
    }
}
