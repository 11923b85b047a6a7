//! The stacked bar chart of events by level over time (the logs page above its table, the home
//! page on each card): laid out here, drawn as SVG by `templates/chart.html`, no JavaScript.
//! Every bar is titled with its range on the configured zone's clock and its counts per level;
//! the issues page's sparklines title their bars the same way ([`bar_title`]).

use time::OffsetDateTime;

use crate::event::Level;
use crate::store::histogram::Histogram;
use crate::zone::Zone;

/// A histogram laid out for an SVG of `width` × [`CHART_HEIGHT`] units.
pub(super) struct Chart {
    pub width: usize,
    pub bars: Vec<ChartBar>,
    /// The largest bar's total, the scale's top.
    pub max: u64,
    pub capped: bool,
    /// (position in % of the width, time on the zone's clock) of the x axis's labels.
    pub ticks: Vec<(String, String)>,
}

pub(super) struct ChartBar {
    pub x: usize,
    pub href: String,
    /// `2026-11-24 15:00 – 2026-11-24 15:15: 12 events (info 9, error 3)`.
    pub title: String,
    /// (level, y, height), bottom to top in severity order.
    pub segments: Vec<(&'static str, f64, f64)>,
}

/// Units of height of the chart's SVG; a bar is [`BAR_WIDTH`] wide with a gap of one.
const CHART_HEIGHT: f64 = 60.0;
const BAR_WIDTH: usize = 9;
/// Labels under the x axis: both ends and the quarters in between.
const X_LABELS: usize = 5;

fn time(ms: i64) -> OffsetDateTime {
    crate::event::from_unix_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A bar's tooltip: its range on `zone`'s clock, its total and its non-zero counts per level
/// (`(level, count)`, in severity order).
pub(super) fn bar_title(zone: &Zone, start: OffsetDateTime, end: OffsetDateTime, counts: &[(&str, u64)]) -> String {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let levels: Vec<String> = counts.iter().filter(|(_, n)| *n > 0).map(|(level, n)| format!("{level} {n}")).collect();
    let range = format!("{} – {}", zone.format_minute(start), zone.format_minute(end));
    if levels.is_empty() {
        format!("{range}: {total} events")
    } else {
        format!("{range}: {total} events ({})", levels.join(", "))
    }
}

/// A histogram bucket's counts named by their levels.
fn by_level(counts: &[u64; 5]) -> [(&'static str, u64); 5] {
    let mut named = [("", 0); 5];
    for ((slot, level), n) in named.iter_mut().zip(Level::ALL).zip(counts) {
        *slot = (level.as_str(), *n);
    }
    named
}

/// The bars of `histogram`, titled on `zone`'s clock; `link(from, to)` is the logs page narrowed
/// to one bar.
pub(super) fn chart(histogram: &Histogram, zone: &Zone, link: impl Fn(String, String) -> String) -> Chart {
    let max = histogram.counts.iter().map(|c| c.iter().sum::<u64>()).max().unwrap_or(0);
    let scale = if max == 0 { 0.0 } else { CHART_HEIGHT / max as f64 };
    let buckets = &histogram.buckets;
    let bars = histogram
        .counts
        .iter()
        .enumerate()
        .map(|(i, counts)| {
            let (start, end) = (time(buckets.start_ms(i)), time(buckets.start_ms(i + 1)));
            let mut y = CHART_HEIGHT;
            let mut segments = Vec::new();
            for (level, n) in Level::ALL.iter().zip(counts).filter(|(_, n)| **n > 0) {
                let height = *n as f64 * scale;
                y -= height;
                segments.push((level.as_str(), y, height));
            }
            ChartBar {
                x: i * (BAR_WIDTH + 1),
                href: link(zone.link(start), zone.link(end)),
                title: bar_title(zone, start, end, &by_level(counts)),
                segments,
            }
        })
        .collect();
    let n = histogram.counts.len();
    // A range within a day is labelled by the clock alone; a longer one by the date too.
    let long = buckets.interval_ms * i64::try_from(n).unwrap_or(i64::MAX) > 24 * 3_600_000;
    let ticks = (0..X_LABELS)
        .map(|k| {
            let index = k * n / (X_LABELS - 1);
            let minute = zone.format_minute(time(buckets.start_ms(index)));
            // `YYYY-MM-DD HH:MM`: the month and day from 5, the clock from 11.
            let label = minute.get(if long { 5.. } else { 11.. }).unwrap_or(&minute).to_string();
            let left = if n == 0 { 0.0 } else { index as f64 * 100.0 / n as f64 };
            (format!("{left:.2}"), label)
        })
        .collect();
    Chart { width: n * (BAR_WIDTH + 1), bars, max, capped: histogram.capped, ticks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::histogram::Buckets;

    #[test]
    fn a_bar_is_titled_with_its_range_on_the_zones_clock_and_its_counts_per_level() {
        let seoul = Zone::named("Asia/Seoul").expect("zone");
        let start = time::macros::datetime!(2026-11-24 15:00 UTC);
        let title = bar_title(&seoul, start, start + time::Duration::minutes(15), &by_level(&[0, 7, 0, 2, 1]));
        assert_eq!(title, "2026-11-25 00:00 – 2026-11-25 00:15: 10 events (info 7, error 2, fatal 1)");
        assert_eq!(
            bar_title(&seoul, start, start, &by_level(&[0; 5])),
            "2026-11-25 00:00 – 2026-11-25 00:00: 0 events"
        );
    }

    #[test]
    fn the_x_axis_has_five_labels_from_the_first_bucket_to_the_end_on_the_zones_clock() {
        let utc = Zone::UTC;
        let from = time::macros::datetime!(2026-11-24 12:00 UTC);
        let histogram = Histogram::empty(Buckets::for_range(from, from + time::Duration::hours(24)));
        let chart = chart(&histogram, &utc, |_, _| String::new());
        let ticks: Vec<(&str, &str)> = chart.ticks.iter().map(|(l, t)| (l.as_str(), t.as_str())).collect();
        assert_eq!(
            ticks,
            [("0.00", "12:00"), ("25.00", "18:00"), ("50.00", "00:00"), ("75.00", "06:00"), ("100.00", "12:00")]
        );
        let week = Histogram::empty(Buckets::for_range(from, from + time::Duration::days(7)));
        let chart = super::chart(&week, &utc, |_, _| String::new());
        assert_eq!(chart.ticks[0].1, "11-24 12:00", "a range over a day shows the dates");
    }
}
