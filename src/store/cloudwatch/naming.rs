//! Where logboard's events go in CloudWatch (a group per project/environment, a stream per UTC
//! hour, from the config's templates) and which groups a project's reader may look at: its own
//! and those under its `extra_group_prefixes` (its Lambda functions').

use time::OffsetDateTime;

use crate::config::CloudWatchConfig;
use crate::project::Project;

pub(super) struct Naming {
    templates: CloudWatchConfig,
}

impl Naming {
    pub(super) fn new(templates: CloudWatchConfig) -> Naming {
        Naming { templates }
    }

    /// The group logboard writes a project/environment's events to.
    pub(super) fn own_group(&self, project: &str, env: &str) -> String {
        self.templates.group_name(project, env)
    }

    /// The stream of an event that happened at `timestamp`.
    pub(super) fn stream(&self, timestamp: OffsetDateTime) -> String {
        self.templates.stream_name(timestamp)
    }

    /// The group a read may look at: the own group, or one under the project's extra prefixes.
    pub(super) fn readable_group(&self, project: &Project, env: &str, group: Option<&str>) -> Option<String> {
        let own = project.own_group(env);
        match group {
            None => Some(own.to_string()),
            Some(g) if g == own || project.is_external_group(g) => Some(g.to_string()),
            Some(_) => None,
        }
    }
}
