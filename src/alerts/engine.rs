//! The alert engine: rules compiled from the config, fed by ingest ([`Alerts::observe`]) and by
//! the monitor ([`Alerts::set_condition`]), advanced once a second ([`Alerts::tick`]) through
//! each rule's [`Burst`], with the messages it asks for handed to the [`Outbox`]. What it must
//! remember (burst states, snoozes, the history) goes through [`AlertState`]; snoozes are read
//! from it on every tick and every list, so a snooze set elsewhere counts at once.
//!
//! Each rule has one slot per env it watches (the monitor's checks have one, env `""`).
//! Ingest only counts and gathers under a lock; building and queueing messages happens on
//! the tick, off the ingest path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::burst::{Burst, Policy, Send};
use super::notification::{IssueLine, Notification, What};
use super::outbox::Outbox;
use super::state::{AlertState, Entry, HistoryKind, Saved};
use super::window::Window;
use crate::clock::MINUTE_MS;
use crate::config::Config;
use crate::config::alerts::{AlertConfig, When};
use crate::event::{Level, StoredEvent};
use crate::issues::{Changes, IssueKey};
use crate::links;
use crate::project::Projects;
use crate::search::{Query, Subject};
use crate::tally::{RuleCount, fold_rules, minute_of};

/// Advances the rules once a second until the engine is dropped.
pub fn spawn_ticker(alerts: std::sync::Weak<Alerts>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            ticker.tick().await;
            let Some(alerts) = alerts.upgrade() else { return };
            // SQLite writes on a transition: off the async workers.
            let now = crate::event::unix_ms(time::OffsetDateTime::now_utc());
            if tokio::task::spawn_blocking(move || alerts.tick(now)).await.is_err() {
                tracing::error!("the alert ticker panicked");
            }
        }
    });
}

/// Issues listed in one message, at most; the rest are counted.
const MAX_GATHERED: usize = 50;
/// Characters of an event's message carried into a notification.
const MESSAGE_CHARS: usize = 500;
/// The monitor's checks: a burst of each is reported at once, reminded hourly, and cleared.
const MONITOR_POLICY: Policy =
    Policy { group_wait_ms: 0, repeat_ms: 3_600_000, send_resolved: true, quiet_for_repeat: false };

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Threshold,
    NewIssue,
    Regression,
    /// One of the monitor's own checks.
    Monitor(MonitorCheck),
}

struct Rule {
    name: String,
    project: String,
    kind: Kind,
    query: Query,
    /// The levels every match has (from the query), to skip the evaluator for the rest.
    levels: Option<Vec<Level>>,
    threshold: u64,
    window_secs: u64,
    channels: Vec<String>,
    policy: Policy,
    query_text: String,
}

struct Slot {
    rule: usize,
    env: String,
    window: Window,
    newest: Option<String>,
    gathered: Vec<IssueLine>,
    /// Issues beyond [`MAX_GATHERED`] in this burst.
    more: u64,
    /// Triggers that joined the pending message (for the history's "grouped into").
    joined: u64,
    burst: Burst,
    /// The highest count of the current burst (threshold rules).
    peak: u64,
    last_value: u64,
    last_fired: Option<i64>,
    /// A suppression "within repeat_secs" is already in the history for this firing.
    noted: bool,
    /// A message of this burst went out: only then is its end announced.
    announced: bool,
    /// The monitor's condition and what it says.
    condition: Option<Vec<String>>,
    /// Channels this slot's messages skip: a failing channel is not told that it fails.
    skip: Vec<String>,
    /// What other tasks (and this task before a restart) counted for a threshold rule, per
    /// epoch minute, as last read from the shared state.
    others: Vec<(i64, u64)>,
}

/// Where a rule stands, as the API and the pages show it (its lowercase name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleState {
    Ok,
    /// Triggered; gathering until its `group_wait` ends.
    Pending,
    Firing,
    /// Snoozed by hand: whatever it would send is suppressed.
    Snoozed,
}

impl RuleState {
    pub const ALL: [RuleState; 4] = [RuleState::Ok, RuleState::Pending, RuleState::Firing, RuleState::Snoozed];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Ok => "ok",
            RuleState::Pending => "pending",
            RuleState::Firing => "firing",
            RuleState::Snoozed => "snoozed",
        }
    }

    /// The state named `text` (as [`RuleState::as_str`] gives it).
    pub fn parse(text: &str) -> Option<RuleState> {
        RuleState::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Where a burst stands (never snoozed: that is the rule's, not the burst's).
    fn of(burst: &Burst) -> RuleState {
        match burst {
            Burst::Ok => RuleState::Ok,
            Burst::Pending { .. } => RuleState::Pending,
            Burst::Firing { .. } => RuleState::Firing,
        }
    }
}

impl std::fmt::Display for RuleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for RuleState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The monitor's checks, each a rule of its own named `monitor: <problem>` (the name its
/// messages and history use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MonitorCheck {
    Canary,
    SpoolAge,
    DeadLetters,
    ChannelFailing,
    EventsRefused,
    StateStore,
}

impl MonitorCheck {
    pub const ALL: [MonitorCheck; 6] = [
        MonitorCheck::Canary,
        MonitorCheck::SpoolAge,
        MonitorCheck::DeadLetters,
        MonitorCheck::ChannelFailing,
        MonitorCheck::EventsRefused,
        MonitorCheck::StateStore,
    ];

    /// The rule's name.
    pub fn name(self) -> &'static str {
        match self {
            MonitorCheck::Canary => "monitor: canary",
            MonitorCheck::SpoolAge => "monitor: spool age",
            MonitorCheck::DeadLetters => "monitor: dead letters",
            MonitorCheck::ChannelFailing => "monitor: channel failing",
            MonitorCheck::EventsRefused => "monitor: events refused",
            MonitorCheck::StateStore => "monitor: state store failing",
        }
    }

    /// What the messages call the problem: the name without `monitor: `.
    pub fn problem(self) -> &'static str {
        self.name().trim_start_matches("monitor: ")
    }

    /// The check named `name` (as [`MonitorCheck::name`] gives it).
    pub fn parse(name: &str) -> Option<MonitorCheck> {
        MonitorCheck::ALL.into_iter().find(|check| check.name() == name)
    }
}

