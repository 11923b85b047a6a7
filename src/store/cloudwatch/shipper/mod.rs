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
pub mod retry;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::spool::{Dead, Spool};
use crate::metrics::Metrics;
use retry::{Action, Backoff};

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

/// Dead-letter reasons.
pub mod reason {
    pub const TOO_NEW: &str = "too_new";
    pub const TOO_OLD: &str = "too_old";
    pub const EXPIRED: &str = "expired";
    pub const INVALID: &str = "invalid";
}

/// One event as the destination receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// Its row in the spool (not sent).
    pub seq: i64,
    pub timestamp_ms: i64,
    pub message: String,
}

/// What a successful put reports: events the destination refused while storing the rest.
/// Indices are into the events of the call, as in CloudWatch's `rejectedLogEventsInfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// Events from this index on were too far in the future.
    pub too_new_start: Option<usize>,
    /// Events before this index were older than 14 days.
    pub too_old_end: Option<usize>,
    /// Events before this index were older than the group's retention.
    pub expired_end: Option<usize>,
}

/// Rejected events of one call, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejections {
    pub too_new: usize,
    pub too_old: usize,
    pub expired: usize,
}

impl Rejections {
    pub fn total(&self) -> usize {
        self.too_new + self.too_old + self.expired
    }
}

impl PutOutcome {
    /// Why the event at `index` was refused, if it was (each event under one reason).
    pub fn reason_of(&self, index: usize) -> Option<&'static str> {
        if self.too_new_start.is_some_and(|start| index >= start) {
            Some(reason::TOO_NEW)
        } else if self.expired_end.is_some_and(|end| index < end) {
            Some(reason::EXPIRED)
        } else if self.too_old_end.is_some_and(|end| index < end) {
            Some(reason::TOO_OLD)
        } else {
            None
        }
    }

    /// Counts the rejected events of a call of `len` events, each under one reason.
    pub fn rejections(&self, len: usize) -> Rejections {
        let mut r = Rejections::default();
        for i in 0..len {
            match self.reason_of(i) {
                Some(reason::TOO_NEW) => r.too_new += 1,
                Some(reason::EXPIRED) => r.expired += 1,
                Some(_) => r.too_old += 1,
                None => {}
            }
        }
        r
    }
}

/// Why a call to the destination failed, as far as the writer needs to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    #[error("the log group or stream does not exist")]
    GroupOrStreamMissing,
    #[error("the log group or stream already exists")]
    AlreadyExists,
    #[error("throttled")]
    Throttled,
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// 5xx, timeouts, connection resets.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Credentials or permissions.
    #[error("access denied: {0}")]
    Denied(String),
    #[error("{0}")]
    Other(String),
}

impl PutError {
    /// Throttling and outages hit every stream alike: stop sending and back off.
    fn is_account_wide(&self) -> bool {
        matches!(self, PutError::Throttled | PutError::Transient(_))
    }
}

