//! The context around an event (`GET /api/v1/events/{id}/context`, `../shared/spec/ui.md`) on
//! both stores, against a brute-force expectation: every event of the group the test sent, sorted
//! by (time, id), and the N on each side of the one asked for. Ties in time, the group's first
//! and last events, N = 0 and N over 200 included; on CloudWatch the calls are counted.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::moto::{CloudWatchApp, Moto, client_for, put_timed_lines};
use common::{TestApp, spawn_app};
use logboard::event::{timestamp_format, unix_ms};
use logboard::metrics::Metrics;
use logboard::store::LogStore;
use logboard::store::cloudwatch::{CloudWatchOptions, CloudWatchStore};
use logboard::store::context::Around;
use serde_json::{Value, json};
use time::OffsetDateTime;
use ulid::Ulid;

const SHIP_TIMEOUT: Duration = Duration::from_secs(30);
const LAMBDA_GROUP: &str = "/aws/lambda/demo-api-context";

/// An event as the tests compare them: (timestamp ms, id).
type Key = (i64, String);

fn key(event: &Value) -> Key {
    let ts = event["timestamp"].as_str().and_then(timestamp_format::parse).map(unix_ms).expect("a timestamp");
    (ts, event["id"].as_str().expect("an id").to_string())
}

fn keys(events: &Value) -> Vec<Key> {
    events.as_array().expect("a list").iter().map(key).collect()
}

/// Every event of the group in the last week, oldest first by (time, id): what the context is
/// checked against.
async fn all_of_group(app: &TestApp, group: Option<&str>) -> Vec<Key> {
    let group = group.map(|g| format!("&group={g}")).unwrap_or_default();
    let (status, answer) =
        app.read(&format!("/api/v1/events?project=demo&env=production{group}&from=now-7d&limit=1000")).await;
    assert_eq!(status, 200, "{answer}");
    let mut all = keys(&answer["events"]);
    assert!(answer["next_cursor"].is_null(), "every event on one page");
    all.sort();
    all
}

/// The brute-force context of `all[at]`: the `before` events before it and the `after` after it.
fn expected(all: &[Key], at: usize, before: usize, after: usize) -> (Vec<Key>, Vec<Key>) {
    (all[at.saturating_sub(before)..at].to_vec(), all[at + 1..(at + 1 + after).min(all.len())].to_vec())
}

/// Asks for the context of `all[at]` with `before`/`after` (`None`: left out, the default 20) and
/// checks it against the brute force.
async fn check(
    app: &TestApp,
    group: Option<&str>,
    all: &[Key],
    at: usize,
    before: Option<usize>,
    after: Option<usize>,
) {
    let mut path = format!("/api/v1/events/{}/context?project=demo&env=production", all[at].1);
    if let Some(group) = group {
        path.push_str(&format!("&group={group}"));
    }
    for (name, n) in [("before", before), ("after", after)] {
        if let Some(n) = n {
            path.push_str(&format!("&{name}={n}"));
        }
    }
    let (status, answer) = app.read(&path).await;
    assert_eq!(status, 200, "{path}: {answer}");
    let (want_before, want_after) = expected(all, at, before.unwrap_or(20), after.unwrap_or(20));
    assert_eq!(key(&answer["event"]), all[at], "{path}");
    assert_eq!(keys(&answer["before"]), want_before, "{path}: before, oldest first");
    assert_eq!(keys(&answer["after"]), want_after, "{path}: after, oldest first");
}

fn rfc3339(ms: i64) -> String {
    timestamp_format::format(logboard::event::from_unix_ms(ms).expect("a time"))
}

/// `count` events, three to a millisecond (ties), `step_ms` apart from `start_ms`.
fn tied_events(start_ms: i64, step_ms: i64, count: usize, tag: &str) -> Value {
    let events: Vec<Value> = (0..count)
        .map(|i| json!({"message": format!("{tag} {i}"), "timestamp": rfc3339(start_ms + (i as i64 / 3) * step_ms)}))
        .collect();
    json!({"env": "production", "events": events})
}

/// The targets every store is checked on: first, second, middle, one in a tie, last two.
fn targets(len: usize) -> [usize; 6] {
    [0, 1, len / 2, len / 2 + 1, len - 2, len - 1]
}

