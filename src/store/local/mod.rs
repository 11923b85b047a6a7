//! The embedded store: SQLite on local disk (`data_dir/events.db`), the default backend.
//!
//! One writer thread owns the write connection and commits whatever requests are waiting in one
//! transaction (group commit): many requests share one fsync. Reads run beside the writer (WAL)
//! on pools of read connections ([`crate::sqlite::ReadPool`]), in three lanes so that a slow
//! kind of read cannot hold up another: searches that may scan every event of their range, quick
//! lookups (the newest page, one event, the home page's counts), and the readiness check.
//! Each read is stopped at a time limit; a read that finds its lane busy past a short wait, or
//! runs past the limit, is refused with a [`ReadRefused`] the caller can act on.

mod backfill;
mod by_columns;
mod codec;
#[cfg(test)]
mod column_tests;
mod columns;
mod prune;
mod read;
mod schema;
mod sealer;
mod text_index;
mod write;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use ulid::Ulid;

use self::codec::{BodyDecoder, BodyEncoder, NewestDictionary};
use self::prune::Pruner;
pub use self::prune::{Pruned, Retention};
use self::read::{Candidates, Scope, Sink};
use self::text_index::Need;
use self::write::{Request, Row, Writer, level_code};
use super::context::{Around, Context};
use super::histogram::{Buckets, Histogram};
use super::{EventPage, EventQuery, Group, GroupKind, LevelCounts, LogStore, ReadRefused};
use crate::event::{Level, StoredEvent, unix_ms};
use crate::project::Project;
use crate::search::Query;
use crate::sqlite::{self, PoolLimits, ReadError, ReadPool};

/// Requests merged into one transaction at most; bounds the latency of the first one.
const MAX_REQUESTS_PER_COMMIT: usize = 256;
/// How many append requests may wait for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 1024;
/// Most connections for searches, however many cores: a scan is CPU-bound, so more at once
/// than cores only share them.
const MAX_SEARCH_CONNECTIONS: usize = 8;
/// Connections for quick lookups. They return within milliseconds, so two keep the pages
/// answering while every search connection is busy.
const LOOKUP_CONNECTIONS: usize = 2;
/// How long a read waits for a connection of its lane before it is refused (503, `Retry-After`).
const MAX_READ_WAIT: Duration = Duration::from_secs(3);
/// The readiness check has a connection of its own, waits at most this for it and may run at
/// most this long: a probe answers quickly either way.
const READY_CHECK_LIMIT: Duration = Duration::from_secs(1);

pub struct LocalStore {
    /// `events.db`: also where the shared state's queue is ([`LogStore::queue_db`]).
    path: PathBuf,
    appends: mpsc::Sender<Request>,
    /// What bodies are compressed with; the writer replaces it as it trains new ones.
    dictionary: Arc<NewestDictionary>,
    /// Reads that may check many events: a search or a level filter.
    searches: ReadPool,
    /// Reads that stop early on a key: the newest page, one event, counts.
    lookups: ReadPool,
    /// The readiness check alone, so that `/readyz` never waits behind a page or a search.
    ready: ReadPool,
    /// Suggested to a caller refused for a busy lane: by then every running read has ended.
    retry_after_secs: u64,
    /// How long events are kept: reads leave out what is past it even before it is deleted.
    retention: Arc<Retention>,
    /// Deletes what is past the retention; stops when the store is dropped.
    _pruner: Option<Pruner>,
    /// Gives the rows of a store from before columns their columns; stops when done or dropped.
    _backfill: backfill::Backfill,
}

/// Which lane a read goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Search,
    Lookup,
}

impl LocalStore {
    /// Opens (or creates) the store under `data_dir` and starts its writer thread; a read
    /// running longer than `query_time_limit` is stopped. A store of the first layout is moved
    /// into the current one first.
    pub fn open(data_dir: &Path, query_time_limit: Duration) -> anyhow::Result<LocalStore> {
        LocalStore::open_with_retention(data_dir, query_time_limit, Retention::default())
    }

    /// [`LocalStore::open`], deleting events past `retention` in the background.
    pub fn open_with_retention(
        data_dir: &Path,
        query_time_limit: Duration,
        retention: Retention,
    ) -> anyhow::Result<LocalStore> {
        LocalStore::open_pruning_every(data_dir, query_time_limit, retention, prune::PRUNE_EVERY)
    }

