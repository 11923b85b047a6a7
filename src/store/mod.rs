//! Where events live: the [`LogStore`] trait and the query types both stores share.
//! `local` is the embedded store on disk; `cloudwatch` is AWS CloudWatch Logs.

pub mod cloudwatch;
pub mod context;
pub mod histogram;
pub mod local;

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use time::OffsetDateTime;
use ulid::Ulid;

use crate::event::{Level, StoredEvent, unix_ms};
use crate::project::Project;
use crate::search::Query;
use context::{Around, Context};
use histogram::{Buckets, Histogram};

/// Events a histogram counts at most when it reads them one by one.
pub const MAX_HISTOGRAM_EVENTS: usize = 200_000;
const HISTOGRAM_PAGE_EVENTS: usize = 1000;

/// The stores behind the service. Ingest writes through `append`; the API and pages read.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Makes the events durable: when this returns `Ok`, they survive a crash or `kill -9`.
    async fn append(&self, events: Vec<StoredEvent>) -> anyhow::Result<()>;

    /// Like [`LogStore::append`], with `entry` added to the store's queue of what a shared
    /// state has still to receive ([`crate::sqlite::queue`]) in the same commit: both are durable
    /// with one fsync, or neither is.
    async fn append_queued(&self, events: Vec<StoredEvent>, entry: String) -> anyhow::Result<()>;

    /// The database file of that queue.
    fn queue_db(&self) -> Option<PathBuf>;

    /// The log groups of a project/environment: its own first, then the external ones.
    async fn groups(&self, project: &Project, env: &str) -> anyhow::Result<Vec<Group>>;

    /// One page of events, newest first by occurrence time.
    async fn events(&self, query: &EventQuery<'_>) -> anyhow::Result<EventPage>;

    /// One event by id, in the project's own group unless `group` names another.
    async fn event(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
    ) -> anyhow::Result<Option<StoredEvent>>;

    /// Event `id` with the events just before and after it in its group (for a Lambda group, its
    /// log stream), by time then id; `None` when there is no such event.
    async fn context(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
        around: Around,
    ) -> anyhow::Result<Option<Context>>;

    /// How many events of each level the project's own group holds in `[from, to]`.
    async fn level_counts(
        &self,
        project: &str,
        env: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> anyhow::Result<LevelCounts>;

    /// The query's events per level in `buckets`. This default reads them page by page through
    /// [`LogStore::events`], up to [`MAX_HISTOGRAM_EVENTS`] (then `capped`); a store with a faster
    /// way overrides it.
    async fn histogram(&self, query: &EventQuery<'_>, buckets: Buckets) -> anyhow::Result<Histogram> {
        let mut histogram = Histogram::empty(buckets);
        let mut query = EventQuery { limit: HISTOGRAM_PAGE_EVENTS, cursor: None, ..query.clone() };
        let mut seen = 0;
        loop {
            let page = self.events(&query).await?;
            seen += page.events.len();
            page.events.iter().for_each(|event| histogram.add(event));
            match page.next_cursor {
                Some(_) if seen >= MAX_HISTOGRAM_EVENTS => {
                    histogram.capped = true;
                    return Ok(histogram);
                }
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(histogram),
            }
        }
    }

    /// `Err` with the reason while the store cannot take or serve events.
    async fn check_ready(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Ships what can be shipped before the process exits (within the caller's deadline).
    async fn shutdown(&self) {}

    /// Events the destination refused (too old, too new, invalid) for a project/environment,
    /// newest first, at most `limit`. Stores that refuse nothing after a 202 have none.
    async fn dead_letters(&self, _project: &Project, _env: &str, _limit: usize) -> anyhow::Result<DeadLetters> {
        Ok(DeadLetters::default())
    }

    /// Brings the store's gauges on the service's metrics up to date; called on each scrape.
    async fn refresh_metrics(&self) {}

    /// Whether other processes (several tasks) write to this store too, so that what this one
    /// ingested is not all there is: the live tail then also reads new events back from it.
    fn shared_by_tasks(&self) -> bool {
        false
    }

    /// How often the issue index is brought up to date by reading errors back from this store
    /// ([`crate::ingest::follow`]), or `None` when ingest records them (one process sees every
    /// event: the embedded store).
    fn issue_follow_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// The project's groups under its extra prefixes as they are now (not as a page listed them
    /// a moment ago: the follower must see a new function's group on its next poll).
    async fn external_groups_now(&self, _project: &Project) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// The error and fatal events of `group` (the project's own in `env`, or one under its
    /// extra prefixes, read as `env`'s) whose timestamps are in `[from_ms, to_ms]`, oldest first;
    /// a bounded read (see [`ErrorRead::stopped_at`]).
    async fn read_errors(
        &self,
        _project: &Project,
        _env: &str,
        _group: &str,
        _range: (i64, i64),
    ) -> anyhow::Result<ErrorRead> {
        Ok(ErrorRead::default())
    }
}

/// What [`LogStore::read_errors`] found.
#[derive(Debug, Default)]
pub struct ErrorRead {
    /// The errors and fatals read, oldest first.
    pub events: Vec<StoredEvent>,
    /// `None` when the whole range was read; `Some(t)` when the read stopped at its budget:
    /// every event before `t` was read, those at `t` perhaps not all.
    pub stopped_at: Option<i64>,
}

/// A read the store declined to finish. The caller can act on it, so the web layer answers it
/// with its own status and these words instead of an opaque 500.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadRefused {
    /// Every connection for this kind of read stayed busy for the whole wait: retrying later works.
    #[error("too many searches are running; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// The read ran past the store's time limit and was stopped: the same read would be stopped
    /// again, the caller has to ask for less.
    #[error("the search took longer than {limit_secs} s and was stopped; narrow the time range or add filters")]
    TooSlow { limit_secs: f64 },
}

/// A page of dead letters and how many the project/environment has in all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeadLetters {
    pub total: u64,
    pub dead_letters: Vec<DeadLetter>,
}

/// One event the destination refused after it was accepted, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// `too_new`, `too_old`, `expired` or `invalid`.
    pub reason: String,
    /// The destination's own words, when it gave any.
    pub detail: String,
    /// When it was refused, RFC 3339.
    pub dead_at: String,
    /// The stream it was meant for.
    pub stream: String,
    /// The event, when its stored form still reads as one; else `message` holds the raw text.
    pub event: Option<StoredEvent>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    pub kind: GroupKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// Written by logboard's ingest.
    Ingest,
    /// Somebody else's, e.g. a Lambda handler's.
    External,
}

