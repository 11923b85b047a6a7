//! Files under `/static/`, compiled into the binary so the container needs nothing beside it.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, content type, content)
const ASSETS: &[(&str, &str, &str)] =
    &[("style.css", "text/css; charset=utf-8", include_str!("../../static/style.css"))];

pub async fn serve_asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=3600")], *body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
