//! Live tail: every event this process stores, offered to the watchers of its environment as
//! soon as its 202 is sent (the SSE endpoint is `crate::web::tail`).
//!
//! Ingest hands every event it stored to [`Tail::publish`], which puts it, serialised once, on a
//! broadcast channel; each watcher filters what passes. This works the same on both backends and
//! shows an event whatever its own timestamp (a poll of the store by time would miss
//! late-arriving events). On a store several tasks share (CloudWatch), [`follow`] also reads the
//! watched environments' new events back from the store once a second, so a watcher sees what
//! other tasks ingested too, as soon as the store has it; ids already sent are remembered (the
//! last [`RECENT_IDS`]) so nothing is sent twice.
//!
//! Bounds: at most `server.max_tail_watchers` watchers ([`Tail::admit`]); the channel holds the
//! last [`CHANNEL_EVENTS`] events for every watcher together, so a watcher costs a cursor, not a
//! queue. A watcher that falls behind by more skips ahead and is told ([`Item::Skipped`]). At
//! shutdown [`Tail::close`] ends every watcher, so the server's drain does not wait for them.

pub mod follow;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use crate::event::{Level, StoredEvent};
use crate::search;

/// Events kept for the watchers that have not sent them yet, all watchers together (an event is
/// at most `limits.event_bytes`).
pub const CHANNEL_EVENTS: usize = 256;
/// Ids of events sent to the watchers that are remembered, so one read back from the store is
/// not sent again (about 2 MB).
pub const RECENT_IDS: usize = 65_536;

/// A stored event and its JSON, made once for every watcher.
pub struct Published {
    pub event: StoredEvent,
    pub json: String,
}

/// The live events of this process and the places for watchers.
pub struct Tail {
    events: broadcast::Sender<Arc<Published>>,
    places: Arc<Semaphore>,
    closed: watch::Sender<bool>,
    /// The ids sent lately, oldest first, and as a set.
    recent: Mutex<(VecDeque<ulid::Ulid>, HashSet<ulid::Ulid>)>,
    /// Watchers per (project, env), and since when it is watched: the environments read back
    /// from a shared store.
    watched: Mutex<HashMap<(String, String), (usize, time::OffsetDateTime)>>,
}

/// A watcher's registration of its environment; dropped with the watcher.
struct Watching {
    tail: Arc<Tail>,
    key: (String, String),
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Ok(mut watched) = self.tail.watched.lock()
            && let Some((n, _)) = watched.get_mut(&self.key)
        {
            *n -= 1;
            if *n == 0 {
                watched.remove(&self.key);
            }
        }
    }
}

impl Tail {
    pub fn new(max_watchers: usize) -> Tail {
        Tail {
            events: broadcast::Sender::new(CHANNEL_EVENTS),
            places: Arc::new(Semaphore::new(max_watchers)),
            closed: watch::Sender::new(false),
            recent: Mutex::new((VecDeque::new(), HashSet::new())),
            watched: Mutex::new(HashMap::new()),
        }
    }

    /// The (project, env) pairs someone watches now, and since when.
    pub fn watched(&self) -> Vec<((String, String), time::OffsetDateTime)> {
        self.watched
            .lock()
            .map(|w| w.iter().map(|(key, (_, since))| (key.clone(), *since)).collect())
            .unwrap_or_default()
    }

    /// Whether the service is shutting down.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// A watcher of the events `filter` accepts, from now on; it holds `place` while it lives.
    pub fn watcher(self: &Arc<Self>, place: Place, filter: Filter) -> Watcher {
        // Subscribed before the caller answers: every event ingested after this is seen.
        Watcher {
            _place: place.0,
            _watching: self.watch(&filter.project, &filter.env),
            events: self.events.subscribe(),
            closed: self.closed.subscribe(),
            filter,
        }
    }

    fn watch(self: &Arc<Self>, project: &str, env: &str) -> Watching {
        let key = (project.to_string(), env.to_string());
        if let Ok(mut watched) = self.watched.lock() {
            watched.entry(key.clone()).or_insert((0, time::OffsetDateTime::now_utc())).0 += 1;
        }
        Watching { tail: Arc::clone(self), key }
    }

    /// Remembers `id` as sent; false when it was sent already.
    fn first_time(&self, id: ulid::Ulid) -> bool {
        let Ok(mut recent) = self.recent.lock() else { return true };
        let (order, ids) = &mut *recent;
        if !ids.insert(id) {
            return false;
        }
        order.push_back(id);
        if order.len() > RECENT_IDS
            && let Some(old) = order.pop_front()
        {
            ids.remove(&old);
        }
        true
    }

