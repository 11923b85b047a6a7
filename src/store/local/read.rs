//! How a read of the embedded store finds its rows, inside one read connection:
//! - by time: the newest rows of a stream's range straight off the (stream, ts, id) key;
//! - by the search index: the blocks a query's [`Need`] names, plus the few rows not indexed yet
//!   (when the index names too many blocks, reading by time is faster and is used instead);
//! - by columns: the parts of the column store ([`super::columns`]) say which rows match, a
//!   chart counts them from there and a page reads only them;
//! - by counts: per-minute counts kept at ingest, for charts and totals.
//!
//! Every row found is decoded and given to the evaluator, which alone decides what matches (the
//! columns ask it too, value by value).

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::codec::BodyDecoder;
use super::columns::{Frame, PART_SHIFT, Part, Rows, Verdicts, frames_to_read};
use super::text_index::{BLOCK_EVENTS, BLOCK_SHIFT, Need};
use crate::clock::MINUTE_MS;
use crate::event::{Level, StoredEvent};
use crate::search::{Query, fold_case};
use crate::store::histogram::Histogram;

/// The most blocks one part of a query may name before the index is set aside for a read by
/// time: 16,384 blocks are ~524,000 rows, most skipped by time or by the text test before parsing.
const MAX_CANDIDATE_BLOCKS: usize = 16_384;

/// An error of a stored row (a body that does not decode), carried as a SQLite error.
pub(super) fn corrupt(error: anyhow::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, error.into())
}

/// The rows a read may see: one stream, a time range, perhaps some levels, and (for a page
/// after the first) only rows before a cursor in newest-first order.
pub(super) struct Scope {
    pub stream: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Level codes; empty for every level.
    pub levels: Vec<i64>,
    pub before: Option<(i64, [u8; 16])>,
}

impl Scope {
    /// Adds the scope's levels (if any) to a `WHERE` clause and its arguments.
    fn filter_levels(&self, sql: &mut String, args: &mut Vec<Sql>) {
        if !self.levels.is_empty() {
            sql.push_str(&format!(" AND level IN ({})", vec!["?"; self.levels.len()].join(", ")));
            args.extend(self.levels.iter().map(|l| Sql::from(*l)));
        }
    }

    /// The newest time the scope may see: the range's end, or the cursor's time before it.
    fn until_ms(&self) -> i64 {
        self.before.as_ref().map_or(self.to_ms, |(ts, _)| self.to_ms.min(*ts))
    }

    /// In the range and levels (the cursor aside: a chart has none).
    fn admits_time(&self, ts: i64, level: i64) -> bool {
        ts >= self.from_ms && ts <= self.to_ms && (self.levels.is_empty() || self.levels.contains(&level))
    }

    fn admits(&self, ts: i64, id: &[u8], level: i64) -> bool {
        self.admits_time(ts, level)
            && self.before.as_ref().is_none_or(|(cursor_ts, cursor_id)| (ts, id) < (*cursor_ts, &cursor_id[..]))
    }
}

/// The stream number of a project/environment, if it ever had an event.
pub(super) fn stream(conn: &Connection, project: &str, env: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM streams WHERE project = ?1 AND env = ?2")?
        .query_row([project, env], |row| row.get(0))
        .optional()
}

/// The `before` events of `stream` just before (`ts`, `id`) and the `after` just after it, by
/// time then id, straight off the (stream, ts, id) key; none older than `horizon_ms`.
pub(super) fn neighbours(
    conn: &Connection,
    stream: i64,
    (ts, id): (i64, &[u8]),
    (before, after): (usize, usize),
    horizon_ms: i64,
) -> rusqlite::Result<Vec<StoredEvent>> {
    let mut decoder = BodyDecoder::default();
    let mut events = Vec::with_capacity(before + after);
    let reads = [
        (
            "SELECT body FROM events WHERE stream = ?1 AND ts >= ?5 AND (ts, id) < (?2, ?3) \
          ORDER BY ts DESC, id DESC LIMIT ?4",
            before,
        ),
        (
            "SELECT body FROM events WHERE stream = ?1 AND ts >= ?5 AND (ts, id) > (?2, ?3) \
          ORDER BY ts, id LIMIT ?4",
            after,
        ),
    ];
    for (sql, limit) in reads {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut statement = conn.prepare_cached(sql)?;
        let mut rows = statement.query(rusqlite::params![stream, ts, id, limit, horizon_ms])?;
        while let Some(row) = rows.next()? {
            let body: Vec<u8> = row.get(0)?;
            events.push(decoder.event(conn, &body).map_err(corrupt)?);
        }
    }
    Ok(events)
}

