//! The alerting sections of the config: `[smtp]`, `[[channels]]`, `[[alerts]]`, `[monitor]`, and
//! their validation (`check-config` names every problem; see `../shared/spec/alerts.md`).

use std::collections::HashSet;

use serde::Deserialize;

use super::{Config, Problem, Secret, problem};
use crate::search::Query;

/// The SMTP relay e-mail channels send through. Unset (`host` empty) unless an e-mail channel
/// needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Optional; with `password`, the relay's login.
    pub username: String,
    /// Optional; also `LOGBOARD__SMTP__PASSWORD`.
    pub password: Option<Secret>,
    /// The `From:` mailbox, e.g. `logboard <logboard@example.com>`.
    pub from: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: None,
            from: "logboard <logboard@localhost>".into(),
        }
    }
}

impl SmtpConfig {
    pub fn is_set(&self) -> bool {
        !self.host.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on the same host or network.
    None,
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A Slack incoming webhook.
    Slack,
    /// E-mail through `[smtp]`.
    Email,
}

/// Where notifications go.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// Slack: the incoming webhook; a secret (never logged or shown).
    #[serde(default)]
    pub webhook_url: Option<Secret>,
    /// E-mail: the recipients.
    #[serde(default)]
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// At least `threshold` matching events within `window_secs`.
    Threshold,
    /// An error fingerprint never seen before in the project/env.
    NewIssue,
    /// A resolved issue occurring again.
    Regression,
}

/// One alert rule.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertConfig {
    pub name: String,
    pub project: String,
    /// Empty: every env of the project.
    #[serde(default)]
    pub envs: Vec<String>,
    pub when: When,
    #[serde(default = "default_query")]
    pub query: String,
    #[serde(default = "one")]
    pub threshold: u64,
    #[serde(default = "five_minutes")]
    pub window_secs: u64,
    pub channels: Vec<String>,
    #[serde(default = "thirty")]
    pub group_wait_secs: u64,
    #[serde(default = "an_hour")]
    pub repeat_secs: u64,
    #[serde(default)]
    pub send_resolved: bool,
}

fn default_query() -> String {
    "level:>=error".into()
}
fn one() -> u64 {
    1
}
fn five_minutes() -> u64 {
    300
}
fn thirty() -> u64 {
    30
}
fn an_hour() -> u64 {
    3600
}

/// The monitor that watches logboard itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MonitorConfig {
    /// Where the monitor's own alerts go (never through ingest or the store).
    pub channels: Vec<String>,
    /// Seconds between canary events; 0 turns the canary off.
    pub canary_interval_secs: u64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self { channels: Vec::new(), canary_interval_secs: 60 }
    }
}

/// The environment variable that sets a channel's webhook URL, so the secret can come from the
/// container's secrets instead of the file: `LOGBOARD_CHANNEL_<NAME>_WEBHOOK_URL`, the name in
/// upper case with every other character than A-Z and 0-9 as `_` (`ops-slack`:
/// `LOGBOARD_CHANNEL_OPS_SLACK_WEBHOOK_URL`).
pub fn webhook_env_name(channel: &str) -> String {
    let name: String =
        channel.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("LOGBOARD_CHANNEL_{name}_WEBHOOK_URL")
}

/// Sets each channel's webhook URL from its environment variable, when that is set.
pub fn webhooks_from_env(channels: &mut [ChannelConfig], env: &[(String, String)]) {
    for channel in channels {
        let name = webhook_env_name(&channel.name);
        if let Some((_, url)) = env.iter().find(|(key, value)| *key == name && !value.is_empty()) {
            channel.webhook_url = Some(Secret::new(url.clone()));
        }
    }
}

/// Longest `window_secs`, `group_wait_secs` and `repeat_secs`: a week.
const MAX_SECS: u64 = 7 * 86_400;

