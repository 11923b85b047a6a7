//! The HTTP contract of api.md, through a real listener on the embedded store.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::{ADMIN_PASSWORD, INGEST_KEY, spawn_app};
use serde_json::{Value, json};

fn messages(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .expect("events array")
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

/// POSTs `body` to the ingest endpoint with the demo key and the given headers.
async fn post_with(app: &common::TestApp, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(app.url("/api/v1/events")).header("X-Logboard-Key", INGEST_KEY);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

async fn post_raw(app: &common::TestApp, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    post_with(app, &[("Content-Type", content_type)], body).await
}

#[tokio::test]
async fn every_body_shape_is_accepted_and_stored() {
    let app = spawn_app().await;
    let (status, answer) = app
        .ingest(&json!({"env": "staging", "events": [{"message": "batch one"}, {"message": "batch two", "env": "production"}]}))
        .await;
    assert_eq!((status, answer), (202, json!({"accepted": 2, "rejected": []})));
    assert_eq!(app.ingest(&json!([{"message": "bare array", "env": "staging"}])).await.0, 202);
    assert_eq!(app.ingest(&json!({"message": "single", "env": "staging", "level": "WARNING"})).await.0, 202);
    let (status, _) =
        post_raw(&app, "text/plain;charset=UTF-8", r#"{"env":"staging","events":[{"message":"beacon"}]}"#).await;
    assert_eq!(status, 202);
    let (status, answer) = post_raw(
        &app,
        "application/x-ndjson",
        "{\"message\":\"nd one\",\"env\":\"staging\"}\n{\"message\":\"nd two\",\"env\":\"staging\"}\n",
    )
    .await;
    assert_eq!((status, answer["accepted"].as_u64()), (202, Some(2)));

    let (status, page) = app.read("/api/v1/events?project=demo&env=staging").await;
    assert_eq!(status, 200);
    let mut got = messages(&page);
    got.sort();
    assert_eq!(got, ["bare array", "batch one", "beacon", "nd one", "nd two", "single"]);
    let single =
        page["events"].as_array().expect("events").iter().find(|e| e["message"] == "single").expect("single").clone();
    assert_eq!(single["level"], "warn");
    assert_eq!(single["project"], "demo");
    assert_eq!(single["env"], "staging");
    assert_eq!(single["id"].as_str().map(str::len), Some(26), "a ULID");
    assert!(single["received_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    let (_, production) = app.read("/api/v1/events?project=demo&env=production").await;
    assert_eq!(messages(&production), ["batch two"], "an event's own env wins over the batch's");
}

#[tokio::test]
async fn the_key_can_come_from_a_header_a_bearer_token_or_the_query() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let body = json!({"message": "m", "env": "dev"});
    let by_bearer =
        client.post(app.url("/api/v1/events")).bearer_auth(INGEST_KEY).json(&body).send().await.expect("bearer");
    assert_eq!(by_bearer.status(), 202);
    let by_query =
        client.post(app.url(&format!("/api/v1/events?key={INGEST_KEY}"))).json(&body).send().await.expect("query");
    assert_eq!(by_query.status(), 202);

    let none = client.post(app.url("/api/v1/events")).json(&body).send().await.expect("no key");
    assert_eq!(none.status(), 401);
    assert!(
        none.json::<Value>().await.expect("json")["error"]
            .as_str()
            .is_some_and(|e| e.contains("ingest key is required"))
    );
    let wrong = client.post(app.url("/api/v1/events?key=nope")).json(&body).send().await.expect("bad key");
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.expect("json"), json!({"error": "unknown ingest key"}));
}

#[tokio::test]
async fn invalid_events_are_listed_and_the_good_ones_of_the_batch_are_kept() {
    let app = spawn_app().await;
    let old = time::OffsetDateTime::now_utc() - time::Duration::days(20);
    let (status, answer) = app
        .ingest(&json!({"env": "dev", "events": [
            {"message": "good one"},
            {"message": ""},
            {"level": "error"},
            {"message": 42},
            {"message": "wrong env", "env": "qa"},
            {"message": "ancient", "timestamp": old.unix_timestamp() * 1000},
            {"message": "bad time", "timestamp": "last tuesday"},
            {"message": "good two", "level": "critical"},
        ]}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(answer["accepted"], 2);
    let reasons: Vec<(u64, String)> = answer["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| (r["index"].as_u64().unwrap_or(99), r["reason"].as_str().unwrap_or("").to_string()))
        .collect();
    let indices: Vec<u64> = reasons.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [1, 2, 3, 4, 5, 6]);
    assert_eq!(reasons[0].1, "message is empty");
    assert_eq!(reasons[1].1, "message is missing");
    assert_eq!(reasons[2].1, "message must be a string, not a number");
    assert!(reasons[3].1.starts_with("unknown env `qa`"));
    assert!(reasons[4].1.contains("older than 14 days"));
    assert!(reasons[5].1.contains("not RFC 3339"));

    let (_, page) = app.read("/api/v1/events?project=demo&env=dev").await;
    let mut got = messages(&page);
    got.sort();
    assert_eq!(got, ["good one", "good two"]);
}

#[tokio::test]
async fn malformed_bodies_get_a_precise_4xx_and_never_a_500() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"{\"message\": ".to_vec(),
            400,
            "invalid JSON: EOF while parsing a value at line 1 column 12",
        ),
        ("application/json", b"".to_vec(), 400, "the body holds no events"),
        ("application/json", b"[]".to_vec(), 400, "the body holds no events"),
        ("application/json", b"\"just a string\"".to_vec(), 400, "expected an event object"),
        ("application/json", b"{\"message\":\"\xc3\x28\"}".to_vec(), 400, "the body is not valid UTF-8 (at byte 12)"),
        ("application/x-ndjson", b"{\"message\":\"ok\"}\nnot json\n".to_vec(), 400, "invalid JSON on line 2"),
        (
            "application/x-www-form-urlencoded",
            b"message=hi".to_vec(),
            415,
            "Content-Type `application/x-www-form-urlencoded` is not supported",
        ),
        (
            "application/json",
            format!("[{}]", vec![r#"{"message":"x"}"#; 1001].join(",")).into_bytes(),
            413,
            "at most 1000 are accepted",
        ),
        ("application/json", vec![b' '; 1_048_577], 413, "over the limit of 1048576 bytes"),
    ];
    for (content_type, body, want_status, want_error) in cases {
        let (status, answer) = post_raw(&app, content_type, body).await;
        let error = answer["error"].as_str().unwrap_or("");
        assert_eq!(status, want_status, "{content_type}: {answer}");
        assert!(error.starts_with(want_error) || error.contains(want_error), "{want_error:?} not in {error:?}");
    }
    let gzip = reqwest::Client::new()
        .post(app.url("/api/v1/events"))
        .header("X-Logboard-Key", INGEST_KEY)
        .header("Content-Encoding", "br")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(gzip.status(), 415);
}

#[tokio::test]
async fn browsers_from_other_origins_are_refused_per_project() {
    let app = common::spawn_app_with(&[]).await;
    // The shipped demo project allows every origin.
    let allowed = reqwest::Client::new()
        .post(app.url("/api/v1/events?key=demo-ingest-key"))
        .header("Origin", "https://shop.example")
        .header("Content-Type", "text/plain")
        .body(r#"{"message":"from a browser","env":"dev"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(allowed.status(), 202);
    assert_eq!(allowed.headers().get("access-control-allow-origin").map(|v| v.as_bytes()), Some(&b"*"[..]));

    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/events"))
        .header("Origin", "https://shop.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type,x-logboard-key")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers().get("access-control-max-age").map(|v| v.as_bytes()), Some(&b"3600"[..]));

    let read = reqwest::Client::new()
        .get(app.url("/api/v1/events?project=demo&env=dev"))
        .header("Origin", "https://shop.example")
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .send()
        .await
        .expect("read");
    assert_eq!(read.status(), 200);
    assert!(read.headers().get("access-control-allow-origin").is_none(), "no CORS on the read API");

    let data_dir = tempfile::tempdir().expect("dir");
    let mut config = common::test_config(data_dir.path(), &[]);
    config.projects[0].allowed_origins = vec!["https://app.example".into()];
    let locked = common::spawn_app_from(config, data_dir).await;
    let refused = reqwest::Client::new()
        .post(locked.url("/api/v1/events?key=demo-ingest-key"))
        .header("Origin", "https://evil.example")
        .json(&json!({"message": "m", "env": "dev"}))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<Value>().await.expect("json"),
        json!({"error": "origin `https://evil.example` is not allowed to send to project `demo`"})
    );
}

#[tokio::test]
async fn the_read_api_needs_a_login_and_answers_401_otherwise() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    for path in ["/api/v1/projects", "/api/v1/groups?project=demo&env=dev", "/api/v1/events?project=demo&env=dev"] {
        let response = client.get(app.url(path)).send().await.expect("get");
        assert_eq!(response.status(), 401, "{path}");
        let with_key = client
            .get(app.url(path))
            .header("X-Logboard-Key", INGEST_KEY)
            .bearer_auth(INGEST_KEY)
            .send()
            .await
            .expect("get");
        assert_eq!(with_key.status(), 401, "an ingest key never reads: {path}");
        let wrong = client.get(app.url(path)).basic_auth("admin", Some("wrong")).send().await.expect("get");
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let (status, projects) = app.read("/api/v1/projects").await;
    assert_eq!(status, 200);
    // The shipped demo project has a sentry_id: its DSN is built from `server.public_url`, here
    // the listen address of the config.
    assert_eq!(
        projects,
        json!({"projects": [{"name": "demo", "envs": ["production", "staging", "dev"],
                             "dsn": "http://demo_sentry_key@127.0.0.1:0/1"}]})
    );
    let (_, groups) = app.read("/api/v1/groups?project=demo&env=dev").await;
    assert_eq!(groups, json!({"groups": [{"name": "/logboard/demo/dev", "kind": "ingest"}]}));
}

/// The read-API token of [`spawn_app_with_api_token`].
const API_TOKEN: &str = "read-token-0123456789";

/// An app that takes [`API_TOKEN`] on the read API, its config changed further by `adjust`.
async fn spawn_app_with_api_token(adjust: impl FnOnce(&mut logboard::config::Config)) -> common::TestApp {
    let data_dir = tempfile::tempdir().expect("dir");
    let mut config = common::test_config(data_dir.path(), &[]);
    config.auth.api_tokens = vec![logboard::config::Secret::new(API_TOKEN)];
    adjust(&mut config);
    common::spawn_app_from(config, data_dir).await
}

#[tokio::test]
async fn api_tokens_and_sessions_open_the_read_api() {
    let app = spawn_app_with_api_token(|_| {}).await;
    let by_token =
        reqwest::Client::new().get(app.url("/api/v1/projects")).bearer_auth(API_TOKEN).send().await.expect("get");
    assert_eq!(by_token.status(), 200);
    let session = app.logged_in_client().await;
    assert_eq!(session.get(app.url("/api/v1/projects")).send().await.expect("get").status(), 200);
}

#[tokio::test]
async fn events_are_read_newest_first_with_filters_paging_and_by_id() {
    let app = spawn_app().await;
    let now = time::OffsetDateTime::now_utc();
    let events: Vec<Value> = (0..7)
        .map(|i| {
            json!({
                "message": format!("Checkout step {i}"),
                "level": if i % 3 == 0 { "error" } else { "info" },
                "timestamp": logboard::event::unix_ms(now - time::Duration::minutes(10 - i)),
            })
        })
        .collect();
    assert_eq!(app.ingest(&json!({"env": "production", "events": events})).await.0, 202);

    let (_, all) = app.read("/api/v1/events?project=demo&env=production").await;
    assert_eq!(messages(&all).first().map(String::as_str), Some("Checkout step 6"));
    assert_eq!(all["next_cursor"], Value::Null);

    let (_, errors) = app.read("/api/v1/events?project=demo&env=production&level=error,fatal").await;
    assert_eq!(messages(&errors), ["Checkout step 6", "Checkout step 3", "Checkout step 0"]);

    let (_, searched) = app.read("/api/v1/events?project=demo&env=production&q=STEP%205").await;
    assert_eq!(messages(&searched), ["Checkout step 5"]);

    let mut seen = Vec::new();
    let mut path = "/api/v1/events?project=demo&env=production&limit=3".to_string();
    loop {
        let (status, page) = app.read(&path).await;
        assert_eq!(status, 200);
        seen.extend(messages(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?project=demo&env=production&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, messages(&all), "pages visit every event once, newest first");

    let id = all["events"][0]["id"].as_str().expect("id");
    let (status, one) = app.read(&format!("/api/v1/events/{id}?project=demo&env=production")).await;
    assert_eq!((status, one["message"].as_str()), (200, Some("Checkout step 6")));
    let (status, _) = app.read(&format!("/api/v1/events/{id}?project=demo&env=staging")).await;
    assert_eq!(status, 404);
    let (status, answer) = app.read("/api/v1/events?project=demo&env=production&from=yesterday").await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().is_some_and(|e| e.starts_with("`from`: `yesterday` is not a time")), "{answer}");
    let (status, _) = app.read("/api/v1/events?project=nope&env=production").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_search_language_and_relative_times_select_events_and_a_bad_query_says_where() {
    let app = spawn_app().await;
    let now = time::OffsetDateTime::now_utc();
    let events: Vec<Value> = (0..6)
        .map(|i| {
            json!({
                "message": format!("payment {} for order {i}", if i % 2 == 0 { "failed" } else { "done" }),
                "level": if i % 2 == 0 { "error" } else { "info" },
                "http": {"status": 500 + i},
                "extra": {"shop": {"region": if i < 3 { "kr" } else { "jp" }}},
                "timestamp": logboard::event::unix_ms(now - time::Duration::hours(i)),
            })
        })
        .collect();
    assert_eq!(app.ingest(&json!({"env": "production", "events": events})).await.0, 202);
    let search = |q: &str, extra: &str| {
        let q = logboard::links::urlencode(q);
        app.read_owned(format!("/api/v1/events?project=demo&env=production&q={q}{extra}"))
    };
    let (_, page) = search("level:>=error extra.shop.region:kr", "").await;
    assert_eq!(messages(&page), ["payment failed for order 0", "payment failed for order 2"]);
    let (_, page) = search("http.status:>=503 -\"order 4\"", "").await;
    assert_eq!(messages(&page), ["payment done for order 3", "payment done for order 5"]);
    let (_, page) = search("pay*done (order OR nothing)", "&from=now-150m").await;
    assert_eq!(messages(&page), ["payment done for order 1"], "relative time: the last 2.5 hours");
    let (status, answer) = search("level:error (unclosed", "").await;
    assert_eq!(status, 400);
    assert_eq!(answer["position"], 12, "{answer}");
    let (status, answer) = search("colour:red", "").await;
    assert_eq!((status, answer["position"].as_u64()), (400, Some(0)), "{answer}");
}

#[tokio::test]
async fn pages_need_a_login_and_show_the_logged_events() {
    let app = spawn_app().await;
    let anonymous = app.client();
    for path in ["/", "/logs?project=demo&env=dev"] {
        let response = anonymous.get(app.url(path)).send().await.expect("get");
        assert_eq!(response.status(), 303, "{path}");
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(location.starts_with("/login?next="), "{location}");
    }
    let failed = anonymous
        .post(app.url("/login"))
        .form(&[("username", "admin"), ("password", "nope")])
        .send()
        .await
        .expect("login");
    assert_eq!(failed.status(), 401);
    assert!(failed.text().await.expect("html").contains("Invalid username or password."));
    let unknown = anonymous
        .post(app.url("/login"))
        .form(&[("username", "mallory"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("login");
    assert_eq!(unknown.status(), 401, "unknown users get the same answer");

    app.ingest(&json!({"env": "dev", "events": [{"message": "<script>alert(1)</script> boom", "level": "error", "stack": "at x.js:1:1"}]})).await;
    let client = app.logged_in_client().await;
    let page = client.get(app.url("/logs?project=demo&env=dev")).send().await.expect("logs");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers().get("x-robots-tag").map(|v| v.as_bytes()), Some(&b"noindex, nofollow"[..]));
    let html = page.text().await.expect("html");
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62; boom"), "event text is escaped");
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains(r#"<meta name="robots" content="noindex, nofollow">"#));

    let home = client.get(app.url("/")).send().await.expect("home").text().await.expect("html");
    assert!(home.contains(r#"data-project="demo" data-env="dev""#));

    let logout = client.post(app.url("/logout")).send().await.expect("logout");
    assert_eq!(logout.status(), 303);
    assert_eq!(client.get(app.url("/")).send().await.expect("get").status(), 303, "logged out");
}

#[tokio::test]
async fn health_robots_and_unknown_paths_answer_without_login() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    assert_eq!(client.get(app.url("/healthz")).send().await.expect("healthz").status(), 200);
    let ready = client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
    let robots = client.get(app.url("/robots.txt")).send().await.expect("robots");
    assert_eq!(robots.headers().get("x-robots-tag").map(|v| v.as_bytes()), Some(&b"noindex, nofollow"[..]));
    assert_eq!(robots.text().await.expect("text"), "User-agent: *\nDisallow: /\n");
    let css = client.get(app.url("/static/style.css")).send().await.expect("css");
    assert_eq!(css.status(), 200);
    assert_eq!(client.get(app.url("/nowhere")).send().await.expect("404").status(), 404);
}

fn compress(encoding: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match encoding {
        "gzip" => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).expect("gzip");
            encoder.finish().expect("gzip")
        }
        _ => {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).expect("deflate");
            encoder.finish().expect("deflate")
        }
    }
}

async fn post_encoded(app: &common::TestApp, encoding: &str, body: Vec<u8>) -> (u16, Value) {
    post_with(app, &[("Content-Type", "application/json"), ("Content-Encoding", encoding)], body).await
}

#[tokio::test]
async fn gzip_and_deflate_bodies_are_accepted_and_bombs_refused() {
    let app = spawn_app().await;
    let body = br#"{"env":"dev","events":[{"message":"zipped"},{"message":"zipped too"}]}"#;
    assert_eq!(post_encoded(&app, "gzip", compress("gzip", body)).await, (202, json!({"accepted": 2, "rejected": []})));
    assert_eq!(post_encoded(&app, "deflate", compress("deflate", body)).await.0, 202);

    // 20 MB of spaces compress to ~20 KB: under the body limit on the wire, far over it inflated.
    let mut bomb = b"[".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 20_000_000));
    let (status, answer) = post_encoded(&app, "gzip", compress("gzip", &bomb)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("the decompressed body is over the limit of 1048576 bytes"))
    );

    let (status, answer) = post_encoded(&app, "gzip", b"not gzip at all".to_vec()).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().is_some_and(|e| e.starts_with("the body could not be decompressed")));
    let (status, answer) = post_encoded(&app, "br", body.to_vec()).await;
    assert_eq!(status, 415);
    assert_eq!(answer["error"], "Content-Encoding `br` is not supported; send gzip, deflate or no encoding");

    let (_, page) = app.read("/api/v1/events?project=demo&env=dev").await;
    assert_eq!(messages(&page).len(), 4, "nothing of the refused bodies was stored");
}

#[tokio::test]
async fn a_key_over_its_byte_rate_and_an_address_over_its_request_rate_get_429_with_retry_after() {
    let app = common::spawn_app_with(&[
        ("LOGBOARD__LIMITS__KEY_BYTES_PER_SEC", "1000"),
        ("LOGBOARD__LIMITS__KEY_BURST_BYTES", "3000"),
        ("LOGBOARD__LIMITS__BODY_BYTES", "3000"),
    ])
    .await;
    let big = json!({"env": "dev", "message": "x".repeat(1400)});
    assert_eq!(app.ingest(&big).await.0, 202);
    assert_eq!(app.ingest(&big).await.0, 202);
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/events"))
        .header("X-Logboard-Key", INGEST_KEY)
        .json(&big)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    assert_eq!(
        response.json::<Value>().await.expect("json")["error"],
        "this ingest key is over its byte rate; slow down"
    );

    let per_ip = common::spawn_app_with(&[("LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC", "3")]).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(per_ip.ingest(&json!({"env": "dev", "message": "m"})).await.0);
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
}

#[tokio::test]
async fn the_byte_rate_is_charged_what_a_gzip_body_inflates_to() {
    let app = common::spawn_app_with(&[
        ("LOGBOARD__LIMITS__KEY_BYTES_PER_SEC", "1000"),
        ("LOGBOARD__LIMITS__KEY_BURST_BYTES", "1048576"),
    ])
    .await;
    // ~600 KB of events that gzip to a few KB: the second one is over the 1 MiB burst.
    let events: Vec<Value> = (0..100).map(|i| json!({"message": format!("{i} {}", "x".repeat(6000))})).collect();
    let body = json!({"env": "dev", "events": events}).to_string();
    let zipped = compress("gzip", body.as_bytes());
    assert!(zipped.len() < 20_000 && body.len() > 600_000, "{} -> {}", body.len(), zipped.len());
    let (first, answer) = post_encoded(&app, "gzip", zipped.clone()).await;
    assert_eq!((first, answer["accepted"].as_u64()), (202, Some(100)));
    let (second, answer) = post_encoded(&app, "gzip", zipped).await;
    assert_eq!((second, answer["error"].as_str()), (429, Some("this ingest key is over its byte rate; slow down")));
    let (_, page) = app.read("/api/v1/events?project=demo&env=dev&limit=1000").await;
    assert_eq!(messages(&page).len(), 100, "only the first body was stored");
}

#[tokio::test]
async fn the_bearer_scheme_of_an_ingest_key_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = reqwest::Client::new()
            .post(app.url("/api/v1/events"))
            .header("Authorization", format!("{scheme} {INGEST_KEY}"))
            .json(&json!({"env": "dev", "message": scheme}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 202, "{scheme}");
    }
}

#[tokio::test]
async fn pii_is_scrubbed_before_it_is_stored() {
    let app = spawn_app().await;
    let secrets = [
        "4111 1111 1111 1111",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl",
        "hunter2-password",
        "jane.doe@example.com",
        "MIIEowIBAAKCAQEAsecretkeymaterial",
        "s3cr3t-db-pass",
    ];
    let (status, answer) = app
        .ingest(&json!({"env": "dev", "events": [{
            "message": "payment by jane.doe@example.com with card 4111 1111 1111 1111 failed",
            "stack": "Error: 401 for Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl\n at pay (x.js:1:1)",
            "url": "postgres://app:s3cr3t-db-pass@db.internal/shop",
            "user": {"id": "42", "email": "jane.doe@example.com"},
            "extra": {"password": "hunter2-password", "form": {"card_number_note": "4111-1111-1111-1111"},
                      "pem": "-----BEGIN PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretkeymaterial\n-----END PRIVATE KEY-----"},
            "level": "error"
        }]}))
        .await;
    assert_eq!((status, answer["accepted"].as_u64()), (202, Some(1)));

    let (_, page) = app.read("/api/v1/events?project=demo&env=dev").await;
    let stored = page["events"][0].to_string();
    for secret in secrets {
        assert!(!stored.contains(secret), "{secret} was stored: {stored}");
    }
    let event = &page["events"][0];
    assert_eq!(event["message"], "payment by [Filtered] with card [Filtered] failed");
    assert_eq!(event["url"], "postgres://[Filtered]@db.internal/shop");
    assert_eq!(event["extra"]["password"], "[Filtered]");
    assert_eq!(event["user"], json!({"id": "42", "email": "[Filtered]"}));
    // The raw database file holds none of them either.
    let raw = std::fs::read(app.data_dir.path().join("events.db")).expect("db file");
    let wal = std::fs::read(app.data_dir.path().join("events.db-wal")).unwrap_or_default();
    for secret in secrets {
        let needle = secret.as_bytes();
        let found = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!found(&raw) && !found(&wal), "{secret} is on disk");
    }
}

