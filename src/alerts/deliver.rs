//! The deliverer: a background task per channel that sends the outbox's due deliveries, records
//! each outcome, and retries with backoff.
//!
//! - A failure worth retrying (no answer, Slack 408/429/5xx, SMTP 4xx) is tried again after the
//!   [`Backoff`] (or later, when `Retry-After` asks), for at least `give_up_after` from the first
//!   attempt; then the delivery is `failed`. Any other failure is `failed` at once.
//! - A delivery is marked `sent` only after the channel accepted it, so a restart re-sends what
//!   was pending and never what was delivered.
//! - Each channel has its own task: a slow or dead relay never holds back Slack, and Slack's one
//!   message per second per webhook only slows that webhook.
//! - Enqueueing wakes the tasks at once; a poll is only the fallback.
//! - Secrets (webhook URLs, the SMTP password) are redacted from every error before it is logged,
//!   stored or counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use super::email::{self, EmailSender};
use super::notification::{Attempt, Notification};
use super::outbox::{DeliveryState, Due, Outbox, Settled};
use super::slack::{self, SlackSender};
use crate::clock::now_ms;
use crate::config::alerts::{ChannelConfig, ChannelKind, SmtpConfig};
use crate::metrics::Metrics;

/// How long a task sleeps when nothing is due and nothing is enqueued.
const POLL: Duration = Duration::from_secs(30);
/// Deliveries read per round.
const BATCH: usize = 16;
/// A `Retry-After` longer than this is cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Settled notifications older than this are deleted.
const KEEP: Duration = Duration::from_secs(30 * 86_400);
/// How long `shutdown` waits for the sends in flight.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// When to try again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure; it doubles after each further one ...
    pub first: Duration,
    /// ... up to this.
    pub max: Duration,
    /// Retries stop once the first attempt is this long ago.
    pub give_up_after: Duration,
}

impl Default for Backoff {
    /// The spec's: the first retry within 5 s, doubling to 5 minutes, for an hour.
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(2),
            max: Duration::from_secs(300),
            give_up_after: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.first.checked_mul(1 << doublings).map_or(self.max, |d| d.min(self.max))
    }
}

