//! One message per burst: the grouping state machine of one rule for one env (after
//! Alertmanager's `group_wait` and `repeat_interval`). Pure: the caller brings the clock and
//! whether the rule's condition holds, and sends what [`Burst::tick`] asks for.

use serde::{Deserialize, Serialize};

/// How a rule groups: `[[alerts]] group_wait_secs`, `repeat_secs`, `send_resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub group_wait_ms: i64,
    pub repeat_ms: i64,
    pub send_resolved: bool,
    /// Issue rules: a burst lasts until `repeat` has passed with nothing new, so issues that keep
    /// appearing are gathered into one reminder instead of a message each.
    pub quiet_for_repeat: bool,
}

/// Where a rule stands; persisted, so a restart neither forgets a burst being gathered nor
/// repeats a message sent within `repeat_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Burst {
    /// Not firing.
    #[default]
    Ok,
    /// Triggered at `since`; gathering until `since + group_wait`.
    Pending { since: i64 },
    /// Fired at `since`; the last message went out (or was suppressed) at `sent`.
    Firing { since: i64, sent: i64 },
}

/// A message [`Burst::tick`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Send {
    /// The burst's first message, after `group_wait`.
    First,
    /// Still firing after `repeat`.
    Reminder,
    /// Stopped firing (with `send_resolved`).
    Resolved,
}

impl Burst {
    /// Advances to `now_ms`, given whether the condition holds (`active`); a message to send, if any.
    pub fn tick(&mut self, now_ms: i64, active: bool, policy: &Policy) -> Option<Send> {
        match *self {
            Burst::Ok => {
                if active {
                    *self = Burst::Pending { since: now_ms };
                    // With no wait, the first message goes at once.
                    return self.tick(now_ms, active, policy);
                }
                None
            }
            // A burst that triggered is reported even if it is over before the wait ends.
            Burst::Pending { since } if now_ms >= since.saturating_add(policy.group_wait_ms) => {
                *self = Burst::Firing { since: now_ms, sent: now_ms };
                Some(Send::First)
            }
            Burst::Pending { .. } => None,
            Burst::Firing { since, sent } => {
                let repeat_due = now_ms >= sent.saturating_add(policy.repeat_ms);
                if active {
                    if repeat_due {
                        *self = Burst::Firing { since, sent: now_ms };
                        return Some(Send::Reminder);
                    }
                    None
                } else if !policy.quiet_for_repeat || repeat_due {
                    *self = Burst::Ok;
                    policy.send_resolved.then_some(Send::Resolved)
                } else {
                    None
                }
            }
        }
    }

    /// Whether something that triggers now is held back by `repeat` (for the history's reason).
    pub fn holding(&self) -> bool {
        matches!(self, Burst::Firing { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THRESHOLD: Policy =
        Policy { group_wait_ms: 30_000, repeat_ms: 3_600_000, send_resolved: true, quiet_for_repeat: false };

    /// Ticks once a second from `from` to `to` with the condition `active`; the messages asked for.
    fn run(burst: &mut Burst, from: i64, to: i64, active: bool, policy: &Policy) -> Vec<(i64, Send)> {
        (from..to).step_by(1000).filter_map(|now| burst.tick(now, active, policy).map(|s| (now, s))).collect()
    }

    #[test]
    fn a_burst_sends_one_message_after_the_wait_and_nothing_more_within_repeat() {
        let mut b = Burst::Ok;
        assert_eq!(run(&mut b, 0, 30_000, true, &THRESHOLD), []);
        assert_eq!(run(&mut b, 30_000, 600_000, true, &THRESHOLD), [(30_000, Send::First)]);
        assert_eq!(b, Burst::Firing { since: 30_000, sent: 30_000 });
        assert!(b.holding());
    }

    #[test]
    fn a_burst_still_firing_after_repeat_gets_one_reminder() {
        let mut b = Burst::Firing { since: 0, sent: 0 };
        let sent = run(&mut b, 1000, 2 * 3_600_000 + 1000, true, &THRESHOLD);
        assert_eq!(sent, [(3_600_000, Send::Reminder), (7_200_000, Send::Reminder)]);
    }

    #[test]
    fn a_burst_that_stops_sends_resolved_only_when_asked() {
        let mut b = Burst::Firing { since: 0, sent: 0 };
        assert_eq!(b.tick(5000, false, &THRESHOLD), Some(Send::Resolved));
        assert_eq!(b, Burst::Ok);
        let mut b = Burst::Firing { since: 0, sent: 0 };
        assert_eq!(b.tick(5000, false, &Policy { send_resolved: false, ..THRESHOLD }), None);
        assert_eq!(b, Burst::Ok);
    }

    #[test]
    fn a_trigger_that_ends_within_the_wait_is_still_reported_once() {
        let mut b = Burst::Ok;
        assert_eq!(b.tick(0, true, &THRESHOLD), None);
        assert_eq!(run(&mut b, 1000, 30_000, false, &THRESHOLD), []);
        assert_eq!(b.tick(30_000, false, &THRESHOLD), Some(Send::First));
        assert_eq!(b.tick(31_000, false, &THRESHOLD), Some(Send::Resolved));
    }

    #[test]
    fn without_a_wait_the_first_message_goes_at_once() {
        let mut b = Burst::Ok;
        assert_eq!(b.tick(7, true, &Policy { group_wait_ms: 0, ..THRESHOLD }), Some(Send::First));
    }

    #[test]
    fn an_issue_rule_stays_firing_until_repeat_passes_quietly() {
        let issues = Policy { group_wait_ms: 10_000, repeat_ms: 60_000, send_resolved: false, quiet_for_repeat: true };
        let mut b = Burst::Ok;
        assert_eq!(b.tick(0, true, &issues), None);
        assert_eq!(b.tick(10_000, true, &issues), Some(Send::First));
        // Nothing new for a while, then another issue: held until repeat, then one reminder.
        assert_eq!(run(&mut b, 11_000, 40_000, false, &issues), []);
        assert_eq!(run(&mut b, 40_000, 70_000, true, &issues), []);
        assert_eq!(b.tick(70_000, true, &issues), Some(Send::Reminder));
        assert_eq!(run(&mut b, 71_000, 130_000, false, &issues), []);
        assert_eq!(b.tick(130_000, false, &issues), None);
        assert_eq!(b, Burst::Ok);
    }
}
