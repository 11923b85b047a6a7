//! Sentry's wire format, as the SDKs send it to `/api/{id}/envelope/` and `/api/{id}/store/`
//! (protocols.md): an envelope is a header line and items, each a header line and a payload of
//! `length` bytes or up to the next newline. [`decode_envelope`] turns `event` items and the
//! `log` items of Sentry Logs into [`Draft`]s, counts `client_report`s, and skips every other
//! item without losing the ones after it; [`decode_store`] reads `/store/`'s single event.
//!
//! Pure: no HTTP, no project. The ingest policy settles the drafts like any other.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::attributes::insert_dotted;
use crate::event::{Draft, Http, Level, Rejection, RejectionKind, StackFrame, json_kind};

/// The breadcrumbs kept of an event: the last ones.
const MAX_BREADCRUMBS: usize = 100;
/// Source map debug ids kept of one event's `debug_meta.images`.
const MAX_DEBUG_IDS: usize = 50;

/// What one envelope (or `/store/` body) came to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The envelope's (or its event's) `event_id`: what the SDK is answered.
    pub event_id: Option<String>,
    /// The ingest key of the envelope header's `dsn`, for SDKs that send it only there.
    pub dsn_key: Option<String>,
    /// One per event and per log record, in the order they came.
    pub drafts: Vec<Result<Draft, Rejection>>,
    /// What the SDK reported it dropped itself (`client_report` items).
    pub discarded: Vec<Discarded>,
    /// The types of the items skipped.
    pub skipped: Vec<String>,
}

/// One line of a `client_report`: `quantity` items of `category` dropped for `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    pub reason: String,
    pub category: String,
    pub quantity: u64,
}

/// The body is not an envelope (or not an event): nothing of it is kept.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// Reads an envelope: its header, then every item.
pub fn decode_envelope(body: &[u8]) -> Result<Decoded, Malformed> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Malformed("the envelope is empty".into()));
    }
    let (header, mut rest) = split_line(body);
    let header = json_object(header, "the envelope header")?;
    let mut decoded = Decoded {
        event_id: header.get("event_id").and_then(Value::as_str).map(str::to_string),
        dsn_key: header.get("dsn").and_then(Value::as_str).and_then(dsn_key),
        ..Decoded::default()
    };
    let mut number = 0;
    while !rest.is_empty() {
        let (line, after_header) = split_line(rest);
        if line.iter().all(u8::is_ascii_whitespace) {
            rest = after_header;
            continue;
        }
        number += 1;
        let item = json_object(line, &format!("the header of item {number}"))?;
        let kind = match item.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            _ => return Err(Malformed(format!("the header of item {number} has no `type`"))),
        };
        let payload;
        (payload, rest) = match item.get("length") {
            None | Some(Value::Null) => split_line(after_header),
            Some(length) => {
                let length = length
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| Malformed(format!("item {number}: `length` must be a whole number")))?;
                if length > after_header.len() {
                    return Err(Malformed(format!(
                        "item {number}: its length {length} runs past the end of the envelope ({} bytes left)",
                        after_header.len()
                    )));
                }
                let (payload, tail) = after_header.split_at(length);
                (payload, tail.strip_prefix(b"\n").unwrap_or(tail))
            }
        };
        match kind {
            "event" => {
                let event = json_object(payload, &format!("item {number} (event)"))?;
                if decoded.event_id.is_none() {
                    decoded.event_id = event.get("event_id").and_then(Value::as_str).map(str::to_string);
                }
                decoded.drafts.push(decode_event(event));
            }
            "log" => {
                let mut logs = json_object(payload, &format!("item {number} (log)"))?;
                match logs.remove("items") {
                    Some(Value::Array(items)) => decoded.drafts.extend(items.into_iter().map(decode_log)),
                    _ => return Err(Malformed(format!("item {number} (log) has no `items` array"))),
                }
            }
            // A report the SDK could not write is no reason to lose the events beside it.
            "client_report" => decoded.discarded.extend(client_report(payload)),
            other => decoded.skipped.push(other.to_string()),
        }
    }
    Ok(decoded)
}