/// Decides what an attempt made at `now_ms` leaves in the outbox.
fn settle(attempt: Attempt, due: &Due, now_ms: i64, backoff: &Backoff) -> Settled {
    match attempt {
        Attempt::Sent => Settled { state: DeliveryState::Sent, error: None, next_at: None },
        Attempt::Failed(error) => Settled { state: DeliveryState::Failed, error: Some(error), next_at: None },
        Attempt::Retry { error, after } => {
            let first = due.first_attempt_at.unwrap_or(now_ms);
            let failures = due.attempts.saturating_add(1);
            if now_ms.saturating_sub(first) >= millis(backoff.give_up_after) {
                let error = format!("{error} (gave up after {failures} attempts)");
                return Settled { state: DeliveryState::Failed, error: Some(error), next_at: None };
            }
            let wait = backoff.delay(failures).max(after.unwrap_or_default().min(MAX_RETRY_AFTER));
            Settled {
                state: DeliveryState::Retrying,
                error: Some(error),
                next_at: Some(now_ms.saturating_add(millis(wait))),
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Replaces every secret in `text` with `[redacted]`.
fn redact(mut text: String, secrets: &[String]) -> String {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "[redacted]");
        }
    }
    text
}

/// The strings that must never appear in an error: each webhook URL and its path (the token),
/// the SMTP password and its AUTH PLAIN encoding.
fn secrets_of(channels: &[ChannelConfig], smtp: &SmtpConfig) -> Vec<String> {
    let mut secrets = Vec::new();
    for url in channels.iter().filter_map(|c| c.webhook_url.as_ref()) {
        secrets.push(url.expose().to_string());
        if let Ok(parsed) = url::Url::parse(url.expose()) {
            if parsed.path().len() > 1 {
                secrets.push(parsed.path().to_string());
            }
            if let Some(query) = parsed.query() {
                secrets.push(query.to_string());
            }
        }
    }
    if let Some(password) = smtp.password.as_ref().map(|p| p.expose()).filter(|p| !p.is_empty()) {
        secrets.push(password.to_string());
        let plain = format!("\0{}\0{password}", smtp.username);
        secrets.push(base64::engine::general_purpose::STANDARD.encode(plain));
        secrets.push(base64::engine::general_purpose::STANDARD.encode(password));
    }
    // Longest first, so a URL is redacted whole before its path is looked for.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

enum Sender {
    Slack(SlackSender),
    // Boxed: lettre's transport and the mailboxes are much larger than a webhook.
    Email(Box<EmailSender>),
}

impl Sender {
    async fn send(&self, notification: &Notification) -> Attempt {
        match self {
            Sender::Slack(slack) => slack.send(notification).await,
            Sender::Email(email) => email.send(notification).await,
        }
    }
}

/// One channel's task and what it needs.
struct Worker {
    channel: String,
    sender: Sender,
    outbox: Arc<dyn Outbox>,
    metrics: Arc<Metrics>,
    backoff: Backoff,
    secrets: Arc<Vec<String>>,
}

/// The running deliverer: one task per channel. Dropping it stops the tasks where they are (a
/// send in flight may then be re-sent after a restart); [`Deliverer::shutdown`] lets them finish.
pub struct Deliverer {
    channels: Vec<String>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").field("channels", &self.channels).finish_non_exhaustive()
    }
}

impl Deliverer {
    /// Stops taking new deliveries, and waits (up to 10 s) for the sends in flight to be
    /// recorded.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(SHUTDOWN_WAIT, all).await.is_err() {
            tracing::warn!("alert deliveries still in flight at shutdown; they will be sent again after the restart");
        }
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts a task per channel that delivers the outbox's notifications. Deliveries waiting for a
/// channel no longer in `channels` are marked failed. Fails on an SMTP relay or an address that
/// cannot be used (`check-config` catches those first).
pub fn spawn(
    outbox: Arc<dyn Outbox>,
    channels: Vec<ChannelConfig>,
    smtp: SmtpConfig,
    metrics: Arc<Metrics>,
    backoff: Backoff,
) -> anyhow::Result<Deliverer> {
    let names: Vec<String> = channels.iter().map(|c| c.name.clone()).collect();
    // Housekeeping only: an outbox that does not answer now (a shared table down while the task
    // starts) must not stop the service, which still takes events.
    match outbox.fail_unknown_channels(&names) {
        Ok(0) => {}
        Ok(failed) => {
            tracing::warn!(deliveries = failed, "alert deliveries to channels no longer configured marked failed")
        }
        Err(error) => tracing::warn!(error = format!("{error:#}"), "could not check the outbox for removed channels"),
    }
    match outbox.prune(now_ms().saturating_sub(millis(KEEP))) {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(notifications = pruned, "old alert notifications deleted from the outbox"),
        Err(error) => tracing::warn!(error = format!("{error:#}"), "could not prune the outbox"),
    }
    let secrets = Arc::new(secrets_of(&channels, &smtp));
    let http = slack::client()?;
    let smtp_transport =
        channels.iter().any(|c| c.kind == ChannelKind::Email).then(|| email::transport(&smtp)).transpose()?;
    let mut webhooks: HashMap<String, Arc<Mutex<Option<tokio::time::Instant>>>> = HashMap::new();
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::with_capacity(channels.len());
    for channel in channels {
        let sender = match (channel.kind, &channel.webhook_url, &smtp_transport) {
            (ChannelKind::Slack, Some(url), _) => {
                let last_sent = webhooks.entry(url.expose().to_string()).or_default().clone();
                Sender::Slack(SlackSender::new(http.clone(), url.clone(), last_sent))
            }
            (ChannelKind::Email, _, Some(transport)) => {
                Sender::Email(Box::new(EmailSender::new(transport.clone(), &smtp, &channel)?))
            }
            _ => anyhow::bail!("channel `{}` is missing its webhook URL or [smtp]", channel.name),
        };
        let worker = Worker {
            channel: channel.name,
            sender,
            outbox: outbox.clone(),
            metrics: metrics.clone(),
            backoff,
            secrets: secrets.clone(),
        };
        tasks.push(tokio::spawn(worker.run(outbox.subscribe(), stopped.clone())));
    }
    Ok(Deliverer { channels: names, stop, tasks })
}

impl Worker {
    async fn run(self, mut wake: watch::Receiver<u64>, mut stop: watch::Receiver<bool>) {
        loop {
            // Seen before reading, so an enqueue from now on wakes the wait below.
            wake.borrow_and_update();
            let wait = match self.round(&stop).await {
                Ok(Some(wait)) => wait,
                // A full batch: more may be due.
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(channel = %self.channel, error = %redact(format!("{e:#}"), &self.secrets), "alert outbox unreadable");
                    POLL
                }
            };
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// Sends what is due; returns how long to wait before the next round (`None`: go on now).
    async fn round(&self, stop: &watch::Receiver<bool>) -> anyhow::Result<Option<Duration>> {
        let (outbox, channel) = (self.outbox.clone(), self.channel.clone());
        let due = blocking(move || outbox.due(&channel, now_ms(), BATCH)).await?;
        let full = due.len() == BATCH;
        for due in due {
            if *stop.borrow() {
                return Ok(Some(POLL));
            }
            self.deliver(due).await?;
        }
        if full {
            return Ok(None);
        }
        let (outbox, channel) = (self.outbox.clone(), self.channel.clone());
        let next = blocking(move || outbox.next_due_at(&channel)).await?;
        let wait =
            next.map_or(POLL, |at| Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0)));
        Ok(Some(wait.min(POLL)))
    }

    async fn deliver(&self, due: Due) -> anyhow::Result<()> {
        let attempt = match self.sender.send(&due.notification).await {
            Attempt::Sent => Attempt::Sent,
            Attempt::Retry { error, after } => Attempt::Retry { error: redact(error, &self.secrets), after },
            Attempt::Failed(error) => Attempt::Failed(redact(error, &self.secrets)),
        };
        let at = now_ms();
        let settled = settle(attempt, &due, at, &self.backoff);
        // Counted before the commit: the attempt happened, whatever becomes of the record.
        self.metrics.notification(&self.channel, settled.state.as_str());
        // The channel has accepted a `sent` message by now. Should the process die before this
        // commit, the delivery is still pending and is sent again after the restart: a duplicate
        // in that window of milliseconds, never a loss.
        let (outbox, channel, record) = (self.outbox.clone(), self.channel.clone(), settled.clone());
        blocking(move || outbox.record(due.notification_id, &channel, at, &record)).await?;
        let attempts = due.attempts.saturating_add(1);
        let error = settled.error.as_deref().unwrap_or("");
        match settled.state {
            DeliveryState::Sent => {
                tracing::info!(channel = %self.channel, alert = %due.alert, notification = due.notification_id, attempts, "alert message sent");
            }
            DeliveryState::Retrying => {
                tracing::warn!(channel = %self.channel, alert = %due.alert, notification = due.notification_id, attempts, error, "alert message not delivered; will retry");
            }
            DeliveryState::Failed | DeliveryState::Pending => {
                tracing::error!(channel = %self.channel, alert = %due.alert, notification = due.notification_id, attempts, error, "alert message failed");
            }
        }
        Ok(())
    }
}