impl std::fmt::Display for MonitorCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule as the API and the page show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleView {
    pub name: String,
    pub project: String,
    pub when: &'static str,
    pub query: String,
    pub state: RuleState,
    #[serde(with = "crate::event::timestamp_format::option")]
    pub snoozed_until: Option<time::OffsetDateTime>,
    #[serde(with = "crate::event::timestamp_format::option")]
    pub last_fired: Option<time::OffsetDateTime>,
    /// The current count in the window (threshold), or issues gathered now.
    pub last_value: u64,
    pub threshold: u64,
    pub window_secs: u64,
    pub channels: Vec<String>,
    pub envs: Vec<EnvView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvView {
    pub env: String,
    pub state: RuleState,
    pub value: u64,
}

/// The rules' matches in one batch.
#[derive(Debug, Default)]
pub struct Hits {
    /// (slot, occurrence time) of each threshold match.
    times: Vec<(usize, i64)>,
    /// (slot, message) of each threshold slot's newest match.
    newest: Vec<(usize, String)>,
    /// Error events an issue rule matched, in case their issue is new (or regressed).
    issues: Vec<IssueHit>,
}

#[derive(Debug)]
struct IssueHit {
    slot: usize,
    fingerprint: String,
    title: String,
}

/// What a slot watches; fixed at start, so ingest reads it without the lock.
struct Target {
    rule: usize,
    env: String,
    /// The project's own group in this env: what a query's `group:` sees for ingested events.
    group: String,
}

pub struct Alerts {
    rules: Vec<Rule>,
    /// One per slot, in the same order.
    targets: Vec<Target>,
    slots: Mutex<Vec<Slot>>,
    /// The snoozes as last read from `state`: what counts should a read fail.
    snoozes: Mutex<HashMap<String, i64>>,
    /// Burst states, snoozes and the history, shared with other instances once the state is.
    state: Arc<dyn AlertState>,
    outbox: Arc<dyn Outbox>,
    public_url: String,
    /// The clock of the first tick: since then, windows are counted.
    first_tick: std::sync::OnceLock<i64>,
}

impl Alerts {
    /// Compiles the config's rules (validated before: a rule that still does not compile is
    /// skipped and logged) and restores their saved state from `state`.
    pub fn new(config: &Config, projects: &Projects, state: Arc<dyn AlertState>, outbox: Arc<dyn Outbox>) -> Alerts {
        let mut rules = Vec::new();
        let mut slots = Vec::new();
        let mut targets = Vec::new();
        for alert in &config.alerts {
            let Some(project) = projects.get(&alert.project) else {
                tracing::error!(alert = %alert.name, "alert names an unknown project; skipped");
                continue;
            };
            let Ok(rule) = Rule::from_config(alert) else {
                tracing::error!(alert = %alert.name, "alert query does not parse; skipped");
                continue;
            };
            let envs = if alert.envs.is_empty() { project.envs.clone() } else { alert.envs.clone() };
            for env in envs {
                targets.push(Target {
                    rule: rules.len(),
                    env: env.clone(),
                    group: project.own_group(&env).to_string(),
                });
                slots.push(Slot::new(rules.len(), &env, rule.window_secs));
            }
            rules.push(rule);
        }
        for check in MonitorCheck::ALL {
            targets.push(Target { rule: rules.len(), env: String::new(), group: String::new() });
            slots.push(Slot::new(rules.len(), "", 60));
            rules.push(Rule {
                name: check.name().to_string(),
                project: String::new(),
                kind: Kind::Monitor(check),
                query: Query::default(),
                levels: None,
                threshold: 1,
                window_secs: 0,
                channels: config.monitor.channels.clone(),
                policy: MONITOR_POLICY,
                query_text: String::new(),
            });
        }
        for slot in &mut slots {
            match state.load_rule(&rules[slot.rule].name, &slot.env) {
                Ok(Some(saved)) => {
                    slot.burst = saved.burst;
                    slot.peak = saved.peak;
                    slot.last_fired = saved.last_fired;
                    slot.announced = saved.announced;
                }
                Ok(None) => {}
                Err(error) => tracing::error!(error = format!("{error:#}"), "reading an alert's saved state"),
            }
        }
        let snoozes = state.snoozes().unwrap_or_else(|error| {
            tracing::error!(error = format!("{error:#}"), "reading the alert snoozes");
            HashMap::new()
        });
        Alerts {
            rules,
            targets,
            slots: Mutex::new(slots),
            snoozes: Mutex::new(snoozes),
            state,
            outbox,
            public_url: config.public_url(),
            first_tick: std::sync::OnceLock::new(),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A panic elsewhere while counting leaves counts, not broken invariants: carry on.
        let lock = || self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.slots.try_lock() {
            Ok(slots) => slots,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // A tick holds the slots while it claims and queues messages in the state store; an
            // async worker that waited here could leave no worker to drive that store's I/O (two
            // ingest requests on a two-core task were enough to hang it): on the multi-thread
            // runtime it waits off the worker.
            Err(std::sync::TryLockError::WouldBlock) => match tokio::runtime::Handle::try_current() {
                Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(lock)
                }
                _ => lock(),
            },
        }
    }

