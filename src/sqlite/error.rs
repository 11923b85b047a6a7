//! Why a writer thread's commit failed, as every request of the round is told: one error,
//! cloned to each waiting caller, that keeps its cause chain.

use std::fmt;
use std::sync::Arc;

/// A commit of a writer thread failed; every request of that round gets a clone. Shows the
/// failure's own message; its causes follow as [`std::error::Error::source`], so
/// `anyhow`'s `{:#}` prints the whole chain.
#[derive(Debug, Clone)]
pub struct CommitFailed(Arc<anyhow::Error>);

impl CommitFailed {
    pub fn new(error: anyhow::Error) -> CommitFailed {
        CommitFailed(Arc::new(error))
    }

    /// The failure, with its causes.
    pub fn cause(&self) -> &anyhow::Error {
        &self.0
    }
}

impl From<anyhow::Error> for CommitFailed {
    fn from(error: anyhow::Error) -> CommitFailed {
        CommitFailed::new(error)
    }
}

impl fmt::Display for CommitFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for CommitFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let error: &(dyn std::error::Error + 'static) = &**self.0;
        error.source()
    }
}

/// Two failures are equal when they say the same, causes included (tests compare answers).
impl PartialEq for CommitFailed {
    fn eq(&self, other: &CommitFailed) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || format!("{:#}", self.0) == format!("{:#}", other.0)
    }
}

impl Eq for CommitFailed {}

#[cfg(test)]
mod tests {
    use anyhow::{Context as _, anyhow};

    use super::*;

    #[test]
    fn a_caller_sees_the_whole_cause_chain_through_a_clone() {
        let failed: anyhow::Result<()> = Err(anyhow!("database or disk is full")).context("inserting the events");
        let failed = CommitFailed::new(failed.expect_err("failed"));
        let answer: Result<(), CommitFailed> = Err(failed.clone());
        let seen = answer.context("embedded store commit failed").expect_err("failed");
        assert_eq!(format!("{seen:#}"), "embedded store commit failed: inserting the events: database or disk is full");
        assert_eq!(seen.chain().count(), 3);
        assert_eq!(failed.to_string(), "inserting the events");
        assert_eq!(failed, failed.clone());
    }
}
