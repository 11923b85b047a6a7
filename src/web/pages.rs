//! The server-rendered dashboard: login, home, and the log page with its detail pane.
//! Handlers gather view data; all HTML is in `templates/` (askama escapes every value).

use askama::Template;
use axum::Form;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use ulid::Ulid;

use super::AppState;
use super::auth::{PageUser, clear_cookie, safe_next, session_cookie, session_token, urlencode};
use super::limits::{ClientIp, OverHttps};
use super::query::{DEFAULT_WINDOW, ReadParams};
use super::throttle::Refusal;
use crate::error::ApiError;
use crate::event::{Level, StoredEvent};
use crate::project::Projects;
use crate::store::{EventQuery, GroupKind};

/// Renders an askama template as an HTML response.
pub struct Page<T>(pub T);

impl<T: Template> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        match self.0.render() {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "template rendering failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    user: Option<String>,
    status: u16,
    message: String,
}

/// A failed page answers with an HTML page carrying the same message as the API would.
fn error_page(user: &str, error: ApiError) -> Response {
    let status = error.status();
    let message = match &error {
        ApiError::Internal(cause) => {
            tracing::error!(error = format!("{cause:#}"), "page failed");
            "Something went wrong on our side; the details are in the service's logs.".to_string()
        }
        other => other.to_string(),
    };
    (status, Page(ErrorPage { user: Some(user.to_string()), status: status.as_u16(), message })).into_response()
}

// ---------------------------------------------------------------- login

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    user: Option<String>,
    next: String,
    /// Why the last attempt failed: always the same words for a wrong name or password.
    alert: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn show_login(Query(query): Query<LoginQuery>) -> impl IntoResponse {
    Page(LoginPage { user: None, next: safe_next(query.next.as_deref()), alert: None })
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn log_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    OverHttps(https): OverHttps,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let (status, retry_after_secs, alert) = match state.auth.check_login(&form.username, &form.password, ip).await {
        Ok(true) => {
            let token = state.auth.start_session(&form.username);
            return ([(header::SET_COOKIE, session_cookie(&token, https))], Redirect::to(&next)).into_response();
        }
        // One message for an unknown user and a wrong password.
        Ok(false) => (StatusCode::UNAUTHORIZED, None, "Invalid username or password.".to_string()),
        Err(Refusal::TooMany { retry_after_secs }) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some(retry_after_secs),
            format!("Too many failed attempts. Try again in {} minutes.", retry_after_secs.div_ceil(60)),
        ),
        Err(Refusal::Busy { retry_after_secs }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(retry_after_secs),
            "Too many logins at once. Try again in a moment.".to_string(),
        ),
    };
    let page = Page(LoginPage { user: None, next, alert: Some(alert) });
    let mut response = (status, page).into_response();
    if let Some(secs) = retry_after_secs {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

pub async fn log_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        state.auth.end_session(&token);
    }
    ([(header::SET_COOKIE, clear_cookie())], Redirect::to("/login")).into_response()
}

// ---------------------------------------------------------------- home

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    user: Option<String>,
    cards: Vec<EnvCard>,
}

struct EnvCard {
    project: String,
    env: String,
    href: String,
    /// (level, count) for every level, in severity order.
    counts: Vec<(&'static str, u64)>,
    total: u64,
    capped: bool,
    error: Option<String>,
}

pub async fn show_home(State(state): State<AppState>, PageUser(user): PageUser) -> Response {
    let to = OffsetDateTime::now_utc();
    let from = to - DEFAULT_WINDOW;
    let mut cards = Vec::new();
    for project in state.projects.iter() {
        for env in &project.envs {
            let mut card = EnvCard {
                project: project.name.clone(),
                env: env.clone(),
                href: logs_href(&project.name, env, &[]),
                counts: Vec::new(),
                total: 0,
                capped: false,
                error: None,
            };
            match state.store.level_counts(&project.name, env, from, to).await {
                Ok(counts) => {
                    card.counts = Level::ALL.iter().map(|l| (l.as_str(), counts.get(*l))).collect();
                    card.total = counts.total();
                    card.capped = counts.capped;
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), project = %project.name, env = %env, "counting failed");
                    card.error = Some("counts unavailable".into());
                }
            }
            cards.push(card);
        }
    }
    Page(HomePage { user: Some(user), cards }).into_response()
}

// ---------------------------------------------------------------- logs

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    user: Option<String>,
    sidebar: Vec<SidebarProject>,
    groups: Vec<GroupLink>,
    project: String,
    env: String,
    group: String,
    from: String,
    to: String,
    q: String,
    levels: Vec<LevelChoice>,
    rows: Vec<Row>,
    older_href: Option<String>,
    newest_href: Option<String>,
    detail: Option<Detail>,
    detail_missing: bool,
    missing_close_href: String,
    /// Events CloudWatch refused after the 202, for this project/env (newest few).
    dead_letters: Vec<DeadRow>,
    dead_total: u64,
}