#[tokio::test]
async fn the_embedded_store_gives_the_events_around_one_by_time_then_id() {
    let app = spawn_app().await;
    let start = unix_ms(OffsetDateTime::now_utc()) - 2 * 3_600_000;
    let (status, answer) = app.ingest(&tied_events(start, 1_000, 60, "ctx")).await;
    assert_eq!((status, &answer["accepted"]), (202, &json!(60)), "{answer}");
    // Another env's events are not the group's.
    let (status, _) = app.ingest(&json!({"env": "staging", "message": "elsewhere", "timestamp": rfc3339(start)})).await;
    assert_eq!(status, 202);
    let all = all_of_group(&app, None).await;
    assert_eq!(all.len(), 60);
    assert!(all.windows(2).any(|w| w[0].0 == w[1].0), "ties in time are part of the test");

    for at in targets(all.len()) {
        for (before, after) in [(None, None), (Some(0), Some(0)), (Some(5), Some(2)), (Some(200), Some(200))] {
            check(&app, None, &all, at, before, after).await;
        }
    }
}

#[tokio::test]
async fn a_context_request_out_of_bounds_or_for_an_unknown_event_is_refused_precisely() {
    let app = spawn_app().await;
    let (status, _) = app.ingest(&json!({"env": "production", "message": "the one"})).await;
    assert_eq!(status, 202);
    let all = all_of_group(&app, None).await;
    let base = format!("/api/v1/events/{}/context?project=demo&env=production", all[0].1);

    for (query, message) in [
        ("&before=201", "`before` must be a number from 0 to 200, not `201`"),
        ("&after=1000", "`after` must be a number from 0 to 200, not `1000`"),
        ("&before=ten", "`before` must be a number from 0 to 200, not `ten`"),
        ("&after=-1", "`after` must be a number from 0 to 200, not `-1`"),
    ] {
        let (status, answer) = app.read(&format!("{base}{query}")).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(message)), "{query}");
    }
    let (status, answer) = app.read(&format!("{base}&before=200&after=200")).await;
    assert_eq!(status, 200, "200 is allowed: {answer}");

    let unknown = Ulid::from_parts(unix_ms(OffsetDateTime::now_utc()) as u64, 42).to_string();
    let (status, answer) = app.read(&format!("/api/v1/events/{unknown}/context?project=demo&env=production")).await;
    assert_eq!(status, 404, "{answer}");
    let (status, _) = app.read("/api/v1/events/not-an-id/context?project=demo&env=production").await;
    assert_eq!(status, 404);
    let (status, answer) = app.read(&format!("/api/v1/events/{}/context?project=demo&env=staging", all[0].1)).await;
    assert_eq!(status, 404, "another env's group does not hold it: {answer}");
    let (status, answer) = app.read(&format!("/api/v1/events/{}/context?project=nope&env=production", all[0].1)).await;
    assert_eq!(status, 404, "{answer}");

    let anonymous = reqwest::get(app.url(&base)).await.expect("request");
    assert_eq!(anonymous.status(), 401, "the read API's auth");
}

