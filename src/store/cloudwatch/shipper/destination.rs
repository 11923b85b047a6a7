//! What the shipper sends to and hears back from: the destination trait (CloudWatch Logs in
//! production, fakes in tests), the event as sent, what a put reports and why it failed (why an
//! event was refused for good is the spool's [`DeadReason`], kept with the dead letter).

use async_trait::async_trait;

pub use crate::store::cloudwatch::spool::DeadReason;

/// One event as the destination receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// Its row in the spool (not sent).
    pub seq: i64,
    pub timestamp_ms: i64,
    pub message: String,
}

/// What a successful put reports: events the destination refused while storing the rest.
/// Indices are into the events of the call, as in CloudWatch's `rejectedLogEventsInfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// Events from this index on were too far in the future.
    pub too_new_start: Option<usize>,
    /// Events before this index were older than 14 days.
    pub too_old_end: Option<usize>,
    /// Events before this index were older than the group's retention.
    pub expired_end: Option<usize>,
}

/// Rejected events of one call, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejections {
    pub too_new: usize,
    pub too_old: usize,
    pub expired: usize,
}

impl Rejections {
    pub fn total(&self) -> usize {
        self.too_new + self.too_old + self.expired
    }
}

impl PutOutcome {
    /// Why the event at `index` was refused, if it was (each event under one reason).
    pub fn reason_of(&self, index: usize) -> Option<DeadReason> {
        if self.too_new_start.is_some_and(|start| index >= start) {
            Some(DeadReason::TooNew)
        } else if self.expired_end.is_some_and(|end| index < end) {
            Some(DeadReason::Expired)
        } else if self.too_old_end.is_some_and(|end| index < end) {
            Some(DeadReason::TooOld)
        } else {
            None
        }
    }

    /// Counts the rejected events of a call of `len` events, each under one reason.
    pub fn rejections(&self, len: usize) -> Rejections {
        let mut r = Rejections::default();
        for i in 0..len {
            match self.reason_of(i) {
                Some(DeadReason::TooNew) => r.too_new += 1,
                Some(DeadReason::Expired) => r.expired += 1,
                Some(_) => r.too_old += 1,
                None => {}
            }
        }
        r
    }
}

/// Why a call to the destination failed, as far as the writer needs to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    #[error("the log group or stream does not exist")]
    GroupOrStreamMissing,
    #[error("the log group or stream already exists")]
    AlreadyExists,
    #[error("throttled")]
    Throttled,
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// 5xx, timeouts, connection resets.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Credentials or permissions.
    #[error("access denied: {0}")]
    Denied(String),
    #[error("{0}")]
    Other(String),
}

impl PutError {
    /// Throttling and outages hit every stream alike: stop sending and back off.
    pub fn is_account_wide(&self) -> bool {
        matches!(self, PutError::Throttled | PutError::Transient(_))
    }
}

/// Where the writer sends events: CloudWatch Logs, or a fake in tests.
#[async_trait]
pub trait LogDestination: Send + Sync {
    /// One PutLogEvents call; `events` are in chronological order and within the limits.
    async fn put(&self, group: &str, stream: &str, events: &[OutEvent]) -> Result<PutOutcome, PutError>;
    async fn create_group(&self, group: &str) -> Result<(), PutError>;
    async fn create_stream(&self, group: &str, stream: &str) -> Result<(), PutError>;
}