#[tokio::test]
async fn logins_are_throttled_after_five_failures_per_user_and_per_address() {
    let app = spawn_app().await;
    let client = app.client();
    let attempt = |user: &'static str, password: &'static str| {
        let (client, url) = (client.clone(), app.url("/login"));
        async move {
            let response =
                client.post(url).form(&[("username", user), ("password", password)]).send().await.expect("post");
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_string());
            (response.status().as_u16(), retry_after, response.text().await.unwrap_or_default())
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("admin", "guess").await.0, 401);
    }
    let (status, retry_after, html) = attempt("admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 429, "even the right password waits once the user is throttled");
    assert!(retry_after.and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s > 800 && s <= 900));
    assert!(html.contains("Too many failed attempts. Try again in 15 minutes."));
    // The same address trying another name is throttled too.
    assert_eq!(attempt("someone-else", "guess").await.0, 429);
    // Basic auth on the API shares the throttle.
    let api = reqwest::Client::new()
        .get(app.url("/api/v1/projects"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("get");
    assert_eq!(api.status(), 429);
}

/// Wrong guesses sent at once in the burst tests: far more than the five failures allowed.
const BURST: usize = 60;

/// The status and `Retry-After` seconds of an answer.
async fn status_and_retry_after(request: reqwest::RequestBuilder) -> (u16, Option<u64>) {
    let response = request.send().await.expect("request");
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
    (response.status().as_u16(), retry_after)
}

/// Sends [`BURST`] wrong guesses at once and the right credentials as soon as the first guess is
/// refused with 429 (after all of them when none is); returns the guesses' answers and the right one's.
async fn burst_then_right(
    wrong: impl Fn() -> reqwest::RequestBuilder,
    right: reqwest::RequestBuilder,
) -> (Vec<(u16, Option<u64>)>, (u16, Option<u64>)) {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut pending: FuturesUnordered<_> = (0..BURST).map(|_| status_and_retry_after(wrong())).collect();
    let mut right = Some(right);
    let mut right_answer = None;
    let mut answers = Vec::new();
    while let Some(answer) = pending.next().await {
        if answer.0 == 429 {
            if let Some(request) = right.take() {
                right_answer = Some(tokio::spawn(status_and_retry_after(request)));
            }
        }
        answers.push(answer);
    }
    let right_answer = match (right, right_answer) {
        (Some(request), _) => status_and_retry_after(request).await,
        (None, Some(task)) => task.await.expect("right request"),
        (None, None) => unreachable!("the right request is either still here or sent"),
    };
    (answers, right_answer)
}

/// Asserts at most five guesses were checked (401) and every other one got 429 with a
/// `Retry-After` within the throttle window.
fn assert_at_most_five_checked(what: &str, answers: &[(u16, Option<u64>)]) {
    let checked = answers.iter().filter(|(status, _)| *status == 401).count();
    eprintln!("{what}: {checked} of {BURST} parallel wrong guesses were checked");
    assert!(checked <= 5, "{what}: {checked} of {BURST} parallel guesses were checked: {answers:?}");
    for (status, retry_after) in answers.iter().filter(|(status, _)| *status != 401) {
        assert_eq!(*status, 429, "{what}: {answers:?}");
        assert!(retry_after.is_some_and(|s| (1..=900).contains(&s)), "{what}: {answers:?}");
    }
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_from_one_address_gets_five_checks_and_the_right_one_waits() {
    let app = spawn_app().await;
    let client = app.client();
    let login = |password: &str| client.post(app.url("/login")).form(&[("username", "admin"), ("password", password)]);
    let (answers, right) = burst_then_right(|| login("guess"), login(ADMIN_PASSWORD)).await;
    assert_at_most_five_checked("login form", &answers);
    assert_eq!(right.0, 429, "the right password sent after the limit was reached does not log in");
}

#[tokio::test]
async fn a_burst_of_wrong_basic_credentials_gets_five_checks_and_the_right_ones_wait() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let read = |password: &str| client.get(app.url("/api/v1/projects")).basic_auth("admin", Some(password));
    let (answers, right) = burst_then_right(|| read("guess"), read(ADMIN_PASSWORD)).await;
    assert_at_most_five_checked("basic auth", &answers);
    assert_eq!(right.0, 429, "the right password sent after the limit was reached does not read");
}

#[tokio::test]
async fn wrong_api_tokens_are_throttled_per_address_and_the_right_token_elsewhere_still_reads() {
    // The test's requests all come from 127.0.0.1; as a trusted proxy it names the client.
    let app = spawn_app_with_api_token(|config| config.server.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let client = reqwest::Client::new();
    let read = |from: &str, token: &str| {
        status_and_retry_after(
            client.get(app.url("/api/v1/projects")).header("X-Forwarded-For", from).bearer_auth(token),
        )
    };
    let guesser = "203.0.113.7";
    for i in 0..5 {
        assert_eq!(read(guesser, &format!("guess-{i}-0123456789")).await.0, 401);
    }
    let (status, retry_after) = read(guesser, "guess-5-0123456789").await;
    assert_eq!(status, 429, "the sixth wrong token from one address waits");
    assert!(retry_after.is_some_and(|s| (1..=900).contains(&s)), "{retry_after:?}");
    assert_eq!(read(guesser, API_TOKEN).await.0, 429, "no oracle: the right token waits too at that address");
    assert_eq!(read("198.51.100.3", API_TOKEN).await.0, 200, "another address is not slowed by the guesser");
}

#[tokio::test]
async fn authorization_schemes_are_case_insensitive_and_401s_name_them() {
    let app = spawn_app_with_api_token(|_| {}).await;
    let client = reqwest::Client::new();
    let read = |authorization: String| client.get(app.url("/api/v1/projects")).header("Authorization", authorization);
    let basic = base64_encode(&format!("admin:{ADMIN_PASSWORD}"));
    for authorization in [format!("bearer {API_TOKEN}"), format!("BEARER {API_TOKEN}"), format!("basic {basic}")] {
        assert_eq!(read(authorization.clone()).send().await.expect("get").status(), 200, "{authorization}");
    }
    let refused = read("bearer wrong-token-0123456789".to_string()).send().await.expect("get");
    assert_eq!(refused.status(), 401);
    let challenges: Vec<&str> =
        refused.headers().get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(challenges.iter().any(|c| c.starts_with("Bearer realm=\"logboard\"")), "{challenges:?}");
    assert!(challenges.contains(&"Basic realm=\"logboard\", charset=\"UTF-8\""), "{challenges:?}");
    let anonymous = client.get(app.url("/api/v1/events?project=demo&env=dev")).send().await.expect("get");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
}

/// Standard base64 (RFC 4648), for hand-made `Authorization` headers.
fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn logged_in_answers_are_not_stored_by_caches_but_static_files_are() {
    let app = spawn_app().await;
    let client = app.logged_in_client().await;
    let cache_control = |response: &reqwest::Response| {
        response.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    };
    for path in ["/", "/logs?project=demo&env=dev", "/login", "/api/v1/events?project=demo&env=dev", "/api/v1/projects"]
    {
        let response = client.get(app.url(path)).send().await.expect("get");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(cache_control(&response), "no-store", "{path}");
    }
    let by_basic = reqwest::Client::new()
        .get(app.url("/api/v1/events?project=demo&env=dev"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("get");
    assert_eq!(cache_control(&by_basic), "no-store");
    let script = client.get(app.url("/static/logboard.js")).send().await.expect("get");
    assert_eq!(script.status(), 200);
    assert!(cache_control(&script).starts_with("public, max-age="), "{}", cache_control(&script));
}

#[tokio::test]
async fn sessions_use_locked_down_cookies_and_cross_site_posts_are_refused() {
    let app = spawn_app().await;
    let client = app.client();
    let login = client
        .post(app.url("/login"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD), ("next", "//evil.example/")])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 303);
    assert_eq!(login.headers()["location"], "/", "no open redirect after login");
    let cookie = login.headers()["set-cookie"].to_str().expect("ascii").to_string();
    assert!(cookie.starts_with("logboard_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http on loopback");
    // X-Forwarded-Proto counts only from a trusted proxy, as X-Forwarded-For does.
    let login_saying_https = |app: &common::TestApp| {
        app.client()
            .post(app.url("/login"))
            .header("X-Forwarded-Proto", "https")
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
            .send()
    };
    let spoofed = login_saying_https(&app).await.expect("login");
    assert!(!spoofed.headers()["set-cookie"].to_str().expect("ascii").contains("Secure"), "an untrusted peer");
    let behind_proxy = common::spawn_app_with(&[("LOGBOARD__SERVER__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]")]).await;
    let behind_tls = login_saying_https(&behind_proxy).await.expect("login");
    assert!(behind_tls.headers()["set-cookie"].to_str().expect("ascii").contains("; Secure"));

    // A form on another site posting to logout (or login) is refused.
    let cross_site = client
        .post(app.url("/logout"))
        .header("Origin", "https://evil.example")
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .expect("post");
    assert_eq!(cross_site.status(), 403);
    assert_eq!(cross_site.json::<Value>().await.expect("json"), json!({"error": "cross-site request refused"}));
    assert_eq!(client.get(app.url("/")).send().await.expect("get").status(), 200, "still logged in");
    let same_site = client.post(app.url("/logout")).header("Origin", app.base.clone()).send().await.expect("post");
    assert_eq!(same_site.status(), 303);
}

#[tokio::test]
async fn a_login_target_a_browser_would_read_as_another_host_or_that_no_header_can_carry_goes_home() {
    let app = spawn_app().await;
    for next in ["/\\evil.example/", "/\t/evil.example", "\\\\evil.example", "/\r\n/evil.example", "/로그", "/a\u{7f}"]
    {
        let login = app
            .client()
            .post(app.url("/login"))
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD), ("next", next)])
            .send()
            .await
            .expect("login");
        assert_eq!((login.status().as_u16(), login.headers()["location"].to_str().ok()), (303, Some("/")), "{next:?}");
        let page = app.client().get(app.url(&format!("/login?next={}", logboard::links::urlencode(next)))).send();
        assert_eq!(page.await.expect("login page").status(), 200, "{next:?}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_and_robots_headers() {
    let app = spawn_app().await;
    let client = app.logged_in_client().await;
    let paths =
        ["/", "/logs?project=demo&env=dev", "/login", "/api/v1/projects", "/healthz", "/robots.txt", "/nowhere"];
    for path in paths {
        let response = client.get(app.url(path)).send().await.expect("get");
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(header("x-robots-tag"), "noindex, nofollow", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        let csp = header("content-security-policy");
        for directive in ["object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "script-src 'self'"] {
            assert!(csp.contains(directive), "{path}: {directive} missing in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}");
    }
    let ingest = reqwest::Client::new()
        .post(app.url("/api/v1/events"))
        .header("X-Logboard-Key", INGEST_KEY)
        .json(&json!({"env": "dev", "message": "m"}))
        .send()
        .await
        .expect("post");
    assert_eq!(ingest.headers()["x-robots-tag"], "noindex, nofollow");
}

#[tokio::test]
async fn client_ips_are_stored_only_when_the_project_asks_for_it() {
    let app = spawn_app().await;
    app.ingest(&json!({"env": "dev", "message": "no ip"})).await;
    let (_, page) = app.read("/api/v1/events?project=demo&env=dev").await;
    assert_eq!(page["events"][0]["extra"], Value::Null, "{page}");

    let data_dir = tempfile::tempdir().expect("dir");
    let mut config = common::test_config(data_dir.path(), &[]);
    config.projects[0].store_client_ip = true;
    let keeping = common::spawn_app_from(config, data_dir).await;
    keeping.ingest(&json!({"env": "dev", "message": "with ip"})).await;
    let (_, page) = keeping.read("/api/v1/events?project=demo&env=dev").await;
    assert_eq!(page["events"][0]["extra"]["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn a_client_that_trickles_its_body_is_cut_off_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = common::spawn_app_with(&[("LOGBOARD__SERVER__REQUEST_TIMEOUT_SECS", "1")]).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {}\r\nX-Logboard-Key: {INGEST_KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"message\":",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // Then nothing more: the server must not wait for the rest forever.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept the stalled request open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

// Connections: timeouts and the cap (src/web/serve.rs), with raw TCP clients.

/// Waits for the server to close `stream` (EOF or reset); what it sent before, or `None` if the
/// connection was still open after `deadline`.
async fn wait_for_close(stream: &mut tokio::net::TcpStream, deadline: std::time::Duration) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let reading = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(deadline, reading).await.ok()?;
    Some(received)
}

/// Sends a GET on an open connection and reads one response: (status line, headers, body).
async fn get_on(stream: &mut tokio::net::TcpStream, path: &str) -> (String, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: logboard\r\n\r\n").as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed before a whole response: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
        let length: usize = head
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_string))
            .expect("content-length")
            .parse()
            .expect("number");
        if body.len() >= length {
            let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
            return (status.to_string(), headers.to_ascii_lowercase(), body.to_string());
        }
    }
}

const GENEROUS: std::time::Duration = std::time::Duration::from_secs(15);

/// An app with the given header-read and idle timeouts, and a connection to it.
async fn connect_with_timeouts(header_read_secs: &str, idle_secs: &str) -> (common::TestApp, tokio::net::TcpStream) {
    let app = common::spawn_app_with(&[
        ("LOGBOARD__SERVER__HEADER_READ_TIMEOUT_SECS", header_read_secs),
        ("LOGBOARD__SERVER__IDLE_TIMEOUT_SECS", idle_secs),
    ])
    .await;
    let stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    (app, stream)
}

#[tokio::test]
async fn a_client_that_stops_in_the_middle_of_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    // The idle timeout is far beyond the deadline: only the header-read timeout can close it.
    let (_app, mut stream) = connect_with_timeouts("1", "600").await;
    stream.write_all(b"GET / HTTP/1.1\r\nHo").await.expect("write");
    let answer = wait_for_close(&mut stream, GENEROUS).await;
    assert_eq!(answer, Some(Vec::new()), "a half-sent request head kept its connection open");
}

#[tokio::test]
async fn a_client_that_connects_and_sends_nothing_is_disconnected() {
    let (_app, mut stream) = connect_with_timeouts("1", "600").await;
    assert_eq!(wait_for_close(&mut stream, GENEROUS).await, Some(Vec::new()), "a silent connection stayed open");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    // The header-read timeout is far beyond the deadline: only the idle timeout can close it.
    let (_app, mut stream) = connect_with_timeouts("600", "1").await;
    let (status, headers, body) = get_on(&mut stream, "/healthz").await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
    assert!(!headers.contains("connection: close"), "{headers}");
    assert_eq!(wait_for_close(&mut stream, GENEROUS).await, Some(Vec::new()), "an idle connection stayed open");
}

#[tokio::test]
async fn a_keep_alive_connection_may_wait_longer_than_the_header_timeout_between_requests() {
    // A load balancer keeps idle connections for reuse (ALB: 60 s); closing them at the header
    // timeout would race its next request into a 502.
    let (_app, mut stream) = connect_with_timeouts("1", "600").await;
    assert_eq!(get_on(&mut stream, "/healthz").await.2, "ok");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(get_on(&mut stream, "/healthz").await.2, "ok", "the second request on the same connection");
}

#[tokio::test]
async fn health_checks_are_answered_and_other_paths_get_a_quick_503_while_the_connection_cap_is_hit() {
    let app = common::spawn_app_with(&[("LOGBOARD__SERVER__MAX_CONNECTIONS", "8")]).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
        // A whole request first: the connection is then surely accepted, and stays open idle.
        assert_eq!(get_on(&mut stream, "/healthz").await.2, "ok");
        held.push(stream);
    }
    let client = reqwest::Client::builder().timeout(GENEROUS).build().expect("client");
    let health = client.get(app.url("/healthz")).send().await.expect("/healthz answers at the cap");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("body"), "ok");
    let ready = client.get(app.url("/readyz")).send().await.expect("/readyz answers at the cap");
    assert_eq!(ready.status(), 200);

    let refused = client.get(app.url("/login")).send().await.expect("/login answers at the cap");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["connection"], "close");
    let body: Value = refused.json().await.expect("json");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("connections")), "{body}");

    // Once the held connections close, pages are served again.
    drop(held);
    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        let status = client.get(app.url("/login")).send().await.expect("/login").status();
        if status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {status} after the held connections closed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn silent_connections_past_the_cap_cannot_keep_a_health_check_out() {
    use logboard::web::serve::OVERFLOW_CONNECTIONS;
    let app = common::spawn_app_with(&[("LOGBOARD__SERVER__MAX_CONNECTIONS", "1")]).await;
    let mut regular = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    assert_eq!(get_on(&mut regular, "/healthz").await.2, "ok");
    // Every overflow slot taken by a connection that sends nothing (the probe comes long before
    // their header timeout).
    let mut silent = Vec::new();
    for _ in 0..OVERFLOW_CONNECTIONS {
        silent.push(tokio::net::TcpStream::connect(app.addr).await.expect("connect"));
    }
    let mut probe = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    let (status, headers, body) =
        tokio::time::timeout(GENEROUS, get_on(&mut probe, "/healthz")).await.expect("answered");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
    assert!(headers.contains("connection: close"), "{headers}");
    // The one regular connection is still served.
    assert_eq!(get_on(&mut regular, "/healthz").await.2, "ok");
}