/// Reads `/store/`'s body: one event object.
pub fn decode_store(body: &[u8]) -> Result<Decoded, Malformed> {
    let event = json_object(body, "the body")?;
    Ok(Decoded {
        event_id: event.get("event_id").and_then(Value::as_str).map(str::to_string),
        drafts: vec![decode_event(event)],
        ..Decoded::default()
    })
}

/// The key of a DSN (`https://<key>@host/<id>`).
pub fn dsn_key(dsn: &str) -> Option<String> {
    let url = url::Url::parse(dsn).ok()?;
    Some(url.username().to_string()).filter(|key| !key.is_empty())
}

/// The line up to the next newline (without it), and what follows it.
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'\n', bytes) {
        Some(end) => (&bytes[..end], &bytes[end + 1..]),
        None => (bytes, &[]),
    }
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, Malformed> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Malformed(format!("{what} must be a JSON object, not {}", json_kind(&other)))),
        Err(e) => Err(Malformed(format!("{what} is not valid JSON: {e}"))),
    }
}

fn client_report(payload: &[u8]) -> Vec<Discarded> {
    let Ok(Value::Object(report)) = serde_json::from_slice::<Value>(payload) else { return Vec::new() };
    let Some(Value::Array(lines)) = report.get("discarded_events") else { return Vec::new() };
    lines
        .iter()
        .filter_map(|line| {
            Some(Discarded {
                reason: line.get("reason")?.as_str()?.to_string(),
                category: line.get("category")?.as_str()?.to_string(),
                quantity: line.get("quantity")?.as_u64()?,
            })
        })
        .collect()
}

/// One Sentry event as a draft.
pub fn decode_event(mut event: Map<String, Value>) -> Result<Draft, Rejection> {
    let level = match event.remove("level") {
        Some(Value::String(level)) => level.parse().unwrap_or(Level::Error),
        _ => Level::Error,
    };
    let timestamp = match event.remove("timestamp") {
        None | Some(Value::Null) => None,
        Some(value) => Some(timestamp(&value).map_err(|why| Rejection::new(RejectionKind::Timestamp, why))?),
    };
    let exception = last_exception(event.remove("exception"));
    let (kind, exception_message) = match exception.as_ref().and_then(|e| text(e.get("type"))) {
        Some(kind) => {
            let message = match text(exception.as_ref().and_then(|e| e.get("value"))) {
                Some(value) => format!("{kind}: {value}"),
                None => kind.clone(),
            };
            (kind, Some(message))
        }
        // The JavaScript SDK's `captureMessage` sends a stack as an exception without a type.
        None => ("message".to_string(), None),
    };
    let logentry = event.remove("logentry");
    let message = exception_message
        .or_else(|| logentry.as_ref().and_then(entry_text))
        .or_else(|| event.get("message").and_then(entry_text))
        .unwrap_or_else(|| "<no message>".to_string());
    event.remove("message");
    let frames = exception.as_ref().and_then(|e| e.get("stacktrace")).map(frames).unwrap_or_default();
    let stack = stack_text(&frames);
    let request = event.remove("request");
    let url = text(request.as_ref().and_then(|r| r.get("url")));
    let http =
        text(request.as_ref().and_then(|r| r.get("method"))).map(|method| Http { method: Some(method), status: None });
    let user = event
        .remove("user")
        .and_then(|user| ["id", "username", "email"].iter().find_map(|field| text(user.get(field))).map(Value::String));
    let fingerprint = match event.remove("fingerprint") {
        Some(Value::Array(parts)) if parts.iter().all(Value::is_string) => Some(Value::Array(parts)),
        _ => None,
    };
    let mut extra = Map::new();
    for field in ["event_id", "tags", "contexts", "logger", "platform", "server_name", "transaction", "dist"] {
        if let Some(value) = event.remove(field).filter(|v| !v.is_null()) {
            extra.insert(field.to_string(), value);
        }
    }
    if let Some(breadcrumbs) = breadcrumbs(event.remove("breadcrumbs")) {
        extra.insert("breadcrumbs".into(), breadcrumbs);
    }
    if let Some(Value::Object(sdk)) = event.remove("sdk") {
        let sdk: Map<String, Value> =
            sdk.into_iter().filter(|(field, _)| field == "name" || field == "version").collect();
        extra.insert("sdk".into(), Value::Object(sdk));
    }
    if let Some(ids) = debug_ids(event.remove("debug_meta")) {
        extra.insert(crate::sourcemaps::DEBUG_IDS_FIELD.into(), ids);
    }
    // The event's own `extra` (`set_extra`) is the same idea as ours: its fields go beside.
    if let Some(Value::Object(own)) = event.remove("extra") {
        for (field, value) in own {
            extra.entry(field).or_insert(value);
        }
    }
    Ok(Draft {
        env: text(event.get("environment")),
        timestamp,
        level,
        message,
        kind: Some(kind),
        http,
        url,
        user,
        stack,
        frames,
        release: text(event.get("release")),
        extra,
        fingerprint,
        ..Draft::default()
    })
}