    /// Every snooze, read afresh (another instance may have snoozed a rule); the last ones read
    /// when the read fails.
    fn snoozes(&self) -> HashMap<String, i64> {
        let mut known = self.snoozes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.state.snoozes() {
            Ok(snoozes) => {
                known.clone_from(&snoozes);
                snoozes
            }
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "reading the alert snoozes");
                known.clone()
            }
        }
    }

    /// The rules' matches among events about to be stored, counted and gathered by
    /// [`Alerts::observe`] once they are: threshold matches, and the error events an issue rule
    /// would report should their issue turn out new (or regressed). Runs without the lock, so
    /// ingest tasks evaluate side by side; each event is read once for all the rules.
    pub fn matches(&self, events: &[StoredEvent]) -> Hits {
        let mut hits = Hits::default();
        let mut newest: Vec<Option<(i64, &str)>> = vec![None; self.targets.len()];
        for event in events {
            let mut subject = None;
            for (slot, target) in self.targets.iter().enumerate() {
                let rule = &self.rules[target.rule];
                if matches!(rule.kind, Kind::Monitor(_))
                    || event.project != rule.project
                    || event.env != target.env
                    || !rule.levels.as_ref().is_none_or(|levels| levels.contains(&event.level))
                {
                    continue;
                }
                let issue_rule = matches!(rule.kind, Kind::NewIssue | Kind::Regression);
                if issue_rule && event.fingerprint.is_none() {
                    continue;
                }
                let subject = subject.get_or_insert_with(|| Subject::new(event, &target.group));
                if !rule.query.matches_subject(subject) {
                    continue;
                }
                if issue_rule {
                    let fingerprint = event.fingerprint.clone().unwrap_or_default();
                    hits.issues.push(IssueHit { slot, fingerprint, title: clip(&event.message) });
                    continue;
                }
                let ts = event.timestamp_ms();
                hits.times.push((slot, ts));
                if newest[slot].is_none_or(|(newest_ts, _)| newest_ts <= ts) {
                    newest[slot] = Some((ts, &event.message));
                }
            }
        }
        hits.newest = newest.into_iter().enumerate().filter_map(|(slot, n)| n.map(|(_, m)| (slot, clip(m)))).collect();
        hits
    }

    /// Counts stored events' `hits` into the threshold rules, and gathers the issues `changes`
    /// names into the issue rules: those `hits` found among ingested events, and those whose
    /// events are among `errors` (events read back from a store, not matched before).
    pub fn observe(&self, hits: Hits, changes: &Changes, errors: &[StoredEvent], now_ms: i64) {
        let mut issues: Vec<(usize, String, String)> = Vec::new();
        for (slot, target) in self.targets.iter().enumerate() {
            let rule = &self.rules[target.rule];
            let keys = match rule.kind {
                Kind::NewIssue => &changes.new,
                Kind::Regression => &changes.regressed,
                Kind::Threshold | Kind::Monitor(_) => continue,
            };
            for IssueKey { project, env, fingerprint } in keys {
                if *project != rule.project || *env != target.env {
                    continue;
                }
                let matched = hits.issues.iter().find(|hit| hit.slot == slot && hit.fingerprint == *fingerprint);
                let title = matched.map(|hit| hit.title.clone()).or_else(|| {
                    errors
                        .iter()
                        .find(|e| e.fingerprint.as_deref() == Some(fingerprint.as_str()))
                        .filter(|e| rule.query.matches(e, &target.group))
                        .map(|e| clip(&e.message))
                });
                if let Some(title) = title {
                    issues.push((slot, fingerprint.clone(), title));
                }
            }
        }
        if hits.times.is_empty() && issues.is_empty() {
            return;
        }
        let mut slots = self.slots();
        for (slot, ts) in hits.times {
            slots[slot].window.add(ts, now_ms);
            slots[slot].joined += 1;
        }
        for (slot, message) in hits.newest {
            slots[slot].newest = Some(message);
        }
        for (index, fingerprint, title) in issues {
            let target = &self.targets[index];
            let link = self.link_to_issue(&self.rules[target.rule].project, &target.env, &fingerprint);
            let slot = &mut slots[index];
            slot.joined += 1;
            slot.newest = Some(title.clone());
            if slot.gathered.len() < MAX_GATHERED {
                slot.gathered.push(IssueLine { title, fingerprint, count: 1, link });
            } else {
                slot.more += 1;
            }
        }
    }

    /// The threshold rules' matches among `hits`, per rule, env and minute, for the shared
    /// state (where every task's are added up); a match from the future counts as now.
    pub fn rule_counts(&self, hits: &Hits, now_ms: i64) -> Vec<RuleCount> {
        fold_rules(hits.times.iter().map(|(slot, ts)| {
            let target = &self.targets[*slot];
            RuleCount {
                rule: self.rules[target.rule].name.clone(),
                env: target.env.clone(),
                minute: minute_of((*ts).min(now_ms)),
                task: String::new(),
                n: 1,
            }
        }))
    }

    /// Each threshold rule's (name, env, window in seconds): what the shared state reads back.
    pub fn thresholds(&self) -> Vec<(String, String, u64)> {
        self.targets
            .iter()
            .map(|target| &self.rules[target.rule])
            .zip(&self.targets)
            .filter(|(rule, _)| rule.kind == Kind::Threshold)
            .map(|(rule, target)| (rule.name.clone(), target.env.clone(), rule.window_secs))
            .collect()
    }

    /// What other tasks counted for a threshold rule in `env`, per epoch minute (as read from
    /// the shared state): added to this task's own count on every tick.
    pub fn set_others(&self, rule: &str, env: &str, minutes: Vec<(i64, u64)>) {
        let Some(index) = self.rules.iter().position(|r| r.name == rule && r.kind == Kind::Threshold) else { return };
        let mut slots = self.slots();
        if let Some(slot) = slots.iter_mut().find(|s| s.rule == index && s.env == env) {
            slot.others = minutes;
        }
    }

    /// Sets a monitor check's condition: `Some(details)` while it holds, `None` when it cleared.
    pub fn set_condition(&self, check: MonitorCheck, condition: Option<Vec<String>>) {
        self.set_condition_skipping(check, condition, Vec::new());
    }

    /// [`Alerts::set_condition`], its messages sent to every monitor channel but `skip`.
    pub fn set_condition_skipping(&self, check: MonitorCheck, condition: Option<Vec<String>>, skip: Vec<String>) {
        let Some(rule) = self.rules.iter().position(|r| r.kind == Kind::Monitor(check)) else { return };
        let mut slots = self.slots();
        if let Some(slot) = slots.iter_mut().find(|s| s.rule == rule) {
            slot.condition = condition;
            slot.skip = skip;
        }
    }

    /// Advances every rule to `now_ms` and queues the messages their bursts ask for.
    pub fn tick(&self, now_ms: i64) {
        let started = *self.first_tick.get_or_init(|| now_ms);
        let snoozes = self.snoozes();
        let mut slots = self.slots();
        for slot in slots.iter_mut() {
            let rule = &self.rules[slot.rule];
            let active = match rule.kind {
                Kind::Threshold => {
                    let window_ms = secs_to_ms(rule.window_secs);
                    slot.last_value = slot.window.count(now_ms) + in_window(&slot.others, now_ms, window_ms);
                    // Counts are not kept across a restart: a rule that was firing keeps firing
                    // until a whole window has been counted again, rather than "resolving".
                    let counting_since_start = now_ms < started.saturating_add(secs_to_ms(rule.window_secs));
                    slot.last_value >= rule.threshold || (slot.burst.holding() && counting_since_start)
                }
                Kind::NewIssue | Kind::Regression => {
                    slot.last_value = slot.gathered.len() as u64 + slot.more;
                    slot.last_value > 0
                }
                Kind::Monitor(_) => {
                    slot.last_value = u64::from(slot.condition.is_some());
                    slot.condition.is_some()
                }
            };
            if active {
                slot.peak = slot.peak.max(slot.last_value);
            }
            let before = slot.burst;
            let send = slot.burst.tick(now_ms, active, &rule.policy);
            let snoozed_until = snoozes.get(&rule.name).copied().filter(|until| *until > now_ms);
            if let Some(send) = send {
                self.send(rule, slot, send, snoozed_until, now_ms);
            } else if slot.burst.holding() && active && !slot.noted && before == slot.burst {
                slot.noted = true;
                // While snoozed, the snooze is what holds it back, whatever repeat_secs says.
                let reason = snoozed_until.map_or_else(|| "within repeat_secs".to_string(), snoozed);
                self.note(rule, slot, now_ms, HistoryKind::Suppressed, &reason, None);
            }
            if slot.burst == Burst::Ok {
                slot.peak = 0;
                slot.joined = 0;
            }
            if slot.burst != before || send.is_some() {
                let saved = Saved {
                    burst: slot.burst,
                    peak: slot.peak,
                    last_fired: slot.last_fired,
                    announced: slot.announced,
                };
                if let Err(error) = self.state.save_rule(&rule.name, &slot.env, &saved) {
                    tracing::error!(error = format!("{error:#}"), alert = %rule.name, "saving an alert's state");
                }
            }
        }
    }

    fn send(&self, rule: &Rule, slot: &mut Slot, send: Send, snoozed_until: Option<i64>, now_ms: i64) {
        let notification = self.notification(rule, slot, send);
        let kind = match send {
            Send::First => HistoryKind::Fired,
            Send::Reminder => HistoryKind::Reminder,
            Send::Resolved => HistoryKind::Resolved,
        };
        let detail = describe(&notification.what);
        if send != Send::Resolved {
            slot.last_fired = Some(now_ms);
        }
        let joined = std::mem::take(&mut slot.joined);
        slot.gathered.clear();
        slot.more = 0;
        slot.noted = false;
        if send == Send::Resolved && !std::mem::take(&mut slot.announced) {
            self.note(rule, slot, now_ms, HistoryKind::Resolved, "resolved (nothing was sent for this burst)", None);
            return;
        }
        if let Some(until) = snoozed_until {
            self.note(rule, slot, now_ms, HistoryKind::Suppressed, &format!("{}: {detail}", snoozed(until)), None);
            return;
        }
        let channels: Vec<String> = rule.channels.iter().filter(|c| !slot.skip.contains(c)).cloned().collect();
        if channels.is_empty() {
            self.note(rule, slot, now_ms, HistoryKind::Suppressed, &format!("no channels: {detail}"), None);
            return;
        }
        // Several tasks may see one burst of a threshold or monitor rule: one of them sends each
        // message. (An issue rule's issues were each announced by one task already.) A state that
        // cannot answer lets it through: a duplicate is better than silence.
        if matches!(rule.kind, Kind::Threshold | Kind::Monitor(_)) {
            match self.state.claim_send(&rule.name, &slot.env, send, now_ms, rule.policy.repeat_ms) {
                Ok(true) => {}
                Ok(false) => {
                    slot.announced = send != Send::Resolved;
                    let why = format!("sent by another task: {detail}");
                    self.note(rule, slot, now_ms, HistoryKind::Suppressed, &why, None);
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), alert = %rule.name, "claiming a message; sent anyway")
                }
            }
        }
        match self.outbox.enqueue(&rule.name, &notification, &channels) {
            Ok(id) => {
                slot.announced = send != Send::Resolved;
                self.note(rule, slot, now_ms, kind, &detail, Some(id));
                if send == Send::First && joined > 1 {
                    let what = if matches!(rule.kind, Kind::Threshold) { "events" } else { "issues" };
                    let grouped = format!("grouped into notification {id}: {joined} {what} of the burst");
                    self.note(rule, slot, now_ms, HistoryKind::Suppressed, &grouped, Some(id));
                }
            }
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), alert = %rule.name, "queueing a notification failed");
                self.note(rule, slot, now_ms, HistoryKind::Failed, &format!("could not queue: {error:#}"), None);
            }
        }
    }

    fn note(&self, rule: &Rule, slot: &Slot, now_ms: i64, kind: HistoryKind, detail: &str, notification: Option<i64>) {
        if let Err(error) = self.state.add_history(&rule.name, &slot.env, now_ms, kind, detail, notification) {
            tracing::error!(error = format!("{error:#}"), alert = %rule.name, "writing the alert history");
        }
    }

    fn notification(&self, rule: &Rule, slot: &Slot, send: Send) -> Notification {
        let (project, env) = match rule.kind {
            Kind::Monitor(_) => (None, None),
            _ => (Some(rule.project.clone()), Some(slot.env.clone())),
        };
        let issues = || {
            let mut lines = slot.gathered.clone();
            if slot.more > 0 {
                lines.push(IssueLine {
                    title: format!("… and {} more", slot.more),
                    fingerprint: String::new(),
                    count: slot.more,
                    link: String::new(),
                });
            }
            lines
        };
        let what = match (rule.kind, send) {
            (Kind::Monitor(check), send) => What::Monitor {
                problem: check.problem().to_string(),
                details: slot.condition.clone().unwrap_or_default(),
                resolved: send == Send::Resolved,
            },
            (_, Send::Resolved) => What::Resolved,
            (Kind::Threshold, send) => What::Threshold {
                count: slot.peak.max(slot.last_value),
                threshold: rule.threshold,
                window_secs: rule.window_secs,
                reminder: send == Send::Reminder,
            },
            (Kind::NewIssue, _) => What::NewIssues { issues: issues() },
            (Kind::Regression, _) => What::Regressions { issues: issues() },
        };
        let link = match (rule.kind, &what) {
            (Kind::Monitor(_), _) => format!("{}/", self.public_url),
            (_, What::NewIssues { issues } | What::Regressions { issues }) if issues.len() == 1 => {
                issues[0].link.clone()
            }
            (Kind::NewIssue | Kind::Regression, _) => self.link(links::issues(&rule.project, &slot.env, &[])),
            _ => {
                let params = [("q", rule.query_text.clone()), ("from", format!("now-{}s", rule.window_secs))];
                self.link(links::logs(&rule.project, &slot.env, &params))
            }
        };
        Notification { rule: rule.name.clone(), project, env, what, newest_message: slot.newest.clone(), link }
    }

    /// A dashboard address (`crate::links`) as an absolute URL.
    fn link(&self, href: String) -> String {
        format!("{}{href}", self.public_url)
    }

    fn link_to_issue(&self, project: &str, env: &str, fingerprint: &str) -> String {
        self.link(links::issue_events((project, env), fingerprint, None, &[("from", "now-7d".into())]))
    }

    /// Whether a rule of the config (not the monitor's) has this name.
    pub fn has_rule(&self, name: &str) -> bool {
        self.rules.iter().any(|r| r.name == name && !matches!(r.kind, Kind::Monitor(_)))
    }

    /// Snoozes a rule until `until_ms`, or ends its snooze (`None`); false when there is no such
    /// rule.
    pub fn set_snooze(&self, name: &str, until_ms: Option<i64>, now_ms: i64) -> anyhow::Result<bool> {
        if !self.rules.iter().any(|r| r.name == name) {
            return Ok(false);
        }
        self.state.set_snooze(name, until_ms)?;
        if let Ok(mut snoozes) = self.snoozes.lock() {
            match until_ms {
                Some(until) => snoozes.insert(name.to_string(), until),
                None => snoozes.remove(name),
            };
        }
        match until_ms.and_then(crate::event::from_unix_ms) {
            Some(until) => {
                let until = crate::event::timestamp_format::format(until);
                self.state.add_history(name, "", now_ms, HistoryKind::Snoozed, &format!("until {until}"), None)?;
            }
            None => self.state.add_history(name, "", now_ms, HistoryKind::Unsnoozed, "", None)?,
        }
        Ok(true)
    }

    /// Every rule (the monitor's checks last) with its state at `now_ms`.
    pub fn list(&self, now_ms: i64) -> Vec<RuleView> {
        let snoozes = self.snoozes();
        let slots = self.slots();
        self.rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let envs: Vec<EnvView> = slots
                    .iter()
                    .filter(|s| s.rule == index)
                    .map(|s| EnvView { env: s.env.clone(), state: RuleState::of(&s.burst), value: s.last_value })
                    .collect();
                let snoozed_until = snoozes.get(&rule.name).copied().filter(|until| *until > now_ms);
                let state = if snoozed_until.is_some() {
                    RuleState::Snoozed
                } else if envs.iter().any(|e| e.state == RuleState::Firing) {
                    RuleState::Firing
                } else if envs.iter().any(|e| e.state == RuleState::Pending) {
                    RuleState::Pending
                } else {
                    RuleState::Ok
                };
                let last_fired = slots.iter().filter(|s| s.rule == index).filter_map(|s| s.last_fired).max();
                RuleView {
                    name: rule.name.clone(),
                    project: rule.project.clone(),
                    when: match rule.kind {
                        Kind::Threshold => "threshold",
                        Kind::NewIssue => "new_issue",
                        Kind::Regression => "regression",
                        Kind::Monitor(_) => "monitor",
                    },
                    query: rule.query_text.clone(),
                    state,
                    snoozed_until: snoozed_until.and_then(crate::event::from_unix_ms),
                    last_fired: last_fired.and_then(crate::event::from_unix_ms),
                    last_value: envs.iter().map(|e| e.value).max().unwrap_or(0),
                    threshold: rule.threshold,
                    window_secs: rule.window_secs,
                    channels: rule.channels.clone(),
                    envs,
                }
            })
            .collect()
    }

    /// The newest `limit` firings and suppressions of a rule.
    pub fn history(&self, name: &str, limit: usize) -> anyhow::Result<Vec<Entry>> {
        self.state.history(name, limit)
    }
}

