//! Source maps (sourcemaps.md) with a real build: the app of tests/fixtures/sourcemaps/ bundled
//! and minified by esbuild (from node_modules, with its `.map` and `sourcesContent`), its error
//! thrown in headless Chromium and sent by `/static/logboard.js`, the map uploaded before and
//! after; the API, the NDJSON export, the detail pane and the issues page read the original
//! place. Then the uploads' refusals (400, 401, 403, 404, 413), and the S3 store shared by two
//! processes on moto.

use crate::cloudwatch_process::start_server_with;
use crate::common;

use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use common::browser::Browser;
use common::client_pages::wait_for_events;
use common::moto::Moto;
use common::{ADMIN_PASSWORD, INGEST_KEY, TestApp, spawn_app_from, test_config};
use logboard::config::Secret;
use serde_json::{Value, json};

/// The minified file's name, as the stack traces end.
const BUNDLE: &str = "app.3f2a91c4.js";
const API_TOKEN: &str = "ci-upload-token-of-the-tests";

/// The fixture app built by esbuild: the minified bundle and its map.
struct Build {
    js: String,
    map: Vec<u8>,
}

/// Bundles and minifies tests/fixtures/sourcemaps/src/main.js into `assets/app.3f2a91c4.js`
/// of a temporary copy, so the map's `sources` read `../src/checkout.js`.
async fn build_app() -> Build {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("src")).expect("src");
    for file in ["main.js", "checkout.js"] {
        std::fs::copy(format!("{root}/tests/fixtures/sourcemaps/src/{file}"), dir.path().join("src").join(file))
            .expect("copy the fixture");
    }
    let output = tokio::process::Command::new(format!("{root}/node_modules/.bin/esbuild"))
        .current_dir(dir.path())
        .args(["src/main.js", "--bundle", "--minify", "--sourcemap", "--sources-content=true", "--format=iife"])
        .arg(format!("--outfile=assets/{BUNDLE}"))
        .arg("--log-level=error")
        .output()
        .await
        .expect("run esbuild (bash scripts/install-test-deps.sh)");
    assert!(output.status.success(), "esbuild: {}", String::from_utf8_lossy(&output.stderr));
    let js = std::fs::read_to_string(dir.path().join("assets").join(BUNDLE)).expect("the bundle");
    let map = std::fs::read(dir.path().join("assets").join(format!("{BUNDLE}.map"))).expect("the map");
    assert!(js.len() < 600 && !js.contains("submitOrder"), "minified: {js}");
    Build { js, map }
}

/// Where `needle` is in the fixture's `file`: its 1-based line and column.
fn place_in_fixture(file: &str, needle: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/sourcemaps/src/{file}", env!("CARGO_MANIFEST_DIR")))
        .expect("fixture");
    text.lines()
        .enumerate()
        .find_map(|(i, line)| line.find(needle).map(|column| (i + 1, column + 1)))
        .unwrap_or_else(|| panic!("`{needle}` is not in {file}"))
}

