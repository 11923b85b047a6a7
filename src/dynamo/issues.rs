//! The issue index in the shared table, so every task counts into one index and reads the same
//! one, and a deploy keeps it.
//!
//! **Counted at acceptance, once.** Ingest, on whichever task, records the errors it accepted
//! ([`SharedTally::entry`]): they go to the task's durable [`Queue`], in the store's commit of the
//! batch (so before the 202, with the events' fsync), and a flusher sends them once a second,
//! folded per issue ([`Delta`]), as one `TransactWriteItems`: a marker item for the flush
//! (`pk = "flush"`, conditional on its absence) and an `ADD` of the counts to each issue. A flush
//! sent twice fails on its marker and changes nothing, so each event is counted once however late
//! it arrives or however often the send is retried — no read-back of events, and its age does not
//! matter. Requests per second follow the
//! number of issues touched per flush, not the event rate.
//!
//! **Announced once.** What only one task may do is a conditional update of the issue: the
//! first to set `announced` reports it `new`; the first to turn `resolved` into `regressed`
//! reports the regression. First/last seen and the latest occurrence move by conditional updates
//! too (a minimum and a maximum are the same whoever writes them, and in whatever order).
//!
//! **Lambda groups** are still read back by the issue follower: [`IssueIndex::record_followed`]
//! writes its counts in the same transaction as its checkpoint (`pk = "follow"`), conditional on
//! the checkpoint's version, so a task that lost the group's lease cannot count its read again.
//!
//! Counts are kept per hour (`h{hour}` attributes of the issue item), so a range is counted in
//! whole hours; users are a set of short hashes per issue over its whole life, capped at
//! [`MAX_USERS`], in an item of their own (`users#{project}#{env}`, same sort key), with their
//! number on the issue as `n_users`: the issue item stays small (a few hundred bytes and its
//! hours), so the writes of every flush and the reads of every page cost one unit each instead of
//! up to 40 for an issue with 10,000 users.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, ReturnValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::counts::{DynamoCounts, level_writes, rule_writes};
use super::listing::{self, Listings};
use super::{EXPIRES, Item, PK, SK, Table, condition_failed, failure, get_n, get_s, n, s};
use crate::clock::{HOUR_MS, from_ms_utc, now_ms};
use crate::event::{Level, StoredEvent};
use crate::issues::{Changes, Followed, Issue, IssueIndex, IssueKey, MAX_LISTED, Occurrence, Sort, Status};
use crate::metrics::Metrics;
use crate::search::Query;
use crate::sqlite::queue::Queue;
use crate::tally::{LevelCount, RuleCount, SharedTally, Tally};

/// A transaction holds 100 actions: the flush's marker, maybe a checkpoint, and the counts.
const ACTIONS_PER_WRITE: usize = 98;
/// How often the flusher sends what waits in the queue.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Queue entries (ingest batches) folded into one flush at most.
const ENTRIES_PER_FLUSH: usize = 1_000;
/// A flush's marker outlives any retry of it.
const MARKER_KEPT_SECS: i64 = 14 * 24 * 3600;
/// Distinct users kept per issue; past it the count stays there.
pub const MAX_USERS: usize = 10_000;
/// Users one flush adds per issue at most (the cap is checked per write).
const USERS_PER_DELTA: usize = 200;
/// Hourly counts older than this are removed from an issue when it is next written.
const HOURS_KEPT: i64 = 400 * 24;
/// Counted ids the follower keeps per group at most.
const MAX_SEEN: usize = 5_000;

/// What one flush adds to one issue: the occurrences of the folded batches, summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Delta {
    project: String,
    env: String,
    fingerprint: String,
    count: i64,
    /// Occurrences per hour (epoch hours).
    hours: BTreeMap<i64, i64>,
    first_ts: i64,
    last_ts: i64,
    /// The occurrence at `last_ts`: the issue's title, type, level and sample when it is the latest.
    title: String,
    kind: Option<String>,
    level: String,
    sample_id: String,
    group: Option<String>,
    /// The latest receipt time: after a resolution, a regression.
    received_ms: i64,
    /// Short hashes of the users.
    users: BTreeSet<String>,
}

impl Delta {
    fn key(&self) -> (&str, &str, &str) {
        (&self.project, &self.env, &self.fingerprint)
    }

    /// The issue's latest occurrence in this delta, as the alert rules match it: its message,
    /// type, level and fingerprint (the index keeps no other field).
    fn sample(&self) -> StoredEvent {
        let at = from_ms_utc(self.last_ts);
        let id = ulid::Ulid::from_string(&self.sample_id).unwrap_or_else(|_| crate::event::new_id(at));
        let level = self.level.parse().unwrap_or(Level::Error);
        let bare = StoredEvent::bare(
            id,
            (&self.project, &self.env),
            (at, from_ms_utc(self.received_ms)),
            level,
            self.title.clone(),
        );
        StoredEvent { kind: self.kind.clone(), fingerprint: Some(self.fingerprint.clone()), ..bare }
    }
}

