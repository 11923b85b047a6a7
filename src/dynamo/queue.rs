//! The durable local queue in front of the table: what ingest counted waits here
//! (`data_dir/state-queue.db`) until the table has it, so a table that is down or throttling
//! never holds ingest up and loses nothing acknowledged, and many ingest batches go to the table
//! as one aggregated write.
//!
//! Two steps, each one SQLite transaction: [`Queue::push`] adds an entry to `pending` (on a writer
//! thread that commits every push waiting at once: one fsync for many ingest batches, as the
//! stores do);
//! [`Queue::take`] folds the oldest pending entries into one flush under a fresh id (moved to
//! `flushes`, gone from `pending`). A flush is sent under its id until [`Queue::done`] removes it:
//! the table keeps a marker per id, so a flush sent twice (a crash after the table had it, a
//! timeout that was a success) is applied once.

use std::path::Path;

use anyhow::anyhow;
use rusqlite::{OptionalExtension as _, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use crate::sqlite::{self, AfterCommit, CommitFailed, SharedConnection};

/// Pushes waiting for the writer thread; senders wait beyond it.
const QUEUE_DEPTH: usize = 1_024;
/// Pushes committed in one transaction at most.
const MAX_PUSHES_PER_COMMIT: usize = 256;

type Push = (String, oneshot::Sender<Result<(), CommitFailed>>);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pending (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flushes (
    id   TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;
";

/// The queue in `data_dir/state-queue.db`.
#[derive(Debug, Clone)]
pub struct Queue {
    db: SharedConnection,
    pushes: mpsc::Sender<Push>,
}

/// A flush taken from the queue: its id (the table's marker) and the folded entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flush {
    pub id: String,
    pub body: String,
}

impl Queue {
    pub fn open(data_dir: &Path) -> anyhow::Result<Queue> {
        let path = data_dir.join("state-queue.db");
        let db = SharedConnection::open(&path, 1_024, SCHEMA)?;
        let writer = sqlite::open_durable(&path, 1_024)?;
        let pushes = sqlite::spawn_writer("state-queue", writer, QUEUE_DEPTH, MAX_PUSHES_PER_COMMIT, commit_pushes)?;
        Ok(Queue { db, pushes })
    }

    /// Adds an entry; returns once it is on disk.
    pub async fn push(&self, body: String) -> anyhow::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.pushes.send((body, reply)).await.map_err(|_| anyhow!("the state queue's writer has stopped"))?;
        Ok(answer.await.map_err(|_| anyhow!("the state queue's writer has stopped"))??)
    }

    /// The flush to send next: one taken before and not done yet, else at most `max_entries`
    /// of the oldest pending entries folded by `fold` into a new flush; `None` when nothing waits.
    pub async fn take(
        &self,
        max_entries: usize,
        fold: impl FnOnce(Vec<String>) -> String + Send + 'static,
    ) -> anyhow::Result<Option<Flush>> {
        self.db
            .run(move |conn| {
                // Immediate: the writer thread may commit pushes between this read and its delete.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let unsent = tx
                    .query_row("SELECT id, body FROM flushes ORDER BY id LIMIT 1", [], |row| {
                        Ok(Flush { id: row.get(0)?, body: row.get(1)? })
                    })
                    .optional()?;
                if unsent.is_some() {
                    return Ok(unsent);
                }
                let mut entries = Vec::new();
                let mut last = None;
                {
                    let mut stmt = tx.prepare_cached("SELECT seq, body FROM pending ORDER BY seq LIMIT ?1")?;
                    let rows = stmt.query_map(params![max_entries as i64], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                    })?;
                    for row in rows {
                        let (seq, body) = row?;
                        entries.push(body);
                        last = Some(seq);
                    }
                }
                let Some(last) = last else { return Ok(None) };
                // Ids sort in the order flushes were taken (a ULID), and are unique among tasks.
                let flush = Flush {
                    id: crate::event::new_id(time::OffsetDateTime::now_utc()).to_string(),
                    body: fold(entries),
                };
                tx.execute("INSERT INTO flushes (id, body) VALUES (?1, ?2)", params![flush.id, flush.body])?;
                tx.execute("DELETE FROM pending WHERE seq <= ?1", params![last])?;
                tx.commit()?;
                Ok(Some(flush))
            })
            .await
    }

    /// Forgets a flush the table has applied.
    pub async fn done(&self, id: &str) -> anyhow::Result<()> {
        let id = id.to_string();
        self.db
            .run(move |conn| {
                conn.execute("DELETE FROM flushes WHERE id = ?1", params![id])?;
                Ok(())
            })
            .await
    }

    /// Entries and flushes not yet in the table.
    pub async fn backlog(&self) -> anyhow::Result<u64> {
        self.db
            .run(|conn| {
                let n: i64 = conn.query_row(
                    "SELECT (SELECT count(*) FROM pending) + (SELECT count(*) FROM flushes)",
                    [],
                    |row| row.get(0),
                )?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }
}

/// One round of the writer thread: every waiting push in one transaction, each told the outcome.
fn commit_pushes(conn: &mut rusqlite::Connection, pushes: Vec<Push>) -> AfterCommit {
    let committed = (|| -> anyhow::Result<()> {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO pending (body) VALUES (?1)")?;
            for (body, _) in &pushes {
                insert.execute(params![body])?;
            }
        }
        tx.commit()?;
        Ok(())
    })()
    .map_err(CommitFailed::new);
    for (_, reply) in pushes {
        let _ = reply.send(committed.clone());
    }
    AfterCommit::Wait
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
        let queue = Queue::open(dir.path()).expect("open");
        assert_eq!(queue.take(10, join).await.unwrap(), None);
        let pushes = ["a", "b", "c"].map(|body| queue.push(body.into()));
        for pushed in futures_util::future::join_all(pushes).await {
            pushed.unwrap();
        }
        let first = queue.take(2, join).await.unwrap().expect("a flush");
        assert_eq!(first.body, "a,b");
        // Not done: the same flush, under the same id, however often it is asked for.
        assert_eq!(queue.take(2, join).await.unwrap(), Some(first.clone()));
        drop(queue);
        let queue = Queue::open(dir.path()).expect("reopen");
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
}
