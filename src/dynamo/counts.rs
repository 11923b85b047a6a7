//! Counts kept in the table as events are accepted ([`crate::tally`]), so that pages and rules
//! read a few items instead of every event:
//!
//! | `pk` | `sk` | what |
//! |---|---|---|
//! | `minutes#{project}#{env}` | epoch minute, 10 digits | events per level (`debug` … `fatal`) |
//! | `hours#{project}#{env}` | epoch hour, 8 digits | the same per hour, for long ranges |
//! | `hits#{rule}#{env}` | `{minute}#{task}` | a threshold rule's matches counted by one task |
//!
//! They are added by the flush that carries a batch's issue counts (one transaction, under the
//! flush's marker: counted once). Minutes are kept [`MINUTES_KEPT_DAYS`] days and hours
//! [`HOURS_KEPT_DAYS`], by the table's TTL.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::Update;

use super::{EXPIRES, Item, PK, SK, Table, get_n, n, s};
use crate::alerts::engine::Alerts;
use crate::clock::{DAY_MS, HOUR_MS, MINUTE_MS, now_ms};
use crate::event::Level;
use crate::store::LevelCounts;
use crate::store::histogram::{Buckets, Histogram};
use crate::tally::{LevelCount, RuleCount};

/// Minute counts serve ranges that start within this many days; they go a little later.
const MINUTES_KEPT_DAYS: i64 = 32;
const MINUTES_SERVED_DAYS: i64 = 30;
/// Hour counts serve every range a chart of whole hours can show.
const HOURS_KEPT_DAYS: i64 = 400;
/// A rule's counts outlive the longest window (a week) they are read for.
const HITS_KEPT_DAYS: i64 = 8;
/// How often each task reads what the other tasks counted for a threshold rule: every 5 s,
/// or a 60th of its window when that is longer (a long window moves slowly), up to a minute.
const OTHERS_READ_EVERY: Duration = Duration::from_secs(5);
const OTHERS_READ_AT_MOST_EVERY: Duration = Duration::from_secs(60);

fn minutes_pk(project: &str, env: &str) -> String {
    format!("minutes#{project}#{env}")
}

fn hours_pk(project: &str, env: &str) -> String {
    format!("hours#{project}#{env}")
}

fn hits_pk(rule: &str, env: &str) -> String {
    format!("hits#{rule}#{env}")
}

/// The writes that add `levels` to the minute and hour items, one per item.
pub fn level_writes(table: &str, levels: &[LevelCount]) -> anyhow::Result<Vec<Update>> {
    let mut minutes: BTreeMap<(&str, &str, i64), [u64; 5]> = BTreeMap::new();
    let mut hours: BTreeMap<(&str, &str, i64), [u64; 5]> = BTreeMap::new();
    for c in levels {
        let level = level_index(c.level);
        minutes.entry((&c.project, &c.env, c.minute)).or_default()[level] += c.n;
        hours.entry((&c.project, &c.env, c.minute.div_euclid(60))).or_default()[level] += c.n;
    }
    let now_s = now_ms() / 1000;
    let mut writes = Vec::with_capacity(minutes.len() + hours.len());
    for ((project, env, minute), counts) in minutes {
        let expires = (minute * MINUTE_MS + MINUTES_KEPT_DAYS * DAY_MS) / 1000;
        writes.push(add_levels(table, minutes_pk(project, env), format!("{minute:010}"), &counts, expires.max(now_s))?);
    }
    for ((project, env, hour), counts) in hours {
        let expires = (hour * HOUR_MS + HOURS_KEPT_DAYS * DAY_MS) / 1000;
        writes.push(add_levels(table, hours_pk(project, env), format!("{hour:08}"), &counts, expires.max(now_s))?);
    }
    Ok(writes)
}

