//! [`Lease`]s in SQLite: the table `leases (name, holder, until_ms)` in `data_dir/leases.db`, and
//! acquiring one upsert whose update only happens when the lease is ours or ran out.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::params;

use super::Lease;
use crate::clock::now_ms;
use crate::sqlite::SharedConnection;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Leases in `data_dir/leases.db`.
#[derive(Debug, Clone)]
pub struct SqliteLeases {
    db: SharedConnection,
}

impl SqliteLeases {
    pub fn open(data_dir: &Path) -> anyhow::Result<SqliteLeases> {
        Ok(SqliteLeases { db: SharedConnection::open(&data_dir.join("leases.db"), 256, SCHEMA)? })
    }

    /// [`Lease::acquire`] with the clock at `now_ms`.
    pub async fn acquire_at(&self, name: &str, holder: &str, ttl: Duration, now_ms: i64) -> anyhow::Result<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        let until = now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self.db
            .run(move |conn| {
                let changed = conn
                    .prepare_cached(
                        "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
                         WHERE leases.holder = excluded.holder OR leases.until_ms <= ?4",
                    )?
                    .execute(params![name, holder, until, now_ms])?;
                Ok(changed == 1)
            })
            .await
    }
}

#[async_trait]
impl Lease for SqliteLeases {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> anyhow::Result<bool> {
        self.acquire_at(name, holder, ttl, now_ms()).await
    }

    async fn release(&self, name: &str, holder: &str) -> anyhow::Result<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.db
            .run(move |conn| {
                conn.prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")?
                    .execute(params![name, holder])?;
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);
    const T0: i64 = 1_800_000_000_000;

    #[tokio::test]
    async fn one_holder_wins_and_the_other_loses_until_the_lease_runs_out() {
        let dir = tempfile::tempdir().expect("dir");
        let leases = SqliteLeases::open(dir.path()).expect("open");
        let other = SqliteLeases::open(dir.path()).expect("a second instance on the same file");
        assert!(leases.acquire_at("follow:/g", "a", TTL, T0).await.expect("acquire"));
        assert!(!other.acquire_at("follow:/g", "b", TTL, T0 + 1).await.expect("acquire"), "a holds it");
        assert!(other.acquire_at("follow:/other", "b", TTL, T0 + 1).await.expect("acquire"), "another name is free");
        // `a` keeps it by acquiring again before the end; `b` still loses until then.
        assert!(leases.acquire_at("follow:/g", "a", TTL, T0 + 50_000).await.expect("renew"));
        assert!(!other.acquire_at("follow:/g", "b", TTL, T0 + 60_000).await.expect("acquire"), "renewed");
        assert!(other.acquire_at("follow:/g", "b", TTL, T0 + 110_000).await.expect("acquire"), "ran out");
        assert!(!leases.acquire_at("follow:/g", "a", TTL, T0 + 110_001).await.expect("acquire"), "b has it now");
    }

    #[tokio::test]
    async fn a_released_lease_goes_to_the_next_holder_and_only_its_holder_releases_it() {
        let dir = tempfile::tempdir().expect("dir");
        let leases = SqliteLeases::open(dir.path()).expect("open");
        assert!(leases.acquire("follow:/g", "a", TTL).await.expect("acquire"));
        leases.release("follow:/g", "b").await.expect("release by a non-holder changes nothing");
        assert!(!leases.acquire("follow:/g", "b", TTL).await.expect("acquire"));
        leases.release("follow:/g", "a").await.expect("release");
        assert!(leases.acquire("follow:/g", "b", TTL).await.expect("acquire"), "free after its release");
        assert!(!leases.acquire("follow:/g", "a", TTL).await.expect("acquire"));
    }
}
