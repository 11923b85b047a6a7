//! The disk guard: below `retention.min_free_bytes` free under `data_dir`, ingest answers 503
//! with `Retry-After` and keeps nothing, `/readyz` fails and the home page says why. On a real
//! small file system (a tmpfs mounted for the test, when this machine allows it): ingest until
//! refused, nothing acknowledged is lost, and ingest resumes once space is freed.

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::moto::{CloudWatchApp, closed_port_url};
use serde_json::{Value, json};

/// More than any disk has free: the guard refuses from the start.
const UNREACHABLE_FREE: &str = "1152921504606846976";

async fn post_events(app: &common::TestApp, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/v1/events"))
        .header("X-Logboard-Key", common::INGEST_KEY)
        .json(body)
        .send()
        .await
        .expect("ingest")
}

/// The 503 of a refused ingest: `Retry-After` and the reason.
async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").map(|v| v.to_str().expect("ascii")), Some("30"));
    let body: Value = response.json().await.expect("json");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("min_free_bytes")), "{body}");
}

async fn assert_not_ready_for_disk(app: &common::TestApp) {
    let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.expect("json");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("min_free_bytes")), "{body}");
}

async fn home_page(app: &common::TestApp) -> String {
    let client = app.logged_in_client().await;
    client.get(app.url("/")).send().await.expect("home").text().await.expect("html")
}

#[tokio::test]
async fn below_the_free_space_minimum_ingest_is_refused_readiness_fails_and_the_home_page_says_why() {
    let app = common::spawn_app_with(&[("LOGBOARD__RETENTION__MIN_FREE_BYTES", UNREACHABLE_FREE)]).await;
    assert_refused(post_events(&app, &json!({"env": "production", "message": "refused"})).await).await;
    assert_not_ready_for_disk(&app).await;
    let html = home_page(&app).await;
    assert!(html.contains("class=\"alert disk-low\""), "{html}");
    assert!(html.contains("below retention.min_free_bytes (1099511627776 MiB)"), "{html}");
    let (status, page) = app.read("/api/v1/events?project=demo&env=production").await;
    assert_eq!((status, page["events"].as_array().map(Vec::len)), (200, Some(0)), "nothing was stored");

    let roomy = common::spawn_app().await;
    let (status, _) = roomy.ingest(&json!({"env": "production", "message": "stored"})).await;
    assert_eq!(status, 202, "the default minimum (512 MiB) leaves this machine's disk alone");
    assert!(!home_page(&roomy).await.contains("disk-low"));
}

#[tokio::test]
async fn the_guard_keeps_the_cloudwatch_spool_from_filling_the_disk_too() {
    let dir = tempfile::tempdir().expect("dir");
    let unreachable = closed_port_url();
    let config = common::test_config(
        dir.path(),
        &[
            ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
            ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", &unreachable),
            ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
            ("LOGBOARD__RETENTION__MIN_FREE_BYTES", UNREACHABLE_FREE),
        ],
    );
    let app = CloudWatchApp::start(config, dir, &unreachable).await;
    assert_refused(post_events(&app, &json!({"env": "production", "message": "refused"})).await).await;
    assert_eq!(app.store.unshipped_events(), 0, "nothing went into the spool");
    assert_not_ready_for_disk(&app).await;
}

/// A tmpfs mounted for a test; unmounted (lazily: the service may still hold files) when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// `None` (with the reason printed) where this machine does not allow mounting.
    fn mount(path: &Path, size_mib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("mount point");
        let size = format!("size={size_mib}m");
        match Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(path).output() {
            Ok(out) if out.status.success() => Some(Tmpfs { path: path.to_path_buf() }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}); the guard is tested without one by \
                           below_the_free_space_minimum_ingest_is_refused_readiness_fails_and_the_home_page_says_why",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(error) => {
                eprintln!("SKIPPED: cannot run mount ({error})");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A message of `len` hex digits from `seed`: compresses little, as real logs after a point.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut text = String::with_capacity(len);
    while text.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(&format!("{x:016x}"));
    }
    text.truncate(len);
    text
}

