//! The saved searches API (`../shared/spec/ui.md`): create, list, delete. Like issue status and
//! snoozes it needs an [`ApiUser`], and its writes are behind the cross-site guard (a page of
//! another site cannot save or delete with a user's session). [`checked`] is the one validation,
//! which the logs page's form shares.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::AppState;
use super::auth::ApiUser;
use super::error::ApiError;
use super::query::{parse_time, project_env};
use crate::event::{new_id, unix_ms};
use crate::search::Query as SearchQuery;
use crate::searches::{MAX_TIME_CHARS, SavedSearch, clean_name};

/// A search to save, as the API's body and the page's form give it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSearch {
    pub name: Option<String>,
    pub project: Option<String>,
    pub env: Option<String>,
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The search to save, checked: a known project and env (else 400 or 404 as every read says),
/// a name within its bounds, a query that parses (its error as the searches give it), times
/// that read (kept as written: `now-24h` stays relative).
pub fn checked(state: &AppState, new: NewSearch) -> Result<SavedSearch, ApiError> {
    let (project, env) = project_env(&state.projects, new.project.as_deref(), new.env.as_deref())?;
    let name = clean_name(new.name.as_deref().unwrap_or("")).map_err(ApiError::BadRequest)?;
    let q = new.q.unwrap_or_default().trim().to_string();
    SearchQuery::parse(&q).map_err(ApiError::BadQuery)?;
    let now = OffsetDateTime::now_utc();
    let time = |key: &str, text: Option<String>| -> Result<Option<String>, ApiError> {
        let Some(text) = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) else { return Ok(None) };
        if text.chars().nth(MAX_TIME_CHARS).is_some() {
            return Err(ApiError::BadRequest(format!("`{key}` is longer than {MAX_TIME_CHARS} characters")));
        }
        parse_time(key, &text, now, &state.zone)?;
        Ok(Some(text))
    };
    let (from, to) = (time("from", new.from)?, time("to", new.to)?);
    Ok(SavedSearch {
        id: new_id(now).to_string(),
        name,
        project: project.name.clone(),
        env,
        q,
        from,
        to,
        created_ms: unix_ms(now),
    })
}

/// Saves `search`: a name taken or a full project is a 409.
pub async fn save(state: &AppState, search: SavedSearch) -> Result<SavedSearch, ApiError> {
    state.searches.create(search).await?.map_err(|refused| ApiError::Conflict(refused.to_string()))
}

/// `POST /api/v1/searches` `{"name", "project", "env", "q", "from", "to"}` → 201 with the search.
pub async fn create_search(
    State(state): State<AppState>,
    _user: ApiUser,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new: NewSearch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a search to save: {e}")))?;
    let saved = save(&state, checked(&state, new)?).await?;
    Ok((StatusCode::CREATED, Json(json!(saved))))
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    project: Option<String>,
}

/// `GET /api/v1/searches[?project=P]`: the project's saved searches, or every project's.
pub async fn list_searches(
    State(state): State<AppState>,
    _user: ApiUser,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let project = match params.project.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(name) => {
            Some(&state.projects.get(name).ok_or_else(|| ApiError::NotFound(format!("no project `{name}`")))?.name)
        }
    };
    let searches = state.searches.list(project.map(String::as_str)).await?;
    Ok(Json(json!({ "searches": searches })))
}

/// `DELETE /api/v1/searches/{id}` → 204, or 404.
pub async fn delete_search(
    State(state): State<AppState>,
    _user: ApiUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.searches.delete(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no saved search `{id}`")))
    }
}
