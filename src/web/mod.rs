//! The HTTP side: application state, every route in one place, and the layers around them.

pub mod alerts;
pub mod api;
pub mod assets;
pub mod auth;
pub mod error;
pub mod export;
pub mod ingest;
pub mod intake;
pub mod limits;
pub mod otlp;
pub mod pages;
pub mod query;
pub mod searches;
pub mod sentry;
pub mod serve;
pub mod session;
pub mod sourcemaps;
pub mod tail;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::csrf::{CsrfLayer, ProtectionError};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use self::error::ApiError;
use crate::config::Config;
use crate::metrics::{self, Metrics};
use crate::project::Projects;
use crate::store::LogStore;
use crate::zone::Zone;

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    /// The validated configuration the service started with.
    pub config: Arc<Config>,
    /// Where events are written and read: the embedded store or CloudWatch.
    pub store: Arc<dyn LogStore>,
    /// Dashboard users, sessions and API tokens.
    pub auth: Arc<auth::Auth>,
    /// Ingest rate limits per key and per client IP.
    pub limits: Arc<limits::RateLimits>,
    /// The projects, built from the config once: reads and ingest borrow them.
    pub projects: Arc<Projects>,
    /// The service's counters, served on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Errors grouped by fingerprint, kept up to date by ingest (or the issue follower).
    pub issues: Arc<dyn crate::issues::IssueIndex>,
    /// The alert rules and the monitor's checks.
    pub alerts: Arc<crate::alerts::engine::Alerts>,
    /// Alert messages waiting to be delivered, and how each delivery went.
    pub outbox: Arc<dyn crate::alerts::outbox::Outbox>,
    /// Ingest refusals per project and reason, for the monitor.
    pub refusals: Arc<crate::alerts::monitor::Refusals>,
    /// New events for the live tails (`/api/v1/tail`) of this process.
    pub tail: Arc<crate::tail::Tail>,
    /// The one ingest pipeline every ingest door hands its events to.
    pub pipeline: Arc<crate::ingest::Pipeline>,
    /// The zone every time on the pages is shown and typed in (`[ui] timezone`); the API keeps UTC.
    pub zone: Zone,
    /// Whether the disk under `data_dir` has room: below `retention.min_free_bytes`, no ingest.
    pub disk: Arc<crate::disk::DiskGuard>,
    /// Uploaded source maps, applied to stacks when events are read.
    pub sourcemaps: Arc<crate::sourcemaps::SourceMaps>,
    /// The team's saved searches (the logs page lists a project's).
    pub searches: Arc<dyn crate::searches::SavedSearches>,
}

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    // Slow or stalled clients (a trickled body included) are cut off with 408.
    let request_timeout = Duration::from_secs(state.config.server.request_timeout_secs);
    let ingest_cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::CONTENT_ENCODING,
            HeaderName::from_static(crate::project::KEY_HEADER),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(3600));

    // CORS wraps the ingest POST (and its preflight) only; the GET on the same path is the read API.
    let events = post(ingest::ingest_events)
        .options(|| async { StatusCode::NO_CONTENT })
        .layer(ingest_cors)
        .get(api::list_events);

    Router::new()
        .route("/api/v1/events", events)
        .route("/api/v1/projects", get(api::list_projects))
        .route("/api/{sentry_id}/envelope/", sentry_door(post(sentry::ingest_envelope)))
        .route("/api/{sentry_id}/store/", sentry_door(post(sentry::ingest_store)))
        .route("/v1/logs", post(otlp::ingest_logs))
        .route("/api/v1/groups", get(api::list_groups))
        .route("/api/v1/events.csv", get(export::export_csv))
        .route("/api/v1/events.ndjson", get(export::export_ndjson))
        .route("/api/v1/events/{id}", get(api::get_event))
        .route("/api/v1/events/{id}/context", get(api::show_context))
        .route("/api/v1/histogram", get(api::show_histogram))
        .route("/api/v1/tail", get(tail::tail_events))
        .route("/api/v1/deadletters", get(api::list_dead_letters))
        .route("/api/v1/issues", get(api::list_issues))
        .route("/api/v1/issues/{fingerprint}/status", post(api::set_issue_status).layer(cross_site_guard()))
        .route("/api/v1/searches", post(searches::create_search).layer(cross_site_guard()).get(searches::list_searches))
        .route("/api/v1/searches/{id}", delete(searches::delete_search).layer(cross_site_guard()))
        .route("/api/v1/sourcemaps", get(sourcemaps::list_sourcemaps))
        .route(
            "/api/v1/sourcemaps/{project}/{release}/{file}",
            put(sourcemaps::upload_sourcemap).delete(sourcemaps::delete_sourcemap).layer(cross_site_guard()),
        )
        .route("/api/v1/alerts", get(alerts::list_alerts))
        .route("/api/v1/alerts/{name}/history", get(alerts::show_history))
        .route("/api/v1/alerts/{name}/snooze", post(alerts::snooze).delete(alerts::unsnooze).layer(cross_site_guard()))
        .route("/", get(pages::show_home))
        .route("/logs", get(pages::show_logs))
        .route("/logs/searches", post(pages::save_search).layer(cross_site_guard()))
        .route("/issues", get(pages::show_issues))
        .route("/issues/status", post(pages::change_status).layer(cross_site_guard()))
        .route("/alerts", get(pages::show_alerts))
        .route("/alerts/snooze", post(pages::change_snooze).layer(cross_site_guard()))
        .route("/login", get(pages::show_login).post(pages::log_in).layer(cross_site_guard()))
        .route("/logout", post(pages::log_out).layer(cross_site_guard()))
        .route("/static/{file}", get(assets::serve_asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(check_ready))
        .route("/metrics", get(show_metrics))
        .route(
            "/robots.txt",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "User-agent: *\nDisallow: /\n") }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "no such page"}))) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::refresh_cookie))
        .with_state(state)
        .layer(CatchPanicLayer::custom(answer_panic))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
        .layer(header_layer("x-robots-tag", "noindex, nofollow"))
        .layer(header_layer("x-content-type-options", "nosniff"))
        .layer(header_layer("referrer-policy", "no-referrer"))
        .layer(header_layer("content-security-policy", CONTENT_SECURITY_POLICY))
        // Pages and API answers show logged data: no cache keeps them (static files set their own).
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(axum::middleware::from_fn(error::log_errors))
        .layer(TraceLayer::new_for_http())
}

