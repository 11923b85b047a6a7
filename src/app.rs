//! The composition root: the service built in one place from its config and its stores
//! ([`App::build`], or [`App::with_stores`] with stores chosen by the caller, as tests do), and
//! run by one [`serve`] that the binary and the tests share. Background jobs get only what they
//! use, never the web state.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::alerts::deliver::{self, Backoff, Deliverer};
use crate::alerts::engine::{self, Alerts, Hits};
use crate::alerts::monitor::{self, Monitor, Refusals};
use crate::alerts::outbox::Outbox;
use crate::alerts::sqlite::SqliteAlerts;
use crate::alerts::state::AlertState;
use crate::clock::now_ms;
use crate::config::state::StateBackend;
use crate::config::{Backend, Config, Secret};
use crate::disk::DiskGuard;
use crate::dynamo::{
    CountedStore, DynamoAlertState, DynamoIssueIndex, DynamoLeases, DynamoLogouts, DynamoOutbox, DynamoSearches, Table,
};
use crate::ingest::Pipeline;
use crate::ingest::follow::{self as issue_follow, Follower};
use crate::ingest::refusals::RefusalLog;
use crate::issues::{IssueIndex, SqliteIssueIndex};
use crate::lease::{self, Lease, SqliteLeases};
use crate::logout::Logouts;
use crate::metrics::Metrics;
use crate::project::Projects;
use crate::searches::SavedSearches;
use crate::searches::sqlite::SqliteSearches;
use crate::sourcemaps::{FileStore, MapStore, SourceMaps};
use crate::store::LogStore;
use crate::store::cloudwatch::CloudWatchStore;
use crate::store::local::{LocalStore, Retention};
use crate::tail::Tail;
use crate::tail::follow::{self as tail_follow, TailFollower};
use crate::tally::SharedTally;
use crate::web::AppState;
use crate::web::auth::Auth;
use crate::web::limits::RateLimits;
use crate::zone::Zone;

/// How long shutdown may spend flushing: under ECS's stop timeout (30 s by default;
/// deploy/ecs-task-definition.json gives longer, and tests/it/deploy.rs checks it does).
pub const SHUTDOWN_FLUSH_DEADLINE: Duration = Duration::from_secs(20);

/// Where the service keeps what it must not lose: the events, the issue index, the alert state.
/// Each is a trait object: today SQLite files under `data_dir`, tomorrow state shared by every
/// instance (`shared/spec/state.md`).
pub struct Stores {
    pub events: Arc<dyn LogStore>,
    pub issues: Arc<dyn IssueIndex>,
    /// The alert rules' burst states, snoozes and history.
    pub alert_state: Arc<dyn AlertState>,
    /// Alert messages waiting to be delivered, and how each delivery went.
    pub outbox: Arc<dyn Outbox>,
    /// Who does what only one instance may do (follow a group).
    pub leases: Arc<dyn Lease>,
    /// On the shared state: the index whose queued counts this task sends to the table.
    pub shared_issues: Option<Arc<DynamoIssueIndex>>,
    /// On the shared state: logouts every task sees.
    pub logouts: Option<Arc<dyn Logouts>>,
    /// Uploaded source maps: files under `data_dir`, or the `[sourcemaps]` bucket.
    pub maps: Arc<dyn MapStore>,
    /// The team's saved searches: under `data_dir`, or in the shared table.
    pub searches: Arc<dyn SavedSearches>,
}

impl Stores {
    /// The configured event store, and the index and alert state under `data_dir`.
    pub async fn open(config: &Config, metrics: &Arc<Metrics>) -> anyhow::Result<Stores> {
        let events: Arc<dyn LogStore> = match config.storage.backend {
            Backend::Local => Arc::new(LocalStore::open_with_retention(
                &config.storage.data_dir,
                config.query_time_limit(),
                Retention::from_config(config),
            )?),
            Backend::Cloudwatch => Arc::new(CloudWatchStore::open(config, Arc::clone(metrics)).await?),
        };
        let stores = match config.state.backend {
            StateBackend::Local => Stores::with_events(config, events)?,
            StateBackend::Dynamodb => {
                let table = Table::connect(config).await.counted(metrics.state_requests.clone());
                Stores::shared(config, events, table)?
            }
        };
        if config.sourcemaps.s3_bucket.is_empty() {
            return Ok(stores);
        }
        Ok(Stores { maps: Arc::new(crate::sourcemaps::s3::S3Store::connect(config).await), ..stores })
    }

