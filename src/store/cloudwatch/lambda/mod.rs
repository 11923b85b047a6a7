//! What a line of a Lambda function's log group says, as the runtimes print it: level, message,
//! exception type and stack, and fields (`extra`), the request id always in `extra.request_id`.
//!
//! Text forms here: the Python runtime (`[ERROR]\t<time>\t<request id>\tmessage`, tracebacks in
//! the same CloudWatch event), the Node.js runtime (`<time>\t<request id>\tERROR\tmessage`, `Invoke
//! Error` JSON bodies), the platform's `START`/`END`/`REPORT` lines and `Task timed out` lines.
//! Lambda's JSON log format is [`json`]. Anything else is an `info` line with its text as the
//! message. Parsing never fails: a line is at worst read as plain text.

mod json;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event::Level;

/// The `type` of a `REPORT` line (one per invocation, with its duration and memory).
pub(super) const REPORT_TYPE: &str = "lambda.report";
/// The `type` of a `Task timed out after N seconds` line.
pub(super) const TIMEOUT_TYPE: &str = "lambda.timeout";
/// Where a Python traceback starts, at the start of a line.
const TRACEBACK: &str = "Traceback (most recent call last):";
/// Longer "request ids" are text that happens to sit in that column.
const MAX_REQUEST_ID_CHARS: usize = 128;

/// A line read: what becomes the event's level, message, `type`, `stack` and `extra`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    pub level: Level,
    pub message: String,
    pub kind: Option<String>,
    pub stack: Option<String>,
    pub extra: Map<String, Value>,
}

impl Line {
    fn new(level: Level, message: &str) -> Line {
        Line { level, message: message.to_string(), kind: None, stack: None, extra: Map::new() }
    }

    /// `extra.request_id`, when `id` looks like one (the Node.js runtime writes `undefined`
    /// outside an invocation).
    fn with_request_id(mut self, id: &str) -> Line {
        let id = id.trim();
        let plausible = !id.is_empty()
            && id != "undefined"
            && id.chars().count() <= MAX_REQUEST_ID_CHARS
            && !id.chars().any(char::is_whitespace);
        if plausible {
            self.extra.insert("request_id".into(), Value::from(id));
        }
        self
    }
}

/// Reads one CloudWatch event's text.
pub(super) fn parse(text: &str) -> Line {
    let text = text.trim_end();
    if text.starts_with('{')
        && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text)
    {
        return json::parse(fields);
    }
    platform(text)
        .or_else(|| python(text))
        .or_else(|| node(text))
        .or_else(|| timed_out(text))
        .unwrap_or_else(|| Line::new(Level::Info, text))
}

/// `START RequestId: <id> Version: $LATEST`, `END RequestId: <id>`, `REPORT RequestId: <id>
/// Duration: 12.34 ms ...` (tab- or space-separated).
fn platform(text: &str) -> Option<Line> {
    let (word, rest) = text.split_once(' ')?;
    if !matches!(word, "START" | "END" | "REPORT") {
        return None;
    }
    let rest = rest.trim_start().strip_prefix("RequestId:")?.trim_start();
    let id = rest.split_whitespace().next()?;
    let mut line = Line::new(Level::Info, text).with_request_id(id);
    if word == "START"
        && let Some((_, version)) = rest.split_once("Version:")
        && let Some(version) = version.split_whitespace().next()
    {
        line.extra.insert("version".into(), Value::from(version));
    }
    if word == "REPORT" {
        line.kind = Some(REPORT_TYPE.into());
        line.extra.extend(report_fields(rest));
    }
    Some(line)
}

#[allow(clippy::expect_used)] // a constant pattern, exercised by every REPORT test
static REPORT_METRIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([A-Z][A-Za-z]*(?: [A-Z][A-Za-z]*)*): ([0-9]+(?:\.[0-9]+)?) (ms|MB)\b").expect("valid pattern")
});
#[allow(clippy::expect_used)] // a constant pattern, exercised by the REPORT tests
static REPORT_STATUS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bStatus: ([A-Za-z]+)").expect("valid pattern"));

/// `Duration: 12.34 ms` -> `duration_ms: 12.34`, `Max Memory Used: 64 MB` ->
/// `max_memory_used_mb: 64`, every such pair of a REPORT line; `Status: timeout` -> `status`.
fn report_fields(text: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    for found in REPORT_METRIC.captures_iter(text) {
        let name = format!("{}_{}", found[1].to_ascii_lowercase().replace(' ', "_"), found[3].to_ascii_lowercase());
        if let Some(number) = number(&found[2]) {
            fields.insert(name, Value::Number(number));
        }
    }
    if let Some(found) = REPORT_STATUS.captures(text) {
        fields.insert("status".into(), Value::from(&found[1]));
    }
    fields
}

/// A JSON number, whole when it is (`13`, not `13.0`).
fn number(text: &str) -> Option<Number> {
    match text.parse::<u64>() {
        Ok(whole) => Some(Number::from(whole)),
        Err(_) => text.parse::<f64>().ok().and_then(Number::from_f64),
    }
}