/// The shop: one page per release, each loading logboard.js from `app` and then the bundle.
async fn start_shop(app: &TestApp, js: String, releases: &[&str]) -> String {
    let mut router = Router::new().route(
        &format!("/assets/{BUNDLE}"),
        get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], js).into_response() }),
    );
    for release in releases {
        let page = format!(
            r#"<!doctype html><title>shop</title>
<script src="{base}/static/logboard.js"></script>
<script>Logboard.init({{ endpoint: "{base}", key: "{INGEST_KEY}", env: "staging", release: "{release}" }});</script>
<script src="/assets/{BUNDLE}"></script>"#,
            base = app.base
        );
        let path = format!("/{}.html", release.replace(['@', '.'], "-"));
        router = router.route(&path, get(move || async move { axum::response::Html(page) }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    format!("http://127.0.0.1:{}", addr.port())
}

async fn spawn(env: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(data_dir.path(), env);
    config.auth.api_tokens = vec![Secret::new(API_TOKEN)];
    spawn_app_from(config, data_dir).await
}

/// PUTs `body` as the map of `file` in `release` on `base` with the API token.
async fn upload(base: &str, release: &str, file: &str, body: Vec<u8>) -> (u16, Value) {
    let url = format!("{base}/api/v1/sourcemaps/demo/{}/{file}", logboard::links::urlencode(release));
    let response =
        reqwest::Client::new().put(url).bearer_auth(API_TOKEN).body(body).send().await.expect("upload request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn delete(base: &str, release: &str, file: &str) -> u16 {
    let url = format!("{base}/api/v1/sourcemaps/demo/{}/{file}", logboard::links::urlencode(release));
    let response = reqwest::Client::new().delete(url).bearer_auth(API_TOKEN).send().await.expect("delete request");
    response.status().as_u16()
}

async fn get_json(base: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("read");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("json")
}

/// The staging event of `release`, as `/api/v1/events/{id}` answers it.
async fn event_of(app: &TestApp, events: &[Value], release: &str) -> Value {
    let event = events.iter().find(|e| e["release"] == release).unwrap_or_else(|| panic!("no event of {release}"));
    let id = event["id"].as_str().expect("id");
    get_json(&app.base, &format!("/api/v1/events/{id}?project=demo&env=staging")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minified_error_from_chromium_reads_as_its_original_file_line_column_and_function() {
    let build = build_app().await;
    let app = spawn(&[]).await;
    // Before: the map of web@1.0.0 is there when its error happens; web@2.0.0's comes after.
    assert_eq!(upload(&app.base, "web@1.0.0", BUNDLE, build.map.clone()).await.0, 201);
    let shop = start_shop(&app, build.js.clone(), &["web@1.0.0", "web@2.0.0"]).await;
    let browser = Browser::headless().await;
    let mut events = Vec::new();
    for (count, page) in [(1, "/web-1-0-0.html"), (2, "/web-2-0-0.html")] {
        browser.goto(&format!("{shop}{page}")).await;
        events = wait_for_events(&app, "staging", count, Duration::from_secs(20), Duration::ZERO).await;
    }

    let (line, column) = place_in_fixture("checkout.js", "new Error(");
    let (call_line, call_column) = place_in_fixture("main.js", "submitOrder({");
    let expected_top = format!("at submitOrder (../src/checkout.js:{line}:{column})");
    let expected_caller = format!("at payButtonClicked (../src/main.js:{call_line}:{call_column})");

    let before = event_of(&app, &events, "web@1.0.0").await;
    let raw = before["stack"].as_str().expect("a stack");
    assert!(raw.contains(&format!("/assets/{BUNDLE}:1:")), "the stored stack is the minified one: {raw}");
    let original = before["stack_original"].as_str().unwrap_or_else(|| panic!("mapped: {before:#}"));
    let frames: Vec<&str> = original.lines().map(str::trim).collect();
    assert_eq!(frames[0], "Error: order total 14 is over the limit");
    assert_eq!(frames[1], expected_top, "{original}");
    assert_eq!(frames[2], expected_caller, "{original}");
    assert_eq!(before["location_original"], format!("../src/checkout.js:{line}:{column}"), "{before:#}");
    assert!(before["fingerprint"].as_str().is_some(), "an error keeps its fingerprint");

    let after = event_of(&app, &events, "web@2.0.0").await;
    assert!(after.get("stack_original").is_none(), "another release is not mapped: {after:#}");
    assert_eq!(after["fingerprint"], before["fingerprint"], "fingerprints ignore the release and the maps");
    // After: the map uploaded once the error is stored still applies.
    assert_eq!(upload(&app.base, "web@2.0.0", BUNDLE, build.map.clone()).await.0, 201);
    let after = event_of(&app, &events, "web@2.0.0").await;
    let original = after["stack_original"].as_str().unwrap_or_else(|| panic!("mapped after: {after:#}"));
    assert_eq!(original.lines().nth(1).map(str::trim), Some(expected_top.as_str()));

    // The list API, and the page of events with the originals.
    let listed = get_json(&app.base, "/api/v1/sourcemaps?project=demo&release=web%402.0.0").await;
    assert_eq!(listed["files"][0]["name"], BUNDLE, "{listed}");
    assert_eq!(listed["files"][0]["size"], build.map.len());
    let page = get_json(&app.base, "/api/v1/events?project=demo&env=staging").await;
    let mapped = page["events"].as_array().expect("events").iter().filter(|e| e["stack_original"].is_string()).count();
    assert_eq!(mapped, 2, "{page:#}");
    let ndjson = app
        .client()
        .get(app.url("/api/v1/events.ndjson?project=demo&env=staging"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("text");
    assert_eq!(ndjson.lines().filter(|line| line.contains(&expected_top)).count(), 2, "{ndjson}");

    // The detail pane: the original stack with its source lines, the raw one behind a toggle.
    browser.goto(&app.url("/login")).await;
    browser.fill("input[name=username]", "admin").await;
    browser.fill("input[name=password]", ADMIN_PASSWORD).await;
    browser.click_to_navigate("form button[type=submit]").await;
    let id = before["id"].as_str().expect("id");
    browser.goto(&app.url(&format!("/logs?project=demo&env=staging&event={id}"))).await;
    let shown = browser.texts("aside.detail .stack-original pre.frame.mapped").await;
    assert_eq!(shown.first().map(|s| s.trim()), Some(expected_top.as_str()), "{shown:?}");
    assert_eq!(shown.get(1).map(|s| s.trim()), Some(expected_caller.as_str()), "{shown:?}");
    let here = browser.texts("aside.detail .source-line.here").await;
    assert!(here[0].starts_with(&line.to_string()) && here[0].contains("throw new Error("), "{here:?}");
    let raw_toggle = browser.find("aside.detail details.raw-stack").await;
    assert_eq!(raw_toggle.attr("open").await.expect("attr"), None, "the raw stack starts folded");
    browser.click("aside.detail details.raw-stack summary").await;
    assert_eq!(raw_toggle.attr("open").await.expect("attr").as_deref(), Some("true"));
    let raw_shown = browser.text("aside.detail details.raw-stack pre").await;
    assert!(raw_shown.contains(&format!("{BUNDLE}:1:")), "{raw_shown}");

    // The issues page names the original top frame of the issue's latest event.
    browser.goto(&app.url("/issues?project=demo&env=staging")).await;
    let frames = browser.texts("tr.issue .original-frame").await;
    assert_eq!(frames, std::slice::from_ref(&expected_top));

    // Delete: the first release's map goes, its event reads minified again.
    assert_eq!(delete(&app.base, "web@1.0.0", BUNDLE).await, 204);
    assert_eq!(delete(&app.base, "web@1.0.0", BUNDLE).await, 404);
    let before = event_of(&app, &events, "web@1.0.0").await;
    assert!(before.get("stack_original").is_none(), "deleted: {before:#}");
    let listed = get_json(&app.base, "/api/v1/sourcemaps?project=demo&release=web%401.0.0").await;
    assert_eq!(listed, json!({"files": []}));
}

#[tokio::test]
async fn firefox_frames_of_the_same_build_are_mapped_too() {
    let build = build_app().await;
    let app = spawn(&[]).await;
    assert_eq!(upload(&app.base, "web@1.0.0", BUNDLE, build.map).await.0, 201);
    // Firefox's form of the throw in the minified `function e(t){…throw new Error(…`.
    let column = build.js.find("new Error(").expect("the throw") + 1;
    let stack = format!("e@https://shop.example/assets/{BUNDLE}:1:{column}\n@https://shop.example/x.js:1:1");
    let (status, _) = app
        .ingest(&json!({"env": "staging", "events": [
            {"message": "Error: order total", "level": "error", "release": "web@1.0.0", "stack": stack}]}))
        .await;
    assert_eq!(status, 202);
    let events = wait_for_events(&app, "staging", 1, Duration::from_secs(10), Duration::ZERO).await;
    let (line, column) = place_in_fixture("checkout.js", "new Error(");
    let original = events[0]["stack_original"].as_str().unwrap_or_else(|| panic!("{:#}", events[0]));
    assert_eq!(
        original,
        format!("at submitOrder (../src/checkout.js:{line}:{column})\n@https://shop.example/x.js:1:1"),
        "the mapped frame in Chrome's form, the other as it was"
    );
}

#[tokio::test]
async fn a_sentry_event_finds_its_map_by_debug_id_before_its_release() {
    let build = build_app().await;
    let app = spawn(&[]).await;
    // A map with a debug id (as `sentry-cli sourcemaps inject` writes it), uploaded under a
    // release the event does not carry.
    let mut map: Value = serde_json::from_slice(&build.map).expect("json");
    let debug_id = "c1ab7c7e-1ad8-4b6a-9a36-c0ae1f5b2e34";
    map["debugId"] = json!(debug_id);
    let bytes = serde_json::to_vec(&map).expect("json");
    assert_eq!(upload(&app.base, "build-17", BUNDLE, bytes).await.0, 201);
    let url = format!("https://shop.example/assets/{BUNDLE}");
    let column = build.js.find("new Error(").expect("the throw") + 1;
    let event = json!({
        "event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "platform": "javascript", "release": "web@9.9.9",
        "environment": "staging",
        "exception": {"values": [{"type": "Error", "value": "order total 14 is over the limit",
            "stacktrace": {"frames": [{"filename": url, "function": "e", "lineno": 1, "colno": column, "in_app": true}]}}]},
        "debug_meta": {"images": [{"type": "sourcemap", "code_file": url, "debug_id": debug_id}]},
    });
    let response = reqwest::Client::new()
        .post(app.url("/api/1/store/"))
        .header("X-Sentry-Auth", "Sentry sentry_key=demo_sentry_key, sentry_version=7")
        .json(&event)
        .send()
        .await
        .expect("store");
    assert_eq!(response.status(), 200);
    let events = wait_for_events(&app, "staging", 1, Duration::from_secs(10), Duration::ZERO).await;
    let (line, column) = place_in_fixture("checkout.js", "new Error(");
    assert_eq!(events[0]["extra"]["debug_ids"][&url], debug_id, "{:#}", events[0]);
    assert_eq!(
        events[0]["stack_original"],
        format!("at submitOrder (../src/checkout.js:{line}:{column})"),
        "{:#}",
        events[0]
    );
}

#[tokio::test]
async fn bad_uploads_get_a_precise_refusal() {
    let build = build_app().await;
    let app = spawn(&[("LOGBOARD__SOURCEMAPS__MAX_BYTES", "2000"), ("LOGBOARD__SOURCEMAPS__MAX_FILES", "2")]).await;
    let url = |file: &str| app.url(&format!("/api/v1/sourcemaps/demo/web%401/{file}"));
    let http = reqwest::Client::new();
    let status = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap_or(Value::Null)["error"].as_str().unwrap_or("").to_string())
    };

    let (code, _) = status(http.put(url(BUNDLE)).body(build.map.clone())).await;
    assert_eq!(code, 401, "no credentials");
    let (code, _) = status(http.put(url(BUNDLE)).bearer_auth("wrong").body(build.map.clone())).await;
    assert_eq!(code, 401, "an unknown token");
    let (code, _) = status(http.put(url(BUNDLE)).bearer_auth(INGEST_KEY).body(build.map.clone())).await;
    assert_eq!(code, 401, "an ingest key cannot upload");
    for (body, why) in [
        ("not json at all", "not a JSON object"),
        (r#"{"version": 2, "sources": [], "mappings": ""}"#, "`version` must be 3"),
        (r#"{"version": 3, "sources": ["a.js"]}"#, "no `mappings`"),
        (r#"{"version": 3, "sources": ["a.js"], "names": [], "mappings": "%%%"}"#, "not a source map"),
    ] {
        let (code, error) = status(http.put(url(BUNDLE)).bearer_auth(API_TOKEN).body(body)).await;
        assert_eq!((code, error.contains(why)), (400, true), "{body}: {error}");
    }
    let big = [&build.map[..], &vec![b' '; 2000][..]].concat();
    let (code, error) = status(http.put(url(BUNDLE)).bearer_auth(API_TOKEN).body(big)).await;
    assert_eq!(code, 413, "{error}");
    let (code, _) = status(http.put(app.url("/api/v1/sourcemaps/nope/1/a.js")).bearer_auth(API_TOKEN).body("{}")).await;
    assert_eq!(code, 404, "an unknown project");
    let (code, _) = status(http.put(url("a%2Fb.js")).bearer_auth(API_TOKEN).body(build.map.clone())).await;
    assert_eq!(code, 400, "a file name with a slash");
    let cross_site = http
        .put(url(BUNDLE))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Sec-Fetch-Site", "cross-site")
        .body(build.map.clone());
    assert_eq!(status(cross_site).await.0, 403, "a page of another site cannot upload through the user");

    // Good ones: by token (201, then 200 replaced) and Basic; the third file is one too many.
    assert_eq!(status(http.put(url(BUNDLE)).bearer_auth(API_TOKEN).body(build.map.clone())).await.0, 201);
    assert_eq!(status(http.put(url(BUNDLE)).bearer_auth(API_TOKEN).body(build.map.clone())).await.0, 200);
    let basic = http.put(url("vendor.js")).basic_auth("admin", Some(ADMIN_PASSWORD)).body(build.map.clone());
    assert_eq!(status(basic).await.0, 201);
    let (code, error) = status(http.put(url("third.js")).bearer_auth(API_TOKEN).body(build.map.clone())).await;
    assert_eq!((code, error.contains("sourcemaps.max_files")), (413, true), "{error}");
    let listed = get_json(&app.base, "/api/v1/sourcemaps?project=demo&release=web%401").await;
    let names: Vec<&str> =
        listed["files"].as_array().expect("files").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, [BUNDLE, "vendor.js"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_a_map_uploaded_to_one_task_is_applied_and_deleted_by_another() {
    let build = build_app().await;
    let moto = Moto::start().await;
    let bucket = "logboard-sourcemaps";
    let created = reqwest::Client::new().put(format!("{}/{bucket}", moto.url)).send().await.expect("create bucket");
    assert!(created.status().is_success(), "{}", created.status());
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let env = [
        ("LOGBOARD__SOURCEMAPS__S3_BUCKET", bucket),
        ("LOGBOARD__SOURCEMAPS__S3_PREFIX", "maps-of-test/"),
        ("LOGBOARD__SOURCEMAPS__ENDPOINT_URL", moto.url.as_str()),
        ("LOGBOARD__AUTH__API_TOKENS", r#"["ci-upload-token-of-the-tests"]"#),
    ];
    let a = start_server_with(dirs[0].path(), &moto.url, &env);
    let b = start_server_with(dirs[1].path(), &moto.url, &env);

    assert_eq!(upload(&a.base, "web@1.0.0", BUNDLE, build.map.clone()).await.0, 201);
    assert_eq!(upload(&b.base, "web@1.0.0", BUNDLE, build.map.clone()).await.0, 200, "B sees A's upload");
    let column = build.js.find("new Error(").expect("the throw") + 1;
    let stack = format!("Error: x\n    at e (https://shop.example/assets/{BUNDLE}:1:{column})");
    let ingested = reqwest::Client::new()
        .post(format!("{}/api/v1/events", a.base))
        .header("X-Logboard-Key", INGEST_KEY)
        .json(&json!({"env": "staging", "events": [{"message": "Error: x", "level": "error", "release": "web@1.0.0", "stack": stack}]}))
        .send()
        .await
        .expect("ingest");
    assert_eq!(ingested.status(), 202);
    crate::cloudwatch_process::wait_until_drained(&a.base).await;
    let (line, column) = place_in_fixture("checkout.js", "new Error(");
    let expected = format!("Error: x\n    at submitOrder (../src/checkout.js:{line}:{column})");
    let read = |base: String| async move {
        let page = get_json(&base, "/api/v1/events?project=demo&env=staging&from=now-1h").await;
        page["events"][0].clone()
    };
    let on_b = read(b.base.clone()).await;
    assert_eq!(on_b["stack_original"], expected, "B applies the map A took: {on_b:#}");
    let listed = get_json(&b.base, "/api/v1/sourcemaps?project=demo&release=web%401.0.0").await;
    assert_eq!(listed["files"][0]["name"], BUNDLE, "{listed}");
    assert!(dirs.iter().all(|d| !d.path().join("sourcemaps/maps").exists()), "nothing on the tasks' disks");

    assert_eq!(delete(&b.base, "web@1.0.0", BUNDLE).await, 204);
    assert_eq!(delete(&a.base, "web@1.0.0", BUNDLE).await, 404, "A sees B's delete");
    assert!(read(b.base.clone()).await.get("stack_original").is_none(), "deleted");
}
