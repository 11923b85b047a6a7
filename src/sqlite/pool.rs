//! Pools of read connections.
//!
//! A [`ReadPool`] gives each read a connection of its own (WAL lets readers run beside the writer
//! and beside each other), waits a bounded time for one to come free, and has SQLite interrupt a
//! read that runs past its time limit. So a slow query holds one connection for a bounded time
//! and never blocks the reads on other connections or in other pools, and a caller is never kept
//! waiting in a queue it cannot see the end of.
//!
//! Why a pool of our own rather than r2d2_sqlite or deadpool-sqlite: their newest releases
//! (0.35 and 0.14) are built on rusqlite 0.40, and two rusqlite versions cannot be linked into one
//! binary (each bundles SQLite through `libsqlite3-sys`, `links = "sqlite3"`). Neither would bound
//! a query's time either. What is needed is small: a semaphore with a timeout in front of a stack
//! of idle connections.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rusqlite::{Connection, ErrorCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// SQLite virtual-machine steps between two looks at the clock: often enough that a read stops
/// within about a millisecond of its limit, rarely enough that the clock costs nothing measurable.
const STEPS_PER_CLOCK_CHECK: i32 = 1000;

/// Pragmas of a read connection. `query_only`: a read connection can never write. A reader
/// waits at most a second for a lock (it needs one only while the WAL is reset), and keeps a
/// 16 MB page cache: the pool has several connections, and the OS caches the file as well.
const READER_PRAGMAS: &str = "PRAGMA query_only = ON; PRAGMA busy_timeout = 1000; PRAGMA cache_size = -16384;";

/// How a pool behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Connections in the pool: at most this many reads run at once.
    pub connections: usize,
    /// How long a read waits for a free connection before it is refused with [`ReadError::Busy`].
    pub max_wait: Duration,
    /// How long one read may run before SQLite interrupts it with [`ReadError::TooSlow`].
    pub time_limit: Duration,
}

/// Why a read through a [`ReadPool`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("all {connections} read connections stayed busy for {waited:?}")]
    Busy { connections: usize, waited: Duration },
    #[error("the read ran past its limit of {limit:?} and was interrupted")]
    TooSlow { limit: Duration },
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    #[error("the read task failed")]
    Task(#[from] tokio::task::JoinError),
    /// A free slot with no idle connection behind it: a bug in the pool, answered as an error
    /// rather than a panic.
    #[error("no idle read connection behind a free slot")]
    NoConnection,
}

/// Read connections to one database file, used through `&self`; each read runs on tokio's blocking
/// threads, so a slow query never holds up the async workers.
pub struct ReadPool {
    shared: Arc<Shared>,
}

struct Shared {
    /// One permit per idle connection: a read takes a permit before it takes a connection.
    slots: Arc<Semaphore>,
    /// Held only to push or pop, never across a query.
    idle: Mutex<Vec<Reader>>,
    limits: PoolLimits,
    /// Deadlines are kept as nanoseconds since this instant, so they fit in an atomic.
    epoch: Instant,
}

struct Reader {
    conn: Connection,
    /// When the running read must stop, in nanoseconds since the pool's epoch; 0 while idle.
    /// The connection's progress handler reads it.
    deadline: Arc<AtomicU64>,
}

impl ReadPool {
    /// Opens `limits.connections` (at least one) read connections to `path`, each set up by
    /// `prepare` (e.g. to register SQL functions).
    pub fn open(
        path: &Path,
        limits: PoolLimits,
        prepare: impl Fn(&Connection) -> rusqlite::Result<()>,
    ) -> anyhow::Result<ReadPool> {
        let epoch = Instant::now();
        let count = limits.connections.max(1);
        let mut idle = Vec::with_capacity(count);
        for _ in 0..count {
            let mut conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
            conn.execute_batch(READER_PRAGMAS).context("setting the read connection's pragmas")?;
            let deadline = Arc::new(AtomicU64::new(0));
            let watched = Arc::clone(&deadline);
            conn.progress_handler(
                STEPS_PER_CLOCK_CHECK,
                Some(move || {
                    let deadline = watched.load(Ordering::Relaxed);
                    deadline != 0 && nanos(epoch.elapsed()) >= deadline
                }),
            )
            .context("installing the read time limit")?;
            prepare(&conn).context("preparing a read connection")?;
            idle.push(Reader { conn, deadline });
        }
        let limits = PoolLimits { connections: count, ..limits };
        let shared = Shared { slots: Arc::new(Semaphore::new(count)), idle: Mutex::new(idle), limits, epoch };
        Ok(ReadPool { shared: Arc::new(shared) })
    }

    /// How many connections the pool has.
    pub fn connections(&self) -> usize {
        self.shared.limits.connections
    }

