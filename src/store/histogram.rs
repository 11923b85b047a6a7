//! Counts over time: the buckets a range is cut into (30 to 120 of them, at a round interval),
//! and the counts per level in each.

use serde::Serialize;
use time::OffsetDateTime;

use crate::event::{Level, StoredEvent, timestamp_format, unix_ms};

/// The intervals a histogram may use, shortest first.
const ROUND_INTERVALS_MS: [i64; 14] = [
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
];
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// The most buckets a histogram has.
pub const MAX_BUCKETS: i64 = 120;

/// The buckets of a range: bucket `i` covers `[origin + i·interval, origin + (i+1)·interval)`,
/// the first starting at or before `from` on a round boundary, the last ending at or after `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub origin_ms: i64,
    pub interval_ms: i64,
    pub count: usize,
}

impl Buckets {
    /// The shortest round interval that cuts `[from, to)` into at most [`MAX_BUCKETS`] buckets.
    pub fn for_range(from: OffsetDateTime, to: OffsetDateTime) -> Buckets {
        let (from, to) = (unix_ms(from), unix_ms(to).max(unix_ms(from) + 1));
        // Signed ceiling division is unstable; times here are never negative (1970 onwards).
        let ceil = |ms: i64, interval: i64| (ms + interval - 1).div_euclid(interval);
        let fits = |interval: i64| ceil(to, interval) - from.div_euclid(interval) <= MAX_BUCKETS;
        let interval_ms = ROUND_INTERVALS_MS.into_iter().find(|i| fits(*i)).unwrap_or(7 * DAY);
        let first = from.div_euclid(interval_ms);
        let count = usize::try_from(ceil(to, interval_ms) - first).unwrap_or(1).max(1);
        Buckets { origin_ms: first * interval_ms, interval_ms, count }
    }

    /// The bucket an event at `ts_ms` falls in, if any.
    pub fn index(&self, ts_ms: i64) -> Option<usize> {
        let offset = ts_ms.checked_sub(self.origin_ms)?;
        let index = usize::try_from(offset.div_euclid(self.interval_ms)).ok()?;
        (offset >= 0 && index < self.count).then_some(index)
    }

    pub fn start_ms(&self, index: usize) -> i64 {
        self.origin_ms + i64::try_from(index).unwrap_or(0) * self.interval_ms
    }
}

/// Events per level in each bucket, in the order of [`Level::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    pub buckets: Buckets,
    pub counts: Vec<[u64; 5]>,
    /// The store stopped counting early; the counts are a lower bound.
    pub capped: bool,
}

impl Histogram {
    pub fn empty(buckets: Buckets) -> Histogram {
        Histogram { buckets, counts: vec![[0; 5]; buckets.count], capped: false }
    }

    /// Counts one event (outside the buckets: ignored).
    pub fn add(&mut self, event: &StoredEvent) {
        self.add_count(event.timestamp_ms(), event.level, 1);
    }

    pub fn add_count(&mut self, ts_ms: i64, level: Level, n: u64) {
        if let Some(bucket) = self.buckets.index(ts_ms).and_then(|i| self.counts.get_mut(i)) {
            bucket[level_index(level)] += n;
        }
    }

    /// Adds another count of the same buckets (a share of the work counted apart).
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
        self.capped |= other.capped;
    }

    /// The answer of `/api/v1/histogram`.
    pub fn to_answer(&self) -> HistogramAnswer {
        let buckets = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, counts)| BucketAnswer {
                start: crate::event::from_unix_ms(self.buckets.start_ms(i))
                    .map(timestamp_format::format)
                    .unwrap_or_default(),
                counts: Level::ALL.iter().zip(counts).map(|(level, n)| (level.as_str(), *n)).collect(),
            })
            .collect();
        HistogramAnswer { interval_ms: self.buckets.interval_ms, buckets, capped: self.capped }
    }
}

pub fn level_index(level: Level) -> usize {
    Level::ALL.iter().position(|l| *l == level).unwrap_or(0)
}

#[derive(Debug, Serialize)]
pub struct HistogramAnswer {
    pub interval_ms: i64,
    pub buckets: Vec<BucketAnswer>,
    /// Present and true when counting stopped early.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub capped: bool,
}

#[derive(Debug, Serialize)]
pub struct BucketAnswer {
    pub start: String,
    pub counts: std::collections::BTreeMap<&'static str, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_day_is_cut_into_hourly_or_shorter_round_buckets_covering_the_range() {
        let from = datetime!(2026-11-24 15:07:00 UTC);
        let b = Buckets::for_range(from, from + time::Duration::hours(24));
        assert_eq!(b.interval_ms, 15 * MINUTE, "96 buckets of 15 minutes");
        assert_eq!(b.origin_ms, unix_ms(datetime!(2026-11-24 15:00:00 UTC)), "on a round boundary");
        assert_eq!(b.count, 97, "the partial last quarter hour too");
        assert!(b.start_ms(b.count) >= unix_ms(from + time::Duration::hours(24)));
    }

    #[test]
    fn every_range_gets_at_most_120_buckets_at_a_round_interval() {
        let start = datetime!(2026-01-01 00:00:00 UTC);
        for (span, interval) in [
            (time::Duration::minutes(30), MINUTE),
            (time::Duration::hours(1), MINUTE),
            (time::Duration::hours(6), 5 * MINUTE),
            (time::Duration::days(7), 2 * HOUR),
            (time::Duration::days(14), 3 * HOUR),
            (time::Duration::days(365), 7 * DAY),
        ] {
            let b = Buckets::for_range(start, start + span);
            assert_eq!(b.interval_ms, interval, "{span}");
            assert!(b.count as i64 <= MAX_BUCKETS, "{span}: {}", b.count);
        }
        let b = Buckets::for_range(start, start + time::Duration::days(7));
        assert!(b.count >= 30, "a week has enough bars to read: {}", b.count);
    }

    #[test]
    fn events_fall_in_their_bucket_and_outside_ones_are_ignored() {
        let b = Buckets { origin_ms: 1_000, interval_ms: 100, count: 3 };
        assert_eq!(
            (b.index(999), b.index(1_000), b.index(1_099), b.index(1_100), b.index(1_300)),
            (None, Some(0), Some(0), Some(1), None)
        );
        let mut h = Histogram::empty(b);
        h.add_count(1_250, Level::Error, 2);
        h.add_count(5_000, Level::Error, 9);
        assert_eq!(h.counts, [[0; 5], [0; 5], [0, 0, 0, 2, 0]]);
    }
}
