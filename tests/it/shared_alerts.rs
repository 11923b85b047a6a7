//! The alert state and the outbox in the shared DynamoDB table (`shared/spec/state.md`), against
//! moto's real DynamoDB: two instances on one table stand for two tasks (or a task and its
//! replacement after a deploy).

use crate::common;

use std::collections::HashMap;

use common::moto::{Moto, table_for};
use logboard::alerts::burst::Burst;
use logboard::alerts::notification::{Notification, What};
use logboard::alerts::outbox::{DeliveryState, Outbox, Settled};
use logboard::alerts::state::{AlertState, HistoryKind, Saved};
use logboard::dynamo::{DynamoAlertState, DynamoOutbox, Table};
use logboard::event::unix_ms;
use time::OffsetDateTime;

const TABLE: &str = "logboard-alerts-test";

async fn table() -> (Moto, Table) {
    let moto = Moto::start().await;
    let table = table_for(&moto.url, TABLE);
    assert!(table.create().await.expect("create"));
    (moto, table)
}

fn now() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

fn notification(rule: &str) -> Notification {
    Notification {
        rule: rule.into(),
        project: Some("demo".into()),
        env: Some("production".into()),
        what: What::Threshold { count: 6, threshold: 5, window_secs: 300, reminder: false },
        newest_message: Some("boom".into()),
        link: "http://localhost/logs".into(),
    }
}