/// A second CloudWatch store on the same moto, with requests of its own counted, for reads only.
/// Its retention check runs once at start (a DescribeLogGroups): waited for, so that what is
/// counted afterwards is the context's reads alone.
async fn counting_reader(endpoint: &str) -> (CloudWatchStore, Arc<Metrics>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let config = lambda_config(dir.path(), endpoint);
    let metrics = Arc::new(Metrics::new());
    let store =
        CloudWatchStore::with_client(&config, client_for(endpoint), Arc::clone(&metrics), CloudWatchOptions::default())
            .await
            .expect("store");
    let deadline = std::time::Instant::now() + SHIP_TIMEOUT;
    while metrics.cloudwatch_requests.get() == 0 {
        assert!(std::time::Instant::now() < deadline, "the retention check never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (store, metrics, dir)
}

/// The context of `id` read through `reader`, with the CloudWatch calls it made.
async fn counted_context(
    reader: &CloudWatchStore,
    metrics: &Metrics,
    app: &TestApp,
    group: Option<&str>,
    id: &str,
    around: Around,
) -> (Vec<Key>, Key, Vec<Key>, u64) {
    let project = app.state.projects.get("demo").expect("demo");
    let before = metrics.cloudwatch_requests.get();
    let context = reader
        .context(project, "production", group, Ulid::from_string(id).expect("id"), around)
        .await
        .expect("context")
        .expect("found");
    let calls = metrics.cloudwatch_requests.get() - before;
    let k = |e: &logboard::event::StoredEvent| (e.timestamp_ms(), e.id.to_string());
    (context.before.iter().map(k).collect(), k(&context.event), context.after.iter().map(k).collect(), calls)
}

/// The CloudWatch store on moto, with the demo project's Lambda functions readable.
fn lambda_config(dir: &std::path::Path, endpoint: &str) -> logboard::config::Config {
    let mut config = common::test_config(
        dir,
        &[
            ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
            ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", endpoint),
            ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
        ],
    );
    let demo = config.projects.iter_mut().find(|p| p.name == "demo").expect("demo project");
    demo.extra_group_prefixes = vec!["/aws/lambda/demo-api-".into()];
    config
}

#[tokio::test]
async fn on_cloudwatch_the_context_of_an_ingested_event_spans_its_hourly_streams_in_few_calls() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let app = CloudWatchApp::start(lambda_config(dir.path(), &moto.url), dir, &moto.url).await;
    // 90 events, three to a second, across the turn of an hour three hours ago: two streams.
    let now = unix_ms(OffsetDateTime::now_utc());
    let hour_turn = (now - 3 * 3_600_000).div_euclid(3_600_000) * 3_600_000;
    let (status, answer) = app.ingest(&tied_events(hour_turn - 15_000, 1_000, 90, "cw")).await;
    assert_eq!((status, &answer["accepted"]), (202, &json!(90)), "{answer}");
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let all = all_of_group(&app, None).await;
    assert_eq!(all.len(), 90);

    for at in targets(all.len()) {
        for (before, after) in [(None, None), (Some(0), Some(0)), (Some(7), Some(3)), (Some(200), Some(200))] {
            check(&app, None, &all, at, before, after).await;
        }
    }

    let (reader, metrics, _reader_dir) = counting_reader(&moto.url).await;
    let stream_of = |ms: i64| ms.div_euclid(3_600_000);
    for (at, n) in [(all.len() / 2, 20), (30, 5), (60, 10)] {
        let (before, event, after, calls) =
            counted_context(&reader, &metrics, &app, None, &all[at].1, Around { before: n, after: n }).await;
        let (want_before, want_after) = expected(&all, at, n, n);
        assert_eq!((&before, &event, &after), (&want_before, &all[at], &want_after));
        let streams: BTreeSet<i64> = before.iter().chain(&after).chain([&event]).map(|k| stream_of(k.0)).collect();
        assert!(
            calls <= 2 + (streams.len() as u64 - 1),
            "one read each way plus one per further stream: {calls} calls for {} streams",
            streams.len()
        );
    }
}

#[tokio::test]
async fn on_cloudwatch_the_context_of_a_lambda_line_is_its_stream_in_three_calls() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let app = CloudWatchApp::start(lambda_config(dir.path(), &moto.url), dir, &moto.url).await;
    let client = moto.client();
    let start = unix_ms(OffsetDateTime::now_utc()) - 600_000;
    let ours = "2026/12/06/[$LATEST]aaaa";
    let other = "2026/12/06/[$LATEST]bbbb";
    // Two containers' streams interleaved in time; ties in ours (two lines to a millisecond).
    let lines = |tag: &str, offset: i64| -> Vec<(i64, String)> {
        (0..80)
            .map(|i| (start + offset + (i / 2) * 10, format!("[INFO]\t2026-12-06T00:00:00.000Z\treq\t{tag} {i}")))
            .collect()
    };
    put_timed_lines(&client, LAMBDA_GROUP, ours, &lines("ours", 0)).await;
    put_timed_lines(&client, LAMBDA_GROUP, other, &lines("other", 5)).await;

    // The brute force over our stream alone, as the read API shows its lines (ids included).
    let (status, answer) = app
        .read(&format!("/api/v1/events?project=demo&env=production&group={LAMBDA_GROUP}&from=now-7d&limit=1000"))
        .await;
    assert_eq!(status, 200, "{answer}");
    let mut all: Vec<Key> = answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["message"].as_str().is_some_and(|m| m.starts_with("ours")))
        .map(key)
        .collect();
    all.sort();
    assert_eq!(all.len(), 80);

    for at in targets(all.len()) {
        for (before, after) in [(None, None), (Some(0), Some(0)), (Some(4), Some(9)), (Some(200), Some(200))] {
            check(&app, Some(LAMBDA_GROUP), &all, at, before, after).await;
        }
    }

    let (reader, metrics, _reader_dir) = counting_reader(&moto.url).await;
    for at in targets(all.len()) {
        let (before, event, after, calls) =
            counted_context(&reader, &metrics, &app, Some(LAMBDA_GROUP), &all[at].1, Around::default()).await;
        let (want_before, want_after) = expected(&all, at, 20, 20);
        assert_eq!((&before, &event, &after), (&want_before, &all[at], &want_after));
        assert!(calls <= 3, "find the stream, then one read each way: {calls} calls");
    }
}
