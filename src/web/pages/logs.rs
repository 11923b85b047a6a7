//! The logs page: sidebar, groups, filters, the project's saved searches, the table with paging
//! (or one event's context, `around=`), the detail pane of one event (`event=`, its permanent
//! link), and the dead letters. [`show_logs`] gathers the data; [`logs_view`] builds the page from it.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use time::OffsetDateTime;
use ulid::Ulid;

use super::chart::{Chart, chart};
use super::highlight::mark;
use super::{Page, error_page, href, issues, logs_href, shorten};
use crate::event::{Level, StoredEvent, timestamp_format, unix_ms};
use crate::issues::Issue;
use crate::project::Projects;
use crate::searches::SavedSearch;
use crate::sourcemaps::{Mapped, MappedLine};
use crate::store::context::{Around, Context};
use crate::store::histogram::{Buckets, Histogram};
use crate::store::{DeadLetters, EventPage, EventQuery, Group, GroupKind};
use crate::web::AppState;
use crate::web::auth::PageUser;
use crate::web::error::ApiError;
use crate::web::query::{DEFAULT_WINDOW, ReadParams};
use crate::zone::Zone;

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    user: Option<String>,
    /// The zone of every time on the page, named on it: `Asia/Seoul (UTC+09:00)`.
    zone: String,
    /// Its IANA name alone, for the field labels.
    zone_name: String,
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
    /// The store searched only back to this time for this page (CloudWatch's call budget);
    /// `older_href` continues.
    searched_from: Option<String>,
    detail: Option<Detail>,
    detail_missing: bool,
    missing_close_href: String,
    /// Why the search does not parse, and where: shown under the search box, which keeps the text.
    query_error: Option<String>,
    /// Events over time, stacked by level; each bar narrows the range to itself.
    chart: Chart,
    /// The whole result of the filters, as files.
    export_csv_href: String,
    export_ndjson_href: String,
    /// Events CloudWatch refused after the 202, for this project/env (newest few).
    dead_letters: Vec<DeadRow>,
    dead_total: u64,
    /// Live mode (`live=1`): `static/live.js` adds new events on top of the table.
    live: bool,
    /// This page in live mode, when it can be: not on an external group (the tail carries what
    /// logboard ingests).
    live_href: Option<String>,
    /// This page without live mode.
    still_href: String,
    /// The tail of the selection (`/api/v1/tail` with its level and query).
    tail_src: String,
    /// A row's link without its `event=`, which the script appends.
    row_href: String,
    /// The query's words to mark (JSON array), for the rows the script adds.
    marks: String,
    /// `around=`: the id of the event whose context the table shows.
    around: Option<String>,
    /// The project's saved searches, as links to the logs page.
    saved: Vec<SavedLink>,
    /// `from` and `to` as the address has them, for "Save this search".
    save_from: String,
    save_to: String,
}

/// A saved search as the logs page links it.
struct SavedLink {
    name: String,
    href: String,
}

/// One dead letter as the logs page lists it.
struct DeadRow {
    dead_at: String,
    reason: String,
    message: String,
}

struct SidebarProject {
    name: String,
    /// logboard's own (the canary's), marked as such.
    internal: bool,
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
    /// The event's id: for the keyboard's context key (`static/keys.js`) and the context's anchor.
    id: String,
    time: String,
    level: &'static str,
    kind: String,
    /// The message's first line, shortened, in runs: those matching the query's words marked.
    message_marked: Vec<(String, bool)>,
    status: String,
    url: String,
    href: String,
    selected: bool,
    /// The event a context (`around=`) is shown for: marked, and the target of the link's fragment.
    current: bool,
}

