//! Cutting an event to the size limit: the largest parts first, so one huge field costs only
//! itself and small fields stay whole; each cut part is named in `truncated`.

use serde::Serialize;

use super::StoredEvent;
use super::draft::{Rejection, RejectionKind};

/// The parts of an event that can be shortened (or, for objects, dropped) to fit the size limit.
#[derive(Debug, Clone, Copy)]
enum Part {
    Message,
    Stack,
    Url,
    Location,
    Kind,
    Code,
    Release,
    Method,
    User,
    Extra,
}

impl Part {
    const ALL: [Part; 10] = [
        Part::Message,
        Part::Stack,
        Part::Url,
        Part::Location,
        Part::Kind,
        Part::Code,
        Part::Release,
        Part::Method,
        Part::User,
        Part::Extra,
    ];

    /// The name listed in `truncated`.
    fn name(self) -> &'static str {
        match self {
            Part::Message => "message",
            Part::Stack => "stack",
            Part::Url => "url",
            Part::Location => "location",
            Part::Kind => "type",
            Part::Code => "code",
            Part::Release => "release",
            Part::Method => "http.method",
            Part::User => "user",
            Part::Extra => "extra",
        }
    }

    fn text(self, event: &mut StoredEvent) -> Option<&mut String> {
        match self {
            Part::Message => Some(&mut event.message),
            Part::Stack => event.stack.as_mut(),
            Part::Url => event.url.as_mut(),
            Part::Location => event.location.as_mut(),
            Part::Kind => event.kind.as_mut(),
            Part::Code => event.code.as_mut(),
            Part::Release => event.release.as_mut(),
            Part::Method => event.http.as_mut().and_then(|h| h.method.as_mut()),
            Part::User | Part::Extra => None,
        }
    }

    /// Bytes always kept of this part: the start of a message says what happened.
    fn kept_bytes(self) -> usize {
        match self {
            Part::Message => MIN_KEPT_MESSAGE_BYTES,
            _ => 0,
        }
    }

    /// How many bytes cutting this part can save.
    fn spare_bytes(self, event: &mut StoredEvent) -> usize {
        match self {
            Part::User => event.user.as_ref().map_or(0, json_len),
            Part::Extra => event.extra.as_ref().map_or(0, json_len),
            text => text.text(event).map_or(0, |t| t.len().saturating_sub(text.kept_bytes() + TRUNCATION_MARK.len())),
        }
    }

    /// Shortens the part by at least `excess` bytes where it can; objects are dropped whole.
    fn cut(self, event: &mut StoredEvent, excess: usize) {
        match self {
            Part::User => event.user = None,
            Part::Extra => event.extra = None,
            text => {
                let keep = text.kept_bytes();
                truncate_text(text.text(event), excess, keep);
            }
        }
    }
}

/// Shortens the largest parts first until the event fits `max_bytes`, naming them in
/// `truncated`, so one huge field costs only itself; rejects the event only when even that is
/// not enough.
pub fn fit_to_size(mut event: StoredEvent, max_bytes: usize) -> Result<StoredEvent, Rejection> {
    // Nearly every event is far below the limit: a bound on its JSON length, summed without
    // serialising it, tells so.
    if json_len_bound(&event) <= max_bytes {
        return Ok(event);
    }
    let original = event.to_json().len();
    let mut size = original;
    while size > max_bytes {
        let largest = Part::ALL
            .into_iter()
            .map(|part| (part.spare_bytes(&mut event), part))
            .max_by_key(|(spare, _)| *spare)
            .filter(|(spare, _)| *spare > 0);
        let Some((_, part)) = largest else {
            return Err(Rejection::new(
                RejectionKind::TooLarge,
                format!("event is {original} bytes, over the limit of {max_bytes} bytes even with long fields cut"),
            ));
        };
        // Named first, so the cut makes room for the `truncated` list too.
        let cut = event.truncated.get_or_insert_default();
        if !cut.iter().any(|name| name == part.name()) {
            cut.push(part.name().to_string());
        }
        let excess = event.to_json().len().saturating_sub(max_bytes);
        part.cut(&mut event, excess);
        size = event.to_json().len();
    }
    Ok(event)
}