/// One dead letter as the logs page lists it.
struct DeadRow {
    dead_at: String,
    reason: String,
    message: String,
}

struct SidebarProject {
    name: String,
    envs: Vec<NavLink>,
}

struct NavLink {
    label: String,
    href: String,
    active: bool,
}

struct GroupLink {
    name: String,
    external: bool,
    href: String,
    active: bool,
}

struct LevelChoice {
    name: &'static str,
    checked: bool,
}

struct Row {
    time: String,
    level: &'static str,
    kind: String,
    message: String,
    status: String,
    url: String,
    href: String,
    selected: bool,
}

struct Detail {
    id: String,
    level: &'static str,
    message: String,
    /// (label, value) of every other field that is set.
    fields: Vec<(&'static str, String)>,
    stack: Option<String>,
    extra: Option<String>,
    close_href: String,
}

/// Longest message shown in a table row; the detail pane shows all of it.
const ROW_MESSAGE_CHARS: usize = 240;

pub async fn show_logs(State(state): State<AppState>, PageUser(user): PageUser, RawQuery(raw): RawQuery) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    // Checkboxes send one `level` per box; the API's form is one comma list.
    let levels: Vec<String> = pairs.iter().filter(|(k, _)| k == "level").map(|(_, v)| v.clone()).collect();
    let params = ReadParams {
        project: get("project"),
        env: get("env"),
        group: get("group"),
        from: get("from"),
        to: get("to"),
        level: Some(levels.join(",")),
        q: get("q"),
        limit: get("limit"),
        cursor: get("cursor"),
    };
    let Some(first) = state.projects.iter().next() else {
        return error_page(&user, ApiError::NotFound("no project is configured".into()));
    };
    if params.project.is_none() {
        return Redirect::to(&logs_href(&first.name, &first.envs[0], &[])).into_response();
    }
    let query = match params.to_query(&state.projects, OffsetDateTime::now_utc()) {
        Ok(query) => query,
        Err(e) => return error_page(&user, e),
    };
    match render_logs(&state, user.clone(), &query, &params, get("event")).await {
        Ok(page) => page.into_response(),
        Err(e) => error_page(&user, e),
    }
}

/// Dead letters listed under the events at most (the read API has them all).
const DEAD_LETTERS_ON_PAGE: usize = 20;

