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
