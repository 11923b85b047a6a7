//! [`AlertState`] in the shared table, so that snoozes, the history (`GET /api/v1/alerts`, the
//! alerts page) and the rules' burst states read the same on every task and outlive a deploy.
//! The items:
//!
//! | `pk` | `sk` | what |
//! |---|---|---|
//! | `history#{rule}` | `{at ms, 20 digits}#{sequence}#{writer}` | one line of a rule's history (expires after 30 days) |
//! | `rule#{rule}` | `env#{env}` | the rule's burst state for one env (the burst as JSON, peak, last fired, announced) |
//! | `snooze` | the rule | until when (expires a week after it ended) |
//! | `send#{rule}` | `env#{env}` | whether a burst's message was sent and when: the claim that makes one task send it |
//!
//! A rule's history is one partition whose sort key starts with the time: read newest first with
//! a limit (one query), and kept bounded by DynamoDB's TTL rather than by deleting.
//!
//! The trait is synchronous; its calls block on the SDK's future ([`wait`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::{EXPIRES, Item, PK, SK, Table, failure, get_n, get_s, n, s};
use crate::alerts::burst;
use crate::alerts::state::{AlertState, Entry, HistoryKind, Saved};
use crate::clock::from_unix_ms;

/// How long a history line is kept (DynamoDB's TTL deletes it after).
const HISTORY_KEPT_SECS: i64 = 30 * 86_400;
/// How long an ended snooze is kept.
const SNOOZE_KEPT_SECS: i64 = 7 * 86_400;
/// The most history lines one read returns.
const MAX_HISTORY: usize = 1000;

/// Runs one of the table's futures to its end for a synchronous trait call ([`AlertState`],
/// [`crate::alerts::outbox::Outbox`]).
///
/// Who calls, and on which thread: the engine's ticker, the deliverer, the monitor and the web
/// handlers run these calls on tokio's blocking pool (`spawn_blocking`); at startup
/// `Alerts::new` (rule states, snoozes) and `deliver::spawn` (`fail_unknown_channels`, `prune`)
/// call them on a worker thread of the service's multi-thread runtime. So:
/// - on the multi-thread runtime, `block_in_place` then `Handle::block_on`: on a blocking-pool
///   thread `block_in_place` just runs the closure; on a worker it first hands the worker's other
///   tasks to another thread, so no worker is ever blocked with tasks waiting behind it. The
///   SDK's connections and timers are driven by the runtime's own workers meanwhile.
/// - `futures::executor::block_on` is not used: on a worker it would hold up that worker's queued
///   tasks without handing them off.
/// - on a current-thread runtime only from a blocking-pool thread (`Handle::block_on` there is
///   fine, the runtime's thread drives the IO while it awaits the blocking task); on the
///   runtime's own thread nothing could drive the IO while it waits, and tokio panics.
pub(crate) fn wait<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let handle = Handle::try_current().context("the shared state table is read from a tokio runtime only")?;
    match handle.runtime_flavor() {
        RuntimeFlavor::CurrentThread => handle.block_on(future),
        _ => tokio::task::block_in_place(|| handle.block_on(future)),
    }
}

/// Every item of partition `pk`, in sort key order (`forward`) or the reverse, at most `limit`.
pub(crate) async fn query_partition(
    table: &Table,
    pk: &str,
    forward: bool,
    limit: Option<usize>,
) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let mut query = table
            .client
            .query()
            .table_name(&table.name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(forward)
            .consistent_read(true)
            .set_exclusive_start_key(start);
        if let Some(limit) = limit {
            let left = limit.saturating_sub(items.len());
            query = query.limit(i32::try_from(left).unwrap_or(i32::MAX).max(1));
        }
        let answer = query.send().await.map_err(failure).with_context(|| format!("reading {pk}"))?;
        items.extend(answer.items().iter().cloned());
        start = answer.last_evaluated_key().cloned();
        if start.is_none() || limit.is_some_and(|limit| items.len() >= limit) {
            return Ok(items);
        }
    }
}

/// The rules' burst states, snoozes and history in the shared table.
#[derive(Debug)]
pub struct DynamoAlertState {
    table: Table,
    /// Names this writer in the history's sort keys (two tasks writing at the same millisecond).
    writer: String,
    /// Orders this writer's lines of one millisecond.
    sequence: AtomicU64,
}

impl DynamoAlertState {
    pub fn new(table: Table) -> DynamoAlertState {
        DynamoAlertState { table, writer: crate::lease::new_holder(), sequence: AtomicU64::new(0) }
    }

    async fn put(&self, item: Item, what: &str) -> anyhow::Result<()> {
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(failure)
            .with_context(|| format!("writing {what}"))?;
        Ok(())
    }
}

fn rule_key(alert: &str, env: &str) -> (AttributeValue, AttributeValue) {
    (s(format!("rule#{alert}")), s(format!("env#{env}")))
}