/// A Sentry endpoint with its preflight, under the SDKs' CORS (protocols.md).
fn sentry_door(route: axum::routing::MethodRouter<AppState>) -> axum::routing::MethodRouter<AppState> {
    route.options(|| async { StatusCode::NO_CONTENT }).layer(sentry::cors())
}

/// The last line: a handler that panics answers an opaque 500 (logged once, here) instead of
/// dropping the connection. No input should get this far; a test throws many at it.
fn answer_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::http::Response<axum::body::Body> {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    tracing::error!(panic = detail, "a request handler panicked");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "internal error"}))).into_response()
}

/// Refuses state-changing requests from other sites (`Sec-Fetch-Site`, else `Origin` vs `Host`).
fn cross_site_guard() -> CsrfLayer<impl Fn(ProtectionError) -> axum::http::Response<axum::body::Body> + Clone> {
    CsrfLayer::new().with_rejection_response(|_: ProtectionError| {
        ApiError::Forbidden("cross-site request refused".into()).into_response()
    })
}

fn header_layer(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(HeaderName::from_static(name), HeaderValue::from_static(value))
}

/// Prometheus scrapes this; like `/healthz` it needs no login (it names no project or event).
async fn show_metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.store.refresh_metrics().await;
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], state.metrics.render())
}

async fn check_ready(State(state): State<AppState>) -> impl IntoResponse {
    if let Some(why) = state.disk.refusal() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "reason": why})));
    }
    match state.store.check_ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "reason": format!("{e:#}")}))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_handler_that_panics_answers_an_opaque_500_instead_of_dropping_the_connection() {
        async fn boom() -> &'static str {
            panic!("secret detail in the panic message")
        }
        let app = Router::new().route("/boom", get(boom)).layer(CatchPanicLayer::custom(answer_panic));
        let request = axum::http::Request::get("/boom").body(Body::empty()).expect("request");
        let response = app.oneshot(request).await.expect("an answer, not a dropped connection");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.expect("body");
        assert_eq!(&body[..], br#"{"error":"internal error"}"#, "nothing of the panic leaks");
    }
}