impl Rule {
    fn from_config(alert: &AlertConfig) -> Result<Rule, crate::search::QueryError> {
        let query = Query::parse(&alert.query)?;
        let kind = match alert.when {
            When::Threshold => Kind::Threshold,
            When::NewIssue => Kind::NewIssue,
            When::Regression => Kind::Regression,
        };
        let issues = kind != Kind::Threshold;
        Ok(Rule {
            name: alert.name.clone(),
            project: alert.project.clone(),
            kind,
            levels: query.required_levels(),
            query,
            threshold: if issues { 1 } else { alert.threshold },
            window_secs: alert.window_secs,
            channels: alert.channels.clone(),
            policy: Policy {
                group_wait_ms: secs_to_ms(alert.group_wait_secs),
                repeat_ms: secs_to_ms(alert.repeat_secs),
                // "Resolved" means a threshold no longer reached; an issue rule has no such end.
                send_resolved: alert.send_resolved && !issues,
                quiet_for_repeat: issues,
            },
            query_text: alert.query.clone(),
        })
    }
}

impl Slot {
    fn new(rule: usize, env: &str, window_secs: u64) -> Slot {
        Slot {
            rule,
            env: env.to_string(),
            window: Window::new(window_secs.max(1)),
            newest: None,
            gathered: Vec::new(),
            more: 0,
            joined: 0,
            burst: Burst::Ok,
            peak: 0,
            last_value: 0,
            last_fired: None,
            noted: false,
            announced: false,
            condition: None,
            skip: Vec::new(),
            others: Vec::new(),
        }
    }
}

