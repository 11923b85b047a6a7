//! What the alerts remember in `data_dir/alerts.db` beside the outbox: each rule's burst state
//! (so a restart neither forgets a burst nor repeats a message), snoozes, and the history of
//! firings and suppressions with their reasons. Messages and their outcomes are the outbox's.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context as _, anyhow};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use super::burst::Burst;

const SCHEMA: &str = "
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

/// History rows kept per rule; older ones are dropped.
const KEPT_PER_ALERT: i64 = 1000;

/// One line of a rule's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    #[serde(with = "crate::event::timestamp_format")]
    pub at: time::OffsetDateTime,
    /// `fired`, `reminder`, `resolved`, `suppressed`, `snoozed`, `unsnoozed`.
    pub kind: String,
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

pub struct History {
    conn: Mutex<Connection>,
}

impl History {
    pub fn open(data_dir: &Path) -> anyhow::Result<History> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let conn = crate::sqlite::open_durable(&data_dir.join("alerts.db"), 1024)?;
        conn.execute_batch(SCHEMA).context("creating the alert history schema")?;
        Ok(History { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let conn = self.conn.lock().map_err(|_| anyhow!("the alert history lock is poisoned"))?;
        f(&conn).context("alerts.db")
    }

    pub fn record(
        &self,
        alert: &str,
        env: &str,
        at_ms: i64,
        kind: &str,
        detail: &str,
        notification: Option<i64>,
    ) -> anyhow::Result<()> {
        self.with(|conn| {
            let id: i64 = conn
                .prepare_cached(
                    "INSERT INTO history (alert, env, at, kind, detail, notification) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                )?
                .query_row(params![alert, env, at_ms, kind, detail, notification], |row| row.get(0))?;
            if id % 100 == 0 {
                conn.prepare_cached(
                    "DELETE FROM history WHERE alert = ?1
                     AND id < (SELECT id FROM history WHERE alert = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                )?
                .execute(params![alert, KEPT_PER_ALERT])?;
            }
            Ok(())
        })
    }

    /// The newest `limit` entries of a rule.
    pub fn of(&self, alert: &str, limit: usize) -> anyhow::Result<Vec<Entry>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT at, kind, env, detail, notification FROM history WHERE alert = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![alert, limit as i64], |row| {
                Ok(Entry {
                    at: crate::event::from_unix_ms(row.get(0)?).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                    kind: row.get(1)?,
                    env: row.get(2)?,
                    detail: row.get(3)?,
                    notification: row.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn save(&self, alert: &str, env: &str, saved: &Saved) -> anyhow::Result<()> {
        let burst = serde_json::to_string(&saved.burst)?;
        self.with(|conn| {
            conn.prepare_cached(
                "INSERT INTO rule_state (alert, env, burst, peak, last_fired, announced) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (alert, env) DO UPDATE SET burst = ?3, peak = ?4, last_fired = ?5, announced = ?6",
            )?
            .execute(params![alert, env, burst, saved.peak as i64, saved.last_fired, saved.announced])?;
            Ok(())
        })
    }

    pub fn load(&self, alert: &str, env: &str) -> anyhow::Result<Option<Saved>> {
        let row: Option<(String, i64, Option<i64>, bool)> = self.with(|conn| {
            conn.prepare_cached(
                "SELECT burst, peak, last_fired, announced FROM rule_state WHERE alert = ?1 AND env = ?2",
            )?
            .query_row(params![alert, env], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
            .optional()
        })?;
        row.map(|(burst, peak, last_fired, announced)| {
            let peak = u64::try_from(peak).unwrap_or(0);
            Ok(Saved { burst: serde_json::from_str(&burst)?, peak, last_fired, announced })
        })
        .transpose()
    }

    /// Snoozes a rule until `until_ms`; `None` un-snoozes.
    pub fn set_snooze(&self, alert: &str, until_ms: Option<i64>) -> anyhow::Result<()> {
        self.with(|conn| {
            match until_ms {
                Some(until) => conn
                    .prepare_cached("INSERT OR REPLACE INTO snoozes (alert, until) VALUES (?1, ?2)")?
                    .execute(params![alert, until])?,
                None => conn.prepare_cached("DELETE FROM snoozes WHERE alert = ?1")?.execute(params![alert])?,
            };
            Ok(())
        })
    }

    /// Every snooze, by rule.
    pub fn snoozes(&self) -> anyhow::Result<Vec<(String, i64)>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT alert, until FROM snoozes")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }
}
