//! Every integration test in one binary: one link instead of nine, and the harness in
//! `common/` compiled once. Each file is one area; nextest still runs every test in its own
//! process, and `bash scripts/test.sh http::` (say) runs one area.

mod common;

mod accessibility;
mod alert_delivery;
mod alerts;
mod bad_input;
mod browser;
mod charts;
mod client;
mod cloudwatch;
mod cloudwatch_process;
mod context;
mod deploy;
mod disk;
mod highlight;
mod http;
mod issue_follower;
mod keyboard;
mod process;
mod properties;
mod protocols;
mod query_suite;
mod retention;
mod saved_searches;
mod shared_alerts;
mod shared_state;
mod sourcemaps;
mod tail;
mod tasks;
mod timezone;
mod writer_faults;
