//! The AWS side of the backend: the SDK client as logboard sets it up (one attempt per call,
//! bounded; the shipper is the one retry layer), the shipper's destination (PutLogEvents,
//! CreateLogGroup with the new group's retention policy, CreateLogStream), and how an SDK error is classified for the shipper.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use prometheus_client::metrics::counter::Counter;

use super::retention::GroupRetention;
use super::shipper::{LogDestination, OutEvent, PutError, PutOutcome};
use crate::config::CloudWatchConfig;
use crate::metrics::CountRequests;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One SDK attempt at most, by default; past it the call counts as a timeout and is retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// A client from the AWS default chain, with the region and endpoint of the config when set.
pub async fn connect(config: &CloudWatchConfig) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if !config.region.is_empty() {
        loader = loader.region(Region::new(config.region.clone()));
    }
    if !config.endpoint_url.is_empty() {
        loader = loader.endpoint_url(&config.endpoint_url);
    }
    Client::new(&loader.load().await)
}

/// `client` with the SDK's own retries off, each attempt bounded by `attempt_timeout` and
/// counted into `requests`.
pub fn with_one_attempt(client: &Client, attempt_timeout: Duration, requests: Counter) -> Client {
    let config = client
        .config()
        .to_builder()
        .interceptor(CountRequests(requests))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// The writer's destination: PutLogEvents, CreateLogGroup (and the new group's retention
/// policy), CreateLogStream.
pub struct CloudWatchDestination {
    pub client: Client,
    pub retention: Arc<GroupRetention>,
}

#[async_trait]
impl LogDestination for CloudWatchDestination {
    async fn put(&self, group: &str, stream: &str, events: &[OutEvent]) -> Result<PutOutcome, PutError> {
        let events = events
            .iter()
            .map(|e| InputLogEvent::builder().timestamp(e.timestamp_ms).message(e.message.clone()).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PutError::InvalidParameter(e.to_string()))?;
        let answer = self
            .client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
            .map_err(put_error)?;
        let index = |i: Option<i32>| i.and_then(|i| usize::try_from(i).ok());
        Ok(answer
            .rejected_log_events_info()
            .map(|r| PutOutcome {
                too_new_start: index(r.too_new_log_event_start_index()),
                too_old_end: index(r.too_old_log_event_end_index()),
                expired_end: index(r.expired_log_event_end_index()),
            })
            .unwrap_or_default())
    }

    async fn create_group(&self, group: &str) -> Result<(), PutError> {
        self.client.create_log_group().log_group_name(group).send().await.map_err(put_error)?;
        self.retention.on_created(&self.client, group).await;
        Ok(())
    }

    async fn create_stream(&self, group: &str, stream: &str) -> Result<(), PutError> {
        self.client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
            .map(|_| ())
            .map_err(put_error)
    }
}

fn put_error<E>(error: SdkError<E>) -> PutError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => PutError::Transient(text),
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => PutError::Transient(text),
        SdkError::ServiceError(service) => {
            classify_code(service.err().code(), Some(service.raw().status().as_u16()), text)
        }
        _ => PutError::Other(text),
    }
}

/// Maps a CloudWatch error code (and HTTP status) to what the writer does with it. The SDK
/// surfaces throttling as an unhandled error, so the code is matched as text.
fn classify_code(code: Option<&str>, status: Option<u16>, text: String) -> PutError {
    match code.unwrap_or("") {
        "ResourceNotFoundException" => PutError::GroupOrStreamMissing,
        "ResourceAlreadyExistsException" => PutError::AlreadyExists,
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded" => {
            PutError::Throttled
        }
        "InvalidParameterException" | "ValidationException" | "SerializationException" => {
            PutError::InvalidParameter(text)
        }
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => PutError::Denied(text),
        "ServiceUnavailableException" | "InternalFailure" | "InternalServerError" => PutError::Transient(text),
        _ => match status {
            Some(429) => PutError::Throttled,
            Some(s) if s >= 500 => PutError::Transient(text),
            Some(401 | 403) => PutError::Denied(text),
            _ => PutError::Other(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(code: &str, status: u16) -> PutError {
        classify_code(Some(code), Some(status), "text".into())
    }

    #[test]
    fn resource_not_found_means_create_the_group_or_stream() {
        assert_eq!(classify("ResourceNotFoundException", 400), PutError::GroupOrStreamMissing);
    }

    #[test]
    fn already_exists_is_recognised() {
        assert_eq!(classify("ResourceAlreadyExistsException", 400), PutError::AlreadyExists);
    }

    #[test]
    fn throttling_exception_is_throttled() {
        assert_eq!(classify("ThrottlingException", 400), PutError::Throttled);
        assert_eq!(classify_code(None, Some(429), "t".into()), PutError::Throttled);
    }

    #[test]
    fn invalid_parameter_is_split_material() {
        assert!(matches!(classify("InvalidParameterException", 400), PutError::InvalidParameter(_)));
    }

    #[test]
    fn auth_failures_are_denied() {
        for code in ["AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"] {
            assert!(matches!(classify(code, 400), PutError::Denied(_)), "{code}");
        }
    }

    #[test]
    fn server_errors_are_transient() {
        assert!(matches!(classify("ServiceUnavailableException", 503), PutError::Transient(_)));
        assert!(matches!(classify_code(None, Some(502), "t".into()), PutError::Transient(_)));
    }

    #[test]
    fn unknown_client_errors_are_other() {
        assert!(matches!(classify("SomethingNew", 400), PutError::Other(_)));
    }
}
