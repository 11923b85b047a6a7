//! The AWS SDK's shared config for logboard's clients (DynamoDB, S3): the default credentials
//! chain, the configured region when there is one, and each client's own timeouts.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region};

/// A loader from the default chain with `region` (empty: the chain's) and the given connect and
/// per-attempt timeouts; the caller adds what is its own (an endpoint) and loads it.
pub fn loader(region: &str, connect: Duration, attempt: Duration) -> ConfigLoader {
    let timeouts = TimeoutConfig::builder().connect_timeout(connect).operation_attempt_timeout(attempt).build();
    let loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
    if region.is_empty() { loader } else { loader.region(Region::new(region.to_string())) }
}
