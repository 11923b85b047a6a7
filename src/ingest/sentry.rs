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
            "log" => match logs::decode(payload) {
                Some(drafts) => decoded.drafts.extend(drafts),
                // Not the usual shape: read again as a JSON value, which says what is wrong.
                None => {
                    let mut logs = json_object(payload, &format!("item {number} (log)"))?;
                    match logs.remove("items") {
                        Some(Value::Array(items)) => decoded.drafts.extend(items.into_iter().map(decode_log)),
                        _ => return Err(Malformed(format!("item {number} (log) has no `items` array"))),
                    }
                }
            },
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
///
/// [`logs::decode`] reads the same records straight from the bytes; this is the reference it is
/// tested against, and what reads a payload that is not the usual shape.
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
    let attributes = match record.remove("attributes") {
        Some(Value::Object(attributes)) => attributes
            .into_iter()
            .map(|(name, attribute)| {
                // Sentry's typed attributes (`{"value": …, "type": …}`) give their value; others themselves.
                let value = match attribute {
                    Value::Object(mut typed) if typed.contains_key("value") => {
                        typed.remove("value").unwrap_or(Value::Null)
                    }
                    other => other,
                };
                (name, value)
            })
            .collect(),
        _ => Vec::new(),
    };
    let trace_id = text(record.get("trace_id"));
    Ok(log_draft(LogFields { timestamp, level, message, attributes, trace_id: trace_id.as_deref() }))
}

/// What a log record gives its draft, however it was read.
struct LogFields<'a, N> {
    timestamp: Option<OffsetDateTime>,
    level: Level,
    message: String,
    /// The attributes' names and values (a typed attribute's `value`), in the order of their
    /// names (as a JSON object's, a name once).
    attributes: Vec<(N, Value)>,
    /// The non-blank `trace_id`.
    trace_id: Option<&'a str>,
}

fn log_draft<N: AsRef<str>>(fields: LogFields<'_, N>) -> Draft {
    let LogFields { timestamp, level, message, attributes, trace_id } = fields;
    let mut extra = Map::new();
    let (mut env, mut release) = (None, None);
    for (name, value) in attributes {
        match name.as_ref() {
            "sentry.environment" => env = value.as_str().map(str::to_string),
            "sentry.release" => release = value.as_str().map(str::to_string),
            name => insert_dotted(&mut extra, name, value),
        }
    }
    if let Some(trace_id) = trace_id {
        extra.insert("trace_id".into(), Value::String(trace_id.to_ascii_lowercase()));
    }
    Draft { env, timestamp, level, message, release, extra, ..Draft::default() }
}

/// Sentry Logs read straight from the payload's bytes into drafts, without a JSON value of the
/// whole item first: an envelope of 100 logs was a tree of ~35 allocations per record (every
/// typed attribute an object of its own), built, taken apart and dropped. Names and the attributes'
/// `type` are borrowed from the payload; what a draft keeps is allocated once. What it gives is
/// what [`decode_log`] gives for the same record (tested): every value is parsed as strictly
/// (what is not kept is read as a JSON value too, so invalid text anywhere is caught). A payload
/// that is not the usual shape (not an object with an `items` array, or not JSON) is `None`, and
/// read by the old path, which says what is wrong.
mod logs {
    use std::borrow::Cow;
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    use super::{Draft, Level, LogFields, Rejection, RejectionKind, log_draft, timestamp};

    /// The records of a `log` item's payload, or `None` when it is not `{"items": [...]}`.
    pub(super) fn decode(payload: &[u8]) -> Option<Vec<Result<Draft, Rejection>>> {
        serde_json::from_slice::<Payload>(payload).ok()?.0
    }

    /// The payload: `Some` records when it has an `items` array (the last one, as a JSON object
    /// keeps the last of a repeated name).
    struct Payload(Option<Vec<Result<Draft, Rejection>>>);

