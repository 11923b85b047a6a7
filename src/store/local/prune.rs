//! Deleting events from the embedded store: those older than their project's retention, and the
//! oldest ones while the store is over `retention.max_bytes`. A thread of its own decides what is
//! due and asks the writer thread for one small step at a time ([`STEP_ROWS`] rows per
//! transaction), so an ingest waits behind at most one step; each step keeps the minute counts
//! and the search index right in the same transaction.
//!
//! Size: SQLite does not shrink its file after deletes. Freed pages go to a freelist and later
//! writes reuse them, so the file stays at its high-water mark while the data in it shrinks. The
//! size that is measured is therefore the pages in use, `page_count - freelist_count`: keeping
//! that under the cap keeps the file at about the cap. (`auto_vacuum = INCREMENTAL` could give
//! pages back to the file system, but it can only be turned on by a `VACUUM` that rewrites the
//! whole file, and each release moves pages around inside the writer's transactions.)

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use rusqlite::{Connection, OptionalExtension, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::columns::{PART_ROWS, PART_SHIFT};
use super::text_index::{BLOCK_EVENTS, BLOCK_SHIFT};
use super::write::{Request, Writer, delete_span_grams, rebuild_parts};
use crate::clock::{DAY_MS, MINUTE_MS};
use crate::config::Config;
use crate::sqlite::CommitFailed;

/// Rows deleted per transaction: a few milliseconds of the writer's time.
pub(super) const STEP_ROWS: usize = 2_000;
/// How often the thread looks for work. Reads leave out expired events themselves (see
/// [`Retention::horizon_ms`]), so deletion may lag behind by this much and more.
pub(super) const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// Past `max_bytes`, the oldest events go until the store is this share of it.
const TRIM_TO: f64 = 0.9;

/// How long events are kept, and how large the store may grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Days kept for a project not in `by_project`; 0 = for ever.
    pub days: u32,
    /// Projects with their own `retention_days`.
    pub by_project: HashMap<String, u32>,
    /// Bytes in use past which the oldest events are deleted; 0 = no cap.
    pub max_bytes: u64,
}

impl Retention {
    /// `[retention]` and every project's `retention_days`.
    pub fn from_config(config: &Config) -> Retention {
        Retention {
            days: config.retention.days,
            by_project: config.projects.iter().filter_map(|p| Some((p.name.clone(), p.retention_days?))).collect(),
            max_bytes: config.retention.max_bytes,
        }
    }

    /// The oldest time (epoch ms) a project's events are kept at `now_ms`; `None`: for ever.
    pub(super) fn horizon_ms(&self, project: &str, now_ms: i64) -> Option<i64> {
        let days = self.by_project.get(project).copied().unwrap_or(self.days);
        (days > 0).then(|| now_ms.saturating_sub(i64::from(days) * DAY_MS))
    }

    fn expires_anything(&self) -> bool {
        self.days > 0 || self.by_project.values().any(|days| *days > 0)
    }
}

/// One step the writer is asked to take.
pub(super) enum Step {
    /// Delete at most `rows` events older than their project's horizon at `now_ms`.
    Expire { retention: Arc<Retention>, now_ms: i64, rows: usize },
    /// Delete the `rows` oldest events, by event time over every project.
    Trim { rows: usize },
    /// How many bytes the store uses, and how many events it holds.
    Measure,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StepDone {
    Deleted(usize),
    Size { used_bytes: u64, events: u64 },
}

/// What a pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Events older than their retention.
    pub expired: usize,
    /// The oldest events, for the size cap.
    pub trimmed: usize,
}

impl Writer {
    /// Takes one step, in a transaction of its own.
    pub(super) fn take_step(&mut self, conn: &mut Connection, step: &Step) -> anyhow::Result<StepDone> {
        if let Step::Measure = step {
            return measure(conn);
        }
        let tx = conn.transaction()?;
        let seqs = match step {
            Step::Expire { retention, now_ms, rows } => expired(&tx, retention, *now_ms, *rows)?,
            Step::Trim { rows } => oldest(&tx, *rows)?,
            Step::Measure => Vec::new(),
        };
        let deleted = self.delete(&tx, &seqs)?;
        tx.commit()?;
        // Rows of the block being filled leave it only now that their deletion is committed.
        let gone: HashSet<i64> = seqs.into_iter().collect();
        self.pending.retain(|(seq, _)| !gone.contains(seq));
        self.column_pending.retain(|(seq, ..)| !gone.contains(seq));
        let sealing = self.columns_upto..self.columns_handed_upto;
        self.deleted_while_sealing.extend(gone.iter().filter(|seq| sealing.contains(seq)).map(|seq| seq >> PART_SHIFT));
        Ok(StepDone::Deleted(deleted))
    }

