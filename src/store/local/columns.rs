//! The embedded store's columns: the fields people filter on, kept apart from the bodies, so that
//! a query the search index cannot narrow (a comparison, a negation, a wildcard value, `has:`, a
//! common word) reads a few small columns instead of decompressing and parsing every body of its
//! range (2.7 µs a row, most of it parsing).
//!
//! Columns are kept per *part*: the rows of one stream within a block of [`PART_ROWS`]
//! consecutive `seq`s. A part is one blob: a header naming its columns, then each column as its
//! own zstd frame, so a query decompresses only the columns it names. A field's column is
//! dictionary-coded: its distinct values once, then a code per row, so a test of the field runs
//! once per distinct value and then per row is a table lookup. The time, level and `seq` of
//! every row are columns of their own; the message is kept case-folded (what every text test
//! compares).
//!
//! A field's column that would cost more than [`MAX_COLUMN_BYTES_PER_ROW`] (random ids, which
//! the token index finds anyway) is left out of its part and named as left out: a query that
//! needs it reads that part's bodies. `id` and `stack` are never kept ([`answers`]).
//!
//! What a test of a value means is the evaluator's ([`crate::search::test_json`] and its
//! siblings): this module only finds the values.

use std::borrow::Cow;
use std::collections::HashMap;

use anyhow::{Context as _, bail};
use serde_json::Value as Json;

use super::text_index::span_documents;
use crate::event::{Level, StoredEvent};
use crate::search::{Expr, Field, Node, Pattern, Query, fold_case, test_json, test_text, text_in_each, user_id, walk};
use crate::store::histogram::level_index;

/// Rows per block of columns: `block = seq >> PART_SHIFT`.
pub(super) const PART_SHIFT: u32 = 12;
pub(super) const PART_ROWS: i64 = 1 << PART_SHIFT;

/// The block of columns holding a block of the search index.
pub(super) fn part_of_index_block(index_block: i64) -> i64 {
    index_block >> (PART_SHIFT - super::text_index::BLOCK_SHIFT)
}
/// A field's column past this many compressed bytes per row is left out of its part: the
/// columns together must stay a small share of the store's ~260 bytes per event.
const MAX_COLUMN_BYTES_PER_ROW: usize = 6;
/// Parts smaller than this keep every column: their frames' overhead is not a column's cost.
const MIN_ROWS_TO_LEAVE_OUT: usize = 256;
/// zstd level of the column frames: 1, the fastest, since the writer thread seals them (level 3
/// made them ~5 % smaller and cost the writer twice the time).
const LEVEL: i32 = 1;

/// A hash map with a fast hasher (foldhash, seeded per map): the writer builds one per column of
/// every part, and SipHash was a tenth of its time.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// A column frame never inflates past this (a part holds at most 4,096 rows of capped events).
const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;

const SEQ: &str = "#seq";
const TS: &str = "#ts";
const LEVELS: &str = "#level";
const MESSAGE: &str = "message";

/// The frame of the message of the part's rows of one level (a place in [`Level::ALL`]): a
/// search narrowed to some levels (`level:error timeout`, the level filter) decompresses only
/// theirs, and the message is most of a part's bytes. (Parts sealed before this keep one
/// `message` frame, still read.)
fn message_frame(level: usize) -> String {
    of_level(MESSAGE_FRAMES, level)
}

/// The names of the frames of the message by level, and of its shapes: each a prefix and a
/// level (`message@error`, `shape@error`).
pub(super) const MESSAGE_FRAMES: &str = "message@";
pub(super) const SHAPE_FRAMES: &str = "shape@";

fn of_level(prefix: &str, level: usize) -> String {
    format!("{prefix}{}", Level::ALL.get(level).map_or("?", |level| level.as_str()))
}

/// The frame of the shapes ([`shape_of`]) of one level's messages: a word without digits is
/// looked for in a few hundred distinct shapes instead of 4,096 messages that differ only in
/// their numbers and ids (`… id = 717576 took 854 ms`, `job 4f1c9e2a-… finished`). Left out ([`Kind::LeftOut`]) when the shapes
/// are not [`SHAPE_GAIN`] times smaller than the messages (text varying in more than numbers):
/// a read then takes the messages.
fn shape_frame(level: usize) -> String {
    of_level(SHAPE_FRAMES, level)
}

/// The kind of a level's shapes frame when they were kept.
pub(super) const SHAPES_KEPT: i64 = Kind::Text as i64;

/// What an id becomes in a message's shape ([`shape_of`]).
const SHAPE_MARK: char = '\u{1}';
/// A level's shapes are kept when their frame is at most this many times smaller than its
/// messages' (what they save in decompression, worth their bytes).
const SHAPE_GAIN: usize = 4;

/// Whether a character may be part of a number or id the shape leaves out: digits, the hex
/// letters of UUIDs and hashes (as folded), and `-`.
fn in_id(c: char) -> bool {
    c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-'
}

/// A message with the numbers and ids folded: in each longest run of [`in_id`] characters that
/// holds a digit (`717576`, `4f1c9e2a-0b7d-4c1e`, the `d-1042` of `ord-1042`), everything from its
/// first digit to its last becomes one [`SHAPE_MARK`] (`\u{1}`, `\u{1}e`, `d-\u{1}`).
///
/// A word or phrase with no digit and no mark and with a character that is not [`in_id`]
/// ([`shape_answers`]) is in a message exactly when it is in its shape. An occurrence cannot
/// hold a folded character: those between two digits of one run could only be reached by a text
/// of [`in_id`] characters alone. So it lies in what the shape keeps as it is.
fn shape_of(message: &str, out: &mut String) {
    out.clear();
    // By bytes, in one pass from digit to digit: id characters are ASCII, so every run starts
    // and ends on a character boundary. What lies before a run's first digit (other runs, the
    // run's own start) is copied as it is.
    let bytes = message.as_bytes();
    let (mut copied, mut at) = (0, 0);
    while let Some(found) = bytes[at..].iter().position(u8::is_ascii_digit) {
        let first = at + found;
        let (mut end, mut last) = (first + 1, first);
        while end < bytes.len() && in_id(char::from(bytes[end])) {
            if bytes[end].is_ascii_digit() {
                last = end;
            }
            end += 1;
        }
        out.push_str(&message[copied..first]);
        out.push(SHAPE_MARK);
        out.push_str(&message[last + 1..end]);
        (copied, at) = (end, end);
    }
    out.push_str(&message[copied..]);
}

/// Whether a word or phrase is looked for in the messages' shapes ([`shape_of`]): each of its
/// pieces (between wildcards) without digits or the mark, and with a character an id has not.
fn shape_answers(pattern: &Pattern) -> bool {
    let pieces = pattern.folded().split(crate::search::wildcard::WILDCARD).filter(|piece| !piece.is_empty());
    pieces
        .into_iter()
        .all(|piece| !piece.chars().any(|c| c.is_ascii_digit() || c == SHAPE_MARK) && piece.chars().any(|c| !in_id(c)))
}

/// Levels as bits, bit `i` for `Level::ALL[i]`.
pub(super) type LevelSet = u8;
pub(super) const ALL_LEVELS: LevelSet = (1 << Level::ALL.len()) - 1;

/// How a column's frame is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The rows' `seq`, each as the varint of its difference from the one before (the first's
    /// from the block's first): mostly 1, a byte that compresses to almost nothing.
    Offsets = 0,
    /// Times, each as the zig-zag varint of its difference from the row before.
    Times = 1,
    /// One byte per row: the level's place in [`Level::ALL`].
    Levels = 2,
    /// A dictionary of texts and a code per row.
    Text = 3,
    /// A dictionary of JSON values (as text) and a code per row.
    Json = 4,
    /// Left out of this part: too large.
    LeftOut = 5,
    /// A dictionary of whole numbers (JSON integers, as `extra.duration_ms` or `http.status`),
    /// each a zig-zag varint, and a code per row: tested without text.
    Integers = 6,
}

