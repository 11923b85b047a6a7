//! The shipper against a scripted destination and a real spool: each decision of the loop and
//! the put step, one test each.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::*;
use crate::store::cloudwatch::spool::SpoolRecord;
use async_trait::async_trait;

const T0: i64 = 1_795_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Put { group: String, stream: String, messages: Vec<String> },
    CreateGroup(String),
    CreateStream(String, String),
}

/// A destination that stores what it is given, with errors scripted per call.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<Call>>,
    groups: Mutex<HashSet<String>>,
    streams: Mutex<HashSet<(String, String)>>,
    stored: Mutex<HashMap<(String, String), Vec<OutEvent>>>,
    /// Answers for the next puts, before any other check.
    put_script: Mutex<VecDeque<Result<PutOutcome, PutError>>>,
    /// A message that makes any put containing it fail with InvalidParameter.
    poison: Option<String>,
}

impl Fake {
    fn with_streams(streams: &[(&str, &str)]) -> Fake {
        let fake = Fake::default();
        for (g, s) in streams {
            fake.lock_groups().insert(g.to_string());
            fake.lock_streams().insert((g.to_string(), s.to_string()));
        }
        fake
    }
    fn lock_groups(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.groups.lock().expect("lock")
    }
    fn lock_streams(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.streams.lock().expect("lock")
    }
    fn script(&self, answers: impl IntoIterator<Item = Result<PutOutcome, PutError>>) {
        self.put_script.lock().expect("lock").extend(answers);
    }
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }
    fn stored_messages(&self, group: &str, stream: &str) -> Vec<String> {
        let stored = self.stored.lock().expect("lock");
        stored
            .get(&(group.to_string(), stream.to_string()))
            .map(|events| events.iter().map(|e| e.message.clone()).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl LogDestination for Fake {
    async fn put(&self, group: &str, stream: &str, events: &[OutEvent]) -> Result<PutOutcome, PutError> {
        self.calls.lock().expect("lock").push(Call::Put {
            group: group.into(),
            stream: stream.into(),
            messages: events.iter().map(|e| e.message.clone()).collect(),
        });
        assert!(events.windows(2).all(|w| w[0].timestamp_ms <= w[1].timestamp_ms), "chronological");
        if let Some(answer) = self.put_script.lock().expect("lock").pop_front() {
            return answer;
        }
        if !self.lock_streams().contains(&(group.to_string(), stream.to_string())) {
            return Err(PutError::GroupOrStreamMissing);
        }
        if let Some(poison) = &self.poison
            && events.iter().any(|e| &e.message == poison)
        {
            return Err(PutError::InvalidParameter("poisoned".into()));
        }
        let outcome = PutOutcome::default();
        let mut stored = self.stored.lock().expect("lock");
        stored.entry((group.into(), stream.into())).or_default().extend(events.iter().cloned());
        Ok(outcome)
    }

    async fn create_group(&self, group: &str) -> Result<(), PutError> {
        self.calls.lock().expect("lock").push(Call::CreateGroup(group.into()));
        if self.lock_groups().insert(group.into()) { Ok(()) } else { Err(PutError::AlreadyExists) }
    }

    async fn create_stream(&self, group: &str, stream: &str) -> Result<(), PutError> {
        self.calls.lock().expect("lock").push(Call::CreateStream(group.into(), stream.into()));
        if !self.lock_groups().contains(group) {
            return Err(PutError::GroupOrStreamMissing);
        }
        if self.lock_streams().insert((group.into(), stream.into())) { Ok(()) } else { Err(PutError::AlreadyExists) }
    }
}

fn record(stream: &str, ts: i64, body: &str) -> SpoolRecord {
    SpoolRecord { group: "/g".into(), stream: stream.into(), timestamp_ms: ts, body: body.into() }
}

async fn setup(fake: Fake, records: Vec<SpoolRecord>) -> (tempfile::TempDir, Arc<Spool>, Arc<Fake>, Writer) {
    let dir = tempfile::tempdir().expect("dir");
    let spool = Arc::new(Spool::open(dir.path()).expect("spool"));
    spool.append(records).await.expect("append");
    let fake = Arc::new(fake);
    let writer = Writer::new(Arc::clone(&spool), Arc::clone(&fake) as Arc<dyn LogDestination>);
    (dir, spool, fake, writer)
}

fn puts(calls: &[Call]) -> usize {
    calls.iter().filter(|c| matches!(c, Call::Put { .. })).count()
}

#[tokio::test]
async fn a_missing_group_and_stream_are_created_then_the_put_repeated() {
    let (_dir, spool, fake, mut writer) =
        setup(Fake::default(), vec![record("s1", T0, "a"), record("s1", T0 + 1, "b")]).await;
    let step = writer.try_flush_once(true).await.expect("flush");
    assert_eq!(step.shipped, 2);
    let put = Call::Put { group: "/g".into(), stream: "s1".into(), messages: vec!["a".into(), "b".into()] };
    assert_eq!(
        fake.calls(),
        [put.clone(), Call::CreateGroup("/g".into()), Call::CreateStream("/g".into(), "s1".into()), put]
    );
    assert_eq!(fake.stored_messages("/g", "s1"), ["a", "b"]);
    assert_eq!(spool.unshipped_events(), 0, "shipped events leave the spool");
}

#[tokio::test]
async fn a_known_group_is_not_created_again_for_a_new_stream() {
    let (_dir, spool, fake, mut writer) = setup(Fake::default(), vec![record("s1", T0, "a")]).await;
    writer.try_flush_once(true).await.expect("flush");
    spool.append(vec![record("s2", T0, "b")]).await.expect("append");
    writer.try_flush_once(true).await.expect("flush");
    let creates: Vec<_> = fake.calls().into_iter().filter(|c| matches!(c, Call::CreateGroup(_))).collect();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(fake.stored_messages("/g", "s2"), ["b"]);
}

#[tokio::test]
async fn throttled_twice_then_accepted_is_delivered_exactly_once() {
    let fake = Fake::with_streams(&[("/g", "s1")]);
    fake.script([Err(PutError::Throttled), Err(PutError::Throttled)]);
    let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a"), record("s1", T0, "b")]).await;
    for _ in 0..2 {
        let error = writer.try_flush_once(true).await.expect_err("throttled");
        assert_eq!(error.downcast_ref::<PutError>(), Some(&PutError::Throttled));
        assert_eq!(spool.unshipped_events(), 2, "kept on disk while throttled");
    }
    assert_eq!(writer.try_flush_once(true).await.expect("flush").shipped, 2);
    assert_eq!(fake.stored_messages("/g", "s1"), ["a", "b"]);
    assert_eq!(puts(&fake.calls()), 3);
    assert_eq!(spool.unshipped_events(), 0);
    assert_eq!(writer.try_flush_once(true).await.expect("flush").shipped, 0, "nothing is sent twice");
    assert_eq!(puts(&fake.calls()), 3);
}

#[tokio::test]
async fn an_invalid_event_is_isolated_and_dead_lettered_and_the_others_delivered() {
    let mut fake = Fake::with_streams(&[("/g", "s1")]);
    fake.poison = Some("bad".into());
    let records: Vec<_> =
        ["a", "b", "c", "bad", "d", "e", "f"].iter().enumerate().map(|(i, m)| record("s1", T0 + i as i64, m)).collect();
    let (_dir, spool, fake, mut writer) = setup(fake, records).await;
    let step = writer.try_flush_once(true).await.expect("flush");
    assert_eq!((step.shipped, step.invalid), (6, 1));
    let mut stored = fake.stored_messages("/g", "s1");
    stored.sort();
    assert_eq!(stored, ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(spool.unshipped_events(), 0, "the bad event is not retried forever");
    assert!(puts(&fake.calls()) <= 1 + 2 * 3, "halving, not one put per event");
    let (total, dead) = spool.dead_letters("/g", 10).await.expect("dead letters");
    assert_eq!(total, 1);
    assert_eq!((dead[0].body.as_str(), dead[0].reason.as_str()), ("bad", DeadReason::Invalid.as_str()));
    assert!(dead[0].detail.contains("poisoned"), "{:?}", dead[0].detail);
}

#[tokio::test]
async fn rejected_events_are_counted_and_removed_not_counted_as_shipped() {
    let fake = Fake::with_streams(&[("/g", "s1")]);
    fake.script([Ok(PutOutcome { too_new_start: Some(4), too_old_end: Some(1), expired_end: None })]);
    let records: Vec<_> = (0..5).map(|i| record("s1", T0 + i, &format!("m{i}"))).collect();
    let (_dir, spool, _fake, writer) = setup(fake, records).await;
    let metrics = Arc::new(Metrics::new());
    let mut writer = writer.with_metrics(Arc::clone(&metrics));
    let step = writer.try_flush_once(true).await.expect("flush");
    assert_eq!((step.shipped, step.rejected), (3, 2));
    assert_eq!(spool.unshipped_events(), 0);
    let (total, dead) = spool.dead_letters("/g", 10).await.expect("dead letters");
    assert_eq!(total, 2);
    let dead: Vec<_> = dead.iter().map(|d| (d.body.as_str(), d.reason.as_str())).collect();
    assert_eq!(dead, [("m4", DeadReason::TooNew.as_str()), ("m0", DeadReason::TooOld.as_str())], "newest first");
    assert_eq!(metrics.shipped.get(), 3, "rejected events are never counted as shipped");
    assert_eq!(
        (
            metrics.dead_lettered_count(DeadReason::TooNew.as_str()),
            metrics.dead_lettered_count(DeadReason::TooOld.as_str())
        ),
        (1, 1)
    );
}

#[test]
fn rejection_indices_follow_cloudwatch_semantics() {
    let outcome = PutOutcome { too_new_start: Some(8), too_old_end: Some(2), expired_end: Some(3) };
    // 0..3 expired (covers the too-old range too), 8..10 too new.
    assert_eq!(outcome.rejections(10), Rejections { too_new: 2, too_old: 0, expired: 3 });
    let outcome = PutOutcome { too_new_start: None, too_old_end: Some(2), expired_end: None };
    assert_eq!(outcome.rejections(5), Rejections { too_new: 0, too_old: 2, expired: 0 });
    assert_eq!(PutOutcome::default().rejections(5).total(), 0);
}

#[tokio::test]
async fn auth_errors_keep_the_data() {
    let fake = Fake::with_streams(&[("/g", "s1")]);
    fake.script([Err(PutError::Denied("AccessDeniedException".into()))]);
    let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a")]).await;
    writer.try_flush_once(true).await.expect_err("denied");
    assert_eq!(spool.unshipped_events(), 1);
    writer.try_flush_once(true).await.expect("flush");
    assert_eq!(fake.stored_messages("/g", "s1"), ["a"]);
}

#[tokio::test]
async fn a_group_that_is_denied_does_not_hold_back_the_others() {
    let fake = Fake::with_streams(&[("/g", "s1"), ("/g", "s2")]);
    // Queues are flushed in key order: s1 first, and it is denied.
    fake.script([Err(PutError::Denied("AccessDeniedException".into()))]);
    let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a"), record("s2", T0, "b")]).await;
    let error = writer.try_flush_once(true).await.expect_err("denied");
    assert!(matches!(error.downcast_ref::<PutError>(), Some(PutError::Denied(_))));
    assert_eq!(fake.stored_messages("/g", "s2"), ["b"], "the other stream is shipped");
    assert_eq!(spool.unshipped_events(), 1);
    writer.try_flush_once(true).await.expect("flush");
    assert_eq!(fake.stored_messages("/g", "s1"), ["a"]);
    assert_eq!(spool.unshipped_events(), 0);
}

#[tokio::test]
async fn throttling_stops_the_step_for_every_stream() {
    let fake = Fake::with_streams(&[("/g", "s1"), ("/g", "s2")]);
    fake.script([Err(PutError::Throttled)]);
    let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a"), record("s2", T0, "b")]).await;
    writer.try_flush_once(true).await.expect_err("throttled");
    assert_eq!(puts(&fake.calls()), 1, "no more calls while throttled");
    assert_eq!(spool.unshipped_events(), 2);
}

#[tokio::test]
async fn a_put_that_still_finds_nothing_after_the_create_is_retried_not_dropped() {
    let fake = Fake::default();
    fake.script([Err(PutError::GroupOrStreamMissing), Err(PutError::GroupOrStreamMissing)]);
    let (_dir, spool, fake, mut writer) = setup(fake, vec![record("s1", T0, "a")]).await;
    let error = writer.try_flush_once(true).await.expect_err("still missing");
    assert_eq!(error.downcast_ref::<PutError>(), Some(&PutError::GroupOrStreamMissing));
    assert_eq!(spool.unshipped_events(), 1);
    writer.try_flush_once(true).await.expect("flush");
    assert_eq!(fake.stored_messages("/g", "s1"), ["a"]);
}

#[tokio::test]
async fn a_failure_midway_ships_nothing_twice_and_loses_nothing() {
    // 3 batches (spans of a day apart); the second put fails once.
    let fake = Fake::with_streams(&[("/g", "s1")]);
    fake.script([Ok(PutOutcome::default()), Err(PutError::Transient("HTTP 503".into()))]);
    let day = batch::MAX_BATCH_SPAN_MS;
    let records = vec![record("s1", T0, "d0"), record("s1", T0 + day, "d1"), record("s1", T0 + 2 * day, "d2")];
    let (_dir, spool, fake, mut writer) = setup(fake, records).await;
    writer.try_flush_once(true).await.expect_err("503");
    assert_eq!(spool.unshipped_events(), 2, "the first batch is shipped and removed");
    writer.try_flush_once(true).await.expect("flush");
    // The scripted Ok for the first put skipped the fake's storage; what it stored after is
    // exactly the rest, once each.
    assert_eq!(fake.stored_messages("/g", "s1"), ["d1", "d2"]);
    assert_eq!(spool.unshipped_events(), 0);
}

#[tokio::test]
async fn events_wait_for_the_linger_unless_forced_or_a_batch_is_full() {
    let fake = Fake::with_streams(&[("/g", "s1")]);
    let (_dir, spool, fake, writer) = setup(fake, vec![]).await;
    let mut writer = writer.with_linger(Duration::from_secs(3600));
    assert_eq!(writer.try_flush_once(false).await.expect("flush").shipped, 0, "nothing yet");
    spool.append(vec![record("s1", T0, "a")]).await.expect("append");
    let step = writer.try_flush_once(false).await.expect("flush");
    assert_eq!(step.shipped, 0);
    assert!(step.next_due.is_some());
    assert_eq!(writer.buffered_events(), 1);
    spool
        .append((0..batch::MAX_BATCH_EVENTS as i64).map(|i| record("s1", T0 + i, "x")).collect())
        .await
        .expect("append");
    let step = writer.try_flush_once(false).await.expect("flush");
    assert_eq!(step.shipped, batch::MAX_BATCH_EVENTS + 1, "a full batch flushes the queue");
    assert_eq!(fake.stored_messages("/g", "s1").len(), batch::MAX_BATCH_EVENTS + 1);
}

#[tokio::test]
async fn memory_holds_at_most_the_byte_bound_whatever_the_spool_holds() {
    // 40 MB waiting on disk, CloudWatch throttling every put: memory stays at the bound.
    let fake = Fake::with_streams(&[("/g", "s1")]);
    fake.script((0..3).map(|_| Err(PutError::Throttled)));
    let body = "x".repeat(100_000);
    let records: Vec<_> = (0..400).map(|i| record("s1", T0 + i, &body)).collect();
    let (_dir, spool, _fake, mut writer) = setup(fake, records).await;
    for _ in 0..3 {
        writer.try_flush_once(false).await.expect_err("throttled");
        assert!(writer.buffered_bytes() <= MAX_BUFFERED_BYTES, "{} bytes in memory", writer.buffered_bytes());
        assert_eq!(spool.unshipped_events(), 400, "all of it still on disk");
    }
    assert!(writer.buffered_bytes() >= MAX_BUFFERED_BYTES * 3 / 4, "it does fill memory, up to near the bound");
    while spool.unshipped_events() > 0 {
        writer.try_flush_once(true).await.expect("flush");
        assert!(writer.buffered_bytes() <= MAX_BUFFERED_BYTES);
    }
}

#[tokio::test]
async fn a_backlog_left_by_an_earlier_run_is_due_at_once() {
    let fake = Fake::with_streams(&[("/g", "s1")]);
    let (_dir, _spool, fake, writer) = setup(fake, vec![record("s1", T0, "left over")]).await;
    let mut writer = writer.with_linger(Duration::from_secs(3600));
    assert_eq!(writer.try_flush_once(false).await.expect("flush").shipped, 1);
    assert_eq!(fake.stored_messages("/g", "s1"), ["left over"]);
}

#[tokio::test]
async fn the_running_task_ships_what_is_appended_and_flushes_at_once_on_shutdown() {
    let fake = Fake::with_streams(&[("/g", "s1")]);
    let (_dir, spool, fake, writer) = setup(fake, vec![]).await;
    let mut writer = writer.with_linger(Duration::from_secs(3600));
    // The first load treats what it finds as an earlier run's backlog: have it find nothing.
    writer.try_flush_once(false).await.expect("first load");
    let notify = Arc::new(Notify::new());
    let (flush_all, flush_rx) = watch::channel(false);
    let task = tokio::spawn(writer.run(Arc::clone(&notify), flush_rx));
    spool.append(vec![record("s1", T0, "a")]).await.expect("append");
    notify.notify_one();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(spool.unshipped_events(), 1, "lingering");
    flush_all.send(true).expect("send");
    let deadline = Instant::now() + Duration::from_secs(5);
    while spool.unshipped_events() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.stored_messages("/g", "s1"), ["a"]);
    drop(flush_all);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the task ends").expect("no panic");
}

#[test]
fn a_queue_is_due_when_it_fills_a_batch_or_its_oldest_event_has_lingered() {
    let now = Instant::now();
    let linger = Duration::from_secs(1);
    let queue = |events: usize, bytes: usize, age: Duration| Queue {
        events: (0..events).map(|i| OutEvent { seq: i as i64, timestamp_ms: T0, message: String::new() }).collect(),
        bytes,
        since: now - age,
    };
    assert!(!queue(10, 100, Duration::from_millis(500)).is_due(now, linger), "young and small: waits");
    assert!(queue(10, 100, linger).is_due(now, linger), "waited the linger");
    assert!(queue(batch::MAX_BATCH_EVENTS, 100, Duration::ZERO).is_due(now, linger), "a full batch by count");
    assert!(queue(1, batch::MAX_BATCH_BYTES, Duration::ZERO).is_due(now, linger), "a full batch by bytes");
}