    fn open_pruning_every(
        data_dir: &Path,
        query_time_limit: Duration,
        retention: Retention,
        every: Duration,
    ) -> anyhow::Result<LocalStore> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let path = data_dir.join("events.db");
        // 16 MB of page cache holds the pages ingest writes to (the tables' and indexes' right
        // edges, the search index's newest segments). Not more: while the file is under 1 GiB,
        // SQLite walks the whole cache at every commit after a B-tree split renumbered pages
        // (`balance_nonroot` moves a page through the number past 1 GiB), which at 64 MB was 4 %
        // of ingest's CPU.
        let mut conn = sqlite::open_durable(&path, 16_384)?;
        schema::create(&conn)?;
        let dictionary = Arc::new(NewestDictionary::default());
        let mut writer = Writer::load(&conn, Arc::clone(&dictionary))?;
        writer.upgrade_first_layout(&mut conn)?;
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let lane = |connections| PoolLimits { connections, max_wait: MAX_READ_WAIT, time_limit: query_time_limit };
        let no_functions = |_: &Connection| Ok(());
        let searches = ReadPool::open(&path, lane(cores.clamp(2, MAX_SEARCH_CONNECTIONS)), no_functions)?;
        let lookups = ReadPool::open(&path, lane(LOOKUP_CONNECTIONS), no_functions)?;
        let ready_limits = PoolLimits { connections: 1, max_wait: READY_CHECK_LIMIT, time_limit: READY_CHECK_LIMIT };
        let ready = ReadPool::open(&path, ready_limits, no_functions)?;
        let (seal_jobs, jobs) = std::sync::mpsc::channel();
        writer.sealer = Some(seal_jobs);
        // Complete blocks the last run left unsealed go to the sealer now, not at the first append.
        writer.seal_complete_columns();
        let appends = sqlite::spawn_writer(
            "local-store-writer",
            conn,
            QUEUE_DEPTH,
            MAX_REQUESTS_PER_COMMIT,
            move |conn, batch| writer.commit_round(conn, batch),
        )?;
        sealer::spawn(jobs, appends.downgrade())?;
        let retry_after_secs = (query_time_limit.as_secs() + u64::from(query_time_limit.subsec_nanos() > 0)).max(1);
        let retention = Arc::new(retention);
        let pruner = (*retention != Retention::default())
            .then(|| Pruner::spawn(Arc::clone(&retention), appends.downgrade(), every))
            .transpose()?;
        let backfill = backfill::Backfill::spawn(appends.downgrade())?;
        Ok(LocalStore {
            path,
            appends,
            dictionary,
            searches,
            lookups,
            ready,
            retry_after_secs,
            retention,
            _pruner: pruner,
            _backfill: backfill,
        })
    }

    /// Stores the events and, in the same commit, `entry` in the queue.
    async fn append_with(&self, events: Vec<StoredEvent>, entry: Option<String>) -> anyhow::Result<()> {
        if events.is_empty() && entry.is_none() {
            return Ok(());
        }
        let mut encoder = BodyEncoder::new(self.dictionary.get());
        let rows = events.iter().map(|e| Row::from_event(e, &mut encoder)).collect::<anyhow::Result<_>>()?;
        // Freed here, on the thread that made them, not after the commit wherever the task then
        // runs: an event with nested attributes is dozens of allocations, and a free from another
        // thread is mimalloc's slow path.
        drop(events);
        let (reply, answer) = oneshot::channel();
        self.appends
            .send(Request::Append(rows, entry, reply))
            .await
            .map_err(|_| anyhow!("the embedded store writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow!("the embedded store writer has stopped"))?
            .context("embedded store commit failed")
    }

    /// Deletes now what the background pass would: expired events, then the oldest past the cap.
    pub async fn prune(&self) -> anyhow::Result<Pruned> {
        let (retention, writer) = (Arc::clone(&self.retention), self.appends.downgrade());
        let now_ms = unix_ms(OffsetDateTime::now_utc());
        tokio::task::spawn_blocking(move || prune::pass(&retention, &writer, now_ms)).await?
    }

    /// The oldest time a read of `project` may see: its retention's horizon (the deleter may
    /// not have got there yet).
    fn horizon_ms(&self, project: &str) -> i64 {
        self.retention.horizon_ms(project, unix_ms(OffsetDateTime::now_utc())).unwrap_or(i64::MIN)
    }

    /// The rows of the query's range and levels, before its cursor, within the retention (the
    /// stream is found in the read).
    fn scope(&self, query: &EventQuery<'_>) -> Scope {
        Scope {
            stream: 0,
            from_ms: unix_ms(query.from).max(self.horizon_ms(&query.project.name)),
            to_ms: unix_ms(query.to),
            levels: query.levels.iter().map(|l| level_code(*l)).collect(),
            before: query.cursor.map(|c| (c.timestamp_ms, c.id.to_bytes())),
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        lane: Lane,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let pool = match lane {
            Lane::Search => &self.searches,
            Lane::Lookup => &self.lookups,
        };
        pool.read(work).await.map_err(|error| match error {
            ReadError::Busy { .. } => ReadRefused::Busy { retry_after_secs: self.retry_after_secs }.into(),
            ReadError::TooSlow { limit } => ReadRefused::TooSlow { limit_secs: limit.as_secs_f64() }.into(),
            other => anyhow::Error::new(other).context("reading the embedded store"),
        })
    }
}

/// Whether the read names the one group this store holds (the project's own).
fn holds_group(query: &EventQuery<'_>) -> bool {
    query.group.as_deref().is_none_or(|g| g == query.project.own_group(&query.env))
}

/// Without a search or level filter the newest events of a range come straight off the
/// (stream, ts, id) key; with one, a read may check many events.
fn lane(query: &EventQuery<'_>) -> Lane {
    if query.search.root().is_some() || !query.levels.is_empty() { Lane::Search } else { Lane::Lookup }
}

/// Where a search reads its events: the blocks the search index names (and the rows not
/// indexed yet) when they are few; else the column store when the search tests only what it
/// keeps; else every row of the range, newest first.
enum Plan {
    Blocks(Candidates),
    /// Every part of the range, or only those holding a block the index names.
    Columns(Option<Candidates>),
    ByTime,
}

/// What reading one part's columns costs, in rows decoded from their bodies (~3 µs each): a
/// search the index narrows to fewer rows than this per part of its range reads those rows.
const ROWS_WORTH_A_PART: usize = 128;

impl Plan {
    fn of(conn: &Connection, scope: &Scope, search: &Query, need: Option<&Need>) -> rusqlite::Result<Plan> {
        let listed = match need {
            Some(need) => read::candidate_blocks(conn, need)?,
            None => None,
        };
        if search.root().is_none() || !columns::answers(search) {
            return Ok(listed.map_or(Plan::ByTime, Plan::Blocks));
        }
        let Some(listed) = listed else { return Ok(Plan::Columns(None)) };
        // Rows named against the parts holding them (at most the range's).
        let parts: std::collections::HashSet<i64> =
            listed.blocks.iter().map(|&block| columns::part_of_index_block(block)).collect();
        let parts = parts.len().min(by_columns::parts_in_range(conn, scope)?);
        Ok(if listed.blocks.len() * by_columns::BLOCK_ROWS <= parts * ROWS_WORTH_A_PART {
            Plan::Blocks(listed)
        } else {
            Plan::Columns(Some(listed))
        })
    }
}

/// A page read newest first: the first `limit + 1` matches.
struct FirstMatches {
    limit: usize,
    events: Vec<StoredEvent>,
}

impl Sink for FirstMatches {
    fn take(&mut self, event: StoredEvent) -> bool {
        self.events.push(event);
        self.events.len() <= self.limit
    }
}

/// A page read in no order: the newest `keep` of every match.
struct NewestMatches {
    keep: usize,
    heap: BinaryHeap<Reverse<ByTime>>,
}

/// An event ordered newest-last by (time, id).
struct ByTime(i64, [u8; 16], StoredEvent);

impl PartialEq for ByTime {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for ByTime {}
impl PartialOrd for ByTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

impl Sink for NewestMatches {
    /// Once the page is full, an event older than all of it is not decoded at all.
    fn wants(&self, ts: i64, id: &[u8]) -> bool {
        self.heap.len() < self.keep
            || self.heap.peek().is_none_or(|Reverse(oldest)| (ts, id) > (oldest.0, &oldest.1[..]))
    }

    fn take(&mut self, event: StoredEvent) -> bool {
        self.heap.push(Reverse(ByTime(event.timestamp_ms(), event.id.to_bytes(), event)));
        if self.heap.len() > self.keep {
            self.heap.pop();
        }
        true
    }
}

impl Sink for Histogram {
    fn take(&mut self, event: StoredEvent) -> bool {
        self.add(&event);
        true
    }
}

/// The levels a read keeps and the search it still runs: the levels asked for (all when none)
/// that the search requires, and the search — none left when it tests only levels
/// ([`Query::only_levels`]), so that the level counts and the time index answer it. `None` when
/// no level is left.
fn levels_to_read(asked: &[Level], search: Query) -> Option<(Vec<i64>, Query)> {
    let mut levels: Vec<Level> = if asked.is_empty() { Level::ALL.to_vec() } else { asked.to_vec() };
    let (required, search) = match search.only_levels() {
        Some(only) => (Some(only), Query::default()),
        None => (search.required_levels(), search),
    };
    if let Some(required) = required {
        levels.retain(|level| required.contains(level));
    }
    match levels.len() {
        0 => None,
        n if n == Level::ALL.len() => Some((Vec::new(), search)),
        _ => Some((levels.into_iter().map(level_code).collect(), search)),
    }
}

#[async_trait]
impl LogStore for LocalStore {
    async fn append(&self, events: Vec<StoredEvent>) -> anyhow::Result<()> {
        self.append_with(events, None).await
    }

    async fn append_queued(&self, events: Vec<StoredEvent>, entry: String) -> anyhow::Result<()> {
        self.append_with(events, Some(entry)).await
    }

    fn queue_db(&self) -> Option<PathBuf> {
        Some(self.path.clone())
    }

    async fn groups(&self, project: &Project, env: &str) -> anyhow::Result<Vec<Group>> {
        Ok(vec![Group { name: project.own_group(env).to_string(), kind: GroupKind::Ingest }])
    }

    async fn events(&self, query: &EventQuery<'_>) -> anyhow::Result<EventPage> {
        // The embedded store holds only the project's own group.
        if !holds_group(query) {
            return Ok(EventPage::default());
        }
        let (project, env, limit) = (query.project.name.clone(), query.env.clone(), query.limit);
        let group = query.group_name().to_string();
        let Some((levels, search)) = levels_to_read(&query.levels, query.search.clone()) else {
            return Ok(EventPage::default());
        };
        let mut scope = Scope { levels, ..self.scope(query) };
        let events = self
            .read(lane(query), move |conn| {
                let Some(stream) = read::stream(conn, &project, &env)? else { return Ok(Vec::new()) };
                scope.stream = stream;
                let need = Need::of(&search);
                let mut checker = read::Checker::new(need.as_ref(), &search, &group);
                let names = by_columns::Names { env: &env, group: &group };
                let mut newest = NewestMatches { keep: limit + 1, heap: BinaryHeap::new() };
                match Plan::of(conn, &scope, &search, need.as_ref())? {
                    Plan::ByTime => {
                        let mut page = FirstMatches { limit, events: Vec::with_capacity(limit + 1) };
                        read::by_time(conn, &scope, &mut checker, &mut page)?;
                        return Ok(page.events);
                    }
                    Plan::Columns(named) => {
                        by_columns::page_by_columns(conn, &scope, (&names, named.as_ref()), &mut checker, &mut newest)?;
                    }
                    Plan::Blocks(blocks) => read::in_blocks(conn, &scope, &blocks, &mut checker, &mut newest)?,
                }
                Ok(newest.heap.into_iter().map(|Reverse(ByTime(_, _, event))| event).collect())
            })
            .await?;
        Ok(EventPage::from_candidates(events, limit))
    }

    async fn histogram(&self, query: &EventQuery<'_>, buckets: Buckets) -> anyhow::Result<Histogram> {
        let mut histogram = Histogram::empty(buckets);
        if !holds_group(query) {
            return Ok(histogram);
        }
        let (project, env) = (query.project.name.clone(), query.env.clone());
        let group = query.group_name().to_string();
        let Some((levels, search)) = levels_to_read(&query.levels, query.search.clone()) else { return Ok(histogram) };
        let mut scope = Scope { levels, before: None, ..self.scope(query) };
        let lane = if search.root().is_none() { Lane::Lookup } else { Lane::Search };
        self.read(lane, move |conn| {
            let Some(stream) = read::stream(conn, &project, &env)? else { return Ok(histogram) };
            scope.stream = stream;
            if search.root().is_none() {
                // Buckets are whole minutes on minute boundaries: a minute falls in one bucket.
                read::by_minute(conn, &scope, |ts, level, n| histogram.add_count(ts, level, n))?;
            } else {
                let need = Need::of(&search);
                let mut checker = read::Checker::new(need.as_ref(), &search, &group);
                let names = by_columns::Names { env: &env, group: &group };
                match Plan::of(conn, &scope, &search, need.as_ref())? {
                    Plan::ByTime => read::by_time(conn, &scope, &mut checker, &mut histogram)?,
                    Plan::Columns(named) => by_columns::chart_by_columns(
                        conn,
                        &scope,
                        (&names, named.as_ref()),
                        &mut checker,
                        &mut histogram,
                    )?,
                    Plan::Blocks(blocks) => read::in_blocks(conn, &scope, &blocks, &mut checker, &mut histogram)?,
                }
            }
            Ok(histogram)
        })
        .await
    }

    async fn event(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
    ) -> anyhow::Result<Option<StoredEvent>> {
        if group.is_some_and(|g| g != project.own_group(env)) {
            return Ok(None);
        }
        // An id's time part is its event's time: the key finds it directly.
        let ts = i64::try_from(id.timestamp_ms()).unwrap_or(i64::MAX);
        if ts < self.horizon_ms(&project.name) {
            return Ok(None);
        }
        let (project, env) = (project.name.clone(), env.to_string());
        self.read(Lane::Lookup, move |conn| {
            let Some(stream) = read::stream(conn, &project, &env)? else { return Ok(None) };
            let body: Option<Vec<u8>> = conn
                .prepare_cached("SELECT body FROM events WHERE stream = ?1 AND ts = ?2 AND id = ?3")?
                .query_row(rusqlite::params![stream, ts, &id.to_bytes()[..]], |row| row.get(0))
                .optional()?;
            body.map(|body| BodyDecoder::default().event(conn, &body).map_err(read::corrupt)).transpose()
        })
        .await
    }

    async fn context(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
        around: Around,
    ) -> anyhow::Result<Option<Context>> {
        let Some(event) = self.event(project, env, group, id).await? else { return Ok(None) };
        let horizon = self.horizon_ms(&project.name);
        let (project, env) = (project.name.clone(), env.to_string());
        let (ts, key) = (event.timestamp_ms(), id.to_bytes());
        let neighbours = self
            .read(Lane::Lookup, move |conn| {
                let Some(stream) = read::stream(conn, &project, &env)? else { return Ok(Vec::new()) };
                read::neighbours(conn, stream, (ts, &key), (around.before, around.after), horizon)
            })
            .await?;
        Ok(Some(Context::cut(event, neighbours, around)))
    }

    async fn level_counts(
        &self,
        project: &str,
        env: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> anyhow::Result<LevelCounts> {
        let from_ms = unix_ms(from).max(self.horizon_ms(project));
        let (project, env) = (project.to_string(), env.to_string());
        self.read(Lane::Lookup, move |conn| {
            let mut counts = LevelCounts::default();
            let Some(stream) = read::stream(conn, &project, &env)? else { return Ok(counts) };
            let scope = Scope { stream, from_ms, to_ms: unix_ms(to), levels: vec![], before: None };
            read::by_minute(conn, &scope, |_, level, n| *counts.counts.entry(level).or_default() += n)?;
            Ok(counts)
        })
        .await
    }

    async fn check_ready(&self) -> anyhow::Result<()> {
        if self.appends.is_closed() {
            return Err(anyhow!("the embedded store writer has stopped"));
        }
        // Reads the file (not only the connection), on the check's own connection.
        self.ready
            .read(|conn| conn.query_row("SELECT EXISTS (SELECT 1 FROM events)", [], |_| Ok(())))
            .await
            .context("reading the embedded store")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::Level;
    use crate::ingest::{Context, normalise};
    use crate::search::Query;
    use crate::store::Cursor;
    use serde_json::json;
    use time::Duration;

    pub(super) const TEST_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

    pub(super) fn project() -> &'static Project {
        static PROJECT: std::sync::LazyLock<Project> =
            std::sync::LazyLock::new(|| Project::for_tests(&["production", "dev"]));
        &PROJECT
    }

    pub(super) fn event(message: &str, level: &str, env: &str, at: OffsetDateTime) -> StoredEvent {
        let ctx = Context {
            project: project(),
            default_env: None,
            received_at: OffsetDateTime::now_utc(),
            max_event_bytes: 65_536,
        };
        normalise(json!({"message": message, "level": level, "env": env, "timestamp": unix_ms(at)}), &ctx)
            .expect("valid")
    }

    pub(super) fn query(now: OffsetDateTime) -> EventQuery<'static> {
        EventQuery {
            project: project(),
            env: "production".into(),
            group: None,
            from: now - Duration::days(1),
            to: now,
            levels: vec![],
            search: Query::default(),
            limit: 100,
            cursor: None,
        }
    }

    #[tokio::test]
    async fn queue_entries_are_committed_with_their_events_and_taken_while_appends_go_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open");
        let queue = crate::sqlite::queue::Queue::open(&store.queue_db().expect("a queue")).expect("queue");
        let now = OffsetDateTime::now_utc();
        let appends = futures_util::future::join_all((0..200).map(|i| {
            let events = vec![event(&format!("event {i}"), "error", "production", now)];
            store.append_queued(events, format!("{i}"))
        }));
        // The queue takes and forgets flushes on its own connection while the writer commits:
        // neither is refused for the other's lock.
        let taker = async {
            let mut taken = Vec::new();
            // Bounded: a queue that never gets the entries fails the test, not hangs it.
            for _ in 0..5_000 {
                if taken.len() >= 200 {
                    break;
                }
                match queue.take(50, |entries| entries.join(",")).await.expect("take") {
                    Some(flush) => {
                        taken.extend(flush.body.split(',').map(|i| i.parse::<u32>().expect("an entry")));
                        queue.done(&flush.id).await.expect("done");
                    }
                    None => tokio::time::sleep(std::time::Duration::from_millis(2)).await,
                }
            }
            taken
        };
        let (appended, mut taken) = tokio::join!(appends, taker);
        assert!(appended.iter().all(Result::is_ok), "{appended:?}");
        taken.sort_unstable();
        assert_eq!(taken, (0..200).collect::<Vec<_>>(), "every entry once");
        let counts = store
            .level_counts(&project().name, "production", now - Duration::minutes(1), now + Duration::minutes(1))
            .await
            .expect("counts");
        assert_eq!(counts.get(Level::Error), 200);
        assert_eq!(queue.backlog().await.expect("backlog"), 0);
    }

    #[tokio::test]
    async fn appended_events_read_back_newest_first_filtered_and_paged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open");
        let now = OffsetDateTime::now_utc();
        let mut events = Vec::new();
        for i in 0..25 {
            let level = if i % 5 == 0 { "error" } else { "info" };
            events.push(event(&format!("event {i} Payment"), level, "production", now - Duration::minutes(30 - i)));
        }
        events.push(event("other env", "error", "dev", now - Duration::minutes(1)));
        events.push(event("too old", "error", "production", now - Duration::days(2)));
        store.append(events.clone()).await.expect("append");

        let all = store.events(&query(now)).await.expect("all");
        let messages: Vec<_> = all.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages.len(), 25);
        assert_eq!(messages[0], "event 24 Payment");
        assert_eq!(messages[24], "event 0 Payment");
        assert_eq!(all.next_cursor, None);

        let errors = store.events(&EventQuery { levels: vec![Level::Error], ..query(now) }).await.expect("errors");
        let messages: Vec<_> = errors.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            ["event 20 Payment", "event 15 Payment", "event 10 Payment", "event 5 Payment", "event 0 Payment"]
        );

        let found =
            store.events(&EventQuery { search: "\"T 1\"".parse().expect("query"), ..query(now) }).await.expect("text");
        assert_eq!(found.events.len(), 10 + 1, "event 1 and event 10-19, case-insensitive");

        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.events(&EventQuery { limit: 10, cursor, ..query(now) }).await.expect("page");
            seen.extend(page.events.into_iter().map(|e| e.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let expected: Vec<_> = all.events.iter().map(|e| e.id).collect();
        assert_eq!(seen, expected, "paging visits every event once, in order");

        let counts = store.level_counts("demo", "production", now - Duration::days(1), now).await.expect("counts");
        assert_eq!((counts.get(Level::Error), counts.get(Level::Info)), (5, 20));
    }

    #[tokio::test]
    async fn events_survive_reopening_and_are_found_by_id_only_in_their_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        let stored = event("persisted", "warn", "production", now);
        {
            let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open");
            store.append(vec![stored.clone()]).await.expect("append");
            store.append(vec![stored.clone()]).await.expect("a repeated id is not an error");
        }
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("reopen");
        let found = store.event(project(), "production", None, stored.id).await.expect("read");
        assert_eq!(found, Some(stored.clone()));
        assert_eq!(store.event(project(), "dev", None, stored.id).await.expect("read"), None);
        let page = store.events(&query(now + Duration::seconds(1))).await.expect("events");
        assert_eq!(page.events.len(), 1, "stored once");
        let cursor = Some(Cursor::after(&stored));
        assert!(store.events(&EventQuery { cursor, ..query(now) }).await.expect("after").events.is_empty());
    }

    #[tokio::test]
    async fn a_store_of_the_first_layout_is_moved_into_the_current_one_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        let old: Vec<StoredEvent> = (0..70)
            .map(|i| event(&format!("old payment {i}"), "error", "production", now - Duration::minutes(i)))
            .collect();
        {
            // The first layout, as the first version wrote it.
            let conn = Connection::open(dir.path().join("events.db")).expect("db");
            conn.execute_batch(
                "CREATE TABLE events (id TEXT PRIMARY KEY, project TEXT NOT NULL, env TEXT NOT NULL, ts INTEGER NOT NULL,
                     level TEXT NOT NULL, message TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
                 CREATE INDEX events_by_time ON events (project, env, ts, id);",
            )
            .expect("first layout");
            for e in &old {
                conn.execute(
                    "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    rusqlite::params![
                        e.id.to_string(),
                        e.project,
                        e.env,
                        e.timestamp_ms(),
                        e.level.as_str(),
                        e.message,
                        e.to_json()
                    ],
                )
                .expect("row");
            }
        }
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open moves the rows");
        let page = store.events(&EventQuery { limit: 1000, ..query(now + Duration::seconds(1)) }).await.expect("read");
        let mut expected = old.clone();
        expected.sort_by_key(|e| std::cmp::Reverse((e.timestamp_ms(), e.id)));
        assert_eq!(page.events, expected);
        let found =
            store.events(&EventQuery { search: "\"payment 42\"".parse().expect("q"), ..query(now) }).await.expect("q");
        assert_eq!(
            found.events.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["old payment 42"],
            "indexed too"
        );
        let counts = store.level_counts("demo", "production", now - Duration::days(1), now).await.expect("counts");
        assert_eq!(counts.get(Level::Error), 70, "and counted");
        drop(store);
        let conn = Connection::open(dir.path().join("events.db")).expect("db");
        let left: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = ?1", [schema::FIRST_LAYOUT_TABLE], |row| {
                row.get(0)
            })
            .expect("count");
        assert_eq!(left, 0, "the old table is gone");
    }

    #[tokio::test]
    async fn events_written_before_a_restart_join_their_index_block_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        // 40 events: one block indexed, 8 waiting for their block to fill when the store closes.
        let first: Vec<StoredEvent> = (0..40)
            .map(|i| event(&format!("first run {i:02}"), "info", "production", now - Duration::minutes(100 - i)))
            .collect();
        LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open").append(first).await.expect("append");
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("reopen");
        let second: Vec<StoredEvent> = (0..60)
            .map(|i| event(&format!("second run {i:02}"), "info", "production", now - Duration::minutes(50 - i)))
            .collect();
        store.append(second).await.expect("append");
        drop(store);
        let conn = Connection::open(dir.path().join("events.db")).expect("db");
        let indexed_upto: i64 = conn
            .query_row("SELECT value FROM index_state WHERE name = 'indexed_upto'", [], |row| row.get(0))
            .expect("state");
        assert_eq!(indexed_upto, 96, "three whole blocks of the 100 events");
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("reopen");
        for (word, message) in [("\"first run 35\"", "first run 35"), ("\"second run 10\"", "second run 10")] {
            let found = store.events(&EventQuery { search: word.parse().expect("q"), ..query(now) }).await.expect("q");
            assert_eq!(found.events.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), [message]);
        }
    }

    #[test]
    fn charts_and_counts_from_the_minute_table_equal_counting_every_event() {
        use proptest::prelude::*;
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open");
        // On a whole millisecond, as the store keeps times: a range's ends compare with the
        // events' times as the store sees them (a base with nanoseconds made `from == to` ranges
        // disagree by one event).
        let base = crate::event::from_unix_ms(unix_ms(OffsetDateTime::now_utc() - Duration::hours(5))).expect("time");
        // 600 events over 4 hours at uneven seconds, every level, two environments.
        let events: Vec<StoredEvent> = (0..600)
            .map(|i: i64| {
                let level = ["debug", "info", "warn", "error", "fatal"][(i * 7 % 5) as usize];
                let env = if i % 4 == 0 { "dev" } else { "production" };
                event("tick", level, env, base + Duration::milliseconds(i * i * 37 % 14_400_000))
            })
            .collect();
        runtime.block_on(store.append(events.clone())).expect("append");
        proptest!(ProptestConfig::with_cases(60), |(start in 0i64..14_400_000, length in 0i64..14_400_000, level in 0usize..6)| {
            let from = base + Duration::milliseconds(start);
            let to = from + Duration::milliseconds(length);
            let levels = Level::ALL.get(level).map(|l| vec![*l]).unwrap_or_default();
            let q = EventQuery { from, to, levels: levels.clone(), ..query(to) };
            let buckets = Buckets::for_range(from, to);
            let mut expected = Histogram::empty(buckets);
            for e in events.iter().filter(|e| e.env == "production" && e.timestamp >= from && e.timestamp <= to) {
                if levels.is_empty() || levels.contains(&e.level) {
                    expected.add(e);
                }
            }
            let found = runtime.block_on(store.histogram(&q, buckets)).expect("histogram");
            prop_assert_eq!(&found.counts, &expected.counts);
            let counts = runtime.block_on(store.level_counts("demo", "production", from, to)).expect("counts");
            let total: u64 = counts.counts.values().sum();
            let in_range = events.iter().filter(|e| e.env == "production" && e.timestamp >= from && e.timestamp <= to).count();
            prop_assert_eq!(total, in_range as u64);
        });
    }

    #[tokio::test]
    async fn with_every_search_connection_held_lookups_and_the_readiness_check_still_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open"));
        let now = OffsetDateTime::now_utc();
        let stored = event("Payment declined", "error", "production", now - Duration::minutes(1));
        store.append(vec![stored.clone()]).await.expect("append");

        // Stuck searches: each holds its connection until `release` is dropped.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(std::sync::Mutex::new(held));
        let (started, mut holding) = mpsc::unbounded_channel();
        let mut stuck = Vec::new();
        for _ in 0..store.searches.connections() {
            let (store, held, started) = (Arc::clone(&store), Arc::clone(&held), started.clone());
            stuck.push(tokio::spawn(async move {
                store
                    .read(Lane::Search, move |_| {
                        let _ = started.send(());
                        let _ = held.lock().expect("lock").recv();
                        Ok(())
                    })
                    .await
            }));
        }
        for _ in 0..store.searches.connections() {
            holding.recv().await.expect("a search holds its connection");
        }

        store.check_ready().await.expect("ready");
        let newest = store.events(&query(now)).await.expect("the newest page is a lookup");
        assert_eq!(newest.events, std::slice::from_ref(&stored));
        assert_eq!(store.event(project(), "production", None, stored.id).await.expect("by id"), Some(stored));
        let counts = store.level_counts("demo", "production", now - Duration::days(1), now).await.expect("counts");
        assert_eq!(counts.get(Level::Error), 1);

        let search = EventQuery { search: "payment".parse().expect("query"), ..query(now) };
        let refused = store.events(&search).await.expect_err("every search connection is held");
        assert_eq!(refused.downcast_ref::<ReadRefused>(), Some(&ReadRefused::Busy { retry_after_secs: 10 }));

        drop(release);
        for search in stuck {
            search.await.expect("task").expect("the stuck searches end");
        }
        assert_eq!(store.events(&search).await.expect("searches run again").events.len(), 1);
    }

    /// Random queries over a small vocabulary, so they often match: words and phrases in any case,
    /// wildcards, fields, negation, `OR` and parentheses.
    fn random_query() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let word = prop::sample::select(vec![
            "pay",
            "PAYMENT",
            "failed",
            "Card",
            "ok",
            "order",
            "\"card declined\"",
            "pay*ed",
            "*ment",
            "ünïcode",
            "level:error",
            "level:>=warn",
            "http.status:>=500",
            "http.status:[200,404]",
            "has:http.status",
            "message:*ok*",
            "type:http",
            "type:[http,log]",
            "user:u-3",
            "user.plan:pro",
            "extra.region:sa-east-1",
            "extra.n:7",
            "extra.n:>=7",
        ]);
        let term =
            (prop::bool::weighted(0.25), word).prop_map(|(not, w)| if not { format!("-{w}") } else { w.to_string() });
        prop::collection::vec((term, prop::sample::select(vec![" ", " OR ", " AND "])), 1..4).prop_map(|parts| {
            let mut q = String::new();
            for (i, (term, join)) in parts.iter().enumerate() {
                if i > 0 {
                    q.push_str(join);
                }
                q.push_str(term);
            }
            if parts.len() > 2 { format!("({q}) OR nothing") } else { q }
        })
    }

    #[test]
    fn the_store_selects_exactly_what_the_evaluator_accepts() {
        use proptest::prelude::*;
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path(), TEST_TIME_LIMIT).expect("open");
        let now = OffsetDateTime::now_utc();
        let messages = [
            "payment failed: Card declined",
            "PAYMENT ok",
            "order 7 paid",
            "card DECLINED twice",
            "ünïcode order",
            "Pay later",
            "nothing here",
            "paymented",
        ];
        // Enough events for several index blocks and a tail not indexed yet; runs of one message
        // and rare field values, so the index has blocks to leave out.
        let mut events = Vec::new();
        for i in 0..230 {
            let message = messages[(i / 16) % messages.len()];
            let level = ["debug", "info", "warn", "error", "fatal"][i % 5];
            let mut e = event(message, level, "production", now - Duration::minutes(i as i64 + 1));
            if i % 3 == 0 {
                e.http = Some(crate::event::Http { method: None, status: Some([200, 404, 502][(i / 3) % 3]) });
            }
            if i % 4 == 0 {
                e.kind = Some("http".into());
            }
            e.user = Some(if i % 2 == 0 {
                json!(format!("u-{}", i % 5))
            } else {
                json!({"id": format!("u-{}", i % 7), "plan": "pro"})
            });
            let region = if (100..110).contains(&i) { "sa-east-1" } else { "us-east-1" };
            e.extra = json!({"region": region, "n": i % 9}).as_object().cloned();
            events.push(e);
        }
        runtime.block_on(store.append(events.clone())).expect("append");
        let group = project().own_group("production").to_string();
        proptest!(ProptestConfig::with_cases(200), |(text in random_query())| {
            let search: Query = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            let expected: Vec<Ulid> = {
                let mut matching: Vec<&StoredEvent> = events.iter().filter(|e| search.matches(e, &group)).collect();
                matching.sort_by_key(|e| std::cmp::Reverse((e.timestamp_ms(), e.id)));
                matching.iter().map(|e| e.id).collect()
            };
            let page = runtime.block_on(store.events(&EventQuery { search, limit: 1000, ..query(now) })).expect("read");
            let found: Vec<Ulid> = page.events.iter().map(|e| e.id).collect();
            prop_assert_eq!(found, expected, "{}", text);
        });
    }
}
