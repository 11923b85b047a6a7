//! Logouts every task sees: a session is a signed cookie that any task sharing the secret
//! accepts, so a logout on one task must be known to the others, or a copy of the cookie stays
//! good there until it expires. [`Logouts`] is where the ended sessions are kept when the state
//! is shared (`crate::dynamo::DynamoLogouts`); without it each task remembers its own.

use async_trait::async_trait;

/// Ended sessions, by id, shared by every task.
#[async_trait]
pub trait Logouts: Send + Sync {
    /// Ends session `id`; it need not be remembered after `until_unix_secs`, when it would have
    /// ended anyway.
    async fn record(&self, id: &str, until_unix_secs: u64) -> anyhow::Result<()>;

    /// Whether session `id` was ended (on any task).
    async fn ended(&self, id: &str) -> anyhow::Result<bool>;
}
