//! Alerts: rules evaluated as events arrive, grouped into one message per burst, delivered
//! reliably to Slack and e-mail, and a monitor that watches logboard itself
//! (`../shared/spec/alerts.md`).
//!
//! - `config`: the `[smtp]`, `[[channels]]`, `[[alerts]]` and `[monitor]` sections;
//! - `notification`: what one message says, whatever the channel;
//! - `render`: a notification as a Slack payload and as an e-mail;
//! - `outbox`: notifications waiting to be delivered, and how each delivery went (`alerts.db`);
//! - `deliver`: the per-channel tasks that send them, with retries and backoff, through `slack`
//!   and `email`.

pub mod config;
pub mod deliver;
mod email;
pub mod notification;
pub mod outbox;
pub mod render;
mod slack;
