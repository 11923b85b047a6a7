//! The write-ahead spool: events accepted for CloudWatch wait here, on disk, until CloudWatch
//! has taken them. `append` returns only once the events are committed and fsynced; the writer
//! task reads them back in order and removes them after a successful put.
//!
//! Why SQLite (`data_dir/spool.db`, WAL, `synchronous = FULL`) rather than an append-only file:
//! a commit is atomic, so a crash or `kill -9` mid-write leaves no torn or half-written record at
//! all: SQLite rolls the unfinished transaction back on the next open, and every committed one is
//! whole. There is nothing to detect and skip, and removing shipped rows needs no compaction of
//! our own. (Text that is not valid UTF-8 is still read lossily, so it can never reach
//! CloudWatch as invalid UTF-8.)
//!
//! The same database holds the dead-letter table: events CloudWatch refused (too old, too new,
//! expired, invalid) move there from the spool in one transaction, with their reason, so an event
//! is always in exactly one of the two places.
//!
//! Like the embedded store, one thread owns the write connection and commits every request that
//! is waiting in one transaction (group commit): many ingest requests share one fsync.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::fmt;

use anyhow::{Context as _, anyhow};
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::clock::now_ms;
use crate::sqlite::{self, AfterCommit, CommitFailed, PoolLimits, ReadPool, queue};

/// Why the destination refused an event for good: it goes to the dead letters under this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadReason {
    /// More than 2 hours in the future.
    TooNew,
    /// Older than 14 days.
    TooOld,
    /// Older than the group's retention.
    Expired,
    /// Refused as invalid, isolated by splitting its batch.
    Invalid,
}

impl DeadReason {
    /// The name stored with the dead letter and used as the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::TooNew => "too_new",
            DeadReason::TooOld => "too_old",
            DeadReason::Expired => "expired",
            DeadReason::Invalid => "invalid",
        }
    }
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Requests merged into one transaction at most; bounds the latency of the first one.
const MAX_REQUESTS_PER_COMMIT: usize = 256;
/// How many requests may wait for the spool thread before callers wait to enqueue.
const QUEUE_DEPTH: usize = 1024;
/// A small page cache: the spool is written once and read once, in order.
const SPOOL_CACHE_KIB: u32 = 8192;
/// Reads of the spool: the shipper's, the dashboard's (pending events, dead letters) and the
/// metrics'. Each is an indexed range, done in milliseconds.
const READ_LIMITS: PoolLimits =
    PoolLimits { connections: 3, max_wait: Duration::from_secs(5), time_limit: Duration::from_secs(30) };

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS spool (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    grp    TEXT NOT NULL,
    stream TEXT NOT NULL,
    ts     INTEGER NOT NULL,
    body   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_by_group_time ON spool (grp, ts);
CREATE TABLE IF NOT EXISTS deadletter (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    grp     TEXT NOT NULL,
    stream  TEXT NOT NULL,
    ts      INTEGER NOT NULL,
    body    TEXT NOT NULL,
    reason  TEXT NOT NULL,
    detail  TEXT NOT NULL,
    dead_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deadletter_by_group ON deadletter (grp, seq);
";

/// Dead letters kept at most; past it the oldest are forgotten, so a flood cannot fill the disk.
pub const MAX_DEAD_LETTERS: i64 = 100_000;

/// One event waiting for CloudWatch: where it goes, when it happened, and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRecord {
    pub group: String,
    pub stream: String,
    /// Occurrence time, epoch milliseconds: the CloudWatch event timestamp.
    pub timestamp_ms: i64,
    /// The CloudWatch message: the event as one line of JSON.
    pub body: String,
}

/// An event CloudWatch refused, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadRecord {
    pub group: String,
    pub stream: String,
    pub timestamp_ms: i64,
    /// The message as it was spooled.
    pub body: String,
    /// A short word: `too_new`, `too_old`, `expired`, `invalid`.
    pub reason: String,
    /// CloudWatch's own words, when it gave any.
    pub detail: String,
    /// When it was moved here, epoch milliseconds.
    pub dead_ms: i64,
}

