//! The events around one event on CloudWatch ([`crate::store::LogStore::context`]), read from its
//! log stream rather than searched for, so the calls stay few whatever the group's volume:
//! - logboard's own group: GetLogEvents on the event's hourly stream, one read each way, plus
//!   one for each further hourly stream the context reaches into; past the stream next to the
//!   event's, one FilterLogEvents of the day that way first, which answers a quiet group at once
//!   (a busy one goes on stream by stream). A context reaches a day each way at most
//!   ([`DAY_MS`], [`MAX_FURTHER_STREAMS`]);
//! - a Lambda (or any other) group: FilterLogEvents at the event's millisecond finds its
//!   stream, GetLogEvents reads back from it to where the context begins, and one
//!   FilterLogEvents on that stream reads forward from there through the context. Lines of
//!   these groups take their id from FilterLogEvents' event id, which GetLogEvents does not give,
//!   hence the forward read by filter.
//!
//! A read fills each side when it can; a page that came back full may have cut the events of its
//! last millisecond short, so it counts toward the side only strictly before that millisecond.

use std::collections::HashSet;

use anyhow::{Context as _, anyhow};
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use time::Duration;
use ulid::Ulid;

use super::CloudWatchStore;
use super::foreign::read_line;
use super::read::Budget;
use crate::event::{StoredEvent, from_unix_ms};
use crate::project::Project;
use crate::store::context::{Around, Context, position};

/// Hourly streams a context walks into beyond the event's own, each way.
const MAX_FURTHER_STREAMS: usize = 24;
/// Pages one stream is read in at most, each way (only millions of events in one millisecond
/// would need more).
const MAX_PAGES_PER_STREAM: usize = 4;
/// Events a read asks for beyond those it needs: room for ties in the event's millisecond and the
/// page's last one, so that one read usually fills its side.
const READ_SLACK: usize = 20;
/// GetLogEvents' and FilterLogEvents' largest page.
const MAX_PAGE_EVENTS: usize = 10_000;
/// How far from the event a context reaches: a day each way.
const DAY_MS: i64 = 24 * 3_600_000;
/// Unshipped events of the group looked at, around the event.
const PENDING_ROWS: usize = 10_000;

/// Whose lines are read: the group, and the project/environment they are read as.
struct Lines<'a> {
    project: &'a Project,
    env: &'a str,
    group: &'a str,
}

impl Lines<'_> {
    fn event(&self, raw: &FilteredLogEvent) -> Option<StoredEvent> {
        read_line(&self.project.name, self.env, raw)
    }
}

/// Which way a read goes from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Back,
    Forward,
}

/// One page of a stream: the events read, whether the stream has more that way, and the
/// millisecond at its far end (which a full page may have cut short).
struct Page {
    events: Vec<StoredEvent>,
    /// Timestamps of every line read, whether or not it reads as an event.
    stamps: Vec<i64>,
    full: bool,
    token: Option<String>,
}

/// What one side has gathered: how many of its events can be trusted to be all there is that
/// close to the event.
struct Side {
    way: Way,
    at: (i64, Ulid),
    /// Set while the last page read came back full: events at this millisecond or beyond it
    /// may be missing.
    edge: Option<i64>,
}

impl Side {
    fn new(way: Way, at: (i64, Ulid)) -> Side {
        Side { way, at, edge: None }
    }

    /// The events of `candidates` on this side that no unread event can come between.
    fn complete(&self, candidates: &[StoredEvent]) -> usize {
        candidates
            .iter()
            .filter(|e| {
                let (p, ts) = (position(e), e.timestamp_ms());
                match self.way {
                    Way::Back => p < self.at && self.edge.is_none_or(|edge| ts > edge),
                    Way::Forward => p > self.at && self.edge.is_none_or(|edge| ts < edge),
                }
            })
            .count()
    }
}

impl CloudWatchStore {
    pub(super) async fn read_context(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
        around: Around,
    ) -> anyhow::Result<Option<Context>> {
        let Some(group) = self.naming.readable_group(project, env, group) else { return Ok(None) };
        let Ok(ts) = i64::try_from(id.timestamp_ms()) else { return Ok(None) };
        let found = if group == project.own_group(env) {
            self.own_context(&Lines { project, env, group: &group }, (ts, id), around).await?
        } else {
            self.stream_context(&Lines { project, env, group: &group }, (ts, id), around).await?
        };
        Ok(found.and_then(|candidates| {
            let event = candidates.iter().find(|e| e.id == id)?.clone();
            Some(Context::cut(event, candidates, around))
        }))
    }

