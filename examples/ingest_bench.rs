//! The ingest benchmark's payload and its parse ceiling (see BENCHMARKS.md, "Writer and ingest").
//!
//! `cargo run --release --example ingest_bench -- payload > /tmp/batch.json` writes one request
//! body: 100 events of about 300 bytes each, as `benches/ingest.lua` sends it.
//! `cargo run --release --example ingest_bench -- ceiling /tmp/batch.json` parses that body with
//! serde_json on one core (into `serde_json::Value`, as ingest does) and prints events/s: the
//! most any server could ingest per core before doing anything with the events.

use std::time::Instant;

use serde_json::{Value, json};

const EVENTS: usize = 100;

fn payload() -> String {
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            json!({
                "level": if i % 10 == 0 { "error" } else { "info" },
                "message": format!(
                    "GET /api/orders/{i:05} answered 200 in {} ms for a returning customer; cache hit, \
                     3 rows read, region ap-northeast-2, build 2026.11.24-{i:03}, feature flags: checkout-v2 \
                     on, new-search off",
                    17 + i % 40
                ),
                "code": "ORDERS_OK",
                "release": "web@2026.11.24",
                "url": format!("https://shop.example.com/orders/{i:05}"),
            })
        })
        .collect();
    json!({"env": "production", "events": events}).to_string()
}

fn ceiling(path: &str) {
    let body = std::fs::read(path).expect("read the payload");
    let rounds = 20_000;
    let started = Instant::now();
    let mut events = 0usize;
    for _ in 0..rounds {
        let value: Value = serde_json::from_slice(&body).expect("valid JSON");
        events += value["events"].as_array().map_or(0, Vec::len);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "serde_json::from_slice::<Value>: {rounds} bodies of {} bytes, {events} events in {seconds:.2} s: {:.0} events/s, {:.0} MB/s on one core",
        body.len(),
        events as f64 / seconds,
        (body.len() * rounds) as f64 / seconds / 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("payload") => println!("{}", payload()),
        Some("ceiling") => ceiling(args.get(2).map_or("/tmp/batch.json", String::as_str)),
        _ => eprintln!("usage: ingest_bench payload | ceiling FILE"),
    }
}
