//! Files under `/static/`, compiled into the binary so the container needs nothing beside it.
//!
//! The browser client (`logboard.js`, and `logboard.mjs`: the same code plus an ES-module tail)
//! is loaded by other sites: it is sent with `Access-Control-Allow-Origin: *` (module scripts and
//! `<script crossorigin>` need it) and `Cross-Origin-Resource-Policy: cross-origin`. Asked for as
//! `?v=` + this crate's version it is cached for a year as immutable; every other address of it
//! (no `v`, another `v`) for five minutes, so a page that does not pin the version picks up a new
//! release soon. The version in the address changes with every release of logboard, which is
//! the release of the client too (its `Logboard.version`; tests/it/client.rs keeps them equal).

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The version a client address must carry to be cached for good: `/static/logboard.js?v=0.1.0`.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

const CLIENT_JS: &str = include_str!("../../static/logboard.js");
const CLIENT_MODULE: &str =
    concat!(include_str!("../../static/logboard.js"), include_str!("../../static/logboard.mjs"));

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
const CACHE_CLIENT_UNVERSIONED: &str = "public, max-age=300";
const CACHE_OTHER: &str = "public, max-age=3600";

/// (name, content type, content, is the browser client)
const ASSETS: &[(&str, &str, &str, bool)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../static/style.css"), false),
    // The logs page's live mode.
    ("live.js", JAVASCRIPT, include_str!("../../static/live.js"), false),
    // The keyboard shortcuts of the logs and issues pages.
    ("keys.js", JAVASCRIPT, include_str!("../../static/keys.js"), false),
    ("logboard.js", JAVASCRIPT, CLIENT_JS, true),
    ("logboard.mjs", JAVASCRIPT, CLIENT_MODULE, true),
];

pub async fn serve_asset(Path(file): Path<String>, RawQuery(query): RawQuery) -> Response {
    let Some((_, content_type, body, is_client)) = ASSETS.iter().find(|(name, ..)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    if !is_client {
        return ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, CACHE_OTHER)], *body).into_response();
    }
    let pinned = query.is_some_and(|q| q.split('&').any(|pair| pair.strip_prefix("v=") == Some(CLIENT_VERSION)));
    let cache = if pinned { CACHE_IMMUTABLE } else { CACHE_CLIENT_UNVERSIONED };
    (
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, cache),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (HeaderName::from_static("cross-origin-resource-policy"), "cross-origin"),
        ],
        *body,
    )
        .into_response()
}
