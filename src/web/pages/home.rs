//! The home page: a card per project/environment with its events of the last day by level.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::{Page, logs_href};
use crate::event::Level;
use crate::store::LevelCounts;
use crate::web::AppState;
use crate::web::auth::PageUser;
use crate::web::query::DEFAULT_WINDOW;

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
            let counts = state.store.level_counts(&project.name, env, from, to).await;
            if let Err(e) = &counts {
                tracing::warn!(error = format!("{e:#}"), project = %project.name, env = %env, "counting failed");
            }
            cards.push(env_card(&project.name, env, counts.ok()));
        }
    }
    Page(HomePage { user: Some(user), cards }).into_response()
}

/// The card of one project/environment; `None` when its counts could not be read.
fn env_card(project: &str, env: &str, counts: Option<LevelCounts>) -> EnvCard {
    let mut card = EnvCard {
        project: project.to_string(),
        env: env.to_string(),
        href: logs_href(project, env, &[]),
        counts: Vec::new(),
        total: 0,
        capped: false,
        error: None,
    };
    match counts {
        Some(counts) => {
            card.counts = Level::ALL.iter().map(|l| (l.as_str(), counts.get(*l))).collect();
            card.total = counts.total();
            card.capped = counts.capped;
        }
        None => card.error = Some("counts unavailable".into()),
    }
    card
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_lists_every_level_in_order_with_its_count_and_links_to_its_logs() {
        let mut counts = LevelCounts::default();
        counts.counts.insert(Level::Error, 3);
        counts.counts.insert(Level::Info, 40);
        let card = env_card("demo", "prod ction", Some(counts));
        assert_eq!(card.counts, [("debug", 0), ("info", 40), ("warn", 0), ("error", 3), ("fatal", 0)]);
        assert_eq!((card.total, card.capped, card.error), (43, false, None));
        assert_eq!(card.href, "/logs?project=demo&env=prod%20ction");
    }

    #[test]
    fn a_card_whose_counts_failed_says_so_instead_of_showing_zeros() {
        let card = env_card("demo", "dev", None);
        assert_eq!((card.counts.len(), card.total, card.error.as_deref()), (0, 0, Some("counts unavailable")));
    }
}
