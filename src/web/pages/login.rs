//! The login form: a session after the right password, the same words for any failure, and
//! refusals (throttled, busy) with `Retry-After`.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::Page;
use crate::web::AppState;
use crate::web::auth::safe_next;
use crate::web::limits::{ClientIp, OverHttps};
use crate::web::session::{clear_cookie, session_cookie, session_token};
use crate::web::throttle::Refusal;

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
        state.auth.end_session(&token).await;
    }
    ([(header::SET_COOKIE, clear_cookie())], Redirect::to("/login")).into_response()
}
