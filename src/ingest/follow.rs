//! The issue follower: on the CloudWatch backend, the issue index and the alert rules are fed by
//! reading error lines back from CloudWatch rather than by ingest. Several tasks behind a load balancer each ingest
//! part of the events, and Lambda functions write their groups without logboard: only CloudWatch
//! holds every error, so each task follows every group and its index is complete.
//!
//! Every poll reads, for each project/environment, its own group (unless the index is shared:
//! then every task counted its own errors at acceptance) and each Lambda group under its
//! `extra_group_prefixes` (the store reads them with a filter pattern and decides the level
//! itself). Per group, its checkpoint ([`IssueIndex::follow_state`]) keeps where the next read
//! starts and the ids already counted, written with the occurrences, so a crash never counts an
//! event twice nor skips one. A group is read only by the follower holding its lease
//! (`follow:<group>`, [`crate::lease`]), taken again on every poll; a group another instance
//! holds is skipped (on the local state every lease is granted: each task has its own files).
//!
//! Events reach CloudWatch late (the spool ships after an outage; a client's clock is off) and
//! FilterLogEvents selects by event time, so a read that finished re-reads the last
//! [`OVERLAP_MS`] on the next poll and `follow_seen` drops what was counted already. One read is
//! bounded (a few pages, a few seconds, see the store): with a backlog it stops where its budget
//! ran out and the next poll goes on from there, so new errors of other groups are not held up
//! behind it. The price: while a backlog is worked through, the overlap is not re-read, so an
//! event that arrives more than [`OVERLAP_MS`] late, or later than the backlog took to read,
//! is never counted (it is still stored and searchable).

use std::sync::Arc;
use std::time::Duration;

use crate::alerts::engine::{Alerts, Hits};
use crate::clock::{HOUR_MS, now_ms};
use crate::issues::{Followed, IssueIndex, Occurrence};
use crate::lease::Lease;
use crate::project::{Project, Projects};
use crate::store::LogStore;

/// How far behind the newest end a finished read starts the next one: how late an event may
/// reach CloudWatch and still be counted.
pub const OVERLAP_MS: i64 = 2 * HOUR_MS;
/// How long an id is kept in `follow_seen` after no read can reach its time any more.
const SEEN_KEPT_MS: i64 = 2 * 24 * HOUR_MS;
/// A group's lease lasts this many polls: a follower that stops (a task replaced, killed)
/// leaves its groups to another after that long.
const LEASE_POLLS: u32 = 3;

/// How long a follower polling every `every` holds a group's lease: it takes it again on each
/// poll, so it keeps it while it runs.
pub fn lease_ttl(every: Duration) -> Duration {
    every.saturating_mul(LEASE_POLLS)
}

/// What the follower reads from and writes to.
pub struct Follower {
    pub store: Arc<dyn LogStore>,
    pub issues: Arc<dyn IssueIndex>,
    pub alerts: Arc<Alerts>,
    pub projects: Arc<Projects>,
    /// One follower reads a group at a time: the one holding its lease (`follow:<group>`).
    pub leases: Arc<dyn Lease>,
    /// This follower, as a lease holder.
    pub holder: String,
    /// How long a group's lease lasts ([`lease_ttl`]).
    pub lease_ttl: Duration,
}

/// Follows every group every `every`, for as long as the process runs.
pub fn spawn(follower: Follower, every: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            follower.poll().await;
        }
    });
}

impl Follower {
    /// One read of every group; a group that fails is tried again on the next poll.
    pub async fn poll(&self) {
        for project in self.projects.iter().filter(|p| !p.internal) {
            for (env, group) in self.groups_of(project).await {
                if let Err(error) = self.follow(project, env, &group).await {
                    tracing::warn!(error = format!("{error:#}"), group, "following a group's errors");
                }
            }
        }
    }

    /// The project's groups, each with the environment whose issues it feeds.
    async fn groups_of<'p>(&self, project: &'p Project) -> Vec<(&'p str, String)> {
        // A shared index has the own groups' errors from ingest, on whichever task took them.
        let mut groups: Vec<(&str, String)> = if self.issues.is_shared() {
            Vec::new()
        } else {
            project.envs.iter().map(|env| (env.as_str(), project.own_group(env).to_string())).collect()
        };
        if project.extra_group_prefixes.iter().all(String::is_empty) {
            return groups;
        }
        // Listed afresh on every poll (one DescribeLogGroups per prefix): a new function's
        // errors are followed from its first poll on.
        match self.store.external_groups_now(project).await {
            Ok(listed) => groups.extend(listed.into_iter().map(|name| (lambda_env(project, &name), name))),
            Err(error) => tracing::warn!(error = format!("{error:#}"), project = project.name, "listing Lambda groups"),
        }
        groups
    }

    async fn follow(&self, project: &Project, env: &str, group: &str) -> anyhow::Result<()> {
        if !self.leases.acquire(&format!("follow:{group}"), &self.holder, self.lease_ttl).await? {
            tracing::debug!(group, "another instance follows this group");
            return Ok(());
        }
        let now = now_ms();
        let own = group == project.own_group(env);
        let (from, floor) = match self.issues.follow_state(group).await? {
            Some(state) => state,
            None => {
                // Before the follower, ingest recorded the own group's errors: an index that has
                // some starts from now, or the overlap would count them again.
                let floor =
                    if own && self.issues.has_issues(&project.name, env).await? { now } else { now - OVERLAP_MS };
                (floor, floor)
            }
        };
        let read = self.store.read_errors(project, env, group, (from, now)).await?;
        let next_from = match read.stopped_at {
            Some(stopped) => stopped.max(from),
            None => (now - OVERLAP_MS).max(floor),
        };
        let occurrences = Occurrence::of_group(&read.events, (!own).then_some(group));
        let forget_before = next_from.min(now - OVERLAP_MS) - SEEN_KEPT_MS;
        let followed = Followed { group: group.to_string(), occurrences, next_from, floor, forget_before };
        let changes = self.issues.record_followed(followed).await?;
        self.alerts.observe(Hits::default(), &changes, &read.events, now);
        Ok(())
    }
}

/// The environment whose issues a Lambda group's errors join: the first of the project's
/// environments its name holds as a whole word (`/aws/lambda/demo-api-staging-orders`:
/// `staging`), else the project's first environment. The logs page lists such a group under
/// every environment; its errors are counted, and alerted on, under one.
pub fn lambda_env<'p>(project: &'p Project, group: &str) -> &'p str {
    let is_word_at = |at: usize, len: usize| {
        let before = group[..at].chars().next_back();
        let after = group[at + len..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    };
    let named = project
        .envs
        .iter()
        .find(|env| !env.is_empty() && group.match_indices(env.as_str()).any(|(at, _)| is_word_at(at, env.len())));
    named.or(project.envs.first()).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_group_belongs_to_the_environment_its_name_holds_as_a_word_else_the_first() {
        let project = Project::for_tests(&["production", "staging", "dev"]);
        assert_eq!(lambda_env(&project, "/aws/lambda/demo-api-staging-orders"), "staging");
        assert_eq!(lambda_env(&project, "/aws/lambda/demo-api-dev"), "dev");
        assert_eq!(lambda_env(&project, "/aws/lambda/demo-api-orders"), "production");
        assert_eq!(lambda_env(&project, "/aws/lambda/demo-api-devices"), "production", "not a whole word");
        assert_eq!(lambda_env(&project, "/aws/lambda/demo-predev-x"), "production");
    }
}
