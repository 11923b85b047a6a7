//! Writes a realistic data set into an embedded store, for the search benchmarks (BENCHMARKS.md,
//! "Search at 10M events").
//!
//! `cargo run --release --example generate -- DATA_DIR EVENTS [DAYS] [NDJSON_FILE]`
//!
//! EVENTS events over the DAYS days before now (default 14), in time order, through the store's
//! own write path (group commits of 5,000), and their errors into the issue index as ingest
//! records them (300 fingerprints). Project `shop`: 90 % in `production`, 10 % in
//! `staging`. Twelve services' worth of messages with ids, levels (65 % info, 20 % debug, 10 %
//! warn, 4.5 % error, 0.5 % fatal), types, stacks on errors, users, HTTP fields and extras, with a
//! daily rhythm. With NDJSON_FILE, every event is also written there as one JSON line (what
//! `events.ndjson` exports), for the `grep` comparison.
//!
//! Words for the benchmark queries, and how often they occur:
//! - `refund` — in 0.05 % of events (a rare message);
//! - `ord-4242` — one order id among 1,000,000: a handful of events;
//! - `user:u-31337` — one user among 50,000: ~0.002 %;
//! - `extra.region:sa-east-1` — 0.08 %;
//! - `xylophone` — in no event.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use logboard::event::{Http, Level, StoredEvent};
use logboard::issues::{IssueIndex as _, Occurrence, SqliteIssueIndex};
use logboard::store::LogStore;
use logboard::store::local::LocalStore;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, json};
use time::OffsetDateTime;
use ulid::Ulid;

const COMMIT_EVENTS: usize = 5_000;

const SERVICES: [&str; 12] = [
    "checkout",
    "orders",
    "payments",
    "inventory",
    "search",
    "auth",
    "catalog",
    "shipping",
    "notifications",
    "web",
    "recommendations",
    "billing",
];
const REGIONS: [&str; 4] = ["ap-northeast-2", "us-east-1", "eu-west-1", "ap-southeast-1"];
const PATHS: [&str; 8] =
    ["/api/orders", "/api/cart", "/api/products", "/api/users", "/api/search", "/api/payments", "/login", "/"];
const ERROR_TYPES: [&str; 6] =
    ["TypeError", "TimeoutError", "PaymentDeclined", "DatabaseError", "ValidationError", "NetworkError"];

fn level(rng: &mut SmallRng) -> Level {
    match rng.random_range(0..1000) {
        0..200 => Level::Debug,
        200..850 => Level::Info,
        850..950 => Level::Warn,
        950..995 => Level::Error,
        _ => Level::Fatal,
    }
}

fn uuid(rng: &mut SmallRng) -> String {
    let n: u128 = rng.random();
    let h = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn message(rng: &mut SmallRng, level: Level, service: &str, order: u32, ms: u32) -> String {
    if rng.random_range(0..10_000) < 5 {
        return format!("refund {order} issued to the original card after a chargeback review");
    }
    match level {
        Level::Debug => match rng.random_range(0..3) {
            0 => format!("cache miss key=product:{} in {service}", rng.random_range(0..200_000)),
            1 => format!("SELECT * FROM orders WHERE id = {order} took {ms} ms"),
            _ => format!("feature flag checkout-v{} evaluated for {service}", rng.random_range(1..4)),
        },
        Level::Info => match rng.random_range(0..4) {
            0 => format!("GET {}/ord-{order} answered 200 in {ms} ms", PATHS[rng.random_range(0..PATHS.len())]),
            1 => format!("order ord-{order} placed: {} items, total {}.{:02} KRW", ms % 9 + 1, ms * 37, ms % 100),
            2 => format!("user signed in from {}", REGIONS[rng.random_range(0..REGIONS.len())]),
            _ => format!("{service} job {} finished in {ms} ms", uuid(rng)),
        },
        Level::Warn => match rng.random_range(0..3) {
            0 => format!("slow response from {service}: {ms} ms for ord-{order}"),
            1 => format!("retrying payment {} after a 503 from the card processor", uuid(rng)),
            _ => "connection pool at 90% capacity".to_string(),
        },
        Level::Error | Level::Fatal => match rng.random_range(0..4) {
            0 => format!("Cannot read properties of undefined (reading 'price') at ord-{order}"),
            1 => format!("timeout after 30000ms calling {service} for ord-{order}"),
            2 => format!("payment {} declined: card_declined", uuid(rng)),
            _ => format!("duplicate key value violates unique constraint \"orders_pkey\" ({order})"),
        },
    }
}

fn stack(rng: &mut SmallRng, kind: &str) -> String {
    let bundle = format!("{:05x}", rng.random_range(0..0xfffff));
    let mut s = format!("{kind}: failed\n");
    for (i, f) in ["renderCart", "computeTotal", "applyCoupon", "fetchJson", "onClick"].iter().enumerate() {
        s.push_str(&format!(
            "    at {f} (https://shop.example.com/assets/app.{bundle}.js:{}:{})\n",
            100 + i * 37,
            rng.random_range(1..80)
        ));
    }
    s
}

fn event(rng: &mut SmallRng, at: OffsetDateTime, received: OffsetDateTime) -> StoredEvent {
    let level = level(rng);
    let service = SERVICES[rng.random_range(0..SERVICES.len())];
    let order = rng.random_range(0..1_000_000);
    let ms = rng.random_range(1..2_000);
    let message = message(rng, level, service, order, ms);
    let user = format!("u-{}", rng.random_range(0..50_000));
    let region =
        if rng.random_range(0..10_000) < 8 { "sa-east-1" } else { REGIONS[rng.random_range(0..REGIONS.len())] };
    let mut extra = Map::new();
    extra.insert("service".into(), json!(service));
    extra.insert("region".into(), json!(region));
    extra.insert("request_id".into(), json!(uuid(rng)));
    extra.insert("duration_ms".into(), json!(ms));
    let is_error = level >= Level::Error;
    let kind = if is_error { ERROR_TYPES[rng.random_range(0..ERROR_TYPES.len())] } else { "log" };
    let http = rng.random_bool(0.4).then(|| Http {
        method: Some(if rng.random_bool(0.7) { "GET" } else { "POST" }.to_string()),
        status: Some(if is_error { 500 } else { [200, 200, 200, 201, 204, 304, 404][rng.random_range(0..7)] }),
    });
    StoredEvent {
        id: Ulid::from_parts(u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0), rng.random()),
        project: "shop".into(),
        env: if rng.random_range(0..10) == 0 { "staging" } else { "production" }.into(),
        timestamp: at,
        received_at: received,
        level,
        kind: Some(kind.to_string()),
        code: is_error.then(|| format!("E{}", 1000 + order % 40)),
        http,
        url: Some(format!("https://shop.example.com{}", PATHS[rng.random_range(0..PATHS.len())])),
        location: None,
        user: Some(if rng.random_bool(0.5) { json!({"id": user, "plan": "pro"}) } else { json!(user) }),
        stack: is_error.then(|| stack(rng, kind)),
        release: Some(format!("{service}@2026.11.{}", 10 + order % 15)),
        fingerprint: is_error.then(|| format!("{:016x}", (order % 300) * 7919 + 13)),
        extra: Some(extra),
        message,
        truncated: None,
    }
}

