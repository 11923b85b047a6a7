//! The log event: what is stored ([`StoredEvent`], one JSON object), what comes in ([`Draft`],
//! whatever the wire format), and the steps the ingest policy applies between them: [`clean`]
//! strips unsafe characters and PII from every text, [`fingerprint`] groups repeats of an error,
//! [`fit_to_size`] cuts an event to the size limit.

mod clean;
mod draft;
mod fingerprint;
mod fit;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use ulid::Ulid;

pub use clean::{clean, is_unsafe_char, strip_unsafe_chars, strip_unsafe_in, strip_unsafe_in_map};
pub use draft::{Draft, Rejection, RejectionKind, StackFrame};
pub use fingerprint::fingerprint;
pub use fit::fit_to_size;

pub use crate::clock::{from_unix_ms, unix_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Debug, Level::Info, Level::Warn, Level::Error, Level::Fatal];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    /// Case-insensitive, with the usual aliases (`warning`, `critical`, ...).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "debug" | "trace" => Ok(Level::Debug),
            "info" | "information" | "notice" => Ok(Level::Info),
            "warn" | "warning" => Ok(Level::Warn),
            "error" | "err" => Ok(Level::Error),
            "fatal" | "critical" | "crit" | "emergency" | "alert" => Ok(Level::Fatal),
            _ => Err(format!("unknown level `{text}`; use debug, info, warn, error or fatal")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Http {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// An event as stored: in the embedded store, and as one CloudWatch log event (one JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// A ULID whose time part is the occurrence time, so the id alone narrows a search.
    pub id: Ulid,
    pub project: String,
    pub env: String,
    /// When it happened (millisecond precision, UTC).
    #[serde(with = "timestamp_format")]
    pub timestamp: OffsetDateTime,
    #[serde(with = "timestamp_format")]
    pub received_at: OffsetDateTime,
    pub level: Level,
    pub message: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Fields cut (or dropped) to fit the event size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Vec<String>>,
}

impl StoredEvent {
    /// The optional text fields a search compares whole, by their names in the search language
    /// (`http.method` aside).
    pub fn text_fields(&self) -> [(&'static str, Option<&str>); 6] {
        [
            ("type", self.kind.as_deref()),
            ("code", self.code.as_deref()),
            ("url", self.url.as_deref()),
            ("location", self.location.as_deref()),
            ("release", self.release.as_deref()),
            ("fingerprint", self.fingerprint.as_deref()),
        ]
    }

    /// An event with only what every event has; the optional fields empty.
    pub fn bare(
        id: Ulid,
        (project, env): (&str, &str),
        (timestamp, received_at): (OffsetDateTime, OffsetDateTime),
        level: Level,
        message: String,
    ) -> StoredEvent {
        StoredEvent {
            id,
            project: project.to_string(),
            env: env.to_string(),
            timestamp,
            received_at,
            level,
            message,
            kind: None,
            code: None,
            http: None,
            url: None,
            location: None,
            user: None,
            stack: None,
            release: None,
            extra: None,
            fingerprint: None,
            truncated: None,
        }
    }

    /// The one-line JSON form (what CloudWatch stores as the message).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            // Only non-string map keys can fail, and our types have none.
            format!("{{\"message\":\"unserialisable event: {e}\"}}")
        })
    }

    pub fn timestamp_ms(&self) -> i64 {
        unix_ms(self.timestamp)
    }
}

/// A new id carrying the occurrence time in its first 48 bits.
pub fn new_id(timestamp: OffsetDateTime) -> Ulid {
    let ms = u64::try_from(unix_ms(timestamp)).unwrap_or(0);
    Ulid::from_parts(ms, rand::random::<u128>())
}

/// The id of an event being accepted: [`new_id`], except that the ids a thread makes for one
/// millisecond count up from the first one's random part (ULID's monotonic mode). The store
/// indexes events by time, then id: the events of a batch sent with one time (a client that
/// stamps the batch, or whole seconds) would otherwise go to random pages of that time's range of
/// the index, each a page to write at the next commit; counting up, they go to one place.
pub fn event_id(timestamp: OffsetDateTime) -> Ulid {
    // 79 random bits to start from: counting up by one can never overflow the 80 of a ULID.
    const START_MASK: u128 = (1 << 79) - 1;
    thread_local!(static LAST: std::cell::Cell<(u64, u128)> = const { std::cell::Cell::new((u64::MAX, 0)) });
    let ms = u64::try_from(unix_ms(timestamp)).unwrap_or(0);
    LAST.with(|last| {
        let (last_ms, last_random) = last.get();
        let random = if last_ms == ms { last_random + 1 } else { rand::random::<u128>() & START_MASK };
        last.set((ms, random));
        Ulid::from_parts(ms, random)
    })
}

