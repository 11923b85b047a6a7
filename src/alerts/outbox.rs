//! The outbox: notifications waiting to be delivered, and how each delivery went. This file
//! holds its types and the [`Outbox`] trait the engine (enqueue), the deliverer (due, record),
//! the monitor (channel health) and the web (a rule's deliveries) go through; the SQLite
//! implementation (`super::sqlite::SqliteAlerts`, in `data_dir/alerts.db`) keeps:
//! - one row per message the engine decided to send (the [`Notification`] as JSON, the alert it
//!   belongs to);
//! - one row per notification and channel, with its state (`pending`, `retrying`, `sent`,
//!   `failed`), attempts, the last error (secret-free) and when it is due.
//!
//! Every write is durable before it returns: an enqueued notification survives a restart, and a
//! delivery marked `sent` stays sent. Calls block (SQLite, an fsync): async callers run them on
//! `spawn_blocking`, as the deliverer does.

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::notification::Notification;
use crate::event::timestamp_format;

/// The most rows one [`Outbox::deliveries_of`] returns.
pub const MAX_LISTED: usize = 1000;

/// Where notifications wait for delivery and their outcomes are kept.
pub trait Outbox: Send + Sync {
    /// Stores `notification` for `alert_name` and one pending delivery per channel, at once, and
    /// wakes the deliverer. Returns the notification's id.
    fn enqueue(&self, alert_name: &str, notification: &Notification, channels: &[String]) -> anyhow::Result<i64>;

    /// The deliveries of `alert_name`'s notifications, newest notification first (at most
    /// `limit`, capped at [`MAX_LISTED`]).
    fn deliveries_of(&self, alert_name: &str, limit: usize) -> anyhow::Result<Vec<DeliveryRecord>>;

    /// Every channel that has had a delivery, and how its deliveries are going.
    fn channel_health(&self) -> anyhow::Result<Vec<ChannelHealth>>;

    /// A receiver that changes after every enqueue.
    fn subscribe(&self) -> watch::Receiver<u64>;

    /// `channel`'s deliveries due at `now_ms`, oldest first, at most `limit`.
    fn due(&self, channel: &str, now_ms: i64, limit: usize) -> anyhow::Result<Vec<Due>>;

    /// When `channel`'s next delivery is due (epoch ms), if any is waiting.
    fn next_due_at(&self, channel: &str) -> anyhow::Result<Option<i64>>;

    /// Records one attempt at delivering `notification_id` to `channel`, made at `at_ms`.
    fn record(&self, notification_id: i64, channel: &str, at_ms: i64, settled: &Settled) -> anyhow::Result<()>;

    /// Marks the waiting deliveries to channels not in `known` failed (a channel removed from the
    /// config while they waited): nobody would ever send them. Returns how many.
    fn fail_unknown_channels(&self, known: &[String]) -> anyhow::Result<usize>;

    /// Deletes notifications created before `before_ms` whose deliveries are all settled (`sent`
    /// or `failed`), so the outbox does not grow forever. Returns how many.
    fn prune(&self, before_ms: i64) -> anyhow::Result<usize>;
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not tried yet.
    Pending,
    /// Failed and will be tried again at `next_at`.
    Retrying,
    /// The channel accepted it.
    Sent,
    /// Given up: a permanent error, or retries for longer than the backoff allows.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
        }
    }

    /// The state named `text` (as [`DeliveryState::as_str`] gives it).
    pub fn parse(text: &str) -> Option<DeliveryState> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "retrying" => Some(DeliveryState::Retrying),
            "sent" => Some(DeliveryState::Sent),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One message to one channel, as the alert history shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub notification_id: i64,
    #[serde(with = "timestamp_format")]
    pub created_at: OffsetDateTime,
    pub channel: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The last failure (an HTTP status, an SMTP reply, a connection error); never a secret.
    pub last_error: Option<String>,
    #[serde(with = "timestamp_format::option")]
    pub sent_at: Option<OffsetDateTime>,
}

/// How a channel's deliveries have been going, for the monitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelHealth {
    pub channel: String,
    /// Failed attempts of the deliveries still failing (`retrying` or `failed`) whose last attempt
    /// came after the channel's last success; 0 when the channel's latest delivery went through.
    pub consecutive_failures: u64,
    /// The newest of those failures' errors.
    pub last_error: Option<String>,
    #[serde(with = "timestamp_format::option")]
    pub last_success: Option<OffsetDateTime>,
}

/// A delivery the deliverer should attempt now.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub notification_id: i64,
    pub alert: String,
    pub notification: Notification,
    pub attempts: u32,
    pub first_attempt_at: Option<i64>,
}

/// The outcome of one attempt, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub state: DeliveryState,
    pub error: Option<String>,
    /// When to try again (`retrying` only), epoch ms.
    pub next_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_state_reads_back_from_its_name() {
        for state in [DeliveryState::Pending, DeliveryState::Retrying, DeliveryState::Sent, DeliveryState::Failed] {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).expect("json"), serde_json::json!(state.as_str()));
        }
        assert_eq!(DeliveryState::parse("delivered"), None);
    }
}
