//! The one ingest pipeline. Every front door (our JSON API today; Sentry envelopes and OTLP
//! next) only turns its wire format into [`Draft`]s and calls [`Pipeline::accept`], which knows
//! nothing of HTTP:
//!
//! 1. the [`policy`] settles each draft into a stored event or a rejection (environment, time
//!    window, cleaning and scrubbing, fingerprint, size, id);
//! 2. the alert rules match the accepted events (before they are moved into the store);
//! 3. the store makes them durable: only then is the batch acknowledged;
//! 4. what is derived from them follows, and a failure there loses no event: the issue index
//!    records the errors (unless the store's events are read back by the issue [`follow`]er,
//!    which then records every task's) — on a state shared by several tasks, the batch's
//!    [`Tally`] (errors, minute counts, threshold matches) was queued for the table in the
//!    store's commit (step 3) —, the alert
//!    rules observe the hits and the new issues, the live tail gets the events, the metrics
//!    count them.
//!
//! [`json`] is our own format's decoder; each further format gets a file of its own.

pub mod attributes;
pub mod follow;
pub mod json;
pub mod otlp;
pub mod policy;
pub mod refusals;
pub mod sentry;

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;
use ulid::Ulid;

use crate::alerts::engine::{Alerts, Hits};
use crate::clock::unix_ms;
use crate::event::{Draft, Rejection, StoredEvent};
use crate::issues::{Changes, IssueIndex, Occurrence};
use crate::metrics::Metrics;
use crate::project::Project;
use crate::store::LogStore;
use crate::tail::Tail;
use crate::tally::{self, SharedTally, Tally};
use refusals::RefusalLog;

pub use policy::Context;

/// What a door decoded from one request.
#[derive(Debug, Default)]
pub struct Batch {
    /// The request's default environment, for events that name none.
    pub default_env: Option<String>,
    /// Each event as decoded, in the order it came; a refused one keeps its place, so that
    /// rejections name the index the client sent.
    pub drafts: Vec<Result<Draft, Rejection>>,
    /// The sender's address, stored as `extra.client_ip` when the project asks for it.
    pub client_ip: Option<IpAddr>,
}

/// What a batch came to: the stored events' ids, and the events refused with their reasons.
#[derive(Debug, Default)]
pub struct Accepted {
    /// The stored events' ids, in the order they came.
    pub ids: Vec<Ulid>,
    pub rejected: Vec<Refused>,
}

/// One refused event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    /// Its place in the batch, from 0.
    pub index: usize,
    pub reason: String,
}

/// The store could not take the batch: nothing of it was kept, the client should retry.
#[derive(Debug, thiserror::Error)]
#[error("the events could not be stored; nothing of this request was kept, retry later")]
pub struct NotStored;

/// What the pipeline writes to and tells.
pub struct Pipeline {
    pub store: Arc<dyn LogStore>,
    pub issues: Arc<dyn IssueIndex>,
    pub alerts: Arc<Alerts>,
    pub metrics: Arc<Metrics>,
    pub tail: Arc<Tail>,
    /// `limits.event_bytes`: the size an event is fitted to.
    pub max_event_bytes: usize,
    /// On a state shared by several tasks: where the issue counts, the minute counts and the
    /// threshold rules' matches go (instead of `issues`).
    pub shared: Option<Arc<dyn SharedTally>>,
    /// The store's refusals, logged a line per interval rather than per batch.
    pub refusals: RefusalLog,
}

/// What an accepted batch is recorded as, besides the events: on a shared state, the entry of
/// its counts (committed with the events); else its errors, for this task's issue index.
enum Derived {
    Shared(Option<String>),
    Local(Vec<Occurrence>),
}

