//! The real binary on the CloudWatch backend against moto: `kill -9` during sustained load, a
//! CloudWatch outage of several seconds (a TCP proxy the test cuts), and SIGTERM with a full
//! queue. Every event carries a unique sequential number; each test proves that every event
//! answered with 202 reached moto, and counts the duplicates.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::Client;
use common::binary::{self, Server};
use common::moto::Moto;
use common::proxy::Proxy;
use logboard::event::{StoredEvent, unix_ms};
use serde_json::{Value, json};
use time::OffsetDateTime;

const GROUP: &str = "/logboard/demo/production";
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// `logboard serve` on the CloudWatch backend at `endpoint`.
fn start_server(data_dir: &Path, endpoint: &str) -> Server {
    start_server_with(data_dir, endpoint, &[])
}

/// [`start_server`] with `extra` variables on top (another task of the same service, say).
pub fn start_server_with(data_dir: &Path, endpoint: &str, extra: &[(&str, &str)]) -> Server {
    start_configured(data_dir, endpoint, "", extra)
}

/// [`start_server_with`] with `config` appended to the shipped config (alert rules, say).
pub fn start_configured(data_dir: &Path, endpoint: &str, config: &str, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
        ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", endpoint),
        ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
        // Generous for a load test on loopback; the limits are tested elsewhere.
        ("LOGBOARD__LIMITS__KEY_BYTES_PER_SEC", "1073741824"),
        ("LOGBOARD__LIMITS__KEY_BURST_BYTES", "1073741824"),
        ("LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC", "0"),
        ("LOGBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ("RUST_LOG", "error"),
    ];
    env.extend_from_slice(extra);
    if config.is_empty() {
        binary::start_server(data_dir, &env, None)
    } else {
        binary::start_server_with_config(data_dir, config, &env)
    }
}