// Reads: the embedded store's pools and query time limit (src/sqlite.rs).

/// Stores `count` events of demo/production, 2 to 3 days old (outside the home page's day), straight
/// into the store in big batches: the fastest way to a store big enough for slow searches.
async fn store_old_events(app: &common::TestApp, count: usize) {
    let now = time::OffsetDateTime::now_utc();
    let template: logboard::event::StoredEvent = serde_json::from_value(json!({
        "id": ulid::Ulid::nil().to_string(),
        "project": "demo",
        "env": "production",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "received_at": "2026-01-01T00:00:00.000Z",
        "level": "info",
        "message": "",
    }))
    .expect("a stored event");
    let oldest = logboard::event::unix_ms(now - time::Duration::days(3));
    let padding = "x".repeat(100);
    for start in (0..count).step_by(10_000) {
        let batch = (start..count.min(start + 10_000))
            .map(|i| {
                let ms = oldest + i64::try_from(i).expect("small");
                logboard::event::StoredEvent {
                    id: ulid::Ulid::from_parts(u64::try_from(ms).expect("after 1970"), i as u128),
                    timestamp: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                        .expect("a time"),
                    message: format!("GET /checkout/{i} answered 200 after {} ms {padding}", i % 997),
                    ..template.clone()
                }
            })
            .collect();
        app.state.store.append(batch).await.expect("append");
    }
}

