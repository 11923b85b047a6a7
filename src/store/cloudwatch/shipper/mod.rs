//! The buffered writer task: drains the spool into a log destination (CloudWatch Logs in
//! production, a fake in tests) and removes from the spool only what the destination took.
//!
//! It reads the spool in commit order into a bounded buffer, keeps one queue per (group, stream),
//! and flushes a queue when it holds a full batch, when its oldest event has waited
//! [`FLUSH_LINGER`], or at once on shutdown. Up to [`MAX_PUTS_IN_FLIGHT`] puts run at once, over
//! all streams (CloudWatch no longer uses sequence tokens, so puts to one stream may overlap;
//! each call is in chronological order, which is all it requires). Failed calls are retried
//! without limit (the data is on disk), with the backoff in [`retry`]; only the failed sub-batch
//! is sent again.
//!
//! Events CloudWatch refuses (`rejectedLogEventsInfo`, or one event isolated by splitting an
//! InvalidParameter batch) move to the spool's dead-letter table with their reason: never
//! counted as shipped, never silently dropped.
//!
//! No AWS type appears here: the destination is the [`LogDestination`] trait.

pub mod batch;
mod destination;
mod put;
pub mod retry;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::spool::Spool;
use crate::metrics::Metrics;
use retry::Backoff;

/// How long an event may wait in memory for others to share its put.
pub const FLUSH_LINGER: Duration = Duration::from_secs(1);
/// Events held in memory at most (enough for every put in flight to carry a full batch).
pub const MAX_BUFFERED_EVENTS: usize = 50_000;
/// Bytes (as AWS counts them) held in memory at most.
pub const MAX_BUFFERED_BYTES: usize = 16 * 1_048_576;
/// PutLogEvents calls in flight at once, over all streams: one account-wide limit.
pub const MAX_PUTS_IN_FLIGHT: usize = 4;
/// How often an idle writer looks at the spool without being told to.
const IDLE_WAKE: Duration = Duration::from_secs(5);
/// Groups remembered as existing at most; past it the memory is forgotten, not grown.
const MAX_KNOWN_GROUPS: usize = 10_000;

pub use destination::{DeadReason, LogDestination, OutEvent, PutError, PutOutcome, Rejections};

/// What one [`Writer::try_flush_once`] step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Events the destination stored.
    pub shipped: usize,
    /// Events the destination refused in a successful call (too old, too new, expired):
    /// dead-lettered.
    pub rejected: usize,
    /// Events the destination refuses as invalid, isolated by splitting: dead-lettered.
    pub invalid: usize,
    /// When the oldest event still in memory is due, if any.
    pub next_due: Option<Instant>,
}

impl Flushed {
    fn removed(&self) -> usize {
        self.shipped + self.rejected + self.invalid
    }

    fn add(&mut self, other: &Flushed) {
        self.shipped += other.shipped;
        self.rejected += other.rejected;
        self.invalid += other.invalid;
    }
}

/// The events in memory for one (group, stream).
struct Queue {
    events: Vec<OutEvent>,
    bytes: usize,
    /// When its oldest event was loaded.
    since: Instant,
}

impl Queue {
    /// Due to ship: it fills a batch, or its oldest event has waited `linger` for others.
    fn is_due(&self, now: Instant, linger: Duration) -> bool {
        self.events.len() >= batch::MAX_BATCH_EVENTS
            || self.bytes >= batch::MAX_BATCH_BYTES
            || now >= self.since + linger
    }
}

/// A batch that could not be shipped, and why (`None`: not tried, another put failed first).
type Unshipped = (Option<PutError>, Vec<OutEvent>);

/// Drains the spool into a destination. [`Writer::run`] is the task; tests call
/// [`Writer::try_flush_once`] step by step.
pub struct Writer {
    spool: Arc<Spool>,
    destination: Arc<dyn LogDestination>,
    metrics: Arc<Metrics>,
    queues: BTreeMap<(String, String), Queue>,
    buffered_events: usize,
    buffered_bytes: usize,
    /// The last spool row loaded into memory.
    loaded_through: i64,
    /// Groups created (or found existing) by this writer, so a new stream needs one call.
    known_groups: Mutex<HashSet<String>>,
    linger: Duration,
    max_in_flight: usize,
    /// Until the first load: what the spool holds then was left by an earlier run, and is due.
    first_load: bool,
}

impl Writer {
    pub fn new(spool: Arc<Spool>, destination: Arc<dyn LogDestination>) -> Writer {
        Writer {
            spool,
            destination,
            metrics: Arc::new(Metrics::new()),
            queues: BTreeMap::new(),
            buffered_events: 0,
            buffered_bytes: 0,
            loaded_through: 0,
            known_groups: Mutex::new(HashSet::new()),
            linger: FLUSH_LINGER,
            max_in_flight: MAX_PUTS_IN_FLIGHT,
            first_load: true,
        }
    }

    /// Changes how long events wait for others to share their put.
    pub fn with_linger(mut self, linger: Duration) -> Writer {
        self.linger = linger;
        self
    }

