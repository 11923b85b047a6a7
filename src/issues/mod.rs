//! The issue index: errors grouped by fingerprint, per project/environment, kept up to date as
//! events arrive, so the issues list never scans events. This file holds what an issue is
//! ([`Occurrence`], [`Issue`], [`Status`], [`Sort`], [`Changes`], [`Followed`]) and the
//! [`IssueIndex`] trait every caller goes through (`Arc<dyn IssueIndex>`: ingest, the issue
//! follower, the pages and the API); [`sqlite`] is its implementation on one SQLite file,
//! `data_dir/issues.db`, whatever the event store, with the follower's checkpoints in it.
//!
//! What the index keeps, per project/environment/fingerprint: first and last seen, the latest
//! occurrence's title, type, level, id and group (when not the project's own), the status and
//! when it was resolved, occurrences per minute (counts over a range, the 24 h sparkline) and
//! which users had it in which minute (distinct users over a range).
//!
//! Who records: on the embedded store, ingest (one process sees every event). On CloudWatch, the
//! issue follower (`crate::ingest::follow`), which reads error lines back from the project's own
//! groups and its Lambda groups (several tasks ingest a part each; Lambda functions write without
//! logboard), with its checkpoints ([`IssueIndex::follow_state`]) moved in the same write as what
//! it recorded ([`IssueIndex::record_followed`]); ingest records nothing there.
//!
//! The index is derived from the events and written after them: a crash between the two
//! commits leaves it short by the events of that moment on the embedded store (they are still
//! stored and searchable); the follower's checkpoint moves in the same transaction as what it
//! recorded, so it re-reads them.

pub mod sqlite;

use async_trait::async_trait;
use serde::Serialize;

use crate::clock::HOUR_MS;
use crate::event::{Level, StoredEvent, timestamp_format};
use crate::search::Query;

pub use sqlite::SqliteIssueIndex;

/// An issue first seen this recently is `new`.
const NEW_FOR_MS: i64 = 24 * HOUR_MS;
/// The most issues one list returns.
pub const MAX_LISTED: usize = 200;

/// The issue index, wherever it is kept. Every write returns once it is durable.
#[async_trait]
pub trait IssueIndex: Send + Sync {
    /// Records occurrences; returns once they are on disk, with the issues they created or
    /// made regress (what the alert rules `new_issue` and `regression` watch).
    async fn record(&self, occurrences: Vec<Occurrence>) -> anyhow::Result<Changes>;

    /// Sets an issue's status at `at_ms` (an occurrence after a resolution is a regression);
    /// `false` when there is no such issue.
    async fn set_status(
        &self,
        project: &str,
        env: &str,
        fingerprint: &str,
        status: Status,
        at_ms: i64,
    ) -> anyhow::Result<bool>;

    /// One issue of a project/environment, whether or not it was seen in `[from, to]`, with its
    /// count and users over that range as [`IssueIndex::list`] gives them; `None` when the index
    /// has no such issue.
    async fn get(
        &self,
        at: (&str, &str),
        fingerprint: &str,
        range: (i64, i64),
        now_ms: i64,
    ) -> anyhow::Result<Option<Issue>>;

    /// The issues of a project/environment seen in `[from, to]` whose latest occurrence matches
    /// `search` (read from `group`), ordered by `sort`, at most [`MAX_LISTED`]; `now` decides
    /// what is `new` and where the 24 h series ends.
    async fn list(
        &self,
        at: (&str, &str, &str),
        range: (i64, i64),
        search: &Query,
        sort: Sort,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Issue>>;

    /// Records what the follower read from one group, and moves its checkpoint on, at once:
    /// occurrences whose ids were counted before are left out.
    async fn record_followed(&self, followed: Followed) -> anyhow::Result<Changes>;

    /// Where the next read of `group` starts and its floor, once it has been followed.
    async fn follow_state(&self, group: &str) -> anyhow::Result<Option<(i64, i64)>>;

    /// Whether the project/environment has any issue yet.
    async fn has_issues(&self, project: &str, env: &str) -> anyhow::Result<bool>;

    /// Whether every task records into this one index (a shared table): then each task records
    /// what it ingests, and the follower reads only the groups logboard does not write (Lambda's).
    /// `false` for a task's own files.
    fn is_shared(&self) -> bool {
        false
    }
}

/// One error event, as the index records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Occurrence {
    pub project: String,
    pub env: String,
    pub fingerprint: String,
    pub ts: i64,
    /// When ingest received it: a regression is an occurrence received after the resolution,
    /// on the server's own clock (a client's may be off, or its event delivered late).
    pub received_ms: i64,
    pub title: String,
    pub kind: Option<String>,
    pub level: Level,
    pub id: String,
    pub user: Option<String>,
    /// The group it was read from when that is not the project's own (a Lambda function's).
    pub group: Option<String>,
}

impl Occurrence {
    /// The occurrences among `events` of the project's own group: errors and fatals with a
    /// fingerprint.
    pub fn of(events: &[StoredEvent]) -> Vec<Occurrence> {
        Occurrence::of_group(events, None)
    }

