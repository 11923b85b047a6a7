//! [`Lease`]s in the shared table: one item per lease (`pk = "lease"`, `sk` its name) with its
//! holder and until when; acquiring is one conditional put, granted when the item is absent, ran
//! out, or already the holder's — so of several tasks asking at once exactly one gets it.

use std::time::Duration;

use async_trait::async_trait;

use super::{EXPIRES, PK, SK, Table, condition_failed, failure, n, s};
use crate::clock::now_ms;
use crate::lease::Lease;

/// How long a lease's item outlives its end before DynamoDB's TTL removes it.
const KEPT_AFTER_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone)]
pub struct DynamoLeases {
    table: Table,
}

impl DynamoLeases {
    pub fn new(table: Table) -> DynamoLeases {
        DynamoLeases { table }
    }

    /// [`Lease::acquire`] with the clock at `now_ms`.
    pub async fn acquire_at(&self, name: &str, holder: &str, ttl: Duration, now_ms: i64) -> anyhow::Result<bool> {
        let until = now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let put = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item(PK, s("lease"))
            .item(SK, s(name))
            .item("holder", s(holder))
            .item("until_ms", n(until))
            .item(EXPIRES, n(until / 1000 + KEPT_AFTER_SECS))
            .condition_expression("attribute_not_exists(pk) OR holder = :me OR until_ms <= :now")
            .expression_attribute_values(":me", s(holder))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failure(e)),
        }
    }
}

#[async_trait]
impl Lease for DynamoLeases {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration) -> anyhow::Result<bool> {
        self.acquire_at(name, holder, ttl, now_ms()).await
    }

    async fn release(&self, name: &str, holder: &str) -> anyhow::Result<()> {
        let deleted = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key(PK, s("lease"))
            .key(SK, s(name))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", s(holder))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(failure(e)),
        }
    }
}
