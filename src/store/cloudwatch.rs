//! AWS CloudWatch Logs: the only module that sees AWS types.
//!
//! Writes go to the write-ahead spool ([`crate::spool`]) and return once durable; the writer task
//! ([`crate::writer`]) drains the spool into CloudWatch through [`CloudWatchDestination`]. Reads
//! use FilterLogEvents, and every filter is applied again here, exactly: CloudWatch's own filter
//! is only a cheap first cut (and emulators ignore it).
//!
//! Groups other than our own (e.g. a Lambda function's) hold lines that are not our JSON; they
//! are read as events with a level guessed from the line and an id derived from the line, so the
//! same line always has the same id.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::types::{FilteredLogEvent, InputLogEvent};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use ulid::Ulid;

use super::{DeadLetter, DeadLetters, EventPage, EventQuery, Group, GroupKind, LevelCounts, LogStore};
use crate::config::{CloudWatchConfig, Config, ProjectConfig};
use crate::event::{
    Level, StoredEvent, from_unix_ms, strip_unsafe_chars, strip_unsafe_in_map, timestamp_format, unix_ms,
};
use crate::metrics::Metrics;
use crate::spool::{Spool, SpoolRecord};
use crate::writer::{self, LogDestination, OutEvent, PutError, PutOutcome, Writer};

/// The first time window a read scans, walking back from its newest end.
const FIRST_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Each further window is this many times wider than the one before.
const WINDOW_GROWTH: i64 = 4;
/// FilterLogEvents page size (the API's maximum).
const FILTER_PAGE_EVENTS: i32 = 10_000;
/// `level_counts` stops counting after this many events and says so.
const MAX_COUNTED_EVENTS: u64 = 10_000;
/// How long a successful readiness probe is trusted (DescribeLogGroups is limited to 5/s).
const READY_CACHE: Duration = Duration::from_secs(10);
/// How long the groups found under one prefix are reused (DescribeLogGroups is limited to 5/s).
const GROUP_LIST_CACHE: Duration = Duration::from_secs(30);
/// Unshipped events a read looks at in the spool at most (newest first).
const PENDING_READ_ROWS: usize = 10_000;
/// How often `shutdown` looks whether the spool is empty yet.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// How the store talks to CloudWatch; the defaults are for production, tests shorten them.
#[derive(Debug, Clone)]
pub struct CloudWatchOptions {
    /// One SDK attempt at most; past it the call counts as a timeout and is retried.
    pub attempt_timeout: Duration,
    /// How long an event may wait in memory for others to share its put.
    pub linger: Duration,
    /// PutLogEvents calls in flight at once.
    pub max_puts_in_flight: usize,
}

impl Default for CloudWatchOptions {
    fn default() -> Self {
        CloudWatchOptions {
            attempt_timeout: ATTEMPT_TIMEOUT,
            linger: writer::FLUSH_LINGER,
            max_puts_in_flight: writer::MAX_PUTS_IN_FLIGHT,
        }
    }
}

pub struct CloudWatchStore {
    client: Client,
    metrics: Arc<Metrics>,
    naming: CloudWatchConfig,
    spool: Arc<Spool>,
    spool_max_bytes: u64,
    /// Wakes the writer when the spool has new events.
    notify: Arc<Notify>,
    /// Turned true on shutdown: the writer flushes everything at once.
    flush_all: watch::Sender<bool>,
    writer: AbortHandle,
    /// When CloudWatch last answered a readiness probe.
    last_ready: Mutex<Option<Instant>>,
    /// External groups by prefix, and when they were listed.
    external_groups: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

impl CloudWatchStore {
    /// Connects with the AWS default chain (region and endpoint from the config when set),
    /// opens the spool under `storage.data_dir` and starts the writer task.
    pub async fn open(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<CloudWatchStore> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if !config.cloudwatch.region.is_empty() {
            loader = loader.region(Region::new(config.cloudwatch.region.clone()));
        }
        if !config.cloudwatch.endpoint_url.is_empty() {
            loader = loader.endpoint_url(&config.cloudwatch.endpoint_url);
        }
        let sdk = loader.load().await;
        CloudWatchStore::with_client(config, Client::new(&sdk), metrics, CloudWatchOptions::default()).await
    }

