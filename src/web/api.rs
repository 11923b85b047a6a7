//! The JSON read API: projects, groups, events, one event. Every handler needs an [`ApiUser`].

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use ulid::Ulid;

use super::AppState;
use super::auth::ApiUser;
use super::query::{ReadParams, project_env};
use crate::error::ApiError;
use crate::event::StoredEvent;
use crate::store::histogram::{Buckets, HistogramAnswer};
use crate::store::{DeadLetters, EventPage, Group};

#[derive(Debug, Serialize)]
pub struct ProjectSummary<'a> {
    name: &'a str,
    envs: &'a [String],
}

pub async fn list_projects(State(state): State<AppState>, _user: ApiUser) -> Json<Value> {
    let projects: Vec<ProjectSummary<'_>> =
        state.projects.iter().map(|p| ProjectSummary { name: &p.name, envs: &p.envs }).collect();
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
) -> Result<Json<EventPage>, ApiError> {
    let query = params.to_query(&state.projects, OffsetDateTime::now_utc())?;
    Ok(Json(state.store.events(&query).await?))
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
) -> Result<Json<StoredEvent>, ApiError> {
    let (project, env) = project_env(&state.projects, params.project.as_deref(), params.env.as_deref())?;
    let id = Ulid::from_string(&id).map_err(|_| ApiError::NotFound(format!("no event `{id}`")))?;
    let group = params.group.as_deref().filter(|g| !g.is_empty());
    state
        .store
        .event(project, &env, group, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no event `{id}` in {}/{env}", project.name)))
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