/// Where the events a read finds go.
pub(super) trait Sink {
    /// Whether an event at (`ts`, `id`) could still be taken: asked before a row is decoded.
    fn wants(&self, _ts: i64, _id: &[u8]) -> bool {
        true
    }

    /// Takes a matching event; false when the read may stop.
    fn take(&mut self, event: StoredEvent) -> bool;
}

/// Decodes a row and decides whether its event matches: first the cheap test of the search's
/// [`Need`] on the JSON line, then the evaluator on the parsed event.
pub(super) struct Checker<'q> {
    decoder: BodyDecoder,
    need: Option<&'q Need>,
    pub(super) search: &'q Query,
    group: &'q str,
}

impl<'q> Checker<'q> {
    pub(super) fn new(need: Option<&'q Need>, search: &'q Query, group: &'q str) -> Checker<'q> {
        Checker { decoder: BodyDecoder::default(), need, search, group }
    }

    fn check(&mut self, conn: &Connection, body: &[u8]) -> rusqlite::Result<Option<StoredEvent>> {
        let json = self.decoder.json(conn, body).map_err(corrupt)?;
        if let Some(need) = self.need {
            let folded = if json.is_ascii() { json.to_ascii_lowercase() } else { fold_case(&json) };
            if !need.admits(&folded) {
                return Ok(None);
            }
        }
        let event: StoredEvent = serde_json::from_str(&json).map_err(|e| corrupt(e.into()))?;
        Ok(self.search.matches(&event, self.group).then_some(event))
    }

    /// Offers a row to the sink; false when the read may stop.
    fn offer(
        &mut self,
        conn: &Connection,
        sink: &mut dyn Sink,
        ts: i64,
        id: &[u8],
        body: &[u8],
    ) -> rusqlite::Result<bool> {
        if !sink.wants(ts, id) {
            return Ok(true);
        }
        Ok(match self.check(conn, body)? {
            Some(event) => sink.take(event),
            None => true,
        })
    }
}

/// Offers the scope's events newest first, by time, until the sink has enough.
pub(super) fn by_time(
    conn: &Connection,
    scope: &Scope,
    checker: &mut Checker<'_>,
    sink: &mut dyn Sink,
) -> rusqlite::Result<()> {
    let mut sql = String::from("SELECT ts, id, body FROM events WHERE stream = ? AND ts >= ? AND ts <= ?");
    // After a cursor, the range ends at the cursor's time: the index read starts there (the row
    // comparison below alone would leave SQLite reading down from `to` on every page).
    let mut args: Vec<Sql> = vec![scope.stream.into(), scope.from_ms.into(), scope.until_ms().into()];
    scope.filter_levels(&mut sql, &mut args);
    if let Some((ts, id)) = &scope.before {
        sql.push_str(" AND (ts, id) < (?, ?)");
        args.push((*ts).into());
        args.push(id.to_vec().into());
    }
    sql.push_str(" ORDER BY ts DESC, id DESC");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    while let Some(row) = rows.next()? {
        let (ts, id, body) = (row.get(0)?, row.get_ref(1)?.as_blob()?, row.get_ref(2)?.as_blob()?);
        if !checker.offer(conn, sink, ts, id, body)? {
            break;
        }
    }
    Ok(())
}

/// The blocks that may hold a match of `need`, newest first, and the first `seq` not indexed
/// (every row from it on must be read too); `None` when the index names too many blocks to
/// be worth it.
pub(super) fn candidate_blocks(conn: &Connection, need: &Need) -> rusqlite::Result<Option<(Vec<i64>, i64)>> {
    // Read before the index: rows indexed after this are then in the tail, never in neither.
    let indexed_upto: i64 = conn
        .query_row("SELECT value FROM index_state WHERE name = 'indexed_upto'", [], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    Ok(blocks(conn, need)?.map(|blocks| (blocks, indexed_upto)))
}

/// Sorted newest first, without repeats; `None` for "too many to list".
fn blocks(conn: &Connection, need: &Need) -> rusqlite::Result<Option<Vec<i64>>> {
    match need {
        Need::Grams { words, .. } => matching(conn, "grams", words),
        Need::Token { word, .. } => matching(conn, "tokens", word),
        Need::All(parts) => {
            // Parts on one table go to FTS5 as one expression: it intersects posting lists
            // faster than we can, and a common word next to a rare one costs nothing.
            let mut lists = Vec::new();
            for (table, exprs) in [("grams", grams_of(parts)), ("tokens", tokens_of(parts))] {
                if !exprs.is_empty() {
                    lists.push(matching(conn, table, &exprs.join(" AND "))?);
                }
            }
            for part in parts.iter().filter(|p| matches!(p, Need::All(_) | Need::Any(_))) {
                lists.push(blocks(conn, part)?);
            }
            Ok(lists.into_iter().flatten().reduce(|a, b| intersect(&a, &b)))
        }
        Need::Any(parts) => {
            let mut union = Vec::new();
            for part in parts {
                let Some(list) = blocks(conn, part)? else { return Ok(None) };
                union.extend(list);
            }
            union.sort_unstable_by(|a, b| b.cmp(a));
            union.dedup();
            Ok((union.len() <= MAX_CANDIDATE_BLOCKS).then_some(union))
        }
    }
}

fn grams_of(parts: &[Need]) -> Vec<String> {
    parts
        .iter()
        .filter_map(|p| if let Need::Grams { words, .. } = p { Some(format!("({words})")) } else { None })
        .collect()
}

fn tokens_of(parts: &[Need]) -> Vec<String> {
    parts.iter().filter_map(|p| if let Need::Token { word, .. } = p { Some(word.clone()) } else { None }).collect()
}

/// The blocks of `table` matching an FTS5 expression, newest first; `None` past the cap.
fn matching(conn: &Connection, table: &str, expr: &str) -> rusqlite::Result<Option<Vec<i64>>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT rowid FROM {table} WHERE {table} MATCH ?1 ORDER BY rowid DESC LIMIT ?2"))?;
    let found: Vec<i64> = stmt
        .query_map(rusqlite::params![expr, MAX_CANDIDATE_BLOCKS as i64 + 1], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((found.len() <= MAX_CANDIDATE_BLOCKS).then_some(found))
}

/// Both lists are sorted newest first.
fn intersect(a: &[i64], b: &[i64]) -> Vec<i64> {
    let (mut i, mut j, mut both) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Equal => {
                both.push(a[i]);
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Greater => i += 1,
            std::cmp::Ordering::Less => j += 1,
        }
    }
    both
}

/// Offers the scope's events in `blocks` and in the unindexed tail (from `indexed_upto`), in no
/// particular order, until the sink has enough.
pub(super) fn in_blocks(
    conn: &Connection,
    scope: &Scope,
    (blocks, indexed_upto): &(Vec<i64>, i64),
    checker: &mut Checker<'_>,
    sink: &mut dyn Sink,
) -> rusqlite::Result<()> {
    let ranges = std::iter::once((*indexed_upto, i64::MAX))
        .chain(blocks.iter().map(|block| (block << BLOCK_SHIFT, (block << BLOCK_SHIFT) + BLOCK_EVENTS)));
    in_seq_ranges(conn, scope, ranges, checker, sink).map(|_| ())
}

/// Offers the scope's events whose `seq` is in the ranges (`first..end`), in no particular
/// order; false when the sink has enough.
fn in_seq_ranges(
    conn: &Connection,
    scope: &Scope,
    ranges: impl IntoIterator<Item = (i64, i64)>,
    checker: &mut Checker<'_>,
    sink: &mut dyn Sink,
) -> rusqlite::Result<bool> {
    // NOT INDEXED: a block is a range of `seq` (the rowid); the time index would read the range.
    let mut stmt = conn.prepare_cached(
        "SELECT ts, id, level, body FROM events NOT INDEXED
         WHERE seq >= ?1 AND seq < ?2 AND stream = ?3 AND ts >= ?4 AND ts <= ?5",
    )?;
    for (first, end) in ranges {
        if first >= end {
            continue;
        }
        let mut rows = stmt.query(rusqlite::params![first, end, scope.stream, scope.from_ms, scope.to_ms])?;
        while let Some(row) = rows.next()? {
            let (ts, id, level) = (row.get::<_, i64>(0)?, row.get_ref(1)?.as_blob()?, row.get::<_, i64>(2)?);
            if scope.admits(ts, id, level) && !checker.offer(conn, sink, ts, id, row.get_ref(3)?.as_blob()?)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The column store's marks: the first `seq` with columns and the first without
/// (`schema.rs`). Read before the parts: a part sealed after is then left to the rows' read.
fn column_marks(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let mark = |name: &str| -> rusqlite::Result<i64> {
        Ok(conn
            .prepare_cached("SELECT value FROM index_state WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?
            .unwrap_or(0))
    };
    Ok((mark("columns_from")?, mark("columns_upto")?))
}

/// Rows in a block of the search index.
pub(super) const BLOCK_ROWS: usize = BLOCK_EVENTS as usize;

/// How many parts of columns hold rows of the scope's stream and range.
pub(super) fn parts_in_range(conn: &Connection, scope: &Scope) -> rusqlite::Result<usize> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM column_parts WHERE stream = ?1 AND max_ts >= ?2 AND min_ts <= ?3")?
        .query_row(rusqlite::params![scope.stream, scope.from_ms, scope.to_ms], |row| row.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// A part of the scope's stream that may hold rows of its range.
struct PartRef {
    id: i64,
    block: i64,
    rows: usize,
    max_ts: i64,
}

impl PartRef {
    fn seqs(&self) -> (i64, i64) {
        (self.block << PART_SHIFT, (self.block + 1) << PART_SHIFT)
    }
}

/// The parts between the marks that may hold rows of the scope, newest rows first.
fn parts(conn: &Connection, scope: &Scope, (from, upto): (i64, i64)) -> rusqlite::Result<Vec<PartRef>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, block, rows, max_ts FROM column_parts
         WHERE stream = ?1 AND block >= ?2 AND block < ?3 AND max_ts >= ?4 AND min_ts <= ?5",
    )?;
    let mut parts: Vec<PartRef> = stmt
        .query_map(
            rusqlite::params![scope.stream, from >> PART_SHIFT, upto >> PART_SHIFT, scope.from_ms, scope.until_ms()],
            |row| {
                Ok(PartRef {
                    id: row.get(0)?,
                    block: row.get(1)?,
                    rows: row.get::<_, u32>(2)? as usize,
                    max_ts: row.get(3)?,
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    parts.sort_unstable_by_key(|part| std::cmp::Reverse(part.max_ts));
    Ok(parts)
}

/// A part with the frames `names` names; `None` when it is gone (rewritten since it was listed)
/// or damaged: its rows are then read from their bodies.
fn read_part(conn: &Connection, part: &PartRef, names: &[String]) -> rusqlite::Result<Option<Part>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT name, kind, data FROM column_frames WHERE part = ?1 AND name IN ({})",
        vec!["?"; names.len()].join(", ")
    ))?;
    let args = std::iter::once(Sql::from(part.id)).chain(names.iter().map(|name| Sql::from(name.clone())));
    let frames: Vec<Frame> = stmt
        .query_map(params_from_iter(args), |row| Ok(Frame { name: row.get(0)?, kind: row.get(1)?, data: row.get(2)? }))?
        .collect::<rusqlite::Result<_>>()?;
    if frames.is_empty() {
        return Ok(None);
    }
    Ok(Part::open(part.rows, frames)
        .map_err(|error| tracing::warn!(error = %format!("{error:#}"), block = part.block, "a damaged column part"))
        .ok())
}

/// The part's rows matching the search, or `None` when it left out a column the search needs
/// (or is damaged).
fn evaluate(mut part: Part, search: &Query, names: &Names<'_>, verdicts: &mut Verdicts) -> Option<(Part, Rows)> {
    match part.matching(search, (names.env, names.group), verdicts) {
        Ok(rows) => rows.map(|rows| (part, rows)),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "a damaged column part");
            None
        }
    }
}

/// The stream's environment and group: what `env:` and `group:` test.
pub(super) struct Names<'a> {
    pub env: &'a str,
    pub group: &'a str,
}

/// Threads that evaluate parts for one chart, at most: a chart is CPU-bound, as a scan is in
/// ClickHouse, which also takes every core.
const MAX_CHART_WORKERS: usize = 4;

/// Counts the scope's matches into the chart: from the columns of every part of the range, and
/// from the bodies of rows without columns (or in a part that cannot say). This thread reads the
/// parts (the connection is not shared); workers decode and evaluate them.
pub(super) fn chart_by_columns(
    conn: &Connection,
    scope: &Scope,
    names: &Names<'_>,
    checker: &mut Checker<'_>,
    histogram: &mut Histogram,
) -> rusqlite::Result<()> {
    let marks = column_marks(conn)?;
    in_seq_ranges(conn, scope, [(0, marks.0), (marks.1, i64::MAX)], checker, histogram)?;
    let search = checker.search;
    let names_to_read = frames_to_read(search, false);
    let parts = parts(conn, scope, marks)?;
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(MAX_CHART_WORKERS);
    let (to_workers, work) = std::sync::mpsc::sync_channel::<(usize, Option<Part>)>(workers * 2);
    let work = std::sync::Mutex::new(work);
    let buckets = histogram.buckets;
    let (counted, unanswered) = std::thread::scope(|threads| -> rusqlite::Result<_> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                threads.spawn(|| {
                    let (mut counted, mut unanswered) = (Histogram::empty(buckets), Vec::new());
                    let mut verdicts = Verdicts::default();
                    loop {
                        let next = work.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                        let Ok((index, opened)) = next else { break };
                        let counted_part = opened
                            .and_then(|part| evaluate(part, search, names, &mut verdicts))
                            .and_then(|(mut part, rows)| count_rows(&mut part, &rows, scope, &mut counted));
                        if counted_part.is_none() {
                            unanswered.push(index);
                        }
                    }
                    (counted, unanswered)
                })
            })
            .collect();
        let mut read = Ok(());
        for (index, part) in parts.iter().enumerate() {
            // The time limit interrupts the connection: the read stops, the workers finish.
            let opened = match read_part(conn, part, &names_to_read) {
                Ok(opened) => opened,
                Err(error) => {
                    read = Err(error);
                    break;
                }
            };
            if to_workers.send((index, opened)).is_err() {
                break;
            }
        }
        drop(to_workers);
        let mut counted = Histogram::empty(buckets);
        let mut unanswered = Vec::new();
        for handle in handles {
            let (theirs, parts) = handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            counted.merge(&theirs);
            unanswered.extend(parts);
        }
        read.map(|()| (counted, unanswered))
    })?;
    histogram.merge(&counted);
    for index in unanswered {
        in_seq_ranges(conn, scope, [parts[index].seqs()], checker, histogram)?;
    }
    Ok(())
}

