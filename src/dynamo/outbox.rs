//! [`Outbox`] in the shared table: each queued message is delivered by one task. The items:
//!
//! | `pk` | `sk` | what |
//! |---|---|---|
//! | `counter` | `notification` | the last notification id given (an atomic counter) |
//! | `due#{channel}` | `{id, 20 digits}` | a delivery waiting for `channel` (pending or retrying): the notification, its rule, `next_at`, attempts, and who claimed it until when |
//! | `delivery#{rule}` | `{id, 20 digits}#{channel}` | how a delivery went, for the rule's history (expires 30 days after it settled) |
//! | `channel` | the channel | its health: last success, failures since, the last error |
//!
//! A deliverer (each task runs one per channel) reads the channel's waiting deliveries and
//! **claims** each one it will send with a conditional update (`claimed_by`, and `claim_until`
//! [`CLAIM`] from now), granted only when no live claim holds it: of several tasks, exactly one
//! sends it. Its outcome clears the claim (`retrying`: due again at `next_at`, for any task) or deletes
//! the waiting item (`sent`, `failed`). Should the claiming task die before recording, the claim
//! runs out and another task's deliverer takes the delivery over at its next poll (within
//! `CLAIM` and the deliverer's 30 s poll): a duplicate only in that case. [`Outbox::subscribe`]
//! wakes this task's deliverer on its own enqueues; other tasks' messages are found by the poll,
//! and [`Outbox::next_due_at`] counts a live claim as not due before it runs out, so a deliverer
//! neither spins on another's claim nor sleeps past its end.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use tokio::sync::watch;

use super::alerts::query_partition;
use super::{EXPIRES, Item, PK, SK, Table, condition_failed, failure, get_n, get_s, n, s};
use crate::alerts::notification::Notification;
use crate::alerts::outbox::{ChannelHealth, DeliveryRecord, DeliveryState, Due, MAX_LISTED, Outbox, Settled};
use crate::clock::{from_unix_ms, now_ms};

/// How long a claim on a delivery holds: the sends of one round must fit in it.
pub const CLAIM: Duration = Duration::from_secs(60);
/// Deliveries claimed per [`Outbox::due`] at most (each send may take seconds; the rest waits
/// unclaimed for the next round, or for another task).
const CLAIMED_PER_ROUND: usize = 4;
/// How long a settled delivery's record is kept.
const KEPT_SECS: i64 = 30 * 86_400;
/// Items of one enqueue's transaction per channel (the record, the waiting item, the health).
const ITEMS_PER_CHANNEL: usize = 3;
/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION: usize = 100;

/// The outbox in the shared table; `holder` names this task's claims.
#[derive(Debug)]
pub struct DynamoOutbox {
    table: Table,
    holder: String,
    wake: Arc<watch::Sender<u64>>,
    claim: Duration,
}

impl DynamoOutbox {
    pub fn new(table: Table) -> DynamoOutbox {
        DynamoOutbox::with_claim(table, CLAIM)
    }

    /// An outbox whose claims hold for `claim` (tests shorten it).
    pub fn with_claim(table: Table, claim: Duration) -> DynamoOutbox {
        DynamoOutbox { table, holder: crate::lease::new_holder(), wake: Arc::new(watch::channel(0).0), claim }
    }

