//! What a full read of a range costs in the embedded store, stage by stage (issue 23's design
//! facts, BENCHMARKS.md "Query classes at 10M events, side by side with ClickHouse"): the rows and
//! 32-row blocks of a stream's last DAYS days, their body bytes, and the time of the read by
//! time as the store does it (newest first off the time index) with each stage added in turn —
//! the SQLite read alone, + zstd decompression, + case folding, + parsing into a `StoredEvent`.
//!
//! `cargo run --release --example decode_range -- DATA_DIR [PROJECT] [ENV] [DAYS]`
//! (default `shop production 7`). It opens the store read-only; run it while nothing writes to it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use logboard::event::StoredEvent;
use rusqlite::{Connection, OpenFlags};

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Stage {
    Read,
    Decompress,
    Fold,
    Parse,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else { anyhow::bail!("usage: decode_range DATA_DIR [PROJECT] [ENV] [DAYS]") };
    let project = args.get(2).map_or("shop", String::as_str);
    let env = args.get(3).map_or("production", String::as_str);
    let days: i64 = args.get(4).map_or(Ok(7), |d| d.parse())?;
    let conn = Connection::open_with_flags(PathBuf::from(dir).join("events.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let stream: i64 =
        conn.query_row("SELECT id FROM streams WHERE project = ?1 AND env = ?2", [project, env], |r| r.get(0))?;
    let to_ms = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)?;
    let from_ms = to_ms - days * 86_400_000;
    let (rows, blocks, body_bytes, first_seq, last_seq): (i64, i64, i64, i64, i64) = conn.query_row(
        "SELECT count(*), count(DISTINCT seq >> 5), sum(length(body)), min(seq), max(seq) FROM events
         WHERE stream = ?1 AND ts >= ?2 AND ts <= ?3",
        [stream, from_ms, to_ms],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let all_blocks = (last_seq >> 5) - (first_seq >> 5) + 1;
    println!(
        "{project}/{env}, last {days} days: {rows} rows in {blocks} blocks of 32 (of {all_blocks} blocks \
         spanned, every stream), {body_bytes} body bytes ({:.0} per event)",
        body_bytes as f64 / rows.max(1) as f64
    );
    let dictionaries: HashMap<u32, Vec<u8>> = conn
        .prepare("SELECT id, bytes FROM dictionaries")?
        .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for stage in [Stage::Read, Stage::Decompress, Stage::Fold, Stage::Parse] {
        let mut decompressors: HashMap<u32, zstd::bulk::Decompressor<'static>> = HashMap::new();
        let (started, cpu_before, mut seen, mut json_bytes) = (Instant::now(), cpu_seconds(), 0u64, 0u64);
        let mut statement = conn.prepare(
            "SELECT ts, id, body FROM events WHERE stream = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts DESC, id DESC",
        )?;
        let mut found = statement.query([stream, from_ms, to_ms])?;
        while let Some(row) = found.next()? {
            let body = row.get_ref(2)?.as_blob()?;
            seen += 1;
            if stage < Stage::Decompress {
                json_bytes += body.len() as u64;
                continue;
            }
            let id = zstd::zstd_safe::get_dict_id_from_frame(body).map_or(0, |id| id.get());
            let decompressor = match decompressors.entry(id) {
                std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => slot.insert(match dictionaries.get(&id) {
                    Some(bytes) => zstd::bulk::Decompressor::with_dictionary(bytes)?,
                    None => zstd::bulk::Decompressor::new()?,
                }),
            };
            let size = zstd::zstd_safe::get_frame_content_size(body).ok().flatten().unwrap_or(1 << 20);
            let json = String::from_utf8(decompressor.decompress(body, usize::try_from(size)?)?)?;
            json_bytes += json.len() as u64;
            if stage >= Stage::Fold {
                std::hint::black_box(json.to_ascii_lowercase());
            }
            if stage >= Stage::Parse {
                std::hint::black_box(serde_json::from_str::<StoredEvent>(&json)?);
            }
        }
        let (seconds, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before);
        let name = match stage {
            Stage::Read => "SQLite read by time (ts, id, body)",
            Stage::Decompress => "+ zstd decompress",
            Stage::Fold => "+ fold case (the Need's text test)",
            Stage::Parse => "+ parse into StoredEvent",
        };
        println!(
            "{name:<40} {seen} rows in {seconds:.2} s, CPU {cpu:.2} s ({:.2} µs/row), {json_bytes} bytes",
            cpu * 1e6 / seen.max(1) as f64
        );
    }
    Ok(())
}

/// This process's CPU time (user + system), from /proc: on a shared box the wall time of a stage
/// says more about the neighbours than about the stage.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) start at its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime, fields 14 and 15 of the line (11 and 12 counted from the state); 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}
