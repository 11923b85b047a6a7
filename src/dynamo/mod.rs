//! logboard's shared state in one DynamoDB table (`[state] backend = "dynamodb"`,
//! `../shared/spec/state.md`): what every task must see the same — the issue index ([`issues`]),
//! the counts that pages and threshold rules read ([`counts`]), alert state, leases, logouts, saved searches — so that several tasks, and every task a deploy starts with an empty
//! `data_dir`, are one monitor.
//!
//! One table, keyed by `pk` (what kind of item and whose) and `sk` (which one); items that may
//! go after a while carry `expires` (Unix seconds), the table's TTL attribute. The kinds:
//!
//! | `pk` | `sk` | what |
//! |---|---|---|
//! | `issue#{project}#{env}` | fingerprint | an issue: counts per hour, number of users, first/last seen, status |
//! | `users#{project}#{env}` | fingerprint | an issue's distinct users (hashed), apart so the issue stays small |
//! | `changed#{project}#{env}` | `{ms}#{id}` | which issues a flush or a status change changed, for the other tasks' listings ([`listing`]; expires) |
//! | `flush` | a flush's id | the marker that a flush of counts was applied (expires) |
//! | `lease` | the lease's name | who holds it until when |
//! | `logout` | a session's id | the session was logged out (expires when it would have ended) |
//! | `searches` | `name#{project}#{name}`, `count#{project}` | saved searches and how many each project has ([`searches`]) |
//! | `follow` | a log group | where the issue follower goes on, and the ids it counted |
//! | `minutes#…`, `hours#…`, `hits#…` | | events per minute/hour and level, threshold rules' matches per minute and task ([`counts`]) |
//! | `history#…`, `rule#…`, `snooze` | | the alert rules' history, burst states, snoozes ([`alerts`]) |
//! | `due#…`, `delivery#…`, `channel`, `counter` | | the alert outbox: deliveries waiting and claimed, their records, channel health ([`outbox`]) |
//!
//! Calls go through the SDK with its standard retries and short timeouts: a table that does not
//! answer fails a call in seconds, and what must not be lost waits in a local queue meanwhile.

pub mod alerts;
pub mod counted_store;
pub mod counts;
pub mod issues;
pub mod lease;
pub mod listing;
pub mod logouts;
pub mod outbox;
pub mod searches;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    ScalarAttributeType, TimeToLiveSpecification,
};
use prometheus_client::metrics::counter::Counter;

use crate::config::Config;
use crate::metrics::CountRequests;

pub use alerts::DynamoAlertState;
pub use counted_store::CountedStore;
pub use issues::DynamoIssueIndex;
pub use lease::DynamoLeases;
pub use logouts::DynamoLogouts;
pub use outbox::DynamoOutbox;
pub use searches::DynamoSearches;

/// The partition key's attribute.
pub const PK: &str = "pk";
/// The sort key's attribute.
pub const SK: &str = "sk";
/// The TTL attribute: DynamoDB deletes an item some time after this Unix second.
pub const EXPIRES: &str = "expires";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The table and a client for it.
#[derive(Debug, Clone)]
pub struct Table {
    pub client: Client,
    pub name: String,
    /// Set by [`Table::stop_blocking_calls`], shared by every clone.
    stopped: Arc<AtomicBool>,
}

/// One item as the SDK reads and writes it.
pub type Item = HashMap<String, AttributeValue>;

impl Table {
    /// A client for `[state]`'s table from the AWS default chain, with its region and endpoint.
    pub async fn connect(config: &Config) -> Table {
        let state = &config.state;
        let mut loader = crate::aws::loader(state.region(config), CONNECT_TIMEOUT, ATTEMPT_TIMEOUT);
        if !state.endpoint_url.is_empty() {
            loader = loader.endpoint_url(&state.endpoint_url);
        }
        Table::new(Client::new(&loader.load().await), &state.table)
    }

    pub fn new(client: Client, name: &str) -> Table {
        Table { client, name: name.to_string(), stopped: Arc::default() }
    }

