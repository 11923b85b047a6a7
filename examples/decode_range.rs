//! What a full read of a range costs in the embedded store, stage by stage (issue 23's design
//! facts, BENCHMARKS.md "Query classes at 10M events, side by side with ClickHouse"): the rows and
//! 32-row blocks of a stream's last DAYS days, their body bytes, and the time of the read by
//! time as the store does it (newest first off the time index) with each stage added in turn —
//! the SQLite read alone, + zstd decompression, + case folding, + parsing into a `StoredEvent`.
//!
//! `cargo run --release --example decode_range -- DATA_DIR [PROJECT] [ENV] [DAYS]`
//! (default `shop production 7`). It opens the store read-only; run it while nothing writes to it.

#[path = "support/bodies.rs"]
mod bodies;

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
    for stage in [Stage::Read, Stage::Decompress, Stage::Fold, Stage::Parse] {
        let mut bodies = bodies::Bodies::of(&conn)?;
        let (started, cpu_before, mut seen, mut json_bytes) = (Instant::now(), bodies::cpu_seconds(), 0u64, 0u64);
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
            let json = String::from_utf8(bodies.json(body)?)?;
            json_bytes += json.len() as u64;
            if stage >= Stage::Fold {
                std::hint::black_box(json.to_ascii_lowercase());
            }
            if stage >= Stage::Parse {
                std::hint::black_box(serde_json::from_str::<StoredEvent>(&json)?);
            }
        }
        let (seconds, cpu) = (started.elapsed().as_secs_f64(), bodies::cpu_seconds() - cpu_before);
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