/// The value of one metric line of `/metrics`.
pub async fn metric(base: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics")).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

pub async fn wait_until_drained(base: &str) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        if metric(base, "logboard_spool_events").await == Some(0.0) {
            return;
        }
        assert!(Instant::now() < deadline, "the spool did not drain within {DRAIN_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How often each sequence number is in moto.
async fn delivered(client: &Client) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    let mut token = None;
    loop {
        let page = client.filter_log_events().log_group_name(GROUP).set_next_token(token).send().await.expect("filter");
        for e in page.events() {
            let event: StoredEvent = serde_json::from_str(e.message().unwrap_or("")).expect("our JSON");
            let seq: u64 = event.message.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("numbered");
            *counts.entry(seq).or_insert(0) += 1;
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return counts;
        }
    }
}

/// (acknowledged but missing, duplicated deliveries).
fn loss_and_duplicates(acknowledged: &[u64], counts: &BTreeMap<u64, usize>) -> (usize, usize) {
    let lost = acknowledged.iter().filter(|s| !counts.contains_key(s)).count();
    (lost, counts.values().map(|c| c - 1).sum())
}

/// Clients sending batches of 100 numbered events to whatever `base` holds, until stopped.
struct Load {
    acknowledged: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: Arc<Mutex<String>>, clients: usize) -> Load {
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let tasks = (0..clients)
            .map(|_| {
                let (base, acknowledged, stop, next) =
                    (Arc::clone(&base), Arc::clone(&acknowledged), Arc::clone(&stop), Arc::clone(&next));
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let first = next.fetch_add(100, Ordering::Relaxed);
                        let now = unix_ms(OffsetDateTime::now_utc());
                        let events: Vec<Value> = (first..first + 100)
                            .map(|s| json!({"message": format!("load {s:08}"), "timestamp": now}))
                            .collect();
                        let url = format!("{}/api/v1/events", base.lock().expect("base"));
                        let answer = http
                            .post(url)
                            .header("X-Logboard-Key", common::INGEST_KEY)
                            .json(&json!({"env": "production", "events": events}))
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        match answer {
                            Ok(response) if response.status() == 202 => {
                                acknowledged.lock().expect("acks").extend(first..first + 100);
                            }
                            // Refused or cut by a kill: not acknowledged; the client would retry.
                            _ => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                })
            })
            .collect();
        Load { acknowledged, stop, tasks }
    }

    async fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("load task");
        }
        let mut acknowledged = self.acknowledged.lock().expect("acks").clone();
        acknowledged.sort_unstable();
        acknowledged
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_sustained_load_loses_no_acknowledged_event() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut server = start_server(dir.path(), &moto.url);
    let base = Arc::new(Mutex::new(server.base.clone()));
    let load = Load::start(Arc::clone(&base), 2);
    for round in 0..3u64 {
        // A different moment each round: mid-commit, mid-put, mid-answer.
        let pause = 700 + (rand_u64() % 900);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("reaped");
        println!("round {round}: killed after {pause} ms");
        server = start_server(dir.path(), &moto.url);
        *base.lock().expect("base") = server.base.clone();
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let acknowledged = load.stop().await;
    wait_until_drained(&server.base).await;
    let counts = delivered(&moto.client()).await;
    let (lost, duplicated) = loss_and_duplicates(&acknowledged, &counts);
    println!(
        "kill -9 ×3 under load: {} acknowledged, {} in moto, lost {lost}, duplicated {duplicated}",
        acknowledged.len(),
        counts.len()
    );
    assert!(acknowledged.len() >= 1000, "the load ran: {}", acknowledged.len());
    assert_eq!(lost, 0, "every acknowledged event reached CloudWatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudwatch_outage_of_several_seconds_loses_nothing_and_is_retried() {
    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.url).await;
    let dir = tempfile::tempdir().expect("dir");
    let server = start_server(dir.path(), &proxy.url);
    let base = Arc::new(Mutex::new(server.base.clone()));
    let load = Load::start(Arc::clone(&base), 1);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let spooled = metric(&server.base, "logboard_spool_events").await.expect("metrics");
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let acknowledged = load.stop().await;
    wait_until_drained(&server.base).await;
    let retried = metric(&server.base, "logboard_puts_retried_total").await.expect("metrics");
    let counts = delivered(&moto.client()).await;
    let (lost, duplicated) = loss_and_duplicates(&acknowledged, &counts);
    println!(
        "4 s outage: {} acknowledged, {spooled} waiting in the spool during it, {retried} puts retried, \
         lost {lost}, duplicated {duplicated}",
        acknowledged.len()
    );
    assert!(spooled > 0.0, "events kept arriving and waited on disk");
    assert!(retried > 0.0, "the writer met the outage");
    assert_eq!(lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_full_queue_exits_0_in_time_and_the_rest_ships_after_a_restart() {
    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.url).await;
    proxy.cut();
    let dir = tempfile::tempdir().expect("dir");
    let mut server = start_server(dir.path(), &proxy.url);
    let http = reqwest::Client::new();
    let now = unix_ms(OffsetDateTime::now_utc());
    for first in (0..5000u64).step_by(500) {
        let events: Vec<Value> =
            (first..first + 500).map(|s| json!({"message": format!("queued {s:08}"), "timestamp": now})).collect();
        let response = http
            .post(format!("{}/api/v1/events", server.base))
            .header("X-Logboard-Key", common::INGEST_KEY)
            .json(&json!({"env": "production", "events": events}))
            .send()
            .await
            .expect("ingest");
        assert_eq!(response.status(), 202);
    }
    server.terminate();
    // ECS sends SIGKILL 30 s after SIGTERM: the process must be gone before that.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 30 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(0), "a clean exit");

    proxy.restore();
    server = start_server(dir.path(), &proxy.url);
    wait_until_drained(&server.base).await;
    let counts = delivered(&moto.client()).await;
    let acknowledged: Vec<u64> = (0..5000).collect();
    let (lost, duplicated) = loss_and_duplicates(&acknowledged, &counts);
    println!("SIGTERM with 5000 queued: lost {lost}, duplicated {duplicated}");
    assert_eq!((lost, duplicated), (0, 0));
}

fn rand_u64() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").subsec_nanos();
    u64::from(nanos) ^ (u64::from(std::process::id()) << 7)
}