    /// Who this outbox's claims name.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    async fn next_id(&self) -> anyhow::Result<i64> {
        let answer = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, s("counter"))
            .key(SK, s("notification"))
            .update_expression("ADD #v :one")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(failure)
            .context("numbering a notification")?;
        answer.attributes().and_then(|a| get_n(a, "value")).context("the notification counter has no value")
    }

    async fn enqueue_async(&self, alert: &str, body: String, channels: &[String]) -> anyhow::Result<i64> {
        let id = self.next_id().await?;
        let now = now_ms();
        let mut seen = HashSet::new();
        let channels: Vec<&String> = channels.iter().filter(|c| seen.insert(c.as_str())).collect();
        anyhow::ensure!(
            channels.len() * ITEMS_PER_CHANNEL <= MAX_TRANSACTION,
            "a notification to more than {} channels",
            MAX_TRANSACTION / ITEMS_PER_CHANNEL
        );
        let mut writes = Vec::new();
        for channel in channels {
            let record = Put::builder()
                .table_name(&self.table.name)
                .item(PK, s(format!("delivery#{alert}")))
                .item(SK, s(format!("{id:020}#{channel}")))
                .item("id", n(id))
                .item("channel", s(channel.as_str()))
                .item("created_at", n(now))
                .item("state", s(DeliveryState::Pending.as_str()))
                .item("attempts", n(0))
                .build()?;
            let waiting = Put::builder()
                .table_name(&self.table.name)
                .item(PK, s(format!("due#{channel}")))
                .item(SK, s(format!("{id:020}")))
                .item("id", n(id))
                .item("alert", s(alert))
                .item("body", s(body.as_str()))
                .item("next_at", n(now))
                .item("attempts", n(0))
                .build()?;
            let health = Update::builder()
                .table_name(&self.table.name)
                .key(PK, s("channel"))
                .key(SK, s(channel.as_str()))
                .update_expression("SET failures = if_not_exists(failures, :zero)")
                .expression_attribute_values(":zero", n(0))
                .build()?;
            writes.push(TransactWriteItem::builder().put(record).build());
            writes.push(TransactWriteItem::builder().put(waiting).build());
            writes.push(TransactWriteItem::builder().update(health).build());
        }
        self.table
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(failure)
            .context("queueing a notification")?;
        Ok(id)
    }

    /// Claims the waiting delivery `sk` of `channel` for [`Self::claim`] from `now`; its item as
    /// claimed, or `None` when another task holds it, it is not due, or it is gone.
    async fn claim_one(&self, channel: &str, sk: &str, now: i64) -> anyhow::Result<Option<Item>> {
        let until = now.saturating_add(i64::try_from(self.claim.as_millis()).unwrap_or(i64::MAX));
        let claimed = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, s(format!("due#{channel}")))
            .key(SK, s(sk))
            .update_expression("SET claimed_by = :me, claim_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND next_at <= :now AND (attribute_not_exists(claim_until) OR claim_until <= :now)",
            )
            .expression_attribute_values(":me", s(self.holder.as_str()))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match claimed {
            Ok(answer) => Ok(answer.attributes().cloned()),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(failure(e)).context("claiming a delivery"),
        }
    }

    async fn due_async(&self, channel: &str, now: i64, limit: usize) -> anyhow::Result<Vec<Due>> {
        let waiting = query_partition(&self.table, &format!("due#{channel}"), true, None).await?;
        let mut candidates: Vec<(i64, String)> = waiting
            .iter()
            .filter(|item| get_n(item, "next_at").is_some_and(|at| at <= now))
            .filter(|item| get_n(item, "claim_until").is_none_or(|until| until <= now))
            .filter_map(|item| Some((get_n(item, "next_at")?, get_s(item, SK)?.to_string())))
            .collect();
        candidates.sort();
        let mut due = Vec::new();
        for (_, sk) in candidates {
            if due.len() >= limit.min(CLAIMED_PER_ROUND) {
                break;
            }
            let Some(item) = self.claim_one(channel, &sk, now).await? else { continue };
            let id = get_n(&item, "id").context("a waiting delivery without its id")?;
            let notification: Notification = serde_json::from_str(get_s(&item, "body").unwrap_or_default())
                .with_context(|| format!("notification {id} in the outbox is not readable"))?;
            due.push(Due {
                notification_id: id,
                alert: get_s(&item, "alert").unwrap_or_default().to_string(),
                notification,
                attempts: u32::try_from(get_n(&item, "attempts").unwrap_or(0)).unwrap_or(0),
                first_attempt_at: get_n(&item, "first_attempt_at"),
            });
        }
        Ok(due)
    }

    async fn next_due_async(&self, channel: &str) -> anyhow::Result<Option<i64>> {
        let waiting = query_partition(&self.table, &format!("due#{channel}"), true, None).await?;
        Ok(waiting
            .iter()
            .filter_map(|item| {
                let next = get_n(item, "next_at")?;
                Some(next.max(get_n(item, "claim_until").unwrap_or(i64::MIN)))
            })
            .min())
    }

    /// Claims `channel`'s delivery of notification `id` as [`Outbox::due`] does (no read of the
    /// waiting items first): whether this outbox got it.
    pub async fn claim(&self, channel: &str, id: i64, now_ms: i64) -> anyhow::Result<bool> {
        Ok(self.claim_one(channel, &format!("{id:020}"), now_ms).await?.is_some())
    }

    async fn waiting_item(&self, id: i64, channel: &str) -> anyhow::Result<Option<Item>> {
        let answer = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key(PK, s(format!("due#{channel}")))
            .key(SK, s(format!("{id:020}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(failure)
            .context("reading a waiting delivery")?;
        Ok(answer.item().cloned())
    }

    /// Writes an attempt's outcome: the delivery's record first, then the channel's health, then
    /// the waiting item (deleted once settled), so a crash in between leaves a delivery that is
    /// sent again (once its claim ran out), never one that is lost.
    async fn record_async(&self, id: i64, channel: &str, at: i64, settled: &Settled) -> anyhow::Result<()> {
        let Some(waiting) = self.waiting_item(id, channel).await? else {
            // Recorded already: another task took it over after this one's claim ran out.
            tracing::warn!(channel, notification = id, "a delivery was recorded by another task too");
            return Ok(());
        };
        let alert = get_s(&waiting, "alert").unwrap_or_default().to_string();
        let settles = matches!(settled.state, DeliveryState::Sent | DeliveryState::Failed);
        let mut set = vec![
            "#state = :state",
            "attempts = attempts + :one",
            "first_attempt_at = if_not_exists(first_attempt_at, :at)",
            "last_attempt_at = :at",
        ];
        let mut record = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, s(format!("delivery#{alert}")))
            .key(SK, s(format!("{id:020}#{channel}")))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", s(settled.state.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", n(at));
        if let Some(error) = &settled.error {
            set.push("last_error = :error");
            record = record.expression_attribute_values(":error", s(error.as_str()));
        }
        if settled.state == DeliveryState::Sent {
            set.push("sent_at = :at");
        }
        if settles {
            set.push("#expires = :expires");
            record = record
                .expression_attribute_names("#expires", EXPIRES)
                .expression_attribute_values(":expires", n(at / 1000 + KEPT_SECS));
        }
        match record.update_expression(format!("SET {}", set.join(", "))).send().await {
            Ok(_) => {}
            // Pruned by its TTL: only the waiting item is left to settle.
            Err(e) if condition_failed(&e) => {}
            Err(e) => return Err(failure(e)).context("recording a delivery"),
        }
        self.record_health(channel, at, settled).await?;
        let waiting_key = (s(format!("due#{channel}")), s(format!("{id:020}")));
        if settles {
            self.table
                .client
                .delete_item()
                .table_name(&self.table.name)
                .key(PK, waiting_key.0)
                .key(SK, waiting_key.1)
                .send()
                .await
                .map_err(failure)
                .context("settling a delivery")?;
            return Ok(());
        }
        let retried = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, waiting_key.0)
            .key(SK, waiting_key.1)
            .update_expression(
                "SET next_at = :next, attempts = attempts + :one, first_attempt_at = if_not_exists(first_attempt_at, :at) REMOVE claimed_by, claim_until",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":next", n(settled.next_at.unwrap_or(at)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", n(at))
            .send()
            .await;
        match retried {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failure(e)).context("rescheduling a delivery"),
        }
    }

    /// A success resets the channel's failures; a failure adds one (unless a later success is
    /// known already).
    async fn record_health(&self, channel: &str, at: i64, settled: &Settled) -> anyhow::Result<()> {
        let update = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, s("channel"))
            .key(SK, s(channel))
            .expression_attribute_values(":at", n(at));
        let update = if settled.state == DeliveryState::Sent {
            update
                .update_expression("SET last_success = :at, failures = :zero REMOVE last_error")
                .condition_expression("attribute_not_exists(last_success) OR last_success <= :at")
                .expression_attribute_values(":zero", n(0))
        } else {
            update
                .update_expression("SET last_error = :error, last_failure = :at ADD failures :one")
                .condition_expression("attribute_not_exists(last_success) OR last_success < :at")
                .expression_attribute_values(":error", s(settled.error.clone().unwrap_or_default()))
                .expression_attribute_values(":one", n(1))
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failure(e)).context("recording a channel's health"),
        }
    }

    async fn fail_unknown_async(&self, known: &[String]) -> anyhow::Result<usize> {
        let channels = query_partition(&self.table, "channel", true, None).await?;
        let mut failed = 0;
        for channel in channels.iter().filter_map(|item| get_s(item, SK)) {
            if known.iter().any(|k| k == channel) {
                continue;
            }
            let waiting = query_partition(&self.table, &format!("due#{channel}"), true, None).await?;
            for item in &waiting {
                let Some(id) = get_n(item, "id") else { continue };
                let settled = Settled {
                    state: DeliveryState::Failed,
                    error: Some("no channel of this name in the config".into()),
                    next_at: None,
                };
                self.record_async(id, channel, now_ms(), &settled).await?;
                failed += 1;
            }
        }
        Ok(failed)
    }
}

