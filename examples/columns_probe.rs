//! A design probe for issue 23 (BENCHMARKS.md, "Query classes at 10M events"): what per-block
//! columns would cost on disk and how fast the query classes the search index cannot narrow run
//! on them, measured on a real store — before the store is changed.
//!
//! It reads one stream's last DAYS days from an embedded store (read-only), cuts the rows, in the
//! order they were written, into blocks of BLOCK rows, and writes each block as one blob of
//! columns to a scratch SQLite file: `ts` and `level` as arrays, and every JSON path of the events
//! (`http.status`, `extra.service`, `user.id`, ...) as a column of its own — numbers as `f64`
//! (NaN when absent), anything else dictionary-coded per block (the block's distinct values, and a
//! `u32` code per row), `message` as its case-folded text. Each column is its own zstd frame, so
//! a query decompresses only the columns it names. Then it times each class as a chart would
//! (every match counted per 2-hour bucket and level), one thread, over the blobs read back from
//! SQLite, and prints the counts to compare with `benches/clickhouse.sh`.
//!
//! `cargo run --release --example columns_probe -- DATA_DIR [BLOCK] [DAYS]` (default 4096, 7).

#[path = "support/bodies.rs"]
mod bodies;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

const LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];
const BUCKET_MS: i64 = 2 * 3_600_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else { anyhow::bail!("usage: columns_probe DATA_DIR [BLOCK] [DAYS]") };
    let block_rows: usize = args.get(2).map_or(Ok(4096), |b| b.parse())?;
    let days: i64 = args.get(3).map_or(Ok(7), |d| d.parse())?;
    let conn = Connection::open_with_flags(PathBuf::from(dir).join("events.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let stream: i64 =
        conn.query_row("SELECT id FROM streams WHERE project = 'shop' AND env = 'production'", [], |r| r.get(0))?;
    let to_ms = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)?;
    let from_ms = to_ms - days * 86_400_000;

    let scratch = std::env::temp_dir().join("columns-probe.db");
    let _ = std::fs::remove_file(&scratch);
    let out = Connection::open(&scratch)?;
    out.execute_batch(
        "PRAGMA journal_mode = OFF; CREATE TABLE blocks (id INTEGER PRIMARY KEY, min_ts INTEGER, max_ts INTEGER, data BLOB)",
    )?;

    // Build: the rows of the range in the order written, a block at a time.
    let started = Instant::now();
    let mut bodies = bodies::Bodies::of(&conn)?;
    let mut statement =
        conn.prepare("SELECT body FROM events WHERE stream = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY seq")?;
    let mut found = statement.query([stream, from_ms, to_ms])?;
    let (mut block, mut rows, mut bytes, mut blocks) = (Vec::with_capacity(block_rows), 0usize, 0usize, 0usize);
    let mut column_bytes: BTreeMap<String, usize> = BTreeMap::new();
    let insert = out.prepare("INSERT INTO blocks (min_ts, max_ts, data) VALUES (?1, ?2, ?3)");
    let mut insert = insert?;
    let mut flush = |block: &mut Vec<Value>| -> anyhow::Result<()> {
        if block.is_empty() {
            return Ok(());
        }
        let (data, min_ts, max_ts) = encode(block, &mut column_bytes)?;
        bytes += data.len();
        blocks += 1;
        insert.execute(rusqlite::params![min_ts, max_ts, data])?;
        block.clear();
        Ok(())
    };
    while let Some(row) = found.next()? {
        let body = row.get_ref(0)?.as_blob()?;
        let json = bodies.json(body)?;
        block.push(serde_json::from_slice(&json)?);
        rows += 1;
        if block.len() == block_rows {
            flush(&mut block)?;
        }
    }
    flush(&mut block)?;
    drop(insert);
    println!(
        "{rows} rows in {blocks} blocks of {block_rows}: {bytes} bytes of columns, {:.1} per event, built in {:.1} s",
        bytes as f64 / rows.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    let mut by_size: Vec<(&String, &usize)> = column_bytes.iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(a.1));
    for (name, size) in by_size.iter().take(12) {
        println!("  {name:<24} {:6.2} bytes/event", **size as f64 / rows.max(1) as f64);
    }

    // Query: each class as a chart counts it, over the blobs read back.
    type Class = (&'static str, &'static [&'static str], fn(&Block, usize) -> bool);
    let classes: [Class; 9] = [
        ("http.status:>=500", &["http.status"], |b, i| b.number("http.status", i) >= 500.0),
        ("url:*payments*", &["url"], |b, i| b.text_matches("url", i, |v| v.to_ascii_lowercase().contains("payments"))),
        ("has:extra.duration_ms", &["extra.duration_ms"], |b, i| b.has("extra.duration_ms", i)),
        ("extra.duration_ms:>1990", &["extra.duration_ms"], |b, i| b.number("extra.duration_ms", i) > 1990.0),
        ("timeout", &["message"], |b, i| b.message_contains(i, b"timeout")),
        ("payments", &["message"], |b, i| b.message_contains(i, b"payments")),
        ("extra.service:payments", &["extra.service"], |b, i| {
            b.text_matches("extra.service", i, |v| v.eq_ignore_ascii_case("payments"))
        }),
        ("level:error timeout", &["message"], |b, i| b.level[i] == 3 && b.message_contains(i, b"timeout")),
        ("-level:info", &[], |b, i| b.level[i] != 1),
    ];
    for (name, columns, matches) in classes {
        let (started, cpu_before) = (Instant::now(), bodies::cpu_seconds());
        let mut chart: BTreeMap<(i64, u8), u64> = BTreeMap::new();
        let mut statement = out.prepare_cached("SELECT data FROM blocks WHERE max_ts >= ?1 AND min_ts <= ?2")?;
        let mut found = statement.query([from_ms, to_ms])?;
        while let Some(row) = found.next()? {
            let block = Block::decode(row.get_ref(0)?.as_blob()?, columns)?;
            for i in 0..block.ts.len() {
                if (from_ms..=to_ms).contains(&block.ts[i]) && matches(&block, i) {
                    *chart.entry((block.ts[i].div_euclid(BUCKET_MS), block.level[i])).or_default() += 1;
                }
            }
        }
        let total: u64 = chart.values().sum();
        println!(
            "{name:<26} {total:>9} matches  chart in {:6.0} ms (CPU {:5.0} ms)",
            started.elapsed().as_secs_f64() * 1e3,
            (bodies::cpu_seconds() - cpu_before) * 1e3
        );
    }
    Ok(())
}

/// One column's values over a block.
enum Column {
    Number(Vec<f64>),
    /// The block's distinct values, and each row's code (`u32::MAX`: absent).
    Text(Vec<String>, Vec<u32>),
}

/// A block's blob: `n`, then the columns' directory (name, kind, compressed length), then each
/// column as one zstd frame (`ts`, `level` first).
fn encode(rows: &[Value], column_bytes: &mut BTreeMap<String, usize>) -> anyhow::Result<(Vec<u8>, i64, i64)> {
    let mut paths: BTreeMap<String, Vec<Option<Value>>> = BTreeMap::new();
    let (mut ts, mut level) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    let mut message = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let at = row["timestamp"]
            .as_str()
            .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok());
        ts.push(at.map_or(0, |at| i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)));
        level.push(LEVELS.iter().position(|l| Some(*l) == row["level"].as_str()).unwrap_or(1) as u8);
        let text = row["message"].as_str().unwrap_or_default().to_lowercase();
        message.extend_from_slice(&u32::try_from(text.len())?.to_le_bytes());
        message.extend_from_slice(text.as_bytes());
        let mut flat = Vec::new();
        flatten("", row, &mut flat);
        for (path, value) in flat {
            if matches!(path.as_str(), "id" | "timestamp" | "received_at" | "level" | "message" | "project" | "env")
                || path.starts_with("stack")
            {
                continue;
            }
            let column = paths.entry(path).or_insert_with(|| vec![None; rows.len()]);
            column[i] = Some(value);
        }
    }
    let mut frames: Vec<(String, u8, Vec<u8>)> = vec![
        ("ts".into(), 0, ts.iter().flat_map(|t| t.to_le_bytes()).collect()),
        ("level".into(), 0, level.clone()),
        ("message".into(), 0, message),
    ];
    for (path, values) in paths {
        let numeric = values.iter().flatten().all(Value::is_number);
        if numeric {
            let numbers = values.iter().map(|v| v.as_ref().and_then(Value::as_f64).unwrap_or(f64::NAN));
            frames.push((path, 1, numbers.flat_map(f64::to_le_bytes).collect()));
        } else {
            let mut distinct: Vec<String> = Vec::new();
            let mut index: HashMap<String, u32> = HashMap::new();
            let mut codes = Vec::with_capacity(values.len() * 4);
            for value in &values {
                let code = match value {
                    None => u32::MAX,
                    Some(value) => {
                        let text = match value {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        *index.entry(text.clone()).or_insert_with(|| {
                            distinct.push(text);
                            u32::try_from(distinct.len() - 1).unwrap_or(u32::MAX)
                        })
                    }
                };
                codes.extend_from_slice(&code.to_le_bytes());
            }
            let mut raw = Vec::new();
            raw.extend_from_slice(&u32::try_from(distinct.len())?.to_le_bytes());
            for text in &distinct {
                raw.extend_from_slice(&u32::try_from(text.len())?.to_le_bytes());
                raw.extend_from_slice(text.as_bytes());
            }
            raw.extend_from_slice(&codes);
            frames.push((path, 2, raw));
        }
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&u32::try_from(rows.len())?.to_le_bytes());
    blob.extend_from_slice(&u32::try_from(frames.len())?.to_le_bytes());
    let compressed: Vec<Vec<u8>> =
        frames.iter().map(|(_, _, raw)| zstd::bulk::compress(raw, 3)).collect::<Result<_, _>>()?;
    for ((name, kind, _), frame) in frames.iter().zip(&compressed) {
        blob.extend_from_slice(&u16::try_from(name.len())?.to_le_bytes());
        blob.extend_from_slice(name.as_bytes());
        blob.push(*kind);
        blob.extend_from_slice(&u32::try_from(frame.len())?.to_le_bytes());
        *column_bytes.entry(name.clone()).or_default() += frame.len() + name.len() + 7;
    }
    for frame in compressed {
        blob.extend_from_slice(&frame);
    }
    let (min_ts, max_ts) = (ts.iter().copied().min().unwrap_or(0), ts.iter().copied().max().unwrap_or(0));
    Ok((blob, min_ts, max_ts))
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&path, child, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// A block with the columns a query names decoded.
struct Block {
    ts: Vec<i64>,
    level: Vec<u8>,
    message: Vec<(u32, u32)>,
    message_bytes: Vec<u8>,
    columns: HashMap<String, Column>,
}

impl Block {
    fn decode(blob: &[u8], wanted: &[&str]) -> anyhow::Result<Block> {
        let u32_at = |at: usize| -> anyhow::Result<u32> {
            Ok(u32::from_le_bytes(blob.get(at..at + 4).ok_or_else(|| anyhow::anyhow!("short"))?.try_into()?))
        };
        let n = u32_at(0)? as usize;
        let count = u32_at(4)? as usize;
        let mut at = 8;
        let mut directory = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u16::from_le_bytes(blob[at..at + 2].try_into()?) as usize;
            let name = std::str::from_utf8(&blob[at + 2..at + 2 + len])?.to_string();
            let kind = blob[at + 2 + len];
            let size = u32_at(at + 3 + len)? as usize;
            at += 7 + len;
            directory.push((name, kind, size));
        }
        let mut block = Block {
            ts: Vec::new(),
            level: Vec::new(),
            message: Vec::new(),
            message_bytes: Vec::new(),
            columns: HashMap::new(),
        };
        for (name, kind, size) in directory {
            let frame = &blob[at..at + size];
            at += size;
            let wanted_here = matches!(name.as_str(), "ts" | "level") || wanted.contains(&name.as_str());
            if !wanted_here {
                continue;
            }
            let raw = zstd::bulk::decompress(frame, 64 << 20)?;
            match (name.as_str(), kind) {
                ("ts", _) => {
                    block.ts =
                        raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default())).collect()
                }
                ("level", _) => block.level = raw,
                ("message", _) => {
                    let mut i = 0;
                    while i + 4 <= raw.len() {
                        let len = u32::from_le_bytes(raw[i..i + 4].try_into()?);
                        block.message.push((u32::try_from(i + 4)?, len));
                        i += 4 + len as usize;
                    }
                    block.message_bytes = raw;
                }
                (_, 1) => {
                    let numbers = raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()));
                    block.columns.insert(name, Column::Number(numbers.collect()));
                }
                _ => {
                    let distinct_count = u32::from_le_bytes(raw[0..4].try_into()?) as usize;
                    let (mut distinct, mut i) = (Vec::with_capacity(distinct_count), 4);
                    for _ in 0..distinct_count {
                        let len = u32::from_le_bytes(raw[i..i + 4].try_into()?) as usize;
                        distinct.push(String::from_utf8_lossy(&raw[i + 4..i + 4 + len]).into_owned());
                        i += 4 + len;
                    }
                    let codes = raw[i..].chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()));
                    block.columns.insert(name, Column::Text(distinct, codes.collect()));
                }
            }
        }
        debug_assert_eq!(block.ts.len(), n);
        Ok(block)
    }

    fn number(&self, path: &str, i: usize) -> f64 {
        match self.columns.get(path) {
            Some(Column::Number(values)) => values[i],
            _ => f64::NAN,
        }
    }

    fn has(&self, path: &str, i: usize) -> bool {
        match self.columns.get(path) {
            Some(Column::Number(values)) => !values[i].is_nan(),
            Some(Column::Text(distinct, codes)) => codes[i] != u32::MAX && !distinct[codes[i] as usize].is_empty(),
            None => false,
        }
    }

    /// Tested once per row here; a real store would test each distinct value once per block.
    fn text_matches(&self, path: &str, i: usize, test: impl Fn(&str) -> bool) -> bool {
        match self.columns.get(path) {
            Some(Column::Text(distinct, codes)) => codes[i] != u32::MAX && test(&distinct[codes[i] as usize]),
            _ => false,
        }
    }

    fn message_contains(&self, i: usize, word: &[u8]) -> bool {
        let (start, len) = self.message[i];
        let text = &self.message_bytes[start as usize..start as usize + len as usize];
        memchr::memmem::find(text, word).is_some()
    }
}
