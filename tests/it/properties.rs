//! Property tests of the product's own ingest workflow and router: whatever bytes arrive, nothing
//! panics and nothing answers 5xx; valid events come back from the store as they were sent.

use crate::common;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::{Request, StatusCode};
use logboard::event::{self, Level, StoredEvent};
use logboard::ingest::Accepted as Ingested;
use logboard::web::error::ApiError;
use logboard::web::ingest::accept_json;
use logboard::web::intake::Sender;
use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

/// A body through the product's ingest workflow (what the handler calls), as a given content
/// type; then every event it stored, read back from the store.
fn ingest_body(content_type: &str, body: &[u8]) -> Result<(Ingested, Vec<StoredEvent>), ApiError> {
    let service = service();
    service.runtime.block_on(async {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", content_type.parse().expect("header"));
        let project = service.state.projects.by_key(common::INGEST_KEY).expect("the demo key");
        let sender = Sender {
            client: std::net::Ipv4Addr::LOCALHOST.into(),
            key: common::INGEST_KEY.into(),
            project: std::sync::Arc::clone(project),
        };
        let ingested = accept_json(&service.state, &sender, &headers, Body::from(body.to_vec())).await?;
        let project = service.state.projects.get("demo").expect("demo");
        let mut stored = Vec::new();
        for id in &ingested.ids {
            let mut found = None;
            for env in &project.envs {
                found = found.or(service.state.store.event(project, env, None, *id).await.expect("read"));
            }
            stored.push(found.expect("an accepted event is stored"));
        }
        Ok((ingested, stored))
    })
}

/// One service for every case of the HTTP properties: building one costs an Argon2 hash.
struct Service {
    runtime: tokio::runtime::Runtime,
    state: logboard::web::AppState,
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
        // Every request comes from one (unknown) address: no per-address rate here. The pages
        // read times west of UTC (-03:30), so a typed `9999-12-31 23:59` is past year 9999 there.
        let config = common::test_config(
            data_dir.path(),
            &[("LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC", "0"), ("LOGBOARD__UI__TIMEZONE", "America/St_Johns")],
        );
        let state = runtime.block_on(logboard::App::build(config)).expect("app").state;
        let cookie = format!("{}={}", logboard::web::session::SESSION_COOKIE, state.auth.start_session("admin"));
        Service { router: logboard::web::router(state.clone()), state, runtime, cookie, _data_dir: data_dir }
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
        for content_type in ["application/json", "application/x-ndjson"] {
            if let Err(error) = ingest_body(content_type, &body) {
                prop_assert!(error.status().is_client_error(), "{error:?}");
            }
        }
    }

    #[test]
    fn json_like_text_never_panics_and_every_event_gets_an_answer(body in jsonish()) {
        for content_type in ["application/json", "application/x-ndjson"] {
            match ingest_body(content_type, &body) {
                Ok((ingested, stored)) => {
                    prop_assert!(!ingested.ids.is_empty() || !ingested.rejected.is_empty(), "every event gets an answer");
                    for event in stored {
                        prop_assert!(!event.message.trim().is_empty());
                        prop_assert!(event.to_json().len() <= 65_536);
                    }
                }
                Err(error) => prop_assert!(error.status().is_client_error(), "{error:?}"),
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
                !service().state.projects.get("demo").is_some_and(|demo| demo.scrubber.is_sensitive_key(key))
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
        let (ingested, stored) = ingest_body("application/json", body.to_string().as_bytes()).expect("valid body");
        prop_assert!(ingested.rejected.is_empty(), "{:?}", ingested.rejected);
        let stored = stored.into_iter().next().expect("one event");
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
