//! The log event: one incoming JSON object normalised and validated into a [`StoredEvent`],
//! with its server fields (`id`, `project`, `env`, `received_at`, `fingerprint`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use ulid::Ulid;

use crate::scrub::Scrubber;

/// CloudWatch refuses events older than this.
const MAX_AGE: Duration = Duration::days(14);
/// CloudWatch refuses events further in the future than this.
const MAX_AHEAD: Duration = Duration::hours(2);
/// Kept off both ends of the window, so an event accepted now is still in it when shipped.
const SKEW_MARGIN: Duration = Duration::minutes(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Debug, Level::Info, Level::Warn, Level::Error, Level::Fatal];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    /// Case-insensitive, with the usual aliases (`warning`, `critical`, ...).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "debug" | "trace" => Ok(Level::Debug),
            "info" | "information" | "notice" => Ok(Level::Info),
            "warn" | "warning" => Ok(Level::Warn),
            "error" | "err" => Ok(Level::Error),
            "fatal" | "critical" | "crit" | "emergency" | "alert" => Ok(Level::Fatal),
            _ => Err(format!("unknown level `{text}`; use debug, info, warn, error or fatal")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Http {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// An event as stored: in the embedded store, and as one CloudWatch log event (one JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// A ULID whose time part is the occurrence time, so the id alone narrows a search.
    pub id: Ulid,
    pub project: String,
    pub env: String,
    /// When it happened (millisecond precision, UTC).
    #[serde(with = "timestamp_format")]
    pub timestamp: OffsetDateTime,
    #[serde(with = "timestamp_format")]
    pub received_at: OffsetDateTime,
    pub level: Level,
    pub message: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Fields cut (or dropped) to fit the event size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Vec<String>>,
}

impl StoredEvent {
    /// The one-line JSON form (what CloudWatch stores as the message).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            // Only non-string map keys can fail, and our types have none.
            format!("{{\"message\":\"unserialisable event: {e}\"}}")
        })
    }

    pub fn timestamp_ms(&self) -> i64 {
        unix_ms(self.timestamp)
    }
}

/// What the normaliser needs to know about the request an event came in.
pub struct Context<'a> {
    pub project: &'a crate::config::ProjectConfig,
    /// The batch's `env`, used when an event names none.
    pub default_env: Option<&'a str>,
    pub received_at: OffsetDateTime,
    pub max_event_bytes: usize,
    pub scrubber: &'a Scrubber,
}

/// Turns one incoming JSON value into a stored event, or the reason it is rejected.
pub fn normalise(raw: Value, ctx: &Context<'_>) -> Result<StoredEvent, String> {
    if depth(&raw) > MAX_DEPTH {
        return Err(format!("the event is nested deeper than {MAX_DEPTH} levels"));
    }
    let Value::Object(mut fields) = raw else {
        return Err(format!("an event must be a JSON object, not {}", json_kind(&raw)));
    };
    let message = match fields.remove("message") {
        Some(Value::String(s)) if s.trim().is_empty() => return Err("message is empty".into()),
        Some(Value::String(s)) => s,
        Some(other) => return Err(format!("message must be a string, not {}", json_kind(&other))),
        None => return Err("message is missing".into()),
    };
    let level = match fields.remove("level") {
        None | Some(Value::Null) => Level::Info,
        Some(Value::String(s)) => s.parse()?,
        Some(other) => return Err(format!("level must be a string, not {}", json_kind(&other))),
    };
    let env = match fields.remove("env") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => match ctx.default_env {
            Some(env) => env.to_string(),
            None => return Err(format!("env is missing; use one of: {}", ctx.project.envs.join(", "))),
        },
        Some(other) => return Err(format!("env must be a string, not {}", json_kind(&other))),
    };
    if !ctx.project.has_env(&env) {
        return Err(format!("unknown env `{env}`; use one of: {}", ctx.project.envs.join(", ")));
    }
    let timestamp = match fields.remove("timestamp") {
        None | Some(Value::Null) => ctx.received_at,
        Some(value) => parse_timestamp(&value)?,
    };
    check_time_window(timestamp, ctx.received_at)?;
    let timestamp = truncate_to_ms(timestamp);

    let kind = take_string(&mut fields, "type")?;
    let code = match fields.remove("code") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => return Err(format!("code must be a string or number, not {}", json_kind(&other))),
    };
    let http = match fields.remove("http") {
        None | Some(Value::Null) => None,
        Some(value @ Value::Object(_)) => Some(parse_http(value)?),
        Some(other) => return Err(format!("http must be an object, not {}", json_kind(&other))),
    };
    let url = take_string(&mut fields, "url")?;
    let location = take_string(&mut fields, "location")?;
    let user = match fields.remove("user") {
        None | Some(Value::Null) => None,
        Some(value @ (Value::String(_) | Value::Object(_))) => Some(value),
        Some(other) => return Err(format!("user must be a string or object, not {}", json_kind(&other))),
    };
    let stack = take_string(&mut fields, "stack")?;
    let release = take_string(&mut fields, "release")?;
    let mut extra = match fields.remove("extra") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(format!("extra must be an object, not {}", json_kind(&other))),
    };
    // Fields we do not know (or that the server sets itself) are kept, not lost: they go to `extra`.
    for (key, value) in fields {
        extra.entry(key).or_insert(value);
    }

    // Logged text is data: no control characters but newline and tab, and no PII.
    let clean = |text: String| ctx.scrubber.text(&strip_control_chars(&text));
    let message = clean(message);
    let (kind, code, url, location, stack, release) =
        (kind.map(clean), code.map(clean), url.map(clean), location.map(clean), stack.map(clean), release.map(clean));
    let mut user = user;
    for value in user.iter_mut() {
        clean_value(value, ctx.scrubber);
    }
    let mut extra = Value::Object(extra);
    clean_value(&mut extra, ctx.scrubber);
    let extra = match extra {
        Value::Object(map) => map,
        _ => Map::new(),
    };

    let fingerprint =
        (level >= Level::Error).then(|| fingerprint(kind.as_deref(), &message, location.as_deref(), stack.as_deref()));
    let event = StoredEvent {
        id: new_id(timestamp),
        project: ctx.project.name.clone(),
        env,
        timestamp,
        received_at: truncate_to_ms(ctx.received_at),
        level,
        message,
        kind,
        code,
        http,
        url,
        location,
        user,
        stack,
        release,
        extra: (!extra.is_empty()).then_some(extra),
        fingerprint,
        truncated: None,
    };
    fit_to_size(event, ctx.max_event_bytes)
}