/// What sending counts announced: the issues it created or made regress (each announced by one
/// task only), and an event standing for each, which the alert rules match.
#[derive(Debug, Clone, Default)]
pub struct Announced {
    pub changes: Changes,
    pub samples: Vec<StoredEvent>,
}

impl Announced {
    fn extend(&mut self, other: Announced) {
        self.changes.new.extend(other.changes.new);
        self.changes.regressed.extend(other.changes.regressed);
        self.samples.extend(other.samples);
    }

    pub fn is_empty(&self) -> bool {
        self.changes.new.is_empty() && self.changes.regressed.is_empty()
    }
}

/// The occurrences folded per issue, in key order.
fn fold(occurrences: impl IntoIterator<Item = Occurrence>) -> Vec<Delta> {
    let mut deltas: BTreeMap<(String, String, String), Delta> = BTreeMap::new();
    for o in occurrences {
        let key = (o.project.clone(), o.env.clone(), o.fingerprint.clone());
        let delta = deltas.entry(key).or_insert_with(|| Delta {
            project: o.project.clone(),
            env: o.env.clone(),
            fingerprint: o.fingerprint.clone(),
            count: 0,
            hours: BTreeMap::new(),
            first_ts: o.ts,
            last_ts: i64::MIN,
            title: String::new(),
            kind: None,
            level: String::new(),
            sample_id: String::new(),
            group: None,
            received_ms: o.received_ms,
            users: BTreeSet::new(),
        });
        delta.count += 1;
        *delta.hours.entry(o.ts.div_euclid(HOUR_MS)).or_default() += 1;
        delta.first_ts = delta.first_ts.min(o.ts);
        delta.received_ms = delta.received_ms.max(o.received_ms);
        if o.ts >= delta.last_ts {
            delta.last_ts = o.ts;
            delta.title = o.title;
            delta.kind = o.kind;
            delta.level = o.level.as_str().to_string();
            delta.sample_id = o.id;
            delta.group = o.group;
        }
        if let Some(user) = o.user
            && delta.users.len() < USERS_PER_DELTA
        {
            delta.users.insert(user_hash(&user));
        }
    }
    deltas.into_values().collect()
}

