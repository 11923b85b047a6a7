//! The retention policy of the groups logboard writes (`retention.days`, or a project's
//! `retention_days`): put on a group right after logboard creates it, and checked against every
//! existing own group at start-up and every few minutes after, so that a group created before the
//! setting changed (or by hand) is corrected. 0 days removes the policy: kept for ever. Other
//! groups (a Lambda function's) are never touched.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::DisplayErrorContext;
use tokio::task::AbortHandle;

use crate::config::Config;

/// How often existing groups are compared with the config: cheap (one DescribeLogGroups per
/// 50 groups), and it retries a policy a create could not set.
const RECONCILE_EVERY: Duration = Duration::from_secs(600);
/// After a failed comparison (CloudWatch unreachable, say), the next try.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// Days each own group keeps its events; 0 = for ever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRetention {
    days: HashMap<String, u32>,
    /// The group template's fixed start (`/logboard/`): every own group is listed under it.
    prefix: String,
}

impl GroupRetention {
    pub fn from_config(config: &Config) -> GroupRetention {
        let mut days = HashMap::new();
        for project in &config.projects {
            for env in &project.envs {
                days.insert(config.cloudwatch.group_name(&project.name, env), config.retention_days(&project.name));
            }
        }
        let prefix = config.cloudwatch.group_template.split('{').next().unwrap_or_default().to_string();
        GroupRetention { days, prefix }
    }

    /// Puts the policy on a group logboard has just created. A failure is logged, not returned:
    /// the events must still go out, and the next comparison puts it again.
    pub async fn on_created(&self, client: &Client, group: &str) {
        if let Some(&days) = self.days.get(group).filter(|days| **days > 0) {
            if let Err(error) = set(client, group, days).await {
                tracing::warn!(group, days, error = %format!("{error:#}"), "setting a new group's retention");
            }
        }
    }

    /// Sets the policy of every existing own group whose policy differs; returns how many.
    pub async fn reconcile(&self, client: &Client) -> anyhow::Result<usize> {
        let mut changed = 0;
        let mut token = None;
        loop {
            let mut call = client.describe_log_groups().set_next_token(token.take());
            if !self.prefix.is_empty() {
                call = call.log_group_name_prefix(&self.prefix);
            }
            let page = call.send().await.map_err(|e| anyhow!("DescribeLogGroups: {}", DisplayErrorContext(&e)))?;
            for group in page.log_groups() {
                let Some(name) = group.log_group_name() else { continue };
                let Some(&days) = self.days.get(name) else { continue };
                let wanted = i32::try_from(days).ok().filter(|days| *days > 0);
                if group.retention_in_days() != wanted {
                    set(client, name, days).await?;
                    tracing::info!(group = name, days, was = ?group.retention_in_days(), "corrected a group's retention");
                    changed += 1;
                }
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(changed),
            }
        }
    }

    /// Compares now and every [`RECONCILE_EVERY`] (sooner after a failure), until aborted.
    pub fn watch(self: Arc<Self>, client: Client) -> AbortHandle {
        tokio::spawn(async move {
            loop {
                let wait = match self.reconcile(&client).await {
                    Ok(_) => RECONCILE_EVERY,
                    Err(error) => {
                        tracing::warn!(error = %format!("{error:#}"), "checking the groups' retention");
                        RETRY_AFTER_FAILURE
                    }
                };
                tokio::time::sleep(wait).await;
            }
        })
        .abort_handle()
    }
}

/// PutRetentionPolicy, or DeleteRetentionPolicy for 0 (for ever).
async fn set(client: &Client, group: &str, days: u32) -> anyhow::Result<()> {
    let failed = |e: String| anyhow!("setting the retention of {group}: {e}");
    if days == 0 {
        let call = client.delete_retention_policy().log_group_name(group).send().await;
        call.map(|_| ()).map_err(|e| failed(DisplayErrorContext(&e).to_string()))
    } else {
        let days = i32::try_from(days).map_err(|_| failed(format!("{days} days")))?;
        let call = client.put_retention_policy().log_group_name(group).retention_in_days(days).send().await;
        call.map(|_| ()).map_err(|e| failed(DisplayErrorContext(&e).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_own_group_gets_its_projects_retention_under_the_templates_prefix() {
        let text =
            include_str!("../../../config.toml").replacen("name = \"demo\"", "name = \"demo\"\nretention_days = 7", 1);
        let config = Config::from_sources(&text, &[]).expect("config");
        let retention = GroupRetention::from_config(&config);
        assert_eq!(retention.prefix, "/logboard/");
        let mut groups: Vec<(&str, u32)> = retention.days.iter().map(|(g, d)| (g.as_str(), *d)).collect();
        groups.sort_unstable();
        assert_eq!(
            groups,
            [("/logboard/demo/dev", 7), ("/logboard/demo/production", 7), ("/logboard/demo/staging", 7)]
        );
    }
}
