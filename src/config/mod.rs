//! Typed configuration: `config.toml`, overlaid by `LOGBOARD__SECTION__KEY` environment variables,
//! then validated as a whole. This is the only module that reads the environment.

pub mod alerts;
pub mod sourcemaps;
pub mod state;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use self::alerts::{AlertConfig, ChannelConfig, MonitorConfig, SmtpConfig};
use self::sourcemaps::SourcemapsConfig;
use self::state::StateConfig;

/// Prefix of the environment variables that override config keys.
const ENV_PREFIX: &str = "LOGBOARD__";
/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_PATH_ENV: &str = "LOGBOARD_CONFIG";
/// Environment variable that (re)defines the dashboard user `admin`.
const ADMIN_PASSWORD_ENV: &str = "LOGBOARD_ADMIN_PASSWORD";
/// The monitor's own project and env: the canary's events go there, never a user's (the name is
/// reserved: no configured project may take it).
pub const CANARY_PROJECT: &str = "_logboard";
pub const CANARY_ENV: &str = "canary";
/// Config file used when neither `--config` nor `$LOGBOARD_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config.toml";
/// Upper bound of the `[server]` timeouts: a day (deadlines far beyond it would overflow timers).
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// Upper bound of `server.max_connections`, far above any open-file limit in use.
const MAX_CONNECTIONS: u64 = 1_000_000;
/// The longest retention accepted: a century (and far from overflowing a time in milliseconds).
const MAX_RETENTION_DAYS: u32 = 36_500;
/// The smallest `retention.max_bytes` other than 0: below it the store would be emptied over and
/// over by its own index and bookkeeping.
const MIN_MAX_BYTES: u64 = 1 << 20;
/// The retention periods CloudWatch Logs accepts (`PutRetentionPolicy`), in days.
pub const CLOUDWATCH_RETENTION_DAYS: [u32; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub cloudwatch: CloudWatchConfig,
    pub limits: LimitsConfig,
    pub ui: UiConfig,
    pub auth: AuthConfig,
    pub retention: RetentionConfig,
    pub projects: Vec<ProjectConfig>,
    pub smtp: SmtpConfig,
    pub channels: Vec<ChannelConfig>,
    pub alerts: Vec<AlertConfig>,
    pub monitor: MonitorConfig,
    pub state: StateConfig,
    pub sourcemaps: SourcemapsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address the HTTP server binds, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Proxies (IPs or CIDRs) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// A request (a slow upload included) not answered within this many seconds gets 408.
    pub request_timeout_secs: u64,
    /// A request's headers must be complete this many seconds after its first byte (a new
    /// connection's: after it is accepted); else the connection is closed.
    pub header_read_timeout_secs: u64,
    /// A keep-alive connection with no request for this many seconds is closed. Keep it above the
    /// load balancer's idle timeout (ALB: 60 s), so that the balancer, not us, retires connections.
    pub idle_timeout_secs: u64,
    /// Connections served at once; past it only `/healthz` and `/readyz` are answered (see `web::serve`).
    pub max_connections: usize,
    /// Where users open the dashboard, for links in alert messages; empty: `http://<listen>`.
    pub public_url: String,
    /// Live-tail watchers (`/api/v1/tail` streams) open at once; past it a new one gets 503.
    pub max_tail_watchers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            trusted_proxies: Vec::new(),
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 75,
            max_connections: 1024,
            public_url: String::new(),
            max_tail_watchers: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded store on local disk.
    #[default]
    Local,
    /// AWS CloudWatch Logs, through the write-ahead spool and the buffered writer.
    Cloudwatch,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    pub backend: Backend,
    /// Holds the embedded store and the write-ahead spool.
    pub data_dir: PathBuf,
    /// Above this much unshipped data, ingest answers 503.
    pub spool_max_bytes: u64,
    /// A read of the embedded store running longer is stopped, and the caller is told to narrow
    /// the search (422). See [`Config::query_time_limit`].
    pub query_time_limit_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            data_dir: "./data".into(),
            spool_max_bytes: 1 << 30,
            query_time_limit_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetentionConfig {
    /// Events older than this many days are deleted (CloudWatch: the groups' retention policy);
    /// 0 keeps them for ever. A project's `retention_days` overrides it.
    pub days: u32,
    /// The embedded store's cap: past it the oldest events go until it is 10 % below; 0 = none.
    pub max_bytes: u64,
    /// Below this much free space under `data_dir`, ingest is refused (503) and `/readyz` fails.
    pub min_free_bytes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { days: 30, max_bytes: 0, min_free_bytes: 512 << 20 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CloudWatchConfig {
    /// Empty: the AWS default chain decides.
    pub region: String,
    /// Empty: the real AWS endpoint.
    pub endpoint_url: String,
    pub group_template: String,
    pub stream_template: String,
}

impl Default for CloudWatchConfig {
    fn default() -> Self {
        Self {
            region: String::new(),
            endpoint_url: String::new(),
            group_template: "/logboard/{project}/{env}".into(),
            stream_template: "{date}T{hour}".into(),
        }
    }
}

impl CloudWatchConfig {
    /// The log group holding the events of one project/environment.
    pub fn group_name(&self, project: &str, env: &str) -> String {
        self.group_template.replace("{project}", project).replace("{env}", env)
    }

    /// The log stream for an event that happened at `timestamp` (one stream per UTC hour).
    pub fn stream_name(&self, timestamp: time::OffsetDateTime) -> String {
        let utc = timestamp.to_offset(time::UtcOffset::UTC);
        let date = format!("{:04}-{:02}-{:02}", utc.year(), u8::from(utc.month()), utc.day());
        self.stream_template.replace("{date}", &date).replace("{hour}", &format!("{:02}", utc.hour()))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    pub body_bytes: usize,
    pub events_per_request: usize,
    pub event_bytes: usize,
    pub key_bytes_per_sec: u64,
    pub key_burst_bytes: u64,
    pub ip_requests_per_sec: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: 1_048_576,
            events_per_request: 1000,
            event_bytes: 65_536,
            key_bytes_per_sec: 4_194_304,
            key_burst_bytes: 6_291_456,
            ip_requests_per_sec: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UiConfig {
    /// IANA name of the zone every time on the pages is shown (and typed) in; the API stays in UTC.
    pub timezone: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self { timezone: "UTC".into() }
    }
}

/// The shortest `auth.session_secret`: 256 bits, HMAC-SHA256's key size.
pub const MIN_SESSION_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct AuthConfig {
    pub users: Vec<UserConfig>,
    /// Read-only bearer tokens for the JSON read API.
    pub api_tokens: Vec<Secret>,
    /// Signs session cookies, so that every task sharing it accepts them (at least
    /// [`MIN_SESSION_SECRET_BYTES`]). None: a random secret per process.
    pub session_secret: Option<Secret>,
    /// From `$LOGBOARD_ADMIN_PASSWORD`, never from the file.
    #[serde(skip)]
    pub admin_password: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserConfig {
    pub name: String,
    /// Argon2id PHC string, as printed by `logboard hash-password`.
    pub password_hash: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProjectConfig {
    pub name: String,
    pub envs: Vec<String>,
    /// Public, write-only keys; the key of a request decides its project.
    #[serde(default)]
    pub ingest_keys: Vec<String>,
    #[serde(default = "any_origin")]
    pub allowed_origins: Vec<String>,
    /// Other CloudWatch groups of this project, e.g. `/aws/lambda/demo-api-`.
    #[serde(default)]
    pub extra_group_prefixes: Vec<String>,
    /// Scrub PII before storing (on by default; see `scrub.rs`).
    #[serde(default = "yes")]
    pub scrub: bool,
    /// Regular expressions for more sensitive keys, beside the built-in ones.
    #[serde(default)]
    pub scrub_key_patterns: Vec<String>,
    /// Keep the sender's IP address in `extra.client_ip` (off: IPs are personal data).
    #[serde(default)]
    pub store_client_ip: bool,
    /// This project's retention in days, instead of `retention.days` (0: for ever).
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// The project id in its Sentry DSN (`POST /api/{sentry_id}/envelope/`); none: no Sentry door.
    #[serde(default)]
    pub sentry_id: Option<u64>,
    /// The env of events that name none (Sentry, OTLP); none: the first of `envs`.
    #[serde(default)]
    pub default_env: Option<String>,
}

impl ProjectConfig {
    /// The env of events that name none: `default_env`, else the first of `envs`.
    pub fn default_env(&self) -> String {
        self.default_env.clone().or_else(|| self.envs.first().cloned()).unwrap_or_default()
    }
}

/// Whether a key can stand in a DSN: the JavaScript SDK refuses other characters.
pub fn is_dsn_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn yes() -> bool {
    true
}

fn any_origin() -> Vec<String> {
    vec!["*".into()]
}

/// A string that never shows up in `Debug` output or logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A random secret (144 bits, URL-safe): the first start's admin password, the canary's key.
    pub fn random() -> Secret {
        use base64::Engine as _;
        let bytes: [u8; 18] = rand::random();
        Secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// One thing wrong with the configuration, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

pub(crate) fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { key: key.into(), message: message.into() }
}

/// Every problem found while loading a config; `Display` prints one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<Problem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The config file to read: `--config`, else `$LOGBOARD_CONFIG`, else `./config.toml`.
pub fn config_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os(CONFIG_PATH_ENV).map(PathBuf::from)).unwrap_or_else(|| DEFAULT_CONFIG_PATH.into())
}

impl Config {
    /// Reads the file, applies the process environment, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![problem(path.display().to_string(), format!("cannot read: {e}"))]))?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        let mut config = Config::from_sources(&text, &env)?;
        config.auth.admin_password =
            env.iter().find(|(k, v)| k == ADMIN_PASSWORD_ENV && !v.is_empty()).map(|(_, v)| Secret::new(v.clone()));
        Ok(config)
    }

    /// Parses TOML text overlaid by `LOGBOARD__SECTION__KEY` pairs from `env`, then validates.
    pub fn from_sources(toml_text: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        let mut root: toml::Table =
            toml::from_str(toml_text).map_err(|e| ConfigErrors(vec![problem("config.toml", e.to_string())]))?;
        let mut problems = Vec::new();
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let [section, key] = parts.as_slice() else {
                problems.push(problem(name, "expected LOGBOARD__<SECTION>__<KEY>"));
                continue;
            };
            let table = root.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match table.as_table_mut() {
                Some(table) => {
                    table.insert(key.clone(), env_value(raw));
                }
                None => problems.push(problem(name, format!("`{section}` is not a section"))),
            }
        }

        let mut unknown = Vec::new();
        let value = toml::Value::Table(root);
        let parsed: Result<Config, _> = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
            value,
            &mut |path: serde_ignored::Path<'_>| unknown.push(path.to_string()),
        ));
        problems.extend(unknown.into_iter().map(|key| problem(key, "unknown key")));
        let mut config = match parsed {
            Ok(config) => config,
            Err(e) => {
                let key = e.path().to_string();
                problems.push(problem(key, e.into_inner().to_string()));
                return Err(ConfigErrors(problems));
            }
        };
        alerts::webhooks_from_env(&mut config.channels, env);
        problems.extend(config.validate());
        if problems.is_empty() { Ok(config) } else { Err(ConfigErrors(problems)) }
    }

    /// How long one read of the embedded store may run: `storage.query_time_limit_ms`, but never
    /// past the request timeout, since a read outliving its request (408) would go on holding a
    /// connection for nobody.
    pub fn query_time_limit(&self) -> std::time::Duration {
        let limit_ms = self.storage.query_time_limit_ms.min(self.server.request_timeout_secs.saturating_mul(1000));
        std::time::Duration::from_millis(limit_ms)
    }

    /// Every problem the typed config has, each named by its key.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.server.listen.parse::<SocketAddr>().is_err() {
            problems.push(problem(
                "server.listen",
                format!("`{}` is not an address like 127.0.0.1:8080", self.server.listen),
            ));
        }
        for (i, proxy) in self.server.trusted_proxies.iter().enumerate() {
            if parse_ip_net(proxy).is_none() {
                problems.push(problem(
                    format!("server.trusted_proxies[{i}]"),
                    format!("`{proxy}` is not an IP address or CIDR"),
                ));
            }
        }
        for (key, value, max) in [
            ("server.request_timeout_secs", self.server.request_timeout_secs, MAX_TIMEOUT_SECS),
            ("server.header_read_timeout_secs", self.server.header_read_timeout_secs, MAX_TIMEOUT_SECS),
            ("server.idle_timeout_secs", self.server.idle_timeout_secs, MAX_TIMEOUT_SECS),
            ("server.max_connections", self.server.max_connections as u64, MAX_CONNECTIONS),
            ("server.max_tail_watchers", self.server.max_tail_watchers as u64, MAX_CONNECTIONS),
        ] {
            if value == 0 || value > max {
                problems.push(problem(key, format!("must be between 1 and {max}")));
            }
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            problems.push(problem("storage.data_dir", "must not be empty"));
        }
        if self.storage.spool_max_bytes == 0 {
            problems.push(problem("storage.spool_max_bytes", "must be greater than 0"));
        }
        if self.storage.query_time_limit_ms == 0 {
            problems.push(problem("storage.query_time_limit_ms", "must be greater than 0"));
        }
        self.validate_cloudwatch(&mut problems);
        self.validate_limits(&mut problems);
        if let Err(why) = crate::zone::Zone::named(&self.ui.timezone) {
            problems.push(problem("ui.timezone", why));
        }
        self.validate_auth(&mut problems);
        self.validate_projects(&mut problems);
        alerts::validate(self, &mut problems);
        state::validate(self, &mut problems);
        sourcemaps::validate(self, &mut problems);
        self.validate_retention(&mut problems);
        problems
    }

    /// Retention periods are bounded; on CloudWatch they must be one the service accepts. A value
    /// between two of those is refused rather than rounded: rounding would keep (or delete) data
    /// for a period nobody wrote down, and the message lists what to choose from.
    fn validate_retention(&self, problems: &mut Vec<Problem>) {
        let mut check = |key: String, days: u32| {
            if days > MAX_RETENTION_DAYS {
                problems.push(problem(key, format!("must be at most {MAX_RETENTION_DAYS} (0 keeps events for ever)")));
            } else if self.storage.backend == Backend::Cloudwatch
                && days != 0
                && !CLOUDWATCH_RETENTION_DAYS.contains(&days)
            {
                let allowed = CLOUDWATCH_RETENTION_DAYS.map(|d| d.to_string()).join(", ");
                problems.push(problem(
                    key,
                    format!("{days} is not a CloudWatch retention period; use 0 (for ever) or one of {allowed}"),
                ));
            }
        };
        check("retention.days".into(), self.retention.days);
        for (i, p) in self.projects.iter().enumerate() {
            if let Some(days) = p.retention_days {
                check(format!("projects[{i}].retention_days"), days);
            }
        }
        if self.retention.max_bytes != 0 && self.retention.max_bytes < MIN_MAX_BYTES {
            problems.push(problem("retention.max_bytes", format!("must be 0 (no cap) or at least {MIN_MAX_BYTES}")));
        }
    }

    /// How many days a project's events are kept: its `retention_days`, else `retention.days`;
    /// 0 = for ever.
    pub fn retention_days(&self, project: &str) -> u32 {
        self.project(project).and_then(|p| p.retention_days).unwrap_or(self.retention.days)
    }

    fn validate_cloudwatch(&self, problems: &mut Vec<Problem>) {
        let cw = &self.cloudwatch;
        if !(cw.endpoint_url.is_empty()
            || cw.endpoint_url.starts_with("http://")
            || cw.endpoint_url.starts_with("https://"))
        {
            problems.push(problem("cloudwatch.endpoint_url", "must start with http:// or https://"));
        }
        let rest = cw.group_template.replace("{project}", "").replace("{env}", "");
        if rest.contains('{') || rest.contains('}') {
            problems.push(problem("cloudwatch.group_template", "only {project} and {env} may be used"));
        }
        if !cw.group_template.contains("{project}") || !cw.group_template.contains("{env}") {
            problems.push(problem(
                "cloudwatch.group_template",
                "must contain {project} and {env}, or groups would be shared",
            ));
        }
        for project in &self.projects {
            for env in &project.envs {
                let group = cw.group_name(&project.name, env);
                if let Err(why) = check_group_name(&group) {
                    problems.push(problem(
                        "cloudwatch.group_template",
                        format!("gives `{group}` for {}/{env}: {why}", project.name),
                    ));
                }
            }
        }
        let rest = cw.stream_template.replace("{date}", "").replace("{hour}", "");
        if rest.contains('{') || rest.contains('}') {
            problems.push(problem("cloudwatch.stream_template", "only {date} and {hour} may be used"));
        }
        if !cw.stream_template.contains("{date}") || !cw.stream_template.contains("{hour}") {
            problems.push(problem("cloudwatch.stream_template", "must contain {date} and {hour}: one stream per hour"));
        }
        let sample = cw.stream_name(time::OffsetDateTime::UNIX_EPOCH);
        if sample.is_empty() || sample.len() > 512 || sample.contains([':', '*']) {
            problems.push(problem(
                "cloudwatch.stream_template",
                format!("gives `{sample}`: stream names are 1-512 characters without `:` or `*`"),
            ));
        }
    }

    fn validate_limits(&self, problems: &mut Vec<Problem>) {
        let l = &self.limits;
        for (key, value) in [
            ("limits.body_bytes", l.body_bytes as u64),
            ("limits.events_per_request", l.events_per_request as u64),
            ("limits.event_bytes", l.event_bytes as u64),
            ("limits.key_bytes_per_sec", l.key_bytes_per_sec),
            ("limits.key_burst_bytes", l.key_burst_bytes),
        ] {
            if value == 0 {
                problems.push(problem(key, "must be greater than 0"));
            }
        }
        // The byte bucket is charged a whole body at once (inflated): a smaller burst refuses
        // every full-size body, however slowly it is sent.
        if l.key_burst_bytes < l.body_bytes as u64 {
            problems.push(problem(
                "limits.key_burst_bytes",
                format!("must be at least limits.body_bytes ({}), or a full-size body never passes", l.body_bytes),
            ));
        }
        // CloudWatch takes at most 1 MiB per batch, counting 26 bytes of overhead per event.
        if l.event_bytes > 1_048_576 - 26 {
            problems.push(problem("limits.event_bytes", "must be at most 1048550 (one CloudWatch batch)"));
        }
    }

    fn validate_auth(&self, problems: &mut Vec<Problem>) {
        let mut names = HashSet::new();
        for (i, user) in self.auth.users.iter().enumerate() {
            if user.name.trim().is_empty() {
                problems.push(problem(format!("auth.users[{i}].name"), "must not be empty"));
            }
            if !names.insert(user.name.as_str()) {
                problems.push(problem(format!("auth.users[{i}].name"), format!("`{}` is defined twice", user.name)));
            }
            if !user.password_hash.starts_with("$argon2id$")
                || argon2::password_hash::phc::PasswordHash::new(&user.password_hash).is_err()
            {
                problems.push(problem(
                    format!("auth.users[{i}].password_hash"),
                    "must be an Argon2id PHC string (see `logboard hash-password`)",
                ));
            }
        }
        for (i, token) in self.auth.api_tokens.iter().enumerate() {
            if token.expose().len() < 16 {
                problems.push(problem(format!("auth.api_tokens[{i}]"), "must be at least 16 characters"));
            }
        }
        if let Some(secret) = &self.auth.session_secret
            && secret.expose().len() < MIN_SESSION_SECRET_BYTES
        {
            problems.push(problem("auth.session_secret", format!("must be at least {MIN_SESSION_SECRET_BYTES} bytes")));
        }
    }

    fn validate_projects(&self, problems: &mut Vec<Problem>) {
        if self.projects.is_empty() {
            problems.push(problem("projects", "at least one [[projects]] entry is needed"));
        }
        let mut names = HashSet::new();
        let mut key_owner: BTreeMap<&str, &str> = BTreeMap::new();
        let mut sentry_owner: BTreeMap<u64, &str> = BTreeMap::new();
        for (i, p) in self.projects.iter().enumerate() {
            let at = |field: &str| format!("projects[{i}].{field}");
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                problems.push(problem(
                    at("name"),
                    format!("`{}` must be non-empty and use only A-Z a-z 0-9 - _ .", p.name),
                ));
            }
            if !names.insert(p.name.as_str()) {
                problems.push(problem(at("name"), format!("`{}` is defined twice", p.name)));
            }
            if p.name == CANARY_PROJECT {
                problems.push(problem(at("name"), format!("`{}` is reserved for logboard's own canary", p.name)));
            }
            if p.envs.is_empty() {
                problems.push(problem(at("envs"), "must name at least one environment"));
            }
            let mut envs = HashSet::new();
            for (j, env) in p.envs.iter().enumerate() {
                if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                    problems.push(problem(
                        format!("projects[{i}].envs[{j}]"),
                        format!("`{env}` must be non-empty and use only A-Z a-z 0-9 - _ ."),
                    ));
                }
                if !envs.insert(env.as_str()) {
                    problems.push(problem(format!("projects[{i}].envs[{j}]"), format!("`{env}` is listed twice")));
                }
            }
            for (j, key) in p.ingest_keys.iter().enumerate() {
                let here = format!("projects[{i}].ingest_keys[{j}]");
                if key.trim().is_empty() {
                    problems.push(problem(here, "must not be empty"));
                } else if let Some(owner) = key_owner.insert(key.as_str(), p.name.as_str()) {
                    problems.push(problem(here, format!("is already a key of project `{owner}`; keys must be unique")));
                }
            }
            for (j, origin) in p.allowed_origins.iter().enumerate() {
                if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                    problems.push(problem(
                        format!("projects[{i}].allowed_origins[{j}]"),
                        format!("`{origin}` must be \"*\" or an origin like https://app.example.com"),
                    ));
                }
            }
            for (j, pattern) in p.scrub_key_patterns.iter().enumerate() {
                if let Err(e) = regex::Regex::new(pattern) {
                    problems.push(problem(
                        format!("projects[{i}].scrub_key_patterns[{j}]"),
                        format!("not a regular expression: {e}"),
                    ));
                }
            }
            if let Some(env) = &p.default_env
                && !p.envs.contains(env)
            {
                problems.push(problem(at("default_env"), format!("`{env}` is not one of the project's envs")));
            }
            match p.sentry_id {
                Some(0) => problems.push(problem(at("sentry_id"), "must be a positive integer")),
                Some(id) => {
                    if let Some(owner) = sentry_owner.insert(id, p.name.as_str()) {
                        problems.push(problem(at("sentry_id"), format!("{id} is already the sentry_id of `{owner}`")));
                    }
                    if !p.ingest_keys.iter().any(|key| is_dsn_key(key)) {
                        problems.push(problem(
                            at("ingest_keys"),
                            "a project with sentry_id needs a key of only A-Z a-z 0-9 _ (the DSN's key)",
                        ));
                    }
                }
                None => {}
            }
            for (j, prefix) in p.extra_group_prefixes.iter().enumerate() {
                if prefix.is_empty() || !prefix.chars().all(is_group_char) {
                    problems.push(problem(
                        format!("projects[{i}].extra_group_prefixes[{j}]"),
                        format!("`{prefix}` is not a log group name prefix"),
                    ));
                }
            }
        }
    }

    /// The dashboard's address for links in messages: `server.public_url`, else `http://<listen>`.
    pub fn public_url(&self) -> String {
        let url = if self.server.public_url.is_empty() {
            format!("http://{}", self.server.listen)
        } else {
            self.server.public_url.clone()
        };
        url.trim_end_matches('/').to_string()
    }

    pub fn project(&self, name: &str) -> Option<&ProjectConfig> {
        self.projects.iter().find(|p| p.name == name)
    }

    /// True when no user can log in yet, so one must be generated at start-up.
    pub fn has_no_users(&self) -> bool {
        self.auth.users.is_empty() && self.auth.admin_password.is_none()
    }
}

