//! The issues page: errors grouped by fingerprint, with their counts over the last day, a 24 h
//! sparkline, and forms (no JavaScript) that resolve, ignore or reopen them.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::chart::bar_title;
use super::{Page, error_page, issue_events_href};
use futures_util::StreamExt as _;

use crate::event::{StoredEvent, unix_ms};
use crate::issues::{Issue, Sort, Status};
use crate::project::Project;
use crate::web::AppState;
use crate::web::auth::PageUser;
use crate::web::error::ApiError;
use crate::web::query::{DEFAULT_WINDOW, project_env};
use crate::zone::Zone;

/// Width and height of a sparkline, in SVG units: one bar per hour.
const SPARK_HEIGHT: u64 = 20;
const SPARK_BAR: usize = 4;
const HOUR_MS: i64 = 3_600_000;

#[derive(Template)]
#[template(path = "issues.html")]
struct IssuesPage {
    user: Option<String>,
    project: String,
    env: String,
    /// The zone the times are in, named on the page.
    zone: String,
    /// (label, href, is the current order) of each way to sort.
    sorts: Vec<(&'static str, String, bool)>,
    rows: Vec<IssueRow>,
}

struct IssueRow {
    fingerprint: String,
    /// The row's `id`, which [`issue_href`] links to.
    anchor: String,
    title: String,
    kind: String,
    level: String,
    count: u64,
    users: u64,
    first_seen: String,
    last_seen: String,
    status: &'static str,
    events_href: String,
    /// (x, y, height, tooltip: the hour and its count) of each sparkline bar.
    spark: Vec<(usize, u64, u64, String)>,
    /// (status to set, button label) of the forms shown.
    actions: Vec<(&'static str, &'static str)>,
    /// The latest occurrence's top frame through its source map: where the error really is.
    original_frame: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct IssuesParams {
    project: Option<String>,
    env: Option<String>,
    sort: Option<String>,
}

const SORTS: [(&str, &str, Sort); 4] = [
    ("Last seen", "last_seen", Sort::LastSeen),
    ("First seen", "first_seen", Sort::FirstSeen),
    ("Events", "count", Sort::Count),
    ("Users", "users", Sort::Users),
];

pub async fn show_issues(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Query(params): Query<IssuesParams>,
) -> Response {
    let first = state.projects.iter().next().map(|p| (p.name.clone(), p.envs.first().cloned().unwrap_or_default()));
    let project = params.project.or_else(|| first.as_ref().map(|f| f.0.clone()));
    let env = params.env.or_else(|| first.map(|f| f.1));
    let (project, env) = match project_env(&state.projects, project.as_deref(), env.as_deref()) {
        Ok(found) => found,
        Err(error) => return error_page(&user, error),
    };
    let sort_name = params.sort.unwrap_or_else(|| "last_seen".into());
    let Some(&(_, _, sort)) = SORTS.iter().find(|(_, name, _)| *name == sort_name) else {
        return error_page(&user, ApiError::BadRequest(format!("unknown sort `{sort_name}`")));
    };
    let now = OffsetDateTime::now_utc();
    let range = (unix_ms(now - DEFAULT_WINDOW), unix_ms(now));
    let at = (project.name.as_str(), env.as_str(), project.own_group(&env));
    match state.issues.list(at, range, &crate::search::Query::default(), sort, unix_ms(now)).await {
        Ok(issues) => {
            let frames = original_frames(&state, project, &env, &issues).await;
            let mut page = issues_view(user, (&project.name, &env), &sort_name, issues, &state.zone, now);
            for (row, frame) in page.rows.iter_mut().zip(frames) {
                row.original_frame = frame;
            }
            page.zone = state.zone.label(now);
            Page(page).into_response()
        }
        Err(error) => error_page(&user, error.into()),
    }
}

/// Rows whose latest occurrence is read to show its original top frame, at most.
const ORIGINAL_FRAMES_SHOWN: usize = 50;

/// The original top frame of each issue's latest occurrence, for the first rows, when the
/// project holds source maps (else nothing is read).
async fn original_frames(state: &AppState, project: &Project, env: &str, issues: &[Issue]) -> Vec<Option<String>> {
    if !state.sourcemaps.project_has_maps(&project.name).await {
        return Vec::new();
    }
    let latest: Vec<(Option<ulid::Ulid>, Option<String>)> = issues
        .iter()
        .take(ORIGINAL_FRAMES_SHOWN)
        .map(|issue| (ulid::Ulid::from_string(&issue.sample_id).ok(), issue.group.clone()))
        .collect();
    let reads = latest.into_iter().map(|(id, group)| async move {
        match state.store.event(project, env, group.as_deref(), id?).await {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "reading an issue's latest event for its original frame");
                None
            }
        }
    });
    let events: Vec<Option<StoredEvent>> = futures_util::stream::iter(reads).buffered(8).collect().await;
    let found: Vec<StoredEvent> = events.iter().flatten().cloned().collect();
    let mut frames = state.sourcemaps.top_frames(&found).await.into_iter();
    events.iter().map(|event| event.as_ref().and_then(|_| frames.next().flatten())).collect()
}