/// A user as the index keeps it: 12 hex digits of a SHA-256 (collisions are unlikely below
/// millions of users, and the table never holds who they are).
fn user_hash(user: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(user.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn issue_pk(project: &str, env: &str) -> String {
    format!("issue#{project}#{env}")
}

fn users_pk(project: &str, env: &str) -> String {
    format!("users#{project}#{env}")
}

/// The most hours a listing names in its projection — the same as a kept copy holds (8 days and
/// the 24-hour series): a longer range reads each issue whole (every hour it keeps), which is
/// correct, only larger.
const PROJECTED_HOURS: i64 = listing::KEPT_HOURS;

/// What a listing reads of each issue over `[from_hour, to_hour]`: the fields it shows, and only
/// the hours it counts or draws.
fn list_projection((from_hour, to_hour): (i64, i64), last_hour: i64) -> Option<String> {
    let to_hour = to_hour.min(last_hour);
    if to_hour.saturating_sub(from_hour) >= PROJECTED_HOURS - 24 {
        return None;
    }
    let hours: BTreeSet<i64> = (last_hour - 23..=last_hour).chain(from_hour..=to_hour).collect();
    let fields = "sk, title, #type, #level, n_users, first_seen, last_seen, #status, sample_id, grp";
    Some(hours.iter().fold(fields.to_string(), |mut projection, hour| {
        projection.push_str(&format!(", h{hour}"));
        projection
    }))
}

/// The issue index in the shared table, with the task's queue of what is not there yet (the
/// issue counts, and the minute and rule counts of [`super::counts`] that go with them).
pub struct DynamoIssueIndex {
    table: Table,
    queue: Queue,
    /// This process's id in the rule counts it writes.
    task: String,
    /// The listings this task has shown, kept up to date by the change log.
    listings: Listings,
}

/// How a write of counts went.
enum Applied {
    /// Applied now or before: what it announced.
    Counted(Announced),
    /// The follower's checkpoint moved meanwhile (another task read the group): nothing written.
    Superseded,
}

impl DynamoIssueIndex {
    /// The index in `table`, its queue in the database `queue_db` (the event store's, which
    /// commits each batch's [`SharedTally::entry`] with its events). What an older version left in
    /// `data_dir/state-queue.db` is moved into it.
    pub fn open(table: Table, queue_db: &Path, data_dir: &Path) -> anyhow::Result<DynamoIssueIndex> {
        let task = crate::event::new_id(time::OffsetDateTime::now_utc()).to_string();
        let queue = Queue::open(queue_db)?;
        queue.adopt(&data_dir.join("state-queue.db"), fold_entries).context("moving the older state queue")?;
        Ok(DynamoIssueIndex { table, queue, task, listings: Listings::default() })
    }

    /// The table it counts into (and every other shared state of this task with it).
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The reader of the counts this index's flushes add, for this task.
    pub fn counts(&self) -> DynamoCounts {
        DynamoCounts::new(self.table.clone(), self.task.clone())
    }

    /// Sends what waits in the queue every second, for as long as the process runs; `report`
    /// gets what each flush changed (the new and regressed issues, each reported by one task).
    /// The backlog and the failures in a row go to `metrics` (what the monitor watches).
    pub fn spawn_flusher(self: &Arc<Self>, metrics: Arc<Metrics>, report: impl Fn(Announced) + Send + Sync + 'static) {
        let index = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(FLUSH_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let set_backlog = async |index: &DynamoIssueIndex| {
                if let Ok(backlog) = index.backlog().await {
                    metrics.state_backlog.set(i64::try_from(backlog).unwrap_or(i64::MAX));
                }
            };
            loop {
                ticker.tick().await;
                // Before as well as after: a flush of many issues takes a while, and what it is
                // sending is backlog until it is done.
                set_backlog(&index).await;
                match index.flush().await {
                    Ok(announced) => {
                        metrics.state_failing_sends.set(0);
                        if !announced.is_empty() {
                            report(announced);
                        }
                    }
                    Err(error) => {
                        metrics.state_failing_sends.inc();
                        tracing::warn!(error = format!("{error:#}"), "sending issue counts to the state table");
                    }
                }
                set_backlog(&index).await;
            }
        });
    }

    /// Sends everything that waits in the queue, flush after flush; stops at the first failure
    /// (what failed is sent again next time, under the same marker).
    pub async fn flush(&self) -> anyhow::Result<Announced> {
        let mut all = Announced::default();
        while let Some((id, announced)) = self.send_next().await? {
            all.extend(announced);
            self.queue.done(&id).await?;
        }
        Ok(all)
    }

    /// Sends the next flush to the table, and returns its id and what it changed, without
    /// forgetting it: until [`Self::flush`] does, it is sent again (as after a crash here), and
    /// counted once. `None` when nothing waits.
    pub async fn send_next(&self) -> anyhow::Result<Option<(String, Announced)>> {
        let taken = self.queue.take(ENTRIES_PER_FLUSH, fold_entries).await.context("taking a flush from the queue")?;
        let Some(flush) = taken else { return Ok(None) };
        let body = FlushBody::parse(&flush.body).context("reading a queued flush")?;
        let mut counts = level_writes(&self.table.name, &body.levels)?;
        counts.extend(rule_writes(&self.table.name, &body.rules)?);
        let announced = match self.apply(&flush.id, &body.deltas, counts, None).await? {
            Applied::Counted(announced) => announced,
            Applied::Superseded => Announced::default(),
        };
        Ok(Some((flush.id, announced)))
    }

    /// What waits in the queue (batches and flushes not yet in the table).
    pub async fn backlog(&self) -> anyhow::Result<u64> {
        self.queue.backlog().await
    }

    /// Adds `deltas` and `counts` once under the marker `id` (in parts of [`ACTIONS_PER_WRITE`],
    /// each with its own marker), then does what only one task may do.
    async fn apply(
        &self,
        id: &str,
        deltas: &[Delta],
        counts: Vec<Update>,
        checkpoint: Option<&Checkpoint>,
    ) -> anyhow::Result<Applied> {
        let mut announced = Announced::default();
        let mut actions: Vec<(Option<&Delta>, Update)> = Vec::with_capacity(deltas.len() + counts.len());
        for delta in deltas {
            actions.push((Some(delta), add_counts(&self.table.name, delta)?));
        }
        actions.extend(counts.into_iter().map(|update| (None, update)));
        let mut parts: Vec<Vec<(Option<&Delta>, Update)>> = Vec::new();
        while !actions.is_empty() || parts.is_empty() {
            let rest = actions.split_off(actions.len().min(ACTIONS_PER_WRITE));
            parts.push(std::mem::replace(&mut actions, rest));
        }
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let mut writes = vec![marker(&self.table.name, &format!("{id}.{i}"))?];
            if let Some(checkpoint) = checkpoint {
                // Every part holds while the checkpoint is the one read; the last moves it on.
                writes.push(if i == last {
                    checkpoint.write(&self.table.name)?
                } else {
                    checkpoint.check(&self.table.name)?
                });
            }
            let mut part_deltas = Vec::new();
            for (delta, update) in part {
                part_deltas.extend(delta.cloned());
                writes.push(TransactWriteItem::builder().update(update).build());
            }
            let sent = self.table.client.transact_write_items().set_transact_items(Some(writes)).send().await;
            if let Err(error) = sent {
                let reasons = cancellation_codes(&error);
                if reasons.first().map(String::as_str) == Some("ConditionalCheckFailed") {
                    // The marker exists: this part was applied before.
                } else if checkpoint.is_some() && reasons.get(1).map(String::as_str) == Some("ConditionalCheckFailed") {
                    return Ok(Applied::Superseded);
                } else {
                    return Err(failure(error)).context("adding issue counts");
                }
            }
            announced.extend(self.settle(&part_deltas).await?);
            self.log_changes(&format!("{id}.{i}"), &part_deltas).await?;
        }
        Ok(Applied::Counted(announced))
    }

    /// After the counts: first and last seen, the latest occurrence, users, the announcements
    /// of new and regressed issues (each by one task), old hours removed.
    async fn settle(&self, deltas: &[Delta]) -> anyhow::Result<Announced> {
        let items = self.read_issues(deltas.iter().map(Delta::key)).await?;
        let mut announced = Announced::default();
        let now = now_ms();
        for delta in deltas {
            let Some(item) = items.get(&(delta.project.clone(), delta.env.clone(), delta.fingerprint.clone())) else {
                continue;
            };
            let key = (delta.project.as_str(), delta.env.as_str(), delta.fingerprint.as_str());
            if get_n(item, "last_seen").is_none_or(|last| delta.last_ts > last) {
                self.set_latest(key, delta).await?;
            }
            if get_n(item, "first_seen").is_none_or(|first| delta.first_ts < first) {
                self.conditional(key, "SET first_seen = :t", "first_seen > :t", &[(":t", n(delta.first_ts))]).await?;
            }
            let issue_key = || IssueKey {
                project: delta.project.clone(),
                env: delta.env.clone(),
                fingerprint: delta.fingerprint.clone(),
            };
            if !item.contains_key("announced")
                && self
                    .conditional(key, "SET announced = :now", "attribute_not_exists(announced)", &[(":now", n(now))])
                    .await?
            {
                announced.changes.new.push(issue_key());
                announced.samples.push(delta.sample());
            }
            if get_s(item, "status") == Some("resolved")
                && get_n(item, "resolved_at").is_some_and(|at| delta.received_ms > at)
                && self
                    .conditional(
                        key,
                        "SET #status = :regressed",
                        "#status = :resolved AND resolved_at < :received",
                        &[
                            (":regressed", s("regressed")),
                            (":resolved", s("resolved")),
                            (":received", n(delta.received_ms)),
                        ],
                    )
                    .await?
            {
                announced.changes.regressed.push(issue_key());
                announced.samples.push(delta.sample());
            }
            let known_users = get_n(item, "n_users").unwrap_or(0);
            if !delta.users.is_empty() && known_users < MAX_USERS as i64 {
                self.add_users(key, &delta.users, known_users).await?;
            }
            self.remove_old_hours(key, item, now).await?;
        }
        Ok(announced)
    }

    /// Tells the other tasks' listings which issues `deltas` changed (once settled).
    async fn log_changes(&self, id: &str, deltas: &[Delta]) -> anyhow::Result<()> {
        let mut by_stream: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for delta in deltas {
            by_stream.entry((&delta.project, &delta.env)).or_default().push(&delta.fingerprint);
        }
        for (stream, fingerprints) in by_stream {
            listing::log_changes(&self.table, stream, id, fingerprints).await?;
        }
        Ok(())
    }

    /// The latest occurrence's fields, if it is still the latest.
    async fn set_latest(&self, key: (&str, &str, &str), delta: &Delta) -> anyhow::Result<bool> {
        let mut set = vec!["last_seen = :t", "title = :title", "#level = :level", "sample_id = :sample"];
        let mut remove = Vec::new();
        let mut values = vec![
            (":t", n(delta.last_ts)),
            (":title", s(&delta.title)),
            (":level", s(&delta.level)),
            (":sample", s(&delta.sample_id)),
        ];
        match &delta.kind {
            Some(kind) => {
                set.push("#type = :type");
                values.push((":type", s(kind)));
            }
            None => remove.push("#type"),
        }
        match &delta.group {
            Some(group) => {
                set.push("grp = :grp");
                values.push((":grp", s(group)));
            }
            None => remove.push("grp"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.conditional(key, &expression, "attribute_not_exists(last_seen) OR last_seen < :t", &values).await
    }

    /// Adds `users` to the issue's set (up to [`MAX_USERS`]) and raises its `n_users` to the set's
    /// size when it grew past `known` (what the issue said when read): a maximum, so tasks adding
    /// at once leave the largest size they saw, and users seen before cost no second write.
    async fn add_users(
        &self,
        (project, env, fingerprint): (&str, &str, &str),
        users: &BTreeSet<String>,
        known: i64,
    ) -> anyhow::Result<()> {
        let added = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, s(users_pk(project, env)))
            .key(SK, s(fingerprint))
            .update_expression("ADD #users :set")
            .condition_expression("attribute_not_exists(#users) OR size(#users) < :max")
            .expression_attribute_names("#users", "users")
            .expression_attribute_values(":set", AttributeValue::Ss(users.iter().cloned().collect()))
            .expression_attribute_values(":max", n(MAX_USERS as i64))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let size = match added {
            Ok(answer) => {
                answer.attributes().and_then(|a| a.get("users")).and_then(|v| v.as_ss().ok()).map_or(0, Vec::len)
            }
            Err(e) if condition_failed(&e) => MAX_USERS,
            Err(e) => return Err(failure(e)).context("adding an issue's users"),
        };
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        if size <= known {
            return Ok(());
        }
        let size = n(size);
        self.conditional(
            (project, env, fingerprint),
            "SET n_users = :n",
            "attribute_not_exists(n_users) OR n_users < :n",
            &[(":n", size)],
        )
        .await?;
        Ok(())
    }

    /// Hourly counts past [`HOURS_KEPT`] go, so an issue's item stays small for ever.
    async fn remove_old_hours(&self, key: (&str, &str, &str), item: &Item, now: i64) -> anyhow::Result<()> {
        let oldest = now.div_euclid(HOUR_MS) - HOURS_KEPT;
        let old: Vec<String> =
            hours_of(item).filter(|(hour, _)| *hour < oldest).map(|(hour, _)| format!("h{hour}")).take(50).collect();
        if old.is_empty() {
            return Ok(());
        }
        self.conditional(key, &format!("REMOVE {}", old.join(", ")), "attribute_exists(pk)", &[]).await?;
        Ok(())
    }

    /// One conditional update of an issue; `false` when its condition did not hold.
    async fn conditional(
        &self,
        (project, env, fingerprint): (&str, &str, &str),
        expression: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> anyhow::Result<bool> {
        let mut update = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, s(issue_pk(project, env)))
            .key(SK, s(fingerprint))
            .update_expression(expression)
            .condition_expression(condition);
        for (name, attribute) in [("#status", "status"), ("#level", "level"), ("#type", "type")] {
            if expression.contains(name) || condition.contains(name) {
                update = update.expression_attribute_names(name, attribute);
            }
        }
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failure(e)).context("updating an issue"),
        }
    }

    /// The issue items of `keys`, by key (strongly consistent).
    async fn read_issues<'a>(
        &self,
        keys: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> anyhow::Result<HashMap<(String, String, String), Item>> {
        let keys = keys.map(|(project, env, fingerprint)| (issue_pk(project, env), fingerprint.to_string()));
        let items = self.table.get_all(keys).await.context("reading issues")?;
        Ok(items
            .into_iter()
            .filter_map(|item| {
                let (project, env) = get_s(&item, PK)?.strip_prefix("issue#")?.split_once('#')?;
                let key = (project.to_string(), env.to_string(), get_s(&item, SK)?.to_string());
                Some((key, item))
            })
            .collect())
    }

    async fn read_checkpoint(&self, group: &str) -> anyhow::Result<Option<Checkpoint>> {
        let answer = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key(PK, s("follow"))
            .key(SK, s(group))
            .consistent_read(true)
            .send()
            .await
            .map_err(failure)
            .context("reading the follower's checkpoint")?;
        Ok(answer.item().map(|item| Checkpoint::of_item(group, item)))
    }
}

