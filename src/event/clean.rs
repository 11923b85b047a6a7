//! Logged text is data: every string and key of an event, whatever field it ends up in, loses
//! its control characters and invisible formatting characters, then its PII.

use serde_json::{Map, Value};

use super::Draft;
use crate::scrub::Scrubber;

/// Logged text is data: every string and key of the draft loses its control characters (but
/// newline and tab) and its invisible formatting characters, then PII is scrubbed.
pub fn clean(draft: &mut Draft, scrubber: &Scrubber) {
    let text = |text: &mut String| {
        strip_unsafe_chars(text);
        scrubber.scrub(text);
    };
    let Draft {
        env,
        timestamp: _,
        level: _,
        message,
        kind,
        code,
        http,
        url,
        location,
        user,
        stack,
        frames,
        release,
        extra,
        fingerprint,
    } = draft;
    text(message);
    for field in [env, kind, code, url, location, stack] {
        field.as_mut().map(text);
    }
    // An identifier, not free text: `my-app@2024.05.beta` is not an e-mail address.
    if let Some(release) = release {
        strip_unsafe_chars(release);
    }
    if let Some(method) = http.as_mut().and_then(|http| http.method.as_mut()) {
        text(method);
    }
    for frame in frames {
        frame.function.as_mut().map(text);
        frame.file.as_mut().map(text);
    }
    for value in [user, fingerprint].into_iter().flatten() {
        strip_unsafe_in(value);
        scrubber.value(value);
    }
    strip_unsafe_in_map(extra);
    scrubber.object(extra);
}

/// Removes [`is_unsafe_char`] characters from every string and key of `value`.
pub fn strip_unsafe_in(value: &mut Value) {
    match value {
        Value::String(s) => strip_unsafe_chars(s),
        Value::Array(items) => items.iter_mut().for_each(strip_unsafe_in),
        Value::Object(map) => strip_unsafe_in_map(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

pub fn strip_unsafe_in_map(map: &mut Map<String, Value>) {
    if !map.keys().any(|k| has_unsafe_chars(k)) {
        map.values_mut().for_each(strip_unsafe_in);
        return;
    }
    for (mut key, mut v) in std::mem::take(map) {
        strip_unsafe_in(&mut v);
        strip_unsafe_chars(&mut key);
        map.entry(key).or_insert(v);
    }
}

/// Characters no logged text keeps: control characters other than newline and tab, and
/// invisible formatting characters, bidi overrides among them (`\u{202e}1.0.0.721` would show
/// as `127.0.0.1`). Zero-width (non-)joiners stay: scripts and emoji need them.
pub fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}' | '\u{200e}' | '\u{200f}'
            | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// Whether `text` has an [`is_unsafe_char`] character.
fn has_unsafe_chars(text: &str) -> bool {
    // Every unsafe character but the ASCII controls is outside ASCII: printable ASCII text (most
    // of it) is answered by a byte loop instead of decoding characters.
    // A fold without an early exit, which the compiler turns into vector instructions.
    let outside_printable_ascii =
        text.bytes().fold(false, |found, b| found | !matches!(b, b' '..=b'~' | b'\n' | b'\t'));
    outside_printable_ascii && text.chars().any(is_unsafe_char)
}

/// Removes [`is_unsafe_char`] characters in place.
pub fn strip_unsafe_chars(text: &mut String) {
    if has_unsafe_chars(text) {
        text.retain(|c| !is_unsafe_char(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_invisible_characters_are_unsafe_but_joiners_and_whitespace_are_not() {
        for c in ['\u{202e}', '\u{2066}', '\u{200b}', '\u{feff}', '\u{1b}', '\u{7}', '\u{e0041}'] {
            assert!(is_unsafe_char(c), "{c:?}");
        }
        for c in ['\n', '\t', ' ', 'a', '한', '\u{200d}', '\u{200c}'] {
            assert!(!is_unsafe_char(c), "{c:?}");
        }
        let mut text = "\u{202e}1.0.0.721".to_string();
        strip_unsafe_chars(&mut text);
        assert_eq!(text, "1.0.0.721");
    }
}