fn issues_view(
    user: String,
    (project, env): (&str, &str),
    sort: &str,
    issues: Vec<Issue>,
    zone: &Zone,
    now: OffsetDateTime,
) -> IssuesPage {
    let sorts = SORTS
        .iter()
        .map(|(label, name, _)| {
            (*label, crate::links::issues(project, env, &[("sort", name.to_string())]), *name == sort)
        })
        .collect();
    let rows = issues.into_iter().map(|issue| issue_row(project, env, issue, zone, now)).collect();
    let zone = zone.name().to_string();
    IssuesPage { user: Some(user), project: project.to_string(), env: env.to_string(), zone, sorts, rows }
}

fn issue_row(project: &str, env: &str, issue: Issue, zone: &Zone, now: OffsetDateTime) -> IssueRow {
    let max = issue.series_24h.iter().copied().max().unwrap_or(0).max(1);
    // The series' last hour is the one `now` is in (crate::issues: `series_24h`).
    let hours = i64::try_from(issue.series_24h.len()).unwrap_or(0);
    let first_hour = unix_ms(now).div_euclid(HOUR_MS) - (hours - 1);
    let spark = issue
        .series_24h
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let height = if *n == 0 { 0 } else { (n * SPARK_HEIGHT).div_ceil(max).max(1) };
            let start = (first_hour + i64::try_from(i).unwrap_or(0)) * HOUR_MS;
            let hour = |ms: i64| crate::event::from_unix_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let title = bar_title(zone, hour(start), hour(start + HOUR_MS), &[(issue.level.as_str(), *n)]);
            (i * (SPARK_BAR + 1), SPARK_HEIGHT - height, height, title)
        })
        .collect();
    let actions = match issue.status {
        Status::Resolved | Status::Ignored => vec![("ongoing", "Reopen")],
        Status::New | Status::Ongoing | Status::Regressed => vec![("resolved", "Resolve"), ("ignored", "Ignore")],
    };
    let events_href = events_href(project, env, &issue);
    IssueRow {
        anchor: anchor(&issue.fingerprint),
        title: super::shorten(&issue.title, 160),
        kind: issue.kind.unwrap_or_default(),
        level: issue.level,
        count: issue.count,
        users: issue.users,
        first_seen: zone.format(issue.first_seen),
        last_seen: zone.format(issue.last_seen),
        status: issue.status.as_str(),
        events_href,
        spark,
        actions,
        fingerprint: issue.fingerprint,
        original_frame: None,
    }
}

/// The logs page of an issue's events, as its row links to them.
pub(super) fn events_href(project: &str, env: &str, issue: &Issue) -> String {
    issue_events_href(project, env, issue, &[("from", "now-7d".into())])
}

/// An issue's row on the issues page.
pub(super) fn issue_href(project: &str, env: &str, fingerprint: &str) -> String {
    format!("{}#{}", crate::links::issues(project, env, &[]), crate::links::urlencode(&anchor(fingerprint)))
}

