//! Alerts through the running service: events ingested over HTTP, rules evaluated as they
//! arrive, one message per burst delivered over real HTTP to a local webhook receiver (and
//! over SMTP to a local sink), history and snooze through the API, and the monitor's canary
//! firing when the store (CloudWatch, here moto) breaks.

use std::time::{Duration, Instant};

use logboard::config::Config;
use serde_json::{Value, json};

use crate::common::moto::{CloudWatchApp, Moto};
use crate::common::receivers::{Receiver, SMTP_PASSWORD, SmtpSink, WEBHOOK_TOKEN, answer, parse_mail};
use crate::common::{self, ADMIN_PASSWORD, SHIPPED_CONFIG, TestApp};

/// The longest a test waits for a message: a deadline for a hung test, not a speed requirement.
const DEADLINE: Duration = Duration::from_secs(30);

/// The shipped config plus `extra` TOML (channels, alerts), on a fresh data directory.
fn config_with(dir: &std::path::Path, extra: &str, env: &[(&str, &str)]) -> Config {
    let mut pairs: Vec<(String, String)> = vec![
        ("LOGBOARD__STORAGE__DATA_DIR".into(), dir.display().to_string()),
        ("LOGBOARD__SERVER__LISTEN".into(), "127.0.0.1:0".into()),
        ("LOGBOARD__MONITOR__CANARY_INTERVAL_SECS".into(), "0".into()),
    ];
    pairs.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut config = Config::from_sources(&format!("{SHIPPED_CONFIG}\n{extra}"), &pairs).expect("config is valid");
    config.auth.admin_password = Some(logboard::config::Secret::new(ADMIN_PASSWORD));
    config
}

fn rules(webhook: &str) -> String {
    format!(
        r#"
[server]
public_url = "https://logs.example.test"

[[channels]]
name = "ops-slack"
kind = "slack"
webhook_url = "{webhook}"

[[alerts]]
name = "checkout errors"
project = "demo"
envs = ["production"]
when = "threshold"
query = "level:>=error checkout"
threshold = 5
window_secs = 300
channels = ["ops-slack"]
group_wait_secs = 1
repeat_secs = 3600

[[alerts]]
name = "new issues"
project = "demo"
envs = ["staging"]
when = "new_issue"
channels = ["ops-slack"]
group_wait_secs = 1
"#
    )
}

pub(crate) async fn app_with_rules(receiver: &Receiver) -> TestApp {
    let dir = tempfile::tempdir().expect("dir");
    // The [server] section of the extra TOML would clash with the shipped one: the URL comes
    // from the environment instead.
    let extra = rules(&receiver.url).replace("[server]\npublic_url = \"https://logs.example.test\"\n", "");
    let config = config_with(dir.path(), &extra, &[("LOGBOARD__SERVER__PUBLIC_URL", "https://logs.example.test")]);
    common::spawn_app_from(config, dir).await
}

pub(crate) fn errors(env: &str, n: usize, word: &str) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"level": "error", "message": format!("{word} failed for order {i}"), "type": "PaymentError"}))
        .collect();
    json!({"env": env, "events": events})
}

/// Waits until the receiver has accepted `n` messages (or the deadline passes), then [`quiet`],
/// so that a message too many would be seen too.
pub(crate) async fn wait_for_messages(receiver: &Receiver, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + DEADLINE;
    while receiver.accepted().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    quiet(receiver).await
}

/// The messages once a burst would have been sent: the rules wait 1 s (group_wait), tick every
/// second, and a delivery is one local request.
async fn quiet(receiver: &Receiver) -> Vec<Value> {
    tokio::time::sleep(Duration::from_secs(4)).await;
    receiver.accepted().into_iter().map(|r| r.body).collect()
}

async fn history(app: &TestApp, rule: &str) -> Vec<Value> {
    let path = format!("/api/v1/alerts/{}/history", common_encode(rule));
    let (status, body) = app.read(&path).await;
    assert_eq!(status, 200, "{body}");
    body["history"].as_array().cloned().unwrap_or_default()
}

fn common_encode(text: &str) -> String {
    logboard::links::urlencode(text)
}

async fn rule_state(app: &TestApp, rule: &str) -> Value {
    let (status, body) = app.read("/api/v1/alerts").await;
    assert_eq!(status, 200, "{body}");
    body["alerts"].as_array().into_iter().flatten().find(|a| a["name"] == rule).cloned().expect("the rule is listed")
}

