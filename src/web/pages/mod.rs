//! The server-rendered dashboard: login, home, the logs page with its detail pane, issues and alerts. Each page
//! is a handler that gathers data and a view model built from it by a plain function (tested
//! directly); all HTML is in `templates/` (askama escapes every value). Every time a page shows,
//! fills in or links goes through the configured [`crate::zone::Zone`].

mod alerts;
mod chart;
mod highlight;
mod home;
mod issues;
mod login;
mod logs;
mod searches;

use std::sync::Arc;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::web::error::{ApiError, InternalCause};

pub use alerts::{change_snooze, show_alerts};
pub use home::show_home;
pub use issues::{change_status, show_issues};
pub use login::{log_in, log_out, show_login};
pub use logs::show_logs;
pub use searches::save_search;

/// Renders an askama template as an HTML response.
pub struct Page<T>(pub T);

impl<T: Template> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        match self.0.render() {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                let mut response = (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
                let cause = anyhow::Error::new(e).context("rendering a template");
                response.extensions_mut().insert(InternalCause(Arc::new(cause)));
                response
            }
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub(super) struct ErrorPage {
    user: Option<String>,
    status: u16,
    message: String,
}

/// A failed page answers with an HTML page carrying the same message as the API would.
pub(super) fn error_page(user: &str, error: ApiError) -> Response {
    let status = error.status();
    let (message, cause) = match error {
        ApiError::Internal(cause) => {
            ("Something went wrong on our side; the details are in the service's logs.".to_string(), Some(cause))
        }
        other => (other.to_string(), None),
    };
    let mut response =
        (status, Page(ErrorPage { user: Some(user.to_string()), status: status.as_u16(), message })).into_response();
    if let Some(cause) = cause {
        response.extensions_mut().insert(InternalCause(Arc::new(cause)));
    }
    response
}

pub use crate::links::{href, logs as logs_href};

/// The logs page of an issue's events (`crate::links::issue_events`), then `params`.
pub fn issue_events_href(project: &str, env: &str, issue: &crate::issues::Issue, params: &[(&str, String)]) -> String {
    crate::links::issue_events((project, env), &issue.fingerprint, issue.group.as_deref(), params)
}

pub(super) fn shorten(text: &str, max_chars: usize) -> String {
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
