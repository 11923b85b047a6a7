//! A durable queue of entries in a database that a store's writer also commits to: what a batch
//! adds to a shared state (its tally) is written by [`push_in`] in the same transaction as the
//! batch's events, so that both are durable together, with one fsync, and a crash keeps both or
//! neither. [`Queue`] reads the entries back, with a connection of its own, until the shared
//! state has them.
//!
//! Two steps, each one SQLite transaction: entries are added to `queue_pending`; [`Queue::take`]
//! folds the oldest of them into one flush under a fresh id (moved to `queue_flushes`, gone from
//! `queue_pending`). A flush is sent under its id until [`Queue::done`] removes it: the receiver
//! keeps a marker per id, so a flush sent twice (a crash after it was received, a timeout that was
//! a success) is applied once.

use std::path::Path;

use anyhow::Context as _;
use rusqlite::{OptionalExtension as _, Transaction, params};

use super::SharedConnection;

/// The queue's tables, created by every database that holds one.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue_pending (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_flushes (
    id   TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;
";

/// Adds an entry within the caller's transaction (on a database with [`SCHEMA`]).
pub fn push_in(tx: &Transaction<'_>, body: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO queue_pending (body) VALUES (?1)")?.execute(params![body])?;
    Ok(())
}

/// The queue in a database file, read (and, rarely, written) by its own connection.
#[derive(Debug, Clone)]
pub struct Queue {
    db: SharedConnection,
}

/// A flush taken from the queue: its id (the receiver's marker) and the folded entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flush {
    pub id: String,
    pub body: String,
}

impl Queue {
    /// The queue in the database at `path` (created with the queue's tables if need be).
    pub fn open(path: &Path) -> anyhow::Result<Queue> {
        Ok(Queue { db: SharedConnection::open(path, 1_024, SCHEMA)? })
    }

    /// Adds an entry in a transaction of its own; returns once it is on disk. For the few
    /// entries that come with no store commit (the issue follower's).
    pub async fn push(&self, body: String) -> anyhow::Result<()> {
        self.db
            .run(move |conn| {
                let tx = conn.transaction()?;
                push_in(&tx, &body)?;
                Ok(tx.commit()?)
            })
            .await
    }

    /// The flush to send next: one taken before and not done yet, else at most `max_entries`
    /// of the oldest pending entries folded by `fold` into a new flush; `None` when nothing waits.
    /// One caller at a time (the flusher): entries are read and folded outside the write lock,
    /// which the store's writer needs for every commit, and only this queue removes them.
    pub async fn take(
        &self,
        max_entries: usize,
        fold: impl FnOnce(Vec<String>) -> String + Send + 'static,
    ) -> anyhow::Result<Option<Flush>> {
        self.db
            .run(move |conn| {
                let unsent = conn
                    .query_row("SELECT id, body FROM queue_flushes ORDER BY id LIMIT 1", [], |row| {
                        Ok(Flush { id: row.get(0)?, body: row.get(1)? })
                    })
                    .optional()?;
                if unsent.is_some() {
                    return Ok(unsent);
                }
                let (entries, last) = oldest_pending(conn, max_entries)?;
                let Some(last) = last else { return Ok(None) };
                // Ids sort in the order flushes were taken (a ULID), and are unique among tasks.
                let flush = Flush { id: flush_id(), body: fold(entries) };
                let tx = conn.transaction()?;
                tx.execute("INSERT INTO queue_flushes (id, body) VALUES (?1, ?2)", params![flush.id, flush.body])?;
                tx.execute("DELETE FROM queue_pending WHERE seq <= ?1", params![last])?;
                tx.commit()?;
                Ok(Some(flush))
            })
            .await
    }

    /// Forgets a flush the receiver has applied.
    pub async fn done(&self, id: &str) -> anyhow::Result<()> {
        let id = id.to_string();
        self.db
            .run(move |conn| {
                conn.execute("DELETE FROM queue_flushes WHERE id = ?1", params![id])?;
                Ok(())
            })
            .await
    }

