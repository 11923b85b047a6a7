//! The issue follower's checkpoints (the follower itself is `crate::ingest::follow`): per group,
//! `follow_groups` keeps where the next read starts, `follow_seen` the ids already counted; both
//! are written in the transaction that records the occurrences, so a crash never counts an
//! event twice nor skips one.

use anyhow::Context as _;
use rusqlite::OptionalExtension as _;

use super::{Changes, IssueIndex, Occurrence, Write, record};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS follow_groups (
    log_group TEXT PRIMARY KEY,
    next_from INTEGER NOT NULL,
    floor     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS follow_seen (
    log_group TEXT NOT NULL,
    id        TEXT NOT NULL,
    ts        INTEGER NOT NULL,
    PRIMARY KEY (log_group, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS follow_seen_by_time ON follow_seen (log_group, ts);
";

/// What one read of a group found, and where the next read of it starts.
pub struct Followed {
    pub group: String,
    pub occurrences: Vec<Occurrence>,
    pub next_from: i64,
    /// No read of the group starts before this (set when it is first followed).
    pub floor: i64,
    /// Ids of events older than this are forgotten: no later read starts before it.
    pub forget_before: i64,
}

/// Records the occurrences not counted before, and moves the group on.
pub(super) fn commit(tx: &rusqlite::Transaction<'_>, followed: &Followed) -> anyhow::Result<Changes> {
    let Followed { group, occurrences, next_from, floor, forget_before } = followed;
    let mut seen = tx.prepare_cached("INSERT OR IGNORE INTO follow_seen (log_group, id, ts) VALUES (?1, ?2, ?3)")?;
    let mut fresh = Vec::new();
    for o in occurrences {
        if seen.execute(rusqlite::params![group, o.id, o.ts])? == 1 {
            fresh.push(o.clone());
        }
    }
    let changes = record(tx, &fresh)?;
    tx.prepare_cached(
        "INSERT INTO follow_groups (log_group, next_from, floor) VALUES (?1, ?2, ?3)
         ON CONFLICT (log_group) DO UPDATE SET next_from = excluded.next_from",
    )?
    .execute(rusqlite::params![group, next_from, floor])?;
    tx.prepare_cached("DELETE FROM follow_seen WHERE log_group = ?1 AND ts < ?2")?
        .execute(rusqlite::params![group, forget_before])?;
    Ok(changes)
}

impl IssueIndex {
    /// Records what the follower read from one group, and moves its checkpoint on, at once.
    pub async fn record_followed(&self, followed: Followed) -> anyhow::Result<Changes> {
        self.write(Write::Follow(followed)).await
    }

    /// Where the next read of `group` starts and its floor, once it has been followed.
    pub async fn follow_state(&self, group: &str) -> anyhow::Result<Option<(i64, i64)>> {
        let group = group.to_string();
        self.reads
            .read(move |conn| {
                conn.prepare_cached("SELECT next_from, floor FROM follow_groups WHERE log_group = ?1")?
                    .query_row([group], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .await
            .context("reading the follower's checkpoint")
    }

    /// Whether the project/environment has any issue yet.
    pub async fn has_issues(&self, project: &str, env: &str) -> anyhow::Result<bool> {
        let (project, env) = (project.to_string(), env.to_string());
        self.reads
            .read(move |conn| {
                conn.prepare_cached("SELECT 1 FROM issues WHERE project = ?1 AND env = ?2 LIMIT 1")?
                    .exists(rusqlite::params![project, env])
            })
            .await
            .context("reading the issue index")
    }
}
