//! A store shared by several tasks (CloudWatch) whose charts and level counts come from the
//! counts in the table ([`DynamoCounts`]) instead of reading every event back: the home page,
//! the logs page's chart without a search, the level counts. A chart with a search (or of a
//! group the counts do not cover) is the store's own, within its call budget.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use ulid::Ulid;

use super::counts::DynamoCounts;
use crate::clock::unix_ms;
use crate::event::StoredEvent;
use crate::project::Project;
use crate::store::context::{Around, Context};
use crate::store::histogram::{Buckets, Histogram};
use crate::store::{DeadLetters, ErrorRead, EventPage, EventQuery, Group, LevelCounts, LogStore};

pub struct CountedStore {
    store: Arc<dyn LogStore>,
    counts: DynamoCounts,
}

impl CountedStore {
    pub fn new(store: Arc<dyn LogStore>, counts: DynamoCounts) -> CountedStore {
        CountedStore { store, counts }
    }
}

#[async_trait]
impl LogStore for CountedStore {
    async fn append(&self, events: Vec<StoredEvent>) -> anyhow::Result<()> {
        self.store.append(events).await
    }

    async fn append_queued(&self, events: Vec<StoredEvent>, entry: String) -> anyhow::Result<()> {
        self.store.append_queued(events, entry).await
    }

    fn queue_db(&self) -> Option<PathBuf> {
        self.store.queue_db()
    }

    async fn groups(&self, project: &Project, env: &str) -> anyhow::Result<Vec<Group>> {
        self.store.groups(project, env).await
    }

    async fn events(&self, query: &EventQuery<'_>) -> anyhow::Result<EventPage> {
        self.store.events(query).await
    }

    async fn event(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
    ) -> anyhow::Result<Option<StoredEvent>> {
        self.store.event(project, env, group, id).await
    }

    async fn context(
        &self,
        project: &Project,
        env: &str,
        group: Option<&str>,
        id: Ulid,
        around: Around,
    ) -> anyhow::Result<Option<Context>> {
        self.store.context(project, env, group, id, around).await
    }

    /// Counted in whole minutes (whole hours for ranges older than the minutes kept).
    async fn level_counts(
        &self,
        project: &str,
        env: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> anyhow::Result<LevelCounts> {
        self.counts.level_counts((project, env), unix_ms(from), unix_ms(to)).await
    }

    /// Without a search (or with one of level tests only), on the project's own group: counted
    /// in whole minutes or hours.
    async fn histogram(&self, query: &EventQuery<'_>, buckets: Buckets) -> anyhow::Result<Histogram> {
        let own = query.group.as_deref().is_none_or(|group| group == query.project.own_group(&query.env));
        if own && let Some(levels) = query.counted_levels() {
            let counted = self.counts.histogram((&query.project.name, &query.env), &levels, buckets).await?;
            if let Some(histogram) = counted {
                return Ok(histogram);
            }
        }
        self.store.histogram(query, buckets).await
    }

    async fn check_ready(&self) -> anyhow::Result<()> {
        self.store.check_ready().await
    }

    async fn shutdown(&self) {
        self.store.shutdown().await;
    }

    async fn dead_letters(&self, project: &Project, env: &str, limit: usize) -> anyhow::Result<DeadLetters> {
        self.store.dead_letters(project, env, limit).await
    }

    async fn refresh_metrics(&self) {
        self.store.refresh_metrics().await;
    }

    fn shared_by_tasks(&self) -> bool {
        self.store.shared_by_tasks()
    }

    fn issue_follow_interval(&self) -> Option<std::time::Duration> {
        self.store.issue_follow_interval()
    }

    async fn external_groups_now(&self, project: &Project) -> anyhow::Result<Vec<String>> {
        self.store.external_groups_now(project).await
    }

    async fn read_errors(
        &self,
        project: &Project,
        env: &str,
        group: &str,
        range: (i64, i64),
    ) -> anyhow::Result<ErrorRead> {
        self.store.read_errors(project, env, group, range).await
    }
}
