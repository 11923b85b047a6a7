//! The times `from` and `to` accept: RFC 3339, epoch milliseconds, or a time relative to now
//! (`now`, `now-15m`, units `s m h d w`). Arithmetic is checked and the result held to the range
//! the stores can key, so no text can panic or overflow a search.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::event::{from_unix_ms, timestamp_format};

/// The times a read may name: stores key events by non-negative epoch milliseconds, and time
/// arithmetic near the end of year 9999 would overflow.
pub const EARLIEST: OffsetDateTime = time::macros::datetime!(1970-01-01 00:00 UTC);
pub const LATEST: OffsetDateTime = time::macros::datetime!(9000-01-01 00:00 UTC);

/// Why a time did not parse; the message is meant for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(String);

const FORMS: &str = "use RFC 3339 (2026-11-24T15:00:00Z), epoch milliseconds, or now, now-15m, now-6h, now-7d \
                     (units s m h d w)";

/// `2026-11-24T15:00:00Z`, `1764000000000` (epoch ms), `now`, `now-15m`; also the dashboard's
/// `2026-11-24 15:00` and `2026-11-24T15:00` (UTC). The result lies in [`EARLIEST`, `LATEST`).
pub fn parse_time_expr(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, TimeError> {
    parse_time_expr_in(text, now, |local| Some(local.assume_utc()))
}

/// [`parse_time_expr`], with a date and time written without an offset (`2026-11-24 15:00`)
/// placed on the time line by `zone` (the pages read them in their configured zone; `None`: no
/// such time there). Relative times, epoch milliseconds and RFC 3339 with an offset are exact
/// and do not ask it.
pub fn parse_time_expr_in(
    text: &str,
    now: OffsetDateTime,
    zone: impl Fn(PrimitiveDateTime) -> Option<OffsetDateTime>,
) -> Result<OffsetDateTime, TimeError> {
    let text = text.trim();
    let time = if let Some(ago) = strip_prefix_ignore_case(text, "now") {
        relative(ago, now)?
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let ms = text.parse::<i64>().map_err(|_| TimeError(format!("`{text}` is too large for epoch milliseconds")))?;
        from_unix_ms(ms).ok_or_else(|| TimeError(format!("`{text}` is out of range")))?
    } else {
        absolute(text, zone).ok_or_else(|| TimeError(format!("`{text}` is not a time: {FORMS}")))?
    };
    if !(EARLIEST..LATEST).contains(&time) {
        return Err(TimeError(format!("`{text}` is outside 1970-01-01 to 9000-01-01")));
    }
    Ok(time)
}

fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| text.get(prefix.len()..)).flatten()
}

/// What follows `now`: nothing, or `-` a count and a unit.
fn relative(ago: &str, now: OffsetDateTime) -> Result<OffsetDateTime, TimeError> {
    if ago.is_empty() {
        return Ok(now);
    }
    let bad = || TimeError(format!("`now{ago}` is not a relative time: write now-15m (units s m h d w)"));
    let amount_and_unit = ago.strip_prefix('-').ok_or_else(bad)?;
    let split = amount_and_unit.len().saturating_sub(1);
    let (amount, unit) = (amount_and_unit.get(..split).ok_or_else(bad)?, amount_and_unit.get(split..).ok_or_else(bad)?);
    if amount.is_empty() || !amount.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let unit_seconds: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    let too_far = || TimeError(format!("`now{ago}` is before 1970"));
    let seconds = amount.parse::<i64>().ok().and_then(|n| n.checked_mul(unit_seconds)).ok_or_else(too_far)?;
    now.checked_sub(Duration::seconds(seconds)).ok_or_else(too_far)
}

/// RFC 3339, or the minute/second forms without an offset that the dashboard's fields send,
/// placed by `zone`.
fn absolute(text: &str, zone: impl Fn(PrimitiveDateTime) -> Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    let text = text.replacen(' ', "T", 1);
    if let Some(exact) = timestamp_format::parse(&text) {
        return Some(exact);
    }
    // Read as if in UTC only to get the date and time as written; the zone decides the instant.
    let written = OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}:00Z"), &Rfc3339))
        .ok()?;
    zone(PrimitiveDateTime::new(written.date(), written.time()))?.checked_to_offset(time::UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-24 15:00:00 UTC);

    fn parse(text: &str) -> Result<OffsetDateTime, TimeError> {
        parse_time_expr(text, NOW)
    }

    #[test]
    fn now_and_now_minus_each_unit_count_back_from_now() {
        assert_eq!(parse("now"), Ok(NOW));
        assert_eq!(parse(" NOW "), Ok(NOW));
        assert_eq!(parse("now-0s"), Ok(NOW));
        assert_eq!(parse("now-30s"), Ok(datetime!(2026-11-24 14:59:30 UTC)));
        assert_eq!(parse("now-15m"), Ok(datetime!(2026-11-24 14:45:00 UTC)));
        assert_eq!(parse("now-6h"), Ok(datetime!(2026-11-24 09:00:00 UTC)));
        assert_eq!(parse("now-7d"), Ok(datetime!(2026-11-17 15:00:00 UTC)));
        assert_eq!(parse("now-2w"), Ok(datetime!(2026-11-10 15:00:00 UTC)));
    }

    #[test]
    fn rfc_3339_epoch_milliseconds_and_the_dashboard_forms_are_absolute_times() {
        assert_eq!(parse("2026-11-24T10:00:00Z"), Ok(datetime!(2026-11-24 10:00:00 UTC)));
        assert_eq!(parse("2026-11-24T12:00:00+02:00"), Ok(datetime!(2026-11-24 10:00:00 UTC)));
        assert_eq!(parse("2026-11-24 10:00"), Ok(datetime!(2026-11-24 10:00:00 UTC)));
        assert_eq!(parse("2026-11-24T10:00:30"), Ok(datetime!(2026-11-24 10:00:30 UTC)));
        assert_eq!(parse("1764000000000"), Ok(datetime!(2025-11-24 16:00:00 UTC)));
        assert_eq!(parse("0"), Ok(EARLIEST));
    }

    #[test]
    fn malformed_relative_times_are_refused() {
        for text in
            ["now-", "now-m", "now-15", "now-15y", "now+15m", "now15m", "now--15m", "now-1.5h", "now-15 m", "now-ü"]
        {
            let error = parse(text).expect_err(text);
            assert!(error.to_string().contains("relative time"), "{text}: {error}");
        }
    }

    #[test]
    fn huge_amounts_are_errors_not_panics() {
        for text in [
            "now-9223372036854775807s",
            "now-9223372036854775807w",
            "now-99999999999999999999999999d",
            "now-100000w",
            "99999999999999999999999",
            "9223372036854775807",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn times_outside_1970_to_9000_are_refused() {
        assert!(parse("1969-12-31T23:59:59Z").is_err());
        assert!(parse("9000-01-01T00:00:00Z").is_err());
        assert!(parse("8999-12-31T23:59:59Z").is_ok());
        assert!(parse("now-57y").is_err());
        assert!(parse("now-2922d").is_ok());
        assert!(parse("now-20781d").is_ok());
        assert!(parse("now-20782d").is_err(), "before 1970");
        assert!(parse_time_expr("now", datetime!(9500-01-01 00:00 UTC)).is_err());
    }

    #[test]
    fn other_text_is_refused_with_the_accepted_forms() {
        for text in ["", "yesterday", "2026-13-01T00:00:00Z", "-5", "12abc"] {
            let error = parse(text).expect_err(text);
            assert!(error.to_string().contains("RFC 3339"), "{text}: {error}");
        }
    }
}