/// One column of a part as stored: a row of `column_frames`.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    pub name: String,
    pub kind: i64,
    pub data: Vec<u8>,
}

impl Frame {
    fn new(name: impl Into<String>, kind: Kind, data: Vec<u8>) -> Frame {
        Frame { name: name.into(), kind: kind as i64, data }
    }
}

impl Kind {
    fn of(byte: i64) -> anyhow::Result<Kind> {
        Ok(match byte {
            0 => Kind::Offsets,
            1 => Kind::Times,
            2 => Kind::Levels,
            3 => Kind::Text,
            4 => Kind::Json,
            5 => Kind::LeftOut,
            6 => Kind::Integers,
            other => bail!("unknown column kind {other}"),
        })
    }
}

/// What one event gives its part: made by the ingest task (in parallel with others), kept by
/// the writer until the block is sealed. Its values are one buffer of entries — a name, a kind,
/// a length and the value's text — not a string each: the writer frees thousands of these per
/// block, and one allocation made on another thread is cheaper to free than ten.
#[derive(Debug, Default)]
pub(super) struct ColumnRow {
    ts: i64,
    level: u8,
    entries: Vec<u8>,
}

/// The built-in fields kept in columns, by their tag in an entry (`extra` keys have their own).
const BUILT_IN: [&str; 10] =
    [MESSAGE, "type", "code", "url", "location", "release", "fingerprint", "http.method", "http.status", "user"];
/// The tag of an entry whose name is a key of `extra` (its length and bytes follow).
const EXTRA_TAG: u8 = 0xff;