/// Shortens the longest fields until the event fits `max_bytes`, naming them in `truncated`;
/// rejects the event only when even that is not enough.
fn fit_to_size(mut event: StoredEvent, max_bytes: usize) -> Result<StoredEvent, String> {
    let original = event.to_json().len();
    let mut size = original;
    let mut cut: Vec<String> = Vec::new();
    // Free text first (stack traces are the usual culprit), whole objects last.
    for field in ["stack", "message", "extra", "user", "url", "location"] {
        if size <= max_bytes {
            break;
        }
        // Room for the `truncated` list itself, so one cut is enough per field.
        let excess = size + TRUNCATED_LIST_BYTES - max_bytes;
        let changed = match field {
            "stack" => truncate_text(event.stack.as_mut(), excess, 0),
            "message" => truncate_text(Some(&mut event.message), excess, MIN_KEPT_MESSAGE_BYTES),
            "url" => truncate_text(event.url.as_mut(), excess, 0),
            "location" => truncate_text(event.location.as_mut(), excess, 0),
            "extra" => event.extra.take().is_some(),
            _ => event.user.take().is_some(),
        };
        if changed {
            cut.push(field.to_string());
            event.truncated = Some(cut.clone());
            size = event.to_json().len();
        }
    }
    if size > max_bytes {
        return Err(format!(
            "event is {original} bytes, over the limit of {max_bytes} bytes even with long fields cut"
        ));
    }
    Ok(event)
}

/// The longest `"truncated":[...]` entry the event can gain.
const TRUNCATED_LIST_BYTES: usize = 72;
/// The start of a message is always kept, whatever else is cut.
const MIN_KEPT_MESSAGE_BYTES: usize = 1024;
const TRUNCATION_MARK: &str = "… [truncated]";

/// Cuts `text` by at least `excess` bytes (as JSON may escape, a little more), keeping `keep` bytes.
fn truncate_text(text: Option<&mut String>, excess: usize, keep: usize) -> bool {
    let Some(text) = text else { return false };
    if text.len() <= keep {
        return false;
    }
    // Escapes can make a character up to 6 bytes of JSON; cutting its raw length by the excess
    // plus the mark is enough unless the cut part was escape-heavy, which the caller re-measures.
    let escaped_excess = serde_json::to_string(text.as_str()).map_or(text.len(), |json| json.len() - 2) - text.len();
    let target = text.len().saturating_sub(excess + escaped_excess + TRUNCATION_MARK.len()).max(keep);
    let mut end = target.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(TRUNCATION_MARK);
    true
}

