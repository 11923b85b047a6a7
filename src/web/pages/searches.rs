//! "Save this search" on the logs page: a plain form, checked as the API checks it
//! ([`crate::web::searches::checked`]), behind the same cross-site guard; back to the saved
//! search's page.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use super::error_page;
use crate::web::AppState;
use crate::web::auth::PageUser;
use crate::web::searches::{NewSearch, checked, save};

/// `POST /logs/searches` (`name`, `project`, `env`, `q`, `from`, `to`).
pub async fn save_search(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Form(form): Form<NewSearch>,
) -> Response {
    let saved = match checked(&state, form) {
        Ok(search) => save(&state, search).await,
        Err(error) => Err(error),
    };
    match saved {
        Ok(search) => Redirect::to(&crate::links::saved_search(&search)).into_response(),
        Err(error) => error_page(&user, error),
    }
}