    /// The occurrences among `events` read from `group` (`None`: the project's own).
    pub fn of_group(events: &[StoredEvent], group: Option<&str>) -> Vec<Occurrence> {
        events
            .iter()
            .filter(|e| e.level >= Level::Error)
            .filter_map(|e| {
                Some(Occurrence {
                    project: e.project.clone(),
                    env: e.env.clone(),
                    fingerprint: e.fingerprint.clone()?,
                    ts: e.timestamp_ms(),
                    received_ms: crate::event::unix_ms(e.received_at),
                    title: e.message.clone(),
                    kind: e.kind.clone(),
                    level: e.level,
                    id: e.id.to_string(),
                    user: e.user.as_ref().map(|user| match user {
                        serde_json::Value::Object(fields) => {
                            fields.get("id").map_or_else(|| user.to_string(), json_text)
                        }
                        other => json_text(other),
                    }),
                    group: group.map(str::to_string),
                })
            })
            .collect()
    }
}

fn json_text(value: &serde_json::Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}

/// Where an issue stands. `New` and `Regressed` are shown, never set by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    New,
    Ongoing,
    Resolved,
    Ignored,
    Regressed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Ongoing => "ongoing",
            Status::Resolved => "resolved",
            Status::Ignored => "ignored",
            Status::Regressed => "regressed",
        }
    }

    /// How an issue whose stored status is `stored` shows at `now`: `new` for a day after it was
    /// first seen, unless a person or a regression set it otherwise.
    pub fn shown(stored: &str, first_seen_ms: i64, now_ms: i64) -> Status {
        match stored {
            "resolved" => Status::Resolved,
            "ignored" => Status::Ignored,
            "regressed" => Status::Regressed,
            _ if first_seen_ms > now_ms - NEW_FOR_MS => Status::New,
            _ => Status::Ongoing,
        }
    }

    /// The statuses a person may set.
    pub fn settable(text: &str) -> Option<Status> {
        match text {
            "ongoing" => Some(Status::Ongoing),
            "resolved" => Some(Status::Resolved),
            "ignored" => Some(Status::Ignored),
            _ => None,
        }
    }
}

/// How a list is ordered, most first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    LastSeen,
    FirstSeen,
    Count,
    Users,
}

impl Sort {
    pub fn parse(text: &str) -> Option<Sort> {
        match text {
            "last_seen" => Some(Sort::LastSeen),
            "first_seen" => Some(Sort::FirstSeen),
            "count" => Some(Sort::Count),
            "users" => Some(Sort::Users),
            _ => None,
        }
    }
}

/// One issue as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub fingerprint: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub level: String,
    /// Occurrences in the range.
    pub count: u64,
    /// Distinct users in the range.
    pub users: u64,
    #[serde(with = "timestamp_format")]
    pub first_seen: time::OffsetDateTime,
    #[serde(with = "timestamp_format")]
    pub last_seen: time::OffsetDateTime,
    pub status: Status,
    pub sample_id: String,
    /// The group of the latest occurrence when it is not the project's own (a Lambda
    /// function's): where its events are read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Occurrences in each of the 24 hours before the list was read, oldest first.
    pub series_24h: Vec<u64>,
}

/// Which issue: the index is keyed by project, environment and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IssueKey {
    pub project: String,
    pub env: String,
    pub fingerprint: String,
}

/// What a write changed: issues seen for the first time, resolved issues that occurred again,
/// and (for a status) whether the issue exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Issues this write created.
    pub new: Vec<IssueKey>,
    /// Resolved issues this write made `regressed`.
    pub regressed: Vec<IssueKey>,
    pub found: bool,
}

/// What one read of a group by the issue follower found, and where the next read of it starts.
#[derive(Debug, Clone)]
pub struct Followed {
    pub group: String,
    pub occurrences: Vec<Occurrence>,
    pub next_from: i64,
    /// No read of the group starts before this (set when it is first followed).
    pub floor: i64,
    /// Ids of events older than this are forgotten: no later read starts before it.
    pub forget_before: i64,
}

impl Issue {
    /// Whether `search` (`None`: no query) matches the issue's latest occurrence, read from `group`.
    pub fn matches(&self, (project, env, group): (&str, &str, &str), search: &Query) -> bool {
        search.root().is_none() || self.as_event(project, env).is_some_and(|event| search.matches(&event, group))
    }

    /// The issue as the event `q` is tested on: its latest occurrence's message, type, level,
    /// id and the fingerprint (other fields are not kept in the index, so they are absent).
    fn as_event(&self, project: &str, env: &str) -> Option<StoredEvent> {
        let id = ulid::Ulid::from_string(&self.sample_id).ok()?;
        let bare = StoredEvent::bare(
            id,
            (project, env),
            (self.last_seen, self.last_seen),
            self.level.parse().ok()?,
            self.title.clone(),
        );
        Some(StoredEvent { kind: self.kind.clone(), fingerprint: Some(self.fingerprint.clone()), ..bare })
    }
}