fn record_of(item: &Item) -> Option<DeliveryRecord> {
    let time = |ms: i64| from_unix_ms(ms).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Some(DeliveryRecord {
        notification_id: get_n(item, "id")?,
        created_at: time(get_n(item, "created_at")?),
        channel: get_s(item, "channel")?.to_string(),
        state: DeliveryState::parse(get_s(item, "state")?)?,
        attempts: u32::try_from(get_n(item, "attempts").unwrap_or(0)).unwrap_or(0),
        last_error: get_s(item, "last_error").map(str::to_string),
        sent_at: get_n(item, "sent_at").map(time),
    })
}

impl Outbox for DynamoOutbox {
    fn enqueue(&self, alert_name: &str, notification: &Notification, channels: &[String]) -> anyhow::Result<i64> {
        let body = serde_json::to_string(notification)?;
        let id = self.table.wait(self.enqueue_async(alert_name, body, channels))?;
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        Ok(id)
    }

    fn deliveries_of(&self, alert_name: &str, limit: usize) -> anyhow::Result<Vec<DeliveryRecord>> {
        let limit = limit.min(MAX_LISTED);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items =
            self.table.wait(query_partition(&self.table, &format!("delivery#{alert_name}"), false, Some(limit)))?;
        let mut records: Vec<DeliveryRecord> = items.iter().take(limit).filter_map(record_of).collect();
        records.sort_by(|a, b| b.notification_id.cmp(&a.notification_id).then_with(|| a.channel.cmp(&b.channel)));
        Ok(records)
    }

