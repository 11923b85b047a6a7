//! The embedded store's tables, and the upgrade from the first layout.
//!
//! - `events`: one row per event, numbered by `seq` in the order they were written — the order
//!   the search index's blocks are made of, so a block's rows are one contiguous read. The
//!   `events_by_time` index finds the newest events of a project/environment in any time range
//!   (and counts them by level without reading the rows); it also keeps an event from being
//!   stored twice.
//! - `streams`: a small number per (project, environment), so rows and indexes do not repeat
//!   the names.
//! - `counts`: events per (stream, minute, level), kept at ingest in the same transaction, so
//!   charts and the home page never count rows.
//! - `grams`, `tokens`: the search index over blocks of rows ([`super::text_index`]);
//!   `index_state.indexed_upto` is the first `seq` not in it yet. `span_grams`: the messages'
//!   trigrams per span of 1,024 rows, stored with their part's columns.
//! - `column_parts`, `column_frames`: the fields people filter on as columns, per stream and
//!   block of 4,096 rows, a row per column ([`super::columns`]); `index_state.columns_upto` is the first `seq` without them, and
//!   `columns_from` the first with them (a store from before columns is backfilled).
//! - `dictionaries`: the zstd dictionaries bodies are compressed with ([`super::codec`]).

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension};

/// `PRAGMA user_version` of this layout. The first layout (one `events` table of JSON text keyed
/// by id) left it at 0.
pub(super) const VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams (
    id      INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    env     TEXT NOT NULL,
    UNIQUE (project, env)
);
CREATE TABLE IF NOT EXISTS events (
    seq    INTEGER PRIMARY KEY,
    stream INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    id     BLOB NOT NULL,
    level  INTEGER NOT NULL,
    body   BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_time ON events (stream, ts, id, level);
CREATE TABLE IF NOT EXISTS counts (
    stream INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    level  INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (stream, minute, level)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS grams USING fts5 (
    text, content = '', contentless_delete = 1, detail = none, tokenize = 'ascii'
);
CREATE VIRTUAL TABLE IF NOT EXISTS span_grams USING fts5 (
    text, content = '', contentless_delete = 1, detail = none, tokenize = 'ascii'
);
CREATE VIRTUAL TABLE IF NOT EXISTS tokens USING fts5 (
    text, content = '', contentless_delete = 1, detail = none, tokenize = 'ascii'
);
CREATE TABLE IF NOT EXISTS index_state (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS column_parts (
    id     INTEGER PRIMARY KEY,
    stream INTEGER NOT NULL,
    block  INTEGER NOT NULL,
    rows   INTEGER NOT NULL,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL,
    UNIQUE (stream, block)
);
CREATE TABLE IF NOT EXISTS column_frames (
    part INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (part, name)
);
CREATE TABLE IF NOT EXISTS dictionaries (
    id             INTEGER PRIMARY KEY,
    bytes          BLOB NOT NULL,
    trained_at_seq INTEGER NOT NULL DEFAULT 0
);
";

/// The first layout's table, renamed so the new one can take its name; its rows are moved over
/// by the writer ([`super::write::Writer::upgrade_first_layout`]).
pub(super) const FIRST_LAYOUT_TABLE: &str = "events_v1";

/// Creates the tables, setting aside a first-layout `events` table to be moved over.
pub(super) fn create(conn: &Connection) -> anyhow::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version == 0 && has_first_layout(conn)? {
        conn.execute_batch(&format!(
            "ALTER TABLE events RENAME TO {FIRST_LAYOUT_TABLE}; DROP INDEX IF EXISTS events_by_time;"
        ))
        .context("setting the first layout's events aside")?;
    }
    conn.execute_batch(SCHEMA).context("creating the events schema")?;
    // The shared state's queue, written in the events' commit (`crate::sqlite::queue`).
    conn.execute_batch(crate::sqlite::queue::SCHEMA).context("creating the queue's tables")?;
    conn.execute_batch(&format!("PRAGMA user_version = {VERSION}"))?;
    Ok(())
}

/// The first layout's `events` had a `message` column.
fn has_first_layout(conn: &Connection) -> anyhow::Result<bool> {
    let found: Option<String> = conn
        .query_row("SELECT name FROM pragma_table_info('events') WHERE name = 'message'", [], |row| row.get(0))
        .optional()?;
    Ok(found.is_some())
}

/// A mark of `index_state` (0 before it is first set), read with a cached statement: the reads
/// take their marks before they read what the marks cover.
pub(super) fn index_mark(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT value FROM index_state WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}
