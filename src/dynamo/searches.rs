//! [`SavedSearches`] in the shared table, in one partition (`pk = "searches"`: at most
//! [`MAX_PER_PROJECT`] per project, a few hundred kilobytes in all):
//! - `sk = "name#{project}#{name}"`: one saved search. Its put is conditional on the item being
//!   absent, so of two tasks saving one name at once exactly one succeeds;
//! - `sk = "count#{project}"`: how many the project has, moved by conditional atomic adds before a
//!   search is written and after one is deleted. It is never below the true number (a task that
//!   dies between the two writes, or a write that failed without saying whether it was applied,
//!   leaves it one above: a place lost, never one over the limit), so no two tasks together pass
//!   [`MAX_PER_PROJECT`].
//!
//! (Project names cannot hold `#`: `config.rs` allows A-Z a-z 0-9 - _ . only.)

use anyhow::Context as _;
use async_trait::async_trait;

use super::{Item, PK, SK, Table, condition_failed, failure, get_n, get_s, n, s};
use crate::searches::{MAX_PER_PROJECT, NotSaved, SavedSearch, SavedSearches};

const PARTITION: &str = "searches";
/// Above every character a name may hold: the end of a prefix's range of sort keys.
const LAST_CHAR: char = char::MAX;

#[derive(Debug, Clone)]
pub struct DynamoSearches {
    table: Table,
}

impl DynamoSearches {
    pub fn new(table: Table) -> DynamoSearches {
        DynamoSearches { table }
    }

    /// Moves the project's count by `by`; a rise only while it stays within the limit. False
    /// when the limit refused it.
    async fn count(&self, project: &str, by: i64) -> anyhow::Result<bool> {
        let mut update = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key(PK, s(PARTITION))
            .key(SK, s(format!("count#{project}")))
            .update_expression("ADD #n :by")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":by", n(by));
        if by > 0 {
            let max = i64::try_from(MAX_PER_PROJECT).unwrap_or(i64::MAX);
            update = update
                .condition_expression("attribute_not_exists(#n) OR #n <= :most")
                .expression_attribute_values(":most", n(max - by));
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failure(e)).context("counting a project's saved searches"),
        }
    }
}

fn name_key(project: &str, name: &str) -> String {
    format!("name#{project}#{name}")
}

fn read(item: &Item) -> Option<SavedSearch> {
    let text = |name: &str| get_s(item, name).map(str::to_string);
    Some(SavedSearch {
        id: text("id")?,
        name: text("name")?,
        project: text("project")?,
        env: text("env")?,
        q: text("q").unwrap_or_default(),
        from: text("from"),
        to: text("to"),
        created_ms: get_n(item, "created_ms").unwrap_or(0),
    })
}

#[async_trait]
impl SavedSearches for DynamoSearches {
    async fn create(&self, search: SavedSearch) -> anyhow::Result<Result<SavedSearch, NotSaved>> {
        if !self.count(&search.project, 1).await? {
            return Ok(Err(NotSaved::Full { project: search.project }));
        }
        let mut put = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .item(PK, s(PARTITION))
            .item(SK, s(name_key(&search.project, &search.name)))
            .item("id", s(&search.id))
            .item("name", s(&search.name))
            .item("project", s(&search.project))
            .item("env", s(&search.env))
            .item("q", s(&search.q))
            .item("created_ms", n(search.created_ms))
            .condition_expression("attribute_not_exists(pk)");
        for (attribute, value) in [("from", &search.from), ("to", &search.to)] {
            if let Some(value) = value {
                put = put.item(attribute, s(value));
            }
        }
        match put.send().await {
            Ok(_) => Ok(Ok(search)),
            Err(e) if condition_failed(&e) => {
                // Not written: the place taken above is given back.
                self.count(&search.project, -1).await?;
                Ok(Err(NotSaved::NameTaken { project: search.project, name: search.name }))
            }
            // Perhaps written (a timeout after the table took it): the place stays taken, so
            // the count is never below the searches there are.
            Err(e) => Err(failure(e)).context("saving a search"),
        }
    }

    async fn list(&self, project: Option<&str>) -> anyhow::Result<Vec<SavedSearch>> {
        let prefix = match project {
            Some(project) => format!("name#{project}#"),
            None => "name#".to_string(),
        };
        let last = format!("{prefix}{LAST_CHAR}");
        let items = self.table.query_all(PARTITION, Some((&prefix, &last))).await.context("listing saved searches")?;
        let mut searches: Vec<SavedSearch> = items.iter().filter_map(read).collect();
        searches.sort_by(|a, b| (&a.project, a.created_ms, &a.id).cmp(&(&b.project, b.created_ms, &b.id)));
        Ok(searches)
    }

    async fn delete(&self, id: &str) -> anyhow::Result<bool> {
        let Some(search) = self.list(None).await?.into_iter().find(|search| search.id == id) else {
            return Ok(false);
        };
        let deleted = self
            .table
            .client
            .delete_item()
            .table_name(&self.table.name)
            .key(PK, s(PARTITION))
            .key(SK, s(name_key(&search.project, &search.name)))
            .condition_expression("#id = :id")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":id", s(id))
            .send()
            .await;
        match deleted {
            Ok(_) => {
                self.count(&search.project, -1).await?;
                Ok(true)
            }
            // Another task deleted it meanwhile.
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(failure(e)).context("deleting a saved search"),
        }
    }
}