    /// Deletes the rows, takes them off the minute counts, drops the index rows of blocks
    /// left with no row, and writes the columns of the parts they were in again. A block partly
    /// deleted keeps its index row: reads check every row a block names, so it only costs a
    /// little reading until the rest goes. Columns are counted without reading rows, so they
    /// must hold exactly the rows left.
    fn delete(&self, tx: &Transaction<'_>, seqs: &[i64]) -> anyhow::Result<usize> {
        let mut counts: HashMap<(i64, i64, i64), i64> = HashMap::new();
        let mut blocks = BTreeSet::new();
        let mut parts = BTreeSet::new();
        let mut part_blocks = BTreeSet::new();
        {
            let mut delete = tx.prepare_cached("DELETE FROM events WHERE seq = ?1 RETURNING stream, ts, level")?;
            for &seq in seqs {
                let row = delete
                    .query_row([seq], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)))
                    .optional()?;
                if let Some((stream, ts, level)) = row {
                    *counts.entry((stream, ts.div_euclid(MINUTE_MS), level)).or_default() += 1;
                    blocks.insert(seq >> BLOCK_SHIFT);
                    part_blocks.insert(seq >> PART_SHIFT);
                    if (self.columns_from..self.columns_upto).contains(&seq) {
                        parts.insert((seq >> PART_SHIFT, stream));
                    }
                }
            }
        }
        let deleted = counts.values().sum::<i64>();
        let mut take = tx.prepare_cached(
            "UPDATE counts SET n = n - ?4 WHERE stream = ?1 AND minute = ?2 AND level = ?3 RETURNING n",
        )?;
        let mut drop_empty =
            tx.prepare_cached("DELETE FROM counts WHERE stream = ?1 AND minute = ?2 AND level = ?3")?;
        for ((stream, minute, level), n) in counts {
            let left: Option<i64> = take.query_row([stream, minute, level, n], |row| row.get(0)).optional()?;
            if left.is_some_and(|left| left <= 0) {
                drop_empty.execute([stream, minute, level])?;
            }
        }
        let mut any_left = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM events WHERE seq >= ?1 AND seq < ?2)")?;
        for block in blocks {
            let first = block << BLOCK_SHIFT;
            // Blocks from `indexed_upto` on are not in the index yet.
            if first + BLOCK_EVENTS > self.indexed_upto
                || any_left.query_row([first, first + BLOCK_EVENTS], |row| row.get(0))?
            {
                continue;
            }
            tx.prepare_cached("DELETE FROM grams WHERE rowid = ?1")?.execute([block])?;
            tx.prepare_cached("DELETE FROM tokens WHERE rowid = ?1")?.execute([block])?;
        }
        for block in part_blocks {
            let first = block << PART_SHIFT;
            if !any_left.query_row([first, first + PART_ROWS], |row| row.get::<_, bool>(0))? {
                delete_span_grams(tx, block)?;
            }
        }
        for (block, stream) in parts {
            rebuild_parts(tx, block, Some(stream))?;
        }
        Ok(usize::try_from(deleted).unwrap_or(0))
    }
}

/// At most `rows` rows older than their project's horizon, stream by stream.
fn expired(tx: &Transaction<'_>, retention: &Retention, now_ms: i64, rows: usize) -> anyhow::Result<Vec<i64>> {
    let streams: Vec<(i64, String)> = tx
        .prepare_cached("SELECT id, project FROM streams")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut seqs = Vec::new();
    let mut find = tx.prepare_cached("SELECT seq FROM events WHERE stream = ?1 AND ts < ?2 LIMIT ?3")?;
    for (stream, project) in streams {
        let Some(horizon) = retention.horizon_ms(&project, now_ms) else { continue };
        let room = (rows - seqs.len()) as i64;
        seqs.extend(
            find.query_map([stream, horizon, room], |row| row.get::<_, i64>(0))?.collect::<Result<Vec<_>, _>>()?,
        );
        if seqs.len() >= rows {
            break;
        }
    }
    Ok(seqs)
}

