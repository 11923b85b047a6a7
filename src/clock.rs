//! Time as the stores, the index and the alert rules count it: milliseconds since the Unix epoch,
//! UTC. One definition of each conversion and unit, so every module rounds the same way.

use time::OffsetDateTime;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

/// `t` in epoch milliseconds (saturating far outside any stored time).
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The time of `ms` epoch milliseconds; `None` outside the years `time` represents.
pub fn from_unix_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// The time of `ms` epoch milliseconds read back from a store: the epoch for a value no store
/// writes (outside the years `time` represents).
pub fn from_ms_utc(ms: i64) -> OffsetDateTime {
    from_unix_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn milliseconds_round_trip_and_out_of_range_values_do_not_panic() {
        let t = datetime!(2026-11-24 15:04:05.123 UTC);
        assert_eq!(unix_ms(t), 1_795_532_645_123);
        assert_eq!(from_unix_ms(unix_ms(t)), Some(t));
        assert_eq!(from_unix_ms(i64::MAX), None);
        assert_eq!(from_ms_utc(i64::MIN), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(HOUR_MS * 24, DAY_MS);
    }
}
