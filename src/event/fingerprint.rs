//! Fingerprints: the occurrences of one error share one, different errors get different ones
//! (search.md, "Issues"). A fingerprint is 16 lowercase hex digits, the first 8 bytes of a SHA-256
//! over exactly three things: the event's `type`, its message's shape and its top in-app frame.
//! Nothing else goes in, so `code`, `url`, `http`, `release`, `user` and `extra` never split an issue.
//!
//! **Fingerprints stored before this change** (digits → `0` in the message, plus `location` or the
//! whole first stack line with its line and column) stay as they were: nothing recomputes them. An
//! error seen both before and after the change therefore forms two issues, the old fingerprint's
//! and the new one's, until the old occurrences age out with retention (30 days by default; never
//! with `days = 0`).
//!
//! - **Message shape.** Numbers (with sign, decimals, `1,234`, dates and times), ids (a word of
//!   ASCII letters, digits and `_` with a digit: `ord_8f2k1`, `SPRING42`), hex (`0x…`, or a word of
//!   8 or more hex digits), UUIDs, e-mail addresses and quoted values (`'…'`, `"…"`, `` `…` ``,
//!   `‘…’`, `“…”`, on one line; an apostrophe inside a word is not a quote) each become one
//!   placeholder; a URL's query string (`?key=…` up to the next space) is dropped; runs of white
//!   space count as one space. Words end at any non-ASCII character, so in `주문 12345번을` only the
//!   number goes. Variable parts joined by `.,:-/+` are one (`10.0.0.1`, `2026-11-24T15:04:05Z`).
//! - **Top in-app frame.** The stack's first line is skipped when it repeats the header (the
//!   message, or `Type: …`, or Python's `Traceback …`); lines in the formats of V8 (`at fn (file:1:2)`,
//!   `at file:1:2`), Firefox/Safari (`fn@file:1:2`), Python (`File "x.py", line 3, in fn`, innermost
//!   last), Java (`at pkg.Cls.method(Cls.java:12)`) and .NET (`at Ns.Cls.M() in C:\x.cs:line 4`) are
//!   frames, other lines are ignored. A frame is in-app unless its file is under `node_modules` (or
//!   `bower_components`, `jspm_packages`, `vendor/`, Python's `site-packages`/`dist-packages`/standard
//!   library), is a vendor bundle (`vendor.4f2c1.js`, `chunk-vendors.js`), is the runtime's
//!   (`node:…`, `internal/…`, `<anonymous>`, `native`, a browser extension) or, on the JVM, is in
//!   `java.`, `javax.`, `jdk.`, `sun.`, `kotlin.` or `scala.`. Of the frame, the function and the
//!   file count: the file without line, column, query string, fragment, origin (the same bundle is
//!   served from a CDN and from the site) or bundle hash (a part of 5+ letters and digits, with a
//!   digit or all hex, between the name and the extension: `app.4f2c1.js` ≡ `app.9ab3e.js`,
//!   `index-4f2c1a3b.js` ≡ `index-0c9d8e7f.js`). Without an in-app frame the top frame stands in
//!   (innermost for Python); without a stack, `location` parsed and normalised the same way; with a
//!   stack of no known format and no `location`, its first line after the header, as a message.
//! - **The client's own.** `extra.fingerprint`, a non-blank string or a non-empty list of strings
//!   (joined), replaces all of the above. It is hashed into the same 16-hex form rather than kept
//!   as sent: fingerprints go into URLs (`/api/v1/issues/{fingerprint}/status`), queries
//!   (`fingerprint:F`) and index keys, where a client's free text (spaces, colons, any length) would
//!   need escaping everywhere. Its hash is salted apart, so it never equals a computed one. Another
//!   value (a number, an empty list, a list holding a number) is ignored. Only the `extra` object the client sent counts: a
//!   top-level `fingerprint` (an exported event sent again) is the server's, not the client's wish.
//!
//! The message is read once, left to right; a quote without its closing mark is remembered, so a
//! long line of stray quotes stays linear. This runs on every error at ingest, hence no regexes.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::StackFrame;

/// The fingerprint of one error event; `client` is its `extra.fingerprint`, if the client sent one.
/// Structured `frames` (innermost first), when the sender had them, stand in for `stack`.
pub fn fingerprint(
    kind: Option<&str>,
    message: &str,
    (location, stack, frames): (Option<&str>, Option<&str>, &[StackFrame]),
    client: Option<&Value>,
) -> String {
    let computed = || {
        let kind = kind.unwrap_or("").trim();
        let place = match top_structured_frame(frames) {
            Some(frame) => frame.key(),
            None => place(kind, message, location, stack),
        };
        digest(b"computed", [kind.as_bytes(), message_shape(message).as_slice(), place.as_slice()])
    };
    match client.and_then(client_parts) {
        // Sentry's `{{ default }}` stands for the fingerprint computed without the client's.
        Some(parts) if parts.iter().all(|part| is_default_part(part)) => computed(),
        Some(parts) if parts.iter().any(|part| is_default_part(part)) => {
            let default = computed();
            let parts = parts.iter().map(|part| if is_default_part(part) { default.as_str() } else { part });
            digest(b"client", parts.map(str::as_bytes))
        }
        Some(parts) => digest(b"client", parts.iter().map(|part| part.as_bytes())),
        None => computed(),
    }
}

/// Sentry's placeholder for the default grouping in a client's fingerprint.
fn is_default_part(part: &str) -> bool {
    part.trim() == "{{ default }}" || part.trim() == "{{default}}"
}

/// `extra.fingerprint` when it is one the client can mean: a non-blank string, or strings.
fn client_parts(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(vec![text.as_str()]),
        Value::Array(items) => {
            let parts = items.iter().map(Value::as_str).collect::<Option<Vec<&str>>>()?;
            parts.iter().any(|part| !part.trim().is_empty()).then_some(parts)
        }
        _ => None,
    }
}

