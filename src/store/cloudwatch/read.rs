//! Reads: FilterLogEvents over time windows that grow backwards from the newest end, every
//! filter applied again here, exactly (CloudWatch's own filter, [`filter_pattern`], is only a
//! cheap first cut, and emulators ignore it), and events still in the spool added so a page shows
//! what was accepted. A page read makes at most [`MAX_FILTER_CALLS`] calls in
//! [`READ_TIME_BUDGET`]; when that stops it short of `from`, its cursor says where to go on.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use time::OffsetDateTime;
use ulid::Ulid;

use super::CloudWatchStore;
use super::foreign::read_line;
use super::pattern::filter_pattern;
use crate::event::{StoredEvent, from_unix_ms, timestamp_format, unix_ms};
use crate::project::Project;
use crate::store::histogram::{Buckets, Histogram};
use crate::store::{Cursor, EventPage, EventQuery, Group, GroupKind, LevelCounts};

/// The first time window a read scans, walking back from its newest end.
const FIRST_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Each further window is this many times wider than the one before.
const WINDOW_GROWTH: i64 = 4;
/// FilterLogEvents page size (the API's maximum).
const FILTER_PAGE_EVENTS: i32 = 10_000;
/// `level_counts` stops counting after this many events and says so.
const MAX_COUNTED_EVENTS: u64 = 10_000;
/// How long the groups found under one prefix are reused (DescribeLogGroups is limited to 5/s).
const GROUP_LIST_CACHE: std::time::Duration = std::time::Duration::from_secs(30);
/// Unshipped events a read looks at in the spool at most (newest first).
const PENDING_READ_ROWS: usize = 10_000;
/// FilterLogEvents calls (pages) one page of events may cost: a search that matches rarely
/// would otherwise walk back to `from` (years) in as many calls as that takes. The first window
/// is always read whole, so every page makes progress.
const MAX_FILTER_CALLS: u32 = 40;
/// FilterLogEvents calls (pages of up to 10,000 events) one chart may cost; past it the chart
/// says it is partial.
const MAX_CHART_CALLS: u32 = 30;
/// Past this, a page of events starts no further FilterLogEvents call (after its first window).
const READ_TIME_BUDGET: Duration = Duration::from_secs(10);

/// What one page read may still spend on FilterLogEvents.
pub(super) struct Budget {
    calls_left: u32,
    deadline: Option<Instant>,
}

impl Budget {
    pub(super) fn new(calls: u32, time: Duration) -> Self {
        Budget { calls_left: calls, deadline: Instant::now().checked_add(time) }
    }

    /// For reads bounded otherwise (one event by id; counts, which stop at a number of events).
    fn unlimited() -> Self {
        Budget { calls_left: u32::MAX, deadline: None }
    }

    fn exhausted(&self) -> bool {
        self.calls_left == 0 || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn spend(&mut self) {
        self.calls_left = self.calls_left.saturating_sub(1);
    }
}

/// How a [`CloudWatchStore::scan`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scanned {
    /// Every page was read, or `visit` asked to stop.
    Complete,
    /// The group does not exist.
    Missing,
    /// The budget ran out before the last page: the range was not read whole.
    OverBudget,
}

/// The cursor that continues a read stopped at `boundary_ms` (everything from there to the
/// newest end was read): every event older than the boundary comes after it.
fn resume_before(boundary_ms: i64) -> Cursor {
    Cursor { timestamp_ms: boundary_ms - 1, id: Ulid(u128::MAX) }
}

impl CloudWatchStore {
    pub(super) async fn read_groups(&self, project: &Project, env: &str) -> anyhow::Result<Vec<Group>> {
        let own = project.own_group(env).to_string();
        let mut external = BTreeSet::new();
        for prefix in project.extra_group_prefixes.iter().filter(|p| !p.is_empty()) {
            external.extend(self.groups_under(prefix).await?);
        }
        external.remove(&own);
        let mut groups = vec![Group { name: own, kind: GroupKind::Ingest }];
        groups.extend(external.into_iter().map(|name| Group { name, kind: GroupKind::External }));
        Ok(groups)
    }