#[tokio::test]
async fn on_a_full_small_file_system_ingest_stops_before_the_disk_fills_loses_nothing_acknowledged_and_resumes() {
    // More than the store's write-ahead log holds (~8 MiB here): its checkpoint copies those
    // pages into the database file after ingest stops, and must find room.
    const MIN_FREE_MIB: u64 = 16;
    let outer = tempfile::tempdir().expect("dir");
    let Some(fs) = Tmpfs::mount(&outer.path().join("fs"), 40) else { return };
    // Ballast: deleting it later is the operator freeing space.
    let ballast = fs.path.join("ballast");
    std::fs::write(&ballast, vec![0x5a; 16 << 20]).expect("ballast");
    let data_dir = tempfile::tempdir_in(&fs.path).expect("data dir");
    let min_free = (MIN_FREE_MIB << 20).to_string();
    let config = common::test_config(
        data_dir.path(),
        &[
            ("LOGBOARD__RETENTION__MIN_FREE_BYTES", &min_free),
            ("LOGBOARD__LIMITS__KEY_BYTES_PER_SEC", "1073741824"),
            ("LOGBOARD__LIMITS__KEY_BURST_BYTES", "1073741824"),
            ("LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC", "0"),
        ],
    );
    let app = common::spawn_app_from(config, data_dir).await;

    let mut acked: HashSet<String> = HashSet::new();
    let mut refused = None;
    for batch in 0..2_000u64 {
        let markers: Vec<String> = (0..50).map(|j| format!("fill-{batch}-{j}")).collect();
        let events: Vec<Value> = markers
            .iter()
            .enumerate()
            .map(|(j, m)| json!({"message": format!("{m} {}", noise(batch * 50 + j as u64, 2000))}))
            .collect();
        let response = post_events(&app, &json!({"env": "production", "events": events})).await;
        match response.status().as_u16() {
            202 => acked.extend(markers),
            503 => {
                refused = Some(response);
                break;
            }
            other => panic!("ingest answered {other}: {}", response.text().await.unwrap_or_default()),
        }
    }
    let refused = refused.expect("ingest was refused before 2,000 batches (100 MB) went into a 40 MiB file system");
    assert!(refused.headers().contains_key("retry-after"), "{:?}", refused.headers());
    assert!(acked.len() > 500, "some megabytes were taken first: {} events", acked.len());
    // The guard looks every second; by then it has seen the disk (the 503 may have been the
    // guard's already, or a store write that found no room and kept nothing).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_refused(post_events(&app, &json!({"env": "production", "message": "fill-refused"})).await).await;
    assert_not_ready_for_disk(&app).await;
    assert!(home_page(&app).await.contains("disk-low"));

    std::fs::remove_file(&ballast).expect("free the ballast");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = app.ingest(&json!({"env": "production", "message": "fill-after space returned"})).await;
        if status == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "ingest did not resume within 10 s of freeing space ({status})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(reqwest::get(app.url("/readyz")).await.expect("readyz").status(), 200);

    let client = app.logged_in_client().await;
    let export = client
        .get(app.url("/api/v1/events.ndjson?project=demo&env=production&from=now-1h"))
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("ndjson");
    let stored: Vec<String> = export
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("json line")["message"].as_str().unwrap_or("").to_string()
        })
        .filter_map(|message| message.split(' ').next().map(str::to_string))
        .collect();
    let stored_fill: HashSet<String> =
        stored.iter().filter(|m| m.starts_with("fill-") && m.as_str() != "fill-after").cloned().collect();
    assert_eq!(stored_fill.len(), acked.len(), "every acknowledged event is stored, and none refused");
    assert_eq!(stored_fill, acked);
    assert!(stored.iter().any(|m| m == "fill-after"));
    drop(app);
    drop(fs);
}
