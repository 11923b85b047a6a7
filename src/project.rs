//! The projects as the running service knows them: built once from the config at start-up
//! (scrubber compiled, own log group named per environment, keys indexed) and shared; requests
//! and reads borrow them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::{CloudWatchConfig, Config, ProjectConfig, is_dsn_key};
use crate::scrub::Scrubber;

/// One project at run time.
#[derive(Debug)]
pub struct Project {
    pub name: String,
    pub envs: Vec<String>,
    /// Origins browsers may send from (`*`: any).
    pub allowed_origins: Vec<String>,
    /// Prefixes of the project's other CloudWatch groups (its Lambda functions').
    pub extra_group_prefixes: Vec<String>,
    /// Keep the sender's IP address in `extra.client_ip`.
    pub store_client_ip: bool,
    pub scrubber: Scrubber,
    /// logboard's own project (the monitor's canary), marked as internal on the pages.
    pub internal: bool,
    /// The project id in its Sentry DSN; none: no Sentry door.
    pub sentry_id: Option<u64>,
    /// The env of events that name none (Sentry, OTLP).
    pub default_env: String,
    /// The first ingest key that can stand in a DSN.
    dsn_key: Option<String>,
    /// Environment → the log group logboard writes its events to.
    groups: BTreeMap<String, String>,
}

impl Project {
    /// The project of `config`, its groups named by `naming`'s template.
    pub fn new(config: &ProjectConfig, naming: &CloudWatchConfig) -> anyhow::Result<Project> {
        let scrubber = Scrubber::new(config.scrub, &config.scrub_key_patterns)
            .with_context(|| format!("compiling the scrub_key_patterns of project {}", config.name))?;
        Ok(Project {
            name: config.name.clone(),
            envs: config.envs.clone(),
            allowed_origins: config.allowed_origins.clone(),
            extra_group_prefixes: config.extra_group_prefixes.clone(),
            store_client_ip: config.store_client_ip,
            scrubber,
            internal: false,
            sentry_id: config.sentry_id,
            default_env: config.default_env(),
            dsn_key: config.ingest_keys.iter().find(|key| is_dsn_key(key)).cloned(),
            groups: config.envs.iter().map(|env| (env.clone(), naming.group_name(&config.name, env))).collect(),
        })
    }

    pub fn has_env(&self, env: &str) -> bool {
        self.groups.contains_key(env)
    }

    /// The log group of the project's own events in `env` (empty for an unknown env).
    pub fn own_group(&self, env: &str) -> &str {
        self.groups.get(env).map_or("", String::as_str)
    }

    /// The project's Sentry DSN, `http(s)://<key>@<host>/<sentry_id>` under `public_url`, when
    /// it has a `sentry_id` and a key that fits.
    pub fn dsn(&self, public_url: &str) -> Option<String> {
        let (id, key) = (self.sentry_id?, self.dsn_key.as_deref()?);
        let mut url = url::Url::parse(public_url).ok()?;
        url.set_username(key).ok()?;
        let path = format!("{}/{id}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        Some(url.to_string())
    }

    /// Whether `group` is one of the project's other groups (under an extra prefix).
    pub fn is_external_group(&self, group: &str) -> bool {
        self.extra_group_prefixes.iter().any(|prefix| !prefix.is_empty() && group.starts_with(prefix.as_str()))
    }
}

impl Project {
    /// A project `demo` with scrubbing on, the default group names and the given environments:
    /// what unit tests of ingest and the stores work with.
    #[cfg(test)]
    pub(crate) fn for_tests(envs: &[&str]) -> Project {
        Project::new(&Project::config_for_tests(envs), &CloudWatchConfig::default())
            .unwrap_or_else(|e| panic!("test project: {e}"))
    }