impl Pipeline {
    /// Settles the batch's drafts, makes the accepted events durable, and derives the rest from
    /// them. `Err` only when the store refused: then nothing of the batch was kept.
    pub async fn accept(
        &self,
        project: &Project,
        batch: Batch,
        received_at: OffsetDateTime,
    ) -> Result<Accepted, NotStored> {
        let (events, rejected) = self.settle(project, batch, received_at);
        let ids: Vec<Ulid> = events.iter().map(|e| e.id).collect();
        let hits = self.alerts.matches(&events);
        let derived = self.derived(&events, &hits)?;
        let live = self.tail.is_watched().then(|| events.clone());
        // On a shared state the counts are committed with the events; else the errors go to
        // this task's index once the events are stored.
        let (stored, occurrences) = match derived {
            Derived::Shared(Some(entry)) => (self.store.append_queued(events, entry).await, None),
            Derived::Shared(None) => (self.store.append(events).await, None),
            Derived::Local(occurrences) => (self.store.append(events).await, Some(occurrences)),
        };
        if let Err(error) = stored {
            self.metrics.reject_many("unavailable", ids.len() as u64);
            self.refusals.note(&error, ids.len());
            return Err(NotStored);
        }
        // The events are stored: the index and the alerts are derived from them, and a failure
        // here loses none. On a shared state, what is new or regressed is found as the counts
        // reach the table.
        let changes = match occurrences {
            None => Changes::default(),
            Some(occurrences) => self.issues.record(occurrences).await.unwrap_or_else(|error| {
                tracing::error!(error = format!("{error:#}"), "could not update the issue index");
                Changes::default()
            }),
        };
        self.alerts.observe(hits, &changes, &[], unix_ms(OffsetDateTime::now_utc()));
        self.metrics.accepted.inc_by(ids.len() as u64);
        if let Some(events) = live {
            self.tail.publish(events);
        }
        Ok(Accepted { ids, rejected })
    }

    /// What the batch adds to the issue index and the counts: on a shared state, one tally for
    /// the store's queue; else the errors for this task's own index, unless the store's events are read
    /// back by the issue follower (CloudWatch), which feeds it once whichever task ingested them.
    fn derived(&self, events: &[StoredEvent], hits: &Hits) -> Result<Derived, NotStored> {
        if let Some(shared) = &self.shared {
            let tally = Tally {
                occurrences: Occurrence::of(events),
                levels: tally::levels_of(events),
                rules: self.alerts.rule_counts(hits, unix_ms(OffsetDateTime::now_utc())),
            };
            // Not stored without its counts: they would be missing from the shared state for good.
            return shared.entry(tally).map(Derived::Shared).map_err(|error| {
                tracing::error!(error = format!("{error:#}"), "could not encode the counts for the shared state");
                NotStored
            });
        }
        let followed = self.store.issue_follow_interval().is_some();
        Ok(Derived::Local(if followed { Vec::new() } else { Occurrence::of(events) }))
    }

    /// Each draft settled by the policy, or listed with the reason it was refused.
    fn settle(&self, project: &Project, batch: Batch, received_at: OffsetDateTime) -> (Vec<StoredEvent>, Vec<Refused>) {
        let Batch { default_env, drafts, client_ip } = batch;
        let ctx = Context {
            project,
            default_env: default_env.as_deref(),
            received_at,
            max_event_bytes: self.max_event_bytes,
        };
        let mut accepted = Vec::with_capacity(drafts.len());
        let mut rejected = Vec::new();
        self.metrics.received.inc_by(drafts.len() as u64);
        for (index, draft) in drafts.into_iter().enumerate() {
            match draft.and_then(|draft| policy::settle(draft, &ctx)) {
                Ok(mut event) => {
                    if let Some(client) = client_ip.filter(|_| project.store_client_ip) {
                        event.extra.get_or_insert_default().insert("client_ip".into(), client.to_string().into());
                    }
                    accepted.push(event);
                }
                Err(rejection) => {
                    self.metrics.reject(rejection.kind.label());
                    rejected.push(Refused { index, reason: rejection.to_string() });
                }
            }
        }
        (accepted, rejected)
    }
}

/// One event of our JSON format through the decoder and the policy: what ingest would store.
pub fn normalise(raw: Value, ctx: &Context<'_>) -> Result<StoredEvent, Rejection> {
    policy::settle(json::decode(raw)?, ctx)
}