    /// Like [`CloudWatchStore::open`] with a client made by the caller (tests: static
    /// credentials and an emulator). Its retries are turned off: the writer is the one retry layer.
    pub async fn with_client(
        config: &Config,
        client: Client,
        metrics: Arc<Metrics>,
        options: CloudWatchOptions,
    ) -> anyhow::Result<CloudWatchStore> {
        let sdk_config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(options.attempt_timeout)
                    .build(),
            )
            .build();
        let client = Client::from_conf(sdk_config);
        let spool = Arc::new(Spool::open(&config.storage.data_dir).context("opening the spool")?);
        let notify = Arc::new(Notify::new());
        let (flush_all, flush_rx) = watch::channel(false);
        let destination = Arc::new(CloudWatchDestination { client: client.clone() });
        let writer = Writer::new(Arc::clone(&spool), destination)
            .with_metrics(Arc::clone(&metrics))
            .with_linger(options.linger)
            .with_max_in_flight(options.max_puts_in_flight);
        let writer = tokio::spawn(writer.run(Arc::clone(&notify), flush_rx)).abort_handle();
        // Events left by an earlier run are shipped without waiting for new ones.
        notify.notify_one();
        Ok(CloudWatchStore {
            client,
            metrics,
            naming: config.cloudwatch.clone(),
            spool,
            spool_max_bytes: config.storage.spool_max_bytes,
            notify,
            flush_all,
            writer,
            last_ready: Mutex::new(None),
            external_groups: Mutex::new(HashMap::new()),
        })
    }

    /// Events accepted but not yet in CloudWatch.
    pub fn unshipped_events(&self) -> u64 {
        self.spool.unshipped_events()
    }

    fn own_group(&self, project: &str, env: &str) -> String {
        self.naming.group_name(project, env)
    }

    /// The group a read may look at: the own group, or one under the project's extra prefixes.
    fn readable_group(&self, project: &ProjectConfig, env: &str, group: Option<&str>) -> Option<String> {
        let own = self.own_group(&project.name, env);
        match group {
            None => Some(own),
            Some(g) if g == own => Some(own),
            Some(g) if is_external_group_of(project, g) => Some(g.to_string()),
            Some(_) => None,
        }
    }

    /// The groups whose names start with `prefix`, listed at most every [`GROUP_LIST_CACHE`].
    async fn groups_under(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let cached = self.external_groups.lock().map_err(|_| anyhow!("poisoned"))?.get(prefix).cloned();
        if let Some((listed, names)) = cached
            && listed.elapsed() < GROUP_LIST_CACHE
        {
            return Ok(names);
        }
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_log_groups()
                .log_group_name_prefix(prefix)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| anyhow!("{}", DisplayErrorContext(&e)))
                .with_context(|| format!("DescribeLogGroups with prefix {prefix}"))?;
            names.extend(page.log_groups().iter().filter_map(|g| g.log_group_name()).map(str::to_string));
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        let mut cache = self.external_groups.lock().map_err(|_| anyhow!("poisoned"))?;
        cache.insert(prefix.to_string(), (Instant::now(), names.clone()));
        Ok(names)
    }

    fn spool_is_full(&self) -> bool {
        self.spool.unshipped_bytes() > self.spool_max_bytes
    }

    /// Visits every event of `group` in `[start_ms, end_ms]` page by page until `visit` returns
    /// false. Returns false when the group does not exist.
    async fn scan(
        &self,
        group: &str,
        start_ms: i64,
        end_ms: i64,
        pattern: Option<&str>,
        mut visit: impl FnMut(&FilteredLogEvent) -> bool,
    ) -> anyhow::Result<bool> {
        let mut token: Option<String> = None;
        loop {
            let answer = self
                .client
                .filter_log_events()
                .log_group_name(group)
                .start_time(start_ms)
                .end_time(end_ms)
                .limit(FILTER_PAGE_EVENTS)
                .set_filter_pattern(pattern.map(str::to_string))
                .set_next_token(token.take())
                .send()
                .await;
            let page = match answer {
                Ok(page) => page,
                Err(error) if error.code() == Some("ResourceNotFoundException") => return Ok(false),
                Err(error) => {
                    return Err(anyhow!("{}", DisplayErrorContext(&error)))
                        .with_context(|| format!("FilterLogEvents on {group}"));
                }
            };
            for event in page.events() {
                if !visit(event) {
                    return Ok(true);
                }
            }
            // An empty page can still carry a token: only its absence ends the scan.
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(true),
            }
        }
    }
}