/// A spool row to move to the dead-letter table, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dead {
    pub seq: i64,
    pub reason: DeadReason,
    pub detail: String,
}

enum Request {
    /// Records, with an entry of the shared state's queue to commit with them.
    Append(Vec<SpoolRecord>, Option<String>, oneshot::Sender<Result<(), CommitFailed>>),
    /// Removes shipped rows and moves refused ones to the dead-letter table, in one commit.
    Settle { remove: Vec<i64>, dead: Vec<Dead>, reply: oneshot::Sender<Result<(), CommitFailed>> },
}

/// The spool of one data directory. Cheap to share behind an `Arc`.
pub struct Spool {
    /// `spool.db`: also where the shared state's queue is.
    path: PathBuf,
    requests: mpsc::Sender<Request>,
    reads: ReadPool,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    /// UTF-8 bytes of the bodies not yet shipped.
    bytes: AtomicU64,
    events: AtomicU64,
}

impl Spool {
    /// Opens (or creates) `dir/spool.db` and starts its writer thread.
    pub fn open(dir: &Path) -> anyhow::Result<Spool> {
        Spool::open_limited(dir, None)
    }

    /// Like [`Spool::open`]; with `max_pages`, the file cannot grow past that many pages, and a
    /// commit that would need more fails as on a full disk (SQLITE_FULL). Tests use it.
    pub fn open_limited(dir: &Path, max_pages: Option<u32>) -> anyhow::Result<Spool> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("spool.db");
        let writer = sqlite::open_durable(&path, SPOOL_CACHE_KIB)?;
        writer.execute_batch(SCHEMA).context("creating the spool schema")?;
        // The shared state's queue, written in the records' commit (`crate::sqlite::queue`).
        writer.execute_batch(queue::SCHEMA).context("creating the queue's tables")?;
        if let Some(pages) = max_pages {
            writer.execute_batch(&format!("PRAGMA max_page_count = {pages}")).context("limiting the spool")?;
        }
        migrate(&writer).context("updating the spool schema")?;
        let (events, bytes): (i64, i64) = writer
            .query_row("SELECT count(*), coalesce(sum(length(CAST(body AS BLOB))), 0) FROM spool", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .context("measuring the spool")?;
        let counters = Arc::new(Counters {
            bytes: AtomicU64::new(u64::try_from(bytes).unwrap_or(0)),
            events: AtomicU64::new(u64::try_from(events).unwrap_or(0)),
        });
        if events > 0 {
            tracing::info!(
                spool.events = events,
                spool.bytes = bytes,
                "the spool holds unshipped events from an earlier run"
            );
        }
        let reads = ReadPool::open(&path, READ_LIMITS, |_| Ok(()))?;
        let mut spool_writer = SpoolWriter { counters: Arc::clone(&counters), unsettled: Settlement::default() };
        let requests =
            sqlite::spawn_writer("spool-writer", writer, QUEUE_DEPTH, MAX_REQUESTS_PER_COMMIT, move |conn, batch| {
                spool_writer.commit_round(conn, batch)
            })?;
        Ok(Spool { path, requests, reads, counters })
    }

