//! Every page in both themes, in a real headless Chromium: axe-core (npm, injected into the page)
//! finds no serious or critical violation on the login, overview, logs (detail open), issues and
//! alerts pages; with a dark system theme every page is dark with readable text; the level colours
//! stay apart in both; and every page has the same frame.

use crate::common;

use common::TestApp;
use common::browser::Browser;
use common::receivers::Receiver;
use serde_json::{Value, json};

/// The pages checked, after the login page: (name, path), `{event}` standing for an error's id.
const PAGES: [(&str, &str); 4] = [
    ("overview", "/"),
    ("logs with the detail open", "/logs?project=demo&env=production&q=checkout&event={event}"),
    ("issues", "/issues?project=demo&env=production"),
    ("alerts", "/alerts"),
];

/// A service with an alert rule that has fired, events of every level and an error's id.
async fn site(receiver: &Receiver) -> (TestApp, String) {
    let app = crate::alerts::app_with_rules(receiver).await;
    let ago =
        |minutes: i64| (time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes)).unix_timestamp() * 1000;
    let events = json!({"env": "production", "events": [
        {"timestamp": ago(9), "level": "debug", "message": "checkout flags loaded"},
        {"timestamp": ago(8), "level": "info", "message": "checkout opened", "url": "https://shop.example/checkout"},
        {"timestamp": ago(7), "level": "warn", "message": "checkout slow", "http": {"method": "GET", "status": 200}},
        {"timestamp": ago(6), "level": "fatal", "message": "checkout chunk failed to load"},
        {"timestamp": ago(5), "level": "error", "type": "TypeError", "message": "checkout failed: total is undefined",
         "stack": "TypeError: total is undefined\n    at render (app.js:1:2)", "extra": {"cart": 7}},
    ]});
    assert_eq!(app.ingest(&events).await.0, 202);
    assert_eq!(app.ingest(&crate::alerts::errors("production", 12, "checkout")).await.0, 202);
    assert!(!crate::alerts::wait_for_messages(receiver, 1).await.is_empty(), "the rule fired");
    let (_, read) = app.read("/api/v1/events?project=demo&env=production&level=error&limit=1").await;
    let id = read["events"][0]["id"].as_str().expect("an error").to_string();
    (app, id)
}

/// Turns the browser's `prefers-color-scheme` to dark (DevTools' media emulation; it lasts for
/// the tab's later pages).
async fn emulate_dark(browser: &Browser) {
    let features = json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]});
    browser.cdp("Emulation.setEmulatedMedia", features).await;
}

/// axe-core's serious and critical violations on the current page, each with its nodes.
async fn axe_violations(browser: &Browser) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/axe-core/axe.min.js");
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/install-test-deps.sh installs it)", path.display()));
    let loaded = browser.client.execute(&format!("{source}\nreturn typeof window.axe;"), vec![]).await;
    assert_eq!(loaded.expect("inject axe-core"), json!("object"));
    let script = "var done = arguments[arguments.length - 1];
        window.axe.run(document, {resultTypes: ['violations']}).then(function (results) {
          done(results.violations.filter(function (v) { return v.impact === 'serious' || v.impact === 'critical'; })
            .map(function (v) {
              return {id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.map(function (n) { return n.target.join(' ') + ' — ' + n.failureSummary; })};
            }));
        }, function (error) { done([{id: 'axe failed', help: String(error)}]); });";
    let answer = browser.client.execute_async(script, vec![]).await.expect("axe.run");
    answer.as_array().cloned().unwrap_or_else(|| panic!("axe answered {answer}"))
}

/// WCAG's contrast ratio of two relative luminances.
fn contrast(a: f64, b: f64) -> f64 {
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// The relative luminance (WCAG) of the page's background and of its body text, from the
/// computed styles: `[background, text]`.
async fn page_luminance(browser: &Browser) -> (f64, f64) {
    let value = browser
        .eval(
            "(function () {
               function luminance(css) {
                 var c = css.match(/[\\d.]+/g).slice(0, 3).map(function (v) {
                   v = Number(v) / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
                 return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
               }
               var body = getComputedStyle(document.body);
               return [luminance(body.backgroundColor), luminance(body.color), body.backgroundColor];
             })()",
        )
        .await;
    (value[0].as_f64().expect("a number"), value[1].as_f64().expect("a number"))
}

/// The colours the logs page gives each level: its badge's background and its chart bar's fill.
async fn level_colours(browser: &Browser) -> Vec<(String, String)> {
    let value = browser
        .eval(
            "['debug', 'info', 'warn', 'error', 'fatal'].map(function (level) {
               var badge = document.querySelector('form.filters .badge.level-' + level);
               var chart = document.querySelector('figure.histogram svg.chart');
               var bar = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
               bar.setAttribute('class', 'level-' + level);
               chart.appendChild(bar);
               var fill = getComputedStyle(bar).fill;
               bar.remove();
               return [getComputedStyle(badge).backgroundColor, fill];
             })",
        )
        .await;
    serde_json::from_value(value).expect("pairs of colours")
}

