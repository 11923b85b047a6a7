//! The events around one event ([`super::LogStore::context`]): its group's neighbours in time,
//! ties by id, whatever query found it. Both stores read candidates their own way and cut them
//! here, so "around" means the same on each.

use serde::Serialize;

use crate::event::StoredEvent;

/// Events a context may ask for on either side at most: one read each way stays small.
pub const MAX_AROUND: usize = 200;
/// Events on either side when the request names no number.
pub const DEFAULT_AROUND: usize = 20;

/// How many events to show before and after the one asked for (each at most [`MAX_AROUND`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Around {
    pub before: usize,
    pub after: usize,
}

impl Default for Around {
    fn default() -> Self {
        Around { before: DEFAULT_AROUND, after: DEFAULT_AROUND }
    }
}

/// An event with its neighbours in its group, each side oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Context {
    pub before: Vec<StoredEvent>,
    pub event: StoredEvent,
    pub after: Vec<StoredEvent>,
}

/// The order of a group's events: by time, ties by id.
pub fn position(event: &StoredEvent) -> (i64, ulid::Ulid) {
    (event.timestamp_ms(), event.id)
}

impl Context {
    /// `event` with the `around.before` candidates just before it and the `around.after` just
    /// after it. Candidates may come in any order, repeat, and include `event` itself; the
    /// caller guarantees they hold every event of the group that close to it.
    pub fn cut(event: StoredEvent, candidates: Vec<StoredEvent>, around: Around) -> Context {
        let at = position(&event);
        let mut sorted = candidates;
        sorted.sort_by_key(position);
        sorted.dedup_by_key(|e| e.id);
        let split = sorted.partition_point(|e| position(e) < at);
        let mut after = sorted.split_off(split);
        after.retain(|e| position(e) > at);
        after.truncate(around.after);
        let before = sorted.split_off(sorted.len().saturating_sub(around.before));
        Context { before, event, after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    fn at(ts: i64, random: u128) -> StoredEvent {
        let time = crate::event::from_unix_ms(ts).map(crate::event::timestamp_format::format);
        let json = serde_json::json!({
            "id": Ulid::from_parts(ts as u64, random).to_string(), "project": "demo", "env": "dev",
            "timestamp": time, "received_at": time, "level": "info", "message": format!("{ts}/{random}"),
        });
        serde_json::from_value(json).expect("an event")
    }

    fn messages(events: &[StoredEvent]) -> Vec<&str> {
        events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn neighbours_are_cut_by_time_then_id_each_side_oldest_first() {
        let event = at(2_000, 5);
        let candidates =
            vec![at(3_000, 1), at(2_000, 9), at(1_000, 1), event.clone(), at(2_000, 1), at(900, 3), at(2_000, 9)];
        let context = Context::cut(event.clone(), candidates.clone(), Around { before: 2, after: 2 });
        assert_eq!(messages(&context.before), ["1000/1", "2000/1"]);
        assert_eq!(messages(&context.after), ["2000/9", "3000/1"], "a repeated candidate counts once");
        assert_eq!(context.event, event);

        let none = Context::cut(event.clone(), candidates.clone(), Around { before: 0, after: 0 });
        assert!(none.before.is_empty() && none.after.is_empty());
        let all = Context::cut(event, candidates, Around { before: 200, after: 200 });
        assert_eq!((all.before.len(), all.after.len()), (3, 2), "fewer than asked at the edges");
    }
}