#[tokio::test]
async fn a_burst_of_errors_through_ingest_is_one_slack_message_and_the_history_says_so() {
    let receiver = Receiver::start(Vec::new()).await;
    let app = app_with_rules(&receiver).await;
    // Below the threshold: nothing.
    assert_eq!(app.ingest(&errors("production", 4, "checkout")).await.0, 202);
    // Other env, other words: not counted.
    assert_eq!(app.ingest(&errors("staging", 10, "checkout")).await.0, 202);
    assert_eq!(app.ingest(&errors("production", 10, "login")).await.0, 202);
    assert!(quiet(&receiver).await.iter().all(|m| !m.to_string().contains("checkout errors")), "below threshold");

    for _ in 0..5 {
        assert_eq!(app.ingest(&errors("production", 10, "checkout")).await.0, 202);
    }
    let messages: Vec<Value> = wait_for_messages(&receiver, 1)
        .await
        .into_iter()
        .filter(|m| m.to_string().contains("checkout errors"))
        .collect();
    assert_eq!(messages.len(), 1, "one message for the burst: {messages:#?}");
    let text = messages[0]["text"].as_str().expect("a plain-text fallback");
    assert!(text.contains("checkout errors") && text.contains("demo/production"), "{text}");
    assert!(messages[0]["blocks"].as_array().is_some_and(|b| !b.is_empty()), "Block Kit blocks");
    assert!(messages[0].to_string().contains("https://logs.example.test/logs?project=demo&env=production"));

    let state = rule_state(&app, "checkout errors").await;
    assert_eq!(state["state"], "firing", "{state}");
    assert!(state["last_value"].as_u64().is_some_and(|v| v >= 54), "{state}");
    let lines = history(&app, "checkout errors").await;
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert!(kinds.contains(&"fired"), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l["kind"] == "message" && l["channel"] == "ops-slack" && l["outcome"] == "sent"),
        "{lines:#?}"
    );
    // More of the same within repeat_secs: held back, and the history says why.
    assert_eq!(app.ingest(&errors("production", 10, "checkout")).await.0, 202);
    let again = quiet(&receiver).await;
    assert_eq!(again.iter().filter(|m| m.to_string().contains("checkout errors")).count(), 1);
    let lines = history(&app, "checkout errors").await;
    assert!(lines.iter().any(|l| l["detail"] == "within repeat_secs"), "{lines:#?}");
}

#[tokio::test]
async fn new_issues_of_one_deploy_are_one_message_listing_them() {
    let receiver = Receiver::start(Vec::new()).await;
    let app = app_with_rules(&receiver).await;
    let kinds = ["TypeError", "RangeError", "SyntaxError", "ReferenceError"];
    for kind in kinds {
        let body = json!({"env": "staging", "events": [
            {"level": "error", "type": kind, "message": format!("{kind}: it broke after the deploy")},
            {"level": "error", "type": kind, "message": format!("{kind}: it broke after the deploy")},
        ]});
        assert_eq!(app.ingest(&body).await.0, 202);
    }
    let messages = wait_for_messages(&receiver, 1).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let text = messages[0].to_string();
    for kind in kinds {
        assert!(text.contains(&format!("{kind}: it broke after the deploy")), "{kind} listed: {text}");
    }
    // Seen again: not new.
    let body = json!({"env": "staging", "events": [{"level": "error", "type": "TypeError", "message": "TypeError: it broke after the deploy"}]});
    assert_eq!(app.ingest(&body).await.0, 202);
    assert_eq!(quiet(&receiver).await.len(), 1);
}