async fn render_logs(
    state: &AppState,
    user: String,
    query: &EventQuery<'_>,
    params: &ReadParams,
    selected: Option<String>,
) -> Result<Page<LogsPage>, ApiError> {
    let project = &query.project;
    let groups = state.store.groups(project, &query.env).await?;
    let page = state.store.events(query).await?;
    let dead = state.store.dead_letters(project, &query.env, DEAD_LETTERS_ON_PAGE).await?;

    // The filters as given, so every link keeps them.
    let filters: Vec<(&str, String)> = [
        ("group", params.group.clone()),
        ("from", params.from.clone()),
        ("to", params.to.clone()),
        ("level", params.level.clone()),
        ("q", params.q.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    let here = {
        let mut f = filters.clone();
        if let Some(cursor) = &params.cursor {
            f.push(("cursor", cursor.clone()));
        }
        f
    };

    let (detail, detail_missing) = match selected.as_deref() {
        None => (None, false),
        Some(id) => {
            let found = match Ulid::from_string(id) {
                Ok(id) => state.store.event(project, &query.env, query.group.as_deref(), id).await?,
                Err(_) => None,
            };
            (found.as_ref().map(|e| detail(e, logs_href(&project.name, &query.env, &here))), found.is_none())
        }
    };

    let rows = page
        .events
        .iter()
        .map(|e| {
            let mut link = here.clone();
            link.push(("event", e.id.to_string()));
            Row {
                time: display_time(e.timestamp),
                level: e.level.as_str(),
                kind: e.kind.clone().unwrap_or_default(),
                message: shorten(&e.message, ROW_MESSAGE_CHARS),
                status: e.http.as_ref().and_then(|h| h.status).map(|s| s.to_string()).unwrap_or_default(),
                url: e.url.clone().unwrap_or_default(),
                href: logs_href(&project.name, &query.env, &link),
                selected: selected.as_deref() == Some(e.id.to_string().as_str()),
            }
        })
        .collect();
    let older_href = page.next_cursor.map(|cursor| {
        let mut f = filters.clone();
        f.push(("cursor", cursor.encode()));
        logs_href(&project.name, &query.env, &f)
    });
    let newest_href = params.cursor.is_some().then(|| logs_href(&project.name, &query.env, &filters));

    let active_group = query.group.clone().unwrap_or_else(|| project.own_group(&query.env).to_string());
    let group_links = groups
        .iter()
        .map(|g| {
            let mut f: Vec<(&str, String)> = filters.iter().filter(|(k, _)| *k != "group").cloned().collect();
            if g.kind == GroupKind::External {
                f.push(("group", g.name.clone()));
            }
            GroupLink {
                name: g.name.clone(),
                external: g.kind == GroupKind::External,
                href: logs_href(&project.name, &query.env, &f),
                active: g.name == active_group,
            }
        })
        .collect();

    Ok(Page(LogsPage {
        user: Some(user),
        sidebar: sidebar(&state.projects, &project.name, &query.env),
        groups: group_links,
        project: project.name.clone(),
        env: query.env.clone(),
        group: query.group.clone().unwrap_or_default(),
        // Only what the user typed: an empty field keeps meaning "the last 24 h up to now".
        from: params.from.as_ref().map(|_| input_time(query.from)).unwrap_or_default(),
        to: params.to.as_ref().map(|_| input_time(query.to)).unwrap_or_default(),
        q: query.text.clone().unwrap_or_default(),
        levels: Level::ALL
            .iter()
            .map(|l| LevelChoice { name: l.as_str(), checked: query.levels.contains(l) })
            .collect(),
        rows,
        older_href,
        newest_href,
        detail,
        detail_missing,
        missing_close_href: logs_href(&project.name, &query.env, &here),
        dead_total: dead.total,
        dead_letters: dead
            .dead_letters
            .into_iter()
            .map(|d| DeadRow {
                dead_at: d.dead_at,
                message: d.event.map(|e| e.message).or(d.message).unwrap_or_default(),
                reason: if d.detail.is_empty() { d.reason } else { format!("{}: {}", d.reason, d.detail) },
            })
            .collect(),
    }))
}

fn sidebar(projects: &Projects, active_project: &str, active_env: &str) -> Vec<SidebarProject> {
    projects
        .iter()
        .map(|p| SidebarProject {
            name: p.name.clone(),
            envs: p
                .envs
                .iter()
                .map(|env| NavLink {
                    label: env.clone(),
                    href: logs_href(&p.name, env, &[]),
                    active: p.name == active_project && env == active_env,
                })
                .collect(),
        })
        .collect()
}

fn detail(e: &StoredEvent, close_href: String) -> Detail {
    let mut fields: Vec<(&'static str, String)> = vec![
        ("Time", display_time(e.timestamp)),
        ("Received", display_time(e.received_at)),
        ("Project", e.project.clone()),
        ("Environment", e.env.clone()),
    ];
    let optional = [
        ("Type", e.kind.clone()),
        ("Code", e.code.clone()),
        ("HTTP method", e.http.as_ref().and_then(|h| h.method.clone())),
        ("HTTP status", e.http.as_ref().and_then(|h| h.status).map(|s| s.to_string())),
        ("URL", e.url.clone()),
        ("Location", e.location.clone()),
        ("User", e.user.as_ref().map(|u| u.as_str().map(str::to_string).unwrap_or_else(|| u.to_string()))),
        ("Release", e.release.clone()),
        ("Fingerprint", e.fingerprint.clone()),
    ];
    fields.extend(optional.into_iter().filter_map(|(label, value)| value.map(|v| (label, v))));
    Detail {
        id: e.id.to_string(),
        level: e.level.as_str(),
        message: e.message.clone(),
        fields,
        stack: e.stack.clone(),
        extra: e.extra.as_ref().and_then(|x| serde_json::to_string_pretty(x).ok()),
        close_href,
    }
}

/// `/logs?project=P&env=E&k=v...`, every value percent-encoded.
pub fn logs_href(project: &str, env: &str, params: &[(&str, String)]) -> String {
    let mut href = format!("/logs?project={}&env={}", urlencode(project), urlencode(env));
    for (key, value) in params {
        href.push_str(&format!("&{key}={}", urlencode(value)));
    }
    href
}

/// Every time on the dashboard is shown in UTC, labelled as such.
fn display_time(t: OffsetDateTime) -> String {
    let ms = t.millisecond();
    format!("{} {:02}:{:02}:{:02}.{ms:03}", t.date(), t.hour(), t.minute(), t.second())
}

/// The value of a time filter field (UTC, to the minute), as `parse_time` reads it back.
fn input_time(t: OffsetDateTime) -> String {
    format!("{} {:02}:{:02}", t.date(), t.hour(), t.minute())
}

fn shorten(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None if line.len() < text.len() => format!("{line} …"),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_show_in_utc_with_milliseconds() {
        let t = datetime!(2026-11-24 23:04:05.007 +09:00);
        assert_eq!(display_time(t.to_offset(time::UtcOffset::UTC)), "2026-11-24 14:04:05.007");
        assert_eq!(input_time(datetime!(2026-11-24 14:04:05 UTC)), "2026-11-24 14:04");
    }

    #[test]
    fn long_and_multi_line_messages_are_shortened_for_the_table() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("first line\nsecond", 20), "first line …");
        assert_eq!(shorten("ääääää", 3), "äää…");
    }

    #[test]
    fn links_encode_every_value() {
        assert_eq!(logs_href("demo", "dev", &[("q", "a&b c".into())]), "/logs?project=demo&env=dev&q=a%26b%20c");
    }
}