/// The `rows` oldest rows by event time, over every stream (each stream's oldest come straight
/// off its time index; there are few streams).
fn oldest(tx: &Transaction<'_>, rows: usize) -> anyhow::Result<Vec<i64>> {
    let streams: Vec<i64> = tx
        .prepare_cached("SELECT id FROM streams")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut candidates: Vec<(i64, i64)> = Vec::new();
    let mut find = tx.prepare_cached("SELECT ts, seq FROM events WHERE stream = ?1 ORDER BY ts, id LIMIT ?2")?;
    for stream in streams {
        let found = find.query_map([stream, rows as i64], |row| Ok((row.get(0)?, row.get(1)?)))?;
        candidates.extend(found.collect::<rusqlite::Result<Vec<_>>>()?);
    }
    candidates.sort_unstable();
    Ok(candidates.into_iter().take(rows).map(|(_, seq)| seq).collect())
}

/// Bytes in the pages in use (not the file: see the module's notes), and the events counted.
fn measure(conn: &Connection) -> anyhow::Result<StepDone> {
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0));
    let used_pages = pragma("page_count")? - pragma("freelist_count")?;
    let used_bytes = u64::try_from(used_pages * pragma("page_size")?).unwrap_or(0);
    let events: i64 = conn.query_row("SELECT coalesce(sum(n), 0) FROM counts", [], |row| row.get(0))?;
    Ok(StepDone::Size { used_bytes, events: u64::try_from(events).unwrap_or(0) })
}

/// Sends one step to the writer and waits for it (from a thread outside the runtime).
fn ask(writer: &mpsc::WeakSender<Request>, step: Step) -> anyhow::Result<StepDone> {
    let stopped = || anyhow!("the embedded store writer has stopped");
    let sender = writer.upgrade().ok_or_else(stopped)?;
    let (reply, answer) = oneshot::channel();
    let task = move |writer: &mut Writer, conn: &mut Connection| {
        let result = writer.take_step(conn, &step).map_err(|e| {
            tracing::error!(error = %format!("{e:#}"), "a deletion step failed");
            CommitFailed::new(e)
        });
        let _ = reply.send(result);
    };
    sender.blocking_send(Request::Maintain(Box::new(task))).map_err(|_| stopped())?;
    drop(sender);
    answer.blocking_recv().map_err(|_| stopped())?.context("a deletion step failed")
}

fn deleted(done: StepDone) -> usize {
    match done {
        StepDone::Deleted(n) => n,
        StepDone::Size { .. } => 0,
    }
}

/// One pass: every expired event, then, past the cap, the oldest until 10 % below it.
pub(super) fn pass(
    retention: &Arc<Retention>,
    writer: &mpsc::WeakSender<Request>,
    now_ms: i64,
) -> anyhow::Result<Pruned> {
    let mut pruned = Pruned::default();
    if retention.expires_anything() {
        loop {
            let step = Step::Expire { retention: Arc::clone(retention), now_ms, rows: STEP_ROWS };
            let n = deleted(ask(writer, step)?);
            pruned.expired += n;
            if n < STEP_ROWS {
                break;
            }
        }
    }
    if retention.max_bytes > 0 {
        pruned.trimmed = trim(retention.max_bytes, writer)?;
    }
    Ok(pruned)
}

