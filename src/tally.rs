//! What a task counts as it accepts a batch, when several tasks share one state
//! (`../shared/spec/state.md`): the errors for the issue index, the events per project, env,
//! minute and level (what the charts and the home page read instead of every event), and the
//! matches per threshold rule, env and minute (so that a rule counts every task's events).
//!
//! A [`Tally`] is one batch's, folded; the shared state queues it durably before the batch is
//! acknowledged ([`SharedTally::record`]) and adds it to the table once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::MINUTE_MS;
use crate::event::{Level, StoredEvent};
use crate::issues::Occurrence;

/// One batch's counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// The errors, for the issue index.
    #[serde(default)]
    pub occurrences: Vec<Occurrence>,
    /// Events per project, env, minute and level.
    #[serde(default)]
    pub levels: Vec<LevelCount>,
    /// Threshold rules' matches per rule, env and minute.
    #[serde(default)]
    pub rules: Vec<RuleCount>,
}

/// Events of one level in one project/env and minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelCount {
    pub project: String,
    pub env: String,
    /// Epoch minutes (occurrence time).
    pub minute: i64,
    pub level: Level,
    pub n: u64,
}

/// Matches of one threshold rule in one env and minute, counted by one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCount {
    pub rule: String,
    pub env: String,
    /// Epoch minutes (occurrence time).
    pub minute: i64,
    /// The task that counted them (its own are in its own window already); filled in by the
    /// shared state as it records.
    #[serde(default)]
    pub task: String,
    pub n: u64,
}

impl Tally {
    /// Nothing to count.
    pub fn is_empty(&self) -> bool {
        self.occurrences.is_empty() && self.levels.is_empty() && self.rules.is_empty()
    }

    /// Adds `other` to this one and folds the counts again.
    pub fn merge(&mut self, other: Tally) {
        self.occurrences.extend(other.occurrences);
        self.levels.extend(other.levels);
        self.rules.extend(other.rules);
        self.levels = fold_levels(std::mem::take(&mut self.levels));
        self.rules = fold_rules(std::mem::take(&mut self.rules));
    }
}

/// The events per project, env, minute and level.
pub fn levels_of(events: &[StoredEvent]) -> Vec<LevelCount> {
    fold_levels(events.iter().map(|e| LevelCount {
        project: e.project.clone(),
        env: e.env.clone(),
        minute: minute_of(e.timestamp_ms()),
        level: e.level,
        n: 1,
    }))
}

/// The epoch minute of a time in ms.
pub fn minute_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(MINUTE_MS)
}

/// Counts of the same project, env, minute and level summed, in key order.
fn fold_levels(counts: impl IntoIterator<Item = LevelCount>) -> Vec<LevelCount> {
    let mut folded: BTreeMap<(String, String, i64, Level), u64> = BTreeMap::new();
    for c in counts {
        *folded.entry((c.project, c.env, c.minute, c.level)).or_default() += c.n;
    }
    folded.into_iter().map(|((project, env, minute, level), n)| LevelCount { project, env, minute, level, n }).collect()
}

/// Counts of the same rule, env, minute and task summed, in key order.
pub fn fold_rules(counts: impl IntoIterator<Item = RuleCount>) -> Vec<RuleCount> {
    let mut folded: BTreeMap<(String, String, i64, String), u64> = BTreeMap::new();
    for c in counts {
        *folded.entry((c.rule, c.env, c.minute, c.task)).or_default() += c.n;
    }
    folded.into_iter().map(|((rule, env, minute, task), n)| RuleCount { rule, env, minute, task, n }).collect()
}

/// Where a task records what it counted: the shared state, through the store's queue.
pub trait SharedTally: Send + Sync {
    /// One batch's counts as the entry the store commits with the batch's events
    /// ([`crate::store::LogStore::append_queued`]); `None` when there is nothing to count. They
    /// reach the table later, once, whatever happens to this task meanwhile (short of its disk
    /// going).
    fn entry(&self, tally: Tally) -> anyhow::Result<Option<String>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_folded_per_key_and_merged_again() {
        let at = |ts_ms: i64, level: Level| {
            let id = crate::event::new_id(crate::clock::from_ms_utc(ts_ms));
            let t = crate::clock::from_ms_utc(ts_ms);
            StoredEvent::bare(id, ("shop", "prod"), (t, t), level, "m".into())
        };
        let minute = 29_000_000;
        let events = [
            at(minute * MINUTE_MS, Level::Error),
            at(minute * MINUTE_MS + 59_999, Level::Error),
            at(minute * MINUTE_MS + 60_000, Level::Error),
            at(minute * MINUTE_MS + 1, Level::Info),
        ];
        let levels = levels_of(&events);
        let triples: Vec<(i64, Level, u64)> = levels.iter().map(|c| (c.minute, c.level, c.n)).collect();
        assert_eq!(triples, [(minute, Level::Info, 1), (minute, Level::Error, 2), (minute + 1, Level::Error, 1)]);

        let rule = |minute: i64, task: &str, n: u64| RuleCount {
            rule: "errors".into(),
            env: "prod".into(),
            minute,
            task: task.into(),
            n,
        };
        let mut tally = Tally { levels, rules: vec![rule(minute, "a", 2)], ..Tally::default() };
        tally.merge(Tally {
            levels: levels_of(&events[..1]),
            rules: vec![rule(minute, "a", 3), rule(minute, "b", 1)],
            ..Tally::default()
        });
        assert_eq!(tally.levels.iter().find(|c| c.level == Level::Error && c.minute == minute).map(|c| c.n), Some(3));
        assert_eq!(tally.rules, [rule(minute, "a", 5), rule(minute, "b", 1)]);
    }
}