/// Runs an outbox call on the blocking pool (it waits for SQLite and an fsync).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::notification::What;
    use crate::config::Secret;

    fn due(attempts: u32, first_attempt_at: Option<i64>) -> Due {
        Due {
            notification_id: 1,
            alert: "a".into(),
            notification: Notification {
                rule: "a".into(),
                project: None,
                env: None,
                what: What::Resolved,
                newest_message: None,
                link: "http://x/".into(),
            },
            attempts,
            first_attempt_at,
        }
    }

    #[test]
    fn the_backoff_starts_within_five_seconds_and_doubles_to_five_minutes() {
        let backoff = Backoff::default();
        assert!(backoff.delay(1) <= Duration::from_secs(5));
        assert_eq!(backoff.delay(2), backoff.delay(1) * 2);
        assert_eq!(backoff.delay(3), backoff.delay(1) * 4);
        assert_eq!(backoff.delay(20), Duration::from_secs(300));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn a_retry_waits_for_the_backoff_or_a_longer_retry_after() {
        let backoff = Backoff::default();
        let retry = |after| Attempt::Retry { error: "HTTP 429".into(), after };
        let settled = settle(retry(None), &due(0, None), 1_000, &backoff);
        assert_eq!(settled.state, DeliveryState::Retrying);
        assert_eq!(settled.next_at, Some(1_000 + millis(backoff.delay(1))));
        let settled = settle(retry(Some(Duration::from_secs(60))), &due(0, None), 1_000, &backoff);
        assert_eq!(settled.next_at, Some(61_000));
        let settled = settle(retry(Some(Duration::from_secs(86_400))), &due(0, None), 1_000, &backoff);
        assert_eq!(settled.next_at, Some(1_000 + millis(MAX_RETRY_AFTER)), "a day is cut to an hour");
    }

    #[test]
    fn retries_stop_only_once_the_first_attempt_is_an_hour_old() {
        let backoff = Backoff::default();
        let hour = millis(backoff.give_up_after);
        let retry = || Attempt::Retry { error: "HTTP 503".into(), after: None };
        let settled = settle(retry(), &due(11, Some(0)), hour - 1, &backoff);
        assert_eq!(settled.state, DeliveryState::Retrying);
        let settled = settle(retry(), &due(12, Some(0)), hour, &backoff);
        assert_eq!(settled.state, DeliveryState::Failed);
        assert_eq!(settled.error.as_deref(), Some("HTTP 503 (gave up after 13 attempts)"));
    }

    #[test]
    fn a_permanent_failure_is_failed_at_once_and_a_success_sent() {
        let backoff = Backoff::default();
        let settled = settle(Attempt::Failed("slack: HTTP 404".into()), &due(0, None), 5, &backoff);
        assert_eq!((settled.state, settled.next_at), (DeliveryState::Failed, None));
        assert_eq!(settle(Attempt::Sent, &due(2, Some(0)), 5, &backoff).state, DeliveryState::Sent);
    }

    #[test]
    fn webhook_urls_their_tokens_and_the_smtp_password_are_redacted() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXX";
        let channels = vec![ChannelConfig {
            name: "ops".into(),
            kind: ChannelKind::Slack,
            webhook_url: Some(Secret::new(url)),
            to: Vec::new(),
        }];
        let smtp =
            SmtpConfig { username: "bot".into(), password: Some(Secret::new("hunter2-pass")), ..SmtpConfig::default() };
        let secrets = secrets_of(&channels, &smtp);
        let plain = base64::engine::general_purpose::STANDARD.encode("\0bot\0hunter2-pass");
        let text = format!("POST {url} failed; path /services/T000/B000/XXXX; 535 hunter2-pass {plain}");
        let redacted = redact(text, &secrets);
        assert_eq!(redacted, "POST [redacted] failed; path [redacted]; 535 [redacted] [redacted]");
    }
}