struct Detail {
    id: String,
    level: &'static str,
    /// The heading: the message's first line, shortened.
    title: String,
    /// The whole message, below the heading, when the title is not all of it.
    message: Option<String>,
    /// (label, value) of every other field that is set.
    fields: Vec<(&'static str, String)>,
    stack: Option<String>,
    extra: Option<String>,
    close_href: String,
    /// The event on its own, whatever the range and query (`event=`).
    permalink: String,
    /// The table of the events around it in its group (`around=`), scrolled to it.
    context_href: String,
    /// The issue of an error or fatal event, as the issue index has it.
    issue: Option<DetailIssue>,
    /// The stack through its source maps (the raw one is then behind a toggle).
    original: Option<Vec<MappedLine>>,
}

impl Detail {
    /// The originals of the stack and the location, shown first.
    fn add_original(&mut self, mapped: &Mapped) {
        if let Some(location) = &mapped.location_original {
            let at =
                self.fields.iter().position(|(label, _)| *label == "Location").map_or(self.fields.len(), |i| i + 1);
            self.fields.insert(at, ("Location (original)", location.clone()));
        }
        if mapped.stack_original.is_some() {
            self.original = Some(mapped.lines.clone());
        }
    }
}

/// An event's issue in the detail pane, with links to its row on the issues page and to all
/// its events (the links the issues page has).
struct DetailIssue {
    status: &'static str,
    /// Events over the last 24 h.
    count: u64,
    first_seen: String,
    last_seen: String,
    href: String,
    events_href: String,
}

/// Longest message shown in a table row; the detail pane shows all of it.
const ROW_MESSAGE_CHARS: usize = 240;
/// Longest heading of the detail pane (the style sheet also clamps it to three lines).
const TITLE_CHARS: usize = 160;

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
    let now = OffsetDateTime::now_utc();
    let (query, query_error) = match params.to_query_in(&state.projects, now, &state.zone) {
        Ok(query) => (query, None),
        // The page stays, with the search as typed and the error under it; no rows.
        Err(ApiError::BadQuery(error)) => {
            let without_q = ReadParams { q: None, ..params.clone() };
            match without_q.to_query_in(&state.projects, now, &state.zone) {
                Ok(query) => (query, Some(error)),
                Err(e) => return error_page(&user, e),
            }
        }
        Err(e) => return error_page(&user, e),
    };
    let data = match &query_error {
        None => fetch(&state, &query, get("event"), get("around")).await,
        Some(_) => fetch_groups(&state, &query).await,
    };
    match data {
        Ok(data) => {
            let mut page = logs_view(user, &state.projects, &query, &params, data, &state.zone);
            page.live = get("live").is_some_and(|v| v == "1") && page.live_href.is_some() && query_error.is_none();
            page.query_error = query_error.map(|e| format!("{} (at character {})", e.message, e.position + 1));
            Page(page).into_response()
        }
        Err(e) => error_page(&user, e),
    }
}

/// Dead letters listed under the events at most (the read API has them all).
const DEAD_LETTERS_ON_PAGE: usize = 20;

/// What the logs page shows, as read from the store.
struct LogsData {
    groups: Vec<Group>,
    histogram: Histogram,
    page: EventPage,
    dead: DeadLetters,
    /// The id asked for in `event=`, and the event when it was found.
    selected: Option<(String, Option<StoredEvent>)>,
    /// The selected event's issue, when it is an error with one (counted over the last 24 h).
    issue: Option<Issue>,
    /// The selected event's stack and location through its source maps, when one applies.
    mapped: Option<Mapped>,
    /// `around=`: the event whose context the table shows instead of the query's page.
    around: Option<Ulid>,
    /// The project's saved searches.
    saved: Vec<SavedSearch>,
}

async fn fetch(
    state: &AppState,
    query: &EventQuery<'_>,
    selected: Option<String>,
    around: Option<String>,
) -> Result<LogsData, ApiError> {
    let project = query.project;
    let groups = state.store.groups(project, &query.env).await?;
    let buckets = Buckets::for_range(query.from, query.to);
    let (page, histogram, around) = match around {
        // The page and the chart read side by side: each may take a search's time.
        None => {
            let (page, histogram) = tokio::try_join!(state.store.events(query), state.store.histogram(query, buckets))?;
            (page, histogram, None)
        }
        Some(id) => {
            let (page, id) = context_page(state, query, &id).await?;
            (page, state.store.histogram(query, buckets).await?, Some(id))
        }
    };
    let dead = state.store.dead_letters(project, &query.env, DEAD_LETTERS_ON_PAGE).await?;
    let selected = match selected {
        None => None,
        Some(id) => {
            let found = match Ulid::from_string(&id) {
                Ok(ulid) => state.store.event(project, &query.env, query.group.as_deref(), ulid).await?,
                Err(_) => None,
            };
            Some((id, found))
        }
    };
    let (issue, mapped) = match selected.as_ref().and_then(|(_, found)| found.as_ref()) {
        Some(event) => {
            let mapped = state.sourcemaps.apply(std::slice::from_ref(event), true).await.pop().flatten();
            (issue_of(state, event).await, mapped)
        }
        None => (None, None),
    };
    let saved = saved_searches(state, query).await;
    Ok(LogsData { groups, histogram, page, dead, selected, issue, mapped, around, saved })
}

