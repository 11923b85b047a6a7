//! The stacked bar chart of events by level over time (the logs page above its table, the home
//! page on each card): laid out here, drawn as SVG by `templates/chart.html`, no JavaScript.

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
}

pub(super) struct ChartBar {
    pub x: usize,
    pub href: String,
    /// `2026-11-24 15:00 – 15:15: 12 events`.
    pub title: String,
    /// (level, y, height), bottom to top in severity order.
    pub segments: Vec<(&'static str, f64, f64)>,
}

/// Units of height of the chart's SVG; a bar is [`BAR_WIDTH`] wide with a gap of one.
const CHART_HEIGHT: f64 = 60.0;
const BAR_WIDTH: usize = 9;

/// The bars of `histogram`, titled on `zone`'s clock; `link(from, to)` is the logs page narrowed
/// to one bar.
pub(super) fn chart(histogram: &Histogram, zone: &Zone, link: impl Fn(String, String) -> String) -> Chart {
    let max = histogram.counts.iter().map(|c| c.iter().sum::<u64>()).max().unwrap_or(0);
    let scale = if max == 0 { 0.0 } else { CHART_HEIGHT / max as f64 };
    let time = |ms: i64| crate::event::from_unix_ms(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let bars = histogram
        .counts
        .iter()
        .enumerate()
        .map(|(i, counts)| {
            let (start, end) = (histogram.buckets.start_ms(i), histogram.buckets.start_ms(i + 1));
            let mut y = CHART_HEIGHT;
            let mut segments = Vec::new();
            for (level, n) in Level::ALL.iter().zip(counts).filter(|(_, n)| **n > 0) {
                let height = *n as f64 * scale;
                y -= height;
                segments.push((level.as_str(), y, height));
            }
            let total: u64 = counts.iter().sum();
            ChartBar {
                x: i * (BAR_WIDTH + 1),
                href: link(zone.link(time(start)), zone.link(time(end))),
                title: format!(
                    "{} – {}: {total} events",
                    zone.format_minute(time(start)),
                    zone.format_minute(time(end))
                ),
                segments,
            }
        })
        .collect();
    Chart { width: histogram.counts.len() * (BAR_WIDTH + 1), bars, max, capped: histogram.capped }
}
