//! The time zone of the pages (`[ui] timezone`, an IANA name): every time a page shows, puts in a
//! date field or in a link it builds goes through [`Zone`], and so does every time typed into the
//! logs page's fields without an offset. The JSON API and the exports stay in UTC.
//!
//! Offsets come from the IANA database bundled into the binary (jiff's), so a host or container
//! without `/usr/share/zoneinfo` shows the same times; the arithmetic stays in the `time` crate.

use std::cell::Cell;

use jiff::tz::{AmbiguousOffset, TimeZone};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::event::timestamp_format;
use crate::search::{TimeError, parse_time_expr_in};

/// A named IANA time zone, as the pages show and read times.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: TimeZone,
}

impl Default for Zone {
    fn default() -> Self {
        Self::UTC
    }
}

impl Zone {
    pub const UTC: Zone = Zone { tz: TimeZone::UTC };

    /// The zone of an IANA name (`Asia/Seoul`; case does not matter); the error is for the user.
    pub fn named(name: &str) -> Result<Zone, String> {
        match TimeZone::get(name) {
            // Only real IANA names: the database also answers `Etc/Unknown`, which has none.
            Ok(tz) if tz.iana_name().is_some() => Ok(Zone { tz }),
            _ => Err(format!("`{name}` is not an IANA time zone name (like Asia/Seoul, Europe/Berlin or UTC)")),
        }
    }

    /// The IANA name as the database spells it (`asia/seoul` gives `Asia/Seoul`).
    pub fn name(&self) -> &str {
        self.tz.iana_name().unwrap_or("UTC")
    }

    /// How a page names the zone: `Asia/Seoul (UTC+09:00)`, with the offset in force at `now`
    /// (a zone with daylight saving time has another part of the year).
    pub fn label(&self, now: OffsetDateTime) -> String {
        let offset = self.offset_at(now);
        if self.name() == "UTC" && offset.is_utc() {
            return "UTC".into();
        }
        format!("{} (UTC{})", self.name(), format_offset(offset))
    }

    /// `2026-11-25 00:04:05.007`, on this zone's clock.
    pub fn format(&self, t: OffsetDateTime) -> String {
        let local = self.local(t);
        local
            .format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"))
            .unwrap_or_else(|_| local.to_string())
    }

    /// [`Zone::format`] followed by the offset, `2026-11-25 00:04:05.007 +09:00`: where one time
    /// is shown on its own (a zone with daylight saving time has two offsets in a year).
    pub fn format_with_offset(&self, t: OffsetDateTime) -> String {
        format!("{} {}", self.format(t), format_offset(self.offset_at(t)))
    }

    /// `2026-11-25 00:04`, on this zone's clock.
    pub fn format_minute(&self, t: OffsetDateTime) -> String {
        let local = self.local(t);
        local.format(format_description!("[year]-[month]-[day] [hour]:[minute]")).unwrap_or_else(|_| local.to_string())
    }

    /// The value of a date field: [`Zone::format_minute`], which [`Zone::parse_input`] reads back;
    /// but RFC 3339 with the offset for a minute the clock shows twice (when it is turned back),
    /// since the bare wall-clock time would be read as the first of the two.
    pub fn input(&self, t: OffsetDateTime) -> String {
        let local = self.local(t);
        let minute = local.replace_second(0).and_then(|l| l.replace_nanosecond(0)).unwrap_or(local);
        match self.offsets_of(PrimitiveDateTime::new(minute.date(), minute.time())) {
            Some(AmbiguousOffset::Fold { .. }) => {
                minute.format(&Rfc3339).unwrap_or_else(|_| timestamp_format::format(t))
            }
            _ => self.format_minute(t),
        }
    }

    /// A time in a link the page builds: RFC 3339 with this zone's offset
    /// (`2026-11-25T00:04:05+09:00`), exact for the pages and the API alike.
    pub fn link(&self, t: OffsetDateTime) -> String {
        // RFC 3339 has no seconds in offsets (some zones had them before 1900): then UTC.
        self.local(t).format(&Rfc3339).unwrap_or_else(|_| timestamp_format::format(t))
    }

