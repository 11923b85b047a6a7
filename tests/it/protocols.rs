//! The ecosystem's protocols (protocols.md): Sentry envelopes and OTLP/HTTP logs, by hand and
//! with the real clients (`sentry-sdk` and OpenTelemetry's Python exporter, from the test venv),
//! each read back through the API.

use crate::common;

use std::io::Write as _;

use common::browser::Browser;
use common::client_pages::Site;
use common::{TestApp, spawn_app_from, test_config};
use serde_json::{Value, json};

/// The shipped demo project's DSN key and Sentry id, and a second project with its own.
const SENTRY_KEY: &str = "demo_sentry_key";
const OTHER_KEY: &str = "other_key";

/// logboard with the shipped demo project (sentry_id 1) and a project `other` (sentry_id 2).
async fn spawn(env: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(data_dir.path(), env);
    let mut other = config.projects[0].clone();
    other.name = "other".into();
    other.ingest_keys = vec![OTHER_KEY.into()];
    other.sentry_id = Some(2);
    config.projects.push(other);
    spawn_app_from(config, data_dir).await
}

fn auth(key: &str) -> String {
    format!("Sentry sentry_key={key}, sentry_version=7, sentry_client=hand/1.0")
}

/// POSTs an envelope to project 1 with the given headers; the status, the headers and the body.
async fn post_envelope(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().post(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap_or(Value::Null))
}

async fn events(app: &TestApp, env: &str) -> Vec<Value> {
    let (status, page) = app.read(&format!("/api/v1/events?project=demo&env={env}&limit=1000")).await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().expect("events").clone()
}

fn by_message<'a>(events: &'a [Value], message: &str) -> &'a Value {
    events.iter().find(|e| e["message"] == message).unwrap_or_else(|| panic!("no event `{message}` in {events:#?}"))
}

fn envelope(lines: &[String]) -> Vec<u8> {
    lines.join("\n").into_bytes()
}