    /// Counts into the service's metrics instead of a private set.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Writer {
        self.metrics = metrics;
        self
    }

    /// Changes how many puts may be in flight at once (at least one).
    pub fn with_max_in_flight(mut self, puts: usize) -> Writer {
        self.max_in_flight = puts.max(1);
        self
    }

    /// Events loaded from the spool and not yet shipped.
    pub fn buffered_events(&self) -> usize {
        self.buffered_events
    }

    /// Bytes (as AWS counts them) loaded from the spool and not yet shipped.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// One step: load what the spool holds (up to the memory bound), then ship every queue that
    /// is due (every queue when `force`), up to [`MAX_PUTS_IN_FLIGHT`] puts at once. On `Err`
    /// the unshipped events stay in memory and on disk; the caller backs off and calls again.
    pub async fn try_flush_once(&mut self, force: bool) -> anyhow::Result<Flushed> {
        self.refill().await?;
        let now = Instant::now();
        let memory_full = self.buffered_events >= MAX_BUFFERED_EVENTS || self.buffered_bytes >= MAX_BUFFERED_BYTES;
        let due: Vec<(String, String)> = self
            .queues
            .iter()
            .filter(|(_, q)| force || memory_full || q.is_due(now, self.linger))
            .map(|(key, _)| key.clone())
            .collect();
        let mut work = Vec::new();
        for key in due {
            let Some(queue) = self.queues.remove(&key) else { continue };
            self.buffered_events -= queue.events.len();
            self.buffered_bytes -= queue.bytes;
            for events in batch::split(queue.events) {
                work.push((key.clone(), queue.since, events));
            }
        }
        let stop = AtomicBool::new(false);
        let results: Vec<_> = {
            let this = &*self;
            let stop = &stop;
            futures_util::stream::iter(work)
                .map(|(key, since, events)| async move {
                    let (flushed, unshipped) = this.ship(&key.0, &key.1, events, stop).await;
                    (key, since, flushed, unshipped)
                })
                .buffer_unordered(self.max_in_flight)
                .collect()
                .await
        };
        let mut flushed = Flushed::default();
        let mut failure = None;
        for (key, since, step, unshipped) in results {
            flushed.add(&step);
            if let Some((error, events)) = unshipped {
                self.put_back(key, events, since);
                if let Some(error) = error {
                    // An account-wide error is the one to report: it decides the backoff.
                    if failure.as_ref().is_none_or(|f: &PutError| !f.is_account_wide()) {
                        failure = Some(error);
                    }
                }
            }
        }
        if let Some(error) = failure {
            return Err(error.into());
        }
        flushed.next_due = self.queues.values().map(|q| q.since + self.linger).min();
        Ok(flushed)
    }

    /// Runs until `flush_all`'s sender is dropped. `notify` says the spool has new events;
    /// `flush_all` turning true (shutdown) makes every queue due at once.
    pub async fn run(mut self, notify: Arc<Notify>, mut flush_all: watch::Receiver<bool>) {
        let mut backoff = Backoff::new();
        loop {
            let force = *flush_all.borrow_and_update();
            match self.try_flush_once(force).await {
                Ok(step) => {
                    backoff.reset();
                    if step.removed() > 0 {
                        continue;
                    }
                    let wake = step.next_due.unwrap_or_else(|| Instant::now() + IDLE_WAKE);
                    tokio::select! {
                        () = notify.notified() => {}
                        () = tokio::time::sleep_until(wake) => {}
                        changed = flush_all.changed() => if changed.is_err() { return },
                    }
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    let denied = matches!(error.downcast_ref::<PutError>(), Some(PutError::Denied(_)));
                    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                    if denied {
                        tracing::error!(
                            error = %format!("{error:#}"),
                            attempt = backoff.attempts(),
                            delay_ms,
                            spool.events = self.spool.unshipped_events(),
                            "CloudWatch refuses our credentials; events stay in the spool until fixed"
                        );
                    } else {
                        tracing::warn!(
                            error = %format!("{error:#}"),
                            attempt = backoff.attempts(),
                            delay_ms,
                            "shipping failed; retrying after a backoff"
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        changed = flush_all.changed() => if changed.is_err() { return },
                    }
                }
            }
        }
    }

    async fn refill(&mut self) -> anyhow::Result<()> {
        let room_events = MAX_BUFFERED_EVENTS.saturating_sub(self.buffered_events);
        // The spool counts message bytes; in memory each event also counts AWS's 26 bytes.
        let room_bytes = MAX_BUFFERED_BYTES
            .saturating_sub(self.buffered_bytes)
            .saturating_sub(room_events * batch::EVENT_OVERHEAD_BYTES);
        if room_events == 0 || room_bytes == 0 {
            return Ok(());
        }
        let rows = self.spool.load_after(self.loaded_through, room_events, room_bytes).await?;
        let now = Instant::now();
        // A backlog from an earlier run has waited long enough: it is due at once.
        let since =
            if std::mem::take(&mut self.first_load) { now.checked_sub(self.linger).unwrap_or(now) } else { now };
        for (seq, record) in rows {
            self.loaded_through = seq;
            let event = OutEvent { seq, timestamp_ms: record.timestamp_ms, message: record.body };
            let size = batch::event_size(&event.message);
            let queue = self.queues.entry((record.group, record.stream)).or_insert_with(|| Queue {
                events: Vec::new(),
                bytes: 0,
                since,
            });
            queue.events.push(event);
            queue.bytes += size;
            self.buffered_events += 1;
            self.buffered_bytes += size;
        }
        Ok(())
    }

    fn put_back(&mut self, key: (String, String), events: Vec<OutEvent>, since: Instant) {
        let bytes: usize = events.iter().map(|e| batch::event_size(&e.message)).sum();
        self.buffered_events += events.len();
        self.buffered_bytes += bytes;
        let queue = self.queues.entry(key).or_insert_with(|| Queue { events: Vec::new(), bytes: 0, since });
        queue.since = queue.since.min(since);
        queue.events.extend(events);
        queue.bytes += bytes;
    }
}
