//! The writer thread's side of the embedded store: each round commits the waiting events with
//! their counts and, once a block of 32 is complete, the block's search index, and once a block
//! of 4,096 is, its columns, all in one transaction — so what a 202 acknowledged is counted and
//! findable after any crash.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, Transaction};
use tokio::sync::oneshot;

use super::codec::{BodyDecoder, BodyEncoder, NewestDictionary, train_dictionary};
use super::columns::{ColumnRow, PART_ROWS, PART_SHIFT, SealJob, Sealed, SealedPart, seal_part};
use super::schema::FIRST_LAYOUT_TABLE;
use super::text_index::{BLOCK_EVENTS, BLOCK_SHIFT, IndexText, SPAN_SHIFT, document, span_documents};
use crate::clock::MINUTE_MS;
use crate::event::{Level, StoredEvent};
use crate::sqlite::{AfterCommit, CommitFailed, queue};
use crate::store::histogram::level_index;

/// The first dictionary is trained once this many events are stored, and a new one each time
/// the store has grown tenfold since the last: few dictionaries, each fitted to more data.
const FIRST_DICTIONARY_AT: i64 = 10_000;
/// Events a dictionary is trained on (the newest ones).
const DICTIONARY_SAMPLES: i64 = 5_000;
/// Rows moved from the first layout per transaction.
const UPGRADE_CHUNK: i64 = 5_000;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One event as its row: serialised, compressed and indexed by the caller's task, so the single
/// writer thread spends its time in SQLite only (the group commit is the serial part of ingest).
pub(super) struct Row {
    project: String,
    env: String,
    ts: i64,
    id: [u8; 16],
    level: i64,
    body: Vec<u8>,
    text: IndexText,
    columns: ColumnRow,
}

impl Row {
    pub(super) fn from_event(e: &StoredEvent, encoder: &mut BodyEncoder) -> anyhow::Result<Row> {
        Ok(Row {
            project: e.project.clone(),
            env: e.env.clone(),
            ts: e.timestamp_ms(),
            id: e.id.to_bytes(),
            level: level_code(e.level),
            body: encoder.encode_event(e)?,
            text: IndexText::of(e),
            columns: ColumnRow::of(e),
        })
    }
}

/// `columns_from` and `columns_upto`, set on a store's first open with columns: at 0 for a new
/// store, at the block of the next row for one written before (its rows below are backfilled).
fn column_marks(conn: &Connection, next_seq: i64) -> anyhow::Result<(i64, i64)> {
    let mark = |name: &str| -> anyhow::Result<Option<i64>> {
        Ok(conn.query_row("SELECT value FROM index_state WHERE name = ?1", [name], |row| row.get(0)).optional()?)
    };
    if let (Some(from), Some(upto)) = (mark("columns_from")?, mark("columns_upto")?) {
        return Ok((from, upto));
    }
    let start = (next_seq >> PART_SHIFT) << PART_SHIFT;
    set_mark(conn, "columns_from", start)?;
    set_mark(conn, "columns_upto", start)?;
    Ok((start, start))
}

fn set_mark(conn: &Connection, name: &str, value: i64) -> anyhow::Result<()> {
    conn.prepare_cached(
        "INSERT INTO index_state (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![name, value])?;
    Ok(())
}

/// Writes one part's row and frames.
fn insert_part(tx: &Transaction<'_>, block: i64, part: SealedPart) -> anyhow::Result<()> {
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO column_parts (stream, block, rows, min_ts, max_ts) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )?
        .query_row(rusqlite::params![part.stream, block, part.rows as i64, part.min_ts, part.max_ts], |row| {
            row.get(0)
        })?;
    let mut insert = tx.prepare_cached("INSERT INTO column_frames (part, name, kind, data) VALUES (?1, ?2, ?3, ?4)")?;
    for frame in part.frames {
        insert.execute(rusqlite::params![id, frame.name, frame.kind, frame.data])?;
    }
    Ok(())
}

/// Writes a block's message trigrams (`span_grams`), in place of any its spans had.
fn store_span_grams(tx: &Transaction<'_>, block: i64, documents: &[(i64, String)]) -> anyhow::Result<()> {
    delete_span_grams(tx, block)?;
    for (span, document) in documents {
        tx.prepare_cached("INSERT INTO span_grams (rowid, text) VALUES (?1, ?2)")?
            .execute(rusqlite::params![span, document])?;
    }
    Ok(())
}

