//! The monitor: logboard watching itself, its alerts sent straight to the `[monitor]` channels
//! (through the engine's grouping, never through ingest or the store, which may be what broke).
//!
//! - the canary: every `canary_interval_secs`, an event sent through the public ingest path
//!   (HTTP to our own listener) must be readable from the store (on CloudWatch: from CloudWatch)
//!   within a deadline; two failures in a row fire;
//! - the spool's oldest event older than 10 minutes; dead letters; refused events per project,
//!   by reason; channels whose deliveries keep failing (told to the other channels).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::engine::{Alerts, MonitorCheck, RuleState};
use super::outbox::Outbox;
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::project::{CANARY_ENV, CANARY_PROJECT, KEY_HEADER, Projects};
use crate::search::Query;
use crate::store::{EventQuery, LogStore};

/// How often the checks other than the canary run.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// The spool's oldest event may be this old before the monitor fires.
const SPOOL_AGE_LIMIT_SECS: f64 = 600.0;
/// Dead letters and refusals keep their check firing this long after the last one.
const RECENT: Duration = Duration::from_secs(600);
/// The canary fires after this many failures in a row.
const CANARY_FAILURES_TO_FIRE: u32 = 2;
/// Failed attempts in a row after which a channel counts as failing (the others are told).
const CHANNEL_FAILURES: u64 = 3;
/// Sends to the shared state table failing in a row (one a second) before the state store is
/// reported failing: a throttled second or two is not an outage.
const STATE_FAILURES: i64 = 10;
/// How long a canary may take to be read back: the CloudWatch writer ships within seconds.
const CANARY_DEADLINE: Duration = Duration::from_secs(30);

/// Ingest requests and events refused, per project and reason, since the monitor last looked.
#[derive(Debug, Default)]
pub struct Refusals(Mutex<HashMap<(String, &'static str), u64>>);

impl Refusals {
    pub fn count(&self, project: &str, reason: &'static str, n: u64) {
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry((project.to_string(), reason)).or_default() += n;
        }
    }

    fn take(&self) -> HashMap<(String, &'static str), u64> {
        self.0.lock().map(|mut counts| std::mem::take(&mut *counts)).unwrap_or_default()
    }
}

/// What the monitor watches and where its alerts go.
#[derive(Clone)]
pub struct Monitor {
    /// `[monitor] canary_interval_secs`; 0: no canary.
    pub canary_interval: Duration,
    /// The canary is read back from here; its metrics are refreshed before each check.
    pub store: Arc<dyn LogStore>,
    /// The canary's project and its key.
    pub projects: Arc<Projects>,
    /// The spool's age, dead letters, the canary's timings.
    pub metrics: Arc<Metrics>,
    /// Where each check's condition goes (grouped, sent to the `[monitor]` channels).
    pub alerts: Arc<Alerts>,
    /// How the channels' deliveries went.
    pub outbox: Arc<dyn Outbox>,
    /// Ingest refusals per project and reason.
    pub refusals: Arc<Refusals>,
}

/// Starts the monitor's tasks; `address` is our own listener, where the canary is sent.
pub fn spawn(monitor: Monitor, address: SocketAddr) {
    if !monitor.canary_interval.is_zero() {
        tokio::spawn(canary_loop(monitor.clone(), address, monitor.canary_interval));
    }
    tokio::spawn(check_loop(monitor));
}

async fn canary_loop(monitor: Monitor, address: SocketAddr, every: Duration) {
    let Some(key) = monitor.projects.canary_key().map(str::to_string) else { return };
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "the canary has no HTTP client; it does not run");
            return;
        }
    };
    let mut failures = 0u32;
    // The first canary after one interval: the listener is up by then.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let deadline = CANARY_DEADLINE.min(every.max(Duration::from_secs(5)));
        match canary(&monitor, &client, address, &key, deadline).await {
            Ok(took) => {
                failures = 0;
                monitor.metrics.canary_seconds.set(took.as_secs_f64());
                monitor.alerts.set_condition(MonitorCheck::Canary, None);
            }
            Err(why) => {
                failures += 1;
                monitor.metrics.canary_failures.inc();
                tracing::warn!(failures, why = %why, "the canary failed");
                if failures >= CANARY_FAILURES_TO_FIRE {
                    let detail = format!("{failures} canaries in a row failed; the last: {why}");
                    monitor.alerts.set_condition(MonitorCheck::Canary, Some(vec![detail]));
                }
            }
        }
    }
}

