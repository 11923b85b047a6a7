//! Saved searches, shared by the whole team (`../shared/spec/ui.md`): a name, a project, an
//! environment, a query and a time range kept as written (`now-24h` stays relative). This file
//! holds what a saved search is, the bounds every store keeps ([`MAX_PER_PROJECT`], names unique
//! per project) and the [`SavedSearches`] trait; [`sqlite`] keeps them in `data_dir/searches.db`
//! (`[state] backend = "local"`), `crate::dynamo::DynamoSearches` in the shared table, so every
//! task sees the same list.

pub mod sqlite;

use async_trait::async_trait;
use serde::Serialize;

/// Saved searches a project may have at most.
pub const MAX_PER_PROJECT: usize = 500;
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest `from` or `to`, in characters (a time, or `now-15m` and the like).
pub const MAX_TIME_CHARS: usize = 64;

/// A saved search as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedSearch {
    pub id: String,
    pub name: String,
    pub project: String,
    pub env: String,
    pub q: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// When it was saved, epoch milliseconds: lists are in this order.
    pub created_ms: i64,
}

/// Why a search was not saved: both are a `409` to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSaved {
    #[error("project `{project}` already has a saved search named `{name}`")]
    NameTaken { project: String, name: String },
    #[error("project `{project}` has {MAX_PER_PROJECT} saved searches, the most it may have; delete one first")]
    Full { project: String },
}

/// Where saved searches live: SQLite under `data_dir`, or the shared table.
#[async_trait]
pub trait SavedSearches: Send + Sync {
    /// Saves `search` unless its project has one of that name or [`MAX_PER_PROJECT`] already,
    /// whichever task asks.
    async fn create(&self, search: SavedSearch) -> anyhow::Result<Result<SavedSearch, NotSaved>>;

    /// The saved searches of `project` (every project's with `None`), oldest first.
    async fn list(&self, project: Option<&str>) -> anyhow::Result<Vec<SavedSearch>>;

    /// Deletes search `id`; false when there is none.
    async fn delete(&self, id: &str) -> anyhow::Result<bool>;
}

/// A name as it is kept: trimmed; `Err` with the reason when empty or too long.
pub fn clean_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("`name` must not be empty".into());
    }
    if name.chars().nth(MAX_NAME_CHARS).is_some() {
        return Err(format!("`name` is longer than {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("`name` must not contain control characters".into());
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_held_to_their_bounds() {
        assert_eq!(clean_name("  errors at checkout "), Ok("errors at checkout".into()));
        assert_eq!(clean_name("   "), Err("`name` must not be empty".into()));
        assert_eq!(clean_name(&"ä".repeat(MAX_NAME_CHARS)).map(|n| n.chars().count()), Ok(MAX_NAME_CHARS));
        assert_eq!(clean_name(&"a".repeat(MAX_NAME_CHARS + 1)), Err("`name` is longer than 100 characters".into()));
        assert!(clean_name("a\nb").is_err());
    }
}
