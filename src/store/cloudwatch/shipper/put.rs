//! The put-and-retry step of one batch: put it, create its group and stream when missing, split a
//! batch the destination calls invalid to isolate the bad event, and settle the outcome in the
//! spool (shipped rows removed, refused ones moved to the dead letters).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::batch;
use super::destination::{DeadReason, OutEvent, PutError, PutOutcome};
use super::retry::{self, Action};
use super::{Flushed, MAX_KNOWN_GROUPS, Unshipped, Writer};
use crate::store::cloudwatch::spool::Dead;

impl Writer {
    /// Ships one batch, splitting it to isolate events the destination calls invalid. Returns
    /// what was done and, after a failure that needs a retry, the events not yet shipped.
    /// Once `stop` is set (by this or another put), sends nothing more.
    pub(super) async fn ship(
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
                            self.metrics.dead_letter(d.reason.as_str(), 1);
                        }
                    }
                    flushed.shipped += shipped.len();
                    flushed.rejected += dead.len();
                    self.metrics.shipped.inc_by(shipped.len() as u64);
                    self.settle(shipped, dead).await;
                }
                Err(PutError::InvalidParameter(detail)) if part.len() > 1 => {
                    tracing::debug!(group, stream, batch.events = part.len(), detail, "splitting a refused batch");
                    let (first, second) = halves(part);
                    work.push(second);
                    work.push(first);
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
                    self.metrics.dead_letter(DeadReason::Invalid.as_str(), 1);
                    let dead = vec![Dead { seq: part[0].seq, reason: DeadReason::Invalid, detail }];
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

/// A refused batch is halved until the event the destination calls invalid is alone.
fn halves(mut part: Vec<OutEvent>) -> (Vec<OutEvent>, Vec<OutEvent>) {
    let second = part.split_off(part.len() / 2);
    (part, second)
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
    use super::*;

    #[test]
    fn a_refused_batch_is_halved_in_order_down_to_one_event() {
        let events: Vec<OutEvent> =
            (0..5).map(|seq| OutEvent { seq, timestamp_ms: seq, message: format!("m{seq}") }).collect();
        let (first, second) = halves(events);
        assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(second.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3, 4]);
        let (one, rest) = halves(second);
        assert_eq!((one.len(), rest.len()), (1, 2));
    }
}