/// Removes control characters other than newline and tab.
pub fn strip_control_chars(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return text.to_string();
    }
    text.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect()
}

/// Strips control characters from every string and key, then scrubs the value.
fn clean_value(value: &mut Value, scrubber: &Scrubber) {
    fn strip(value: &mut Value) {
        match value {
            Value::String(s) => *s = strip_control_chars(s),
            Value::Array(items) => items.iter_mut().for_each(strip),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    strip(&mut v);
                    map.insert(strip_control_chars(&key), v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    strip(value);
    scrubber.value(value);
}

/// Deepest nesting of objects and arrays in one event (security.md).
const MAX_DEPTH: usize = 16;

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A new id carrying the occurrence time in its first 48 bits.
pub fn new_id(timestamp: OffsetDateTime) -> Ulid {
    let ms = u64::try_from(unix_ms(timestamp)).unwrap_or(0);
    Ulid::from_parts(ms, rand::random::<u128>())
}

pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn from_unix_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn truncate_to_ms(t: OffsetDateTime) -> OffsetDateTime {
    from_unix_ms(unix_ms(t)).unwrap_or(t)
}

fn parse_timestamp(value: &Value) -> Result<OffsetDateTime, String> {
    match value {
        Value::String(s) => OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| t.to_offset(time::UtcOffset::UTC))
            .map_err(|_| format!("timestamp `{s}` is not RFC 3339 (e.g. 2026-11-24T15:04:05Z)")),
        Value::Number(n) => n
            .as_i64()
            .and_then(from_unix_ms)
            .ok_or_else(|| format!("timestamp {n} is not an integer of epoch milliseconds")),
        other => Err(format!("timestamp must be an RFC 3339 string or epoch milliseconds, not {}", json_kind(other))),
    }
}

fn check_time_window(timestamp: OffsetDateTime, now: OffsetDateTime) -> Result<(), String> {
    if timestamp < now - MAX_AGE + SKEW_MARGIN {
        return Err(format!(
            "timestamp {} is older than 14 days (epoch milliseconds are expected for numbers)",
            timestamp_format::format(timestamp)
        ));
    }
    if timestamp > now + MAX_AHEAD - SKEW_MARGIN {
        return Err(format!("timestamp {} is more than 2 hours in the future", timestamp_format::format(timestamp)));
    }
    Ok(())
}

fn parse_http(value: Value) -> Result<Http, String> {
    let Value::Object(map) = value else { return Ok(Http::default()) };
    let method = match map.get("method") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.to_ascii_uppercase()),
        Some(other) => return Err(format!("http.method must be a string, not {}", json_kind(other))),
    };
    let status = match map.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64().and_then(|s| u16::try_from(s).ok()) {
            Some(s) if (100..=599).contains(&s) => Some(s),
            _ => return Err(format!("http.status {n} is not an HTTP status code")),
        },
        Some(Value::String(s)) => match s.parse::<u16>() {
            Ok(s) if (100..=599).contains(&s) => Some(s),
            _ => return Err(format!("http.status `{s}` is not an HTTP status code")),
        },
        Some(other) => return Err(format!("http.status must be a number, not {}", json_kind(other))),
    };
    Ok(Http { method, status })
}