/// Past `max_bytes`, deletes the oldest events until the bytes in use are 10 % below it; returns
/// how many. Deleting a row frees less than the average row takes (pages partly emptied stay in
/// use, the search index gives its space back only as it merges), so the rows to delete are
/// estimated in a few rounds: first from the average row, then from what the last round freed
/// per row. A pass that still leaves the store over the cap is followed by the next one.
fn trim(max_bytes: u64, writer: &mpsc::WeakSender<Request>) -> anyhow::Result<usize> {
    const ROUNDS: usize = 4;
    let target = max_bytes as f64 * TRIM_TO;
    let StepDone::Size { mut used_bytes, events } = ask(writer, Step::Measure)? else { return Ok(0) };
    if used_bytes <= max_bytes || events == 0 {
        return Ok(0);
    }
    let first_used = used_bytes;
    let mut bytes_per_row = used_bytes as f64 / events as f64;
    let mut trimmed = 0;
    for _ in 0..ROUNDS {
        let mut rows = ((used_bytes as f64 - target) / bytes_per_row).ceil() as usize;
        let mut round = 0;
        while rows > 0 {
            let n = deleted(ask(writer, Step::Trim { rows: rows.min(STEP_ROWS) })?);
            if n == 0 {
                break;
            }
            round += n;
            rows = rows.saturating_sub(n);
        }
        trimmed += round;
        let StepDone::Size { used_bytes: now_used, .. } = ask(writer, Step::Measure)? else { break };
        let freed = used_bytes.saturating_sub(now_used);
        used_bytes = now_used;
        if round == 0 || freed == 0 || used_bytes as f64 <= target {
            break;
        }
        bytes_per_row = freed as f64 / round as f64;
    }
    tracing::info!(before = first_used, after = used_bytes, max_bytes, deleted = trimmed, "trimmed the oldest events");
    Ok(trimmed)
}

/// The thread that runs a pass every so often ([`PRUNE_EVERY`] in service); it ends when this is dropped or the
/// writer has stopped.
pub(super) struct Pruner {
    _stop: std_mpsc::Sender<()>,
}

impl Pruner {
    /// The first pass runs after `every` too: at start-up the store has enough to do.
    pub(super) fn spawn(
        retention: Arc<Retention>,
        writer: mpsc::WeakSender<Request>,
        every: Duration,
    ) -> anyhow::Result<Pruner> {
        let (stop, stopped) = std_mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("local-store-pruner".into())
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(every) {
                        Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    if writer.upgrade().is_none() {
                        return;
                    }
                    let now_ms = crate::event::unix_ms(time::OffsetDateTime::now_utc());
                    match pass(&retention, &writer, now_ms) {
                        Ok(pruned) if pruned.expired > 0 => {
                            tracing::info!(events = pruned.expired, "deleted expired events")
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(error = %format!("{error:#}"), "deleting old events"),
                    }
                }
            })
            .context("starting the pruner thread")?;
        Ok(Pruner { _stop: stop })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use time::{Duration as Span, OffsetDateTime};

    use super::*;
    use crate::event::{Level, StoredEvent, unix_ms};
    use crate::search::Query;
    use crate::store::histogram::{Buckets, Histogram};
    use crate::store::local::LocalStore;
    use crate::store::local::tests::{TEST_TIME_LIMIT, event, project, query};
    use crate::store::{EventQuery, LogStore};

    type Counts = BTreeMap<(i64, i64, i64), i64>;

    fn from_unix_ms(ms: i64) -> OffsetDateTime {
        crate::event::from_unix_ms(ms).expect("a time in range")
    }