/// Every problem of the alerting sections, each named by its key.
pub fn validate(config: &Config, problems: &mut Vec<Problem>) {
    let mut names = HashSet::new();
    for (i, channel) in config.channels.iter().enumerate() {
        let at = |field: &str| format!("channels[{i}].{field}");
        if channel.name.trim().is_empty() {
            problems.push(problem(at("name"), "must not be empty"));
        }
        if !names.insert(channel.name.as_str()) {
            problems.push(problem(at("name"), format!("`{}` is defined twice", channel.name)));
        }
        match channel.kind {
            ChannelKind::Slack => match &channel.webhook_url {
                // The URL is a secret: the problem names the key, never the value.
                Some(url) if is_http_url(url.expose()) => {}
                Some(_) => problems.push(problem(at("webhook_url"), "must be an http:// or https:// URL")),
                None => problems.push(problem(at("webhook_url"), "a slack channel needs its incoming webhook URL")),
            },
            ChannelKind::Email => {
                if channel.to.is_empty() {
                    problems.push(problem(at("to"), "an email channel needs at least one recipient"));
                }
                for (j, to) in channel.to.iter().enumerate() {
                    if to.parse::<lettre::message::Mailbox>().is_err() {
                        problems.push(problem(
                            format!("channels[{i}].to[{j}]"),
                            format!("`{to}` is not an e-mail address"),
                        ));
                    }
                }
                if !config.smtp.is_set() {
                    problems.push(problem(at("kind"), "an email channel needs [smtp] with a host"));
                }
            }
        }
    }
    if config.smtp.is_set() && config.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
        problems.push(problem(
            "smtp.from",
            format!("`{}` is not a mailbox like `logboard <logboard@example.com>`", config.smtp.from),
        ));
    }
    let known_channel = |name: &str| config.channels.iter().any(|c| c.name == name);

    let mut alert_names = HashSet::new();
    for (i, alert) in config.alerts.iter().enumerate() {
        let at = |field: &str| format!("alerts[{i}].{field}");
        if alert.name.trim().is_empty() || alert.name.len() > 100 || alert.name.chars().any(char::is_control) {
            problems.push(problem(at("name"), "must be 1-100 printable characters"));
        }
        if !alert_names.insert(alert.name.as_str()) {
            problems.push(problem(at("name"), format!("`{}` is defined twice", alert.name)));
        }
        match config.project(&alert.project) {
            None => problems.push(problem(at("project"), format!("no project is named `{}`", alert.project))),
            Some(project) => {
                for (j, env) in alert.envs.iter().enumerate() {
                    if !project.envs.contains(env) {
                        problems.push(problem(
                            format!("alerts[{i}].envs[{j}]"),
                            format!("project `{}` has no env `{env}`", alert.project),
                        ));
                    }
                }
            }
        }
        if let Err(e) = Query::parse(&alert.query) {
            problems.push(problem(at("query"), format!("{} (at character {})", e.message, e.position)));
        }
        if alert.when == When::Threshold && alert.threshold < 1 {
            problems.push(problem(at("threshold"), "must be at least 1"));
        }
        for (key, value) in [
            ("window_secs", alert.window_secs),
            ("group_wait_secs", alert.group_wait_secs),
            ("repeat_secs", alert.repeat_secs),
        ] {
            if value > MAX_SECS || (key == "window_secs" && value == 0) {
                problems.push(problem(
                    at(key),
                    format!("must be between {} and {MAX_SECS}", u64::from(key == "window_secs")),
                ));
            }
        }
        if alert.channels.is_empty() {
            problems.push(problem(at("channels"), "must name at least one channel"));
        }
        for (j, channel) in alert.channels.iter().enumerate() {
            if !known_channel(channel) {
                problems
                    .push(problem(format!("alerts[{i}].channels[{j}]"), format!("no channel is named `{channel}`")));
            }
        }
    }
    for (j, channel) in config.monitor.channels.iter().enumerate() {
        if !known_channel(channel) {
            problems.push(problem(format!("monitor.channels[{j}]"), format!("no channel is named `{channel}`")));
        }
    }
    if !(config.server.public_url.is_empty() || is_http_url(&config.server.public_url)) {
        problems.push(problem("server.public_url", "must be an http:// or https:// URL"));
    }
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [[projects]]
        name = "demo"
        envs = ["production", "staging"]
    "#;

    fn problems(extra: &str, env: &[(&str, &str)]) -> Vec<String> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match Config::from_sources(&format!("{BASE}\n{extra}"), &env) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_valid_alerting_config_loads_with_its_defaults() {
        let text = format!(
            "{BASE}\n{}",
            r#"
            [smtp]
            host = "smtp.example.com"
            [[channels]]
            name = "mail"
            kind = "email"
            to = ["oncall@example.com"]
            [[alerts]]
            name = "errors"
            project = "demo"
            when = "threshold"
            channels = ["mail"]
            "#
        );
        let config = Config::from_sources(&text, &[]).expect("valid");
        let alert = &config.alerts[0];
        assert_eq!((alert.query.as_str(), alert.threshold, alert.window_secs), ("level:>=error", 1, 300));
        assert_eq!((alert.group_wait_secs, alert.repeat_secs, alert.send_resolved), (30, 3600, false));
        assert_eq!((config.smtp.port, config.smtp.tls), (587, SmtpTls::Starttls));
        assert_eq!(config.monitor.canary_interval_secs, 60);
    }

    #[test]
    fn check_config_names_every_problem_of_the_alerting_sections() {
        let found = problems(
            r#"
            [server]
            public_url = "logs.example.com"
            [[channels]]
            name = "slack"
            kind = "slack"
            webhook_url = "ftp://hooks.example.com/x"
            [[channels]]
            name = "mail"
            kind = "email"
            to = ["not an address"]
            [[channels]]
            name = "bare"
            kind = "slack"
            [[alerts]]
            name = "a"
            project = "nope"
            when = "threshold"
            query = "level:>=error AND ("
            threshold = 0
            channels = ["slack", "pager"]
            [[alerts]]
            name = "a"
            project = "demo"
            envs = ["qa"]
            when = "new_issue"
            channels = []
            [monitor]
            channels = ["sms"]
            "#,
            &[],
        );
        let expected = [
            "server.public_url: must be an http:// or https:// URL",
            "channels[0].webhook_url: must be an http:// or https:// URL",
            "channels[1].to[0]: `not an address` is not an e-mail address",
            "channels[1].kind: an email channel needs [smtp] with a host",
            "channels[2].webhook_url: a slack channel needs its incoming webhook URL",
            "alerts[0].project: no project is named `nope`",
            "alerts[0].threshold: must be at least 1",
            "alerts[0].channels[1]: no channel is named `pager`",
            "alerts[1].name: `a` is defined twice",
            "alerts[1].envs[0]: project `demo` has no env `qa`",
            "alerts[1].channels: must name at least one channel",
            "monitor.channels[0]: no channel is named `sms`",
        ];
        for problem in expected {
            assert!(found.iter().any(|f| f == problem), "missing `{problem}` in {found:#?}");
        }
        let query = found.iter().find(|f| f.starts_with("alerts[0].query: ")).expect("the query's problem");
        assert!(query.contains("(at character 18)"), "with the position: {query}");
        assert_eq!(found.len(), expected.len() + 1, "{found:#?}");
    }

    #[test]
    fn a_webhook_url_may_come_from_the_environment_and_never_shows_in_a_problem() {
        let channel = "[[channels]]\nname = \"ops-slack\"\nkind = \"slack\"\n";
        let url = "https://hooks.slack.com/services/T1/B2/sekrit";
        assert!(problems(channel, &[("LOGBOARD_CHANNEL_OPS_SLACK_WEBHOOK_URL", url)]).is_empty());
        let bad = problems(channel, &[("LOGBOARD_CHANNEL_OPS_SLACK_WEBHOOK_URL", "sekrit-not-a-url")]);
        assert_eq!(bad, ["channels[0].webhook_url: must be an http:// or https:// URL"]);
        let config = Config::from_sources(
            &format!("{BASE}\n{channel}"),
            &[("LOGBOARD_CHANNEL_OPS_SLACK_WEBHOOK_URL".into(), url.into())],
        )
        .expect("valid");
        assert!(!format!("{config:?}").contains("sekrit"), "Debug hides the webhook");
    }

    #[test]
    fn the_canary_project_name_is_reserved() {
        let found = problems("[[projects]]\nname = \"_logboard\"\nenvs = [\"x\"]\n", &[]);
        assert_eq!(found, ["projects[1].name: `_logboard` is reserved for logboard's own canary"]);
    }
}
