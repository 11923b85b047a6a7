//! How a read of the embedded store finds its rows, inside one read connection:
//! - by time: the newest rows of a stream's range straight off the (stream, ts, id) key;
//! - by the search index: the blocks a query's [`Need`] names, plus the few rows not indexed yet
//!   (when the index names too many blocks, reading by time is faster and is used instead);
//! - by columns: see [`super::by_columns`], which reads the rows it cannot answer with these;
//! - by counts: per-minute counts kept at ingest, for charts and totals.
//!
//! Every row found is decoded and given to the evaluator, which alone decides what matches (the
//! columns ask it too, value by value).

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::codec::BodyDecoder;
use super::schema::index_mark;
use super::text_index::{BLOCK_EVENTS, BLOCK_SHIFT, Need, SPAN_SHIFT};
use crate::clock::MINUTE_MS;
use crate::event::{Level, StoredEvent};
use crate::search::{Query, fold_case};

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
    pub(super) fn until_ms(&self) -> i64 {
        self.before.as_ref().map_or(self.to_ms, |(ts, _)| self.to_ms.min(*ts))
    }

    /// In the range and levels (the cursor aside: a chart has none).
    pub(super) fn admits_time(&self, ts: i64, level: i64) -> bool {
        ts >= self.from_ms && ts <= self.to_ms && (self.levels.is_empty() || self.levels.contains(&level))
    }

    pub(super) fn admits(&self, ts: i64, id: &[u8], level: i64) -> bool {
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
    pub(super) fn offer(
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

/// What the search index names for a query: the blocks that may hold a match, newest first, and
/// the first `seq` it does not cover (every row from it on must be read too).
pub(super) struct Candidates {
    pub blocks: Vec<i64>,
    pub unindexed_from: i64,
}

/// `None` when the index names too many blocks to be worth it.
pub(super) fn candidate_blocks(conn: &Connection, need: &Need) -> rusqlite::Result<Option<Candidates>> {
    // Read before the index: rows indexed after this are then in the tail, never in neither.
    let mut unindexed_from = index_mark(conn, "indexed_upto")?;
    if need.names_grams() {
        // A message's trigrams are indexed with its part's columns.
        unindexed_from = unindexed_from.min(index_mark(conn, "columns_upto")?);
    }
    Ok(blocks(conn, need)?.map(|blocks| Candidates { blocks, unindexed_from }))
}

/// Sorted newest first, without repeats; `None` for "too many to list".
fn blocks(conn: &Connection, need: &Need) -> rusqlite::Result<Option<Vec<i64>>> {
    match need {
        Need::Grams { words, .. } => gram_blocks(conn, words),
        Need::Token { word, .. } => matching(conn, "tokens", word, MAX_CANDIDATE_BLOCKS),
        Need::All(parts) => {
            // Parts on one table go to FTS5 as one expression: it intersects posting lists
            // faster than we can, and a common word next to a rare one costs nothing.
            let mut lists = Vec::new();
            let (grams, tokens) = (grams_of(parts), tokens_of(parts));
            if !grams.is_empty() {
                lists.push(gram_blocks(conn, &grams.join(" AND "))?);
            }
            if !tokens.is_empty() {
                lists.push(matching(conn, "tokens", &tokens.join(" AND "), MAX_CANDIDATE_BLOCKS)?);
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

/// The blocks whose messages may hold the trigrams of an FTS5 expression, newest first: those
/// indexed a block at a time (`grams`), and every block of each span indexed whole
/// (`span_grams`); `None` past the cap.
fn gram_blocks(conn: &Connection, expr: &str) -> rusqlite::Result<Option<Vec<i64>>> {
    const BLOCKS_PER_SPAN: i64 = 1 << (SPAN_SHIFT - BLOCK_SHIFT);
    let Some(mut blocks) = matching(conn, "grams", expr, MAX_CANDIDATE_BLOCKS)? else { return Ok(None) };
    let max_spans = MAX_CANDIDATE_BLOCKS / BLOCKS_PER_SPAN as usize;
    let Some(spans) = matching(conn, "span_grams", expr, max_spans)? else { return Ok(None) };
    for span in spans {
        let first = span * BLOCKS_PER_SPAN;
        blocks.extend(first..first + BLOCKS_PER_SPAN);
    }
    blocks.sort_unstable_by(|a, b| b.cmp(a));
    blocks.dedup();
    Ok((blocks.len() <= MAX_CANDIDATE_BLOCKS).then_some(blocks))
}

/// The rows of `table` matching an FTS5 expression, newest first; `None` past `cap`.
fn matching(conn: &Connection, table: &str, expr: &str, cap: usize) -> rusqlite::Result<Option<Vec<i64>>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT rowid FROM {table} WHERE {table} MATCH ?1 ORDER BY rowid DESC LIMIT ?2"))?;
    let found: Vec<i64> =
        stmt.query_map(rusqlite::params![expr, cap as i64 + 1], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok((found.len() <= cap).then_some(found))
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

/// Offers the scope's events in the candidate blocks and the rows the index does not cover, in
/// no particular order, until the sink has enough.
pub(super) fn in_blocks(
    conn: &Connection,
    scope: &Scope,
    candidates: &Candidates,
    checker: &mut Checker<'_>,
    sink: &mut dyn Sink,
) -> rusqlite::Result<()> {
    // Blocks the tail holds (indexed by their tokens, but not sealed with their trigrams yet)
    // are read with it, once.
    let tail = candidates.unindexed_from;
    let listed = (block_ranges(&candidates.blocks).into_iter())
        .filter(|(first, _)| *first < tail)
        .map(|(first, end)| (first, end.min(tail)));
    let ranges = std::iter::once((tail, i64::MAX)).chain(listed);
    in_seq_ranges(conn, scope, ranges, checker, sink).map(|_| ())
}

/// The `seq` ranges of blocks listed newest first, neighbours joined (a span's 32 blocks are
/// one range).
pub(super) fn block_ranges(blocks: &[i64]) -> Vec<(i64, i64)> {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for &block in blocks {
        let (first, end) = (block << BLOCK_SHIFT, (block << BLOCK_SHIFT) + BLOCK_EVENTS);
        match ranges.last_mut() {
            Some(last) if last.0 == end => last.0 = first,
            _ => ranges.push((first, end)),
        }
    }
    ranges
}

/// Offers the scope's events whose `seq` is in the ranges (`first..end`), in no particular
/// order; false when the sink has enough.
pub(super) fn in_seq_ranges(
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