#[tokio::test]
async fn hand_written_envelopes_with_and_without_length_and_unknown_items_are_stored_in_full() {
    let app = spawn(&[]).await;
    let event = json!({
        "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
        "level": "error",
        "release": "shop@2024.05.beta",
        "exception": {"values": [{"type": "ValueError", "value": "bad order 42", "stacktrace": {"frames": [
            {"function": "main", "filename": "app.py", "lineno": 3, "in_app": true},
            {"function": "pay", "filename": "shop/pay.py", "lineno": 17, "colno": 5, "in_app": true},
        ]}}]},
        "user": {"id": "42"},
        "request": {"url": "https://shop.example.com/pay", "method": "post"},
        "tags": {"region": "eu"},
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
    })
    .to_string();
    let second = json!({"message": "second event", "level": "warning", "environment": "staging"}).to_string();
    let logs = json!({"items": [
        {"timestamp": time::OffsetDateTime::now_utc().unix_timestamp() as f64, "level": "info", "body": "a log line",
         "trace_id": "5B8EFFF798038103D269B633813FC60C",
         "attributes": {"code.file.path": {"value": "app.py", "type": "string"}, "sentry.environment": {"value": "dev", "type": "string"}}},
    ]})
    .to_string();
    let body = envelope(&[
        r#"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2026-11-24T15:00:00Z"}"#.into(),
        format!(r#"{{"type":"event","length":{}}}"#, event.len()),
        event,
        r#"{"type":"attachment","length":5,"filename":"x.txt"}"#.into(),
        "hello".into(),
        r#"{"type":"session"}"#.into(),
        r#"{"sid":"abc","status":"ok"}"#.into(),
        r#"{"type":"something_new_in_2030"}"#.into(),
        "not even json".into(),
        r#"{"type":"event"}"#.into(),
        second,
        r#"{"type":"log"}"#.into(),
        logs,
    ]);
    let (status, _, answer) =
        post_envelope(&app, "/api/1/envelope/", &[("X-Sentry-Auth", &auth(SENTRY_KEY))], body).await;
    assert_eq!((status, answer), (200, json!({"id": "9ec79c33ec9942ab8353589fcb2e04dc"})));

    let production = events(&app, "production").await;
    let error = by_message(&production, "ValueError: bad order 42");
    assert_eq!(error["type"], "ValueError");
    assert_eq!(error["level"], "error");
    assert_eq!(error["stack"], "at pay (shop/pay.py:17:5)\nat main (app.py:3)");
    assert_eq!(error["release"], "shop@2024.05.beta", "a release is not scrubbed");
    assert_eq!(
        (&error["user"], &error["url"], &error["http"]["method"]),
        (&json!("42"), &json!("https://shop.example.com/pay"), &json!("POST"))
    );
    assert_eq!(error["extra"]["tags"]["region"], "eu");
    assert_eq!(error["extra"]["sdk"], json!({"name": "sentry.python", "version": "2.75.0"}));
    assert_eq!(error["extra"]["event_id"], "9ec79c33ec9942ab8353589fcb2e04dc");
    assert!(error["fingerprint"].as_str().is_some_and(|f| f.len() == 16), "{error}");
    let staging = events(&app, "staging").await;
    assert_eq!(by_message(&staging, "second event")["level"], "warn");
    let dev = events(&app, "dev").await;
    let log = by_message(&dev, "a log line");
    assert_eq!((&log["level"], &log["extra"]["code"]["file"]["path"]), (&json!("info"), &json!("app.py")));
    assert_eq!(log["extra"]["trace_id"], "5b8efff798038103d269b633813fc60c");
    // Searchable by the nested names.
    let (_, page) = app.read("/api/v1/events?project=demo&env=production&q=extra.tags.region:eu").await;
    assert_eq!(page["events"].as_array().map(Vec::len), Some(1), "{page}");
}

#[tokio::test]
async fn the_in_app_frames_group_errors_whatever_the_library_frames_above_them() {
    let app = spawn(&[]).await;
    let key = auth(SENTRY_KEY);
    let frames = |top: (&str, &str)| {
        json!([
            {"function": "handler", "filename": "orders.py", "lineno": 10, "in_app": true},
            {"function": top.0, "filename": top.1, "lineno": 99, "in_app": top.1 == "refunds.py"},
        ])
    };
    // Two library functions above one handler: one issue; the application's own refund: another.
    for top in [("get", "site-packages/lib.py"), ("fetch", "site-packages/lib.py"), ("refund", "refunds.py")] {
        let event = json!({"exception": {"values": [{"type": "KeyError", "value": "'id'", "stacktrace": {"frames": frames(top)}}]}});
        let (status, _, answer) =
            post_envelope(&app, "/api/1/store/", &[("X-Sentry-Auth", &key)], event.to_string().into_bytes()).await;
        assert_eq!(status, 200, "{answer}");
    }
    let stored = events(&app, "production").await;
    let fingerprints: std::collections::BTreeSet<&str> =
        stored.iter().filter_map(|e| e["fingerprint"].as_str()).collect();
    assert_eq!((stored.len(), fingerprints.len()), (3, 2), "{stored:#?}");
}

#[tokio::test]
async fn the_key_comes_from_any_place_the_sdks_put_it_and_wrong_keys_are_refused() {
    let app = spawn(&[]).await;
    let item =
        |message: &str| envelope(&["{}".into(), r#"{"type":"event"}"#.into(), json!({"message": message}).to_string()]);
    let (status, _, _) =
        post_envelope(&app, "/api/1/envelope/?sentry_key=demo_sentry_key&sentry_version=7", &[], item("by query"))
            .await;
    assert_eq!(status, 200);
    let (status, _, _) =
        post_envelope(&app, "/api/1/envelope/", &[("Authorization", &auth(SENTRY_KEY))], item("by authorization"))
            .await;
    assert_eq!(status, 200);
    let with_dsn = envelope(&[
        r#"{"dsn":"http://demo_sentry_key@logs.example.com/1"}"#.into(),
        r#"{"type":"event"}"#.into(),
        json!({"message": "by dsn"}).to_string(),
    ]);
    assert_eq!(post_envelope(&app, "/api/1/envelope/", &[], with_dsn).await.0, 200);

    let (status, _, answer) = post_envelope(&app, "/api/1/envelope/", &[], item("no key")).await;
    assert_eq!(status, 401);
    assert!(answer["detail"].as_str().is_some_and(|d| d.contains("key is required")), "{answer}");
    let (status, _, answer) =
        post_envelope(&app, "/api/1/envelope/", &[("X-Sentry-Auth", &auth("nope"))], item("unknown key")).await;
    assert_eq!((status, answer), (401, json!({"detail": "unknown sentry_key"})));
    let (status, _, answer) =
        post_envelope(&app, "/api/1/envelope/", &[("X-Sentry-Auth", &auth(OTHER_KEY))], item("other key")).await;
    assert_eq!((status, answer), (403, json!({"detail": "this key does not belong to project 1"})));
    let (status, _, _) =
        post_envelope(&app, "/api/9/envelope/", &[("X-Sentry-Auth", &auth(SENTRY_KEY))], item("no such id")).await;
    assert_eq!(status, 403);

    let mut stored: Vec<String> =
        events(&app, "production").await.iter().map(|e| e["message"].as_str().unwrap_or("").to_string()).collect();
    stored.sort();
    assert_eq!(stored, ["by authorization", "by dsn", "by query"]);
}

#[tokio::test]
async fn every_encoding_is_read_and_malformed_envelopes_get_400_with_nothing_stored() {
    let app = spawn(&[]).await;
    let key = auth(SENTRY_KEY);
    let item =
        |message: &str| envelope(&["{}".into(), r#"{"type":"event"}"#.into(), json!({"message": message}).to_string()]);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&item("gzip body")).expect("gzip");
    let gzip = gzip.finish().expect("gzip");
    let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    deflate.write_all(&item("deflate body")).expect("deflate");
    let deflate = deflate.finish().expect("deflate");
    let zstd = zstd::encode_all(&item("zstd body")[..], 3).expect("zstd");
    let br = brotli(&item("br body")).await;
    for (encoding, body) in [("gzip", gzip), ("deflate", deflate), ("zstd", zstd), ("br", br), ("", item("plain body"))]
    {
        let headers = [
            ("X-Sentry-Auth", key.as_str()),
            ("Content-Encoding", encoding),
            ("Content-Type", "application/x-sentry-envelope"),
        ];
        let (status, _, answer) = post_envelope(&app, "/api/1/envelope/", &headers, body).await;
        assert_eq!(status, 200, "{encoding}: {answer}");
    }
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"".to_vec(), 400, "the envelope is empty"),
        (b"{not json\n".to_vec(), 400, "the envelope header is not valid JSON"),
        (
            envelope(&[
                "{}".into(),
                r#"{"type":"event"}"#.into(),
                r#"{"message":"lost"}"#.into(),
                r#"{"type":"event","length":999}"#.into(),
                "{}".into(),
            ]),
            400,
            "item 2: its length 999 runs past the end",
        ),
        (
            envelope(&[
                "{}".into(),
                r#"{"type":"event"}"#.into(),
                r#"{"message":"lost too"}"#.into(),
                r#"{"length":2}"#.into(),
                "{}".into(),
            ]),
            400,
            "the header of item 2 has no `type`",
        ),
    ];
    for (body, want_status, want_detail) in cases {
        let (status, headers, answer) = post_envelope(&app, "/api/1/envelope/", &[("X-Sentry-Auth", &key)], body).await;
        assert_eq!(status, want_status, "{answer}");
        assert!(answer["detail"].as_str().is_some_and(|d| d.starts_with(want_detail)), "{want_detail:?} in {answer}");
        assert!(headers.get("x-sentry-error").is_some());
    }
    let (status, _, answer) = post_envelope(
        &app,
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &key), ("Content-Encoding", "compress")],
        item("x"),
    )
    .await;
    assert_eq!(status, 415, "{answer}");
    // The content types the SDKs send are taken; another is a 415 with nothing stored.
    for (content_type, want) in [
        ("text/plain;charset=UTF-8", 200),
        ("application/x-sentry-envelope", 200),
        ("application/json", 415),
        ("multipart/form-data; boundary=x", 415),
    ] {
        let headers = [("X-Sentry-Auth", key.as_str()), ("Content-Type", content_type)];
        let body = item(&format!("typed {content_type}"));
        let (status, _, answer) = post_envelope(&app, "/api/1/envelope/", &headers, body).await;
        assert_eq!(status, want, "{content_type}: {answer}");
        if want == 415 {
            assert!(answer["detail"].as_str().is_some_and(|d| d.contains(content_type)), "{answer}");
        }
    }
    let store = json!({"message": "stored as json"}).to_string().into_bytes();
    let headers = [("X-Sentry-Auth", key.as_str()), ("Content-Type", "application/json")];
    assert_eq!(post_envelope(&app, "/api/1/store/", &headers, store).await.0, 200, "/store/ takes JSON");
    // One bad event of an envelope is refused; the good ones beside it are kept.
    let mixed = envelope(&[
        "{}".into(),
        r#"{"type":"event"}"#.into(),
        r#"{"message":"too old","timestamp":1000}"#.into(),
        r#"{"type":"event"}"#.into(),
        r#"{"message":"unknown env","environment":"qa"}"#.into(),
        r#"{"type":"event"}"#.into(),
        r#"{"message":"kept"}"#.into(),
    ]);
    assert_eq!(post_envelope(&app, "/api/1/envelope/", &[("X-Sentry-Auth", &key)], mixed).await.0, 200);
    let mut stored: Vec<String> =
        events(&app, "production").await.iter().map(|e| e["message"].as_str().unwrap_or("").to_string()).collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            "br body",
            "deflate body",
            "gzip body",
            "kept",
            "plain body",
            "stored as json",
            "typed application/x-sentry-envelope",
            "typed text/plain;charset=UTF-8",
            "zstd body"
        ]
    );
}

