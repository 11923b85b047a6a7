//! The live tail across tasks: on a store several tasks share (CloudWatch), the environments
//! someone watches are read back from the store once a second, and what this process has not
//! sent yet (another task ingested it) goes to the watchers. Events show as soon as the store has
//! them: the other task's spool ships within a few seconds, then CloudWatch serves them.
//!
//! Bounded: one read per watched environment per second, whatever the number of watchers, each
//! of at most [`READ_LIMIT`] events from the last [`LOOKBACK`]; a burst beyond that in one second
//! is not all shown (the table still has every event).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::Tail;
use crate::project::Projects;
use crate::store::{EventQuery, LogStore};

/// How often the watched environments are read back.
const EVERY: Duration = Duration::from_secs(1);
/// How far back each read looks: events reach CloudWatch some seconds after their time.
const LOOKBACK: Duration = Duration::from_secs(60);
/// Events one read returns at most (the newest).
const READ_LIMIT: usize = 200;

/// What the reader reads from and publishes to.
pub struct TailFollower {
    pub store: Arc<dyn LogStore>,
    pub projects: Arc<Projects>,
    pub tail: Arc<Tail>,
}

/// Starts the reader when the store is shared by several tasks; it ends at shutdown.
pub fn spawn(follower: TailFollower) {
    if !follower.store.shared_by_tasks() {
        return;
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !follower.tail.is_closed() {
            ticker.tick().await;
            for ((project, env), since) in follower.tail.watched() {
                follower.read_back((&project, &env), since).await;
            }
        }
    });
}

impl TailFollower {
    /// Publishes the environment's events received since it is watched (older ones were never
    /// live for its watchers).
    async fn read_back(&self, (project, env): (&str, &str), since: OffsetDateTime) {
        let Some(project) = self.projects.get(project) else { return };
        let now = OffsetDateTime::now_utc();
        let query = EventQuery {
            project,
            env: env.to_string(),
            group: None,
            from: now - LOOKBACK,
            // Clients' clocks run ahead too.
            to: now + LOOKBACK,
            levels: Vec::new(),
            search: crate::search::Query::default(),
            limit: READ_LIMIT,
            cursor: None,
        };
        match self.store.events(&query).await {
            Ok(page) => {
                let mut events: Vec<_> = page.events.into_iter().filter(|e| e.received_at >= since).collect();
                // Oldest first, as they happened.
                events.reverse();
                self.tail.publish(events);
            }
            Err(error) => tracing::debug!(error = format!("{error:#}"), "the live tail could not read back"),
        }
    }
}