/// At least the length of `event.to_json()`: each byte of a text is at most six bytes of JSON
/// (`\u001f`), and the names, punctuation, id, times and level take less than [`FIXED_JSON_BYTES`].
fn json_len_bound(event: &StoredEvent) -> usize {
    let texts =
        [&event.kind, &event.code, &event.url, &event.location, &event.stack, &event.release, &event.fingerprint];
    let method = event.http.as_ref().and_then(|http| http.method.as_ref());
    FIXED_JSON_BYTES
        + text_bound(&event.project)
        + text_bound(&event.env)
        + text_bound(&event.message)
        + texts.into_iter().map(Option::as_ref).chain([method]).flatten().map(|text| text_bound(text)).sum::<usize>()
        + event.user.as_ref().map_or(0, value_bound)
        + event.extra.as_ref().map_or(0, map_bound)
        + event.truncated.iter().flatten().map(|name| text_bound(name) + 1).sum::<usize>()
}

/// Room for every field's name and punctuation (~250 bytes), the id, the two times, the level
/// and the HTTP status.
const FIXED_JSON_BYTES: usize = 512;

fn text_bound(text: &str) -> usize {
    6 * text.len() + 2
}

fn value_bound(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) => 5,
        // An f64 is at most 24 characters (`-2.2250738585072014e-308`), an integer 20.
        Value::Number(_) => 25,
        Value::String(text) => text_bound(text),
        Value::Array(items) => 2 + items.iter().map(|item| value_bound(item) + 1).sum::<usize>(),
        Value::Object(map) => map_bound(map),
    }
}

fn map_bound(map: &serde_json::Map<String, serde_json::Value>) -> usize {
    2 + map.iter().map(|(key, value)| text_bound(key) + 2 + value_bound(value)).sum::<usize>()
}

fn json_len<T: Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |json| json.len())
}

const TRUNCATION_MARK: &str = "… [truncated]";
/// The start of a message is always kept, whatever else is cut.
const MIN_KEPT_MESSAGE_BYTES: usize = 1024;

/// Cuts `text` by at least `excess` bytes (as JSON may escape, a little more), keeping `keep` bytes.
fn truncate_text(text: Option<&mut String>, excess: usize, keep: usize) -> bool {
    let Some(text) = text else { return false };
    if text.len() <= keep {
        return false;
    }
    // Escapes can make a character up to 6 bytes of JSON; cutting its raw length by the excess
    // plus the mark is enough unless the cut part was escape-heavy, which the caller re-measures.
    let escaped_excess = serde_json::to_string(text.as_str()).map_or(text.len(), |json| json.len() - 2) - text.len();
    let target = text.len().saturating_sub(excess + escaped_excess + TRUNCATION_MARK.len()).max(keep);
    let mut end = target.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(TRUNCATION_MARK);
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;
    use ulid::Ulid;

    use super::*;
    use crate::event::{Http, Level};

    #[test]
    fn the_bound_is_never_below_the_json_length() {
        let t = datetime!(2026-11-24 15:04:05.123 UTC);
        let mut event = StoredEvent::bare(Ulid::nil(), ("p", "e"), (t, t), Level::Fatal, String::new());
        assert!(json_len_bound(&event) >= event.to_json().len());
        let nasty = "\u{1}\u{1f}\"\\\n\u{7f}é한😀".repeat(40);
        event.message = nasty.clone();
        event.kind = Some(nasty.clone());
        event.code = Some(nasty.clone());
        event.url = Some(nasty.clone());
        event.location = Some(nasty.clone());
        event.stack = Some(nasty.clone());
        event.release = Some(nasty.clone());
        event.fingerprint = Some(nasty.clone());
        event.http = Some(Http { method: Some(nasty.clone()), status: Some(599) });
        event.user = Some(json!({ nasty.clone(): [nasty.clone(), -1.7976931348623157e308, null, true, {}] }));
        event.extra =
            json!({ "a": [[], {}, u64::MAX, i64::MIN, 2.2250738585072014e-308], nasty.clone(): {"x": false} })
                .as_object()
                .cloned();
        event.truncated = Some(vec!["message".into(), "http.method".into()]);
        assert!(json_len_bound(&event) >= event.to_json().len());
    }
}