impl ColumnRow {
    pub(super) fn of(event: &StoredEvent) -> ColumnRow {
        let mut row = ColumnRow {
            ts: event.timestamp_ms(),
            level: level_index(event.level) as u8,
            entries: Vec::with_capacity(event.message.len() + 256),
        };
        if event.message.is_ascii() {
            row.text(0, &event.message.to_ascii_lowercase());
        } else {
            row.text(0, &fold_case(&event.message));
        }
        for (tag, value) in (1..).zip(event.text_fields()) {
            if let (_, Some(value)) = value {
                row.text(tag, value);
            }
        }
        if let Some(http) = &event.http {
            if let Some(method) = &http.method {
                row.text(7, method);
            }
            if let Some(status) = http.status {
                row.json(8, &Json::from(status));
            }
        }
        if let Some(user) = &event.user {
            row.json(9, user);
        }
        for (key, value) in event.extra.iter().flatten() {
            row.entries.push(EXTRA_TAG);
            row.entries.extend_from_slice(&(key.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
            row.entries.extend_from_slice(&key.as_bytes()[..key.len().min(usize::from(u16::MAX))]);
            row.value(Kind::Json, |out| {
                let _ = serde_json::to_writer(out, value);
            });
        }
        row
    }

    fn text(&mut self, tag: u8, text: &str) {
        self.entries.push(tag);
        self.value(Kind::Text, |out| out.extend_from_slice(text.as_bytes()));
    }

    fn json(&mut self, tag: u8, value: &Json) {
        self.entries.push(tag);
        self.value(Kind::Json, |out| {
            let _ = serde_json::to_writer(out, value);
        });
    }

    /// The kind, a `u32` length, then what `write` writes.
    fn value(&mut self, kind: Kind, write: impl FnOnce(&mut Vec<u8>)) {
        self.entries.push(kind as u8);
        let at = self.entries.len();
        self.entries.extend_from_slice(&[0; 4]);
        write(&mut self.entries);
        let len = (self.entries.len() - at - 4) as u32;
        self.entries[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// Each entry: whether the name is an `extra` key, the name, the kind and the text.
    fn entries(&self) -> impl Iterator<Item = anyhow::Result<(bool, &str, Kind, &str)>> {
        let mut reader = Reader { bytes: &self.entries };
        std::iter::from_fn(move || {
            if reader.bytes.is_empty() {
                return None;
            }
            Some((|| {
                let tag = reader.u8()?;
                let (extra, name) = if tag == EXTRA_TAG {
                    let len = usize::from(u16::from_le_bytes(reader.take(2)?.try_into()?));
                    (true, std::str::from_utf8(reader.take(len)?)?)
                } else {
                    (false, *BUILT_IN.get(usize::from(tag)).context("an unknown column tag")?)
                };
                let kind = Kind::of(i64::from(reader.u8()?))?;
                let len = reader.u32()?;
                Ok((extra, name, kind, std::str::from_utf8(reader.take(len)?)?))
            })())
        })
    }

    pub(super) fn ts(&self) -> i64 {
        self.ts
    }

    /// The message, folded: the first entry.
    pub(super) fn folded_message(&self) -> &str {
        match self.entries().next() {
            Some(Ok((false, MESSAGE, _, text))) => text,
            _ => "",
        }
    }
}

/// The column of a top-level key of `extra`.
fn extra_column(key: &str) -> String {
    format!("extra.{key}")
}

/// The column values of a complete block, by stream, as the writer hands them over.
pub(super) struct SealJob {
    pub block: i64,
    pub streams: Vec<(i64, Vec<(i64, ColumnRow)>)>,
}

impl SealJob {
    /// Encodes the block's parts, and its messages' trigrams.
    pub(super) fn seal(&self) -> anyhow::Result<Sealed> {
        let parts = (self.streams.iter())
            .filter_map(|(stream, rows)| seal_part(*stream, self.block, rows).transpose())
            .collect::<anyhow::Result<Vec<_>>>()?;
        let messages =
            self.streams.iter().flat_map(|(_, rows)| rows.iter().map(|(seq, row)| (*seq, row.folded_message())));
        Ok(Sealed { block: self.block, parts, grams: span_documents(messages) })
    }
}

/// A block's parts, encoded: what the writer stores.
pub(super) struct Sealed {
    pub block: i64,
    pub parts: Vec<SealedPart>,
    /// The `span_grams` documents of its spans ([`super::text_index::span_documents`]).
    pub grams: Vec<(i64, String)>,
}

pub(super) struct SealedPart {
    pub stream: i64,
    pub rows: usize,
    pub min_ts: i64,
    pub max_ts: i64,
    pub frames: Vec<Frame>,
}

/// Encodes one stream's rows of a block.
pub(super) fn seal_part(stream: i64, block: i64, rows: &[(i64, ColumnRow)]) -> anyhow::Result<Option<SealedPart>> {
    let (Some(min_ts), Some(max_ts)) = (rows.iter().map(|(_, r)| r.ts()).min(), rows.iter().map(|(_, r)| r.ts()).max())
    else {
        return Ok(None);
    };
    let frames = encode_part(block << PART_SHIFT, rows)?;
    Ok(Some(SealedPart { stream, rows: rows.len(), min_ts, max_ts, frames }))
}

/// A column's kind and each row's value (`None` where a row does not have the field).
type ColumnValues<'a> = (Kind, Vec<Option<&'a str>>);

/// The frames of a part, one per column (name, kind, compressed bytes): `rows` are (seq, row)
/// of one stream within the block starting at `first_seq`, in `seq` order.
pub(super) fn encode_part(first_seq: i64, rows: &[(i64, ColumnRow)]) -> anyhow::Result<Vec<Frame>> {
    let mut columns: Vec<Frame> = Vec::new();
    let mut offsets = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len() * 2);
    let mut levels = Vec::with_capacity(rows.len());
    let (mut previous, mut previous_seq) = (0i64, first_seq);
    for (seq, row) in rows {
        if !(first_seq..first_seq + PART_ROWS).contains(seq) || *seq < previous_seq {
            bail!("a row outside its block or out of order");
        }
        put_varint(&mut offsets, (seq - previous_seq) as u64);
        previous_seq = *seq;
        put_varint(&mut times, zigzag(row.ts.wrapping_sub(previous)));
        previous = row.ts;
        levels.push(row.level);
    }
    columns.push(Frame::new(SEQ, Kind::Offsets, compress(&offsets)?));
    columns.push(Frame::new(TS, Kind::Times, compress(&times)?));
    columns.push(Frame::new(LEVELS, Kind::Levels, compress(&levels)?));
    // Every field's values, row by row (`None` where a row does not have it).
    let mut by_name: FastMap<(bool, &str), ColumnValues<'_>> = FastMap::default();
    for (i, (_, row)) in rows.iter().enumerate() {
        for entry in row.entries() {
            let (extra, name, kind, text) = entry?;
            let (_, values) = by_name.entry((extra, name)).or_insert_with(|| (kind, vec![None; rows.len()]));
            values[i] = Some(text);
        }
    }
    for ((extra, name), (kind, values)) in by_name {
        if !extra && name == MESSAGE {
            for level in 0..Level::ALL.len() {
                let of_level: Vec<Option<&str>> = (values.iter().zip(&levels))
                    .filter(|(_, row_level)| usize::from(**row_level) == level)
                    .map(|(value, _)| *value)
                    .collect();
                if of_level.is_empty() {
                    continue;
                }
                let messages = compress(&dictionary(&of_level))?;
                // Every shape in one text, and where each row's is.
                let (mut shape, mut all_shapes, mut spans) = (String::new(), String::new(), Vec::new());
                for message in &of_level {
                    spans.push(message.map(|message| {
                        shape_of(message, &mut shape);
                        all_shapes.push_str(&shape);
                        (all_shapes.len() - shape.len(), all_shapes.len())
                    }));
                }
                let shapes: Vec<Option<&str>> = spans.iter().map(|span| span.map(|(a, b)| &all_shapes[a..b])).collect();
                let shapes = compress(&dictionary(&shapes))?;
                if shapes.len() * SHAPE_GAIN <= messages.len() {
                    columns.push(Frame::new(shape_frame(level), Kind::Text, shapes));
                } else {
                    columns.push(Frame::new(shape_frame(level), Kind::LeftOut, Vec::new()));
                }
                columns.push(Frame::new(message_frame(level), Kind::Text, messages));
            }
            continue;
        }
        let name = if extra { extra_column(name) } else { name.to_string() };
        let integers = (kind == Kind::Json).then(|| integers(&values)).flatten();
        let (kind, frame) = match integers {
            Some(numbers) => (Kind::Integers, compress(&integer_dictionary(&numbers))?),
            None => (kind, compress(&dictionary(&values))?),
        };
        // The message is what words are looked for in: never left out.
        let costly = name != MESSAGE && frame.len() > MAX_COLUMN_BYTES_PER_ROW * rows.len();
        if rows.len() >= MIN_ROWS_TO_LEAVE_OUT && costly {
            columns.push(Frame::new(name, Kind::LeftOut, Vec::new()));
        } else {
            columns.push(Frame::new(name, kind, frame));
        }
    }

    Ok(columns)
}

/// Distinct values first (`u32` count, each one's `u32` length, then all of them end to end),
/// then the width of a code (1, 2 or 4 bytes) and each row's code: 0 for no value, else the
/// value's place + 1. Kept end to end, the values are one text a word is looked for in at once.
fn dictionary(values: &[Option<&str>]) -> Vec<u8> {
    let (distinct, codes) = coded(values);
    let mut out = Vec::new();
    out.extend_from_slice(&(distinct.len() as u32).to_le_bytes());
    for text in &distinct {
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    }
    for text in &distinct {
        out.extend_from_slice(text.as_bytes());
    }
    put_codes(&mut out, distinct.len(), &codes);
    out
}

/// A column's values as whole numbers, when every one is a JSON integer written as Rust writes
/// it back (so its text, which text tests compare, is the number's own).
fn integers(values: &[Option<&str>]) -> Option<Vec<Option<i64>>> {
    values
        .iter()
        .map(|value| match value {
            None => Some(None),
            Some(text) => {
                let n: i64 = text.parse().ok()?;
                (n.to_string() == *text).then_some(Some(n))
            }
        })
        .collect()
}

/// [`dictionary`] of whole numbers: the distinct numbers as zig-zag varints, then the codes.
fn integer_dictionary(values: &[Option<i64>]) -> Vec<u8> {
    let (distinct, codes) = coded(values);
    let mut out = Vec::new();
    out.extend_from_slice(&(distinct.len() as u32).to_le_bytes());
    for n in &distinct {
        put_varint(&mut out, zigzag(*n));
    }
    put_codes(&mut out, distinct.len(), &codes);
    out
}

/// The distinct values in order of first sight, and each row's code: 0 for none, else its
/// value's place + 1.
fn coded<T: Copy + Eq + std::hash::Hash>(values: &[Option<T>]) -> (Vec<T>, Vec<u32>) {
    let mut places: FastMap<T, u32> = FastMap::with_capacity_and_hasher(values.len(), Default::default());
    let mut distinct: Vec<T> = Vec::new();
    let codes: Vec<u32> = values
        .iter()
        .map(|value| {
            value.map_or(0, |value| {
                *places.entry(value).or_insert_with(|| {
                    distinct.push(value);
                    distinct.len() as u32
                })
            })
        })
        .collect();
    (distinct, codes)
}

/// The width of a code (1, 2 or 4 bytes) for `distinct` values, then each code.
fn put_codes(out: &mut Vec<u8>, distinct: usize, codes: &[u32]) {
    let width: u8 = match distinct {
        0..255 => 1,
        255..65_535 => 2,
        _ => 4,
    };
    out.push(width);
    for code in codes {
        out.extend_from_slice(&code.to_le_bytes()[..usize::from(width)]);
    }
}

fn compress(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    thread_local! {
        // One context per thread, as for reading: a part has a frame per column.
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(compressor) => compressor,
            None => slot.insert(zstd::bulk::Compressor::new(LEVEL)?),
        };
        compressor.compress(bytes).context("compressing a column")
    })
}

fn decompress(frame: &[u8]) -> anyhow::Result<Vec<u8>> {
    thread_local! {
        // One context per thread: making one costs more than decompressing a small column.
        static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) => usize::try_from(size).unwrap_or(usize::MAX),
        _ => bail!("a column frame without its size"),
    };
    if size > MAX_FRAME_BYTES {
        bail!("a column frame claims {size} bytes");
    }
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(decompressor) => decompressor,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(frame, size).context("decompressing a column")
    })
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a decompressed frame front to back; every read is checked, so a corrupt part is an
/// error, never a panic.
struct Reader<'b> {
    bytes: &'b [u8],
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'b [u8]> {
        if n > self.bytes.len() {
            bail!("a column part is cut short");
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn u8(&mut self) -> anyhow::Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> anyhow::Result<usize> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?) as usize)
    }

    fn varint(&mut self) -> anyhow::Result<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        bail!("a varint too long")
    }
}

