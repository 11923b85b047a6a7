//! The store's refusals of ingest batches, logged at most once per interval with how many there
//! were since: a store that is full, failing or behind its sealer answers every request with 503,
//! and must not also write a log line for each of them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a run of refusals is logged.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

pub struct RefusalLog {
    every: Duration,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    last_logged: Option<Instant>,
    batches: u64,
    events: u64,
}

impl RefusalLog {
    pub fn new(every: Duration) -> RefusalLog {
        RefusalLog { every, counts: Mutex::new(Counts::default()) }
    }

    /// Counts a refused batch, and logs the refusals so far when the last line is old enough.
    /// Returns the (batches, events) logged, if it logged.
    pub fn note(&self, error: &anyhow::Error, events: usize) -> Option<(u64, u64)> {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.batches += 1;
        counts.events += events as u64;
        if counts.last_logged.is_some_and(|last| last.elapsed() < self.every) {
            return None;
        }
        let logged = (counts.batches, counts.events);
        tracing::error!(
            error = format!("{error:#}"),
            batches = logged.0,
            events = logged.1,
            "could not store ingest batches (answered 503; logged at most every {} s)",
            self.every.as_secs()
        );
        *counts = Counts { last_logged: Some(Instant::now()), batches: 0, events: 0 };
        Some(logged)
    }
}

impl Default for RefusalLog {
    fn default() -> RefusalLog {
        RefusalLog::new(REFUSAL_LOG_EVERY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_refusals_is_one_line_per_interval_that_counts_them_all() {
        let log = RefusalLog::new(Duration::from_millis(200));
        let error = anyhow::anyhow!("the embedded store's column sealer is 300000 rows behind");
        assert_eq!(log.note(&error, 100), Some((1, 100)), "the first refusal is logged at once");
        for _ in 0..5 {
            assert_eq!(log.note(&error, 10), None);
        }
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(log.note(&error, 1), Some((6, 51)), "the next line counts what was not logged");
        assert_eq!(log.note(&error, 1), None);
    }
}