pub(crate) fn truncate_to_ms(t: OffsetDateTime) -> OffsetDateTime {
    from_unix_ms(unix_ms(t)).unwrap_or(t)
}

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-11-24T15:04:05.123Z`.
pub mod timestamp_format {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;

    pub fn format(t: OffsetDateTime) -> String {
        let mut buffer = [0; LEN];
        match write(t, &mut buffer) {
            Some(text) => text.to_string(),
            None => slow_format(t),
        }
    }

    /// The length of the form of a year of four digits.
    const LEN: usize = 24;

    /// The form of `t` written into `buffer`, without allocating (two are written per stored
    /// event); `None` for a year that is not four digits, which [`slow_format`] writes.
    fn write(t: OffsetDateTime, buffer: &mut [u8; LEN]) -> Option<&str> {
        let utc = t.checked_to_offset(time::UtcOffset::UTC)?;
        let year = u32::try_from(utc.year()).ok().filter(|year| *year <= 9999)?;
        let fields = [
            (0, 4, year),
            (5, 2, u32::from(u8::from(utc.month()))),
            (8, 2, u32::from(utc.day())),
            (11, 2, u32::from(utc.hour())),
            (14, 2, u32::from(utc.minute())),
            (17, 2, u32::from(utc.second())),
            (20, 3, u32::from(utc.millisecond())),
        ];
        *buffer = *b"0000-00-00T00:00:00.000Z";
        for (start, digits, mut value) in fields {
            for place in buffer[start..start + digits].iter_mut().rev() {
                *place = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        std::str::from_utf8(buffer).ok()
    }

    fn slow_format(t: OffsetDateTime) -> String {
        let utc = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
        utc.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"))
            .unwrap_or_else(|_| utc.to_string())
    }

    /// `None` for text that is not RFC 3339, and for a time whose UTC form is outside years
    /// 1–9999 (`9999-12-31T23:00:00-05:00`): converting it would overflow.
    pub fn parse(text: &str) -> Option<OffsetDateTime> {
        let t = OffsetDateTime::parse(text, &Rfc3339).ok()?.checked_to_offset(time::UtcOffset::UTC)?;
        (t.year() >= 1).then_some(t)
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let mut buffer = [0; LEN];
        match write(*t, &mut buffer) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&slow_format(*t)),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not RFC 3339")))
    }

    #[cfg(test)]
    mod tests {
        use time::macros::datetime;

        #[test]
        fn the_fast_form_is_the_described_one() {
            for t in [
                datetime!(2026-11-24 15:04:05.123456 UTC),
                datetime!(2026-11-24 23:30:00.250 +09:00),
                datetime!(0001-01-01 00:00:00 UTC),
                datetime!(9999-12-31 23:59:59.999999999 UTC),
                datetime!(1970-01-01 00:00:00.001 -05:00),
                datetime!(0000-06-01 00:00:00 UTC),
                datetime!(-0001-06-01 00:00:00 UTC),
            ] {
                assert_eq!(super::format(t), super::slow_format(t), "{t}");
            }
        }
    }

    /// The same for an optional time: `null` when there is none.
    pub mod option {
        use serde::Serializer;
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::format(*t)),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn event_ids_of_one_millisecond_count_up_and_carry_their_time() {
        let t = from_unix_ms(1_764_000_000_123).expect("time");
        let ids: Vec<Ulid> = (0..1_000).map(|_| event_id(t)).collect();
        assert!(ids.windows(2).all(|w| w[1].random() == w[0].random() + 1), "counting up by one");
        assert!(ids.iter().all(|id| id.timestamp_ms() == 1_764_000_000_123));
        let later = event_id(t + time::Duration::milliseconds(1));
        assert_eq!(later.timestamp_ms(), 1_764_000_000_124);
        // Another millisecond starts from a random place of its own; so does another thread.
        let other_thread = std::thread::spawn(move || event_id(t)).join().expect("thread");
        assert!(!ids.contains(&other_thread));
        assert_ne!(other_thread.random(), ids[0].random());
    }
}