    /// Runs `work` on a connection of the pool: after waiting at most `max_wait` for one, and
    /// interrupted once it has run for `time_limit`.
    pub async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, ReadError> {
        let PoolLimits { connections, max_wait, .. } = self.shared.limits;
        let slot = match tokio::time::timeout(max_wait, Arc::clone(&self.shared.slots).acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            // The semaphore is never closed; a closed one would mean no connection ever again.
            Ok(Err(_)) | Err(_) => return Err(ReadError::Busy { connections, waited: max_wait }),
        };
        let reader = self.shared.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let lease = Lease {
            reader: Some(reader.ok_or(ReadError::NoConnection)?),
            shared: Arc::clone(&self.shared),
            _slot: slot,
        };
        // Once spawned, the read finishes (or is interrupted) and returns its connection even
        // when the caller stops waiting for it.
        tokio::task::spawn_blocking(move || lease.run(work)).await?
    }
}

/// A connection taken from the pool, with its slot; dropping it gives both back, also when the
/// read panicked.
struct Lease {
    reader: Option<Reader>,
    shared: Arc<Shared>,
    _slot: OwnedSemaphorePermit,
}

impl Lease {
    fn run<T>(self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, ReadError> {
        let Some(reader) = &self.reader else { return Err(ReadError::NoConnection) };
        let limit = self.shared.limits.time_limit;
        let deadline = nanos(self.shared.epoch.elapsed().saturating_add(limit)).max(1);
        reader.deadline.store(deadline, Ordering::Relaxed);
        let result = work(&reader.conn);
        result.map_err(|error| match error.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) => ReadError::TooSlow { limit },
            _ => ReadError::Sqlite(error),
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.deadline.store(0, Ordering::Relaxed);
            self.shared.idle.lock().unwrap_or_else(PoisonError::into_inner).push(reader);
        }
        // `_slot` is dropped after this: the connection is back before its slot is free, so a
        // free slot always finds an idle connection.
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::functions::FunctionFlags;

    fn pool(dir: &Path, connections: usize, max_wait_ms: u64, time_limit_ms: u64) -> ReadPool {
        let path = dir.join("test.db");
        Connection::open(&path).expect("create").execute_batch("PRAGMA journal_mode = WAL;").expect("wal");
        let limits = PoolLimits {
            connections,
            max_wait: Duration::from_millis(max_wait_ms),
            time_limit: Duration::from_millis(time_limit_ms),
        };
        ReadPool::open(&path, limits, |conn| {
            conn.create_scalar_function("seven", 0, FunctionFlags::SQLITE_DETERMINISTIC, |_| Ok(7))
        })
        .expect("pool")
    }

    /// A query that never ends on its own.
    const ENDLESS: &str = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n";

    #[tokio::test]
    async fn a_read_past_its_time_limit_is_interrupted_and_its_connection_serves_the_next_read() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = pool(dir.path(), 1, 1000, 50);
        let error =
            pool.read(|conn| conn.query_row(ENDLESS, [], |row| row.get::<_, i64>(0))).await.expect_err("endless");
        assert!(matches!(error, ReadError::TooSlow { limit } if limit == Duration::from_millis(50)), "{error:?}");
        let answer = pool.read(|conn| conn.query_row("SELECT seven()", [], |row| row.get::<_, i64>(0)));
        assert_eq!(answer.await.expect("the same, only connection reads again"), 7, "prepared by the pool");
    }

    #[tokio::test]
    async fn a_read_that_finds_every_connection_busy_is_refused_after_the_wait_and_served_once_one_frees() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = Arc::new(pool(dir.path(), 2, 100, 10_000));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let mut holders = Vec::new();
        for _ in 0..2 {
            let (pool, held) = (Arc::clone(&pool), Arc::clone(&held));
            holders.push(tokio::spawn(async move {
                pool.read(move |_| {
                    let _ = held.lock().expect("lock").recv();
                    Ok(())
                })
                .await
            }));
        }
        while pool.shared.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let error = pool.read(|_| Ok(())).await.expect_err("both connections are held");
        assert!(matches!(error, ReadError::Busy { connections: 2, .. }), "{error:?}");
        drop(release);
        for holder in holders {
            holder.await.expect("task").expect("the held reads finish");
        }
        assert_eq!(
            pool.read(|conn| conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))).await.expect("free"),
            1
        );
    }

    #[tokio::test]
    async fn a_read_that_panics_gives_its_connection_back() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = pool(dir.path(), 1, 1000, 10_000);
        let error =
            pool.read(|_| -> rusqlite::Result<()> { panic!("a bug in the caller") }).await.expect_err("panicked");
        assert!(matches!(error, ReadError::Task(_)), "{error:?}");
        assert_eq!(
            pool.read(|conn| conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))).await.expect("read"),
            1
        );
    }

    #[tokio::test]
    async fn read_connections_cannot_write() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = pool(dir.path(), 1, 1000, 10_000);
        let error = pool.read(|conn| conn.execute("CREATE TABLE sneaky (x)", [])).await.expect_err("query_only");
        assert!(matches!(error, ReadError::Sqlite(_)), "{error:?}");
    }
}
