//! The issue listings of a task, kept as a copy of the issue items that a short **change log**
//! brings up to date, so that a view of the issues page reads what changed since the last view
//! instead of every issue (a `Query` of 1,000 issues is about a second on moto, and 1,000 read
//! units on DynamoDB, at every view).
//!
//! Whoever changes issues (a flush of counts, once its conditional updates are done; a status
//! set by a user) then puts one change item, `changed#{project}#{env}` / `{ms}#{id}`, naming the
//! fingerprints it changed. A view reads the change items since its last view (one strongly
//! consistent `Query`, a handful of small items) and re-reads the issues they name (a consistent
//! `BatchGetItem`): a change item is written after the writes it reports, so once it is seen
//! those writes are. The log is read back [`OVERLAP_MS`] further than the last view, for writers
//! whose clock is behind and for puts in flight; entries already applied are skipped by key.
//! A copy is read again whole when it is [`RELOAD_AFTER_MS`] old, which bounds what a change
//! missed (a writer's clock more than a minute behind) can leave wrong.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{EXPIRES, Item, PK, SK, Table, failure, get_s, n, s};
use crate::clock::{HOUR_MS, now_ms};

/// How far before the last view the change log is read again.
pub const OVERLAP_MS: i64 = 60_000;
/// A copy this old is read again whole rather than caught up.
const RELOAD_AFTER_MS: i64 = 10 * 60_000;
/// A change item outlives any copy that could still need it.
const CHANGE_KEPT_SECS: i64 = 3600;
/// Project/environments whose listing a task keeps at most; past it the least recently viewed goes.
const MAX_KEPT: usize = 64;
/// Hours of counts kept in a copy: enough for the ranges it serves ([`Listings::serves`]).
pub const KEPT_HOURS: i64 = 8 * 24 + 24;

fn changes_pk(project: &str, env: &str) -> String {
    format!("changed#{project}#{env}")
}

/// Puts the change item saying `fingerprints` of `project`/`env` changed (`id` makes it unique).
pub async fn log_changes<'a>(
    table: &Table,
    (project, env): (&str, &str),
    id: &str,
    fingerprints: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<()> {
    let fingerprints: BTreeSet<String> = fingerprints.into_iter().map(str::to_string).collect();
    if fingerprints.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    table
        .client
        .put_item()
        .table_name(&table.name)
        .item(PK, s(changes_pk(project, env)))
        .item(SK, s(format!("{now:015}#{id}")))
        .item("fps", AttributeValue::Ss(fingerprints.into_iter().collect()))
        .item(EXPIRES, n(now / 1000 + CHANGE_KEPT_SECS))
        .send()
        .await
        .map_err(failure)
        .context("logging changed issues")?;
    Ok(())
}

/// One project/environment's copy of its issue items.
#[derive(Default)]
struct Listing {
    /// By fingerprint.
    items: HashMap<String, Item>,
    /// When (this task's clock) the copy was last read whole; `None` before the first read.
    loaded_at: Option<i64>,
    /// When it was last brought up to date.
    synced_at: i64,
    /// The change items applied that a next read of the log still returns.
    applied: HashSet<String>,
}

/// A kept listing, locked while it is brought up to date, so that views of one
/// project/environment wait for one read instead of making their own.
type Slot = Arc<tokio::sync::Mutex<Listing>>;

/// The listings this task keeps, by project and environment, with when each was last viewed.
#[derive(Default)]
pub struct Listings {
    kept: Mutex<HashMap<(String, String), (i64, Slot)>>,
}

impl Listings {
    /// Whether a copy can answer a listing of `[from_ms, ..]`: its hours are kept.
    pub fn serves(from_ms: i64, now_ms: i64) -> bool {
        from_ms.div_euclid(HOUR_MS) > now_ms.div_euclid(HOUR_MS) - KEPT_HOURS + 24
    }

    /// Runs `read` over the issue items of `project`/`env` (pk `issue_pk`), brought up to date first.
    pub async fn with_items<T>(
        &self,
        table: &Table,
        (project, env): (&str, &str),
        issue_pk: &str,
        read: impl FnOnce(&mut dyn Iterator<Item = &Item>) -> T,
    ) -> anyhow::Result<T> {
        let slot = self.slot(project, env);
        let mut listing = slot.lock().await;
        let now = now_ms();
        match listing.loaded_at {
            Some(loaded_at) if now - loaded_at < RELOAD_AFTER_MS => {
                let changes = read_changes(table, (project, env), listing.synced_at - OVERLAP_MS).await?;
                let changed: BTreeSet<String> = changes
                    .iter()
                    .filter(|(key, _)| !listing.applied.contains(key))
                    .flat_map(|(_, fingerprints)| fingerprints.iter().cloned())
                    .collect();
                let keys = changed.into_iter().map(|fingerprint| (issue_pk.to_string(), fingerprint));
                for item in table.get_all(keys).await.context("reading changed issues")? {
                    listing.insert(item, now);
                }
                listing.applied = changes.into_iter().map(|(key, _)| key).collect();
            }
            _ => {
                // The log first: what it already lists is in the full read that follows.
                let changes = read_changes(table, (project, env), now - OVERLAP_MS).await?;
                let items = table.query_all(issue_pk, None).await.context("listing issues")?;
                listing.items.clear();
                for item in items {
                    listing.insert(item, now);
                }
                listing.applied = changes.into_iter().map(|(key, _)| key).collect();
                listing.loaded_at = Some(now);
            }
        }
        listing.synced_at = now;
        Ok(read(&mut listing.items.values()))
    }

    fn slot(&self, project: &str, env: &str) -> Slot {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_ms();
        let key = (project.to_string(), env.to_string());
        if !kept.contains_key(&key) && kept.len() >= MAX_KEPT {
            let oldest = kept.iter().min_by_key(|(_, (viewed, _))| *viewed).map(|(key, _)| key.clone());
            kept.remove(&oldest.unwrap_or_default());
        }
        let (viewed, slot) = kept.entry(key).or_default();
        *viewed = now;
        Arc::clone(slot)
    }
}

impl Listing {
    /// Keeps `item`, without the hours older than a copy serves.
    fn insert(&mut self, mut item: Item, now: i64) {
        let oldest = now.div_euclid(HOUR_MS) - KEPT_HOURS;
        item.retain(|name, _| name.strip_prefix('h').and_then(|h| h.parse::<i64>().ok()).is_none_or(|h| h >= oldest));
        if let Some(fingerprint) = get_s(&item, SK) {
            self.items.insert(fingerprint.to_string(), item);
        }
    }
}

/// The change items of `project`/`env` stamped at `since` or later: key and fingerprints.
async fn read_changes(
    table: &Table,
    (project, env): (&str, &str),
    since: i64,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut changes = Vec::new();
    let mut start = None;
    loop {
        let answer = table
            .client
            .query()
            .table_name(&table.name)
            .key_condition_expression("pk = :pk AND sk >= :since")
            .expression_attribute_values(":pk", s(changes_pk(project, env)))
            .expression_attribute_values(":since", s(format!("{:015}", since.max(0))))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(failure)
            .context("reading the issues' change log")?;
        for item in answer.items() {
            let fingerprints = item.get("fps").and_then(|v| v.as_ss().ok()).cloned().unwrap_or_default();
            if let Some(key) = get_s(item, SK) {
                changes.push((key.to_string(), fingerprints));
            }
        }
        start = answer.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(changes);
        }
    }
}
