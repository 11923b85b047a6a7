//! Lines somebody else wrote (a Lambda runtime, another service) read as events: level and
//! fields from the line ([`lambda`]), an id derived from the line so the same line always has
//! the same id, text cleaned like our own events before it is shown, and errors fingerprinted as
//! ingest would. Our own lines are our JSON and read back as stored.

use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use ulid::Ulid;

use super::lambda;
use crate::event::{self, Level, StoredEvent, from_unix_ms, strip_unsafe_chars, strip_unsafe_in_map};

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

/// Reads a line somebody else wrote (e.g. a Lambda runtime) with [`lambda::parse`]; the id is
/// derived from `key`.
fn foreign_event(project: &str, env: &str, ts: i64, received: i64, key: &str, line: &str) -> StoredEvent {
    let timestamp = from_unix_ms(ts).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let lambda::Line { level, mut message, mut kind, mut stack, mut extra } = lambda::parse(line);
    if message.is_empty() {
        message = line.trim_end().to_string();
    }
    // Shown on the dashboard like our own events: no control or bidi characters.
    strip_unsafe_chars(&mut message);
    kind.iter_mut().chain(stack.iter_mut()).for_each(strip_unsafe_chars);
    strip_unsafe_in_map(&mut extra);
    let digest = Sha256::digest(key.as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let id = Ulid::from_parts(u64::try_from(ts).unwrap_or(0), u128::from_be_bytes(random));
    let times = (timestamp, from_unix_ms(received).unwrap_or(timestamp));
    // Computed as ingest computes it, on what is shown: the issue follower records Lambda errors
    // under this fingerprint and the issues page links to `q=fingerprint:F` on this group, so
    // the read path must arrive at the same one every time the line is read.
    let fingerprint = (level >= Level::Error).then(|| {
        event::fingerprint(kind.as_deref(), &message, (None, stack.as_deref(), &[]), extra.get("fingerprint"))
    });
    StoredEvent {
        kind,
        stack,
        fingerprint,
        extra: Some(extra).filter(|extra| !extra.is_empty()),
        ..StoredEvent::bare(id, (project, env), times, level, message)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_python_error_line_becomes_an_error_event_with_message_type_stack_and_request_id() {
        let line = "[ERROR]\t2026-11-24T15:00:00.000Z\t3f1c9a2e-5b7d-4e21-9c1a-0d2f6b8e4a17\tpayment failed\n\
                    Traceback (most recent call last):\n  File \"/var/task/app.py\", line 9, in handler\n    \
                    charge(order)\nKeyError: 'card'\n";
        let e = foreign_event("demo", "production", 1_000, 1_001, "k", line);
        assert_eq!((e.project.as_str(), e.env.as_str()), ("demo", "production"));
        assert_eq!((e.timestamp_ms(), crate::event::unix_ms(e.received_at)), (1_000, 1_001));
        assert_eq!(
            (e.level, e.message.as_str(), e.kind.as_deref()),
            (Level::Error, "payment failed", Some("KeyError"))
        );
        assert_eq!(
            e.stack.as_deref(),
            Some(
                "Traceback (most recent call last):\n  File \"/var/task/app.py\", line 9, in handler\n    \
                 charge(order)\nKeyError: 'card'"
            )
        );
        assert_eq!(e.extra, json!({"request_id": "3f1c9a2e-5b7d-4e21-9c1a-0d2f6b8e4a17"}).as_object().cloned());
    }

    #[test]
    fn foreign_lines_lose_control_and_bidi_characters_before_they_are_shown() {
        let line = "{\"level\":\"info\",\"message\":\"from \\u202e1.0.0.721\\u001b[2J\",\"ip\":\"\\u202e1.0.0.721\",\
                    \"errorType\":\"Bad\\u0007Error\",\"stackTrace\":[\"at \\u202ex\"]}";
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", line);
        assert_eq!(e.message, "from 1.0.0.721[2J");
        assert_eq!((e.kind.as_deref(), e.stack.as_deref()), (Some("BadError"), Some("at x")));
        assert_eq!(e.extra, json!({"ip": "1.0.0.721"}).as_object().cloned());
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", "plain \u{202e}text\u{7}");
        assert_eq!(e.message, "plain text");
    }

    #[test]
    fn a_line_whose_fields_give_no_message_shows_its_text_and_one_without_fields_no_extra() {
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", "{\"level\":\"warn\"}\n");
        assert_eq!((e.level, e.message.as_str(), e.extra.as_ref()), (Level::Warn, "{\"level\":\"warn\"}", None));
    }

    #[test]
    fn the_search_language_finds_lambda_lines_by_their_fields() {
        const GROUP: &str = "/aws/lambda/demo-api-orders";
        let (cold, warm) = ("0b3e6a6c-7f3e-4d0b-9a59-3b1f0c2e9d41", "c5a1f0e2-0d3b-4c8e-8f6a-2e9b7d1c4a33");
        let lines = [
            format!("START RequestId: {cold} Version: $LATEST"),
            format!(
                "[ERROR]\t2026-11-24T15:02:03.456Z\t{cold}\tcharge failed\nTraceback (most recent call last):\n  \
                     File \"/var/task/app.py\", line 3, in handler\nKeyError: 'card'"
            ),
            format!(
                "REPORT RequestId: {cold}\tDuration: 1532.27 ms\tBilled Duration: 1533 ms\tMemory Size: 128 MB\t\
                     Max Memory Used: 71 MB\tInit Duration: 245.12 ms\t"
            ),
            format!(
                "REPORT RequestId: {warm}\tDuration: 12.5 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t\
                     Max Memory Used: 72 MB\t"
            ),
            format!("2026-11-24T15:02:06.459Z {warm} Task timed out after 3.00 seconds"),
        ];
        let events: Vec<StoredEvent> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| foreign_event("demo", "production", 1_000 + i as i64, 1_000, &format!("{i}"), line))
            .collect();
        let found = |query: &str| -> Vec<usize> {
            let query = crate::search::Query::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
            (0..events.len()).filter(|&i| query.matches(&events[i], GROUP)).collect()
        };
        assert_eq!(found(&format!("extra.request_id:{cold}")), [0, 1, 2]);
        assert_eq!(found("extra.duration_ms:>1000"), [2]);
        assert_eq!(found("has:extra.init_duration_ms"), [2]);
        assert_eq!(found("type:lambda.report extra.max_memory_used_mb:>=72"), [3]);
        assert_eq!(found("level:error"), [1, 4]);
        assert_eq!(found("type:KeyError stack:*app.py*"), [1]);
        assert_eq!(found("type:lambda.timeout"), [4]);
    }

    #[test]
    fn lambda_errors_get_a_fingerprint_shared_by_repeats_and_other_lines_none() {
        let python = |order: u32, request: &str, exception: &str| {
            format!(
                "[ERROR]\t2026-11-24T15:00:00.000Z\t{request}\tcharge {order} failed\nTraceback (most recent call last):\n  \
                 File \"/var/task/app.py\", line {order}, in handler\n    charge(order)\n{exception}: 'card'\n"
            )
        };
        let read = |line: &str| foreign_event("demo", "production", 1_000, 1_000, line, line).fingerprint;
        let first = read(&python(17, "3f1c9a2e-5b7d-4e21-9c1a-0d2f6b8e4a17", "KeyError"));
        assert!(first.is_some());
        assert_eq!(first, read(&python(90_210, "c5a1f0e2-0d3b-4c8e-8f6a-2e9b7d1c4a33", "KeyError")), "a repeat");
        assert_ne!(first, read(&python(17, "3f1c9a2e-5b7d-4e21-9c1a-0d2f6b8e4a17", "ValueError")), "another error");
        assert_eq!(read("START RequestId: 3f1c9a2e-5b7d-4e21-9c1a-0d2f6b8e4a17 Version: $LATEST"), None);
        let node = |n: u32| {
            format!(
                "2026-11-24T15:00:00.000Z\tabc\tERROR\tTypeError: x{n} is undefined\n    at handler (/var/task/index.js:{n}:5)"
            )
        };
        assert_eq!(read(&node(3)), read(&node(41)));
        assert!(read(&node(3)).is_some());
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
