//! The real binary: its commands, its first start, and what survives `kill -9` and SIGTERM.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::binary::{self, Server, logboard};
use serde_json::{Value, json};

/// `logboard serve` with the shipped config; `admin_password` sets `admin`'s.
fn start_server(data_dir: &Path, admin_password: Option<&str>) -> Server {
    start_server_under(data_dir, admin_password, None)
}

/// [`start_server`], under `ulimit -n` when `open_file_limit` is given.
fn start_server_under(data_dir: &Path, admin_password: Option<&str>, open_file_limit: Option<u32>) -> Server {
    let mut env = vec![("RUST_LOG", "warn")];
    if let Some(password) = admin_password {
        env.push(("LOGBOARD_ADMIN_PASSWORD", password));
    }
    binary::start_server(data_dir, &env, open_file_limit)
}

#[test]
fn check_config_names_every_problem_by_key_and_exits_1() {
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"here\"\nport = 1\n[[projects]]\nname = \"a\"\nenvs = []\ningest_keys = [\"k\"]\n",
    )
    .expect("write");
    let output = logboard(&["check-config", "--config", &bad.display().to_string()], &[]).output().expect("run");
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("server.port: unknown key"), "{text}");
    assert!(text.contains("server.listen: `here` is not an address"), "{text}");
    assert!(text.contains("projects[0].envs: must name at least one environment"), "{text}");

    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let ok = logboard(&["check-config"], &[("LOGBOARD_CONFIG", &shipped.display().to_string())]).output().expect("run");
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stdout));

    let overridden = logboard(
        &["check-config", "--config", &shipped.display().to_string()],
        &[("LOGBOARD__STORAGE__BACKEND", "s3")],
    )
    .output()
    .expect("run");
    assert_eq!(overridden.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&overridden.stdout).starts_with("storage.backend: unknown variant `s3`"));
}

#[test]
fn hash_password_prints_only_an_argon2id_string_that_verifies() {
    let mut child =
        logboard(&["hash-password"], &[]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("run");
    child.stdin.take().expect("stdin").write_all(b"s3cret pass\n").expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    let phc = String::from_utf8(output.stdout).expect("utf8");
    let phc = phc.trim_end();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert_eq!(phc.lines().count(), 1);

    // The printed hash logs a user in.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config.toml");
    let text = common::SHIPPED_CONFIG
        .replace("[auth]", &format!("[auth]\nusers = [{{ name = \"ops\", password_hash = \"{phc}\" }}]"));
    std::fs::write(&config, text).expect("write");
    let check = logboard(&["check-config", "--config", &config.display().to_string()], &[]).output().expect("run");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

#[tokio::test]
async fn a_first_start_prints_a_generated_admin_password_that_logs_in() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start_server(dir.path(), None);
    let password = server.generated_password.clone().expect("a generated password is printed");
    assert!(password.len() >= 20, "{password}");
    let other = tempfile::tempdir().expect("dir");
    let second = start_server(other.path(), None);
    assert_ne!(second.generated_password, Some(password.clone()), "never a fixed default");

    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let login = client
        .post(format!("{}/login", server.base))
        .form(&[("username", "admin"), ("password", password.as_str())])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 303);
    assert!(login.headers().get("set-cookie").is_some());
}

async fn post_event(client: &reqwest::Client, base: &str, seq: usize) -> bool {
    let body = json!({"env": "production", "events": [{"message": format!("seq-{seq}"), "extra": {"seq": seq}}]});
    matches!(
        client.post(format!("{base}/api/v1/events")).header("X-Logboard-Key", common::INGEST_KEY).json(&body).send().await,
        Ok(response) if response.status() == 202
    )
}

/// Every `seqN` message stored in demo/production, via the read API.
async fn stored_sequence_numbers(base: &str) -> Vec<usize> {
    let client = reqwest::Client::new();
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/events?project=demo&env=production&limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .basic_auth("admin", Some(common::ADMIN_PASSWORD))
            .send()
            .await
            .expect("read")
            .json()
            .await
            .expect("json");
        for event in page["events"].as_array().expect("events") {
            if let Some(seq) =
                event["message"].as_str().and_then(|m| m.strip_prefix("seq-")).and_then(|n| n.parse().ok())
            {
                seqs.push(seq);
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    seqs.sort_unstable();
    seqs
}

#[tokio::test]
async fn every_acknowledged_event_survives_kill_9_during_load() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = start_server(dir.path(), Some(common::ADMIN_PASSWORD));
    let base = server.base.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::new();

    // Four senders with disjoint sequence numbers, recording what was acknowledged.
    let mut senders = Vec::new();
    for lane in 0..4 {
        let (client, base, stop) = (client.clone(), base.clone(), Arc::clone(&stop));
        senders.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut seq = lane;
            while !stop.load(Ordering::Relaxed) && seq < 40_000 {
                if post_event(&client, &base, seq).await {
                    acknowledged.push(seq);
                } else {
                    break;
                }
                seq += 4;
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reaped");
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for sender in senders {
        acknowledged.extend(sender.await.expect("sender"));
    }
    acknowledged.sort_unstable();
    assert!(acknowledged.len() > 50, "the load ran: {} acknowledged", acknowledged.len());

    let restarted = start_server(dir.path(), Some(common::ADMIN_PASSWORD));
    let stored = stored_sequence_numbers(&restarted.base).await;
    let missing: Vec<_> = acknowledged.iter().filter(|s| stored.binary_search(s).is_err()).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events lost after kill -9: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(10)]
    );
    eprintln!("kill -9: {} acknowledged, {} stored after restart", acknowledged.len(), stored.len());
    let mut unique = stored.clone();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "no duplicates");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_keeps_the_data() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = start_server(dir.path(), Some(common::ADMIN_PASSWORD));
    let client = reqwest::Client::new();
    for seq in 0..20 {
        assert!(post_event(&client, &server.base, seq).await);
    }
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().expect("kill -TERM");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(25);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "logboard did not stop within 25 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
    let restarted = start_server(dir.path(), Some(common::ADMIN_PASSWORD));
    assert_eq!(stored_sequence_numbers(&restarted.base).await, (0..20).collect::<Vec<_>>());
}

