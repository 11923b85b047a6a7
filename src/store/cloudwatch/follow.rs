//! The issue follower's reads: the error and fatal lines of one group over a time range, with a
//! filter pattern that lets CloudWatch drop most other lines first, and a bound on the calls.
//! What is done with them (checkpoints, de-duplication, the index) is `crate::ingest::follow`.

use std::time::Duration;

use super::CloudWatchStore;
use super::foreign::read_line;
use super::pattern::filter_pattern;
use super::read::{Budget, Scanned};
use crate::event::Level;
use crate::project::Project;
use crate::search::Query;
use crate::store::ErrorRead;

/// How often the follower reads every group again, by default. Each poll costs at least one
/// FilterLogEvents call per group, and the account's FilterLogEvents quota (a few calls per
/// second) is shared with the logs pages.
pub const POLL_INTERVAL: Duration = Duration::from_secs(12);
/// FilterLogEvents calls (pages of up to 10,000 lines) one group's read may make.
const MAX_CALLS: u32 = 10;
/// Past this, a group's read starts no further call.
const TIME_BUDGET: Duration = Duration::from_secs(5);

/// What selects a Lambda runtime's error lines, as a necessary condition (a line the parser reads
/// as `error` or `fatal` holds one of these terms): the level words the parser accepts, in the
/// three cases the runtimes and loggers write them (`[ERROR]`, `"level":"error"`, `Error`), and
/// the timeout line. AWS matches terms case-sensitively, so a JSON level in another case
/// (`"eRRoR"`) would be missed; the parser, not this pattern, decides what is an error (emulators
/// ignore patterns).
const LAMBDA_ERROR_PATTERN: &str = "?ERROR ?Error ?error ?ERR ?Err ?err ?FATAL ?Fatal ?fatal \
     ?CRITICAL ?Critical ?critical ?CRIT ?Crit ?crit ?EMERGENCY ?Emergency ?emergency \
     ?ALERT ?Alert ?alert ?\"Task timed out\"";

impl CloudWatchStore {
    pub(super) async fn read_error_lines(
        &self,
        project: &Project,
        env: &str,
        group: &str,
        (from_ms, to_ms): (i64, i64),
    ) -> anyhow::Result<ErrorRead> {
        let Some(group) = self.naming.readable_group(project, env, Some(group)) else {
            return Ok(ErrorRead::default());
        };
        let pattern = if group == project.own_group(env) {
            filter_pattern(&Query::default(), &[Level::Error, Level::Fatal], true)
        } else {
            Some(LAMBDA_ERROR_PATTERN.to_string())
        };
        let mut budget = Budget::new(MAX_CALLS, TIME_BUDGET);
        let mut events = Vec::new();
        // The time of the last line read: lines come oldest first (across streams too).
        let mut last_ms = None;
        let scanned = self
            .scan(&group, from_ms, to_ms, pattern.as_deref(), &mut budget, true, |raw| {
                last_ms = raw.timestamp().or(last_ms);
                if let Some(event) = read_line(&project.name, env, raw).filter(|e| e.level >= Level::Error) {
                    events.push(event);
                }
                true
            })
            .await?;
        let stopped_at = (scanned == Scanned::OverBudget).then(|| last_ms.unwrap_or(from_ms));
        Ok(ErrorRead { events, stopped_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lambda_pattern_fits_the_api_and_names_every_error_word_of_the_parser() {
        assert!(LAMBDA_ERROR_PATTERN.len() <= 1024);
        for word in ["error", "err", "fatal", "critical", "crit", "emergency", "alert"] {
            assert!(word.parse::<Level>().is_ok_and(|l| l >= Level::Error), "{word}");
            for cased in [
                word.to_ascii_uppercase(),
                word.to_string(),
                format!("{}{}", &word[..1].to_ascii_uppercase(), &word[1..]),
            ] {
                assert!(LAMBDA_ERROR_PATTERN.split_whitespace().any(|t| t == format!("?{cased}")), "{cased}");
            }
        }
    }
}