    pub(super) async fn read_events(&self, query: &EventQuery<'_>) -> anyhow::Result<EventPage> {
        let Some(group) = self.naming.readable_group(query.project, &query.env, query.group.as_deref()) else {
            return Ok(EventPage::default());
        };
        let own = group == query.project.own_group(&query.env);
        let pattern = filter_pattern(&query.search, &query.levels, own);
        let limit = query.limit.max(1);
        let from = unix_ms(query.from);
        let mut end = unix_ms(query.to);
        if let Some(cursor) = query.cursor {
            end = end.min(cursor.timestamp_ms);
        }
        let newest = end;
        let mut candidates = Vec::new();
        let mut seen = HashSet::new();
        let mut window = FIRST_WINDOW_MS;
        // How far back CloudWatch has been read completely.
        let mut scanned_from = from;
        let mut budget = Budget::new(MAX_FILTER_CALLS, READ_TIME_BUDGET);
        let mut over_budget = false;
        // Walk back from the newest end in growing windows; once a window leaves more than a
        // page of matches, every newer event has been seen and the page is exact.
        while end >= from {
            let start = end.saturating_sub(window - 1).max(from);
            let before = candidates.len();
            let first_window = end == newest;
            let scanned = self
                .scan(&group, start, end, pattern.as_deref(), &mut budget, !first_window, |raw| {
                    if let Some(event) = read_line(&query.project.name, &query.env, raw)
                        && query.matches(&event)
                        && seen.insert(event.id)
                    {
                        candidates.push(event);
                    }
                    true
                })
                .await?;
            match scanned {
                Scanned::Complete => scanned_from = start,
                Scanned::Missing => scanned_from = from,
                Scanned::OverBudget => {
                    // Part of a window may have gaps anywhere in it: it is dropped, and the
                    // page ends where the last whole window began.
                    for event in candidates.drain(before..) {
                        seen.remove(&event.id);
                    }
                    over_budget = true;
                }
            }
            if scanned != Scanned::Complete || candidates.len() > limit || start <= from {
                break;
            }
            end = start - 1;
            window = window.saturating_mul(WINDOW_GROWTH);
        }
        if own && newest >= scanned_from {
            // Accepted but not yet in CloudWatch (or shipped and not yet trimmed: `seen` drops
            // the copy). Only as far back as CloudWatch was read, so the page stays exact.
            for body in self.spool.pending(&group, scanned_from, newest, PENDING_READ_ROWS).await? {
                if let Ok(event) = serde_json::from_str::<StoredEvent>(&body)
                    && query.matches(&event)
                    && seen.insert(event.id)
                {
                    candidates.push(event);
                }
            }
        }
        let mut page = EventPage::from_candidates(candidates, limit);
        if over_budget && page.next_cursor.is_none() {
            page.next_cursor = Some(resume_before(scanned_from));
            page.searched_from = from_unix_ms(scanned_from).map(timestamp_format::format);
        }
        Ok(page)
    }

    pub(super) async fn read_event(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
    ) -> anyhow::Result<Option<StoredEvent>> {
        let Some(group) = self.naming.readable_group(project, env, group) else { return Ok(None) };
        // The id's time part is the occurrence time: the CloudWatch timestamp of its line.
        let Ok(ts) = i64::try_from(id.timestamp_ms()) else { return Ok(None) };
        let mut found = None;
        self.scan(&group, ts, ts, None, &mut Budget::unlimited(), false, |raw| {
            found = read_line(&project.name, env, raw).filter(|e| e.id == id);
            found.is_none()
        })
        .await?;
        if found.is_none() && group == project.own_group(env) {
            let pending = self.spool.pending(&group, ts, ts, PENDING_READ_ROWS).await?;
            found =
                pending.iter().filter_map(|body| serde_json::from_str::<StoredEvent>(body).ok()).find(|e| e.id == id);
        }
        Ok(found)
    }

