//! Sending one notification to a Slack incoming webhook: POST the Block Kit payload, and read the
//! answer as sent, retry (429, 408, 5xx, no answer) or a permanent failure (any other 4xx).
//!
//! The webhook URL is the credential: it is never logged, and errors are described without it
//! (`reqwest::Error::without_url`, then [`super::deliver`] redacts whatever is left).

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::notification::{Attempt, Notification, describe};
use super::render;
use crate::config::Secret;

/// Slack accepts about one message per second per webhook.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes of an error answer kept in the error (Slack answers `invalid_payload`, `no_service`...).
const MAX_ERROR_BODY: usize = 200;

/// One webhook. Channels that share a webhook share its `last_sent`, so the one-per-second limit
/// holds for the webhook, not per channel.
pub(crate) struct SlackSender {
    client: reqwest::Client,
    url: Secret,
    last_sent: Arc<Mutex<Option<Instant>>>,
}

/// The client every webhook uses: bounded waits, and no redirects (a redirect would carry the
/// message somewhere the operator did not configure).
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("logboard/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

impl SlackSender {
    pub(crate) fn new(client: reqwest::Client, url: Secret, last_sent: Arc<Mutex<Option<Instant>>>) -> SlackSender {
        SlackSender { client, url, last_sent }
    }

    pub(crate) async fn send(&self, notification: &Notification) -> Attempt {
        let payload = render::slack(notification);
        // Held across the request: the next message to this webhook waits for this one.
        let mut last_sent = self.last_sent.lock().await;
        if let Some(last) = *last_sent {
            tokio::time::sleep_until(last + MIN_INTERVAL).await;
        }
        let result = self.client.post(self.url.expose()).json(&payload).send().await;
        *last_sent = Some(Instant::now());
        drop(last_sent);
        let response = match result {
            Ok(response) => response,
            Err(e) => return Attempt::Retry { error: format!("slack: {}", describe(&e.without_url())), after: None },
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Sent;
        }
        let after = retry_after(response.headers());
        let body = error_body(response).await;
        let error = format!("slack: HTTP {}{body}", status.as_u16());
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
        {
            Attempt::Retry { error, after }
        } else {
            Attempt::Failed(error)
        }
    }
}

/// `Retry-After` in seconds (what Slack sends); an HTTP date or anything else is ignored and the
/// backoff decides.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The start of an error answer (`: invalid_payload`), read no further than [`MAX_ERROR_BODY`]
/// bytes whatever the receiver sends.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    let text: String = String::from_utf8_lossy(&body).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let text = text.trim();
    if text.is_empty() { String::new() } else { format!(": {text}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn retry_after_in_seconds_is_read_and_anything_else_left_to_the_backoff() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
    }
}
