//! Property tests: whatever bytes arrive, the parser and normaliser never panic and the endpoint
//! never answers 5xx; valid events come back as they were sent.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use logboard::batch::{self, BodyFormat};
use logboard::event::{self, Context, Level, StoredEvent};
use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

fn demo_project() -> logboard::config::ProjectConfig {
    let config = logboard::config::Config::from_sources(common::SHIPPED_CONFIG, &[]).expect("config");
    config.projects[0].clone()
}

/// Parses and normalises a body the way ingest does.
fn ingest_pure(format: BodyFormat, body: &[u8]) -> Result<Vec<Result<StoredEvent, String>>, batch::BodyError> {
    let project = demo_project();
    let scrubber = project.scrubber();
    let parsed = batch::parse(format, body, 1000)?;
    let ctx = Context {
        project: &project,
        default_env: parsed.env.as_deref(),
        received_at: OffsetDateTime::now_utc(),
        max_event_bytes: 65_536,
        scrubber: &scrubber,
    };
    Ok(parsed.events.into_iter().map(|raw| event::normalise(raw, &ctx)).collect())
}

/// JSON-ish text: mostly well-formed fragments, often broken.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let atom = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"message\"".to_string()),
        Just("\"env\"".to_string()),
        Just("\"events\"".to_string()),
        Just("\"timestamp\"".to_string()),
        Just("\"level\"".to_string()),
        Just("\"dev\"".to_string()),
        Just("null".to_string()),
        Just("\n".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "\"[^\"\\\\]{0,12}\"",
        "[\\PC]{0,4}",
    ];
    prop::collection::vec(atom, 0..40).prop_map(|parts| parts.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parser_or_normaliser(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ingest_pure(BodyFormat::Json, &body);
        let _ = ingest_pure(BodyFormat::Ndjson, &body);
    }

    #[test]
    fn json_like_text_never_panics_and_every_event_gets_an_answer(body in jsonish()) {
        for format in [BodyFormat::Json, BodyFormat::Ndjson] {
            if let Ok(results) = ingest_pure(format, &body) {
                prop_assert!(!results.is_empty());
                for event in results.into_iter().flatten() {
                    prop_assert!(!event.message.trim().is_empty());
                    prop_assert!(event.to_json().len() <= 65_536);
                }
            }
        }
    }

    #[test]
    fn valid_events_round_trip(
        message in "[a-zA-Z가-힣][a-zA-Z .,!?가-힣\n\t]{0,300}",
        level in prop::sample::select(vec!["debug", "INFO", "Warning", "error", "fatal", "critical"]),
        age_ms in 0_i64..(13 * 24 * 3600 * 1000),
        kind in "[a-z.]{1,20}",
        status in 100_u16..600,
        extra in prop::collection::btree_map("[a-z]{1,8}", 0_i64..1000, 0..5),
    ) {
        let timestamp = event::unix_ms(OffsetDateTime::now_utc()) - age_ms;
        let extra: serde_json::Map<String, Value> = extra.into_iter().map(|(k, v)| (k, json!(v))).collect();
        let body = json!({"env": "staging", "events": [{
            "message": message, "level": level, "timestamp": timestamp, "type": kind,
            "http": {"method": "get", "status": status}, "extra": extra,
        }]});
        let results = ingest_pure(BodyFormat::Json, body.to_string().as_bytes()).expect("valid body");
        let stored = results.into_iter().next().expect("one event").expect("valid event");
        prop_assert_eq!(&stored.message, &message);
        prop_assert_eq!(stored.level, level.parse::<Level>().expect("level"));
        prop_assert_eq!(stored.timestamp_ms(), timestamp);
        prop_assert_eq!(stored.env.as_str(), "staging");
        prop_assert_eq!(stored.kind.as_deref(), Some(kind.as_str()));
        prop_assert_eq!(stored.http.as_ref().and_then(|h| h.status), Some(status));
        prop_assert_eq!(stored.extra.clone().unwrap_or_default(), extra);
        prop_assert_eq!(stored.id.timestamp_ms() as i64, timestamp);
        let back: StoredEvent = serde_json::from_str(&stored.to_json()).expect("stored JSON parses");
        prop_assert_eq!(back, stored);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_endpoint_answers_arbitrary_bodies_with_202_or_a_4xx_never_a_5xx(
        body in prop_oneof![prop::collection::vec(any::<u8>(), 0..256), jsonish()],
        content_type in prop::sample::select(vec!["application/json", "text/plain", "application/x-ndjson", "image/png"]),
        encoding in prop::sample::select(vec!["", "gzip", "deflate", "zstd"]),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let status = runtime.block_on(async {
            let dir = tempfile::tempdir().expect("dir");
            let state = logboard::build_state(common::test_config(dir.path(), &[])).await.expect("state");
            let mut request = Request::post("/api/v1/events?key=demo-ingest-key").header("content-type", content_type);
            if !encoding.is_empty() {
                request = request.header("content-encoding", encoding);
            }
            let response = logboard::web::router(state)
                .oneshot(request.body(Body::from(body.clone())).expect("request"))
                .await
                .expect("response");
            response.status()
        });
        prop_assert!(status == StatusCode::ACCEPTED || status.is_client_error(), "{status} for {body:?}");
    }
}
