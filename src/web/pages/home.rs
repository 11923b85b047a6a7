//! The home page: a card per project/environment — its events by level over the last day (or
//! week) as a stacked chart, errors against the same hours the day before, its three newest
//! issues, on CloudWatch the writer's health, and why ingest is paused when the disk is low — so the
//! first screen shows every service's state.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::chart::{Chart, chart};
use super::{Page, issue_events_href, logs_href};
use crate::config::Backend;
use crate::event::{Level, unix_ms};
use crate::issues::Sort;
use crate::project::Project;
use crate::search::Query as Search;
use crate::store::histogram::{Buckets, Histogram};
use crate::store::{EventQuery, LevelCounts};
use crate::web::AppState;
use crate::web::auth::PageUser;

/// Newest issues on a card.
const ISSUES_ON_CARD: usize = 3;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    user: Option<String>,
    /// "24 hours" or "7 days", and the link to the other.
    span: &'static str,
    other_span: (&'static str, &'static str),
    zone: String,
    /// The CloudWatch writer's state, when that is the backend.
    writer: Option<String>,
    /// Why ingest is refused for want of disk space, when it is.
    disk: Option<String>,
    cards: Vec<EnvCard>,
}

struct EnvCard {
    project: String,
    env: String,
    href: String,
    chart: Option<Chart>,
    /// (level, count with thousands separators) for every level, in severity order.
    counts: Vec<(&'static str, String)>,
    total: String,
    /// Errors and fatals now, and in the same span the day (or week) before.
    errors: Option<(String, String, &'static str)>,
    /// (title, link to its events) of the newest issues.
    issues: Vec<(String, String)>,
    issues_href: String,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct HomeParams {
    span: Option<String>,
}

pub async fn show_home(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Query(params): Query<HomeParams>,
) -> Response {
    let week = params.span.as_deref() == Some("7d");
    let span = if week { Duration::days(7) } else { Duration::hours(24) };
    let to = OffsetDateTime::now_utc();
    let mut cards = Vec::new();
    for project in state.projects.iter() {
        for env in &project.envs {
            cards.push(card(&state, project, env, to - span, to).await);
        }
    }
    let writer = (state.config.storage.backend == Backend::Cloudwatch).then(|| {
        let m = &state.metrics;
        format!(
            "CloudWatch writer: {} events waiting in the spool, the oldest {:.0} s old",
            thousands(u64::try_from(m.spool_events.get()).unwrap_or(0)),
            m.spool_oldest_age_seconds.get()
        )
    });
    Page(HomePage {
        user: Some(user),
        span: if week { "7 days" } else { "24 hours" },
        other_span: if week { ("24 hours", "/") } else { ("7 days", "/?span=7d") },
        zone: state.zone.label(to),
        writer,
        disk: state.disk.refusal(),
        cards,
    })
    .into_response()
}

async fn card(state: &AppState, project: &Project, env: &str, from: OffsetDateTime, to: OffsetDateTime) -> EnvCard {
    let query = EventQuery {
        project,
        env: env.to_string(),
        group: None,
        from,
        to,
        levels: vec![],
        search: Search::default(),
        limit: 1,
        cursor: None,
    };
    let span = to - from;
    let (histogram, before, issues, dead) = tokio::join!(
        state.store.histogram(&query, Buckets::for_range(from, to)),
        state.store.level_counts(&project.name, env, from - span, from),
        state.issues.list(
            (&project.name, env, project.own_group(env)),
            (unix_ms(from), unix_ms(to)),
            &query.search,
            Sort::FirstSeen,
            unix_ms(to)
        ),
        state.store.dead_letters(project, env, 0),
    );
    let mut card = env_card(&project.name, env, histogram.as_ref().ok(), before.ok().as_ref(), &state.zone);
    match issues {
        Ok(issues) => {
            card.issues = issues
                .into_iter()
                .take(ISSUES_ON_CARD)
                .map(|i| {
                    let events = issue_events_href(&project.name, env, &i, &[]);
                    (super::shorten(&i.title, 80), events)
                })
                .collect()
        }
        Err(e) => tracing::warn!(error = format!("{e:#}"), "listing issues for the home page"),
    }
    if let Some(dead) = dead.ok().filter(|d| d.total > 0) {
        card.error = Some(format!("{} events refused by CloudWatch (dead letters)", thousands(dead.total)));
    }
    if let Err(e) = histogram {
        tracing::warn!(error = format!("{e:#}"), project = %project.name, env = %env, "counting failed");
    }
    card
}

/// The card of one project/environment from its histogram over the span and its counts over
/// the span before; without a histogram, a card that says so instead of showing zeros.
fn env_card(
    project: &str,
    env: &str,
    histogram: Option<&Histogram>,
    before: Option<&LevelCounts>,
    zone: &crate::zone::Zone,
) -> EnvCard {
    let mut card = EnvCard {
        project: project.to_string(),
        env: env.to_string(),
        href: logs_href(project, env, &[]),
        chart: None,
        counts: Vec::new(),
        total: String::new(),
        errors: None,
        issues: Vec::new(),
        issues_href: crate::links::issues(project, env, &[]),
        error: None,
    };
    let Some(histogram) = histogram else {
        card.error = Some("counts unavailable".into());
        return card;
    };
    let per_level: Vec<u64> = (0..Level::ALL.len()).map(|i| histogram.counts.iter().map(|c| c[i]).sum()).collect();
    card.counts = Level::ALL.iter().zip(&per_level).map(|(l, n)| (l.as_str(), thousands(*n))).collect();
    card.total = thousands(per_level.iter().sum());
    let errors_now = per_level[3] + per_level[4];
    if let Some(before) = before {
        let errors_before = before.get(Level::Error) + before.get(Level::Fatal);
        let trend = match errors_now.cmp(&errors_before) {
            std::cmp::Ordering::Greater => "up",
            std::cmp::Ordering::Less => "down",
            std::cmp::Ordering::Equal => "same",
        };
        card.errors = Some((thousands(errors_now), thousands(errors_before), trend));
    }
    let logs = |from: String, to: String| logs_href(project, env, &[("from", from), ("to", to)]);
    card.chart = Some(chart(histogram, zone, logs));
    card
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::Zone;

    #[test]
    fn numbers_get_thousands_separators() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (1_234_567, "1,234,567"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ];
        for (n, text) in cases {
            assert_eq!(thousands(n), text);
        }
    }

    #[test]
    fn a_card_charts_its_levels_counts_them_and_compares_errors_with_the_span_before() {
        let to = OffsetDateTime::now_utc();
        let from = to - Duration::hours(24);
        let mut histogram = Histogram::empty(Buckets::for_range(from, to));
        histogram.add_count(unix_ms(to - Duration::hours(2)), Level::Error, 1_200);
        histogram.add_count(unix_ms(to - Duration::hours(1)), Level::Info, 40);
        let mut before = LevelCounts::default();
        before.counts.insert(Level::Error, 3);
        let card = env_card("demo", "prod ction", Some(&histogram), Some(&before), &Zone::named("UTC").expect("utc"));
        assert_eq!(card.counts[1], ("info", "40".to_string()));
        assert_eq!(card.counts[3], ("error", "1,200".to_string()));
        assert_eq!(card.total, "1,240");
        assert_eq!(card.errors, Some(("1,200".to_string(), "3".to_string(), "up")));
        let chart = card.chart.expect("a chart");
        assert_eq!(chart.max, 1_200);
        assert_eq!(chart.bars.iter().filter(|b| !b.segments.is_empty()).count(), 2);
        assert_eq!(card.href, "/logs?project=demo&env=prod%20ction");
    }

    #[test]
    fn a_card_whose_counts_failed_says_so_instead_of_showing_zeros() {
        let card = env_card("demo", "dev", None, None, &Zone::named("UTC").expect("utc"));
        assert_eq!(
            (card.counts.len(), card.chart.is_none(), card.error.as_deref()),
            (0, true, Some("counts unavailable"))
        );
    }
}