    /// `events` as the event store; the issue index, the leases, the alert state and the outbox
    /// in the shared `table`, the rest under `data_dir`.
    pub fn shared(config: &Config, events: Arc<dyn LogStore>, table: Table) -> anyhow::Result<Stores> {
        let queue_db = events.queue_db().context("the shared state needs an event store that keeps its queue")?;
        let issues = Arc::new(DynamoIssueIndex::open(table.clone(), &queue_db, &config.storage.data_dir)?);
        // Every task writes to a store like CloudWatch: its charts come from the counts in the
        // table, which every task adds to, instead of from every event read back.
        let events: Arc<dyn LogStore> =
            if events.shared_by_tasks() { Arc::new(CountedStore::new(events, issues.counts())) } else { events };
        let local = Stores::local(config, events, Arc::new(DynamoSearches::new(table.clone())))?;
        Ok(Stores {
            issues: Arc::clone(&issues) as Arc<dyn IssueIndex>,
            alert_state: Arc::new(DynamoAlertState::new(table.clone())),
            outbox: Arc::new(DynamoOutbox::new(table.clone())),
            leases: Arc::new(DynamoLeases::new(table.clone())),
            shared_issues: Some(issues),
            logouts: Some(Arc::new(DynamoLogouts::new(table))),
            ..local
        })
    }

    /// `events` as the event store; the rest opened under `data_dir`.
    pub fn with_events(config: &Config, events: Arc<dyn LogStore>) -> anyhow::Result<Stores> {
        let searches = Arc::new(SqliteSearches::open(&config.storage.data_dir)?);
        Stores::local(config, events, searches)
    }

    /// `events` and `searches`; the rest opened under `data_dir`.
    fn local(config: &Config, events: Arc<dyn LogStore>, searches: Arc<dyn SavedSearches>) -> anyhow::Result<Stores> {
        let data_dir = &config.storage.data_dir;
        // One `alerts.db`, one handle: the engine's state and the outbox share it.
        let alerts = Arc::new(SqliteAlerts::open(data_dir)?);
        Ok(Stores {
            events,
            issues: Arc::new(SqliteIssueIndex::open(data_dir)?),
            alert_state: Arc::clone(&alerts) as Arc<dyn AlertState>,
            outbox: alerts,
            leases: Arc::new(SqliteLeases::open(data_dir)?),
            shared_issues: None,
            logouts: None,
            maps: Arc::new(FileStore::open(data_dir)?),
            searches,
        })
    }
}

/// The service, built: what the requests use, and what the background jobs are made from.
pub struct App {
    pub state: AppState,
    /// Only the background jobs take leases; the requests never do.
    leases: Arc<dyn Lease>,
    shared_issues: Option<Arc<DynamoIssueIndex>>,
}

impl App {
    /// Builds the service on the configured stores; when no user exists, makes an `admin` with a
    /// printed password.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let metrics = Arc::new(Metrics::new());
        let stores = Stores::open(&config, &metrics).await?;
        App::with_stores(config, metrics, stores)
    }

    /// Builds the service on `stores`, which count into `metrics`.
    pub fn with_stores(config: Config, metrics: Arc<Metrics>, mut stores: Stores) -> anyhow::Result<App> {
        let generated = config.has_no_users().then(|| Secret::random().expose().to_string());
        let admin_password = config.auth.admin_password.as_ref().map(|s| s.expose().to_string()).or(generated.clone());
        let mut auth = Auth::new(&config, admin_password.as_deref())?;
        if let Some(logouts) = stores.logouts.take() {
            auth.share_logouts(logouts);
        }
        if let Some(password) = generated {
            // Printed, not logged: it must reach the operator once and never a log store.
            println!("No dashboard user is configured. Log in as `admin` with password: {password}");
            println!("(set LOGBOARD_ADMIN_PASSWORD or [auth] users to choose your own)");
        }
        let projects = Arc::new(Projects::from_config(&config)?);
        let Stores { events: store, issues, alert_state, outbox, leases, shared_issues, logouts: _, maps, searches } =
            stores;
        let sourcemaps = Arc::new(SourceMaps::new(maps, &config));
        let alerts = Arc::new(Alerts::new(&config, &projects, alert_state, Arc::clone(&outbox)));
        let zone = Zone::named(&config.ui.timezone).map_err(|why| anyhow::anyhow!("ui.timezone: {why}"))?;
        let disk = Arc::new(DiskGuard::new(&config.storage.data_dir, config.retention.min_free_bytes));
        disk.watch();
        let tail = Arc::new(Tail::new(config.server.max_tail_watchers));
        let pipeline = Arc::new(Pipeline {
            store: Arc::clone(&store),
            issues: Arc::clone(&issues),
            alerts: Arc::clone(&alerts),
            metrics: Arc::clone(&metrics),
            tail: Arc::clone(&tail),
            max_event_bytes: config.limits.event_bytes,
            shared: shared_issues.clone().map(|index| index as Arc<dyn SharedTally>),
            refusals: RefusalLog::default(),
        });
        let state = AppState {
            limits: Arc::new(RateLimits::new(&config.limits, &config.server.trusted_proxies)),
            config: Arc::new(config),
            store,
            auth: Arc::new(auth),
            projects,
            metrics,
            issues,
            alerts,
            outbox,
            refusals: Arc::new(Refusals::default()),
            tail,
            pipeline,
            zone,
            disk,
            sourcemaps,
            searches,
        };
        Ok(App { state, leases, shared_issues })
    }

    /// Starts what runs beside the requests: the alert rules' ticker, the deliverer of their
    /// messages (stopped by dropping or shutting down what this returns), the monitor (the
    /// canary is sent to `address`, our own listener), the issue follower on a store read back
    /// (CloudWatch), and the live tail's reader of other tasks' events.
    pub fn start_background(&self, address: SocketAddr) -> anyhow::Result<Deliverer> {
        let state = &self.state;
        let config = &state.config;
        let deliverer = deliver::spawn(
            Arc::clone(&state.outbox),
            config.channels.clone(),
            config.smtp.clone(),
            Arc::clone(&state.metrics),
            Backoff::default(),
        )?;
        engine::spawn_ticker(Arc::downgrade(&state.alerts));
        if let Some(index) = &self.shared_issues {
            let alerts = Arc::clone(&state.alerts);
            index.spawn_flusher(Arc::clone(&state.metrics), move |announced| {
                alerts.observe(Hits::default(), &announced.changes, &announced.samples, now_ms())
            });
            index.counts().spawn_others_reader(Arc::downgrade(&state.alerts));
        }
        let monitor = Monitor {
            canary_interval: Duration::from_secs(config.monitor.canary_interval_secs),
            store: Arc::clone(&state.store),
            projects: Arc::clone(&state.projects),
            metrics: Arc::clone(&state.metrics),
            alerts: Arc::clone(&state.alerts),
            outbox: Arc::clone(&state.outbox),
            refusals: Arc::clone(&state.refusals),
        };
        monitor::spawn(monitor, address);
        if let Some(every) = state.store.issue_follow_interval() {
            let follower = Follower {
                store: Arc::clone(&state.store),
                issues: Arc::clone(&state.issues),
                alerts: Arc::clone(&state.alerts),
                projects: Arc::clone(&state.projects),
                leases: Arc::clone(&self.leases),
                holder: lease::new_holder(),
                lease_ttl: issue_follow::lease_ttl(every),
            };
            issue_follow::spawn(follower, every);
        }
        spawn_map_retention(Arc::clone(&state.sourcemaps), Arc::clone(config));
        tail_follow::spawn(TailFollower {
            store: Arc::clone(&state.store),
            projects: Arc::clone(&state.projects),
            tail: Arc::clone(&state.tail),
        });
        Ok(deliverer)
    }
}

