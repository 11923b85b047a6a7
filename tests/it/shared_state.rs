//! Many tasks, one monitor (`shared/spec/state.md`): real `logboard` processes on the CloudWatch
//! store and `[state] backend = "dynamodb"`, all on one moto server (CloudWatch Logs and the
//! DynamoDB table), each with its own data directory — and a deploy, which replaces them all
//! with new ones on empty data directories.

use crate::cloudwatch_process::{start_configured, start_server_with, wait_until_drained};
use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::binary::{self, Server};
use common::moto::{Moto, table_for};
use common::proxy::Proxy;
use logboard::event::unix_ms;
use serde_json::{Value, json};
use time::OffsetDateTime;

const TABLE: &str = "logboard-state-test";
const WAIT: Duration = Duration::from_secs(30);
const HOUR_MS: i64 = 3_600_000;

pub(crate) fn state_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("LOGBOARD__STATE__BACKEND", "dynamodb".into()),
        ("LOGBOARD__STATE__TABLE", TABLE.into()),
        ("LOGBOARD__STATE__ENDPOINT_URL", moto.url.clone()),
        ("LOGBOARD__STATE__REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/nonexistent".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
    ]
}

/// `logboard create-state-table` against moto: its exit code and what it printed.
fn create_table(moto: &Moto) -> (bool, String) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");
    let env = state_env(moto);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = binary::logboard(&["create-state-table", "--config", config], &env).output().expect("run");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A task of the service: CloudWatch and the state table on moto, its own data directory.
fn start_task(moto: &Moto, dir: &tempfile::TempDir) -> Server {
    let env = state_env(moto);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    start_server_with(dir.path(), &moto.url, &env)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

/// An error event of the issue `kind: message`, `age_ms` old, by `user`.
fn error(kind: &str, message: &str, age_ms: i64, user: &str) -> Value {
    let now = unix_ms(OffsetDateTime::now_utc());
    json!({"level": "error", "type": kind, "message": message, "timestamp": now - age_ms, "user": {"id": user}})
}

async fn ingest(base: &str, events: Vec<Value>) {
    let answer = http()
        .post(format!("{base}/api/v1/events"))
        .header("X-Logboard-Key", common::INGEST_KEY)
        .json(&json!({"env": "production", "events": events}))
        .send()
        .await
        .expect("ingest");
    assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap_or_default());
}

/// The issues of demo/production over the last 3 days, as the API lists them.
async fn listed(base: &str) -> Vec<Value> {
    let listed: Value = http()
        .get(format!("{base}/api/v1/issues?project=demo&env=production&from=now-3d"))
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .send()
        .await
        .expect("issues")
        .json()
        .await
        .expect("json");
    listed["issues"].as_array().unwrap_or_else(|| panic!("issues: {listed}")).clone()
}

/// The issues of demo/production over the last 3 days, by title: (count, users, status).
async fn issues(base: &str) -> BTreeMap<String, (u64, u64, String)> {
    listed(base)
        .await
        .iter()
        .map(|i| {
            let title = i["title"].as_str().expect("title").to_string();
            let status = i["status"].as_str().expect("status").to_string();
            (title, (i["count"].as_u64().expect("count"), i["users"].as_u64().expect("users"), status))
        })
        .collect()
}

async fn fingerprint(base: &str, title: &str) -> String {
    let issues = listed(base).await;
    let found = issues.iter().find(|i| i["title"] == title);
    found.and_then(|i| i["fingerprint"].as_str()).expect("the issue").to_string()
}