fn take_string(fields: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key} must be a string, not {}", json_kind(&other))),
    }
}

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Groups repeats of one error: same type, same message up to numbers, same place.
fn fingerprint(kind: Option<&str>, message: &str, location: Option<&str>, stack: Option<&str>) -> String {
    let message: String = message.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
    let place = location.or_else(|| stack.and_then(|s| s.lines().map(str::trim).find(|l| !l.is_empty()))).unwrap_or("");
    let mut hash = Sha256::new();
    for part in [kind.unwrap_or(""), &message, place] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3339 in UTC with milliseconds: `2026-11-24T15:04:05.123Z`.
pub mod timestamp_format {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;

    pub fn format(t: OffsetDateTime) -> String {
        let utc = t.to_offset(time::UtcOffset::UTC);
        utc.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"))
            .unwrap_or_else(|_| utc.to_string())
    }

    pub fn parse(text: &str) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(|t| t.to_offset(time::UtcOffset::UTC))
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not RFC 3339")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProjectConfig;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-24 15:00:00 UTC);

    fn project() -> ProjectConfig {
        ProjectConfig {
            name: "demo".into(),
            envs: vec!["production".into(), "staging".into()],
            ingest_keys: vec!["k".into()],
            allowed_origins: vec!["*".into()],
            extra_group_prefixes: vec![],
            scrub: true,
            scrub_key_patterns: vec![],
            store_client_ip: false,
        }
    }

    fn run(raw: Value) -> Result<StoredEvent, String> {
        let project = project();
        let scrubber = project.scrubber();
        let ctx = Context {
            project: &project,
            default_env: Some("staging"),
            received_at: NOW,
            max_event_bytes: 65_536,
            scrubber: &scrubber,
        };
        normalise(raw, &ctx)
    }

    #[test]
    fn a_minimal_event_gets_defaults_and_server_fields() {
        let e = run(json!({"message": "hello"})).expect("valid");
        assert_eq!(e.message, "hello");
        assert_eq!(e.level, Level::Info);
        assert_eq!(e.env, "staging");
        assert_eq!(e.project, "demo");
        assert_eq!(e.timestamp, NOW);
        assert_eq!(e.received_at, NOW);
        assert_eq!(e.fingerprint, None);
        assert_eq!(e.id.timestamp_ms() as i64, unix_ms(NOW), "the id carries the occurrence time");
    }

    #[test]
    fn levels_are_case_insensitive_with_aliases() {
        for (given, want) in [
            ("ERROR", Level::Error),
            ("Warning", Level::Warn),
            ("critical", Level::Fatal),
            ("debug", Level::Debug),
            ("warn", Level::Warn),
        ] {
            assert_eq!(run(json!({"message": "m", "level": given})).expect(given).level, want, "{given}");
        }
        let reason = run(json!({"message": "m", "level": "loud"})).unwrap_err();
        assert!(reason.contains("unknown level `loud`"), "{reason}");
    }

    #[test]
    fn timestamps_are_rfc3339_or_epoch_milliseconds() {
        let e = run(json!({"message": "m", "timestamp": "2026-11-24T23:30:00.250+09:00"})).expect("rfc3339");
        assert_eq!(e.timestamp, datetime!(2026-11-24 14:30:00.250 UTC));
        let e = run(json!({"message": "m", "timestamp": unix_ms(NOW) - 1000})).expect("ms");
        assert_eq!(e.timestamp, NOW - Duration::seconds(1));
        assert!(run(json!({"message": "m", "timestamp": "yesterday"})).unwrap_err().contains("not RFC 3339"));
        assert!(run(json!({"message": "m", "timestamp": 1.5})).unwrap_err().contains("not an integer"));
    }

    #[test]
    fn timestamps_outside_the_cloudwatch_window_are_rejected() {
        let ms = |d: Duration| unix_ms(NOW + d);
        assert!(
            run(json!({"message": "m", "timestamp": ms(-Duration::days(15))}))
                .unwrap_err()
                .contains("older than 14 days")
        );
        assert!(run(json!({"message": "m", "timestamp": ms(Duration::hours(3))})).unwrap_err().contains("future"));
        assert!(run(json!({"message": "m", "timestamp": ms(-Duration::days(13))})).is_ok());
        assert!(run(json!({"message": "m", "timestamp": ms(Duration::hours(1))})).is_ok());
        // Epoch seconds instead of milliseconds land in 1970 and say why.
        assert!(run(json!({"message": "m", "timestamp": 1_795_000_000})).unwrap_err().contains("epoch milliseconds"));
    }

    #[test]
    fn the_message_must_be_a_non_empty_string() {
        assert_eq!(run(json!({"level": "info"})).unwrap_err(), "message is missing");
        assert_eq!(run(json!({"message": "  "})).unwrap_err(), "message is empty");
        assert_eq!(run(json!({"message": 5})).unwrap_err(), "message must be a string, not a number");
        assert_eq!(run(json!("text")).unwrap_err(), "an event must be a JSON object, not a string");
    }

    #[test]
    fn the_event_env_wins_and_must_be_known() {
        assert_eq!(run(json!({"message": "m", "env": "production"})).expect("env").env, "production");
        let reason = run(json!({"message": "m", "env": "qa"})).unwrap_err();
        assert_eq!(reason, "unknown env `qa`; use one of: production, staging");
    }

    #[test]
    fn all_seed_fields_are_kept_and_unknown_fields_go_to_extra() {
        let e = run(json!({
            "message": "boom", "level": "error", "type": "vue", "code": 42,
            "http": {"method": "post", "status": 502}, "url": "https://a.example/x",
            "location": "App > Cart > PayButton", "user": {"id": "42"}, "stack": "Error: boom\n  at pay (cart.js:1:2)",
            "release": "1.4.2", "extra": {"cartId": 7}, "browser": "firefox"
        }))
        .expect("valid");
        assert_eq!(e.kind.as_deref(), Some("vue"));
        assert_eq!(e.code.as_deref(), Some("42"));
        assert_eq!(e.http, Some(Http { method: Some("POST".into()), status: Some(502) }));
        assert_eq!(e.user, Some(json!({"id": "42"})));
        assert_eq!(e.extra, Some(json!({"cartId": 7, "browser": "firefox"}).as_object().cloned().unwrap_or_default()));
        assert!(e.fingerprint.is_some(), "errors get a fingerprint");
        let back: StoredEvent = serde_json::from_str(&e.to_json()).expect("round trip");
        assert_eq!(back, e);
    }

    #[test]
    fn wrongly_typed_fields_are_rejected_with_their_name() {
        assert_eq!(run(json!({"message": "m", "url": 1})).unwrap_err(), "url must be a string, not a number");
        assert_eq!(
            run(json!({"message": "m", "http": {"status": 999}})).unwrap_err(),
            "http.status 999 is not an HTTP status code"
        );
        assert_eq!(run(json!({"message": "m", "extra": []})).unwrap_err(), "extra must be an object, not an array");
    }

    #[test]
    fn control_characters_are_stripped_and_pii_scrubbed_in_every_field() {
        let e = run(json!({
            "message": "login failed for kim@example.com\u{0007}\u{001b}[31m\tretry\nnext",
            "stack": "Error: token Bearer abcdefghijklmnop123\n  at x.js:1:1",
            "url": "https://bob:pw@shop.example/pay",
            "user": {"id": "42", "email": "kim@example.com", "password": "p"},
            "extra": {"card": "4111-1111-1111-1111", "api_key": "k", "ok": "fine\u{0000}"}
        }))
        .expect("valid");
        assert_eq!(e.message, "login failed for [Filtered][31m\tretry\nnext");
        assert_eq!(e.stack.as_deref(), Some("Error: token Bearer [Filtered]\n  at x.js:1:1"));
        assert_eq!(e.url.as_deref(), Some("https://[Filtered]@shop.example/pay"));
        assert_eq!(e.user, Some(json!({"id": "42", "email": "[Filtered]", "password": "[Filtered]"})));
        assert_eq!(e.extra, json!({"card": "[Filtered]", "api_key": "[Filtered]", "ok": "fine"}).as_object().cloned());
    }

    #[test]
    fn long_fields_are_cut_to_fit_and_marked() {
        let e =
            run(json!({"message": "m".repeat(70_000), "stack": "s".repeat(50_000), "extra": {"a": 1}})).expect("fits");
        assert!(e.to_json().len() <= 65_536, "{}", e.to_json().len());
        assert_eq!(e.truncated, Some(vec!["stack".to_string(), "message".to_string()]));
        assert!(e.message.ends_with("… [truncated]") && e.message.starts_with("mmmm"));
        assert_eq!(e.stack.as_deref(), Some("… [truncated]"));
        assert_eq!(e.extra, json!({"a": 1}).as_object().cloned(), "what fits is kept");

        let escaped = run(json!({"message": "\"".repeat(40_000)})).expect("escape-heavy text fits too");
        assert!(escaped.to_json().len() <= 65_536);
        let multibyte = run(json!({"message": "결제".repeat(20_000)})).expect("cut on a char boundary");
        assert!(multibyte.message.ends_with("… [truncated]"));

        let big_extra = run(json!({"message": "ok", "extra": {"blob": "b".repeat(70_000)}})).expect("extra dropped");
        assert_eq!((big_extra.extra, big_extra.truncated), (None, Some(vec!["extra".to_string()])));
        let small = run(json!({"message": "ok"})).expect("small");
        assert_eq!(small.truncated, None);
    }

    #[test]
    fn deeply_nested_events_are_rejected() {
        let mut nested = json!("leaf");
        for _ in 0..16 {
            nested = json!({ "k": nested });
        }
        assert_eq!(
            run(json!({"message": "m", "extra": nested})).unwrap_err(),
            "the event is nested deeper than 16 levels"
        );
        let mut ok = json!("leaf");
        for _ in 0..14 {
            ok = json!({ "k": ok });
        }
        assert!(run(json!({"message": "m", "extra": ok})).is_ok());
    }

    #[test]
    fn repeats_of_an_error_share_a_fingerprint() {
        let a = run(json!({"message": "timeout after 30 ms", "level": "error", "location": "a.js:1:1"})).expect("a");
        let b = run(json!({"message": "timeout after 45 ms", "level": "error", "location": "a.js:1:1"})).expect("b");
        let c = run(json!({"message": "timeout after 45 ms", "level": "error", "location": "b.js:1:1"})).expect("c");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }
}
