//! Our own format, `POST /api/v1/events`: a body is a batch object, a bare array, a single event,
//! or NDJSON ([`parse`]), and each event one JSON object ([`decode`] makes it a [`Draft`]: fields
//! typed, unknown fields kept under `extra`). What every format shares (environment, time window,
//! cleaning, fingerprint, size) is the ingest policy's.

use std::borrow::Cow;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::event::{
    Draft, Http, Level, Rejection, RejectionKind, from_unix_ms, json_kind, strip_unsafe_chars, timestamp_format,
};

/// How the body is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`, or `text/plain` carrying JSON (what `sendBeacon` sends).
    Json,
    /// `application/x-ndjson`: one event per line.
    Ndjson,
}

impl BodyFormat {
    /// `None` for a content type we do not accept.
    pub fn from_content_type(content_type: Option<&str>) -> Option<BodyFormat> {
        let essence =
            content_type.unwrap_or("application/json").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" | "text/plain" | "" => Some(BodyFormat::Json),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Some(BodyFormat::Ndjson),
            _ => None,
        }
    }
}

/// The raw events of one request and the batch's default `env`.
#[derive(Debug, PartialEq)]
pub struct Batch {
    pub env: Option<String>,
    pub events: Vec<Value>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Malformed(String),
    #[error("the body holds no events")]
    NoEvents,
    #[error("the body holds {count} events; at most {max} are accepted per request")]
    TooManyEvents { count: usize, max: usize },
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits a body into raw events.
pub fn parse(format: BodyFormat, body: &[u8], max_events: usize) -> Result<Batch, BodyError> {
    // Some tools (PowerShell, Windows editors) start UTF-8 with a byte-order mark; it is not data.
    let (body, skipped) = match body.strip_prefix(UTF8_BOM) {
        Some(rest) => (rest, UTF8_BOM.len()),
        None => (body, 0),
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        BodyError::Malformed(format!("the body is not valid UTF-8 (at byte {})", e.valid_up_to() + skipped))
    })?;
    let batch = match format {
        BodyFormat::Json => parse_json(text)?,
        BodyFormat::Ndjson => parse_ndjson(text)?,
    };
    if batch.events.is_empty() {
        return Err(BodyError::NoEvents);
    }
    if batch.events.len() > max_events {
        return Err(BodyError::TooManyEvents { count: batch.events.len(), max: max_events });
    }
    Ok(batch)
}

fn parse_json(text: &str) -> Result<Batch, BodyError> {
    if text.trim().is_empty() {
        return Err(BodyError::NoEvents);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| BodyError::Malformed(format!("invalid JSON: {e}")))?;
    match value {
        Value::Array(events) => Ok(Batch { env: None, events }),
        Value::Object(mut map) if map.contains_key("events") => {
            let env = match map.remove("env") {
                None | Some(Value::Null) => None,
                Some(Value::String(env)) => Some(env),
                Some(other) => {
                    return Err(BodyError::Malformed(format!("env must be a string, not {}", json_kind(&other))));
                }
            };
            match map.remove("events") {
                Some(Value::Array(events)) => Ok(Batch { env, events }),
                Some(other) => Err(BodyError::Malformed(format!("events must be an array, not {}", json_kind(&other)))),
                None => Err(BodyError::NoEvents),
            }
        }
        event @ Value::Object(_) => Ok(Batch { env: None, events: vec![event] }),
        other => Err(BodyError::Malformed(format!(
            "expected an event object, an array of events or {{\"events\": [...]}}, not {}",
            json_kind(&other)
        ))),
    }
}

fn parse_ndjson(text: &str) -> Result<Batch, BodyError> {
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(line)
            .map_err(|e| BodyError::Malformed(format!("invalid JSON on line {}: {e}", index + 1)))?;
        events.push(event);
    }
    Ok(Batch { env: None, events })
}

/// A body's events, decoded: the batch's default `env` and each event's draft or rejection.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    pub env: Option<String>,
    pub drafts: Vec<Result<Draft, Rejection>>,
}

