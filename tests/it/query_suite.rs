//! One query suite for both stores: the same 40 events go through the real ingest endpoint into
//! an app on the embedded store and into an app on CloudWatch (moto), then every query of the
//! table is read back through `GET /api/v1/events` (every page) on both, and must give exactly
//! the events written next to it by hand. A few queries also check `/api/v1/histogram`'s counts.
//!
//! Every event carries a unique `extra.label`, and its timestamp follows its label (`e01` is the
//! newest), so an answer is the list of labels, newest first, and the expected list is written
//! in label order.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use logboard::event::{timestamp_format, unix_ms};
use serde_json::{Value, json};
use time::OffsetDateTime;

const SHIP_TIMEOUT: Duration = Duration::from_secs(30);
/// Small enough that most answers take several pages: the cursor must carry the query.
const PAGE_SIZE: usize = 7;

/// The label, the level the event must be stored with, and the event as sent (without its
/// label and timestamp, which [`sent_events`] adds); written as JSON arrays to stay one line
/// apart.
fn fixtures() -> Vec<(String, String, Value)> {
    let fixtures = vec![
        json!(["e01", "info", {"message": "User logged in successfully", "user": "alice", "release": "1.2.0",
            "url": "https://shop.example/login", "http": {"method": "GET", "status": 200},
            "extra": {"region": "eu-west-1"}}]),
        json!(["e02", "warn", {"message": "Slow response from Payment gateway", "level": "Warning",
            "release": "1.2.0", "url": "https://shop.example/api/pay", "http": {"method": "POST", "status": 200},
            "extra": {"duration_ms": 3200, "gateway": {"name": "tosspay", "retries": 2}}}]),
        json!(["e03", "error", {"message": "Cannot read properties of undefined (reading 'total')", "level": "error",
            "type": "TypeError", "url": "https://shop.example/checkout", "release": "1.2.1",
            "stack": "TypeError: Cannot read properties of undefined\n    at computeTotal (https://shop.example/app.4f2c1.js:10:5)\n    at checkout (https://shop.example/app.4f2c1.js:20:3)",
            "user": {"id": "42", "plan": "pro"}, "extra": {"cart": {"items": 3, "currency": "KRW"}}}]),
        json!(["e04", "error", {"message": "Payment failed: card declined", "level": "ERROR", "type": "http",
            "code": "E_CARD", "http": {"method": "POST", "status": 402}, "user": {"id": "43", "plan": "free"},
            "extra": {"amount": 12.5, "ref": "0042"}}]),
        json!(["e05", "fatal", {"message": "Database connection lost", "level": "critical", "type": "custom",
            "code": 500, "stack": "Error: Database connection lost\n    at connect (db.js:1:1)",
            "extra": {"db": {"host": "db-1", "pool": {"size": 10, "busy": 10}}}}]),
        json!(["e06", "debug", {"message": "cache hit ratio computed", "level": "debug",
            "extra": {"ratio": 0.93, "enabled": true}}]),
        json!(["e07", "info", {"message": "결제 실패: 카드 거절", "user": "김철수", "extra": {"city": "서울"}}]),
        json!(["e08", "error", {"message": "결제 승인 오류", "level": "error", "type": "http",
            "http": {"method": "POST", "status": 500}, "extra": {"city": "부산"}}]),
        json!(["e09", "info", {"message": "He said \"hello\" to the bot", "level": "info"}]),
        json!(["e10", "warn", {"message": "File saved to C:\\temp\\report.csv", "level": "warn"}]),
        json!(["e11", "error", {"message": "Request timeout after 30s", "level": "error", "type": "http",
            "code": "ETIMEDOUT", "http": {"method": "GET", "status": 504},
            "url": "https://api.example/v2/orders?page=2"}]),
        json!(["e12", "error", {"message": "request TIMEOUT while retrying", "level": "error", "type": "http",
            "http": {"method": "get", "status": "503"}}]),
        json!(["e13", "info", {"message": "Order placed", "user": {"id": "44", "plan": "pro"},
            "extra": {"order": {"total": 99000, "items": ["sku-1", "sku-2"]}, "tags": ["checkout", "mobile"]}}]),
        json!(["e14", "info", {"message": "Order placed", "user": {"id": 45, "plan": "enterprise"},
            "extra": {"tags": []}}]),
        json!(["e15", "debug", {"message": "feature flag evaluated", "level": "DEBUG", "release": "",
            "extra": {"flag": {"name": "new-checkout", "on": false}}}]),
        json!(["e16", "info", {"message": "PAYMENT succeeded", "http": {"method": "POST", "status": 201},
            "extra": {"amount": 12.50, "ref": 42}}]),
        json!(["e17", "warn", {"message": "Retry scheduled for payment", "level": "warn",
            "extra": {"attempt": 3, "note": null}}]),
        json!(["e18", "error", {"message": "Unhandled promise rejection: NetworkError", "level": "error",
            "type": "unhandledrejection", "release": "1.3.0-beta", "user": "bob",
            "stack": "NetworkError: failed to fetch\n    at fetchCart (https://shop.example/cart.js:3:1)"}]),
        json!(["e19", "info", {"message": "Cats and dogs", "extra": {"note": ""}}]),
        json!(["e20", "info", {"message": "Checkout page viewed", "url": "https://shop.example/checkout?step=1",
            "http": {"method": "GET", "status": 200}, "user": {"plan": "free"}}]),
        json!(["e21", "error", {"message": "Internal server error", "level": "error", "code": "500",
            "http": {"method": "GET", "status": 500}, "url": "https://api.example/v2/orders"}]),
        json!(["e22", "warn", {"message": "Rate limit approaching", "level": "warn",
            "extra": {"remaining": 5, "limit": 100}}]),
        json!(["e23", "info", {"message": "Page rendered in 2500ms", "extra": {"duration_ms": 1500}}]),
        json!(["e24", "fatal", {"message": "Out of memory", "level": "fatal", "type": "RangeError",
            "stack": "RangeError: Out of memory\n    at alloc (vm.js:1:1)",
            "extra": {"heap": {"used_mb": 2048, "limit_mb": 2048}}}]),
        json!(["e25", "debug", {"message": "SQL query took 12ms", "level": "debug",
            "extra": {"query": {"table": "orders", "rows": 0}}}]),
        json!(["e26", "info", {"message": "User logged out", "user": "ALICE"}]),
        json!(["e27", "error", {"message": "x is not a function", "level": "error", "type": "TypeError",
            "stack": "TypeError: x is not a function\n    at render (https://shop.example/app.9ab3e.js:5:5)",
            "url": "https://shop.example/cart", "release": "1.2.1"}]),
        json!(["e28", "info", {"message": "Health check ok", "url": "https://shop.example/healthz",
            "http": {"method": "GET", "status": 200}}]),
        json!(["e29", "warn", {"message": "Deprecated API used: v1/orders", "level": "warn",
            "http": {"method": "GET", "status": 301}, "extra": {"api": {"version": "v1", "deprecated": true}}}]),
        json!(["e30", "error", {"message": "Webhook delivery failed", "level": "error", "code": 404,
            "http": {"method": "POST", "status": 404}, "url": "https://hooks.example/deliver"}]),
        json!(["e31", "info", {"message": "Refund issued", "extra": {"amount": 30, "currency": "USD"}}]),
        json!(["e32", "debug", {"message": "websocket ping", "level": "debug", "extra": {"latency_ms": 3}}]),
        json!(["e33", "info", {"message": "Search performed for blue shoes",
            "extra": {"results": 0, "search_text": "blue shoes"}}]),
        json!(["e34", "warn", {"message": "Disk usage at 85%", "level": "warn",
            "extra": {"disk": {"used_pct": 85, "mount": "/var"}}}]),
        json!(["e35", "error", {"message": "Login failed for user mallory", "level": "error", "user": "mallory",
            "code": "LOGIN_FAILED", "http": {"method": "POST", "status": 401}}]),
        json!(["e36", "info", {"message": "Welcome message sent", "extra": {"template": "welcome", "locale": "ko-KR"}}]),
        json!(["e37", "info", {"message": "사용자 로그인 성공", "user": {"id": "46", "plan": "프리미엄"},
            "extra": {"city": "서울"}}]),
        json!(["e38", "error", {"message": "Payment gateway returned 502", "level": "error", "type": "http",
            "url": "https://shop.example/api/pay", "http": {"method": "POST", "status": 502},
            "extra": {"gateway": {"name": "tosspay", "retries": 0}}}]),
        json!(["e39", "info", {"message": "Background job finished",
            "extra": {"job": {"name": "cleanup", "stats": {"deleted": 120, "kept": 3}}}}]),
        json!(["e40", "warn", {"message": "Choose retry or abort", "level": "warn"}]),
        json!(["e41", "info", {"message": "Überweisung nach ZÜRICH abgelehnt", "user": "ÉLODIE",
            "extra": {"city": "ZÜRICH", "x-trace": "ABC123", "지역": "서울"}}]),
        json!(["e42", "warn", {"message": "ΣΦΑΛΜΑ δικτύου", "level": "warn",
            "extra": {"delta": -5, "big": 12345678901234567890u64, "n": 1e3}}]),
        json!(["e43", "error", {"message": "50% of requests_failed", "level": "error", "type": "Error"}]),
        json!(["e44", "info", {"message": "Café au lait ordered", "release": "2.0.0",
            "url": "https://shop.example/menu?item=café"}]),
        json!(["e45", "error", {"message": "ΣΥΣΤΗΜΑ ΕΚΤΟΣ ΛΕΙΤΟΥΡΓΙΑΣ", "level": "error"}]),
    ];
    fixtures
        .into_iter()
        .map(|fixture| match fixture {
            Value::Array(parts) => match <[Value; 3]>::try_from(parts) {
                Ok([Value::String(label), Value::String(level), sent]) => (label, level, sent),
                _ => panic!("a fixture is [label, level, event]"),
            },
            _ => panic!("a fixture is an array"),
        })
        .collect()
}

