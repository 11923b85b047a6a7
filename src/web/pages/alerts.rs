//! The alerts page: each rule with its state, its current value against its threshold, its
//! recent history, and snooze controls that are plain forms (no JavaScript).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Page, error_page};
use crate::alerts::engine::RuleView;
use crate::event::unix_ms;
use crate::web::AppState;
use crate::web::alerts::{self, Line, Snooze, snooze_until, timeline};
use crate::web::auth::PageUser;
use crate::web::error::ApiError;
use crate::zone::Zone;

/// History entries shown per rule.
const HISTORY_SHOWN: usize = 10;
/// The snooze lengths offered, in minutes.
const SNOOZE_CHOICES: [(u64, &str); 4] = [(30, "30 minutes"), (60, "1 hour"), (240, "4 hours"), (1440, "1 day")];

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    user: Option<String>,
    zone: String,
    rules: Vec<RuleRow>,
    choices: Vec<(u64, &'static str)>,
}

struct RuleRow {
    name: String,
    what: String,
    state: &'static str,
    /// "3 / 5 in 300 s" per env, or issues gathered.
    values: Vec<String>,
    snoozed_until: String,
    last_fired: String,
    channels: String,
    history: Vec<HistoryRow>,
    monitor: bool,
}

struct HistoryRow {
    at: String,
    kind: String,
    env: String,
    detail: String,
}

pub async fn show_alerts(State(state): State<AppState>, PageUser(user): PageUser) -> Response {
    let now = OffsetDateTime::now_utc();
    let mut rows = Vec::new();
    let listed = match alerts::rules(&state).await {
        Ok(listed) => listed,
        Err(error) => return error_page(&user, error),
    };
    for rule in listed {
        match timeline(&state, rule.name.clone(), HISTORY_SHOWN).await {
            Ok(history) => rows.push(rule_row(rule, history, &state.zone)),
            Err(error) => return error_page(&user, error),
        }
    }
    Page(AlertsPage { user: Some(user), zone: state.zone.label(now), rules: rows, choices: SNOOZE_CHOICES.to_vec() })
        .into_response()
}

fn rule_row(rule: RuleView, history: Vec<Line>, zone: &Zone) -> RuleRow {
    let monitor = rule.when == "monitor";
    let what = match rule.when {
        "threshold" => format!(
            "{} · ≥ {} events in {} s matching `{}`",
            rule.project, rule.threshold, rule.window_secs, rule.query
        ),
        "new_issue" => format!("{} · new issues matching `{}`", rule.project, rule.query),
        "regression" => format!("{} · regressions matching `{}`", rule.project, rule.query),
        _ => "logboard's own health".to_string(),
    };
    let values = rule
        .envs
        .iter()
        .map(|env| match rule.when {
            "threshold" => format!("{}: {} / {} ({})", env.env, env.value, rule.threshold, env.state),
            "monitor" => (if env.value > 0 { "failing" } else { "healthy" }).to_string(),
            _ => format!("{}: {} gathered ({})", env.env, env.value, env.state),
        })
        .collect();
    RuleRow {
        what,
        state: rule.state.as_str(),
        values,
        snoozed_until: rule.snoozed_until.map(|t| zone.format(t)).unwrap_or_default(),
        last_fired: rule.last_fired.map(|t| zone.format(t)).unwrap_or_else(|| "never".into()),
        channels: if rule.channels.is_empty() { "none".into() } else { rule.channels.join(", ") },
        history: history
            .into_iter()
            .map(|line| HistoryRow {
                at: zone.format(line.at),
                detail: match (&line.channel, line.outcome) {
                    (Some(channel), Some(outcome)) => {
                        let error = line.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
                        let attempts = line.attempts.unwrap_or(0);
                        format!("to {channel}: {outcome} after {attempts} attempt(s){error}")
                    }
                    _ => line.detail,
                },
                kind: line.kind.to_string(),
                env: line.env,
            })
            .collect(),
        name: rule.name,
        monitor,
    }
}

#[derive(Debug, Deserialize)]
pub struct SnoozeForm {
    name: String,
    /// Absent: un-snooze.
    minutes: Option<u64>,
}

/// `POST /alerts/snooze` from the page (same-origin only: the cross-site guard is on the route).
pub async fn change_snooze(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Form(form): Form<SnoozeForm>,
) -> Response {
    if !state.alerts.has_rule(&form.name) {
        return error_page(&user, ApiError::NotFound(format!("no alert rule is named `{}`", form.name)));
    }
    let now = unix_ms(OffsetDateTime::now_utc());
    let until = match form.minutes.map(|m| snooze_until(&Snooze::for_minutes(m), now)).transpose() {
        Ok(until) => until,
        Err(error) => return error_page(&user, error),
    };
    match alerts::change_snooze(&state, &form.name, until, now).await {
        Ok(()) => Redirect::to("/alerts").into_response(),
        Err(error) => error_page(&user, error),
    }
}