/// A dictionary-coded column, decoded: its values end to end in one text (or, for whole
/// numbers, as numbers), and a code per row.
struct Dictionary {
    kind: Kind,
    joined: String,
    /// Where each value ends in `joined` (and the next begins).
    ends: Vec<usize>,
    /// The values of an [`Kind::Integers`] column (then `joined` is empty).
    numbers: Vec<i64>,
    /// Per row: 0 for no value, else the value's place + 1.
    codes: Vec<u32>,
}

impl Dictionary {
    fn decode(kind: Kind, frame: &[u8], rows: usize) -> anyhow::Result<Dictionary> {
        let bytes = decompress(frame)?;
        let mut reader = Reader { bytes: &bytes };
        let count = reader.u32()?;
        if count > rows {
            bail!("a column with more values than rows");
        }
        let (mut ends, mut numbers, mut joined) = (Vec::new(), Vec::new(), String::new());
        if kind == Kind::Integers {
            numbers = (0..count).map(|_| Ok(unzigzag(reader.varint()?))).collect::<anyhow::Result<_>>()?;
        } else {
            ends.reserve(count);
            let mut end = 0usize;
            for _ in 0..count {
                end = end.checked_add(reader.u32()?).context("a column too long")?;
                ends.push(end);
            }
            // Valid UTF-8 values end to end are valid UTF-8, and each end is a character boundary.
            joined = std::str::from_utf8(reader.take(end)?).context("a column value is not UTF-8")?.to_string();
            if ends.windows(2).any(|w| !joined.is_char_boundary(w[0])) {
                bail!("a column value cut inside a character");
            }
        }
        let width = usize::from(reader.u8()?);
        if !matches!(width, 1 | 2 | 4) {
            bail!("a column code of {width} bytes");
        }
        let raw = reader.take(width * rows)?;
        let codes: Vec<u32> = match width {
            1 => raw.iter().map(|&b| u32::from(b)).collect(),
            2 => raw.chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
            _ => raw.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        };
        if codes.iter().any(|&code| code as usize > count) {
            bail!("a column code past its values");
        }
        Ok(Dictionary { kind, joined, ends, numbers, codes })
    }

    fn values(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(start, end)| &self.joined[start..end])
    }
}

/// Which rows of a part: one bit per row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rows {
    words: Vec<u64>,
    len: usize,
}

impl Rows {
    fn none(len: usize) -> Rows {
        Rows { words: vec![0; len.div_ceil(64)], len }
    }

    fn all(len: usize) -> Rows {
        let mut rows = Rows { words: vec![u64::MAX; len.div_ceil(64)], len };
        rows.trim();
        rows
    }

    fn trim(&mut self) {
        if self.len % 64 != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << (self.len % 64)) - 1;
            }
        }
    }

    fn set(&mut self, row: usize) {
        self.words[row / 64] |= 1 << (row % 64);
    }

    fn and(&mut self, other: &Rows) {
        self.words.iter_mut().zip(&other.words).for_each(|(a, b)| *a &= b);
    }

    fn or(&mut self, other: &Rows) {
        self.words.iter_mut().zip(&other.words).for_each(|(a, b)| *a |= b);
    }

    fn not(&mut self) {
        self.words.iter_mut().for_each(|w| *w = !*w);
        self.trim();
    }

    pub(super) fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// The rows set, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    i * 64 + bit
                })
            })
        })
    }
}

/// Whether columns can answer the query: it names no field kept only in the bodies.
pub(super) fn answers(query: &Query) -> bool {
    fn kept(expr: &Expr) -> bool {
        match &expr.node {
            Node::And(children) | Node::Or(children) => children.iter().all(kept),
            Node::Not(child) => kept(child),
            Node::Text(_) => true,
            Node::Has(field) | Node::Term { field, .. } => !matches!(field, Field::Id | Field::Stack),
        }
    }
    query.root().is_none_or(kept)
}

/// The levels a row needs to match the query ([`LevelSet`]): those its level tests allow
/// (`level:error`, `-level:info`, `level:>=warn`), every level where it has none.
pub(super) fn levels_of(query: &Query) -> LevelSet {
    fn of(expr: &Expr) -> LevelSet {
        match &expr.node {
            Node::And(children) => children.iter().fold(ALL_LEVELS, |set, child| set & of(child)),
            Node::Or(children) => children.iter().fold(0, |set, child| set | of(child)),
            // The set of a level test is exact, so is its complement.
            Node::Not(child) if is_level_test(child) => ALL_LEVELS & !of(child),
            node if is_level_test(expr) => (0..Level::ALL.len())
                .filter(|&i| test_text(node, Some(Level::ALL[i].as_str())))
                .fold(0, |set, i| set | 1 << i),
            _ => ALL_LEVELS,
        }
    }
    fn is_level_test(expr: &Expr) -> bool {
        matches!(&expr.node, Node::Has(Field::Level) | Node::Term { field: Field::Level, .. })
    }
    query.root().map_or(ALL_LEVELS, of)
}

/// The frames a read of a query needs ([`frames_to_read`]).
pub(super) struct ToRead {
    pub names: Vec<String>,
    /// The query tests the message only with words its shapes answer ([`shape_answers`]): of a
    /// level whose shapes were kept, read them, not its messages.
    pub shapes_for_messages: bool,
}

/// The frames a read of the query needs: every row's time and level, its `seq` for a page,
/// and the columns the query tests (of the message, only the frames of `levels`).
pub(super) fn frames_to_read(query: &Query, with_offsets: bool, levels: LevelSet) -> ToRead {
    let mut names = vec![TS.to_string(), LEVELS.to_string()];
    if with_offsets {
        names.push(SEQ.to_string());
    }
    let shapes_for_messages = query.root().is_some_and(shapes_answer);
    for name in columns_of(query) {
        if name == MESSAGE {
            let of_levels = || (0..Level::ALL.len()).filter(|level| levels & 1 << level != 0);
            names.extend(of_levels().map(message_frame));
            if shapes_for_messages {
                names.extend(of_levels().map(shape_frame));
            }
        }
        names.push(name);
    }
    ToRead { names, shapes_for_messages }
}

/// Whether every test of the message in `expr` is a word its shapes answer.
fn shapes_answer(expr: &Expr) -> bool {
    match &expr.node {
        Node::And(children) | Node::Or(children) => children.iter().all(shapes_answer),
        Node::Not(child) => shapes_answer(child),
        Node::Text(pattern) => shape_answers(pattern),
        Node::Has(field) | Node::Term { field, .. } => *field != Field::Message,
    }
}

/// The columns a query tests.
fn columns_of(query: &Query) -> Vec<String> {
    fn collect(expr: &Expr, names: &mut Vec<String>) {
        let name = match &expr.node {
            Node::And(children) | Node::Or(children) => return children.iter().for_each(|c| collect(c, names)),
            Node::Not(child) => return collect(child, names),
            Node::Text(_) => Some(MESSAGE.to_string()),
            Node::Has(field) | Node::Term { field, .. } => place(field).map(|(name, _)| name.into_owned()),
        };
        if let Some(name) = name.filter(|name| !names.contains(name)) {
            names.push(name);
        }
    }
    let mut names = Vec::new();
    if let Some(root) = query.root() {
        collect(root, &mut names);
    }
    names
}

/// The message (or its shapes) of one level's rows: those rows, in order, and their column.
type OfLevel = (Vec<usize>, Dictionary);

/// A part opened for a query: its rows' times and levels, the frames of the columns the query
/// reads, each decoded the first time it is needed.
pub(super) struct Part {
    rows: usize,
    /// The kind of each column read (left out ones too).
    kinds: HashMap<String, Kind>,
    frames: HashMap<String, Vec<u8>>,
    decoded: HashMap<String, Dictionary>,
    /// The message's frames by level, decoded ([`Part::message_by_level`]): the messages, and
    /// the shapes where kept.
    message: [Option<Vec<OfLevel>>; 2],
    ts: Vec<i64>,
    levels: Vec<u8>,
    offsets: Vec<u16>,
}

