//! An incoming event before the ingest policy: what every front door (our JSON, a Sentry
//! envelope, an OTLP log record) turns its wire format into, and why one can be refused.
//!
//! A draft is typed but not trusted: its texts are not cleaned yet, its environment not checked,
//! its time not bounded, its size not fitted. The ingest policy (`crate::ingest::policy`) does all
//! of that, once, for every format.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{Http, Level};

/// One incoming event as its decoder understood it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    /// The event's own environment; the batch's default applies when `None`.
    pub env: Option<String>,
    /// When it happened; the time it was received when `None`.
    pub timestamp: Option<OffsetDateTime>,
    pub level: Level,
    pub message: String,
    /// `type`: what kind of event (`vue`, `http`, an exception's type, ...).
    pub kind: Option<String>,
    pub code: Option<String>,
    pub http: Option<Http>,
    pub url: Option<String>,
    pub location: Option<String>,
    pub user: Option<Value>,
    /// The stack as text, as stored and shown.
    pub stack: Option<String>,
    /// The stack as structured frames, innermost first, when the format carries them (Sentry
    /// sends frames with `in_app`); the fingerprint then reads these instead of the text.
    pub frames: Vec<StackFrame>,
    pub release: Option<String>,
    /// Every other field, kept under `extra`.
    pub extra: Map<String, Value>,
    /// The client's own grouping (our `extra.fingerprint`, Sentry's `fingerprint`): a non-blank
    /// string or a list of strings replaces the computed fingerprint.
    pub fingerprint: Option<Value>,
}

/// One frame of a structured stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackFrame {
    pub function: Option<String>,
    /// The file or module, as the runtime names it (a path or a URL).
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// Whether the frame is the application's own code, when the sender knows; otherwise the
    /// fingerprint decides from the file (`node_modules`, vendor bundles, ...).
    pub in_app: Option<bool>,
}

/// Why one event of a batch was refused: what it concerns, and the words the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub kind: RejectionKind,
    message: String,
}

impl Rejection {
    pub fn new(kind: RejectionKind, message: impl Into<String>) -> Rejection {
        Rejection { kind, message: message.into() }
    }
}

/// What a rejected event got wrong; a few kinds, so they can label a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    NotAnObject,
    TooDeep,
    TooLarge,
    Message,
    Level,
    Env,
    Timestamp,
    Http,
    User,
    Code,
    /// Another field of the wrong type.
    Invalid,
}

impl RejectionKind {
    /// The label of the `logboard_events_rejected_total` metric.
    pub fn label(self) -> &'static str {
        match self {
            RejectionKind::NotAnObject => "not_an_object",
            RejectionKind::TooDeep => "too_deep",
            RejectionKind::TooLarge => "too_large",
            RejectionKind::Message => "message",
            RejectionKind::Level => "level",
            RejectionKind::Env => "env",
            RejectionKind::Timestamp => "timestamp",
            RejectionKind::Http => "http",
            RejectionKind::User => "user",
            RejectionKind::Code => "code",
            RejectionKind::Invalid => "invalid",
        }
    }
}