/// The counts of `minutes` (epoch minute, count) within the window ending at `now_ms`: a
/// minute the window's old edge cuts counts in proportion, so the sum slides smoothly.
fn in_window(minutes: &[(i64, u64)], now_ms: i64, window_ms: i64) -> u64 {
    let oldest = now_ms - window_ms;
    let sum: f64 = minutes
        .iter()
        .map(|&(minute, n)| {
            let (start, end) = (minute * MINUTE_MS, (minute + 1) * MINUTE_MS);
            let share = if start >= oldest {
                1.0
            } else if end > oldest {
                (end - oldest) as f64 / MINUTE_MS as f64
            } else {
                0.0
            };
            n as f64 * share
        })
        .sum();
    sum as u64
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// One line for the history.
fn describe(what: &What) -> String {
    match what {
        What::Threshold { count, threshold, window_secs, reminder } => {
            let again = if *reminder { " (still firing)" } else { "" };
            format!("{count} events in {window_secs} s (threshold {threshold}){again}")
        }
        What::NewIssues { issues } => format!("{} new issue(s): {}", issues.len(), titles(issues)),
        What::Regressions { issues } => format!("{} regression(s): {}", issues.len(), titles(issues)),
        What::Resolved => "resolved".into(),
        What::Monitor { problem, details, resolved } => {
            let state = if *resolved { "cleared" } else { "failing" };
            format!("{problem} {state}: {}", details.join("; "))
        }
    }
}

/// The reason of a suppression by a snooze: `snoozed until <RFC 3339>`.
fn snoozed(until_ms: i64) -> String {
    let until = crate::event::from_unix_ms(until_ms).map(crate::event::timestamp_format::format).unwrap_or_default();
    format!("snoozed until {until}")
}

fn titles(issues: &[IssueLine]) -> String {
    issues.iter().map(|i| i.title.as_str()).collect::<Vec<_>>().join(" | ")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use time::OffsetDateTime;

    use super::*;

    use crate::alerts::outbox::{ChannelHealth, DeliveryRecord, Due, Settled};
    use crate::alerts::sqlite::SqliteAlerts;

    /// Records what would be delivered (the outbox's own tests deliver for real).
    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, Notification, Vec<String>)>>);

    /// Only `enqueue` is the engine's; the rest is the deliverer's and the pages'.
    impl Outbox for Recorded {
        fn enqueue(&self, alert: &str, notification: &Notification, channels: &[String]) -> anyhow::Result<i64> {
            let mut sent = self.0.lock().expect("lock");
            sent.push((alert.to_string(), notification.clone(), channels.to_vec()));
            Ok(sent.len() as i64)
        }

        fn deliveries_of(&self, _: &str, _: usize) -> anyhow::Result<Vec<DeliveryRecord>> {
            Ok(Vec::new())
        }

        fn channel_health(&self) -> anyhow::Result<Vec<ChannelHealth>> {
            Ok(Vec::new())
        }

        fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
            tokio::sync::watch::channel(0).1
        }

        fn due(&self, _: &str, _: i64, _: usize) -> anyhow::Result<Vec<Due>> {
            Ok(Vec::new())
        }

        fn next_due_at(&self, _: &str) -> anyhow::Result<Option<i64>> {
            Ok(None)
        }

        fn record(&self, _: i64, _: &str, _: i64, _: &Settled) -> anyhow::Result<()> {
            Ok(())
        }

        fn fail_unknown_channels(&self, _: &[String]) -> anyhow::Result<usize> {
            Ok(0)
        }

        fn prune(&self, _: i64) -> anyhow::Result<usize> {
            Ok(0)
        }
    }

    impl Recorded {
        fn take(&self) -> Vec<(String, Notification, Vec<String>)> {
            std::mem::take(&mut *self.0.lock().expect("lock"))
        }
    }

    const RULES: &str = r#"
        [server]
        public_url = "https://logs.example.com/"
        [monitor]
        channels = ["team"]
        [[projects]]
        name = "shop"
        envs = ["production", "staging"]
        [[channels]]
        name = "ops"
        kind = "slack"
        webhook_url = "https://hooks.slack.com/services/T/B/X"
        [[channels]]
        name = "team"
        kind = "slack"
        webhook_url = "https://hooks.slack.com/services/T/B/Y"
        [[alerts]]
        name = "checkout errors"
        project = "shop"
        envs = ["production"]
        when = "threshold"
        query = "level:>=error checkout"
        threshold = 5
        window_secs = 300
        channels = ["ops", "team"]
        group_wait_secs = 30
        repeat_secs = 3600
        send_resolved = true
        [[alerts]]
        name = "new issues"
        project = "shop"
        when = "new_issue"
        channels = ["ops"]
        group_wait_secs = 10
        repeat_secs = 600
    "#;

    struct Rig {
        alerts: Alerts,
        outbox: Arc<Recorded>,
        _dir: tempfile::TempDir,
    }

    fn rig_in(dir: tempfile::TempDir) -> Rig {
        let config = Config::from_sources(RULES, &[]).expect("config");
        let projects = Projects::from_config(&config).expect("projects");
        let state = Arc::new(SqliteAlerts::open(dir.path()).expect("alert state"));
        let outbox = Arc::new(Recorded::default());
        let alerts = Alerts::new(&config, &projects, state, outbox.clone());
        Rig { alerts, outbox, _dir: dir }
    }

    fn rig() -> Rig {
        rig_in(tempfile::tempdir().expect("dir"))
    }

    const T0: i64 = 1_800_000_000_000;

    fn event(env: &str, at_ms: i64, level: Level, message: &str) -> StoredEvent {
        let at = crate::event::from_unix_ms(at_ms).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        StoredEvent::bare(crate::event::new_id(at), ("shop", env), (at, at), level, message.to_string())
    }

    fn key(env: &str, fingerprint: &str) -> IssueKey {
        IssueKey { project: "shop".into(), env: env.into(), fingerprint: fingerprint.into() }
    }

    fn ingest(rig: &Rig, events: &[StoredEvent], now_ms: i64) {
        let hits = rig.alerts.matches(events);
        rig.alerts.observe(hits, &Changes::default(), &[], now_ms);
    }

    /// Ticks once a second over `[from, to)`.
    fn run(rig: &Rig, from: i64, to: i64) {
        for now in (from..to).step_by(1000) {
            rig.alerts.tick(now);
        }
    }

    fn errors(n: usize, env: &str, at_ms: i64) -> Vec<StoredEvent> {
        (0..n).map(|i| event(env, at_ms + i as i64, Level::Error, &format!("checkout failed #{i}"))).collect()
    }

    #[test]
    fn below_the_threshold_nothing_is_sent() {
        let rig = rig();
        ingest(&rig, &errors(4, "production", T0), T0);
        // Matching events of another env, another level or another word do not count.
        ingest(&rig, &errors(3, "staging", T0), T0);
        ingest(&rig, &[event("production", T0, Level::Warn, "checkout slow")], T0);
        ingest(&rig, &[event("production", T0, Level::Error, "login failed")], T0);
        run(&rig, T0, T0 + 120_000);
        assert!(rig.outbox.take().is_empty());
        let view = &rig.alerts.list(T0)[0];
        assert_eq!((view.state.as_str(), view.last_value), ("ok", 4));
    }

    #[test]
    fn a_burst_is_one_message_per_rule_to_every_channel_after_group_wait_then_held_back() {
        let rig = rig();
        run(&rig, T0, T0 + 5000);
        for second in 0..20 {
            let now = T0 + 5000 + second * 1000;
            ingest(&rig, &errors(10, "production", now), now);
            rig.alerts.tick(now);
        }
        // Until the window has emptied (then it resolves).
        run(&rig, T0 + 25_000, T0 + 320_000);
        let sent = rig.outbox.take();
        assert_eq!(sent.len(), 1, "{sent:#?}");
        let (alert, n, channels) = &sent[0];
        assert_eq!(
            (alert.as_str(), channels.clone()),
            ("checkout errors", vec!["ops".to_string(), "team".to_string()])
        );
        match &n.what {
            What::Threshold { count, threshold: 5, window_secs: 300, reminder: false } => {
                assert!(*count >= 50, "the count gathered during group_wait: {count}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(n.newest_message.as_deref(), Some("checkout failed #9"));
        assert!(
            n.link.starts_with(
                "https://logs.example.com/logs?project=shop&env=production&q=level%3A%3E%3Derror%20checkout"
            ),
            "{}",
            n.link
        );
        let history = rig.alerts.history("checkout errors", 10).expect("history");
        let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
        assert!(kinds.contains(&"fired"), "{kinds:?}");
        assert!(history.iter().any(|e| e.detail.starts_with("grouped into notification 1")), "{history:#?}");
        assert!(history.iter().any(|e| e.detail == "within repeat_secs"), "{history:#?}");
    }

    #[test]
    fn a_rule_still_firing_after_repeat_reminds_once_and_says_resolved_when_it_stops() {
        let rig = rig();
        let mut now = T0;
        // Ten errors a minute for 70 minutes: always over 5 in 300 s.
        while now < T0 + 70 * 60_000 {
            if (now - T0) % 60_000 == 0 {
                ingest(&rig, &errors(10, "production", now), now);
            }
            rig.alerts.tick(now);
            now += 1000;
        }
        let sent = rig.outbox.take();
        let reminders: Vec<bool> =
            sent.iter().map(|(_, n, _)| matches!(n.what, What::Threshold { reminder: true, .. })).collect();
        assert_eq!(reminders, [false, true], "one first message, one reminder after an hour");
        // Quiet: the window empties, and the resolution is sent.
        run(&rig, now, now + 400_000);
        let sent = rig.outbox.take();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.what, What::Resolved);
        assert_eq!(rig.alerts.list(now + 400_000)[0].state, "ok");
    }

    #[test]
    fn new_issues_of_one_burst_are_one_message_listing_them() {
        let rig = rig();
        let mut events = Vec::new();
        let mut changes = Changes::default();
        for i in 0..10 {
            let mut e = event("staging", T0, Level::Error, &format!("TypeError {i} after deploy"));
            let fingerprint = format!("{i:016x}");
            e.fingerprint = Some(fingerprint.clone());
            changes.new.push(key("staging", &fingerprint));
            events.push(e);
        }
        // Over three requests within the wait.
        for (part, chunk) in [0..3, 3..7, 7..10].into_iter().enumerate() {
            let now = T0 + part as i64 * 2000;
            let part_changes = Changes { new: changes.new[chunk.clone()].to_vec(), ..Changes::default() };
            rig.alerts.observe(Hits::default(), &part_changes, &events[chunk], now);
            rig.alerts.tick(now);
        }
        run(&rig, T0 + 5000, T0 + 60_000);
        let sent = rig.outbox.take();
        assert_eq!(sent.len(), 1, "{sent:#?}");
        let What::NewIssues { issues } = &sent[0].1.what else { panic!("{:?}", sent[0].1.what) };
        let titles: Vec<&str> = issues.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(titles.len(), 10);
        assert!(titles.contains(&"TypeError 0 after deploy") && titles.contains(&"TypeError 9 after deploy"));
        assert!(issues[0].link.contains("q=fingerprint%3A0000000000000000"), "{}", issues[0].link);
        // Another new issue soon after waits for repeat_secs, then comes as one reminder.
        let mut late = event("staging", T0 + 70_000, Level::Error, "RangeError later");
        late.fingerprint = Some("ffff".into());
        let late_changes = Changes { new: vec![key("staging", "ffff")], ..Changes::default() };
        rig.alerts.observe(Hits::default(), &late_changes, &[late], T0 + 70_000);
        run(&rig, T0 + 70_000, T0 + 600_000);
        assert!(rig.outbox.take().is_empty(), "held back within repeat_secs");
        run(&rig, T0 + 600_000, T0 + 700_000);
        let sent = rig.outbox.take();
        assert_eq!(sent.len(), 1);
        assert!(
            matches!(&sent[0].1.what, What::NewIssues { issues } if issues.len() == 1 && issues[0].title == "RangeError later")
        );
    }

    #[test]
    fn a_snoozed_rule_sends_nothing_and_says_so_and_unsnoozing_brings_it_back() {
        let rig = rig();
        assert!(rig.alerts.set_snooze("checkout errors", Some(T0 + 3_600_000), T0).expect("snooze"));
        assert_eq!(rig.alerts.list(T0)[0].state, "snoozed");
        ingest(&rig, &errors(10, "production", T0), T0);
        run(&rig, T0, T0 + 60_000);
        assert!(rig.outbox.take().is_empty());
        let history = rig.alerts.history("checkout errors", 10).expect("history");
        assert!(
            history.iter().any(|e| e.kind == "suppressed" && e.detail.starts_with("snoozed until")),
            "{history:#?}"
        );
        assert!(rig.alerts.set_snooze("checkout errors", None, T0 + 60_000).expect("unsnooze"));
        // The burst that was suppressed counts as sent for repeat; a new burst after it is sent.
        run(&rig, T0 + 60_000, T0 + 400_000);
        let t = T0 + 400_000;
        ingest(&rig, &errors(10, "production", t), t);
        run(&rig, t, t + 60_000);
        assert_eq!(rig.outbox.take().len(), 1);
        assert!(!rig.alerts.set_snooze("no such rule", Some(T0), T0).expect("snooze"));
    }

    #[test]
    fn while_snoozed_a_burst_held_back_says_snoozed_not_within_repeat_secs() {
        let rig = rig();
        assert!(rig.alerts.set_snooze("checkout errors", Some(T0 + 3_600_000), T0).expect("snooze"));
        // Errors keep coming while the burst would be held back by repeat_secs anyway.
        for second in 0..60 {
            let now = T0 + second * 1000;
            ingest(&rig, &errors(2, "production", now), now);
            rig.alerts.tick(now);
        }
        assert!(rig.outbox.take().is_empty());
        let history = rig.alerts.history("checkout errors", 10).expect("history");
        let reasons: Vec<&str> = history.iter().filter(|e| e.kind == "suppressed").map(|e| e.detail.as_str()).collect();
        let until = crate::event::timestamp_format::format(crate::event::from_unix_ms(T0 + 3_600_000).expect("a time"));
        assert_eq!(reasons.len(), 2, "the first message, then the burst held back: {history:#?}");
        assert_eq!(reasons[0], format!("snoozed until {until}"), "the newest first");
        assert!(reasons[1].starts_with(&format!("snoozed until {until}: ")), "{}", reasons[1]);

        // Un-snoozed, a burst held back is held back by repeat_secs, and says so.
        assert!(rig.alerts.set_snooze("checkout errors", None, T0 + 60_000).expect("unsnooze"));
        run(&rig, T0 + 60_000, T0 + 400_000);
        let t = T0 + 400_000;
        for second in 0..60 {
            let now = t + second * 1000;
            ingest(&rig, &errors(2, "production", now), now);
            rig.alerts.tick(now);
        }
        assert_eq!(rig.outbox.take().len(), 1);
        let newest = rig.alerts.history("checkout errors", 1).expect("history");
        assert_eq!((newest[0].kind.as_str(), newest[0].detail.as_str()), ("suppressed", "within repeat_secs"));
    }

    #[test]
    fn a_restart_finishes_a_burst_being_gathered_and_repeats_nothing_sent() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().to_path_buf();
        let first = rig_in(dir);
        ingest(&first, &errors(10, "production", T0), T0);
        run(&first, T0, T0 + 10_000);
        assert!(first.outbox.take().is_empty(), "still within group_wait");
        let Rig { alerts, _dir: dir, .. } = first;
        drop(alerts);
        assert_eq!(dir.path(), path);

        let second = rig_in(dir);
        run(&second, T0 + 10_000, T0 + 60_000);
        let sent = second.outbox.take();
        assert_eq!(sent.len(), 1, "the pending burst is sent once after the restart: {sent:#?}");
        assert!(matches!(sent[0].1.what, What::Threshold { count: 10, .. }), "{:?}", sent[0].1.what);
        let Rig { alerts, _dir: dir, .. } = second;
        drop(alerts);

        let third = rig_in(dir);
        ingest(&third, &errors(10, "production", T0 + 70_000), T0 + 70_000);
        run(&third, T0 + 70_000, T0 + 200_000);
        assert!(third.outbox.take().is_empty(), "fired before the restart: held back by repeat_secs");
    }

    #[test]
    fn a_monitor_check_fires_at_once_to_the_monitor_channels_and_clears() {
        let rig = rig();
        rig.alerts.set_condition(MonitorCheck::Canary, Some(vec!["2 canaries in a row failed".into()]));
        rig.alerts.tick(T0);
        rig.alerts.set_condition(MonitorCheck::Canary, None);
        rig.alerts.tick(T0 + 5000);
        let sent = rig.outbox.take();
        assert_eq!(sent.len(), 2, "{sent:#?}");
        assert_eq!(sent[0].2, ["team"], "to the [monitor] channels");
        assert_eq!(
            sent[0].1.what,
            What::Monitor {
                problem: "canary".into(),
                details: vec!["2 canaries in a row failed".into()],
                resolved: false
            }
        );
        assert!(matches!(&sent[1].1.what, What::Monitor { resolved: true, .. }));
        assert_eq!(sent[0].1.link, "https://logs.example.com/");
    }

    #[test]
    fn a_rule_state_and_a_monitor_check_keep_their_names() {
        let states: Vec<String> =
            RuleState::ALL.iter().map(|s| serde_json::to_value(s).expect("json").to_string()).collect();
        assert_eq!(states, [r#""ok""#, r#""pending""#, r#""firing""#, r#""snoozed""#]);
        for state in RuleState::ALL {
            assert_eq!(RuleState::parse(state.as_str()), Some(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        let names: Vec<&str> = MonitorCheck::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "monitor: canary",
                "monitor: spool age",
                "monitor: dead letters",
                "monitor: channel failing",
                "monitor: events refused",
                "monitor: state store failing"
            ]
        );
        for check in MonitorCheck::ALL {
            assert_eq!(MonitorCheck::parse(check.name()), Some(check));
        }
        assert_eq!(MonitorCheck::SpoolAge.problem(), "spool age");
        assert_eq!(MonitorCheck::parse("monitor: canry"), None);
    }

    #[test]
    fn a_snooze_set_through_the_shared_state_by_another_instance_is_seen() {
        let rig = rig();
        let other = SqliteAlerts::open(rig._dir.path()).expect("another instance's handle");
        other.set_snooze("checkout errors", Some(T0 + 3_600_000)).expect("snooze");
        assert_eq!(rig.alerts.list(T0)[0].state, "snoozed");
        ingest(&rig, &errors(10, "production", T0), T0);
        run(&rig, T0, T0 + 60_000);
        assert!(rig.outbox.take().is_empty(), "suppressed by the other instance's snooze");
        other.set_snooze("checkout errors", None).expect("unsnooze");
        assert_eq!(rig.alerts.list(T0 + 60_000)[0].state, "firing");
    }

    #[test]
    fn other_tasks_counts_add_to_a_threshold_and_slide_out_of_its_window() {
        let rig = rig();
        // 3 matches here, 3 counted elsewhere in T0's minute: 6 reach the threshold of 5.
        let minute = T0.div_euclid(MINUTE_MS);
        let hits = rig.alerts.matches(&errors(3, "production", T0));
        let mine = rig.alerts.rule_counts(&hits, T0);
        let mine: Vec<(&str, &str, i64, u64)> =
            mine.iter().map(|c| (c.rule.as_str(), c.env.as_str(), c.minute, c.n)).collect();
        assert_eq!(mine, [("checkout errors", "production", minute, 3)], "what this task adds to the table");
        rig.alerts.observe(hits, &Changes::default(), &[], T0);
        assert_eq!(rig.alerts.thresholds(), [("checkout errors".to_string(), "production".to_string(), 300)]);
        rig.alerts.set_others("checkout errors", "production", vec![(minute, 3)]);
        run(&rig, T0, T0 + 31_000);
        let sent = rig.outbox.take();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(matches!(sent[0].1.what, What::Threshold { count: 6, .. }), "{:?}", sent[0].1.what);
        // A minute the window's edge cuts counts in part; past it, not at all.
        let start = minute * MINUTE_MS;
        assert_eq!(in_window(&[(minute, 60)], start + 60_000 + 300_000 - 30_000, 300_000), 30);
        assert_eq!(in_window(&[(minute, 60), (minute + 1, 7)], start + 60_000 + 300_000, 300_000), 7);
        assert_eq!(in_window(&[(minute, 60)], start + 10_000, 300_000), 60, "the minute now running counts whole");
    }
}