/// Sends one canary through ingest and reads it back; how long that took, or why it failed.
async fn canary(
    monitor: &Monitor,
    client: &reqwest::Client,
    address: SocketAddr,
    key: &str,
    deadline: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let nonce = crate::event::new_id(OffsetDateTime::now_utc()).to_string().to_ascii_lowercase();
    let message = format!("logboard canary {nonce}");
    let sent_at = OffsetDateTime::now_utc();
    let answer = client
        .post(format!("http://{address}/api/v1/events"))
        .header(KEY_HEADER, key)
        .json(&serde_json::json!({"env": CANARY_ENV, "events": [{"message": message, "level": "info"}]}))
        .send()
        .await
        .map_err(|e| format!("ingest request failed: {}", e.without_url()))?;
    if answer.status() != reqwest::StatusCode::ACCEPTED {
        return Err(format!("ingest answered {}", answer.status()));
    }
    let project = monitor.projects.get(CANARY_PROJECT).ok_or("the canary project is missing")?;
    let search = Query::parse(&nonce).map_err(|e| e.to_string())?;
    loop {
        let query = EventQuery {
            project,
            env: CANARY_ENV.into(),
            group: None,
            from: sent_at - Duration::from_secs(60),
            to: OffsetDateTime::now_utc() + Duration::from_secs(60),
            levels: Vec::new(),
            search: search.clone(),
            limit: 1,
            cursor: None,
        };
        match monitor.store.events(&query).await {
            Ok(page) if page.events.iter().any(|e| e.message == message) => return Ok(started.elapsed()),
            Ok(_) if started.elapsed() >= deadline => {
                return Err(format!("not readable from the store after {} s", deadline.as_secs()));
            }
            Err(e) if started.elapsed() >= deadline => return Err(format!("reading the store failed: {e:#}")),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn check_loop(monitor: Monitor) {
    let mut dead_letters_seen = monitor.metrics.dead_lettered_total();
    let mut last_dead_letter: Option<(Instant, u64)> = None;
    let mut refused: BTreeMap<(String, &'static str), (Instant, u64)> = BTreeMap::new();
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    loop {
        ticker.tick().await;
        monitor.store.refresh_metrics().await;

        let age = monitor.metrics.spool_oldest_age_seconds.get();
        let spool = (age > SPOOL_AGE_LIMIT_SECS).then(|| {
            vec![format!(
                "the oldest unshipped event is {:.0} minutes old ({} events waiting)",
                age / 60.0,
                monitor.metrics.spool_events.get()
            )]
        });
        monitor.alerts.set_condition(MonitorCheck::SpoolAge, spool);

        let dead = monitor.metrics.dead_lettered_total();
        if dead > dead_letters_seen {
            let before = last_dead_letter.map_or(0, |(_, n)| n);
            last_dead_letter = Some((Instant::now(), before + dead - dead_letters_seen));
            dead_letters_seen = dead;
        }
        last_dead_letter = last_dead_letter.filter(|(at, _)| at.elapsed() < RECENT);
        monitor.alerts.set_condition(
            MonitorCheck::DeadLetters,
            last_dead_letter.map(|(_, n)| vec![format!("{n} event(s) dead-lettered (see the home page)")]),
        );

        for (key, n) in monitor.refusals.take() {
            let entry = refused.entry(key).or_insert((Instant::now(), 0));
            *entry = (Instant::now(), entry.1 + n);
        }
        refused.retain(|_, (at, _)| at.elapsed() < RECENT);
        let mut by_project: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((project, reason), (_, n)) in &refused {
            by_project.entry(project).or_default().push(format!("{reason} {n}"));
        }
        let lines: Vec<String> =
            by_project.into_iter().map(|(project, counts)| format!("{project}: {}", counts.join(", "))).collect();
        monitor.alerts.set_condition(MonitorCheck::EventsRefused, (!lines.is_empty()).then_some(lines));

        let failing = monitor.metrics.state_failing_sends.get();
        let state = (failing >= STATE_FAILURES).then(|| {
            vec![format!(
                "{failing} sends to the state table failed in a row; {} batches of issue counts wait on this task",
                monitor.metrics.state_backlog.get()
            )]
        });
        monitor.alerts.set_condition(MonitorCheck::StateStore, state);

        let outbox = monitor.outbox.clone();
        if let Ok(Ok(health)) = tokio::task::spawn_blocking(move || outbox.channel_health()).await {
            let failing: Vec<_> = health.into_iter().filter(|h| h.consecutive_failures >= CHANNEL_FAILURES).collect();
            let lines: Vec<String> = failing
                .iter()
                .map(|h| {
                    let error = h.last_error.as_deref().unwrap_or("no error recorded");
                    format!("{}: {} failed attempts; the last: {error}", h.channel, h.consecutive_failures)
                })
                .collect();
            let skip = failing.into_iter().map(|h| h.channel).collect();
            monitor.alerts.set_condition_skipping(
                MonitorCheck::ChannelFailing,
                (!lines.is_empty()).then_some(lines),
                skip,
            );
        }

        // The snoozes are read from the alert state: off the async workers.
        let alerts = Arc::clone(&monitor.alerts);
        if let Ok(rules) = tokio::task::spawn_blocking(move || alerts.list(now_ms())).await {
            monitor.metrics.alerts_firing.set(rules.iter().filter(|r| r.state == RuleState::Firing).count() as i64);
        }
    }
}