/// Every query of the suite and the labels it must return, newest first (label order).
const QUERIES: &[(&str, &[&str])] = &[
    ("", ALL),
    // Words and phrases: case-insensitive substrings of the message.
    ("payment", &["e02", "e04", "e16", "e17", "e38"]),
    ("PAYMENT gateway", &["e02", "e38"]),
    ("\"payment gateway returned\"", &["e38"]),
    ("\"CARD declined\"", &["e04"]),
    (r#""said \"hello\"""#, &["e09"]),
    (r#""C:\\temp\\report""#, &["e10"]),
    ("timeout", &["e11", "e12"]),
    ("결제", &["e07", "e08"]),
    ("\"카드 거절\"", &["e07"]),
    ("cats and dogs", &["e19"]),
    ("retry OR abort", &["e12", "e17", "e40"]),
    ("zebra", &[]),
    ("*", ALL),
    // Case folds beyond ASCII; `%` and `_` are plain characters.
    ("zürich", &["e41"]),
    ("σφαλμα", &["e42"]),
    ("CAFÉ", &["e44"]),
    // Σ is σ inside a word and ς at its end: a prefix ending in Σ must still find the word.
    ("ΣΥΣ", &["e45"]),
    ("εκτοσ", &["e45"]),
    ("\"50%\"", &["e43"]),
    ("requests_failed", &["e43"]),
    // Wildcards: middle, leading, trailing; in words, phrases and values.
    ("pay*declined", &["e04"]),
    ("log*out", &["e26"]),
    ("\"request*retrying\"", &["e12"]),
    ("type:*error", &["e03", "e24", "e27", "e43"]),
    ("url:*/checkout*", &["e03", "e20"]),
    ("url:https://api.example/*", &["e11", "e21"]),
    ("release:1.2.*", &["e01", "e02", "e03", "e27"]),
    ("code:e_*", &["e04"]),
    ("message:*placed", &["e13", "e14"]),
    ("stack:*fetchCart*", &["e18"]),
    ("stack:\"*at render*\"", &["e27"]),
    // Field equality: whole values, case-insensitive; built-in names in any case.
    ("message:\"order placed\"", &["e13", "e14"]),
    ("message:order", &[]),
    ("url:\"https://shop.example/api/pay\"", &["e02", "e38"]),
    ("type:http", &["e04", "e08", "e11", "e12", "e38"]),
    ("type:[TypeError,unhandledrejection]", &["e03", "e18", "e27"]),
    ("type:[Type*,http]", &["e03", "e04", "e08", "e11", "e12", "e27", "e38"]),
    ("extra.city:zürich", &["e41"]),
    ("user:élodie", &["e41"]),
    ("Http.Method:get", &["e01", "e11", "e12", "e20", "e21", "e28", "e29"]),
    ("env:production level:fatal", &["e05", "e24"]),
    ("group:/logboard/demo/*", ALL),
    // Levels are ordered.
    ("level:error", ERRORS),
    ("LEVEL:WARN", &["e02", "e10", "e17", "e22", "e29", "e34", "e40", "e42"]),
    (
        "level:>=warn",
        &[
            "e02", "e03", "e04", "e05", "e08", "e10", "e11", "e12", "e17", "e18", "e21", "e22", "e24", "e27", "e29",
            "e30", "e34", "e35", "e38", "e40", "e42", "e43", "e45",
        ],
    ),
    (
        "-level:[info,debug]",
        &[
            "e02", "e03", "e04", "e05", "e08", "e10", "e11", "e12", "e17", "e18", "e21", "e22", "e24", "e27", "e29",
            "e30", "e34", "e35", "e38", "e40", "e42", "e43", "e45",
        ],
    ),
    ("level:<info", &["e06", "e15", "e25", "e32"]),
    ("level:[debug,FATAL]", &["e05", "e06", "e15", "e24", "e25", "e32"]),
    // Numbers: compared numerically; `code` is text however it was sent.
    ("http.status:>=500", &["e08", "e11", "e12", "e21", "e38"]),
    ("http.status:<300", &["e01", "e02", "e16", "e20", "e28"]),
    ("http.status:[404,502]", &["e30", "e38"]),
    ("http.status:\"502\"", &["e38"]),
    ("http.status:>=400 -http.status:>=500", &["e04", "e30", "e35"]),
    ("code:500", &["e05", "e21"]),
    ("extra.amount:12.50", &["e04", "e16"]),
    // `42` is the number 42 (e16) and not the text "0042" (e04); `0042` equals both.
    ("extra.ref:42", &["e16"]),
    ("extra.ref:0042", &["e04", "e16"]),
    // Only a number compares: e23's 1500 is below, e02's 3200 above.
    ("extra.duration_ms:>2000", &["e02"]),
    ("extra.ratio:>0.9", &["e06"]),
    ("extra.delta:<0", &["e42"]),
    ("extra.delta:-5", &["e42"]),
    ("extra.big:>1000000", &["e42"]),
    ("extra.n:1000", &["e42"]),
    ("extra.query.rows:0 OR extra.results:<1", &["e25", "e33"]),
    // `extra.` at any depth, keys exact; booleans; Korean values.
    ("extra.gateway.name:TossPay", &["e02", "e38"]),
    ("extra.db.pool.size:10", &["e05"]),
    ("extra.job.stats.deleted:>=100", &["e39"]),
    ("extra.heap.used_mb:>=2048 extra.heap.limit_mb:<=2048", &["e24"]),
    ("extra.cart.currency:krw", &["e03"]),
    ("extra.enabled:true OR extra.api.deprecated:TRUE", &["e06", "e29"]),
    ("extra.flag.on:false", &["e15"]),
    ("extra.city:서울", &["e07", "e37"]),
    ("extra.Label:e01", &[]),
    ("extra.x-trace:abc123", &["e41"]),
    ("extra.지역:서울", &["e41"]),
    ("has:extra.order.items", &["e13"]),
    // `user`: the string, or the object's id (e20's object has none); `user.<key>`.
    ("user:alice", &["e01", "e26"]),
    ("user:45.0", &["e14"]),
    ("user.plan:pro", &["e03", "e13"]),
    ("user.plan:프리미엄", &["e37"]),
    ("로그인 user.plan:*", &["e37"]),
    ("has:user", &["e01", "e03", "e04", "e07", "e13", "e14", "e18", "e26", "e35", "e37", "e41"]),
    ("has:user.plan", &["e03", "e04", "e13", "e14", "e20", "e37"]),
    // `has:` wants present and not empty: not "", null or [].
    ("has:release", &["e01", "e02", "e03", "e18", "e27", "e44"]),
    // `*` matches any run of characters, the empty one too: e15's "" release.
    ("release:*", &["e01", "e02", "e03", "e15", "e18", "e27", "e44"]),
    ("has:stack", &["e03", "e05", "e18", "e24", "e27"]),
    (
        "has:fingerprint",
        &["e03", "e04", "e05", "e08", "e11", "e12", "e18", "e21", "e24", "e27", "e30", "e35", "e38", "e43", "e45"],
    ),
    ("has:extra.tags", &["e13"]),
    ("has:extra.note", &[]),
    // Negation: an absent field always passes a negated test.
    (
        "-user:alice",
        &[
            "e02", "e03", "e04", "e05", "e06", "e07", "e08", "e09", "e10", "e11", "e12", "e13", "e14", "e15", "e16",
            "e17", "e18", "e19", "e20", "e21", "e22", "e23", "e24", "e25", "e27", "e28", "e29", "e30", "e31", "e32",
            "e33", "e34", "e35", "e36", "e37", "e38", "e39", "e40", "e41", "e42", "e43", "e44", "e45",
        ],
    ),
    (
        "-http.method:GET",
        &[
            "e02", "e03", "e04", "e05", "e06", "e07", "e08", "e09", "e10", "e13", "e14", "e15", "e16", "e17", "e18",
            "e19", "e22", "e23", "e24", "e25", "e26", "e27", "e30", "e31", "e32", "e33", "e34", "e35", "e36", "e37",
            "e38", "e39", "e40", "e41", "e42", "e43", "e44", "e45",
        ],
    ),
    (
        "-has:release",
        &[
            "e04", "e05", "e06", "e07", "e08", "e09", "e10", "e11", "e12", "e13", "e14", "e15", "e16", "e17", "e19",
            "e20", "e21", "e22", "e23", "e24", "e25", "e26", "e28", "e29", "e30", "e31", "e32", "e33", "e34", "e35",
            "e36", "e37", "e38", "e39", "e40", "e41", "e42", "e43", "e45",
        ],
    ),
    (
        "NOT level:[debug,info] -has:http.status",
        &["e03", "e05", "e10", "e17", "e18", "e22", "e24", "e27", "e34", "e40", "e42", "e43", "e45"],
    ),
    ("NOT payment AND http.method:post", &["e08", "e30", "e35"]),
    // Precedence NOT > AND > OR, and parentheses.
    ("timeout OR payment level:warn", &["e02", "e11", "e12", "e17"]),
    ("(timeout OR payment) level:warn", &["e02", "e17"]),
    (
        "-(payment OR timeout) level:>=error",
        &["e03", "e05", "e08", "e18", "e21", "e24", "e27", "e30", "e35", "e43", "e45"],
    ),
    ("(payment OR (timeout -retrying)) level:error", &["e04", "e11", "e38"]),
    ("level:fatal http.status:200", &[]),
];

const ALL: &[&str] = &[
    "e01", "e02", "e03", "e04", "e05", "e06", "e07", "e08", "e09", "e10", "e11", "e12", "e13", "e14", "e15", "e16",
    "e17", "e18", "e19", "e20", "e21", "e22", "e23", "e24", "e25", "e26", "e27", "e28", "e29", "e30", "e31", "e32",
    "e33", "e34", "e35", "e36", "e37", "e38", "e39", "e40", "e41", "e42", "e43", "e44", "e45",
];

const ERRORS: &[&str] = &["e03", "e04", "e08", "e11", "e12", "e18", "e21", "e27", "e30", "e35", "e38", "e43", "e45"];

/// The queries whose histogram is checked too.
const HISTOGRAM_QUERIES: &[&str] =
    &["", "payment", "level:>=warn", "-level:[info,debug]", "-(payment OR timeout) level:>=error", "결제"];

/// When the `i`th fixture (0-based) happened: 3 minutes apart, the first 17 s before `now`.
fn fixture_time(now: OffsetDateTime, i: usize) -> OffsetDateTime {
    now - time::Duration::minutes(3 * i as i64) - time::Duration::seconds(17)
}

/// The fixtures as sent: `extra.label` and [`fixture_time`] added, half as RFC 3339 text, half
/// as epoch milliseconds.
fn sent_events(now: OffsetDateTime) -> Vec<Value> {
    fixtures()
        .into_iter()
        .enumerate()
        .map(|(i, (label, _, mut event))| {
            let at = fixture_time(now, i);
            event["timestamp"] = if i % 2 == 0 { json!(timestamp_format::format(at)) } else { json!(unix_ms(at)) };
            event["extra"]["label"] = json!(label);
            event
        })
        .collect()
}

/// The read window shared by every request: all fixtures, on both stores.
struct Window {
    from: String,
    to: String,
}

/// `path?project=demo&env=production&from&to&q` plus `more`, URL-encoded.
fn read_path(path: &str, window: &Window, q: &str, more: &[(&str, &str)]) -> String {
    let mut params =
        vec![("project", "demo"), ("env", "production"), ("from", &window.from), ("to", &window.to), ("q", q)];
    params.extend_from_slice(more);
    format!("{path}?{}", serde_urlencoded::to_string(&params).expect("encodable"))
}

/// One store's app and a client logged in to it (a session: Basic auth would verify the
/// password hash on every one of the hundreds of reads).
struct Store<'a> {
    name: &'static str,
    app: &'a common::TestApp,
    client: reqwest::Client,
}

impl Store<'_> {
    async fn read(&self, path_and_query: &str) -> (u16, Value) {
        let response = self.client.get(self.app.url(path_and_query)).send().await.expect("read request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Every page of `q`'s answer, as labels in the order returned; `Err` describes a failed read.
async fn labels(store: &Store<'_>, window: &Window, q: &str) -> Result<Vec<String>, String> {
    let limit = PAGE_SIZE.to_string();
    let mut cursor = String::new();
    let mut found = Vec::new();
    for _ in 0..=ALL.len() {
        let mut more = vec![("limit", limit.as_str())];
        if !cursor.is_empty() {
            more.push(("cursor", cursor.as_str()));
        }
        let (status, page) = store.read(&read_path("/api/v1/events", window, q, &more)).await;
        if status != 200 {
            return Err(format!("status {status}: {page}"));
        }
        let events = page["events"].as_array().ok_or_else(|| format!("no events: {page}"))?;
        if events.len() > PAGE_SIZE {
            return Err(format!("a page of {} events, over the limit {PAGE_SIZE}", events.len()));
        }
        found.extend(events.iter().map(|e| e["extra"]["label"].as_str().unwrap_or("(no label)").to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return Ok(found),
        }
    }
    Err(format!("more pages than events; so far {found:?}"))
}

/// The histogram's counts per level summed over every bucket (levels counted 0 left out).
async fn histogram_totals(store: &Store<'_>, window: &Window, q: &str) -> Result<BTreeMap<String, u64>, String> {
    let (status, answer) = store.read(&read_path("/api/v1/histogram", window, q, &[])).await;
    let buckets = answer["buckets"].as_array().filter(|_| status == 200).ok_or(format!("status {status}: {answer}"))?;
    let mut totals = BTreeMap::new();
    for bucket in buckets {
        for (level, count) in bucket["counts"].as_object().into_iter().flatten() {
            *totals.entry(level.clone()).or_insert(0) += count.as_u64().unwrap_or(0);
        }
    }
    totals.retain(|_, count| *count > 0);
    Ok(totals)
}

/// Both apps, holding the fixtures, and the time they were placed around.
struct Apps {
    embedded: common::TestApp,
    cloudwatch: common::moto::CloudWatchApp,
    now: OffsetDateTime,
    _moto: common::moto::Moto,
}

impl Apps {
    /// The fixtures ingested into an embedded app and, through a writer app, into moto; the
    /// CloudWatch app that reads starts on an empty spool once the writer's is shipped, so every
    /// answer comes from moto and none from a copy still in the spool.
    async fn with_fixtures() -> Apps {
        let moto = common::moto::Moto::start().await;
        let embedded = common::spawn_app().await;
        let now = OffsetDateTime::now_utc();
        let batch = json!({"env": "production", "events": sent_events(now)});
        let accepted = json!({"accepted": fixtures().len(), "rejected": []});
        assert_eq!(embedded.ingest(&batch).await, (202, accepted.clone()), "embedded");
        let writer = crate::cloudwatch::start_app(&moto.url).await;
        assert_eq!(writer.ingest(&batch).await, (202, accepted), "cloudwatch");
        writer.wait_until_shipped(SHIP_TIMEOUT).await;
        drop(writer);
        let cloudwatch = crate::cloudwatch::start_app(&moto.url).await;
        Apps { embedded, cloudwatch, now, _moto: moto }
    }

    async fn stores(&self) -> [Store<'_>; 2] {
        [
            Store { name: "embedded", app: &self.embedded, client: self.embedded.logged_in_client().await },
            Store { name: "cloudwatch", app: &self.cloudwatch, client: self.cloudwatch.logged_in_client().await },
        ]
    }
}

/// The labels' counts per level, from the fixtures' hand-written levels.
fn level_counts(labels: &[&str]) -> BTreeMap<String, u64> {
    let levels: BTreeMap<String, String> = fixtures().into_iter().map(|(label, level, _)| (label, level)).collect();
    let mut counts = BTreeMap::new();
    for label in labels {
        *counts.entry(levels.get(*label).cloned().unwrap_or_default()).or_insert(0) += 1;
    }
    counts
}

/// Reads `q` (every page) and its histogram from every store: what differs from `expected`.
async fn check(stores: &[Store<'_>], window: &Window, q: &str, expected: &[&str], histogram: bool) -> Vec<String> {
    let mut wrong = Vec::new();
    for store in stores {
        let name = store.name;
        match labels(store, window, q).await {
            Ok(got) if got == expected => {}
            Ok(got) => wrong.push(format!("{name}: `{q}` gave {got:?}, expected {expected:?}")),
            Err(why) => wrong.push(format!("{name}: `{q}` failed: {why}")),
        }
        if !histogram {
            continue;
        }
        let counts = level_counts(expected);
        match histogram_totals(store, window, q).await {
            Ok(totals) if totals == counts => {}
            Ok(got) => wrong.push(format!("{name}: histogram of `{q}` gave {got:?}, expected {counts:?}")),
            Err(why) => wrong.push(format!("{name}: histogram of `{q}` failed: {why}")),
        }
    }
    wrong
}

#[tokio::test]
async fn every_query_of_the_suite_gives_its_hand_written_answer_on_the_embedded_store_and_on_cloudwatch() {
    let apps = Apps::with_fixtures().await;
    let stores = apps.stores().await;
    let window = Window {
        from: timestamp_format::format(apps.now - time::Duration::hours(3)),
        to: timestamp_format::format(apps.now + time::Duration::minutes(1)),
    };
    let mut wrong = Vec::new();
    for (q, expected) in QUERIES {
        wrong.extend(check(&stores, &window, q, expected, HISTOGRAM_QUERIES.contains(q)).await);
    }
    assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
}

#[tokio::test]
async fn a_window_whose_ends_fall_on_events_holds_both_of_them_on_both_stores() {
    let apps = Apps::with_fixtures().await;
    let stores = apps.stores().await;
    // From e10's millisecond to e05's, as epoch milliseconds.
    let at = |i: usize| unix_ms(fixture_time(apps.now, i)).to_string();
    let window = Window { from: at(9), to: at(4) };
    let mut wrong = Vec::new();
    wrong.extend(check(&stores, &window, "", &["e05", "e06", "e07", "e08", "e09", "e10"], true).await);
    wrong.extend(check(&stores, &window, "level:>=warn", &["e05", "e08", "e10"], true).await);
    assert!(wrong.is_empty(), "{} wrong answers:\n{}", wrong.len(), wrong.join("\n"));
}
