//! The issue follower against moto: on the CloudWatch backend the issue index is fed by reading
//! error lines back from CloudWatch, so errors ingested by any instance and those a Lambda
//! function wrote itself become issues, each occurrence counted once however many polls re-read
//! it, and late ones still counted.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::moto::{CloudWatchApp, Moto, put_lines};
use logboard::event::unix_ms;
use logboard::store::cloudwatch::CloudWatchOptions;
use serde_json::{Value, json};
use time::OffsetDateTime;

const POLL: Duration = Duration::from_millis(200);
const WAIT: Duration = Duration::from_secs(30);
const ORDERS: &str = "/aws/lambda/demo-api-orders";
const STAGING_BILLING: &str = "/aws/lambda/demo-api-staging-billing";

/// A logboard on moto whose `demo` project has the Lambda groups `/aws/lambda/demo-api-*`,
/// following them every [`POLL`].
async fn start(moto: &Moto) -> CloudWatchApp {
    start_on(moto, None).await
}

/// [`start`], with the shared state in `table` when given.
async fn start_on(moto: &Moto, table: Option<logboard::dynamo::Table>) -> CloudWatchApp {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = common::test_config(
        dir.path(),
        &[
            ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
            ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", moto.url.as_str()),
            ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
        ],
    );
    let demo = config.projects.iter_mut().find(|p| p.name == "demo").expect("demo project");
    demo.extra_group_prefixes = vec!["/aws/lambda/demo-api-".into()];
    let options =
        CloudWatchOptions { issue_poll: POLL, linger: Duration::from_millis(50), ..CloudWatchOptions::default() };
    CloudWatchApp::start_on(config, dir, &moto.url, options, table).await
}

/// The issues of `env` over the last two days, by fingerprint.
async fn issues(app: &CloudWatchApp, env: &str) -> BTreeMap<String, Value> {
    let (status, listed) = app.read(&format!("/api/v1/issues?project=demo&env={env}&from=now-2d")).await;
    assert_eq!(status, 200, "{listed}");
    listed["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| (i["fingerprint"].as_str().expect("fingerprint").to_string(), i.clone()))
        .collect()
}

/// (count, users) of each issue of `env`.
async fn counts(app: &CloudWatchApp, env: &str) -> BTreeMap<String, (u64, u64)> {
    issues(app, env)
        .await
        .into_iter()
        .map(|(f, i)| (f, (i["count"].as_u64().expect("count"), i["users"].as_u64().expect("users"))))
        .collect()
}

/// Waits until `env`'s (count, users) per issue are `expected`, then lets ten more polls go by
/// and checks that they are still: a re-read must not count anything again.
async fn settle(app: &CloudWatchApp, env: &str, expected: &BTreeMap<String, (u64, u64)>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = counts(app, env).await;
        if &now == expected {
            break;
        }
        assert!(Instant::now() < deadline, "{env}: issues {now:?}, expected {expected:?}");
        tokio::time::sleep(POLL).await;
    }
    tokio::time::sleep(POLL * 10).await;
    assert_eq!(&counts(app, env).await, expected, "{env}: counted again by a later poll");
}

