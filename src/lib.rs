//! logboard: one place for the logs of every project and environment.
//!
//! Data flows one way: `web` (ingest) → `event`/`batch` → `store` (the embedded store commits;
//! the CloudWatch store appends to its `spool`, which the `writer` task drains into CloudWatch).
//! The API and the pages read through `store`.

pub mod alerts;
pub mod batch;
pub mod config;
pub mod disk;
pub mod error;
pub mod event;
pub mod healthcheck;
pub mod issues;
pub mod metrics;
pub mod project;
pub mod scrub;
pub mod search;
pub mod sqlite;
pub mod store;
pub mod web;
pub mod zone;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::{Backend, Config};
use crate::metrics::Metrics;
use crate::store::LogStore;
use crate::store::local::LocalStore;
use crate::web::AppState;
use crate::web::auth::{Auth, generate_password};

/// How long shutdown may spend flushing: under ECS's stop timeout (30 s by default;
/// deploy/ecs-task-definition.json gives longer, and tests/it/deploy.rs checks it does).
pub const SHUTDOWN_FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

/// Opens the configured store; it counts into `metrics`.
pub async fn open_store(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Arc<dyn LogStore>> {
    Ok(match config.storage.backend {
        Backend::Local => Arc::new(LocalStore::open_with_retention(
            &config.storage.data_dir,
            config.query_time_limit(),
            store::local::Retention::from_config(config),
        )?),
        Backend::Cloudwatch => Arc::new(store::cloudwatch::CloudWatchStore::open(config, metrics).await?),
    })
}

/// Builds the application state; when no user exists, makes an `admin` with a printed password.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let metrics = Arc::new(Metrics::new());
    let store = open_store(&config, Arc::clone(&metrics)).await?;
    let generated = config.has_no_users().then(generate_password);
    let admin_password = config.auth.admin_password.as_ref().map(|s| s.expose().to_string()).or(generated.clone());
    let auth = Auth::new(&config, admin_password.as_deref())?;
    if let Some(password) = generated {
        // Printed, not logged: it must reach the operator once and never a log store.
        println!("No dashboard user is configured. Log in as `admin` with password: {password}");
        println!("(set LOGBOARD_ADMIN_PASSWORD or [auth] users to choose your own)");
    }
    let projects = project::Projects::from_config(&config)?;
    let limits = web::limits::RateLimits::new(&config.limits, &config.server.trusted_proxies);
    let issues = issues::IssueIndex::open(&config.storage.data_dir)?;
    let history = alerts::history::History::open(&config.storage.data_dir)?;
    let outbox = alerts::outbox::Outbox::open(&config.storage.data_dir)?;
    let queue: Arc<dyn alerts::engine::Outbox> = Arc::new(outbox.clone());
    let alerts = Arc::new(alerts::engine::Alerts::new(&config, &projects, history, queue));
    let zone = zone::Zone::named(&config.ui.timezone).map_err(|why| anyhow::anyhow!("ui.timezone: {why}"))?;
    let config_max_watchers = config.server.max_tail_watchers;
    let disk = Arc::new(disk::DiskGuard::new(&config.storage.data_dir, config.retention.min_free_bytes));
    disk.watch();
    Ok(AppState {
        config: Arc::new(config),
        store,
        auth: Arc::new(auth),
        limits: Arc::new(limits),
        projects: Arc::new(projects),
        metrics,
        issues: Arc::new(issues),
        alerts,
        outbox,
        refusals: Arc::new(alerts::monitor::Refusals::default()),
        tail: Arc::new(web::tail::Tail::new(config_max_watchers)),
        zone,
        disk,
    })
}

/// Serves until SIGINT/SIGTERM, then lets the store flush within the deadline.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(&config.server.listen).await.with_context(|| format!("binding {}", config.server.listen))?;
    let state = build_state(config).await?;
    let address = listener.local_addr().context("reading the bound address")?;
    let deliverer = start_background(&state, address)?;
    println!("logboard is listening on http://{address}/ (log in at http://{address}/login)");
    tracing::info!(listen = %address, backend = ?state.config.storage.backend, "serving");
    let store = Arc::clone(&state.store);
    let config = Arc::clone(&state.config);
    let tail = Arc::clone(&state.tail);
    // Live tails never end on their own: they are ended first, so the drain does not wait for them.
    let shutdown = async move {
        shutdown_signal().await;
        tail.close();
    };
    web::serve::serve(listener, web::router(state), &config.server, shutdown).await;
    tracing::info!("connections closed; flushing");
    // Messages in flight and events in the spool are finished side by side.
    let (_, flushed) =
        tokio::join!(deliverer.shutdown(), tokio::time::timeout(SHUTDOWN_FLUSH_DEADLINE, store.shutdown()));
    if flushed.is_err() {
        tracing::warn!(
            deadline_s = SHUTDOWN_FLUSH_DEADLINE.as_secs(),
            "flush deadline reached; the rest stays on disk"
        );
    }
    Ok(())
}

/// Starts what runs beside the requests: the alert rules' ticker, the deliverer of their
/// messages (stopped by dropping or shutting down what this returns), the monitor (the
/// canary is sent to `address`, our own listener) and, on CloudWatch, the issue follower.
pub fn start_background(state: &AppState, address: std::net::SocketAddr) -> anyhow::Result<alerts::deliver::Deliverer> {
    let config = &state.config;
    let deliverer = alerts::deliver::spawn(
        state.outbox.clone(),
        config.channels.clone(),
        config.smtp.clone(),
        Arc::clone(&state.metrics),
        alerts::deliver::Backoff::default(),
    )?;
    alerts::engine::spawn_ticker(Arc::downgrade(&state.alerts));
    alerts::monitor::spawn(state.clone(), address);
    if let Some(every) = state.store.issue_follow_interval() {
        let follower = issues::follower::Follower {
            store: Arc::clone(&state.store),
            issues: Arc::clone(&state.issues),
            alerts: Arc::clone(&state.alerts),
            projects: Arc::clone(&state.projects),
        };
        issues::follower::spawn(follower, every);
    }
    web::tail_follow::spawn(state.clone());
    Ok(deliverer)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
