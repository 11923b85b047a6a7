//! The buffered writer against the strict fake CloudWatch (`common::fake_cloudwatch`): every
//! failure case of `writer.md`, through the real ingest endpoint, the real spool, the real writer
//! and the real AWS SDK. Each test counts what the fake stored by the events' unique sequence
//! numbers: how many were lost (must be 0) and how many arrived twice (0, except where the
//! fault makes duplicates unavoidable: a timeout or a dropped connection after storing).

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::fake_cloudwatch::{FakeCloudWatch, Fault, MAX_BYTES, MAX_EVENTS, Stored};
use common::moto::CloudWatchApp;
use logboard::event::{StoredEvent, timestamp_format, unix_ms};
use logboard::store::cloudwatch::CloudWatchOptions;
use serde_json::{Value, json};
use time::OffsetDateTime;

const GROUP: &str = "/logboard/demo/production";
const SHIP_TIMEOUT: Duration = Duration::from_secs(60);
const HOUR_MS: i64 = 3600 * 1000;

fn options() -> CloudWatchOptions {
    CloudWatchOptions {
        attempt_timeout: Duration::from_millis(1500),
        linger: Duration::from_millis(100),
        ..CloudWatchOptions::default()
    }
}

async fn start_with(fake: &FakeCloudWatch, env: &[(&str, &str)], options: CloudWatchOptions) -> CloudWatchApp {
    let dir = tempfile::tempdir().expect("dir");
    let mut pairs = vec![
        ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
        ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", fake.url.as_str()),
        ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
    ];
    pairs.extend_from_slice(env);
    let config = common::test_config(dir.path(), &pairs);
    CloudWatchApp::start_with(config, dir, &fake.url, options).await
}

async fn start(fake: &FakeCloudWatch) -> CloudWatchApp {
    start_with(fake, &[], options()).await
}

fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

/// Ingests events numbered `seqs` with the given timestamps, 1000 per request; panics unless
/// every one is accepted.
async fn send(app: &CloudWatchApp, events: &[(u64, i64)], message: impl Fn(u64) -> String) {
    for chunk in events.chunks(1000) {
        let body: Vec<Value> =
            chunk.iter().map(|(seq, ts)| json!({"message": message(*seq), "timestamp": *ts})).collect();
        let (status, answer) = app.ingest(&json!({"env": "production", "events": body})).await;
        assert_eq!((status, &answer["accepted"]), (202, &json!(chunk.len())), "{answer}");
    }
}

fn numbered(seq: u64) -> String {
    format!("event {seq:07}")
}

/// The sequence number of a stored line.
fn seq_of(stored: &Stored) -> u64 {
    let event: StoredEvent = serde_json::from_str(&stored.message).expect("our JSON");
    event.message.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a numbered message")
}

/// How often each sequence number was stored.
fn delivered(fake: &FakeCloudWatch) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for stored in fake.stored(GROUP) {
        *counts.entry(seq_of(&stored)).or_insert(0) += 1;
    }
    counts
}

/// (lost, duplicated) among `0..n`.
fn loss_and_duplicates(counts: &BTreeMap<u64, usize>, n: u64) -> (usize, usize) {
    let lost = (0..n).filter(|s| !counts.contains_key(s)).count();
    let duplicated = counts.values().map(|c| c.saturating_sub(1)).sum();
    (lost, duplicated)
}

