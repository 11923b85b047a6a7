//! The live tail across tasks: on a store several tasks share (CloudWatch), the environments
//! someone watches are read back from the store once a second, and what this process has not
//! sent yet (another task ingested it) goes to the watchers. Events show as soon as the store has
//! them: the other task's spool ships within a few seconds, then CloudWatch serves them.
//!
//! Bounded: one read per watched environment per second, whatever the number of watchers, each
//! of at most [`READ_LIMIT`] events from the last [`LOOKBACK`]; a burst beyond that in one second
//! is not all shown (the table still has every event).

use std::time::Duration;

use time::OffsetDateTime;

use super::AppState;
use crate::store::EventQuery;

/// How often the watched environments are read back.
const EVERY: Duration = Duration::from_secs(1);
/// How far back each read looks: events reach CloudWatch some seconds after their time.
const LOOKBACK: Duration = Duration::from_secs(60);
/// Events one read returns at most (the newest).
const READ_LIMIT: usize = 200;

/// Starts the reader when the store is shared by several tasks; it ends at shutdown.
pub fn spawn(state: AppState) {
    if !state.store.shared_by_tasks() {
        return;
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !state.tail.is_closed() {
            ticker.tick().await;
            for ((project, env), since) in state.tail.watched() {
                read_back(&state, (&project, &env), since).await;
            }
        }
    });
}

/// Publishes the environment's events received since it is watched (older ones were never
/// live for its watchers).
async fn read_back(state: &AppState, (project, env): (&str, &str), since: OffsetDateTime) {
    let Some(project) = state.projects.get(project) else { return };
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
    match state.store.events(&query).await {
        Ok(page) => {
            let mut events: Vec<_> = page.events.into_iter().filter(|e| e.received_at >= since).collect();
            // Oldest first, as they happened.
            events.reverse();
            state.tail.publish(events);
        }
        Err(error) => tracing::debug!(error = format!("{error:#}"), "the live tail could not read back"),
    }
}
