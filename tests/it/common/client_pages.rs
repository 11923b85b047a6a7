//! What the browser-client tests (tests/client.rs) put around a logboard: a web site on another
//! origin that serves the test pages (tests/fixtures/client/) and Vue from node_modules, and a
//! recording proxy in front of logboard's ingest that can answer 503 + `Retry-After` first.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::common::TestApp;

/// The npm files the pages load (package.json; installed by scripts/install-test-deps.sh).
const NODE_FILES: &[(&str, &str)] =
    &[("/vue.global.prod.js", "vue/dist/vue.global.prod.js"), ("/vue2.min.js", "vue2/dist/vue.min.js")];

/// A web site on its own port: `http://127.0.0.1:PORT` is one origin, `http://localhost:PORT`
/// another (a "third party" for the pages).
pub struct Site {
    pub base: String,
    pub third_party: String,
    /// How many requests `/slow-ingest` (the seed's endpoint in the benchmark) has answered.
    pub slow_hits: Arc<AtomicUsize>,
    pages: Arc<Mutex<HashMap<String, String>>>,
}

#[derive(Clone)]
struct SiteState {
    pages: Arc<Mutex<HashMap<String, String>>>,
    node_files: Arc<HashMap<String, String>>,
    slow_hits: Arc<AtomicUsize>,
}

fn node_modules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules")
}

impl Site {
    /// Serves the npm files, `/thrower.js`, `/slow-ingest` and the pages added with `page`.
    /// Panics when node_modules lacks the npm files: these tests never skip.
    pub async fn start() -> Site {
        let mut node_files = HashMap::new();
        for (path, file) in NODE_FILES {
            let full = node_modules().join(file);
            let text = std::fs::read_to_string(&full).unwrap_or_else(|e| {
                panic!("{} is missing ({e}): run `bash scripts/install-test-deps.sh` (npm ci)", full.display())
            });
            node_files.insert(path.to_string(), text);
        }
        let slow_hits = Arc::new(AtomicUsize::new(0));
        let pages = Arc::new(Mutex::new(HashMap::new()));
        let state = SiteState { pages: pages.clone(), node_files: Arc::new(node_files), slow_hits: slow_hits.clone() };
        let router = Router::new().fallback(serve_site).with_state(state);
        let addr = serve(router).await;
        Site {
            base: format!("http://127.0.0.1:{}", addr.port()),
            third_party: format!("http://localhost:{}", addr.port()),
            slow_hits,
            pages,
        }
    }

    /// Serves `html` at `path` from now on.
    pub fn page(&self, path: &str, html: String) {
        self.pages.lock().expect("pages").insert(path.to_string(), html);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    addr
}

fn text(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

async fn serve_site(State(state): State<SiteState>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let page = state.pages.lock().expect("pages").get(&path).cloned();
    if let Some(page) = page {
        return text("text/html; charset=utf-8", page);
    }
    if let Some(js) = state.node_files.get(&path) {
        return text("text/javascript; charset=utf-8", js.clone());
    }
    match path.as_str() {
        // A script of another origin, loaded without `crossorigin`: its error is "Script error.".
        "/thrower.js" => text("text/javascript", "throw new Error('third-party script failed');".into()),
        // The seed client's endpoint: answers after 100 ms, readable from any origin.
        "/slow-ingest" => {
            state.slow_hits.fetch_add(1, Ordering::SeqCst);
            let _ = to_bytes(request.into_body(), 1 << 20).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            ([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], "ok").into_response()
        }
        _ => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Proxied {
    pub method: String,
    pub path: String,
    pub at: Instant,
    pub body_bytes: usize,
    pub status: u16,
}

/// A reverse proxy in front of logboard that answers the first `fail_first` POSTs with
/// 503 + `Retry-After: retry_after` seconds (readable cross-origin, like logboard's own answers)
/// and records every request.
pub struct Proxy {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Proxied>>>,
}

#[derive(Clone)]
struct ProxyState {
    target: String,
    fail_first: usize,
    retry_after: u32,
    posts: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Proxied>>>,
    client: reqwest::Client,
}

impl Proxy {
    pub async fn start(app: &TestApp, fail_first: usize, retry_after: u32) -> Proxy {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            target: app.base.clone(),
            fail_first,
            retry_after,
            posts: Arc::new(AtomicUsize::new(0)),
            seen: seen.clone(),
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
        };
        let addr = serve(Router::new().fallback(forward).with_state(state)).await;
        Proxy { base: format!("http://127.0.0.1:{}", addr.port()), seen }
    }

    pub fn requests(&self) -> Vec<Proxied> {
        self.seen.lock().expect("proxy log").clone()
    }

    /// The POSTs to the ingest path, in arrival order.
    pub fn posts(&self) -> Vec<Proxied> {
        self.requests().into_iter().filter(|r| r.method == "POST").collect()
    }
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 8 << 20).await.expect("request body");
    let path = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let record = |status: u16| Proxied {
        method: parts.method.to_string(),
        path: path.clone(),
        at,
        body_bytes: body.len(),
        status,
    };

    if parts.method == Method::POST && state.posts.fetch_add(1, Ordering::SeqCst) < state.fail_first {
        state.seen.lock().expect("proxy log").push(record(503));
        let mut answer = (StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"busy, retry later"}"#).into_response();
        let headers = answer.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(state.retry_after));
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("retry-after"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return answer;
    }

    let mut outgoing = state.client.request(parts.method.clone(), format!("{}{path}", state.target));
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let upstream = outgoing.body(body.to_vec()).send().await.expect("logboard answers the proxy");
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let bytes = upstream.bytes().await.expect("logboard's answer");
    state.seen.lock().expect("proxy log").push(record(status.as_u16()));
    let mut answer = Response::new(Body::from(bytes));
    *answer.status_mut() = status;
    for (name, value) in &headers {
        if name != header::TRANSFER_ENCODING && name != header::CONTENT_LENGTH && name != header::CONNECTION {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// Fills a page template: `{{NAME}}` → value.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut page = template.to_string();
    for (name, value) in values {
        page = page.replace(&format!("{{{{{name}}}}}"), value);
    }
    assert!(!page.contains("{{"), "a placeholder was left unfilled in:\n{page}");
    page
}

/// The events of `env` in project `demo`, oldest first, once there are at least `count` of them
/// (waiting up to `timeout`); then waits `settle` more and reads again, so that late duplicates
/// would show.
pub async fn wait_for_events(
    app: &TestApp,
    env: &str,
    count: usize,
    timeout: Duration,
    settle: Duration,
) -> Vec<Value> {
    let started = Instant::now();
    let read = || async {
        let (status, page) = app.read(&format!("/api/v1/events?project=demo&env={env}&limit=1000")).await;
        assert_eq!(status, 200, "read API answered {page}");
        let mut events = page["events"].as_array().cloned().unwrap_or_default();
        events.reverse();
        events
    };
    loop {
        let events = read().await;
        if events.len() >= count {
            break;
        }
        if started.elapsed() > timeout {
            let messages: Vec<&str> = events.iter().filter_map(|e| e["message"].as_str()).collect();
            panic!("only {} of {count} events arrived in {env} within {timeout:?}: {messages:#?}", events.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(settle).await;
    read().await
}
