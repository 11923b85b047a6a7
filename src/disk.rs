//! The disk guard: the free space of the file system under `data_dir` (the embedded store, the
//! CloudWatch spool and the issue index all live there), looked at every second by a task of
//! its own. Below `retention.min_free_bytes`, ingest is refused with 503 before it touches a
//! store, `/readyz` fails and the home page says why: the disk never fills silently, and a write
//! never fails half-way for want of space. Requests only read an atomic flag.
//!
//! The margin must also hold what the embedded store's write-ahead log has not yet copied into
//! its database file (megabytes): that copy goes on after ingest stops.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the free space is measured.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// What a refused sender is told to wait: space comes back by an operator's hand or the
/// deleter's, not within a second.
pub const RETRY_AFTER_SECS: u64 = 30;

pub struct DiskGuard {
    path: PathBuf,
    /// 0: the guard is off.
    min_free_bytes: u64,
    low: AtomicBool,
    /// At the last measurement.
    free_bytes: AtomicU64,
}

impl DiskGuard {
    /// A guard of the file system holding `data_dir`, measured once now.
    pub fn new(data_dir: &Path, min_free_bytes: u64) -> DiskGuard {
        let guard = DiskGuard {
            path: data_dir.to_path_buf(),
            min_free_bytes,
            low: AtomicBool::new(false),
            free_bytes: AtomicU64::new(u64::MAX),
        };
        guard.check();
        guard
    }

    /// Measures again every [`CHECK_EVERY`] until the guard is dropped (from inside a runtime).
    pub fn watch(self: &Arc<Self>) {
        if self.min_free_bytes == 0 {
            return;
        }
        let guard: Weak<DiskGuard> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CHECK_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(guard) = guard.upgrade() else { return };
                // statvfs is one quick system call; a stalled file system should not hold a worker.
                let _ = tokio::task::spawn_blocking(move || guard.check()).await;
            }
        });
    }

    /// Measures the free space now.
    pub fn check(&self) {
        if self.min_free_bytes == 0 {
            return;
        }
        match free_bytes(&self.path) {
            Ok(free) => {
                self.free_bytes.store(free, Ordering::Relaxed);
                let low = free < self.min_free_bytes;
                if self.low.swap(low, Ordering::Relaxed) != low {
                    if low {
                        tracing::error!(
                            free_bytes = free,
                            min_free_bytes = self.min_free_bytes,
                            "disk space low: ingest refused"
                        );
                    } else {
                        tracing::info!(free_bytes = free, "disk space back: ingest resumes");
                    }
                }
            }
            // Unknown is not low: a failing measurement must not stop ingest on its own (writes
            // that fail still answer 503).
            Err(error) => tracing::warn!(path = %self.path.display(), %error, "measuring free disk space"),
        }
    }

    /// Why ingest is refused now, if it is.
    pub fn refusal(&self) -> Option<String> {
        self.low.load(Ordering::Relaxed).then(|| {
            format!(
                "the disk under data_dir has {} MiB free, below retention.min_free_bytes ({} MiB): ingest is paused until space is freed",
                self.free_bytes.load(Ordering::Relaxed) >> 20,
                self.min_free_bytes >> 20
            )
        })
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `path`.
#[cfg(unix)]
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_path: &Path) -> std::io::Result<u64> {
    Ok(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_refuses_below_the_minimum_and_is_off_at_zero() {
        let dir = tempfile::tempdir().expect("dir");
        let free = free_bytes(dir.path()).expect("statvfs");
        assert!(free > 0);
        let roomy = DiskGuard::new(dir.path(), 1);
        assert_eq!(roomy.refusal(), None);
        let cramped = DiskGuard::new(dir.path(), free.saturating_add(1 << 40));
        let why = cramped.refusal().expect("refused");
        assert!(why.contains("MiB free"), "{why}");
        assert!(
            why.contains(&format!("retention.min_free_bytes ({} MiB)", free.saturating_add(1 << 40) >> 20)),
            "{why}"
        );
        assert_eq!(DiskGuard::new(dir.path(), 0).refusal(), None);
    }
}