#[tokio::test]
async fn a_snoozed_rule_sends_nothing_says_why_and_unsnoozing_brings_it_back() {
    let receiver = Receiver::start(Vec::new()).await;
    let app = app_with_rules(&receiver).await;
    let client = app.logged_in_client().await;
    let snooze = app.url("/api/v1/alerts/checkout%20errors/snooze");
    for (bad, why) in [
        (json!({"minutes": 0}), "between 1 and"),
        (json!({"until": "2001-01-01T00:00:00Z"}), "in the past"),
        (json!({"until": "tomorrow"}), "RFC 3339"),
        (json!({"minutes": 5, "until": "2999-01-01T00:00:00Z"}), "either"),
    ] {
        let answer = client.post(&snooze).json(&bad).send().await.expect("snooze");
        assert_eq!(answer.status(), 400, "{bad}");
        assert!(answer.text().await.expect("body").contains(why), "{bad}: {why}");
    }
    let unknown = client.post(app.url("/api/v1/alerts/nope/snooze")).json(&json!({"minutes": 5})).send().await;
    assert_eq!(unknown.expect("snooze").status(), 404);

    let answer = client.post(&snooze).json(&json!({"minutes": 30})).send().await.expect("snooze");
    assert_eq!(answer.status(), 200);
    let state = rule_state(&app, "checkout errors").await;
    assert_eq!(state["state"], "snoozed", "{state}");
    assert!(state["snoozed_until"].is_string(), "{state}");

    assert_eq!(app.ingest(&errors("production", 20, "checkout")).await.0, 202);
    assert!(quiet(&receiver).await.is_empty(), "nothing is sent while snoozed");
    // The burst's first message, then the burst held back: both suppressed by the snooze.
    let deadline = Instant::now() + DEADLINE;
    let suppressed = loop {
        let lines = history(&app, "checkout errors").await;
        let suppressed: Vec<String> = lines
            .iter()
            .filter(|l| l["kind"] == "suppressed")
            .map(|l| l["detail"].as_str().unwrap_or_default().to_string())
            .collect();
        if suppressed.len() >= 2 || Instant::now() > deadline {
            break suppressed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(suppressed.len(), 2, "{suppressed:#?}");
    assert!(suppressed.iter().all(|d| d.starts_with("snoozed until ")), "the reason is the snooze: {suppressed:#?}");

    let answer = client.delete(&snooze).send().await.expect("unsnooze");
    assert_eq!(answer.status(), 200);
    assert_ne!(rule_state(&app, "checkout errors").await["state"], "snoozed");
    // A page of another site cannot snooze with the user's session.
    let cross = client.post(&snooze).header("Sec-Fetch-Site", "cross-site").json(&json!({"minutes": 5})).send().await;
    assert_eq!(cross.expect("snooze").status(), 403);
}

#[tokio::test]
async fn webhook_urls_and_the_smtp_password_never_show_on_pages_or_in_the_api() {
    let receiver = Receiver::start(Vec::new()).await;
    let sink = SmtpSink::start(Vec::new()).await;
    let dir = tempfile::tempdir().expect("dir");
    let extra = format!(
        "{}\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"logboard\"\nfrom = \"logboard <logboard@example.test>\"\n\n[[channels]]\nname = \"oncall-mail\"\nkind = \"email\"\nto = [\"oncall@example.test\"]\n",
        rules(&receiver.url).replace("[server]\npublic_url = \"https://logs.example.test\"\n", "").replace(
            "channels = [\"ops-slack\"]\ngroup_wait_secs = 1\nrepeat_secs",
            "channels = [\"ops-slack\", \"oncall-mail\"]\ngroup_wait_secs = 1\nrepeat_secs"
        ),
        sink.port
    );
    let config = config_with(dir.path(), &extra, &[("LOGBOARD__SMTP__PASSWORD", SMTP_PASSWORD)]);
    let app = common::spawn_app_from(config, dir).await;
    assert_eq!(app.ingest(&errors("production", 10, "checkout")).await.0, 202);
    wait_for_messages(&receiver, 1).await;
    let deadline = Instant::now() + DEADLINE;
    while sink.mails().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "the e-mail channel got the burst too");
    let mail = parse_mail(&mails[0].data);
    assert!(mail.headers.contains("[logboard] checkout errors: "), "{}", mail.headers);
    assert!(mail.html.contains("checkout errors") && mail.text.contains("demo/production"));

    let client = app.logged_in_client().await;
    let mut seen = Vec::new();
    for path in ["/alerts", "/api/v1/alerts", "/api/v1/alerts/checkout%20errors/history", "/metrics", "/"] {
        let body = client.get(app.url(path)).send().await.expect("get").text().await.expect("body");
        seen.push((path, body));
    }
    for (path, body) in &seen {
        assert!(!body.contains(WEBHOOK_TOKEN) && !body.contains("webhook-token"), "the webhook shows on {path}");
        assert!(!body.contains(SMTP_PASSWORD), "the SMTP password shows on {path}");
    }
    assert!(seen[0].1.contains("checkout errors"), "the alerts page lists the rule");
}

#[tokio::test]
async fn the_canary_fires_a_monitor_alert_when_the_store_breaks() {
    let receiver = Receiver::start(Vec::new()).await;
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let extra = format!(
        "[[channels]]\nname = \"ops-slack\"\nkind = \"slack\"\nwebhook_url = \"{}\"\n\n[monitor]\nchannels = [\"ops-slack\"]\ncanary_interval_secs = 1\n",
        receiver.url
    );
    let config = config_with(
        dir.path(),
        &extra,
        &[
            ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
            ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", &moto.url),
            ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
            ("LOGBOARD__MONITOR__CANARY_INTERVAL_SECS", "1"),
        ],
    );
    let app = CloudWatchApp::start(config, dir, &moto.url).await;
    // Healthy: canaries come back from CloudWatch, and nothing is sent.
    let deadline = Instant::now() + DEADLINE;
    while app.app.state.metrics.canary_seconds.get() == 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = app.app.state.metrics.canary_seconds.get();
    assert!(took > 0.0, "a canary was read back from CloudWatch");
    assert!(receiver.accepted().is_empty());

    drop(moto);
    let messages = wait_for_messages(&receiver, 1).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let text = messages[0]["text"].as_str().expect("text");
    assert!(text.contains("canary"), "{text}");
    assert!(app.app.state.metrics.canary_failures.get() >= 2);
    let metrics = reqwest::get(app.app.url("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("logboard_canary_failures_total"), "{metrics}");
    assert!(metrics.contains("logboard_notifications_total{channel=\"ops-slack\",outcome=\"sent\"} 1"), "{metrics}");
}

#[tokio::test]
async fn on_cloudwatch_a_lambda_functions_new_error_is_a_new_issue_message_once() {
    let receiver = Receiver::start(Vec::new()).await;
    let moto = Moto::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let extra = rules(&receiver.url).replace("[server]\npublic_url = \"https://logs.example.test\"\n", "");
    let mut config = config_with(
        dir.path(),
        &extra,
        &[
            ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
            ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", &moto.url),
            ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
        ],
    );
    let demo = config.projects.iter_mut().find(|p| p.name == "demo").expect("demo project");
    demo.extra_group_prefixes = vec!["/aws/lambda/demo-api-".into()];
    let options =
        logboard::store::cloudwatch::CloudWatchOptions { issue_poll: Duration::from_millis(200), ..Default::default() };
    let _app = CloudWatchApp::start_with(config, dir, &moto.url, options).await;
    // A function of staging (its name says so), where the rule `new issues` watches.
    let (group, stream) = ("/aws/lambda/demo-api-staging-orders", "2026/11/24/[$LATEST]a");
    let client = moto.client();
    client.create_log_group().log_group_name(group).send().await.expect("group");
    client.create_log_stream().log_group_name(group).log_stream_name(stream).send().await.expect("stream");
    let now = logboard::event::unix_ms(time::OffsetDateTime::now_utc());
    let line = "[ERROR]\t2026-11-24T15:02:03.456Z\t3f1c9a2e-5b7d-4e21-9c1a-0d2f6b8e4a17\tinventory lookup failed\n\
                Traceback (most recent call last):\n  File \"/var/task/app.py\", line 9, in handler\nKeyError: 'sku'\n";
    let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(now).message(line).build();
    let put = client.put_log_events().log_group_name(group).log_stream_name(stream).log_events(event.expect("event"));
    put.send().await.expect("put");

    let messages = wait_for_messages(&receiver, 1).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(messages[0].to_string().contains("inventory lookup failed"), "{}", messages[0]);
    // Polls re-read the line (the overlap): it is not new again.
    assert_eq!(quiet(&receiver).await.len(), 1);
}

/// An app whose rule `checkout errors` sends to `rule_channel` and whose monitor tells
/// `monitor_channels`, each channel a webhook of its own receiver.
async fn app_with_monitor(channels: &[(&str, &Receiver)], rule_channel: &str, monitor_channels: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().expect("dir");
    let mut extra = String::new();
    for (name, receiver) in channels {
        extra.push_str(&format!(
            "[[channels]]\nname = \"{name}\"\nkind = \"slack\"\nwebhook_url = \"{}\"\n\n",
            receiver.url
        ));
    }
    extra.push_str(&format!(
        "[[alerts]]\nname = \"checkout errors\"\nproject = \"demo\"\nquery = \"checkout\"\nwhen = \"threshold\"\nthreshold = 1\nchannels = [\"{rule_channel}\"]\ngroup_wait_secs = 0\n\n[monitor]\nchannels = {monitor_channels:?}\n"
    ));
    common::spawn_app_from(config_with(dir.path(), &extra, &[]), dir).await
}

/// The first message a receiver accepted that mentions `word` (blocks included, as JSON text),
/// waiting for it.
async fn message_about(receiver: &Receiver, word: &str) -> Option<String> {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        let texts = receiver.accepted().into_iter().map(|r| r.body.to_string());
        if let Some(text) = texts.into_iter().find(|t| t.contains(word)) {
            return Some(text);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

#[tokio::test]
async fn the_monitor_tells_a_team_its_events_are_refused_with_the_counts_by_reason() {
    let ops = Receiver::start(Vec::new()).await;
    let app = app_with_monitor(&[("ops", &ops)], "ops", &["ops"]).await;
    let (status, answer) = app
        .ingest(&json!({"env": "production", "events": [{"level": "error"}, {"message": "fine"}, {"level": "info"}]}))
        .await;
    assert_eq!((status, answer["accepted"].as_u64()), (202, Some(1)));
    let too_big = json!({"env": "production", "events": [{"message": "x".repeat(2 << 20)}]});
    assert_eq!(app.ingest(&too_big).await.0, 413);
    let text = message_about(&ops, "events refused").await.expect("a monitor message about refused events");
    assert!(text.contains("demo: rejected 2, too_large 1"), "{text}");
}

#[tokio::test]
async fn a_channel_that_keeps_failing_is_reported_to_the_other_channels() {
    // The broken channel answers 500 to everything.
    let broken = Receiver::start(vec![answer(500); 100]).await;
    let ops = Receiver::start(Vec::new()).await;
    let app = app_with_monitor(&[("broken", &broken), ("ops", &ops)], "broken", &["broken", "ops"]).await;
    assert_eq!(app.ingest(&errors("production", 1, "checkout")).await.0, 202);
    let text = message_about(&ops, "channel failing").await.expect("the other channel is told");
    assert!(text.contains("broken: ") && text.contains("failed attempts") && text.contains("500"), "{text}");
    assert!(broken.accepted().is_empty());
    assert!(
        broken.received().iter().all(|r| !r.body.to_string().contains("channel failing")),
        "the failing channel is not told about itself"
    );
}

#[tokio::test]
async fn dead_letters_fire_a_monitor_alert_with_their_count() {
    let ops = Receiver::start(Vec::new()).await;
    let fake = crate::common::fake_cloudwatch::FakeCloudWatch::start().await;
    fake.poison("poisoned event");
    let dir = tempfile::tempdir().expect("dir");
    let extra = format!(
        "[[channels]]\nname = \"ops\"\nkind = \"slack\"\nwebhook_url = \"{}\"\n\n[monitor]\nchannels = [\"ops\"]\n",
        ops.url
    );
    let env = [
        ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
        ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", fake.url.as_str()),
        ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
    ];
    let app = CloudWatchApp::start(config_with(dir.path(), &extra, &env), dir, &fake.url).await;
    let events = json!({"env": "production", "events": [{"message": "fine"}, {"message": "a poisoned event"}]});
    assert_eq!(app.ingest(&events).await.0, 202);
    let text = message_about(&ops, "dead letters").await.expect("a monitor message about dead letters");
    assert!(text.contains("1 event(s) dead-lettered"), "{text}");
}

/// A task with the rules of [`rules`] on moto's CloudWatch, its state in `table`, on a fresh data
/// directory (as a deploy starts it).
async fn shared_task(receiver: &Receiver, moto: &Moto, table: &logboard::dynamo::Table) -> CloudWatchApp {
    shared_task_with(&rules(&receiver.url), moto, table).await
}

/// [`shared_task`] with the rules of `extra` (as [`rules`] writes them).
async fn shared_task_with(extra: &str, moto: &Moto, table: &logboard::dynamo::Table) -> CloudWatchApp {
    let extra = extra.replace("[server]\npublic_url = \"https://logs.example.test\"\n", "");
    let dir = tempfile::tempdir().expect("dir");
    let config = config_with(
        dir.path(),
        &extra,
        &[
            ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
            ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", &moto.url),
            ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
            ("LOGBOARD__STATE__BACKEND", "dynamodb"),
        ],
    );
    let options = logboard::store::cloudwatch::CloudWatchOptions::default();
    CloudWatchApp::start_on(config, dir, &moto.url, options, Some(table.clone())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_shared_state_table_two_tasks_announce_new_issues_once_and_a_deploy_announces_none_again() {
    let receiver = Receiver::start(Vec::new()).await;
    let moto = Moto::start().await;
    let table = common::moto::table_for(&moto.url, "logboard-state");
    table.create().await.expect("create the table");
    let start_task = || shared_task(&receiver, &moto, &table);
    let kinds = ["TypeError", "RangeError", "SyntaxError", "ReferenceError", "URIError"];
    let new_errors = || {
        let events: Vec<Value> = kinds
            .iter()
            .map(|kind| json!({"level": "error", "type": kind, "message": format!("{kind}: broke in the new release")}))
            .collect();
        json!({"env": "staging", "events": events})
    };

    let (a, b) = (start_task().await, start_task().await);
    assert_eq!(a.ingest(&new_errors()).await.0, 202);
    let messages = wait_for_messages(&receiver, 1).await;
    assert_eq!(messages.len(), 1, "one message for the five new issues: {messages:#?}");
    for kind in kinds {
        assert!(messages[0].to_string().contains(&format!("{kind}: broke in the new release")), "{kind} listed");
    }
    // The same errors through the other task: known, not new.
    assert_eq!(b.ingest(&new_errors()).await.0, 202);
    assert_eq!(quiet(&receiver).await.len(), 1, "the other task announces nothing again");

    // A deploy: new tasks on empty data directories see the same errors again.
    drop((a, b));
    let (c, d) = (start_task().await, start_task().await);
    assert_eq!(c.ingest(&new_errors()).await.0, 202);
    assert_eq!(d.ingest(&new_errors()).await.0, 202);
    assert_eq!(quiet(&receiver).await.len(), 1, "nothing is announced again after a deploy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_shared_state_table_a_burst_both_tasks_see_is_one_message_and_the_history_says_who_sent_it() {
    let receiver = Receiver::start(Vec::new()).await;
    let moto = Moto::start().await;
    let table = common::moto::table_for(&moto.url, "logboard-state");
    table.create().await.expect("create the table");
    let start_task = || shared_task(&receiver, &moto, &table);
    let (a, b) = (start_task().await, start_task().await);
    // Each task alone sees more than the threshold (5) of `checkout errors`.
    assert_eq!(a.ingest(&errors("production", 8, "checkout")).await.0, 202);
    assert_eq!(b.ingest(&errors("production", 8, "checkout")).await.0, 202);
    let messages = wait_for_messages(&receiver, 1).await;
    assert_eq!(messages.len(), 1, "one message for the burst: {messages:#?}");
    assert!(messages[0].to_string().contains("checkout errors"), "{}", messages[0]);
    // The shared history has the firing once and the other task's message held back.
    let lines = history(&a, "checkout errors").await;
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "fired").count(), 1, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l["detail"].as_str().is_some_and(|d| d.starts_with("sent by another task"))),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_shared_state_table_a_threshold_counts_the_matches_of_every_task() {
    let receiver = Receiver::start(Vec::new()).await;
    let moto = Moto::start().await;
    let table = common::moto::table_for(&moto.url, "logboard-state");
    table.create().await.expect("create the table");
    // 20 matches on each task: neither reaches 30 alone, together they do.
    let extra = rules(&receiver.url).replace("threshold = 5", "threshold = 30");
    let (a, b) = (shared_task_with(&extra, &moto, &table).await, shared_task_with(&extra, &moto, &table).await);
    assert_eq!(a.ingest(&errors("production", 20, "checkout")).await.0, 202);
    assert_eq!(b.ingest(&errors("production", 20, "checkout")).await.0, 202);
    let messages = wait_for_messages(&receiver, 1).await;
    assert_eq!(messages.len(), 1, "one message for the burst of both tasks: {messages:#?}");
    let text = messages[0].to_string();
    assert!(text.contains("checkout errors") && text.contains("40 events in the last 5 min (threshold 30)"), "{text}");
}