    /// The config of [`Project::for_tests`].
    #[cfg(test)]
    pub(crate) fn config_for_tests(envs: &[&str]) -> ProjectConfig {
        ProjectConfig {
            name: "demo".into(),
            envs: envs.iter().map(|env| env.to_string()).collect(),
            ingest_keys: vec!["k".into()],
            allowed_origins: vec!["*".into()],
            extra_group_prefixes: vec![],
            scrub: true,
            scrub_key_patterns: vec![],
            store_client_ip: false,
            retention_days: None,
            sentry_id: Some(1),
            default_env: None,
        }
    }
}

/// Every project, by name and by ingest key.
#[derive(Debug, Default)]
pub struct Projects {
    list: Vec<Arc<Project>>,
    by_key: HashMap<String, Arc<Project>>,
    by_sentry_id: HashMap<u64, Arc<Project>>,
    /// The ingest key of the canary's project, when the canary runs.
    canary_key: Option<String>,
}

pub use crate::config::{CANARY_ENV, CANARY_PROJECT};

/// The header an ingest key comes in (also `Authorization: Bearer` and `?key=`).
pub const KEY_HEADER: &str = "x-logboard-key";

impl Projects {
    pub fn from_config(config: &Config) -> anyhow::Result<Projects> {
        let mut projects = Projects::default();
        for project_config in &config.projects {
            let project = Arc::new(Project::new(project_config, &config.cloudwatch)?);
            for key in &project_config.ingest_keys {
                projects.by_key.insert(key.clone(), Arc::clone(&project));
            }
            if let Some(id) = project.sentry_id {
                projects.by_sentry_id.insert(id, Arc::clone(&project));
            }
            projects.list.push(project);
        }
        if config.monitor.canary_interval_secs > 0 {
            let canary = ProjectConfig {
                name: CANARY_PROJECT.into(),
                envs: vec![CANARY_ENV.into()],
                ingest_keys: Vec::new(),
                allowed_origins: Vec::new(),
                extra_group_prefixes: Vec::new(),
                scrub: false,
                scrub_key_patterns: Vec::new(),
                store_client_ip: false,
                // A canary is worth nothing once read back: kept a day (a value CloudWatch takes).
                retention_days: Some(1),
                sentry_id: None,
                default_env: None,
            };
            let project = Arc::new(Project { internal: true, ..Project::new(&canary, &config.cloudwatch)? });
            // A key made at start, known only to this process: nobody else can write there.
            let key = format!("canary-{}", crate::config::Secret::random().expose());
            projects.by_key.insert(key.clone(), Arc::clone(&project));
            projects.canary_key = Some(key);
            projects.list.push(project);
        }
        Ok(projects)
    }

    /// The ingest key of the canary's project, when the canary runs.
    pub fn canary_key(&self) -> Option<&str> {
        self.canary_key.as_deref()
    }

    /// In the order of the config.
    pub fn iter(&self) -> impl Iterator<Item = &Project> {
        self.list.iter().map(AsRef::as_ref)
    }

    pub fn get(&self, name: &str) -> Option<&Project> {
        self.iter().find(|p| p.name == name)
    }

    /// The project whose Sentry DSN names `sentry_id`.
    pub fn by_sentry_id(&self, sentry_id: u64) -> Option<&Arc<Project>> {
        self.by_sentry_id.get(&sentry_id)
    }

    /// The project an ingest key writes to.
    pub fn by_key(&self, key: &str) -> Option<&Arc<Project>> {
        self.by_key.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_found_by_name_and_key_and_name_their_groups() {
        let config = Config::from_sources(include_str!("../config.toml"), &[]).expect("config");
        let projects = Projects::from_config(&config).expect("projects");
        let demo = projects.get("demo").expect("demo");
        assert_eq!(projects.by_key("demo-ingest-key").map(|p| p.name.as_str()), Some("demo"));
        assert!(projects.by_key("nope").is_none());
        assert_eq!(demo.own_group("production"), "/logboard/demo/production");
        assert!(demo.has_env("production") && !demo.has_env("qa"));
        let with_lambdas = ProjectConfig {
            extra_group_prefixes: vec!["/aws/lambda/demo-".into(), String::new()],
            ..config.projects[0].clone()
        };
        let project = Project::new(&with_lambdas, &config.cloudwatch).expect("project");
        assert!(project.is_external_group("/aws/lambda/demo-api-orders"));
        assert!(!project.is_external_group("/aws/lambda/other"), "an empty prefix matches nothing");
    }

    #[test]
    fn a_dsn_names_the_first_key_that_fits_and_the_sentry_id_under_the_public_url() {
        let config = ProjectConfig {
            ingest_keys: vec!["has-dash".into(), "web_key_1".into()],
            sentry_id: Some(7),
            ..Project::config_for_tests(&["production"])
        };
        let project = Project::new(&config, &CloudWatchConfig::default()).expect("project");
        assert_eq!(project.dsn("https://logs.example.com").as_deref(), Some("https://web_key_1@logs.example.com/7"));
        assert_eq!(project.dsn("http://127.0.0.1:8080/").as_deref(), Some("http://web_key_1@127.0.0.1:8080/7"));
        assert_eq!(
            project.dsn("https://example.com/logboard").as_deref(),
            Some("https://web_key_1@example.com/logboard/7")
        );
        let only_dashes = ProjectConfig { ingest_keys: vec!["has-dash".into()], ..config.clone() };
        assert_eq!(Project::new(&only_dashes, &CloudWatchConfig::default()).expect("project").dsn("http://h"), None);
        let no_id = ProjectConfig { sentry_id: None, ..config };
        assert_eq!(Project::new(&no_id, &CloudWatchConfig::default()).expect("project").dsn("http://h"), None);
    }
}
