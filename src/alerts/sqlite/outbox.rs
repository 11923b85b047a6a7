//! [`Outbox`] on `alerts.db`: the tables `notifications` (the [`Notification`] as JSON) and
//! `deliveries` (one row per notification and channel). An enqueue is one transaction.

use anyhow::Context as _;
use rusqlite::{OptionalExtension as _, params};
use tokio::sync::watch;

use super::{SqliteAlerts, time_of};
use crate::alerts::notification::Notification;
use crate::alerts::outbox::{ChannelHealth, DeliveryRecord, DeliveryState, Due, MAX_LISTED, Outbox, Settled};
use crate::clock::now_ms;

impl Outbox for SqliteAlerts {
    fn enqueue(&self, alert_name: &str, notification: &Notification, channels: &[String]) -> anyhow::Result<i64> {
        let body = serde_json::to_string(notification)?;
        let now = now_ms();
        let id = {
            let mut conn = self.db.lock()?;
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO notifications (alert, created_at, body) VALUES (?1, ?2, ?3)",
                params![alert_name, now, body],
            )?;
            let id = tx.last_insert_rowid();
            {
                let mut insert = tx.prepare(
                    "INSERT OR IGNORE INTO deliveries (notification_id, channel, state, attempts, next_at)
                     VALUES (?1, ?2, 'pending', 0, ?3)",
                )?;
                for channel in channels {
                    insert.execute(params![id, channel, now])?;
                }
            }
            tx.commit()?;
            id
        };
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        Ok(id)
    }

    fn deliveries_of(&self, alert_name: &str, limit: usize) -> anyhow::Result<Vec<DeliveryRecord>> {
        let limit = i64::try_from(limit.min(MAX_LISTED)).unwrap_or(0);
        let conn = self.db.lock()?;
        let mut select = conn.prepare_cached(
            "SELECT n.id, n.created_at, d.channel, d.state, d.attempts, d.last_error, d.sent_at
             FROM notifications n JOIN deliveries d ON d.notification_id = n.id
             WHERE n.alert = ?1 ORDER BY n.id DESC, d.channel LIMIT ?2",
        )?;
        let rows = select.query_map(params![alert_name, limit], |row| {
            Ok(DeliveryRecord {
                notification_id: row.get(0)?,
                created_at: time_of(row.get(1)?),
                channel: row.get(2)?,
                state: delivery_state(&row.get::<_, String>(3)?)?,
                attempts: row.get(4)?,
                last_error: row.get(5)?,
                sent_at: row.get::<_, Option<i64>>(6)?.map(time_of),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn channel_health(&self) -> anyhow::Result<Vec<ChannelHealth>> {
        let conn = self.db.lock()?;
        let mut channels = conn.prepare_cached(
            "SELECT channel, MAX(CASE WHEN state = 'sent' THEN sent_at END) FROM deliveries GROUP BY channel ORDER BY channel",
        )?;
        let mut failing = conn.prepare_cached(
            "SELECT COALESCE(SUM(attempts), 0),
                    (SELECT last_error FROM deliveries WHERE channel = ?1 AND state IN ('retrying', 'failed')
                       AND last_attempt_at > ?2 ORDER BY last_attempt_at DESC LIMIT 1)
             FROM deliveries WHERE channel = ?1 AND state IN ('retrying', 'failed') AND last_attempt_at > ?2",
        )?;
        let listed: Vec<(String, Option<i64>)> =
            channels.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
        let mut health = Vec::with_capacity(listed.len());
        for (channel, last_success) in listed {
            let (failures, last_error): (i64, Option<String>) = failing
                .query_row(params![channel, last_success.unwrap_or(i64::MIN)], |row| Ok((row.get(0)?, row.get(1)?)))?;
            health.push(ChannelHealth {
                channel,
                consecutive_failures: u64::try_from(failures).unwrap_or(0),
                last_error,
                last_success: last_success.map(time_of),
            });
        }
        Ok(health)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    fn due(&self, channel: &str, now_ms: i64, limit: usize) -> anyhow::Result<Vec<Due>> {
        let conn = self.db.lock()?;
        let mut select = conn.prepare_cached(
            "SELECT d.notification_id, n.alert, n.body, d.attempts, d.first_attempt_at
             FROM deliveries d JOIN notifications n ON n.id = d.notification_id
             WHERE d.channel = ?1 AND d.state IN ('pending', 'retrying') AND d.next_at <= ?2
             ORDER BY d.next_at, d.notification_id LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select.query_map(params![channel, now_ms, limit], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get(3)?, row.get(4)?))
        })?;
        let mut due = Vec::new();
        for row in rows {
            let (notification_id, alert, body, attempts, first_attempt_at) = row?;
            let notification = serde_json::from_str(&body)
                .with_context(|| format!("notification {notification_id} in the outbox is not readable"))?;
            due.push(Due { notification_id, alert, notification, attempts, first_attempt_at });
        }
        Ok(due)
    }

    fn next_due_at(&self, channel: &str) -> anyhow::Result<Option<i64>> {
        let conn = self.db.lock()?;
        let mut select = conn.prepare_cached(
            "SELECT MIN(next_at) FROM deliveries WHERE channel = ?1 AND state IN ('pending', 'retrying')",
        )?;
        Ok(select.query_row([channel], |row| row.get(0)).optional()?.flatten())
    }

    fn record(&self, notification_id: i64, channel: &str, at_ms: i64, settled: &Settled) -> anyhow::Result<()> {
        let conn = self.db.lock()?;
        let sent_at = (settled.state == DeliveryState::Sent).then_some(at_ms);
        conn.prepare_cached(
            "UPDATE deliveries SET state = ?3, attempts = attempts + 1, next_at = ?4,
                 first_attempt_at = COALESCE(first_attempt_at, ?5), last_attempt_at = ?5,
                 last_error = COALESCE(?6, last_error), sent_at = ?7
             WHERE notification_id = ?1 AND channel = ?2",
        )?
        .execute(params![
            notification_id,
            channel,
            settled.state.as_str(),
            settled.next_at,
            at_ms,
            settled.error,
            sent_at
        ])?;
        Ok(())
    }

    fn fail_unknown_channels(&self, known: &[String]) -> anyhow::Result<usize> {
        let conn = self.db.lock()?;
        let waiting: Vec<String> = conn
            .prepare("SELECT DISTINCT channel FROM deliveries WHERE state IN ('pending', 'retrying')")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut failed = 0;
        for channel in waiting.iter().filter(|c| !known.contains(c)) {
            failed += conn.execute(
                "UPDATE deliveries SET state = 'failed', next_at = NULL, last_error = 'no channel of this name in the config'
                 WHERE channel = ?1 AND state IN ('pending', 'retrying')",
                [channel],
            )?;
        }
        Ok(failed)
    }

    fn prune(&self, before_ms: i64) -> anyhow::Result<usize> {
        let conn = self.db.lock()?;
        Ok(conn.execute(
            "DELETE FROM notifications WHERE created_at < ?1 AND NOT EXISTS (
                 SELECT 1 FROM deliveries d WHERE d.notification_id = notifications.id
                 AND d.state IN ('pending', 'retrying'))",
            [before_ms],
        )?)
    }
}

fn delivery_state(text: &str) -> rusqlite::Result<DeliveryState> {
    DeliveryState::parse(text)
        .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, format!("state `{text}`"), rusqlite::types::Type::Text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::notification::What;
    use crate::clock::unix_ms;

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

    #[test]
    fn an_enqueued_notification_is_one_pending_delivery_per_channel_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = SqliteAlerts::open(dir.path()).expect("open");
        let id = outbox.enqueue("checkout", &notification("checkout"), &channels(&["slack", "mail"])).expect("enqueue");
        drop(outbox);
        let outbox = SqliteAlerts::open(dir.path()).expect("reopen");
        let records = outbox.deliveries_of("checkout", 10).expect("read");
        assert_eq!(records.len(), 2);
        for (record, channel) in records.iter().zip(["mail", "slack"]) {
            assert_eq!(record.notification_id, id);
            assert_eq!(record.channel, channel);
            assert_eq!(record.state, DeliveryState::Pending);
            assert_eq!(record.attempts, 0);
            assert_eq!(record.sent_at, None);
        }
        let due = outbox.due("slack", now_ms(), 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].notification, notification("checkout"));
        assert!(outbox.deliveries_of("other alert", 10).expect("read").is_empty());
    }

    #[test]
    fn deliveries_are_listed_newest_first_and_the_limit_holds() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = SqliteAlerts::open(dir.path()).expect("open");
        let ids: Vec<i64> =
            (0..3).map(|_| outbox.enqueue("a", &notification("a"), &channels(&["slack"])).expect("enqueue")).collect();
        let listed: Vec<i64> = outbox.deliveries_of("a", 2).expect("read").iter().map(|r| r.notification_id).collect();
        assert_eq!(listed, vec![ids[2], ids[1]]);
    }

    #[test]
    fn a_recorded_retry_is_not_due_before_its_time_and_a_sent_one_never_again() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = SqliteAlerts::open(dir.path()).expect("open");
        let id = outbox.enqueue("a", &notification("a"), &channels(&["slack"])).expect("enqueue");
        let t = now_ms();
        let retry =
            Settled { state: DeliveryState::Retrying, error: Some("HTTP 500".into()), next_at: Some(t + 5_000) };
        outbox.record(id, "slack", t, &retry).expect("record");
        assert!(outbox.due("slack", t + 4_999, 10).expect("due").is_empty());
        let due = outbox.due("slack", t + 5_000, 10).expect("due");
        assert_eq!((due[0].attempts, due[0].first_attempt_at), (1, Some(t)));
        assert_eq!(outbox.next_due_at("slack").expect("next"), Some(t + 5_000));
        let sent = Settled { state: DeliveryState::Sent, error: None, next_at: None };
        outbox.record(id, "slack", t + 5_000, &sent).expect("record");
        assert!(outbox.due("slack", i64::MAX, 10).expect("due").is_empty());
        assert_eq!(outbox.next_due_at("slack").expect("next"), None);
        let record = &outbox.deliveries_of("a", 1).expect("read")[0];
        assert_eq!((record.state, record.attempts), (DeliveryState::Sent, 2));
        assert_eq!(record.last_error.as_deref(), Some("HTTP 500"));
        assert_eq!(record.sent_at.map(unix_ms), Some(t + 5_000));
    }

    #[test]
    fn channel_health_counts_failures_since_the_last_success() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = SqliteAlerts::open(dir.path()).expect("open");
        let both = channels(&["slack", "mail"]);
        let first = outbox.enqueue("a", &notification("a"), &both).expect("enqueue");
        let second = outbox.enqueue("a", &notification("a"), &both).expect("enqueue");
        let sent = Settled { state: DeliveryState::Sent, error: None, next_at: None };
        outbox.record(first, "slack", 1_000, &sent).expect("record");
        outbox.record(first, "mail", 1_000, &sent).expect("record");
        for (at, error) in [(2_000, "HTTP 503"), (3_000, "connection refused")] {
            let retry = Settled { state: DeliveryState::Retrying, error: Some(error.into()), next_at: Some(at + 1) };
            outbox.record(second, "slack", at, &retry).expect("record");
        }
        outbox.record(second, "mail", 2_000, &sent).expect("record");
        let health = outbox.channel_health().expect("health");
        assert_eq!(health.len(), 2);
        assert_eq!(health[0].channel, "mail");
        assert_eq!((health[0].consecutive_failures, health[0].last_error.as_deref()), (0, None));
        assert_eq!(health[0].last_success.map(unix_ms), Some(2_000));
        assert_eq!(health[1].channel, "slack");
        assert_eq!(health[1].consecutive_failures, 2);
        assert_eq!(health[1].last_error.as_deref(), Some("connection refused"));
        assert_eq!(health[1].last_success.map(unix_ms), Some(1_000));
    }

    #[test]
    fn waiting_deliveries_to_a_removed_channel_fail_and_old_settled_notifications_are_pruned() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = SqliteAlerts::open(dir.path()).expect("open");
        let id = outbox.enqueue("a", &notification("a"), &channels(&["gone", "slack"])).expect("enqueue");
        assert_eq!(outbox.fail_unknown_channels(&channels(&["slack"])).expect("fail"), 1);
        let gone = outbox.deliveries_of("a", 10).expect("read").into_iter().find(|r| r.channel == "gone");
        assert_eq!(gone.map(|r| r.state), Some(DeliveryState::Failed));
        // Still waiting for slack: kept.
        assert_eq!(outbox.prune(i64::MAX).expect("prune"), 0);
        let sent = Settled { state: DeliveryState::Sent, error: None, next_at: None };
        outbox.record(id, "slack", now_ms(), &sent).expect("record");
        assert_eq!(outbox.prune(0).expect("prune"), 0, "younger than the cut-off");
        assert_eq!(outbox.prune(i64::MAX).expect("prune"), 1);
        assert!(outbox.deliveries_of("a", 10).expect("read").is_empty());
    }
}