impl Part {
    /// A part of `rows` rows from the frames read for a query ([`frames_to_read`]): a column
    /// with no frame has no value on any row.
    pub(super) fn open(rows: usize, read: Vec<Frame>) -> anyhow::Result<Part> {
        if rows > PART_ROWS as usize {
            bail!("a column part of {rows} rows");
        }
        let mut kinds = HashMap::with_capacity(read.len());
        let mut frames = HashMap::with_capacity(read.len());
        for frame in read {
            kinds.insert(frame.name.clone(), Kind::of(frame.kind)?);
            frames.insert(frame.name, frame.data);
        }
        Ok(Part {
            rows,
            kinds,
            frames,
            decoded: HashMap::new(),
            message: [None, None],
            ts: Vec::new(),
            levels: Vec::new(),
            offsets: Vec::new(),
        })
    }

    /// Each row's time and level, decoded when first asked (a part with no match never is).
    pub(super) fn times_and_levels(&mut self) -> anyhow::Result<(&[i64], &[u8])> {
        if self.ts.len() != self.rows {
            let times = self.base(TS, Kind::Times)?;
            let mut reader = Reader { bytes: &times };
            let mut previous = 0i64;
            let mut ts = Vec::with_capacity(self.rows);
            for _ in 0..self.rows {
                previous = previous.wrapping_add(unzigzag(reader.varint()?));
                ts.push(previous);
            }
            self.ts = ts;
        }
        self.levels()?;
        Ok((&self.ts, &self.levels))
    }

    /// Each row's level (its place in [`Level::ALL`]), decoded when first asked.
    pub(super) fn levels(&mut self) -> anyhow::Result<&[u8]> {
        if self.levels.len() != self.rows {
            let levels = self.base(LEVELS, Kind::Levels)?;
            if levels.len() != self.rows || levels.iter().any(|l| usize::from(*l) >= Level::ALL.len()) {
                bail!("a column part whose levels do not agree");
            }
            self.levels = levels;
        }
        Ok(&self.levels)
    }

    /// Each row's `seq` less the block's first (read only by pages: charts need no rows).
    pub(super) fn offsets(&mut self) -> anyhow::Result<&[u16]> {
        if self.offsets.len() != self.rows {
            let bytes = self.base(SEQ, Kind::Offsets)?;
            let mut reader = Reader { bytes: &bytes };
            let mut offset = 0u64;
            let mut offsets = Vec::with_capacity(self.rows);
            for _ in 0..self.rows {
                offset = offset.checked_add(reader.varint()?).context("a row's offset past its block")?;
                offsets.push(u16::try_from(offset).context("a row's offset past its block")?);
            }
            self.offsets = offsets;
        }
        Ok(&self.offsets)
    }

    fn base(&self, name: &str, kind: Kind) -> anyhow::Result<Vec<u8>> {
        match (self.kinds.get(name), self.frames.get(name)) {
            (Some(found), Some(frame)) if *found == kind => decompress(frame),
            _ => bail!("a column part without {name}"),
        }
    }

    /// The rows of `levels` matching the query, or `None` when it needs a column left out of
    /// this part. `levels` must hold every level the query can match ([`levels_of`]): the
    /// message of the others need not have been read ([`frames_to_read`]).
    /// `env` and `group` are the stream's (the same for every row).
    /// `verdicts` remembers each value's answer from part to part (most values recur).
    pub(super) fn matching(
        &mut self,
        query: &Query,
        (env, group): (&str, &str),
        levels: LevelSet,
        verdicts: &mut Verdicts,
    ) -> anyhow::Result<Option<Rows>> {
        let Some(mut rows) = (match query.root() {
            None => Some(Rows::all(self.rows)),
            Some(root) => self.eval(root, (env, group), verdicts)?,
        }) else {
            return Ok(None);
        };
        if levels != ALL_LEVELS {
            let mut of_levels = Rows::none(self.rows);
            for (i, level) in self.levels()?.iter().enumerate() {
                if levels & 1 << level != 0 {
                    of_levels.set(i);
                }
            }
            rows.and(&of_levels);
        }
        Ok(Some(rows))
    }

    fn eval(&mut self, expr: &Expr, names: (&str, &str), verdicts: &mut Verdicts) -> anyhow::Result<Option<Rows>> {
        Ok(Some(match &expr.node {
            Node::And(children) => {
                let mut rows = Rows::all(self.rows);
                for child in children {
                    let Some(found) = self.eval(child, names, verdicts)? else { return Ok(None) };
                    rows.and(&found);
                    if rows.is_empty() {
                        break;
                    }
                }
                rows
            }
            Node::Or(children) => {
                let mut rows = Rows::none(self.rows);
                for child in children {
                    let Some(found) = self.eval(child, names, verdicts)? else { return Ok(None) };
                    rows.or(&found);
                }
                rows
            }
            Node::Not(child) => {
                let Some(mut rows) = self.eval(child, names, verdicts)? else { return Ok(None) };
                rows.not();
                rows
            }
            Node::Text(pattern) => self.rows_where(MESSAGE, shape_answers(pattern), false, |column| {
                Ok(text_in_each(pattern, &column.joined, &column.ends))
            })?,
            Node::Has(field) | Node::Term { field, .. } => match field {
                Field::Level => {
                    let passes: Vec<bool> =
                        Level::ALL.iter().map(|level| test_text(&expr.node, Some(level.as_str()))).collect();
                    let mut rows = Rows::none(self.rows);
                    for (i, level) in self.levels()?.iter().enumerate() {
                        if passes[usize::from(*level)] {
                            rows.set(i);
                        }
                    }
                    rows
                }
                Field::Env | Field::Group => {
                    let value = if *field == Field::Env { names.0 } else { names.1 };
                    if test_text(&expr.node, Some(value)) { Rows::all(self.rows) } else { Rows::none(self.rows) }
                }
                field => {
                    let Some((name, pick)) = place(field) else { bail!("{field} is not kept in columns") };
                    let absent = test_json(&expr.node, None);
                    if self.kinds.get(name.as_ref()) == Some(&Kind::LeftOut) {
                        return Ok(None);
                    }
                    let seen = verdicts.of(expr);
                    self.rows_where(&name, false, absent, |column| passes(column, &expr.node, &pick, seen))?
                }
            },
        }))
    }

    /// The rows whose value of the column `name` passes (`passes` answers for each distinct
    /// value of a dictionary); rows without a value are `absent`. Of the message, the shapes
    /// where kept and `shapes` (the test is one they answer).
    fn rows_where(
        &mut self,
        name: &str,
        shapes: bool,
        absent: bool,
        mut passes: impl FnMut(&Dictionary) -> anyhow::Result<Vec<bool>>,
    ) -> anyhow::Result<Rows> {
        if name == MESSAGE && !self.kinds.contains_key(MESSAGE) {
            let (mut rows, mut with_value) = (Rows::none(self.rows), Rows::none(self.rows));
            for (of_level, column) in self.message_by_level(shapes)? {
                let passes = passes(column)?;
                for (&row, &code) in of_level.iter().zip(&column.codes) {
                    if code != 0 {
                        with_value.set(row);
                        if passes[code as usize - 1] {
                            rows.set(row);
                        }
                    }
                }
            }
            if absent {
                with_value.not();
                rows.or(&with_value);
            }
            return Ok(rows);
        }
        Ok(match self.column(name)? {
            Some(column) => by_value(column, &passes(column)?, absent),
            None if absent => Rows::all(self.rows),
            None => Rows::none(self.rows),
        })
    }