    fn channel_health(&self) -> anyhow::Result<Vec<ChannelHealth>> {
        let items = self.table.wait(query_partition(&self.table, "channel", true, None))?;
        let time = |ms: i64| from_unix_ms(ms).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Ok(items
            .iter()
            .filter_map(|item| {
                Some(ChannelHealth {
                    channel: get_s(item, SK)?.to_string(),
                    consecutive_failures: u64::try_from(get_n(item, "failures").unwrap_or(0)).unwrap_or(0),
                    last_error: get_s(item, "last_error").map(str::to_string),
                    last_success: get_n(item, "last_success").map(time),
                })
            })
            .collect())
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    fn due(&self, channel: &str, now_ms: i64, limit: usize) -> anyhow::Result<Vec<Due>> {
        self.table.wait(self.due_async(channel, now_ms, limit))
    }

    fn next_due_at(&self, channel: &str) -> anyhow::Result<Option<i64>> {
        self.table.wait(self.next_due_async(channel))
    }

    fn record(&self, notification_id: i64, channel: &str, at_ms: i64, settled: &Settled) -> anyhow::Result<()> {
        self.table.wait(self.record_async(notification_id, channel, at_ms, settled))
    }

    fn fail_unknown_channels(&self, known: &[String]) -> anyhow::Result<usize> {
        self.table.wait(self.fail_unknown_async(known))
    }

    /// Nothing to do: a settled delivery's record carries `expires`, and DynamoDB's TTL deletes
    /// it 30 days after it settled.
    fn prune(&self, _before_ms: i64) -> anyhow::Result<usize> {
        Ok(0)
    }
}