/// `[ERROR]\t<time>\t<request id>\tmessage` with an optional traceback after it, and the
/// runtime's own report of an unhandled exception, `[ERROR] KeyError: 'x'\nTraceback ...`.
fn python(text: &str) -> Option<Line> {
    let (name, rest) = text.strip_prefix('[')?.split_once(']')?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let level: Level = name.parse().ok()?;
    let (request_id, body, header_form) = match rest.strip_prefix('\t') {
        Some(fields) => {
            let parts: Vec<&str> = fields.splitn(3, '\t').collect();
            match parts.as_slice() {
                [time, id, body] if is_timestamp(time) => (Some(*id), *body, false),
                [time, body] if is_timestamp(time) => (None, *body, false),
                _ => (None, fields, false),
            }
        }
        None => (None, rest.trim_start(), true),
    };
    let (message, stack) = split_traceback(body);
    let mut line = Line::new(level, message);
    line.kind = stack.and_then(python_exception_type);
    // `[ERROR] KeyError: 'x'` names the type before the traceback (which then has no last line
    // naming it); a logged message's first word is not a type.
    if line.kind.is_none() && header_form && stack.is_some() {
        line.kind =
            message.split_once(':').map(|(name, _)| name).filter(|name| is_dotted_name(name)).map(str::to_string);
    }
    line.stack = stack.map(str::to_string);
    Some(match request_id {
        Some(id) => line.with_request_id(id),
        None => line,
    })
}

/// The text before a Python traceback and the traceback (from its `Traceback` line on).
fn split_traceback(body: &str) -> (&str, Option<&str>) {
    let at = if body.starts_with(TRACEBACK) { Some(0) } else { body.find(&format!("\n{TRACEBACK}")).map(|i| i + 1) };
    match at {
        Some(at) => (body[..at].trim_end(), Some(body[at..].trim_end())),
        None => (body, None),
    }
}

/// The exception a traceback ends with: its last line, `KeyError: 'card'` or
/// `botocore.exceptions.ClientError: ...`, when that is not a source line.
fn python_exception_type(stack: &str) -> Option<String> {
    let last = stack.lines().rev().find(|l| !l.trim().is_empty())?;
    if last.starts_with(char::is_whitespace) || last.starts_with(TRACEBACK) {
        return None;
    }
    let name = last.split_once(':').map_or(last, |(name, _)| name);
    is_dotted_name(name).then(|| name.to_string())
}

/// `KeyError`, `Runtime.ImportModuleError`, `botocore.exceptions.ClientError`.
fn is_dotted_name(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `<time>\t<request id>\tERROR\tmessage`; the message may be `Invoke Error \t{json}` or an
/// error's stack (`Error: boom\n    at ...`).
fn node(text: &str) -> Option<Line> {
    let parts: Vec<&str> = text.splitn(4, '\t').collect();
    let [time, id, name, rest @ ..] = parts.as_slice() else { return None };
    if !is_timestamp(time) || name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let level: Level = name.parse().ok()?;
    let body = rest.first().copied().unwrap_or("");
    let mut line = node_error_report(level, body).unwrap_or_else(|| js_error_text(level, body));
    line = line.with_request_id(id);
    Some(line)
}

/// `Invoke Error \t{"errorType": ..., "errorMessage": ..., "stack": [...]}` (also `Unhandled
/// Promise Rejection`): the runtime's report of an error the handler threw.
fn node_error_report(level: Level, body: &str) -> Option<Line> {
    let (label, report) = body.split_once('\t')?;
    let Ok(Value::Object(mut report)) = serde_json::from_str::<Value>(report.trim()) else { return None };
    if !report.contains_key("errorType") && !report.contains_key("errorMessage") {
        return None;
    }
    let mut line = json::error_fields(Line::new(level, ""), &mut report);
    if line.message.is_empty() {
        line.message = label.trim().to_string();
    }
    // What else the report carries (`reason` and `promise` of a rejection).
    line.extra = report;
    Some(line)
}

/// A message that is an error's stack as Node.js prints it: the first line is the message,
/// the whole text the stack, the name before `:` the type.
fn js_error_text(level: Level, body: &str) -> Line {
    let mut lines = body.lines();
    let first = lines.next().unwrap_or("");
    if !lines.next().is_some_and(|second| second.trim_start().starts_with("at ")) {
        return Line::new(level, body);
    }
    let mut line = Line::new(level, first);
    line.kind = first.split_once(':').map(|(name, _)| name).filter(|name| is_dotted_name(name)).map(str::to_string);
    line.stack = Some(body.to_string());
    line
}

/// `2026-11-24T15:02:06.456Z 8f5e... Task timed out after 3.00 seconds`.
fn timed_out(text: &str) -> Option<Line> {
    let parts: Vec<&str> = text.splitn(3, ' ').collect();
    let [time, id, message] = parts.as_slice() else { return None };
    if !is_timestamp(time) || !message.starts_with("Task timed out after ") {
        return None;
    }
    let mut line = Line::new(Level::Error, message).with_request_id(id);
    line.kind = Some(TIMEOUT_TYPE.into());
    Some(line)
}

fn is_timestamp(text: &str) -> bool {
    OffsetDateTime::parse(text, &Rfc3339).is_ok()
}