/// Every page in one theme: its background and text (dark ones when `dark`), the level colours
/// told apart, and no serious or critical axe-core violation.
async fn check_every_page(dark: bool) {
    let receiver = Receiver::start(Vec::new()).await;
    let (app, error_id) = site(&receiver).await;
    let browser = Browser::headless().await;
    if dark {
        emulate_dark(&browser).await;
    }
    let theme = if dark { "dark" } else { "light" };
    let mut failures = Vec::new();
    browser.goto(&app.url("/login")).await;
    let pages = std::iter::once(("login", "/login".to_string()))
        .chain(PAGES.iter().map(|(name, path)| (*name, path.replace("{event}", &error_id))));
    for (name, path) in pages {
        if name != "login" {
            browser.goto(&app.url(&path)).await;
        }
        assert_eq!(browser.eval("matchMedia('(prefers-color-scheme: dark)').matches").await, json!(dark), "{name}");
        let (background, text) = page_luminance(&browser).await;
        if dark {
            assert!(background < 0.2, "{name} is not dark: its background's luminance is {background}");
        } else {
            assert!(background > 0.5, "{name} is not light: its background's luminance is {background}");
        }
        let ratio = contrast(background, text);
        assert!(ratio >= 4.5, "{name} ({theme}): body text contrast {ratio:.2} is under 4.5");
        if path.starts_with("/logs") {
            browser.find("aside.detail .detail-title").await;
            // The keyboard's selection is checked too.
            browser.press("j").await;
            assert_eq!(browser.eval("document.querySelectorAll('tr[aria-selected=true]').length").await, json!(1));
            let colours = level_colours(&browser).await;
            for (i, a) in colours.iter().enumerate() {
                for b in &colours[i + 1..] {
                    assert!(a.0 != b.0 && a.1 != b.1, "two levels share a colour ({theme}): {colours:?}");
                }
            }
        }
        let violations = axe_violations(&browser).await;
        if !violations.is_empty() {
            failures.push(format!("{name} ({theme}):\n{}", serde_json::to_string_pretty(&violations).expect("json")));
        }
        if name == "login" {
            browser.log_in().await;
        }
    }
    assert!(failures.is_empty(), "axe-core found serious or critical violations:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn in_the_light_theme_every_page_is_readable_and_axe_finds_no_serious_violation() {
    check_every_page(false).await;
}

#[tokio::test]
async fn in_the_dark_theme_every_page_is_dark_readable_and_axe_finds_no_serious_violation() {
    check_every_page(true).await;
}

#[tokio::test]
async fn every_page_has_the_same_header_and_the_pages_without_sidebar_the_same_content_frame() {
    let app = common::spawn_app().await;
    let browser = Browser::headless().await;
    // The header, the main landmark's box, and what would be wrong on any page.
    let frame = "(function () {
        var header = document.querySelectorAll('body > header.topbar');
        var main = document.querySelectorAll('main');
        var box = main.length ? main[0].getBoundingClientRect() : {left: -1, width: -1};
        return {
          headers: header.length,
          brand: header.length ? header[0].querySelector('a.brand').getAttribute('href') : null,
          nav: Array.from(document.querySelectorAll('header.topbar nav a')).map(function (a) { return a.getAttribute('href'); }),
          mains: main.length,
          sidebar: document.querySelectorAll('nav.sidebar').length,
          left: box.left, width: box.width,
          wrong: document.querySelectorAll('svg[role=img] a, a[aria-pressed]').length
        };
      })()";
    browser.goto(&app.url("/login")).await;
    let mut seen = vec![("login", browser.eval(frame).await)];
    browser.log_in().await;
    for (name, path) in [
        ("overview", "/"),
        ("logs", "/logs?project=demo&env=production"),
        ("issues", "/issues?project=demo&env=production"),
        ("alerts", "/alerts"),
        ("an error page", "/issues?project=nope&env=production"),
    ] {
        browser.goto(&app.url(path)).await;
        seen.push((name, browser.eval(frame).await));
    }
    let nav = json!(["/", "/logs", "/issues", "/alerts"]);
    for (name, page) in &seen {
        assert_eq!(
            (&page["headers"], &page["brand"], &page["mains"]),
            (&json!(1), &json!("/"), &json!(1)),
            "{name}: {page}"
        );
        assert_eq!(page["wrong"], json!(0), "{name}: links in an image or aria-pressed on a link: {page}");
        let expected_nav = if *name == "login" { json!([]) } else { nav.clone() };
        assert_eq!(page["nav"], expected_nav, "{name}: the same navigation");
    }
    let framed: Vec<&(&str, Value)> = seen.iter().filter(|(_, page)| page["sidebar"] == json!(0)).collect();
    assert_eq!(framed.len(), 5, "every page but the logs page is without the sidebar: {seen:?}");
    for (name, page) in &framed {
        assert_eq!((&page["left"], &page["width"]), (&framed[0].1["left"], &framed[0].1["width"]), "{name}: {page}");
    }
}