/// One record of Sentry Logs (`{"items": [...]}` of a `log` item) as a draft.
fn decode_log(record: Value) -> Result<Draft, Rejection> {
    let Value::Object(mut record) = record else {
        return Err(Rejection::new(
            RejectionKind::NotAnObject,
            format!("a log record must be a JSON object, not {}", json_kind(&record)),
        ));
    };
    let message = match record.remove("body") {
        Some(Value::String(body)) => body,
        Some(other) => other.to_string(),
        None => return Err(Rejection::new(RejectionKind::Message, "the log record has no body")),
    };
    let level = match record.get("level") {
        Some(Value::String(level)) => level.parse().unwrap_or(Level::Info),
        _ => Level::Info,
    };
    let timestamp = match record.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(value) => Some(timestamp(value).map_err(|why| Rejection::new(RejectionKind::Timestamp, why))?),
    };
    let mut extra = Map::new();
    let (mut env, mut release) = (None, None);
    if let Some(Value::Object(attributes)) = record.remove("attributes") {
        for (name, attribute) in attributes {
            // Sentry's typed attributes (`{"value": …, "type": …}`) give their value; others themselves.
            let value = match attribute {
                Value::Object(mut typed) if typed.contains_key("value") => typed.remove("value").unwrap_or(Value::Null),
                other => other,
            };
            match name.as_str() {
                "sentry.environment" => env = value.as_str().map(str::to_string),
                "sentry.release" => release = value.as_str().map(str::to_string),
                _ => insert_dotted(&mut extra, &name, value),
            }
        }
    }
    if let Some(trace_id) = text(record.get("trace_id")) {
        extra.insert("trace_id".into(), Value::String(trace_id.to_ascii_lowercase()));
    }
    Ok(Draft { env, timestamp, level, message, release, extra, ..Draft::default() })
}

/// The exception that was raised: the last of `exception.values` (earlier ones are its causes).
fn last_exception(exception: Option<Value>) -> Option<Value> {
    let values = match exception? {
        Value::Object(mut exception) => exception.remove("values")?,
        list @ Value::Array(_) => list,
        _ => return None,
    };
    match values {
        Value::Array(mut values) => values.pop(),
        _ => None,
    }
}

/// A `logentry` or `message`: a string, or an object with `formatted` or `message`.
fn entry_text(entry: &Value) -> Option<String> {
    match entry {
        Value::String(text) => Some(text.clone()).filter(|t| !t.trim().is_empty()),
        Value::Object(entry) => text(entry.get("formatted")).or_else(|| text(entry.get("message"))),
        _ => None,
    }
}