    /// A `from`/`to` as typed into the logs page: a date and time without an offset
    /// (`2026-11-25 00:00`) is on this zone's clock; `now-7d`, epoch milliseconds and RFC 3339
    /// with an offset or `Z` are exact, as in the API.
    pub fn parse_input(&self, text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, TimeError> {
        parse_time_expr_in(text, now, |wall| self.resolve(wall))
    }

    /// A `from`/`to` as it goes into the links of a page that read it as `read_as`: text that
    /// names its instant alone stays as typed (`now-7d` stays relative); a wall-clock time is
    /// replaced by [`Zone::link`], so that the API, which reads such text in UTC, gets the same
    /// instant.
    pub fn link_param(&self, text: &str, read_as: OffsetDateTime) -> String {
        let wall_clock = Cell::new(false);
        let _ = parse_time_expr_in(text, OffsetDateTime::now_utc(), |wall| {
            wall_clock.set(true);
            Some(wall.assume_utc())
        });
        if wall_clock.get() { self.link(read_as) } else { text.to_string() }
    }

    /// The instant a wall-clock time in this zone names. Where the clock is turned back, the
    /// first of the two; in the hour it skips, the time as the clock would have read it without
    /// the change (Berlin's 02:30 on a spring-forward day is 03:30 CEST): jiff's and Temporal's
    /// "compatible" choice.
    pub fn resolve(&self, wall: PrimitiveDateTime) -> Option<OffsetDateTime> {
        let offset = match self.offsets_of(wall)? {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Gap { before, .. } | AmbiguousOffset::Fold { before, .. } => before,
        };
        Some(wall.assume_offset(UtcOffset::from_whole_seconds(offset.seconds()).ok()?))
    }

    /// The offset from UTC of this zone's clock at `t` (UTC for a time outside the database's range).
    fn offset_at(&self, t: OffsetDateTime) -> UtcOffset {
        i32::try_from(t.nanosecond())
            .ok()
            .and_then(|nanos| jiff::Timestamp::new(t.unix_timestamp(), nanos).ok())
            .and_then(|ts| UtcOffset::from_whole_seconds(self.tz.to_offset(ts).seconds()).ok())
            .unwrap_or(UtcOffset::UTC)
    }

    /// `t` as this zone's clock reads it.
    fn local(&self, t: OffsetDateTime) -> OffsetDateTime {
        t.checked_to_offset(self.offset_at(t)).unwrap_or(t)
    }

    /// The offsets a wall-clock time has here: one, two in a fold, or none (a gap).
    fn offsets_of(&self, wall: PrimitiveDateTime) -> Option<AmbiguousOffset> {
        let civil = jiff::civil::DateTime::new(
            i16::try_from(wall.year()).ok()?,
            i8::try_from(u8::from(wall.month())).ok()?,
            i8::try_from(wall.day()).ok()?,
            i8::try_from(wall.hour()).ok()?,
            i8::try_from(wall.minute()).ok()?,
            i8::try_from(wall.second()).ok()?,
            i32::try_from(wall.nanosecond()).ok()?,
        )
        .ok()?;
        Some(self.tz.to_ambiguous_timestamp(civil).offset())
    }
}

/// `+09:00`, `-03:30`; `+05:53:28` for the odd historical offset with seconds.
fn format_offset(offset: UtcOffset) -> String {
    let (h, m, s) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    let mut text = format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs());
    if s != 0 {
        text.push_str(&format!(":{:02}", s.unsigned_abs()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn zone(name: &str) -> Zone {
        Zone::named(name).expect("a known zone")
    }

    fn wall(text: &str) -> PrimitiveDateTime {
        PrimitiveDateTime::parse(text, format_description!("[year]-[month]-[day] [hour]:[minute]")).expect("wall time")
    }

    #[test]
    fn names_are_checked_against_the_iana_database_and_spelled_as_it_does() {
        assert_eq!(zone("asia/seoul").name(), "Asia/Seoul");
        assert_eq!(zone("UTC").name(), "UTC");
        for bad in ["Asia/Soul", "", "KST+9", "+09:00", "Etc/Unknown", "../../etc/passwd"] {
            let error = Zone::named(bad).expect_err(bad);
            assert!(error.contains("IANA time zone name"), "{bad}: {error}");
        }
    }

    #[test]
    fn times_show_on_the_zones_clock_and_the_label_names_the_zone_and_its_offset() {
        let seoul = zone("Asia/Seoul");
        let t = datetime!(2026-11-24 15:04:05.007 UTC);
        assert_eq!(seoul.format(t), "2026-11-25 00:04:05.007");
        assert_eq!(seoul.format_minute(t), "2026-11-25 00:04");
        assert_eq!(seoul.format_with_offset(t), "2026-11-25 00:04:05.007 +09:00");
        assert_eq!(seoul.label(t), "Asia/Seoul (UTC+09:00)");
        assert_eq!(Zone::UTC.format(t), "2026-11-24 15:04:05.007");
        assert_eq!(Zone::UTC.label(t), "UTC");
        assert_eq!(zone("America/St_Johns").label(t), "America/St_Johns (UTC-03:30)");
        // Before 1908 Seoul kept its local mean time, an offset with seconds.
        assert_eq!(seoul.format_with_offset(datetime!(1900-01-01 00:00 UTC)), "1900-01-01 08:27:52.000 +08:27:52");
    }

    #[test]
    fn typed_wall_clock_times_are_read_in_the_zone_and_everything_else_stays_exact() {
        let seoul = zone("Asia/Seoul");
        let now = datetime!(2026-11-24 15:00 UTC);
        let read = |text: &str| seoul.parse_input(text, now).map_err(|e| e.to_string());
        assert_eq!(read("2026-11-25 00:00"), Ok(datetime!(2026-11-24 15:00 UTC)));
        assert_eq!(read("2026-11-25T00:00:30"), Ok(datetime!(2026-11-24 15:00:30 UTC)));
        assert_eq!(read("2026-11-25T00:00:00Z"), Ok(datetime!(2026-11-25 00:00 UTC)));
        assert_eq!(read("2026-11-25T00:00:00+01:00"), Ok(datetime!(2026-11-24 23:00 UTC)));
        assert_eq!(read("now-7d"), Ok(datetime!(2026-11-17 15:00 UTC)));
        assert_eq!(read("1764000000000"), Ok(datetime!(2025-11-24 16:00 UTC)));
        assert!(read("1970-01-01 08:59").is_err(), "before 1970 in UTC");
        assert!(read("yesterday").expect_err("not a time").contains("RFC 3339"));
    }

    #[test]
    fn what_a_page_shows_and_links_reads_back_as_the_same_instant() {
        let now = datetime!(2026-11-24 15:00 UTC);
        for name in ["Asia/Seoul", "Europe/Berlin", "America/St_Johns", "UTC"] {
            let zone = zone(name);
            for t in [
                datetime!(2026-11-24 15:04:05.007 UTC),
                datetime!(2026-03-29 00:59:59 UTC),
                datetime!(2026-03-29 01:00 UTC),
                datetime!(2026-10-25 00:30 UTC),
                datetime!(2026-10-25 01:30 UTC),
            ] {
                assert_eq!(zone.parse_input(&zone.link(t), now), Ok(t), "{name}: link of {t}");
                let minute = t.replace_second(0).and_then(|t| t.replace_nanosecond(0)).expect("minute");
                assert_eq!(zone.parse_input(&zone.input(t), now), Ok(minute), "{name}: field of {t}");
            }
        }
    }

    #[test]
    fn berlin_across_its_daylight_saving_changes() {
        let berlin = zone("Europe/Berlin");
        // Spring forward, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        assert_eq!(berlin.format(datetime!(2026-03-29 00:59:59 UTC)), "2026-03-29 01:59:59.000");
        assert_eq!(berlin.format(datetime!(2026-03-29 01:00 UTC)), "2026-03-29 03:00:00.000");
        assert_eq!(berlin.format_with_offset(datetime!(2026-03-29 01:00 UTC)), "2026-03-29 03:00:00.000 +02:00");
        assert_eq!(berlin.resolve(wall("2026-03-29 01:30")), Some(datetime!(2026-03-29 00:30 UTC)));
        assert_eq!(berlin.resolve(wall("2026-03-29 03:30")), Some(datetime!(2026-03-29 01:30 UTC)));
        assert_eq!(berlin.resolve(wall("2026-03-29 02:30")), Some(datetime!(2026-03-29 01:30 UTC)), "skipped hour");
        // Fall back, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens twice.
        let (first, second) = (datetime!(2026-10-25 00:30 UTC), datetime!(2026-10-25 01:30 UTC));
        assert_eq!(
            (berlin.format_minute(first), berlin.format_minute(second)),
            ("2026-10-25 02:30".into(), "2026-10-25 02:30".into())
        );
        assert_eq!(berlin.resolve(wall("2026-10-25 02:30")), Some(first), "the first of the two");
        assert_eq!(berlin.input(first), "2026-10-25T02:30:00+02:00", "a field keeps which one");
        assert_eq!(berlin.input(second), "2026-10-25T02:30:00+01:00");
        assert_eq!(berlin.input(datetime!(2026-10-25 02:30 UTC)), "2026-10-25 03:30", "after the fold: plain");
        assert_eq!(berlin.link(second), "2026-10-25T02:30:00+01:00");
        assert_eq!(berlin.label(datetime!(2026-07-01 00:00 UTC)), "Europe/Berlin (UTC+02:00)");
        assert_eq!(berlin.label(datetime!(2026-12-01 00:00 UTC)), "Europe/Berlin (UTC+01:00)");
    }

    #[test]
    fn the_ends_of_the_time_line_neither_panic_nor_leave_the_range() {
        let now = datetime!(2026-11-24 15:00 UTC);
        for name in ["Asia/Seoul", "America/St_Johns"] {
            let zone = zone(name);
            for t in
                [OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT), datetime!(9999-12-31 23:59:59.999 UTC)]
            {
                for shown in [zone.format(t), zone.format_with_offset(t), zone.input(t), zone.link(t), zone.label(t)] {
                    assert!(!shown.is_empty(), "{name}: {t}");
                }
            }
            for typed in ["9999-12-31 23:59", "0000-01-01 00:00", "-9999-01-01 00:00"] {
                assert!(zone.parse_input(typed, now).is_err(), "{name}: {typed}");
            }
        }
    }

    #[test]
    fn links_keep_text_that_names_its_instant_and_pin_wall_clock_times() {
        let seoul = zone("Asia/Seoul");
        let read_as = datetime!(2026-11-24 15:00 UTC);
        assert_eq!(seoul.link_param("2026-11-25 00:00", read_as), "2026-11-25T00:00:00+09:00");
        assert_eq!(seoul.link_param("2026-11-25T00:00", read_as), "2026-11-25T00:00:00+09:00");
        for exact in ["now-7d", "NOW", "2026-11-24T15:00:00Z", "2026-11-25T00:00:00+09:00", "1764000000000"] {
            assert_eq!(seoul.link_param(exact, read_as), exact);
        }
    }
}
