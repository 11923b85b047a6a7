//! The CloudWatch backend against moto, a real CloudWatch Logs API over HTTP: ingest lands in
//! the right groups and streams as one-line JSON, the read API reads it back, external (Lambda)
//! groups are readable, and a spool written while CloudWatch was unreachable is shipped after a
//! restart.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::Client;
use common::moto::{CloudWatchApp, Moto, closed_port_url, put_lines};
use logboard::config::Config;
use logboard::event::{StoredEvent, timestamp_format, unix_ms};
use logboard::store::LogStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

const SHIP_TIMEOUT: Duration = Duration::from_secs(30);
const LAMBDA_GROUP: &str = "/aws/lambda/demo-api-orders";

fn cloudwatch_config(dir: &std::path::Path, endpoint: &str) -> Config {
    common::test_config(
        dir,
        &[
            ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
            ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", endpoint),
            ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
        ],
    )
}

pub(crate) async fn start_app(endpoint: &str) -> CloudWatchApp {
    let dir = tempfile::tempdir().expect("dir");
    let config = cloudwatch_config(dir.path(), endpoint);
    CloudWatchApp::start(config, dir, endpoint).await
}

/// Every line of a group, as (stream, timestamp, message).
async fn all_lines(client: &Client, group: &str) -> Vec<(String, i64, String)> {
    let mut lines = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .filter_log_events()
            .log_group_name(group)
            .set_next_token(token)
            .send()
            .await
            .expect("FilterLogEvents");
        for e in page.events() {
            lines.push((
                e.log_stream_name().unwrap_or_default().to_string(),
                e.timestamp().expect("timestamp"),
                e.message().unwrap_or_default().to_string(),
            ));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return lines;
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    timestamp_format::format(t)
}

fn hour_stream(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}T{:02}", t.year(), u8::from(t.month()), t.day(), t.hour())
}

#[tokio::test]
async fn ingested_events_land_in_cloudwatch_as_one_json_line_each_in_hourly_streams() {
    let moto = Moto::start().await;
    let app = start_app(&moto.url).await;
    let now = OffsetDateTime::now_utc();
    let old = now - time::Duration::hours(3);
    let (status, answer) = app
        .ingest(&json!({"env": "production", "events": [
            {"message": "payment failed", "level": "error"},
            {"message": "an old one", "timestamp": rfc3339(old)},
        ]}))
        .await;
    assert_eq!((status, &answer["accepted"]), (202, &json!(2)), "{answer}");
    let (status, _) = app.ingest(&json!({"env": "staging", "message": "staging hello", "level": "warn"})).await;
    assert_eq!(status, 202);
    app.wait_until_shipped(SHIP_TIMEOUT).await;

    let client = moto.client();
    let groups: Vec<String> = client
        .describe_log_groups()
        .log_group_name_prefix("/logboard/demo/")
        .send()
        .await
        .expect("DescribeLogGroups")
        .log_groups()
        .iter()
        .filter_map(|g| g.log_group_name().map(str::to_string))
        .collect();
    assert_eq!(groups, ["/logboard/demo/production", "/logboard/demo/staging"]);

    let production = all_lines(&client, "/logboard/demo/production").await;
    assert_eq!(production.len(), 2, "{production:?}");
    let mut by_message = BTreeMap::new();
    for (stream, ts, line) in &production {
        assert!(!line.contains('\n'), "one line: {line}");
        let event: StoredEvent = serde_json::from_str(line).expect("our JSON");
        assert_eq!((event.project.as_str(), event.env.as_str()), ("demo", "production"));
        assert_eq!(*ts, event.timestamp_ms(), "the CloudWatch timestamp is the occurrence time");
        assert_eq!(event.id.timestamp_ms() as i64, event.timestamp_ms(), "the id carries the occurrence time");
        assert_eq!(stream, &hour_stream(event.timestamp), "one stream per UTC hour");
        by_message.insert(event.message.clone(), event);
    }
    assert_eq!(by_message["payment failed"].level.as_str(), "error");
    assert!(by_message["payment failed"].fingerprint.is_some());
    assert_eq!(by_message["an old one"].level.as_str(), "info");
    assert_eq!(by_message["an old one"].timestamp_ms(), unix_ms(old));
    let streams: HashSet<&str> = production.iter().map(|(s, _, _)| s.as_str()).collect();
    assert!(streams.contains(hour_stream(old).as_str()), "the old event is in its own hour's stream: {streams:?}");

    let staging = all_lines(&client, "/logboard/demo/staging").await;
    assert_eq!(staging.len(), 1);
    let event: StoredEvent = serde_json::from_str(&staging[0].2).expect("our JSON");
    assert_eq!(
        (event.env.as_str(), event.message.as_str(), event.level.as_str()),
        ("staging", "staging hello", "warn")
    );
}