/// Environment values are TOML literals where they parse as one (`5`, `true`, `["a"]`),
/// plain strings otherwise (`cloudwatch`, `0.0.0.0:8080`).
fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn is_group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-/#".contains(c)
}

/// CloudWatch's rule for log group names.
pub fn check_group_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 512 {
        return Err("log group names are 1-512 characters");
    }
    if !name.chars().all(is_group_char) {
        return Err("log group names use only A-Z a-z 0-9 . _ - / #");
    }
    if name.starts_with("aws/") {
        return Err("log group names must not start with aws/");
    }
    Ok(())
}

/// An IP address or CIDR block, as `(network, prefix length)`.
pub fn parse_ip_net(text: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../config.toml");

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn keys(err: ConfigErrors) -> Vec<String> {
        err.0.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn the_shipped_config_is_valid_and_uses_the_embedded_store() {
        let config = Config::from_sources(SHIPPED, &[]).expect("shipped config.toml must be valid");
        assert_eq!(config.storage.backend, Backend::Local);
        let demo = config.project("demo").expect("demo project");
        assert_eq!(demo.envs, ["production", "staging", "dev"]);
        assert_eq!(demo.ingest_keys, ["demo-ingest-key", "demo_sentry_key"]);
        assert_eq!((demo.sentry_id, demo.default_env().as_str()), (Some(1), "production"));
    }

    #[test]
    fn sentry_ids_are_positive_and_unique_with_a_key_a_dsn_can_hold_and_default_env_is_an_env() {
        let text = r#"
[[projects]]
name = "a"
envs = ["prod"]
ingest_keys = ["with-dash"]
sentry_id = 3
default_env = "qa"
[[projects]]
name = "b"
envs = ["prod"]
ingest_keys = ["b_key"]
sentry_id = 3
[[projects]]
name = "c"
envs = ["prod"]
ingest_keys = ["c_key"]
sentry_id = 0
"#;
        let err = Config::from_sources(text, &[]).unwrap_err();
        let problems: Vec<String> = err.0.iter().map(|p| format!("{}: {}", p.key, p.message)).collect();
        assert_eq!(
            problems,
            [
                "projects[0].default_env: `qa` is not one of the project's envs",
                "projects[0].ingest_keys: a project with sentry_id needs a key of only A-Z a-z 0-9 _ (the DSN's key)",
                "projects[1].sentry_id: 3 is already the sentry_id of `a`",
                "projects[2].sentry_id: must be a positive integer",
            ]
        );
    }

    #[test]
    fn environment_variables_override_file_keys_with_typed_values() {
        let config = Config::from_sources(
            SHIPPED,
            &env(&[
                ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
                ("LOGBOARD__SERVER__LISTEN", "0.0.0.0:9000"),
                ("LOGBOARD__LIMITS__EVENTS_PER_REQUEST", "5"),
                ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("LOGBOARD_CONFIG", "ignored.toml"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.storage.backend, Backend::Cloudwatch);
        assert_eq!(config.server.listen, "0.0.0.0:9000");
        assert_eq!(config.limits.events_per_request, 5);
        assert_eq!(config.cloudwatch.endpoint_url, "http://127.0.0.1:5000");
    }

    #[test]
    fn unknown_keys_in_file_and_environment_are_each_named() {
        let text = format!("{SHIPPED}\n[extra]\nfoo = 1\n");
        let text = text.replacen("[server]", "[server]\nlisten_port = 1", 1);
        let err = Config::from_sources(&text, &env(&[("LOGBOARD__STORAGE__BAKEND", "x")])).unwrap_err();
        let keys = keys(err);
        assert!(keys.contains(&"server.listen_port".to_string()), "{keys:?}");
        assert!(keys.contains(&"extra".to_string()), "{keys:?}");
        assert!(keys.contains(&"storage.bakend".to_string()), "{keys:?}");
    }

    #[test]
    fn a_key_burst_below_the_body_limit_is_refused() {
        let err = Config::from_sources(SHIPPED, &env(&[("LOGBOARD__LIMITS__KEY_BURST_BYTES", "1048575")])).unwrap_err();
        assert_eq!(keys(err), ["limits.key_burst_bytes"]);
        let at_limit = env(&[("LOGBOARD__LIMITS__KEY_BURST_BYTES", "1048576")]);
        assert!(Config::from_sources(SHIPPED, &at_limit).is_ok());
    }

    #[test]
    fn a_session_secret_comes_from_the_environment_never_shows_and_must_be_32_bytes() {
        let secret = "0123456789abcdef0123456789abcdef";
        let config = Config::from_sources(SHIPPED, &env(&[("LOGBOARD__AUTH__SESSION_SECRET", secret)])).expect("valid");
        assert_eq!(config.auth.session_secret.as_ref().map(Secret::expose), Some(secret));
        assert!(!format!("{config:?}").contains(secret), "redacted in Debug");
        let short = env(&[("LOGBOARD__AUTH__SESSION_SECRET", &secret[1..])]);
        let err = Config::from_sources(SHIPPED, &short).unwrap_err();
        assert_eq!(err.to_string(), "auth.session_secret: must be at least 32 bytes\n");
        assert!(!err.to_string().contains(&secret[1..]));
        assert_eq!(Config::from_sources(SHIPPED, &[]).expect("shipped").auth.session_secret, None);
    }

    #[test]
    fn the_query_time_limit_must_be_positive_and_is_capped_at_the_request_timeout() {
        let limit = |ms: &str, timeout: &str| {
            let pairs = env(&[
                ("LOGBOARD__STORAGE__QUERY_TIME_LIMIT_MS", ms),
                ("LOGBOARD__SERVER__REQUEST_TIMEOUT_SECS", timeout),
            ]);
            Config::from_sources(SHIPPED, &pairs).map(|c| c.query_time_limit()).map_err(keys)
        };
        assert_eq!(limit("0", "30"), Err(vec!["storage.query_time_limit_ms".to_string()]));
        assert_eq!(limit("250", "30"), Ok(std::time::Duration::from_millis(250)));
        assert_eq!(limit("60000", "30"), Ok(std::time::Duration::from_secs(30)));
        assert_eq!(Config::from_sources(SHIPPED, &[]).expect("shipped").query_time_limit().as_millis(), 10_000);
    }

    #[test]
    fn the_page_time_zone_is_utc_by_default_set_by_name_and_a_wrong_name_is_refused_by_key() {
        assert_eq!(Config::from_sources(SHIPPED, &[]).expect("shipped").ui.timezone, "UTC");
        let seoul = Config::from_sources(SHIPPED, &env(&[("LOGBOARD__UI__TIMEZONE", "Asia/Seoul")])).expect("valid");
        assert_eq!(seoul.ui.timezone, "Asia/Seoul");
        let err = Config::from_sources(SHIPPED, &env(&[("LOGBOARD__UI__TIMEZONE", "Asia/Soul")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ui.timezone: `Asia/Soul` is not an IANA time zone name (like Asia/Seoul, Europe/Berlin or UTC)\n"
        );
        let misspelt = env(&[("LOGBOARD__UI__TIME_ZONE", "Asia/Seoul")]);
        assert_eq!(keys(Config::from_sources(SHIPPED, &misspelt).unwrap_err()), ["ui.time_zone"]);
    }

    #[test]
    fn a_wrong_type_is_reported_with_its_key() {
        let err = Config::from_sources(SHIPPED, &env(&[("LOGBOARD__LIMITS__BODY_BYTES", "lots")])).unwrap_err();
        assert_eq!(keys(err), ["limits.body_bytes"]);
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let text = r#"
[server]
listen = "nowhere"
[cloudwatch]
group_template = "/logboard/{project}:{env}"
stream_template = "{date}"
[[projects]]
name = "a"
envs = []
ingest_keys = ["k1"]
[[projects]]
name = "b"
envs = ["prod", "prod"]
ingest_keys = ["k1"]
"#;
        let keys = keys(Config::from_sources(text, &[]).unwrap_err());
        for expected in [
            "server.listen",
            "cloudwatch.group_template",
            "cloudwatch.stream_template",
            "projects[0].envs",
            "projects[1].envs[1]",
            "projects[1].ingest_keys[0]",
        ] {
            assert!(keys.iter().any(|k| k == expected), "missing {expected} in {keys:?}");
        }
    }

    #[test]
    fn connection_timeouts_and_the_cap_must_be_positive_and_bounded() {
        let err = Config::from_sources(
            SHIPPED,
            &env(&[
                ("LOGBOARD__SERVER__HEADER_READ_TIMEOUT_SECS", "0"),
                ("LOGBOARD__SERVER__IDLE_TIMEOUT_SECS", "86401"),
                ("LOGBOARD__SERVER__MAX_CONNECTIONS", "0"),
                ("LOGBOARD__SERVER__MAX_TAIL_WATCHERS", "0"),
            ]),
        )
        .unwrap_err();
        assert_eq!(
            keys(err),
            [
                "server.header_read_timeout_secs",
                "server.idle_timeout_secs",
                "server.max_connections",
                "server.max_tail_watchers"
            ]
        );
        let config = Config::from_sources(SHIPPED, &[]).expect("valid");
        assert_eq!(
            (config.server.header_read_timeout_secs, config.server.idle_timeout_secs, config.server.max_connections),
            (10, 75, 1024)
        );
    }

    #[test]
    fn retention_defaults_to_30_days_and_a_project_may_set_its_own() {
        let config = Config::from_sources(SHIPPED, &[]).expect("shipped");
        assert_eq!(
            (config.retention.days, config.retention.max_bytes, config.retention.min_free_bytes),
            (30, 0, 512 << 20)
        );
        assert_eq!(config.retention_days("demo"), 30);
        let text = SHIPPED.replacen("name = \"demo\"", "name = \"demo\"\nretention_days = 7", 1);
        let config = Config::from_sources(&text, &env(&[("LOGBOARD__RETENTION__DAYS", "0")])).expect("valid");
        assert_eq!((config.retention_days("demo"), config.retention_days("other")), (7, 0));
    }

    #[test]
    fn a_retention_cloudwatch_does_not_offer_is_refused_on_that_backend_only() {
        let text = SHIPPED.replacen("name = \"demo\"", "name = \"demo\"\nretention_days = 10", 1);
        assert!(Config::from_sources(&text, &[]).is_ok(), "any number of days on the embedded store");
        let cloudwatch = env(&[("LOGBOARD__STORAGE__BACKEND", "cloudwatch"), ("LOGBOARD__RETENTION__DAYS", "45")]);
        let err = Config::from_sources(&text, &cloudwatch).unwrap_err();
        assert_eq!(keys(err), ["retention.days", "projects[0].retention_days"]);
        let fine = env(&[("LOGBOARD__STORAGE__BACKEND", "cloudwatch"), ("LOGBOARD__RETENTION__DAYS", "0")]);
        assert!(Config::from_sources(SHIPPED, &fine).is_ok(), "0 keeps events for ever on CloudWatch too");
        let err = Config::from_sources(
            SHIPPED,
            &env(&[("LOGBOARD__RETENTION__DAYS", "36501"), ("LOGBOARD__RETENTION__MAX_BYTES", "1000")]),
        )
        .unwrap_err();
        assert_eq!(keys(err), ["retention.days", "retention.max_bytes"]);
    }

    #[test]
    fn group_and_stream_names_follow_the_templates() {
        let cw = CloudWatchConfig::default();
        assert_eq!(cw.group_name("demo", "staging"), "/logboard/demo/staging");
        let t = time::macros::datetime!(2026-11-24 15:59:59.999 UTC);
        assert_eq!(cw.stream_name(t), "2026-11-24T15");
        let kst = t.to_offset(time::macros::offset!(+9));
        assert_eq!(cw.stream_name(kst), "2026-11-24T15", "streams are named in UTC");
    }

    #[test]
    fn group_names_are_checked_against_cloudwatch_rules() {
        assert!(check_group_name("/aws/lambda/demo-api-x").is_ok());
        assert!(check_group_name("aws/x").is_err());
        assert!(check_group_name("a b").is_err());
        assert!(check_group_name(&"a".repeat(513)).is_err());
    }
}