    /// The service has flushed what it must at shutdown: a background job's synchronous call
    /// ([`Table::wait`]) after this fails at once instead of blocking on a runtime whose timers
    /// are going away (tokio panics then).
    pub fn stop_blocking_calls(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Runs one of the table's futures to its end for a synchronous call ([`alerts::wait`]),
    /// unless the service is stopping.
    pub fn wait<T>(&self, future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        anyhow::ensure!(!self.stopped.load(Ordering::Acquire), "the service is stopping");
        alerts::wait(future)
    }

    /// Creates the table (on-demand capacity, TTL on `expires`) and waits until it is active;
    /// `false` when it existed already.
    pub async fn create(&self) -> anyhow::Result<bool> {
        let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let attribute = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .attribute_definitions(attribute(PK)?)
            .attribute_definitions(attribute(SK)?)
            .send()
            .await;
        let created = match created {
            Ok(_) => true,
            Err(e) if code(&e) == Some("ResourceInUseException") => false,
            Err(e) => return Err(failure(e)).with_context(|| format!("creating the table {}", self.name)),
        };
        self.wait_until_active().await?;
        if created {
            self.client
                .update_time_to_live()
                .table_name(&self.name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder().enabled(true).attribute_name(EXPIRES).build()?,
                )
                .send()
                .await
                .map_err(failure)
                .with_context(|| format!("turning on TTL on the table {}", self.name))?;
        }
        Ok(created)
    }

    async fn wait_until_active(&self) -> anyhow::Result<()> {
        for _ in 0..120 {
            let described = self.client.describe_table().table_name(&self.name).send().await.map_err(failure)?;
            let status = described.table().and_then(|t| t.table_status()).map(|s| s.as_str().to_string());
            if status.as_deref() == Some("ACTIVE") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::bail!("the table {} did not become active within a minute", self.name)
    }

    /// The table with every request its client sends (each attempt) counted into `requests`:
    /// what DynamoDB bills, and what the benchmark measures per task.
    pub fn counted(self, requests: Counter) -> Table {
        let config = self.client.config().to_builder().interceptor(CountRequests(requests)).build();
        Table { client: Client::from_conf(config), ..self }
    }

    /// Every item of `pk` (with a sort key in `[first, last]` when given), page after page.
    pub async fn query_all(&self, pk: &str, sort_keys: Option<(&str, &str)>) -> anyhow::Result<Vec<Item>> {
        self.query_projected(pk, sort_keys, None).await
    }

    /// As [`Table::query_all`], reading only the attributes `projection` names (a projection
    /// expression; `#name` placeholders stand for the reserved words `status`, `level` and `type`).
    pub async fn query_projected(
        &self,
        pk: &str,
        sort_keys: Option<(&str, &str)>,
        projection: Option<&str>,
    ) -> anyhow::Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression(if sort_keys.is_some() {
                    "pk = :pk AND sk BETWEEN :first AND :last"
                } else {
                    "pk = :pk"
                })
                .expression_attribute_values(":pk", s(pk));
            if let Some((first, last)) = sort_keys {
                query =
                    query.expression_attribute_values(":first", s(first)).expression_attribute_values(":last", s(last));
            }
            if let Some(projection) = projection {
                query = query.projection_expression(projection);
                for (name, attribute) in [("#status", "status"), ("#level", "level"), ("#type", "type")] {
                    if projection.contains(name) {
                        query = query.expression_attribute_names(name, attribute);
                    }
                }
            }
            let answer = query.set_exclusive_start_key(start).send().await.map_err(failure)?;
            items.extend(answer.items().iter().cloned());
            start = answer.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The items at `keys` (`(pk, sk)` pairs), strongly consistent, 100 per request.
    pub async fn get_all(&self, keys: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<Vec<Item>> {
        let mut wanted: Vec<Item> = keys
            .into_iter()
            .map(|(pk, sk)| HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))]))
            .collect();
        let mut found = Vec::new();
        while !wanted.is_empty() {
            let rest = wanted.split_off(wanted.len().min(100));
            let request = KeysAndAttributes::builder().set_keys(Some(wanted)).consistent_read(true).build()?;
            let answer =
                self.client.batch_get_item().request_items(&self.name, request).send().await.map_err(failure)?;
            found.extend(answer.responses().and_then(|r| r.get(&self.name)).into_iter().flatten().cloned());
            wanted = rest;
            if let Some(unprocessed) = answer.unprocessed_keys().and_then(|u| u.get(&self.name)) {
                wanted.extend(unprocessed.keys().iter().cloned());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(found)
    }

    /// Whether the table answers (a cheap read of one key).
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.client
            .get_item()
            .table_name(&self.name)
            .key(PK, s("ping"))
            .key(SK, s("-"))
            .send()
            .await
            .map_err(failure)?;
        Ok(())
    }
}

/// A string attribute.
pub fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

/// A number attribute.
pub fn n(number: i64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

/// The string attribute `name` of `item`.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// The number attribute `name` of `item`.
pub fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

/// The error code DynamoDB answered with, if it answered.
pub fn code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Whether a write failed only because its condition did not hold.
pub fn condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    code(error) == Some("ConditionalCheckFailedException")
}

/// An SDK error as an `anyhow` error that says what DynamoDB said.
pub fn failure<E, R>(error: SdkError<E, R>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    anyhow::anyhow!("{}", DisplayErrorContext(&error))
}