    /// Whether anyone watches: ingest copies its events for [`Tail::publish`] only then.
    pub fn is_watched(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// Offers stored events to the watchers.
    pub fn publish(&self, events: Vec<StoredEvent>) {
        for event in events {
            if !self.first_time(event.id) {
                continue;
            }
            let Ok(json) = serde_json::to_string(&event) else { continue };
            // An error means nobody watches any more: nothing to do.
            let _ = self.events.send(Arc::new(Published { event, json }));
        }
    }

    /// Ends every stream, now and from now on (shutdown).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// A watcher's place, or `None` when all are taken.
    pub fn admit(&self) -> Option<Place> {
        Arc::clone(&self.places).try_acquire_owned().ok().map(Place)
    }
}

/// One of the `max_watchers` places: a watcher holds it while it lives.
pub struct Place(OwnedSemaphorePermit);

/// Which events a watcher wants.
pub struct Filter {
    pub project: String,
    pub env: String,
    /// The group name the query's `group:` compares with.
    pub group: String,
    pub levels: Vec<Level>,
    pub search: search::Query,
}

impl Filter {
    fn accepts(&self, event: &StoredEvent) -> bool {
        event.project == self.project
            && event.env == self.env
            && (self.levels.is_empty() || self.levels.contains(&event.level))
            && self.search.matches(event, &self.group)
    }
}

/// One open stream: its place, its cursor in the channel, and its filter.
pub struct Watcher {
    _place: OwnedSemaphorePermit,
    _watching: Watching,
    events: broadcast::Receiver<Arc<Published>>,
    closed: watch::Receiver<bool>,
    filter: Filter,
}

/// What a watcher sends next.
pub enum Item {
    Event(Arc<Published>),
    /// This many events went by while the watcher was behind.
    Skipped(u64),
}

impl Watcher {
    /// The next thing to send, or `None` when the service shuts down.
    pub async fn next_item(&mut self) -> Option<Item> {
        loop {
            let received = tokio::select! {
                _ = self.closed.wait_for(|closed| *closed) => return None,
                received = self.events.recv() => received,
            };
            match received {
                Ok(published) if self.filter.accepts(&published.event) => return Some(Item::Event(published)),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(skipped)) => return Some(Item::Skipped(skipped)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ingest::{Context, normalise};
    use crate::project::Projects;
    use std::time::Duration;

    fn events(raw: &[serde_json::Value]) -> Vec<StoredEvent> {
        let config = Config::from_sources(include_str!("../../config.toml"), &[]).expect("config");
        let projects = Projects::from_config(&config).expect("projects");
        let project = projects.get("demo").expect("demo");
        let now = time::OffsetDateTime::now_utc();
        let ctx = Context { project, default_env: Some("production"), received_at: now, max_event_bytes: 65_536 };
        raw.iter().map(|r| normalise(r.clone(), &ctx).expect("valid")).collect()
    }

    fn watcher(tail: &Arc<Tail>, q: &str) -> Watcher {
        let filter = Filter {
            project: "demo".into(),
            env: "production".into(),
            group: "/logboard/demo/production".into(),
            levels: Vec::new(),
            search: search::Query::parse(q).expect("query"),
        };
        tail.watcher(tail.admit().expect("place"), filter)
    }

    async fn next_item(watcher: &mut Watcher) -> Item {
        let next = tokio::time::timeout(Duration::from_secs(5), watcher.next_item()).await.expect("in time");
        next.expect("not closed")
    }

    fn message(item: Item) -> String {
        match item {
            Item::Event(published) => {
                let json: serde_json::Value = serde_json::from_str(&published.json).expect("json");
                assert_eq!(json["id"], published.event.id.to_string(), "the stored event's JSON");
                published.event.message.clone()
            }
            Item::Skipped(n) => format!("skipped {n}"),
        }
    }

    #[tokio::test]
    async fn a_watcher_gets_the_matching_events_of_its_environment_only() {
        let tail = Arc::new(Tail::new(4));
        assert!(!tail.is_watched());
        let mut w = watcher(&tail, "level:error payment");
        assert!(tail.is_watched());
        tail.publish(events(&[
            serde_json::json!({"message": "payment failed", "level": "info"}),
            serde_json::json!({"message": "payment failed", "level": "error", "env": "staging"}),
            serde_json::json!({"message": "payment failed: card declined", "level": "error"}),
            serde_json::json!({"message": "payment failed again", "level": "error"}),
            serde_json::json!({"message": "refund", "level": "error"}),
        ]));
        assert_eq!(message(next_item(&mut w).await), "payment failed: card declined");
        assert_eq!(message(next_item(&mut w).await), "payment failed again");
    }

    #[tokio::test]
    async fn a_slow_watcher_skips_ahead_and_is_told_how_much() {
        let tail = Arc::new(Tail::new(4));
        let mut w = watcher(&tail, "");
        let many: Vec<serde_json::Value> =
            (0..CHANNEL_EVENTS + 10).map(|i| serde_json::json!({"message": format!("event {i}")})).collect();
        tail.publish(events(&many));
        assert_eq!(message(next_item(&mut w).await), "skipped 10");
        assert_eq!(message(next_item(&mut w).await), "event 10", "the oldest still kept");
    }

    #[tokio::test]
    async fn places_are_limited_and_given_back_and_close_ends_every_stream() {
        let tail = Arc::new(Tail::new(1));
        let mut w = watcher(&tail, "");
        assert!(tail.admit().is_none(), "no place left");
        tail.close();
        assert!(w.next_item().await.is_none(), "ended by the shutdown");
        drop(w);
        assert!(tail.admit().is_some(), "the place is free again");
    }

    #[tokio::test]
    async fn an_event_is_sent_once_however_often_it_is_published_and_watched_envs_are_known() {
        let tail = Arc::new(Tail::new(4));
        assert!(tail.watched().is_empty());
        let mut w = watcher(&tail, "");
        let watched: Vec<_> = tail.watched().into_iter().map(|(key, _)| key).collect();
        assert_eq!(watched, [("demo".to_string(), "production".to_string())]);
        let first = events(&[serde_json::json!({"message": "once"})]);
        tail.publish(first.clone());
        // Read back from a shared store after ingest published it: not sent again.
        tail.publish(first);
        tail.publish(events(&[serde_json::json!({"message": "next"})]));
        assert_eq!(message(next_item(&mut w).await), "once");
        assert_eq!(message(next_item(&mut w).await), "next");
        drop(w);
        assert!(tail.watched().is_empty(), "a closed watcher leaves the list");
    }
}
