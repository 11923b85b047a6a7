//! The test harness: a logboard on a random port with its own data directory.

pub mod binary;
pub mod browser;
pub mod client_pages;
pub mod fake_cloudwatch;
pub mod moto;
pub mod proxy;
pub mod receivers;

use std::net::SocketAddr;

use logboard::config::{Config, Secret};
use logboard::web::AppState;
use serde_json::Value;

pub const SHIPPED_CONFIG: &str = include_str!("../../../config.toml");
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const INGEST_KEY: &str = "demo-ingest-key";

/// A port free on 127.0.0.1 now (for a server started by another process).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A running logboard; its data directory is deleted when it is dropped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub data_dir: tempfile::TempDir,
}

/// The shipped config on a fresh data directory, overlaid with `LOGBOARD__` pairs.
pub fn test_config(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Config {
    let mut pairs: Vec<(String, String)> = vec![
        ("LOGBOARD__STORAGE__DATA_DIR".into(), data_dir.display().to_string()),
        ("LOGBOARD__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
        // The canary writes a project of its own; the tests that want it turn it on.
        ("LOGBOARD__MONITOR__CANARY_INTERVAL_SECS".into(), "0".into()),
    ];
    pairs.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut config = Config::from_sources(SHIPPED_CONFIG, &pairs).expect("test config is valid");
    config.auth.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    config
}

/// Starts logboard on the embedded store, on 127.0.0.1 and a free port.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(env: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(data_dir.path(), env);
    spawn_app_from(config, data_dir).await
}

pub async fn spawn_app_from(config: Config, data_dir: tempfile::TempDir) -> TestApp {
    let app = logboard::App::build(config).await.expect("app");
    let state = app.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The product's own serve (accept loop, background jobs), so that tests run as the binary does.
    tokio::spawn(logboard::serve(app, listener, std::future::pending()));
    TestApp { addr, base: format!("http://{addr}"), state, data_dir }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client that keeps cookies and does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// A client logged in as `admin`.
    pub async fn logged_in_client(&self) -> reqwest::Client {
        let client = self.client();
        let response = client
            .post(self.url("/login"))
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD), ("next", "/")])
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 303, "login redirects");
        client
    }

    /// POSTs a JSON body to the ingest endpoint with the demo key.
    pub async fn ingest(&self, body: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(self.url("/api/v1/events"))
            .header("X-Logboard-Key", INGEST_KEY)
            .json(body)
            .send()
            .await
            .expect("ingest request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json answer"))
    }

    /// [`TestApp::read`] of an owned path (for closures that build it).
    pub async fn read_owned(&self, path_and_query: String) -> (u16, Value) {
        self.read(&path_and_query).await
    }

    /// GETs a read-API path as a logged-in user (Basic auth).
    pub async fn read(&self, path_and_query: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(self.url(path_and_query))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .expect("read request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}