    /// Makes the records durable: when this returns `Ok`, they survive a crash or `kill -9`.
    pub async fn append(&self, records: Vec<SpoolRecord>) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.call(|reply| Request::Append(records, None, reply)).await
    }

    /// Like [`Spool::append`], with `entry` added to the queue in the same commit: both are
    /// durable, or neither.
    pub async fn append_queued(&self, records: Vec<SpoolRecord>, entry: String) -> anyhow::Result<()> {
        self.call(|reply| Request::Append(records, Some(entry), reply)).await
    }

    /// The database file (`spool.db`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Forgets shipped records.
    pub async fn remove(&self, seqs: Vec<i64>) -> anyhow::Result<()> {
        self.settle(seqs, Vec::new()).await
    }

    /// Forgets shipped records and moves refused ones to the dead-letter table, atomically.
    pub async fn settle(&self, remove: Vec<i64>, dead: Vec<Dead>) -> anyhow::Result<()> {
        if remove.is_empty() && dead.is_empty() {
            return Ok(());
        }
        self.call(|reply| Request::Settle { remove, dead, reply }).await
    }

    /// The newest dead letters of `group` (at most `limit`), and how many the group has.
    pub async fn dead_letters(&self, group: &str, limit: usize) -> anyhow::Result<(u64, Vec<DeadRecord>)> {
        let group = group.to_string();
        let (total, rows) = self
            .reads
            .read(move |conn| read_dead_letters(conn, &group, limit))
            .await
            .context("reading the dead letters")?;
        Ok((total, rows))
    }

    /// The bodies of unshipped events of `group` with `from_ms <= ts <= to_ms`, newest first,
    /// at most `limit`: what reads show before CloudWatch has it.
    pub async fn pending(&self, group: &str, from_ms: i64, to_ms: i64, limit: usize) -> anyhow::Result<Vec<String>> {
        let group = group.to_string();
        let pending = self.reads.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT body FROM spool WHERE grp = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts DESC LIMIT ?4",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = stmt.query_map(rusqlite::params![group, from_ms, to_ms, limit], |row| {
                Ok(lossy(row.get_ref(0)?.as_bytes_or_null()?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        });
        pending.await.context("reading pending events")
    }

    /// When the oldest unshipped event was spooled, epoch milliseconds; `None` when empty.
    pub async fn oldest_spooled_ms(&self) -> anyhow::Result<Option<i64>> {
        let oldest = self.reads.read(|conn| {
            conn.query_row("SELECT added_ms FROM spool ORDER BY seq LIMIT 1", [], |row| row.get(0)).optional()
        });
        oldest.await.context("reading the oldest spool row")
    }

    async fn call(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<(), CommitFailed>>) -> Request,
    ) -> anyhow::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(request(reply)).await.map_err(|_| anyhow!("the spool thread has stopped"))?;
        answer.await.map_err(|_| anyhow!("the spool thread has stopped"))?.context("spool commit failed")
    }

    /// Records after `after` in commit order: at most `max_events` and at most `max_bytes` of
    /// bodies (but always at least one record if any is waiting).
    pub async fn load_after(
        &self,
        after: i64,
        max_events: usize,
        max_bytes: usize,
    ) -> anyhow::Result<Vec<(i64, SpoolRecord)>> {
        self.reads.read(move |conn| load(conn, after, max_events, max_bytes)).await.context("reading the spool")
    }

    /// Bytes of event bodies accepted but not yet shipped.
    pub fn unshipped_bytes(&self) -> u64 {
        self.counters.bytes.load(Ordering::Relaxed)
    }

    /// Events accepted but not yet shipped.
    pub fn unshipped_events(&self) -> u64 {
        self.counters.events.load(Ordering::Relaxed)
    }

    /// False once the spool thread has stopped (it never should).
    pub fn is_running(&self) -> bool {
        !self.requests.is_closed()
    }
}

fn load(
    conn: &Connection,
    after: i64,
    max_events: usize,
    max_bytes: usize,
) -> rusqlite::Result<Vec<(i64, SpoolRecord)>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, grp, stream, ts, body FROM spool WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let limit = i64::try_from(max_events).unwrap_or(i64::MAX);
    let mut rows = stmt.query(rusqlite::params![after, limit])?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next()? {
        // Read as bytes: text that is not valid UTF-8 (which SQLite does not check) must not
        // stop the writer, and never reaches CloudWatch as invalid UTF-8.
        let body = lossy(row.get_ref(4)?.as_bytes_or_null()?);
        if !out.is_empty() && bytes + body.len() > max_bytes {
            break;
        }
        bytes += body.len();
        out.push((
            row.get(0)?,
            SpoolRecord {
                group: lossy(row.get_ref(1)?.as_bytes_or_null()?),
                stream: lossy(row.get_ref(2)?.as_bytes_or_null()?),
                timestamp_ms: row.get(3)?,
                body,
            },
        ));
    }
    Ok(out)
}