/// Where the writer sends events: CloudWatch Logs, or a fake in tests.
#[async_trait]
pub trait LogDestination: Send + Sync {
    /// One PutLogEvents call; `events` are in chronological order and within the limits.
    async fn put(&self, group: &str, stream: &str, events: &[OutEvent]) -> Result<PutOutcome, PutError>;
    async fn create_group(&self, group: &str) -> Result<(), PutError>;
    async fn create_stream(&self, group: &str, stream: &str) -> Result<(), PutError>;
}

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
            .filter(|(_, q)| {
                force
                    || memory_full
                    || q.events.len() >= batch::MAX_BATCH_EVENTS
                    || q.bytes >= batch::MAX_BATCH_BYTES
                    || now >= q.since + self.linger
            })
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

    /// Ships one batch, splitting it to isolate events the destination calls invalid. Returns
    /// what was done and, after a failure that needs a retry, the events not yet shipped.
    /// Once `stop` is set (by this or another put), sends nothing more.
    async fn ship(
        &self,
        group: &str,
        stream: &str,
        events: Vec<OutEvent>,
        stop: &AtomicBool,
    ) -> (Flushed, Option<Unshipped>) {
        let mut flushed = Flushed::default();
        let mut work = vec![events];
        while let Some(mut part) = work.pop() {
            if stop.load(Ordering::Relaxed) {
                part.extend(work.into_iter().flatten());
                return (flushed, Some((None, part)));
            }
            match self.put_creating(group, stream, &part).await {
                Ok(outcome) => {
                    let mut shipped = Vec::with_capacity(part.len());
                    let mut dead = Vec::new();
                    for (i, event) in part.iter().enumerate() {
                        match outcome.reason_of(i) {
                            Some(reason) => dead.push(Dead { seq: event.seq, reason, detail: String::new() }),
                            None => shipped.push(event.seq),
                        }
                    }
                    if !dead.is_empty() {
                        let r = outcome.rejections(part.len());
                        tracing::warn!(
                            group,
                            stream,
                            rejected.too_new = r.too_new,
                            rejected.too_old = r.too_old,
                            rejected.expired = r.expired,
                            batch.events = part.len(),
                            "CloudWatch rejected events of a put; they go to the dead letters"
                        );
                        for d in &dead {
                            self.metrics.dead_letter(d.reason, 1);
                        }
                    }
                    flushed.shipped += shipped.len();
                    flushed.rejected += dead.len();
                    self.metrics.shipped.inc_by(shipped.len() as u64);
                    self.settle(shipped, dead).await;
                }
                Err(PutError::InvalidParameter(detail)) if part.len() > 1 => {
                    tracing::debug!(group, stream, batch.events = part.len(), detail, "splitting a refused batch");
                    let second = part.split_off(part.len() / 2);
                    work.push(second);
                    work.push(part);
                }
                Err(PutError::InvalidParameter(detail)) => {
                    tracing::error!(
                        group,
                        stream,
                        timestamp_ms = part[0].timestamp_ms,
                        message_bytes = part[0].message.len(),
                        detail,
                        "CloudWatch refuses an event as invalid; it goes to the dead letters"
                    );
                    flushed.invalid += 1;
                    self.metrics.dead_letter(reason::INVALID, 1);
                    let dead = vec![Dead { seq: part[0].seq, reason: reason::INVALID, detail }];
                    self.settle(Vec::new(), dead).await;
                }
                Err(error) => {
                    if error.is_account_wide() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    part.extend(work.into_iter().flatten());
                    return (flushed, Some((Some(error), part)));
                }
            }
        }
        (flushed, None)
    }

    /// Removes handled events from the spool (dead letters move to their table). If that fails
    /// they were still handled: they would be shipped again after a restart, a duplicate readers
    /// drop by id.
    async fn settle(&self, shipped: Vec<i64>, dead: Vec<Dead>) {
        let events = shipped.len() + dead.len();
        if let Err(error) = self.spool.settle(shipped, dead).await {
            tracing::error!(error = %format!("{error:#}"), events, "removing shipped events from the spool failed");
        }
    }

    /// One timed, counted put.
    async fn put(&self, group: &str, stream: &str, events: &[OutEvent]) -> Result<PutOutcome, PutError> {
        self.metrics.puts_in_flight.inc();
        let started = Instant::now();
        let answer = self.destination.put(group, stream, events).await;
        self.metrics.put_duration_seconds.observe(started.elapsed().as_secs_f64());
        self.metrics.puts_in_flight.dec();
        match &answer {
            Ok(_) => {
                self.metrics.batch_events.observe(events.len() as f64);
                let bytes: usize = events.iter().map(|e| batch::event_size(&e.message)).sum();
                self.metrics.batch_bytes.observe(bytes as f64);
            }
            Err(error) => {
                if *error == PutError::Throttled {
                    self.metrics.throttled.inc();
                }
                if retry::is_retriable(error) {
                    self.metrics.retried.inc();
                }
            }
        }
        answer
    }

    /// Puts; when the group or stream is missing, creates them and puts once more.
    async fn put_creating(&self, group: &str, stream: &str, events: &[OutEvent]) -> Result<PutOutcome, PutError> {
        match self.put(group, stream, events).await {
            Err(error) if retry::classify(&error) == Action::CreateAndRetry => {
                self.create(group, stream).await?;
                // Right after a create a put can still find nothing: that error goes back to
                // the loop, which backs off and tries again. Never dropped.
                let answer = self.put(group, stream, events).await;
                if answer.as_ref().is_err_and(|e| *e == PutError::GroupOrStreamMissing) {
                    self.metrics.retried.inc();
                }
                answer
            }
            other => other,
        }
    }

    fn knows_group(&self, group: &str) -> bool {
        self.known_groups.lock().is_ok_and(|known| known.contains(group))
    }

    fn remember_group(&self, group: &str, exists: bool) {
        if let Ok(mut known) = self.known_groups.lock() {
            if !exists {
                known.remove(group);
                return;
            }
            if known.len() >= MAX_KNOWN_GROUPS {
                known.clear();
            }
            known.insert(group.to_string());
        }
    }

    async fn create(&self, group: &str, stream: &str) -> Result<(), PutError> {
        if !self.knows_group(group) {
            self.create_group(group).await?;
        }
        match exists_ok(self.destination.create_stream(group, stream).await) {
            // The group we knew is gone (deleted mid-run): create it again, then the stream.
            Err(PutError::GroupOrStreamMissing) => {
                self.remember_group(group, false);
                self.create_group(group).await?;
                exists_ok(self.destination.create_stream(group, stream).await)
            }
            other => other,
        }
    }

    async fn create_group(&self, group: &str) -> Result<(), PutError> {
        exists_ok(self.destination.create_group(group).await)?;
        self.remember_group(group, true);
        Ok(())
    }
}