/// The table of `around=<id>`: the event and [`crate::store::context::DEFAULT_AROUND`] events each side of it in its
/// group, newest first like every page of the table.
async fn context_page(state: &AppState, query: &EventQuery<'_>, id: &str) -> Result<(EventPage, Ulid), ApiError> {
    let missing = || ApiError::NotFound(format!("no event `{id}` in {}/{}", query.project.name, query.env));
    let ulid = Ulid::from_string(id).map_err(|_| missing())?;
    let Context { before, event, after } = state
        .store
        .context(query.project, &query.env, query.group.as_deref(), ulid, Around::default())
        .await?
        .ok_or_else(missing)?;
    let mut events: Vec<StoredEvent> = before.into_iter().chain([event]).chain(after).collect();
    events.reverse();
    Ok((EventPage { events, next_cursor: None, searched_from: None }, ulid))
}

/// The project's saved searches; the page goes without them when the store cannot say.
async fn saved_searches(state: &AppState, query: &EventQuery<'_>) -> Vec<SavedSearch> {
    match state.searches.list(Some(&query.project.name)).await {
        Ok(saved) => saved,
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "reading the saved searches for the logs page");
            Vec::new()
        }
    }
}

/// The issue of an error or fatal event, counted over the last 24 h as the issues page counts
/// it. The pane goes without it when the index cannot say.
async fn issue_of(state: &AppState, event: &StoredEvent) -> Option<Issue> {
    let fingerprint = event.fingerprint.as_deref().filter(|_| event.level >= Level::Error)?;
    let now = OffsetDateTime::now_utc();
    let range = (unix_ms(now - DEFAULT_WINDOW), unix_ms(now));
    match state.issues.get((&event.project, &event.env), fingerprint, range, unix_ms(now)).await {
        Ok(issue) => issue,
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "reading an event's issue for the logs page");
            None
        }
    }
}

/// Only the groups: what the page needs around a search that does not parse.
async fn fetch_groups(state: &AppState, query: &EventQuery<'_>) -> Result<LogsData, ApiError> {
    let groups = state.store.groups(query.project, &query.env).await?;
    let histogram = Histogram::empty(Buckets::for_range(query.from, query.to));
    let (page, dead) = (EventPage::default(), DeadLetters::default());
    let (selected, issue, mapped, around, saved) = (None, None, None, None, saved_searches(state, query).await);
    Ok(LogsData { groups, histogram, page, dead, selected, issue, mapped, around, saved })
}