/// Adds the matching rows in the scope to the chart; `None` when the part is damaged (nothing
/// was added).
fn count_rows(part: &mut Part, rows: &Rows, scope: &Scope, chart: &mut Histogram) -> Option<()> {
    if rows.is_empty() {
        return Some(());
    }
    let (ts, levels) = part.times_and_levels().ok()?;
    for row in rows.iter() {
        let (ts, level) = (ts[row], levels[row]);
        if scope.admits_time(ts, i64::from(level)) {
            chart.add_count(ts, Level::ALL[usize::from(level)], 1);
        }
    }
    Some(())
}

/// Offers the scope's matches to a sink that keeps the newest: the rows without columns past
/// the newest part first, then the parts from the newest, each match's row read by its `seq` —
/// until a part's newest row is older than all the sink keeps.
pub(super) fn page_by_columns(
    conn: &Connection,
    scope: &Scope,
    names: &Names<'_>,
    checker: &mut Checker<'_>,
    sink: &mut dyn Sink,
) -> rusqlite::Result<()> {
    const NEWEST_ID: [u8; 16] = [0xff; 16];
    let marks = column_marks(conn)?;
    if !in_seq_ranges(conn, scope, [(marks.1, i64::MAX)], checker, sink)? {
        return Ok(());
    }
    let mut by_seq = conn.prepare_cached("SELECT ts, id, level, body FROM events WHERE seq = ?1")?;
    let names_to_read = frames_to_read(checker.search, true);
    let mut verdicts = Verdicts::default();
    for part in parts(conn, scope, marks)? {
        if !sink.wants(part.max_ts, &NEWEST_ID) {
            break;
        }
        let read = read_part(conn, &part, &names_to_read)?;
        let Some((mut opened, rows)) = read.and_then(|opened| evaluate(opened, checker.search, names, &mut verdicts))
        else {
            if !in_seq_ranges(conn, scope, [part.seqs()], checker, sink)? {
                return Ok(());
            }
            continue;
        };
        let seqs = opened.offsets().map(<[u16]>::to_vec);
        let found = seqs.and_then(|offsets| {
            let (ts, levels) = opened.times_and_levels()?;
            Ok(rows
                .iter()
                .filter(|row| ts[*row] <= scope.until_ms() && scope.admits_time(ts[*row], i64::from(levels[*row])))
                .map(|row| (ts[row], i64::from(offsets[row])))
                .collect::<Vec<(i64, i64)>>())
        });
        let mut found = found.map_err(corrupt)?;
        found.sort_unstable_by(|a, b| b.cmp(a));
        for (ts, offset) in found {
            if !sink.wants(ts, &NEWEST_ID) {
                break;
            }
            let mut rows = by_seq.query([part.seqs().0 + offset])?;
            if let Some(row) = rows.next()? {
                let (ts, id, level) = (row.get::<_, i64>(0)?, row.get_ref(1)?.as_blob()?, row.get::<_, i64>(2)?);
                if scope.admits(ts, id, level) && !checker.offer(conn, sink, ts, id, row.get_ref(3)?.as_blob()?)? {
                    return Ok(());
                }
            }
        }
    }
    // A store written before columns, still being given them: its older rows.
    in_seq_ranges(conn, scope, [(0, marks.0)], checker, sink).map(|_| ())
}

