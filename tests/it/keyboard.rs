//! The keyboard shortcuts of the logs and issues pages (static/keys.js), key by key in a real
//! headless Chromium: the selection, opening and closing an event, its context, the help dialog,
//! resolving and ignoring an issue; keys typed into a field or with a modifier do nothing.

use crate::common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use serde_json::{Value, json};

const ENTER: &str = "\u{e007}";
const ESCAPE: &str = "\u{e00c}";
const CONTROL: &str = "\u{e009}";

/// Epoch milliseconds `minutes` ago.
fn minutes_ago(minutes: i64) -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - minutes * 60_000
}

/// Which rows of the table carry `aria-selected="true"`, top to bottom.
async fn selection(browser: &Browser, rows: &str) -> Vec<bool> {
    let script =
        format!("Array.from(document.querySelectorAll('{rows}')).map(r => r.getAttribute('aria-selected') === 'true')");
    let value = browser.eval(&script).await;
    value.as_array().expect("an array").iter().map(|v| v.as_bool().expect("a bool")).collect()
}

const LOG_ROWS: &str = "table.events tbody tr.event";

#[tokio::test]
async fn on_the_logs_page_every_key_moves_the_selection_opens_closes_and_finds_the_context() {
    let app = spawn_app().await;
    let (status, _) = app
        .ingest(&json!({"env": "production", "events": [
            {"timestamp": minutes_ago(3), "level": "error", "message": "newest: payment failed"},
            {"timestamp": minutes_ago(4), "level": "warn", "message": "middle: slow cart"},
            {"timestamp": minutes_ago(5), "level": "info", "message": "oldest: page opened"},
        ]}))
        .await;
    assert_eq!(status, 202);
    let (_, listed) = app.read("/api/v1/events?project=demo&env=production").await;
    let ids: Vec<String> =
        listed["events"].as_array().expect("events").iter().map(|e| e["id"].as_str().expect("id").into()).collect();
    assert_eq!(ids.len(), 3);

    let browser = Browser::headless().await;
    browser.open_logged_in(&app.base, "/logs?project=demo&env=production").await;
    assert_eq!(selection(&browser, LOG_ROWS).await, [false, false, false], "nothing selected at first");

    browser.press("j").await;
    assert_eq!(selection(&browser, LOG_ROWS).await, [true, false, false], "j selects the first row");
    browser.press("jj").await;
    assert_eq!(selection(&browser, LOG_ROWS).await, [false, false, true]);
    browser.press("j").await;
    assert_eq!(selection(&browser, LOG_ROWS).await, [false, false, true], "the last row stays selected");
    browser.press("k").await;
    assert_eq!(selection(&browser, LOG_ROWS).await, [false, true, false], "k moves up");

    // With a modifier, or typed into a field, a key is not a shortcut.
    browser.press(&format!("{CONTROL}j")).await;
    assert_eq!(selection(&browser, LOG_ROWS).await, [false, true, false], "Ctrl+j does nothing");
    browser.press("/").await;
    assert_eq!(browser.eval("document.activeElement.name").await, json!("q"), "/ focuses the search box");
    assert_eq!(browser.eval("document.activeElement.value").await, json!(""), "and is not typed into it");
    let search = browser.find("input[name=q]").await;
    search.send_keys("jk").await.expect("type");
    assert_eq!(browser.eval("document.activeElement.value").await, json!("jk"), "typed as text");
    assert_eq!(selection(&browser, LOG_ROWS).await, [false, true, false], "not moving the selection");
    browser.eval("document.activeElement.blur() || true").await;

    // Enter opens the selected event, Esc closes it, o opens it again.
    browser.press_to_navigate(ENTER).await;
    assert!(browser.path().await.contains(&format!("event={}", ids[1])), "{}", browser.path().await);
    assert_eq!(browser.text("aside.detail .detail-title").await, "middle: slow cart");
    assert_eq!(selection(&browser, LOG_ROWS).await, [false, true, false], "the open event's row is the selection");
    browser.press_to_navigate(ESCAPE).await;
    assert!(!browser.path().await.contains("event="), "{}", browser.path().await);
    assert!(browser.texts("aside.detail").await.is_empty(), "the detail is closed");
    browser.press("jjj").await;
    browser.press_to_navigate("o").await;
    assert!(browser.path().await.contains(&format!("event={}", ids[2])), "{}", browser.path().await);
    assert_eq!(browser.text("aside.detail .detail-title").await, "oldest: page opened");

    // `?` opens the list of keys as a modal dialog; Esc closes it (and does not close the event).
    assert_eq!(browser.eval("document.getElementById('keys-help').open").await, json!(false));
    browser.press("?").await;
    let help = browser
        .eval("[document.getElementById('keys-help').open, document.getElementById('keys-help').matches(':modal')]")
        .await;
    assert_eq!(help, json!([true, true]));
    let name = browser
        .eval(
            "document.getElementById(document.getElementById('keys-help').getAttribute('aria-labelledby')).textContent",
        )
        .await;
    assert_eq!(name, json!("Keyboard shortcuts"), "a dialog named by its heading");
    let keys = browser.texts("#keys-help dt").await;
    assert_eq!(keys, ["/", "j / k", "Enter or o", "Esc", "c", "?"]);
    browser.press(ESCAPE).await;
    assert_eq!(browser.eval("document.getElementById('keys-help').open").await, json!(false));
    assert!(browser.path().await.contains("event="), "Esc closed the dialog only");
    browser.click("button.keys-open").await;
    assert_eq!(
        browser.eval("document.getElementById('keys-help').open").await,
        json!(true),
        "the page's button opens it too"
    );
    browser.click("#keys-help button").await;
    assert_eq!(browser.eval("document.getElementById('keys-help').open").await, json!(false), "and its own closes it");

    // c: the events around the open event (the row selected, else the detail's).
    browser.press_to_navigate("c").await;
    assert_eq!(browser.path().await, format!("/logs?project=demo&env=production&around={}", ids[2]));

    // With a log group chosen, the context keeps it.
    browser.goto(&app.url("/logs?project=demo&env=production&group=%2Flogboard%2Fdemo%2Fproduction")).await;
    browser.press("j").await;
    browser.press_to_navigate("c").await;
    assert_eq!(
        browser.path().await,
        format!("/logs?project=demo&env=production&group=%2Flogboard%2Fdemo%2Fproduction&around={}", ids[0])
    );
}

