//! The column store read whole: charts and pages that go through columns give exactly the
//! evaluator's answer over every event — across several parts and the rows not sealed yet, after
//! deletions rewrote parts, and on a store written before columns while it is given them; and a
//! block whose rows were deleted between its hand-over to the sealer and its store.

use std::path::Path;

use serde_json::json;
use time::{Duration, OffsetDateTime};
use ulid::Ulid;

use super::codec::BodyDecoder;
use super::tests::{TEST_TIME_LIMIT, event, query};
use super::text_index::{BLOCK_SHIFT, IndexText, document};
use super::{LocalStore, Retention};
use crate::event::{Level, StoredEvent};
use crate::search::Query;
use crate::store::histogram::{Buckets, Histogram};
use crate::store::{EventQuery, LogStore};

/// Every class of query columns answer, and some the index answers, over the same events.
const QUERIES: [&str; 25] = [
    "http.status:>=500",
    "-http.status:>=500",
    "-level:info timeout",
    "url:*checkout*",
    "url:*cart*",
    "has:url",
    "has:extra.duration_ms",
    "extra.duration_ms:>1990",
    "timeout",
    "payments",
    "extra.service:payments",
    "-extra.service:pay*",
    "level:error timeout",
    "user:u-3 OR user.plan:pro",
    "type:timeouterror http.method:post",
    "env:production",
    "group:/logboard/*",
    "extra.request_id:*7",
    "extra.request_id:*7 OR http.status:404",
    "stack:*",
    "\"order 12\"",
    "\"order 299 shipped\"",
    "\"order 299\" stack:*",
    "\"order 29\" -level:info",
    "nothing-matches-this",
];

/// A span's trigram document, made from the folded messages its part's columns keep, names the
/// same trigrams the index made of each of its messages when it indexed 32-row blocks.
#[test]
fn span_grams_name_the_trigrams_of_every_message_of_the_span() {
    use super::columns::ColumnRow;
    use super::text_index::{SPAN_SHIFT, span_documents};
    let now = OffsetDateTime::now_utc();
    let mut all = events(now);
    all.push(event("Zahlung für Straße fehlgeschlagen — ÄÖÜ İstanbul ǅ", "error", "production", now));
    let rows: Vec<ColumnRow> = all.iter().map(ColumnRow::of).collect();
    // Rows from the middle of a span on, in any order: a part's streams are handed over apart.
    let first_seq = 3 << SPAN_SHIFT | 500;
    let seqs = (0..all.len() as i64).map(|i| first_seq + if i % 2 == 0 { i } else { all.len() as i64 + i });
    let numbered: Vec<(i64, &StoredEvent, &ColumnRow)> =
        seqs.zip(&all).zip(&rows).map(|((s, e), r)| (s, e, r)).collect();
    let documents = span_documents(numbered.iter().map(|(seq, _, row)| (*seq, row.folded_message())));
    let spans: Vec<i64> = documents.iter().map(|(span, _)| *span).collect();
    let mut expected_spans: Vec<i64> = numbered.iter().map(|(seq, ..)| seq >> SPAN_SHIFT).collect();
    expected_spans.sort_unstable();
    expected_spans.dedup();
    assert_eq!(spans, expected_spans);
    for (span, document_of_span) in &documents {
        let texts: Vec<IndexText> = (numbered.iter())
            .filter(|(seq, ..)| seq >> SPAN_SHIFT == *span)
            .map(|(_, stored, _)| IndexText::with_grams(stored))
            .collect();
        assert_eq!(document_of_span, &document(texts.iter().map(|text| &text.grams[..])), "span {span}");
    }
    assert!(all.iter().all(|stored| IndexText::of(stored).grams.is_empty()), "ingest leaves the trigrams to the span");
}