/// Spools written before the `added_ms` column lack it; their rows read as added at 0.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_added: bool =
        conn.query_row("SELECT count(*) > 0 FROM pragma_table_info('spool') WHERE name = 'added_ms'", [], |row| {
            row.get(0)
        })?;
    if !has_added {
        conn.execute_batch("ALTER TABLE spool ADD COLUMN added_ms INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

fn read_dead_letters(conn: &Connection, group: &str, limit: usize) -> rusqlite::Result<(u64, Vec<DeadRecord>)> {
    let total: i64 = conn.query_row("SELECT count(*) FROM deadletter WHERE grp = ?1", [group], |row| row.get(0))?;
    let mut stmt = conn.prepare_cached(
        "SELECT grp, stream, ts, body, reason, detail, dead_ms FROM deadletter WHERE grp = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(rusqlite::params![group, limit], |row| {
        Ok(DeadRecord {
            group: lossy(row.get_ref(0)?.as_bytes_or_null()?),
            stream: lossy(row.get_ref(1)?.as_bytes_or_null()?),
            timestamp_ms: row.get(2)?,
            body: lossy(row.get_ref(3)?.as_bytes_or_null()?),
            reason: lossy(row.get_ref(4)?.as_bytes_or_null()?),
            detail: lossy(row.get_ref(5)?.as_bytes_or_null()?),
            dead_ms: row.get(6)?,
        })
    })?;
    Ok((u64::try_from(total).unwrap_or(0), rows.collect::<rusqlite::Result<Vec<_>>>()?))
}

fn lossy(bytes: Option<&[u8]>) -> String {
    String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
}

/// How often settlements that failed to commit are tried again while nothing else arrives.
const SETTLE_RETRY_INTERVAL: Duration = Duration::from_millis(200);

/// Shipped rows to remove and refused ones to move to the dead letters.
#[derive(Default)]
struct Settlement {
    remove: Vec<i64>,
    dead: Vec<Dead>,
}

/// The spool's side of the writer thread: the counters it keeps, and settlements waiting for a
/// retry.
struct SpoolWriter {
    counters: Arc<Counters>,
    unsettled: Settlement,
}

impl SpoolWriter {
    /// One round: commits the waiting requests and answers each once its change is on disk.
    ///
    /// Settlements commit in their own transaction, before the appends: an append that fails (a
    /// full disk) must not roll back the writer's marks. Settlements that fail themselves are kept
    /// and tried again until they commit, so the counters reach zero and nothing ships twice.
    fn commit_round(&mut self, conn: &mut Connection, batch: Vec<Request>) -> AfterCommit {
        let mut settle_replies = Vec::new();
        let mut appends = Vec::new();
        for request in batch {
            match request {
                Request::Settle { remove, dead, reply } => {
                    self.unsettled.remove.extend(remove);
                    self.unsettled.dead.extend(dead);
                    settle_replies.push(reply);
                }
                Request::Append(records, entry, reply) => appends.push((records, entry, reply)),
            }
        }
        if !self.unsettled.is_empty() {
            let result = commit_settlement(conn, &self.unsettled).map_err(CommitFailed::new);
            match &result {
                Ok(change) => {
                    self.counters.apply(change);
                    self.unsettled = Settlement::default();
                }
                Err(error) => {
                    let events = self.unsettled.remove.len() + self.unsettled.dead.len();
                    tracing::error!(error = %format!("{error:#}"), events, "settling shipped events failed; retrying");
                }
            }
            for reply in settle_replies {
                let _ = reply.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
            }
        }
        if !appends.is_empty() {
            let result = commit_appends(conn, &appends).map_err(CommitFailed::new);
            match &result {
                Ok(change) => self.counters.apply(change),
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), requests = appends.len(), "spool commit failed")
                }
            }
            for (_, _, reply) in appends {
                let _ = reply.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
            }
        }
        if self.unsettled.is_empty() { AfterCommit::Wait } else { AfterCommit::RetryIn(SETTLE_RETRY_INTERVAL) }
    }
}

