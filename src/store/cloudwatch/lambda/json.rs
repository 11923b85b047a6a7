//! Lambda's JSON log format: application lines (`timestamp`, `level`, `message`, `requestId`,
//! anything else into `extra`; errors with `errorType`, `errorMessage` and `stackTrace`) and the
//! platform's lines (`{"type": "platform.report", "record": {"requestId", "metrics": {...}}}`),
//! which read like their text forms: a report is a `lambda.report` with the same numbers.

use serde_json::{Map, Value};

use super::{Line, REPORT_TYPE};
use crate::event::Level;

/// One JSON object line.
pub(super) fn parse(mut fields: Map<String, Value>) -> Line {
    if let Some(kind) = fields.get("type").and_then(Value::as_str).and_then(|t| t.strip_prefix("platform."))
        && let Some(Value::Object(record)) = fields.get("record")
    {
        return platform(kind, record);
    }
    let level = match fields.get("level").and_then(Value::as_str).and_then(|l| l.parse::<Level>().ok()) {
        Some(level) => {
            fields.remove("level");
            level
        }
        None => Level::Info,
    };
    // The event's own time is the CloudWatch timestamp, which the id is made from.
    fields.remove("timestamp");
    let request_id = match fields.remove("requestId") {
        Some(Value::String(id)) => Some(id),
        Some(other) => {
            fields.insert("requestId".into(), other);
            None
        }
        None => None,
    };
    let mut line = match fields.remove("message") {
        Some(Value::String(text)) => Line::new(level, &text),
        // Node.js logs an error object as the message.
        Some(Value::Object(mut error)) if is_error(&error) => {
            let line = error_fields(Line::new(level, ""), &mut error);
            // The runtime repeats the request id inside; the line's own is kept.
            error.remove("requestId");
            fields.extend(error);
            line
        }
        Some(Value::Null) | None => Line::new(level, ""),
        Some(other) => Line::new(level, &other.to_string()),
    };
    if is_error(&fields) {
        line = error_fields(line, &mut fields);
    }
    line.extra = fields;
    match request_id {
        Some(id) => line.with_request_id(&id),
        None => line,
    }
}

fn is_error(fields: &Map<String, Value>) -> bool {
    fields.contains_key("errorType") || fields.contains_key("errorMessage")
}

/// Moves an error's `errorType` to the line's type, its `errorMessage` to the message (when the
/// line has none: a message logged with the error is the one its author chose, and the error's
/// stays in `extra`), its
/// `stackTrace` or `stack` (a list of lines or one text) to the stack.
pub(super) fn error_fields(mut line: Line, error: &mut Map<String, Value>) -> Line {
    if let Some(Value::String(kind)) = error.remove("errorType") {
        line.kind = Some(kind);
    }
    if line.message.is_empty()
        && let Some(Value::String(message)) = error.remove("errorMessage")
    {
        line.message = message;
    }
    for key in ["stackTrace", "stack"] {
        if let Some(stack) = error.get(key).and_then(stack_text) {
            error.remove(key);
            line.stack = Some(stack);
            break;
        }
    }
    line
}

/// A stack given as one text or as a list of lines (frames; Python's end with a newline each).
fn stack_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Array(items) => {
            let lines: Vec<&str> = items.iter().filter_map(Value::as_str).map(|s| s.trim_end_matches('\n')).collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        }
        _ => None,
    }
}

/// `platform.start`, `platform.report`, ...: named like the text lines (`REPORT RequestId: ...`),
/// the report's metrics under the text form's names, the rest of the record in `extra`.
fn platform(kind: &str, record: &Map<String, Value>) -> Line {
    let id = record.get("requestId").and_then(Value::as_str).unwrap_or("");
    let word = match kind {
        "start" => "START".to_string(),
        "report" => "REPORT".to_string(),
        "runtimeDone" => "END".to_string(),
        other => format!("platform.{other}"),
    };
    let message = if id.is_empty() { word } else { format!("{word} RequestId: {id}") };
    let mut line = Line::new(Level::Info, &message);
    for (key, value) in record {
        match (key.as_str(), value) {
            ("requestId", _) => {}
            ("metrics", Value::Object(metrics)) => {
                line.extra.extend(metrics.iter().map(|(name, v)| (snake_case(name), v.clone())));
            }
            _ => {
                line.extra.insert(snake_case(key), value.clone());
            }
        }
    }
    if kind == "report" {
        line.kind = Some(REPORT_TYPE.into());
    }
    line.with_request_id(id)
}

/// `durationMs` -> `duration_ms`, `maxMemoryUsedMB` -> `max_memory_used_mb`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}