fn add_levels(table: &str, pk: String, sk: String, counts: &[u64; 5], expires: i64) -> anyhow::Result<Update> {
    let mut update = Update::builder()
        .table_name(table)
        .key(PK, s(pk))
        .key(SK, s(sk))
        .expression_attribute_values(":expires", n(expires));
    let mut adds = Vec::new();
    for (i, (level, count)) in Level::ALL.iter().zip(counts).enumerate().filter(|(_, (_, c))| **c > 0) {
        adds.push(format!("#l{i} :l{i}"));
        update = update
            .expression_attribute_names(format!("#l{i}"), level.as_str())
            .expression_attribute_values(format!(":l{i}"), n(i64::try_from(*count).unwrap_or(i64::MAX)));
    }
    Ok(update.update_expression(format!("ADD {} SET {EXPIRES} = :expires", adds.join(", "))).build()?)
}

/// The writes that add threshold rules' matches to their items, one per rule, env, minute and task.
pub fn rule_writes(table: &str, rules: &[RuleCount]) -> anyhow::Result<Vec<Update>> {
    let expires = now_ms() / 1000 + HITS_KEPT_DAYS * 24 * 3600;
    rules
        .iter()
        .map(|c| {
            Ok(Update::builder()
                .table_name(table)
                .key(PK, s(hits_pk(&c.rule, &c.env)))
                .key(SK, s(format!("{:010}#{}", c.minute, c.task)))
                .update_expression(format!("ADD hits :n SET {EXPIRES} = :expires"))
                .expression_attribute_values(":n", n(i64::try_from(c.n).unwrap_or(i64::MAX)))
                .expression_attribute_values(":expires", n(expires))
                .build()?)
        })
        .collect()
}

fn level_index(level: Level) -> usize {
    Level::ALL.iter().position(|l| *l == level).unwrap_or(0)
}

/// The counts of one minute or hour item, in the order of [`Level::ALL`].
fn level_counts_of(item: &Item) -> [u64; 5] {
    let mut counts = [0; 5];
    for (i, level) in Level::ALL.iter().enumerate() {
        counts[i] = get_n(item, level.as_str()).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    }
    counts
}

/// Reads the counts: charts, level counts, and the other tasks' rule matches.
#[derive(Debug, Clone)]
pub struct DynamoCounts {
    table: Table,
    /// This task's id in the rule counts it writes (its own are in its own windows already).
    task: String,
}

impl DynamoCounts {
    pub fn new(table: Table, task: String) -> DynamoCounts {
        DynamoCounts { table, task }
    }

    /// The project/env's events per level in `buckets` (only `levels`, or all when empty), from
    /// the minute items or, for buckets of whole hours, the hour items; `None` when neither can
    /// serve the range (buckets shorter than an hour, older than the minutes kept).
    pub async fn histogram(
        &self,
        (project, env): (&str, &str),
        levels: &[Level],
        buckets: Buckets,
    ) -> anyhow::Result<Option<Histogram>> {
        let (from, to) = (buckets.origin_ms, buckets.start_ms(buckets.count));
        let items = if buckets.interval_ms % HOUR_MS == 0 {
            self.range(&hours_pk(project, env), from / HOUR_MS, (to - 1) / HOUR_MS, 8)
                .await?
                .into_iter()
                .map(|(hour, counts)| (hour * HOUR_MS, counts))
                .collect::<Vec<_>>()
        } else if from >= now_ms() - MINUTES_SERVED_DAYS * DAY_MS {
            self.range(&minutes_pk(project, env), from / MINUTE_MS, (to - 1) / MINUTE_MS, 10)
                .await?
                .into_iter()
                .map(|(minute, counts)| (minute * MINUTE_MS, counts))
                .collect()
        } else {
            return Ok(None);
        };
        let mut histogram = Histogram::empty(buckets);
        for (start, counts) in items {
            for (level, count) in Level::ALL.iter().zip(counts) {
                if count > 0 && (levels.is_empty() || levels.contains(level)) {
                    histogram.add_count(start, *level, count);
                }
            }
        }
        Ok(Some(histogram))
    }

