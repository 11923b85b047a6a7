//! Reads through the column store ([`super::columns`]): which rows of a range match a search,
//! from the columns of each part, with the rows not in any part (the block being filled, and on a
//! store from before columns the blocks not backfilled yet) read from their bodies as before.
//!
//! Parts are read from SQLite on the calling thread (a connection is not shared) and decoded and
//! evaluated on worker threads, as a ClickHouse scan takes every core; the results come back in
//! the parts' order (newest first), so a page can stop as soon as it has its events.

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params_from_iter};

use super::columns::{
    ALL_LEVELS, Frame, LevelSet, MESSAGE_FRAMES, PART_SHIFT, Part, Rows, SHAPE_FRAMES, SHAPES_KEPT, ToRead, Verdicts,
    frames_to_read, levels_of, part_of_index_block,
};
use super::read::{Candidates, Checker, Scope, Sink, block_ranges, corrupt, in_seq_ranges};
use super::schema::index_mark;
use super::text_index::BLOCK_EVENTS;
use crate::event::Level;
use crate::search::Query;
use crate::store::histogram::Histogram;

/// The column store's marks: the first `seq` with columns and the first without
/// (`schema.rs`). Read before the parts: a part sealed after is then left to the rows' read.
fn column_marks(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    Ok((index_mark(conn, "columns_from")?, index_mark(conn, "columns_upto")?))
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
    min_ts: i64,
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
        "SELECT id, block, rows, min_ts, max_ts FROM column_parts
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
                    min_ts: row.get(3)?,
                    max_ts: row.get(4)?,
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    parts.sort_unstable_by_key(|part| std::cmp::Reverse(part.max_ts));
    Ok(parts)
}

/// The parts a read goes through: every one of the range, or (`named`) those holding a block the
/// search index names, and all those it does not cover yet.
fn parts_named(
    conn: &Connection,
    scope: &Scope,
    marks: (i64, i64),
    named: Option<&Candidates>,
) -> rusqlite::Result<Vec<PartRef>> {
    let mut parts = parts(conn, scope, marks)?;
    if let Some(candidates) = named {
        let blocks: HashSet<i64> = candidates.blocks.iter().map(|&block| part_of_index_block(block)).collect();
        let unindexed = candidates.unindexed_from >> PART_SHIFT;
        parts.retain(|part| blocks.contains(&part.block) || part.block >= unindexed);
    }
    Ok(parts)
}

/// The rows below the first with columns (a store being backfilled): all, or (`named`) those
/// in blocks the search index names.
fn rows_before_columns(columns_from: i64, named: Option<&Candidates>) -> Vec<(i64, i64)> {
    match named {
        None => vec![(0, columns_from)],
        Some(candidates) => block_ranges(&candidates.blocks)
            .into_iter()
            .filter(|(first, _)| *first < columns_from)
            .map(|(first, end)| (first, end.min(columns_from)))
            .collect(),
    }
}