impl Settlement {
    fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.dead.is_empty()
    }
}

impl Counters {
    fn apply(&self, change: &Change) {
        self.bytes.fetch_add(change.added_bytes, Ordering::Relaxed);
        self.events.fetch_add(change.added_events, Ordering::Relaxed);
        saturating_sub(&self.bytes, change.removed_bytes);
        saturating_sub(&self.events, change.removed_events);
    }
}

fn saturating_sub(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
}

#[derive(Default)]
struct Change {
    added_bytes: u64,
    added_events: u64,
    removed_bytes: u64,
    removed_events: u64,
}

/// Records, the queue entry committed with them, and who waits.
type AppendRequest = (Vec<SpoolRecord>, Option<String>, oneshot::Sender<Result<(), CommitFailed>>);

fn commit_appends(conn: &mut Connection, appends: &[AppendRequest]) -> anyhow::Result<Change> {
    let mut change = Change::default();
    let now = now_ms();
    let tx = conn.transaction()?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO spool (grp, stream, ts, body, added_ms) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for r in appends.iter().flat_map(|(records, ..)| records) {
            insert.execute(rusqlite::params![r.group, r.stream, r.timestamp_ms, r.body, now])?;
            change.added_bytes += r.body.len() as u64;
            change.added_events += 1;
        }
    }
    for entry in appends.iter().filter_map(|(_, entry, _)| entry.as_deref()) {
        queue::push_in(&tx, entry)?;
    }
    tx.commit()?;
    Ok(change)
}

