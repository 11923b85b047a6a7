//! Lines somebody else wrote (a Lambda runtime, another service) read as events: level from the
//! line, an id derived from the line so the same line always has the same id, and text cleaned
//! like our own events before it is shown. Our own lines are our JSON and read back as stored.

use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use ulid::Ulid;

use crate::event::{Level, StoredEvent, from_unix_ms, strip_unsafe_chars, strip_unsafe_in_map};

/// One CloudWatch line as an event: our own JSON as it was stored, anything else read as text.
pub(super) fn read_line(project: &str, env: &str, raw: &FilteredLogEvent) -> Option<StoredEvent> {
    let ts = raw.timestamp()?;
    let message = raw.message().unwrap_or("");
    if let Ok(event) = serde_json::from_str::<StoredEvent>(message) {
        return Some(event);
    }
    let key = match raw.event_id() {
        Some(id) => format!("id\0{id}"),
        None => format!("line\0{}\0{ts}\0{message}", raw.log_stream_name().unwrap_or("")),
    };
    let received = raw.ingestion_time().unwrap_or(ts);
    Some(foreign_event(project, env, ts, received, &key, message))
}

/// Reads a line somebody else wrote (e.g. a Lambda runtime): level from a `[LEVEL]`/`LEVEL`
/// token or a JSON `level` field, default info; the id is derived from `key`.
fn foreign_event(project: &str, env: &str, ts: i64, received: i64, key: &str, line: &str) -> StoredEvent {
    let timestamp = from_unix_ms(ts).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut level = Level::Info;
    let mut message = line.trim_end().to_string();
    let mut extra = None;
    if let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(line) {
        if let Some(found) = fields.get("level").and_then(Value::as_str).and_then(|l| l.parse().ok()) {
            level = found;
        }
        if let Some(Value::String(text)) = fields.remove("message") {
            message = text;
        }
        extra = Some(fields).filter(|f: &Map<String, Value>| !f.is_empty());
    } else if let Some(found) = level_token(line) {
        level = found;
    }
    if message.is_empty() {
        message = line.to_string();
    }
    // Shown on the dashboard like our own events: no control or bidi characters.
    strip_unsafe_chars(&mut message);
    extra.iter_mut().for_each(strip_unsafe_in_map);
    let digest = Sha256::digest(key.as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let id = Ulid::from_parts(u64::try_from(ts).unwrap_or(0), u128::from_be_bytes(random));
    let times = (timestamp, from_unix_ms(received).unwrap_or(timestamp));
    StoredEvent { extra, ..StoredEvent::bare(id, (project, env), times, level, message) }
}

/// A level named near the start of a text line: `[ERROR]\t...` (Python on Lambda),
/// `2026-...\treqid\tERROR\t...` (Node on Lambda), `ERROR: ...`. Only bracketed or upper-case
/// words count, so a message starting with "error" in prose is not taken for a level.
fn level_token(line: &str) -> Option<Level> {
    let mut tokens: Vec<&str> = line.split('\t').take(4).collect();
    tokens.extend(line.split_whitespace().next());
    tokens.into_iter().find_map(|token| {
        let token = token.trim();
        let bracketed = token.starts_with('[') && token.ends_with(']');
        let word = token.trim_matches(|c| c == '[' || c == ']').trim_end_matches(':');
        if word.is_empty() || !(bracketed || word.chars().all(|c| c.is_ascii_uppercase())) {
            return None;
        }
        word.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_lambda_error_lines_are_errors() {
        let e = foreign_event(
            "demo",
            "production",
            1_000,
            1_001,
            "k",
            "[ERROR]\t2026-11-24T15:00:00.000Z\tabc\tpayment failed\n",
        );
        assert_eq!(e.level, Level::Error);
        assert_eq!(e.message, "[ERROR]\t2026-11-24T15:00:00.000Z\tabc\tpayment failed");
        assert_eq!((e.project.as_str(), e.env.as_str()), ("demo", "production"));
        assert_eq!(e.timestamp_ms(), 1_000);
    }

    #[test]
    fn foreign_lines_lose_control_and_bidi_characters_before_they_are_shown() {
        let line = "{\"level\":\"info\",\"message\":\"from \\u202e1.0.0.721\\u001b[2J\",\"ip\":\"\\u202e1.0.0.721\"}";
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", line);
        assert_eq!(e.message, "from 1.0.0.721[2J");
        assert_eq!(e.extra, serde_json::json!({"level": "info", "ip": "1.0.0.721"}).as_object().cloned());
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", "plain \u{202e}text\u{7}");
        assert_eq!(e.message, "plain text");
    }

    #[test]
    fn node_lambda_lines_name_the_level_in_the_third_field() {
        let e =
            foreign_event("demo", "production", 1_000, 1_000, "k", "2026-11-24T15:00:00.000Z\tabc\tWARN\tslow query");
        assert_eq!(e.level, Level::Warn);
    }

    #[test]
    fn lambda_platform_lines_are_info() {
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", "START RequestId: abc Version: $LATEST");
        assert_eq!(e.level, Level::Info);
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", "error in prose is not a level");
        assert_eq!(e.level, Level::Info);
    }

    #[test]
    fn lambda_json_lines_give_level_and_message() {
        let line = r#"{"timestamp":"2026-11-24T15:00:00Z","level":"ERROR","message":"boom","requestId":"abc"}"#;
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", line);
        assert_eq!(e.level, Level::Error);
        assert_eq!(e.message, "boom");
        assert_eq!(e.extra.as_ref().and_then(|x| x.get("requestId")), Some(&Value::from("abc")));
    }

    #[test]
    fn foreign_ids_are_deterministic_and_carry_the_line_time() {
        let a = foreign_event("demo", "production", 1_795_000_000_123, 0, "id\u{0}42", "x");
        let b = foreign_event("demo", "production", 1_795_000_000_123, 0, "id\u{0}42", "x");
        let c = foreign_event("demo", "production", 1_795_000_000_123, 0, "id\u{0}43", "x");
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        assert_eq!(a.id.timestamp_ms(), 1_795_000_000_123);
    }
}