/// A figure from `/proc/PID/status` in kB, e.g. `VmRSS` (resident now) or `VmHWM` (its peak).
fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).expect("field in /proc status");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number of kB")
}

/// Concurrent failed logins in the memory test, each from its own address.
const LOGIN_BURST: usize = 150;
/// Argon2 memory of one password check (m = 19 MiB).
const PASSWORD_CHECK_KB: u64 = 19 * 1024;
/// The server runs one password check per CPU, up to eight.
const MAX_RUNNING_PASSWORD_CHECKS: u64 = 8;

#[tokio::test]
async fn a_burst_of_failed_logins_from_many_addresses_keeps_memory_bounded() {
    let dir = tempfile::tempdir().expect("dir");
    let server = start_server(dir.path(), Some(common::ADMIN_PASSWORD));
    let pid = server.child.id();
    let client = |source: std::net::IpAddr| {
        reqwest::Client::builder()
            .local_address(source)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    };
    // Warm up: one failed login, so the baseline includes the allocator's first 19 MiB.
    let warm_up = client([127, 0, 0, 200].into())
        .post(format!("{}/login", server.base))
        .form(&[("username", "admin"), ("password", "warm-up")])
        .send()
        .await
        .expect("warm-up login");
    assert_eq!(warm_up.status(), 401);
    let before_kb = proc_status_kb(pid, "VmRSS");

    // Distinct addresses (127.0.0.0/8 is all loopback) and names: no throttle stands in the way.
    let attempts = (0..LOGIN_BURST).map(|i| {
        let source = std::net::Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8);
        let request = client(source.into())
            .post(format!("{}/login", server.base))
            .form(&[("username", format!("user-{i}")), ("password", "guess".to_string())]);
        async move { request.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let after_kb = proc_status_kb(pid, "VmRSS");
    let peak_kb = proc_status_kb(pid, "VmHWM");
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    eprintln!(
        "{LOGIN_BURST} parallel failed logins: VmRSS {before_kb} kB before, {after_kb} kB after, VmHWM {peak_kb} kB; \
         {} checked (401), {} refused as busy (503)",
        count(401),
        count(503)
    );
    let mut histogram = std::collections::BTreeMap::new();
    for status in &statuses {
        *histogram.entry(*status).or_insert(0) += 1;
    }
    assert_eq!(count(401) + count(503), LOGIN_BURST, "every attempt answered 401 or 503: {histogram:?}");
    assert!(count(401) > 0, "some were checked");
    // What the checks that may run at once hold, and 64 MiB for everything else.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let max_growth_kb = cpus.min(MAX_RUNNING_PASSWORD_CHECKS) * PASSWORD_CHECK_KB + 64 * 1024;
    assert!(
        peak_kb.saturating_sub(before_kb) < max_growth_kb,
        "peak memory grew from {before_kb} kB to {peak_kb} kB (allowed: +{max_growth_kb} kB)"
    );

    // The service still answers, and the right password still logs in.
    let login = client([127, 0, 0, 201].into())
        .post(format!("{}/login", server.base))
        .form(&[("username", "admin"), ("password", common::ADMIN_PASSWORD)])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 303);
}

#[tokio::test]
async fn health_checks_answer_while_idle_connections_outnumber_the_open_file_limit() {
    const OPEN_FILE_LIMIT: u32 = 256;
    let dir = tempfile::tempdir().expect("dir");
    let server = start_server_under(dir.path(), Some(common::ADMIN_PASSWORD), Some(OPEN_FILE_LIMIT));
    let addr = server.base.trim_start_matches("http://").to_string();
    // Connections that send nothing, more than the server has descriptors for.
    let mut idle = Vec::new();
    for _ in 0..OPEN_FILE_LIMIT + 100 {
        match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(stream)) => idle.push(stream),
            _ => break, // the server no longer accepts: the probe below will tell
        }
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let health = client.get(format!("{}/healthz", server.base)).send().await.expect("/healthz answers");
    assert_eq!(health.status(), 200);
    let page = client.get(format!("{}/login", server.base)).send().await.expect("/login answers");
    assert_eq!(page.status(), 503, "past the cap other paths get a quick 503");
    drop(idle);
}
