//! The read parameters shared by the JSON API and the log page, checked into an [`EventQuery`].

use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::error::ApiError;
use crate::event::Level;
use crate::project::{Project, Projects};
use crate::search::{EARLIEST, Query};
use crate::store::{Cursor, EventQuery};
use crate::zone::Zone;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// The window shown when no `from` is given.
pub const DEFAULT_WINDOW: Duration = Duration::hours(24);

/// `?project=P&env=E[&group=G][&from=T][&to=T][&level=L,L][&q=..][&limit=N][&cursor=C]`,
/// all as text so that a bad value gets our own 400 message.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReadParams {
    pub project: Option<String>,
    pub env: Option<String>,
    pub group: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub level: Option<String>,
    pub q: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A project and one of its environments, both known.
pub fn project_env<'a>(
    projects: &'a Projects,
    project: Option<&str>,
    env: Option<&str>,
) -> Result<(&'a Project, String), ApiError> {
    let name = non_empty(project).ok_or_else(|| ApiError::BadRequest("`project` is required".into()))?;
    let project = projects.get(name).ok_or_else(|| ApiError::NotFound(format!("no project `{name}`")))?;
    let env = non_empty(env).ok_or_else(|| ApiError::BadRequest("`env` is required".into()))?;
    if !project.has_env(env) {
        return Err(ApiError::NotFound(format!("project `{}` has no env `{env}`", project.name)));
    }
    Ok((project, env.to_string()))
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// `from` or `to`: RFC 3339, epoch milliseconds, `now-15m` and the like, or `2026-11-24 15:00`
/// as typed in the dashboard's fields (on `zone`'s clock); see [`crate::search::parse_time_expr`].
pub fn parse_time(key: &str, text: &str, now: OffsetDateTime, zone: &Zone) -> Result<OffsetDateTime, ApiError> {
    zone.parse_input(text, now).map_err(|e| ApiError::BadRequest(format!("`{key}`: {e}")))
}

pub fn parse_levels(text: Option<&str>) -> Result<Vec<Level>, ApiError> {
    let mut levels = Vec::new();
    for part in text.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let level: Level = part.parse().map_err(ApiError::BadRequest)?;
        if !levels.contains(&level) {
            levels.push(level);
        }
    }
    levels.sort();
    Ok(levels)
}

