//! Alerts: rules evaluated as events arrive, grouped into one message per burst, delivered
//! reliably to Slack and e-mail, and a monitor that watches logboard itself
//! (`../shared/spec/alerts.md`).
//!
//! - `config`: the `[smtp]`, `[[channels]]`, `[[alerts]]` and `[monitor]` sections;
//! - `notification`: what one message says, whatever the channel;
//! - `window`: sliding-window counts; `burst`: the grouping state machine of one rule;
//! - `state`: the [`state::AlertState`] trait (burst states, snoozes, the history of firings and
//!   suppressions, with [`state::HistoryKind`]) the engine keeps its state through;
//! - `outbox`: the [`outbox::Outbox`] trait: notifications waiting to be delivered, and how each
//!   delivery went (the engine enqueues, the deliverer sends, the monitor and the web read);
//! - `sqlite`: both on one SQLite file, `data_dir/alerts.db`, opened once
//!   ([`sqlite::SqliteAlerts`]); the only SQL of the alerts;
//! - `engine`: the rules, fed by ingest and the monitor, advanced by a ticker; a rule's state is
//!   an [`engine::RuleState`], the monitor's checks [`engine::MonitorCheck`]s;
//! - `monitor`: the canary and the checks of logboard's own health;
//! - `render`: a notification as a Slack payload and as an e-mail;
//! - `deliver`: the per-channel tasks that send the outbox's messages, with retries and backoff,
//!   through `slack` and `email`.

pub mod burst;
pub mod deliver;
mod email;
pub mod engine;
pub mod monitor;
pub mod notification;
pub mod outbox;
pub mod render;
mod slack;
pub mod sqlite;
pub mod state;
pub mod window;
