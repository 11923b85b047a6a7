//! The source maps benchmark (BENCHMARKS.md, "Source maps (issue 21)").
//!
//! `cargo run --release --example sourcemaps_bench -- [MAP_MB] [MAPS]`
//!
//! Makes a minified bundle's map of about MAP_MB MB (default 5: 200 sources with their
//! `sourcesContent`, one token per source line), uploads it through [`SourceMaps::upload`] to the
//! embedded store's files, then measures what a read adds to a page of 100 events whose stacks
//! (10 frames each) point into it: the first page with the map cold (read from disk and parsed),
//! and warm (the median of 20), each with the page's JSON as `/api/v1/events` writes it; the same
//! page without a map for comparison. Then MAPS (default 50) different maps are applied one after
//! the other, and the cache's estimated bytes and the process's resident memory are printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logboard::config::Config;
use logboard::event::{Level, StoredEvent, new_id};
use logboard::sourcemaps::{FileStore, Key, Shown, SourceMaps};
use sourcemap::SourceMapBuilder;
use time::OffsetDateTime;

const SOURCES: u32 = 200;
const FRAMES: u32 = 10;
const PAGE_EVENTS: usize = 100;

/// A map of about `megabytes` MB, `variant` making each one different.
fn make_map(megabytes: usize, variant: usize) -> (Vec<u8>, u32) {
    let lines_per_source = (megabytes * 1_000_000 / 32 / SOURCES as usize) as u32;
    let mut builder = SourceMapBuilder::new(Some("app.js"));
    let mut column = 0;
    for s in 0..SOURCES {
        let name = format!("src/components/Module{variant}_{s}.vue");
        let source = builder.add_source(&name);
        let mut text = String::new();
        for l in 0..lines_per_source {
            if l % 4 == 0 {
                text.push_str(&format!("function handler{s}_{l}(event) {{\n"));
            } else if l % 4 == 3 {
                text.push_str("}\n");
            } else {
                text.push_str(&format!("  return event.value + {l} * {s};\n"));
            }
            builder.add(0, column, l, 2, Some(&name), (l % 4 == 0).then_some("handler"), false);
            column += 7;
        }
        builder.set_source_contents(source, Some(&text));
    }
    let mut json = Vec::new();
    builder.into_sourcemap().to_writer(&mut json).expect("a map");
    (json, column)
}

/// A page of events whose stacks point into `file`'s first line, up to `columns`.
fn page(release: &str, file: &str, columns: u32) -> Vec<StoredEvent> {
    let now = OffsetDateTime::now_utc();
    (0..PAGE_EVENTS as u32)
        .map(|i| {
            let mut event =
                StoredEvent::bare(new_id(now), ("demo", "production"), (now, now), Level::Error, "TypeError".into());
            let frames: Vec<String> = (0..FRAMES)
                .map(|f| {
                    let column = (i * 7919 + f * 104_729) % columns + 1;
                    format!("    at t (https://shop.example/assets/{file}:1:{column})")
                })
                .collect();
            event.stack = Some(format!("TypeError: x is undefined\n{}", frames.join("\n")));
            event.release = Some(release.to_string());
            event
        })
        .collect()
}

/// What the read API adds for a page: the maps applied, and the JSON written.
async fn render(maps: &SourceMaps, events: &[StoredEvent]) -> (Duration, usize) {
    let started = Instant::now();
    let mapped = maps.apply(events, false).await;
    let shown: Vec<Shown<'_>> = events.iter().zip(&mapped).map(|(e, m)| Shown::new(e, m.as_ref())).collect();
    std::hint::black_box(serde_json::to_string(&shown).expect("json"));
    (started.elapsed(), mapped.iter().flatten().count())
}

fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let megabytes: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(5);
    let count: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(50);
    let dir = tempfile::tempdir()?;
    let config = Config::from_sources(include_str!("../config.toml"), &[]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let maps = SourceMaps::new(Arc::new(FileStore::open(dir.path())?), &config);

    let (map, columns) = make_map(megabytes, 0);
    println!("map: {:.2} MB, {} sources, one minified line of {columns} columns", map.len() as f64 / 1e6, SOURCES);
    let key = |release: &str, file: &str| Key { project: "demo".into(), release: release.into(), file: file.into() };
    let started = Instant::now();
    maps.upload(key("web@1", "app.js"), map).await?;
    println!("upload (checked, parsed once, written): {}", ms(started.elapsed()));

    let unmapped = page("web@0", "app.js", columns);
    let (without, _) = render(&maps, &unmapped).await;
    let events = page("web@1", "app.js", columns);
    let (cold, mapped) = render(&maps, &events).await;
    assert_eq!(mapped, PAGE_EVENTS, "every event mapped");
    let mut warm: Vec<Duration> = Vec::new();
    let mut plain: Vec<Duration> = Vec::new();
    for _ in 0..20 {
        warm.push(render(&maps, &events).await.0);
        plain.push(render(&maps, &unmapped).await.0);
    }
    warm.sort();
    plain.sort();
    println!("page of {PAGE_EVENTS} events x {FRAMES} frames, maps applied + JSON:");
    println!("  no map for the release: first {}, then median {}", ms(without), ms(plain[10]));
    println!("  cold map (read + parse): {}", ms(cold));
    println!("  warm map: median {} (max {})", ms(warm[10]), ms(warm[19]));

    let before = resident_mib();
    for i in 1..=count {
        let (map, columns) = make_map(megabytes, i);
        let file = format!("chunk{i}.js");
        maps.upload(key("web@2", &file), map).await?;
        let (_, mapped) = render(&maps, &page("web@2", &file, columns)).await;
        assert_eq!(mapped, PAGE_EVENTS);
    }
    let (bytes, held) = maps.cache_usage();
    println!(
        "after {count} different maps: the cache holds {held} maps, {:.1} MiB estimated (bound: sourcemaps.cache_bytes = {} MiB); resident {:.0} MiB (+{:.0} MiB over the run)",
        bytes as f64 / 1048576.0,
        config.sourcemaps.cache_bytes >> 20,
        resident_mib(),
        resident_mib() - before
    );
    Ok(())
}