/// A part with the frames a read needs; `None` when it is gone (rewritten since it was listed)
/// or damaged: its rows are then read from their bodies.
fn read_part(conn: &Connection, part: &PartRef, to_read: &ToRead) -> rusqlite::Result<Option<Part>> {
    // Of a level whose shapes were kept, the shapes alone when they answer (`message@error`
    // left for `shape@error`).
    let not_shaped = if to_read.shapes_for_messages {
        let level_at = MESSAGE_FRAMES.len() + 1;
        format!(
            "AND NOT (frame.name LIKE '{MESSAGE_FRAMES}%' AND EXISTS (SELECT 1 FROM column_frames AS shape
             WHERE shape.part = ?1 AND shape.name = '{SHAPE_FRAMES}' || substr(frame.name, {level_at})
             AND shape.kind = {SHAPES_KEPT}))"
        )
    } else {
        String::new()
    };
    let names = &to_read.names;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT frame.name, frame.kind, frame.data FROM column_frames AS frame
         WHERE frame.part = ?1 AND frame.name IN ({}) {not_shaped}",
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
fn evaluate(
    mut part: Part,
    search: &Query,
    names: &Names<'_>,
    levels: LevelSet,
    verdicts: &mut Verdicts,
) -> Option<(Part, Rows)> {
    match part.matching(search, (names.env, names.group), levels, verdicts) {
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

/// Threads that evaluate parts for one read, at most.
const MAX_WORKERS: usize = 4;
/// Parts handed to a worker at once: one at a time, switching threads cost a tenth of a chart.
const PARTS_PER_BATCH: usize = 4;

/// What became of a part: its matching rows, or `None` when it cannot say (gone, damaged, or it
/// left out a column the search needs): its rows are then read from their bodies.
type Evaluated = Option<(Part, Rows)>;

/// Evaluates `parts` on worker threads and gives each result to `each`, on this thread and in the
/// parts' order, until `each` answers false.
fn evaluate_in_order(
    conn: &Connection,
    parts: &[PartRef],
    (scope, search): (&Scope, &Query),
    names: &Names<'_>,
    with_offsets: bool,
    mut each: impl FnMut(&PartRef, Evaluated) -> rusqlite::Result<bool>,
) -> rusqlite::Result<()> {
    let levels = levels_of(search) & levels_of_scope(scope);
    let to_read = frames_to_read(search, with_offsets, levels);
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(MAX_WORKERS);
    // Batches read ahead of the one `each` waits for: enough to keep every worker busy.
    let window = workers * 2;
    let batches: Vec<&[PartRef]> = parts.chunks(PARTS_PER_BATCH).collect();
    let (to_workers, work) = mpsc::sync_channel::<(usize, Vec<Option<Part>>)>(window);
    let (to_reader, results) = mpsc::channel::<(usize, Vec<Evaluated>)>();
    let work = std::sync::Mutex::new(work);
    std::thread::scope(|threads| {
        for _ in 0..workers {
            let to_reader = to_reader.clone();
            let work = &work;
            threads.spawn(move || {
                let mut verdicts = Verdicts::default();
                loop {
                    let next = work.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                    let Ok((index, batch)) = next else { return };
                    let evaluated = batch
                        .into_iter()
                        .map(|opened| opened.and_then(|part| evaluate(part, search, names, levels, &mut verdicts)))
                        .collect();
                    if to_reader.send((index, evaluated)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(to_reader);
        let outcome = (|| {
            let mut arrived: BTreeMap<usize, Vec<Evaluated>> = BTreeMap::new();
            let (mut sent, mut next) = (0, 0);
            while next < batches.len() {
                while sent < batches.len() && sent < next + window {
                    // The time limit interrupts the connection: the read stops, the workers finish.
                    let batch =
                        batches[sent].iter().map(|part| read_part(conn, part, &to_read)).collect::<Result<_, _>>()?;
                    if to_workers.send((sent, batch)).is_err() {
                        break;
                    }
                    sent += 1;
                }
                while !arrived.contains_key(&next) {
                    match results.recv() {
                        Ok((index, evaluated)) => {
                            arrived.insert(index, evaluated);
                        }
                        Err(_) => return Ok(()),
                    }
                }
                let evaluated = arrived.remove(&next).unwrap_or_default();
                for (part, evaluated) in batches[next].iter().zip(evaluated) {
                    if !each(part, evaluated)? {
                        return Ok(());
                    }
                }
                next += 1;
            }
            Ok(())
        })();
        // The workers stop once the parts they were sent are done.
        drop(to_workers);
        outcome
    })
}

/// The levels of the scope's filter.
fn levels_of_scope(scope: &Scope) -> LevelSet {
    if scope.levels.is_empty() {
        return ALL_LEVELS;
    }
    let known = 0..Level::ALL.len() as i64;
    scope.levels.iter().filter(|level| known.contains(*level)).fold(0, |set, level| set | 1 << level)
}

/// Counts the scope's matches into the chart: from the columns of every part of the range (or
/// of those the index names), and from the bodies of rows without columns (or in a part that
/// cannot say).
pub(super) fn chart_by_columns(
    conn: &Connection,
    scope: &Scope,
    (names, named): (&Names<'_>, Option<&Candidates>),
    checker: &mut Checker<'_>,
    histogram: &mut Histogram,
) -> rusqlite::Result<()> {
    let marks = column_marks(conn)?;
    let unsealed = rows_before_columns(marks.0, named).into_iter().chain([(marks.1, i64::MAX)]);
    in_seq_ranges(conn, scope, unsealed, checker, histogram)?;
    let search = checker.search;
    let parts = parts_named(conn, scope, marks, named)?;
    evaluate_in_order(conn, &parts, (scope, search), names, false, |part, evaluated| {
        let counted = evaluated.and_then(|(mut opened, rows)| count_rows(&mut opened, part, &rows, scope, histogram));
        if counted.is_none() {
            in_seq_ranges(conn, scope, [part.seqs()], checker, histogram)?;
        }
        Ok(true)
    })
}

/// Adds the matching rows in the scope to the chart; `None` when the part is damaged (nothing
/// was added).
fn count_rows(part: &mut Part, bounds: &PartRef, rows: &Rows, scope: &Scope, chart: &mut Histogram) -> Option<()> {
    if rows.is_empty() {
        return Some(());
    }
    // A part within the range and one bucket (most, over days) is counted by level alone:
    // its rows' times need not be decoded.
    let bucket = chart.buckets.index(bounds.min_ts);
    let in_range = bounds.min_ts >= scope.from_ms && bounds.max_ts <= scope.to_ms;
    if in_range && bucket.is_some() && bucket == chart.buckets.index(bounds.max_ts) {
        let levels = part.levels().ok()?;
        let mut by_level = [0u64; Level::ALL.len()];
        for row in rows.iter() {
            by_level[usize::from(levels[row])] += 1;
        }
        for (level, n) in by_level.into_iter().enumerate() {
            if n > 0 && scope.admits_time(bounds.min_ts, level as i64) {
                chart.add_count(bounds.min_ts, Level::ALL[level], n);
            }
        }
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
/// the newest part first, then the parts from the newest (or those the index names), each
/// match's row read by its `seq` — until a part's newest row is older than all the sink keeps.
pub(super) fn page_by_columns(
    conn: &Connection,
    scope: &Scope,
    (names, named): (&Names<'_>, Option<&Candidates>),
    checker: &mut Checker<'_>,
    sink: &mut dyn Sink,
) -> rusqlite::Result<()> {
    const NEWEST_ID: [u8; 16] = [0xff; 16];
    let marks = column_marks(conn)?;
    if !in_seq_ranges(conn, scope, [(marks.1, i64::MAX)], checker, sink)? {
        return Ok(());
    }
    let mut by_seq = conn.prepare_cached("SELECT ts, id, level, body FROM events WHERE seq = ?1")?;
    let search = checker.search;
    let mut full = false;
    let parts = parts_named(conn, scope, marks, named)?;
    evaluate_in_order(conn, &parts, (scope, search), names, true, |part, evaluated| {
        if !sink.wants(part.max_ts, &NEWEST_ID) {
            return Ok(false);
        }
        let Some((mut opened, rows)) = evaluated else {
            full = !in_seq_ranges(conn, scope, [part.seqs()], checker, sink)?;
            return Ok(!full);
        };
        if rows.is_empty() {
            return Ok(true);
        }
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
                    full = true;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    })?;
    if full {
        return Ok(());
    }
    // A store written before columns, still being given them: its older rows.
    in_seq_ranges(conn, scope, rows_before_columns(marks.0, named), checker, sink).map(|_| ())
}
