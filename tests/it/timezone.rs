//! `[ui] timezone`: the pages show and read times in the configured zone, the API stays in UTC.
//! Asia/Seoul is UTC+09:00 all year (no daylight saving time), so the test can add 9 hours itself.

use crate::common;

use common::{ADMIN_PASSWORD, TestApp};
use serde_json::{Value, json};
use time::macros::{format_description, offset};
use time::{Duration, OffsetDateTime};

/// `2026-11-25 00:04:05.250`: how the table writes a time (of the offset `t` is in).
fn wall_clock_ms(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]")).expect("format")
}

/// `2026-11-25 00:04`: how a person types a time into From/To.
fn wall_clock_minute(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day] [hour]:[minute]")).expect("format")
}

async fn page(app: &TestApp, client: &reqwest::Client, path_and_query: &str) -> String {
    let response = client.get(app.url(path_and_query)).send().await.expect("page");
    assert_eq!(response.status(), 200, "{path_and_query}");
    response.text().await.expect("html")
}

fn messages(answer: &Value) -> Vec<&str> {
    answer["events"].as_array().expect("events").iter().filter_map(|e| e["message"].as_str()).collect()
}

/// The `href` of the first `<a class="CLASS" href="...">`, unescaped as a browser would.
fn href_of(html: &str, class: &str) -> String {
    let start = html.find(&format!(r#"class="{class}" href=""#)).expect("the link") + class.len() + 15;
    let end = start + html[start..].find('"').expect("end of href");
    html[start..end].replace("&#38;", "&")
}

#[tokio::test]
async fn pages_show_times_in_the_configured_zone_and_name_it_while_the_api_stays_in_utc() {
    let app = common::spawn_app_with(&[("LOGBOARD__UI__TIMEZONE", "Asia/Seoul")]).await;
    let now = OffsetDateTime::now_utc();
    let at = (now - Duration::hours(1)).replace_nanosecond(250_000_000).expect("ms");
    let events = json!([{"message": "at the time", "level": "error", "timestamp": logboard::event::unix_ms(at)}]);
    assert_eq!(app.ingest(&json!({"env": "dev", "events": events})).await.0, 202);
    let client = app.logged_in_client().await;

    let html = page(&app, &client, "/logs?project=demo&env=dev").await;
    assert!(html.contains("Times in Asia/Seoul (UTC+09:00)"), "the zone is named");
    assert!(html.contains(r#"<th class="time">Time (Asia/Seoul)</th>"#));
    let seoul = wall_clock_ms(at.to_offset(offset!(+9)));
    assert!(html.contains(&format!(">{seoul}</a>")), "the row shows {seoul} (UTC + 9 h)");
    assert!(!html.contains(&wall_clock_ms(at)), "nor the UTC clock");

    let (status, answer) = app.read("/api/v1/events?project=demo&env=dev").await;
    assert_eq!((status, messages(&answer)), (200, vec!["at the time"]));
    let utc = logboard::event::timestamp_format::format(at);
    assert!(utc.ends_with('Z'));
    assert_eq!(answer["events"][0]["timestamp"], utc.as_str(), "the API answers in UTC");
    let id = answer["events"][0]["id"].as_str().expect("id");
    let (_, one) = app.read(&format!("/api/v1/events/{id}?project=demo&env=dev")).await;
    assert_eq!(one["timestamp"], utc.as_str());

    let detail = page(&app, &client, &format!("/logs?project=demo&env=dev&event={id}")).await;
    assert!(detail.contains(&format!("<dd>{seoul} +09:00</dd>")), "the detail pane shows the zone's clock");
}

#[tokio::test]
async fn a_from_and_to_typed_without_an_offset_are_read_in_the_zone_and_its_links_keep_that_range() {
    let app = common::spawn_app_with(&[("LOGBOARD__UI__TIMEZONE", "Asia/Seoul")]).await;
    let at = OffsetDateTime::now_utc() - Duration::hours(1);
    let events = json!([
        {"message": "at the time", "timestamp": logboard::event::unix_ms(at)},
        {"message": "nine hours earlier", "timestamp": logboard::event::unix_ms(at - Duration::hours(9))},
    ]);
    assert_eq!(app.ingest(&json!({"env": "dev", "events": events})).await.0, 202);
    let client = app.logged_in_client().await;

    // The UTC clock's reading of `at`, typed without an offset: on Seoul's clock that is 9 h earlier.
    let (from, to) = (wall_clock_minute(at - Duration::minutes(5)), wall_clock_minute(at + Duration::minutes(5)));
    let range = serde_urlencoded::to_string([("from", &from), ("to", &to)]).expect("query");
    let html = page(&app, &client, &format!("/logs?project=demo&env=dev&{range}")).await;
    assert!(html.contains("nine hours earlier") && !html.contains("at the time"), "read in Asia/Seoul");
    assert!(html.contains(&format!(r#"name="from" value="{from}""#)), "the field shows what was typed");
    assert!(html.contains(&format!(r#"name="to" value="{to}""#)));

    let (_, api) = app.read(&format!("/api/v1/events?project=demo&env=dev&{range}")).await;
    assert_eq!(messages(&api), ["at the time"], "the API reads the same text in UTC");

    // The page's export link goes to that API, and gets the page's range.
    let export = href_of(&html, "export-ndjson");
    let response = reqwest::Client::new()
        .get(app.url(&export))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200, "{export}");
    let body = response.text().await.expect("ndjson");
    let exported: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let exported: Vec<&str> = exported.iter().filter_map(|e| e["message"].as_str()).collect();
    assert_eq!(exported, ["nine hours earlier"], "{export}");

    // Relative times and RFC 3339 with an offset are exact, whatever the zone.
    let html = page(&app, &client, "/logs?project=demo&env=dev&from=now-2h").await;
    assert!(html.contains("at the time") && !html.contains("nine hours earlier"));
    let exact = serde_urlencoded::to_string([
        ("from", logboard::event::timestamp_format::format(at - Duration::minutes(5))),
        ("to", logboard::event::timestamp_format::format(at + Duration::minutes(5))),
    ])
    .expect("query");
    let html = page(&app, &client, &format!("/logs?project=demo&env=dev&{exact}")).await;
    assert!(html.contains("at the time") && !html.contains("nine hours earlier"));
}