    /// Events per level in `[from_ms, to_ms]`, in whole minutes (whole hours past the minutes
    /// kept).
    pub async fn level_counts(
        &self,
        (project, env): (&str, &str),
        from_ms: i64,
        to_ms: i64,
    ) -> anyhow::Result<LevelCounts> {
        let items = if from_ms >= now_ms() - MINUTES_SERVED_DAYS * DAY_MS {
            self.range(&minutes_pk(project, env), from_ms / MINUTE_MS, to_ms / MINUTE_MS, 10).await?
        } else {
            self.range(&hours_pk(project, env), from_ms / HOUR_MS, to_ms / HOUR_MS, 8).await?
        };
        let mut counts = LevelCounts::default();
        for (_, item_counts) in items {
            for (level, count) in Level::ALL.iter().zip(item_counts) {
                if count > 0 {
                    *counts.counts.entry(*level).or_insert(0) += count;
                }
            }
        }
        Ok(counts)
    }

    /// The minute or hour items `[first, last]` of `pk` (sort keys `digits` wide), in order.
    async fn range(&self, pk: &str, first: i64, last: i64, digits: usize) -> anyhow::Result<Vec<(i64, [u64; 5])>> {
        let items = self
            .table
            .query_all(pk, Some((&format!("{first:0digits$}"), &format!("{last:0digits$}"))))
            .await
            .context("reading counts")?;
        Ok(items
            .iter()
            .filter_map(|item| Some((item.get(SK)?.as_s().ok()?.parse().ok()?, level_counts_of(item))))
            .collect())
    }

    /// What the other tasks (and this one before it restarted) counted for a threshold rule in
    /// `env` since `since_ms`, per epoch minute.
    pub async fn others(&self, rule: &str, env: &str, since_ms: i64) -> anyhow::Result<Vec<(i64, u64)>> {
        let first = since_ms.div_euclid(MINUTE_MS);
        let items = self
            .table
            .query_all(&hits_pk(rule, env), Some((&format!("{first:010}"), "9999999999~")))
            .await
            .context("reading a rule's counts")?;
        let mut minutes: BTreeMap<i64, u64> = BTreeMap::new();
        for item in &items {
            let Some((minute, task)) = item.get(SK).and_then(|v| v.as_s().ok()).and_then(|sk| sk.split_once('#'))
            else {
                continue;
            };
            if task == self.task {
                continue;
            }
            if let (Ok(minute), Some(hits)) = (minute.parse(), get_n(item, "hits")) {
                *minutes.entry(minute).or_default() += u64::try_from(hits).unwrap_or(0);
            }
        }
        Ok(minutes.into_iter().collect())
    }

    /// Reads what the other tasks counted for each threshold rule (every 5 s to a minute, by its
    /// window) and hands it to `alerts`, until the engine is dropped. A read that fails keeps
    /// the last.
    pub fn spawn_others_reader(self, alerts: Weak<Alerts>) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(OTHERS_READ_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_read: HashMap<(String, String), Instant> = HashMap::new();
            loop {
                ticker.tick().await;
                let Some(alerts) = alerts.upgrade() else { return };
                for (rule, env, window_secs) in alerts.thresholds() {
                    let every =
                        Duration::from_secs(window_secs / 60).clamp(OTHERS_READ_EVERY, OTHERS_READ_AT_MOST_EVERY);
                    let key = (rule.clone(), env.clone());
                    // Less a tick's jitter, so that a 5 s rule is read on every tick.
                    if last_read.get(&key).is_some_and(|at| at.elapsed() + Duration::from_secs(1) < every) {
                        continue;
                    }
                    last_read.insert(key, Instant::now());
                    let window_ms = i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
                    match self.others(&rule, &env, now_ms().saturating_sub(window_ms)).await {
                        Ok(minutes) => alerts.set_others(&rule, &env, minutes),
                        Err(error) => {
                            tracing::warn!(error = format!("{error:#}"), alert = %rule, "reading other tasks' counts");
                        }
                    }
                }
                drop::<Arc<Alerts>>(alerts);
            }
        });
    }
}
