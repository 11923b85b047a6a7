//! `GET /api/v1/events.csv` and `/api/v1/events.ndjson`: the whole result of a read, newest
//! first, streamed page by page as the store yields it, so the first bytes leave before the last
//! event is read and memory does not grow with the result.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt as _, stream};
use time::OffsetDateTime;

use super::AppState;
use super::auth::ApiUser;
use super::error::ApiError;
use super::query::ReadParams;
use crate::event::{StoredEvent, timestamp_format};
use crate::project::Projects;
use crate::sourcemaps::{Mapped, Shown, SourceMaps};
use crate::store::{Cursor, LogStore};

/// Events read from the store per page of the export.
const EXPORT_PAGE_EVENTS: usize = 1000;

/// The CSV columns, in the order of the contract.
const CSV_COLUMNS: [&str; 16] = [
    "id",
    "timestamp",
    "level",
    "type",
    "code",
    "message",
    "http_method",
    "http_status",
    "url",
    "location",
    "user",
    "release",
    "fingerprint",
    "group",
    "stack",
    "extra",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
}

pub async fn export_csv(
    state: State<AppState>,
    user: ApiUser,
    params: Query<ReadParams>,
) -> Result<Response, ApiError> {
    export(state, user, params, Format::Csv)
}

pub async fn export_ndjson(
    state: State<AppState>,
    user: ApiUser,
    params: Query<ReadParams>,
) -> Result<Response, ApiError> {
    export(state, user, params, Format::Ndjson)
}

fn export(
    State(state): State<AppState>,
    _user: ApiUser,
    Query(mut params): Query<ReadParams>,
    format: Format,
) -> Result<Response, ApiError> {
    // The whole result: paging is the export's own.
    params.limit = Some(EXPORT_PAGE_EVENTS.to_string());
    params.cursor = None;
    let now = OffsetDateTime::now_utc();
    // Checked before the first byte, so a bad request still gets its 4xx.
    let query = params.to_query(&state.projects, now)?;
    let filename = filename(&query.project.name, &query.env, query.from, query.to, format);
    let group = query.group_name().to_string();
    // The CSV keeps its columns (search.md): only the NDJSON carries the originals.
    let sourcemaps = (format == Format::Ndjson).then(|| Arc::clone(&state.sourcemaps));
    let pages =
        Pages { store: Arc::clone(&state.store), projects: Arc::clone(&state.projects), params, now, sourcemaps };
    let header_row = (format == Format::Csv).then(|| Ok(Bytes::from(csv_header())));
    let body = stream::iter(header_row)
        .chain(pages.into_stream(move |(events, mapped)| encode(&events, &mapped, &group, format)));
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Ndjson => "application/x-ndjson",
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type)), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(body),
    )
        .into_response())
}

/// The pages of one read, each fetched when the previous one has been sent.
struct Pages {
    store: Arc<dyn LogStore>,
    projects: Arc<Projects>,
    params: ReadParams,
    now: OffsetDateTime,
    /// Maps applied to each page's stacks, when the format shows their originals.
    sourcemaps: Option<Arc<SourceMaps>>,
}

/// One page's events, with the originals of their stacks where a map applied.
type MappedEvents = (Vec<StoredEvent>, Vec<Option<Mapped>>);

impl Pages {
    fn into_stream(
        self,
        encode: impl Fn(MappedEvents) -> Bytes + Send + 'static,
    ) -> impl futures_util::Stream<Item = Result<Bytes, ApiError>> + Send + 'static {
        // `None` cursor state: not started; `Some(None)`: done.
        stream::unfold((self, Some(None::<Cursor>), encode), |(pages, next, encode)| async move {
            let cursor = next?;
            let page = pages.page(cursor).await;
            match page {
                Ok((events, next_cursor)) => {
                    let bytes = encode(events);
                    let next = next_cursor.map(Some);
                    Some((Ok(bytes), (pages, next, encode)))
                }
                Err(error) => {
                    // The status has gone out; cutting the body short tells the client it failed.
                    tracing::warn!(error = %error, "an export stopped");
                    Some((Err(error), (pages, None, encode)))
                }
            }
        })
    }

    async fn page(&self, cursor: Option<Cursor>) -> Result<(MappedEvents, Option<Cursor>), ApiError> {
        let mut query = self.params.to_query(&self.projects, self.now)?;
        query.cursor = cursor;
        let page = self.store.events(&query).await?;
        let mapped = match &self.sourcemaps {
            Some(sourcemaps) => sourcemaps.apply(&page.events, false).await,
            None => vec![None; page.events.len()],
        };
        Ok(((page.events, mapped), page.next_cursor))
    }
}

