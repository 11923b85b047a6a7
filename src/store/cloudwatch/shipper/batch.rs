//! Cutting the events of one (group, stream) into PutLogEvents calls that CloudWatch accepts:
//! chronological order, at most 10,000 events and 1,048,576 bytes, a span under 24 hours.

use super::OutEvent;

/// Events in one PutLogEvents call at most.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Bytes in one PutLogEvents call at most, counted as AWS does (see [`event_size`]).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// What AWS adds to each message's UTF-8 length when it measures a batch.
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// Oldest to newest event in one call must stay below this (a span of exactly 24 h is split).
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 60 * 60 * 1000;

/// The size AWS counts for one event: its message's UTF-8 bytes plus the fixed overhead.
pub fn event_size(message: &str) -> usize {
    message.len() + EVENT_OVERHEAD_BYTES
}

/// Sorts by timestamp (stable: equal timestamps keep their spool order) and splits into calls.
///
/// An event larger than a whole batch still gets a batch of its own: CloudWatch answers it with
/// InvalidParameter and the writer isolates it.
pub fn split(mut events: Vec<OutEvent>) -> Vec<Vec<OutEvent>> {
    events.sort_by_key(|e| e.timestamp_ms);
    let mut batches = Vec::new();
    let mut current: Vec<OutEvent> = Vec::new();
    let mut bytes = 0usize;
    for event in events {
        let size = event_size(&event.message);
        let full = current.len() >= MAX_BATCH_EVENTS
            || bytes + size > MAX_BATCH_BYTES
            || current.first().is_some_and(|first| event.timestamp_ms - first.timestamp_ms >= MAX_BATCH_SPAN_MS);
        if full && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(event);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::HOUR_MS;

    const T0: i64 = 1_795_000_000_000;

    fn event(seq: i64, timestamp_ms: i64, message: &str) -> OutEvent {
        OutEvent { seq, timestamp_ms, message: message.into() }
    }

    fn many(n: usize) -> Vec<OutEvent> {
        (0..n).map(|i| event(i as i64, T0, "x")).collect()
    }

    fn lens(batches: &[Vec<OutEvent>]) -> Vec<usize> {
        batches.iter().map(Vec::len).collect()
    }

    fn batch_bytes(batch: &[OutEvent]) -> usize {
        batch.iter().map(|e| event_size(&e.message)).sum()
    }

    #[test]
    fn exactly_ten_thousand_events_make_one_batch() {
        assert_eq!(lens(&split(many(10_000))), [10_000]);
    }

    #[test]
    fn ten_thousand_and_one_events_make_two_batches() {
        let batches = split(many(10_001));
        assert_eq!(lens(&batches), [10_000, 1]);
        assert_eq!(batches[1][0].seq, 10_000, "the last event goes to the second batch");
    }

    #[test]
    fn exactly_the_byte_limit_fits_and_one_more_byte_does_not() {
        // 4 events of 262,144 bytes each (message + 26) = 1,048,576.
        let message = "a".repeat(262_144 - EVENT_OVERHEAD_BYTES);
        let events: Vec<_> = (0..4).map(|i| event(i, T0, &message)).collect();
        let batches = split(events);
        assert_eq!(lens(&batches), [4]);
        assert_eq!(batch_bytes(&batches[0]), MAX_BATCH_BYTES);

        let mut events: Vec<_> = (0..4).map(|i| event(i, T0, &message)).collect();
        events[3].message.push('a');
        let batches = split(events);
        assert_eq!(lens(&batches), [3, 1]);
    }

    #[test]
    fn multibyte_text_is_measured_in_utf8_bytes() {
        assert_eq!(event_size("é"), 2 + 26);
        assert_eq!(event_size("결제 실패"), 13 + 26);
        assert_eq!(event_size("🙂"), 4 + 26);
        // Two events of 3-byte characters: counting characters instead of bytes would fit both.
        let message = "결".repeat(174_762); // 524,286 bytes, 524,312 with overhead
        let events = vec![event(1, T0, &message), event(2, T0, &message)];
        assert_eq!(lens(&split(events)), [1, 1], "2 × 524,312 > 1,048,576");
        let message = "결".repeat(174_754); // 524,262 bytes, 524,288 with overhead
        let events = vec![event(1, T0, &message), event(2, T0, &message)];
        assert_eq!(lens(&split(events)), [2], "2 × 524,288 = 1,048,576");
    }

    #[test]
    fn one_maximum_size_event_gets_a_batch_of_its_own() {
        let big = "b".repeat(MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES);
        let events = vec![event(1, T0, "x"), event(2, T0 + 1, &big), event(3, T0 + 2, "y")];
        assert_eq!(lens(&split(events)), [1, 1, 1]);
    }

    #[test]
    fn unsorted_input_is_sorted_and_equal_timestamps_keep_their_order() {
        let events = vec![
            event(1, T0 + 5, "c"),
            event(2, T0, "a1"),
            event(3, T0 + 9, "d"),
            event(4, T0, "a2"),
            event(5, T0 + 5, "c2"),
            event(6, T0, "a3"),
        ];
        let batches = split(events);
        assert_eq!(lens(&batches), [6]);
        let order: Vec<i64> = batches[0].iter().map(|e| e.seq).collect();
        assert_eq!(order, [2, 4, 6, 1, 5, 3]);
    }

    #[test]
    fn a_span_just_under_24_hours_stays_together() {
        let events = vec![event(1, T0, "a"), event(2, T0 + MAX_BATCH_SPAN_MS - 1, "b")];
        assert_eq!(lens(&split(events)), [2]);
    }

    #[test]
    fn a_span_of_exactly_24_hours_is_split() {
        let events = vec![event(1, T0, "a"), event(2, T0 + MAX_BATCH_SPAN_MS, "b")];
        assert_eq!(lens(&split(events)), [1, 1]);
    }

    #[test]
    fn a_span_of_24_hours_and_one_millisecond_is_split() {
        let events = vec![event(1, T0, "a"), event(2, T0 + MAX_BATCH_SPAN_MS + 1, "b")];
        assert_eq!(lens(&split(events)), [1, 1]);
    }

    #[test]
    fn a_multi_day_backlog_is_cut_into_spans_under_a_day() {
        // One event per hour for 3.5 days, given newest first.
        let events: Vec<_> = (0..84).rev().map(|h| event(h, T0 + h * HOUR_MS, "tick")).collect();
        let batches = split(events);
        assert_eq!(lens(&batches), [24, 24, 24, 12]);
        for batch in &batches {
            let span = batch[batch.len() - 1].timestamp_ms - batch[0].timestamp_ms;
            assert!(span < MAX_BATCH_SPAN_MS, "span {span}");
            assert!(batch.windows(2).all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
        }
        let all: Vec<i64> = batches.iter().flatten().map(|e| e.seq).collect();
        assert_eq!(all, (0..84).collect::<Vec<_>>(), "every event once, in time order");
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(split(Vec::new()).is_empty());
    }
}