/// A create that finds the thing already there has done its job.
fn exists_ok(result: Result<(), PutError>) -> Result<(), PutError> {
    match result {
        Err(PutError::AlreadyExists) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    use super::*;
    use crate::store::cloudwatch::spool::SpoolRecord;

    const T0: i64 = 1_795_000_000_000;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        Put { group: String, stream: String, messages: Vec<String> },
        CreateGroup(String),
        CreateStream(String, String),
    }

    /// A destination that stores what it is given, with errors scripted per call.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<Call>>,
        groups: Mutex<HashSet<String>>,
        streams: Mutex<HashSet<(String, String)>>,
        stored: Mutex<HashMap<(String, String), Vec<OutEvent>>>,
        /// Answers for the next puts, before any other check.
        put_script: Mutex<VecDeque<Result<PutOutcome, PutError>>>,
        /// A message that makes any put containing it fail with InvalidParameter.
        poison: Option<String>,
    }

    impl Fake {
        fn with_streams(streams: &[(&str, &str)]) -> Fake {
            let fake = Fake::default();
            for (g, s) in streams {
                fake.lock_groups().insert(g.to_string());
                fake.lock_streams().insert((g.to_string(), s.to_string()));
            }
            fake
        }
        fn lock_groups(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
            self.groups.lock().expect("lock")
        }
        fn lock_streams(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
            self.streams.lock().expect("lock")
        }
        fn script(&self, answers: impl IntoIterator<Item = Result<PutOutcome, PutError>>) {
            self.put_script.lock().expect("lock").extend(answers);
        }
        fn calls(&self) -> Vec<Call> {
            self.calls.lock().expect("lock").clone()
        }
        fn stored_messages(&self, group: &str, stream: &str) -> Vec<String> {
            let stored = self.stored.lock().expect("lock");
            stored
                .get(&(group.to_string(), stream.to_string()))
                .map(|events| events.iter().map(|e| e.message.clone()).collect())
                .unwrap_or_default()
        }
    }

    #[async_trait]
    impl LogDestination for Fake {
        async fn put(&self, group: &str, stream: &str, events: &[OutEvent]) -> Result<PutOutcome, PutError> {
            self.calls.lock().expect("lock").push(Call::Put {
                group: group.into(),
                stream: stream.into(),
                messages: events.iter().map(|e| e.message.clone()).collect(),
            });
            assert!(events.windows(2).all(|w| w[0].timestamp_ms <= w[1].timestamp_ms), "chronological");
            if let Some(answer) = self.put_script.lock().expect("lock").pop_front() {
                return answer;
            }
            if !self.lock_streams().contains(&(group.to_string(), stream.to_string())) {
                return Err(PutError::GroupOrStreamMissing);
            }
            if let Some(poison) = &self.poison
                && events.iter().any(|e| &e.message == poison)
            {
                return Err(PutError::InvalidParameter("poisoned".into()));
            }
            let outcome = PutOutcome::default();
            let mut stored = self.stored.lock().expect("lock");
            stored.entry((group.into(), stream.into())).or_default().extend(events.iter().cloned());
            Ok(outcome)
        }

        async fn create_group(&self, group: &str) -> Result<(), PutError> {
            self.calls.lock().expect("lock").push(Call::CreateGroup(group.into()));
            if self.lock_groups().insert(group.into()) { Ok(()) } else { Err(PutError::AlreadyExists) }
        }

        async fn create_stream(&self, group: &str, stream: &str) -> Result<(), PutError> {
            self.calls.lock().expect("lock").push(Call::CreateStream(group.into(), stream.into()));
            if !self.lock_groups().contains(group) {
                return Err(PutError::GroupOrStreamMissing);
            }
            if self.lock_streams().insert((group.into(), stream.into())) {
                Ok(())
            } else {
                Err(PutError::AlreadyExists)
            }
        }
    }

    fn record(stream: &str, ts: i64, body: &str) -> SpoolRecord {
        SpoolRecord { group: "/g".into(), stream: stream.into(), timestamp_ms: ts, body: body.into() }
    }

    async fn setup(fake: Fake, records: Vec<SpoolRecord>) -> (tempfile::TempDir, Arc<Spool>, Arc<Fake>, Writer) {
        let dir = tempfile::tempdir().expect("dir");
        let spool = Arc::new(Spool::open(dir.path()).expect("spool"));
        spool.append(records).await.expect("append");
        let fake = Arc::new(fake);
        let writer = Writer::new(Arc::clone(&spool), Arc::clone(&fake) as Arc<dyn LogDestination>);
        (dir, spool, fake, writer)
    }

    fn puts(calls: &[Call]) -> usize {
        calls.iter().filter(|c| matches!(c, Call::Put { .. })).count()
    }

    #[tokio::test]
    async fn a_missing_group_and_stream_are_created_then_the_put_repeated() {
        let (_dir, spool, fake, mut writer) =
            setup(Fake::default(), vec![record("s1", T0, "a"), record("s1", T0 + 1, "b")]).await;
        let step = writer.try_flush_once(true).await.expect("flush");
        assert_eq!(step.shipped, 2);
        let put = Call::Put { group: "/g".into(), stream: "s1".into(), messages: vec!["a".into(), "b".into()] };
        assert_eq!(
            fake.calls(),
            [put.clone(), Call::CreateGroup("/g".into()), Call::CreateStream("/g".into(), "s1".into()), put]
        );
        assert_eq!(fake.stored_messages("/g", "s1"), ["a", "b"]);
        assert_eq!(spool.unshipped_events(), 0, "shipped events leave the spool");
    }

    #[tokio::test]
    async fn a_known_group_is_not_created_again_for_a_new_stream() {
        let (_dir, spool, fake, mut writer) = setup(Fake::default(), vec![record("s1", T0, "a")]).await;
        writer.try_flush_once(true).await.expect("flush");
        spool.append(vec![record("s2", T0, "b")]).await.expect("append");
        writer.try_flush_once(true).await.expect("flush");
        let creates: Vec<_> = fake.calls().into_iter().filter(|c| matches!(c, Call::CreateGroup(_))).collect();
        assert_eq!(creates.len(), 1, "{creates:?}");
        assert_eq!(fake.stored_messages("/g", "s2"), ["b"]);
    }

    #[tokio::test]
    async fn throttled_twice_then_accepted_is_delivered_exactly_once() {
        let fake = Fake::with_streams(&[("/g", "s1")]);
        fake.script([Err(PutError::Throttled), Err(PutError::Throttled)]);
        let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a"), record("s1", T0, "b")]).await;
        for _ in 0..2 {
            let error = writer.try_flush_once(true).await.expect_err("throttled");
            assert_eq!(error.downcast_ref::<PutError>(), Some(&PutError::Throttled));
            assert_eq!(spool.unshipped_events(), 2, "kept on disk while throttled");
        }
        assert_eq!(writer.try_flush_once(true).await.expect("flush").shipped, 2);
        assert_eq!(fake.stored_messages("/g", "s1"), ["a", "b"]);
        assert_eq!(puts(&fake.calls()), 3);
        assert_eq!(spool.unshipped_events(), 0);
        assert_eq!(writer.try_flush_once(true).await.expect("flush").shipped, 0, "nothing is sent twice");
        assert_eq!(puts(&fake.calls()), 3);
    }

    #[tokio::test]
    async fn an_invalid_event_is_isolated_and_dead_lettered_and_the_others_delivered() {
        let mut fake = Fake::with_streams(&[("/g", "s1")]);
        fake.poison = Some("bad".into());
        let records: Vec<_> = ["a", "b", "c", "bad", "d", "e", "f"]
            .iter()
            .enumerate()
            .map(|(i, m)| record("s1", T0 + i as i64, m))
            .collect();
        let (_dir, spool, fake, mut writer) = setup(fake, records).await;
        let step = writer.try_flush_once(true).await.expect("flush");
        assert_eq!((step.shipped, step.invalid), (6, 1));
        let mut stored = fake.stored_messages("/g", "s1");
        stored.sort();
        assert_eq!(stored, ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(spool.unshipped_events(), 0, "the bad event is not retried forever");
        assert!(puts(&fake.calls()) <= 1 + 2 * 3, "halving, not one put per event");
        let (total, dead) = spool.dead_letters("/g", 10).await.expect("dead letters");
        assert_eq!(total, 1);
        assert_eq!((dead[0].body.as_str(), dead[0].reason.as_str()), ("bad", reason::INVALID));
        assert!(dead[0].detail.contains("poisoned"), "{:?}", dead[0].detail);
    }

    #[tokio::test]
    async fn rejected_events_are_counted_and_removed_not_counted_as_shipped() {
        let fake = Fake::with_streams(&[("/g", "s1")]);
        fake.script([Ok(PutOutcome { too_new_start: Some(4), too_old_end: Some(1), expired_end: None })]);
        let records: Vec<_> = (0..5).map(|i| record("s1", T0 + i, &format!("m{i}"))).collect();
        let (_dir, spool, _fake, writer) = setup(fake, records).await;
        let metrics = Arc::new(Metrics::new());
        let mut writer = writer.with_metrics(Arc::clone(&metrics));
        let step = writer.try_flush_once(true).await.expect("flush");
        assert_eq!((step.shipped, step.rejected), (3, 2));
        assert_eq!(spool.unshipped_events(), 0);
        let (total, dead) = spool.dead_letters("/g", 10).await.expect("dead letters");
        assert_eq!(total, 2);
        let dead: Vec<_> = dead.iter().map(|d| (d.body.as_str(), d.reason.as_str())).collect();
        assert_eq!(dead, [("m4", reason::TOO_NEW), ("m0", reason::TOO_OLD)], "newest first");
        assert_eq!(metrics.shipped.get(), 3, "rejected events are never counted as shipped");
        assert_eq!(
            (metrics.dead_lettered_count(reason::TOO_NEW), metrics.dead_lettered_count(reason::TOO_OLD)),
            (1, 1)
        );
    }

    #[test]
    fn rejection_indices_follow_cloudwatch_semantics() {
        let outcome = PutOutcome { too_new_start: Some(8), too_old_end: Some(2), expired_end: Some(3) };
        // 0..3 expired (covers the too-old range too), 8..10 too new.
        assert_eq!(outcome.rejections(10), Rejections { too_new: 2, too_old: 0, expired: 3 });
        let outcome = PutOutcome { too_new_start: None, too_old_end: Some(2), expired_end: None };
        assert_eq!(outcome.rejections(5), Rejections { too_new: 0, too_old: 2, expired: 0 });
        assert_eq!(PutOutcome::default().rejections(5).total(), 0);
    }

    #[tokio::test]
    async fn auth_errors_keep_the_data() {
        let fake = Fake::with_streams(&[("/g", "s1")]);
        fake.script([Err(PutError::Denied("AccessDeniedException".into()))]);
        let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a")]).await;
        writer.try_flush_once(true).await.expect_err("denied");
        assert_eq!(spool.unshipped_events(), 1);
        writer.try_flush_once(true).await.expect("flush");
        assert_eq!(fake.stored_messages("/g", "s1"), ["a"]);
    }

    #[tokio::test]
    async fn a_group_that_is_denied_does_not_hold_back_the_others() {
        let fake = Fake::with_streams(&[("/g", "s1"), ("/g", "s2")]);
        // Queues are flushed in key order: s1 first, and it is denied.
        fake.script([Err(PutError::Denied("AccessDeniedException".into()))]);
        let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a"), record("s2", T0, "b")]).await;
        let error = writer.try_flush_once(true).await.expect_err("denied");
        assert!(matches!(error.downcast_ref::<PutError>(), Some(PutError::Denied(_))));
        assert_eq!(fake.stored_messages("/g", "s2"), ["b"], "the other stream is shipped");
        assert_eq!(spool.unshipped_events(), 1);
        writer.try_flush_once(true).await.expect("flush");
        assert_eq!(fake.stored_messages("/g", "s1"), ["a"]);
        assert_eq!(spool.unshipped_events(), 0);
    }

    #[tokio::test]
    async fn throttling_stops_the_step_for_every_stream() {
        let fake = Fake::with_streams(&[("/g", "s1"), ("/g", "s2")]);
        fake.script([Err(PutError::Throttled)]);
        let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a"), record("s2", T0, "b")]).await;
        writer.try_flush_once(true).await.expect_err("throttled");
        assert_eq!(puts(&fake.calls()), 1, "no more calls while throttled");
        assert_eq!(spool.unshipped_events(), 2);
    }

    #[tokio::test]
    async fn a_put_that_still_finds_nothing_after_the_create_is_retried_not_dropped() {
        let fake = Fake::default();
        fake.script([Err(PutError::GroupOrStreamMissing), Err(PutError::GroupOrStreamMissing)]);
        let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a")]).await;
        let error = writer.try_flush_once(true).await.expect_err("still missing");
        assert_eq!(error.downcast_ref::<PutError>(), Some(&PutError::GroupOrStreamMissing));
        assert_eq!(spool.unshipped_events(), 1);
        writer.try_flush_once(true).await.expect("flush");
        assert_eq!(fake.stored_messages("/g", "s1"), ["a"]);
    }

    #[tokio::test]
    async fn a_failure_midway_ships_nothing_twice_and_loses_nothing() {
        // 3 batches (spans of a day apart); the second put fails once.
        let fake = Fake::with_streams(&[("/g", "s1")]);
        fake.script([Ok(PutOutcome::default()), Err(PutError::Transient("HTTP 503".into()))]);
        let day = batch::MAX_BATCH_SPAN_MS;
        let records = vec![record("s1", T0, "d0"), record("s1", T0 + day, "d1"), record("s1", T0 + 2 * day, "d2")];
        let (_dir, spool, fake, mut writer) = setup(fake, records).await;
        writer.try_flush_once(true).await.expect_err("503");
        assert_eq!(spool.unshipped_events(), 2, "the first batch is shipped and removed");
        writer.try_flush_once(true).await.expect("flush");
        // The scripted Ok for the first put skipped the fake's storage; what it stored after is
        // exactly the rest, once each.
        assert_eq!(fake.stored_messages("/g", "s1"), ["d1", "d2"]);
        assert_eq!(spool.unshipped_events(), 0);
    }

    #[tokio::test]
    async fn events_wait_for_the_linger_unless_forced_or_a_batch_is_full() {
        let fake = Fake::with_streams(&[("/g", "s1")]);
        let (_dir, spool, fake, writer) = setup(fake, vec![]).await;
        let mut writer = writer.with_linger(Duration::from_secs(3600));
        assert_eq!(writer.try_flush_once(false).await.expect("flush").shipped, 0, "nothing yet");
        spool.append(vec![record("s1", T0, "a")]).await.expect("append");
        let step = writer.try_flush_once(false).await.expect("flush");
        assert_eq!(step.shipped, 0);
        assert!(step.next_due.is_some());
        assert_eq!(writer.buffered_events(), 1);
        spool
            .append((0..batch::MAX_BATCH_EVENTS as i64).map(|i| record("s1", T0 + i, "x")).collect())
            .await
            .expect("append");
        let step = writer.try_flush_once(false).await.expect("flush");
        assert_eq!(step.shipped, batch::MAX_BATCH_EVENTS + 1, "a full batch flushes the queue");
        assert_eq!(fake.stored_messages("/g", "s1").len(), batch::MAX_BATCH_EVENTS + 1);
    }

    #[tokio::test]
    async fn memory_holds_at_most_the_byte_bound_whatever_the_spool_holds() {
        // 40 MB waiting on disk, CloudWatch throttling every put: memory stays at the bound.
        let fake = Fake::with_streams(&[("/g", "s1")]);
        fake.script((0..3).map(|_| Err(PutError::Throttled)));
        let body = "x".repeat(100_000);
        let records: Vec<_> = (0..400).map(|i| record("s1", T0 + i, &body)).collect();
        let (_dir, spool, _fake, mut writer) = setup(fake, records).await;
        for _ in 0..3 {
            writer.try_flush_once(false).await.expect_err("throttled");
            assert!(writer.buffered_bytes() <= MAX_BUFFERED_BYTES, "{} bytes in memory", writer.buffered_bytes());
            assert_eq!(spool.unshipped_events(), 400, "all of it still on disk");
        }
        assert!(writer.buffered_bytes() >= MAX_BUFFERED_BYTES * 3 / 4, "it does fill memory, up to near the bound");
        while spool.unshipped_events() > 0 {
            writer.try_flush_once(true).await.expect("flush");
            assert!(writer.buffered_bytes() <= MAX_BUFFERED_BYTES);
        }
    }

    #[tokio::test]
    async fn a_backlog_left_by_an_earlier_run_is_due_at_once() {
        let fake = Fake::with_streams(&[("/g", "s1")]);
        let (_dir, _spool, fake, writer) = setup(fake, vec![record("s1", T0, "left over")]).await;
        let mut writer = writer.with_linger(Duration::from_secs(3600));
        assert_eq!(writer.try_flush_once(false).await.expect("flush").shipped, 1);
        assert_eq!(fake.stored_messages("/g", "s1"), ["left over"]);
    }

    #[tokio::test]
    async fn the_running_task_ships_what_is_appended_and_flushes_at_once_on_shutdown() {
        let fake = Fake::with_streams(&[("/g", "s1")]);
        let (_dir, spool, fake, writer) = setup(fake, vec![]).await;
        let mut writer = writer.with_linger(Duration::from_secs(3600));
        // The first load treats what it finds as an earlier run's backlog: have it find nothing.
        writer.try_flush_once(false).await.expect("first load");
        let notify = Arc::new(Notify::new());
        let (flush_all, flush_rx) = watch::channel(false);
        let task = tokio::spawn(writer.run(Arc::clone(&notify), flush_rx));
        spool.append(vec![record("s1", T0, "a")]).await.expect("append");
        notify.notify_one();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(spool.unshipped_events(), 1, "lingering");
        flush_all.send(true).expect("send");
        let deadline = Instant::now() + Duration::from_secs(5);
        while spool.unshipped_events() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(fake.stored_messages("/g", "s1"), ["a"]);
        drop(flush_all);
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("the task ends").expect("no panic");
    }
}
