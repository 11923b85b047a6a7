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

/// One service for every case of the HTTP properties: building one costs an Argon2 hash.
struct Service {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    /// A logged-in session's cookie.
    cookie: String,
    _data_dir: tempfile::TempDir,
}

fn service() -> &'static Service {
    static SERVICE: std::sync::OnceLock<Service> = std::sync::OnceLock::new();
    SERVICE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        let data_dir = tempfile::tempdir().expect("dir");
        // Every request comes from one (unknown) address: no per-address rate here.
        let config = common::test_config(data_dir.path(), &[("LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC", "0")]);
        let state = runtime.block_on(logboard::build_state(config)).expect("state");
        let cookie = format!("{}={}", logboard::web::auth::SESSION_COOKIE, state.auth.start_session("admin"));
        Service { router: logboard::web::router(state), runtime, cookie, _data_dir: data_dir }
    })
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
        extra in prop::collection::btree_map(
            "[a-z]{1,8}".prop_filter("a sensitive key is scrubbed, not round-tripped", |key| {
                !demo_project().scrubber().is_sensitive_key(key)
            }),
            0_i64..1000,
            0..5,
        ),
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
        let service = service();
        let status = service.runtime.block_on(async {
            let mut request = Request::post("/api/v1/events?key=demo-ingest-key").header("content-type", content_type);
            if !encoding.is_empty() {
                request = request.header("content-encoding", encoding);
            }
            let response = service.router.clone()
                .oneshot(request.body(Body::from(body.clone())).expect("request"))
                .await
                .expect("response");
            response.status()
        });
        prop_assert!(status == StatusCode::ACCEPTED || status.is_client_error(), "{status} for {body:?}");
    }
}

/// Times as text: RFC 3339 shapes with any year, offset and fraction (overflowing ones too),
/// epoch numbers of any size, and junk.
fn time_text() -> impl Strategy<Value = String> {
    let rfc3339 = (0_u32..=9999, 1_u32..=12, 1_u32..=31, 0_u32..=23, 0_u32..=59, -23_i32..=23, 0_u32..=59).prop_map(
        |(year, month, day, hour, minute, offset_hours, offset_minutes)| {
            let sign = if offset_hours < 0 { '-' } else { '+' };
            let offset_hours = offset_hours.abs();
            format!(
                "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:59.999{sign}{offset_hours:02}:{offset_minutes:02}"
            )
        },
    );
    prop_oneof![
        rfc3339,
        Just("9999-12-31T23:59:59-23:59".to_string()),
        Just("0000-01-01T00:00:00+23:59".to_string()),
        Just("9999-12-31 23:59".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9T:+\\-. Z]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_times_at_ingest_the_read_api_and_the_pages_never_get_a_5xx(
        timestamp in time_text(),
        from in prop::option::of(time_text()),
        to in prop::option::of(time_text()),
    ) {
        let service = service();
        let (router, cookie) = (&service.router, &service.cookie);
        let statuses = service.runtime.block_on(async {
            // A number-like timestamp goes as a JSON number, the rest as a string.
            let stamp: Value = serde_json::from_str::<serde_json::Number>(&timestamp).map_or(json!(timestamp), Value::from);
            let body = json!({"env": "production", "events": [{"message": "m", "timestamp": stamp}, {"message": "ok"}]});
            let ingest = Request::post("/api/v1/events?key=demo-ingest-key")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("request");
            let mut statuses = vec![("ingest", router.clone().oneshot(ingest).await.expect("response").status())];
            let mut pairs = vec![("project", "demo".to_string()), ("env", "production".to_string())];
            pairs.extend(from.iter().map(|t| ("from", t.clone())));
            pairs.extend(to.iter().map(|t| ("to", t.clone())));
            let query = serde_urlencoded::to_string(&pairs).expect("query");
            for path in ["/api/v1/events", "/logs"] {
                let read = Request::get(format!("{path}?{query}")).header("cookie", cookie).body(Body::empty()).expect("request");
                statuses.push((path, router.clone().oneshot(read).await.expect("response").status()));
            }
            statuses
        });
        prop_assert_eq!(statuses[0].1, StatusCode::ACCEPTED, "the good event of the batch is kept");
        for (what, status) in statuses {
            prop_assert!(status.as_u16() < 500, "{} answered {} (timestamp {:?}, from {:?}, to {:?})", what, status, timestamp, from, to);
        }
    }
}