/// What one flush adds: the issue counts folded per issue, the minute and rule counts.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FlushBody {
    deltas: Vec<Delta>,
    #[serde(default)]
    levels: Vec<LevelCount>,
    #[serde(default)]
    rules: Vec<RuleCount>,
}

impl FlushBody {
    /// A flush as queued; one queued before minute and rule counts existed is a list of deltas.
    fn parse(body: &str) -> serde_json::Result<FlushBody> {
        serde_json::from_str(body)
            .or_else(|_| serde_json::from_str(body).map(|deltas| FlushBody { deltas, ..FlushBody::default() }))
    }
}

/// The queued batches (each a [`Tally`], or a list of occurrences as queued by an earlier
/// version) folded into one flush.
fn fold_entries(entries: Vec<String>) -> String {
    let mut all = Tally::default();
    for entry in &entries {
        let tally = serde_json::from_str::<Tally>(entry).or_else(|_| {
            serde_json::from_str::<Vec<Occurrence>>(entry).map(|occurrences| Tally { occurrences, ..Tally::default() })
        });
        match tally {
            Ok(tally) => all.merge(tally),
            Err(error) => tracing::error!(error = %error, "an unreadable entry in the state queue was skipped"),
        }
    }
    let body = FlushBody { deltas: fold(all.occurrences), levels: all.levels, rules: all.rules };
    serde_json::to_string(&body).unwrap_or_else(|_| "{\"deltas\":[]}".into())
}

