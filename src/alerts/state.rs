//! What the alert engine remembers beside the outbox, and the [`AlertState`] trait it (and the
//! web, through the engine) reads and writes it by: each rule's burst state (so a restart
//! neither forgets a burst nor repeats a message), snoozes, and the history of firings and
//! suppressions with their reasons ([`Entry`], its kind a [`HistoryKind`]). Messages and their
//! outcomes are the outbox's (`super::outbox`). The SQLite implementation is
//! `super::sqlite::SqliteAlerts`.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::burst::{self, Burst};

/// Where the alert engine keeps its state. Calls block (SQLite, an fsync): async callers run
/// them on `spawn_blocking`, as the engine's ticker does.
pub trait AlertState: Send + Sync {
    /// Adds a line to rule `alert`'s history (for `env`; `""` for the rule as a whole).
    fn add_history(
        &self,
        alert: &str,
        env: &str,
        at_ms: i64,
        kind: HistoryKind,
        detail: &str,
        notification: Option<i64>,
    ) -> anyhow::Result<()>;

    /// The newest `limit` lines of rule `alert`'s history, newest first.
    fn history(&self, alert: &str, limit: usize) -> anyhow::Result<Vec<Entry>>;

    /// Keeps rule `alert`'s state for `env`.
    fn save_rule(&self, alert: &str, env: &str, saved: &Saved) -> anyhow::Result<()>;

    /// Rule `alert`'s state for `env`, if one was saved.
    fn load_rule(&self, alert: &str, env: &str) -> anyhow::Result<Option<Saved>>;

    /// Snoozes rule `alert` until `until_ms`; `None` un-snoozes.
    fn set_snooze(&self, alert: &str, until_ms: Option<i64>) -> anyhow::Result<()>;

    /// Every snooze (ended ones too), by rule: until when, epoch ms.
    fn snoozes(&self) -> anyhow::Result<HashMap<String, i64>>;

    /// Whether this instance may send `send` for rule `alert`'s burst in `env` now, or another
    /// instance sent it already (several tasks seeing one burst send one message): a first
    /// message once per burst, a reminder once per `repeat_ms`, a resolution once. One
    /// instance's own state always may (the default).
    fn claim_send(
        &self,
        alert: &str,
        env: &str,
        send: burst::Send,
        now_ms: i64,
        repeat_ms: i64,
    ) -> anyhow::Result<bool> {
        let _ = (alert, env, send, now_ms, repeat_ms);
        Ok(true)
    }
}

/// What a line of a rule's history records; stored and shown as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryKind {
    /// A burst's first message was queued.
    Fired,
    /// A message again while the burst goes on (after `repeat_secs`).
    Reminder,
    /// The burst ended.
    Resolved,
    /// A message was not sent, or triggers were grouped into one (the detail says why).
    Suppressed,
    Snoozed,
    Unsnoozed,
    /// The message could not be queued.
    Failed,
}

impl HistoryKind {
    pub const ALL: [HistoryKind; 7] = [
        HistoryKind::Fired,
        HistoryKind::Reminder,
        HistoryKind::Resolved,
        HistoryKind::Suppressed,
        HistoryKind::Snoozed,
        HistoryKind::Unsnoozed,
        HistoryKind::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Fired => "fired",
            HistoryKind::Reminder => "reminder",
            HistoryKind::Resolved => "resolved",
            HistoryKind::Suppressed => "suppressed",
            HistoryKind::Snoozed => "snoozed",
            HistoryKind::Unsnoozed => "unsnoozed",
            HistoryKind::Failed => "failed",
        }
    }

    /// The kind named `text` (as [`HistoryKind::as_str`] gives it).
    pub fn parse(text: &str) -> Option<HistoryKind> {
        HistoryKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for HistoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for HistoryKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One line of a rule's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    #[serde(with = "crate::event::timestamp_format")]
    pub at: time::OffsetDateTime,
    pub kind: HistoryKind,
    pub env: String,
    /// The count, the issues, or the reason of a suppression.
    pub detail: String,
    /// The notification the outbox holds for it, if one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<i64>,
}

/// A rule's persisted state for one env.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub burst: Burst,
    pub peak: u64,
    pub last_fired: Option<i64>,
    /// A message of the current burst went out (so its end is worth a "resolved").
    pub announced: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_kind_is_stored_and_shown_as_its_old_name_and_read_back() {
        let names: Vec<&str> = HistoryKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["fired", "reminder", "resolved", "suppressed", "snoozed", "unsnoozed", "failed"]);
        for kind in HistoryKind::ALL {
            assert_eq!(HistoryKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).expect("json"), serde_json::json!(kind.as_str()));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(HistoryKind::parse("Fired"), None);
        assert_eq!(HistoryKind::Suppressed, "suppressed");
    }
}