/// Splits a body into events and decodes each: what [`parse`] then [`decode`] make of it. A
/// batch of objects (an array, `{"env", "events"}` or NDJSON) is read straight into each event's
/// fields, without a parsed tree per event; any other body, or one this reading refuses, is
/// parsed whole, which also says what is wrong with it.
pub fn decode_body(format: BodyFormat, body: &[u8], max_events: usize) -> Result<Decoded, BodyError> {
    if let Some(batch) = read_batch(format, body).filter(|batch| (1..=max_events).contains(&batch.events.len())) {
        let drafts = batch
            .events
            .into_iter()
            .map(|fields| if fields.depth() > MAX_DEPTH { Err(too_deep()) } else { fields.decode() })
            .collect();
        return Ok(Decoded { env: batch.env, drafts });
    }
    let batch = parse(format, body, max_events)?;
    Ok(Decoded { env: batch.env, drafts: batch.events.into_iter().map(decode).collect() })
}

/// A batch whose events were read as fields.
#[derive(Default)]
struct FieldBatch {
    env: Option<String>,
    events: Vec<Fields>,
}

/// The batch of objects in `body`, if that is what it holds.
fn read_batch(format: BodyFormat, body: &[u8]) -> Option<FieldBatch> {
    let text = std::str::from_utf8(body.strip_prefix(UTF8_BOM).unwrap_or(body)).ok()?;
    match format {
        BodyFormat::Json => serde_json::from_str(text).ok(),
        BodyFormat::Ndjson => {
            let lines = text.lines().filter(|line| !line.trim().is_empty());
            let events = lines.map(|line| serde_json::from_str(line).ok()).collect::<Option<Vec<Fields>>>()?;
            Some(FieldBatch { env: None, events })
        }
    }
}

impl<'de> serde::Deserialize<'de> for FieldBatch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<FieldBatch, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FieldBatch;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of event objects or {\"env\", \"events\"}")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<FieldBatch, A::Error> {
                let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(fields) = seq.next_element()? {
                    events.push(fields);
                }
                Ok(FieldBatch { env: None, events })
            }

            /// Only `env` and `events`, each once: an object with other keys is left to [`parse`]
            /// (it may be a single event).
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FieldBatch, A::Error> {
                let (mut env, mut events) = (None, None);
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match key.0.as_ref() {
                        "env" if env.is_none() => env = Some(map.next_value::<Option<String>>()?),
                        "events" if events.is_none() => events = Some(map.next_value::<Vec<Fields>>()?),
                        _ => return Err(serde::de::Error::custom("not a batch")),
                    }
                }
                let events = events.ok_or_else(|| serde::de::Error::custom("no events"))?;
                Ok(FieldBatch { env: env.flatten(), events })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Fields;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Fields::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    fields.set(key.0, map.next_value()?);
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// An object's key, borrowed from the body unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }

            fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Deepest nesting of objects and arrays in one event (security.md).
const MAX_DEPTH: usize = 16;

/// One event object as a draft, or the reason it is refused.
pub fn decode(raw: Value) -> Result<Draft, Rejection> {
    if depth(&raw) > MAX_DEPTH {
        return Err(too_deep());
    }
    let Value::Object(fields) = raw else {
        return Err(Rejection::new(
            RejectionKind::NotAnObject,
            format!("an event must be a JSON object, not {}", json_kind(&raw)),
        ));
    };
    Fields::of(fields).decode()
}

fn too_deep() -> Rejection {
    Rejection::new(RejectionKind::TooDeep, format!("the event is nested deeper than {MAX_DEPTH} levels"))
}

/// An event object's fields by name: what [`decode`] types. Read either from a parsed object or
/// straight from the body ([`decode_body`]'s fast path), so both decode alike.
#[derive(Debug, Default)]
struct Fields {
    message: Option<Value>,
    level: Option<Value>,
    env: Option<Value>,
    timestamp: Option<Value>,
    kind: Option<Value>,
    code: Option<Value>,
    http: Option<Value>,
    url: Option<Value>,
    location: Option<Value>,
    user: Option<Value>,
    stack: Option<Value>,
    release: Option<Value>,
    extra: Option<Value>,
    /// Fields we do not know (or that the server sets itself).
    others: Map<String, Value>,
}