/// A read of one group of one project/environment.
#[derive(Debug, Clone)]
pub struct EventQuery<'a> {
    pub project: &'a Project,
    pub env: String,
    /// `None`: the project's own group.
    pub group: Option<String>,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// Empty: every level.
    pub levels: Vec<Level>,
    /// The search (`q`), evaluated exactly on every event a store returns.
    pub search: Query,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl EventQuery<'_> {
    /// The levels this query keeps when it keeps events by level alone — no search, or a search
    /// of level tests only ([`Query::only_levels`]) — which level counts answer; empty for every
    /// level. `None` when anything else must be read (or nothing can match).
    pub fn counted_levels(&self) -> Option<Vec<Level>> {
        let matched = if self.search.root().is_none() { Level::ALL.to_vec() } else { self.search.only_levels()? };
        let asked = if self.levels.is_empty() { Level::ALL.to_vec() } else { self.levels.clone() };
        let kept: Vec<Level> = asked.into_iter().filter(|level| matched.contains(level)).collect();
        match kept.len() {
            0 => None,
            n if n == Level::ALL.len() => Some(Vec::new()),
            _ => Some(kept),
        }
    }

    /// The exact filter, for stores whose own filtering is only approximate.
    pub fn matches(&self, event: &StoredEvent) -> bool {
        let ts = event.timestamp;
        ts >= self.from
            && ts <= self.to
            && (self.levels.is_empty() || self.levels.contains(&event.level))
            && self.cursor.is_none_or(|cursor| cursor.is_after(event))
            && self.search.matches(event, self.group_name())
    }

    /// The log group read: the one asked for, else the project's own.
    pub fn group_name(&self) -> &str {
        self.group.as_deref().unwrap_or_else(|| self.project.own_group(&self.env))
    }
}

/// Where the previous page stopped: the last event shown, by (timestamp, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp_ms: i64,
    pub id: Ulid,
}

impl Cursor {
    pub fn after(event: &StoredEvent) -> Cursor {
        Cursor { timestamp_ms: unix_ms(event.timestamp), id: event.id }
    }

    /// True when `event` comes after the cursor in newest-first order.
    pub fn is_after(&self, event: &StoredEvent) -> bool {
        (event.timestamp_ms(), event.id) < (self.timestamp_ms, self.id)
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.timestamp_ms, self.id))
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let (ts, id) = raw.split_once('.')?;
        Some(Cursor { timestamp_ms: ts.parse().ok()?, id: Ulid::from_string(id).ok()? })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    #[serde(serialize_with = "serialize_cursor")]
    pub next_cursor: Option<Cursor>,
    /// Set when the store stopped early (its budget of calls for one read) and searched only back
    /// to this time (RFC 3339); `next_cursor` continues from there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_from: Option<String>,
}

fn serialize_cursor<S: serde::Serializer>(cursor: &Option<Cursor>, s: S) -> Result<S::Ok, S::Error> {
    match cursor {
        Some(c) => s.serialize_str(&c.encode()),
        None => s.serialize_none(),
    }
}

impl EventPage {
    /// Sorts candidates newest first and cuts them to one page, with a cursor when more remain.
    pub fn from_candidates(mut events: Vec<StoredEvent>, limit: usize) -> EventPage {
        events.sort_by_key(|e| std::cmp::Reverse((e.timestamp_ms(), e.id)));
        events.dedup_by_key(|e| e.id);
        let next_cursor = (events.len() > limit).then(|| Cursor::after(&events[limit - 1]));
        events.truncate(limit);
        EventPage { events, next_cursor, searched_from: None }
    }
}

/// Events per level over a time range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LevelCounts {
    pub counts: BTreeMap<Level, u64>,
    /// The store stopped counting early; the counts are a lower bound.
    pub capped: bool,
}

impl LevelCounts {
    pub fn get(&self, level: Level) -> u64 {
        self.counts.get(&level).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_encoding_and_garbage_is_refused() {
        let cursor = Cursor { timestamp_ms: 1_795_000_000_123, id: Ulid::from_parts(1_795_000_000_123, 7) };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("not-a-cursor"), None);
        assert_eq!(Cursor::decode(""), None);
    }
}
