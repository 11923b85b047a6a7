//! One durable connection behind a lock, for a small database whose calls are few and short
//! (`alerts.db`, the leases): a writer thread and a read pool would cost more than they save.
//! Calls block on SQLite and, for a write, an fsync: async callers run them on
//! `spawn_blocking` (or use [`SharedConnection::run`], which does).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context as _, anyhow};
use rusqlite::Connection;

/// A durable connection ([`super::open_durable`]) shared by clones; one call at a time.
#[derive(Clone)]
pub struct SharedConnection {
    conn: Arc<Mutex<Connection>>,
    /// The file's name, for errors.
    name: Arc<str>,
}

impl std::fmt::Debug for SharedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConnection").field("name", &self.name).finish_non_exhaustive()
    }
}

impl SharedConnection {
    /// Opens `path` (creating its directory), with foreign keys enforced, and runs `schema`.
    pub fn open(path: &Path, cache_kib: u32, schema: &str) -> anyhow::Result<SharedConnection> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let conn = super::open_durable(path, cache_kib)?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        conn.execute_batch(schema).with_context(|| format!("creating the schema of {}", path.display()))?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(SharedConnection { conn: Arc::new(Mutex::new(conn)), name: name.into() })
    }

    /// The connection, once no other call holds it (it blocks). Hold it for one call only.
    pub fn lock(&self) -> anyhow::Result<MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| anyhow!("the {} connection was poisoned by a panic", self.name))
    }

    /// Runs `f` on the connection, here and now (it blocks).
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> anyhow::Result<T>) -> anyhow::Result<T> {
        f(&mut *self.lock()?)
    }

    /// Runs `f` on the connection on tokio's blocking threads.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || shared.with(f)).await.context("a SQLite call panicked")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_share_one_connection_and_a_reopened_file_keeps_what_was_written() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("nested").join("small.db");
        let schema = "CREATE TABLE IF NOT EXISTS t (x INTEGER NOT NULL);";
        let shared = SharedConnection::open(&path, 1024, schema).expect("open");
        let clone = shared.clone();
        clone.with(|conn| Ok(conn.execute("INSERT INTO t (x) VALUES (7)", [])?)).expect("insert");
        let read = shared.run(|conn| Ok(conn.query_row("SELECT x FROM t", [], |row| row.get::<_, i64>(0))?));
        assert_eq!(read.await.expect("read"), 7);
        drop((shared, clone));
        let reopened = SharedConnection::open(&path, 1024, schema).expect("reopen");
        let count = reopened.with(|conn| Ok(conn.query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))?));
        assert_eq!(count.expect("count"), 1);
    }
}