fn channels(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn sent() -> Settled {
    Settled { state: DeliveryState::Sent, error: None, next_at: None }
}

/// Runs a (blocking) store call on tokio's blocking pool, as the service does.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("the call panicked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_snoozes_and_rule_states_written_by_one_task_read_the_same_on_another() {
    let (_moto, table) = table().await;
    // Called on a worker thread here (block_in_place), on the blocking pool below.
    let one = std::sync::Arc::new(DynamoAlertState::new(table.clone()));
    let two = std::sync::Arc::new(DynamoAlertState::new(table));

    for (at, kind) in HistoryKind::ALL.into_iter().enumerate() {
        let writer = if at % 2 == 0 { &one } else { &two };
        writer.add_history("a", "production", 1_000 + at as i64, kind, kind.as_str(), Some(at as i64)).expect("add");
    }
    // Two lines of one millisecond: the later written is the newer.
    one.add_history("b", "", 5_000, HistoryKind::Fired, "first", Some(9)).expect("add");
    one.add_history("b", "", 5_000, HistoryKind::Suppressed, "grouped", Some(9)).expect("add");

    let reader = two.clone();
    let lines = blocking(move || reader.history("a", 3)).await.expect("history");
    let kinds: Vec<HistoryKind> = lines.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [HistoryKind::Failed, HistoryKind::Unsnoozed, HistoryKind::Snoozed], "newest first, 3");
    assert_eq!(unix_ms(lines[0].at), 1_006);
    assert_eq!(
        (lines[0].env.as_str(), lines[0].detail.as_str(), lines[0].notification),
        ("production", "failed", Some(6))
    );
    assert_eq!(one.history("a", 100).expect("history").len(), 7);
    let b: Vec<(HistoryKind, String)> =
        one.history("b", 10).expect("history").into_iter().map(|e| (e.kind, e.detail)).collect();
    assert_eq!(b, [(HistoryKind::Suppressed, "grouped".into()), (HistoryKind::Fired, "first".into())]);
    assert!(two.history("nothing", 10).expect("history").is_empty());

    // A snooze set on one task is seen on the other; un-snoozing too.
    let setter = one.clone();
    blocking(move || setter.set_snooze("a", Some(1_000_000))).await.expect("snooze");
    one.set_snooze("b", Some(2_000_000)).expect("snooze");
    assert_eq!(
        two.snoozes().expect("snoozes"),
        HashMap::from([("a".to_string(), 1_000_000), ("b".to_string(), 2_000_000)])
    );
    two.set_snooze("b", None).expect("unsnooze");
    assert_eq!(one.snoozes().expect("snoozes"), HashMap::from([("a".to_string(), 1_000_000)]));

    // A rule's state round-trips, per env (the monitor's rules have the env "").
    let saved = Saved { burst: Burst::Firing { since: 5, sent: 7 }, peak: 12, last_fired: Some(7), announced: true };
    assert_eq!(two.load_rule("a", "production").expect("load"), None);
    one.save_rule("a", "production", &saved).expect("save");
    let quiet = Saved { burst: Burst::Ok, peak: 0, last_fired: None, announced: false };
    one.save_rule("monitor: canary", "", &quiet).expect("save");
    let loader = two.clone();
    assert_eq!(blocking(move || loader.load_rule("a", "production")).await.expect("load"), Some(saved.clone()));
    assert_eq!(two.load_rule("a", "staging").expect("load"), None);
    assert_eq!(two.load_rule("monitor: canary", "").expect("load"), Some(quiet));
    let pending = Saved { burst: Burst::Pending { since: 9 }, ..saved };
    two.save_rule("a", "production", &pending).expect("overwrite");
    assert_eq!(one.load_rule("a", "production").expect("load"), Some(pending));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_message_is_claimed_by_one_task_recorded_once_and_read_back_everywhere() {
    let (_moto, table) = table().await;
    let a = std::sync::Arc::new(DynamoOutbox::new(table.clone()));
    let b = std::sync::Arc::new(DynamoOutbox::new(table));

    let woken = a.subscribe();
    let id = a.enqueue("checkout", &notification("checkout"), &channels(&["slack", "mail", "slack"])).expect("enqueue");
    assert!(woken.has_changed().expect("open"), "the enqueue wakes this task's deliverer");
    let other = a.enqueue("other", &notification("other"), &channels(&["mail"])).expect("enqueue");
    assert!(other > id, "ids grow");

    // Read back on the other task: one pending delivery per channel.
    let records = b.deliveries_of("checkout", 10).expect("read");
    let listed: Vec<(i64, &str, DeliveryState, u32)> =
        records.iter().map(|r| (r.notification_id, r.channel.as_str(), r.state, r.attempts)).collect();
    assert_eq!(listed, [(id, "mail", DeliveryState::Pending, 0), (id, "slack", DeliveryState::Pending, 0)]);

    // Two tasks claim it: exactly one gets it. Each claim is the conditional update on its own
    // (no read first), so the table's condition decides, not what the caller read before. (Asked
    // at the very same moment, moto — unlike DynamoDB — does not make conditional writes atomic.)
    let t = now();
    let (got_b, got_a) = (b.claim("slack", id, t).await.expect("b"), a.claim("slack", id, t).await.expect("a"));
    assert!(got_b && !got_a, "claimed once: {got_b} {got_a}");
    assert!(!a.claim("slack", id, t + 59_999).await.expect("a"), "held until the claim runs out");
    let (holder, other_task) = (&b, &a);

    // Claimed: due again for nobody, and the next due time is the claim's end.
    assert!(other_task.due("slack", t + 1_000, 16).expect("due").is_empty());
    assert!(holder.due("slack", t + 1_000, 16).expect("due").is_empty());
    let next = other_task.next_due_at("slack").expect("next").expect("waiting");
    assert!(next >= t + 60_000, "a live claim is not due before it runs out: {next} vs {t}");

    // Recorded sent: due never again, anywhere; the record and the channel's health read back.
    holder.record(id, "slack", t + 2_000, &sent()).expect("record");
    assert!(other_task.due("slack", i64::MAX, 16).expect("due").is_empty());
    assert_eq!(a.next_due_at("slack").expect("next"), None);
    let record = b.deliveries_of("checkout", 10).expect("read").into_iter().find(|r| r.channel == "slack");
    let record = record.expect("slack");
    assert_eq!((record.state, record.attempts), (DeliveryState::Sent, 1));
    assert_eq!(record.sent_at.map(unix_ms), Some(t + 2_000));
    let health = a.channel_health().expect("health");
    let names: Vec<&str> = health.iter().map(|h| h.channel.as_str()).collect();
    assert_eq!(names, ["mail", "slack"]);
    assert_eq!(health[1].last_success.map(unix_ms), Some(t + 2_000));
    assert_eq!((health[0].consecutive_failures, health[0].last_success), (0, None));

    // Mail has two messages waiting, oldest first; a limit holds.
    let mail = b.due("mail", t, 1).expect("due");
    assert_eq!(mail.iter().map(|d| d.notification_id).collect::<Vec<_>>(), [id]);
    assert_eq!((mail[0].alert.as_str(), mail[0].attempts, mail[0].first_attempt_at), ("checkout", 0, None));
    assert_eq!(mail[0].notification, notification("checkout"));
    assert_eq!(a.due("mail", t, 16).expect("due").iter().map(|d| d.notification_id).collect::<Vec<_>>(), [other]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_ran_out_is_taken_over_and_a_retry_is_due_for_any_task_at_its_time() {
    let (_moto, table) = table().await;
    let a = DynamoOutbox::new(table.clone());
    let b = DynamoOutbox::new(table);
    let id = a.enqueue("checkout", &notification("checkout"), &channels(&["slack"])).expect("enqueue");
    let t = now();

    // A claims it and "dies" before recording anything.
    assert_eq!(a.due("slack", t, 16).expect("due").len(), 1);
    assert!(b.due("slack", t + 59_000, 16).expect("due").is_empty(), "still A's");
    let taken = b.due("slack", t + 60_001, 16).expect("due");
    assert_eq!(taken.iter().map(|d| d.notification_id).collect::<Vec<_>>(), [id], "ran out: B takes it over");
    assert!(a.due("slack", t + 60_002, 16).expect("due").is_empty(), "now B's");

    // B fails to deliver: a retry, due for any task at its time, with its attempts.
    let retry = Settled { state: DeliveryState::Retrying, error: Some("HTTP 500".into()), next_at: Some(t + 70_000) };
    b.record(id, "slack", t + 61_000, &retry).expect("record");
    assert!(a.due("slack", t + 69_999, 16).expect("due").is_empty());
    assert_eq!(b.next_due_at("slack").expect("next"), Some(t + 70_000));
    let again = a.due("slack", t + 70_000, 16).expect("due");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].attempts, again[0].first_attempt_at), (1, Some(t + 61_000)));
    let health = b.channel_health().expect("health");
    assert_eq!((health[0].consecutive_failures, health[0].last_error.as_deref()), (1, Some("HTTP 500")));

    // A delivers it; a late record by B (whose claim ran out) changes nothing.
    a.record(id, "slack", t + 71_000, &sent()).expect("record");
    b.record(id, "slack", t + 72_000, &sent()).expect("late record");
    let record = &a.deliveries_of("checkout", 1).expect("read")[0];
    assert_eq!((record.state, record.attempts), (DeliveryState::Sent, 2));
    assert_eq!(record.last_error.as_deref(), Some("HTTP 500"));
    let health = b.channel_health().expect("health");
    assert_eq!((health[0].consecutive_failures, health[0].last_success.map(unix_ms)), (0, Some(t + 71_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_a_channel_no_longer_configured_fail_and_listings_are_newest_first() {
    let (_moto, table) = table().await;
    let outbox = DynamoOutbox::new(table);
    let ids: Vec<i64> = (0..3)
        .map(|_| outbox.enqueue("a", &notification("a"), &channels(&["gone", "slack"])).expect("enqueue"))
        .collect();
    assert_eq!(outbox.fail_unknown_channels(&channels(&["slack"])).expect("fail"), 3);
    assert!(outbox.due("gone", i64::MAX, 16).expect("due").is_empty());
    assert_eq!(outbox.due("slack", now(), 16).expect("due").len(), 3, "the other channel waits on");
    let listed = outbox.deliveries_of("a", 4).expect("read");
    let rows: Vec<(i64, &str, DeliveryState)> =
        listed.iter().map(|r| (r.notification_id, r.channel.as_str(), r.state)).collect();
    assert_eq!(
        rows,
        [
            (ids[2], "gone", DeliveryState::Failed),
            (ids[2], "slack", DeliveryState::Pending),
            (ids[1], "gone", DeliveryState::Failed),
            (ids[1], "slack", DeliveryState::Pending),
        ]
    );
    assert_eq!(outbox.prune(i64::MAX).expect("prune"), 0, "the table's TTL prunes");
}
