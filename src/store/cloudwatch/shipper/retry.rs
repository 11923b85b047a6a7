//! What the writer does after a failed call, and how long it waits before the next one.
//!
//! This is the only retry layer: the SDK's own retries are off. There is no retry limit,
//! because the events are safe in the spool while we wait.

use std::time::Duration;

use super::PutError;

/// The first backoff's upper bound.
pub const BASE_DELAY: Duration = Duration::from_millis(200);
/// No backoff is longer than this.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// What to do with a batch whose put failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Wait (backoff) and send the same batch again.
    Retry,
    /// Create the group and the stream, then put again.
    CreateAndRetry,
    /// The batch holds an event CloudWatch refuses: split it to find that event.
    Split,
    /// Credentials or permissions: keep the data, report loudly, and retry after a backoff
    /// (an operator may fix the role without restarting us).
    RetryLoudly,
}

pub fn classify(error: &PutError) -> Action {
    match error {
        PutError::Throttled | PutError::Transient(_) | PutError::Other(_) => Action::Retry,
        // AlreadyExists never answers a put; if it does, trying again is harmless.
        PutError::AlreadyExists => Action::Retry,
        PutError::GroupOrStreamMissing => Action::CreateAndRetry,
        PutError::InvalidParameter(_) => Action::Split,
        PutError::Denied(_) => Action::RetryLoudly,
    }
}

/// True when sending the same batch again, unchanged, may succeed.
pub fn is_retriable(error: &PutError) -> bool {
    matches!(classify(error), Action::Retry | Action::RetryLoudly)
}

/// Exponential backoff with full jitter: the n-th wait is uniform in [0, min(cap, base·2ⁿ)].
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff::default()
    }

    /// The upper bound of the next wait, before jitter.
    pub fn ceiling(&self) -> Duration {
        BASE_DELAY.checked_mul(1u32 << self.attempt.min(16)).map_or(MAX_DELAY, |d| d.min(MAX_DELAY))
    }

    /// The next wait; each call doubles the ceiling up to [`MAX_DELAY`].
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(rand::random::<f64>())
    }

    /// After a success: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_retried() {
        assert!(is_retriable(&PutError::Throttled));
        assert_eq!(classify(&PutError::Throttled), Action::Retry);
    }

    #[test]
    fn server_errors_timeouts_and_resets_are_retried() {
        for error in ["HTTP 503", "timeout", "connection reset"] {
            assert!(is_retriable(&PutError::Transient(error.into())), "{error}");
        }
    }

    #[test]
    fn unknown_errors_are_retried_because_the_data_is_safe_on_disk() {
        assert!(is_retriable(&PutError::Other("SomethingNew".into())));
    }

    #[test]
    fn auth_errors_are_retried_loudly_and_the_data_kept() {
        let error = PutError::Denied("AccessDeniedException".into());
        assert!(is_retriable(&error));
        assert_eq!(classify(&error), Action::RetryLoudly);
    }

    #[test]
    fn invalid_parameter_is_split_not_retried_as_is() {
        let error = PutError::InvalidParameter("bad event".into());
        assert!(!is_retriable(&error));
        assert_eq!(classify(&error), Action::Split);
    }

    #[test]
    fn a_missing_group_or_stream_is_created_not_retried_as_is() {
        assert!(!is_retriable(&PutError::GroupOrStreamMissing));
        assert_eq!(classify(&PutError::GroupOrStreamMissing), Action::CreateAndRetry);
    }

    #[test]
    fn already_exists_is_harmless_to_retry() {
        assert!(is_retriable(&PutError::AlreadyExists));
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap_with_full_jitter() {
        let mut backoff = Backoff::new();
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            let ceiling = backoff.ceiling();
            let delay = backoff.next_delay();
            assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(ceilings, [200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000, 30_000]);
        for _ in 0..100 {
            backoff.next_delay();
        }
        assert_eq!(backoff.ceiling(), MAX_DELAY, "no overflow after many attempts");
        backoff.reset();
        assert_eq!(backoff.ceiling(), BASE_DELAY);
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let mut backoff = Backoff::new();
        for _ in 0..8 {
            backoff.next_delay();
        }
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.clone().next_delay()).collect();
        assert!(delays.len() > 10, "full jitter gives different waits: {delays:?}");
    }
}
