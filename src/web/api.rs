//! The JSON read API: projects, groups, events, one event and its context. Every handler needs
//! an [`ApiUser`].

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use ulid::Ulid;

use super::AppState;
use super::auth::ApiUser;
use super::error::ApiError;
use super::query::{ReadParams, project_env};
use crate::event::{StoredEvent, unix_ms};
use crate::issues::{Sort, Status};
use crate::sourcemaps::Shown;
use crate::store::context::{Around, Context, DEFAULT_AROUND, MAX_AROUND};
use crate::store::histogram::{Buckets, HistogramAnswer};
use crate::store::{DeadLetters, EventPage, Group};

#[derive(Debug, Serialize)]
pub struct ProjectSummary<'a> {
    name: &'a str,
    envs: &'a [String],
    /// The project's Sentry DSN, where it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    dsn: Option<String>,
}

pub async fn list_projects(State(state): State<AppState>, _user: ApiUser) -> Json<Value> {
    let public_url = state.config.public_url();
    let projects: Vec<ProjectSummary<'_>> = state
        .projects
        .iter()
        .map(|p| ProjectSummary { name: &p.name, envs: &p.envs, dsn: p.dsn(&public_url) })
        .collect();
    Json(json!({ "projects": projects }))
}

#[derive(Debug, Deserialize)]
pub struct GroupParams {
    project: Option<String>,
    env: Option<String>,
}

pub async fn list_groups(
    State(state): State<AppState>,
    _user: ApiUser,
    Query(params): Query<GroupParams>,
) -> Result<Json<Value>, ApiError> {
    let (project, env) = project_env(&state.projects, params.project.as_deref(), params.env.as_deref())?;
    let groups: Vec<Group> = state.store.groups(project, &env).await?;
    Ok(Json(json!({ "groups": groups })))
}

pub async fn list_events(
    State(state): State<AppState>,
    _user: ApiUser,
    Query(params): Query<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    let query = params.to_query(&state.projects, OffsetDateTime::now_utc())?;
    let page: EventPage = state.store.events(&query).await?;
    let mapped = state.sourcemaps.apply(&page.events, false).await;
    let events: Vec<Shown<'_>> = page.events.iter().zip(&mapped).map(|(e, m)| Shown::new(e, m.as_ref())).collect();
    let mut answer = json!({ "events": events, "next_cursor": page.next_cursor.map(|c| c.encode()) });
    if let Some(searched_from) = page.searched_from {
        answer["searched_from"] = Value::String(searched_from);
    }
    Ok(Json(answer))
}

/// `GET /api/v1/histogram?project=P&env=E[&group][&from][&to][&level][&q]`: the query's events
/// per level over time, in 30 to 120 round buckets.
pub async fn show_histogram(
    State(state): State<AppState>,
    _user: ApiUser,
    Query(params): Query<ReadParams>,
) -> Result<Json<HistogramAnswer>, ApiError> {
    let query = params.to_query(&state.projects, OffsetDateTime::now_utc())?;
    let histogram = state.store.histogram(&query, Buckets::for_range(query.from, query.to)).await?;
    Ok(Json(histogram.to_answer()))
}

#[derive(Debug, Deserialize)]
pub struct EventParams {
    project: Option<String>,
    env: Option<String>,
    group: Option<String>,
}

