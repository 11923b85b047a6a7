//! The alerts API: rules and their state, a rule's history, snooze and un-snooze
//! (`../shared/spec/alerts.md`). Reading needs an [`ApiUser`]; snoozing too, and the route is
//! behind the cross-site guard, so a page of another site cannot snooze with a user's session.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::AppState;
use super::auth::ApiUser;
use super::error::ApiError;
use crate::alerts::engine::RuleView;
use crate::clock::{now_ms, unix_ms};
use crate::event::timestamp_format;

/// Entries of a rule's history one answer holds.
const HISTORY_LIMIT: usize = 200;
/// The kind of a [`Line`] that is a message to one channel.
const MESSAGE: &str = "message";
/// The longest snooze: 90 days.
const MAX_SNOOZE_MINUTES: u64 = 90 * 24 * 60;

pub async fn list_alerts(State(state): State<AppState>, _user: ApiUser) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "alerts": rules(&state).await? })))
}

/// Every rule with its state now. The snoozes are read from the alert state: off the async
/// workers.
pub async fn rules(state: &AppState) -> Result<Vec<RuleView>, ApiError> {
    let alerts = state.alerts.clone();
    tokio::task::spawn_blocking(move || alerts.list(now_ms())).await.map_err(|e| ApiError::Internal(e.into()))
}

pub async fn show_history(
    State(state): State<AppState>,
    _user: ApiUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    known(&state, &name)?;
    let history = timeline(&state, name, HISTORY_LIMIT).await?;
    Ok(Json(json!({ "history": history })))
}

/// One line of a rule's history: a firing or suppression, or a message to a channel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    #[serde(with = "timestamp_format")]
    pub at: OffsetDateTime,
    /// A [`crate::alerts::state::HistoryKind`] (`fired`, `reminder`, `resolved`, `suppressed`, `snoozed`,
    /// `unsnoozed`, `failed`), or `message` (a delivery to one channel).
    pub kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub env: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<i64>,
    /// Messages: the channel, `sent` / `pending` / `retrying` / `failed`, attempts, the last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The newest `limit` lines of a rule's history, its firings and its messages together.
pub async fn timeline(state: &AppState, name: String, limit: usize) -> Result<Vec<Line>, ApiError> {
    let (alerts, outbox) = (state.alerts.clone(), state.outbox.clone());
    let read = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Line>> {
        let mut lines: Vec<Line> = alerts
            .history(&name, limit)?
            .into_iter()
            .map(|e| Line {
                at: e.at,
                kind: e.kind.as_str(),
                env: e.env,
                detail: e.detail,
                notification: e.notification,
                channel: None,
                outcome: None,
                attempts: None,
                error: None,
            })
            .collect();
        lines.extend(outbox.deliveries_of(&name, limit)?.into_iter().map(|d| Line {
            at: d.sent_at.unwrap_or(d.created_at),
            kind: MESSAGE,
            env: String::new(),
            detail: String::new(),
            notification: Some(d.notification_id),
            channel: Some(d.channel),
            outcome: Some(d.state.as_str()),
            attempts: Some(d.attempts),
            error: d.last_error,
        }));
        // Newest first; a message after the firing that made it.
        lines.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| (b.kind == MESSAGE).cmp(&(a.kind == MESSAGE))));
        lines.truncate(limit);
        Ok(lines)
    });
    Ok(read.await.map_err(|e| ApiError::Internal(e.into()))??)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snooze {
    until: Option<String>,
    minutes: Option<u64>,
}

/// `POST /api/v1/alerts/{name}/snooze` `{"until": RFC3339}` or `{"minutes": N}`.
pub async fn snooze(
    State(state): State<AppState>,
    _user: ApiUser,
    Path(name): Path<String>,
    Json(snooze): Json<Snooze>,
) -> Result<Json<Value>, ApiError> {
    known(&state, &name)?;
    let now = now_ms();
    let until = snooze_until(&snooze, now)?;
    change_snooze(&state, &name, Some(until), now).await?;
    let until = crate::event::from_unix_ms(until).map(timestamp_format::format);
    Ok(Json(json!({ "name": name, "state": "snoozed", "snoozed_until": until })))
}

/// `DELETE /api/v1/alerts/{name}/snooze`.
pub async fn unsnooze(
    State(state): State<AppState>,
    _user: ApiUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    known(&state, &name)?;
    change_snooze(&state, &name, None, now_ms()).await?;
    Ok(Json(json!({ "name": name, "snoozed_until": null })))
}

/// Snoozes rule `name` until `until_ms`, or ends its snooze (`None`); the API and the page both
/// come here. SQLite commits: off the async workers.
pub async fn change_snooze(state: &AppState, name: &str, until_ms: Option<i64>, now_ms: i64) -> Result<(), ApiError> {
    let (alerts, name) = (state.alerts.clone(), name.to_string());
    tokio::task::spawn_blocking(move || alerts.set_snooze(&name, until_ms, now_ms))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    Ok(())
}

/// When a snooze ends: exactly one of `until` (in the future) and `minutes` (1 to 90 days).
pub fn snooze_until(snooze: &Snooze, now_ms: i64) -> Result<i64, ApiError> {
    match (&snooze.until, snooze.minutes) {
        (Some(until), None) => {
            let until = timestamp_format::parse(until)
                .ok_or_else(|| ApiError::BadRequest(format!("`until` must be an RFC 3339 time, not `{until}`")))?;
            let until = unix_ms(until);
            if until <= now_ms {
                return Err(ApiError::BadRequest("`until` is in the past".into()));
            }
            if until - now_ms > minutes_to_ms(MAX_SNOOZE_MINUTES) {
                return Err(ApiError::BadRequest("`until` is more than 90 days away".into()));
            }
            Ok(until)
        }
        (None, Some(minutes)) if (1..=MAX_SNOOZE_MINUTES).contains(&minutes) => Ok(now_ms + minutes_to_ms(minutes)),
        (None, Some(_)) => Err(ApiError::BadRequest(format!("`minutes` must be between 1 and {MAX_SNOOZE_MINUTES}"))),
        _ => Err(ApiError::BadRequest("send either `until` (RFC 3339) or `minutes`".into())),
    }
}

impl Snooze {
    pub fn for_minutes(minutes: u64) -> Snooze {
        Snooze { until: None, minutes: Some(minutes) }
    }
}

fn minutes_to_ms(minutes: u64) -> i64 {
    i64::try_from(minutes.saturating_mul(60_000)).unwrap_or(i64::MAX)
}

fn known(state: &AppState, name: &str) -> Result<(), ApiError> {
    if state.alerts.has_rule(name) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no alert rule is named `{name}`")))
    }
}
