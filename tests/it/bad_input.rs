//! The bad-input table: each malformed request gets its exact status and error body, and each
//! invalid event its exact reason while the rest of its batch is kept.

use crate::common;

use common::{INGEST_KEY, spawn_app_with};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    query: &'static str,
    body: Vec<u8>,
    status: u16,
    error: &'static str,
}

fn case(name: &'static str, content_type: &str, body: impl Into<Vec<u8>>, status: u16, error: &'static str) -> Case {
    Case {
        name,
        headers: vec![("X-Logboard-Key", INGEST_KEY.to_string()), ("Content-Type", content_type.to_string())],
        query: "",
        body: body.into(),
        status,
        error,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn every_malformed_request_gets_its_exact_status_and_error() {
    let data_dir = tempfile::tempdir().expect("dir");
    let mut config = common::test_config(data_dir.path(), &[("LOGBOARD__LIMITS__EVENTS_PER_REQUEST", "3")]);
    config.projects[0].allowed_origins = vec!["https://shop.example".into()];
    let app = common::spawn_app_from(config, data_dir).await;
    let json = "application/json";
    let mut cases = vec![
        Case {
            headers: vec![("Content-Type", json.into())],
            ..case(
                "no key",
                json,
                "{}",
                401,
                "an ingest key is required: X-Logboard-Key header, Authorization: Bearer, or ?key=",
            )
        },
        Case {
            headers: vec![("X-Logboard-Key", "nope".into())],
            ..case("unknown key", json, "{}", 401, "unknown ingest key")
        },
        Case {
            query: "?key=nope",
            headers: vec![],
            ..case("unknown query key", json, "{}", 401, "unknown ingest key")
        },
        case("syntax error", json, "{\"message\": \"a\",}", 400, "invalid JSON: trailing comma at line 1 column 17"),
        case(
            "truncated",
            json,
            "[{\"message\": \"a\"",
            400,
            "invalid JSON: EOF while parsing an object at line 1 column 16",
        ),
        case(
            "not UTF-8",
            json,
            b"{\"message\": \"caf\xe9\"}".to_vec(),
            400,
            "the body is not valid UTF-8 (at byte 16)",
        ),
        case("empty body", json, "", 400, "the body holds no events"),
        case("empty array", json, "[]", 400, "the body holds no events"),
        case(
            "a number",
            json,
            "42",
            400,
            "expected an event object, an array of events or {\"events\": [...]}, not a number",
        ),
        case("events not an array", json, "{\"events\": \"a\"}", 400, "events must be an array, not a string"),
        case("batch env not a string", json, "{\"env\": 1, \"events\": []}", 400, "env must be a string, not a number"),
        case(
            "bad NDJSON line",
            "application/x-ndjson",
            "{\"message\":\"a\"}\n{\"message\":\n",
            400,
            "invalid JSON on line 2: EOF while parsing a value at line 1 column 11",
        ),
        case(
            "form post",
            "application/x-www-form-urlencoded",
            "message=a",
            415,
            "Content-Type `application/x-www-form-urlencoded` is not supported; send application/json, text/plain (JSON) or application/x-ndjson",
        ),
        case(
            "xml",
            "application/xml",
            "<a/>",
            415,
            "Content-Type `application/xml` is not supported; send application/json, text/plain (JSON) or application/x-ndjson",
        ),
        case(
            "too many events",
            json,
            r#"[{"message":"1"},{"message":"2"},{"message":"3"},{"message":"4"}]"#,
            413,
            "the body holds 4 events; at most 3 are accepted per request",
        ),
        case("too big", json, vec![b' '; 1_048_577], 413, "the body is over the limit of 1048576 bytes"),
    ];
    let mut brotli =
        case("brotli", json, "{}", 415, "Content-Encoding `br` is not supported; send gzip, deflate or no encoding");
    brotli.headers.push(("Content-Encoding", "br".into()));
    let mut bomb = case(
        "gzip bomb",
        json,
        gzip(&vec![b' '; 50_000_000]),
        413,
        "the decompressed body is over the limit of 1048576 bytes",
    );
    bomb.headers.push(("Content-Encoding", "gzip".into()));
    let mut corrupt = case(
        "corrupt gzip",
        json,
        "definitely not gzip",
        400,
        "the body could not be decompressed: invalid gzip header",
    );
    corrupt.headers.push(("Content-Encoding", "gzip".into()));
    let mut origin = case(
        "foreign origin",
        json,
        "{\"message\":\"a\",\"env\":\"dev\"}",
        403,
        "origin `https://evil.example` is not allowed to send to project `demo`",
    );
    origin.headers.push(("Origin", "https://evil.example".into()));
    cases.extend([brotli, bomb, corrupt, origin]);

    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    for case in cases {
        let mut request = client.post(app.url(&format!("/api/v1/events{}", case.query))).body(case.body);
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != case.status || body != json!({"error": case.error}) {
            failures.push(format!(
                "{}: got {status} {body}, want {} {{\"error\": {:?}}}",
                case.name, case.status, case.error
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let (_, page) = app.read("/api/v1/events?project=demo&env=dev").await;
    assert_eq!(page["events"], json!([]), "nothing of a refused request was stored");
}

#[tokio::test]
async fn every_invalid_event_gets_its_reason_and_the_rest_of_the_batch_is_kept() {
    let app = spawn_app_with(&[]).await;
    let now = logboard::event::unix_ms(time::OffsetDateTime::now_utc());
    let day = 24 * 3600 * 1000;
    let mut deep = json!("leaf");
    for _ in 0..16 {
        deep = json!({ "k": deep });
    }
    let table: Vec<(Value, Option<&str>)> = vec![
        (json!({"message": "kept 1"}), None),
        (json!({"message": ""}), Some("message is empty")),
        (json!({"message": " \n "}), Some("message is empty")),
        (json!({"level": "error"}), Some("message is missing")),
        (json!({"message": ["a"]}), Some("message must be a string, not an array")),
        (json!("just text"), Some("an event must be a JSON object, not a string")),
        (json!({"message": "m", "env": "qa"}), Some("unknown env `qa`; use one of: production, staging, dev")),
        (json!({"message": "m", "env": 3}), Some("env must be a string, not a number")),
        (
            json!({"message": "m", "level": "verbose"}),
            Some("unknown level `verbose`; use debug, info, warn, error or fatal"),
        ),
        (json!({"message": "m", "timestamp": now - 15 * day}), None),
        (json!({"message": "m", "timestamp": now + 3 * 3600 * 1000}), None),
        (
            json!({"message": "m", "timestamp": "11/24/2026"}),
            Some("timestamp `11/24/2026` is not RFC 3339 (e.g. 2026-11-24T15:04:05Z)"),
        ),
        (
            json!({"message": "m", "timestamp": true}),
            Some("timestamp must be an RFC 3339 string or epoch milliseconds, not a boolean"),
        ),
        (json!({"message": "m", "http": {"status": 1000}}), Some("http.status 1000 is not an HTTP status code")),
        (json!({"message": "m", "http": "GET"}), Some("http must be an object, not a string")),
        (json!({"message": "m", "user": 42}), Some("user must be a string or object, not a number")),
        (json!({"message": "m", "extra": deep}), Some("the event is nested deeper than 16 levels")),
        (json!({"message": "kept 2", "stack": "s".repeat(100_000)}), None),
    ];
    let events: Vec<Value> = table.iter().map(|(event, _)| event.clone()).collect();
    let (status, answer) = app.ingest(&json!({"env": "dev", "events": events})).await;
    assert_eq!(status, 202);
    let rejected = answer["rejected"].as_array().expect("rejected");
    let reasons: std::collections::HashMap<u64, String> = rejected
        .iter()
        .map(|r| (r["index"].as_u64().expect("index"), r["reason"].as_str().expect("reason").to_string()))
        .collect();
    for (index, (event, want)) in table.iter().enumerate() {
        let got = reasons.get(&(index as u64));
        match want {
            Some(want) => assert_eq!(got.map(String::as_str), Some(*want), "event {index}: {event}"),
            None if index == 9 => {
                assert!(got.is_some_and(|r| {
                    r.ends_with("is older than 14 days (epoch milliseconds are expected for numbers)")
                }))
            }
            None if index == 10 => assert!(got.is_some_and(|r| r.ends_with("is more than 2 hours in the future"))),
            None => assert_eq!(got, None, "event {index} is valid"),
        }
    }
    assert_eq!(answer["accepted"], 2);
    let (_, page) = app.read("/api/v1/events?project=demo&env=dev").await;
    let mut kept: Vec<&str> =
        page["events"].as_array().expect("events").iter().filter_map(|e| e["message"].as_str()).collect();
    kept.sort_unstable();
    assert_eq!(kept, ["kept 1", "kept 2"]);
    let cut = page["events"].as_array().expect("events").iter().find(|e| e["message"] == "kept 2").expect("kept 2");
    assert_eq!(cut["truncated"], json!(["stack"]), "the long stack was cut, not the event dropped");
}
