//! The charts on real data: every bar of the logs chart, the overview's cards and the issues'
//! sparklines is titled with its range on the configured zone's clock and its counts per level;
//! the logs chart has time labels and its maximum; a bar is a link that narrows the range to
//! itself, keeping the search and the levels.

use crate::common;

use common::TestApp;
use common::browser::Browser;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};

const SEOUL: UtcOffset = time::macros::offset!(+9);

/// The start of the hour two hours ago: the events below fall in known buckets of every chart.
fn start_hour() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() - Duration::hours(2);
    t.replace_minute(0).and_then(|t| t.replace_second(0)).and_then(|t| t.replace_nanosecond(0)).expect("an hour")
}

/// `2026-11-25 00:10`, on Seoul's clock.
fn seoul_minute(t: OffsetDateTime) -> String {
    t.to_offset(SEOUL).format(format_description!("[year]-[month]-[day] [hour]:[minute]")).expect("format")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format")
}

/// At `t0 + 10 min`: 2 errors, a warning and 3 infos; at `t0 + 30 min`: a fatal and a debug.
async fn ingest(app: &TestApp, t0: OffsetDateTime) {
    let at = |minutes: i64, seconds: i64| rfc3339(t0 + Duration::minutes(minutes) + Duration::seconds(seconds));
    let event = |at: String, level: &str, message: &str| json!({"timestamp": at, "level": level, "message": message});
    let events: Vec<Value> = vec![
        event(at(10, 5), "error", "checkout failed"),
        event(at(10, 6), "error", "checkout failed"),
        event(at(10, 7), "warn", "checkout slow"),
        event(at(10, 8), "info", "checkout opened"),
        event(at(10, 9), "info", "checkout opened"),
        event(at(10, 10), "info", "checkout opened"),
        event(at(30, 10), "fatal", "checkout crashed"),
        event(at(30, 11), "debug", "checkout flags loaded"),
    ];
    let (status, answer) = app.ingest(&json!({"env": "production", "events": events})).await;
    assert_eq!((status, &answer["accepted"]), (202, &json!(8)), "{answer}");
}

/// The inner text of every `<open …>text</close>` whose opening tag starts with `open`.
fn between(html: &str, open: &str, close: &str) -> Vec<String> {
    html.split(open)
        .skip(1)
        .map(|rest| {
            let inner = &rest[rest.find('>').expect("the tag ends") + 1..];
            inner[..inner.find(close).expect("closed")].to_string()
        })
        .collect()
}

/// The titles of every chart bar (`<a class="bar" …><title>…</title>`) in a page.
fn bar_titles(html: &str) -> Vec<String> {
    between(html, "<a class=\"bar\"", "</a>")
        .iter()
        .map(|bar| between(bar, "<title", "</title>").pop().unwrap_or_else(|| panic!("a bar without a title: {bar}")))
        .collect()
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let response = client.get(app.url(path)).send().await.expect("page");
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("html")
}

