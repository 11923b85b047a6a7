//! logboard: one place for the logs of every project and environment.
//!
//! Data flows one way. A front door in `web` (our JSON API; more formats to come) decodes a
//! request into drafts (`event::Draft`) and hands them to the one ingest pipeline (`ingest`):
//! the policy settles each into a stored event, the `store` makes them durable (the embedded
//! store commits; the CloudWatch store appends to its spool, which its shipper drains into
//! CloudWatch), then the `issues` index, the `alerts` rules and the live `tail` are fed from
//! them. On CloudWatch the issue follower (`ingest::follow`) feeds the index and the rules from
//! what every task and Lambda function wrote instead. The API and the pages read through
//! `store` and `issues`. What several instances will share (`../shared/spec/state.md`) is
//! reached through traits, SQLite files under `data_dir` today: the issue index
//! (`issues::IssueIndex`), the alert state and outbox (`alerts::state::AlertState`,
//! `alerts::outbox::Outbox`) and the leases of "only one instance does this" (`lease::Lease`);
//! every database opens through `sqlite`. `app` builds all of it in one place; lower modules never import
//! higher ones (`scripts/check-module-graph.py`, run by CI, keeps the graph free of loops).

pub mod alerts;
pub mod app;
pub mod aws;
pub mod clock;
pub mod config;
pub mod disk;
pub mod dynamo;
pub mod event;
pub mod healthcheck;
pub mod ingest;
pub mod issues;
pub mod lease;
pub mod links;
pub mod logout;
pub mod metrics;
pub mod project;
pub mod scrub;
pub mod search;
pub mod searches;
pub mod sourcemaps;
pub mod sqlite;
pub mod store;
pub mod tail;
pub mod tally;
pub mod web;
pub mod zone;

use anyhow::Context as _;
use tokio::net::TcpListener;

pub use app::{App, SHUTDOWN_FLUSH_DEADLINE, serve};

use crate::config::Config;

/// Serves until SIGINT/SIGTERM, then lets the store flush within the deadline.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(&config.server.listen).await.with_context(|| format!("binding {}", config.server.listen))?;
    let app = App::build(config).await?;
    let address = listener.local_addr().context("reading the bound address")?;
    println!("logboard is listening on http://{address}/ (log in at http://{address}/login)");
    serve(app, listener, shutdown_signal()).await
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
