//! Alerts: rules evaluated as events arrive, grouped into one message per burst, delivered
//! reliably to Slack and e-mail, and a monitor that watches logboard itself
//! (`../shared/spec/alerts.md`).
//!
//! - `config`: the `[smtp]`, `[[channels]]`, `[[alerts]]` and `[monitor]` sections;
//! - `notification`: what one message says, whatever the channel.

pub mod config;
pub mod notification;