    impl<'de> Deserialize<'de> for Payload {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct PayloadVisitor;
            impl<'de> Visitor<'de> for PayloadVisitor {
                type Value = Payload;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object with `items`")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
                    let mut items = None;
                    while let Some(key) = map.next_key::<Text<'de>>()? {
                        if key.0 == "items" {
                            items = Some(map.next_value::<Records>()?.0);
                        } else {
                            map.next_value::<Value>()?;
                        }
                    }
                    Ok(Payload(items))
                }
            }
            deserializer.deserialize_map(PayloadVisitor)
        }
    }

    /// `items`: an array of records, each a draft or the reason it is refused.
    struct Records(Vec<Result<Draft, Rejection>>);

    impl<'de> Deserialize<'de> for Records {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct RecordsVisitor;
            impl<'de> Visitor<'de> for RecordsVisitor {
                type Value = Records;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an array of log records")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records, A::Error> {
                    let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                    while let Some(record) = seq.next_element::<Record>()? {
                        records.push(record.0);
                    }
                    Ok(Records(records))
                }
            }
            deserializer.deserialize_seq(RecordsVisitor)
        }
    }

    /// One record: its draft, or why it is refused (as [`super::decode_log`] says it).
    struct Record(Result<Draft, Rejection>);

    impl Record {
        fn not_an_object(kind: &str) -> Record {
            Record(Err(Rejection::new(
                RejectionKind::NotAnObject,
                format!("a log record must be a JSON object, not {kind}"),
            )))
        }
    }

    impl<'de> Deserialize<'de> for Record {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(RecordVisitor)
        }
    }

    struct RecordVisitor;

    impl<'de> Visitor<'de> for RecordVisitor {
        type Value = Record;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a log record")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
            let (mut body, mut level, mut time, mut trace_id, mut attributes) = (None, None, None, None, None);
            while let Some(key) = map.next_key::<Text<'de>>()? {
                match &*key.0 {
                    "body" => body = Some(map.next_value::<Value>()?),
                    "level" => level = Some(map.next_value::<Loose<'de>>()?),
                    "timestamp" => time = Some(map.next_value::<Value>()?),
                    "trace_id" => trace_id = Some(map.next_value::<Loose<'de>>()?),
                    "attributes" => attributes = Some(map.next_value::<Attributes<'de>>()?.0),
                    _ => {
                        map.next_value::<Value>()?;
                    }
                }
            }
            Ok(Record(settle_record(body, level, time, trace_id, attributes)))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Record, E> {
            Ok(Record::not_an_object("a boolean"))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Record, E> {
            Ok(Record::not_an_object("a number"))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Record, E> {
            Ok(Record::not_an_object("a number"))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Record, E> {
            Ok(Record::not_an_object("a number"))
        }
        fn visit_str<E>(self, _: &str) -> Result<Record, E> {
            Ok(Record::not_an_object("a string"))
        }
        fn visit_unit<E>(self) -> Result<Record, E> {
            Ok(Record::not_an_object("null"))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Record, A::Error> {
            while seq.next_element::<Value>()?.is_some() {}
            Ok(Record::not_an_object("an array"))
        }
    }

    /// [`super::decode_log`]'s steps, on the fields as read.
    fn settle_record(
        body: Option<Value>,
        level: Option<Loose<'_>>,
        time: Option<Value>,
        trace_id: Option<Loose<'_>>,
        attributes: Option<Vec<(Text<'_>, Value)>>,
    ) -> Result<Draft, Rejection> {
        let message = match body {
            Some(Value::String(body)) => body,
            Some(other) => other.to_string(),
            None => return Err(Rejection::new(RejectionKind::Message, "the log record has no body")),
        };
        let level = match level {
            Some(Loose::Text(level)) => level.parse().unwrap_or(Level::Info),
            _ => Level::Info,
        };
        let timestamp = match time {
            None | Some(Value::Null) => None,
            Some(value) => Some(timestamp(&value).map_err(|why| Rejection::new(RejectionKind::Timestamp, why))?),
        };
        // `text`: a non-blank string, or a number as text.
        let trace_id = match &trace_id {
            Some(Loose::Text(id)) if !id.trim().is_empty() => Some(Cow::Borrowed(&**id)),
            Some(Loose::Value(Value::Number(number))) => Some(Cow::Owned(number.to_string())),
            _ => None,
        };
        let mut attributes = attributes.unwrap_or_default();
        // In the order of their names, the last of a repeated name: as a JSON object has them.
        attributes.reverse();
        attributes.sort_by(|(a, _), (b, _)| a.0.cmp(&b.0));
        attributes.dedup_by(|(later, _), (first, _)| later.0 == first.0);
        let attributes = attributes.into_iter().map(|(name, value)| (name.0, value)).collect();
        Ok(log_draft(LogFields { timestamp, level, message, attributes, trace_id: trace_id.as_deref() }))
    }

    /// `attributes`: each name with its value (a typed attribute's `value`, else the attribute
    /// itself); anything but an object is no attributes.
    struct Attributes<'de>(Vec<(Text<'de>, Value)>);

    impl<'de> Deserialize<'de> for Attributes<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct AttributesVisitor;
            impl<'de> Visitor<'de> for AttributesVisitor {
                type Value = Attributes<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("attributes")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes<'de>, A::Error> {
                    let mut attributes = Vec::with_capacity(map.size_hint().unwrap_or(8));
                    while let Some(name) = map.next_key::<Text<'de>>()? {
                        let value = map.next_value::<Attribute>()?.0;
                        attributes.push((name, value));
                    }
                    Ok(Attributes(attributes))
                }
                fn visit_bool<E>(self, _: bool) -> Result<Attributes<'de>, E> {
                    Ok(Attributes(Vec::new()))
                }
                fn visit_i64<E>(self, _: i64) -> Result<Attributes<'de>, E> {
                    Ok(Attributes(Vec::new()))
                }
                fn visit_u64<E>(self, _: u64) -> Result<Attributes<'de>, E> {
                    Ok(Attributes(Vec::new()))
                }
                fn visit_f64<E>(self, _: f64) -> Result<Attributes<'de>, E> {
                    Ok(Attributes(Vec::new()))
                }
                fn visit_str<E>(self, _: &str) -> Result<Attributes<'de>, E> {
                    Ok(Attributes(Vec::new()))
                }
                fn visit_unit<E>(self) -> Result<Attributes<'de>, E> {
                    Ok(Attributes(Vec::new()))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Attributes<'de>, A::Error> {
                    while seq.next_element::<Value>()?.is_some() {}
                    Ok(Attributes(Vec::new()))
                }
            }
            deserializer.deserialize_any(AttributesVisitor)
        }
    }

    /// One attribute's value: `{"value": v, "type": t}` gives `v` (the last `value`, as a JSON
    /// object keeps); an object without `value`, and anything else, itself.
    struct Attribute(Value);

    impl<'de> Deserialize<'de> for Attribute {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct AttributeVisitor;
            impl<'de> Visitor<'de> for AttributeVisitor {
                type Value = Attribute;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an attribute")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attribute, A::Error> {
                    let mut value = None;
                    // The other fields (`type`), kept borrowed in case there is no `value`.
                    let mut others: Vec<(Text<'de>, Loose<'de>)> = Vec::new();
                    while let Some(key) = map.next_key::<Text<'de>>()? {
                        if key.0 == "value" {
                            value = Some(map.next_value::<Value>()?);
                        } else {
                            others.push((key, map.next_value::<Loose<'de>>()?));
                        }
                    }
                    Ok(Attribute(match value {
                        Some(value) => value,
                        None => {
                            let mut object = Map::new();
                            for (key, other) in others {
                                object.insert(key.0.into_owned(), other.into_value());
                            }
                            Value::Object(object)
                        }
                    }))
                }
                fn visit_bool<E>(self, v: bool) -> Result<Attribute, E> {
                    Ok(Attribute(Value::Bool(v)))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Attribute, E> {
                    Ok(Attribute(Value::Number(v.into())))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Attribute, E> {
                    Ok(Attribute(Value::Number(v.into())))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Attribute, E> {
                    Ok(Attribute(Number::from_f64(v).map_or(Value::Null, Value::Number)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Attribute, E> {
                    Ok(Attribute(Value::String(v.to_owned())))
                }
                fn visit_string<E>(self, v: String) -> Result<Attribute, E> {
                    Ok(Attribute(Value::String(v)))
                }
                fn visit_unit<E>(self) -> Result<Attribute, E> {
                    Ok(Attribute(Value::Null))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Attribute, A::Error> {
                    let mut items = Vec::new();
                    while let Some(item) = seq.next_element::<Value>()? {
                        items.push(item);
                    }
                    Ok(Attribute(Value::Array(items)))
                }
            }
            deserializer.deserialize_any(AttributeVisitor)
        }
    }

    /// A string as written in the payload (borrowed when it has no escapes).
    struct Text<'de>(Cow<'de, str>);

    impl<'de> Deserialize<'de> for Text<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct TextVisitor;
            impl<'de> Visitor<'de> for TextVisitor {
                type Value = Text<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(v)))
                }
            }
            deserializer.deserialize_str(TextVisitor)
        }
    }

    /// Any JSON value, a string kept borrowed: what is read only to be looked at (a level, an
    /// attribute's `type`).
    enum Loose<'de> {
        Text(Cow<'de, str>),
        Value(Value),
    }

    impl Loose<'_> {
        fn into_value(self) -> Value {
            match self {
                Loose::Text(text) => Value::String(text.into_owned()),
                Loose::Value(value) => value,
            }
        }
    }

    impl<'de> Deserialize<'de> for Loose<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct LooseVisitor;
            impl<'de> Visitor<'de> for LooseVisitor {
                type Value = Loose<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("any JSON value")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Loose<'de>, E> {
                    Ok(Loose::Text(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Loose<'de>, E> {
                    Ok(Loose::Text(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E>(self, v: String) -> Result<Loose<'de>, E> {
                    Ok(Loose::Text(Cow::Owned(v)))
                }
                fn visit_bool<E>(self, v: bool) -> Result<Loose<'de>, E> {
                    Ok(Loose::Value(Value::Bool(v)))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Loose<'de>, E> {
                    Ok(Loose::Value(Value::Number(v.into())))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Loose<'de>, E> {
                    Ok(Loose::Value(Value::Number(v.into())))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Loose<'de>, E> {
                    Ok(Loose::Value(Number::from_f64(v).map_or(Value::Null, Value::Number)))
                }
                fn visit_unit<E>(self) -> Result<Loose<'de>, E> {
                    Ok(Loose::Value(Value::Null))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Loose<'de>, A::Error> {
                    let value = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                    Ok(Loose::Value(value))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Loose<'de>, A::Error> {
                    let value = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                    Ok(Loose::Value(value))
                }
            }
            deserializer.deserialize_any(LooseVisitor)
        }
    }
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

    /// The records of `payload` as [`decode_log`] reads them from a JSON value.
    fn by_value(payload: &str) -> Vec<Result<Draft, Rejection>> {
        let Ok(Value::Object(mut logs)) = serde_json::from_str::<Value>(payload) else { panic!("{payload}") };
        let Some(Value::Array(items)) = logs.remove("items") else { panic!("{payload}") };
        items.into_iter().map(decode_log).collect()
    }

    #[test]
    fn log_records_read_from_the_bytes_are_the_ones_a_json_value_gives() {
        let records = [
            // As sentry-sdk sends them.
            r#"{"timestamp": 1764000000.5, "level": "info", "body": "GET /orders 200", "trace_id": "5B8EFFF798038103D269B633813FC60C",
                "severity_number": 9, "attributes": {
                "sentry.environment": {"value": "production", "type": "string"},
                "sentry.release": {"value": "web@2026.11.24", "type": "string"},
                "sentry.sdk.name": {"value": "sentry.python", "type": "string"},
                "code.file.path": {"value": "shop/orders.py", "type": "string"},
                "code.line.number": {"value": 42, "type": "integer"},
                "ratio": {"value": 0.25, "type": "double"}, "ok": {"value": true, "type": "boolean"}}}"#,
            // Repeated names: the last one counts, for the record's fields, the attributes and a
            // typed attribute's `value`.
            r#"{"body": "first", "body": "second", "level": "error", "level": "warn",
                "attributes": {"b": {"value": 1, "value": 2}, "a": {"value": "x"}, "b": {"value": 3, "type": "integer"}}}"#,
            r#"{"body": "x", "attributes": {"k": 1}, "attributes": {"j": 2}}"#,
            // Attributes that are not typed, or typed without a value, or nested values.
            r#"{"body": "x", "attributes": {"plain": "as is", "n": -7, "f": 1.5e3, "none": null, "list": [1, {"a": "b"}],
                "untyped": {"type": "string", "other": [1], "type": "integer"}, "deep": {"value": {"k": {"v": [true]}}},
                "empty": {}, "v0": {"value": null}}}"#,
            // Escapes in names and values; a clash between a value and a dotted name.
            r#"{"body": "tab\there \u00e9", "attributes": {"code\u002efile": {"value": "a\"b"}, "a": 1, "a.b": 2, ".odd.": "x",
                "sentry.environment": {"value": 5}, "sentry.release": {"value": "r\u00401"}}}"#,
            // Attributes that are not an object are none.
            r#"{"body": "x", "attributes": ["a", 1]}"#,
            r#"{"body": "x", "attributes": null}"#,
            r#"{"body": "x", "attributes": "text"}"#,
            // Bodies, levels, times and trace ids of every kind.
            r#"{"body": 42, "level": 5, "trace_id": 12345, "unknown": {"x": [1, 2, {"y": null}]}}"#,
            r#"{"body": null, "level": "TRACE", "trace_id": "   "}"#,
            r#"{"body": {"k": "v"}, "level": "loud", "trace_id": null, "timestamp": null}"#,
            r#"{"body": "x", "timestamp": "2026-11-24T15:00:00Z"}"#,
            r#"{"body": "x", "timestamp": "yesterday"}"#,
            r#"{"body": "x", "timestamp": [1]}"#,
            r#"{"level": "info"}"#,
            r#"{}"#,
            // Records that are not objects.
            r#"5"#,
            r#"-1.5"#,
            r#""text""#,
            r#"null"#,
            r#"true"#,
            r#"[1, {"body": "x"}]"#,
        ];
        let payload = format!(r#"{{"version": 2, "items": [{}], "extra": {{"a": 1}}}}"#, records.join(", "));
        let fast = logs::decode(payload.as_bytes()).expect("the usual shape");
        assert_eq!(fast.len(), records.len());
        for ((fast, slow), record) in fast.iter().zip(by_value(&payload)).zip(records) {
            assert_eq!(fast, &slow, "{record}");
        }
        // The last `items` of a payload counts, as in a JSON object.
        let twice = r#"{"items": [{"body": "a"}], "items": [{"body": "b"}, {"body": "c"}]}"#;
        assert_eq!(logs::decode(twice.as_bytes()).expect("shape"), by_value(twice));
    }

    #[test]
    fn a_log_payload_of_another_shape_is_left_to_the_json_value_path() {
        for payload in [
            "[]",
            "{}",
            r#"{"items": 5}"#,
            r#"{"items": {"body": "x"}}"#,
            r#"{"items": [{"body": "x"}]} trailing"#,
            r#"{"items": [{"body": "x"}"#,
            // Text a JSON value refuses, even where nothing is kept.
            r#"{"items": [{"body": "x", "unknown": "\ud800"}]}"#,
            r#"{"other": "\ud800", "items": []}"#,
        ] {
            assert!(logs::decode(payload.as_bytes()).is_none(), "{payload}");
        }
        assert!(logs::decode(b"{\"items\": [{\"body\": \"\xff\"}]}").is_none(), "not UTF-8");
        let error = |payload: &str| {
            let body = format!("{{}}\n{{\"type\":\"log\"}}\n{payload}");
            decode_envelope(body.as_bytes()).map(|_| ()).unwrap_err().0
        };
        assert_eq!(error(r#"{"items": 5}"#), "item 1 (log) has no `items` array");
        assert!(error(r#"{"items": [{"body": "x", "u": "\ud800"}]}"#).starts_with("item 1 (log) is not valid JSON"));
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
