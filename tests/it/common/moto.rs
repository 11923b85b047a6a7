//! moto (a real CloudWatch Logs API over HTTP, in Python) as a child process, and a logboard on
//! the CloudWatch store pointed at it.
//!
//! The server is found at `$MOTO_SERVER`, else `.venv/bin/moto_server` in the package, else
//! `moto_server` on `PATH` (`scripts/install-test-deps.sh` installs it). When none exists the
//! test fails: a CloudWatch test that skips proves nothing. It runs through
//! `tests/fixtures/moto/serial_server.py`, on the Python `moto_server` names, so that it answers one
//! request at a time: moto's cancelled DynamoDB transactions otherwise undo other requests' writes.

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use logboard::app::Stores;
use logboard::config::{Backend, Config};
use logboard::metrics::Metrics;
use logboard::store::cloudwatch::{CloudWatchOptions, CloudWatchStore};

use super::TestApp;

/// moto's server answering one request at a time (see the module comment).
const SERIAL_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/moto/serial_server.py");

/// How long moto may take to answer after it was started (Python imports are slow).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server, killed when dropped.
pub struct Moto {
    pub url: String,
    child: Child,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Moto {
    pub async fn start() -> Moto {
        let program = moto_program();
        let python = python_of(&program);
        let port = free_port();
        let log_dir = tempfile::tempdir().expect("temp dir");
        let log = log_dir.path().join("moto.log");
        let log_file = std::fs::File::create(&log).expect("moto log file");
        let child = Command::new(&python)
            .arg(SERIAL_SERVER)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start {} {SERIAL_SERVER} ({e}); run scripts/install-test-deps.sh", python.display())
            });
        let moto = Moto { url: format!("http://127.0.0.1:{port}"), child, log, _log_dir: log_dir };
        moto.wait_until_ready().await;
        moto
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let http = reqwest::Client::new();
        while Instant::now() < deadline {
            if http.get(format!("{}/moto-api/", self.url)).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("moto did not answer at {} within {STARTUP_TIMEOUT:?}; its output:\n{log}", self.url);
    }

    /// An SDK client for moto: static credentials, us-east-1.
    pub fn client(&self) -> Client {
        client_for(&self.url)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state table `name` on a DynamoDB endpoint, with a client as the tests use it.
pub fn table_for(endpoint: &str, name: &str) -> logboard::dynamo::Table {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .build();
    logboard::dynamo::Table::new(aws_sdk_dynamodb::Client::from_conf(config), name)
}

/// An SDK client for a CloudWatch Logs endpoint, as the tests use it.
pub fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_cloudwatchlogs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .build();
    Client::from_conf(config)
}

fn moto_program() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        let path = PathBuf::from(path);
        assert!(path.exists(), "$MOTO_SERVER names {}, which does not exist", path.display());
        return path;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "moto_server not found: set $MOTO_SERVER, or run scripts/install-test-deps.sh (creates {}), \
             or put moto_server on PATH. The CloudWatch tests need it and do not skip.",
            venv.display()
        )
    })
}

/// The Python that has moto: the interpreter on `moto_server`'s `#!` line (pip writes it).
fn python_of(moto_server: &Path) -> PathBuf {
    let script = std::fs::read_to_string(moto_server)
        .unwrap_or_else(|e| panic!("could not read {} ({e})", moto_server.display()));
    let interpreter = script.lines().next().and_then(|line| line.strip_prefix("#!")).map(str::trim);
    match interpreter {
        Some(path) if !path.is_empty() && !path.contains(' ') => PathBuf::from(path),
        _ => panic!(
            "{} does not start with `#!/path/to/python`; point $MOTO_SERVER at pip's moto_server script",
            moto_server.display()
        ),
    }
}

/// A port nothing listens on: CloudWatch "unreachable".
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A logboard on the CloudWatch store, serving until dropped.
pub struct CloudWatchApp {
    pub app: TestApp,
    pub store: Arc<CloudWatchStore>,
    server: tokio::task::AbortHandle,
}

impl std::ops::Deref for CloudWatchApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl Drop for CloudWatchApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl CloudWatchApp {
    /// Starts logboard on `data_dir` with the CloudWatch store talking to `endpoint`.
    /// `config` comes from `common::test_config` with the CloudWatch backend.
    pub async fn start(config: Config, data_dir: tempfile::TempDir, endpoint: &str) -> CloudWatchApp {
        CloudWatchApp::start_with(config, data_dir, endpoint, CloudWatchOptions::default()).await
    }

    /// Like [`CloudWatchApp::start`] with the store's options (timeouts, linger) chosen.
    pub async fn start_with(
        config: Config,
        data_dir: tempfile::TempDir,
        endpoint: &str,
        options: CloudWatchOptions,
    ) -> CloudWatchApp {
        CloudWatchApp::start_on(config, data_dir, endpoint, options, None).await
    }

    /// Like [`CloudWatchApp::start_with`], with the shared state in `table` when given
    /// (`[state] backend = "dynamodb"`).
    pub async fn start_on(
        config: Config,
        data_dir: tempfile::TempDir,
        endpoint: &str,
        options: CloudWatchOptions,
        table: Option<logboard::dynamo::Table>,
    ) -> CloudWatchApp {
        assert_eq!(config.storage.backend, Backend::Cloudwatch, "the config names the CloudWatch backend");
        // The CloudWatch store is injected with a client for moto: the real `open` would ask the
        // AWS default chain for credentials.
        let metrics = Arc::new(Metrics::new());
        let store = Arc::new(
            CloudWatchStore::with_client(&config, client_for(endpoint), Arc::clone(&metrics), options)
                .await
                .expect("store"),
        );
        let stores = match table {
            Some(table) => Stores::shared(&config, store.clone(), table),
            None => Stores::with_events(&config, store.clone()),
        };
        let stores = stores.expect("stores");
        let app = logboard::App::with_stores(config, metrics, stores).expect("app");
        let state = app.state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(logboard::serve(app, listener, std::future::pending())).abort_handle();
        let app = TestApp { addr, base: format!("http://{addr}"), state, data_dir };
        CloudWatchApp { app, store, server }
    }

    /// Stops serving and hands back the data directory, for a restart on the same spool.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.server.abort();
        std::mem::replace(&mut self.app.data_dir, tempfile::tempdir().expect("temp dir"))
    }

    /// Waits until the writer has shipped everything in the spool.
    pub async fn wait_until_shipped(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.store.unshipped_events() > 0 {
            assert!(
                Instant::now() < deadline,
                "{} events still unshipped after {timeout:?}",
                self.store.unshipped_events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Puts `lines` into a new stream of `group` (created when missing), one millisecond apart from
/// `start_ms`.
pub async fn put_lines(client: &Client, group: &str, stream: &str, start_ms: i64, lines: &[String]) {
    let timed: Vec<(i64, String)> =
        lines.iter().enumerate().map(|(i, line)| (start_ms + i as i64, line.clone())).collect();
    put_timed_lines(client, group, stream, &timed).await;
}

/// Puts `lines` (timestamp, message) into `stream` of `group`, creating both when missing.
pub async fn put_timed_lines(client: &Client, group: &str, stream: &str, lines: &[(i64, String)]) {
    let _ = client.create_log_group().log_group_name(group).send().await;
    let _ = client.create_log_stream().log_group_name(group).log_stream_name(stream).send().await;
    let events: Vec<InputLogEvent> = lines
        .iter()
        .map(|(ts, line)| InputLogEvent::builder().timestamp(*ts).message(line.as_str()).build().expect("event"))
        .collect();
    client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("put");
}