fn encode(events: &[StoredEvent], mapped: &[Option<Mapped>], group: &str, format: Format) -> Bytes {
    match format {
        Format::Csv => Bytes::from(csv_rows(events, group)),
        Format::Ndjson => {
            let mut out = String::new();
            for (event, mapped) in events.iter().zip(mapped) {
                out.push_str(&Shown::new(event, mapped.as_ref()).to_json());
                out.push('\n');
            }
            Bytes::from(out)
        }
    }
}

fn csv_header() -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let _ = writer.write_record(CSV_COLUMNS);
    writer.into_inner().unwrap_or_default()
}

/// The rows of `events` (RFC 4180: quoted where needed, CRLF line ends).
fn csv_rows(events: &[StoredEvent], group: &str) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    for event in events {
        let cells = csv_cells(event, group);
        // Writing into memory cannot fail; a cell that could not be written would show as missing.
        let _ = writer.write_record(cells.iter().map(|cell| neutralise(cell).into_owned()));
    }
    writer.into_inner().unwrap_or_default()
}

fn csv_cells(e: &StoredEvent, group: &str) -> [String; 16] {
    let json = |value: Option<String>| value.unwrap_or_default();
    [
        e.id.to_string(),
        timestamp_format::format(e.timestamp),
        e.level.as_str().to_string(),
        e.kind.clone().unwrap_or_default(),
        e.code.clone().unwrap_or_default(),
        e.message.clone(),
        e.http.as_ref().and_then(|h| h.method.clone()).unwrap_or_default(),
        e.http.as_ref().and_then(|h| h.status).map(|s| s.to_string()).unwrap_or_default(),
        e.url.clone().unwrap_or_default(),
        e.location.clone().unwrap_or_default(),
        json(e.user.as_ref().map(|u| u.to_string())),
        e.release.clone().unwrap_or_default(),
        e.fingerprint.clone().unwrap_or_default(),
        group.to_string(),
        e.stack.clone().unwrap_or_default(),
        json(e.extra.as_ref().and_then(|x| serde_json::to_string(x).ok())),
    ]
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return first)
/// gets a `'` in front (security.md).
fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}").into() } else { cell.into() }
}

/// `logboard-P-E-<from>-<to>.csv`, with names cut to safe characters and times as
/// `20261124T150000Z`.
fn filename(project: &str, env: &str, from: OffsetDateTime, to: OffsetDateTime, format: Format) -> String {
    let safe = |text: &str| -> String {
        text.chars().map(|c| if c.is_ascii_alphanumeric() || "._".contains(c) { c } else { '_' }).collect()
    };
    let compact = |t: OffsetDateTime| timestamp_format::format(t).replace(['-', ':'], "").replace(".000", "");
    let extension = match format {
        Format::Csv => "csv",
        Format::Ndjson => "ndjson",
    };
    format!("logboard-{}-{}-{}-{}.{extension}", safe(project), safe(env), compact(from), compact(to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn cells_that_a_spreadsheet_would_run_get_a_quote_in_front() {
        for cell in ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in ["1-2", "a=b", "", "plain"] {
            assert_eq!(neutralise(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn the_file_is_named_after_the_project_environment_and_range() {
        let name = filename(
            "demo",
            "prod/eu",
            datetime!(2026-11-24 15:00:00 UTC),
            datetime!(2026-11-25 15:00:00.500 UTC),
            Format::Csv,
        );
        assert_eq!(name, "logboard-demo-prod_eu-20261124T150000Z-20261125T150000.500Z.csv");
    }
}
