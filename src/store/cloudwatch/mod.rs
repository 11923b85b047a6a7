//! AWS CloudWatch Logs as the store: the only folder that sees AWS types.
//!
//! Writes go to the write-ahead [`spool`] and return once durable; the [`shipper`] task drains
//! the spool into CloudWatch through [`client::CloudWatchDestination`]. Reads ([`read`]) use
//! FilterLogEvents with the filter pattern of [`pattern`]; lines of other groups (a Lambda
//! function's) are read by [`foreign`] with [`lambda`]; where events go and what may be read is [`naming`].
//! The issue follower's reads of error lines are [`follow`].

pub mod client;
mod context;
mod follow;
mod foreign;
mod lambda;
mod naming;
mod pattern;
mod read;
pub mod retention;
pub mod shipper;
pub mod spool;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::DisplayErrorContext;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use ulid::Ulid;

use super::context::{Around, Context};
use super::histogram::{Buckets, Histogram};
use super::{DeadLetter, DeadLetters, ErrorRead, EventPage, EventQuery, Group, LevelCounts, LogStore};
use crate::config::Config;
use crate::event::{StoredEvent, from_unix_ms, timestamp_format, unix_ms};
use crate::metrics::Metrics;
use crate::project::Project;
use client::CloudWatchDestination;
use naming::Naming;
use shipper::Writer;
use spool::{Spool, SpoolRecord};

/// How long a successful readiness probe is trusted (DescribeLogGroups is limited to 5/s).
const READY_CACHE: Duration = Duration::from_secs(10);
/// How often `shutdown` looks whether the spool is empty yet.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// How the store talks to CloudWatch; the defaults are for production, tests shorten them.
#[derive(Debug, Clone)]
pub struct CloudWatchOptions {
    /// One SDK attempt at most; past it the call counts as a timeout and is retried.
    pub attempt_timeout: Duration,
    /// How long an event may wait in memory for others to share its put.
    pub linger: Duration,
    /// PutLogEvents calls in flight at once.
    pub max_puts_in_flight: usize,
    /// How often the issue follower reads the error lines back.
    pub issue_poll: Duration,
}

impl Default for CloudWatchOptions {
    fn default() -> Self {
        CloudWatchOptions {
            attempt_timeout: client::ATTEMPT_TIMEOUT,
            linger: shipper::FLUSH_LINGER,
            max_puts_in_flight: shipper::MAX_PUTS_IN_FLIGHT,
            issue_poll: follow::POLL_INTERVAL,
        }
    }
}

pub struct CloudWatchStore {
    client: Client,
    metrics: Arc<Metrics>,
    naming: Naming,
    spool: Arc<Spool>,
    spool_max_bytes: u64,
    /// Wakes the writer when the spool has new events.
    notify: Arc<Notify>,
    /// Turned true on shutdown: the writer flushes everything at once.
    flush_all: watch::Sender<bool>,
    writer: AbortHandle,
    /// Keeps the groups' retention policies as configured.
    retention: AbortHandle,
    /// When CloudWatch last answered a readiness probe.
    last_ready: Mutex<Option<Instant>>,
    /// External groups by prefix, and when they were listed.
    external_groups: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    issue_poll: Duration,
}