impl ReadParams {
    /// The query these parameters name, as the API reads them: a time without an offset is UTC.
    pub fn to_query<'p>(&self, projects: &'p Projects, now: OffsetDateTime) -> Result<EventQuery<'p>, ApiError> {
        self.to_query_in(projects, now, &Zone::UTC)
    }

    /// [`ReadParams::to_query`], with a `from`/`to` written without an offset read on `zone`'s
    /// clock (the pages' fields).
    pub fn to_query_in<'p>(
        &self,
        projects: &'p Projects,
        now: OffsetDateTime,
        zone: &Zone,
    ) -> Result<EventQuery<'p>, ApiError> {
        let (project, env) = project_env(projects, self.project.as_deref(), self.env.as_deref())?;
        let to = match non_empty(self.to.as_deref()) {
            Some(text) => parse_time("to", text, now, zone)?,
            None => now,
        };
        let from = match non_empty(self.from.as_deref()) {
            Some(text) => parse_time("from", text, now, zone)?,
            None => to.checked_sub(DEFAULT_WINDOW).map_or(EARLIEST, |from| from.max(EARLIEST)),
        };
        if from > to {
            return Err(ApiError::BadRequest("`from` is after `to`".into()));
        }
        let limit = match non_empty(self.limit.as_deref()) {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(ApiError::BadRequest(format!("`limit` must be a number from 1 to {MAX_LIMIT}"))),
            },
        };
        let cursor = match non_empty(self.cursor.as_deref()) {
            None => None,
            Some(text) => {
                Some(Cursor::decode(text).ok_or_else(|| ApiError::BadRequest("`cursor` is not valid".into()))?)
            }
        };
        Ok(EventQuery {
            project,
            env,
            group: non_empty(self.group.as_deref()).map(str::to_string),
            from,
            to,
            levels: parse_levels(self.level.as_deref())?,
            search: Query::parse(self.q.as_deref().unwrap_or("")).map_err(ApiError::BadQuery)?,
            limit,
            cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-24 15:00:00 UTC);

    fn projects() -> &'static Projects {
        static PROJECTS: std::sync::LazyLock<Projects> = std::sync::LazyLock::new(|| {
            let config = crate::config::Config::from_sources(include_str!("../../config.toml"), &[]).expect("config");
            Projects::from_config(&config).expect("projects")
        });
        &PROJECTS
    }

    fn params(pairs: &[(&str, &str)]) -> ReadParams {
        let mut p = ReadParams { project: Some("demo".into()), env: Some("production".into()), ..Default::default() };
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "from" => p.from = v,
                "to" => p.to = v,
                "level" => p.level = v,
                "limit" => p.limit = v,
                "cursor" => p.cursor = v,
                "q" => p.q = v,
                "env" => p.env = v,
                "project" => p.project = v,
                _ => unreachable!("unknown test key"),
            }
        }
        p
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        params(pairs).to_query(projects(), NOW).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_last_24_hours_and_100_events() {
        let q = params(&[]).to_query(projects(), NOW).expect("query");
        assert_eq!((q.from, q.to, q.limit), (NOW - Duration::hours(24), NOW, 100));
        assert!(q.levels.is_empty() && q.search.root().is_none() && q.cursor.is_none());
    }

    #[test]
    fn times_levels_and_limits_are_parsed() {
        let q = params(&[
            ("from", "2026-11-20 00:00"),
            ("to", "2026-11-21T00:00:00+09:00"),
            ("level", "ERROR,warn,error"),
            ("limit", "5"),
        ])
        .to_query(projects(), NOW)
        .expect("query");
        assert_eq!(q.from, datetime!(2026-11-20 00:00 UTC));
        assert_eq!(q.to, datetime!(2026-11-20 15:00 UTC));
        assert_eq!(q.levels, [Level::Warn, Level::Error]);
        assert_eq!(q.limit, 5);
    }

    #[test]
    fn the_pages_read_a_time_without_an_offset_in_their_zone_and_the_api_in_utc() {
        let seoul = Zone::named("Asia/Seoul").expect("zone");
        let typed = params(&[("from", "2026-11-20 09:00"), ("to", "2026-11-21T00:00:00Z")]);
        let page = typed.to_query_in(projects(), NOW, &seoul).expect("query");
        assert_eq!((page.from, page.to), (datetime!(2026-11-20 00:00 UTC), datetime!(2026-11-21 00:00 UTC)));
        let api = typed.to_query(projects(), NOW).expect("query");
        assert_eq!((api.from, api.to), (datetime!(2026-11-20 09:00 UTC), datetime!(2026-11-21 00:00 UTC)));
        let relative = params(&[("from", "now-7d")]).to_query_in(projects(), NOW, &seoul).expect("query");
        assert_eq!(relative.from, NOW - Duration::days(7), "relative times do not move");
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(
            error(&[("from", "monday")]),
            "`from`: `monday` is not a time: use RFC 3339 (2026-11-24T15:00:00Z), epoch milliseconds, or now, \
             now-15m, now-6h, now-7d (units s m h d w)"
        );
        assert_eq!(error(&[("q", "level:")]), "a value is missing after `level:`");
        assert_eq!(error(&[("level", "loud")]), "unknown level `loud`; use debug, info, warn, error or fatal");
        assert_eq!(error(&[("limit", "0")]), "`limit` must be a number from 1 to 1000");
        assert_eq!(error(&[("cursor", "zzz")]), "`cursor` is not valid");
        assert_eq!(error(&[("env", "qa")]), "project `demo` has no env `qa`");
        assert_eq!(error(&[("project", "")]), "`project` is required");
        assert_eq!(error(&[("from", "2026-11-25T00:00:00Z"), ("to", "2026-11-24T00:00:00Z")]), "`from` is after `to`");
    }
}
