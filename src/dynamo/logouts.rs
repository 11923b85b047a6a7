//! [`Logouts`] in the shared table: one item per ended session (`pk = "logout"`, `sk` its id),
//! gone by TTL once the session would have ended anyway.

use anyhow::Context as _;
use async_trait::async_trait;

use super::{EXPIRES, PK, SK, Table, failure, n, s};
use crate::logout::Logouts;

#[derive(Debug, Clone)]
pub struct DynamoLogouts {
    table: Table,
}

impl DynamoLogouts {
    pub fn new(table: Table) -> DynamoLogouts {
        DynamoLogouts { table }
    }
}

#[async_trait]
impl Logouts for DynamoLogouts {
    async fn record(&self, id: &str, until_unix_secs: u64) -> anyhow::Result<()> {
        self.table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item(PK, s("logout"))
            .item(SK, s(id))
            .item(EXPIRES, n(i64::try_from(until_unix_secs).unwrap_or(i64::MAX)))
            .send()
            .await
            .map_err(failure)
            .context("recording a logout")?;
        Ok(())
    }

    async fn ended(&self, id: &str) -> anyhow::Result<bool> {
        let answer = self
            .table
            .client
            .get_item()
            .table_name(&self.table.name)
            .key(PK, s("logout"))
            .key(SK, s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(failure)
            .context("reading a logout")?;
        Ok(answer.item().is_some())
    }
}