/// `/api/v1/events` over the last week with a query that matches no stored event and that
/// neither the search index nor the columns can answer (a wildcard in `stack`, which only the
/// bodies hold; levels alone would be answered by the level counts, a comparison by the
/// columns): every stored event of demo/production is read.
fn search_matching_nothing(app: &common::TestApp) -> String {
    let now = time::OffsetDateTime::now_utc();
    let from = logboard::event::timestamp_format::format(now - time::Duration::days(7));
    let to = logboard::event::timestamp_format::format(now);
    app.url(&format!("/api/v1/events?project=demo&env=production&q=stack:*nothing*&from={from}&to={to}"))
}

/// One GET: status, whether it carries `Retry-After`, body, and how long it took.
async fn timed_get(client: &reqwest::Client, url: &str) -> (u16, bool, String, std::time::Duration) {
    let asked = std::time::Instant::now();
    let response = client.get(url).send().await.expect("get");
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    (status, retry_after, response.text().await.expect("body"), asked.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_the_home_page_answer_while_slow_searches_run() {
    let app = spawn_app().await;
    store_old_events(&app, 200_000).await;
    let client = app.logged_in_client().await;
    let search = search_matching_nothing(&app);
    let searches: Vec<_> = (0..6)
        .map(|_| {
            let (search, client) = (search.clone(), client.clone());
            tokio::spawn(async move { timed_get(&client, &search).await })
        })
        .collect();
    // Long enough for the searches to reach the store; each then takes the best part of a second.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    // Both asked at once; each notes how many searches had answered by the time it answered.
    let searches_done = || searches.iter().filter(|s| s.is_finished()).count();
    let ready = async { (timed_get(&client, &app.url("/readyz")).await, searches_done()) };
    let home = async { (timed_get(&client, &app.url("/")).await, searches_done()) };
    let ((ready, searches_done_at_ready), (home, searches_done_at_home)) = tokio::join!(ready, home);

    let mut answers = Vec::new();
    for search in searches {
        answers.push(search.await.expect("search task"));
    }
    eprintln!(
        "under 6 searches: /readyz {:?}, home page {:?}; searches (status, time): {:?}",
        ready.3,
        home.3,
        answers.iter().map(|(status, _, _, took)| (status, took)).collect::<Vec<_>>()
    );
    assert_eq!((ready.0, home.0), (200, 200));
    assert!(home.2.contains(r#"data-project="demo" data-env="production""#));
    assert_eq!(searches_done_at_ready, 0, "/readyz waited for a search to finish");
    assert_eq!(searches_done_at_home, 0, "the home page waited for a search to finish");
    for (status, retry_after, body, _) in &answers {
        let body: Value = serde_json::from_str(body).expect("json");
        match status {
            200 => assert_eq!(body["events"], json!([]), "nothing matches"),
            // A slow machine (a debug build, a busy CI) may stop a whole-range read at its limit.
            422 => assert!(body["error"].as_str().is_some_and(|e| e.contains("narrow the time range")), "{body}"),
            // Searches past the pool's size wait a bounded time, then are refused.
            503 => assert!(*retry_after && body["error"].as_str().is_some_and(|e| e.contains("try again")), "{body}"),
            other => panic!("a search answered {other}: {body}"),
        }
    }
    assert!(answers.iter().any(|(status, ..)| *status != 503), "some searches ran");
}

#[tokio::test]
async fn a_search_past_the_query_time_limit_is_stopped_and_told_to_narrow_the_range() {
    let app = common::spawn_app_with(&[("LOGBOARD__STORAGE__QUERY_TIME_LIMIT_MS", "1")]).await;
    store_old_events(&app, 20_000).await;
    let response = reqwest::Client::new()
        .get(search_matching_nothing(&app))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("search");
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["error"],
        "the search took longer than 0.001 s and was stopped; narrow the time range or add filters"
    );
    assert_eq!(reqwest::get(app.url("/readyz")).await.expect("readyz").status(), 200, "the store is fine");
}

#[tokio::test]
async fn the_logs_page_shows_a_bad_query_under_the_search_box_and_keeps_it() {
    let app = spawn_app().await;
    let client = app.logged_in_client().await;
    let url = app.url("/logs?project=demo&env=production&q=level%3Aerror%20(unclosed");
    let response = client.get(url).send().await.expect("page");
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("html");
    assert!(html.contains(r#"value="level:error (unclosed""#), "the search box keeps what was typed");
    assert!(html.contains(r#"<p class="query-error" id="query-error" role="alert">"#), "{html}");
    assert!(html.contains("(at character 13)"), "the position, counted from 1 for people");
}

/// The value of the first `attribute="…"` after `after` in `html`, unescaped as a browser would.
fn attribute_after(html: &str, after: &str, attribute: &str) -> String {
    let rest = &html[html.find(after).unwrap_or_else(|| panic!("no {after} in {html}"))..];
    let start = rest.find(&format!("{attribute}=\"")).expect("the attribute") + attribute.len() + 2;
    rest[start..start + rest[start..].find('"').expect("a closing quote")].replace("&#38;", "&").replace("&amp;", "&")
}

#[tokio::test]
async fn the_detail_pane_of_an_error_shows_its_issue_with_its_count_status_and_links() {
    let app = spawn_app().await;
    let mut events: Vec<Value> = (0..3)
        .map(|i| json!({"level": "error", "type": "PaymentDeclined", "message": format!("card declined for order {}", 100 + i)}))
        .collect();
    events.push(json!({"level": "info", "message": "checkout opened"}));
    assert_eq!(app.ingest(&json!({"env": "dev", "events": events})).await.0, 202);
    let (_, read) = app.read("/api/v1/events?project=demo&env=dev").await;
    let id_of = |level: &str| {
        let event = read["events"].as_array().expect("events").iter().find(|e| e["level"] == level).expect("an event");
        (event["id"].as_str().expect("id").to_string(), event["fingerprint"].as_str().unwrap_or("").to_string())
    };
    let (error_id, fingerprint) = id_of("error");
    assert_eq!(fingerprint.len(), 16, "{read}");

    let client = app.logged_in_client().await;
    let get = |path: String| {
        let client = client.clone();
        let url = app.url(&path);
        async move {
            let response = client.get(url).send().await.expect("page");
            assert_eq!(response.status(), 200, "{path}");
            response.text().await.expect("html")
        }
    };
    let html = get(format!("/logs?project=demo&env=dev&event={error_id}")).await;
    let start =
        html.find(r#"<section class="detail-issue"#).unwrap_or_else(|| panic!("no issue in the detail: {html}"));
    let section = &html[start..start + html[start..].find("</section>").expect("the section's end")];
    assert!(section.contains(r#"<dd class="issue-count">3</dd>"#), "three events of the issue: {section}");
    assert!(section.contains(r#"<span class="status-badge">new</span>"#), "{section}");
    let issue_href = attribute_after(section, r#"class="issue-link""#, "href");
    assert_eq!(issue_href, format!("/issues?project=demo&env=dev#issue-{fingerprint}"));
    let events_href = attribute_after(section, r#"class="issue-events""#, "href");
    assert_eq!(events_href, format!("/logs?project=demo&env=dev&q=fingerprint%3A{fingerprint}&from=now-7d"));

    // The links lead to the issue's row and to its events, as the issues page's own do.
    let issues = get(issue_href.split('#').next().expect("a path").to_string()).await;
    assert!(issues.contains(&format!(r#"id="issue-{fingerprint}""#)), "{issues}");
    assert_eq!(attribute_after(&issues, &format!(r#"id="issue-{fingerprint}""#), "href"), events_href);
    let logs = get(events_href).await;
    assert_eq!(logs.matches("card declined for order").count(), 3, "every event of the issue, and no other");

    let (info_id, _) = id_of("info");
    let info = get(format!("/logs?project=demo&env=dev&event={info_id}")).await;
    assert!(info.contains(r#"aria-label="Event detail""#) && !info.contains("detail-issue"), "no issue for an info");
}

#[tokio::test]
async fn the_whole_result_exports_as_csv_and_ndjson_newest_first_with_formulas_neutralised() {
    let app = spawn_app().await;
    let now = time::OffsetDateTime::now_utc();
    // More than one export page (1000 events), and messages that need quoting or neutralising.
    let tricky = ["=HYPERLINK(\"http://evil\")", "comma, \"quotes\" and\nnewline", "-5 below", "@mention"];
    let events: Vec<Value> = (0..2_300)
        .map(|i| {
            let message = tricky.get(i % 500).map_or(format!("event {i:05}"), |t| t.to_string());
            json!({"message": message, "level": if i % 2 == 0 { "error" } else { "info" }, "http": {"status": 500},
                   "extra": {"n": i}, "timestamp": logboard::event::unix_ms(now - time::Duration::seconds(i as i64))})
        })
        .collect();
    for chunk in events.chunks(1000) {
        assert_eq!(app.ingest(&json!({"env": "production", "events": chunk})).await.0, 202);
    }
    let client = app.logged_in_client().await;
    let csv =
        client.get(app.url("/api/v1/events.csv?project=demo&env=production&q=level:error")).send().await.expect("csv");
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = csv.headers()["content-disposition"].to_str().expect("ascii").to_string();
    assert!(disposition.starts_with("attachment; filename=\"logboard-demo-production-"), "{disposition}");
    let text = csv.text().await.expect("body");
    assert!(text.starts_with("id,timestamp,level,type,code,message,http_method,http_status,url,location,user,release,fingerprint,group,stack,extra\r\n"));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("RFC 4180 row")).collect();
    assert_eq!(rows.len(), 1_150, "every error, across export pages");
    let numbers: Vec<i64> =
        rows.iter().map(|r| serde_json::from_str::<Value>(&r[15]).expect("extra")["n"].as_i64().expect("n")).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "newest first");
    let message = |n: i64| rows[numbers.iter().position(|x| *x == n).expect("row")][5].to_string();
    assert_eq!(message(0), "'=HYPERLINK(\"http://evil\")");
    assert_eq!(message(2), "'-5 below");
    assert_eq!(message(500), "'=HYPERLINK(\"http://evil\")");
    assert_eq!(message(4), "event 00004");
    assert_eq!(&rows[0][7], "500");
    assert_eq!(&rows[0][13], "/logboard/demo/production");

    let ndjson = client.get(app.url("/api/v1/events.ndjson?project=demo&env=production")).send().await.expect("ndjson");
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    // Streamed page by page: no length up front, chunked (a body built whole would carry its length).
    assert!(ndjson.headers().get("content-length").is_none());
    assert_eq!(ndjson.headers()["transfer-encoding"], "chunked");
    let lines: Vec<Value> = ndjson
        .text()
        .await
        .expect("body")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one event a line"))
        .collect();
    assert_eq!(lines.len(), 2_300);
    let (_, page) = app.read("/api/v1/events?project=demo&env=production&limit=3").await;
    assert_eq!(lines[..3], page["events"].as_array().expect("events")[..], "exactly as the read API returns them");
    assert_eq!(lines[1]["message"], "comma, \"quotes\" and\nnewline");

    let (status, answer) = app.read("/api/v1/events.csv?project=demo&env=production&q=(").await;
    assert_eq!((status, answer["position"].as_u64()), (400, Some(0)), "a bad query is a 400 before any byte");
    let anonymous = reqwest::get(app.url("/api/v1/events.csv?project=demo&env=production")).await.expect("get");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn the_histogram_counts_the_query_by_level_in_round_buckets() {
    let app = spawn_app().await;
    let from = time::OffsetDateTime::now_utc().replace_nanosecond(0).expect("ns") - time::Duration::hours(2);
    let to = from + time::Duration::hours(1);
    let at = |minutes: i64| logboard::event::unix_ms(from + time::Duration::minutes(minutes));
    let events = json!([
        {"message": "a", "level": "error", "timestamp": at(0)},
        {"message": "b", "level": "info", "timestamp": at(0)},
        {"message": "c", "level": "error", "timestamp": at(59)},
        {"message": "c later", "level": "error", "timestamp": at(61)},
    ]);
    assert_eq!(app.ingest(&json!({"env": "dev", "events": events})).await.0, 202);
    let range = format!(
        "from={}&to={}",
        logboard::links::urlencode(&logboard::event::timestamp_format::format(from)),
        logboard::links::urlencode(&logboard::event::timestamp_format::format(to))
    );
    let (status, answer) = app.read_owned(format!("/api/v1/histogram?project=demo&env=dev&{range}")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["interval_ms"], 60_000, "an hour in minutes");
    let buckets = answer["buckets"].as_array().expect("buckets");
    assert!((60..=61).contains(&buckets.len()), "{}", buckets.len());
    let total = |level: &str| buckets.iter().map(|b| b["counts"][level].as_u64().expect("n")).sum::<u64>();
    assert_eq!((total("error"), total("info"), total("warn")), (2, 1, 0), "the event after `to` is out");
    assert_eq!(buckets[0]["counts"]["error"], 1);
    let (_, searched) = app.read_owned(format!("/api/v1/histogram?project=demo&env=dev&{range}&q=c")).await;
    let buckets = searched["buckets"].as_array().expect("buckets");
    let errors: u64 = buckets.iter().map(|b| b["counts"]["error"].as_u64().expect("n")).sum();
    assert_eq!(errors, 1, "only `c` in the range");
}

#[tokio::test]
async fn the_issue_index_counts_like_the_events_and_follows_resolve_ignore_and_regression() {
    let app = spawn_app().await;
    let now = time::OffsetDateTime::now_utc();
    let at = |minutes: i64| logboard::event::unix_ms(now - time::Duration::minutes(minutes));
    // Two errors (order numbers differ, one fingerprint each), users as strings and objects,
    // an info that is no issue, and one occurrence outside the range asked for.
    let mut events = Vec::new();
    for i in 0..30 {
        events.push(json!({"level": "error", "type": "PaymentDeclined", "message": format!("card declined for order {:03}", 100 + i),
                           "user": if i % 2 == 0 { json!(format!("u{}", i % 4)) } else { json!({"id": format!("u{}", i % 3)}) },
                           "timestamp": at(10 + i)}));
    }
    for i in 0..12 {
        events.push(json!({"level": "fatal", "type": "TypeError", "message": format!("x is undefined at row {:02}", 10 + i), "timestamp": at(5 + i)}));
    }
    events.push(json!({"level": "info", "message": "all good", "timestamp": at(1)}));
    events.push(
        json!({"level": "error", "type": "TypeError", "message": "x is undefined at row 99", "timestamp": at(60 * 30)}),
    );
    assert_eq!(app.ingest(&json!({"env": "production", "events": events})).await.0, 202);

    let range = format!(
        "project=demo&env=production&from={}&to={}",
        logboard::links::urlencode(&logboard::event::timestamp_format::format(now - time::Duration::hours(2))),
        logboard::links::urlencode(&logboard::event::timestamp_format::format(now))
    );
    // The brute force: the errors of the range as the read API returns them, grouped.
    let (_, read) = app.read_owned(format!("/api/v1/events?{range}&level=error,fatal&limit=1000")).await;
    let mut expected: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    for e in read["events"].as_array().expect("events") {
        let entry = expected.entry(e["fingerprint"].as_str().expect("fingerprint").to_string()).or_default();
        entry.0 += 1;
        if let Some(user) = e.get("user").filter(|u| !u.is_null()) {
            entry.1.insert(user.get("id").unwrap_or(user).as_str().expect("text").to_string());
        }
    }
    assert_eq!(expected.len(), 2, "{expected:?}");
    let (status, listed) = app.read_owned(format!("/api/v1/issues?{range}&sort=count")).await;
    assert_eq!(status, 200, "{listed}");
    let issues = listed["issues"].as_array().expect("issues");
    let found: BTreeMap<String, (u64, u64)> = issues
        .iter()
        .map(|i| {
            (
                i["fingerprint"].as_str().expect("fp").to_string(),
                (i["count"].as_u64().expect("n"), i["users"].as_u64().expect("u")),
            )
        })
        .collect();
    let wanted: BTreeMap<String, (u64, u64)> =
        expected.iter().map(|(fp, (n, users))| (fp.clone(), (*n, users.len() as u64))).collect();
    assert_eq!(found, wanted);
    assert_eq!(issues[0]["count"], 30, "sorted by count");
    let declined = &issues[0];
    assert_eq!((declined["type"].as_str(), declined["status"].as_str()), (Some("PaymentDeclined"), Some("new")));
    assert_eq!(declined["title"], "card declined for order 100", "the latest occurrence's message");
    assert_eq!(
        declined["series_24h"].as_array().expect("series").iter().map(|n| n.as_u64().expect("n")).sum::<u64>(),
        30
    );
    let type_error = &issues[1];
    assert_eq!(type_error["count"], 12, "the occurrence 30 h ago is outside the range");
    assert_eq!(
        type_error["first_seen"],
        logboard::event::timestamp_format::format(now - time::Duration::minutes(60 * 30)).as_str(),
        "first seen ever, not in the range"
    );

    let client = reqwest::Client::new();
    let set = |fingerprint: &str, status: &str| {
        client
            .post(app.url(&format!("/api/v1/issues/{fingerprint}/status")))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&json!({"project": "demo", "env": "production", "status": status}))
            .send()
    };
    let fingerprint = declined["fingerprint"].as_str().expect("fp").to_string();
    assert_eq!(set(&fingerprint, "resolved").await.expect("post").status(), 200);
    assert_eq!(set(&fingerprint, "fixed").await.expect("post").status(), 400);
    assert_eq!(set("0000000000000000", "resolved").await.expect("post").status(), 404);
    // A browser's request from another site is refused, whatever its credentials.
    let cross_site = client
        .post(app.url(&format!("/api/v1/issues/{fingerprint}/status")))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Sec-Fetch-Site", "cross-site")
        .json(&json!({"project": "demo", "env": "production", "status": "ignored"}))
        .send()
        .await
        .expect("post");
    assert_eq!(cross_site.status(), 403);
    let status_of = |listed: &Value, fingerprint: &str| {
        listed["issues"]
            .as_array()
            .expect("issues")
            .iter()
            .find(|i| i["fingerprint"] == fingerprint)
            .map(|i| i["status"].clone())
    };
    let (_, listed) = app.read_owned(format!("/api/v1/issues?{range}")).await;
    assert_eq!(status_of(&listed, &fingerprint), Some(json!("resolved")));
    // It happens again: regressed.
    let again = json!({"level": "error", "type": "PaymentDeclined", "message": "card declined for order 777"});
    assert_eq!(app.ingest(&json!({"env": "production", "events": [again]})).await.0, 202);
    let (_, listed) = app.read("/api/v1/issues?project=demo&env=production").await;
    assert_eq!(status_of(&listed, &fingerprint), Some(json!("regressed")));
    assert_eq!(set(&fingerprint, "ignored").await.expect("post").status(), 200);
    assert_eq!(app.ingest(&json!({"env": "production", "events": [again]})).await.0, 202);
    let (_, listed) = app.read("/api/v1/issues?project=demo&env=production").await;
    assert_eq!(status_of(&listed, &fingerprint), Some(json!("ignored")), "ignored stays ignored");
    let (status, _) = app.read("/api/v1/issues?project=demo&env=production&sort=loudest").await;
    assert_eq!(status, 400);
    let anonymous = reqwest::get(app.url("/api/v1/issues?project=demo&env=production")).await.expect("get");
    assert_eq!(anonymous.status(), 401);
}
