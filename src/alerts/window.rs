//! A sliding-window count of events by occurrence time, in a bounded number of buckets: however
//! many events arrive, a window holds at most [`BUCKETS`] + 1 counters.

use std::collections::VecDeque;

/// Buckets per window: the count is exact to 1/`BUCKETS` of the window at its old edge.
const BUCKETS: i64 = 120;

#[derive(Debug, Clone)]
pub struct Window {
    window_ms: i64,
    bucket_ms: i64,
    /// (bucket start, count), oldest first.
    buckets: VecDeque<(i64, u64)>,
}

impl Window {
    pub fn new(window_secs: u64) -> Window {
        let window_ms = i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX).max(1000);
        Window { window_ms, bucket_ms: (window_ms / BUCKETS).max(1000), buckets: VecDeque::new() }
    }

    /// Counts an event that occurred at `ts_ms`; events outside the window ending at `now_ms` are
    /// ignored, and one from the future (a client's clock ahead) counts as now.
    pub fn add(&mut self, ts_ms: i64, now_ms: i64) {
        let ts = ts_ms.min(now_ms);
        if ts <= now_ms - self.window_ms {
            return;
        }
        let start = ts.div_euclid(self.bucket_ms) * self.bucket_ms;
        // Nearly always the newest bucket; a late event searches back.
        match self.buckets.iter().rposition(|(s, _)| *s <= start) {
            Some(i) if self.buckets[i].0 == start => self.buckets[i].1 += 1,
            Some(i) => self.buckets.insert(i + 1, (start, 1)),
            None => self.buckets.push_front((start, 1)),
        }
    }

    /// Events that occurred within the window ending at `now_ms`; forgets older buckets.
    pub fn count(&mut self, now_ms: i64) -> u64 {
        let oldest = now_ms - self.window_ms;
        while self.buckets.front().is_some_and(|(start, _)| start + self.bucket_ms <= oldest) {
            self.buckets.pop_front();
        }
        self.buckets.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_occurred_in_the_last_window_and_forgets_the_rest() {
        let mut w = Window::new(60);
        let now = 1_000_000_000;
        for ts in [now - 59_000, now - 30_000, now - 1, now] {
            w.add(ts, now);
        }
        w.add(now - 61_000, now);
        assert_eq!(w.count(now), 4);
        assert_eq!(w.count(now + 31_000), 2, "the two older events left the window");
        assert_eq!(w.count(now + 61_000), 0);
        assert!(w.buckets.is_empty());
    }

    #[test]
    fn late_and_future_events_land_in_order() {
        let mut w = Window::new(600);
        let now = 5_000_000;
        w.add(now - 10_000, now);
        w.add(now - 500_000, now);
        w.add(now + 3_600_000, now);
        assert_eq!(w.count(now), 3);
        assert!(w.buckets.iter().zip(w.buckets.iter().skip(1)).all(|(a, b)| a.0 < b.0));
    }

    #[test]
    fn a_flood_keeps_a_bounded_number_of_buckets() {
        let mut w = Window::new(3600);
        let now = 10_000_000_000;
        for i in 0..100_000 {
            w.add(now - (i * 37) % 3_600_000, now);
        }
        assert_eq!(w.count(now), 100_000);
        assert!(w.buckets.len() <= (BUCKETS + 1) as usize, "{} buckets", w.buckets.len());
    }
}