impl Fields {
    fn of(object: Map<String, Value>) -> Fields {
        let mut fields = Fields::default();
        for (key, value) in object {
            fields.set(key, value);
        }
        fields
    }

    /// Sets the field `key` (a later one of the same name replaces it, as in a parsed object).
    fn set(&mut self, key: impl AsRef<str> + Into<String>, value: Value) {
        let slot = match key.as_ref() {
            "message" => &mut self.message,
            "level" => &mut self.level,
            "env" => &mut self.env,
            "timestamp" => &mut self.timestamp,
            "type" => &mut self.kind,
            "code" => &mut self.code,
            "http" => &mut self.http,
            "url" => &mut self.url,
            "location" => &mut self.location,
            "user" => &mut self.user,
            "stack" => &mut self.stack,
            "release" => &mut self.release,
            "extra" => &mut self.extra,
            _ => {
                self.others.insert(key.into(), value);
                return;
            }
        };
        *slot = Some(value);
    }

    /// The nesting of the object these fields were (1 for flat fields).
    fn depth(&self) -> usize {
        let known = [
            &self.message,
            &self.level,
            &self.env,
            &self.timestamp,
            &self.kind,
            &self.code,
            &self.http,
            &self.url,
            &self.location,
            &self.user,
            &self.stack,
            &self.release,
            &self.extra,
        ];
        let deepest = known.into_iter().flatten().chain(self.others.values()).map(depth).max();
        1 + deepest.unwrap_or(0)
    }

    fn decode(self) -> Result<Draft, Rejection> {
        let message = match self.message {
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(Rejection::new(RejectionKind::Message, "message is empty"));
            }
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(Rejection::new(
                    RejectionKind::Message,
                    format!("message must be a string, not {}", json_kind(&other)),
                ));
            }
            None => return Err(Rejection::new(RejectionKind::Message, "message is missing")),
        };
        let level = match self.level {
            None | Some(Value::Null) => Level::Info,
            Some(Value::String(mut s)) => {
                // Read as the cleaned text would be: control characters are not part of a level.
                strip_unsafe_chars(&mut s);
                s.parse().map_err(|why| Rejection::new(RejectionKind::Level, why))?
            }
            Some(other) => {
                return Err(Rejection::new(
                    RejectionKind::Level,
                    format!("level must be a string, not {}", json_kind(&other)),
                ));
            }
        };
        let env = match self.env {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(Rejection::new(
                    RejectionKind::Env,
                    format!("env must be a string, not {}", json_kind(&other)),
                ));
            }
        };
        let timestamp = match self.timestamp {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_timestamp(value).map_err(|why| Rejection::new(RejectionKind::Timestamp, why))?),
        };
        let kind = string_field(self.kind, "type")?;
        let code = match self.code {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(Rejection::new(
                    RejectionKind::Code,
                    format!("code must be a string or number, not {}", json_kind(&other)),
                ));
            }
        };
        let http = match self.http {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(parse_http(&map).map_err(|why| Rejection::new(RejectionKind::Http, why))?),
            Some(other) => {
                return Err(Rejection::new(
                    RejectionKind::Http,
                    format!("http must be an object, not {}", json_kind(&other)),
                ));
            }
        };
        let url = string_field(self.url, "url")?;
        let location = string_field(self.location, "location")?;
        let user = match self.user {
            None | Some(Value::Null) => None,
            Some(value @ (Value::String(_) | Value::Object(_))) => Some(value),
            Some(other) => {
                return Err(Rejection::new(
                    RejectionKind::User,
                    format!("user must be a string or object, not {}", json_kind(&other)),
                ));
            }
        };
        let stack = string_field(self.stack, "stack")?;
        let release = string_field(self.release, "release")?;
        let mut extra = match self.extra {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(Rejection::new(
                    RejectionKind::Invalid,
                    format!("extra must be an object, not {}", json_kind(&other)),
                ));
            }
        };
        // Only the client's own `extra.fingerprint` is its grouping, not a top-level `fingerprint`
        // (the server's, in an exported event sent again).
        let fingerprint = extra.get("fingerprint").cloned();
        // Fields we do not know (or that the server sets itself) are kept, not lost: they go to
        // `extra`.
        for (key, value) in self.others {
            extra.entry(key).or_insert(value);
        }
        Ok(Draft {
            env,
            timestamp,
            level,
            message,
            kind,
            code,
            http,
            url,
            location,
            user,
            stack,
            frames: Vec::new(),
            release,
            extra,
            fingerprint,
        })
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn parse_timestamp(value: Value) -> Result<OffsetDateTime, String> {
    match value {
        Value::String(mut s) => {
            strip_unsafe_chars(&mut s);
            timestamp_format::parse(&s).ok_or_else(|| {
                if OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).is_ok() {
                    format!("timestamp `{s}` is out of range")
                } else {
                    format!("timestamp `{s}` is not RFC 3339 (e.g. 2026-11-24T15:04:05Z)")
                }
            })
        }
        Value::Number(n) => n
            .as_i64()
            .and_then(from_unix_ms)
            .ok_or_else(|| format!("timestamp {n} is not an integer of epoch milliseconds")),
        other => Err(format!("timestamp must be an RFC 3339 string or epoch milliseconds, not {}", json_kind(&other))),
    }
}