/// Waits until `env`'s issues satisfy `done`, and returns them.
async fn wait_until(
    app: &CloudWatchApp,
    env: &str,
    done: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> BTreeMap<String, Value> {
    wait_within(WAIT, app, env, done).await
}

/// [`wait_until`] with a wait of its own.
async fn wait_within(
    wait: Duration,
    app: &CloudWatchApp,
    env: &str,
    done: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + wait;
    loop {
        let listed = issues(app, env).await;
        if done(&listed) {
            return listed;
        }
        assert!(Instant::now() < deadline, "{env}: issues {listed:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// The stored errors of the own group of `env`, by fingerprint: (occurrences, distinct users).
async fn brute_force(app: &CloudWatchApp, env: &str) -> BTreeMap<String, (u64, u64)> {
    let (status, page) =
        app.read(&format!("/api/v1/events?project=demo&env={env}&level=error,fatal&from=now-2d&limit=500")).await;
    assert_eq!(status, 200, "{page}");
    let mut by_fingerprint: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    for event in page["events"].as_array().expect("events") {
        let entry = by_fingerprint.entry(event["fingerprint"].as_str().expect("fingerprint").to_string()).or_default();
        entry.0 += 1;
        if let Some(user) = event["user"]["id"].as_str() {
            entry.1.insert(user.to_string());
        }
    }
    by_fingerprint.into_iter().map(|(f, (n, users))| (f, (n, users.len() as u64))).collect()
}

fn error(message: &str, user: Option<&str>) -> Value {
    let mut event = json!({"level": "error", "type": "PaymentError", "message": message,
                           "stack": "PaymentError: declined\n    at pay (checkout.js:10:5)"});
    if let Some(user) = user {
        event["user"] = json!({"id": user});
    }
    event
}

async fn ingest(app: &CloudWatchApp, env: &str, events: Vec<Value>) {
    let (status, answer) = app.ingest(&json!({"env": env, "events": events})).await;
    assert_eq!((status, answer["rejected"].as_array().map(Vec::len)), (202, Some(0)), "{answer}");
}

fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

fn python_key_error(order: u32) -> String {
    let request = format!("3f1c9a2e-5b7d-4e21-9c1a-{order:012}");
    format!(
        "[ERROR]\t2026-11-24T15:02:03.456Z\t{request}\tcharge failed for order {order}\nTraceback (most recent call \
         last):\n  File \"/var/task/app.py\", line 18, in handler\n    charge(order)\n  File \"/var/task/billing.py\", \
         line {order}, in charge\n    card = order[\"card\"]\nKeyError: 'card'\n"
    )
}

fn node_type_error(n: u32) -> String {
    format!(
        "2026-11-24T15:02:03.456Z\tc5a1f0e2-0d3b-4c8e-8f6a-{n:012}\tERROR\tInvoke Error \t{}",
        json!({"errorType": "TypeError", "errorMessage": format!("Cannot read properties of undefined (reading 'id{n}')"),
               "stack": ["TypeError: Cannot read properties of undefined", format!("    at handler (/var/task/index.js:{n}:7)")]})
    )
}

fn noise(n: u32) -> Vec<String> {
    let request = format!("0b3e6a6c-7f3e-4d0b-9a59-{n:012}");
    vec![
        format!("START RequestId: {request} Version: $LATEST"),
        format!("[INFO]\t2026-11-24T15:02:03.101Z\t{request}\tcharging order {n}\n"),
        format!("[WARNING]\t2026-11-24T15:02:03.101Z\t{request}\tslow card check, error budget ok\n"),
        format!("END RequestId: {request}"),
        format!(
            "REPORT RequestId: {request}\tDuration: 12.5 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 72 MB\t"
        ),
    ]
}

#[tokio::test]
async fn errors_ingested_through_the_api_become_issues_with_their_counts_and_users_counted_once() {
    let moto = Moto::start().await;
    let app = start(&moto).await;
    let mut events = Vec::new();
    for (order, user) in [(17, Some("u1")), (90_210, Some("u2")), (5, Some("u1")), (6, None)] {
        events.push(error(&format!("card declined for order {order}"), user));
    }
    events.push(json!({"level": "fatal", "type": "TypeError", "message": "x is undefined", "user": {"id": "u3"},
                       "stack": "TypeError: x is undefined\n    at render (app.4f2c1.js:1:200)"}));
    events.push(json!({"level": "warn", "message": "card declined for order 8"}));
    events.push(json!({"level": "info", "message": "checkout started"}));
    ingest(&app, "production", events).await;
    ingest(&app, "staging", vec![error("card declined for order 1", Some("s1"))]).await;
    app.wait_until_shipped(WAIT).await;

    for env in ["production", "staging"] {
        let expected = brute_force(&app, env).await;
        assert_eq!(expected.len(), if env == "production" { 2 } else { 1 }, "{env}: {expected:?}");
        settle(&app, env, &expected).await;
    }
    let production = counts(&app, "production").await;
    let mut totals: Vec<(u64, u64)> = production.values().copied().collect();
    totals.sort();
    assert_eq!(totals, [(1, 1), (4, 2)], "the warning and the info line are not issues");
}

#[tokio::test]
async fn lambda_error_lines_become_issues_of_the_environment_their_group_belongs_to() {
    let moto = Moto::start().await;
    let app = start(&moto).await;
    let client = moto.client();
    let start_ms = now_ms() - 60_000;
    // The orders function (production: its name names no environment): Python KeyErrors of
    // several orders, Node.js TypeErrors, one timeout, and the lines around them.
    let mut orders = Vec::new();
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for n in 1..=7u32 {
        orders.extend(noise(n));
        let (kind, line) = match n % 3 {
            0 => ("TypeError", node_type_error(n)),
            _ => ("KeyError", python_key_error(n)),
        };
        orders.push(line);
        *expected.entry(kind).or_default() += 1;
    }
    orders
        .push("2026-11-24T15:02:09.459Z 5d7e9f1a-2b3c-4d5e-8f9a-0b1c2d3e4f5a Task timed out after 3.00 seconds".into());
    *expected.entry("lambda.timeout").or_default() += 1;
    put_lines(&client, ORDERS, "2026/11/24/[$LATEST]a", start_ms, &orders).await;
    // The staging billing function: two KeyErrors, which are staging's.
    let billing = vec![python_key_error(40), python_key_error(41)];
    put_lines(&client, STAGING_BILLING, "2026/11/24/[$LATEST]b", start_ms, &billing).await;

    let by_type = |listed: &BTreeMap<String, Value>| -> BTreeMap<String, u64> {
        listed
            .values()
            .map(|i| (i["type"].as_str().unwrap_or("").to_string(), i["count"].as_u64().unwrap_or(0)))
            .collect()
    };
    let want: BTreeMap<String, u64> = expected.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    let production = wait_until(&app, "production", |listed| by_type(listed) == want).await;
    let error_lines: u64 = expected.values().sum();
    for issue in production.values() {
        assert_eq!(issue["group"], ORDERS, "{issue}");
    }
    let client = app.logged_in_client().await;
    let page = client.get(app.url("/issues?project=demo&env=production")).send().await.expect("page");
    let html = page.text().await.expect("html");
    // Each row's link, followed as the read API's query, finds that issue's events.
    for issue in production.values() {
        let fingerprint = issue["fingerprint"].as_str().expect("fingerprint");
        let href = html
            .split("href=\"/logs?")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(|href| href.replace("&#38;", "&"))
            .find(|href| href.contains(&format!("fingerprint%3A{fingerprint}&")))
            .unwrap_or_else(|| panic!("no link to {fingerprint} on the issues page"));
        assert!(href.contains("group=%2Faws%2Flambda%2Fdemo-api-orders"), "{href}");
        let (status, page) = app.read_owned(format!("/api/v1/events?{href}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(Some(page["events"].as_array().expect("events").len() as u64), issue["count"].as_u64(), "{href}");
    }

    let staging = wait_until(&app, "staging", |listed| listed.values().any(|i| i["count"] == 2)).await;
    let expected_staging = staging.keys().map(|f| (f.clone(), (2, 0))).collect();
    settle(&app, "staging", &expected_staging).await;
    assert_eq!(staging.len(), 1);
    assert_eq!(staging.values().next().map(|i| i["group"].clone()), Some(json!(STAGING_BILLING)));
    // The same KeyError in two functions of two environments: one fingerprint, counted apart.
    assert!(production.contains_key(staging.keys().next().expect("one")));
    let production_counts = counts(&app, "production").await;
    assert_eq!(production_counts.values().map(|c| c.0).sum::<u64>(), error_lines, "no poll counted again");
}

#[tokio::test]
async fn two_instances_on_one_cloudwatch_each_list_the_errors_both_ingested() {
    let moto = Moto::start().await;
    let (a, b) = (start(&moto).await, start(&moto).await);
    ingest(
        &a,
        "production",
        vec![error("alpha failed for order 1", Some("u1")), error("alpha failed for order 2", Some("u2"))],
    )
    .await;
    let beta = |n: u32| json!({"level": "error", "type": "BetaError", "message": format!("beta failed {n}"), "user": {"id": "u9"}});
    ingest(&b, "production", vec![beta(1), beta(2), beta(3)]).await;
    a.wait_until_shipped(WAIT).await;
    b.wait_until_shipped(WAIT).await;
    let expected = brute_force(&a, "production").await;
    assert_eq!(expected.values().copied().collect::<BTreeSet<_>>(), BTreeSet::from([(2, 2), (3, 1)]), "{expected:?}");
    settle(&a, "production", &expected).await;
    settle(&b, "production", &expected).await;
}

#[tokio::test]
async fn a_resolved_issue_that_occurs_again_is_regressed() {
    let moto = Moto::start().await;
    let app = start(&moto).await;
    ingest(&app, "production", vec![error("card declined for order 1", None)]).await;
    app.wait_until_shipped(WAIT).await;
    let expected = brute_force(&app, "production").await;
    settle(&app, "production", &expected).await;
    let fingerprint = expected.keys().next().expect("an issue").clone();
    let resolved = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/issues/{fingerprint}/status")))
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .json(&json!({"project": "demo", "env": "production", "status": "resolved"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resolved.status(), 200);
    // Re-reads of the occurrence from before the resolution leave it resolved.
    tokio::time::sleep(POLL * 10).await;
    assert_eq!(issues(&app, "production").await[&fingerprint]["status"], "resolved");

    ingest(&app, "production", vec![error("card declined for order 2", None)]).await;
    let listed = wait_until(&app, "production", |listed| listed[&fingerprint]["status"] == "regressed").await;
    assert_eq!(listed[&fingerprint]["count"], 2, "{listed:?}");
}

#[tokio::test]
async fn an_error_that_reaches_cloudwatch_an_hour_late_is_still_counted_once() {
    let moto = Moto::start().await;
    let app = start(&moto).await;
    let client = moto.client();
    put_lines(&client, ORDERS, "2026/11/24/[$LATEST]now", now_ms() - 1_000, &[python_key_error(1)]).await;
    ingest(&app, "production", vec![error("card declined for order 1", Some("u1"))]).await;
    app.wait_until_shipped(WAIT).await;
    let mut expected = brute_force(&app, "production").await;
    let listed = wait_until(&app, "production", |listed| listed.values().any(|i| i["type"] == "KeyError")).await;
    let lambda = listed.values().find(|i| i["type"] == "KeyError").and_then(|i| i["fingerprint"].as_str());
    let lambda = lambda.expect("the Lambda issue").to_string();
    expected.insert(lambda.clone(), (1, 0));
    settle(&app, "production", &expected).await;

    // The checkpoints have moved on; now lines of an hour ago arrive: a Lambda line, and an
    // event a client sent late.
    let hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
    put_lines(&client, ORDERS, "2026/11/24/[$LATEST]late", unix_ms(hour_ago), &[python_key_error(2)]).await;
    let mut late = error("card declined for order 2", Some("u2"));
    late["timestamp"] = json!(unix_ms(hour_ago));
    ingest(&app, "production", vec![late]).await;
    app.wait_until_shipped(WAIT).await;
    let mut expected = brute_force(&app, "production").await;
    assert_eq!(expected.values().copied().collect::<Vec<_>>(), [(2, 2)], "{expected:?}");
    expected.insert(lambda, (2, 0));
    settle(&app, "production", &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tasks_on_one_state_table_count_a_lambda_groups_errors_once_and_the_errors_they_ingested_once() {
    let moto = Moto::start().await;
    let table = common::moto::table_for(&moto.url, "logboard-state");
    table.create().await.expect("create the table");
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(start_on(&moto, Some(table.clone())).await);
    }
    // A Lambda function's errors, which no task ingested: one task at a time follows the group.
    let lines: Vec<String> = (1..=6u32).map(python_key_error).collect();
    put_lines(&moto.client(), ORDERS, "2026/11/24/[$LATEST]a", now_ms() - 60_000, &lines).await;
    // And errors ingested through two of the tasks: counted at acceptance, not read back.
    ingest(&tasks[0], "production", vec![error("alpha failed for order 1", Some("u1"))]).await;
    ingest(&tasks[2], "production", vec![error("alpha failed for order 2", Some("u2"))]).await;

    let by_type = |listed: &BTreeMap<String, Value>| -> BTreeMap<String, u64> {
        listed
            .values()
            .map(|i| (i["type"].as_str().unwrap_or("").to_string(), i["count"].as_u64().unwrap_or(0)))
            .collect()
    };
    let want = BTreeMap::from([("KeyError".to_string(), 6), ("PaymentError".to_string(), 2)]);
    // Three processes, moto and the rest of the suite share the CI box's cores: a longer wait
    // than one task's (a slow run fails here only if the counts never arrive).
    for task in &tasks {
        wait_within(WAIT * 3, task, "production", |listed| by_type(listed) == want).await;
    }
    // Many polls of every task later, nothing was counted again.
    tokio::time::sleep(POLL * 15).await;
    for task in &tasks {
        assert_eq!(by_type(&issues(task, "production").await), want);
    }
}