/// A non-blank string, or a number as text.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.trim().is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Float seconds since the epoch, or RFC 3339 (Sentry also sends it without an offset: UTC).
fn timestamp(value: &Value) -> Result<OffsetDateTime, String> {
    match value {
        Value::Number(seconds) => seconds
            .as_f64()
            .filter(|s| s.is_finite() && (0.0..1e11).contains(s))
            // Microseconds first: a float's nanoseconds are noise (`.25` would read as `.249999`).
            .and_then(|s| OffsetDateTime::from_unix_timestamp_nanos((s * 1e6).round() as i128 * 1000).ok())
            .ok_or_else(|| format!("timestamp {seconds} is not a time in seconds since the epoch")),
        Value::String(text) => OffsetDateTime::parse(text, &Rfc3339)
            .or_else(|_| OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
            .map_err(|_| format!("timestamp `{text}` is not RFC 3339")),
        other => Err(format!("timestamp must be a number or a string, not {}", json_kind(other))),
    }
}

/// A stacktrace's frames, innermost first (Sentry sends them outermost first).
fn frames(stacktrace: &Value) -> Vec<StackFrame> {
    let Some(Value::Array(frames)) = stacktrace.get("frames") else { return Vec::new() };
    frames
        .iter()
        .rev()
        .filter(|frame| frame.is_object())
        .map(|frame| StackFrame {
            function: text(frame.get("function")),
            file: text(frame.get("filename")).or_else(|| text(frame.get("abs_path"))),
            line: frame.get("lineno").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
            column: frame.get("colno").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
            in_app: frame.get("in_app").and_then(Value::as_bool),
        })
        .collect()
}

/// The frames as text, one `at <function> (<file>:<line>:<column>)` per line, innermost first.
fn stack_text(frames: &[StackFrame]) -> Option<String> {
    let lines: Vec<String> = frames
        .iter()
        .map(|frame| {
            let mut place = frame.file.clone().unwrap_or_else(|| "?".into());
            for number in [frame.line, frame.column.filter(|_| frame.line.is_some())].into_iter().flatten() {
                place.push_str(&format!(":{number}"));
            }
            match &frame.function {
                Some(function) => format!("at {function} ({place})"),
                None => format!("at {place}"),
            }
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The source maps' debug ids of `debug_meta.images` (`{"type": "sourcemap", "code_file",
/// "debug_id"}`) as `{code_file: debug_id}`, which the read side matches frames by first.
fn debug_ids(debug_meta: Option<Value>) -> Option<Value> {
    let images = debug_meta?.get_mut("images")?.take();
    let ids: Map<String, Value> = images
        .as_array()?
        .iter()
        .filter(|image| image.get("type").and_then(Value::as_str) == Some("sourcemap"))
        .filter_map(|image| Some((text(image.get("code_file"))?, Value::String(text(image.get("debug_id"))?))))
        .take(MAX_DEBUG_IDS)
        .collect();
    (!ids.is_empty()).then_some(Value::Object(ids))
}

/// The last breadcrumbs (`{"values": [...]}` or a bare list).
fn breadcrumbs(breadcrumbs: Option<Value>) -> Option<Value> {
    let mut list = match breadcrumbs? {
        Value::Object(mut crumbs) => match crumbs.remove("values")? {
            Value::Array(list) => list,
            _ => return None,
        },
        Value::Array(list) => list,
        _ => return None,
    };
    if list.is_empty() {
        return None;
    }
    let skip = list.len().saturating_sub(MAX_BREADCRUMBS);
    Some(Value::Array(list.drain(skip..).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(lines: &[&str]) -> Vec<u8> {
        lines.join("\n").into_bytes()
    }

    fn drafts(decoded: Decoded) -> Vec<Draft> {
        decoded.drafts.into_iter().map(|d| d.expect("draft")).collect()
    }

    #[test]
    fn items_with_and_without_length_and_unknown_items_between_them_are_all_read() {
        let event = r#"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","message":"first","level":"warning"}"#;
        let body = format!(
            "{{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://key_1@logs.example.com/3\"}}\n\
             {{\"type\":\"event\",\"length\":{}}}\n{event}\n\
             {{\"type\":\"attachment\",\"length\":10,\"filename\":\"a.txt\"}}\n\n\n\n\n\n\n\n\n\n\n\
             {{\"type\":\"some_future_item\"}}\n{{\"not\": \"read\"\n\
             {{\"type\":\"event\"}}\n{{\"message\":\"second\"}}\n",
            event.len()
        );
        let decoded = decode_envelope(body.as_bytes()).expect("envelope");
        assert_eq!(decoded.event_id.as_deref(), Some("9ec79c33ec9942ab8353589fcb2e04dc"));
        assert_eq!(decoded.dsn_key.as_deref(), Some("key_1"));
        assert_eq!(decoded.skipped, vec!["attachment", "some_future_item"]);
        let drafts = drafts(decoded);
        assert_eq!(drafts.iter().map(|d| d.message.as_str()).collect::<Vec<_>>(), ["first", "second"]);
        assert_eq!((drafts[0].level, drafts[1].level), (Level::Warn, Level::Error));
        assert_eq!(drafts[1].kind.as_deref(), Some("message"));
    }

    #[test]
    fn a_payload_without_a_final_newline_ends_the_envelope() {
        let decoded =
            decode_envelope(&envelope(&["{}", r#"{"type":"event"}"#, r#"{"message":"last"}"#])).expect("envelope");
        assert_eq!(drafts(decoded)[0].message, "last");
        let header_only = decode_envelope(b"{\"event_id\":\"x\"}").expect("no items");
        assert!(header_only.drafts.is_empty());
    }

    #[test]
    fn malformed_envelopes_say_what_is_wrong() {
        let error = |body: &[u8]| decode_envelope(body).map(|_| ()).unwrap_err().0;
        assert_eq!(error(b""), "the envelope is empty");
        assert!(error(b"not json\n").starts_with("the envelope header is not valid JSON"), "{}", error(b"x"));
        assert_eq!(error(b"[]\n"), "the envelope header must be a JSON object, not an array");
        assert_eq!(error(b"{}\n{\"length\":2}\n{}"), "the header of item 1 has no `type`");
        assert_eq!(
            error(b"{}\n{\"type\":\"event\",\"length\":200}\n{}"),
            "item 1: its length 200 runs past the end of the envelope (2 bytes left)"
        );
        assert_eq!(error(b"{}\n{\"type\":\"event\",\"length\":-1}\n{}"), "item 1: `length` must be a whole number");
        assert!(error(b"{}\n{\"type\":\"event\"}\n{oops}").starts_with("item 1 (event) is not valid JSON"));
        assert_eq!(error(b"{}\n{\"type\":\"log\"}\n{}"), "item 1 (log) has no `items` array");
    }

    #[test]
    fn an_exception_makes_message_type_and_stack_with_in_app_frames() {
        let event = json!({
            "level": "error",
            "exception": {"values": [
                {"type": "KeyError", "value": "'cause'"},
                {"type": "ValueError", "value": "bad order 42", "stacktrace": {"frames": [
                    {"function": "handler", "filename": "app.py", "lineno": 10, "in_app": true},
                    {"function": "get", "abs_path": "/usr/lib/python3/lib.py", "lineno": 3, "colno": 7, "in_app": false},
                ]}},
            ]},
            "logentry": {"message": "not this"},
            "user": {"username": "ann", "email": "ann@example.com"},
            "request": {"url": "https://shop.example.com/cart", "method": "POST"},
            "tags": {"shop": "eu"},
            "sdk": {"name": "sentry.python", "version": "2.0.0", "packages": []},
            "extra": {"order": 42},
            "fingerprint": ["{{ default }}", "orders"],
            "environment": "staging",
            "release": "shop@1.2.3",
            "timestamp": 1_764_000_000.25,
        });
        let Value::Object(event) = event else { unreachable!() };
        let draft = decode_event(event).expect("draft");
        assert_eq!(draft.message, "ValueError: bad order 42");
        assert_eq!(draft.kind.as_deref(), Some("ValueError"));
        assert_eq!(draft.stack.as_deref(), Some("at get (/usr/lib/python3/lib.py:3:7)\nat handler (app.py:10)"));
        assert_eq!(draft.frames[1].in_app, Some(true));
        assert_eq!(draft.frames[1].function.as_deref(), Some("handler"));
        assert_eq!(draft.user, Some(json!("ann")));
        assert_eq!(draft.url.as_deref(), Some("https://shop.example.com/cart"));
        assert_eq!(draft.http.and_then(|h| h.method).as_deref(), Some("POST"));
        assert_eq!(draft.env.as_deref(), Some("staging"));
        assert_eq!(draft.release.as_deref(), Some("shop@1.2.3"));
        assert_eq!(draft.fingerprint, Some(json!(["{{ default }}", "orders"])));
        assert_eq!(draft.timestamp.map(|t| t.unix_timestamp_nanos() / 1_000_000), Some(1_764_000_000_250));
        assert_eq!(
            Value::Object(draft.extra),
            json!({"tags": {"shop": "eu"}, "sdk": {"name": "sentry.python", "version": "2.0.0"}, "order": 42})
        );
    }

    #[test]
    fn messages_come_from_logentry_then_message_and_an_untyped_exception_does_not_make_one() {
        let decode = |event: Value| match event {
            Value::Object(event) => decode_event(event).expect("draft"),
            _ => unreachable!(),
        };
        assert_eq!(decode(json!({"logentry": {"message": "x %s", "formatted": "x 1"}})).message, "x 1");
        assert_eq!(decode(json!({"logentry": {"message": "x %s"}})).message, "x %s");
        let synthetic = decode(json!({
            "message": "hello from js",
            "level": "info",
            "exception": {"values": [{"value": "hello from js", "mechanism": {"synthetic": true},
                "stacktrace": {"frames": [{"filename": "https://app.example.com/app.js", "function": "main", "lineno": 5, "colno": 9}]}}]},
        }));
        assert_eq!(synthetic.message, "hello from js");
        assert_eq!(synthetic.kind.as_deref(), Some("message"));
        assert_eq!(synthetic.level, Level::Info);
        assert_eq!(synthetic.stack.as_deref(), Some("at main (https://app.example.com/app.js:5:9)"));
        assert_eq!(decode(json!({"message": {"formatted": "obj"}})).message, "obj");
        assert_eq!(decode(json!({})).message, "<no message>");
    }

    #[test]
    fn source_map_debug_ids_are_kept_by_minified_file() {
        let draft = drafts(decode_store(br#"{"message": "x", "debug_meta": {"images": [
            {"type": "sourcemap", "code_file": "https://shop.example/assets/app.js", "debug_id": "c1ab7c7e-1ad8-4b6a-9a36-c0ae1f5b2e34"},
            {"type": "macho", "code_file": "/usr/lib/x", "debug_id": "ignored"},
            {"type": "sourcemap", "code_file": "https://shop.example/b.js"}]}}"#).expect("event"))
        .remove(0);
        assert_eq!(
            draft.extra[crate::sourcemaps::DEBUG_IDS_FIELD],
            json!({"https://shop.example/assets/app.js": "c1ab7c7e-1ad8-4b6a-9a36-c0ae1f5b2e34"})
        );
    }

    #[test]
    fn the_last_hundred_breadcrumbs_are_kept() {
        let crumbs: Vec<Value> = (0..150).map(|i| json!({"message": i})).collect();
        let Value::Object(event) = json!({"message": "m", "breadcrumbs": {"values": crumbs}}) else { unreachable!() };
        let draft = decode_event(event).expect("draft");
        let kept = draft.extra["breadcrumbs"].as_array().expect("list");
        assert_eq!((kept.len(), &kept[0]["message"]), (100, &json!(50)));
    }

    #[test]
    fn a_bad_timestamp_refuses_the_event_only() {
        let body = envelope(&[
            "{}",
            r#"{"type":"event"}"#,
            r#"{"message":"bad","timestamp":"yesterday"}"#,
            r#"{"type":"event"}"#,
            r#"{"message":"good","timestamp":"2026-11-24T15:00:00"}"#,
        ]);
        let decoded = decode_envelope(&body).expect("envelope");
        assert_eq!(decoded.drafts[0].as_ref().unwrap_err().kind, RejectionKind::Timestamp);
        let good = decoded.drafts[1].as_ref().expect("good");
        assert_eq!(good.timestamp.map(|t| t.unix_timestamp()), Some(1_795_532_400));
    }

    #[test]
    fn log_items_become_one_draft_per_record_with_attributes_nested_in_extra() {
        let logs = json!({"items": [
            {"timestamp": 1_764_000_000.5, "level": "trace", "body": "cache miss", "trace_id": "5B8EFFF798038103D269B633813FC60C",
             "attributes": {
                "sentry.environment": {"value": "dev", "type": "string"},
                "sentry.release": {"value": "api@2", "type": "string"},
                "code.file.path": {"value": "app.py", "type": "string"},
                "code.line.number": {"value": 12, "type": "integer"},
                "plain": "as is",
             }},
            {"level": "warn", "body": "slow"},
            {"level": "info"},
        ]})
        .to_string();
        let body = envelope(&["{}", &format!("{{\"type\":\"log\",\"length\":{}}}", logs.len()), &logs]);
        let decoded = decode_envelope(&body).expect("envelope");
        assert_eq!(decoded.event_id, None);
        let first = decoded.drafts[0].as_ref().expect("first");
        assert_eq!((first.level, first.message.as_str()), (Level::Debug, "cache miss"));
        assert_eq!((first.env.as_deref(), first.release.as_deref()), (Some("dev"), Some("api@2")));
        assert_eq!(
            Value::Object(first.extra.clone()),
            json!({"code": {"file": {"path": "app.py"}, "line": {"number": 12}}, "plain": "as is",
                   "trace_id": "5b8efff798038103d269b633813fc60c"})
        );
        assert_eq!(decoded.drafts[1].as_ref().map(|d| d.level), Ok(Level::Warn));
        assert_eq!(decoded.drafts[2].as_ref().map(|_| ()).unwrap_err().kind, RejectionKind::Message);
    }

    #[test]
    fn client_reports_are_read_and_a_broken_one_is_ignored() {
        let report = r#"{"timestamp":1,"discarded_events":[{"reason":"queue_overflow","category":"error","quantity":3},{"reason":"x"}]}"#;
        let body = envelope(&["{}", r#"{"type":"client_report"}"#, report, r#"{"type":"client_report"}"#, "{oops"]);
        let decoded = decode_envelope(&body).expect("envelope");
        assert_eq!(
            decoded.discarded,
            vec![Discarded { reason: "queue_overflow".into(), category: "error".into(), quantity: 3 }]
        );
    }

    #[test]
    fn store_bodies_are_one_event() {
        let decoded = decode_store(br#"{"event_id":"abc","message":"stored"}"#).expect("store");
        assert_eq!(decoded.event_id.as_deref(), Some("abc"));
        assert_eq!(drafts(decoded)[0].message, "stored");
        assert!(decode_store(b"[1]").is_err());
    }
}