#[tokio::test]
async fn the_read_api_reads_events_back_from_cloudwatch() {
    let moto = Moto::start().await;
    let app = start_app(&moto.url).await;
    let now = OffsetDateTime::now_utc();
    let events: Vec<Value> = (0..5)
        .map(|i| {
            json!({
                "message": format!("event {i} {}", if i % 2 == 0 { "Checkout" } else { "login" }),
                "level": if i == 3 { "error" } else { "info" },
                "timestamp": rfc3339(now - time::Duration::minutes(40 * i)),
            })
        })
        .collect();
    let (status, _) = app.ingest(&json!({"env": "production", "events": events})).await;
    assert_eq!(status, 202);
    app.wait_until_shipped(SHIP_TIMEOUT).await;

    let (status, page) = app.read("/api/v1/events?project=demo&env=production").await;
    assert_eq!(status, 200, "{page}");
    let messages: Vec<&str> =
        page["events"].as_array().expect("events").iter().map(|e| e["message"].as_str().expect("message")).collect();
    assert_eq!(
        messages,
        ["event 0 Checkout", "event 1 login", "event 2 Checkout", "event 3 login", "event 4 Checkout"],
        "newest first"
    );
    assert_eq!(page["next_cursor"], Value::Null);

    let id = page["events"][3]["id"].as_str().expect("id");
    let (status, one) = app.read(&format!("/api/v1/events/{id}?project=demo&env=production")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!((one["id"].as_str(), one["message"].as_str()), (Some(id), Some("event 3 login")));
    let (status, _) = app.read(&format!("/api/v1/events/{id}?project=demo&env=staging")).await;
    assert_eq!(status, 404, "another env's group does not hold it");

    let (_, errors) = app.read("/api/v1/events?project=demo&env=production&level=error").await;
    let errors = errors["events"].as_array().expect("events");
    assert_eq!(errors.len(), 1, "moto ignores the level pattern; we filter exactly: {errors:?}");
    assert_eq!(errors[0]["message"], "event 3 login");

    let (_, found) = app.read("/api/v1/events?project=demo&env=production&q=checkout").await;
    let found: Vec<&str> =
        found["events"].as_array().expect("events").iter().map(|e| e["message"].as_str().expect("m")).collect();
    assert_eq!(found, ["event 0 Checkout", "event 2 Checkout", "event 4 Checkout"], "case-insensitive");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/events?project=demo&env=production&limit=2&cursor={c}"),
            None => "/api/v1/events?project=demo&env=production&limit=2".to_string(),
        };
        let (status, page) = app.read(&path).await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().expect("events");
        assert!(events.len() <= 2);
        seen.extend(events.iter().map(|e| e["message"].as_str().expect("m").to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, messages, "paging visits every event once, in order");

    let counts = app
        .store
        .level_counts("demo", "production", now - time::Duration::hours(4), now + time::Duration::minutes(1))
        .await
        .expect("counts");
    assert_eq!((counts.get(logboard::event::Level::Info), counts.get(logboard::event::Level::Error)), (4, 1));
    assert!(!counts.capped);
}

#[tokio::test]
async fn level_counts_include_events_still_in_the_spool_and_count_each_once() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let config = cloudwatch_config(dir.path(), &moto.url);
    // A long linger keeps the second batch in the spool while the counts are read.
    let options =
        logboard::store::cloudwatch::CloudWatchOptions { linger: Duration::from_secs(3600), ..Default::default() };
    let app = CloudWatchApp::start_with(config, dir, &moto.url, options).await;
    let (status, _) = app
        .ingest(&json!({"env": "production", "events": [
            {"message": "a", "level": "error"}, {"message": "b", "level": "error"}, {"message": "c"}
        ]}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(app.store.unshipped_events(), 3, "still in the spool");
    let now = OffsetDateTime::now_utc();
    let counts = app
        .store
        .level_counts("demo", "production", now - time::Duration::hours(1), now + time::Duration::minutes(1))
        .await
        .expect("counts");
    let level = logboard::event::Level::Error;
    assert_eq!((counts.get(level), counts.get(logboard::event::Level::Info), counts.capped), (2, 1, false));
}

/// A logboard on moto whose `demo` project reads the Lambda groups `/aws/lambda/demo-api-*`.
async fn start_with_lambda_groups(moto: &Moto) -> CloudWatchApp {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = cloudwatch_config(dir.path(), &moto.url);
    let demo = config.projects.iter_mut().find(|p| p.name == "demo").expect("demo project");
    demo.extra_group_prefixes = vec!["/aws/lambda/demo-api-".into()];
    CloudWatchApp::start(config, dir, &moto.url).await
}

/// Creates `group` with one stream and puts `lines` into it one millisecond apart, ending a
/// minute ago; the time of the first line.
async fn put_lambda_lines(client: &Client, group: &str, lines: &[&str]) -> i64 {
    let start = unix_ms(OffsetDateTime::now_utc()) - 60_000 - lines.len() as i64;
    let lines: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
    put_lines(client, group, "2026/11/24/[$LATEST]0f4b2c8e9a1d4e7f8b3c6d5e2a1f0b9c", start, &lines).await;
    start
}

#[tokio::test]
async fn an_external_lambda_group_is_listed_and_readable() {
    let moto = Moto::start().await;
    let app = start_with_lambda_groups(&moto).await;
    let lines = [
        "START RequestId: abc Version: $LATEST",
        "[ERROR]\t2026-11-24T15:00:00.000Z\tabc\tpayment failed",
        r#"{"timestamp":"2026-11-24T15:00:00Z","level":"WARN","message":"slow downstream","requestId":"abc"}"#,
    ];
    let t = put_lambda_lines(&moto.client(), LAMBDA_GROUP, &lines).await;
    // Another project's function: it has lines, and they are not readable through demo.
    put_lambda_lines(&moto.client(), "/aws/lambda/other-service", &["[ERROR]\t2026-11-24T15:00:00.000Z\tdef\tsecret"])
        .await;

    let (status, groups) = app.read("/api/v1/groups?project=demo&env=production").await;
    assert_eq!(status, 200, "{groups}");
    assert_eq!(
        groups["groups"],
        json!([
            {"name": "/logboard/demo/production", "kind": "ingest"},
            {"name": LAMBDA_GROUP, "kind": "external"},
        ]),
        "the own group first (even before it exists), then the project's external ones only"
    );

    let base = format!("/api/v1/events?project=demo&env=production&group={LAMBDA_GROUP}");
    let (status, all) = app.read(&base).await;
    assert_eq!(status, 200, "{all}");
    let levels: Vec<(&str, &str)> = all["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (e["level"].as_str().expect("level"), e["message"].as_str().expect("message")))
        .collect();
    assert_eq!(
        levels,
        [("warn", "slow downstream"), ("error", "payment failed"), ("info", lines[0])],
        "newest first, levels and messages read from the lines"
    );

    let (_, errors) = app.read(&format!("{base}&level=error")).await;
    let errors = errors["events"].as_array().expect("events");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0]["level"].as_str(), errors[0]["message"].as_str()), (Some("error"), Some("payment failed")));
    assert_eq!(errors[0]["extra"], json!({"request_id": "abc"}));
    assert_eq!(errors[0]["timestamp"].as_str().map(timestamp_format::parse).map(|t| t.map(unix_ms)), Some(Some(t + 1)));

    let id = errors[0]["id"].as_str().expect("id");
    let (status, again) = app.read(&base).await;
    assert_eq!(status, 200);
    assert_eq!(again["events"][1]["id"].as_str(), Some(id), "the same line has the same id on every read");
    let (status, one) =
        app.read(&format!("/api/v1/events/{id}?project=demo&env=production&group={LAMBDA_GROUP}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["message"].as_str(), Some("payment failed"));

    let (_, other) = app.read("/api/v1/events?project=demo&env=production&group=/aws/lambda/other-service").await;
    assert!(other["events"].as_array().is_none_or(Vec::is_empty), "another project's group is not readable: {other}");
}

#[tokio::test]
async fn lambda_lines_are_events_whose_fields_the_search_language_finds() {
    let moto = Moto::start().await;
    let app = start_with_lambda_groups(&moto).await;

    // Three invocations of a Python function as its group holds them: a cold start that logs a
    // traceback (one CloudWatch event of several lines), one that times out, a quick one.
    let (cold, slow, quick) = (
        "0b3e6a6c-7f3e-4d0b-9a59-3b1f0c2e9d41",
        "5d7e9f1a-2b3c-4d5e-8f9a-0b1c2d3e4f5a",
        "c5a1f0e2-0d3b-4c8e-8f6a-2e9b7d1c4a33",
    );
    let lines = vec![
        "INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:0a1b"
            .into(),
        format!("START RequestId: {cold} Version: $LATEST"),
        format!("[INFO]\t2026-11-24T15:02:03.101Z\t{cold}\tcharging order 42\n"),
        format!(
            "[ERROR]\t2026-11-24T15:02:03.456Z\t{cold}\tcharge failed\nTraceback (most recent call last):\n  File \
             \"/var/task/app.py\", line 18, in handler\n    charge(order)\n  File \"/var/task/billing.py\", line 7, in \
             charge\n    card = order[\"card\"]\nKeyError: 'card'\n"
        ),
        format!("END RequestId: {cold}"),
        format!(
            "REPORT RequestId: {cold}\tDuration: 1532.27 ms\tBilled Duration: 1533 ms\tMemory Size: 128 MB\tMax Memory \
             Used: 71 MB\tInit Duration: 245.12 ms\t\n"
        ),
        format!("START RequestId: {slow} Version: $LATEST"),
        format!("2026-11-24T15:02:09.459Z {slow} Task timed out after 3.00 seconds\n"),
        format!("END RequestId: {slow}"),
        format!(
            "REPORT RequestId: {slow}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory \
             Used: 70 MB\tStatus: timeout\n"
        ),
        format!("START RequestId: {quick} Version: $LATEST"),
        format!("[INFO]\t2026-11-24T15:02:10.020Z\t{quick}\tok\n"),
        format!("END RequestId: {quick}"),
        format!(
            "REPORT RequestId: {quick}\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory \
             Used: 71 MB\t\n"
        ),
    ];
    let group = "/aws/lambda/demo-api-checkout";
    put_lambda_lines(&moto.client(), group, &lines.iter().map(String::as_str).collect::<Vec<_>>()).await;

    let search = |q: &str| {
        let query =
            serde_urlencoded::to_string([("project", "demo"), ("env", "production"), ("group", group), ("q", q)])
                .expect("query string");
        app.read_owned(format!("/api/v1/events?{query}"))
    };
    let events = |answer: &Value| -> Vec<Value> { answer["events"].as_array().cloned().unwrap_or_default() };
    let messages = |answer: &Value| -> Vec<String> {
        events(answer).iter().map(|e| e["message"].as_str().expect("message").to_string()).collect()
    };

    // One invocation, newest first.
    let (status, invocation) = search(&format!("extra.request_id:{cold}")).await;
    assert_eq!(status, 200, "{invocation}");
    assert_eq!(
        messages(&invocation),
        [lines[5].trim_end(), lines[4].as_str(), "charge failed", "charging order 42", lines[1].as_str(),]
    );
    let invocation = events(&invocation);
    let error = &invocation[2];
    assert_eq!((error["level"].as_str(), error["type"].as_str()), (Some("error"), Some("KeyError")));
    let stack = error["stack"].as_str().expect("the traceback is the stack");
    assert!(
        stack.starts_with("Traceback (most recent call last):\n") && stack.ends_with("KeyError: 'card'"),
        "{stack}"
    );

    // The numbers of REPORT lines compare as numbers.
    let (status, slow_ones) = search("extra.duration_ms:>1000").await;
    assert_eq!(status, 200, "{slow_ones}");
    let slow_ones = events(&slow_ones);
    let reports: Vec<(Option<&str>, Option<&str>, f64)> = slow_ones
        .iter()
        .map(|e| (e["type"].as_str(), e["level"].as_str(), e["extra"]["duration_ms"].as_f64().expect("a number")))
        .collect();
    let report_ids: Vec<Value> = slow_ones.iter().map(|e| e["extra"]["request_id"].clone()).collect();
    assert_eq!(
        reports,
        [(Some("lambda.report"), Some("info"), 3000.0), (Some("lambda.report"), Some("info"), 1532.27)]
    );
    assert_eq!(report_ids, [json!(slow), json!(cold)]);
    assert_eq!(slow_ones[0]["extra"]["status"], "timeout");

    let (_, cold_starts) = search("has:extra.init_duration_ms").await;
    let cold_starts = events(&cold_starts);
    assert_eq!(cold_starts.len(), 1, "{cold_starts:?}");
    assert_eq!(
        cold_starts[0]["extra"],
        json!({"request_id": cold, "duration_ms": 1532.27, "billed_duration_ms": 1533, "memory_size_mb": 128,
               "max_memory_used_mb": 71, "init_duration_ms": 245.12})
    );

    // Errors: the traceback and the timeout, each with its invocation.
    let (_, errors) = search("level:error").await;
    let errors: Vec<(String, Value)> = events(&errors)
        .iter()
        .map(|e| (e["message"].as_str().expect("message").to_string(), e["extra"]["request_id"].clone()))
        .collect();
    assert_eq!(
        errors,
        [("Task timed out after 3.00 seconds".to_string(), json!(slow)), ("charge failed".to_string(), json!(cold))]
    );

    // Lines of no known kind are info, as they were written.
    let (_, other) = search("INIT_START").await;
    assert_eq!(messages(&other), [lines[0].as_str()]);
    assert_eq!(events(&other)[0]["level"], "info");
}

#[tokio::test]
async fn events_accepted_while_cloudwatch_is_unreachable_are_shipped_after_a_restart() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let unreachable = closed_port_url();
    let config = cloudwatch_config(dir.path(), &unreachable);
    let app = CloudWatchApp::start(config, dir, &unreachable).await;
    let messages: Vec<String> = (0..3).map(|i| format!("kept {i}")).collect();
    let (status, answer) = app
        .ingest(
            &json!({"env": "production", "events": messages.iter().map(|m| json!({"message": m})).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(status, 202, "accepted while CloudWatch is down: {answer}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.store.unshipped_events(), 3, "nothing can be shipped, nothing is dropped");
    let dir = app.stop();

    let config = cloudwatch_config(dir.path(), &moto.url);
    let app = CloudWatchApp::start(config, dir, &moto.url).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let mut shipped: Vec<String> = all_lines(&moto.client(), "/logboard/demo/production")
        .await
        .into_iter()
        .map(|(_, _, line)| serde_json::from_str::<StoredEvent>(&line).expect("json").message)
        .collect();
    shipped.sort();
    assert_eq!(shipped, messages, "every event once");
}

#[tokio::test]
async fn a_backlog_drains_into_cloudwatch_exactly_once() {
    const EVENTS: usize = 20_000;
    let moto = Moto::start().await;
    let app = start_app(&moto.url).await;
    let now = unix_ms(OffsetDateTime::now_utc());
    let started = Instant::now();
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"message": format!("backlog {i:06}"), "timestamp": now - *i as i64 * 37}))
            .collect();
        let (status, answer) = app.ingest(&json!({"env": "production", "events": events})).await;
        assert_eq!((status, &answer["accepted"]), (202, &json!(chunk.len())), "{answer}");
    }
    let appended = started.elapsed();
    app.wait_until_shipped(Duration::from_secs(120)).await;
    let drained = started.elapsed();
    let lines = all_lines(&moto.client(), "/logboard/demo/production").await;
    let unique: HashSet<String> =
        lines.iter().map(|(_, _, line)| serde_json::from_str::<StoredEvent>(line).expect("json").message).collect();
    assert_eq!((lines.len(), unique.len()), (EVENTS, EVENTS), "no loss, no duplicates");
    println!(
        "{EVENTS} events: spooled in {appended:?}, in moto after {drained:?} ({:.0} events/s end to end)",
        EVENTS as f64 / drained.as_secs_f64()
    );
}

#[tokio::test]
async fn shutdown_ships_what_was_just_accepted() {
    let moto = Moto::start().await;
    let app = start_app(&moto.url).await;
    let (status, _) =
        app.ingest(&json!({"env": "production", "events": [{"message": "last words"}, {"message": "bye"}]})).await;
    assert_eq!(status, 202);
    tokio::time::timeout(Duration::from_secs(10), app.store.shutdown())
        .await
        .expect("the flush ends within its deadline");
    assert_eq!(app.store.unshipped_events(), 0);
    let mut messages: Vec<String> = all_lines(&moto.client(), "/logboard/demo/production")
        .await
        .into_iter()
        .map(|(_, _, line)| serde_json::from_str::<StoredEvent>(&line).expect("json").message)
        .collect();
    messages.sort();
    assert_eq!(messages, ["bye", "last words"]);
}

#[tokio::test]
async fn a_full_spool_makes_ingest_answer_503_and_readiness_fail() {
    // No CloudWatch at all: nothing drains, so the spool only grows.
    let dir = tempfile::tempdir().expect("dir");
    let unreachable = closed_port_url();
    let config = common::test_config(
        dir.path(),
        &[
            ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
            ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", &unreachable),
            ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
            ("LOGBOARD__STORAGE__SPOOL_MAX_BYTES", "100"),
        ],
    );
    let app = CloudWatchApp::start(config, dir, &unreachable).await;
    let (status, _) = app.ingest(&json!({"env": "production", "message": "fills the spool past 100 bytes"})).await;
    assert_eq!(status, 202, "below the high-water mark when it arrived");
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/events"))
        .header("X-Logboard-Key", common::INGEST_KEY)
        .json(&json!({"env": "production", "message": "one too many"}))
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"), "{:?}", response.headers());
    assert_eq!(app.store.unshipped_events(), 1, "the refused event was not kept");
    let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn readiness_follows_cloudwatch_reachability() {
    let moto = Moto::start().await;
    let app = start_app(&moto.url).await;
    assert_eq!(reqwest::get(app.url("/readyz")).await.expect("readyz").status(), 200);
    let unreachable = closed_port_url();
    let down = start_app(&unreachable).await;
    assert_eq!(reqwest::get(down.url("/readyz")).await.expect("readyz").status(), 503);
}

#[tokio::test]
async fn a_spooled_backlog_over_many_hourly_streams_drains_exactly_once_after_a_restart() {
    const EVENTS: usize = 20_000;
    let moto = Moto::start().await;
    let unreachable = closed_port_url();
    let dir = tempfile::tempdir().expect("dir");
    let app = CloudWatchApp::start(cloudwatch_config(dir.path(), &unreachable), dir, &unreachable).await;
    // 2.3 s apart: the backlog spans about 13 hours, so 13 or 14 streams.
    let now = unix_ms(OffsetDateTime::now_utc());
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"message": format!("spooled {i:06}"), "timestamp": now - *i as i64 * 2300}))
            .collect();
        let (status, _) = app.ingest(&json!({"env": "production", "events": events})).await;
        assert_eq!(status, 202);
    }
    assert_eq!(app.store.unshipped_events(), EVENTS as u64);
    let dir = app.stop();

    let started = Instant::now();
    let app = CloudWatchApp::start(cloudwatch_config(dir.path(), &moto.url), dir, &moto.url).await;
    app.wait_until_shipped(Duration::from_secs(120)).await;
    let drained = started.elapsed();
    let lines = all_lines(&moto.client(), "/logboard/demo/production").await;
    let streams: HashSet<&str> = lines.iter().map(|(stream, _, _)| stream.as_str()).collect();
    let unique: HashSet<&str> = lines.iter().map(|(_, _, line)| line.as_str()).collect();
    assert_eq!((lines.len(), unique.len()), (EVENTS, EVENTS), "no loss, no duplicates");
    assert!(streams.len() >= 13, "one stream per hour: {streams:?}");
    for (stream, ts, line) in &lines {
        let event: StoredEvent = serde_json::from_str(line).expect("json");
        assert_eq!((*ts, stream.as_str()), (event.timestamp_ms(), hour_stream(event.timestamp).as_str()));
    }
    println!(
        "{EVENTS} spooled events over {} streams drained into moto in {drained:?} ({:.0} events/s)",
        streams.len(),
        EVENTS as f64 / drained.as_secs_f64()
    );
}