fn digest<'a>(salt: &[u8], parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update([0]);
    for part in parts {
        hash.update(part);
        hash.update([0]);
    }
    let mut out = String::with_capacity(16);
    for byte in &hash.finalize()[..8] {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 15)]));
    }
    out
}

/// Where the error happened: the top in-app frame, or what stands in for it.
fn place(kind: &str, message: &str, location: Option<&str>, stack: Option<&str>) -> Vec<u8> {
    let mut unparsed = None;
    if let Some(stack) = stack {
        match top_frame(stack, kind, message) {
            Ok(frame) => return frame.key(),
            Err(first_line) => unparsed = first_line,
        }
    }
    if let Some(location) = location.map(str::trim).filter(|l| !l.is_empty()) {
        return Frame::parse_location(location).key();
    }
    unparsed.map(message_shape).unwrap_or_default()
}

/// The top in-app frame of structured frames (the sender's `in_app` first, else judged by the
/// file as for a text stack), else the innermost frame.
fn top_structured_frame(frames: &[StackFrame]) -> Option<Frame<'_>> {
    let in_app = |frame: &StackFrame| match frame.in_app {
        Some(in_app) => in_app,
        None => as_frame(frame).is_some_and(|f| f.in_app()),
    };
    frames.iter().find(|frame| in_app(frame)).or(frames.first()).and_then(as_frame)
}

/// A structured frame as a text frame: its function and its file (a frame with only a function
/// still counts).
fn as_frame(frame: &StackFrame) -> Option<Frame<'_>> {
    let function = frame.function.as_deref().unwrap_or("");
    Frame::new(function, frame.file.as_deref().unwrap_or(""), Format::Bare).or_else(|| {
        (!function.trim().is_empty()).then_some(Frame {
            function: function.trim(),
            location: "?",
            format: Format::Bare,
        })
    })
}

/// The top in-app frame of `stack`, or (no frame in a known format) its first line after the header.
fn top_frame<'a>(stack: &'a str, kind: &str, message: &str) -> Result<Frame<'a>, Option<&'a str>> {
    let mut lines = stack.lines().map(str::trim).filter(|line| !line.is_empty()).peekable();
    if lines.peek().is_some_and(|line| repeats_header(line, kind, message)) {
        lines.next();
    }
    let mut first_line = None;
    let mut fallback: Option<Frame<'a>> = None;
    let mut chosen = None;
    for line in lines {
        first_line.get_or_insert(line);
        let Some(frame) = Frame::parse(line) else { continue };
        // Python prints the innermost frame last: the last in-app one is the top.
        let innermost_last = fallback.as_ref().map_or(frame.format, |f| f.format) == Format::Python;
        if innermost_last && frame.format != Format::Python {
            continue;
        }
        if fallback.is_none() || innermost_last {
            fallback = Some(frame);
        }
        if frame.in_app() {
            chosen = Some(frame);
            if !innermost_last {
                break;
            }
        }
    }
    chosen.or(fallback).ok_or(first_line)
}