    /// The message's frames by level that were read, decoded once per part, each with the
    /// rows it holds (those of its level, in order); the rows of a level not read have no value
    /// (the query cannot match them, [`Part::matching`]). With `shapes`, a level's shapes
    /// where they were kept (and read), else its messages.
    fn message_by_level(&mut self, shapes: bool) -> anyhow::Result<&[OfLevel]> {
        let slot = usize::from(shapes);
        if self.message[slot].is_none() {
            self.levels()?;
            let mut rows_of_level: [Vec<usize>; Level::ALL.len()] = Default::default();
            for (row, level) in self.levels.iter().enumerate() {
                rows_of_level[usize::from(*level)].push(row);
            }
            let mut pieces = Vec::new();
            for (level, rows) in rows_of_level.into_iter().enumerate() {
                let shape = shape_frame(level);
                let kept = |kind: Option<&Kind>| kind == Some(&Kind::Text);
                let name = if shapes && kept(self.kinds.get(&shape)) { shape } else { message_frame(level) };
                let frame = match (self.kinds.get(&name), self.frames.get(&name)) {
                    (None, _) => continue,
                    (Some(Kind::Text), Some(frame)) => frame,
                    _ => bail!("the column {name} is not a text dictionary"),
                };
                let column = Dictionary::decode(Kind::Text, frame, rows.len())?;
                pieces.push((rows, column));
            }
            self.message[slot] = Some(pieces);
        }
        Ok(self.message[slot].as_deref().unwrap_or_default())
    }

    /// A column, decoded once per part; `None` when the part has no such column.
    fn column(&mut self, name: &str) -> anyhow::Result<Option<&Dictionary>> {
        if !self.decoded.contains_key(name) {
            let Some(kind) = self.kinds.get(name) else { return Ok(None) };
            if !matches!(kind, Kind::Text | Kind::Json | Kind::Integers) {
                bail!("the column {name} is not a dictionary");
            }
            let frame = self.frames.get(name).with_context(|| format!("the column {name} was not read"))?;
            let column = Dictionary::decode(*kind, frame, self.rows)?;
            self.decoded.insert(name.to_string(), column);
        }
        Ok(self.decoded.get(name))
    }
}

/// Values whose answer one test remembers, at most: enough for the values that recur in every
/// part (services, statuses, durations), bounded for columns of ever new values.
const MAX_VERDICTS_PER_TEST: usize = 65_536;

/// Each test's answer for the values it has seen, by test: kept across the parts of one read.
#[derive(Default)]
pub(super) struct Verdicts(HashMap<usize, Seen>);

/// One test's answers: for texts and JSON values by their text, for whole numbers by number
/// (the same durations and statuses recur in every part; a lookup is a tenth of a test).
#[derive(Default)]
struct Seen {
    texts: FastMap<Box<str>, bool>,
    numbers: FastMap<i64, bool>,
}

impl Verdicts {
    fn of(&mut self, test: &Expr) -> &mut Seen {
        // A test is known by its place in the query tree, which outlives the read.
        self.0.entry(std::ptr::from_ref(test) as usize).or_default()
    }
}

/// A JSON value of a column; a number (most of them: durations, sizes) straight from its text.
fn json_value(text: &str) -> anyhow::Result<Json> {
    if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        if let Ok(number) = text.parse::<serde_json::Number>() {
            return Ok(Json::Number(number));
        }
    }
    serde_json::from_str(text).context("a column value is not JSON")
}

/// Whether each distinct value of a column passes a field's test (`pick` finds the field in
/// the value); `seen` remembers the verdicts from part to part.
fn passes(column: &Dictionary, test: &Node, pick: &Pick<'_>, seen: &mut Seen) -> anyhow::Result<Vec<bool>> {
    if column.kind == Kind::Integers {
        // A number is tested as the JSON number it was, without text.
        let numbers = &mut seen.numbers;
        return Ok(column
            .numbers
            .iter()
            .map(|n| match numbers.get(n) {
                Some(verdict) => *verdict,
                None => {
                    let verdict = test_json(test, pick.apply(&Json::from(*n)));
                    if numbers.len() < MAX_VERDICTS_PER_TEST {
                        numbers.insert(*n, verdict);
                    }
                    verdict
                }
            })
            .collect());
    }
    let texts = &mut seen.texts;
    column
        .values()
        .map(|text| {
            if let Some(verdict) = texts.get(text) {
                return Ok(*verdict);
            }
            let verdict = match column.kind {
                Kind::Text => test_text(test, Some(text)),
                _ => test_json(test, pick.apply(&json_value(text)?)),
            };
            if texts.len() < MAX_VERDICTS_PER_TEST {
                texts.insert(text.into(), verdict);
            }
            Ok(verdict)
        })
        .collect()
}

/// The rows whose value passes (`passes` per distinct value; `absent` for rows without one).
fn by_value(column: &Dictionary, passes: &[bool], absent: bool) -> Rows {
    let mut rows = Rows::none(column.codes.len());
    for (i, &code) in column.codes.iter().enumerate() {
        let pass = match code {
            0 => absent,
            code => passes[code as usize - 1],
        };
        if pass {
            rows.set(i);
        }
    }
    rows
}

/// How a field's value is found in its column's value.
enum Pick<'f> {
    Whole,
    UserId,
    UserKey(&'f [String]),
    Walk(&'f [String]),
}

impl Pick<'_> {
    fn apply<'j>(&self, value: &'j Json) -> Option<&'j Json> {
        match self {
            Pick::Whole => Some(value),
            Pick::UserId => user_id(value),
            Pick::UserKey(path) => walk(value.as_object()?.get(path.first()?)?, path.get(1..)?),
            Pick::Walk(path) => walk(value, path),
        }
    }
}