/// Deletes the trigrams of a block's spans.
pub(super) fn delete_span_grams(tx: &Transaction<'_>, block: i64) -> anyhow::Result<()> {
    let first = (block << PART_SHIFT) >> SPAN_SHIFT;
    for span in first..first + (1 << (PART_SHIFT - SPAN_SHIFT)) {
        tx.prepare_cached("DELETE FROM span_grams WHERE rowid = ?1")?.execute([span])?;
    }
    Ok(())
}

/// Writes a block's columns again from its rows' bodies: every stream's, with the block's
/// trigrams, or one stream's (after some of its rows were deleted: the trigrams of the block
/// still name all its rows left). A stream left with no row in the block has no part.
pub(super) fn rebuild_parts(tx: &Transaction<'_>, block: i64, stream: Option<i64>) -> anyhow::Result<()> {
    let first = block << PART_SHIFT;
    let gone: Vec<i64> = tx
        .prepare_cached("DELETE FROM column_parts WHERE block = ?1 AND (?2 IS NULL OR stream = ?2) RETURNING id")?
        .query_map(rusqlite::params![block, stream], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for part in gone {
        tx.prepare_cached("DELETE FROM column_frames WHERE part = ?1")?.execute([part])?;
    }
    let mut by_stream: BTreeMap<i64, Vec<(i64, ColumnRow)>> = BTreeMap::new();
    {
        let mut decoder = BodyDecoder::default();
        let mut stmt = tx.prepare_cached(
            "SELECT seq, stream, body FROM events WHERE seq >= ?1 AND seq < ?2 AND (?3 IS NULL OR stream = ?3)
             ORDER BY seq",
        )?;
        let mut rows = stmt.query(rusqlite::params![first, first + PART_ROWS, stream])?;
        while let Some(row) = rows.next()? {
            let event = decoder.event(tx, &row.get::<_, Vec<u8>>(2)?)?;
            by_stream.entry(row.get(1)?).or_default().push((row.get(0)?, ColumnRow::of(&event)));
        }
    }
    if stream.is_none() {
        let messages = by_stream.values().flatten().map(|(seq, row)| (*seq, row.folded_message()));
        store_span_grams(tx, block, &span_documents(messages))?;
    }
    for (stream, rows) in by_stream {
        if let Some(part) = seal_part(stream, block, &rows)? {
            insert_part(tx, block, part)?;
        }
    }
    Ok(())
}

/// A level as stored: its place in [`Level::ALL`] (debug 0 … fatal 4).
pub(super) fn level_code(level: Level) -> i64 {
    level_index(level) as i64
}

/// Rows to store, an entry for the shared state's queue to commit with them, and who waits.
pub(super) type AppendRequest = (Vec<Row>, Option<String>, oneshot::Sender<Result<(), CommitFailed>>);

/// Rows handed to the sealer and not stored yet past which appends are refused: 64 parts, some
/// 130 MB of column values, seconds of the sealer's work.
const MAX_UNSEALED_ROWS: i64 = 64 * PART_ROWS;

/// What the writer thread is asked to do: store rows (with an entry of the shared state's
/// queue, `crate::sqlite::queue`, committed with them), or run a task of maintenance (a step of
/// deleting old rows, `super::prune`) on its connection after the round's appends; the task
/// sends its own answer.
pub(super) enum Request {
    Append(Vec<Row>, Option<String>, oneshot::Sender<Result<(), CommitFailed>>),
    Maintain(MaintenanceTask),
}

/// A task the writer runs on its own state and connection, between commit rounds.
pub(super) type MaintenanceTask = Box<dyn FnOnce(&mut Writer, &mut Connection) + Send>;

/// What the writer keeps between rounds. All of it can be rebuilt from the database, and is
/// after a failed commit.
pub(super) struct Writer {
    /// Each stream's id by project, then environment (looked up by `&str`, without a key to make).
    streams: FastMap<String, FastMap<String, i64>>,
    next_seq: i64,
    /// The first `seq` whose block is not in the index yet (a block boundary).
    pub(super) indexed_upto: i64,
    /// The index text of every row from `indexed_upto` on: the block being filled.
    pub(super) pending: Vec<(i64, IndexText)>,
    /// The first `seq` whose block has no columns stored yet (a block boundary): rows from here
    /// on are read from their bodies.
    pub(super) columns_upto: i64,
    /// The first `seq` whose block is not handed to the sealer yet.
    pub(super) columns_handed_upto: i64,
    /// Where complete blocks go to be sealed; set once the sealer thread runs, unset if it stops.
    pub(super) sealer: Option<std::sync::mpsc::Sender<SealJob>>,
    /// Rows handed to the sealer and not stored yet past which appends are refused
    /// ([`MAX_UNSEALED_ROWS`]).
    pub(super) max_unsealed_rows: i64,
    /// The first `seq` of the oldest block with columns: a store written before columns existed
    /// has rows below it, which the backfill ([`Writer::backfill_columns`]) gives columns, a
    /// block at a time, newest first.
    pub(super) columns_from: i64,
    /// The column values of every row from `columns_upto` on, with its stream.
    pub(super) column_pending: Vec<(i64, i64, ColumnRow)>,
    /// Blocks handed to the sealer and not stored yet from which rows were deleted since: their
    /// sealed values are stale, and their parts are made from the rows left instead.
    pub(super) deleted_while_sealing: BTreeSet<i64>,
    dictionary: Arc<NewestDictionary>,
    /// `seq` at which the next dictionary is trained.
    next_dictionary_at: i64,
}

impl Writer {
    pub(super) fn load(conn: &Connection, dictionary: Arc<NewestDictionary>) -> anyhow::Result<Writer> {
        dictionary.load(conn)?;
        let next_seq: i64 = conn.query_row("SELECT coalesce(max(seq) + 1, 0) FROM events", [], |row| row.get(0))?;
        let indexed_upto: i64 = conn
            .query_row("SELECT value FROM index_state WHERE name = 'indexed_upto'", [], |row| row.get(0))
            .optional()?
            .unwrap_or(0);
        // When the newest rows were deleted (expired), a `seq` of an indexed block must still
        // not come back: its block's index row would name rows it never saw.
        let next_seq = next_seq.max(indexed_upto);
        let last_trained: Option<i64> = conn
            .query_row("SELECT trained_at_seq FROM dictionaries ORDER BY rowid DESC LIMIT 1", [], |row| row.get(0))
            .optional()?;
        let (columns_from, columns_upto) = column_marks(conn, next_seq)?;
        let mut pending = Vec::new();
        let mut column_pending = Vec::new();
        {
            let mut decoder = BodyDecoder::default();
            let mut stmt = conn.prepare("SELECT seq, stream, body FROM events WHERE seq >= ?1 ORDER BY seq")?;
            let mut rows = stmt.query([indexed_upto.min(columns_upto)])?;
            while let Some(row) = rows.next()? {
                let (seq, stream): (i64, i64) = (row.get(0)?, row.get(1)?);
                let event = decoder.event(conn, &row.get::<_, Vec<u8>>(2)?)?;
                if seq >= indexed_upto {
                    pending.push((seq, IndexText::with_grams(&event)));
                }
                if seq >= columns_upto {
                    column_pending.push((seq, stream, ColumnRow::of(&event)));
                }
            }
        }
        Ok(Writer {
            streams: FastMap::default(),
            next_seq,
            indexed_upto,
            pending,
            columns_upto,
            columns_handed_upto: columns_upto,
            sealer: None,
            max_unsealed_rows: MAX_UNSEALED_ROWS,
            columns_from,
            column_pending,
            deleted_while_sealing: BTreeSet::new(),
            dictionary,
            next_dictionary_at: last_trained.map_or(FIRST_DICTIONARY_AT, |at| (at * 10).max(FIRST_DICTIONARY_AT)),
        })
    }

    /// One round of the writer thread: commits the waiting requests together and answers each
    /// once its events are on disk.
    pub(super) fn commit_round(&mut self, conn: &mut Connection, requests: Vec<Request>) -> AfterCommit {
        let mut batch = Vec::with_capacity(requests.len());
        let mut tasks = Vec::new();
        for request in requests {
            match request {
                Request::Append(rows, entry, reply) => batch.push((rows, entry, reply)),
                Request::Maintain(task) => tasks.push(task),
            }
        }
        if let Some(refused) = self.sealer_behind() {
            for (_, _, reply) in batch.drain(..) {
                let _ = reply.send(Err(refused.clone()));
            }
        }
        if !batch.is_empty() {
            self.commit_appends(conn, batch);
        }
        for task in tasks {
            task(self, conn);
        }
        if self.next_seq >= self.next_dictionary_at {
            if let Err(error) = self.train(conn) {
                tracing::warn!(error = %format!("{error:#}"), "training a compression dictionary");
            }
        }
        AfterCommit::Wait
    }

    /// Why appends wait, when the sealer is too far behind: the column values of the rows it has
    /// not stored are in memory (its queue and this writer's), and a writer faster than the
    /// sealer would hold ever more of them. Ingest answers 503 until the sealer catches up.
    fn sealer_behind(&self) -> Option<CommitFailed> {
        let behind = self.columns_handed_upto - self.columns_upto;
        (self.sealer.is_some() && behind > self.max_unsealed_rows).then(|| {
            CommitFailed::new(anyhow::anyhow!(
                "the embedded store's column sealer is {behind} rows behind: ingest resumes as it catches up"
            ))
        })
    }

    /// The sealer thread has stopped: blocks stay unsealed until the next start, and appends no
    /// longer wait for it.
    pub(super) fn sealer_stopped(&mut self) {
        self.sealer = None;
    }

    fn commit_appends(&mut self, conn: &mut Connection, mut batch: Vec<AppendRequest>) {
        let result = self.commit(conn, &mut batch);
        let result = result.map_err(|e| {
            tracing::error!(error = %format!("{e:#}"), requests = batch.len(), "embedded store commit failed");
            // What this round added to the writer's state was rolled back with it.
            match Writer::load(conn, Arc::clone(&self.dictionary)) {
                Ok(fresh) => {
                    *self = Writer {
                        sealer: self.sealer.take(),
                        max_unsealed_rows: self.max_unsealed_rows,
                        // Blocks in the sealer's hands are still what they were.
                        deleted_while_sealing: std::mem::take(&mut self.deleted_while_sealing),
                        ..fresh
                    }
                }
                Err(reload) => tracing::error!(error = %format!("{reload:#}"), "reloading the writer's state"),
            }
            CommitFailed::new(e)
        });
        for (_, _, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }

    fn commit(&mut self, conn: &mut Connection, batch: &mut [AppendRequest]) -> anyhow::Result<()> {
        let tx = conn.transaction()?;
        self.insert(&tx, batch.iter_mut().flat_map(|(rows, ..)| rows.iter_mut()))?;
        for entry in batch.iter().filter_map(|(_, entry, _)| entry.as_deref()) {
            queue::push_in(&tx, entry)?;
        }
        tx.commit()?;
        self.seal_complete_columns();
        Ok(())
    }

    fn insert<'a>(&mut self, tx: &Transaction<'_>, rows: impl Iterator<Item = &'a mut Row>) -> anyhow::Result<()> {
        let mut counts: HashMap<(i64, i64, i64), i64> = HashMap::new();
        {
            // (stream, ts, id, level) is unique: an event stored twice is stored once.
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (seq, stream, ts, id, level, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for row in rows {
                let stream = self.stream(tx, &row.project, &row.env)?;
                let seq = self.next_seq;
                if insert.execute(rusqlite::params![seq, stream, row.ts, &row.id[..], row.level, row.body])? == 1 {
                    self.next_seq += 1;
                    self.pending.push((seq, std::mem::take(&mut row.text)));
                    self.column_pending.push((seq, stream, std::mem::take(&mut row.columns)));
                    *counts.entry((stream, row.ts.div_euclid(MINUTE_MS), row.level)).or_default() += 1;
                }
            }
        }
        let mut count = tx.prepare_cached(
            "INSERT INTO counts (stream, minute, level, n) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (stream, minute, level) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((stream, minute, level), n) in counts {
            count.execute([stream, minute, level, n])?;
        }
        self.index_complete_blocks(tx)?;
        Ok(())
    }

    /// Hands the column values of every block no later row can join to the sealer thread; called
    /// once their rows are committed, so a sealed block holds only rows that were stored.
    pub(super) fn seal_complete_columns(&mut self) {
        while let Some(&(last, ..)) = self.column_pending.last() {
            let end = self.columns_handed_upto + PART_ROWS;
            if last < end {
                break;
            }
            let taken = self.column_pending.partition_point(|(seq, ..)| *seq < end);
            let mut by_stream: BTreeMap<i64, Vec<(i64, ColumnRow)>> = BTreeMap::new();
            for (seq, stream, row) in self.column_pending.drain(..taken) {
                by_stream.entry(stream).or_default().push((seq, row));
            }
            let job =
                SealJob { block: self.columns_handed_upto >> PART_SHIFT, streams: by_stream.into_iter().collect() };
            // Without a sealer (it stopped), the block stays unsealed until the next start.
            if let Some(sealer) = &self.sealer {
                if sealer.send(job).is_err() {
                    self.sealer = None;
                }
            }
            self.columns_handed_upto = end;
        }
    }

    /// Stores a block the sealer encoded, and moves `columns_upto` past it. Skipped when the
    /// mark is not at the block: a block handed over twice (after a reload) or one after a block
    /// that failed (the next start seals from the mark again). When rows of the block were
    /// deleted since it was handed over, its parts are made from the rows left instead.
    pub(super) fn store_sealed(&mut self, conn: &mut Connection, sealed: Sealed) -> anyhow::Result<()> {
        let first = sealed.block << PART_SHIFT;
        if self.columns_upto != first {
            return Ok(());
        }
        let rows_deleted = self.deleted_while_sealing.remove(&sealed.block);
        let tx = conn.transaction()?;
        if rows_deleted {
            rebuild_parts(&tx, sealed.block, None)?;
        } else {
            store_span_grams(&tx, sealed.block, &sealed.grams)?;
            for part in sealed.parts {
                insert_part(&tx, sealed.block, part)?;
            }
        }
        set_mark(&tx, "columns_upto", first + PART_ROWS)?;
        tx.commit()?;
        self.columns_upto = first + PART_ROWS;
        Ok(())
    }

    /// Indexes every block no later row can join (rows only get higher `seq`s).
    fn index_complete_blocks(&mut self, tx: &Transaction<'_>) -> anyhow::Result<()> {
        let start = self.indexed_upto;
        while let Some(&(last, _)) = self.pending.last() {
            let end = self.indexed_upto + BLOCK_EVENTS;
            if last < end {
                break;
            }
            let taken = self.pending.partition_point(|(seq, _)| *seq < end);
            if taken > 0 {
                let block = self.indexed_upto >> BLOCK_SHIFT;
                let texts: Vec<IndexText> = self.pending.drain(..taken).map(|(_, text)| text).collect();
                let grams = document(texts.iter().map(|t| &t.grams[..]));
                let tokens = document(texts.iter().map(|t| &t.tokens[..]));
                if !grams.is_empty() {
                    tx.prepare_cached("INSERT INTO grams (rowid, text) VALUES (?1, ?2)")?
                        .execute(rusqlite::params![block, grams])?;
                }
                tx.prepare_cached("INSERT INTO tokens (rowid, text) VALUES (?1, ?2)")?
                    .execute(rusqlite::params![block, tokens])?;
            }
            self.indexed_upto = end;
        }
        if self.indexed_upto != start {
            tx.prepare_cached(
                "INSERT INTO index_state (name, value) VALUES ('indexed_upto', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?
            .execute([self.indexed_upto])?;
        }
        Ok(())
    }

    /// Gives the newest block below `columns_from` its columns, from its rows' bodies, in a
    /// transaction of its own; false when every row had them already.
    pub(super) fn backfill_columns(&mut self, conn: &mut Connection) -> anyhow::Result<bool> {
        let oldest: Option<i64> = conn.query_row("SELECT min(seq) FROM events", [], |row| row.get(0))?;
        if oldest.is_none_or(|oldest| oldest >= self.columns_from) {
            return Ok(false);
        }
        let first = ((self.columns_from >> PART_SHIFT) - 1) << PART_SHIFT;
        let tx = conn.transaction()?;
        rebuild_parts(&tx, first >> PART_SHIFT, None)?;
        set_mark(&tx, "columns_from", first)?;
        tx.commit()?;
        self.columns_from = first;
        Ok(true)
    }

    fn stream(&mut self, tx: &Transaction<'_>, project: &str, env: &str) -> anyhow::Result<i64> {
        if let Some(id) = self.streams.get(project).and_then(|envs| envs.get(env)) {
            return Ok(*id);
        }
        tx.prepare_cached("INSERT OR IGNORE INTO streams (project, env) VALUES (?1, ?2)")?.execute([project, env])?;
        let id = tx
            .prepare_cached("SELECT id FROM streams WHERE project = ?1 AND env = ?2")?
            .query_row([project, env], |row| row.get(0))?;
        self.streams.entry(project.to_string()).or_default().insert(env.to_string(), id);
        Ok(id)
    }

    /// Trains a dictionary on the newest events; bodies written from now on use it.
    fn train(&mut self, conn: &Connection) -> anyhow::Result<()> {
        let mut decoder = BodyDecoder::default();
        let mut samples = Vec::new();
        {
            let mut stmt = conn.prepare("SELECT body FROM events WHERE seq >= ?1")?;
            let mut rows = stmt.query([self.next_seq - DICTIONARY_SAMPLES])?;
            while let Some(row) = rows.next()? {
                samples.push(decoder.json(conn, &row.get::<_, Vec<u8>>(0)?)?);
            }
        }
        self.next_dictionary_at = (self.next_seq * 10).max(FIRST_DICTIONARY_AT);
        let id = train_dictionary(conn, &samples)?;
        conn.execute(
            "UPDATE dictionaries SET trained_at_seq = ?1 WHERE id = ?2",
            rusqlite::params![self.next_seq, id],
        )?;
        self.dictionary.load(conn)?;
        tracing::info!(dictionary = id, samples = samples.len(), "trained a compression dictionary");
        Ok(())
    }

    /// Moves the rows of the first layout's table (if any) into this one, a chunk per
    /// transaction, deleting each chunk from the old table as it goes: an upgrade cut short
    /// carries on at the next start.
    pub(super) fn upgrade_first_layout(&mut self, conn: &mut Connection) -> anyhow::Result<()> {
        let exists: Option<String> = conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [FIRST_LAYOUT_TABLE],
                |row| row.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Ok(());
        }
        let mut moved = 0usize;
        loop {
            let tx = conn.transaction()?;
            let chunk: Vec<(String, String)> = {
                let mut stmt =
                    tx.prepare(&format!("SELECT id, body FROM {FIRST_LAYOUT_TABLE} ORDER BY id LIMIT ?1"))?;
                stmt.query_map([UPGRADE_CHUNK], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let Some((last_id, _)) = chunk.last().cloned() else {
                tx.execute_batch(&format!("DROP TABLE {FIRST_LAYOUT_TABLE}"))?;
                // The moved rows get their columns as a store from before columns does: by the
                // backfill, not from values kept in memory.
                let start = (self.next_seq >> PART_SHIFT) << PART_SHIFT;
                set_mark(&tx, "columns_from", start)?;
                set_mark(&tx, "columns_upto", start)?;
                tx.commit()?;
                (self.columns_from, self.columns_upto, self.columns_handed_upto) = (start, start, start);
                self.column_pending.retain(|(seq, ..)| *seq >= start);
                tracing::info!(events = moved, "moved the first layout's events into the current one");
                return Ok(());
            };
            let mut encoder = BodyEncoder::new(self.dictionary.get());
            let mut rows = Vec::with_capacity(chunk.len());
            for (_, body) in &chunk {
                let event: StoredEvent = serde_json::from_str(body).context("an event of the first layout")?;
                let mut row = Row::from_event(&event, &mut encoder)?;
                // Found by their blocks' trigrams until the backfill gives them parts.
                row.text = IndexText::with_grams(&event);
                rows.push(row);
            }
            self.insert(&tx, rows.iter_mut())?;
            tx.execute(&format!("DELETE FROM {FIRST_LAYOUT_TABLE} WHERE id <= ?1"), [last_id])?;
            tx.commit()?;
            self.seal_complete_columns();
            moved += chunk.len();
        }
    }
}