fn entry_of(item: &Item) -> anyhow::Result<Entry> {
    let kind = get_s(item, "kind").unwrap_or_default();
    Ok(Entry {
        at: from_unix_ms(get_n(item, "at").unwrap_or(0)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        kind: HistoryKind::parse(kind).with_context(|| format!("history kind `{kind}`"))?,
        env: get_s(item, "env").unwrap_or_default().to_string(),
        detail: get_s(item, "detail").unwrap_or_default().to_string(),
        notification: get_n(item, "notification"),
    })
}

impl AlertState for DynamoAlertState {
    fn add_history(
        &self,
        alert: &str,
        env: &str,
        at_ms: i64,
        kind: HistoryKind,
        detail: &str,
        notification: Option<i64>,
    ) -> anyhow::Result<()> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let mut item = Item::from([
            (PK.to_string(), s(format!("history#{alert}"))),
            (SK.to_string(), s(format!("{:020}#{sequence:012}#{}", at_ms.max(0), self.writer))),
            ("at".to_string(), n(at_ms)),
            ("kind".to_string(), s(kind.as_str())),
            ("env".to_string(), s(env)),
            ("detail".to_string(), s(detail)),
            (EXPIRES.to_string(), n(at_ms / 1000 + HISTORY_KEPT_SECS)),
        ]);
        if let Some(id) = notification {
            item.insert("notification".to_string(), n(id));
        }
        self.table.wait(self.put(item, "the alert history"))
    }

    fn history(&self, alert: &str, limit: usize) -> anyhow::Result<Vec<Entry>> {
        let limit = limit.min(MAX_HISTORY);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self.table.wait(query_partition(&self.table, &format!("history#{alert}"), false, Some(limit)))?;
        items.iter().take(limit).map(entry_of).collect()
    }

    fn save_rule(&self, alert: &str, env: &str, saved: &Saved) -> anyhow::Result<()> {
        let (pk, sk) = rule_key(alert, env);
        let mut item = Item::from([
            (PK.to_string(), pk),
            (SK.to_string(), sk),
            ("burst".to_string(), s(serde_json::to_string(&saved.burst)?)),
            ("peak".to_string(), n(i64::try_from(saved.peak).unwrap_or(i64::MAX))),
            ("announced".to_string(), AttributeValue::Bool(saved.announced)),
        ]);
        if let Some(at) = saved.last_fired {
            item.insert("last_fired".to_string(), n(at));
        }
        self.table.wait(self.put(item, "an alert's state"))
    }

    fn load_rule(&self, alert: &str, env: &str) -> anyhow::Result<Option<Saved>> {
        let (pk, sk) = rule_key(alert, env);
        let answer = self.table.wait(async {
            self.table
                .client
                .get_item()
                .table_name(&self.table.name)
                .key(PK, pk)
                .key(SK, sk)
                .consistent_read(true)
                .send()
                .await
                .map_err(failure)
                .context("reading an alert's state")
        })?;
        let Some(item) = answer.item() else { return Ok(None) };
        let burst = serde_json::from_str(get_s(item, "burst").unwrap_or_default())
            .with_context(|| format!("the saved burst of alert {alert}"))?;
        Ok(Some(Saved {
            burst,
            peak: u64::try_from(get_n(item, "peak").unwrap_or(0)).unwrap_or(0),
            last_fired: get_n(item, "last_fired"),
            announced: item.get("announced").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        }))
    }

    fn claim_send(
        &self,
        alert: &str,
        env: &str,
        send: burst::Send,
        now_ms: i64,
        repeat_ms: i64,
    ) -> anyhow::Result<bool> {
        // First: unless a burst is firing and was sent to within `repeat_ms`. Reminder: once the
        // last message is `repeat_ms` old. Resolved: while firing. Each one conditional update.
        let (update, condition) = match send {
            burst::Send::First => (
                "SET firing = :yes, last_sent = :now",
                "attribute_not_exists(firing) OR firing = :no OR last_sent <= :stale",
            ),
            burst::Send::Reminder => {
                ("SET firing = :yes, last_sent = :now", "attribute_not_exists(last_sent) OR last_sent <= :stale")
            }
            burst::Send::Resolved => ("SET firing = :no, last_sent = :now", "firing = :yes"),
        };
        let stale = now_ms.saturating_sub(repeat_ms);
        // DynamoDB refuses values an expression does not use: each case names only its own.
        let mut values = HashMap::from([(":now".to_string(), n(now_ms))]);
        for (name, value) in
            [(":yes", AttributeValue::Bool(true)), (":no", AttributeValue::Bool(false)), (":stale", n(stale))]
        {
            if update.contains(name) || condition.contains(name) {
                values.insert(name.to_string(), value);
            }
        }
        let sent = self.table.wait(async {
            let answer = self
                .table
                .client
                .update_item()
                .table_name(&self.table.name)
                .key(PK, s(format!("send#{alert}")))
                .key(SK, s(format!("env#{env}")))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_values(Some(values))
                .send()
                .await;
            match answer {
                Ok(_) => Ok(true),
                Err(e) if super::condition_failed(&e) => Ok(false),
                Err(e) => Err(failure(e)).context("claiming an alert message"),
            }
        })?;
        Ok(sent)
    }

    fn set_snooze(&self, alert: &str, until_ms: Option<i64>) -> anyhow::Result<()> {
        match until_ms {
            Some(until) => {
                let item = Item::from([
                    (PK.to_string(), s("snooze")),
                    (SK.to_string(), s(alert)),
                    ("until".to_string(), n(until)),
                    (EXPIRES.to_string(), n(until / 1000 + SNOOZE_KEPT_SECS)),
                ]);
                self.table.wait(self.put(item, "a snooze"))
            }
            None => self.table.wait(async {
                self.table
                    .client
                    .delete_item()
                    .table_name(&self.table.name)
                    .key(PK, s("snooze"))
                    .key(SK, s(alert))
                    .send()
                    .await
                    .map_err(failure)
                    .context("ending a snooze")?;
                Ok(())
            }),
        }
    }

    fn snoozes(&self) -> anyhow::Result<HashMap<String, i64>> {
        let items = self.table.wait(query_partition(&self.table, "snooze", true, None))?;
        Ok(items.iter().filter_map(|item| Some((get_s(item, SK)?.to_string(), get_n(item, "until")?))).collect())
    }
}
