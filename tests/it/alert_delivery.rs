//! Alert delivery over real connections: the outbox in a real `alerts.db`, the deliverer's
//! tasks, Slack payloads POSTed over HTTP to a webhook receiver (axum, inside the test) and
//! e-mails sent over SMTP to a sink (a small SMTP server over tokio TCP, inside the test) that
//! records every command and message. Receivers answer from a script, so failures, 429s and
//! permanent errors happen exactly when a test says.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use logboard::alerts::deliver::{self, Backoff, Deliverer};
use logboard::alerts::notification::{IssueLine, Notification, What};
use logboard::alerts::outbox::{DeliveryRecord, DeliveryState, Outbox as _};
use logboard::alerts::sqlite::SqliteAlerts;
use logboard::config::alerts::{ChannelConfig, SmtpConfig};
use logboard::metrics::Metrics;

use crate::common::receivers::*;

/// The longest any test waits for a delivery to settle: a deadline for a hung test, not a speed
/// requirement.
const SETTLE_DEADLINE: Duration = Duration::from_secs(30);

/// Retries quickly, so the tests spend their time on what they check.
fn fast() -> Backoff {
    Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_millis(400),
        give_up_after: Duration::from_secs(60),
    }
}

fn threshold_notification(rule: &str) -> Notification {
    Notification {
        rule: rule.into(),
        project: Some("demo".into()),
        env: Some("production".into()),
        what: What::Threshold { count: 7, threshold: 5, window_secs: 300, reminder: false },
        newest_message: Some("payment failed: <card> declined".into()),
        link: "http://logs.test/logs?project=demo&env=production&q=level%3A%3E%3Derror".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

struct Setup {
    dir: tempfile::TempDir,
    outbox: Arc<SqliteAlerts>,
    metrics: Arc<Metrics>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = Arc::new(SqliteAlerts::open(dir.path()).expect("open the outbox"));
    Setup { dir, outbox, metrics: Arc::new(Metrics::new()) }
}

impl Setup {
    fn start(&self, channels: Vec<ChannelConfig>, smtp: SmtpConfig) -> Deliverer {
        deliver::spawn(self.outbox.clone(), channels, smtp, self.metrics.clone(), fast()).expect("spawn the deliverer")
    }

    fn enqueue(&self, rule: &str, channels: &[&str]) -> i64 {
        let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        self.outbox.enqueue(rule, &threshold_notification(rule), &channels).expect("enqueue")
    }

    /// Waits until every delivery of `rule` is `sent` or `failed`, and returns them.
    async fn settled(&self, rule: &str) -> Vec<DeliveryRecord> {
        let deadline = Instant::now() + SETTLE_DEADLINE;
        loop {
            let records = self.outbox.deliveries_of(rule, 100).expect("read deliveries");
            if !records.is_empty()
                && records.iter().all(|r| matches!(r.state, DeliveryState::Sent | DeliveryState::Failed))
            {
                return records;
            }
            assert!(Instant::now() < deadline, "deliveries of {rule} never settled: {records:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A receiver answering `script`, a deliverer with it as the channel `ops`, and one message
/// (`checkout errors`) enqueued and waited for until it settled.
async fn one_slack_message(script: Vec<Answer>) -> (Receiver, Setup, Deliverer, DeliveryRecord) {
    let receiver = Receiver::start(script).await;
    let s = setup();
    let deliverer = s.start(vec![slack_channel("ops", &receiver.url)], SmtpConfig::default());
    s.enqueue("checkout errors", &["ops"]);
    let mut records = s.settled("checkout errors").await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = records.remove(0);
    (receiver, s, deliverer, record)
}

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test]
async fn a_slack_message_arrives_with_blocks_the_text_fallback_and_the_link() {
    let receiver = Receiver::start(Vec::new()).await;
    let s = setup();
    let _deliverer = s.start(vec![slack_channel("ops", &receiver.url)], SmtpConfig::default());
    let notification = Notification {
        what: What::NewIssues {
            issues: vec![
                IssueLine {
                    title: "TypeError: cart is <null>".into(),
                    fingerprint: "f1".into(),
                    count: 3,
                    link: "http://logs.test/issues/f1".into(),
                },
                IssueLine {
                    title: "KeyError: 'sku'".into(),
                    fingerprint: "f2".into(),
                    count: 1,
                    link: "http://logs.test/issues/f2".into(),
                },
            ],
        },
        ..threshold_notification("new errors")
    };
    let id = s.outbox.enqueue("new errors", &notification, &["ops".to_string()]).expect("enqueue");
    let records = s.settled("new errors").await;
    let record = &records[0];
    assert_eq!(records.len(), 1);
    assert_eq!((record.notification_id, record.state, record.attempts), (id, DeliveryState::Sent, 1));
    assert!(record.sent_at.is_some());

    let got = receiver.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, format!("/services/{WEBHOOK_TOKEN}"));
    let body = &got[0].body;
    let text = body["text"].as_str().expect("a text fallback");
    assert!(text.contains("new errors") && text.contains("2 new issues in demo/production"), "{text}");
    let blocks = body["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header");
    let all = serde_json::to_string(blocks).expect("json");
    assert!(all.contains("<http://logs.test/issues/f1|TypeError: cart is &lt;null&gt; (3 events)>"), "{all}");
    assert!(all.contains("<http://logs.test/issues/f2|KeyError: 'sku' (1 event)>"), "{all}");
    assert!(all.contains("payment failed: &lt;card&gt; declined"), "{all}");
    let button = blocks.iter().find(|b| b["type"] == "actions").expect("an actions block");
    assert_eq!(button["elements"][0]["url"], notification.link.as_str());
    assert_eq!(s.metrics.notifications_count("ops", "sent"), 1);
}

#[tokio::test]
async fn an_email_arrives_to_every_recipient_with_the_subject_a_text_and_an_html_part() {
    let sink = SmtpSink::start(Vec::new()).await;
    let s = setup();
    let to = ["oncall@example.test", "Dev Team <dev@example.test>"];
    let _deliverer = s.start(vec![email_channel("mail", &to)], sink.smtp(SMTP_PASSWORD));
    s.enqueue("checkout errors", &["mail"]);
    let records = s.settled("checkout errors").await;
    let record = &records[0];
    assert_eq!((record.state, record.attempts), (DeliveryState::Sent, 1), "{record:?}");

    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "<logboard@example.test>");
    assert_eq!(mail.recipients, vec!["oncall@example.test", "dev@example.test"]);
    let parsed = parse_mail(&mail.data);
    assert!(
        parsed.headers.contains("Subject: [logboard] checkout errors: 7 events in demo/production\r\n"),
        "{}",
        parsed.headers
    );
    assert!(parsed.headers.contains("To: oncall@example.test, \"Dev Team\" <dev@example.test>"), "{}", parsed.headers);
    assert!(parsed.headers.contains("multipart/alternative"), "{}", parsed.headers);
    assert!(parsed.text.contains("demo/production: 7 events in the last 5 min (threshold 5)."), "{}", parsed.text);
    assert!(parsed.text.contains("payment failed: <card> declined"), "{}", parsed.text);
    assert!(parsed.text.contains("http://logs.test/logs?project=demo&env=production"), "{}", parsed.text);
    assert!(parsed.html.contains("payment failed: &#60;card&#62; declined"), "{}", parsed.html);
    assert!(parsed.html.contains("href=\"http://logs.test/logs?project=demo&#38;env=production"), "{}", parsed.html);
    assert_eq!(sink.state.lock().expect("lock").passwords, vec![SMTP_PASSWORD.to_string()]);
}

#[tokio::test]
async fn a_webhook_failing_twice_then_accepting_gets_exactly_one_message_after_three_attempts() {
    let (receiver, s, _deliverer, record) = one_slack_message(vec![answer(500), answer(500)]).await;
    assert_eq!((record.state, record.attempts), (DeliveryState::Sent, 3), "{record:?}");
    assert_eq!(record.last_error.as_deref(), Some("slack: HTTP 500: ok"));
    let statuses: Vec<u16> = receiver.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 500, 200]);
    assert_eq!(receiver.accepted().len(), 1);
    assert_eq!(s.metrics.notifications_count("ops", "retrying"), 2);
    assert_eq!(s.metrics.notifications_count("ops", "sent"), 1);
    let health = s.outbox.channel_health().expect("health");
    assert_eq!((health[0].channel.as_str(), health[0].consecutive_failures), ("ops", 0));
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_no_sooner_than_it_asks() {
    let (receiver, _s, _deliverer, record) =
        one_slack_message(vec![Answer { status: 429, retry_after: Some(2), echo_path: false }]).await;
    assert_eq!((record.state, record.attempts), (DeliveryState::Sent, 2), "{record:?}");
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    let waited = received[1].at - received[0].at;
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}, Retry-After said 2 s");
}

#[tokio::test]
async fn a_404_is_recorded_failed_with_its_status_and_not_retried() {
    let (receiver, s, deliverer, record) = one_slack_message(vec![answer(404)]).await;
    assert_eq!((record.state, record.attempts), (DeliveryState::Failed, 1), "{record:?}");
    assert_eq!(record.last_error.as_deref(), Some("slack: HTTP 404: ok"));
    assert_eq!(s.metrics.notifications_count("ops", "failed"), 1);
    // Several backoff periods later, still one request: a failed delivery is never tried again.
    tokio::time::sleep(fast().max * 3).await;
    deliverer.shutdown().await;
    assert_eq!(receiver.received().len(), 1);
    let health = s.outbox.channel_health().expect("health");
    assert_eq!(health[0].consecutive_failures, 1);
    assert_eq!(health[0].last_error.as_deref(), Some("slack: HTTP 404: ok"));
    assert_eq!(health[0].last_success, None);
}

#[tokio::test]
async fn an_smtp_4xx_is_retried_and_a_5xx_recorded_failed() {
    let retried = SmtpSink::start(vec!["451 4.3.0 try again later"]).await;
    let s = setup();
    let deliverer = s.start(vec![email_channel("mail", &["oncall@example.test"])], retried.smtp(SMTP_PASSWORD));
    s.enqueue("a", &["mail"]);
    let records = s.settled("a").await;
    let record = &records[0];
    assert_eq!((record.state, record.attempts), (DeliveryState::Sent, 2), "{record:?}");
    assert!(record.last_error.as_deref().is_some_and(|e| e.contains("451")), "{record:?}");
    assert_eq!(retried.mails().len(), 1);
    deliverer.shutdown().await;

    let refused = SmtpSink::start(vec!["550 5.7.1 relaying denied"]).await;
    let _deliverer = s.start(vec![email_channel("mail", &["oncall@example.test"])], refused.smtp(SMTP_PASSWORD));
    s.enqueue("b", &["mail"]);
    let records = s.settled("b").await;
    let record = &records[0];
    assert_eq!((record.state, record.attempts), (DeliveryState::Failed, 1), "{record:?}");
    assert!(
        record.last_error.as_deref().is_some_and(|e| e.contains("550") && e.contains("relaying denied")),
        "{record:?}"
    );
    assert!(refused.mails().is_empty());
}

#[tokio::test]
async fn a_restart_in_the_middle_resends_nothing_delivered_and_sends_the_pending_one_once() {
    // The first message goes through; the second meets a receiver that is down (503) until the
    // restart.
    let receiver = Receiver::start(Vec::new()).await;
    let s = setup();
    let channels = vec![slack_channel("ops", &receiver.url)];
    let deliverer = s.start(channels.clone(), SmtpConfig::default());
    let delivered = s.enqueue("first", &["ops"]);
    assert_eq!(s.settled("first").await[0].state, DeliveryState::Sent);
    receiver.then_answer(vec![answer(503); 1000]);
    let pending = s.enqueue("second", &["ops"]);
    let deadline = Instant::now() + SETTLE_DEADLINE;
    while s.outbox.deliveries_of("second", 1).expect("read")[0].attempts < 2 {
        assert!(Instant::now() < deadline, "the second message was never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A third message is enqueued while nothing runs.
    drop(deliverer);
    let never_tried = s.enqueue("third", &["ops"]);

    // The restart: a new outbox on the same file, a new deliverer; the receiver is back.
    let Setup { dir, outbox: old, .. } = s;
    drop(old);
    let outbox = Arc::new(SqliteAlerts::open(dir.path()).expect("reopen"));
    let before = receiver.received().len();
    receiver.then_answer(Vec::new());
    let s2 = Setup { dir, outbox, metrics: Arc::new(Metrics::new()) };
    let _deliverer = s2.start(channels, SmtpConfig::default());
    assert_eq!(s2.settled("second").await[0].state, DeliveryState::Sent);
    assert_eq!(s2.settled("third").await[0].state, DeliveryState::Sent);
    tokio::time::sleep(fast().max * 3).await;

    let after: Vec<Received> = receiver.received().into_iter().skip(before).collect();
    let rules: Vec<&str> = after.iter().map(|r| r.body["text"].as_str().expect("text")).collect();
    assert_eq!(after.len(), 2, "{rules:?}");
    assert!(rules.iter().any(|t| t.starts_with("second")) && rules.iter().any(|t| t.starts_with("third")), "{rules:?}");
    assert!(after.iter().all(|r| r.status == 200));
    let first = &s2.outbox.deliveries_of("first", 1).expect("read")[0];
    assert_eq!((first.notification_id, first.state, first.attempts), (delivered, DeliveryState::Sent, 1));
    let ids: Vec<i64> =
        ["second", "third"].iter().map(|r| s2.outbox.deliveries_of(r, 1).expect("read")[0].notification_id).collect();
    assert_eq!(ids, vec![pending, never_tried]);
}

/// The tracing output of this process, captured at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_appear_in_stored_errors_logs_or_debug_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber of this process");

    // A receiver that echoes the token back in its error; a webhook where nothing listens; an SMTP
    // server that echoes a wrong password back in its 535.
    let echoing = Receiver::start(vec![Answer { status: 400, retry_after: None, echo_path: true }]).await;
    let closed_port = crate::common::free_port();
    let unreachable = format!("http://127.0.0.1:{closed_port}/services/{WEBHOOK_TOKEN}-2");
    let sink = SmtpSink::start(Vec::new()).await;
    let wrong_password = format!("{SMTP_PASSWORD}-wrong");
    let smtp = sink.smtp(&wrong_password);
    let channels = vec![
        slack_channel("echoing", &echoing.url),
        slack_channel("unreachable", &unreachable),
        email_channel("mail", &["oncall@example.test"]),
    ];
    let s = setup();
    let backoff = Backoff { give_up_after: Duration::from_millis(500), ..fast() };
    let deliverer =
        deliver::spawn(s.outbox.clone(), channels.clone(), smtp.clone(), s.metrics.clone(), backoff).expect("spawn");
    s.enqueue("a", &["echoing", "unreachable", "mail"]);
    let records = s.settled("a").await;
    assert!(records.iter().all(|r| r.state == DeliveryState::Failed), "{records:?}");
    let health = s.outbox.channel_health().expect("health");

    // The errors are there and say what happened ...
    let error_of = |channel: &str| {
        records.iter().find(|r| r.channel == channel).and_then(|r| r.last_error.clone()).expect("an error")
    };
    assert!(error_of("echoing").starts_with("slack: HTTP 400: no_service for "), "{records:?}");
    assert!(error_of("echoing").contains("[redacted]"), "{records:?}");
    assert!(error_of("unreachable").starts_with("slack: error sending request"), "{records:?}");
    assert!(error_of("unreachable").contains("gave up after"), "{records:?}");
    assert!(error_of("mail").contains("535") && error_of("mail").contains("[redacted]"), "{records:?}");
    assert_eq!(sink.state.lock().expect("lock").passwords, vec![wrong_password.clone()], "the sink saw it");

    // ... and nowhere is a secret: stored errors, logs, the API's JSON, Debug strings.
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(logs.contains("alert message failed"), "the capture works: {logs}");
    let debug = format!("{channels:?} {smtp:?} {deliverer:?} {records:?} {health:?} {:?}", s.outbox);
    let json = serde_json::to_string(&(&records, &health)).expect("json");
    let plain_auth = base64::engine::general_purpose::STANDARD.encode(format!("\0logboard\0{wrong_password}"));
    for (place, text) in [("stored errors", format!("{records:?}")), ("logs", logs), ("debug", debug), ("json", json)] {
        for secret in ["T0SECRET", "webhook-token-4f9a", SMTP_PASSWORD, plain_auth.as_str()] {
            assert!(!text.contains(secret), "{secret} in the {place}: {text}");
        }
    }
}