/// How often uploaded source maps past their project's retention are deleted.
const MAP_RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Deletes, every [`MAP_RETENTION_EVERY`] (the first time a minute after start), the source maps
/// uploaded longer ago than their project's retention (`retention_days`, else `retention.days`;
/// 0 keeps them). On a shared bucket every task does it: the deletes are idempotent.
fn spawn_map_retention(sourcemaps: Arc<SourceMaps>, config: Arc<Config>) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let mut every = tokio::time::interval(MAP_RETENTION_EVERY);
        loop {
            every.tick().await;
            for project in &config.projects {
                let days = config.retention_days(&project.name);
                if days == 0 {
                    continue;
                }
                let before = now_ms() / 1000 - i64::from(days) * 86_400;
                match sourcemaps.prune(&project.name, before).await {
                    Ok(0) => {}
                    Ok(deleted) => {
                        tracing::info!(project = %project.name, maps.deleted = deleted, "source maps past retention")
                    }
                    Err(error) => tracing::warn!(error = format!("{error:#}"), "deleting source maps past retention"),
                }
            }
        }
    });
}

/// Serves `app` on `listener` with its background jobs until `shutdown` completes, then lets the
/// store flush within [`SHUTDOWN_FLUSH_DEADLINE`] and the deliverer finish its sends.
pub async fn serve(app: App, listener: TcpListener, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let address = listener.local_addr().context("reading the bound address")?;
    let deliverer = app.start_background(address)?;
    let shared_issues = app.shared_issues.clone();
    let shared_table = app.shared_issues.as_ref().map(|index| index.table().clone());
    let state = app.state;
    tracing::info!(listen = %address, backend = ?state.config.storage.backend, "serving");
    let store = Arc::clone(&state.store);
    let config = Arc::clone(&state.config);
    let tail = Arc::clone(&state.tail);
    // Live tails never end on their own: they are ended first, so the drain does not wait for them.
    let shutdown = async move {
        shutdown.await;
        tail.close();
    };
    crate::web::serve::serve(listener, crate::web::router(state), &config.server, shutdown).await;
    tracing::info!("connections closed; flushing");
    // Messages in flight and events in the spool are finished side by side.
    let counted = async {
        if let Some(index) = shared_issues {
            // What this task counted goes to the table before it stops (its disk may go with it).
            if let Err(error) = index.flush().await {
                tracing::warn!(error = format!("{error:#}"), "issue counts stay queued on this task's disk");
            }
        }
    };
    let (_, flushed, _) = tokio::join!(
        deliverer.shutdown(),
        tokio::time::timeout(SHUTDOWN_FLUSH_DEADLINE, store.shutdown()),
        tokio::time::timeout(SHUTDOWN_FLUSH_DEADLINE, counted)
    );
    if flushed.is_err() {
        tracing::warn!(
            deadline_s = SHUTDOWN_FLUSH_DEADLINE.as_secs(),
            "flush deadline reached; the rest stays on disk"
        );
    }
    if let Some(table) = shared_table {
        table.stop_blocking_calls();
    }
    Ok(())
}
