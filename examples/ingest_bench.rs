//! The ingest benchmark's payload and its parse ceiling (see BENCHMARKS.md, "Writer and ingest").
//!
//! `cargo run --release --example ingest_bench -- payload > /tmp/batch.json` writes one request
//! body: 100 events of about 300 bytes each, as `benches/ingest.lua` sends it.
//! `payload-errors` is the same 100 events as errors with a stack, `benches/ingest_cpu.sh`'s
//! all-error batch.
//! `cargo run --release --example ingest_bench -- ceiling /tmp/batch.json` parses that body with
//! serde_json on one core (into `serde_json::Value`, as ingest does) and prints events/s: the
//! most any server could ingest per core before doing anything with the events.
//!
//! The protocol bodies of `benches/protocols.sh` (BENCHMARKS.md, "Sentry and OpenTelemetry"), as
//! the clients send them: `sentry-error` (one error event per envelope, as `sentry-sdk` sends a
//! captured exception), `sentry-logs` (one envelope of 100 Sentry Logs) and `otlp` (one OTLP/HTTP
//! protobuf request of 100 log records), each written to stdout; `payload-like-logs` and
//! `payload-like-otlp` are our own batches of the events the Sentry Logs envelope and the OTLP
//! request decode to.

use std::io::Write as _;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde_json::{Value, json};

const EVENTS: usize = 100;

fn payload() -> String {
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            json!({
                "level": if i % 10 == 0 { "error" } else { "info" },
                "message": format!(
                    "GET /api/orders/{i:05} answered 200 in {} ms for a returning customer; cache hit, \
                     3 rows read, region ap-northeast-2, build 2026.11.24-{i:03}, feature flags: checkout-v2 \
                     on, new-search off",
                    17 + i % 40
                ),
                "code": "ORDERS_OK",
                "release": "web@2026.11.24",
                "url": format!("https://shop.example.com/orders/{i:05}"),
            })
        })
        .collect();
    json!({"env": "production", "events": events}).to_string()
}

/// The all-error batch of `benches/ingest_cpu.sh`: the payload's 100 events, each an error with a
/// short stack (fingerprinted from its frames and recorded as an occurrence of its issue).
fn payload_errors() -> String {
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            json!({
                "level": "error",
                "message": message(i),
                "type": "TypeError",
                "code": "ORDERS_FAILED",
                "release": "web@2026.11.24",
                "url": format!("https://shop.example.com/orders/{i:05}"),
                "stack": format!(
                    "TypeError: Cannot read properties of undefined (reading 'id')\n    at loadOrder \
                     (https://shop.example.com/assets/app.js:{}:17)\n    at async render \
                     (https://shop.example.com/assets/app.js:88:5)\n    at async dispatch \
                     (https://shop.example.com/assets/vendor.js:1:2041)",
                    100 + i % 7
                ),
            })
        })
        .collect();
    json!({"env": "production", "events": events}).to_string()
}

/// The message of the `i`th event, as in our own payload.
fn message(i: usize) -> String {
    format!(
        "GET /api/orders/{i:05} answered 200 in {} ms for a returning customer; cache hit, 3 rows read, region \
         ap-northeast-2, build 2026.11.24-{i:03}, feature flags: checkout-v2 on, new-search off",
        17 + i % 40
    )
}

/// Where the bodies' times go: `benches/protocols.lua` puts the current second there before
/// sending, as the clients send the time of each event (a fixed time in the past is not what
/// clients send, and the store takes it slower).
const SECONDS_MARK: f64 = 1_111_111_111.5;
/// The same for OTLP's `timeUnixNano` (a fixed64: these eight bytes, little-endian).
const NANOS_MARK: &[u8; 8] = b"ABCDEFGH";