impl Drop for CloudWatchStore {
    fn drop(&mut self) {
        // What is not shipped stays in the spool for the next start.
        self.writer.abort();
    }
}

fn is_external_group_of(project: &ProjectConfig, group: &str) -> bool {
    project.extra_group_prefixes.iter().any(|prefix| !prefix.is_empty() && group.starts_with(prefix.as_str()))
}

/// A cheap CloudWatch-side cut for our own JSON lines; the exact filter runs afterwards.
fn level_pattern(levels: &[Level]) -> Option<String> {
    if levels.is_empty() {
        return None;
    }
    let terms: Vec<String> = levels.iter().map(|l| format!("($.level = \"{}\")", l.as_str())).collect();
    Some(format!("{{ {} }}", terms.join(" || ")))
}

#[async_trait]
impl LogStore for CloudWatchStore {
    async fn append(&self, events: Vec<StoredEvent>) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if self.spool_is_full() {
            bail!(
                "the spool holds {} bytes not yet shipped to CloudWatch, over storage.spool_max_bytes = {}",
                self.spool.unshipped_bytes(),
                self.spool_max_bytes
            );
        }
        let records = events
            .iter()
            .map(|e| SpoolRecord {
                group: self.own_group(&e.project, &e.env),
                stream: self.naming.stream_name(e.timestamp),
                timestamp_ms: e.timestamp_ms(),
                body: e.to_json(),
            })
            .collect();
        self.spool.append(records).await?;
        self.notify.notify_one();
        Ok(())
    }

    async fn groups(&self, project: &ProjectConfig, env: &str) -> anyhow::Result<Vec<Group>> {
        let own = self.own_group(&project.name, env);
        let mut external = BTreeSet::new();
        for prefix in project.extra_group_prefixes.iter().filter(|p| !p.is_empty()) {
            external.extend(self.groups_under(prefix).await?);
        }
        external.remove(&own);
        let mut groups = vec![Group { name: own, kind: GroupKind::Ingest }];
        groups.extend(external.into_iter().map(|name| Group { name, kind: GroupKind::External }));
        Ok(groups)
    }

    async fn events(&self, query: &EventQuery) -> anyhow::Result<EventPage> {
        let Some(group) = self.readable_group(&query.project, &query.env, query.group.as_deref()) else {
            return Ok(EventPage::default());
        };
        let own = group == self.own_group(&query.project.name, &query.env);
        let pattern = if own { level_pattern(&query.levels) } else { None };
        let limit = query.limit.max(1);
        let from = unix_ms(query.from);
        let mut end = unix_ms(query.to);
        if let Some(cursor) = query.cursor {
            end = end.min(cursor.timestamp_ms);
        }
        let newest = end;
        let mut candidates = Vec::new();
        let mut seen = HashSet::new();
        let mut window = FIRST_WINDOW_MS;
        // How far back CloudWatch has been read completely.
        let mut scanned_from = from;
        // Walk back from the newest end in growing windows; once a window leaves more than a
        // page of matches, every newer event has been seen and the page is exact.
        while end >= from {
            let start = end.saturating_sub(window - 1).max(from);
            scanned_from = start;
            let exists = self
                .scan(&group, start, end, pattern.as_deref(), |raw| {
                    if let Some(event) = read_line(&query.project.name, &query.env, raw)
                        && query.matches(&event)
                        && seen.insert(event.id)
                    {
                        candidates.push(event);
                    }
                    true
                })
                .await?;
            if !exists {
                scanned_from = from;
            }
            if !exists || candidates.len() > limit || start <= from {
                break;
            }
            end = start - 1;
            window = window.saturating_mul(WINDOW_GROWTH);
        }
        if own && newest >= scanned_from {
            // Accepted but not yet in CloudWatch (or shipped and not yet trimmed: `seen` drops
            // the copy). Only as far back as CloudWatch was read, so the page stays exact.
            for body in self.spool.pending(&group, scanned_from, newest, PENDING_READ_ROWS).await? {
                if let Ok(event) = serde_json::from_str::<StoredEvent>(&body)
                    && query.matches(&event)
                    && seen.insert(event.id)
                {
                    candidates.push(event);
                }
            }
        }
        Ok(EventPage::from_candidates(candidates, limit))
    }

    async fn event(
        &self,
        project: &ProjectConfig,
        env: &str,
        group: Option<&str>,
        id: Ulid,
    ) -> anyhow::Result<Option<StoredEvent>> {
        let Some(group) = self.readable_group(project, env, group) else { return Ok(None) };
        // The id's time part is the occurrence time: the CloudWatch timestamp of its line.
        let Ok(ts) = i64::try_from(id.timestamp_ms()) else { return Ok(None) };
        let mut found = None;
        self.scan(&group, ts, ts, None, |raw| {
            found = read_line(&project.name, env, raw).filter(|e| e.id == id);
            found.is_none()
        })
        .await?;
        if found.is_none() && group == self.own_group(&project.name, env) {
            let pending = self.spool.pending(&group, ts, ts, PENDING_READ_ROWS).await?;
            found =
                pending.iter().filter_map(|body| serde_json::from_str::<StoredEvent>(body).ok()).find(|e| e.id == id);
        }
        Ok(found)
    }

    async fn level_counts(
        &self,
        project: &str,
        env: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> anyhow::Result<LevelCounts> {
        let group = self.own_group(project, env);
        let mut counts = LevelCounts::default();
        let mut seen = HashSet::new();
        let (from, to) = (unix_ms(from), unix_ms(to));
        self.scan(&group, from, to, None, |raw| {
            if seen.len() as u64 >= MAX_COUNTED_EVENTS {
                counts.capped = true;
                return false;
            }
            if let Some(event) = read_line(project, env, raw)
                && seen.insert(event.id)
            {
                *counts.counts.entry(event.level).or_insert(0) += 1;
            }
            true
        })
        .await?;
        // Accepted and not yet in CloudWatch counts too, as the logs page shows it; a copy
        // already shipped but not yet trimmed from the spool is counted once, by id.
        let pending = self.spool.pending(&group, from, to, PENDING_READ_ROWS).await?;
        counts.capped |= pending.len() >= PENDING_READ_ROWS;
        for body in pending {
            if let Ok(event) = serde_json::from_str::<StoredEvent>(&body)
                && seen.insert(event.id)
            {
                *counts.counts.entry(event.level).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    async fn check_ready(&self) -> anyhow::Result<()> {
        if !self.spool.is_running() {
            bail!("the spool has stopped");
        }
        if self.spool_is_full() {
            bail!(
                "the spool holds {} bytes not yet shipped, over storage.spool_max_bytes = {}",
                self.spool.unshipped_bytes(),
                self.spool_max_bytes
            );
        }
        let fresh = |last: &Option<Instant>| last.is_some_and(|t| t.elapsed() < READY_CACHE);
        if fresh(&*self.last_ready.lock().map_err(|_| anyhow!("poisoned"))?) {
            return Ok(());
        }
        self.client
            .describe_log_groups()
            .limit(1)
            .send()
            .await
            .map_err(|e| anyhow!("CloudWatch Logs is not reachable: {}", DisplayErrorContext(&e)))?;
        *self.last_ready.lock().map_err(|_| anyhow!("poisoned"))? = Some(Instant::now());
        Ok(())
    }

    async fn dead_letters(&self, project: &ProjectConfig, env: &str, limit: usize) -> anyhow::Result<DeadLetters> {
        let group = self.own_group(&project.name, env);
        let (total, records) = self.spool.dead_letters(&group, limit).await?;
        let dead_letters = records
            .into_iter()
            .map(|r| {
                let event = serde_json::from_str::<StoredEvent>(&r.body).ok();
                DeadLetter {
                    reason: r.reason,
                    detail: r.detail,
                    dead_at: from_unix_ms(r.dead_ms).map(timestamp_format::format).unwrap_or_default(),
                    stream: r.stream,
                    message: event.is_none().then_some(r.body),
                    event,
                }
            })
            .collect();
        Ok(DeadLetters { total, dead_letters })
    }

    async fn refresh_metrics(&self) {
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.spool_bytes.set(as_i64(self.spool.unshipped_bytes()));
        self.metrics.spool_events.set(as_i64(self.spool.unshipped_events()));
        let age = match self.spool.oldest_spooled_ms().await {
            Ok(Some(added)) if added > 0 => (unix_ms(OffsetDateTime::now_utc()) - added).max(0) as f64 / 1000.0,
            _ => 0.0,
        };
        self.metrics.spool_oldest_age_seconds.set(age);
    }

    async fn shutdown(&self) {
        let _ = self.flush_all.send(true);
        while self.spool.unshipped_events() > 0 {
            tokio::time::sleep(SHUTDOWN_POLL).await;
        }
        tracing::info!("the spool is empty: everything is in CloudWatch");
    }
}

/// One CloudWatch line as an event: our own JSON as it was stored, anything else read as text.
fn read_line(project: &str, env: &str, raw: &FilteredLogEvent) -> Option<StoredEvent> {
    let ts = raw.timestamp()?;
    let message = raw.message().unwrap_or("");
    if let Ok(event) = serde_json::from_str::<StoredEvent>(message) {
        return Some(event);
    }
    let key = match raw.event_id() {
        Some(id) => format!("id\0{id}"),
        None => format!("line\0{}\0{ts}\0{message}", raw.log_stream_name().unwrap_or("")),
    };
    let received = raw.ingestion_time().unwrap_or(ts);
    Some(foreign_event(project, env, ts, received, &key, message))
}

/// Reads a line somebody else wrote (e.g. a Lambda runtime): level from a `[LEVEL]`/`LEVEL`
/// token or a JSON `level` field, default info; the id is derived from `key`.
fn foreign_event(project: &str, env: &str, ts: i64, received: i64, key: &str, line: &str) -> StoredEvent {
    let timestamp = from_unix_ms(ts).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut level = Level::Info;
    let mut message = line.trim_end().to_string();
    let mut extra = None;
    if let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(line) {
        if let Some(found) = fields.get("level").and_then(Value::as_str).and_then(|l| l.parse().ok()) {
            level = found;
        }
        if let Some(Value::String(text)) = fields.remove("message") {
            message = text;
        }
        extra = Some(fields).filter(|f: &Map<String, Value>| !f.is_empty());
    } else if let Some(found) = level_token(line) {
        level = found;
    }
    if message.is_empty() {
        message = line.to_string();
    }
    // Shown on the dashboard like our own events: no control or bidi characters.
    strip_unsafe_chars(&mut message);
    extra.iter_mut().for_each(strip_unsafe_in_map);
    let digest = Sha256::digest(key.as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    StoredEvent {
        id: Ulid::from_parts(u64::try_from(ts).unwrap_or(0), u128::from_be_bytes(random)),
        project: project.to_string(),
        env: env.to_string(),
        timestamp,
        received_at: from_unix_ms(received).unwrap_or(timestamp),
        level,
        message,
        kind: None,
        code: None,
        http: None,
        url: None,
        location: None,
        user: None,
        stack: None,
        release: None,
        extra,
        fingerprint: None,
        truncated: None,
    }
}

/// A level named near the start of a text line: `[ERROR]\t...` (Python on Lambda),
/// `2026-...\treqid\tERROR\t...` (Node on Lambda), `ERROR: ...`. Only bracketed or upper-case
/// words count, so a message starting with "error" in prose is not taken for a level.
fn level_token(line: &str) -> Option<Level> {
    let mut tokens: Vec<&str> = line.split('\t').take(4).collect();
    tokens.extend(line.split_whitespace().next());
    tokens.into_iter().find_map(|token| {
        let token = token.trim();
        let bracketed = token.starts_with('[') && token.ends_with(']');
        let word = token.trim_matches(|c| c == '[' || c == ']').trim_end_matches(':');
        if word.is_empty() || !(bracketed || word.chars().all(|c| c.is_ascii_uppercase())) {
            return None;
        }
        word.parse().ok()
    })
}

/// The writer's destination: PutLogEvents, CreateLogGroup, CreateLogStream.
pub struct CloudWatchDestination {
    client: Client,
}

#[async_trait]
impl LogDestination for CloudWatchDestination {
    async fn put(&self, group: &str, stream: &str, events: &[OutEvent]) -> Result<PutOutcome, PutError> {
        let events = events
            .iter()
            .map(|e| InputLogEvent::builder().timestamp(e.timestamp_ms).message(e.message.clone()).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PutError::InvalidParameter(e.to_string()))?;
        let answer = self
            .client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
            .map_err(put_error)?;
        let index = |i: Option<i32>| i.and_then(|i| usize::try_from(i).ok());
        Ok(answer
            .rejected_log_events_info()
            .map(|r| PutOutcome {
                too_new_start: index(r.too_new_log_event_start_index()),
                too_old_end: index(r.too_old_log_event_end_index()),
                expired_end: index(r.expired_log_event_end_index()),
            })
            .unwrap_or_default())
    }

    async fn create_group(&self, group: &str) -> Result<(), PutError> {
        self.client.create_log_group().log_group_name(group).send().await.map(|_| ()).map_err(put_error)
    }

    async fn create_stream(&self, group: &str, stream: &str) -> Result<(), PutError> {
        self.client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
            .map(|_| ())
            .map_err(put_error)
    }
}

fn put_error<E>(error: SdkError<E>) -> PutError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => PutError::Transient(text),
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => PutError::Transient(text),
        SdkError::ServiceError(service) => {
            classify_code(service.err().code(), Some(service.raw().status().as_u16()), text)
        }
        _ => PutError::Other(text),
    }
}

/// Maps a CloudWatch error code (and HTTP status) to what the writer does with it. The SDK
/// surfaces throttling as an unhandled error, so the code is matched as text.
fn classify_code(code: Option<&str>, status: Option<u16>, text: String) -> PutError {
    match code.unwrap_or("") {
        "ResourceNotFoundException" => PutError::GroupOrStreamMissing,
        "ResourceAlreadyExistsException" => PutError::AlreadyExists,
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded" => {
            PutError::Throttled
        }
        "InvalidParameterException" | "ValidationException" | "SerializationException" => {
            PutError::InvalidParameter(text)
        }
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => PutError::Denied(text),
        "ServiceUnavailableException" | "InternalFailure" | "InternalServerError" => PutError::Transient(text),
        _ => match status {
            Some(429) => PutError::Throttled,
            Some(s) if s >= 500 => PutError::Transient(text),
            Some(401 | 403) => PutError::Denied(text),
            _ => PutError::Other(text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(code: &str, status: u16) -> PutError {
        classify_code(Some(code), Some(status), "text".into())
    }

    #[test]
    fn resource_not_found_means_create_the_group_or_stream() {
        assert_eq!(classify("ResourceNotFoundException", 400), PutError::GroupOrStreamMissing);
    }

    #[test]
    fn already_exists_is_recognised() {
        assert_eq!(classify("ResourceAlreadyExistsException", 400), PutError::AlreadyExists);
    }

    #[test]
    fn throttling_exception_is_throttled() {
        assert_eq!(classify("ThrottlingException", 400), PutError::Throttled);
        assert_eq!(classify_code(None, Some(429), "t".into()), PutError::Throttled);
    }

    #[test]
    fn invalid_parameter_is_split_material() {
        assert!(matches!(classify("InvalidParameterException", 400), PutError::InvalidParameter(_)));
    }

    #[test]
    fn auth_failures_are_denied() {
        for code in ["AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"] {
            assert!(matches!(classify(code, 400), PutError::Denied(_)), "{code}");
        }
    }

    #[test]
    fn server_errors_are_transient() {
        assert!(matches!(classify("ServiceUnavailableException", 503), PutError::Transient(_)));
        assert!(matches!(classify_code(None, Some(502), "t".into()), PutError::Transient(_)));
    }

    #[test]
    fn unknown_client_errors_are_other() {
        assert!(matches!(classify("SomethingNew", 400), PutError::Other(_)));
    }

    #[test]
    fn python_lambda_error_lines_are_errors() {
        let e = foreign_event(
            "demo",
            "production",
            1_000,
            1_001,
            "k",
            "[ERROR]\t2026-11-24T15:00:00.000Z\tabc\tpayment failed\n",
        );
        assert_eq!(e.level, Level::Error);
        assert_eq!(e.message, "[ERROR]\t2026-11-24T15:00:00.000Z\tabc\tpayment failed");
        assert_eq!((e.project.as_str(), e.env.as_str()), ("demo", "production"));
        assert_eq!(e.timestamp_ms(), 1_000);
    }

    #[test]
    fn foreign_lines_lose_control_and_bidi_characters_before_they_are_shown() {
        let line = "{\"level\":\"info\",\"message\":\"from \\u202e1.0.0.721\\u001b[2J\",\"ip\":\"\\u202e1.0.0.721\"}";
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", line);
        assert_eq!(e.message, "from 1.0.0.721[2J");
        assert_eq!(e.extra, serde_json::json!({"level": "info", "ip": "1.0.0.721"}).as_object().cloned());
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", "plain \u{202e}text\u{7}");
        assert_eq!(e.message, "plain text");
    }

    #[test]
    fn node_lambda_lines_name_the_level_in_the_third_field() {
        let e =
            foreign_event("demo", "production", 1_000, 1_000, "k", "2026-11-24T15:00:00.000Z\tabc\tWARN\tslow query");
        assert_eq!(e.level, Level::Warn);
    }

    #[test]
    fn lambda_platform_lines_are_info() {
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", "START RequestId: abc Version: $LATEST");
        assert_eq!(e.level, Level::Info);
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", "error in prose is not a level");
        assert_eq!(e.level, Level::Info);
    }

    #[test]
    fn lambda_json_lines_give_level_and_message() {
        let line = r#"{"timestamp":"2026-11-24T15:00:00Z","level":"ERROR","message":"boom","requestId":"abc"}"#;
        let e = foreign_event("demo", "production", 1_000, 1_000, "k", line);
        assert_eq!(e.level, Level::Error);
        assert_eq!(e.message, "boom");
        assert_eq!(e.extra.as_ref().and_then(|x| x.get("requestId")), Some(&Value::from("abc")));
    }

    #[test]
    fn foreign_ids_are_deterministic_and_carry_the_line_time() {
        let a = foreign_event("demo", "production", 1_795_000_000_123, 0, "id\u{0}42", "x");
        let b = foreign_event("demo", "production", 1_795_000_000_123, 0, "id\u{0}42", "x");
        let c = foreign_event("demo", "production", 1_795_000_000_123, 0, "id\u{0}43", "x");
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        assert_eq!(a.id.timestamp_ms(), 1_795_000_000_123);
    }

    #[test]
    fn the_level_pattern_names_each_level() {
        assert_eq!(level_pattern(&[]), None);
        assert_eq!(
            level_pattern(&[Level::Error, Level::Fatal]).as_deref(),
            Some(r#"{ ($.level = "error") || ($.level = "fatal") }"#)
        );
    }
}
