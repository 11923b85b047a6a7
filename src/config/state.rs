//! `[state]`: where the state every task must share lives — the issue index, the alert state,
//! leases (`../shared/spec/state.md`). `local` keeps it in SQLite files under `data_dir` (one
//! process); `dynamodb` in one DynamoDB table that every task reads and writes.

use serde::Deserialize;

use super::{Config, Problem, problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// SQLite files under `storage.data_dir`: right for one process.
    #[default]
    Local,
    /// One DynamoDB table shared by every task.
    Dynamodb,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StateConfig {
    pub backend: StateBackend,
    /// The DynamoDB table (`logboard create-state-table` creates it).
    pub table: String,
    /// Empty: `cloudwatch.region`, else the AWS default chain.
    pub region: String,
    /// Empty: the real AWS endpoint (tests: moto's server).
    pub endpoint_url: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: StateBackend::Local,
            table: "logboard-state".into(),
            region: String::new(),
            endpoint_url: String::new(),
        }
    }
}

impl StateConfig {
    /// The region the table is in: its own, else CloudWatch's, else (empty) the SDK's chain.
    pub fn region<'a>(&'a self, config: &'a Config) -> &'a str {
        if self.region.is_empty() { &config.cloudwatch.region } else { &self.region }
    }
}

/// DynamoDB's rule for table names.
fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub(super) fn validate(config: &Config, problems: &mut Vec<Problem>) {
    let state = &config.state;
    if state.backend == StateBackend::Dynamodb && !valid_table_name(&state.table) {
        problems.push(problem("state.table", "must be 3 to 255 letters, digits, `_`, `-` or `.`"));
    }
    if !(state.endpoint_url.is_empty()
        || state.endpoint_url.starts_with("http://")
        || state.endpoint_url.starts_with("https://"))
    {
        problems.push(problem("state.endpoint_url", "must start with http:// or https://"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped config (it has the projects a valid config needs) and `toml` after it.
    fn load(toml: &str, env: &[(String, String)]) -> Result<Config, super::super::ConfigErrors> {
        Config::from_sources(&format!("{}\n{toml}", include_str!("../../config.toml")), env)
    }

    fn problems(toml: &str) -> Vec<String> {
        match load(toml, &[]) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn the_state_is_local_unless_dynamodb_is_asked_for() {
        let config = load("", &[]).unwrap();
        assert_eq!(config.state.backend, StateBackend::Local);
        let env = [("LOGBOARD__STATE__BACKEND".to_string(), "dynamodb".to_string())];
        let region = [("LOGBOARD__CLOUDWATCH__REGION".to_string(), "eu-west-1".to_string())];
        let config = load("", &[env[0].clone(), region[0].clone()]).unwrap();
        assert_eq!(config.state.backend, StateBackend::Dynamodb);
        assert_eq!(config.state.table, "logboard-state");
        assert_eq!(config.state.region(&config), "eu-west-1");
    }

    #[test]
    fn a_bad_table_name_or_endpoint_is_named() {
        let found = problems("[state]\nbackend = \"dynamodb\"\ntable = \"a b\"\nendpoint_url = \"localhost:8000\"\n");
        assert!(found.iter().any(|p| p.contains("state.table")), "{found:?}");
        assert!(found.iter().any(|p| p.contains("state.endpoint_url")), "{found:?}");
        let found = problems("[state]\nbackend = \"sqlite\"\n");
        assert!(found.iter().any(|p| p.contains("state.backend")), "{found:?}");
    }
}