impl CloudWatchStore {
    /// Connects with the AWS default chain (region and endpoint from the config when set),
    /// opens the spool under `storage.data_dir` and starts the writer task.
    pub async fn open(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<CloudWatchStore> {
        let client = client::connect(&config.cloudwatch).await;
        CloudWatchStore::with_client(config, client, metrics, CloudWatchOptions::default()).await
    }

    /// Like [`CloudWatchStore::open`] with a client made by the caller (tests: static
    /// credentials and an emulator). Its retries are turned off: the shipper is the one retry layer.
    pub async fn with_client(
        config: &Config,
        client: Client,
        metrics: Arc<Metrics>,
        options: CloudWatchOptions,
    ) -> anyhow::Result<CloudWatchStore> {
        let client = client::with_one_attempt(&client, options.attempt_timeout, metrics.cloudwatch_requests.clone());
        let spool = Arc::new(Spool::open(&config.storage.data_dir).context("opening the spool")?);
        let notify = Arc::new(Notify::new());
        let (flush_all, flush_rx) = watch::channel(false);
        let retention = Arc::new(retention::GroupRetention::from_config(config));
        let destination = Arc::new(CloudWatchDestination { client: client.clone(), retention: Arc::clone(&retention) });
        let retention = retention.watch(client.clone());
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
            naming: Naming::new(config.cloudwatch.clone()),
            spool,
            spool_max_bytes: config.storage.spool_max_bytes,
            notify,
            flush_all,
            writer,
            retention,
            last_ready: Mutex::new(None),
            external_groups: Mutex::new(HashMap::new()),
            issue_poll: options.issue_poll,
        })
    }

    /// Events accepted but not yet in CloudWatch.
    pub fn unshipped_events(&self) -> u64 {
        self.spool.unshipped_events()
    }

    /// Spools the events and, in the same commit, `entry` in the queue.
    async fn spool_events(&self, events: Vec<StoredEvent>, entry: Option<String>) -> anyhow::Result<()> {
        if events.is_empty() && entry.is_none() {
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
                group: self.naming.own_group(&e.project, &e.env),
                stream: self.naming.stream(e.timestamp),
                timestamp_ms: e.timestamp_ms(),
                body: e.to_json(),
            })
            .collect();
        match entry {
            Some(entry) => self.spool.append_queued(records, entry).await?,
            None => self.spool.append(records).await?,
        }
        self.notify.notify_one();
        Ok(())
    }

    fn spool_is_full(&self) -> bool {
        self.spool.unshipped_bytes() > self.spool_max_bytes
    }
}

impl Drop for CloudWatchStore {
    fn drop(&mut self) {
        // What is not shipped stays in the spool for the next start.
        self.writer.abort();
        self.retention.abort();
    }
}

#[async_trait]
impl LogStore for CloudWatchStore {
    async fn append(&self, events: Vec<StoredEvent>) -> anyhow::Result<()> {
        self.spool_events(events, None).await
    }

    async fn append_queued(&self, events: Vec<StoredEvent>, entry: String) -> anyhow::Result<()> {
        self.spool_events(events, Some(entry)).await
    }

    fn queue_db(&self) -> Option<PathBuf> {
        Some(self.spool.path().to_path_buf())
    }

    async fn groups(&self, project: &Project, env: &str) -> anyhow::Result<Vec<Group>> {
        self.read_groups(project, env).await
    }

    async fn events(&self, query: &EventQuery<'_>) -> anyhow::Result<EventPage> {
        self.read_events(query).await
    }

    async fn event(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
    ) -> anyhow::Result<Option<StoredEvent>> {
        self.read_event(project, env, group, id).await
    }

    async fn context(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
        around: Around,
    ) -> anyhow::Result<Option<Context>> {
        self.read_context(project, env, group, id, around).await
    }

    async fn histogram(&self, query: &EventQuery<'_>, buckets: Buckets) -> anyhow::Result<Histogram> {
        self.chart(query, buckets).await
    }

    async fn level_counts(
        &self,
        project: &str,
        env: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> anyhow::Result<LevelCounts> {
        self.count_levels(project, env, from, to).await
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

    async fn dead_letters(&self, project: &Project, env: &str, limit: usize) -> anyhow::Result<DeadLetters> {
        let group = project.own_group(env);
        let (total, records) = self.spool.dead_letters(group, limit).await?;
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

    fn shared_by_tasks(&self) -> bool {
        true
    }

    fn issue_follow_interval(&self) -> Option<Duration> {
        // Several tasks write the groups, and Lambda functions write theirs without logboard:
        // only reading CloudWatch back sees every error.
        Some(self.issue_poll)
    }

    async fn external_groups_now(&self, project: &Project) -> anyhow::Result<Vec<String>> {
        let mut groups = std::collections::BTreeSet::new();
        for prefix in project.extra_group_prefixes.iter().filter(|p| !p.is_empty()) {
            groups.extend(self.list_groups_under(prefix).await?);
        }
        Ok(groups.into_iter().filter(|g| !project.envs.iter().any(|env| project.own_group(env) == g)).collect())
    }

    async fn read_errors(
        &self,
        project: &Project,
        env: &str,
        group: &str,
        range: (i64, i64),
    ) -> anyhow::Result<ErrorRead> {
        self.read_error_lines(project, env, group, range).await
    }

    async fn shutdown(&self) {
        let _ = self.flush_all.send(true);
        while self.spool.unshipped_events() > 0 {
            tokio::time::sleep(SHUTDOWN_POLL).await;
        }
        tracing::info!("the spool is empty: everything is in CloudWatch");
    }
}