/// Waits until every task in `bases` lists `expected`.
async fn settle(bases: &[&str], expected: &BTreeMap<String, (u64, u64, String)>) {
    for base in bases {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = issues(base).await;
            if &now == expected {
                break;
            }
            assert!(Instant::now() < deadline, "on {base}: {now:?}, expected {expected:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn expect(rows: &[(&str, u64, u64, &str)]) -> BTreeMap<String, (u64, u64, String)> {
    rows.iter().map(|(t, c, u, s)| (t.to_string(), (*c, *u, s.to_string()))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_then_three_tasks_count_every_error_once_whatever_its_age_share_statuses_and_a_deploy_keeps_them() {
    let moto = Moto::start().await;
    let (ok, said) = create_table(&moto);
    assert!(ok && said.contains("created the table"), "{said}");
    let (ok, said) = create_table(&moto);
    assert!(ok && said.contains("exists already"), "a second run exits 0: {said}");

    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let a = start_task(&moto, &dirs[0]);
    let b = start_task(&moto, &dirs[1]);
    let (pay, cart) = ("payment declined", "cart is empty");

    // A takes 5 fresh errors; B takes 4 of the same issue, two of them 3 h old and one 30 h old
    // (a mobile client's retry), and 3 of another issue.
    ingest(&a.base, (0..5).map(|i| error("PaymentError", pay, i, &format!("u{i}"))).collect()).await;
    ingest(
        &b.base,
        vec![
            error("PaymentError", pay, 0, "u1"),
            error("PaymentError", pay, 3 * HOUR_MS, "u7"),
            error("PaymentError", pay, 3 * HOUR_MS + 1, "u8"),
            error("PaymentError", pay, 30 * HOUR_MS, "u9"),
            error("CartError", cart, 10, "u1"),
            error("CartError", cart, 20, "u2"),
            error("CartError", cart, 30, "u2"),
        ],
    )
    .await;
    // First seen 30 h ago: no longer `new`.
    let counted = expect(&[(pay, 9, 8, "ongoing"), (cart, 3, 2, "new")]);
    settle(&[&a.base, &b.base], &counted).await;
    for task in [&a, &b] {
        let requests = metric(&task.base, "logboard_state_requests_total").await.expect("the metric");
        assert!(requests >= 1.0, "the table's requests are counted: {requests}");
    }

    // Resolved on A: resolved on B at its next request.
    let fp = fingerprint(&a.base, pay).await;
    let resolved = http()
        .post(format!("{}/api/v1/issues/{fp}/status", a.base))
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .json(&json!({"project": "demo", "env": "production", "status": "resolved"}))
        .send()
        .await
        .expect("status");
    assert_eq!(resolved.status(), 200);
    let resolved = expect(&[(pay, 9, 8, "resolved"), (cart, 3, 2, "new")]);
    assert_eq!(issues(&b.base).await, resolved);

    // A deploy that scales out: every task stops (SIGTERM), three new ones start on empty data
    // directories.
    wait_until_drained(&a.base).await;
    wait_until_drained(&b.base).await;
    for task in [&a, &b] {
        task.terminate();
    }
    drop((a, b));
    let new_dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (c, d, e) = (start_task(&moto, &new_dirs[0]), start_task(&moto, &new_dirs[1]), start_task(&moto, &new_dirs[2]));
    settle(&[&c.base, &d.base, &e.base], &resolved).await;

    // The resolved issue occurs again on C and on E at once: regressed everywhere, counted on.
    ingest(&c.base, vec![error("PaymentError", pay, 0, "u1")]).await;
    ingest(&e.base, vec![error("PaymentError", pay, 0, "u10"), error("CartError", cart, 0, "u3")]).await;
    settle(&[&c.base, &d.base, &e.base], &expect(&[(pay, 11, 9, "regressed"), (cart, 4, 3, "new")])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_sent_again_after_a_crash_is_counted_once() {
    use logboard::dynamo::DynamoIssueIndex;
    use logboard::issues::{IssueIndex, Occurrence, Sort};

    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let table = table_for(&moto.url, TABLE);
    assert!(table.create().await.expect("create"));
    let index = DynamoIssueIndex::open(table, &dir.path().join("queue.db"), dir.path()).expect("index");

    let now = OffsetDateTime::now_utc();
    let event = |i: usize| {
        let mut e = logboard::event::StoredEvent::bare(
            logboard::event::new_id(now),
            ("demo", "production"),
            (now, now),
            logboard::event::Level::Error,
            format!("boom {}", i % 2),
        );
        e.fingerprint = Some(format!("fp{}", i % 2));
        e
    };
    let events: Vec<_> = (0..6).map(event).collect();
    index.record(Occurrence::of(&events)).await.expect("record");

    // Sent, then the task "crashes" before forgetting it: sent again under the same marker.
    let (first, announced) = index.send_next().await.expect("send").expect("a flush");
    assert_eq!(announced.changes.new.len(), 2, "two new issues, announced by the first send");
    let titles: Vec<&str> = announced.samples.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(titles, ["boom 0", "boom 1"], "each with its latest occurrence");
    let (again, announced) = index.send_next().await.expect("send again").expect("the same flush");
    assert_eq!(again, first);
    assert!(announced.is_empty(), "announced once: {announced:?}");
    index.flush().await.expect("flush");
    assert_eq!(index.backlog().await.expect("backlog"), 0);

    let ms = unix_ms(now);
    let listed = index
        .list(("demo", "production", ""), (ms - HOUR_MS, ms + HOUR_MS), &Default::default(), Sort::Count, ms)
        .await
        .expect("list");
    let counts: BTreeMap<String, u64> = listed.iter().map(|i| (i.fingerprint.clone(), i.count)).collect();
    assert_eq!(counts, BTreeMap::from([("fp0".to_string(), 3), ("fp1".to_string(), 3)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_lists_issues_by_reading_what_changed_since_its_last_view_and_sees_every_change_at_once() {
    use logboard::dynamo::DynamoIssueIndex;
    use logboard::issues::{Issue, IssueIndex, Occurrence, Sort, Status};
    use prometheus_client::metrics::counter::Counter;

    let moto = Moto::start().await;
    let table = table_for(&moto.url, TABLE);
    assert!(table.create().await.expect("create"));
    let (dir_a, dir_b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let a = DynamoIssueIndex::open(table.clone(), &dir_a.path().join("queue.db"), dir_a.path()).expect("index a");
    let b_requests = Counter::<u64>::default();
    let b = DynamoIssueIndex::open(table.counted(b_requests.clone()), &dir_b.path().join("queue.db"), dir_b.path())
        .expect("index b");

    let now = OffsetDateTime::now_utc();
    let ms = unix_ms(now);
    let errors = |fingerprints: &[usize]| -> Vec<Occurrence> {
        let events: Vec<_> = fingerprints
            .iter()
            .map(|i| {
                let mut e = logboard::event::StoredEvent::bare(
                    logboard::event::new_id(now),
                    ("demo", "production"),
                    (now, now),
                    logboard::event::Level::Error,
                    format!("boom {i}"),
                );
                e.fingerprint = Some(format!("fp{i:02}"));
                e
            })
            .collect();
        Occurrence::of(&events)
    };
    let list = async |index: &DynamoIssueIndex, from_ms: i64| -> BTreeMap<String, (u64, Status)> {
        let listed: Vec<Issue> = index
            .list(("demo", "production", ""), (from_ms, ms + HOUR_MS), &Default::default(), Sort::Count, ms)
            .await
            .expect("list");
        listed.into_iter().map(|i| (i.fingerprint, (i.count, i.status))).collect()
    };

    // 30 issues counted by A; B's first view reads them all.
    a.record(errors(&(0..30).chain(0..5).collect::<Vec<_>>())).await.expect("record");
    a.flush().await.expect("flush");
    let first = list(&b, ms - HOUR_MS).await;
    assert_eq!(first.len(), 30);
    assert_eq!(first["fp00"].0, 2);
    assert_eq!(first["fp29"].0, 1);

    // Nothing changed: B's next view is one small read of the change log.
    let before = b_requests.get();
    assert_eq!(list(&b, ms - HOUR_MS).await, first);
    assert_eq!(b_requests.get() - before, 1, "only the change log is read");

    // A counts three more errors of one issue and a new one: B sees them at its next view,
    // reading the change log and the two issues named in it.
    a.record(errors(&[7, 7, 7, 30])).await.expect("record");
    a.flush().await.expect("flush");
    let mut expected = first.clone();
    expected.get_mut("fp07").expect("fp07").0 += 3;
    expected.insert("fp30".into(), (1, Status::New));
    let before = b_requests.get();
    assert_eq!(list(&b, ms - HOUR_MS).await, expected);
    assert_eq!(b_requests.get() - before, 2, "the change log and one read of the changed issues");

    // Resolved on A: resolved on B at its next view.
    assert!(a.set_status("demo", "production", "fp03", Status::Resolved, ms - 1_000).await.expect("resolve"));
    expected.get_mut("fp03").expect("fp03").1 = Status::Resolved;
    assert_eq!(list(&b, ms - HOUR_MS).await, expected);

    // B's own flush is seen by B; A's copy, read first now, agrees; a range past what a copy
    // keeps is read whole from the table and agrees too.
    b.record(errors(&[3])).await.expect("record");
    b.flush().await.expect("flush");
    expected.insert("fp03".into(), (expected["fp03"].0 + 1, Status::Regressed));
    assert_eq!(list(&b, ms - HOUR_MS).await, expected);
    assert_eq!(list(&a, ms - HOUR_MS).await, expected);
    assert_eq!(list(&b, ms - 30 * 24 * HOUR_MS).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_held_by_one_task_is_refused_to_another_until_it_runs_out_or_is_released() {
    use logboard::dynamo::DynamoLeases;
    use logboard::lease::Lease;

    let moto = Moto::start().await;
    let table = table_for(&moto.url, TABLE);
    table.create().await.expect("create");
    let (one, two) = (DynamoLeases::new(table.clone()), DynamoLeases::new(table));
    let ttl = Duration::from_secs(60);
    let t0 = unix_ms(OffsetDateTime::now_utc());

    // One after the other: the table's condition decides (moto, unlike DynamoDB, does not make
    // two conditional writes arriving at the same instant exclusive: a race would test moto).
    assert!(one.acquire_at("follow:g", "task-a", ttl, t0).await.expect("a"), "a free lease is granted");
    assert!(!two.acquire_at("follow:g", "task-b", ttl, t0).await.expect("b"), "a held lease is refused");
    let (holder, other) = ("task-a", "task-b");
    assert!(one.acquire_at("follow:g", holder, ttl, t0 + 1_000).await.expect("renew"), "its holder renews it");
    assert!(!one.acquire_at("follow:g", other, ttl, t0 + 30_000).await.expect("other"), "held");
    assert!(one.acquire_at("follow:g", other, ttl, t0 + 61_001).await.expect("ran out"), "ran out: taken over");
    one.release("follow:g", holder).await.expect("release by a former holder changes nothing");
    assert!(!two.acquire_at("follow:g", holder, ttl, t0 + 62_000).await.expect("held by the other"));
    one.release("follow:g", other).await.expect("release");
    assert!(two.acquire_at("follow:g", holder, ttl, t0 + 62_000).await.expect("free"));
}

/// The value of one metric line of `/metrics`.
async fn metric(base: &str, name: &str) -> Option<f64> {
    crate::cloudwatch_process::metric(base, name).await
}

/// The state of the rule `name` in `GET /api/v1/alerts`.
async fn rule_state(base: &str, name: &str) -> Option<String> {
    let listed: Value = http()
        .get(format!("{base}/api/v1/alerts"))
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let rule = listed["alerts"].as_array()?.iter().find(|r| r["name"] == name)?;
    rule["state"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_table_unreachable_ingest_still_answers_202_and_every_error_is_counted_once_when_it_is_back() {
    let moto = Moto::start().await;
    let table = table_for(&moto.url, TABLE);
    table.create().await.expect("create");
    let proxy = Proxy::start(&moto.url).await;
    let dir = tempfile::tempdir().expect("dir");
    let through_proxy = |moto: &Moto, proxy: &Proxy| {
        let mut env = state_env(moto);
        env.retain(|(k, _)| *k != "LOGBOARD__STATE__ENDPOINT_URL");
        env.push(("LOGBOARD__STATE__ENDPOINT_URL", proxy.url.clone()));
        env
    };
    let env = through_proxy(&moto, &proxy);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut task = start_server_with(dir.path(), &moto.url, &env_refs);

    proxy.cut();
    ingest(&task.base, (0..3).map(|i| error("TimeoutError", "upstream timed out", i, "u1")).collect()).await;
    // The counts wait on the task's disk; the monitor says the state store is failing.
    let deadline = Instant::now() + WAIT;
    while metric(&task.base, "logboard_state_backlog").await.unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "the backlog metric never showed the queued counts");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = http().get(format!("{}/readyz", task.base)).send().await.expect("readyz");
    assert_eq!(ready.status(), 200, "ready while the table is down: ingest still works");
    let deadline = Instant::now() + Duration::from_secs(40);
    while rule_state(&task.base, "monitor: state store failing").await.as_deref() != Some("firing") {
        assert!(Instant::now() < deadline, "the monitor did not report the state store failing");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Killed while the table is down: the queue is on disk, and the task that replaces it on the
    // same disk sends it.
    ingest(&task.base, vec![error("TimeoutError", "upstream timed out", 5, "u2")]).await;
    task.child.kill().expect("SIGKILL");
    task.child.wait().expect("reaped");
    task = start_server_with(dir.path(), &moto.url, &env_refs);
    proxy.restore();
    settle(&[&task.base], &expect(&[("upstream timed out", 4, 2, "new")])).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(issues(&task.base).await, expect(&[("upstream timed out", 4, 2, "new")]), "counted once");
    assert_eq!(metric(&task.base, "logboard_state_backlog").await, Some(0.0));
}

/// The status of a GET of `path` on `base` with `cookie`, redirects not followed.
async fn status_with_cookie(base: &str, path: &str, cookie: &str) -> u16 {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    http.get(format!("{base}{path}")).header("Cookie", cookie).send().await.expect("get").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_task_ends_the_session_on_every_task() {
    let moto = Moto::start().await;
    table_for(&moto.url, TABLE).create().await.expect("create");
    let secret = ("LOGBOARD__AUTH__SESSION_SECRET", "a shared secret of the service, 32+ bytes long".to_string());
    let mut env = state_env(&moto);
    env.push(secret);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let a = start_server_with(dirs[0].path(), &moto.url, &env);
    let b = start_server_with(dirs[1].path(), &moto.url, &env);

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let login = http
        .post(format!("{}/login", a.base))
        .form(&[("username", "admin"), ("password", common::ADMIN_PASSWORD), ("next", "/")])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 303, "logged in");
    let cookie = login.headers()["set-cookie"].to_str().expect("ascii").split(';').next().expect("cookie").to_string();
    assert_eq!(status_with_cookie(&b.base, "/api/v1/projects", &cookie).await, 200, "good on the other task");

    let logout = http.post(format!("{}/logout", a.base)).header("Cookie", &cookie).send().await.expect("logout");
    assert_eq!(logout.status(), 303);
    for task in [&a, &b] {
        assert_eq!(status_with_cookie(&task.base, "/api/v1/projects", &cookie).await, 401, "ended on {}", task.base);
        assert_eq!(status_with_cookie(&task.base, "/logs?project=demo&env=production", &cookie).await, 303);
    }
    // A new session is not hurt by the other's logout.
    let again = http
        .post(format!("{}/login", b.base))
        .form(&[("username", "admin"), ("password", common::ADMIN_PASSWORD), ("next", "/")])
        .send()
        .await
        .expect("login");
    let again = again.headers()["set-cookie"].to_str().expect("ascii").split(';').next().expect("cookie").to_string();
    assert_eq!(status_with_cookie(&a.base, "/api/v1/projects", &again).await, 200);
}

/// Events per level summed over the buckets of `GET /api/v1/histogram?{params}`.
async fn charted(base: &str, params: &str) -> (BTreeMap<String, u64>, Value) {
    let answer: Value = http()
        .get(format!("{base}/api/v1/histogram?project=demo&env=production&{params}"))
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .send()
        .await
        .expect("histogram")
        .json()
        .await
        .expect("json");
    let mut totals = BTreeMap::new();
    for bucket in answer["buckets"].as_array().into_iter().flatten() {
        for (level, n) in bucket["counts"].as_object().into_iter().flatten() {
            *totals.entry(level.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
    }
    totals.retain(|_, n| *n > 0);
    (totals, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cloudwatch_charts_and_the_home_page_read_the_counts_every_task_keeps_not_every_event() {
    let moto = Moto::start().await;
    let table = table_for(&moto.url, TABLE);
    table.create().await.expect("create");
    let (dir_a, dir_b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (a, b) = (start_task(&moto, &dir_a), start_task(&moto, &dir_b));
    // 600 events over the last 20 hours, half through each task, four levels alike.
    let now = unix_ms(OffsetDateTime::now_utc());
    let levels = ["debug", "info", "warn", "error"];
    let events: Vec<Value> = (0..600i64)
        .map(|i| {
            let level = levels[usize::try_from(i).unwrap_or(0) % 4];
            json!({"level": level, "message": format!("{level} number {i}"), "timestamp": now - i * 120_000})
        })
        .collect();
    for (i, batch) in events.chunks(100).enumerate() {
        ingest(if i % 2 == 0 { &a.base } else { &b.base }, batch.to_vec()).await;
    }
    let expected: BTreeMap<String, u64> = levels.iter().map(|l| (l.to_string(), 150)).collect();
    let deadline = Instant::now() + WAIT;
    while charted(&a.base, "from=now-24h").await.0 != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_until_drained(&a.base).await;
    wait_until_drained(&b.base).await;

    let before = metric(&a.base, "logboard_cloudwatch_requests_total").await.expect("the metric");
    // Minute counts (15-minute buckets), hour counts (2-hour buckets), one level.
    assert_eq!(charted(&a.base, "from=now-24h").await.0, expected, "every task's events, in minute counts");
    let (week, answer) = charted(&b.base, "from=now-7d").await;
    assert_eq!(week, expected, "in hour counts");
    assert_eq!(answer["interval_ms"], 2 * HOUR_MS, "{answer}");
    let (errors, _) = charted(&a.base, "from=now-24h&level=error").await;
    assert_eq!(errors, BTreeMap::from([("error".to_string(), 150)]));
    let (warnings_and_up, _) = charted(&a.base, "from=now-24h&q=-level:[debug,info]").await;
    assert_eq!(warnings_and_up, BTreeMap::from([("warn".to_string(), 150), ("error".to_string(), 150)]));
    let browser = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let login = browser
        .post(format!("{}/login", a.base))
        .form(&[("username", "admin"), ("password", common::ADMIN_PASSWORD), ("next", "/")])
        .send()
        .await
        .expect("login");
    assert!(login.status().is_success(), "logged in");
    let home = browser.get(format!("{}/", a.base)).send().await.expect("home").text().await.expect("text");
    assert!(home.contains("<strong>600</strong> events"), "the home page counts all 600: {home}");
    let after = metric(&a.base, "logboard_cloudwatch_requests_total").await.expect("the metric");
    // The issue follower may list groups meanwhile; the charts themselves read no event.
    assert!(after - before <= 2.0, "{} CloudWatch requests for four charts and the home page", after - before);

    // A chart with a search is read from CloudWatch (within its call budget), and agrees.
    let (searched, answer) = charted(&b.base, "from=now-24h&q=number").await;
    assert_eq!(searched, expected, "{answer}");
    assert!(answer.get("capped").is_none(), "{answer}");
}

/// A webhook receiver that never answers its first request (a send in flight when its task
/// dies) and answers 200 to the rest; every request's body, in order.
struct HoldingReceiver {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HoldingReceiver {
    async fn start() -> HoldingReceiver {
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = bodies.clone();
        let router = axum::Router::new().fallback(move |body: String| {
            let seen = seen.clone();
            async move {
                let first = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(body);
                    seen.len() == 1
                };
                if first {
                    std::future::pending::<()>().await;
                }
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        HoldingReceiver { url: format!("http://{addr}/services/T0/B0/held"), bodies }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("lock").clone()
    }

    async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        while self.bodies().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.bodies()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_killed_while_its_message_is_in_flight_is_replaced_by_another_that_delivers_it_once() {
    let moto = Moto::start().await;
    table_for(&moto.url, TABLE).create().await.expect("create");
    let receiver = HoldingReceiver::start().await;
    let rules = format!(
        "[[channels]]\nname = \"ops-slack\"\nkind = \"slack\"\nwebhook_url = \"{}\"\n\n[[alerts]]\nname = \"new issues\"\nproject = \"demo\"\nenvs = [\"production\"]\nwhen = \"new_issue\"\nchannels = [\"ops-slack\"]\ngroup_wait_secs = 1\n",
        receiver.url
    );
    let env = state_env(&moto);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let mut a = start_configured(dirs[0].path(), &moto.url, &rules, &env);
    let b = start_configured(dirs[1].path(), &moto.url, &rules, &env);

    ingest(&a.base, vec![error("PaymentError", "card declined by the processor", 0, "u1")]).await;
    let held = receiver.wait_for(1, WAIT).await;
    assert_eq!(held.len(), 1, "the first send reached the receiver");
    assert!(held[0].contains("card declined by the processor"), "{}", held[0]);
    a.child.kill().expect("SIGKILL");
    a.child.wait().expect("reaped");
    let killed_at = Instant::now();

    // The dead task's claim runs out (60 s) and the other task's deliverer sends the message.
    let bodies = receiver.wait_for(2, Duration::from_secs(120)).await;
    assert_eq!(bodies.len(), 2, "another task delivered the message within 2 minutes of the kill");
    let took = killed_at.elapsed();
    assert_eq!(bodies[1], bodies[0], "the same message");
    // Delivered once: nothing more in the next rounds of the surviving task's deliverer.
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(receiver.bodies().len(), 2, "sent once by the survivor ({took:?} after the kill)");
    let history: Value = http()
        .get(format!("{}/api/v1/alerts/new%20issues/history", b.base))
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    let lines = history["history"].as_array().cloned().unwrap_or_default();
    let messages: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "message").collect();
    assert_eq!(messages.len(), 1, "one message in the rule's history: {history}");
    assert_eq!(messages[0]["outcome"], "sent", "{history}");
}