/// One envelope with one item, as `sentry-sdk` writes it (with `length`).
fn envelope(kind: &str, payload: &Value) -> String {
    let payload = payload.to_string();
    format!(
        "{{\"sent_at\":\"2026-11-24T15:00:00Z\"}}\n{{\"type\":\"{kind}\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
}

fn sentry_error() -> String {
    let frames: Vec<Value> = (0..10)
        .map(|i| {
            json!({"function": format!("step_{i}"), "filename": format!("shop/orders/step_{i}.py"),
                        "abs_path": format!("/var/task/shop/orders/step_{i}.py"), "lineno": 10 + i, "in_app": i > 2})
        })
        .collect();
    envelope(
        "event",
        &json!({
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "level": "error",
            "platform": "python",
            "timestamp": SECONDS_MARK,
            "release": "web@2026.11.24",
            "environment": "production",
            "exception": {"values": [{"type": "KeyError", "value": "'customer_id'", "mechanism": {"type": "generic", "handled": true},
                                      "stacktrace": {"frames": frames}}]},
            "tags": {"region": "ap-northeast-2"},
            "sdk": {"name": "sentry.python", "version": "2.75.0"},
            "breadcrumbs": {"values": (0..5).map(|i| json!({"category": "http", "message": message(i)})).collect::<Vec<_>>()},
        }),
    )
}

fn sentry_logs() -> String {
    let items: Vec<Value> = (0..EVENTS)
        .map(|i| {
            json!({
                "timestamp": SECONDS_MARK,
                "level": if i % 10 == 0 { "error" } else { "info" },
                "body": message(i),
                "trace_id": "5b8efff798038103d269b633813fc60c",
                "attributes": {
                    "sentry.environment": {"value": "production", "type": "string"},
                    "sentry.release": {"value": "web@2026.11.24", "type": "string"},
                    "sentry.sdk.name": {"value": "sentry.python", "type": "string"},
                    "code.file.path": {"value": "shop/orders.py", "type": "string"},
                    "code.line.number": {"value": 42, "type": "integer"},
                },
            })
        })
        .collect();
    envelope("log", &json!({"items": items}))
}

/// Our own batch of the events [`sentry_logs`] decodes to (the same message, level, release and
/// `extra`), at the receive time: what the Sentry door costs beyond our endpoint for the same events.
fn payload_like_logs() -> String {
    batch_like_a_door(|_| {
        json!({
            "sentry": {"sdk": {"name": "sentry.python"}},
            "code": {"file": {"path": "shop/orders.py"}, "line": {"number": 42}},
            "trace_id": "5b8efff798038103d269b633813fc60c",
        })
    })
}

/// Our own batch of the events [`otlp`] decodes to (the same message, level, release and
/// `extra`, with the resource's attributes in each), at the receive time: what the OTLP door
/// costs beyond our endpoint for the same events.
fn payload_like_otlp() -> String {
    batch_like_a_door(|i| {
        json!({
            "code": {"file": {"path": "shop/orders.py"}},
            "url": {"full": format!("https://shop.example.com/orders/{i:05}")},
            "resource": {
                "service": {"name": "web", "version": "web@2026.11.24"},
                "deployment": {"environment": {"name": "production"}},
            },
            "service": "web",
            "trace_id": "5b".repeat(16),
            "span_id": "ee".repeat(8),
        })
    })
}

/// Our batch of the doors' events: each door's message, level and release, with `extra(i)`.
fn batch_like_a_door(extra: impl Fn(usize) -> Value) -> String {
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            json!({
                "level": if i % 10 == 0 { "error" } else { "info" },
                "message": message(i),
                "release": "web@2026.11.24",
                "extra": extra(i),
            })
        })
        .collect();
    json!({"env": "production", "events": events}).to_string()
}

fn otlp() -> Vec<u8> {
    let text = |key: &str, value: String| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value)) }),
    };
    let records = (0..EVENTS)
        .map(|i| LogRecord {
            time_unix_nano: u64::from_le_bytes(*NANOS_MARK),
            severity_number: if i % 10 == 0 { 17 } else { 9 },
            body: Some(AnyValue { value: Some(any_value::Value::StringValue(message(i))) }),
            attributes: vec![
                text("code.file.path", "shop/orders.py".into()),
                text("url.full", format!("https://shop.example.com/orders/{i:05}")),
            ],
            trace_id: vec![0x5b; 16],
            span_id: vec![0xee; 8],
            ..LogRecord::default()
        })
        .collect();
    let resource = Resource {
        attributes: vec![
            text("service.name", "web".into()),
            text("service.version", "web@2026.11.24".into()),
            text("deployment.environment.name", "production".into()),
        ],
        ..Resource::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs { log_records: records, ..ScopeLogs::default() }],
            ..ResourceLogs::default()
        }],
    }
    .encode_to_vec()
}

fn ceiling(path: &str) {
    let body = std::fs::read(path).expect("read the payload");
    let rounds = 20_000;
    let started = Instant::now();
    let mut events = 0usize;
    for _ in 0..rounds {
        let value: Value = serde_json::from_slice(&body).expect("valid JSON");
        events += value["events"].as_array().map_or(0, Vec::len);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "serde_json::from_slice::<Value>: {rounds} bodies of {} bytes, {events} events in {seconds:.2} s: {:.0} events/s, {:.0} MB/s on one core",
        body.len(),
        events as f64 / seconds,
        (body.len() * rounds) as f64 / seconds / 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("payload") => println!("{}", payload()),
        Some("payload-errors") => println!("{}", payload_errors()),
        Some("payload-like-logs") => println!("{}", payload_like_logs()),
        Some("payload-like-otlp") => println!("{}", payload_like_otlp()),
        Some("ceiling") => ceiling(args.get(2).map_or("/tmp/batch.json", String::as_str)),
        Some("sentry-error") => print!("{}", sentry_error()),
        Some("sentry-logs") => print!("{}", sentry_logs()),
        Some("otlp") => std::io::stdout().write_all(&otlp()).expect("stdout"),
        _ => eprintln!(
            "usage: ingest_bench payload | payload-errors | payload-like-logs | payload-like-otlp | ceiling FILE | sentry-error | sentry-logs | otlp"
        ),
    }
}
