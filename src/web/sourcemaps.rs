//! `/api/v1/sourcemaps`: upload (`PUT …/{project}/{release}/{file}`, a CI job's `curl -T`), list
//! and delete source maps. Auth as the read API (a session, Basic, or an API token); the body is
//! read up to `sourcemaps.max_bytes` (413 past it).

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::ApiUser;
use super::error::ApiError;
use crate::sourcemaps::{Key, UploadError, Uploaded};

/// `PUT /api/v1/sourcemaps/{project}/{release}/{file}`: 201 when new, 200 when replaced.
pub async fn upload_sourcemap(
    State(state): State<AppState>,
    _user: ApiUser,
    Path((project, release, file)): Path<(String, String, String)>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = key(&state, project, release, file)?;
    let limit = usize::try_from(state.sourcemaps.max_bytes()).unwrap_or(usize::MAX);
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("the map is over sourcemaps.max_bytes ({limit} bytes)")))?;
    let size = bytes.len();
    let uploaded = state.sourcemaps.upload(key.clone(), bytes.to_vec()).await.map_err(|error| match error {
        UploadError::NotASourceMap(why) => ApiError::BadRequest(why.to_string()),
        UploadError::BadName(why) => ApiError::BadRequest(why),
        UploadError::TooLarge(why) => ApiError::PayloadTooLarge(why),
        UploadError::Store(error) => ApiError::Internal(error),
    })?;
    let status = match uploaded {
        Uploaded::Created => StatusCode::CREATED,
        Uploaded::Replaced => StatusCode::OK,
    };
    let answer = json!({"project": key.project, "release": key.release, "name": key.file, "size": size});
    Ok((status, Json(answer)))
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    project: Option<String>,
    release: Option<String>,
}

/// `GET /api/v1/sourcemaps?project=P&release=R` → `{"files": [{"name", "size", "uploaded_at"}]}`.
pub async fn list_sourcemaps(
    State(state): State<AppState>,
    _user: ApiUser,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let project = params.project.unwrap_or_default();
    let release = params.release.filter(|r| !r.is_empty()).ok_or_else(|| bad("`release` is required"))?;
    let project = state.projects.get(&project).ok_or_else(|| ApiError::NotFound(format!("no project `{project}`")))?;
    let files = state.sourcemaps.list(&project.name, &release).await?;
    Ok(Json(json!({ "files": files })))
}

/// `DELETE /api/v1/sourcemaps/{project}/{release}/{file}`: 204, or 404 when there is none.
pub async fn delete_sourcemap(
    State(state): State<AppState>,
    _user: ApiUser,
    Path((project, release, file)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let key = key(&state, project, release, file)?;
    if state.sourcemaps.delete(&key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no map `{}` for release `{}` of `{}`", key.file, key.release, key.project)))
    }
}

fn key(state: &AppState, project: String, release: String, file: String) -> Result<Key, ApiError> {
    if state.projects.get(&project).is_none() {
        return Err(ApiError::NotFound(format!("no project `{project}`")));
    }
    Ok(Key { project, release, file })
}

fn bad(message: &str) -> ApiError {
    ApiError::BadRequest(message.into())
}