    /// The counts table, and the same counted from the rows.
    fn counts_and_recount(dir: &Path) -> (Counts, Counts) {
        let conn = Connection::open(dir.join("events.db")).expect("db");
        let read = |sql: &str| -> Counts {
            let mut stmt = conn.prepare(sql).expect("sql");
            let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get(3)?))).expect("query");
            rows.collect::<rusqlite::Result<_>>().expect("rows")
        };
        (
            read("SELECT stream, minute, level, n FROM counts"),
            read("SELECT stream, ts / 60000, level, count(*) FROM events GROUP BY 1, 2, 3"),
        )
    }

    /// Index blocks with no row left, and how many blocks are indexed.
    fn empty_indexed_blocks(dir: &Path) -> (Vec<i64>, i64) {
        let conn = Connection::open(dir.join("events.db")).expect("db");
        let blocks: Vec<i64> = conn
            .prepare("SELECT rowid FROM grams UNION SELECT rowid FROM tokens")
            .expect("sql")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        let empty = blocks
            .iter()
            .copied()
            .filter(|b| {
                let rows: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM events WHERE seq >= ?1 AND seq < ?2",
                        [b << 5, (b + 1) << 5],
                        |r| r.get(0),
                    )
                    .expect("count");
                rows == 0
            })
            .collect();
        let indexed_upto: i64 = conn
            .query_row("SELECT value FROM index_state WHERE name = 'indexed_upto'", [], |r| r.get(0))
            .expect("state");
        (empty, indexed_upto >> BLOCK_SHIFT)
    }

    async fn prune_at(store: &LocalStore, retention: Retention, now_ms: i64) -> Pruned {
        let (retention, writer) = (Arc::new(retention), store.appends.downgrade());
        tokio::task::spawn_blocking(move || pass(&retention, &writer, now_ms)).await.expect("task").expect("pass")
    }

    fn ids(events: &[&StoredEvent]) -> Vec<ulid::Ulid> {
        let mut sorted = events.to_vec();
        sorted.sort_by_key(|e| std::cmp::Reverse((e.timestamp_ms(), e.id)));
        sorted.iter().map(|e| e.id).collect()
    }

    #[tokio::test]
    async fn expired_events_are_deleted_with_their_counts_and_index_blocks_and_the_rest_reads_as_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open");
        // The horizon falls 30 s into a minute: that minute is deleted in part.
        let now_ms = unix_ms(OffsetDateTime::now_utc()).div_euclid(MINUTE_MS) * MINUTE_MS + 30_000;
        let horizon = now_ms - DAY_MS;
        let level = |i: i64| ["debug", "info", "warn", "error", "fatal"][(i % 5) as usize];
        let env = |i: i64| if i % 3 == 0 { "dev" } else { "production" };
        // Oldest first over three days (so whole blocks expire), then around the horizon, then
        // a few old ones written last (still in the block being filled).
        let mut events: Vec<StoredEvent> = (0..3000)
            .map(|i| {
                event(&format!("payment number {i}"), level(i), env(i), from_unix_ms(now_ms - 3 * DAY_MS + i * 86_400))
            })
            .collect();
        for (i, offset) in [-25_000, -5_000, 5_000, 25_000].into_iter().enumerate() {
            events.push(event(
                &format!("edge number {i}"),
                level(i as i64),
                "production",
                from_unix_ms(horizon + offset),
            ));
        }
        for i in 0..10 {
            events.push(event(
                &format!("late number {i}"),
                "error",
                "production",
                from_unix_ms(now_ms - 2 * DAY_MS - i),
            ));
        }
        for chunk in events.chunks(500) {
            store.append(chunk.to_vec()).await.expect("append");
        }
        let retention = Retention { days: 0, by_project: [("demo".to_string(), 1)].into(), max_bytes: 0 };
        let pruned = prune_at(&store, retention, now_ms).await;

        let expired = events.iter().filter(|e| e.timestamp_ms() < horizon).count();
        assert!(expired > STEP_ROWS, "more than one step's worth: {expired}");
        assert_eq!(pruned, Pruned { expired, trimmed: 0 });
        let (counts, recount) = counts_and_recount(dir.path());
        assert_eq!(counts, recount, "the minute counts agree with the rows left");
        let (empty, indexed) = empty_indexed_blocks(dir.path());
        assert_eq!(empty, Vec::<i64>::new(), "no index row is left for a block with no rows");
        assert!(indexed > 40, "blocks were indexed ({indexed}) and most of them deleted");

        let all_time = |env: &str| EventQuery {
            env: env.into(),
            from: from_unix_ms(now_ms - 4 * DAY_MS),
            to: from_unix_ms(now_ms),
            limit: 10_000,
            ..query(from_unix_ms(now_ms))
        };
        for env in ["production", "dev"] {
            let survivors: Vec<&StoredEvent> =
                events.iter().filter(|e| e.env == env && e.timestamp_ms() >= horizon).collect();
            let page = store.events(&all_time(env)).await.expect("read");
            assert_eq!(page.events.iter().map(|e| e.id).collect::<Vec<_>>(), ids(&survivors), "{env}");

            let q = all_time(env);
            let buckets = Buckets::for_range(q.from, q.to);
            let mut expected = Histogram::empty(buckets);
            survivors.iter().for_each(|e| expected.add(e));
            assert_eq!(store.histogram(&q, buckets).await.expect("histogram").counts, expected.counts, "{env}");
            let counts = store.level_counts("demo", env, q.from, q.to).await.expect("counts");
            for level in Level::ALL {
                assert_eq!(counts.get(level), survivors.iter().filter(|e| e.level == level).count() as u64);
            }
        }
        let group = project().own_group("production").to_string();
        // Each query with whether everything it matched was deleted.
        let queries = [
            ("payment", false),
            ("\"number 7\"", true),
            ("\"number 10\"", true),
            ("\"number 2999\"", false),
            ("edge", false),
            ("late", true),
            ("number level:error", false),
        ];
        for (text, all_gone) in queries {
            let search: Query = text.parse().expect("query");
            let matching = |e: &&StoredEvent| e.env == "production" && search.matches(e, &group);
            let survivors: Vec<&StoredEvent> =
                events.iter().filter(matching).filter(|e| e.timestamp_ms() >= horizon).collect();
            assert_eq!(survivors.is_empty(), all_gone, "{text}");
            let page = store.events(&EventQuery { search, ..all_time("production") }).await.expect("search");
            assert_eq!(page.events.iter().map(|e| e.id).collect::<Vec<_>>(), ids(&survivors), "{text}");
        }
    }

    #[tokio::test]
    async fn reads_leave_out_expired_events_before_they_are_deleted_and_a_project_may_keep_them_longer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let retention = Retention { days: 1, by_project: HashMap::new(), max_bytes: 0 };
        let store = LocalStore::open_with_retention(dir.path(), TEST_TIME_LIMIT, retention).expect("open");
        let now = OffsetDateTime::now_utc();
        let old = event("old news", "error", "production", now - Span::days(2));
        let new = event("fresh news", "error", "production", now - Span::hours(1));
        store.append(vec![old.clone(), new.clone()]).await.expect("append");
        let week = EventQuery { from: now - Span::days(7), ..query(now) };
        let page = store.events(&week).await.expect("read");
        assert_eq!(page.events, std::slice::from_ref(&new));
        assert_eq!(store.event(project(), "production", None, old.id).await.expect("by id"), None);
        let counts = store.level_counts("demo", "production", week.from, now).await.expect("counts");
        assert_eq!(counts.get(Level::Error), 1);
        let histogram = store.histogram(&week, Buckets::for_range(week.from, now)).await.expect("histogram");
        assert_eq!(histogram.counts.iter().flatten().sum::<u64>(), 1);

        // The background pass has not run yet (it runs 30 s after the start): the row is still there.
        let conn = Connection::open(dir.path().join("events.db")).expect("db");
        let rows = || conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)).expect("count");
        assert_eq!(rows(), 2);
        assert_eq!(store.prune().await.expect("prune"), Pruned { expired: 1, trimmed: 0 });
        assert_eq!(rows(), 1);

        let longer = Retention { days: 1, by_project: [("demo".to_string(), 3)].into(), max_bytes: 0 };
        let kept = event("kept news", "info", "production", now - Span::days(2));
        store.append(vec![kept]).await.expect("append");
        let pruned = prune_at(&store, longer, unix_ms(now)).await;
        assert_eq!((pruned, rows()), (Pruned::default(), 2), "the project's 3 days win over the default 1");
    }

    #[tokio::test]
    async fn after_every_event_expired_a_restart_does_not_reuse_the_numbers_of_indexed_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        {
            let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open");
            let old: Vec<StoredEvent> = (0..64)
                .map(|i| event(&format!("old {i}"), "info", "production", now - Span::days(3) + Span::seconds(i)))
                .collect();
            store.append(old).await.expect("append");
            let retention = Retention { days: 1, ..Retention::default() };
            assert_eq!(prune_at(&store, retention, unix_ms(now)).await.expired, 64);
        }
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("reopen");
        let fresh: Vec<StoredEvent> =
            (0..40).map(|i| event(&format!("fresh {i}"), "info", "production", now - Span::minutes(i))).collect();
        store.append(fresh.clone()).await.expect("append");
        let found = store.events(&EventQuery { search: "fresh".parse().expect("q"), ..query(now) }).await.expect("q");
        assert_eq!(found.events.len(), 40, "found through the index and the block being filled");
    }

    #[tokio::test]
    async fn the_background_pass_deletes_expired_events_on_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let retention = Retention { days: 1, ..Retention::default() };
        let every = Duration::from_millis(50);
        let store = LocalStore::open_pruning_every(dir.path(), TEST_TIME_LIMIT, retention, every).expect("open");
        let now = OffsetDateTime::now_utc();
        let events: Vec<StoredEvent> = (0..100)
            .map(|i| event("tick", "info", "production", now - Span::hours(47) + Span::hours(i % 2 * 46)))
            .collect();
        store.append(events).await.expect("append");
        let conn = Connection::open(dir.path().join("events.db")).expect("db");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let old: i64 = conn
                .query_row("SELECT count(*) FROM events WHERE ts < ?1", [unix_ms(now - Span::days(1))], |r| r.get(0))
                .expect("count");
            if old == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{old} expired events still there");
            tokio::time::sleep(every).await;
        }
        let left: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).expect("count");
        assert_eq!(left, 50, "the recent half stays");
    }

    fn used_bytes(dir: &Path) -> u64 {
        let conn = Connection::open(dir.join("events.db")).expect("db");
        match measure(&conn).expect("measure") {
            StepDone::Size { used_bytes, .. } => used_bytes,
            StepDone::Deleted(_) => unreachable!(),
        }
    }

    #[tokio::test]
    async fn past_max_bytes_the_oldest_events_go_until_the_store_is_below_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open");
        let now = OffsetDateTime::now_utc();
        // Messages that do not compress to nothing: a number hashed into words.
        let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
        let message = |i: u64| {
            let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            (0..24)
                .map(|_| {
                    x = x.rotate_left(7) ^ (x >> 3);
                    words[(x % 10) as usize]
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let events: Vec<StoredEvent> = (0..12_000u64)
            .map(|i| {
                event(
                    &format!("{} {i}", message(i)),
                    "info",
                    if i % 4 == 0 { "dev" } else { "production" },
                    now - Span::seconds(12_000 - i as i64 * 97 % 12_000),
                )
            })
            .collect();
        for chunk in events.chunks(1000) {
            store.append(chunk.to_vec()).await.expect("append");
        }
        let before = used_bytes(dir.path());
        let max_bytes = before / 2;
        let retention = Retention { max_bytes, ..Retention::default() };
        let mut passes = 0;
        let mut trimmed = 0;
        while used_bytes(dir.path()) > max_bytes {
            passes += 1;
            assert!(passes <= 2, "still {} bytes over {max_bytes} after 2 passes", used_bytes(dir.path()));
            trimmed += prune_at(&store, retention.clone(), unix_ms(now)).await.trimmed;
        }
        let after = used_bytes(dir.path());
        assert!(after as f64 <= max_bytes as f64 * 0.9, "{after} is 10 % below {max_bytes}");
        assert!(after as f64 >= max_bytes as f64 * 0.7, "{after}: not much more than needed went");
        let conn = Connection::open(dir.path().join("events.db")).expect("db");
        let (left, oldest_left): (i64, i64) =
            conn.query_row("SELECT count(*), min(ts) FROM events", [], |r| Ok((r.get(0)?, r.get(1)?))).expect("rows");
        assert_eq!(left as usize, events.len() - trimmed);
        let newest_gone = events.iter().map(|e| e.timestamp_ms()).filter(|ts| *ts < oldest_left).max();
        assert_eq!(
            events.iter().filter(|e| e.timestamp_ms() < oldest_left).count(),
            trimmed,
            "the oldest went: {newest_gone:?}"
        );
        let (counts, recount) = counts_and_recount(dir.path());
        assert_eq!(counts, recount);

        // The file keeps its size; new events fill the pages the old ones left.
        let file = || std::fs::metadata(dir.path().join("events.db")).expect("file").len();
        let checkpoint =
            |conn: &Connection| conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
        checkpoint(&conn);
        let trimmed_file = file();
        assert!(trimmed_file >= before, "SQLite does not shrink the file: {trimmed_file} < {before}");
        let more: Vec<StoredEvent> =
            (20_000..23_000u64).map(|i| event(&format!("{} {i}", message(i)), "info", "production", now)).collect();
        store.append(more).await.expect("append");
        checkpoint(&conn);
        assert_eq!(file(), trimmed_file, "3,000 new events fit in the freed pages");
    }
}
