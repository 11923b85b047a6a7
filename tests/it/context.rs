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
use logboard::links::urlencode;
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

/// Reads the API with a session cookie: one password check for all of a test's reads (Basic
/// auth checks the password on every request).
struct Reader<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
}

impl Reader<'_> {
    async fn new(app: &TestApp) -> Reader<'_> {
        Reader { app, client: app.logged_in_client().await }
    }

    async fn read(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.app.url(path)).send().await.expect("read");
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }
}

/// Asks for the context of `all[at]` with `before`/`after` (`None`: left out, the default 20) and
/// checks it against the brute force.
async fn check(
    app: &Reader<'_>,
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
    let reader = Reader::new(&app).await;

    for at in targets(all.len()) {
        for (before, after) in [(None, None), (Some(0), Some(0)), (Some(5), Some(2)), (Some(200), Some(200))] {
            check(&reader, None, &all, at, before, after).await;
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
    let reader = Reader::new(&app).await;

    for at in targets(all.len()) {
        for (before, after) in [(None, None), (Some(0), Some(0)), (Some(7), Some(3)), (Some(200), Some(200))] {
            check(&reader, None, &all, at, before, after).await;
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
    // The first and last events: past the next stream (missing here), one read of the day that
    // way finds the group's end, instead of a call per hour without a stream.
    for at in [0, all.len() - 1] {
        let (before, event, after, calls) =
            counted_context(&reader, &metrics, &app, None, &all[at].1, Around::default()).await;
        let (want_before, want_after) = expected(&all, at, 20, 20);
        assert_eq!((&before, &event, &after), (&want_before, &all[at], &want_after));
        assert!(calls <= 4, "its stream each way, then the next stream and the day: {calls} calls");
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
    let reader = Reader::new(&app).await;

    for at in targets(all.len()) {
        for (before, after) in [(None, None), (Some(0), Some(0)), (Some(4), Some(9)), (Some(200), Some(200))] {
            check(&reader, Some(LAMBDA_GROUP), &all, at, before, after).await;
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

/// The messages of the logs page's table, top to bottom, read off its HTML.
fn row_messages(html: &str) -> Vec<String> {
    html.split(r#"<tr class="event "#)
        .skip(1)
        .filter_map(|row| {
            let cell = row.split(r#"<td class="message"><a href=""#).nth(1)?;
            let text = cell.split_once("\">")?.1;
            Some(text.split("</a>").next()?.to_string())
        })
        .collect()
}

/// A link of the page as its `href` attribute has it, `&` unescaped.
fn link(html: &str, class: &str) -> Option<String> {
    let after = html.split(&format!(r#"class="{class}" href=""#)).nth(1)?;
    Some(after.split('"').next()?.replace("&#38;", "&").replace("&amp;", "&"))
}

async fn page(client: &reqwest::Client, app: &TestApp, path: &str) -> String {
    let response = client.get(app.url(path)).send().await.expect("page");
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("html")
}

/// The id of the one event of the production group whose message is `message`.
async fn id_of(app: &TestApp, message: &str) -> String {
    let (status, found) = app
        .read(&format!(
            "/api/v1/events?project=demo&env=production&from=now-7d&q={}",
            urlencode(&format!("\"{message}\""))
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    let found: Vec<&Value> =
        found["events"].as_array().expect("events").iter().filter(|e| e["message"] == message).collect();
    assert_eq!(found.len(), 1, "{message}");
    found[0]["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn the_detail_pane_links_the_context_which_the_logs_page_shows_around_the_event_marked() {
    let app = spawn_app().await;
    let start = unix_ms(OffsetDateTime::now_utc()) - 3_600_000;
    let (status, _) = app.ingest(&tied_events(start, 1_000, 75, "row")).await;
    assert_eq!(status, 202);
    let all = all_of_group(&app, None).await;
    let at = 40;
    let id = &all[at].1;
    let client = app.logged_in_client().await;

    // The detail of one event, found by a search that matches it alone.
    let detail = page(&client, &app, &format!("/logs?project=demo&env=production&q=x&event={id}")).await;
    let context = link(&detail, "context-link").expect("a Context link");
    assert_eq!(context, format!("/logs?project=demo&env=production&around={id}#event-{id}"));
    assert_eq!(link(&detail, "permalink"), Some(format!("/logs?project=demo&env=production&event={id}")));

    let (path, fragment) = context.split_once('#').expect("a fragment");
    let around = page(&client, &app, path).await;
    let (before, after) = expected(&all, at, 20, 20);
    let ids_of = |keys: &[Key]| keys.iter().map(|k| k.1.clone()).collect::<Vec<_>>();
    // The rows are the brute-force context, newest first like every page of the table.
    let mut want: Vec<String> = ids_of(&before).into_iter().chain([id.clone()]).chain(ids_of(&after)).collect();
    want.reverse();
    let shown_ids: Vec<String> = around
        .split(r#"<tr class="event "#)
        .skip(1)
        .filter_map(|row| row.split(r#"data-event=""#).nth(1).map(|rest| rest.chars().take(26).collect()))
        .collect();
    assert_eq!(shown_ids, want, "the event and 20 each side of it in its group");
    assert_eq!(row_messages(&around).len(), 41);
    assert_eq!(around.matches(r#"aria-current="true""#).count(), 1, "one row marked");
    assert!(around.contains(&format!(r#"id="{fragment}" aria-current="true""#)), "the marked row is the link's target");
    assert!(around.contains("The events around"), "says what the table shows");

    // The first event's context: nothing before it.
    let first = page(&client, &app, &format!("/logs?project=demo&env=production&around={}", all[0].1)).await;
    assert_eq!(row_messages(&first).len(), 21);
    let unknown = client.get(app.url("/logs?project=demo&env=production&around=01ARZ3NDEKTSV4RRFFQ69G5FAV")).send();
    assert_eq!(unknown.await.expect("page").status(), 404);
}

#[tokio::test]
async fn an_events_permanent_link_opens_its_detail_whatever_the_range_and_query() {
    let app = spawn_app().await;
    let three_days_ago = unix_ms(OffsetDateTime::now_utc()) - 3 * 86_400_000;
    let (status, _) = app
        .ingest(&json!({"env": "production", "events": [
            {"message": "an old deploy note", "timestamp": rfc3339(three_days_ago)},
            {"message": "something recent"},
        ]}))
        .await;
    assert_eq!(status, 202);
    let id = id_of(&app, "an old deploy note").await;
    let client = app.logged_in_client().await;
    let html = page(&client, &app, &format!("/logs?project=demo&env=production&event={id}")).await;
    assert_eq!(row_messages(&html), ["something recent"], "the table keeps the last 24 h");
    assert!(html.contains(r#"<h2 class="detail-title">an old deploy note</h2>"#), "its detail is open");
    assert_eq!(link(&html, "permalink"), Some(format!("/logs?project=demo&env=production&event={id}")));
    // With a query that does not match it either.
    let html = page(&client, &app, &format!("/logs?project=demo&env=production&q=recent&event={id}")).await;
    assert!(html.contains(r#"<h2 class="detail-title">an old deploy note</h2>"#));
}

/// `ms` as the pages show it on UTC: `2026-11-24 15:00:00.000`.
fn shown(ms: i64) -> String {
    let t = logboard::event::from_unix_ms(ms).expect("a time");
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[tokio::test]
async fn the_detail_of_an_error_shows_its_issue_status_24h_count_and_first_seen_with_links() {
    let app = spawn_app().await;
    let now = unix_ms(OffsetDateTime::now_utc());
    let ages_h = [30, 5, 1];
    let errors: Vec<Value> = ages_h
        .iter()
        .enumerate()
        .map(|(i, h)| {
            json!({"level": "error", "type": "TypeError", "message": format!("cart is undefined #{i}"),
                   "stack": "TypeError: cart is undefined\n    at render (app.js:1:2)", "timestamp": now - h * 3_600_000})
        })
        .collect();
    let (status, _) = app.ingest(&json!({"env": "production", "events": errors})).await;
    assert_eq!(status, 202);
    let (status, _) = app.ingest(&json!({"env": "production", "message": "all fine", "level": "info"})).await;
    assert_eq!(status, 202);
    let id = id_of(&app, "cart is undefined #2").await;
    let (_, event) = app.read(&format!("/api/v1/events/{id}?project=demo&env=production")).await;
    let fingerprint = event["fingerprint"].as_str().expect("an error's fingerprint").to_string();
    let in_24h = ages_h.iter().filter(|h| **h < 24).count();
    let first_seen = now - ages_h.iter().max().expect("ages") * 3_600_000;

    let client = app.logged_in_client().await;
    let html = page(&client, &app, &format!("/logs?project=demo&env=production&event={id}")).await;
    assert!(html.contains(r#"<dd class="issue-status"><span class="status-badge">ongoing</span></dd>"#), "{html}");
    assert!(html.contains(&format!(r#"<dd class="issue-count">{in_24h}</dd>"#)), "counted over the last 24 h");
    assert!(html.contains(&format!(r#"<dd class="issue-first-seen">{}</dd>"#, shown(first_seen))));
    assert_eq!(link(&html, "issue-link"), Some(format!("/issues?project=demo&env=production#issue-{fingerprint}")));
    let events_link = link(&html, "issue-events").expect("a link to its events");
    assert!(events_link.contains(&format!("q=fingerprint%3A{fingerprint}")), "{events_link}");
    let all_of_it = page(&client, &app, &events_link).await;
    assert_eq!(row_messages(&all_of_it).len(), ages_h.len(), "the link finds every one of its events");

    let resolved = client
        .post(app.url(&format!("/api/v1/issues/{fingerprint}/status")))
        .json(&json!({"project": "demo", "env": "production", "status": "resolved"}))
        .send()
        .await
        .expect("resolve");
    assert_eq!(resolved.status(), 200);
    let html = page(&client, &app, &format!("/logs?project=demo&env=production&event={id}")).await;
    assert!(html.contains(r#"<span class="status-badge">resolved</span>"#), "the status as it is now");

    let info = id_of(&app, "all fine").await;
    let html = page(&client, &app, &format!("/logs?project=demo&env=production&event={info}")).await;
    assert!(!html.contains("detail-issue"), "an info event has no issue");
}

#[tokio::test]
async fn in_chromium_the_context_link_shows_the_event_marked_and_scrolled_into_view() {
    let app = spawn_app().await;
    let start = unix_ms(OffsetDateTime::now_utc()) - 3_600_000;
    let (status, _) = app.ingest(&tied_events(start, 1_000, 120, "line")).await;
    assert_eq!(status, 202);
    let all = all_of_group(&app, None).await;
    // An event low in its context's table, so that showing it takes a scroll.
    let id = all[10].1.clone();

    let browser = common::browser::Browser::start(1200, 500).await;
    browser.goto(&app.url("/login")).await;
    browser.fill("input[name=username]", "admin").await;
    browser.fill("input[name=password]", common::ADMIN_PASSWORD).await;
    browser.click_to_navigate("form button[type=submit]").await;
    browser.goto(&app.url(&format!("/logs?project=demo&env=production&event={id}"))).await;
    browser.click_to_navigate("aside.detail a.context-link").await;
    assert!(browser.path().await.contains(&format!("around={id}")), "{}", browser.path().await);

    let marked = browser.texts("table.events tr[aria-current=true] td.message").await;
    let message = all_events_message(&app, &id).await;
    assert_eq!(marked, [message], "the event itself is marked");
    let (top, bottom, height) = marked_row_place(&browser).await;
    // The fragment puts the row at the top of the window (to a fraction of a pixel).
    assert!(top > -1.0 && bottom <= height, "in view: {top}..{bottom} of {height}");

    // Without the fragment the same table leaves it below the window: the link is what shows it.
    browser.goto(&app.url(&format!("/logs?project=demo&env=production&around={id}"))).await;
    let (_, bottom, height) = marked_row_place(&browser).await;
    assert!(bottom > height, "out of view without the fragment: {bottom} of {height}");
}

/// Where the marked row is: its top and bottom in the window, and the window's height.
async fn marked_row_place(browser: &common::browser::Browser) -> (f64, f64, f64) {
    let place = browser
        .client
        .execute(
            "const r = document.querySelector('tr[aria-current=true]').getBoundingClientRect(); \
             return [r.top, r.bottom, window.innerHeight];",
            vec![],
        )
        .await
        .expect("js");
    let [top, bottom, height] = [0, 1, 2].map(|i| place[i].as_f64().unwrap_or_else(|| panic!("a number: {place}")));
    (top, bottom, height)
}

/// The message of event `id` of the production group.
async fn all_events_message(app: &TestApp, id: &str) -> String {
    let (_, event) = app.read(&format!("/api/v1/events/{id}?project=demo&env=production")).await;
    event["message"].as_str().expect("message").to_string()
}

#[tokio::test]
async fn on_cloudwatch_events_still_in_the_spool_are_part_of_the_context() {
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("dir");
    // The writer holds what it is given for an hour: everything stays in the spool.
    let options = CloudWatchOptions { linger: Duration::from_secs(3600), ..CloudWatchOptions::default() };
    let app = CloudWatchApp::start_with(lambda_config(dir.path(), &moto.url), dir, &moto.url, options).await;
    let start = unix_ms(OffsetDateTime::now_utc()) - 600_000;
    let (status, _) = app.ingest(&tied_events(start, 1_000, 30, "spooled")).await;
    assert_eq!(status, 202);
    assert_eq!(app.store.unshipped_events(), 30, "nothing shipped yet");
    let all = all_of_group(&app, None).await;
    assert_eq!(all.len(), 30);
    let reader = Reader::new(&app).await;
    for at in targets(all.len()) {
        check(&reader, None, &all, at, Some(4), Some(4)).await;
    }
}