/// The put of a flush's marker, which fails when the flush was applied before.
fn marker(table: &str, id: &str) -> anyhow::Result<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .item(PK, s("flush"))
        .item(SK, s(id))
        .item(EXPIRES, n(now_ms() / 1000 + MARKER_KEPT_SECS))
        .condition_expression("attribute_not_exists(pk)")
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The counts of a delta added to its issue; what is set only if absent makes a new issue whole.
fn add_counts(table: &str, delta: &Delta) -> anyhow::Result<Update> {
    let mut adds = vec!["n_total :count".to_string()];
    let mut update = Update::builder()
        .table_name(table)
        .key(PK, s(issue_pk(&delta.project, &delta.env)))
        .key(SK, s(&delta.fingerprint))
        .expression_attribute_values(":count", n(delta.count))
        .expression_attribute_values(":first", n(delta.first_ts))
        .expression_attribute_values(":last", n(delta.last_ts))
        .expression_attribute_values(":title", s(&delta.title))
        .expression_attribute_values(":level", s(&delta.level))
        .expression_attribute_values(":sample", s(&delta.sample_id))
        .expression_attribute_values(":ongoing", s("ongoing"))
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#level", "level");
    for (i, (hour, count)) in delta.hours.iter().enumerate() {
        adds.push(format!("h{hour} :h{i}"));
        update = update.expression_attribute_values(format!(":h{i}"), n(*count));
    }
    let mut sets = vec![
        "first_seen = if_not_exists(first_seen, :first)".to_string(),
        "last_seen = if_not_exists(last_seen, :last)".into(),
        "title = if_not_exists(title, :title)".into(),
        "#level = if_not_exists(#level, :level)".into(),
        "sample_id = if_not_exists(sample_id, :sample)".into(),
        "#status = if_not_exists(#status, :ongoing)".into(),
    ];
    if let Some(kind) = &delta.kind {
        sets.push("#type = if_not_exists(#type, :type)".into());
        update = update.expression_attribute_names("#type", "type").expression_attribute_values(":type", s(kind));
    }
    if let Some(group) = &delta.group {
        sets.push("grp = if_not_exists(grp, :grp)".into());
        update = update.expression_attribute_values(":grp", s(group));
    }
    Ok(update.update_expression(format!("ADD {} SET {}", adds.join(", "), sets.join(", "))).build()?)
}