fn commit_settlement(conn: &mut Connection, settlement: &Settlement) -> anyhow::Result<Change> {
    let mut change = Change::default();
    let now = now_ms();
    let tx = conn.transaction()?;
    let mut dead_added = false;
    {
        let mut delete = tx.prepare_cached("DELETE FROM spool WHERE seq = ?1 RETURNING length(CAST(body AS BLOB))")?;
        let mut bury = tx.prepare_cached(
            "INSERT INTO deadletter (grp, stream, ts, body, reason, detail, dead_ms) \
             SELECT grp, stream, ts, body, ?2, ?3, ?4 FROM spool WHERE seq = ?1",
        )?;
        let mut delete_one = |seq: i64, change: &mut Change| -> rusqlite::Result<()> {
            let mut rows = delete.query([seq])?;
            if let Some(row) = rows.next()? {
                change.removed_bytes += u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
                change.removed_events += 1;
            }
            Ok(())
        };
        for seq in &settlement.remove {
            delete_one(*seq, &mut change)?;
        }
        for d in &settlement.dead {
            dead_added |= bury.execute(rusqlite::params![d.seq, d.reason.as_str(), d.detail, now])? > 0;
            delete_one(d.seq, &mut change)?;
        }
    }
    if dead_added {
        tx.execute("DELETE FROM deadletter WHERE seq <= (SELECT max(seq) FROM deadletter) - ?1", [MAX_DEAD_LETTERS])?;
    }
    tx.commit()?;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: i64, body: &str) -> SpoolRecord {
        SpoolRecord { group: "/g".into(), stream: "s".into(), timestamp_ms: n, body: body.into() }
    }

    #[tokio::test]
    async fn appended_records_come_back_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("dir");
        let spool = Spool::open(dir.path()).expect("open");
        spool.append(vec![record(1, "a"), record(2, "bé")]).await.expect("append");
        spool.append(vec![record(3, "c")]).await.expect("append");
        assert_eq!(spool.unshipped_events(), 3);
        assert_eq!(spool.unshipped_bytes(), 1 + 3 + 1, "UTF-8 bytes");
        let rows = spool.load_after(0, 10, usize::MAX).await.expect("load");
        let bodies: Vec<_> = rows.iter().map(|(_, r)| r.body.as_str()).collect();
        assert_eq!(bodies, ["a", "bé", "c"]);
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "seq order");
        assert_eq!(spool.pending("/g", 2, 3, 10).await.expect("pending"), ["c", "bé"], "newest first, in range");
        assert!(spool.pending("/other", 0, 3, 10).await.expect("pending").is_empty());

        spool.remove(vec![rows[0].0]).await.expect("remove");
        drop(spool);
        let spool = Spool::open(dir.path()).expect("reopen");
        assert_eq!(spool.unshipped_events(), 2);
        assert_eq!(spool.unshipped_bytes(), 4);
        let rows = spool.load_after(0, 10, usize::MAX).await.expect("load");
        let bodies: Vec<_> = rows.iter().map(|(_, r)| r.body.as_str()).collect();
        assert_eq!(bodies, ["bé", "c"]);
    }

    #[tokio::test]
    async fn loading_stops_at_the_event_and_byte_caps() {
        let dir = tempfile::tempdir().expect("dir");
        let spool = Spool::open(dir.path()).expect("open");
        spool.append((0..10).map(|i| record(i, "0123456789")).collect()).await.expect("append");
        assert_eq!(spool.load_after(0, 4, usize::MAX).await.expect("load").len(), 4);
        assert_eq!(spool.load_after(0, 100, 25).await.expect("load").len(), 2, "30 bytes would pass 25");
        assert_eq!(spool.load_after(0, 100, 30).await.expect("load").len(), 3);
        assert_eq!(spool.load_after(0, 100, 1).await.expect("load").len(), 1);
        let first = spool.load_after(0, 1, usize::MAX).await.expect("load")[0].0;
        assert_eq!(spool.load_after(first, 100, usize::MAX).await.expect("load").len(), 9);
    }

    #[tokio::test]
    async fn settling_removes_shipped_rows_and_moves_refused_ones_to_the_dead_letters() {
        let dir = tempfile::tempdir().expect("dir");
        let spool = Spool::open(dir.path()).expect("open");
        spool.append(vec![record(1, "ok"), record(2, "old"), record(3, "bad")]).await.expect("append");
        let rows = spool.load_after(0, 10, usize::MAX).await.expect("load");
        assert!(spool.oldest_spooled_ms().await.expect("oldest").is_some_and(|ms| ms > 0));
        let dead = vec![
            Dead { seq: rows[1].0, reason: DeadReason::TooOld, detail: String::new() },
            Dead { seq: rows[2].0, reason: DeadReason::Invalid, detail: "InvalidParameterException: no".into() },
        ];
        spool.settle(vec![rows[0].0], dead).await.expect("settle");
        assert_eq!((spool.unshipped_events(), spool.unshipped_bytes()), (0, 0));
        assert_eq!(spool.oldest_spooled_ms().await.expect("oldest"), None);
        assert!(spool.pending("/g", 0, 10, 10).await.expect("pending").is_empty());
        let (total, letters) = spool.dead_letters("/g", 10).await.expect("dead letters");
        assert_eq!(total, 2);
        let got: Vec<_> = letters.iter().map(|d| (d.body.as_str(), d.reason.as_str(), d.timestamp_ms)).collect();
        assert_eq!(got, [("bad", "invalid", 3), ("old", "too_old", 2)], "newest first");
        assert_eq!(letters[0].detail, "InvalidParameterException: no");
        assert_eq!(spool.dead_letters("/other", 10).await.expect("dead letters").0, 0);
        drop(spool);
        let spool = Spool::open(dir.path()).expect("reopen");
        assert_eq!(spool.dead_letters("/g", 1).await.expect("dead letters").1.len(), 1);
        assert_eq!(spool.unshipped_events(), 0);
    }

    #[tokio::test]
    async fn a_full_disk_fails_the_append_whole_and_keeps_everything_committed_before() {
        let dir = tempfile::tempdir().expect("dir");
        // 64 pages of 4 KB: room for a few hundred KB.
        let spool = Spool::open_limited(dir.path(), Some(64)).expect("open");
        let body = "y".repeat(1000);
        let records = |n| (0..n).map(|i| record(i, &body)).collect::<Vec<_>>();
        spool.append_queued(records(20), "counts of the 20".into()).await.expect("fits");
        let error = spool.append_queued(records(1000), "counts of the 1000".into()).await.expect_err("disk full");
        assert!(format!("{error:#}").contains("full"), "{error:#}");
        assert_eq!(spool.unshipped_events(), 20, "the failed append left nothing behind");
        // The writer thread survives; freeing space makes appends work again.
        let rows = spool.load_after(0, 100, usize::MAX).await.expect("load");
        spool.remove(rows.iter().map(|(seq, _)| *seq).collect()).await.expect("remove");
        spool.append(vec![record(99, "after")]).await.expect("room again");
        drop(spool);
        let spool = Spool::open(dir.path()).expect("reopen");
        let bodies: Vec<_> =
            spool.load_after(0, 2000, usize::MAX).await.expect("load").into_iter().map(|(_, r)| r.body).collect();
        assert_eq!(bodies, ["after"], "no half of the refused append on disk");
        // The queue entries committed with the records: the refused append's is not there.
        let queue = queue::Queue::open(spool.path()).expect("queue");
        let flush = queue.take(10, |entries| entries.join("|")).await.expect("take").expect("a flush");
        assert_eq!(flush.body, "counts of the 20");
    }

    #[tokio::test]
    async fn a_failing_append_does_not_roll_back_settlements_waiting_beside_it() {
        let dir = tempfile::tempdir().expect("dir");
        let body = "y".repeat(1000);
        let shipped: Vec<i64> = {
            let spool = Spool::open(dir.path()).expect("open");
            spool.append((0..20).map(|i| record(i, &body)).collect()).await.expect("fits");
            spool.load_after(0, 100, usize::MAX).await.expect("load").iter().map(|(seq, _)| *seq).collect()
        };
        // One round of the writer gets a too-large append and the settlement together.
        let mut conn = sqlite::open_durable(&dir.path().join("spool.db"), SPOOL_CACHE_KIB).expect("connection");
        conn.execute_batch("PRAGMA max_page_count = 64").expect("limit");
        let (append_reply, append_answer) = oneshot::channel();
        let (settle_reply, settle_answer) = oneshot::channel();
        let too_big = (0..1000).map(|i| record(i, &body)).collect();
        let batch = vec![
            Request::Append(too_big, None, append_reply),
            Request::Settle { remove: shipped, dead: Vec::new(), reply: settle_reply },
        ];
        let counters = Arc::new(Counters { bytes: AtomicU64::new(20_000), events: AtomicU64::new(20) });
        let mut writer = SpoolWriter { counters: Arc::clone(&counters), unsettled: Settlement::default() };
        assert_eq!(writer.commit_round(&mut conn, batch), AfterCommit::Wait, "nothing left to retry");
        assert!(append_answer.await.expect("answer").is_err(), "the disk is full");
        assert_eq!(settle_answer.await.expect("answer"), Ok(()));
        assert_eq!(counters.events.load(Ordering::Relaxed), 0, "the counters reach zero");
        let spool = Spool::open(dir.path()).expect("reopen");
        assert!(spool.load_after(0, 100, usize::MAX).await.expect("load").is_empty(), "nothing ships twice");
    }

    #[tokio::test]
    async fn removing_an_unknown_seq_changes_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let spool = Spool::open(dir.path()).expect("open");
        spool.append(vec![record(1, "abc")]).await.expect("append");
        spool.remove(vec![12345]).await.expect("remove");
        assert_eq!((spool.unshipped_events(), spool.unshipped_bytes()), (1, 3));
    }
}