fn events(now: OffsetDateTime) -> Vec<StoredEvent> {
    (0..9_500i64)
        .map(|i| {
            let level = ["debug", "info", "info", "warn", "error"][(i % 5) as usize];
            let env = if i % 10 == 9 { "dev" } else { "production" };
            // One in five is three days old: past a retention of two days.
            let age = if i % 5 == 2 { Duration::days(3) } else { Duration::seconds(i * 7 % 72_000) };
            let message = format!(
                "order {} {}",
                i % 300,
                ["paid", "payments retried", "Timeout talking to bank", "shipped"][(i % 4) as usize]
            );
            let mut e = event(&message, level, env, now - Duration::minutes(1) - age);
            if i % 3 != 0 {
                e.http = Some(crate::event::Http {
                    method: Some(["GET", "POST"][(i % 2) as usize].into()),
                    status: Some([200, 404, 500, 503][(i % 4) as usize]),
                });
            }
            if i % 4 == 1 {
                e.url = Some(format!("https://shop.test/{}/{}", ["checkout", "cart"][(i % 8 / 4) as usize], i % 50));
            }
            if i % 6 == 0 {
                e.kind = Some("TimeoutError".into());
                e.stack = Some("TimeoutError\n  at bank (pay.js:1:2)".into());
            }
            e.user = match i % 3 {
                0 => Some(json!(format!("u-{}", i % 5))),
                1 => Some(json!({"id": format!("u-{}", i % 7), "plan": (["pro", "free"][(i % 2) as usize])})),
                _ => None,
            };
            // A random id on every row: its column costs too much and is left out of each part.
            let request_id =
                format!("{:032x}", (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
            e.extra = json!({
                "duration_ms": i * 13 % 2_000,
                "service": (["orders", "payments", "search"][(i % 3) as usize]),
                "request_id": request_id,
            })
            .as_object()
            .cloned();
            e
        })
        .collect()
}

/// Every query's full page, first page and chart against the evaluator over `kept`.
async fn check(store: &LocalStore, kept: &[StoredEvent], now: OffsetDateTime, when: &str) {
    let group = super::tests::project().own_group("production").to_string();
    let from = now - Duration::days(4);
    for text in QUERIES {
        let search: Query = text.parse().expect("query");
        let mut matching: Vec<&StoredEvent> =
            kept.iter().filter(|e| e.env == "production" && e.timestamp >= from && search.matches(e, &group)).collect();
        matching.sort_by_key(|e| std::cmp::Reverse((e.timestamp_ms(), e.id)));
        let expected: Vec<Ulid> = matching.iter().map(|e| e.id).collect();
        let q = EventQuery { search: search.clone(), from, limit: 20_000, ..query(now) };
        let page = store.events(&q).await.expect("page");
        let found: Vec<Ulid> = page.events.iter().map(|e| e.id).collect();
        assert_eq!(found.len(), expected.len(), "{when}: `{text}`");
        assert!(found == expected, "{when}: `{text}` found other events");
        let first = store.events(&EventQuery { limit: 50, ..q.clone() }).await.expect("first page");
        let found: Vec<Ulid> = first.events.iter().map(|e| e.id).collect();
        assert_eq!(found, expected[..expected.len().min(50)], "{when}: first page of `{text}`");
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.events(&EventQuery { limit: 1_000, cursor, ..q.clone() }).await.expect("a page");
            paged.extend(page.events.iter().map(|e| e.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert!(paged == expected, "{when}: `{text}` paged by 1,000");
        let buckets = Buckets::for_range(from, now);
        let mut chart = Histogram::empty(buckets);
        matching.iter().for_each(|e| chart.add(e));
        let counted = store.histogram(&q, buckets).await.expect("chart");
        assert_eq!(counted.counts, chart.counts, "{when}: chart of `{text}`");
        // One bucket holding every part whole: counted by level, without the rows' times.
        let whole =
            Buckets { origin_ms: from.unix_timestamp() * 1_000 - 3_600_000, interval_ms: 30 * 86_400_000, count: 1 };
        let mut chart = Histogram::empty(whole);
        matching.iter().for_each(|e| chart.add(e));
        let counted = store.histogram(&q, whole).await.expect("chart");
        assert_eq!(counted.counts, chart.counts, "{when}: chart of `{text}` in one bucket");
        // The level filter: a page and a chart of its levels only.
        let levels = vec![Level::Warn, Level::Error];
        let of_levels: Vec<&StoredEvent> = matching.iter().copied().filter(|e| levels.contains(&e.level)).collect();
        let q = EventQuery { levels, ..q };
        let page = store.events(&q).await.expect("page");
        let found: Vec<Ulid> = page.events.iter().map(|e| e.id).collect();
        assert!(found == of_levels.iter().map(|e| e.id).collect::<Vec<_>>(), "{when}: `{text}` of two levels");
        let mut chart = Histogram::empty(buckets);
        of_levels.iter().for_each(|e| chart.add(e));
        let counted = store.histogram(&q, buckets).await.expect("chart");
        assert_eq!(counted.counts, chart.counts, "{when}: chart of `{text}` of two levels");
    }
}

fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("events.db")).expect("db")
}

fn parts(dir: &Path) -> i64 {
    db(dir).query_row("SELECT count(*) FROM column_parts", [], |row| row.get(0)).expect("parts")
}

fn mark(dir: &Path, name: &str) -> i64 {
    db(dir).query_row("SELECT value FROM index_state WHERE name = ?1", [name], |row| row.get(0)).expect("mark")
}

/// Gives every block of 32 rows its trigrams document, as stores did before `span_grams`.
fn index_trigrams_by_block(conn: &rusqlite::Connection) {
    let mut decoder = BodyDecoder::default();
    let mut by_block: std::collections::BTreeMap<i64, Vec<IndexText>> = Default::default();
    let mut stmt = conn.prepare("SELECT seq, body FROM events").expect("sql");
    let mut rows = stmt.query([]).expect("rows");
    while let Some(row) = rows.next().expect("row") {
        let event = decoder.event(conn, &row.get::<_, Vec<u8>>(1).expect("body")).expect("event");
        by_block
            .entry(row.get::<_, i64>(0).expect("seq") >> BLOCK_SHIFT)
            .or_default()
            .push(IndexText::with_grams(&event));
    }
    for (block, texts) in by_block {
        let grams = document(texts.iter().map(|text| &text.grams[..]));
        conn.execute("INSERT INTO grams (rowid, text) VALUES (?1, ?2)", rusqlite::params![block, grams])
            .expect("insert");
    }
}

/// Waits (10 s at most) for what a background thread does.
async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn columns_answer_as_the_evaluator_across_parts_deletions_and_a_store_from_before_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = OffsetDateTime::now_utc();
    let all = events(now);
    let retention = Retention { days: 2, ..Retention::default() };
    let store = LocalStore::open_with_retention(dir.path(), TEST_TIME_LIMIT, retention.clone()).expect("open");
    for batch in all.chunks(500) {
        store.append(batch.to_vec()).await.expect("append");
    }
    // 9,500 rows: two blocks of 4,096 sealed (a part per environment each) and a tail without.
    // The sealer thread stores them shortly after the rows.
    wait_for(|| mark(dir.path(), "columns_upto") == 8_192).await;
    assert_eq!(parts(dir.path()), 4);
    let kept: Vec<StoredEvent> = all.iter().filter(|e| e.timestamp > now - Duration::days(2)).cloned().collect();
    check(&store, &kept, now, "sealed").await;

    // Deleting the expired fifth rewrites every part it touched.
    // (On a loaded machine the store's own pass, 30 s after it opened, may have run first.)
    store.prune().await.expect("prune");
    let left: i64 = db(dir.path()).query_row("SELECT count(*) FROM events", [], |row| row.get(0)).expect("count");
    assert_eq!(left, kept.len() as i64);
    let rows: i64 = db(dir.path()).query_row("SELECT sum(rows) FROM column_parts", [], |row| row.get(0)).expect("rows");
    let sealed_and_kept = all[..8_192].iter().filter(|e| e.timestamp > now - Duration::days(2)).count();
    assert_eq!(rows, sealed_and_kept as i64);
    check(&store, &kept, now, "after deletions").await;
    drop(store);

    // A store from before columns: its rows below the next block are backfilled, newest first.
    // Its messages' trigrams were indexed a block of 32 at a time, not with the parts.
    let conn = db(dir.path());
    conn.execute_batch(
        "DELETE FROM column_parts; DELETE FROM column_frames; DELETE FROM index_state WHERE name LIKE 'columns_%';
         DELETE FROM span_grams;",
    )
    .expect("undo");
    index_trigrams_by_block(&conn);
    drop(conn);
    let store = LocalStore::open_with_retention(dir.path(), TEST_TIME_LIMIT, retention).expect("reopen");
    check(&store, &kept, now, "while backfilling").await;
    wait_for(|| mark(dir.path(), "columns_from") == 0).await;
    assert_eq!(mark(dir.path(), "columns_from"), 0);
    assert_eq!(parts(dir.path()), 4);
    check(&store, &kept, now, "backfilled").await;
}

/// A fresh store's writer, driven by the test on its thread, whose sealer is the test too: the
/// jobs it hands over wait in the receiver.
fn writer_with_sealer_by_hand(
    dir: &Path,
) -> (rusqlite::Connection, super::write::Writer, std::sync::mpsc::Receiver<super::columns::SealJob>) {
    let conn = crate::sqlite::open_durable(&dir.join("events.db"), 1_024).expect("open");
    super::schema::create(&conn).expect("schema");
    let dictionary = std::sync::Arc::new(super::codec::NewestDictionary::default());
    let mut writer = super::write::Writer::load(&conn, dictionary).expect("writer");
    let (sealer, jobs) = std::sync::mpsc::channel();
    writer.sealer = Some(sealer);
    (conn, writer, jobs)
}

/// A block sealed off the writer thread whose rows were partly deleted (retention, the size
/// cap) before the writer stored it: the sealed parts name rows that are gone, so the writer
/// makes the parts again from the rows left. Driven by hand, without the sealer thread, so the
/// deletion falls between the hand-over and the store every time.
#[test]
fn a_block_whose_rows_were_deleted_before_it_was_stored_is_sealed_from_the_rows_left() {
    use super::codec::BodyEncoder;
    use super::columns::{PART_ROWS, Sealed};
    use super::write::{Request, Row};

    let dir = tempfile::tempdir().expect("tempdir");
    let (mut conn, mut writer, jobs) = writer_with_sealer_by_hand(dir.path());
    let now = OffsetDateTime::now_utc();
    let mut encoder = BodyEncoder::new(None);
    // Two blocks and a bit, in two environments (two streams).
    let rows: Vec<Row> = (0..PART_ROWS * 2 + 10)
        .map(|i| {
            let env = if i % 3 == 0 { "dev" } else { "production" };
            // Every fifth row of the first block is the oldest, for the size cap to delete.
            let age = if i < PART_ROWS && i % 5 == 0 { 100_000 + i } else { i };
            let e = event(
                &format!("order {i} paid"),
                ["info", "error"][(i % 2) as usize],
                env,
                now - Duration::seconds(age),
            );
            Row::from_event(&e, &mut encoder).expect("row")
        })
        .collect();
    let (reply, answer) = tokio::sync::oneshot::channel();
    writer.commit_round(&mut conn, vec![Request::Append(rows, None, reply)]);
    answer.blocking_recv().expect("answered").expect("stored");
    let sealed: Vec<Sealed> = jobs.try_iter().map(|job| job.seal().expect("sealed")).collect();
    assert_eq!(sealed.iter().map(|s| s.block).collect::<Vec<_>>(), [0, 1]);

    // Rows of the first block deleted (as the size cap does) between the hand-over and the
    // store; the second intact.
    let trim = super::prune::Step::Trim { rows: (PART_ROWS as usize).div_ceil(5) };
    let done = writer.take_step(&mut conn, &trim).expect("trimmed");
    assert_eq!(done, super::prune::StepDone::Deleted((PART_ROWS as usize).div_ceil(5)));
    let left_in_first: i64 = conn
        .query_row("SELECT count(*) FROM events WHERE seq < ?1 AND seq % 5 = 0", [PART_ROWS], |row| row.get(0))
        .expect("count");
    assert_eq!(left_in_first, 0, "the size cap took every fifth row of the first block");
    for block in sealed {
        writer.store_sealed(&mut conn, block).expect("stored");
    }
    let marks: i64 = conn
        .query_row("SELECT value FROM index_state WHERE name = 'columns_upto'", [], |row| row.get(0))
        .expect("mark");
    assert_eq!(marks, PART_ROWS * 2);
    // Each part counts exactly the rows of its stream and block that are left, and its times are
    // theirs, in order.
    let mut parts = conn
        .prepare("SELECT id, stream, block, rows, min_ts, max_ts FROM column_parts ORDER BY block, stream")
        .expect("parts");
    let parts: Vec<(i64, i64, i64, i64, i64, i64)> = parts
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert_eq!(parts.len(), 4);
    for (id, stream, block, rows, min_ts, max_ts) in parts {
        let left: Vec<i64> = conn
            .prepare("SELECT ts FROM events WHERE stream = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq")
            .expect("left")
            .query_map([stream, block * PART_ROWS, (block + 1) * PART_ROWS], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("ts");
        assert_eq!(rows, left.len() as i64, "block {block}, stream {stream}");
        assert_eq!((min_ts, max_ts), (*left.iter().min().expect("a row"), *left.iter().max().expect("a row")));
        let frames: Vec<super::columns::Frame> = conn
            .prepare("SELECT name, kind, data FROM column_frames WHERE part = ?1")
            .expect("frames")
            .query_map([id], |r| Ok(super::columns::Frame { name: r.get(0)?, kind: r.get(1)?, data: r.get(2)? }))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("frames");
        let mut part = super::columns::Part::open(left.len(), frames).expect("open");
        assert_eq!(part.times_and_levels().expect("times").0, &left[..], "block {block}, stream {stream}");
    }
}

/// Appends wait for a sealer that is too far behind (its rows' column values are in memory), and
/// are taken again once it has stored what it was handed; a sealer that stopped holds nothing.
#[test]
fn appends_are_refused_while_the_sealer_is_too_far_behind() {
    use super::codec::BodyEncoder;
    use super::columns::{PART_ROWS, SealJob};
    use super::write::{Request, Row, Writer};

    let dir = tempfile::tempdir().expect("tempdir");
    let (mut conn, mut writer, jobs) = writer_with_sealer_by_hand(dir.path());
    writer.max_unsealed_rows = PART_ROWS;
    let now = OffsetDateTime::now_utc();
    let mut encoder = BodyEncoder::new(None);
    let mut next = 0i64;
    let mut append = |writer: &mut Writer, conn: &mut rusqlite::Connection, n: i64| {
        let rows: Vec<Row> = (next..next + n)
            .map(|i| {
                Row::from_event(&event(&format!("order {i}"), "info", "production", now), &mut encoder).expect("row")
            })
            .collect();
        next += n;
        let (reply, answer) = tokio::sync::oneshot::channel();
        writer.commit_round(conn, vec![Request::Append(rows, None, reply)]);
        answer.blocking_recv().expect("answered")
    };
    let stored = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM events", [], |row| row.get(0)).expect("count")
    };

    // Two parts handed over, none stored: one more than the sealer may have.
    append(&mut writer, &mut conn, PART_ROWS * 2 + 5).expect("stored");
    let refused = append(&mut writer, &mut conn, 10).expect_err("refused while the sealer is behind");
    assert!(refused.to_string().contains("sealer is 8192 rows behind"), "{refused}");
    assert_eq!(stored(&conn), PART_ROWS * 2 + 5, "a refused batch keeps nothing");

    // The sealer stores the first part: one part behind is allowed.
    let handed: Vec<SealJob> = jobs.try_iter().collect();
    assert_eq!(handed.len(), 2);
    let mut handed = handed.into_iter();
    writer.store_sealed(&mut conn, handed.next().expect("job").seal().expect("sealed")).expect("stored");
    append(&mut writer, &mut conn, 10).expect("taken again");
    assert_eq!(stored(&conn), PART_ROWS * 2 + 15);

    // A sealer that stopped: blocks stay unsealed until the next start, and appends go on,
    // whether the writer finds its queue closed or the sealer says it failed while appends wait.
    drop(jobs);
    append(&mut writer, &mut conn, PART_ROWS * 3).expect("stored");
    append(&mut writer, &mut conn, 10).expect("no sealer to wait for");
    let (sealer, _jobs) = std::sync::mpsc::channel::<SealJob>();
    writer.sealer = Some(sealer);
    append(&mut writer, &mut conn, 10).expect_err("refused: the blocks since the mark wait for this one");
    writer.sealer_stopped();
    append(&mut writer, &mut conn, 10).expect("taken once the sealer has stopped");
}

/// Complete blocks a run left unsealed (its sealer stopped, or the process did before the sealer
/// caught up) go to the sealer as the store opens, not at the first append after.
#[tokio::test(flavor = "multi_thread")]
async fn blocks_left_unsealed_are_sealed_at_the_next_start_without_an_append() {
    use super::codec::BodyEncoder;
    use super::columns::PART_ROWS;
    use super::write::{Request, Row};

    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut conn, mut writer, jobs) = writer_with_sealer_by_hand(dir.path());
        drop(jobs);
        let now = OffsetDateTime::now_utc();
        let mut encoder = BodyEncoder::new(None);
        let rows: Vec<Row> = (0..PART_ROWS * 2 + 5)
            .map(|i| Row::from_event(&event(&format!("order {i}"), "info", "production", now), &mut encoder))
            .collect::<anyhow::Result<_>>()
            .expect("rows");
        let (reply, answer) = tokio::sync::oneshot::channel();
        writer.commit_round(&mut conn, vec![Request::Append(rows, None, reply)]);
        answer.await.expect("answered").expect("stored");
    }
    assert_eq!((mark(dir.path(), "columns_upto"), parts(dir.path())), (0, 0), "nothing sealed by the first run");

    let _store = LocalStore::open_with_retention(dir.path(), TEST_TIME_LIMIT, Retention::default()).expect("open");
    wait_for(|| mark(dir.path(), "columns_upto") == PART_ROWS * 2).await;
    assert_eq!(mark(dir.path(), "columns_upto"), PART_ROWS * 2);
    assert_eq!(parts(dir.path()), 2);
}