/// The Prometheus text as `name{labels}` → value.
async fn scrape(app: &CloudWatchApp) -> BTreeMap<String, f64> {
    let text = reqwest::get(app.url("/metrics")).await.expect("metrics").text().await.expect("text");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn metric(metrics: &BTreeMap<String, f64>, name: &str) -> f64 {
    metrics.get(name).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_follow_real_traffic_through_ingest_shipping_and_dead_letters() {
    let fake = FakeCloudWatch::start().await;
    let app = start(&fake).await;
    let before = scrape(&app).await;
    assert_eq!(metric(&before, "logboard_events_received_total"), 0.0, "{before:?}");
    let now = now_ms();
    // 30 good events, 2 refused at the door (empty message, unknown env).
    let mut body: Vec<Value> = (0..30).map(|i| json!({"message": numbered(i), "timestamp": now - i as i64})).collect();
    body.push(json!({"message": ""}));
    body.push(json!({"message": "x", "env": "nowhere"}));
    let (status, answer) = app.ingest(&json!({"env": "production", "events": body})).await;
    assert_eq!((status, &answer["accepted"]), (202, &json!(30)), "{answer}");
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    // Then one put whose first 2 events CloudWatch calls too old: dead letters, not shipped.
    fake.inject([Fault::Reject { too_new_start: None, too_old_end: Some(2), expired_end: None }]);
    send(&app, &(100..105).map(|s| (s, now + s as i64)).collect::<Vec<_>>(), numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;

    let m = scrape(&app).await;
    assert_eq!(metric(&m, "logboard_events_received_total"), 37.0);
    assert_eq!(metric(&m, "logboard_events_accepted_total"), 35.0);
    assert_eq!(metric(&m, "logboard_events_rejected_total{reason=\"message\"}"), 1.0, "{m:?}");
    assert_eq!(metric(&m, "logboard_events_rejected_total{reason=\"env\"}"), 1.0, "{m:?}");
    assert_eq!(metric(&m, "logboard_events_shipped_total"), 33.0);
    assert_eq!(metric(&m, "logboard_events_dead_lettered_total{reason=\"too_old\"}"), 2.0, "{m:?}");
    assert_eq!(metric(&m, "logboard_spool_events"), 0.0);
    assert_eq!(metric(&m, "logboard_spool_bytes"), 0.0);
    assert_eq!(metric(&m, "logboard_spool_oldest_age_seconds"), 0.0);
    let puts = fake.puts().iter().filter(|p| p.error.is_none()).count() as f64;
    assert_eq!(metric(&m, "logboard_batch_events_count"), puts);
    assert_eq!(metric(&m, "logboard_batch_events_sum"), 35.0, "events per successful put, summed");
    let bytes: usize = fake.puts().iter().filter(|p| p.error.is_none()).map(|p| p.bytes).sum();
    assert_eq!(metric(&m, "logboard_batch_bytes_sum"), bytes as f64, "AWS-counted bytes");
    assert!(metric(&m, "logboard_put_duration_seconds_count") >= puts);
    assert_eq!(metric(&m, "logboard_puts_in_flight"), 0.0);

    let delivered = delivered(&fake);
    assert_eq!(delivered.len(), 33);
    assert!(!delivered.contains_key(&100) && !delivered.contains_key(&101), "the refused ones are not stored");
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_and_counted_and_deliver_every_event_once() {
    let fake = FakeCloudWatch::start().await;
    let app = start(&fake).await;
    fake.inject([Fault::Status(500), Fault::Status(503), Fault::Throttle]);
    fake.fault_for(Fault::Throttle, Duration::from_millis(1500));
    let now = now_ms();
    let events: Vec<(u64, i64)> = (0..3000).map(|s| (s, now - 3000 + s as i64)).collect();
    send(&app, &events, numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    assert_eq!(loss_and_duplicates(&delivered(&fake), 3000), (0, 0), "no loss, no duplicates");
    let throttled = fake.puts().iter().filter(|p| p.error.as_deref() == Some("ThrottlingException")).count();
    // The first put of a new stream finds nothing and creates it: that is not a retry.
    let failed =
        fake.puts().iter().filter(|p| p.error.as_ref().is_some_and(|e| e != "ResourceNotFoundException")).count();
    assert!(throttled >= 2, "the storm was met: {:?}", fake.puts());
    let m = scrape(&app).await;
    assert_eq!(metric(&m, "logboard_puts_throttled_total"), throttled as f64);
    assert_eq!(metric(&m, "logboard_puts_retried_total"), failed as f64, "every failed put is retried");
}

#[tokio::test]
async fn a_timeout_after_cloudwatch_stored_the_batch_makes_duplicates_that_reads_drop_by_id() {
    let fake = FakeCloudWatch::start().await;
    let app = start(&fake).await;
    fake.inject([Fault::SlowAfterStore(Duration::from_secs(3))]);
    let now = now_ms();
    let events: Vec<(u64, i64)> = (0..50).map(|s| (s, now - 50 + s as i64)).collect();
    send(&app, &events, numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let counts = delivered(&fake);
    let (lost, duplicated) = loss_and_duplicates(&counts, 50);
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 50, "the timed-out batch was stored, then sent again: {counts:?}");
    println!("timeout after store: lost {lost}, duplicated {duplicated} of 50");
    let (status, page) = app.read("/api/v1/events?project=demo&env=production&limit=200").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"].as_array().expect("events").len(), 50, "the read API de-duplicates by id");
}

#[tokio::test]
async fn connection_resets_before_and_after_storing_lose_nothing() {
    let fake = FakeCloudWatch::start().await;
    let app = start(&fake).await;
    fake.inject([Fault::DropBeforeStore, Fault::DropAfterStore]);
    let now = now_ms();
    let events: Vec<(u64, i64)> = (0..40).map(|s| (s, now - 40 + s as i64)).collect();
    send(&app, &events, numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let (lost, duplicated) = loss_and_duplicates(&delivered(&fake), 40);
    println!("connection reset after store: lost {lost}, duplicated {duplicated} of 40");
    assert_eq!((lost, duplicated), (0, 40), "only the batch stored before the reset is there twice");
    let dropped = fake.puts().iter().filter(|p| p.error.as_deref() == Some("dropped")).count();
    assert_eq!(dropped, 2);
}

#[tokio::test]
async fn an_invalid_event_is_isolated_and_dead_lettered_and_shown_in_the_api_and_the_page() {
    let fake = FakeCloudWatch::start().await;
    let app = start(&fake).await;
    fake.poison("event 0000013");
    let now = now_ms();
    let events: Vec<(u64, i64)> = (0..64).map(|s| (s, now - 64 + s as i64)).collect();
    send(&app, &events, numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let counts = delivered(&fake);
    assert_eq!(counts.len(), 63);
    assert!(!counts.contains_key(&13));
    assert_eq!(loss_and_duplicates(&counts, 64), (1, 0), "only the poisoned one is missing");
    let puts = fake.puts().len();
    assert!(puts <= 2 * 7 + 2, "halving isolates it in about 2·log2(64) puts, not 64: {puts}");

    let (status, dead) = app.read("/api/v1/deadletters?project=demo&env=production").await;
    assert_eq!(status, 200, "{dead}");
    assert_eq!(dead["total"], 1, "{dead}");
    let letter = &dead["dead_letters"][0];
    assert_eq!(letter["reason"], "invalid");
    assert_eq!(letter["event"]["message"], "event 0000013");
    assert!(letter["detail"].as_str().is_some_and(|d| d.contains("poisoned")), "{letter}");
    let (_, staging) = app.read("/api/v1/deadletters?project=demo&env=staging").await;
    assert_eq!(staging["total"], 0, "per project/env: {staging}");

    let client = app.logged_in_client().await;
    let html = client.get(app.url("/logs?project=demo&env=production")).send().await.expect("page");
    let html = html.text().await.expect("html");
    assert!(html.contains("Refused by CloudWatch after acceptance: 1"), "{html}");
    assert!(html.contains("event 0000013"));
    let m = scrape(&app).await;
    assert_eq!(metric(&m, "logboard_events_dead_lettered_total{reason=\"invalid\"}"), 1.0);
    assert_eq!(metric(&m, "logboard_events_shipped_total"), 63.0);
}

#[tokio::test]
async fn too_old_too_new_and_expired_events_of_one_call_go_to_the_dead_letters_by_reason() {
    let fake = FakeCloudWatch::start().await;
    // The group keeps 3 days (as configured: logboard would correct another policy) and the
    // fake's clock runs a day ahead of ours: events our door accepted are too old or expired for
    // "CloudWatch". Too new comes from an injected answer.
    fake.create_group(GROUP);
    fake.set_retention(GROUP, 3);
    let app = start_with(&fake, &[("LOGBOARD__RETENTION__DAYS", "3")], options()).await;
    let now = now_ms();
    let day = 24 * HOUR_MS;
    // seq 0: 13.5 days old (too old for a clock a day ahead); 1: 3.5 days (expired);
    // 2..=5 fine; the injected answer marks the last one too new as well.
    let events = vec![
        (0, now - 13 * day - 12 * HOUR_MS),
        (1, now - 3 * day - 12 * HOUR_MS),
        (2, now - 2 * HOUR_MS),
        (3, now - HOUR_MS),
        (4, now - 1000),
        (5, now - 500),
    ];
    fake.set_clock_offset(day);
    // One put per stream (hourly streams): the injected fault hits the first put, whatever stream.
    send(&app, &events, numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let counts = delivered(&fake);
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), [2, 3, 4, 5]);
    let (_, dead) = app.read("/api/v1/deadletters?project=demo&env=production").await;
    let mut reasons: Vec<(String, String)> = dead["dead_letters"]
        .as_array()
        .expect("dead letters")
        .iter()
        .map(|d| {
            (d["event"]["message"].as_str().unwrap_or("").to_string(), d["reason"].as_str().unwrap_or("").to_string())
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons, [(numbered(0), "too_old".to_string()), (numbered(1), "expired".to_string())], "{dead}");

    // A mixed answer in one call: 2 too old at the front, the last too new.
    fake.set_clock_offset(0);
    fake.inject([Fault::Reject { too_new_start: Some(4), too_old_end: Some(2), expired_end: None }]);
    let events: Vec<(u64, i64)> = (10..15).map(|s| (s, now + s as i64)).collect();
    send(&app, &events, numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let counts = delivered(&fake);
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), [2, 3, 4, 5, 12, 13]);
    let m = scrape(&app).await;
    assert_eq!(metric(&m, "logboard_events_dead_lettered_total{reason=\"too_old\"}"), 3.0, "{m:?}");
    assert_eq!(metric(&m, "logboard_events_dead_lettered_total{reason=\"too_new\"}"), 1.0);
    assert_eq!(metric(&m, "logboard_events_dead_lettered_total{reason=\"expired\"}"), 1.0);
    assert_eq!(metric(&m, "logboard_events_shipped_total"), 6.0, "dead letters are never counted as shipped");
}

/// Puts the fake refused for anything but a missing stream (which the writer then creates).
fn refused(fake: &FakeCloudWatch) -> Vec<common::fake_cloudwatch::PutCall> {
    fake.puts().into_iter().filter(|p| p.error.as_ref().is_some_and(|e| e != "ResourceNotFoundException")).collect()
}

// The 10,000-event edge (exactly 10,000 and 10,001) is unit-tested in `writer::batch`: through
// ingest, our JSON lines are ~200 bytes, so the byte limit always comes first.
#[tokio::test]
async fn batches_fill_up_to_the_byte_limit_and_never_past_it() {
    let fake = FakeCloudWatch::start().await;
    // A longer linger lets the 10,001 events of one stream gather into full batches.
    let app = start_with(&fake, &[], CloudWatchOptions { linger: Duration::from_secs(3), ..options() }).await;
    // The start of the previous hour: every event in one hourly stream.
    let t = (now_ms() / HOUR_MS - 1) * HOUR_MS;
    // Equal timestamps and an unsorted arrival order, all within one hour's stream.
    let events: Vec<(u64, i64)> = (0..10_001).map(|s| (s, t + ((s * 7919) % 1000) as i64)).collect();
    send(&app, &events, numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    assert!(refused(&fake).is_empty(), "the fake refused none: {:?}", refused(&fake));
    let stored: Vec<_> = fake.puts().into_iter().filter(|p| p.error.is_none()).collect();
    assert!(stored.iter().all(|p| p.bytes <= MAX_BYTES && p.events <= MAX_EVENTS));
    let full = stored.iter().filter(|p| p.bytes * 10 >= MAX_BYTES * 9).count();
    assert!(full >= 2, "the backlog went out in batches at least 90 % full by bytes: {stored:?}");
    assert_eq!(loss_and_duplicates(&delivered(&fake), 10_001), (0, 0));

    // Multibyte text close to the per-event limit: each batch must stay within 1,048,576 bytes.
    let fake = FakeCloudWatch::start().await;
    let app = start(&fake).await;
    let big = |seq: u64| format!("{} {}", "결".repeat(20_000), numbered(seq));
    let events: Vec<(u64, i64)> = (0..60).map(|s| (s, t + s as i64)).collect();
    for chunk in events.chunks(10) {
        send(&app, chunk, big).await;
    }
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    assert!(refused(&fake).is_empty(), "{:?}", refused(&fake));
    let stored: Vec<_> = fake.puts().into_iter().filter(|p| p.error.is_none()).collect();
    assert!(stored.iter().all(|p| p.bytes <= MAX_BYTES), "{stored:?}");
    assert!(stored.len() >= 4, "60 events of ~60 KB do not fit in 3 puts");
    assert_eq!(loss_and_duplicates(&delivered(&fake), 60), (0, 0));
}

#[tokio::test]
async fn a_multi_day_backlog_in_random_order_is_cut_into_chronological_spans_under_a_day() {
    let fake = FakeCloudWatch::start().await;
    let app = start(&fake).await;
    let now = now_ms();
    // 3 days, one event every 90 s, sent newest first; each hour is its own stream.
    let events: Vec<(u64, i64)> = (0..2880).map(|s| (s, now - 3 * 24 * HOUR_MS + s as i64 * 90_000)).rev().collect();
    send(&app, &events, numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    assert!(refused(&fake).is_empty(), "every put within the limits: {:?}", refused(&fake));
    assert_eq!(loss_and_duplicates(&delivered(&fake), 2880), (0, 0));
    assert!(fake.streams(GROUP).len() >= 72, "hourly streams");
}

#[tokio::test]
async fn missing_group_and_stream_are_created_once_and_a_deleted_stream_or_group_is_recreated() {
    let fake = FakeCloudWatch::start().await;
    let app = start(&fake).await;
    let now = now_ms();
    send(&app, &[(0, now - 2), (1, now - 1)], numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let groups = fake.creates().iter().filter(|(_, s)| s.is_none()).count();
    assert_eq!(groups, 1);
    let stream = fake.streams(GROUP).pop().expect("a stream");

    // Deleted behind our back: the stream, then the whole group.
    let lost = fake.delete_stream(GROUP, &stream);
    send(&app, &[(2, now)], numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let lost_too = fake.delete_group(GROUP);
    send(&app, &[(3, now + 1)], numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    // A put right after a create that still finds nothing is retried, not dropped.
    fake.delete_group(GROUP);
    fake.inject([Fault::NotFound, Fault::NotFound]);
    send(&app, &[(4, now + 2)], numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    assert_eq!((lost.len(), lost_too.len()), (2, 1), "what the deletions took");
    assert_eq!(delivered(&fake).keys().copied().collect::<Vec<_>>(), [4]);
    let m = scrape(&app).await;
    assert_eq!(metric(&m, "logboard_events_shipped_total"), 5.0);
}

#[tokio::test]
async fn a_create_race_where_the_group_already_exists_is_success() {
    let fake = FakeCloudWatch::start().await;
    fake.create_group(GROUP); // another instance made it; our put finds no stream
    let app = start(&fake).await;
    send(&app, &[(0, now_ms())], numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    assert_eq!(loss_and_duplicates(&delivered(&fake), 1), (0, 0));
    assert!(fake.creates().iter().any(|(_, s)| s.is_none()), "it tried the group and took AlreadyExists");
}

#[tokio::test]
async fn several_puts_are_in_flight_at_once_but_never_more_than_the_limit() {
    let fake = FakeCloudWatch::start().await;
    fake.set_delay(Duration::from_millis(300));
    let app = start(&fake).await;
    let now = now_ms();
    // 8 hourly streams, so 8 queues are due together.
    let events: Vec<(u64, i64)> = (0..800).map(|s| (s, now - (s as i64 % 8) * HOUR_MS - s as i64)).collect();
    send(&app, &events, numbered).await;
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    assert_eq!(loss_and_duplicates(&delivered(&fake), 800), (0, 0));
    let max = fake.max_in_flight();
    assert!(max > 1 && max <= logboard::store::cloudwatch::shipper::MAX_PUTS_IN_FLIGHT, "in flight at once: {max}");
}

#[tokio::test]
async fn ingest_faster_than_cloudwatch_accepts_gets_503_with_retry_after_and_loses_nothing_acknowledged() {
    let fake = FakeCloudWatch::start().await;
    fake.set_delay(Duration::from_millis(400));
    let app = start_with(&fake, &[("LOGBOARD__STORAGE__SPOOL_MAX_BYTES", "200000")], options()).await;
    // CloudWatch is down at first, so the spool cannot drain while the load arrives.
    fake.fault_for(Fault::Status(503), Duration::from_secs(2));
    let now = now_ms();
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut seq = 0u64;
    for _ in 0..40 {
        let batch: Vec<u64> = (seq..seq + 200).collect();
        seq += 200;
        let body: Vec<Value> =
            batch.iter().map(|s| json!({"message": numbered(*s), "timestamp": now - 10_000 + *s as i64})).collect();
        let response = client
            .post(app.url("/api/v1/events"))
            .header("X-Logboard-Key", common::INGEST_KEY)
            .json(&json!({"env": "production", "events": body}))
            .send()
            .await
            .expect("ingest");
        match response.status().as_u16() {
            202 => acknowledged.extend(batch),
            503 => {
                assert!(response.headers().contains_key("retry-after"));
                refused += 1;
                let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
                assert!(matches!(ready.status().as_u16(), 200 | 503));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "the spool went over its mark");
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let counts = delivered(&fake);
    let lost = acknowledged.iter().filter(|s| !counts.contains_key(s)).count();
    assert_eq!(lost, 0, "every acknowledged event arrived");
    assert_eq!(counts.len(), acknowledged.len(), "and nothing refused was kept");
    let m = scrape(&app).await;
    assert_eq!(metric(&m, "logboard_events_rejected_total{reason=\"unavailable\"}"), refused as f64 * 200.0);
    println!("over the mark: {} acknowledged, {refused} requests refused with 503, lost {lost}", acknowledged.len());
}

#[tokio::test]
async fn a_stamp_in_rfc3339_reads_back_the_same() {
    // Guards the helper: the numbers in messages survive the JSON round trip.
    let stored = Stored {
        stream: "s".into(),
        timestamp: 0,
        message: json!({"id": "01JAAAAAAAAAAAAAAAAAAAAAAA", "project": "demo", "env": "production",
            "timestamp": timestamp_format::format(OffsetDateTime::UNIX_EPOCH),
            "received_at": timestamp_format::format(OffsetDateTime::UNIX_EPOCH),
            "level": "info", "message": numbered(42)})
        .to_string(),
    };
    assert_eq!(seq_of(&stored), 42);
}

#[tokio::test]
async fn reads_show_accepted_events_before_cloudwatch_has_them_and_once_after() {
    let fake = FakeCloudWatch::start().await;
    fake.fault_for(Fault::Status(503), Duration::from_secs(3600));
    let app = start(&fake).await;
    let now = now_ms();
    send(&app, &[(0, now - 2000), (1, now - 1000), (2, now)], numbered).await;
    let (status, page) = app.read("/api/v1/events?project=demo&env=production").await;
    assert_eq!(status, 200, "{page}");
    let messages: Vec<&str> =
        page["events"].as_array().expect("events").iter().filter_map(|e| e["message"].as_str()).collect();
    assert_eq!(messages, [numbered(2), numbered(1), numbered(0)], "from the spool, newest first");
    assert!(fake.stored(GROUP).is_empty(), "CloudWatch has none of them yet");
    let id = page["events"][1]["id"].as_str().expect("id").to_string();
    let (status, one) = app.read(&format!("/api/v1/events/{id}?project=demo&env=production")).await;
    assert_eq!((status, one["message"].as_str()), (200, Some(numbered(1).as_str())));

    fake.fault_for(Fault::Status(503), Duration::ZERO);
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    let (_, page) = app.read("/api/v1/events?project=demo&env=production").await;
    assert_eq!(page["events"].as_array().expect("events").len(), 3, "once each after shipping: {page}");
    assert_eq!(loss_and_duplicates(&delivered(&fake), 3), (0, 0));
}
