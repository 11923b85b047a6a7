//! Leases: "only one instance does this". A [`Lease`] named for a job (`follow:<group>`) is held
//! by one holder (an instance's id) until its time runs out; the holder keeps it by acquiring it
//! again before then, and another holder gets it once it is released or has run out (a holder
//! that died gives it up that way). Acquiring is one conditional write: granted if the lease is
//! free, ran out, or already the holder's.
//!
//! [`sqlite::SqliteLeases`] keeps them in `data_dir/leases.db`: on one instance's own file
//! every lease is always granted, and the seam is what matters until the state is shared
//! (`shared/spec/state.md`).

pub mod sqlite;

use std::time::Duration;

use async_trait::async_trait;

pub use sqlite::SqliteLeases;

/// Named leases, each held by at most one holder at a time.
#[async_trait]
pub trait Lease: Send + Sync {
    /// Takes the lease `name` for `holder` for `ttl` from now, or extends it when `holder` has
    /// it already; `false` when another holder has it and its time has not run out.
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> anyhow::Result<bool>;

    /// Gives the lease `name` up, if `holder` has it (otherwise nothing changes).
    async fn release(&self, name: &str, holder: &str) -> anyhow::Result<()>;
}

/// An id for this process as a lease holder: unique among the instances, never reused.
pub fn new_holder() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("logboard-{}-{}", std::process::id(), crate::event::new_id(now).to_string().to_ascii_lowercase())
}
