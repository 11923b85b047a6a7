//! The issue index on SQLite: one file, `data_dir/issues.db`, one writer thread (every write
//! commits in one transaction with the others waiting, so none waits for a lock) and a pool of
//! read connections.
//! - `issues`: one row per fingerprint — first and last seen, the latest occurrence's title,
//!   type, level, id and group (when not the project's own), the status and when it was resolved;
//! - `issue_minutes`: occurrences per minute (counts over a range, the 24 h sparkline);
//! - `issue_users`: which users had it in which minute (distinct users over a range);
//! - the issue follower's checkpoints: per group, `follow_groups` keeps where the next read
//!   starts, `follow_seen` the ids already counted; both are written in the transaction that
//!   records the occurrences, so a crash never counts an event twice nor skips one.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension as _};
use tokio::sync::{mpsc, oneshot};

use super::{Changes, Followed, Issue, IssueIndex, IssueKey, MAX_LISTED, Occurrence, Sort, Status};
use crate::clock::{HOUR_MS, MINUTE_MS, from_ms_utc};
use crate::search::Query;
use crate::sqlite::{self, AfterCommit, CommitFailed, PoolLimits, ReadPool};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS issues (
    project     TEXT NOT NULL,
    env         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    title       TEXT NOT NULL,
    type        TEXT,
    level       TEXT NOT NULL,
    sample_id   TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'ongoing',
    resolved_at INTEGER,
    log_group   TEXT,
    PRIMARY KEY (project, env, fingerprint)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS issue_minutes (
    project     TEXT NOT NULL,
    env         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (project, env, fingerprint, minute)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS issue_users (
    project     TEXT NOT NULL,
    env         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    user        TEXT NOT NULL,
    PRIMARY KEY (project, env, fingerprint, minute, user)
) WITHOUT ROWID;
";

const FOLLOW_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS follow_groups (
    log_group TEXT PRIMARY KEY,
    next_from INTEGER NOT NULL,
    floor     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS follow_seen (
    log_group TEXT NOT NULL,
    id        TEXT NOT NULL,
    ts        INTEGER NOT NULL,
    PRIMARY KEY (log_group, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS follow_seen_by_time ON follow_seen (log_group, ts);
";

const QUEUE_DEPTH: usize = 256;
const MAX_REQUESTS_PER_COMMIT: usize = 256;
const READ_CONNECTIONS: usize = 2;
const MAX_READ_WAIT: Duration = Duration::from_secs(3);

/// What the writer thread does: record occurrences, or set an issue's status (one writer, so
/// neither ever waits for a lock).
enum Write {
    Record(Vec<Occurrence>),
    /// What the follower read from one group, with where it goes on.
    Follow(Followed),
    SetStatus {
        project: String,
        env: String,
        fingerprint: String,
        status: Status,
        at_ms: i64,
    },
}

/// A write and where its answer goes.
type Request = (Write, oneshot::Sender<Result<Changes, CommitFailed>>);

/// The issue index in `data_dir/issues.db`.
pub struct SqliteIssueIndex {
    writes: mpsc::Sender<Request>,
    reads: ReadPool,
}

impl SqliteIssueIndex {
    pub fn open(data_dir: &Path) -> anyhow::Result<SqliteIssueIndex> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let path = data_dir.join("issues.db");
        let conn = sqlite::open_durable(&path, 8_192)?;
        conn.execute_batch(SCHEMA).context("creating the issues schema")?;
        add_group_column(&conn)?;
        conn.execute_batch(FOLLOW_SCHEMA).context("creating the follower's schema")?;
        let limits = PoolLimits { connections: READ_CONNECTIONS, max_wait: MAX_READ_WAIT, time_limit: MAX_READ_WAIT };
        let reads = ReadPool::open(&path, limits, |_| Ok(()))?;
        let writes = sqlite::spawn_writer("issue-index", conn, QUEUE_DEPTH, MAX_REQUESTS_PER_COMMIT, commit_round)?;
        Ok(SqliteIssueIndex { writes, reads })
    }

    async fn write(&self, write: Write) -> anyhow::Result<Changes> {
        let (reply, answer) = oneshot::channel();
        self.writes.send((write, reply)).await.map_err(|_| anyhow!("the issue index writer has stopped"))?;
        Ok(answer.await.map_err(|_| anyhow!("the issue index writer has stopped"))??)
    }
}

#[async_trait]
impl IssueIndex for SqliteIssueIndex {
    async fn record(&self, occurrences: Vec<Occurrence>) -> anyhow::Result<Changes> {
        if occurrences.is_empty() {
            return Ok(Changes::default());
        }
        self.write(Write::Record(occurrences)).await
    }

    async fn set_status(
        &self,
        project: &str,
        env: &str,
        fingerprint: &str,
        status: Status,
        at_ms: i64,
    ) -> anyhow::Result<bool> {
        let (project, env, fingerprint) = (project.to_string(), env.to_string(), fingerprint.to_string());
        Ok(self.write(Write::SetStatus { project, env, fingerprint, status, at_ms }).await?.found)
    }

    /// One issue of a project/environment, whether or not it was seen in `[from, to]`, with its
    /// count and users over that range as [`IssueIndex::list`] gives them; `None` when the index
    /// has no such issue.
    async fn get(
        &self,
        (project, env): (&str, &str),
        fingerprint: &str,
        (from_ms, to_ms): (i64, i64),
        now_ms: i64,
    ) -> anyhow::Result<Option<Issue>> {
        let (project, env, fingerprint) = (project.to_string(), env.to_string(), fingerprint.to_string());
        self.reads
            .read(move |conn| {
                let (from_minute, to_minute) = (from_ms.div_euclid(MINUTE_MS), to_ms.div_euclid(MINUTE_MS));
                let found = conn
                    .prepare_cached(&format!(
                        "SELECT {ISSUE_COLUMNS} FROM issues i WHERE project = ?1 AND env = ?2 AND fingerprint = ?5"
                    ))?
                    .query_row(rusqlite::params![project, env, from_minute, to_minute, fingerprint], |row| {
                        issue_of_row(row, now_ms)
                    })
                    .optional()?;
                found
                    .map(|mut issue| {
                        issue.series_24h = series(conn, &project, &env, &issue.fingerprint, now_ms)?;
                        Ok(issue)
                    })
                    .transpose()
            })
            .await
            .context("reading the issue index")
    }

    async fn list(
        &self,
        (project, env, group): (&str, &str, &str),
        (from_ms, to_ms): (i64, i64),
        search: &Query,
        sort: Sort,
        now_ms: i64,
    ) -> anyhow::Result<Vec<Issue>> {
        let (project, env, group, search) = (project.to_string(), env.to_string(), group.to_string(), search.clone());
        self.reads
            .read(move |conn| {
                let matches = |issue: &Issue| issue.matches((&project, &env, &group), &search);
                let everything = search.root().is_some();
                list(conn, (&project, &env), (from_ms, to_ms), sort, now_ms, everything, matches)
            })
            .await
            .context("reading the issue index")
    }

    async fn record_followed(&self, followed: Followed) -> anyhow::Result<Changes> {
        self.write(Write::Follow(followed)).await
    }

    async fn follow_state(&self, group: &str) -> anyhow::Result<Option<(i64, i64)>> {
        let group = group.to_string();
        self.reads
            .read(move |conn| {
                conn.prepare_cached("SELECT next_from, floor FROM follow_groups WHERE log_group = ?1")?
                    .query_row([group], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .await
            .context("reading the follower's checkpoint")
    }

    async fn has_issues(&self, project: &str, env: &str) -> anyhow::Result<bool> {
        let (project, env) = (project.to_string(), env.to_string());
        self.reads
            .read(move |conn| {
                conn.prepare_cached("SELECT 1 FROM issues WHERE project = ?1 AND env = ?2 LIMIT 1")?
                    .exists(rusqlite::params![project, env])
            })
            .await
            .context("reading the issue index")
    }
}

fn commit_round(conn: &mut Connection, batch: Vec<Request>) -> AfterCommit {
    match commit(conn, &batch) {
        Ok(answers) => {
            for ((_, reply), answer) in batch.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "issue index commit failed");
            let error = CommitFailed::new(error);
            for (_, reply) in batch {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
    AfterCommit::Wait
}

/// Applies every write in one transaction; the answer of each.
fn commit(conn: &mut Connection, batch: &[Request]) -> anyhow::Result<Vec<Changes>> {
    let tx = conn.transaction()?;
    let mut answers = Vec::with_capacity(batch.len());
    for (write, _) in batch {
        answers.push(match write {
            Write::Record(occurrences) => record(&tx, occurrences)?,
            Write::Follow(followed) => commit_followed(&tx, followed)?,
            Write::SetStatus { project, env, fingerprint, status, at_ms } => {
                let found = tx.prepare_cached(
                    "UPDATE issues SET status = ?4, resolved_at = CASE WHEN ?4 = 'resolved' THEN ?5 ELSE resolved_at END
                     WHERE project = ?1 AND env = ?2 AND fingerprint = ?3",
                )?
                .execute(rusqlite::params![project, env, fingerprint, status.as_str(), at_ms])?
                    == 1;
                Changes { found, ..Changes::default() }
            }
        });
    }
    tx.commit()?;
    Ok(answers)
}

/// The occurrences of one issue in a batch, as one write: a burst of one error is one row's
/// update, not one per event.
struct Recorded<'a> {
    /// The occurrence the row shows: the last of those with the latest time, as recording them
    /// one by one would leave it.
    latest: &'a Occurrence,
    first_ts: i64,
    /// The first occurrence's receipt time: the `resolved_at` of a new row (not read).
    first_received_ms: i64,
    /// The latest receipt time: whether any occurrence came after the issue was resolved.
    received_ms: i64,
    /// Occurrences per minute.
    minutes: Vec<(i64, i64)>,
    /// (minute, user), each once.
    users: Vec<(i64, &'a str)>,
}

impl<'a> Recorded<'a> {
    fn new(o: &'a Occurrence) -> Recorded<'a> {
        Recorded {
            latest: o,
            first_ts: o.ts,
            first_received_ms: o.received_ms,
            received_ms: o.received_ms,
            minutes: Vec::new(),
            users: Vec::new(),
        }
    }

    fn add(&mut self, o: &'a Occurrence) {
        if o.ts >= self.latest.ts {
            self.latest = o;
        }
        self.first_ts = self.first_ts.min(o.ts);
        self.received_ms = self.received_ms.max(o.received_ms);
        let at = o.ts.div_euclid(MINUTE_MS);
        match self.minutes.iter_mut().find(|(minute, _)| *minute == at) {
            Some((_, n)) => *n += 1,
            None => self.minutes.push((at, 1)),
        }
        if let Some(user) = o.user.as_deref()
            && !self.users.contains(&(at, user))
        {
            self.users.push((at, user));
        }
    }
}

/// Records the occurrences: the same rows as recording them one at a time, in order, with one
/// write per issue (and minute) of the batch.
fn record(tx: &rusqlite::Transaction<'_>, occurrences: &[Occurrence]) -> anyhow::Result<Changes> {
    // Each issue of the batch, in the order each first came.
    let mut issues: Vec<Recorded<'_>> = Vec::new();
    let mut place: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for o in occurrences {
        let index = *place.entry((&o.project, &o.env, &o.fingerprint)).or_insert_with(|| {
            issues.push(Recorded::new(o));
            issues.len() - 1
        });
        issues[index].add(o);
    }
    let mut before =
        tx.prepare_cached("SELECT status FROM issues WHERE project = ?1 AND env = ?2 AND fingerprint = ?3")?;
    // A new row's `resolved_at` (?9) is not read; on a conflict the latest receipt time (?12)
    // is compared with the resolution's.
    let mut issue = tx.prepare_cached(
        "INSERT INTO issues (project, env, fingerprint, first_seen, last_seen, title, type, level, sample_id, resolved_at, log_group)
         VALUES (?1, ?2, ?3, ?4, ?11, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (project, env, fingerprint) DO UPDATE SET
             first_seen = min(first_seen, excluded.first_seen),
             title = CASE WHEN excluded.last_seen >= last_seen THEN excluded.title ELSE title END,
             type = CASE WHEN excluded.last_seen >= last_seen THEN excluded.type ELSE type END,
             level = CASE WHEN excluded.last_seen >= last_seen THEN excluded.level ELSE level END,
             sample_id = CASE WHEN excluded.last_seen >= last_seen THEN excluded.sample_id ELSE sample_id END,
             log_group = CASE WHEN excluded.last_seen >= last_seen THEN excluded.log_group ELSE log_group END,
             status = CASE WHEN status = 'resolved' AND ?12 > resolved_at THEN 'regressed' ELSE status END,
             last_seen = max(last_seen, excluded.last_seen)
         RETURNING status",
    )?;
    let mut minute = tx.prepare_cached(
        "INSERT INTO issue_minutes (project, env, fingerprint, minute, n) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (project, env, fingerprint, minute) DO UPDATE SET n = n + excluded.n",
    )?;
    let mut user = tx.prepare_cached(
        "INSERT OR IGNORE INTO issue_users (project, env, fingerprint, minute, user) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut changes = Changes { found: true, ..Changes::default() };
    for recorded in &issues {
        let o = recorded.latest;
        let (project, env, fingerprint) = (&o.project, &o.env, &o.fingerprint);
        let was: Option<String> =
            before.query_row(rusqlite::params![project, env, fingerprint], |row| row.get(0)).optional()?;
        let now: String = issue.query_row(
            rusqlite::params![
                project,
                env,
                fingerprint,
                recorded.first_ts,
                o.title,
                o.kind,
                o.level.as_str(),
                o.id,
                recorded.first_received_ms,
                o.group,
                o.ts,
                recorded.received_ms
            ],
            |row| row.get(0),
        )?;
        let key = || IssueKey { project: project.clone(), env: env.clone(), fingerprint: fingerprint.clone() };
        match was.as_deref() {
            None => changes.new.push(key()),
            Some("resolved") if now == "regressed" => changes.regressed.push(key()),
            _ => {}
        }
        for (at, n) in &recorded.minutes {
            minute.execute(rusqlite::params![project, env, fingerprint, at, n])?;
        }
        for (at, name) in &recorded.users {
            user.execute(rusqlite::params![project, env, fingerprint, at, name])?;
        }
    }
    Ok(changes)
}

fn list(
    conn: &Connection,
    (project, env): (&str, &str),
    (from_ms, to_ms): (i64, i64),
    sort: Sort,
    now_ms: i64,
    // Whether every issue of the range is read (to be filtered), not only the first page.
    everything: bool,
    matches: impl Fn(&Issue) -> bool,
) -> rusqlite::Result<Vec<Issue>> {
    let (from_minute, to_minute) = (from_ms.div_euclid(MINUTE_MS), to_ms.div_euclid(MINUTE_MS));
    let order = match sort {
        Sort::LastSeen => "last_seen DESC",
        Sort::FirstSeen => "first_seen DESC",
        Sort::Count => "count DESC, last_seen DESC",
        Sort::Users => "users DESC, last_seen DESC",
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ISSUE_COLUMNS}
         FROM issues i
         WHERE project = ?1 AND env = ?2 AND last_seen >= ?5 AND first_seen <= ?6
         ORDER BY {order} LIMIT ?7"
    ))?;
    let rows = stmt.query_map(
        // LIMIT -1: no limit.
        rusqlite::params![
            project,
            env,
            from_minute,
            to_minute,
            from_ms,
            to_ms,
            if everything { -1 } else { MAX_LISTED as i64 }
        ],
        |row| issue_of_row(row, now_ms),
    )?;
    let mut issues = Vec::new();
    for row in rows {
        let mut issue = row?;
        if matches(&issue) {
            issue.series_24h = series(conn, project, env, &issue.fingerprint, now_ms)?;
            issues.push(issue);
            if issues.len() == MAX_LISTED {
                break;
            }
        }
    }
    Ok(issues)
}

/// The columns [`issue_of_row`] reads from `issues i`: `?1` is the project, `?2` the env, `?3`
/// and `?4` the first and last minute counted.
const ISSUE_COLUMNS: &str = "fingerprint, title, type, level, first_seen, last_seen, status, sample_id, log_group,
     (SELECT coalesce(sum(n), 0) FROM issue_minutes m WHERE m.project = i.project AND m.env = i.env
         AND m.fingerprint = i.fingerprint AND m.minute BETWEEN ?3 AND ?4) AS count,
     (SELECT count(DISTINCT user) FROM issue_users u WHERE u.project = i.project AND u.env = i.env
         AND u.fingerprint = i.fingerprint AND u.minute BETWEEN ?3 AND ?4) AS users";

/// An issue from a row of [`ISSUE_COLUMNS`], without its series; `now` decides what is `new`.
fn issue_of_row(row: &rusqlite::Row<'_>, now_ms: i64) -> rusqlite::Result<Issue> {
    let first_seen: i64 = row.get(4)?;
    let status = Status::shown(&row.get::<_, String>(6)?, first_seen, now_ms);
    Ok(Issue {
        fingerprint: row.get(0)?,
        title: row.get(1)?,
        kind: row.get(2)?,
        level: row.get(3)?,
        count: u64::try_from(row.get::<_, i64>(9)?).unwrap_or(0),
        users: u64::try_from(row.get::<_, i64>(10)?).unwrap_or(0),
        first_seen: from_ms_utc(first_seen),
        last_seen: from_ms_utc(row.get(5)?),
        status,
        sample_id: row.get(7)?,
        group: row.get(8)?,
        series_24h: Vec::new(),
    })
}

/// Records the occurrences not counted before, and moves the group on.
fn commit_followed(tx: &rusqlite::Transaction<'_>, followed: &Followed) -> anyhow::Result<Changes> {
    let Followed { group, occurrences, next_from, floor, forget_before } = followed;
    let mut seen = tx.prepare_cached("INSERT OR IGNORE INTO follow_seen (log_group, id, ts) VALUES (?1, ?2, ?3)")?;
    let mut fresh = Vec::new();
    for o in occurrences {
        if seen.execute(rusqlite::params![group, o.id, o.ts])? == 1 {
            fresh.push(o.clone());
        }
    }
    let changes = record(tx, &fresh)?;
    tx.prepare_cached(
        "INSERT INTO follow_groups (log_group, next_from, floor) VALUES (?1, ?2, ?3)
         ON CONFLICT (log_group) DO UPDATE SET next_from = excluded.next_from",
    )?
    .execute(rusqlite::params![group, next_from, floor])?;
    tx.prepare_cached("DELETE FROM follow_seen WHERE log_group = ?1 AND ts < ?2")?
        .execute(rusqlite::params![group, forget_before])?;
    Ok(changes)
}

/// Occurrences in each of the 24 whole hours up to the one holding `now`, oldest first.
fn series(conn: &Connection, project: &str, env: &str, fingerprint: &str, now_ms: i64) -> rusqlite::Result<Vec<u64>> {
    let last_hour = now_ms.div_euclid(HOUR_MS);
    let first_hour = last_hour - 23;
    let mut hours = vec![0u64; 24];
    let mut stmt = conn.prepare_cached(
        "SELECT minute / 60, sum(n) FROM issue_minutes WHERE project = ?1 AND env = ?2 AND fingerprint = ?3
             AND minute >= ?4 GROUP BY minute / 60",
    )?;
    let rows = stmt.query_map(rusqlite::params![project, env, fingerprint, first_hour * 60], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (hour, n) = row?;
        if let Some(slot) = usize::try_from(hour - first_hour).ok().and_then(|i| hours.get_mut(i)) {
            *slot = u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(hours)
}

/// `log_group` on an index made before the follower (SQLite has no `ADD COLUMN IF NOT EXISTS`).
fn add_group_column(conn: &Connection) -> anyhow::Result<()> {
    let has = conn
        .prepare("SELECT 1 FROM pragma_table_info('issues') WHERE name = 'log_group'")?
        .exists([])
        .context("reading the issues schema")?;
    if !has {
        conn.execute_batch("ALTER TABLE issues ADD COLUMN log_group TEXT").context("adding issues.log_group")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Level;

    fn occurrence(fingerprint: &str, ts: i64, received_ms: i64, user: Option<&str>) -> Occurrence {
        Occurrence {
            project: "demo".into(),
            env: "production".into(),
            fingerprint: fingerprint.into(),
            ts,
            received_ms,
            title: format!("at {ts}"),
            kind: Some("TypeError".into()),
            level: Level::Error,
            id: ulid::Ulid::from_parts(u64::try_from(ts).unwrap_or(0), 1).to_string(),
            user: user.map(str::to_string),
            group: None,
        }
    }

    const AT: (&str, &str, &str) = ("demo", "production", "/logboard/demo/production");
    /// Every row of the index's tables, as text.
    fn rows(dir: &Path) -> Vec<String> {
        let conn = Connection::open(dir.join("issues.db")).expect("open");
        let mut all = Vec::new();
        for table in ["issues", "issue_minutes", "issue_users"] {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5")).expect("select");
            let width = stmt.column_count();
            let mut rows = stmt.query([]).expect("query");
            while let Some(row) = rows.next().expect("row") {
                let values: Vec<String> = (0..width).map(|i| format!("{:?}", row.get_ref(i).expect("value"))).collect();
                all.push(format!("{table}: {}", values.join(" | ")));
            }
        }
        all
    }

    #[tokio::test]
    async fn a_batch_is_recorded_as_its_occurrences_one_by_one() {
        let now = 1_800_000_000_000;
        let min = MINUTE_MS;
        let titled = |fingerprint: &str, ts: i64, received: i64, user: Option<&str>, title: &str| Occurrence {
            title: title.into(),
            ..occurrence(fingerprint, ts, received, user)
        };
        let earlier =
            vec![occurrence("resolved", now - 60 * min, now - 60 * min, None), occurrence("old", now, now, None)];
        let batch = vec![
            titled("resolved", now - 90 * min, now - 50 * min, Some("u1"), "late, before the resolution"),
            occurrence("new", now - 2 * min, now, Some("u1")),
            titled("resolved", now - 10 * min, now + min, Some("u1"), "after"),
            occurrence("old", now - 5 * min, now, Some("u2")),
            titled("new", now - min, now, Some("u1"), "tie 1"),
            titled("new", now - min, now, Some("u2"), "tie 2"),
            titled("resolved", now - 10 * min, now - 40 * min, Some("u1"), "the last of the latest"),
            occurrence("new", now - 2 * min + 1, now + 2, Some("u1")),
            titled("other-env", now, now, None, "elsewhere"),
        ];
        let batch: Vec<Occurrence> = batch
            .into_iter()
            .map(|o| if o.fingerprint == "other-env" { Occurrence { env: "staging".into(), ..o } } else { o })
            .collect();
        let (together, one_by_one) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let mut changes = Vec::new();
        for (dir, split) in [(&together, false), (&one_by_one, true)] {
            let index = SqliteIssueIndex::open(dir.path()).expect("open");
            index.record(earlier.clone()).await.expect("record");
            let resolved = index.set_status("demo", "production", "resolved", Status::Resolved, now - 45 * min);
            assert!(resolved.await.expect("resolve"));
            let mut seen = Changes::default();
            let parts = if split { batch.iter().map(|o| vec![o.clone()]).collect() } else { vec![batch.clone()] };
            for part in parts {
                let got = index.record(part).await.expect("record");
                seen.new.extend(got.new);
                seen.regressed.extend(got.regressed);
            }
            changes.push((seen.new, seen.regressed));
        }
        assert_eq!(changes[0], changes[1]);
        assert_eq!(changes[0].0.len(), 2, "new and other-env are new");
        assert_eq!(changes[0].1.len(), 1, "resolved regressed");
        assert_eq!(rows(together.path()), rows(one_by_one.path()));
    }

    #[tokio::test]
    async fn counts_users_and_states_follow_the_occurrences() {
        let dir = tempfile::tempdir().expect("dir");
        let index = SqliteIssueIndex::open(dir.path()).expect("open");
        let now = 1_800_000_000_000;
        let hour = HOUR_MS;
        index
            .record(vec![
                occurrence("a", now - 30 * hour, now - 30 * hour, Some("u1")),
                occurrence("a", now - 2 * hour, now - 2 * hour, Some("u1")),
                occurrence("a", now - hour, now - hour, Some("u2")),
                occurrence("b", now - hour, now - hour, None),
            ])
            .await
            .expect("record");
        let listed = index.list(AT, (now - 3 * hour, now), &Query::default(), Sort::Count, now).await.expect("list");
        let summary: Vec<(&str, u64, u64, Status)> =
            listed.iter().map(|i| (i.fingerprint.as_str(), i.count, i.users, i.status)).collect();
        assert_eq!(summary, [("a", 2, 2, Status::Ongoing), ("b", 1, 0, Status::New)]);
        assert_eq!(listed[0].title, format!("at {}", now - hour), "the latest occurrence's message");
        assert_eq!(listed[0].series_24h[21..], [1, 1, 0]);
        let only = |q: &str| {
            let search: Query = q.parse().expect("query");
            let index = &index;
            async move {
                let listed = index.list(AT, (now - 3 * hour, now), &search, Sort::Count, now).await.expect("list");
                listed.into_iter().map(|i| i.fingerprint).collect::<Vec<_>>()
            }
        };
        assert_eq!(only("fingerprint:b").await, ["b"]);
        assert_eq!(only("type:TypeError level:error").await, ["a", "b"]);
        assert_eq!(only("-type:TypeError").await, Vec::<String>::new());
        assert_eq!(only(&format!("\"at {}\"", now - hour)).await, ["a", "b"], "the latest occurrence's message");

        assert!(index.set_status("demo", "production", "a", Status::Resolved, now).await.expect("set"));
        assert!(!index.set_status("demo", "production", "zz", Status::Resolved, now).await.expect("set"));
        // Late delivery of an old occurrence, received before the resolution: still resolved.
        index.record(vec![occurrence("a", now - hour, now - 1, None)]).await.expect("record");
        let status = |listed: &[Issue]| listed.iter().find(|i| i.fingerprint == "a").map(|i| i.status);
        let listed = index.list(AT, (now - 3 * hour, now), &Query::default(), Sort::Count, now).await.expect("list");
        assert_eq!(status(&listed), Some(Status::Resolved));
        index.record(vec![occurrence("a", now - hour, now + 1, None)]).await.expect("record");
        let listed = index.list(AT, (now - 3 * hour, now), &Query::default(), Sort::Count, now).await.expect("list");
        assert_eq!(status(&listed), Some(Status::Regressed), "received after the resolution");
    }

    #[tokio::test]
    async fn one_issue_is_read_as_the_list_has_it_seen_in_the_range_or_not() {
        let dir = tempfile::tempdir().expect("dir");
        let index = SqliteIssueIndex::open(dir.path()).expect("open");
        let now = 1_800_000_000_000;
        let hour = HOUR_MS;
        index
            .record(vec![
                occurrence("a", now - 30 * hour, now - 30 * hour, Some("u1")),
                occurrence("a", now - 2 * hour, now - 2 * hour, Some("u1")),
                occurrence("a", now - hour, now - hour, Some("u2")),
                occurrence("old", now - 50 * hour, now - 50 * hour, None),
            ])
            .await
            .expect("record");
        let range = (now - 24 * hour, now);
        let listed = index.list(AT, range, &Query::default(), Sort::Count, now).await.expect("list");
        let a = index.get(("demo", "production"), "a", range, now).await.expect("get");
        assert_eq!(a.as_ref(), listed.iter().find(|i| i.fingerprint == "a"), "the same as listed");
        let a = a.expect("a");
        assert_eq!((a.count, a.users, a.status), (2, 2, Status::Ongoing));
        assert_eq!(a.first_seen, from_ms_utc(now - 30 * hour));
        let old = index.get(("demo", "production"), "old", range, now).await.expect("get").expect("old");
        assert_eq!((old.count, old.last_seen), (0, from_ms_utc(now - 50 * hour)), "not seen in the range");
        assert_eq!(index.get(("demo", "staging"), "a", range, now).await.expect("get"), None, "another env");
        assert_eq!(index.get(("demo", "production"), "zz", range, now).await.expect("get"), None);
    }
}
