//! Alerts: rules evaluated as events arrive, grouped into one message per burst, delivered
//! reliably to Slack and e-mail, and a monitor that watches logboard itself
//! (`../shared/spec/alerts.md`).
//!
//! - `config`: the `[smtp]`, `[[channels]]`, `[[alerts]]` and `[monitor]` sections;
//! - `notification`: what one message says, whatever the channel;
//! - `window`: sliding-window counts; `burst`: the grouping state machine of one rule;
//! - `history`: burst states, snoozes and the history of firings and suppressions;
//! - `engine`: the rules, fed by ingest and the monitor, advanced by a ticker;
//! - `monitor`: the canary and the checks of logboard's own health;
//! - `render`: a notification as a Slack payload and as an e-mail;
//! - `outbox`: notifications waiting to be delivered, and how each delivery went (`alerts.db`);
//! - `deliver`: the per-channel tasks that send them, with retries and backoff, through `slack`
//!   and `email`.

pub mod burst;
pub mod deliver;
mod email;
pub mod engine;
pub mod history;
pub mod monitor;
pub mod notification;
pub mod outbox;
pub mod render;
mod slack;
pub mod window;