/// Each action's code in a cancelled transaction (`"None"` for those that were fine).
fn cancellation_codes<R>(error: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>) -> Vec<String> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            cancelled.cancellation_reasons().iter().map(|reason| reason.code().unwrap_or("None").to_string()).collect()
        }
        _ => Vec::new(),
    }
}

/// The `h{hour}` counts of an issue item.
fn hours_of(item: &Item) -> impl Iterator<Item = (i64, i64)> + '_ {
    item.iter().filter_map(|(name, value)| {
        let hour = name.strip_prefix('h')?.parse().ok()?;
        Some((hour, value.as_n().ok()?.parse().ok()?))
    })
}

/// An issue as listed, from its item: counted over `[from, to]` in whole hours.
fn issue_of_item(item: &Item, (from_ms, to_ms): (i64, i64), now_ms: i64) -> Option<Issue> {
    let (from_hour, to_hour) = (from_ms.div_euclid(HOUR_MS), to_ms.div_euclid(HOUR_MS));
    let last_hour = now_ms.div_euclid(HOUR_MS);
    let mut series = vec![0u64; 24];
    let mut count = 0u64;
    for (hour, n) in hours_of(item) {
        let n = u64::try_from(n).unwrap_or(0);
        if (from_hour..=to_hour).contains(&hour) {
            count += n;
        }
        if let Some(slot) = usize::try_from(hour - (last_hour - 23)).ok().and_then(|i| series.get_mut(i)) {
            *slot += n;
        }
    }
    let first_seen = get_n(item, "first_seen")?;
    Some(Issue {
        fingerprint: get_s(item, SK)?.to_string(),
        title: get_s(item, "title").unwrap_or_default().to_string(),
        kind: get_s(item, "type").map(str::to_string),
        level: get_s(item, "level").unwrap_or("error").to_string(),
        count,
        users: get_n(item, "n_users").and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
        first_seen: from_ms_utc(first_seen),
        last_seen: from_ms_utc(get_n(item, "last_seen")?),
        status: Status::shown(get_s(item, "status").unwrap_or("ongoing"), first_seen, now_ms),
        sample_id: get_s(item, "sample_id").unwrap_or_default().to_string(),
        group: get_s(item, "grp").map(str::to_string),
        series_24h: series,
    })
}

/// Where the follower goes on in a group, the ids it counted, and the version it was read at.
#[derive(Debug, Clone)]
struct Checkpoint {
    group: String,
    next_from: i64,
    floor: i64,
    /// `"{ts}:{id}"` of the events counted and still reachable by a read.
    seen: BTreeSet<String>,
    version: i64,
}

impl Checkpoint {
    fn of_item(group: &str, item: &Item) -> Checkpoint {
        Checkpoint {
            group: group.to_string(),
            next_from: get_n(item, "next_from").unwrap_or(0),
            floor: get_n(item, "floor").unwrap_or(0),
            seen: item
                .get("seen")
                .and_then(|v| v.as_ss().ok())
                .map(|ids| ids.iter().cloned().collect())
                .unwrap_or_default(),
            version: get_n(item, "version").unwrap_or(0),
        }
    }

    fn condition(&self) -> (&'static str, Option<AttributeValue>) {
        if self.version == 0 {
            ("attribute_not_exists(pk)", None)
        } else {
            ("version = :version", Some(n(self.version)))
        }
    }

