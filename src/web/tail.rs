//! `GET /api/v1/tail?project=P&env=E[&level=L,L][&q=QUERY]`: the live tail (`crate::tail`) as
//! Server-Sent Events, one `data:` line of stored-event JSON (as the read API gives it) per new
//! event that matches. A watcher that fell behind gets an `event: skipped` whose data is
//! `{"skipped": N}`; past `server.max_tail_watchers` streams the answer is 503 at once. A comment
//! every [`KEEP_ALIVE`] keeps proxies from closing an idle stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::ApiUser;
use super::error::ApiError;
use super::query::{parse_levels, project_env};
use crate::search;
use crate::tail::{Filter, Item, Watcher};

/// How often an idle stream gets a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// What a refused watcher is asked to wait.
const BUSY_RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Deserialize)]
pub struct TailParams {
    project: Option<String>,
    env: Option<String>,
    level: Option<String>,
    q: Option<String>,
}

/// `GET /api/v1/tail`: the stream of new events of a project/env that match `level` and `q`.
pub async fn tail_events(
    State(state): State<AppState>,
    _user: ApiUser,
    Query(params): Query<TailParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (project, env) = project_env(&state.projects, params.project.as_deref(), params.env.as_deref())?;
    let filter = Filter {
        project: project.name.clone(),
        group: project.own_group(&env).to_string(),
        env,
        levels: parse_levels(params.level.as_deref())?,
        search: search::Query::parse(params.q.as_deref().unwrap_or("")).map_err(ApiError::BadQuery)?,
    };
    let place = state.tail.admit().ok_or_else(|| ApiError::Unavailable {
        message: "too many live tails are open; try again later".into(),
        retry_after_secs: BUSY_RETRY_AFTER_SECS,
    })?;
    let watcher = state.tail.watcher(place, filter);
    // A first comment, so the client sees the stream open before any event.
    let opened = stream::once(async { Ok(Event::default().comment("live")) });
    let events = stream::unfold(watcher, next_event);
    Ok(Sse::new(opened.chain(events)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// The next SSE event, for [`stream::unfold`].
async fn next_event(mut watcher: Watcher) -> Option<(Result<Event, Infallible>, Watcher)> {
    let event = match watcher.next_item().await? {
        Item::Event(published) => Event::default().data(&published.json),
        Item::Skipped(skipped) => Event::default().event("skipped").data(json!({ "skipped": skipped }).to_string()),
    };
    Some((Ok(event), watcher))
}
