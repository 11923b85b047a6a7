//! The service's own numbers, served on `/metrics` as Prometheus (OpenMetrics) text through
//! `prometheus-client`. Every name starts with `logboard_`.
//!
//! One [`Metrics`] per running service, shared behind an `Arc` by ingest, the spool and the
//! writer: each test app has its own registry, so parallel tests never see each other's counts.
//! Gauges that describe the spool are refreshed by the store when `/metrics` is scraped.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `reason` label of a counter: a short, bounded word.
type Reason = [(&'static str, &'static str); 1];
/// The `channel` (a configured channel's name: bounded by the config) and `outcome` labels.
type ChannelOutcome = [(&'static str, String); 2];
/// The `project`, `reason` and `category` labels of what an SDK reported it discarded.
type Discard = [(&'static str, String); 3];

/// The reasons and categories Sentry SDKs report; anything else is counted as `other`, so a
/// client cannot make up labels without bound.
const SDK_DISCARD_REASONS: &[&str] = &[
    "queue_overflow",
    "cache_overflow",
    "buffer_overflow",
    "ratelimit_backoff",
    "network_error",
    "sample_rate",
    "before_send",
    "event_processor",
    "send_error",
    "internal_sdk_error",
    "insufficient_data",
    "backpressure",
    "ignored",
];
const SDK_DISCARD_CATEGORIES: &[&str] = &[
    "default",
    "error",
    "transaction",
    "security",
    "attachment",
    "session",
    "profile",
    "profile_chunk",
    "replay",
    "span",
    "log_item",
    "log_byte",
    "feedback",
    "monitor",
    "internal",
    "user_report",
];

/// Every metric of the service.
pub struct Metrics {
    registry: Registry,
    /// Events found in ingest bodies (before validation).
    pub received: Counter,
    /// Events made durable and answered with 202.
    pub accepted: Counter,
    /// Events refused at ingest, by reason.
    rejected: Family<Reason, Counter>,
    /// Events CloudWatch stored.
    pub shipped: Counter,
    /// Failed PutLogEvents calls that will be retried (throttling included).
    pub retried: Counter,
    /// PutLogEvents calls answered with throttling.
    pub throttled: Counter,
    /// Events moved to the dead-letter store, by reason.
    dead_lettered: Family<Reason, Counter>,
    /// Bytes of event bodies in the spool, not yet shipped.
    pub spool_bytes: Gauge,
    /// Events in the spool, not yet shipped.
    pub spool_events: Gauge,
    /// Age of the oldest unshipped event in the spool, seconds (0 when empty).
    pub spool_oldest_age_seconds: Gauge<f64, AtomicU64>,
    /// PutLogEvents calls in flight now.
    pub puts_in_flight: Gauge,
    /// Events per successful PutLogEvents call.
    pub batch_events: Histogram,
    /// Bytes (as AWS counts them) per successful PutLogEvents call.
    pub batch_bytes: Histogram,
    /// Duration of PutLogEvents calls, successful or not.
    pub put_duration_seconds: Histogram,
    /// Events dead-lettered, every reason together (what the monitor watches).
    dead_lettered_all: Counter,
    /// The last canary's time from ingest to being read back from the store, seconds.
    pub canary_seconds: Gauge<f64, AtomicU64>,
    /// Canaries not read back within their deadline.
    pub canary_failures: Counter,
    /// Requests sent to the shared state table (each attempt).
    pub state_requests: Counter,
    /// Requests sent to CloudWatch Logs (each attempt): what the account's quota counts.
    pub cloudwatch_requests: Counter,
    /// Issue counts queued on this task, not yet in the shared state table.
    pub state_backlog: Gauge,
    /// Sends to the shared state table that failed in a row (0 once one succeeds).
    pub state_failing_sends: Gauge,
    /// Alert rules (the monitor's checks included) firing now.
    pub alerts_firing: Gauge,
    /// Attempts at delivering an alert message, by channel and outcome (sent, retrying, failed).
    notifications: Family<ChannelOutcome, Counter>,
    /// Items Sentry SDKs reported they dropped themselves (`client_report`), by project, reason
    /// and category.
    sdk_discarded: Family<Discard, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("logboard");
        let received = Counter::default();
        let accepted = Counter::default();
        let rejected = Family::<Reason, Counter>::default();
        let shipped = Counter::default();
        let retried = Counter::default();
        let throttled = Counter::default();
        let dead_lettered = Family::<Reason, Counter>::default();
        let spool_bytes = Gauge::default();
        let spool_events = Gauge::default();
        let spool_oldest_age_seconds = Gauge::<f64, AtomicU64>::default();
        let puts_in_flight = Gauge::default();
        // 1 .. 16,384 events; 64 B .. 2 MB; 1 ms .. 65 s.
        let batch_events = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        let batch_bytes = Histogram::new(exponential_buckets(64.0, 2.0, 16));
        let put_duration_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let dead_lettered_all = Counter::default();
        let canary_seconds = Gauge::<f64, AtomicU64>::default();
        let canary_failures = Counter::default();
        let alerts_firing = Gauge::default();
        let state_backlog = Gauge::default();
        let state_requests = Counter::default();
        registry.register("state_requests", "Requests sent to the state table, each attempt", state_requests.clone());
        let cloudwatch_requests = Counter::default();
        registry.register(
            "cloudwatch_requests",
            "Requests sent to CloudWatch Logs, each attempt",
            cloudwatch_requests.clone(),
        );
        let state_failing_sends = Gauge::default();
        registry.register(
            "state_backlog",
            "Issue counts queued here, not yet in the state table",
            state_backlog.clone(),
        );
        registry.register(
            "state_failing_sends",
            "Sends to the state table that failed in a row",
            state_failing_sends.clone(),
        );
        registry.register("canary_seconds", "The last canary's time from ingest to read back", canary_seconds.clone());
        registry.register("canary_failures", "Canaries not read back within their deadline", canary_failures.clone());
        registry.register(
            "alerts_firing",
            "Alert rules firing now, the monitor's checks included",
            alerts_firing.clone(),
        );
        let notifications = Family::<ChannelOutcome, Counter>::default();
        let sdk_discarded = Family::<Discard, Counter>::default();
        registry.register(
            "sdk_discarded",
            "Items Sentry SDKs reported they dropped (client reports), by project, reason and category",
            sdk_discarded.clone(),
        );
        registry.register("events_received", "Events found in ingest bodies", received.clone());
        registry.register("events_accepted", "Events made durable and answered with 202", accepted.clone());
        registry.register("events_rejected", "Events refused at ingest, by reason", rejected.clone());
        registry.register("events_shipped", "Events CloudWatch Logs stored", shipped.clone());
        registry.register("puts_retried", "Failed PutLogEvents calls that will be retried", retried.clone());
        registry.register("puts_throttled", "PutLogEvents calls answered with throttling", throttled.clone());
        registry.register(
            "events_dead_lettered",
            "Events moved to the dead-letter store, by reason",
            dead_lettered.clone(),
        );
        registry.register("spool_bytes", "Bytes of event bodies in the spool not yet shipped", spool_bytes.clone());
        registry.register("spool_events", "Events in the spool not yet shipped", spool_events.clone());
        registry.register(
            "spool_oldest_age_seconds",
            "Age of the oldest unshipped event in the spool",
            spool_oldest_age_seconds.clone(),
        );
        registry.register("puts_in_flight", "PutLogEvents calls in flight", puts_in_flight.clone());
        registry.register("batch_events", "Events per successful PutLogEvents call", batch_events.clone());
        registry.register(
            "batch_bytes",
            "Bytes (UTF-8 + 26 per event) per successful PutLogEvents call",
            batch_bytes.clone(),
        );
        registry.register("put_duration_seconds", "Duration of PutLogEvents calls", put_duration_seconds.clone());
        registry.register(
            "notifications",
            "Attempts at delivering an alert message, by channel and outcome",
            notifications.clone(),
        );
        Metrics {
            registry,
            received,
            accepted,
            rejected,
            shipped,
            retried,
            throttled,
            dead_lettered,
            spool_bytes,
            spool_events,
            spool_oldest_age_seconds,
            puts_in_flight,
            batch_events,
            batch_bytes,
            put_duration_seconds,
            dead_lettered_all,
            canary_seconds,
            canary_failures,
            state_backlog,
            state_failing_sends,
            state_requests,
            cloudwatch_requests,
            alerts_firing,
            notifications,
            sdk_discarded,
        }
    }

    /// Counts what an SDK reported it dropped; unknown reasons and categories as `other`.
    pub fn sdk_discarded(&self, project: &str, reason: &str, category: &str, quantity: u64) {
        self.sdk_discarded.get_or_create(&discard_labels(project, reason, category)).inc_by(quantity);
    }

    /// What SDKs reported dropped under these labels so far.
    pub fn sdk_discarded_count(&self, project: &str, reason: &str, category: &str) -> u64 {
        self.sdk_discarded.get(&discard_labels(project, reason, category)).map_or(0, |c| c.get())
    }

    /// Counts one event refused at ingest, under its kind's label.
    pub fn reject(&self, label: &'static str) {
        self.rejected.get_or_create(&[("reason", label)]).inc();
    }

    /// Counts events refused as a whole (e.g. the spool is over its mark), under a fixed label.
    pub fn reject_many(&self, label: &'static str, events: u64) {
        self.rejected.get_or_create(&[("reason", label)]).inc_by(events);
    }

    /// Counts events moved to the dead-letter store under `reason` (see `crate::deadletter`).
    pub fn dead_letter(&self, reason: &'static str, events: u64) {
        self.dead_lettered.get_or_create(&[("reason", reason)]).inc_by(events);
        self.dead_lettered_all.inc_by(events);
    }

    /// Events rejected at ingest under `label` so far (for tests and the dashboard).
    pub fn rejected_count(&self, label: &'static str) -> u64 {
        self.rejected.get(&[("reason", label)]).map_or(0, |c| c.get())
    }

    /// Events dead-lettered under `reason` so far.
    /// Events dead-lettered since start, every reason together.
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered_all.get()
    }

    pub fn dead_lettered_count(&self, reason: &'static str) -> u64 {
        self.dead_lettered.get(&[("reason", reason)]).map_or(0, |c| c.get())
    }

    /// Counts one attempt at delivering an alert message to `channel`; `outcome` is `sent`,
    /// `retrying` or `failed`.
    pub fn notification(&self, channel: &str, outcome: &'static str) {
        self.notifications.get_or_create(&notification_labels(channel, outcome)).inc();
    }

    /// Attempts counted under `channel` and `outcome` so far.
    pub fn notifications_count(&self, channel: &str, outcome: &'static str) -> u64 {
        self.notifications.get(&notification_labels(channel, outcome)).map_or(0, |c| c.get())
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

fn notification_labels(channel: &str, outcome: &'static str) -> ChannelOutcome {
    [("channel", channel.to_string()), ("outcome", outcome.to_string())]
}

fn discard_labels(project: &str, reason: &str, category: &str) -> Discard {
    let known = |word: &str, words: &[&str]| if words.contains(&word) { word.to_string() } else { "other".into() };
    [
        ("project", project.to_string()),
        ("reason", known(reason, SDK_DISCARD_REASONS)),
        ("category", known(category, SDK_DISCARD_CATEGORIES)),
    ]
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_metric_with_the_prefix_and_moves_with_the_counts() {
        let metrics = Metrics::new();
        metrics.received.inc_by(3);
        metrics.reject("message");
        metrics.dead_letter("too_old", 2);
        metrics.batch_events.observe(100.0);
        metrics.notification("ops-slack", "retrying");
        metrics.sdk_discarded("demo", "queue_overflow", "error", 3);
        metrics.sdk_discarded("demo", "made up", "error", 1);
        let text = metrics.render();
        assert!(
            text.contains(
                "logboard_sdk_discarded_total{project=\"demo\",reason=\"queue_overflow\",category=\"error\"} 3\n"
            ),
            "{text}"
        );
        assert_eq!(metrics.sdk_discarded_count("demo", "anything else", "error"), 1, "unknown words are `other`");
        assert!(text.contains("logboard_events_received_total 3\n"), "{text}");
        assert!(text.contains("logboard_events_rejected_total{reason=\"message\"} 1\n"), "{text}");
        assert!(text.contains("logboard_events_dead_lettered_total{reason=\"too_old\"} 2\n"), "{text}");
        assert!(text.contains("logboard_batch_events_count 1\n"), "{text}");
        assert!(
            text.contains("logboard_notifications_total{channel=\"ops-slack\",outcome=\"retrying\"} 1\n"),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("logboard_"), "{line}");
        }
    }
}

/// An AWS SDK interceptor that counts every request a client sends (each attempt): what AWS
/// bills and rate-limits. The SDKs share the interceptor trait, so one serves every client.
#[derive(Debug)]
pub struct CountRequests(pub Counter);

impl aws_sdk_dynamodb::config::Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _bag: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.inc();
        Ok(())
    }
}