/// Whether a stack's first line is its header rather than a frame.
fn repeats_header(line: &str, kind: &str, message: &str) -> bool {
    let headline = message.lines().next().unwrap_or("").trim();
    line.starts_with("Traceback ")
        || (!kind.is_empty() && line.strip_prefix(kind).is_some_and(|rest| rest.is_empty() || rest.starts_with(':')))
        || (!headline.is_empty()
            && line.strip_suffix(headline).is_some_and(|head| head.is_empty() || head.ends_with(": ")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    V8,
    Firefox,
    Python,
    Java,
    DotNet,
    /// A `location` that is only a file.
    Bare,
}

/// One stack frame as written: the function (maybe empty) and where (file, maybe line and column).
#[derive(Debug, Clone, Copy)]
struct Frame<'a> {
    function: &'a str,
    location: &'a str,
    format: Format,
}

impl<'a> Frame<'a> {
    fn new(function: &'a str, location: &'a str, format: Format) -> Option<Frame<'a>> {
        let location = location.trim();
        (!location.is_empty()).then_some(Frame { function: function.trim(), location, format })
    }

    /// One trimmed line of a stack, if it is a frame in a known format.
    fn parse(line: &'a str) -> Option<Frame<'a>> {
        if let Some(rest) = line.strip_prefix("at ") {
            let rest = rest.trim();
            if let Some((call, file)) = rest.split_once(") in ") {
                let function = call.split_once('(').map_or(call, |(function, _)| function);
                let file = file.rsplit_once(":line ").map_or(file, |(file, _)| file);
                return Frame::new(function, file, Format::DotNet);
            }
            if let Some(inner) = rest.strip_suffix(')') {
                if let Some((function, location)) = inner.split_once(" (") {
                    return Frame::new(function, location, Format::V8);
                }
                if let Some((function, location)) = inner.split_once('(') {
                    return Frame::new(function, location, Format::Java);
                }
            }
            return Frame::new("", rest, Format::V8);
        }
        if let Some(rest) = line.strip_prefix("File \"") {
            let (path, tail) = rest.split_once('"')?;
            let function = tail.rsplit_once(", in ").map_or("", |(_, function)| function);
            return Frame::new(function, path, Format::Python);
        }
        let (function, location) = line.split_once('@')?;
        // Safari's `global code@…`; any other space means a sentence with an `@`, not a frame.
        let named = !function.contains(char::is_whitespace) || function.ends_with(" code");
        if named && strip_line_number(location.trim()).is_some() {
            Frame::new(function, location, Format::Firefox)
        } else {
            None
        }
    }

    /// A `location` field: a frame in any of the formats, `fn (file:1:2)`, or a bare file.
    fn parse_location(location: &'a str) -> Frame<'a> {
        Frame::parse(location)
            .or_else(|| {
                let (function, file) = location.strip_suffix(')')?.split_once(" (")?;
                Frame::new(function, file, Format::V8)
            })
            .unwrap_or(Frame { function: "", location, format: Format::Bare })
    }

    fn in_app(&self) -> bool {
        const OUTSIDE: [&str; 8] = [
            "node_modules",
            "bower_components",
            "jspm_packages",
            "site-packages",
            "dist-packages",
            "/lib/python",
            "/vendor/",
            "\\vendor\\",
        ];
        const RUNTIME: [&str; 8] = [
            "node:",
            "internal/",
            "<",
            "[native",
            "index ",
            "chrome-extension:",
            "moz-extension:",
            "safari-web-extension:",
        ];
        const JVM: [&str; 8] = ["java.", "javax.", "jdk.", "sun.", "com.sun.", "kotlin.", "kotlinx.", "scala."];
        let location = self.location;
        if location == "native"
            || OUTSIDE.iter().any(|part| location.contains(part))
            || RUNTIME.iter().any(|prefix| location.starts_with(prefix))
        {
            return false;
        }
        let name = file_name(path_of(location));
        if name.starts_with("vendor") || name.starts_with("chunk-vendors") {
            return false;
        }
        !(self.format == Format::Java && JVM.iter().any(|prefix| self.function().starts_with(prefix)))
    }

    /// The function without what varies between calls of it: `async`, a JVM module or loader.
    fn function(&self) -> &'a str {
        let function = self.function;
        let function = function.strip_prefix("async ").or_else(|| function.strip_prefix("async*")).unwrap_or(function);
        match self.format {
            Format::Java => function.rsplit_once('/').map_or(function, |(_, function)| function),
            _ => function,
        }
    }

    /// What of the frame goes into the fingerprint: function and file.
    fn key(&self) -> Vec<u8> {
        let path = path_of(self.location);
        let name = file_name(path);
        let mut key = Vec::with_capacity(self.function.len() + path.len() + 1);
        key.extend_from_slice(self.function().as_bytes());
        key.push(0);
        key.extend_from_slice(&path.as_bytes()[..path.len() - name.len()]);
        without_bundle_hash(name, &mut key);
        key
    }
}

/// A frame's location without line, column, query string, fragment and origin.
fn path_of(location: &str) -> &str {
    let mut path = location.trim();
    for _ in 0..2 {
        path = strip_line_number(path).unwrap_or(path);
    }
    path = path.split(['?', '#']).next().unwrap_or(path);
    if let Some((_, after_scheme)) = path.split_once("://") {
        path = after_scheme.find('/').map_or("", |slash| &after_scheme[slash..]);
    }
    path
}

/// `file:12` → `file` (also `:line:col` one at a time); `None` if it ends in no number.
fn strip_line_number(location: &str) -> Option<&str> {
    let (head, number) = location.rsplit_once(':')?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then_some(head)
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Appends `name` without its bundle hashes: `app.4f2c1.js` → `app.js`, `index-4f2c1a3b.js` → `index.js`.
fn without_bundle_hash(name: &str, out: &mut Vec<u8>) {
    let Some((stem, extensions)) = name.split_once('.') else {
        out.extend_from_slice(name.as_bytes());
        return;
    };
    let stem = match stem.rsplit_once('-') {
        Some((head, tail)) if !head.is_empty() && is_bundle_hash(tail) => head,
        _ => stem,
    };
    out.extend_from_slice(stem.as_bytes());
    let mut parts = extensions.split('.').peekable();
    while let Some(part) = parts.next() {
        let is_extension = parts.peek().is_none();
        if is_extension || !is_bundle_hash(part) {
            out.push(b'.');
            out.extend_from_slice(part.as_bytes());
        }
    }
}

fn is_bundle_hash(part: &str) -> bool {
    let bytes = part.as_bytes();
    bytes.len() >= 5
        && bytes.iter().all(u8::is_ascii_alphanumeric)
        && (bytes.iter().any(u8::is_ascii_digit) || bytes.iter().all(u8::is_ascii_hexdigit))
}

/// What a message says without its variable parts (see the module note), as bytes to hash.
fn message_shape(message: &str) -> Vec<u8> {
    let bytes = message.as_bytes();
    let mut shape = Shape::with_capacity(bytes.len());
    let mut quotes = Quotes::default();
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte.is_ascii_whitespace() {
            shape.space();
            i += 1;
            continue;
        }
        let starts_word = i == 0 || !is_word(bytes[i - 1]);
        let variable_end = if !starts_word {
            None
        } else if is_word(byte) {
            uuid_end(bytes, i).or_else(|| email_end(bytes, i))
        } else {
            quotes.closing(bytes, i)
        };
        if let Some(end) = variable_end {
            shape.variable();
            i = end;
        } else if byte == b'?'
            && let Some(end) = query_end(bytes, i)
        {
            i = end;
        } else if is_word(byte) {
            let end = bytes[i..].iter().position(|&b| !is_word(b)).map_or(bytes.len(), |n| i + n);
            let word = &bytes[i..end];
            if word.iter().any(u8::is_ascii_digit) || (word.len() >= 8 && word.iter().all(u8::is_ascii_hexdigit)) {
                shape.variable();
            } else {
                shape.push(word);
            }
            i = end;
        } else {
            shape.push(&[byte]);
            i += 1;
        }
    }
    shape.text
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The normalised message being written: variable parts as one placeholder, spaces collapsed.
struct Shape {
    text: Vec<u8>,
    /// Where the last placeholder ends in `text`, to join `1.5` or `10.0.0.1` into one.
    variable_end: Option<usize>,
    space: bool,
}

impl Shape {
    const VARIABLE: &[u8] = b"<*>";
    /// Between two variable parts, these make one: `1.5`, `12:30`, `2026-11-24`, `1/2`, `+09`.
    const JOINERS: &[u8] = b".,:-/+";

    fn with_capacity(capacity: usize) -> Shape {
        Shape { text: Vec::with_capacity(capacity), variable_end: None, space: false }
    }

    fn space(&mut self) {
        self.space = !self.text.is_empty();
    }

    fn push(&mut self, bytes: &[u8]) {
        if std::mem::take(&mut self.space) {
            self.text.push(b' ');
        }
        self.text.extend_from_slice(bytes);
    }

    fn variable(&mut self) {
        let len = self.text.len();
        if !self.space
            && let Some(end) = self.variable_end
        {
            if len == end {
                return;
            }
            if len == end + 1 && Self::JOINERS.contains(&self.text[end]) {
                self.text.truncate(end);
                return;
            }
        }
        // A sign belongs to its number: `-5` is `5`.
        if !self.space
            && matches!(self.text.last(), Some(b'-' | b'+'))
            && (len == 1 || b" ([{=:,".contains(&self.text[len - 2]))
        {
            self.text.pop();
        }
        self.push(Self::VARIABLE);
        self.variable_end = Some(self.text.len());
    }
}

/// Quotation marks: opening, closing, and whether the closing one must end a word (so that the
/// apostrophe of `don't` closes nothing).
const QUOTES: [(&[u8], &[u8], bool); 5] = [
    (b"'", b"'", true),
    (b"\"", b"\"", false),
    (b"`", b"`", false),
    ("‘".as_bytes(), "’".as_bytes(), true),
    ("“".as_bytes(), "”".as_bytes(), false),
];

/// Per kind of quote, the position before which no closing mark was found on the line: later
/// opening marks there fail at once instead of scanning the line again.
#[derive(Default)]
struct Quotes {
    no_close_before: [usize; QUOTES.len()],
}

impl Quotes {
    /// Where the quoted value opening at `start` ends, if `start` opens one that closes on its line.
    fn closing(&mut self, bytes: &[u8], start: usize) -> Option<usize> {
        let rest = &bytes[start..];
        let (kind, (open, close, ends_word)) =
            QUOTES.iter().enumerate().find(|(_, (open, ..))| rest.starts_with(open))?;
        if start < self.no_close_before[kind] {
            return None;
        }
        let mut i = start + open.len();
        while let Some(&byte) = bytes.get(i)
            && byte != b'\n'
        {
            if bytes[i..].starts_with(close)
                && !(*ends_word && bytes.get(i + close.len()).is_some_and(|&next| is_word(next)))
            {
                return Some(i + close.len());
            }
            i += 1;
        }
        self.no_close_before[kind] = i;
        None
    }
}

/// The end of a UUID (8-4-4-4-12 hex digits) starting at `start`.
fn uuid_end(bytes: &[u8], start: usize) -> Option<usize> {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut i = start;
    for (n, len) in GROUPS.iter().enumerate() {
        if n > 0 {
            (bytes.get(i) == Some(&b'-')).then_some(())?;
            i += 1;
        }
        bytes.get(i..i + len).filter(|group| group.iter().all(u8::is_ascii_hexdigit))?;
        i += len;
    }
    (!bytes.get(i).is_some_and(|&b| is_word(b))).then_some(i)
}

/// The end of an e-mail address starting at `start` (a word start, not inside a longer local part).
fn email_end(bytes: &[u8], start: usize) -> Option<usize> {
    let is_local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    if start > 0 && is_local(bytes[start - 1]) {
        return None;
    }
    let at = start + bytes[start..].iter().position(|&b| !is_local(b))?;
    (bytes[at] == b'@').then_some(())?;
    let domain_start = at + 1;
    let mut end = bytes[domain_start..]
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
        .map_or(bytes.len(), |n| domain_start + n);
    while end > domain_start && matches!(bytes[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &bytes[domain_start..end];
    let dot = domain.iter().rposition(|&b| b == b'.')?;
    let top_level = &domain[dot + 1..];
    (domain.first().is_some_and(u8::is_ascii_alphanumeric)
        && top_level.len() >= 2
        && top_level.iter().all(u8::is_ascii_alphabetic))
    .then_some(end)
}

/// The end of a query string (`?key=…`) starting at `start`, trailing punctuation left out.
fn query_end(bytes: &[u8], start: usize) -> Option<usize> {
    let is_key = |b: u8| b.is_ascii_alphanumeric() || b"_.-[]%".contains(&b);
    let key_end = start + 1 + bytes[start + 1..].iter().position(|&b| !is_key(b))?;
    (key_end > start + 1 && bytes[key_end] == b'=').then_some(())?;
    let mut end = bytes[key_end..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b"\"'`<>(){}".contains(&b))
        .map_or(bytes.len(), |n| key_end + n);
    while matches!(bytes[end - 1], b'.' | b',' | b';' | b':' | b'!') {
        end -= 1;
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Context, normalise};
    use crate::project::Project;
    use crate::scrub::Scrubber;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::datetime;

    /// The fingerprint ingest gives `event` (an error unless it says otherwise), scrubbing off so
    /// that e-mail addresses reach the fingerprint as sent.
    fn ingested(event: &Value) -> String {
        let mut project = Project::for_tests(&["production"]);
        project.scrubber = Scrubber::new(false, &[]).expect("no patterns");
        let ctx = Context {
            project: &project,
            default_env: Some("production"),
            received_at: datetime!(2026-11-24 15:00:00 UTC),
            max_event_bytes: 65_536,
        };
        let mut event = event.clone();
        event.as_object_mut().expect("an object").entry("level").or_insert(json!("error"));
        normalise(event.clone(), &ctx)
            .unwrap_or_else(|why| panic!("{event}: {why}"))
            .fingerprint
            .unwrap_or_else(|| panic!("{event}: an error has a fingerprint"))
    }

    fn msg(message: &str) -> Value {
        json!({"message": message, "type": "Error"})
    }

    fn stack(message: &str, stack: &str) -> Value {
        json!({"message": message, "type": "Error", "stack": stack})
    }

    const AXIOS_TOP: &str = "createError (/srv/app/node_modules/axios/lib/core/createError.js:16:15)";
    const LOAD_ORDERS: &str = "loadOrders (/srv/app/src/orders.js:42:11)";
    const VIEWS_POST: &str = r#"File "/app/api/views.py", line 42, in post"#;
    const ORDERS_LOAD: &str = r#"File "/app/api/orders.py", line 17, in load"#;
    const REQUIRE_NON_NULL: &str = "java.base/java.util.Objects.requireNonNull(Objects.java:209)";
    const PLACE_ORDER: &str = "com.shop.orders.OrderService.place(OrderService.java:42)";

    /// Node: a library's frames on top, the application's below.
    fn node(top: &str, app_frame: &str) -> Value {
        stack(
            "Request failed",
            &format!(
                "Error: Request failed\n    at {top}\n    at {app_frame}\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"
            ),
        )
    }

    fn python(caller: &str, innermost_app: &str, char_at: u32) -> Value {
        let message = format!("Expecting value: line 1 column 1 (char {char_at})");
        json!({"message": message, "type": "JSONDecodeError", "stack": format!(
            "Traceback (most recent call last):\n  {caller}\n    order = load(order_id)\n  {innermost_app}\n    return json.loads(raw)\n  File \"/usr/lib/python3.12/json/__init__.py\", line 346, in loads\n    return _default_decoder.decode(s)\njson.decoder.JSONDecodeError: {message}"
        )})
    }

    fn java(top: &str, app_frame: &str) -> Value {
        json!({"message": "Cannot invoke \"String.length()\" because \"name\" is null", "type": "java.lang.NullPointerException",
            "stack": format!("java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"name\" is null\n\tat {top}\n\tat {app_frame}\n\tat com.shop.web.OrderController.create(OrderController.java:30)")})
    }

    /// The same error with its parts varied: `base` with `changes` laid over it.
    fn with(base: &Value, changes: Value) -> Value {
        let mut event = base.clone();
        for (key, value) in changes.as_object().expect("an object") {
            event[key] = value.clone();
        }
        event
    }

    /// Pairs of events that are occurrences of one error, by the rule that makes them so.
    fn same_error() -> Vec<(&'static str, Value, Value)> {
        let chrome = "TypeError: Cannot read properties of undefined (reading 'id')\n    at handleClick (https://shop.example.com/static/js/app.4f2c1.js:10:5)\n    at HTMLButtonElement.dispatch (https://shop.example.com/static/js/vendor.77aa1.js:2:100)";
        let plain = json!({"message": "Payment declined", "type": "CardError", "stack": "CardError: Payment declined\n    at charge (/srv/app/src/pay.js:10:3)"});
        vec![
            ("order numbers", msg("Order 10234 not found"), msg("Order 99 not found")),
            ("ids", msg("Order ord_8f2k1 not found"), msg("Order ord_Zx9 not found")),
            ("ids in capitals", msg("coupon SPRING42 expired"), msg("coupon BF2026 expired")),
            ("0x hex", msg("segfault at 0x7ffd5e8c"), msg("segfault at 0xDEADBEEF")),
            ("8+ hex digits without a digit", msg("blob deadbeefcafe missing"), msg("blob 0f1e2d3c missing")),
            (
                "UUIDs, also with all-letter groups",
                msg("session 550e8400-e29b-41d4-a716-446655440000 expired"),
                msg("session deadbeef-beef-4ead-beef-deadbeefbeef expired"),
            ),
            (
                "e-mail addresses",
                msg("no account for alice@example.com."),
                msg("no account for bob.smith+tag@mail.example.co.kr."),
            ),
            (
                "a URL's query string",
                msg("GET https://api.example.com/orders?page=2&sort=asc returned 500"),
                msg("GET https://api.example.com/orders returned 502"),
            ),
            (
                "a path's query string",
                msg("bad request /api/orders?id=5."),
                msg("bad request /api/orders?id=6&expand=items."),
            ),
            (
                "single-quoted values",
                msg("Cannot read properties of undefined (reading 'id')"),
                msg("Cannot read properties of undefined (reading 'customer name')"),
            ),
            (
                "double-quoted values",
                msg(r#"column "email" does not exist"#),
                msg(r#"column "created_at" does not exist"#),
            ),
            ("backquoted values", msg("unknown column `email` in field list"), msg("unknown column `x` in field list")),
            ("typographic quotes", msg("no route for “/cart” here"), msg("no route for “/orders/new” here")),
            ("empty quotes", msg("bad name '' given"), msg("bad name 'bob' given")),
            (
                "apostrophes inside quoted values",
                msg("file 'Bob's notes' is locked"),
                msg("file 'Ann's list' is locked"),
            ),
            ("Korean with numbers", msg("주문 12345번을 찾을 수 없습니다"), msg("주문 7번을 찾을 수 없습니다")),
            ("Korean with quoted values", msg("사용자 '홍길동'이(가) 없습니다"), msg("사용자 '김철수'이(가) 없습니다")),
            ("signs and decimals", msg("balance -5.25 below limit 0"), msg("balance 12 below limit 100")),
            (
                "timestamps",
                msg("job started 2026-11-24T15:04:05Z took 1.5s"),
                msg("job started 2026-11-25T01:00:00.123+09:00 took 12s"),
            ),
            (
                "addresses and ports",
                msg("connect to 10.0.0.1:5432 refused"),
                msg("connect to 192.168.1.20:6543 refused"),
            ),
            ("runs of white space", msg("timeout  after\n30 ms "), msg("timeout after 45 ms")),
            (
                "line and column (Chrome)",
                stack("m", "Error: m\n    at handleClick (/srv/app/src/cart.js:10:5)"),
                stack("m", "Error: m\n    at handleClick (/srv/app/src/cart.js:812:33)"),
            ),
            (
                "bundle hashes (Chrome), with origin and vendor frames",
                json!({"message": "Cannot read properties of undefined (reading 'id')", "type": "TypeError", "stack": chrome}),
                json!({"message": "Cannot read properties of undefined (reading 'name')", "type": "TypeError",
                    "stack": chrome.replace("app.4f2c1.js:10:5", "app.9ab3e.js:812:33").replace("shop.example.com", "cdn.example.net").replace("vendor.77aa1", "vendor.0b0b0").replace("'id'", "'name'")}),
            ),
            (
                "bundle hashes (Firefox)",
                stack(
                    "m",
                    "handleClick@https://shop.example.com/assets/index-4f2c1a3b.js:1:200\n@https://shop.example.com/assets/index-4f2c1a3b.js:1:50",
                ),
                stack(
                    "m",
                    "handleClick@https://shop.example.com/assets/index-9c8d7e6f.js:3:999\n@https://shop.example.com/assets/index-9c8d7e6f.js:3:10",
                ),
            ),
            (
                "bundle hashes before .chunk.js, and query strings in frames",
                stack("m", "    at submit (https://x.example/static/js/main.4f2c1a3b.chunk.js?v=12:1:1)"),
                stack("m", "    at submit (https://x.example/static/js/main.0c9d8e7f.chunk.js?v=13#top:5:5)"),
            ),
            (
                "node_modules frames above the application's",
                node(AXIOS_TOP, LOAD_ORDERS),
                node(
                    "AxiosError.from (/srv/app/node_modules/axios/lib/core/AxiosError.js:89:14)",
                    "async loadOrders (/srv/app/src/orders.js:57:3)",
                ),
            ),
            (
                "vendor bundles above the application's",
                stack(
                    "m",
                    "    at t (https://x.example/static/js/vendor.4f2c1.js:1:100)\n    at submit (https://x.example/static/js/main.4f2c1.js:5:5)",
                ),
                stack(
                    "m",
                    "    at n (https://x.example/js/chunk-vendors.9ab3e.js:2:3)\n    at submit (https://x.example/static/js/main.9ab3e.js:9:9)",
                ),
            ),
            (
                "Python: the innermost application frame, whoever called it",
                python(VIEWS_POST, ORDERS_LOAD, 0),
                python(
                    r#"File "/app/jobs/nightly.py", line 9, in run"#,
                    r#"File "/app/api/orders.py", line 23, in load"#,
                    5,
                ),
            ),
            (
                "Java: the first application frame under the JDK's",
                java(REQUIRE_NON_NULL, PLACE_ORDER),
                java(
                    "java.util.HashMap.get(HashMap.java:556)",
                    "com.shop.orders.OrderService.place(OrderService.java:57)",
                ),
            ),
            (
                ".NET line numbers",
                stack("m", "   at Shop.Orders.Place(Int32 id) in C:\\src\\Orders.cs:line 42"),
                stack("m", "   at Shop.Orders.Place(Int32 id) in C:\\src\\Orders.cs:line 57"),
            ),
            (
                "the stack's header line is not its frame",
                json!({"message": "Payment declined", "type": "CardError", "stack": "CardError: Payment declined\ngoroutine 7 [running]:\nmain.charge()"}),
                json!({"message": "Payment declined", "type": "CardError", "stack": "Uncaught CardError: Payment declined\ngoroutine 7 [running]:\nmain.charge()"}),
            ),
            (
                "location without a stack: line, column, origin, bundle hash",
                json!({"message": "m", "location": "https://shop.example.com/static/js/app.4f2c1.js:10:5"}),
                json!({"message": "m", "location": "https://cdn.example.net/static/js/app.9ab3e.js:99:1"}),
            ),
            (
                "location as `fn (file:line:col)`",
                json!({"message": "m", "location": "handleClick (app.4f2c1.js:10:5)"}),
                json!({"message": "m", "location": "at handleClick (app.9ab3e.js:1:2)"}),
            ),
            (
                "code, url, http, release, user and extra",
                with(
                    &plain,
                    json!({"code": "E1", "url": "/a?x=1", "http": {"method": "GET", "status": 500}, "release": "1.0.0", "user": "u1", "extra": {"cart": 3}}),
                ),
                with(
                    &plain,
                    json!({"code": 42, "url": "/b", "http": {"method": "POST", "status": 502}, "release": "1.1.0", "user": {"id": "u2"}, "extra": {"cart": 9, "flag": true}}),
                ),
            ),
            (
                "extra.fingerprint over everything else",
                with(&plain, json!({"extra": {"fingerprint": "checkout-timeout"}})),
                json!({"message": "Another thing", "type": "Other", "location": "x.js:1:1", "extra": {"fingerprint": "checkout-timeout"}}),
            ),
            (
                "extra.fingerprint as a list, joined",
                with(&plain, json!({"extra": {"fingerprint": ["checkout", "timeout"]}})),
                json!({"message": "Another thing", "extra": {"fingerprint": ["checkout", "timeout"]}}),
            ),
            (
                "extra.fingerprint as one string or a list of it",
                msg("a").tap(json!({"extra": {"fingerprint": "checkout"}})),
                msg("b").tap(json!({"extra": {"fingerprint": ["checkout"]}})),
            ),
            (
                "an extra.fingerprint that is no string or list of strings is ignored",
                with(&plain, json!({"extra": {"fingerprint": 42}})),
                with(&plain, json!({"extra": {"fingerprint": ["a", 1]}})),
            ),
            (
                "a blank extra.fingerprint is ignored",
                with(&plain, json!({"extra": {"fingerprint": " "}})),
                plain.clone(),
            ),
        ]
    }

    /// Pairs of events that are different errors, by the rule that tells them apart.
    fn different_errors() -> Vec<(&'static str, Value, Value)> {
        let frame = |f: &str| stack("m", &format!("Error: m\n    at {f}"));
        let client = |fingerprint: Value| msg("m").tap(json!({"extra": {"fingerprint": fingerprint}}));
        vec![
            ("another type", msg("m").tap(json!({"type": "TypeError"})), msg("m").tap(json!({"type": "RangeError"}))),
            ("a type or none", msg("m"), json!({"message": "m"})),
            ("another message shape", msg("Order 1 not found"), msg("Order 1 was cancelled")),
            (
                "another word outside the quotes",
                msg("Cannot read properties of undefined (reading 'id')"),
                msg("Cannot read properties of null (reading 'id')"),
            ),
            ("an apostrophe is no quote", msg("can't find 'x'"), msg("can't save 'x'")),
            ("another Korean message", msg("주문을 찾을 수 없습니다"), msg("결제를 찾을 수 없습니다")),
            (
                "a number glued to another Korean word",
                msg("주문12345를 찾을 수 없습니다"),
                msg("결제12345를 찾을 수 없습니다"),
            ),
            (
                "another function",
                frame("handleClick (/srv/app/src/cart.js:1:1)"),
                frame("handleSubmit (/srv/app/src/cart.js:1:1)"),
            ),
            (
                "another file",
                frame("handleClick (/srv/app/src/cart.js:1:1)"),
                frame("handleClick (/srv/app/src/checkout.js:1:1)"),
            ),
            (
                "another bundle",
                frame("handleClick (https://x.example/app.4f2c1.js:1:1)"),
                frame("handleClick (https://x.example/admin.4f2c1.js:1:1)"),
            ),
            (
                "another application frame under the same node_modules frame",
                node(AXIOS_TOP, LOAD_ORDERS),
                node(AXIOS_TOP, "loadCart (/srv/app/src/cart.js:42:11)"),
            ),
            (
                "another innermost Python application frame",
                python(VIEWS_POST, ORDERS_LOAD, 0),
                python(VIEWS_POST, r#"File "/app/api/orders.py", line 17, in load_all"#, 0),
            ),
            (
                "another Java application method",
                java(REQUIRE_NON_NULL, PLACE_ORDER),
                java(REQUIRE_NON_NULL, "com.shop.orders.OrderService.cancel(OrderService.java:42)"),
            ),
            (
                "another location",
                json!({"message": "m", "location": "src/cart.js:10:5"}),
                json!({"message": "m", "location": "src/checkout.js:10:5"}),
            ),
            ("another extra.fingerprint", client(json!("checkout")), client(json!("cart"))),
            ("an extra.fingerprint or none", client(json!("checkout")), msg("m")),
            ("a list is joined, not concatenated", client(json!(["ab", "c"])), client(json!(["a", "bc"]))),
        ]
    }

    trait Tap {
        fn tap(self, changes: Value) -> Value;
    }

    impl Tap for Value {
        fn tap(self, changes: Value) -> Value {
            with(&self, changes)
        }
    }

    #[test]
    fn occurrences_that_differ_only_in_what_varies_share_a_fingerprint() {
        let split: Vec<String> = same_error()
            .into_iter()
            .filter(|(_, a, b)| ingested(a) != ingested(b))
            .map(|(rule, a, b)| format!("{rule}:\n  {a}\n  {b}"))
            .collect();
        assert!(split.is_empty(), "split, but one error:\n{}", split.join("\n"));
    }

    #[test]
    fn different_errors_get_different_fingerprints() {
        let grouped: Vec<String> = different_errors()
            .into_iter()
            .filter(|(_, a, b)| ingested(a) == ingested(b))
            .map(|(rule, a, b)| format!("{rule}:\n  {a}\n  {b}"))
            .collect();
        assert!(grouped.is_empty(), "grouped, but different errors:\n{}", grouped.join("\n"));
    }

    #[test]
    fn a_top_level_fingerprint_is_the_servers_and_does_not_replace_the_computed_one() {
        let exported = msg("Order 1 not found").tap(json!({"fingerprint": "0123456789abcdef"}));
        assert_eq!(ingested(&exported), ingested(&msg("Order 2 not found")));
    }

    #[test]
    fn message_shapes_keep_the_words_and_replace_what_varies() {
        let shape = |message: &str| String::from_utf8(message_shape(message)).expect("UTF-8 in, UTF-8 out");
        assert_eq!(shape("Order ord_8f2k1 for bob@example.com: 'x' at 10.0.0.1:80"), "Order <*> for <*>: <*> at <*>");
        assert_eq!(shape("GET /a/12?x=1&y=2, then \"b\""), "GET /a/<*>, then <*>");
        assert_eq!(shape("  don't  stop\t-5 "), "don't stop <*>");
        assert_eq!(shape("주문 12345번을 'x'이(가)"), "주문 <*>번을 <*>이(가)");
    }

    #[test]
    fn frames_keep_function_and_file_only() {
        let key = |line: &str| {
            let frame = Frame::parse(line).unwrap_or_else(|| panic!("`{line}` is a frame"));
            String::from_utf8(frame.key()).expect("UTF-8").replace('\0', " | ")
        };
        assert_eq!(
            key("at async handleClick (https://x.example/static/app.4f2c1.js?v=2:10:5)"),
            "handleClick | /static/app.js"
        );
        assert_eq!(key("handleClick@https://x.example/assets/index-4f2c1a3b.js:1:2"), "handleClick | /assets/index.js");
        assert_eq!(key(r#"File "/app/orders.py", line 17, in load"#), "load | /app/orders.py");
        assert_eq!(key("at app//com.shop.Orders.place(Orders.java:42)"), "com.shop.Orders.place | Orders.java");
    }

    #[test]
    fn a_client_fingerprint_of_default_is_the_computed_one_and_default_parts_extend_it() {
        let fp = |client: Value| fingerprint(Some("TypeError"), "x is undefined", (None, None, &[]), Some(&client));
        let computed = fingerprint(Some("TypeError"), "x is undefined", (None, None, &[]), None);
        assert_eq!(fp(serde_json::json!(["{{ default }}"])), computed);
        let extended = fp(serde_json::json!(["{{ default }}", "checkout"]));
        assert_ne!(extended, computed);
        assert_ne!(extended, fp(serde_json::json!(["{{ default }}", "cart"])));
        assert_eq!(extended, fp(serde_json::json!(["{{default}}", "checkout"])));
    }

    #[test]
    fn structured_frames_group_by_the_top_in_app_frame_the_sender_marks() {
        let frame = |function: &str, file: &str, in_app: Option<bool>| StackFrame {
            function: Some(function.into()),
            file: Some(file.into()),
            line: Some(1),
            column: Some(2),
            in_app,
        };
        let fp = |frames: &[StackFrame]| fingerprint(Some("TypeError"), "x is undefined", (None, None, frames), None);
        let paying =
            fp(&[frame("lib", "node_modules/lib.js", Some(false)), frame("pay", "app/checkout.js", Some(true))]);
        let other_caller =
            fp(&[frame("helper", "app/helper.js", Some(false)), frame("pay", "app/checkout.js", Some(true))]);
        assert_eq!(paying, other_caller, "a frame the sender marks as not in app does not count, whatever its file");
        assert_ne!(paying, fp(&[frame("refund", "app/refund.js", Some(true))]), "another in-app frame, another issue");
        let judged = fp(&[frame("lib", "node_modules/lib.js", None), frame("pay", "app/checkout.js", None)]);
        assert_eq!(judged, paying, "without in_app the file decides, as for a text stack");
        let text = "TypeError: x is undefined\n    at lib (node_modules/lib.js:1:2)\n    at pay (app/checkout.js:7:9)";
        let as_text = fingerprint(Some("TypeError"), "x is undefined", (None, Some(text), &[]), None);
        assert_eq!(as_text, paying, "the same stack as frames or as text is one issue");
        let client = json!("checkout");
        let chosen =
            fingerprint(Some("TypeError"), "x", (None, None, &[frame("pay", "a.js", Some(true))]), Some(&client));
        assert_eq!(
            chosen,
            fingerprint(None, "y", (None, None, &[]), Some(&client)),
            "the client's grouping still wins"
        );
    }

    #[test]
    fn odd_input_gives_a_fingerprint() {
        let huge_quotes = "'a 1 ".repeat(50_000);
        let huge_words = "x".repeat(300_000);
        let odd = [
            "",
            " ",
            "'",
            "\"\"\"",
            "@",
            "a@",
            "@b.c",
            "?",
            "?=",
            "?a=",
            "0x",
            "-",
            "+-+-1",
            "‘’“”",
            "“unclosed",
            "\u{0}\u{1}\u{7f}",
            "한국어 메시지 🙂 ١٢٣",
            "at ",
            "at )",
            "at (",
            "File \"",
            "File \"x\", line",
            "@:1",
            "x@y:",
            huge_quotes.as_str(),
            huge_words.as_str(),
        ];
        for text in odd {
            for client in [None, Some(json!(text)), Some(json!([text, text]))] {
                let fp = fingerprint(Some(text), text, (Some(text), Some(text), &[]), client.as_ref());
                assert!(is_fingerprint(&fp), "{fp:?} for {:?}", text.chars().take(40).collect::<String>());
            }
        }
    }

    fn is_fingerprint(text: &str) -> bool {
        text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// Text made of what the rules look for, so that the rules meet odd combinations of it.
    fn tricky() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "'",
            "\"",
            "`",
            "‘",
            "’",
            "“",
            "”",
            "@",
            ".",
            "-",
            "+",
            "?",
            "=",
            "&",
            ":",
            "(",
            ")",
            " (",
            "at ",
            "\n",
            "File \"",
            "\", line ",
            ", in ",
            "0x",
            "1",
            "a",
            "ff",
            "deadbeef",
            "550e8400-e29b-41d4-a716-446655440000",
            "x.com",
            "://",
            "/",
            "node_modules",
            "주문",
            "🙂",
            " ",
            "\t",
        ]);
        prop::collection::vec(pieces, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn any_text_gives_16_hex_digits(kind in any::<String>(), message in any::<String>(), location in any::<String>(), stack in any::<String>(), client in any::<String>()) {
            for client in [None, Some(json!(client))] {
                let fp = fingerprint(Some(&kind), &message, (Some(&location), Some(&stack), &[]), client.as_ref());
                prop_assert!(is_fingerprint(&fp), "{:?}", fp);
            }
        }

        #[test]
        fn text_made_of_what_the_rules_look_for_gives_16_hex_digits(message in tricky(), stack in tricky(), location in tricky()) {
            let fp = fingerprint(None, &message, (Some(&location), Some(&stack), &[]), None);
            prop_assert!(is_fingerprint(&fp), "{:?}", fp);
            let fp = fingerprint(None, &message, (None, None, &[]), None);
            prop_assert!(is_fingerprint(&fp), "{:?}", fp);
        }
    }
}