fn anchor(fingerprint: &str) -> String {
    format!("issue-{fingerprint}")
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    project: String,
    env: String,
    fingerprint: String,
    status: String,
}

/// `POST /issues/status` from a row's button (same-origin only: the cross-site guard is on the
/// route); back to the list.
pub async fn change_status(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Form(form): Form<StatusForm>,
) -> Response {
    let (project, env) = match project_env(&state.projects, Some(&form.project), Some(&form.env)) {
        Ok(found) => found,
        Err(error) => return error_page(&user, error),
    };
    let Some(status) = Status::settable(&form.status) else {
        return error_page(&user, ApiError::BadRequest(format!("unknown status `{}`", form.status)));
    };
    let now = unix_ms(OffsetDateTime::now_utc());
    match state.issues.set_status(&project.name, &env, &form.fingerprint, status, now).await {
        Ok(true) => Redirect::to(&crate::links::issues(&project.name, &env, &[])).into_response(),
        Ok(false) => error_page(&user, ApiError::NotFound(format!("no issue `{}`", form.fingerprint))),
        Err(error) => error_page(&user, error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(series: Vec<u64>, status: Status) -> Issue {
        Issue {
            fingerprint: "ab12".into(),
            title: "x is undefined".into(),
            kind: Some("TypeError".into()),
            level: "error".into(),
            count: series.iter().sum(),
            users: 2,
            first_seen: OffsetDateTime::UNIX_EPOCH,
            last_seen: OffsetDateTime::UNIX_EPOCH,
            status,
            sample_id: "01J".into(),
            group: None,
            series_24h: series,
        }
    }

    #[test]
    fn a_row_draws_its_hours_to_scale_links_to_its_events_and_offers_what_can_be_done() {
        let mut series = vec![0; 24];
        series[3] = 10;
        series[23] = 5;
        let seoul = Zone::named("Asia/Seoul").expect("zone");
        let now = time::macros::datetime!(2026-11-24 15:30 UTC);
        let row = issue_row("demo", "production", issue(series, Status::Regressed), &seoul, now);
        assert!(row.first_seen.starts_with("1970-01-01 09:00"), "on the zone's clock: {}", row.first_seen);
        let spark: Vec<(usize, u64, u64)> = row.spark.iter().map(|(x, y, h, _)| (*x, *y, *h)).collect();
        assert_eq!(spark[3], (15, 0, 20), "the busiest hour is full height");
        assert_eq!(spark[23], (115, 10, 10));
        assert_eq!(spark[0], (0, 20, 0));
        assert_eq!(row.spark[23].3, "2026-11-25 00:00 – 2026-11-25 01:00: 5 events (error 5)", "now's hour, in Seoul");
        assert_eq!(row.spark[3].3, "2026-11-24 04:00 – 2026-11-24 05:00: 10 events (error 10)");
        assert_eq!(row.events_href, "/logs?project=demo&env=production&q=fingerprint%3Aab12&from=now-7d");
        assert_eq!(row.anchor, "issue-ab12");
        assert_eq!(issue_href("demo", "production", "ab12"), "/issues?project=demo&env=production#issue-ab12");
        assert_eq!(row.actions, [("resolved", "Resolve"), ("ignored", "Ignore")]);
        let lambda = Issue { group: Some("/aws/lambda/demo-api-orders".into()), ..issue(vec![0; 24], Status::New) };
        assert_eq!(
            issue_row("demo", "production", lambda, &seoul, now).events_href,
            "/logs?project=demo&env=production&q=fingerprint%3Aab12&group=%2Faws%2Flambda%2Fdemo-api-orders&from=now-7d",
            "a Lambda function's issue links to its group"
        );
        let resolved = issue_row("demo", "production", issue(vec![0; 24], Status::Resolved), &seoul, now);
        assert_eq!(resolved.actions, [("ongoing", "Reopen")]);
    }
}