    /// Holds while the checkpoint is at the version it was read at.
    fn check(&self, table: &str) -> anyhow::Result<TransactWriteItem> {
        let (condition, version) = self.condition();
        let check = ConditionCheck::builder()
            .table_name(table)
            .key(PK, s("follow"))
            .key(SK, s(&self.group))
            .condition_expression(condition)
            .set_expression_attribute_values(version.map(|v| HashMap::from([(":version".to_string(), v)])))
            .build()?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// The checkpoint as moved on (its next version), if it is still at the version read.
    fn write(&self, table: &str) -> anyhow::Result<TransactWriteItem> {
        let (condition, version) = self.condition();
        let mut put = Put::builder()
            .table_name(table)
            .item(PK, s("follow"))
            .item(SK, s(&self.group))
            .item("next_from", n(self.next_from))
            .item("floor", n(self.floor))
            .item("version", n(self.version + 1))
            .condition_expression(condition)
            .set_expression_attribute_values(version.map(|v| HashMap::from([(":version".to_string(), v)])));
        if !self.seen.is_empty() {
            put = put.item("seen", AttributeValue::Ss(self.seen.iter().cloned().collect()));
        }
        Ok(TransactWriteItem::builder().put(put.build()?).build())
    }
}

/// `"{ts}:{id}"`, zero-padded so the set sorts by time.
fn seen_entry(ts: i64, id: &str) -> String {
    format!("{ts:015}:{id}")
}

impl SharedTally for DynamoIssueIndex {
    /// Added to the table by the flusher (within a second while the table answers).
    fn entry(&self, mut tally: Tally) -> anyhow::Result<Option<String>> {
        if tally.is_empty() {
            return Ok(None);
        }
        for count in &mut tally.rules {
            count.task.clone_from(&self.task);
        }
        Ok(Some(serde_json::to_string(&tally)?))
    }
}

#[async_trait]
impl IssueIndex for DynamoIssueIndex {
    /// Queued durably on this task; counted in the table by the flusher (within a second while
    /// the table answers). The changes come from the flusher, not from here.
    async fn record(&self, occurrences: Vec<Occurrence>) -> anyhow::Result<Changes> {
        if let Some(entry) = self.entry(Tally { occurrences, ..Tally::default() })? {
            self.queue.push(entry).await.context("queueing counts")?;
        }
        Ok(Changes { found: true, ..Changes::default() })
    }

    async fn set_status(
        &self,
        project: &str,
        env: &str,
        fingerprint: &str,
        status: Status,
        at_ms: i64,
    ) -> anyhow::Result<bool> {
        let set = self
            .conditional(
                (project, env, fingerprint),
                "SET #status = :status, resolved_at = :at",
                "attribute_exists(pk)",
                &[(":status", s(status.as_str())), (":at", n(at_ms))],
            )
            .await?;
        if set {
            let id = crate::event::new_id(time::OffsetDateTime::now_utc()).to_string();
            listing::log_changes(&self.table, (project, env), &id, [fingerprint]).await?;
        }
        Ok(set)
    }

    async fn get(
        &self,
        (project, env): (&str, &str),
        fingerprint: &str,
        range: (i64, i64),
        now_ms: i64,
    ) -> anyhow::Result<Option<Issue>> {
        let items = self.read_issues(std::iter::once((project, env, fingerprint))).await?;
        Ok(items.values().next().and_then(|item| issue_of_item(item, range, now_ms)))
    }

    async fn list(
        &self,
        (project, env, group): (&str, &str, &str),
        (from_ms, to_ms): (i64, i64),
        search: &Query,
        sort: Sort,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Issue>> {
        let listed = |items: &mut dyn Iterator<Item = &Item>| -> Vec<Issue> {
            items
                .filter_map(|item| issue_of_item(item, (from_ms, to_ms), now_ms))
                .filter(|issue| {
                    crate::clock::unix_ms(issue.last_seen) >= from_ms
                        && crate::clock::unix_ms(issue.first_seen) <= to_ms
                })
                .filter(|issue| issue.matches((project, env, group), search))
                .collect()
        };
        let pk = issue_pk(project, env);
        let mut issues = if Listings::serves(from_ms, now_ms) {
            self.listings.with_items(&self.table, (project, env), &pk, listed).await?
        } else {
            let projection =
                list_projection((from_ms.div_euclid(HOUR_MS), to_ms.div_euclid(HOUR_MS)), now_ms.div_euclid(HOUR_MS));
            let items = self.table.query_projected(&pk, None, projection.as_deref()).await.context("listing issues")?;
            listed(&mut items.iter())
        };
        issues.sort_by(|a, b| match sort {
            Sort::LastSeen => b.last_seen.cmp(&a.last_seen),
            Sort::FirstSeen => b.first_seen.cmp(&a.first_seen),
            Sort::Count => b.count.cmp(&a.count).then(b.last_seen.cmp(&a.last_seen)),
            Sort::Users => b.users.cmp(&a.users).then(b.last_seen.cmp(&a.last_seen)),
        });
        issues.truncate(MAX_LISTED);
        Ok(issues)
    }

    async fn record_followed(&self, followed: Followed) -> anyhow::Result<Changes> {
        let Followed { group, occurrences, next_from, floor, forget_before } = followed;
        let before = self.read_checkpoint(&group).await?;
        let version = before.as_ref().map_or(0, |c| c.version);
        let mut seen = before.map(|c| c.seen).unwrap_or_default();
        let fresh: Vec<Occurrence> =
            occurrences.into_iter().filter(|o| !seen.contains(&seen_entry(o.ts, &o.id))).collect();
        seen.extend(fresh.iter().map(|o| seen_entry(o.ts, &o.id)));
        let oldest_kept = seen_entry(forget_before, "");
        seen.retain(|entry| *entry >= oldest_kept);
        while seen.len() > MAX_SEEN {
            seen.pop_first();
        }
        let checkpoint = Checkpoint { group: group.clone(), next_from, floor, seen, version };
        let id = format!("follow#{group}#{version}");
        match self.apply(&id, &fold(fresh), Vec::new(), Some(&checkpoint)).await? {
            Applied::Counted(announced) => Ok(Changes { found: true, ..announced.changes }),
            Applied::Superseded => Ok(Changes::default()),
        }
    }

    async fn follow_state(&self, group: &str) -> anyhow::Result<Option<(i64, i64)>> {
        Ok(self.read_checkpoint(group).await?.map(|c| (c.next_from, c.floor)))
    }

    async fn has_issues(&self, project: &str, env: &str) -> anyhow::Result<bool> {
        let answer = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(issue_pk(project, env)))
            .limit(1)
            .send()
            .await
            .map_err(failure)
            .context("reading the issue index")?;
        Ok(!answer.items().is_empty())
    }