/// The page, from the query, the parameters as given (every link keeps them) and the data, with
/// its times on `zone`'s clock.
fn logs_view(
    user: String,
    projects: &Projects,
    query: &EventQuery<'_>,
    params: &ReadParams,
    data: LogsData,
    zone: &Zone,
) -> LogsPage {
    let LogsData { groups, histogram, page, dead, selected, issue, mapped, around, saved } = data;
    let project = query.project;
    // The filters as given, so every link keeps them; a time typed on the zone's clock is pinned
    // to the instant it was read as, since the export links go to the API, which reads UTC.
    let filters: Vec<(&str, String)> = [
        ("group", params.group.clone()),
        ("from", params.from.as_ref().map(|text| zone.link_param(text, query.from))),
        ("to", params.to.as_ref().map(|text| zone.link_param(text, query.to))),
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
        // A row of a context opens its detail with the context still shown.
        if let Some(id) = around {
            f.push(("around", id.to_string()));
        }
        f
    };
    // Where an event is shown on its own (its permanent link) or in its context: its group only.
    let group_only: Vec<(&str, String)> = filters.iter().filter(|(k, _)| *k == "group").cloned().collect();
    let event_link = |key: &'static str, id: &str| {
        let mut f = group_only.clone();
        f.push((key, id.to_string()));
        logs_href(&project.name, &query.env, &f)
    };

    let selected_id = selected.as_ref().map(|(id, _)| id.clone());
    let (detail, detail_missing) = match &selected {
        None => (None, false),
        Some((_, found)) => {
            let shown = found.as_ref().map(|e| {
                let id = e.id.to_string();
                let mut shown = Detail {
                    issue: issue.as_ref().map(|i| detail_issue(&project.name, &query.env, i, zone)),
                    permalink: event_link("event", &id),
                    context_href: format!("{}#event-{id}", event_link("around", &id)),
                    ..detail(e, logs_href(&project.name, &query.env, &here), zone)
                };
                if let Some(mapped) = &mapped {
                    shown.add_original(mapped);
                }
                shown
            });
            (shown, found.is_none())
        }
    };

    let words = query.search.highlights();
    let rows = page
        .events
        .iter()
        .map(|e| {
            let mut link = here.clone();
            link.push(("event", e.id.to_string()));
            let message = shorten(&e.message, ROW_MESSAGE_CHARS);
            Row {
                id: e.id.to_string(),
                time: zone.format(e.timestamp),
                level: e.level.as_str(),
                kind: e.kind.clone().unwrap_or_default(),
                message_marked: mark(&message, &words),
                status: e.http.as_ref().and_then(|h| h.status).map(|s| s.to_string()).unwrap_or_default(),
                url: e.url.clone().unwrap_or_default(),
                href: logs_href(&project.name, &query.env, &link),
                selected: selected_id.as_deref() == Some(e.id.to_string().as_str()),
                current: around == Some(e.id),
            }
        })
        .collect();
    let older_href = page.next_cursor.map(|cursor| {
        let mut f = filters.clone();
        f.push(("cursor", cursor.encode()));
        logs_href(&project.name, &query.env, &f)
    });
    let newest_href = params.cursor.is_some().then(|| logs_href(&project.name, &query.env, &filters));
    let searched_from = page.searched_from.as_deref().and_then(timestamp_format::parse).map(|t| zone.format_minute(t));

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

    let live_href = query.group.is_none().then(|| {
        let mut f = filters.clone();
        f.push(("live", "1".into()));
        logs_href(&project.name, &query.env, &f)
    });
    let tail_filters: Vec<(&str, String)> =
        filters.iter().filter(|(k, _)| *k == "level" || *k == "q").cloned().collect();

    LogsPage {
        live: false,
        live_href,
        still_href: logs_href(&project.name, &query.env, &filters),
        tail_src: href("/api/v1/tail", &project.name, &query.env, &tail_filters),
        row_href: logs_href(&project.name, &query.env, &filters),
        marks: serde_json::to_string(&words).unwrap_or_else(|_| "[]".into()),
        user: Some(user),
        // The offset at the end of the range: now, unless the user went back.
        zone: zone.label(query.to),
        zone_name: zone.name().to_string(),
        sidebar: sidebar(projects, &project.name, &query.env),
        groups: group_links,
        project: project.name.clone(),
        env: query.env.clone(),
        group: query.group.clone().unwrap_or_default(),
        // Only what the user typed: an empty field keeps meaning "the last 24 h up to now".
        from: params.from.as_ref().map(|_| zone.input(query.from)).unwrap_or_default(),
        to: params.to.as_ref().map(|_| zone.input(query.to)).unwrap_or_default(),
        q: params.q.clone().unwrap_or_default(),
        levels: Level::ALL
            .iter()
            .map(|l| LevelChoice { name: l.as_str(), checked: query.levels.contains(l) })
            .collect(),
        rows,
        older_href,
        newest_href,
        searched_from,
        detail,
        detail_missing,
        missing_close_href: logs_href(&project.name, &query.env, &here),
        query_error: None,
        chart: chart(&histogram, zone, |from, to| {
            let mut f: Vec<(&str, String)> =
                filters.iter().filter(|(k, _)| *k != "from" && *k != "to").cloned().collect();
            f.push(("from", from));
            f.push(("to", to));
            logs_href(&project.name, &query.env, &f)
        }),
        export_csv_href: href("/api/v1/events.csv", &project.name, &query.env, &filters),
        export_ndjson_href: href("/api/v1/events.ndjson", &project.name, &query.env, &filters),
        around: around.map(|id| id.to_string()),
        saved: saved
            .iter()
            .map(|search| SavedLink { name: search.name.clone(), href: crate::links::saved_search(search) })
            .collect(),
        // The range exactly as the page's address has it: `now-24h` is saved relative.
        save_from: params.from.clone().unwrap_or_default(),
        save_to: params.to.clone().unwrap_or_default(),
        dead_total: dead.total,
        dead_letters: dead
            .dead_letters
            .into_iter()
            .map(|d| DeadRow {
                dead_at: timestamp_format::parse(&d.dead_at).map(|t| zone.format(t)).unwrap_or(d.dead_at),
                message: d.event.map(|e| e.message).or(d.message).unwrap_or_default(),
                reason: if d.detail.is_empty() { d.reason } else { format!("{}: {}", d.reason, d.detail) },
            })
            .collect(),
    }
}

