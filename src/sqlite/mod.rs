//! The SQLite plumbing every database of the service shares (the embedded store, the CloudWatch
//! spool, `issues.db`, `alerts.db`, the leases): durable connections, the one writer thread with
//! group commit and its typed failure ([`CommitFailed`]), pools of read connections, and one
//! connection behind a lock for the small databases whose calls are few and short.

mod error;
mod pool;
pub mod queue;
mod shared;
mod writer;

use std::path::Path;

use anyhow::Context as _;
use rusqlite::Connection;

pub use error::CommitFailed;
pub use pool::{PoolLimits, ReadError, ReadPool};
pub use shared::SharedConnection;
pub use writer::{AfterCommit, spawn_writer};

/// Opens the database at `path` for writing: WAL, so reads run beside the writer, and
/// `synchronous = FULL`, so a commit is fsynced before it returns and an answered write survives
/// `kill -9` and power loss. `cache_kib` sizes the page cache. Its transactions take the write
/// lock as they begin (waiting for it up to the busy timeout): a database may have two writers
/// (a store and the [`queue`] in it), and a transaction that read first and then found the other
/// writer's commit newer than what it read could not write at all.
pub fn open_durable(path: &Path, cache_kib: u32) -> anyhow::Result<Connection> {
    let mut conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -{cache_kib};"
    ))
    .with_context(|| format!("setting the pragmas of {}", path.display()))?;
    Ok(conn)
}