    /// Candidates around `at` in logboard's own group: its hourly streams walked out from the
    /// event's, plus what waits in the spool.
    async fn own_context(
        &self,
        source: &Lines<'_>,
        at: (i64, Ulid),
        around: Around,
    ) -> anyhow::Result<Option<Vec<StoredEvent>>> {
        let group = source.group;
        let (ts, _) = at;
        let mut candidates = Vec::new();
        for (way, wanted) in [(Way::Back, around.before), (Way::Forward, around.after)] {
            let mut side = Side::new(way, at);
            let mut names = HashSet::new();
            for hour in 0..=MAX_FURTHER_STREAMS {
                let step = Duration::hours(i64::try_from(hour).unwrap_or(0));
                let Some(time) = from_unix_ms(ts).and_then(|t| match way {
                    Way::Back => t.checked_sub(step),
                    Way::Forward => t.checked_add(step),
                }) else {
                    break;
                };
                // No stream is written for an hour that has not begun.
                if way == Way::Forward && hour > 0 && time > time::OffsetDateTime::now_utc() + Duration::hours(1) {
                    break;
                }
                // Past the stream next to the event's, one filter read of the whole day that way
                // answers a quiet group (hours without a stream would each cost a call); a busy
                // one goes on stream by stream.
                if hour == 2 && self.read_day(source, &mut side, wanted, &mut candidates).await? {
                    break;
                }
                let stream = self.naming.stream(time);
                if !names.insert(stream.clone()) {
                    continue;
                }
                // The event itself is read with the first stream, whatever `wanted` is.
                let done = self.read_stream(source, &stream, &mut side, wanted, &mut candidates).await?;
                if done {
                    break;
                }
            }
        }
        // Accepted and not yet in CloudWatch: real neighbours too (a copy already shipped is
        // the same id, kept once by the cut).
        for body in self.spool.pending(group, ts - DAY_MS, ts + DAY_MS, PENDING_ROWS).await? {
            if let Ok(event) = serde_json::from_str::<StoredEvent>(&body) {
                candidates.push(event);
            }
        }
        Ok(Some(candidates))
    }

    /// Reads one stream of the own group from the event's millisecond `side`'s way until the side
    /// has `wanted` events; true when it has them (no further stream is needed).
    async fn read_stream(
        &self,
        source: &Lines<'_>,
        stream: &str,
        side: &mut Side,
        wanted: usize,
        candidates: &mut Vec<StoredEvent>,
    ) -> anyhow::Result<bool> {
        let limit = (wanted + 1 + READ_SLACK).min(MAX_PAGE_EVENTS);
        let mut token = None;
        for _ in 0..MAX_PAGES_PER_STREAM {
            let Some(page) = self.get_page(source, stream, side, limit, token.take()).await? else {
                // No such stream: nothing in that hour.
                side.edge = None;
                return Ok(false);
            };
            candidates.extend(page.events);
            side.edge = page.full.then(|| far_end(&page.stamps, side.way)).flatten();
            if side.complete(candidates) >= wanted {
                return Ok(true);
            }
            match (page.full, page.token) {
                (true, Some(next)) => token = Some(next),
                _ => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Reads the day from the event `side`'s way in one FilterLogEvents page; true when that
    /// page held all of it (or, going forward, `wanted` events), so no stream is left to read.
    /// A page cut short going back holds the far end of the day, not the events next to the
    /// event: it is dropped.
    async fn read_day(
        &self,
        source: &Lines<'_>,
        side: &mut Side,
        wanted: usize,
        candidates: &mut Vec<StoredEvent>,
    ) -> anyhow::Result<bool> {
        let group = source.group;
        let (ts, _) = side.at;
        let (start, end) = match side.way {
            Way::Back => (ts - DAY_MS, ts),
            Way::Forward => (ts, ts + DAY_MS),
        };
        let answer = self
            .client
            .filter_log_events()
            .log_group_name(group)
            .start_time(start)
            .end_time(end)
            .limit(i32::try_from(MAX_PAGE_EVENTS).unwrap_or(i32::MAX))
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) if error.code() == Some("ResourceNotFoundException") => return Ok(true),
            Err(error) => {
                return Err(anyhow!("{}", DisplayErrorContext(&error)))
                    .with_context(|| format!("FilterLogEvents on {group}"));
            }
        };
        let lines = answer.events();
        let cut_short = answer.next_token().is_some_and(|t| !t.is_empty());
        if cut_short && side.way == Way::Back {
            return Ok(false);
        }
        let stamps: Vec<i64> = lines.iter().filter_map(|line| line.timestamp()).collect();
        candidates.extend(lines.iter().filter_map(|raw| source.event(raw)));
        side.edge = if cut_short { far_end(&stamps, side.way) } else { None };
        Ok(!cut_short || side.complete(candidates) >= wanted)
    }

    /// One GetLogEvents page of `stream` from the event's millisecond, `side`'s way; `None` when
    /// the stream does not exist.
    async fn get_page(
        &self,
        source: &Lines<'_>,
        stream: &str,
        side: &Side,
        limit: usize,
        token: Option<String>,
    ) -> anyhow::Result<Option<Page>> {
        let group = source.group;
        let (ts, _) = side.at;
        let request = self
            .client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_next_token(token);
        let request = match side.way {
            // GetLogEvents' end is exclusive: the event's own millisecond is read too.
            Way::Back => request.end_time(ts + 1).start_from_head(false),
            Way::Forward => request.start_time(ts).start_from_head(true),
        };
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(error) if error.code() == Some("ResourceNotFoundException") => return Ok(None),
            Err(error) => {
                return Err(anyhow!("{}", DisplayErrorContext(&error)))
                    .with_context(|| format!("GetLogEvents on {group} / {stream}"));
            }
        };
        let lines = answer.events();
        let stamps: Vec<i64> = lines.iter().filter_map(|line| line.timestamp()).collect();
        let events = lines
            .iter()
            .filter_map(|line| {
                let raw = FilteredLogEvent::builder()
                    .set_timestamp(line.timestamp())
                    .set_message(line.message().map(str::to_string))
                    .set_ingestion_time(line.ingestion_time())
                    .log_stream_name(stream)
                    .build();
                source.event(&raw)
            })
            .collect();
        let token = match side.way {
            Way::Back => answer.next_backward_token(),
            Way::Forward => answer.next_forward_token(),
        };
        Ok(Some(Page { events, stamps, full: lines.len() >= limit, token: token.map(str::to_string) }))
    }