fn parse_http(map: &Map<String, Value>) -> Result<Http, String> {
    let method = match map.get("method") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
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

fn string_field(value: Option<Value>, name: &str) -> Result<Option<String>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => {
            Err(Rejection::new(RejectionKind::Invalid, format!("{name} must be a string, not {}", json_kind(&other))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_body(text: &str) -> Result<Batch, BodyError> {
        parse(BodyFormat::Json, text.as_bytes(), 1000)
    }

    #[test]
    fn a_batch_object_carries_a_default_env() {
        let batch = json_body(r#"{"env": "staging", "events": [{"message": "a"}, {"message": "b"}]}"#).expect("batch");
        assert_eq!(batch.env.as_deref(), Some("staging"));
        assert_eq!(batch.events, vec![json!({"message": "a"}), json!({"message": "b"})]);
    }

    #[test]
    fn a_bare_array_and_a_single_event_are_batches_too() {
        assert_eq!(json_body(r#"[{"message": "a"}]"#).expect("array").events.len(), 1);
        let single = json_body(r#"{"message": "a", "env": "dev"}"#).expect("single");
        assert_eq!(single, Batch { env: None, events: vec![json!({"message": "a", "env": "dev"})] });
    }

    #[test]
    fn ndjson_is_one_event_per_line_and_names_the_bad_line() {
        let batch = parse(BodyFormat::Ndjson, b"{\"message\":\"a\"}\n\n{\"message\":\"b\"}\n", 1000).expect("ndjson");
        assert_eq!(batch.events.len(), 2);
        let err = parse(BodyFormat::Ndjson, b"{\"message\":\"a\"}\n{oops\n", 1000).unwrap_err();
        assert!(matches!(&err, BodyError::Malformed(m) if m.starts_with("invalid JSON on line 2")), "{err}");
    }

    #[test]
    fn malformed_bodies_say_where_they_broke() {
        let err = json_body("{\"message\": \"a\",\n \"level\": }").unwrap_err();
        assert!(matches!(&err, BodyError::Malformed(m) if m.contains("line 2 column")), "{err}");
        let err = parse(BodyFormat::Json, b"{\"message\": \"\xff\"}", 1000).unwrap_err();
        assert_eq!(err, BodyError::Malformed("the body is not valid UTF-8 (at byte 13)".into()));
        assert!(matches!(json_body("42"), Err(BodyError::Malformed(_))));
        assert!(matches!(json_body(r#"{"events": {}}"#), Err(BodyError::Malformed(_))));
    }

    #[test]
    fn empty_bodies_and_too_many_events_are_refused() {
        assert_eq!(json_body(""), Err(BodyError::NoEvents));
        assert_eq!(json_body("[]"), Err(BodyError::NoEvents));
        assert_eq!(json_body(r#"{"events": []}"#), Err(BodyError::NoEvents));
        let err = parse(BodyFormat::Json, br#"[{"message":"a"},{"message":"b"}]"#, 1).unwrap_err();
        assert_eq!(err, BodyError::TooManyEvents { count: 2, max: 1 });
    }

    #[test]
    fn a_utf8_byte_order_mark_is_skipped() {
        let batch = parse(BodyFormat::Json, b"\xEF\xBB\xBF[{\"message\":\"a\"}]", 1000).expect("json");
        assert_eq!(batch.events, vec![json!({"message": "a"})]);
        let batch = parse(BodyFormat::Ndjson, b"\xEF\xBB\xBF{\"message\":\"a\"}\n", 1000).expect("ndjson");
        assert_eq!(batch.events.len(), 1);
        let err = parse(BodyFormat::Json, b"\xEF\xBB\xBF{\"message\": \"\xff\"}", 1000).unwrap_err();
        assert_eq!(err, BodyError::Malformed("the body is not valid UTF-8 (at byte 16)".into()));
    }

    #[test]
    fn content_types_map_to_formats() {
        assert_eq!(BodyFormat::from_content_type(Some("application/json; charset=utf-8")), Some(BodyFormat::Json));
        assert_eq!(BodyFormat::from_content_type(Some("text/plain;charset=UTF-8")), Some(BodyFormat::Json));
        assert_eq!(BodyFormat::from_content_type(Some("application/x-ndjson")), Some(BodyFormat::Ndjson));
        assert_eq!(BodyFormat::from_content_type(Some("application/x-www-form-urlencoded")), None);
    }

    /// What the body comes to the slow way: parsed whole, then each event decoded.
    fn parsed_then_decoded(format: BodyFormat, body: &[u8], max: usize) -> Result<Decoded, BodyError> {
        let batch = parse(format, body, max)?;
        Ok(Decoded { env: batch.env, drafts: batch.events.into_iter().map(decode).collect() })
    }

    /// Decodes `body` field by field (asserting that it is read that way), and checks that the
    /// parser decodes it alike.
    fn same_both_ways(format: BodyFormat, body: &str) -> Decoded {
        assert!(read_batch(format, body.as_bytes()).is_some(), "not read field by field: {body}");
        let fast = decode_body(format, body.as_bytes(), 1000);
        assert_eq!(fast, parsed_then_decoded(format, body.as_bytes(), 1000), "{body}");
        fast.expect("decoded")
    }

    #[test]
    fn a_batch_read_field_by_field_decodes_as_the_parsed_body() {
        let decoded = same_both_ways(
            BodyFormat::Json,
            r#"{"env": "prod", "events": [{"message": "a", "level": "warn", "mess\u0061ge": "b", "k": 1, "extra": {"k": 2}},
                {"message": " "}, {"message": "c", "http": {"status": "700"}}]}"#,
        );
        assert_eq!(decoded.env.as_deref(), Some("prod"));
        let first = decoded.drafts[0].as_ref().expect("first");
        // A key with an escape is still its field, and a later field of the same name wins.
        assert_eq!((first.message.as_str(), first.level), ("b", Level::Warn));
        assert_eq!(first.extra.get("k"), Some(&json!(2)), "extra's own value wins over a stray field");
        assert_eq!(decoded.drafts[1].as_ref().unwrap_err().kind, RejectionKind::Message);
        assert_eq!(decoded.drafts[2].as_ref().unwrap_err().kind, RejectionKind::Http);
        // Bodies the field reading leaves to the parser: a single event (even one starting with
        // `env`), a batch with another key or `events` twice, an element that is not an object.
        for body in [
            r#"{"env": "dev", "message": "single"}"#,
            r#"{"events": [{"message": "a"}], "source": "x"}"#,
            r#"{"events": [{"message": "a"}], "events": [{"message": "b"}, {"message": "c"}]}"#,
            r#"[{"message": "a"}, 42, {"message": "b"}]"#,
            r#"{"env": 5, "events": [{"message": "a"}]}"#,
            "  ",
        ] {
            assert!(read_batch(BodyFormat::Json, body.as_bytes()).is_none(), "{body}");
            assert_eq!(
                decode_body(BodyFormat::Json, body.as_bytes(), 1000),
                parsed_then_decoded(BodyFormat::Json, body.as_bytes(), 1000),
                "{body}"
            );
        }
        assert_eq!(decode_body(BodyFormat::Json, b"[]", 1000), Err(BodyError::NoEvents));
        let many = br#"[{"message": "a"}, {"message": "b"}]"#;
        assert_eq!(decode_body(BodyFormat::Json, many, 1), Err(BodyError::TooManyEvents { count: 2, max: 1 }));
        let deep = format!(r#"[{{"message": "deep", "extra": {}}}, {{"message": "flat"}}]"#, nested(MAX_DEPTH));
        let decoded = same_both_ways(BodyFormat::Json, &deep);
        assert_eq!(decoded.drafts[0].as_ref().unwrap_err().kind, RejectionKind::TooDeep);
        assert!(decoded.drafts[1].is_ok());
        same_both_ways(BodyFormat::Ndjson, "{\"message\":\"a\"}\n\n{\"message\":\"b\",\"level\":\"nope\"}\n");
    }

    fn nested(levels: usize) -> String {
        (0..levels).fold("1".to_string(), |inner, _| format!(r#"{{"a": {inner}}}"#))
    }

    mod generated {
        use super::*;
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;

        fn key() -> impl Strategy<Value = String> {
            let names = vec![
                "message",
                "level",
                "env",
                "timestamp",
                "type",
                "code",
                "http",
                "url",
                "location",
                "user",
                "stack",
                "release",
                "extra",
                "fingerprint",
                "method",
                "status",
                "events",
                "id",
                "a",
            ];
            prop_oneof![4 => prop::sample::select(names).prop_map(String::from), 1 => "[a-z]{1,3}"]
        }

        fn leaf() -> impl Strategy<Value = Value> {
            let texts = vec![
                "",
                " ",
                "error",
                "WARN",
                "fatal",
                "nope",
                "2026-12-07T10:00:00Z",
                "2026-13-07",
                "GET",
                "500",
                "99",
                "x\u{0}y",
                "\u{e9}t\u{e9}",
            ];
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                (100u64..700).prop_map(Value::from),
                Just(json!(1_765_000_000_000_i64)),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
                prop::sample::select(texts).prop_map(Value::from),
                "[a-z ]{0,6}".prop_map(Value::from),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(20, 96, 3, |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..3).prop_map(Value::Array),
                    btree_map(key(), inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Objects nested around the limit of [`MAX_DEPTH`].
        fn deep() -> impl Strategy<Value = Value> {
            (MAX_DEPTH - 3..MAX_DEPTH + 2).prop_map(|levels| serde_json::from_str(&nested(levels)).expect("json"))
        }

        fn event() -> impl Strategy<Value = Value> {
            let field = prop_oneof![8 => value(), 1 => deep()];
            prop_oneof![
                8 => btree_map(key(), field, 0..7).prop_map(|m| Value::Object(m.into_iter().collect())),
                1 => leaf(),
            ]
        }

        /// A body in each shape the endpoint takes, some with a stray key or a byte-order mark.
        fn body() -> impl Strategy<Value = (BodyFormat, String)> {
            (vec(event(), 0..5), 0..5u8, leaf(), any::<bool>()).prop_map(|(events, shape, env, bom)| {
                let text = match shape {
                    0 => Value::Array(events).to_string(),
                    1 => json!({"env": env, "events": events}).to_string(),
                    2 => json!({"events": events, "other": env}).to_string(),
                    3 => events.first().cloned().unwrap_or(Value::Null).to_string(),
                    _ => events.iter().map(Value::to_string).collect::<Vec<_>>().join("\n"),
                };
                let format = if shape == 4 { BodyFormat::Ndjson } else { BodyFormat::Json };
                (format, if bom { format!("\u{feff}{text}") } else { text })
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3_000))]

            #[test]
            fn any_body_decodes_as_when_parsed_whole((format, text) in body(), max in 1usize..6) {
                prop_assert_eq!(
                    decode_body(format, text.as_bytes(), max),
                    parsed_then_decoded(format, text.as_bytes(), max),
                    "{}", text
                );
            }
        }
    }
}
