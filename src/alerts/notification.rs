//! What one alert message says, whatever the channel: built by the engine, stored in the
//! outbox as JSON, and rendered for Slack or e-mail by `render`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One message to send: a burst of a rule, a reminder, a resolution, or the monitor's own alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The rule's name (`[[alerts]] name`), or the monitor's check, e.g. `monitor: canary`.
    pub rule: String,
    /// The project and env the rule fired for; none for the monitor's alerts about the service.
    pub project: Option<String>,
    pub env: Option<String>,
    pub what: What,
    /// The newest matching event's message, when there is one.
    pub newest_message: Option<String>,
    /// Where to look: an absolute URL into the dashboard (`server.public_url` + path).
    pub link: String,
}

/// Why the message is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// A threshold rule fired (`reminder`: it is still firing after `repeat_secs`).
    Threshold { count: u64, threshold: u64, window_secs: u64, reminder: bool },
    /// New issues of one burst, all in one message.
    NewIssues { issues: Vec<IssueLine> },
    /// Resolved issues that occurred again.
    Regressions { issues: Vec<IssueLine> },
    /// The rule stopped firing (sent only with `send_resolved`).
    Resolved,
    /// The monitor's own alert about logboard; `resolved` when it cleared.
    Monitor { problem: String, details: Vec<String>, resolved: bool },
}

/// One issue named in a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueLine {
    pub title: String,
    pub fingerprint: String,
    /// Occurrences so far in the burst.
    pub count: u64,
    /// Absolute URL of the issue's events.
    pub link: String,
}

/// What one attempt to deliver a notification came to (a channel's sender says).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attempt {
    Sent,
    /// Worth trying again, not before `after` when the receiver said so.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    Failed(String),
}

/// An error and its causes on one line (`error sending request: connection refused`).
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some errors repeat their cause in their own message.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