/// Events per millisecond-of-day weight: quiet at night, busy in the (Korean) afternoon.
fn daily_weight(at: OffsetDateTime) -> f64 {
    let hour = (f64::from(at.hour()) + 9.0) % 24.0 + f64::from(at.minute()) / 60.0;
    1.0 + (std::f64::consts::PI * (hour - 4.0) / 24.0).sin().powi(2) * 2.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(count)) = (args.get(1), args.get(2).and_then(|n| n.parse::<usize>().ok())) else {
        anyhow::bail!("usage: generate DATA_DIR EVENTS [DAYS] [NDJSON_FILE]");
    };
    let days: i64 = args.get(3).map_or(Ok(14), |d| d.parse())?;
    let mut ndjson = match args.get(4) {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let store = std::sync::Arc::new(LocalStore::open(&PathBuf::from(dir), Duration::from_secs(600))?);
    // The issue index, as ingest keeps it: the errors of each batch once it is stored.
    let issues = std::sync::Arc::new(SqliteIssueIndex::open(&PathBuf::from(dir))?);
    // Batches are serialised and indexed by their own tasks, as concurrent ingest requests are.
    let mut in_flight = tokio::task::JoinSet::new();
    let mut rng = SmallRng::seed_from_u64(7);
    let now = OffsetDateTime::now_utc();
    let start = now - time::Duration::days(days);
    let span_ms = (days * 86_400_000) as f64;
    // Timestamps in order: equal steps stretched by the daily rhythm (normalised so they end at now).
    let mean_weight = 2.0;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(COMMIT_EVENTS);
    let mut at_ms = 0.0;
    for i in 0..count {
        let at = start + time::Duration::milliseconds(at_ms as i64);
        at_ms += span_ms / count as f64 * mean_weight / daily_weight(at);
        let at = at.min(now);
        let event = event(&mut rng, at, at + time::Duration::milliseconds(40));
        if let Some(out) = ndjson.as_mut() {
            writeln!(out, "{}", event.to_json())?;
        }
        batch.push(event);
        if batch.len() == COMMIT_EVENTS || i + 1 == count {
            if in_flight.len() >= 3 {
                in_flight.join_next().await.transpose()?.transpose()?;
            }
            let (store, issues, events) =
                (std::sync::Arc::clone(&store), std::sync::Arc::clone(&issues), std::mem::take(&mut batch));
            in_flight.spawn(async move {
                let occurrences = Occurrence::of(&events);
                // The store refuses appends while its column sealer is far behind (ingest then
                // answers 503): the generator, faster than ingest, waits as a client would.
                let mut waited = 0;
                while let Err(error) = store.append(events.clone()).await {
                    waited += 1;
                    if waited > 600 {
                        return Err(error);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                issues.record(occurrences).await
            });
        }
        if (i + 1) % 1_000_000 == 0 {
            eprintln!("{} events in {:.0} s", i + 1, started.elapsed().as_secs_f64());
        }
    }
    while let Some(done) = in_flight.join_next().await {
        done??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{count} events in {seconds:.1} s: {:.0} events/s", count as f64 / seconds);
    Ok(())
}