    /// Candidates around `at` in another group (a Lambda function's): only its stream.
    async fn stream_context(
        &self,
        source: &Lines<'_>,
        at: (i64, Ulid),
        around: Around,
    ) -> anyhow::Result<Option<Vec<StoredEvent>>> {
        let group = source.group;
        let (ts, id) = at;
        // 1. The stream: the line of that id at its millisecond.
        let mut stream = None;
        self.scan(group, ts, ts, None, &mut Budget::new(MAX_PAGES_PER_STREAM as u32, READ_TIME), true, |raw| {
            if source.event(raw).is_some_and(|e| e.id == id) {
                stream = raw.log_stream_name().map(str::to_string);
            }
            stream.is_none()
        })
        .await?;
        let Some(stream) = stream else { return Ok(None) };

        // 2. Back from the event to where its `before` events begin: timestamps are enough.
        let mut start = ts;
        let mut stamps_back: Vec<i64> = Vec::new();
        if around.before > 0 {
            let mut back = Side::new(Way::Back, at);
            let limit = (around.before + 1 + READ_SLACK).min(MAX_PAGE_EVENTS);
            let mut token = None;
            for _ in 0..MAX_PAGES_PER_STREAM {
                let Some(page) = self.get_page(source, &stream, &back, limit, token.take()).await? else {
                    break;
                };
                stamps_back.extend(&page.stamps);
                back.edge = page.full.then(|| far_end(&page.stamps, Way::Back)).flatten();
                // Lines of the event's own millisecond are left out: without ids, their side is unknown.
                let complete = stamps_back.iter().filter(|&&t| t < ts && back.edge.is_none_or(|e| t > e)).count();
                if complete >= around.before || !page.full {
                    break;
                }
                match page.token {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
            start = stamps_back.iter().copied().min().unwrap_or(ts).min(ts);
        }

        // 3. Forward by filter from there, through the event, until its `after` events are in.
        let mut candidates = Vec::new();
        let mut forward = Side::new(Way::Forward, at);
        let limit = (stamps_back.len() + around.after + 1 + READ_SLACK).min(MAX_PAGE_EVENTS);
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES_PER_STREAM {
            let answer = self
                .client
                .filter_log_events()
                .log_group_name(group)
                .log_stream_names(&stream)
                .start_time(start)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|error| anyhow!("{}", DisplayErrorContext(&error)))
                .with_context(|| format!("FilterLogEvents on {group} / {stream}"))?;
            let lines = answer.events();
            candidates.extend(lines.iter().filter_map(|raw| source.event(raw)));
            let next = answer.next_token().filter(|t| !t.is_empty());
            let stamps: Vec<i64> = lines.iter().filter_map(|line| line.timestamp()).collect();
            forward.edge = next.and_then(|_| far_end(&stamps, Way::Forward));
            if forward.complete(&candidates) >= around.after && candidates.iter().any(|e| e.id == id) {
                break;
            }
            match next {
                Some(next) => token = Some(next.to_string()),
                None => break,
            }
        }
        Ok(Some(candidates))
    }
}

/// How long the search for a Lambda event's stream may take.
const READ_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// The millisecond at the far end of a page read `way`: the oldest going back, the newest going
/// forward.
fn far_end(stamps: &[i64], way: Way) -> Option<i64> {
    match way {
        Way::Back => stamps.iter().copied().min(),
        Way::Forward => stamps.iter().copied().max(),
    }
}