    /// Entries and flushes not yet received.
    pub async fn backlog(&self) -> anyhow::Result<u64> {
        self.db
            .run(|conn| {
                let n: i64 = conn.query_row(
                    "SELECT (SELECT count(*) FROM queue_pending) + (SELECT count(*) FROM queue_flushes)",
                    [],
                    |row| row.get(0),
                )?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }

    /// Moves what an older queue file (`pending` and `flushes` tables, as `state-queue.db` had)
    /// holds into this queue, then deletes the file: its pending entries as one flush, so that a
    /// crash between the move and the deletion sends nothing twice (a flush keeps its id).
    pub fn adopt(&self, old: &Path, fold: impl FnOnce(Vec<String>) -> String) -> anyhow::Result<()> {
        if !old.exists() {
            return Ok(());
        }
        let old_queue = rusqlite::Connection::open(old).with_context(|| format!("opening {}", old.display()))?;
        // A file without the tables (never written) holds nothing to move.
        old_queue.execute_batch(
            "CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS flushes (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;",
        )?;
        let mut flushes: Vec<(String, String)> = old_queue
            .prepare("SELECT id, body FROM flushes")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let pending: Vec<(i64, String)> = old_queue
            .prepare("SELECT seq, body FROM pending ORDER BY seq")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if let Some(&(last, _)) = pending.last() {
            // Folded under an id in the old file first: the id is what makes the move idempotent.
            let flush = (flush_id(), fold(pending.into_iter().map(|(_, body)| body).collect()));
            old_queue.execute_batch("BEGIN IMMEDIATE")?;
            old_queue.execute("INSERT INTO flushes (id, body) VALUES (?1, ?2)", params![flush.0, flush.1])?;
            old_queue.execute("DELETE FROM pending WHERE seq <= ?1", params![last])?;
            old_queue.execute_batch("COMMIT")?;
            flushes.push(flush);
        }
        self.db.with(|conn| {
            let tx = conn.transaction()?;
            for (id, body) in &flushes {
                tx.execute("INSERT OR IGNORE INTO queue_flushes (id, body) VALUES (?1, ?2)", params![id, body])?;
            }
            Ok(tx.commit()?)
        })?;
        drop(old_queue);
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", old.display());
            if let Err(error) = std::fs::remove_file(&file)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                return Err(error).with_context(|| format!("removing {file}"));
            }
        }
        tracing::info!(flushes = flushes.len(), file = %old.display(), "moved an older state queue's entries");
        Ok(())
    }
}

/// A new flush's id: a ULID of now, unique among tasks.
fn flush_id() -> String {
    ulid::Ulid::from_parts(u64::try_from(crate::clock::now_ms()).unwrap_or(0), rand::random::<u128>()).to_string()
}

/// At most `max_entries` of the oldest pending entries, and the `seq` of the last one.
fn oldest_pending(conn: &rusqlite::Connection, max_entries: usize) -> rusqlite::Result<(Vec<String>, Option<i64>)> {
    let mut entries = Vec::new();
    let mut last = None;
    let mut stmt = conn.prepare_cached("SELECT seq, body FROM queue_pending ORDER BY seq LIMIT ?1")?;
    let rows =
        stmt.query_map(params![max_entries as i64], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?;
    for row in rows {
        let (seq, body) = row?;
        entries.push(body);
        last = Some(seq);
    }
    Ok((entries, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(entries: Vec<String>) -> String {
        entries.join(",")
    }

    #[tokio::test]
    async fn a_flush_is_taken_again_until_it_is_done_and_entries_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("queue.db");
        let queue = Queue::open(&path).expect("open");
        assert_eq!(queue.take(10, join).await.unwrap(), None);
        for body in ["a", "b", "c"] {
            queue.push(body.into()).await.unwrap();
        }
        let first = queue.take(2, join).await.unwrap().expect("a flush");
        assert_eq!(first.body, "a,b");
        // Not done: the same flush, under the same id, however often it is asked for.
        assert_eq!(queue.take(2, join).await.unwrap(), Some(first.clone()));
        drop(queue);
        let queue = Queue::open(&path).expect("reopen");
        assert_eq!(queue.take(2, join).await.unwrap(), Some(first.clone()));
        assert_eq!(queue.backlog().await.unwrap(), 2);
        queue.done(&first.id).await.unwrap();
        let second = queue.take(2, join).await.unwrap().expect("the rest");
        assert_eq!(second.body, "c");
        assert_ne!(second.id, first.id);
        queue.done(&second.id).await.unwrap();
        assert_eq!(queue.take(2, join).await.unwrap(), None);
        assert_eq!(queue.backlog().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn entries_pushed_in_another_writers_transaction_are_kept_only_if_it_commits() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.db");
        let queue = Queue::open(&path).expect("open");
        let mut store = crate::sqlite::open_durable(&path, 1_024).expect("store connection");
        let tx = store.transaction().expect("begin");
        push_in(&tx, "rolled back").expect("push");
        drop(tx);
        let tx = store.transaction().expect("begin");
        push_in(&tx, "committed").expect("push");
        tx.commit().expect("commit");
        let flush = queue.take(10, join).await.unwrap().expect("a flush");
        assert_eq!(flush.body, "committed");
    }

    #[tokio::test]
    async fn an_older_queue_file_is_adopted_once_and_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let old = dir.path().join("state-queue.db");
        {
            let conn = rusqlite::Connection::open(&old).expect("old");
            conn.execute_batch(
                "CREATE TABLE pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
                 CREATE TABLE flushes (id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
                 INSERT INTO flushes VALUES ('01OLD', 'x');
                 INSERT INTO pending (body) VALUES ('y'), ('z');",
            )
            .expect("old queue");
        }
        let queue = Queue::open(&dir.path().join("store.db")).expect("open");
        queue.adopt(&old, join).expect("adopt");
        assert!(!old.exists());
        queue.adopt(&old, join).expect("nothing left to adopt");
        std::fs::write(&old, b"").expect("an empty file");
        queue.adopt(&old, join).expect("an empty file is nothing to adopt");
        assert!(!old.exists());
        let mut bodies = Vec::new();
        while let Some(flush) = queue.take(10, join).await.unwrap() {
            bodies.push(flush.body);
            queue.done(&flush.id).await.unwrap();
        }
        bodies.sort();
        assert_eq!(bodies, ["x", "y,z"]);
    }
}