#[tokio::test]
async fn every_bar_of_every_chart_is_titled_with_its_range_in_the_zone_and_its_counts_per_level() {
    let app = common::spawn_app_with(&[("LOGBOARD__UI__TIMEZONE", "Asia/Seoul")]).await;
    let t0 = start_hour();
    ingest(&app, t0).await;
    let client = app.logged_in_client().await;
    let minute = |m: i64| seoul_minute(t0 + Duration::minutes(m));

    // The logs page over one hour: a bar per minute.
    let range = format!("from={}&to={}", rfc3339(t0), rfc3339(t0 + Duration::hours(1)));
    let logs = page(&app, &client, &format!("/logs?project=demo&env=production&{range}")).await;
    let titles = bar_titles(&logs);
    assert_eq!(titles.len(), 60, "a titled bar per minute");
    assert_eq!(titles[0], format!("{} – {}: 0 events", minute(0), minute(1)));
    assert_eq!(titles[10], format!("{} – {}: 6 events (info 3, warn 1, error 2)", minute(10), minute(11)));
    assert_eq!(titles[30], format!("{} – {}: 2 events (debug 1, fatal 1)", minute(30), minute(31)));
    let busy: Vec<usize> = (0..60).filter(|i| !titles[*i].ends_with(": 0 events")).collect();
    assert_eq!(busy, [10, 30], "the other bars are empty");

    // The axes: five times under the bars on Seoul's clock, the tallest bar's count on top.
    let labels = between(&logs, "<text class=\"x-label", "</text>");
    let clock = |m: i64| minute(m)[11..].to_string();
    assert_eq!(labels, [clock(0), clock(15), clock(30), clock(45), clock(60)]);
    assert_eq!(between(&logs, "<span class=\"y-max\"", "</span>"), ["6"], "the y maximum is the tallest bar");

    // The overview's card: a bar per 15 minutes over the last 24 hours.
    let home = page(&app, &client, "/").await;
    let card = home.split("data-project=\"demo\" data-env=\"production\"").nth(1).expect("the card");
    let card = &card[..card.find("</section>").expect("card end")];
    let titles = bar_titles(card);
    let quarter = |m: i64| format!("{} – {}", minute(m), minute(m + 15));
    assert!(titles.contains(&format!("{}: 6 events (info 3, warn 1, error 2)", quarter(0))), "{titles:?}");
    assert!(titles.contains(&format!("{}: 2 events (debug 1, fatal 1)", quarter(30))), "{titles:?}");
    assert_eq!(titles.iter().filter(|t| !t.ends_with(": 0 events")).count(), 2, "{titles:?}");

    // The issues' sparklines: a bar per hour, each titled.
    let issues = page(&app, &client, "/issues?project=demo&env=production&sort=count").await;
    let sparks: Vec<Vec<String>> = between(&issues, "<td class=\"spark\"", "</td>")
        .iter()
        .map(|spark| between(spark, "<title", "</title>"))
        .collect();
    assert_eq!(sparks.len(), 2, "two issues: the errors' and the fatal's");
    let hour = format!("{} – {}", minute(0), minute(60));
    assert!(sparks.iter().all(|bars| bars.len() == 24), "a titled bar per hour");
    assert!(sparks[0].contains(&format!("{hour}: 2 events (error 2)")), "{:?}", sparks[0]);
    assert!(sparks[1].contains(&format!("{hour}: 1 events (fatal 1)")), "{:?}", sparks[1]);
}

#[tokio::test]
async fn clicking_a_bar_narrows_the_range_to_it_keeping_the_search_and_the_levels() {
    let app = common::spawn_app_with(&[("LOGBOARD__UI__TIMEZONE", "Asia/Seoul")]).await;
    let t0 = start_hour();
    ingest(&app, t0).await;
    let browser = Browser::headless().await;
    let path = format!(
        "/logs?project=demo&env=production&from={}&to={}&q=checkout&level=error&level=warn",
        rfc3339(t0),
        rfc3339(t0 + Duration::hours(1))
    );
    browser.open_logged_in(&app.base, &path).await;
    assert_eq!(browser.texts("table.events tbody tr.event").await.len(), 3, "the errors and the warning");

    let label = format!(
        "{} – {}: 3 events (warn 1, error 2)",
        seoul_minute(t0 + Duration::minutes(10)),
        seoul_minute(t0 + Duration::minutes(11))
    );
    browser.click_to_navigate(&format!("figure.histogram a.bar[aria-label='{label}']")).await;
    let address = browser.client.current_url().await.expect("url");
    let params: Vec<(String, String)> = address.query_pairs().into_owned().collect();
    let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
    let from = OffsetDateTime::parse(&get("from"), &Rfc3339).expect("from is RFC 3339");
    let to = OffsetDateTime::parse(&get("to"), &Rfc3339).expect("to is RFC 3339");
    assert_eq!((from, to), (t0 + Duration::minutes(10), t0 + Duration::minutes(11)), "{address}");
    assert_eq!(from.offset(), SEOUL, "on the zone's clock: {address}");
    assert_eq!((get("q"), get("level")), ("checkout".to_string(), "error,warn".to_string()), "{address}");
    let levels = browser.texts("table.events tbody tr.event td.level").await;
    assert_eq!(levels, ["warn", "error", "error"], "the bar's events only");
}