/// Events per level in the scope, by minute: `count(minute_start_ms, level, n)` for each
/// (minute, level) with events. Whole minutes come from the counts kept at ingest; the partial
/// minutes at either end of the range are counted from their rows (and reported at their
/// minute's start).
pub(super) fn by_minute(
    conn: &Connection,
    scope: &Scope,
    mut count: impl FnMut(i64, Level, u64),
) -> rusqlite::Result<()> {
    let first_whole = scope.from_ms.div_euclid(MINUTE_MS) + i64::from(scope.from_ms.rem_euclid(MINUTE_MS) != 0);
    let end_whole = (scope.to_ms + 1).div_euclid(MINUTE_MS);
    let mut report = |minute: i64, level: i64, n: i64| {
        if let (Some(level), Ok(n)) = (usize::try_from(level).ok().and_then(|l| Level::ALL.get(l)), u64::try_from(n)) {
            count(minute * MINUTE_MS, *level, n);
        }
    };
    if first_whole < end_whole {
        let mut sql =
            String::from("SELECT minute, level, n FROM counts WHERE stream = ? AND minute >= ? AND minute < ?");
        let mut args: Vec<Sql> = vec![scope.stream.into(), first_whole.into(), end_whole.into()];
        scope.filter_levels(&mut sql, &mut args);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            report(row.get(0)?, row.get(1)?, row.get(2)?);
        }
    }
    // The partial minutes: [from, first whole minute) and [end of the last whole one, to].
    let edges = if first_whole < end_whole {
        vec![(scope.from_ms, first_whole * MINUTE_MS - 1), (end_whole * MINUTE_MS, scope.to_ms)]
    } else {
        vec![(scope.from_ms, scope.to_ms)]
    };
    for (from, to) in edges.into_iter().filter(|(from, to)| from <= to) {
        let mut sql =
            String::from("SELECT ts / 60000, level, count(*) FROM events WHERE stream = ? AND ts >= ? AND ts <= ?");
        let mut args: Vec<Sql> = vec![scope.stream.into(), from.into(), to.into()];
        scope.filter_levels(&mut sql, &mut args);
        sql.push_str(" GROUP BY ts / 60000, level");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        while let Some(row) = rows.next()? {
            report(row.get(0)?, row.get(1)?, row.get(2)?);
        }
    }
    Ok(())
}
