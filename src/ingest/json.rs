//! Our own format, `POST /api/v1/events`: a body is a batch object, a bare array, a single event,
//! or NDJSON ([`parse`]), and each event one JSON object ([`decode`] makes it a [`Draft`]: fields
//! typed, unknown fields kept under `extra`). What every format shares (environment, time window,
//! cleaning, fingerprint, size) is the ingest policy's.

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

/// Deepest nesting of objects and arrays in one event (security.md).
const MAX_DEPTH: usize = 16;

/// One event object as a draft, or the reason it is refused.
pub fn decode(raw: Value) -> Result<Draft, Rejection> {
    if depth(&raw) > MAX_DEPTH {
        return Err(Rejection::new(
            RejectionKind::TooDeep,
            format!("the event is nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let Value::Object(mut fields) = raw else {
        return Err(Rejection::new(
            RejectionKind::NotAnObject,
            format!("an event must be a JSON object, not {}", json_kind(&raw)),
        ));
    };
    let message = match fields.remove("message") {
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
    let level = match fields.remove("level") {
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
    let env = match fields.remove("env") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(Rejection::new(RejectionKind::Env, format!("env must be a string, not {}", json_kind(&other))));
        }
    };
    let timestamp = match fields.remove("timestamp") {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_timestamp(value).map_err(|why| Rejection::new(RejectionKind::Timestamp, why))?),
    };
    let kind = take_string(&mut fields, "type").map_err(|why| Rejection::new(RejectionKind::Invalid, why))?;
    let code = match fields.remove("code") {
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
    let http = match fields.remove("http") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(parse_http(&map).map_err(|why| Rejection::new(RejectionKind::Http, why))?),
        Some(other) => {
            return Err(Rejection::new(
                RejectionKind::Http,
                format!("http must be an object, not {}", json_kind(&other)),
            ));
        }
    };
    let url = take_string(&mut fields, "url").map_err(|why| Rejection::new(RejectionKind::Invalid, why))?;
    let location = take_string(&mut fields, "location").map_err(|why| Rejection::new(RejectionKind::Invalid, why))?;
    let user = match fields.remove("user") {
        None | Some(Value::Null) => None,
        Some(value @ (Value::String(_) | Value::Object(_))) => Some(value),
        Some(other) => {
            return Err(Rejection::new(
                RejectionKind::User,
                format!("user must be a string or object, not {}", json_kind(&other)),
            ));
        }
    };
    let stack = take_string(&mut fields, "stack").map_err(|why| Rejection::new(RejectionKind::Invalid, why))?;
    let release = take_string(&mut fields, "release").map_err(|why| Rejection::new(RejectionKind::Invalid, why))?;
    let mut extra = match fields.remove("extra") {
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
    // Fields we do not know (or that the server sets itself) are kept, not lost: they go to `extra`.
    for (key, value) in fields {
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

fn take_string(fields: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key} must be a string, not {}", json_kind(&other))),
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
}