    pub(super) async fn count_levels(
        &self,
        project: &str,
        env: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> anyhow::Result<LevelCounts> {
        let group = self.naming.own_group(project, env);
        let mut counts = LevelCounts::default();
        let mut seen = HashSet::new();
        let (from, to) = (unix_ms(from), unix_ms(to));
        self.scan(&group, from, to, None, &mut Budget::unlimited(), false, |raw| {
            if seen.len() as u64 >= MAX_COUNTED_EVENTS {
                counts.capped = true;
                return false;
            }
            if let Some(event) = read_line(project, env, raw)
                && seen.insert(event.id)
            {
                *counts.counts.entry(event.level).or_insert(0) += 1;
            }
            true
        })
        .await?;
        // Accepted and not yet in CloudWatch counts too, as the logs page shows it; a copy
        // already shipped but not yet trimmed from the spool is counted once, by id.
        let pending = self.spool.pending(&group, from, to, PENDING_READ_ROWS).await?;
        counts.capped |= pending.len() >= PENDING_READ_ROWS;
        for body in pending {
            if let Ok(event) = serde_json::from_str::<StoredEvent>(&body)
                && seen.insert(event.id)
            {
                *counts.counts.entry(event.level).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    /// The groups whose names start with `prefix`, listed at most every [`GROUP_LIST_CACHE`].
    async fn groups_under(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let cached = self.external_groups.lock().map_err(|_| anyhow!("poisoned"))?.get(prefix).cloned();
        if let Some((listed, names)) = cached
            && listed.elapsed() < GROUP_LIST_CACHE
        {
            return Ok(names);
        }
        let names = self.list_groups_under(prefix).await?;
        let mut cache = self.external_groups.lock().map_err(|_| anyhow!("poisoned"))?;
        cache.insert(prefix.to_string(), (Instant::now(), names.clone()));
        Ok(names)
    }

    /// The groups whose names start with `prefix`, as CloudWatch lists them now.
    pub(super) async fn list_groups_under(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_log_groups()
                .log_group_name_prefix(prefix)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| anyhow!("{}", DisplayErrorContext(&e)))
                .with_context(|| format!("DescribeLogGroups with prefix {prefix}"))?;
            names.extend(page.log_groups().iter().filter_map(|g| g.log_group_name()).map(str::to_string));
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(names)
    }
    /// The query's events per level in `buckets`, read in one scan of the range within
    /// [`MAX_CHART_CALLS`] FilterLogEvents calls (then `capped`: a partial chart), plus what
    /// waits in the spool.
    pub(super) async fn chart(&self, query: &EventQuery<'_>, buckets: Buckets) -> anyhow::Result<Histogram> {
        let mut histogram = Histogram::empty(buckets);
        let Some(group) = self.naming.readable_group(query.project, &query.env, query.group.as_deref()) else {
            return Ok(histogram);
        };
        let own = group == query.project.own_group(&query.env);
        let pattern = filter_pattern(&query.search, &query.levels, own);
        let (from, to) = (unix_ms(query.from), unix_ms(query.to));
        // Accepted and not yet trimmed from the spool: counted from there, and skipped in the
        // scan should they be shipped meanwhile.
        let mut pending = HashSet::new();
        if own {
            let bodies = self.spool.pending(&group, from, to, PENDING_READ_ROWS).await?;
            histogram.capped |= bodies.len() >= PENDING_READ_ROWS;
            for body in bodies {
                if let Ok(event) = serde_json::from_str::<StoredEvent>(&body)
                    && query.matches(&event)
                    && pending.insert(event.id)
                {
                    histogram.add(&event);
                }
            }
        }
        let mut budget = Budget::new(MAX_CHART_CALLS, READ_TIME_BUDGET);
        let scanned = self
            .scan(&group, from, to, pattern.as_deref(), &mut budget, true, |raw| {
                if let Some(event) = read_line(&query.project.name, &query.env, raw)
                    && query.matches(&event)
                    && !pending.contains(&event.id)
                {
                    histogram.add(&event);
                }
                true
            })
            .await?;
        histogram.capped |= scanned == Scanned::OverBudget;
        Ok(histogram)
    }

    /// Visits every event of `group` in `[start_ms, end_ms]` page by page until `visit` returns
    /// false. Every call is charged to `budget`; when `enforce`, an exhausted budget stops the
    /// scan before its next call.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn scan(
        &self,
        group: &str,
        start_ms: i64,
        end_ms: i64,
        pattern: Option<&str>,
        budget: &mut Budget,
        enforce: bool,
        mut visit: impl FnMut(&FilteredLogEvent) -> bool,
    ) -> anyhow::Result<Scanned> {
        let mut token: Option<String> = None;
        loop {
            if enforce && budget.exhausted() {
                return Ok(Scanned::OverBudget);
            }
            budget.spend();
            let answer = self
                .client
                .filter_log_events()
                .log_group_name(group)
                .start_time(start_ms)
                .end_time(end_ms)
                .limit(FILTER_PAGE_EVENTS)
                .set_filter_pattern(pattern.map(str::to_string))
                .set_next_token(token.take())
                .send()
                .await;
            let page = match answer {
                Ok(page) => page,
                Err(error) if error.code() == Some("ResourceNotFoundException") => return Ok(Scanned::Missing),
                Err(error) => {
                    return Err(anyhow!("{}", DisplayErrorContext(&error)))
                        .with_context(|| format!("FilterLogEvents on {group}"));
                }
            };
            for event in page.events() {
                if !visit(event) {
                    return Ok(Scanned::Complete);
                }
            }
            // An empty page can still carry a token: only its absence ends the scan.
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(Scanned::Complete),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_runs_out_after_its_calls_and_an_unlimited_one_does_not() {
        let mut budget = Budget::new(2, Duration::from_secs(3600));
        assert!(!budget.exhausted());
        budget.spend();
        assert!(!budget.exhausted());
        budget.spend();
        assert!(budget.exhausted());
        let mut unlimited = Budget::unlimited();
        (0..1_000).for_each(|_| unlimited.spend());
        assert!(!unlimited.exhausted());
    }

    #[test]
    fn a_budget_runs_out_at_its_deadline() {
        assert!(Budget::new(MAX_FILTER_CALLS, Duration::ZERO).exhausted());
    }

    #[test]
    fn a_read_stopped_at_a_boundary_resumes_with_every_older_event_and_no_newer_one() {
        let boundary = 1_795_000_000_000;
        let cursor = resume_before(boundary);
        let at = |ts: i64, random: u128| {
            let json = serde_json::json!({
                "id": Ulid::from_parts(ts as u64, random).to_string(), "project": "demo", "env": "production",
                "timestamp": crate::event::from_unix_ms(ts).map(crate::event::timestamp_format::format),
                "received_at": crate::event::from_unix_ms(ts).map(crate::event::timestamp_format::format),
                "level": "info", "message": "m",
            });
            serde_json::from_value::<StoredEvent>(json).expect("an event")
        };
        assert!(cursor.is_after(&at(boundary - 1, u128::from(u64::MAX))));
        assert!(cursor.is_after(&at(boundary - 1, 0)));
        assert!(cursor.is_after(&at(boundary - 60_000, 7)));
        assert!(!cursor.is_after(&at(boundary, 0)));
    }
}