/// The column a field is kept in, and how its value is found there; `None` for the fields not
/// kept in columns of their own (the level, env and group are known otherwise).
fn place(field: &Field) -> Option<(Cow<'static, str>, Pick<'_>)> {
    let text = |name: &'static str| Some((Cow::Borrowed(name), Pick::Whole));
    match field {
        Field::Type => text("type"),
        Field::Code => text("code"),
        Field::Message => text(MESSAGE),
        Field::Url => text("url"),
        Field::Location => text("location"),
        Field::Release => text("release"),
        Field::Fingerprint => text("fingerprint"),
        Field::HttpMethod => text("http.method"),
        Field::HttpStatus => text("http.status"),
        Field::User => Some((Cow::Borrowed("user"), Pick::UserId)),
        Field::UserKey(path) => Some((Cow::Borrowed("user"), Pick::UserKey(path))),
        Field::Extra(path) => Some((Cow::Owned(extra_column(path.first()?)), Pick::Walk(path.get(1..)?))),
        Field::Level | Field::Env | Field::Group | Field::Id | Field::Stack => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const GROUP: &str = "/logboard/demo/production";

    fn event(i: usize, fields: Json) -> StoredEvent {
        let mut stored = json!({
            "id": ulid::Ulid::from_parts(1_700_000_000_000 + i as u64, i as u128).to_string(),
            "project": "demo",
            "env": "production",
            "timestamp": "2026-11-24T15:00:00.000Z",
            "received_at": "2026-11-24T15:00:00.000Z",
            "level": "info",
            "message": format!("event {i}"),
        });
        if let (Some(stored), Some(fields)) = (stored.as_object_mut(), fields.as_object()) {
            stored.extend(fields.clone());
        }
        serde_json::from_value(stored).expect("a stored event")
    }

    /// Events with every kind of value a query can test, some fields on some rows only.
    fn events() -> Vec<StoredEvent> {
        (0..600)
            .map(|i| {
                let level = ["debug", "info", "warn", "error", "fatal"][i % 5];
                let mut fields = json!({
                    "level": level,
                    "message": format!("GET /api/orders/{i} took {} ms {}", i % 97, if i % 7 == 0 { "Timeout ΣΥΣ" } else { "ok" }),
                    "extra": {"duration_ms": i * 3 % 2000, "service": (["orders", "payments", "Search"][i % 3]),
                              "nested": {"deep": {"x": i % 4}}, "flag": i % 2 == 0, "none": null, "blank": ""},
                });
                if i % 3 != 0 {
                    fields["http"] = json!({"method": (["GET", "post"][i % 2]), "status": ([200, 404, 500, 503][i % 4])});
                }
                if i % 4 == 0 {
                    fields["url"] = json!(format!("https://shop.test/{}/{}", ["checkout", "cart"][i % 8 / 4], i));
                }
                if i % 5 == 1 {
                    fields["user"] = if i % 2 == 0 { json!({"id": i, "email": format!("u{i}@x.test")}) } else { json!("alice") };
                }
                if i % 11 == 0 {
                    fields["type"] = json!("TimeoutError");
                    fields["extra"]["request_id"] = json!(format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834)));
                }
                event(i, fields)
            })
            .collect()
    }

    fn frames(events: &[StoredEvent]) -> Vec<Frame> {
        let rows: Vec<(i64, ColumnRow)> =
            events.iter().enumerate().map(|(i, e)| (i as i64 + 8192, ColumnRow::of(e))).collect();
        encode_part(8192, &rows).expect("encode")
    }

    /// The part as a read opens it: with the frames `names` names, of those it has.
    fn open(frames: &[Frame], rows: usize, names: &[String]) -> anyhow::Result<Part> {
        Part::open(rows, frames.iter().filter(|f| names.contains(&f.name)).cloned().collect())
    }

    /// The frames a read would take, as `by_columns::read_part` selects them: the messages of
    /// a level whose shapes were kept left out when the shapes answer.
    fn to_read(frames: &[Frame], to_read: &ToRead) -> Vec<Frame> {
        let shaped = |name: &str| {
            let shape = format!("{SHAPE_FRAMES}{}", name.strip_prefix(MESSAGE_FRAMES).unwrap_or("-"));
            frames.iter().any(|f| f.name == shape && f.kind == SHAPES_KEPT)
        };
        (frames.iter())
            .filter(|f| to_read.names.contains(&f.name))
            .filter(|f| !(to_read.shapes_for_messages && shaped(&f.name)))
            .cloned()
            .collect()
    }

    /// The part opened as a read for `query` opens it, and the rows it says match.
    fn matching(frames: &[Frame], rows: usize, query: &Query) -> Option<Rows> {
        matching_of_levels(frames, rows, query, ALL_LEVELS)
    }

    /// [`matching`] with a filter of levels, as a read narrowed to some levels (the query's own,
    /// and the level filter's) opens it.
    fn matching_of_levels(frames: &[Frame], rows: usize, query: &Query, filter: LevelSet) -> Option<Rows> {
        let levels = levels_of(query) & filter;
        let read = frames_to_read(query, false, levels);
        let mut part = Part::open(rows, to_read(frames, &read)).expect("open");
        let found = part.matching(query, ("production", GROUP), levels, &mut Verdicts::default()).expect("read");
        // With every frame named (the messages too), the same.
        let mut part = open(frames, rows, &read.names).expect("open");
        let again = part.matching(query, ("production", GROUP), levels, &mut Verdicts::default()).expect("read");
        assert_eq!(found, again, "{query:?}");
        found
    }

    /// The frames as parts sealed before the message was kept by level have them: one
    /// `message` frame over every row.
    fn with_one_message_frame(frames: &[Frame], events: &[StoredEvent]) -> Vec<Frame> {
        let rows: Vec<ColumnRow> = events.iter().map(ColumnRow::of).collect();
        let messages: Vec<Option<&str>> = rows
            .iter()
            .map(|row| row.entries().map(|e| e.expect("entry")).find(|e| e.1 == MESSAGE).map(|e| e.3))
            .collect();
        let mut old: Vec<Frame> = frames
            .iter()
            .filter(|f| !f.name.starts_with("message@") && !f.name.starts_with("shape@"))
            .cloned()
            .collect();
        old.push(Frame::new(MESSAGE, Kind::Text, compress(&dictionary(&messages)).expect("compress")));
        old
    }

    #[test]
    fn a_part_selects_exactly_the_rows_the_evaluator_matches() {
        let events = events();
        let frames = frames(&events);
        let kind = |name: &str| frames.iter().find(|f| f.name == name).map(|f| f.kind);
        // Whole numbers are kept as numbers; anything else of JSON as its text.
        assert_eq!(kind("http.status"), Some(Kind::Integers as i64));
        assert_eq!(kind("extra.duration_ms"), Some(Kind::Integers as i64));
        assert_eq!(kind("extra.nested"), Some(Kind::Json as i64));
        assert_eq!(kind("type"), Some(Kind::Text as i64));
        // Messages that differ only in their numbers: their shapes are kept.
        assert_eq!(kind("shape@info"), Some(SHAPES_KEPT));
        let mut part =
            open(&frames, events.len(), &frames_to_read(&Query::default(), true, ALL_LEVELS).names).expect("open");
        assert_eq!(part.times_and_levels().expect("times").0.len(), events.len());
        assert_eq!(
            part.offsets().expect("offsets").iter().map(|o| usize::from(*o)).collect::<Vec<_>>(),
            (0..events.len()).collect::<Vec<_>>()
        );
        assert_eq!(
            part.times_and_levels().expect("times").0,
            events.iter().map(StoredEvent::timestamp_ms).collect::<Vec<_>>()
        );
        for query in [
            "http.status:>=500",
            "-http.status:>=500",
            "http.status:50*",
            "http.status:[404,503]",
            "http.method:POST",
            "-level:info",
            "level:>=warn",
            "level:e*",
            "url:*checkout*",
            "-url:*cart*",
            "has:url",
            "has:extra.blank",
            "has:extra.none",
            "has:extra.nested.deep",
            "extra.nested.deep.x:>2",
            "extra.nested:*deep*",
            "extra.flag:TRUE",
            "extra.duration_ms:>1990",
            "extra.duration_ms:[3,6,9]",
            "extra.duration_ms:1*",
            "extra.service:payments",
            "extra.service:search",
            "-extra.service:s*",
            "timeout",
            "σύσ",
            "\"took 5 ms\"",
            "orders/1*",
            "message:get*timeout*",
            "-message:*timeout*",
            "has:message",
            "level:warn -has:message",
            "has:user",
            "user:alice",
            "user:>100",
            "user.email:u1*",
            "-user.email:*",
            "type:timeouterror",
            "extra.request_id:*",
            "env:production",
            "-env:staging",
            "group:/logboard/*",
            "level:error timeout OR http.status:404",
            "(payments OR extra.service:payments) -level:debug",
            "level:error timeout",
            "level:>=warn -timeout",
            "-level:info -level:debug message:*timeout*",
            "-(level:error OR level:warn) took",
            "level:warn OR timeout",
            "level:fatal (ok OR extra.service:search)",
            "level:nothing timeout",
            "extra.missing:1",
            "-extra.missing:1",
            "has:extra.missing",
        ] {
            let parsed = Query::parse(query).expect("query");
            assert!(answers(&parsed), "{query}");
            let found: Vec<usize> = matching(&frames, events.len(), &parsed).expect("kept").iter().collect();
            let expected: Vec<usize> =
                events.iter().enumerate().filter(|(_, e)| parsed.matches(e, GROUP)).map(|(i, _)| i).collect();
            assert_eq!(found, expected, "{query}");
            // Parts sealed with one message frame answer the same.
            let old = with_one_message_frame(&frames, &events);
            let found_old: Vec<usize> = matching(&old, events.len(), &parsed).expect("kept").iter().collect();
            assert_eq!(found_old, expected, "{query}, one message frame");
            // With the level filter: the matches of its levels, whichever message frames it read.
            for filter in [0b01000, 0b00110, 0b11000] {
                let of_levels: Vec<usize> =
                    expected.iter().copied().filter(|i| filter & 1 << level_index(events[*i].level) != 0).collect();
                for frames in [&frames, &old] {
                    let found = matching_of_levels(frames, events.len(), &parsed, filter).expect("kept");
                    assert_eq!(found.iter().collect::<Vec<_>>(), of_levels, "{query}, levels {filter:05b}");
                }
            }
        }
    }

    #[test]
    fn a_word_its_shapes_answer_is_in_a_message_exactly_when_in_its_shape() {
        // Every message of up to 6 characters and every pattern of up to 3 (with wildcards)
        // over an alphabet of id and non-id characters, the mark among them.
        let alphabet = ['1', 'a', '-', 'x', ' ', '\u{1}'];
        let strings = |len: usize, alphabet: &[char]| -> Vec<String> {
            let mut all = vec![String::new()];
            for _ in 0..len {
                let longer: Vec<String> =
                    all.iter().flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}"))).collect();
                all.extend(longer.into_iter().filter(|s| s.chars().count() <= len));
                all.sort();
                all.dedup();
            }
            all
        };
        let messages = strings(6, &alphabet);
        let mut with_star = alphabet.to_vec();
        with_star.push('*');
        let patterns: Vec<Pattern> = strings(3, &with_star).into_iter().map(Pattern::new).collect();
        let answered: Vec<&Pattern> = patterns.iter().filter(|p| shape_answers(p)).collect();
        assert!(answered.len() > 10 && answered.len() < patterns.len(), "{}", answered.len());
        let mut shape = String::new();
        for message in &messages {
            shape_of(message, &mut shape);
            for pattern in &answered {
                assert_eq!(
                    crate::search::text_in(pattern, &shape),
                    crate::search::text_in(pattern, message),
                    "`{}` in {message:?} (shape {shape:?})",
                    pattern.folded()
                );
            }
        }
        // Real words and ids.
        shape_of("payments job 4f1c9e2a-0b7d-4c1e finished in 854 ms, order ord-1042", &mut shape);
        assert_eq!(shape, "payments job \u{1}e finished in \u{1} ms, order ord-\u{1}");
        shape_of("v2 é-9x a1b2c 00", &mut shape);
        assert_eq!(shape, "v\u{1} é-\u{1}x a\u{1}c \u{1}");
        for (word, answered) in [
            ("timeout", true),
            ("payments", true),
            ("error", true),
            ("failed", true),
            ("job * finished", true),
            ("took 5", false),
            ("cafe", false),
            ("job*dead-beef", false),
        ] {
            assert_eq!(shape_answers(&Pattern::new(word)), answered, "{word}");
        }
    }

    #[test]
    fn a_search_narrowed_to_levels_reads_only_their_message() {
        let (query, filter) = (Query::parse("level:error timeout").expect("q"), 0b11110);
        assert_eq!(levels_of(&query), 0b01000);
        assert_eq!(levels_of(&Query::parse("-level:info timeout").expect("q")), 0b11101);
        assert_eq!(levels_of(&Query::parse("level:warn OR timeout").expect("q")), ALL_LEVELS);
        assert_eq!(levels_of(&Query::parse("-(level:warn timeout)").expect("q")), ALL_LEVELS);
        let names = frames_to_read(&query, false, levels_of(&query) & filter).names;
        assert!(names.contains(&"message@error".to_string()), "{names:?}");
        assert!(!names.iter().any(|name| name.starts_with("message@") && name != "message@error"), "{names:?}");
        assert!(
            !frames_to_read(&Query::parse("http.status:500").expect("q"), false, ALL_LEVELS)
                .names
                .iter()
                .any(|name| name.starts_with(MESSAGE))
        );
    }

    #[test]
    fn a_costly_column_is_left_out_and_a_query_needing_it_is_told_so() {
        // Random ids on every row: far more than the bytes a column may cost.
        let events: Vec<StoredEvent> = (0..1_000)
            .map(|i| {
                let id = format!("{:032x}", (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
                // Words of letters no id has: their shapes differ as much as they do.
                let word: String = id.bytes().map(|b| char::from(b'g' + b % 20)).collect();
                event(i, json!({"message": format!("event {i} of {word}"), "extra": {"request_id": id, "service": "orders"}}))
            })
            .collect();
        let frames = frames(&events);
        let needs = |query: &str| matching(&frames, events.len(), &Query::parse(query).expect("q"));
        assert_eq!(needs("extra.request_id:abc*"), None);
        assert_eq!(needs("extra.service:orders OR extra.request_id:x"), None);
        assert_eq!(needs("extra.service:orders").map(|rows| rows.iter().count()), Some(1_000));
        // Messages that differ in more than numbers: their shapes are not kept, and words are
        // looked for in the messages.
        assert!(frames.iter().any(|f| f.name.starts_with("shape@") && f.kind == Kind::LeftOut as i64));
        assert!(!frames.iter().any(|f| f.name.starts_with("shape@") && f.kind == SHAPES_KEPT));
        for query in ["event", "event 7", "-vent*9", "ven", "of"] {
            let parsed = Query::parse(query).expect("query");
            let found: Vec<usize> = matching(&frames, events.len(), &parsed).expect("kept").iter().collect();
            let expected: Vec<usize> =
                events.iter().enumerate().filter(|(_, e)| parsed.matches(e, GROUP)).map(|(i, _)| i).collect();
            assert_eq!(found, expected, "{query}");
        }
        assert!(!answers(&Query::parse("stack:*at*").expect("q")));
        assert!(!answers(&Query::parse("-id:01JDQ4F4N3K4S0Y7P4X8C2V9HZ x").expect("q")));
    }

    #[test]
    fn a_corrupt_part_is_an_error_not_a_panic() {
        let events = events();
        let frames = frames(&events);
        let query = Query::parse("http.status:>=500 timeout").expect("q");
        let names = frames_to_read(&query, true, ALL_LEVELS).names;
        let read = |frames: &[Frame], rows: usize| {
            if let Ok(mut part) = open(frames, rows, &names) {
                let _ = part.matching(&query, ("production", GROUP), ALL_LEVELS, &mut Verdicts::default());
                let _ = part.times_and_levels();
                let _ = part.offsets();
            }
        };
        for victim in 0..frames.len() {
            for cut in [0, 1, 5, 20, frames[victim].data.len() / 2] {
                let mut damaged = frames.clone();
                damaged[victim].data.truncate(cut);
                read(&damaged, events.len());
            }
            let mut flipped = frames.clone();
            for i in (0..flipped[victim].data.len()).step_by(7) {
                flipped[victim].data[i] ^= 0x5a;
            }
            read(&flipped, events.len());
            let mut strange = frames.clone();
            strange[victim].kind = 99;
            read(&strange, events.len());
        }
        read(&frames, events.len() + 1);
        read(&frames, 5_000);
        assert!(open(&frames, 5_000, &names).is_err());
    }
}