fn sidebar(projects: &Projects, active_project: &str, active_env: &str) -> Vec<SidebarProject> {
    projects
        .iter()
        .map(|p| SidebarProject {
            name: p.name.clone(),
            internal: p.internal,
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

fn detail(e: &StoredEvent, close_href: String, zone: &Zone) -> Detail {
    let mut fields: Vec<(&'static str, String)> = vec![
        ("Time", zone.format_with_offset(e.timestamp)),
        ("Received", zone.format_with_offset(e.received_at)),
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
        title: shorten(&e.message, TITLE_CHARS),
        message: (shorten(&e.message, TITLE_CHARS) != e.message).then(|| e.message.clone()),
        fields,
        stack: e.stack.clone(),
        extra: e.extra.as_ref().and_then(|x| serde_json::to_string_pretty(x).ok()),
        close_href,
        permalink: String::new(),
        context_href: String::new(),
        issue: None,
        original: None,
    }
}

fn detail_issue(project: &str, env: &str, issue: &Issue, zone: &Zone) -> DetailIssue {
    DetailIssue {
        status: issue.status.as_str(),
        count: issue.count,
        first_seen: zone.format(issue.first_seen),
        last_seen: zone.format(issue.last_seen),
        href: issues::issue_href(project, env, &issue.fingerprint),
        events_href: issues::events_href(project, env, issue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ingest::{Context, normalise};
    use crate::store::{Cursor, DeadLetter};
    use serde_json::json;

    fn projects() -> Projects {
        let config = Config::from_sources(include_str!("../../../config.toml"), &[]).expect("config");
        Projects::from_config(&config).expect("projects")
    }

    fn event(projects: &Projects, raw: serde_json::Value) -> StoredEvent {
        let project = projects.get("demo").expect("demo");
        let now = OffsetDateTime::now_utc();
        let ctx = Context { project, default_env: Some("production"), received_at: now, max_event_bytes: 65_536 };
        normalise(raw, &ctx).expect("valid")
    }

    #[test]
    fn a_long_message_heads_the_detail_pane_shortened_and_is_shown_whole_below() {
        let projects = projects();
        let utc = Zone::named("UTC").expect("zone");
        let long = format!("{}\nsecond line", "x".repeat(1_000));
        let shown = detail(&event(&projects, json!({"message": long})), String::new(), &utc);
        assert_eq!(shown.title, format!("{}…", "x".repeat(TITLE_CHARS)));
        assert_eq!(shown.message.as_deref(), Some(long.as_str()));
        let short = detail(&event(&projects, json!({"message": "payment failed"})), String::new(), &utc);
        assert_eq!((short.title.as_str(), short.message), ("payment failed", None), "said once when it fits");
        let two_lines = detail(&event(&projects, json!({"message": "failed\nat line 2"})), String::new(), &utc);
        assert_eq!((two_lines.title.as_str(), two_lines.message.as_deref()), ("failed …", Some("failed\nat line 2")));
    }

    #[test]
    fn the_view_keeps_the_filters_in_every_link_and_shows_the_selected_event() {
        let projects = projects();
        let project = projects.get("demo").expect("demo");
        let params = ReadParams {
            project: Some("demo".into()),
            env: Some("production".into()),
            q: Some("pay ment".into()),
            ..Default::default()
        };
        let query = params.to_query(&projects, OffsetDateTime::now_utc()).expect("query");
        let error = event(&projects, json!({"message": "payment failed\nat line 2", "level": "error", "type": "http"}));
        let info = event(&projects, json!({"message": "payment ok", "http": {"status": 200}}));
        let mut histogram = Histogram::empty(Buckets::for_range(query.from, query.to));
        histogram.add(&error);
        histogram.add(&info);
        let data = LogsData {
            histogram,
            groups: vec![
                Group { name: project.own_group("production").into(), kind: GroupKind::Ingest },
                Group { name: "/aws/lambda/demo-api".into(), kind: GroupKind::External },
            ],
            page: EventPage {
                events: vec![error.clone(), info.clone()],
                next_cursor: Some(Cursor::after(&info)),
                searched_from: None,
            },
            dead: DeadLetters {
                total: 7,
                dead_letters: vec![DeadLetter {
                    reason: "too_old".into(),
                    detail: String::new(),
                    dead_at: "2026-11-24T15:00:00.000Z".into(),
                    stream: "s".into(),
                    message: None,
                    event: Some(info.clone()),
                }],
            },
            selected: Some((error.id.to_string(), Some(error.clone()))),
            issue: None,
            mapped: None,
            around: None,
            saved: Vec::new(),
        };
        let page = logs_view("admin".into(), &projects, &query, &params, data, &Zone::UTC);

        assert_eq!(page.rows.len(), 2);
        assert_eq!(
            page.rows[0].message_marked,
            [("payment".to_string(), true), (" failed …".to_string(), false)],
            "one line in the table, the query's words `pay` and `ment` marked as one run"
        );
        assert_eq!((page.rows[0].level, page.rows[0].kind.as_str()), ("error", "http"));
        assert_eq!(page.rows[1].status, "200");
        assert_eq!(
            page.rows[0].href,
            format!("/logs?project=demo&env=production&q=pay%20ment&event={}", error.id),
            "a row link keeps the search"
        );
        assert!(page.rows[0].selected && !page.rows[1].selected);
        let older = page.older_href.expect("a next page");
        assert!(older.starts_with("/logs?project=demo&env=production&q=pay%20ment&cursor="), "{older}");
        assert_eq!(page.newest_href, None, "already on the newest page");
        let groups: Vec<(&str, bool, &str, bool)> =
            page.groups.iter().map(|g| (g.name.as_str(), g.external, g.href.as_str(), g.active)).collect();
        assert_eq!(
            groups,
            [
                ("/logboard/demo/production", false, "/logs?project=demo&env=production&q=pay%20ment", true),
                (
                    "/aws/lambda/demo-api",
                    true,
                    "/logs?project=demo&env=production&q=pay%20ment&group=%2Faws%2Flambda%2Fdemo-api",
                    false
                ),
            ]
        );
        let detail = page.detail.expect("the selected event");
        assert_eq!((detail.message.as_deref(), detail.level), (Some("payment failed\nat line 2"), "error"));
        assert!(detail.fields.iter().any(|(label, value)| *label == "Type" && value == "http"));
        assert!(!page.detail_missing);
        assert_eq!((page.dead_total, page.dead_letters[0].message.as_str()), (7, "payment ok"));
        assert_eq!(page.q, "pay ment", "the search box keeps what was typed");
        assert!(page.sidebar.iter().flat_map(|p| &p.envs).any(|e| e.active && e.label == "production"));
        assert_eq!(page.chart.max, 2, "both events are in the last bucket");
        let last = page.chart.bars.last().expect("bars");
        let levels: Vec<&str> = last.segments.iter().map(|(level, _, _)| *level).collect();
        assert_eq!(levels, ["info", "error"], "stacked in severity order");
        assert_eq!(last.segments[1].1, 0.0, "the tallest bar reaches the top");
        assert!(
            last.href.contains("q=pay%20ment&from="),
            "a bar keeps the search and narrows the range: {}",
            last.href
        );
        assert!(last.title.ends_with(": 2 events (info 1, error 1)"), "{}", last.title);
    }

    /// The parameters a link of the page carries, as its target reads them.
    fn params_of(href: &str) -> ReadParams {
        let (_, query) = href.split_once('?').expect("a query string");
        serde_urlencoded::from_str(query).expect("parameters")
    }

    #[test]
    fn in_a_configured_zone_every_time_is_on_its_clock_and_every_link_reads_back_the_same_range() {
        let projects = projects();
        let seoul = Zone::named("Asia/Seoul").expect("zone");
        let now = time::macros::datetime!(2026-11-26 00:00 UTC);
        let params = ReadParams {
            project: Some("demo".into()),
            env: Some("production".into()),
            from: Some("2026-11-25 00:00".into()),
            to: Some("2026-11-25 12:00".into()),
            q: Some("payment".into()),
            ..Default::default()
        };
        let query = params.to_query_in(&projects, now, &seoul).expect("query");
        assert_eq!(query.from, time::macros::datetime!(2026-11-24 15:00 UTC), "typed on Seoul's clock");
        let mut error = event(&projects, json!({"message": "payment failed", "level": "error"}));
        error.timestamp = time::macros::datetime!(2026-11-24 15:30:00.250 UTC);
        let mut histogram = Histogram::empty(Buckets::for_range(query.from, query.to));
        histogram.add(&error);
        let data = LogsData {
            histogram,
            groups: vec![],
            page: EventPage {
                events: vec![error.clone()],
                next_cursor: Some(Cursor::after(&error)),
                searched_from: Some("2026-11-24T15:00:00.000Z".into()),
            },
            dead: DeadLetters {
                total: 1,
                dead_letters: vec![DeadLetter {
                    reason: "too_old".into(),
                    detail: String::new(),
                    dead_at: "2026-11-24T16:00:00.000Z".into(),
                    stream: "s".into(),
                    message: Some("late".into()),
                    event: None,
                }],
            },
            selected: Some((error.id.to_string(), Some(error.clone()))),
            issue: None,
            mapped: None,
            around: None,
            saved: Vec::new(),
        };
        let page = logs_view("admin".into(), &projects, &query, &params, data, &seoul);

        assert_eq!((page.zone.as_str(), page.zone_name.as_str()), ("Asia/Seoul (UTC+09:00)", "Asia/Seoul"));
        assert_eq!(page.rows[0].time, "2026-11-25 00:30:00.250");
        let detail = page.detail.expect("the selected event");
        assert!(detail.fields.contains(&("Time", "2026-11-25 00:30:00.250 +09:00".into())), "{:?}", detail.fields);
        assert_eq!((page.from.as_str(), page.to.as_str()), ("2026-11-25 00:00", "2026-11-25 12:00"));
        assert_eq!(page.searched_from.as_deref(), Some("2026-11-25 00:00"));
        assert_eq!(page.dead_letters[0].dead_at, "2026-11-25 01:00:00.000");

        // The pages read a link in the zone, the export API in UTC: both get the range shown.
        let older = page.older_href.expect("a next page");
        let export = page.export_csv_href.clone();
        for (link, read) in [
            (older.as_str(), params_of(&older).to_query_in(&projects, now, &seoul)),
            (export.as_str(), params_of(&export).to_query(&projects, now)),
        ] {
            let read = read.expect("a link that parses");
            assert_eq!((read.from, read.to), (query.from, query.to), "{link}");
        }
        let bar = page.chart.bars.iter().find(|b| !b.segments.is_empty()).expect("the bar of the error");
        let narrowed = params_of(&bar.href).to_query_in(&projects, now, &seoul).expect("a bar link that parses");
        assert!(narrowed.from <= error.timestamp && error.timestamp < narrowed.to, "{}", bar.href);
        assert!(
            bar.title.starts_with(&seoul.format_minute(narrowed.from)) && bar.title.ends_with(": 1 events (error 1)"),
            "{}",
            bar.title
        );
        assert!(bar.title.starts_with("2026-11-25 00:"), "{}", bar.title);
    }

    #[test]
    fn the_detail_of_an_error_shows_its_issue_and_links_to_it_and_to_its_events() {
        let projects = projects();
        let seoul = Zone::named("Asia/Seoul").expect("zone");
        let params = ReadParams { project: Some("demo".into()), env: Some("production".into()), ..Default::default() };
        let query = params.to_query(&projects, OffsetDateTime::now_utc()).expect("query");
        let error = event(&projects, json!({"message": "card declined for order 7", "level": "error"}));
        let fingerprint = error.fingerprint.clone().expect("an error has a fingerprint");
        let issue = Issue {
            fingerprint: fingerprint.clone(),
            title: "card declined for order 9".into(),
            kind: None,
            level: "error".into(),
            count: 42,
            users: 3,
            first_seen: time::macros::datetime!(2026-11-24 15:00 UTC),
            last_seen: time::macros::datetime!(2026-11-25 03:30 UTC),
            status: crate::issues::Status::Regressed,
            sample_id: error.id.to_string(),
            group: None,
            series_24h: vec![0; 24],
        };
        let data = |issue: Option<Issue>| LogsData {
            histogram: Histogram::empty(Buckets::for_range(query.from, query.to)),
            groups: vec![],
            page: EventPage { events: vec![error.clone()], next_cursor: None, searched_from: None },
            dead: DeadLetters::default(),
            selected: Some((error.id.to_string(), Some(error.clone()))),
            issue,
            mapped: None,
            around: None,
            saved: Vec::new(),
        };
        let page = logs_view("admin".into(), &projects, &query, &params, data(Some(issue.clone())), &seoul);
        let shown = page.detail.expect("the detail").issue.expect("its issue");
        assert_eq!((shown.status, shown.count), ("regressed", 42));
        assert_eq!(
            (shown.first_seen.as_str(), shown.last_seen.as_str()),
            ("2026-11-25 00:00:00.000", "2026-11-25 12:30:00.000"),
            "on the zone's clock"
        );
        assert_eq!(shown.href, format!("/issues?project=demo&env=production#issue-{fingerprint}"));
        assert_eq!(
            shown.events_href,
            format!("/logs?project=demo&env=production&q=fingerprint%3A{fingerprint}&from=now-7d")
        );

        // A Lambda function's issue: its events are in its group, as the issues page links them.
        let lambda = Issue { group: Some("/aws/lambda/demo-api".into()), ..issue };
        let page = logs_view("admin".into(), &projects, &query, &params, data(Some(lambda)), &seoul);
        let shown = page.detail.expect("the detail").issue.expect("its issue");
        assert_eq!(
            shown.events_href,
            format!(
                "/logs?project=demo&env=production&q=fingerprint%3A{fingerprint}&group=%2Faws%2Flambda%2Fdemo-api&from=now-7d"
            )
        );

        let page = logs_view("admin".into(), &projects, &query, &params, data(None), &seoul);
        assert!(page.detail.expect("the detail").issue.is_none(), "no issue, no issue section");
    }

    #[test]
    fn a_context_marks_its_event_and_the_detail_links_its_context_and_permalink_in_its_group() {
        let projects = projects();
        let params = ReadParams {
            project: Some("demo".into()),
            env: Some("production".into()),
            group: Some("/aws/lambda/demo-api".into()),
            q: Some("timeout".into()),
            ..Default::default()
        };
        let query = params.to_query(&projects, OffsetDateTime::now_utc()).expect("query");
        let (before, middle, after) = (
            event(&projects, json!({"message": "before"})),
            event(&projects, json!({"message": "the one"})),
            event(&projects, json!({"message": "after"})),
        );
        let saved = SavedSearch {
            id: "s1".into(),
            name: "timeouts".into(),
            project: "demo".into(),
            env: "production".into(),
            q: "timeout".into(),
            from: Some("now-6h".into()),
            to: None,
            created_ms: 0,
        };
        let data = LogsData {
            histogram: Histogram::empty(Buckets::for_range(query.from, query.to)),
            groups: vec![],
            page: EventPage { events: vec![after.clone(), middle.clone(), before.clone()], ..EventPage::default() },
            dead: DeadLetters::default(),
            selected: Some((middle.id.to_string(), Some(middle.clone()))),
            issue: None,
            mapped: None,
            around: Some(middle.id),
            saved: vec![saved],
        };
        let page = logs_view("admin".into(), &projects, &query, &params, data, &Zone::UTC);
        let marked: Vec<bool> = page.rows.iter().map(|r| r.current).collect();
        assert_eq!(marked, [false, true, false], "only the event the context is for");
        let id = middle.id;
        assert!(page.rows[0].href.contains(&format!("&around={id}&event={}", after.id)), "{}", page.rows[0].href);
        let detail = page.detail.expect("the detail");
        let group = "group=%2Faws%2Flambda%2Fdemo-api";
        assert_eq!(detail.permalink, format!("/logs?project=demo&env=production&{group}&event={id}"));
        assert_eq!(detail.context_href, format!("/logs?project=demo&env=production&{group}&around={id}#event-{id}"));
        assert_eq!(page.around, Some(id.to_string()));
        let saved: Vec<(&str, &str)> = page.saved.iter().map(|s| (s.name.as_str(), s.href.as_str())).collect();
        assert_eq!(saved, [("timeouts", "/logs?project=demo&env=production&q=timeout&from=now-6h")]);
    }

    #[test]
    fn an_event_asked_for_and_not_found_is_said_missing() {
        let projects = projects();
        let params = ReadParams { project: Some("demo".into()), env: Some("dev".into()), ..Default::default() };
        let query = params.to_query(&projects, OffsetDateTime::now_utc()).expect("query");
        let data = LogsData {
            histogram: Histogram::empty(Buckets::for_range(query.from, query.to)),
            groups: vec![],
            page: EventPage::default(),
            dead: DeadLetters::default(),
            selected: Some(("01JNOTANID".into(), None)),
            issue: None,
            mapped: None,
            around: None,
            saved: Vec::new(),
        };
        let page = logs_view("admin".into(), &projects, &query, &params, data, &Zone::UTC);
        assert!(page.detail.is_none() && page.detail_missing);
        assert_eq!(page.missing_close_href, "/logs?project=demo&env=dev");
    }

    #[test]
    fn a_page_the_store_stopped_early_says_how_far_back_it_searched_and_links_on() {
        let projects = projects();
        let params = ReadParams { project: Some("demo".into()), env: Some("dev".into()), ..Default::default() };
        let query = params.to_query(&projects, OffsetDateTime::now_utc()).expect("query");
        let cursor = Cursor { timestamp_ms: 1_795_000_000_000, id: Ulid::from_parts(1_795_000_000_000, u128::MAX) };
        let data = LogsData {
            histogram: Histogram::empty(Buckets::for_range(query.from, query.to)),
            groups: vec![],
            page: EventPage {
                events: vec![],
                next_cursor: Some(cursor),
                searched_from: Some("2026-11-18T20:26:40.001Z".into()),
            },
            dead: DeadLetters::default(),
            selected: None,
            issue: None,
            mapped: None,
            around: None,
            saved: Vec::new(),
        };
        let page = logs_view("admin".into(), &projects, &query, &params, data, &Zone::UTC);
        assert_eq!(page.searched_from.as_deref(), Some("2026-11-18 20:26"));
        assert!(page.older_href.is_some_and(|href| href.contains("&cursor=")), "continue from where it stopped");
    }
}