#[tokio::test]
async fn a_rate_limited_key_gets_429_with_the_headers_the_sdks_back_off_on() {
    let app = spawn(&[
        ("LOGBOARD__LIMITS__KEY_BYTES_PER_SEC", "1"),
        ("LOGBOARD__LIMITS__KEY_BURST_BYTES", "300"),
        ("LOGBOARD__LIMITS__BODY_BYTES", "280"),
    ])
    .await;
    let body = envelope(&["{}".into(), r#"{"type":"event"}"#.into(), json!({"message": "x".repeat(200)}).to_string()]);
    let headers = [("X-Sentry-Auth", auth(SENTRY_KEY)), ("Origin", "https://app.example.com".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(post_envelope(&app, "/api/1/envelope/", &headers, body.clone()).await.0, 200);
    let (status, answer_headers, answer) = post_envelope(&app, "/api/1/envelope/", &headers, body).await;
    assert_eq!(status, 429, "{answer}");
    let header = |name: &str| answer_headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let retry_after: u64 = header("retry-after").parse().expect("Retry-After");
    assert!(retry_after >= 1);
    assert_eq!(header("x-sentry-rate-limits"), format!("{retry_after}::project"));
    assert_eq!(header("access-control-allow-origin"), "*", "CORS on error answers too");
    assert!(header("access-control-expose-headers").contains("x-sentry-rate-limits"));
    assert_eq!(events(&app, "production").await.len(), 1);
}

#[tokio::test]
async fn browsers_get_the_preflight_and_client_reports_are_counted_and_the_dsn_is_listed() {
    let app = spawn(&[("LOGBOARD__SERVER__PUBLIC_URL", "https://logs.example.com")]).await;
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/api/1/envelope/"))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type,x-sentry-auth")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    let allowed = preflight.headers().get("access-control-allow-headers").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(allowed.contains("x-sentry-auth"), "{allowed}");

    let report = json!({"timestamp": 1, "discarded_events": [
        {"reason": "queue_overflow", "category": "error", "quantity": 4},
        {"reason": "ratelimit_backoff", "category": "log_item", "quantity": 2},
    ]})
    .to_string();
    let body = envelope(&["{}".into(), r#"{"type":"client_report"}"#.into(), report]);
    let (status, _, answer) =
        post_envelope(&app, "/api/1/envelope/", &[("X-Sentry-Auth", &auth(SENTRY_KEY))], body).await;
    assert_eq!((status, answer), (200, json!({})), "no event: no id");
    let metrics = reqwest::get(app.url("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(
        metrics.contains(r#"logboard_sdk_discarded_total{project="demo",reason="queue_overflow",category="error"} 4"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"logboard_sdk_discarded_total{project="demo",reason="ratelimit_backoff",category="log_item"} 2"#
        )
    );

    let (_, projects) = app.read("/api/v1/projects").await;
    let demo = projects["projects"].as_array().and_then(|p| p.iter().find(|p| p["name"] == "demo")).expect("demo");
    assert_eq!(demo["dsn"], "https://demo_sentry_key@logs.example.com/1");
}

/// Runs a Python script in the test venv (scripts/install-test-deps.sh puts the clients there).
/// `body` compressed by Brotli's own encoder (the `brotli` module the Python SDK uses, in the venv).
async fn brotli(body: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncWriteExt as _;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let mut child = tokio::process::Command::new(python)
        .args(["-c", "import brotli, sys; sys.stdout.buffer.write(brotli.compress(sys.stdin.buffer.read()))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the venv's python (bash scripts/install-test-deps.sh)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(body).await.expect("write to python");
    drop(stdin);
    let output = child.wait_with_output().await.expect("python");
    assert!(output.status.success() && !output.stdout.is_empty(), "brotli failed");
    output.stdout
}

async fn run_python(script: &str, env: &[(&str, String)]) {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let output = tokio::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .output()
        .await
        .expect("run the venv's python (bash scripts/install-test-deps.sh)");
    assert!(
        output.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

const SENTRY_PYTHON: &str = r#"
import logging, os, sentry_sdk

sentry_sdk.init(
    dsn=os.environ["DSN"],
    environment="staging",
    release="shop@1.2.3",
    enable_logs=True,
    _experiments={"transport_compression_algo": os.environ["ALGO"]},
)
algo = os.environ["ALGO"]

def pay(order):
    raise ValueError(f"bad order {order} via {algo}")

try:
    pay(42)
except ValueError:
    sentry_sdk.capture_exception()
sentry_sdk.set_tag("shop", "eu")
sentry_sdk.capture_message(f"hello from python via {algo}")
logging.getLogger("shop.orders").error("logged error via %s", algo)
sentry_sdk.logger.warning("structured log {n} via {algo}", n=7, algo=algo)
sentry_sdk.flush(timeout=10)
"#;

#[tokio::test]
async fn the_python_sdk_works_unchanged_with_gzip_and_brotli() {
    let app = spawn(&[]).await;
    let dsn = format!("http://{SENTRY_KEY}@{}/1", app.addr);
    for algo in ["gzip", "br"] {
        run_python(SENTRY_PYTHON, &[("DSN", dsn.clone()), ("ALGO", algo.into())]).await;
    }
    let staging = events(&app, "staging").await;
    for algo in ["gzip", "br"] {
        let error = by_message(&staging, &format!("ValueError: bad order 42 via {algo}"));
        assert_eq!(
            (&error["type"], &error["level"], &error["release"]),
            (&json!("ValueError"), &json!("error"), &json!("shop@1.2.3"))
        );
        let stack = error["stack"].as_str().expect("stack");
        assert!(stack.starts_with("at pay (<string>:"), "{stack}");
        assert!(
            error["extra"]["sdk"]["name"].as_str().is_some_and(|name| name.starts_with("sentry.python")),
            "{error}"
        );
        let message = by_message(&staging, &format!("hello from python via {algo}"));
        assert_eq!((&message["type"], &message["level"]), (&json!("message"), &json!("info")));
        assert_eq!(message["extra"]["tags"]["shop"], "eu");
        // The logging integration sends the record twice: as an error event and as a Sentry Log.
        let logged: Vec<&Value> =
            staging.iter().filter(|e| e["message"] == format!("logged error via {algo}")).collect();
        assert_eq!(logged.len(), 2, "{logged:#?}");
        assert!(logged.iter().all(|e| e["level"] == "error"));
        assert!(logged.iter().any(|e| e["extra"]["logger"] == "shop.orders"), "the event: {logged:#?}");
        assert!(logged.iter().any(|e| e["extra"]["logger"]["name"] == "shop.orders"), "the log: {logged:#?}");
        let log = by_message(&staging, &format!("structured log 7 via {algo}"));
        assert_eq!(log["level"], "warn");
        assert_eq!(log["release"], "shop@1.2.3");
        assert_eq!(log["extra"]["sentry"]["message"]["template"], "structured log {n} via {algo}");
    }
    // The same exception from both runs is one issue.
    let errors: Vec<&Value> = staging.iter().filter(|e| e["type"] == "ValueError").collect();
    assert_eq!(errors.len(), 2);
    assert_ne!(errors[0]["fingerprint"], errors[1]["fingerprint"], "the message differs (via gzip / via br)");
}

const OTEL_PYTHON: &str = r#"
import logging, os
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.sdk.resources import Resource

provider = LoggerProvider(resource=Resource.create({
    "service.name": "checkout", "service.version": "4.5.6", "deployment.environment.name": "dev",
}))
exporter = OTLPLogExporter(
    endpoint=os.environ["ENDPOINT"],
    headers={"Authorization": "Bearer demo-ingest-key"},
    compression=Compression.Gzip,
)
provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
logger = logging.getLogger("checkout.payments")
logger.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
logger.setLevel(logging.DEBUG)
logger.warning("card declined for order %s", 77, extra={"order.id": 77})
try:
    {}["missing"]
except KeyError:
    logger.exception("payment crashed")
provider.shutdown()
"#;

#[tokio::test]
async fn the_opentelemetry_python_exporter_works_unchanged() {
    let app = spawn(&[]).await;
    run_python(OTEL_PYTHON, &[("ENDPOINT", app.url("/v1/logs"))]).await;
    let dev = events(&app, "dev").await;
    let warning = by_message(&dev, "card declined for order 77");
    assert_eq!((&warning["level"], &warning["release"]), (&json!("warn"), &json!("4.5.6")));
    assert_eq!(warning["extra"]["service"], "checkout");
    assert_eq!(warning["extra"]["resource"]["service"]["name"], "checkout");
    assert_eq!(warning["extra"]["order"]["id"], 77);
    assert_eq!(warning["extra"]["scope"], "checkout.payments");
    let crash = by_message(&dev, "payment crashed");
    assert_eq!((&crash["level"], &crash["type"]), (&json!("error"), &json!("KeyError")));
    assert!(crash["stack"].as_str().is_some_and(|s| s.contains("Traceback")), "{crash}");
    assert!(crash["fingerprint"].as_str().is_some());
}

/// POSTs an OTLP/JSON body with the demo key.
async fn post_otlp_json(app: &TestApp, key: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(app.url("/v1/logs")).header("Content-Type", "application/json");
    if let Some(key) = key {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    let response = request.body(body.to_string()).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn otlp_json_takes_integers_as_strings_or_numbers_and_answers_a_partial_success() {
    let app = spawn(&[]).await;
    let now_ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let body = json!({"resourceLogs": [
        {"resource": {"attributes": [{"key": "deployment.environment", "value": {"stringValue": "staging"}}]},
         "scopeLogs": [{"scope": {}, "logRecords": [
            {"timeUnixNano": now_ns.to_string(), "severityNumber": 13, "body": {"stringValue": "as string"},
             "attributes": [{"key": "n", "value": {"intValue": "12"}}, {"key": "empty", "value": {}}],
             "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "0000000000000000", "unknownField": 1},
            {"timeUnixNano": now_ns as u64, "severityText": "error", "body": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": 3}}]}}},
            {"timeUnixNano": "1000", "body": {"stringValue": "too old"}},
         ]}]},
        {"resource": {"attributes": [{"key": "deployment.environment.name", "value": {"stringValue": "qa"}}]},
         "scopeLogs": [{"logRecords": [{"body": {"stringValue": "unknown env"}}]}]},
        {"scopeLogs": [{"logRecords": [{"body": {"stringValue": "default env"}}]}]},
    ]})
    .to_string();
    let (status, answer) = post_otlp_json(&app, Some("demo-ingest-key"), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["partialSuccess"]["rejectedLogRecords"], "2");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap_or("");
    assert!(message.contains("record 2: timestamp") && message.contains("record 3: unknown env `qa`"), "{message}");

    let staging = events(&app, "staging").await;
    let first = by_message(&staging, "as string");
    assert_eq!(
        (&first["level"], &first["extra"]["n"], &first["extra"]["empty"]),
        (&json!("warn"), &json!(12), &Value::Null)
    );
    assert_eq!(first["extra"]["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert!(first["extra"].get("span_id").is_none(), "a zero span id is none");
    assert_eq!(by_message(&staging, r#"{"k":3}"#)["level"], "error");
    assert_eq!(events(&app, "production").await.len(), 1, "no environment: the project's default_env");

    assert_eq!(post_otlp_json(&app, None, &body).await.0, 401);
    assert_eq!(post_otlp_json(&app, Some("nope"), &body).await.0, 401);
    let (status, answer) = post_otlp_json(
        &app,
        Some("demo-ingest-key"),
        r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("logRecords[0].timeUnixNano")), "{answer}");
    let wrong_type = reqwest::Client::new()
        .post(app.url("/v1/logs"))
        .header("X-Logboard-Key", "demo-ingest-key")
        .header("Content-Type", "text/xml")
        .body("<logs/>")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong_type.status(), 415);
}

/// A page's script from tests/fixtures/sentry with the npm packages it imports (`@sentry/browser`,
/// `@sentry/vue`, `vue`), bundled by esbuild (all installed by scripts/install-test-deps.sh) as an
/// application's build would.
async fn sentry_bundle(script: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = tokio::process::Command::new(format!("{root}/node_modules/.bin/esbuild"))
        .arg(format!("{root}/tests/fixtures/sentry/{script}"))
        .args(["--bundle", "--format=iife", "--log-level=error", "--define:process.env.NODE_ENV=\"production\""])
        .args(["--define:__VUE_OPTIONS_API__=true", "--define:__VUE_PROD_DEVTOOLS__=false"])
        .args(["--define:__VUE_PROD_HYDRATION_MISMATCH_DETAILS__=false"])
        .output()
        .await
        .expect("run esbuild (bash scripts/install-test-deps.sh)");
    assert!(output.status.success(), "esbuild: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("a UTF-8 bundle")
}

/// Opens `script`'s bundle on a page of another origin than `app`, with the DSN of project 1, and
/// waits for the page's `Sentry.flush`; the browser, for its console.
async fn run_sentry_page(app: &TestApp, script: &str) -> Browser {
    let site = Site::start().await;
    let dsn = format!("http://{SENTRY_KEY}@{}/1", app.addr);
    let bundle = sentry_bundle(script).await;
    site.page(
        "/shop.html",
        format!(
            "<!doctype html><title>shop</title><div id=app></div>\
             <script>window.SENTRY_DSN = {dsn:?};</script><script>{bundle}</script>"
        ),
    );
    let browser = Browser::headless().await;
    browser.goto(&site.url("/shop.html")).await;
    let started = std::time::Instant::now();
    let done = loop {
        let done = browser.client.execute("return window.pageDone || null;", vec![]).await.expect("script");
        if !done.is_null() || started.elapsed() > std::time::Duration::from_secs(15) {
            break done;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(done, json!("flushed"), "the SDK sent everything");
    browser
}

/// The console's complaints about CORS: none when the answers carry the right headers.
async fn cors_complaints(browser: &Browser) -> Vec<Value> {
    let log = browser.console_log().await;
    log.into_iter()
        .filter(|entry| entry["message"].as_str().is_some_and(|m| m.to_ascii_lowercase().contains("cors")))
        .collect()
}

#[tokio::test]
async fn the_browser_sdk_sends_from_another_origin_unchanged() {
    let app = spawn(&[]).await;
    let browser = run_sentry_page(&app, "browser.js").await;

    let staging = events(&app, "staging").await;
    let error = by_message(&staging, "TypeError: checkout failed for order 17");
    assert_eq!(
        (&error["type"], &error["level"], &error["release"]),
        (&json!("TypeError"), &json!("error"), &json!("web@3.1.0"))
    );
    let stack = error["stack"].as_str().expect("stack");
    assert!(stack.starts_with("at checkout ("), "{stack}");
    assert!(error["url"].as_str().is_some_and(|url| url.ends_with("/shop.html")), "{error}");
    assert!(error["extra"]["sdk"]["name"].as_str().is_some_and(|name| name.starts_with("sentry.javascript")));
    let message = by_message(&staging, "hello from the browser");
    assert_eq!((&message["type"], &message["level"]), (&json!("message"), &json!("warn")));
    let log = by_message(&staging, "a browser log line");
    assert_eq!((&log["level"], &log["extra"]["cart"]), (&json!("info"), &json!(3)));
    let complaints = cors_complaints(&browser).await;
    assert!(complaints.is_empty(), "{complaints:#?}");
}

#[tokio::test]
async fn the_vue_sdk_reports_a_components_error_from_another_origin_unchanged() {
    let app = spawn(&[]).await;
    let browser = run_sentry_page(&app, "vue.js").await;

    let staging = events(&app, "staging").await;
    let error = by_message(&staging, "RangeError: cannot submit order 23");
    assert_eq!(
        (&error["type"], &error["level"], &error["release"]),
        (&json!("RangeError"), &json!("error"), &json!("vue-shop@2.0.0"))
    );
    let stack = error["stack"].as_str().expect("stack");
    // Chromium names a method called through the component's proxy `Proxy.submit`.
    let first = stack.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("at Proxy.submit (") && first.contains("/shop.html:"),
        "the throwing method first: {stack}"
    );
    assert!(stack.lines().nth(1).is_some_and(|line| line.starts_with("at Proxy.mounted (")), "{stack}");
    assert!(error["extra"]["sdk"]["name"].as_str().is_some_and(|name| name == "sentry.javascript.vue"), "{error}");
    // What the Vue integration adds: the component and its props, and the hook it failed in.
    let vue = &error["extra"]["contexts"]["vue"];
    assert_eq!(vue["componentName"], "<OrderButton>", "{error}");
    assert_eq!(vue["propsData"]["order"], 23, "{error}");
    // Vue's production build names the hook by its error code's page (`.../#runtime-m`, mounted).
    assert!(vue["lifecycleHook"].as_str().is_some_and(|hook| hook.ends_with("#runtime-m")), "{error}");
    let log = by_message(&staging, "a log line from the vue app");
    assert_eq!((&log["level"], &log["extra"]["route"]), (&json!("warn"), &json!("/cart")));
    let complaints = cors_complaints(&browser).await;
    assert!(complaints.is_empty(), "{complaints:#?}");
}

const SENTRY_PYTHON_BURST: &str = r#"
import json, os, sentry_sdk

sentry_sdk.init(dsn=os.environ["DSN"], environment="staging", send_client_reports=False)
transport = sentry_sdk.get_client().transport
answers = []
send = transport._send_request
def counting(*args, **kwargs):
    answers.append(1)
    return send(*args, **kwargs)
transport._send_request = counting
for i in range(8):
    sentry_sdk.capture_message(f"burst {i} " + "x" * 2000)
    sentry_sdk.flush(timeout=10)
print(json.dumps({"requests": len(answers), "disabled": [str(k) for k in transport._disabled_until]}))
"#;

#[tokio::test]
async fn the_python_sdk_backs_off_when_its_key_is_rate_limited() {
    // About three of these messages fit the burst; the byte rate refills almost nothing.
    let app = spawn(&[
        ("LOGBOARD__LIMITS__KEY_BYTES_PER_SEC", "1"),
        ("LOGBOARD__LIMITS__KEY_BURST_BYTES", "8000"),
        ("LOGBOARD__LIMITS__BODY_BYTES", "8000"),
    ])
    .await;
    let dsn = format!("http://{SENTRY_KEY}@{}/1", app.addr);
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let output = tokio::process::Command::new(python)
        .args(["-c", SENTRY_PYTHON_BURST])
        .env("DSN", &dsn)
        .output()
        .await
        .expect("python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("the script's report");
    let stored = events(&app, "staging").await.len() as u64;
    assert!((1..8).contains(&stored), "some fit the burst, not all: {stored}");
    assert_eq!(report["disabled"], json!(["None"]), "every category is held back: {report}");
    assert_eq!(report["requests"], json!(stored + 1), "one 429, then nothing until Retry-After: {report}");
}
