//! [`AlertState`] on `alerts.db`: the tables `history` (kept to the newest
//! [`KEPT_PER_ALERT`] lines per rule), `snoozes` and `rule_state` (the burst as JSON).

use std::collections::HashMap;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::{SqliteAlerts, time_of};
use crate::alerts::state::{AlertState, Entry, HistoryKind, Saved};

/// History rows kept per rule; older ones are dropped.
const KEPT_PER_ALERT: i64 = 1000;

impl SqliteAlerts {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        self.db.with(|conn| f(conn).context("alerts.db"))
    }
}

impl AlertState for SqliteAlerts {
    fn add_history(
        &self,
        alert: &str,
        env: &str,
        at_ms: i64,
        kind: HistoryKind,
        detail: &str,
        notification: Option<i64>,
    ) -> anyhow::Result<()> {
        self.with(|conn| {
            let id: i64 = conn
                .prepare_cached(
                    "INSERT INTO history (alert, env, at, kind, detail, notification) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                )?
                .query_row(params![alert, env, at_ms, kind.as_str(), detail, notification], |row| row.get(0))?;
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

    fn history(&self, alert: &str, limit: usize) -> anyhow::Result<Vec<Entry>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT at, kind, env, detail, notification FROM history WHERE alert = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![alert, limit as i64], |row| {
                let kind: String = row.get(1)?;
                let kind = HistoryKind::parse(&kind).ok_or_else(|| {
                    rusqlite::Error::InvalidColumnType(1, format!("kind `{kind}`"), rusqlite::types::Type::Text)
                })?;
                Ok(Entry {
                    at: time_of(row.get(0)?),
                    kind,
                    env: row.get(2)?,
                    detail: row.get(3)?,
                    notification: row.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    fn save_rule(&self, alert: &str, env: &str, saved: &Saved) -> anyhow::Result<()> {
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

    fn load_rule(&self, alert: &str, env: &str) -> anyhow::Result<Option<Saved>> {
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

    fn set_snooze(&self, alert: &str, until_ms: Option<i64>) -> anyhow::Result<()> {
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

    fn snoozes(&self) -> anyhow::Result<HashMap<String, i64>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached("SELECT alert, until FROM snoozes")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::burst::Burst;
    use crate::clock::unix_ms;

    #[test]
    fn history_lines_come_back_newest_first_with_their_kinds() {
        let dir = tempfile::tempdir().expect("dir");
        let state = SqliteAlerts::open(dir.path()).expect("open");
        for (at, kind) in HistoryKind::ALL.into_iter().enumerate() {
            state.add_history("a", "production", at as i64, kind, kind.as_str(), Some(at as i64)).expect("add");
        }
        state.add_history("b", "", 99, HistoryKind::Snoozed, "until later", None).expect("add");
        let lines = state.history("a", 3).expect("history");
        let kinds: Vec<HistoryKind> = lines.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [HistoryKind::Failed, HistoryKind::Unsnoozed, HistoryKind::Snoozed]);
        assert_eq!(unix_ms(lines[0].at), 6);
        assert_eq!((lines[0].env.as_str(), lines[0].notification), ("production", Some(6)));
        assert_eq!(state.history("b", 10).expect("history").len(), 1);
    }

    #[test]
    fn a_rule_state_and_snoozes_survive_reopening_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let saved =
            Saved { burst: Burst::Firing { since: 5, sent: 7 }, peak: 12, last_fired: Some(7), announced: true };
        {
            let state = SqliteAlerts::open(dir.path()).expect("open");
            assert_eq!(state.load_rule("a", "production").expect("load"), None);
            state.save_rule("a", "production", &saved).expect("save");
            state.set_snooze("a", Some(1_000)).expect("snooze");
            state.set_snooze("b", Some(2_000)).expect("snooze");
            state.set_snooze("b", None).expect("unsnooze");
        }
        let state = SqliteAlerts::open(dir.path()).expect("reopen");
        assert_eq!(state.load_rule("a", "production").expect("load"), Some(saved));
        assert_eq!(state.load_rule("a", "staging").expect("load"), None);
        assert_eq!(state.snoozes().expect("snoozes"), HashMap::from([("a".to_string(), 1_000)]));
    }
}
