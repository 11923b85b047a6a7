//! The alerts' state on SQLite: one file, `data_dir/alerts.db`, opened once
//! ([`SqliteAlerts::open`]) and shared by the engine's state ([`super::state::AlertState`]:
//! `history`, `snoozes`, `rule_state`, in [`state`]) and the outbox ([`super::outbox::Outbox`]:
//! `notifications`, `deliveries`, in [`outbox`]). One connection behind a lock
//! ([`crate::sqlite::SharedConnection`]): calls are few and short, and each write commits
//! (WAL, `synchronous = FULL`) before it returns.

mod outbox;
mod state;

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::clock::from_unix_ms;
use crate::sqlite::SharedConnection;

/// Page cache of `alerts.db`.
const CACHE_KIB: u32 = 2048;

const STATE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history (
    id     INTEGER PRIMARY KEY,
    alert  TEXT NOT NULL,
    env    TEXT NOT NULL,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL,
    notification INTEGER
);
CREATE INDEX IF NOT EXISTS history_by_alert ON history (alert, id);
CREATE TABLE IF NOT EXISTS snoozes (
    alert TEXT PRIMARY KEY,
    until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rule_state (
    alert      TEXT NOT NULL,
    env        TEXT NOT NULL,
    burst      TEXT NOT NULL,
    peak       INTEGER NOT NULL,
    last_fired INTEGER,
    announced  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (alert, env)
) WITHOUT ROWID;
";

const OUTBOX_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notifications (
    id         INTEGER PRIMARY KEY,
    alert      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_alert ON notifications (alert, id);
CREATE TABLE IF NOT EXISTS deliveries (
    notification_id  INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel          TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_at          INTEGER,
    first_attempt_at INTEGER,
    last_attempt_at  INTEGER,
    last_error       TEXT,
    sent_at          INTEGER,
    PRIMARY KEY (notification_id, channel)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, next_at) WHERE state IN ('pending', 'retrying');
CREATE INDEX IF NOT EXISTS deliveries_by_channel ON deliveries (channel, last_attempt_at);
";

/// The alert state and the outbox in `data_dir/alerts.db`.
pub struct SqliteAlerts {
    db: SharedConnection,
    /// Bumped after every enqueue, so the deliverer starts at once instead of at its next poll.
    wake: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for SqliteAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteAlerts")
    }
}

impl SqliteAlerts {
    /// Opens (or creates) `data_dir/alerts.db` and its tables.
    pub fn open(data_dir: &Path) -> anyhow::Result<SqliteAlerts> {
        let schema = format!("{STATE_SCHEMA}{OUTBOX_SCHEMA}");
        let db = SharedConnection::open(&data_dir.join("alerts.db"), CACHE_KIB, &schema)?;
        Ok(SqliteAlerts { db, wake: Arc::new(watch::channel(0).0) })
    }
}

fn time_of(ms: i64) -> OffsetDateTime {
    from_unix_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