pub async fn get_event(
    State(state): State<AppState>,
    _user: ApiUser,
    Path(id): Path<String>,
    Query(params): Query<EventParams>,
) -> Result<Json<Value>, ApiError> {
    let (project, env) = project_env(&state.projects, params.project.as_deref(), params.env.as_deref())?;
    let id = Ulid::from_string(&id).map_err(|_| ApiError::NotFound(format!("no event `{id}`")))?;
    let group = params.group.as_deref().filter(|g| !g.is_empty());
    let event = state
        .store
        .event(project, &env, group, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event `{id}` in {}/{env}", project.name)))?;
    let events = [event];
    let mapped = state.sourcemaps.apply(&events, false).await;
    Ok(Json(json!(Shown::new(&events[0], mapped[0].as_ref()))))
}

#[derive(Debug, Deserialize)]
pub struct ContextParams {
    project: Option<String>,
    env: Option<String>,
    group: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// `GET /api/v1/events/{id}/context?project=P&env=E[&group=G][&before=N][&after=N]`: the event
/// with the events just before and after it in its group (a Lambda group: its stream).
pub async fn show_context(
    State(state): State<AppState>,
    _user: ApiUser,
    Path(id): Path<String>,
    Query(params): Query<ContextParams>,
) -> Result<Json<Value>, ApiError> {
    let (project, env) = project_env(&state.projects, params.project.as_deref(), params.env.as_deref())?;
    let around = Around {
        before: around_count("before", params.before.as_deref())?,
        after: around_count("after", params.after.as_deref())?,
    };
    let id = Ulid::from_string(&id).map_err(|_| ApiError::NotFound(format!("no event `{id}`")))?;
    let group = params.group.as_deref().filter(|g| !g.is_empty());
    let context = state
        .store
        .context(project, &env, group, id, around)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event `{id}` in {}/{env}", project.name)))?;
    let Context { before, event, after } = context;
    let before_count = before.len();
    let events: Vec<StoredEvent> = before.into_iter().chain([event]).chain(after).collect();
    let mapped = state.sourcemaps.apply(&events, false).await;
    let shown: Vec<Shown<'_>> = events.iter().zip(&mapped).map(|(e, m)| Shown::new(e, m.as_ref())).collect();
    let (before, rest) = shown.split_at(before_count);
    let (event, after) =
        rest.split_first().ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a context without its event")))?;
    Ok(Json(json!({ "before": before, "event": event, "after": after })))
}

/// `before` or `after`: a number from 0 to [`MAX_AROUND`], [`DEFAULT_AROUND`] when not given.
pub fn around_count(key: &str, text: Option<&str>) -> Result<usize, ApiError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(DEFAULT_AROUND),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n <= MAX_AROUND => Ok(n),
            _ => Err(ApiError::BadRequest(format!("`{key}` must be a number from 0 to {MAX_AROUND}, not `{text}`"))),
        },
    }
}

/// Dead letters shown per request at most.
const MAX_DEAD_LETTERS_SHOWN: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct DeadLetterParams {
    project: Option<String>,
    env: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/deadletters?project=P&env=E`: events CloudWatch refused after the 202.
pub async fn list_dead_letters(
    State(state): State<AppState>,
    _user: ApiUser,
    Query(params): Query<DeadLetterParams>,
) -> Result<Json<DeadLetters>, ApiError> {
    let (project, env) = project_env(&state.projects, params.project.as_deref(), params.env.as_deref())?;
    let limit = params.limit.unwrap_or(100).clamp(1, MAX_DEAD_LETTERS_SHOWN);
    Ok(Json(state.store.dead_letters(project, &env, limit).await?))
}

#[derive(Debug, Default, Deserialize)]
pub struct IssueParams {
    #[serde(flatten)]
    read: ReadParams,
    sort: Option<String>,
}

/// `GET /api/v1/issues?project=P&env=E[&from][&to][&q][&sort]`: the errors seen in the range,
/// grouped by fingerprint, from the issue index; `q` is tested on each issue's latest occurrence
/// as the index keeps it (message, type, level, id, fingerprint).
pub async fn list_issues(
    State(state): State<AppState>,
    _user: ApiUser,
    Query(params): Query<IssueParams>,
) -> Result<Json<Value>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let query = params.read.to_query(&state.projects, now)?;
    let sort = match params.sort.as_deref().filter(|s| !s.is_empty()) {
        None => Sort::LastSeen,
        Some(text) => Sort::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!("`sort` must be last_seen, first_seen, count or users, not `{text}`"))
        })?,
    };
    let range = (unix_ms(query.from), unix_ms(query.to));
    let at = (query.project.name.as_str(), query.env.as_str(), query.project.own_group(&query.env));
    let issues = state.issues.list(at, range, &query.search, sort, unix_ms(now)).await?;
    Ok(Json(json!({ "issues": issues })))
}

#[derive(Debug, Deserialize)]
pub struct StatusChange {
    project: Option<String>,
    env: Option<String>,
    status: Option<String>,
}

/// `POST /api/v1/issues/{fingerprint}/status` `{"project", "env", "status"}`: resolve, ignore or
/// reopen an issue.
pub async fn set_issue_status(
    State(state): State<AppState>,
    _user: ApiUser,
    Path(fingerprint): Path<String>,
    Json(change): Json<StatusChange>,
) -> Result<Json<Value>, ApiError> {
    let (project, env) = project_env(&state.projects, change.project.as_deref(), change.env.as_deref())?;
    let text = change.status.unwrap_or_default();
    let status = Status::settable(&text)
        .ok_or_else(|| ApiError::BadRequest(format!("`status` must be resolved, ignored or ongoing, not `{text}`")))?;
    let now = unix_ms(OffsetDateTime::now_utc());
    if !state.issues.set_status(&project.name, &env, &fingerprint, status, now).await? {
        return Err(ApiError::NotFound(format!("no issue `{fingerprint}` in {}/{env}", project.name)));
    }
    Ok(Json(json!({ "fingerprint": fingerprint, "status": status })))
}
