//! Several tasks of one service, as on ECS behind a load balancer without sticky sessions: real
//! `logboard` processes sharing moto (one CloudWatch) and `auth.session_secret`, each with its
//! own data directory (its own spool).

use crate::cloudwatch_process::{metric, start_server_with, wait_until_drained};
use crate::common;

use std::collections::BTreeMap;

use common::binary::Server;
use common::moto::Moto;
use logboard::event::unix_ms;
use serde_json::{Value, json};
use time::OffsetDateTime;

const SECRET: &str = "a shared secret of the service, 32+ bytes long";

/// A task of the service on moto, with `secret` as its session secret.
fn start_task(moto: &Moto, dir: &tempfile::TempDir, secret: &str) -> Server {
    start_server_with(dir.path(), &moto.url, &[("LOGBOARD__AUTH__SESSION_SECRET", secret)])
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Logs in on `base` and returns the `name=value` of the session cookie.
async fn log_in(base: &str) -> String {
    let login = http()
        .post(format!("{base}/login"))
        .form(&[("username", "admin"), ("password", common::ADMIN_PASSWORD), ("next", "/")])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 303, "logged in");
    let set_cookie = login.headers()["set-cookie"].to_str().expect("ascii");
    set_cookie.split(';').next().expect("name=value").to_string()
}

/// The status of a GET of `path` on `base` with `cookie`.
async fn status_with_cookie(base: &str, path: &str, cookie: &str) -> u16 {
    let answer = http().get(format!("{base}{path}")).header("Cookie", cookie).send().await.expect("get");
    answer.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_on_one_task_is_good_on_another_with_the_secret_and_logout_ends_it_where_it_was_sent() {
    let moto = Moto::start().await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let a = start_task(&moto, &dirs[0], SECRET);
    let b = start_task(&moto, &dirs[1], SECRET);
    let other = start_task(&moto, &dirs[2], "another service's secret, also 32+ bytes");

    let cookie = log_in(&a.base).await;
    let projects =
        http().get(format!("{}/api/v1/projects", b.base)).header("Cookie", &cookie).send().await.expect("read on B");
    assert_eq!(projects.status(), 200);
    let body: Value = projects.json().await.expect("json");
    assert_eq!(body["projects"][0]["name"], "demo", "{body}");
    let page = "/logs?project=demo&env=production";
    assert_eq!(status_with_cookie(&b.base, page, &cookie).await, 200, "the page, not the login redirect");
    assert_eq!(status_with_cookie(&other.base, "/api/v1/projects", &cookie).await, 401, "another secret");
    assert_eq!(status_with_cookie(&other.base, page, &cookie).await, 303, "to the login page");

    let logout = http().post(format!("{}/logout", a.base)).header("Cookie", &cookie).send().await.expect("logout");
    assert_eq!(logout.status(), 303);
    let cleared = logout.headers()["set-cookie"].to_str().expect("ascii");
    assert!(cleared.starts_with("logboard_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(status_with_cookie(&a.base, "/api/v1/projects", &cookie).await, 401, "A saw the logout");
    assert_eq!(status_with_cookie(&a.base, page, &cookie).await, 303);
    // What the spec allows: a copy of the cookie is good on a task that did not see the logout,
    // until it expires.
    assert_eq!(status_with_cookie(&b.base, "/api/v1/projects", &cookie).await, 200);
    // A new login on B is not hurt by A's revocation.
    let again = log_in(&b.base).await;
    assert_eq!(status_with_cookie(&a.base, "/api/v1/projects", &again).await, 200);
}

/// Every event message of project demo/production that `base` reads, with how often it is read.
async fn read_all(base: &str, from: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("project", "demo".to_string()), ("env", "production".into()), ("limit", "1000".into())];
        query.push(("from", from.to_string()));
        query.extend(cursor.take().map(|c| ("cursor", c)));
        let answer = http()
            .get(format!("{base}/api/v1/events"))
            .basic_auth("admin", Some(common::ADMIN_PASSWORD))
            .query(&query)
            .send()
            .await
            .expect("read");
        assert_eq!(answer.status(), 200);
        let page: Value = answer.json().await.expect("json");
        for event in page["events"].as_array().expect("events") {
            *counts.entry(event["message"].as_str().expect("message").to_string()).or_insert(0) += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return counts,
        }
    }
}

/// Sends `batches` batches of 50 events named `task N` to `base`, one after another.
async fn send_batches(base: String, task: &'static str, batches: usize) {
    let http = http();
    for batch in 0..batches {
        let now = unix_ms(OffsetDateTime::now_utc());
        let events: Vec<Value> =
            (0..50).map(|i| json!({"message": format!("{task} {:05}", batch * 50 + i), "timestamp": now})).collect();
        let answer = http
            .post(format!("{base}/api/v1/events"))
            .header("X-Logboard-Key", common::INGEST_KEY)
            .json(&json!({"env": "production", "events": events}))
            .send()
            .await
            .expect("ingest");
        assert_eq!(answer.status(), 202);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tasks_writing_the_same_group_at_once_lose_nothing_and_either_reads_both_tasks_events_once() {
    let moto = Moto::start().await;
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let a = start_task(&moto, &dirs[0], SECRET);
    let b = start_task(&moto, &dirs[1], SECRET);
    let from = logboard::event::timestamp_format::format(OffsetDateTime::now_utc() - time::Duration::minutes(5));

    // Both create the group and the stream and put into it at the same time.
    const BATCHES: usize = 8;
    tokio::join!(send_batches(a.base.clone(), "task-a", BATCHES), send_batches(b.base.clone(), "task-b", BATCHES));
    wait_until_drained(&a.base).await;
    wait_until_drained(&b.base).await;

    let expected: BTreeMap<String, usize> = ["task-a", "task-b"]
        .iter()
        .flat_map(|task| (0..BATCHES * 50).map(move |i| (format!("{task} {i:05}"), 1)))
        .collect();
    for task in [&a, &b] {
        let read = read_all(&task.base, &from).await;
        let missing = expected.keys().filter(|m| !read.contains_key(*m)).count();
        let repeated: Vec<_> = read.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert_eq!((missing, repeated.len()), (0, 0), "on {}: repeated {repeated:?}", task.base);
        assert_eq!(read, expected);
        let shipped = metric(&task.base, "logboard_events_shipped_total").await.expect("metric");
        assert_eq!(shipped, (BATCHES * 50) as f64, "each task shipped its own events");
        let dead = http()
            .get(format!("{}/api/v1/deadletters?project=demo&env=production", task.base))
            .basic_auth("admin", Some(common::ADMIN_PASSWORD))
            .send()
            .await
            .expect("dead letters");
        let dead: Value = dead.json().await.expect("json");
        assert_eq!(dead["total"], 0, "CloudWatch refused nothing: {dead}");
    }
    // One stream per hour, shared: both tasks' puts went into it without conflict.
    let streams = moto.client().describe_log_streams().log_group_name("/logboard/demo/production").send().await;
    let streams = streams.expect("streams");
    assert!(streams.log_streams().len() <= 2, "an hour's stream (two if the hour turned): {:?}", streams.log_streams());
}