    fn is_shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::DAY_MS;

    fn occurrence(fingerprint: &str, ts: i64, user: Option<&str>) -> Occurrence {
        Occurrence {
            project: "shop".into(),
            env: "prod".into(),
            fingerprint: fingerprint.into(),
            ts,
            received_ms: ts + 5,
            title: format!("boom at {ts}"),
            kind: Some("TypeError".into()),
            level: Level::Error,
            id: format!("id-{ts}"),
            user: user.map(str::to_string),
            group: None,
        }
    }

    #[test]
    fn occurrences_fold_per_issue_with_hourly_counts_the_latest_sample_and_hashed_users() {
        let t = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;
        let deltas = fold(vec![
            occurrence("a", t + 10, Some("ann")),
            occurrence("b", t, None),
            occurrence("a", t + HOUR_MS + 1, Some("bob")),
            occurrence("a", t + 5, Some("ann")),
        ]);
        assert_eq!(deltas.len(), 2);
        let a = &deltas[0];
        assert_eq!((a.fingerprint.as_str(), a.count, a.first_ts, a.last_ts), ("a", 3, t + 5, t + HOUR_MS + 1));
        assert_eq!(a.hours, BTreeMap::from([(t / HOUR_MS, 2), (t / HOUR_MS + 1, 1)]));
        assert_eq!(a.title, format!("boom at {}", t + HOUR_MS + 1));
        assert_eq!(a.received_ms, t + HOUR_MS + 6);
        assert_eq!(a.users.len(), 2);
        assert!(a.users.iter().all(|u| u.len() == 12 && u != "ann" && u != "bob"));
        assert_eq!(deltas[1].count, 1);
    }

    #[test]
    fn an_item_lists_its_count_over_whole_hours_and_a_24_hour_series() {
        let now = 1_800_000_000_000;
        let hour = now / HOUR_MS;
        let mut item: Item = HashMap::from([
            (SK.to_string(), s("fp")),
            ("first_seen".to_string(), n(now - 30 * HOUR_MS)),
            ("last_seen".to_string(), n(now)),
            ("status".to_string(), s("ongoing")),
            (format!("h{hour}"), n(4)),
            (format!("h{}", hour - 2), n(3)),
            (format!("h{}", hour - 30), n(9)),
        ]);
        item.insert("n_users".into(), n(2));
        let issue = issue_of_item(&item, (now - 3 * HOUR_MS, now), now).expect("an issue");
        assert_eq!(issue.count, 7);
        assert_eq!(issue.users, 2);
        assert_eq!(issue.series_24h[23], 4);
        assert_eq!(issue.series_24h[21], 3);
        assert_eq!(issue.series_24h.iter().sum::<u64>(), 7);
        assert_eq!(issue.status, Status::Ongoing);
        let all = issue_of_item(&item, (now - 2 * DAY_MS, now), now).expect("an issue");
        assert_eq!(all.count, 16);
    }

    #[test]
    fn a_listing_reads_the_hours_it_counts_and_draws_and_a_long_range_reads_whole_items() {
        let hour = 500_000;
        let day = list_projection((hour - 24, hour), hour).expect("a day is projected");
        let named: Vec<&str> = day.split(", ").filter(|name| name.starts_with('h')).collect();
        assert_eq!(named.len(), 25, "the series' 24 hours and the hour before them: {day}");
        assert!(named.contains(&"h500000") && named.contains(&"h499976") && !named.contains(&"h500001"));
        assert!(day.split(", ").any(|name| name == "n_users"), "the users' count: {day}");
        assert!(!day.split(", ").any(|name| name == "users"), "never the set: {day}");
        let week_ago = list_projection((hour - 7 * 24, hour - 6 * 24), hour).expect("a past day is projected");
        assert_eq!(week_ago.matches(", h").count(), 24 + 25);
        assert_eq!(list_projection((hour - 30 * 24, hour), hour), None);
        assert_eq!(list_projection((i64::MIN, i64::MAX), hour), None, "no overflow, no huge set");
    }
}