#[tokio::test]
async fn on_the_issues_page_keys_select_open_resolve_and_ignore_issues() {
    let app = spawn_app().await;
    let events = json!({"env": "production", "events": [
        {"timestamp": minutes_ago(10), "level": "error", "type": "PaymentDeclined", "message": "card declined"},
        {"timestamp": minutes_ago(8), "level": "error", "type": "TypeError", "message": "x is undefined"},
        {"timestamp": minutes_ago(6), "level": "fatal", "type": "ChunkLoadError", "message": "chunk 231 failed"},
    ]});
    assert_eq!(app.ingest(&events).await.0, 202);

    let browser = Browser::headless().await;
    let list = "/issues?project=demo&env=production&sort=first_seen";
    browser.open_logged_in(&app.base, list).await;
    let rows = "table.issues-table tbody tr.issue";
    let titles = browser.texts(&format!("{rows} td.title a")).await;
    assert_eq!(titles.len(), 3, "{titles:?}");

    browser.press("j").await;
    assert_eq!(selection(&browser, rows).await, [true, false, false]);
    browser.press("jk").await;
    assert_eq!(selection(&browser, rows).await, [true, false, false]);
    browser.press("j").await;
    assert_eq!(selection(&browser, rows).await, [false, true, false]);
    let second = browser.texts(&format!("{rows}[aria-selected=true] td.title a")).await.remove(0);

    // Enter: the selected issue's events.
    let events_href = browser.find(&format!("{rows}[aria-selected=true] td.title a")).await.attr("href").await;
    browser.press_to_navigate(ENTER).await;
    assert_eq!(Some(browser.path().await), events_href.expect("href"), "the issue's events");
    assert!(browser.path().await.contains("q=fingerprint%3A"));

    // r resolves the selected issue through its row's form; i ignores one.
    browser.goto(&app.url(list)).await;
    browser.press("jj").await;
    let title = |row: &str| row.split_once(' ').map_or(row.to_string(), |(_, rest)| rest.to_string());
    let resolved = title(&second);
    browser.press_to_navigate("r").await;
    assert_eq!(browser.path().await, "/issues?project=demo&env=production", "back on the list");
    assert_eq!(issue_status(&app, &resolved).await, "resolved", "{second}");

    browser.goto(&app.url(list)).await;
    browser.press("j").await;
    let first = browser.texts(&format!("{rows}[aria-selected=true] td.title a")).await.remove(0);
    browser.press_to_navigate("i").await;
    assert_eq!(issue_status(&app, &title(&first)).await, "ignored", "{first}");
    let untouched: Vec<Value> = {
        let (_, listed) = app.read("/api/v1/issues?project=demo&env=production").await;
        listed["issues"].as_array().cloned().unwrap_or_default()
    };
    let statuses: Vec<&str> = untouched.iter().filter_map(|i| i["status"].as_str()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "new").count(), 1, "the third issue is untouched: {statuses:?}");
}

/// The status of the issue titled `title`, as the API lists it.
async fn issue_status(app: &TestApp, title: &str) -> String {
    let (_, listed) = app.read("/api/v1/issues?project=demo&env=production").await;
    let issues = listed["issues"].as_array().cloned().unwrap_or_default();
    let issue = issues.iter().find(|i| i["title"] == title).unwrap_or_else(|| panic!("{title} in {listed}"));
    issue["status"].as_str().expect("status").to_string()
}
