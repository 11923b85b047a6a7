//! The dashboard in a real headless Chromium: log in, pick an environment, filter by level,
//! open one event, read the overview. Needs chromedriver and Chromium (see tests/common/browser.rs).

use crate::common;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use common::browser::Browser;
use common::{ADMIN_PASSWORD, TestApp, spawn_app};
use serde_json::{Value, json};

/// Epoch milliseconds `minutes` ago.
fn minutes_ago(minutes: i64) -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64;
    now - minutes * 60_000
}

const ERROR_MESSAGE: &str = "TypeError: Cannot read properties of undefined (reading 'total')";
const ERROR_STACK: &str = "TypeError: Cannot read properties of undefined (reading 'total')\n    at CartSummary.render (https://shop.example.com/assets/app.4f2c1.js:12:3456)\n    at renderComponentRoot (https://shop.example.com/assets/vendor.js:1:9981)\n    at ReactiveEffect.run (https://shop.example.com/assets/vendor.js:1:4410)";

fn error_event() -> Value {
    json!({
        "timestamp": minutes_ago(3),
        "level": "error",
        "type": "window.onerror",
        "message": ERROR_MESSAGE,
        "stack": ERROR_STACK,
        "extra": {"cart": {"id": "c-981", "items": 3}, "feature_flags": ["new-checkout", "fast-pay"], "retry": false},
        "user": {"id": "42"},
        "http": {"method": "POST", "status": 502},
        "url": "https://shop.example.com/checkout?step=payment",
        "location": "app.4f2c1.js:12:3456",
        "release": "web@1.4.2",
    })
}

async fn ingest_sample(app: &TestApp) {
    let (status, answer) = app
        .ingest(&json!({"env": "production", "events": [
            {"timestamp": minutes_ago(9), "level": "info", "type": "custom", "message": "Checkout page opened"},
            {"timestamp": minutes_ago(6), "level": "warn", "type": "http", "message": "Slow response from /api/cart",
             "http": {"method": "GET", "status": 200}, "url": "https://shop.example.com/api/cart"},
            error_event(),
            {"env": "staging", "timestamp": minutes_ago(5), "level": "info", "message": "Staging deploy finished"},
            {"env": "staging", "timestamp": minutes_ago(4), "level": "error", "message": "Staging only failure"},
        ]}))
        .await;
    assert_eq!((status, &answer["accepted"]), (202, &json!(5)), "ingest answered {answer}");
}

async fn log_in(browser: &Browser) {
    browser.fill("input[name=username]", "admin").await;
    browser.fill("input[name=password]", ADMIN_PASSWORD).await;
    browser.click_to_navigate("form button[type=submit]").await;
}

/// The messages of the table's rows, top to bottom.
async fn row_messages(browser: &Browser) -> Vec<String> {
    browser.texts("table.events tbody tr.event td.message").await
}

/// The detail pane's definition list as label → value.
async fn detail_fields(browser: &Browser) -> HashMap<String, String> {
    let labels = browser.texts("aside.detail dl dt").await;
    let values = browser.texts("aside.detail dl dd").await;
    assert_eq!(labels.len(), values.len(), "every label has a value: {labels:?} / {values:?}");
    labels.into_iter().zip(values).collect()
}

#[tokio::test]
async fn an_operator_logs_in_filters_errors_and_reads_one_event_in_full() {
    let app = spawn_app().await;
    ingest_sample(&app).await;
    let (_, errors) = app.read("/api/v1/events?project=demo&env=production&level=error").await;
    let error_id = errors["events"][0]["id"].as_str().expect("the error's id").to_string();

    let browser = Browser::headless().await;
    browser.goto(&app.url("/logs")).await;
    assert_eq!(browser.path().await, "/login?next=%2Flogs", "a logged-out visit asks for a login first");
    log_in(&browser).await;
    assert!(browser.path().await.starts_with("/logs?"), "lands on the logs page, not {}", browser.path().await);

    browser.click_to_navigate("nav.sidebar section.project[data-project=demo] a[data-env=staging]").await;
    assert_eq!(browser.path().await, "/logs?project=demo&env=staging");
    assert_eq!(
        row_messages(&browser).await,
        ["Staging only failure", "Staging deploy finished"],
        "staging events only"
    );
    browser.click_to_navigate("nav.sidebar section.project[data-project=demo] a[data-env=production]").await;
    assert_eq!(browser.path().await, "/logs?project=demo&env=production");
    let active = browser.texts("nav.sidebar a.active").await;
    assert_eq!(active, ["production"], "the chosen environment is highlighted");
    assert_eq!(
        row_messages(&browser).await,
        [ERROR_MESSAGE, "Slow response from /api/cart", "Checkout page opened"],
        "production events only, newest first"
    );
    assert_eq!(browser.texts("table.events tbody tr.event td.level").await, ["error", "warn", "info"]);
    assert_eq!(browser.texts("table.events tbody tr.event td.status").await, ["502", "200", ""]);

    browser.click("form.filters label.level-choice[data-level=error]").await;
    let ticked = browser.find("input[name=level][value=error]").await.prop("checked").await.expect("checked");
    assert_eq!(ticked.as_deref(), Some("true"), "clicking the badge ticks its box");
    browser.click_to_navigate("form.filters button[type=submit]").await;
    assert!(browser.path().await.contains("level=error"), "the filter is in the address: {}", browser.path().await);
    assert_eq!(row_messages(&browser).await, [ERROR_MESSAGE], "only the error remains");
    assert_eq!(browser.texts("table.events tbody tr.event td.level").await, ["error"]);
    let checked = browser.find("input[name=level][value=error]").await.prop("checked").await.expect("checked");
    assert_eq!(checked.as_deref(), Some("true"), "the ticked level stays ticked");

    browser.click_to_navigate("table.events tr.event.level-error td.message a").await;
    assert!(browser.path().await.contains(&format!("event={error_id}")), "the event is in the address");
    assert_eq!(
        browser.texts("table.events tr.event.selected td.message").await,
        [ERROR_MESSAGE],
        "the open row is marked"
    );
    assert_eq!(browser.text("aside.detail .detail-title").await, ERROR_MESSAGE);
    assert_eq!(browser.text("aside.detail .badge").await, "error");
    assert_eq!(browser.text("aside.detail pre.stack").await, ERROR_STACK);
    let extra = serde_json::to_string_pretty(&error_event()["extra"]).expect("pretty json");
    assert!(extra.contains("\n  \"cart\": {\n    \"id\": \"c-981\""), "the expectation itself is pretty-printed");
    assert_eq!(browser.text("aside.detail pre.extra").await, extra);
    let fields = detail_fields(&browser).await;
    let expected = [
        ("Id", error_id.as_str()),
        ("Project", "demo"),
        ("Environment", "production"),
        ("Type", "window.onerror"),
        ("HTTP method", "POST"),
        ("HTTP status", "502"),
        ("URL", "https://shop.example.com/checkout?step=payment"),
        ("Location", "app.4f2c1.js:12:3456"),
        ("User", r#"{"id":"42"}"#),
        ("Release", "web@1.4.2"),
    ];
    for (label, value) in expected {
        assert_eq!(fields.get(label).map(String::as_str), Some(value), "detail field {label} in {fields:?}");
    }

    // The error's issue, and a link to its row on the issues page.
    assert_eq!(browser.text("aside.detail .detail-issue .issue-count").await, "1");
    assert_eq!(browser.text("aside.detail .detail-issue .issue-status").await, "new");
    browser.click_to_navigate("aside.detail .detail-issue a.issue-link").await;
    assert!(browser.path().await.starts_with("/issues?project=demo&env=production"), "{}", browser.path().await);
    assert_eq!(browser.text("tr.issue:target td.count").await, "1", "the issue's row is the link's target");

    browser.goto(&app.url("/")).await;
    let card = "section.env-card[data-project=demo][data-env=production]";
    assert_eq!(browser.text(&format!("{card} .total strong")).await, "3");
    for (level, count) in [("debug", "0"), ("info", "1"), ("warn", "1"), ("error", "1"), ("fatal", "0")] {
        assert_eq!(browser.text(&format!("{card} li[data-level={level}] .count")).await, count, "{level} count");
    }
    assert_eq!(browser.text("section.env-card[data-project=demo][data-env=staging] .total strong").await, "2");
    let bars = browser.texts(&format!("{card} figure.card-chart svg a.bar rect.level-error")).await;
    assert_eq!(bars.len(), 1, "the error drawn once in the card's chart");
    assert_eq!(browser.text(&format!("{card} p.errors strong")).await, "1");
    assert_eq!(browser.texts(&format!("{card} ul.newest-issues li")).await.len(), 1, "the error's issue");
    browser.click_to_navigate(&format!("{card} h2 a")).await;
    assert!(browser.path().await.starts_with("/logs?project=demo&env=production"), "a card links to its logs");
}

#[tokio::test]
async fn a_logged_out_visitor_of_the_overview_ends_at_the_login_page() {
    let app = spawn_app().await;
    let browser = Browser::headless().await;
    browser.goto(&app.url("/")).await;
    assert!(browser.path().await.starts_with("/login"), "ended at {}", browser.path().await);
    assert_eq!(browser.text("main.login h1").await, "Log in");
    assert!(browser.texts("table.events").await.is_empty(), "no log table before logging in");
}

/// Fills a store with a realistic mix and saves the README's screenshot to `docs/screenshot.png`.
/// Run by hand: `bash scripts/test.sh --run-ignored only -E 'test(take_readme_screenshot)'`.
#[tokio::test]
#[ignore = "writes docs/screenshot.png; run by hand"]
async fn take_readme_screenshot() {
    let app = spawn_app().await;
    /// (minutes ago, level, type, message, HTTP method and status, path)
    type Sample = (i64, &'static str, &'static str, &'static str, Option<(&'static str, u16)>, &'static str);
    let samples: &[Sample] = &[
        (1, "info", "custom", "Order #10482 placed (3 items, €84.20)", None, "/checkout/done"),
        (2, "error", "window.onerror", ERROR_MESSAGE, Some(("POST", 502)), "/checkout?step=payment"),
        (4, "warn", "http", "Slow response from /api/cart (2.8 s)", Some(("GET", 200)), "/api/cart"),
        (5, "error", "http", "Request failed with status code 502", Some(("POST", 502)), "/api/orders"),
        (7, "info", "custom", "User signed in", None, "/login"),
        (9, "debug", "custom", "Feature flags loaded: new-checkout, fast-pay", None, "/"),
        (
            11,
            "error",
            "vue",
            "Error in render: \"TypeError: items.map is not a function\" found in <CartList>",
            None,
            "/cart",
        ),
        (
            13,
            "warn",
            "vue",
            "Invalid prop: type check failed for prop \"price\". Expected Number, got String",
            None,
            "/product/8841",
        ),
        (
            16,
            "fatal",
            "unhandledrejection",
            "ChunkLoadError: Loading chunk 231 failed (timeout: https://shop.example.com/assets/231.js)",
            None,
            "/account",
        ),
        (18, "info", "http", "GET /api/products?page=2", Some(("GET", 200)), "/api/products?page=2"),
        (21, "warn", "http", "Payment provider answered 429, retrying in 2 s", Some(("POST", 429)), "/api/payments"),
        (24, "error", "window.onerror", "ReferenceError: gtag is not defined", None, "/"),
        (26, "info", "custom", "Coupon SPRING24 applied", None, "/cart"),
        (29, "debug", "http", "Prefetched /api/recommendations in 143 ms", Some(("GET", 200)), "/api/recommendations"),
        (33, "error", "http", "Unauthorized: session expired", Some(("GET", 401)), "/api/me"),
        (36, "info", "custom", "Newsletter signup", None, "/"),
        (
            40,
            "warn",
            "window.onerror",
            "ResizeObserver loop completed with undelivered notifications.",
            None,
            "/product/1021",
        ),
        (
            44,
            "error",
            "vue",
            "Cannot read properties of null (reading 'focus') in <SearchBox>",
            None,
            "/search?q=shoes",
        ),
        (47, "info", "http", "POST /api/cart/items", Some(("POST", 201)), "/api/cart/items"),
        (52, "debug", "custom", "Service worker updated to v57", None, "/"),
        (
            58,
            "error",
            "http",
            "Internal Server Error from /api/orders/10477/invoice",
            Some(("GET", 500)),
            "/api/orders/10477/invoice",
        ),
        (63, "info", "custom", "Checkout page opened", None, "/checkout"),
        (
            70,
            "warn",
            "http",
            "Image CDN returned 404 for /img/p/8841-large.webp",
            Some(("GET", 404)),
            "/img/p/8841-large.webp",
        ),
        (77, "info", "custom", "Language switched to ko-KR", None, "/settings"),
        (
            85,
            "fatal",
            "window.onerror",
            "Out of memory while rendering product grid (1,204 items)",
            None,
            "/category/sale",
        ),
    ];
    let events: Vec<Value> = samples
        .iter()
        .map(|(ago, level, kind, message, http, path)| {
            let mut event = json!({
                "timestamp": minutes_ago(*ago),
                "level": level,
                "type": kind,
                "message": message,
                "url": format!("https://shop.example.com{path}"),
                "release": "web@1.4.2",
                "user": {"id": format!("{}", 1000 + ago * 7)},
            });
            if let Some((method, status)) = http {
                event["http"] = json!({"method": method, "status": status});
            }
            if *message == ERROR_MESSAGE {
                event = error_event();
                event["timestamp"] = json!(minutes_ago(*ago));
            }
            event
        })
        .collect();
    let (status, answer) = app.ingest(&json!({"env": "production", "events": events})).await;
    assert_eq!(status, 202, "{answer}");
    let (_, errors) = app.read("/api/v1/events?project=demo&env=production&level=error&limit=1").await;
    let id = errors["events"][0]["id"].as_str().expect("an error").to_string();

    let browser = Browser::start(1400, 900).await;
    browser.goto(&app.url("/login")).await;
    browser.set_viewport(1400, 900).await;
    log_in(&browser).await;
    // The last two hours, so that the chart spreads the events over its width.
    browser.goto(&app.url(&format!("/logs?project=demo&env=production&from=now-2h&event={id}"))).await;
    browser.find("aside.detail pre.stack").await;
    let png = browser.screenshot().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshot.png");
    std::fs::create_dir_all(path.parent().expect("docs dir")).expect("create docs/");
    std::fs::write(&path, png).expect("write the screenshot");
}

#[tokio::test]
async fn logged_html_and_script_show_as_text_and_never_run() {
    let app = spawn_app().await;
    let message = "<script>window.__xss = 'message'</script><b>bold?</b>";
    let stack = "Error\n    at <img src=x onerror=\"window.__xss='stack'\"> (evil.js:1:1)";
    let (status, _) = app
        .ingest(&json!({"env": "dev", "events": [{
            "level": "error",
            "message": message,
            "stack": stack,
            "type": "<svg onload=\"window.__xss='type'\">",
            "url": "javascript:window.__xss='url'",
            "extra": {"html": "</pre><script>window.__xss='extra'</script>", "<img src=x onerror=alert(1)>": true},
        }]}))
        .await;
    assert_eq!(status, 202);

    let browser = Browser::headless().await;
    browser.goto(&app.url("/login?next=%2Flogs%3Fproject%3Ddemo%26env%3Ddev")).await;
    log_in(&browser).await;
    assert_eq!(row_messages(&browser).await, [message], "the table shows the markup as text");
    browser.click_to_navigate("table.events tbody tr.event td.message a").await;
    assert_eq!(browser.text("aside.detail .detail-title").await, message);
    assert_eq!(browser.text("aside.detail pre.stack").await, stack);
    let extra = browser.text("aside.detail pre.extra").await;
    assert!(extra.contains("</pre><script>window.__xss='extra'</script>"), "{extra}");
    assert!(extra.contains("<img src=x onerror=alert(1)>"), "{extra}");
    assert_eq!(detail_fields(&browser).await["URL"], "javascript:window.__xss='url'", "shown as text, not a link");

    let ran =
        browser.client.execute("return window.__xss === undefined ? null : window.__xss;", vec![]).await.expect("js");
    assert_eq!(ran, Value::Null, "no injected script ran");
    // The page's own SVG is the histogram; none may come from event text.
    let injected = browser.client.execute("return document.querySelectorAll('aside.detail script, aside.detail img, aside.detail svg, table.events script, table.events img, table.events svg, svg:not(.histogram svg)').length;", vec![]).await.expect("js");
    assert_eq!(injected, json!(0), "no element was created from event text");
}

#[tokio::test]
async fn an_operator_types_a_query_sees_the_chart_narrows_to_a_bar_and_exports_the_result() {
    let app = spawn_app().await;
    ingest_sample(&app).await;
    let browser = Browser::headless().await;
    browser.goto(&app.url("/login?next=%2Flogs%3Fproject%3Ddemo%26env%3Dproduction")).await;
    log_in(&browser).await;
    assert_eq!(row_messages(&browser).await.len(), 3, "the whole hour first");

    browser.fill("input[name=q]", "level:>=warn -\"slow response\"").await;
    browser.click_to_navigate("form.filters button[type=submit]").await;
    let rows = row_messages(&browser).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("TypeError"), "{rows:?}");
    let typed = browser.find("input[name=q]").await.prop("value").await.expect("value");
    assert_eq!(typed.as_deref(), Some("level:>=warn -\"slow response\""), "the search box keeps the query");
    let bars = browser.texts("figure.histogram svg a.bar title").await;
    assert!(!bars.is_empty(), "a chart of the range");
    let counted: usize = browser
        .client
        .execute("return document.querySelectorAll('figure.histogram rect.level-error').length;", vec![])
        .await
        .expect("js")
        .as_u64()
        .expect("n") as usize;
    assert_eq!(counted, 1, "one bar holds the one error");

    // A bar narrows the range to itself and keeps the query.
    browser.click_to_navigate("figure.histogram a.bar:has(rect.level-error)").await;
    let path = browser.path().await;
    assert!(path.contains("from=") && path.contains("to=") && path.contains("q=level"), "{path}");
    assert_eq!(row_messages(&browser).await.len(), 1);

    // The export link downloads what the page shows (fetched here with the page's session).
    let csv = browser.client.execute(
        "var x = new XMLHttpRequest(); x.open('GET', document.querySelector('a.export-csv').href, false); x.send(); \
         return x.status + '\\n' + x.responseText;",
        vec![],
    ).await.expect("js");
    let (status, body) = csv.as_str().expect("text").split_once('\n').expect("status line");
    assert_eq!(status, "200");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader.headers().expect("header").iter().take(4).map(str::to_string).collect();
    assert_eq!(header, ["id", "timestamp", "level", "type"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!((&rows[0][2], &rows[0][5]), ("error", ERROR_MESSAGE));

    // A query that does not parse keeps its text and says where.
    browser.fill("input[name=q]", "level:error (").await;
    browser.click_to_navigate("form.filters button[type=submit]").await;
    let error = browser.text("p.query-error").await;
    assert!(error.contains("(at character 13)"), "{error}");
}

#[tokio::test]
async fn the_issues_page_resolves_an_issue_and_shows_it_regressed_after_a_new_occurrence() {
    let app = spawn_app().await;
    let declined = |order: u32| {
        json!({"level": "error", "type": "PaymentDeclined", "message": format!("card declined for order {order}"),
                                     "user": format!("u{}", order % 3), "timestamp": minutes_ago(5)})
    };
    let events: Vec<Value> = (100..106)
        .map(declined)
        .chain([json!({"level": "fatal", "type": "TypeError",
        "message": "x is undefined", "timestamp": minutes_ago(3)})])
        .collect();
    assert_eq!(app.ingest(&json!({"env": "production", "events": events})).await.0, 202);

    let browser = Browser::headless().await;
    browser.goto(&app.url("/login?next=%2Fissues%3Fproject%3Ddemo%26env%3Dproduction%26sort%3Dcount")).await;
    log_in(&browser).await;
    assert_eq!(browser.texts("tr.issue td.count").await, ["6", "1"], "sorted by events");
    assert_eq!(browser.texts("tr.issue td.users").await, ["3", "0"]);
    assert_eq!(browser.text("tr.issue td.status").await, "new");
    assert_eq!(browser.texts("tr.issue:first-child td.spark rect").await.len(), 24, "a bar per hour");

    browser.click_to_navigate("tr.issue:first-child td.actions button").await;
    assert!(browser.path().await.starts_with("/issues?project=demo&env=production"), "back on the list");
    let statuses = browser.texts("tr.issue td.status").await;
    assert!(statuses.contains(&"resolved".to_string()), "{statuses:?}");

    assert_eq!(app.ingest(&json!({"env": "production", "events": [declined(107)]})).await.0, 202);
    browser.goto(&app.url("/issues?project=demo&env=production&sort=count")).await;
    assert_eq!(browser.texts("tr.issue td.status").await, ["regressed", "new"]);
    assert_eq!(browser.texts("tr.issue td.count").await, ["7", "1"]);
    browser.click_to_navigate("tr.issue:first-child td.title a").await;
    assert!(browser.path().await.contains("q=fingerprint%3A"), "the row links to its events");
    assert_eq!(row_messages(&browser).await.len(), 7, "every occurrence");
}

/// The first row of the table: its class, its cells' texts, and its link.
async fn first_row(browser: &Browser) -> (Option<String>, Vec<String>, Option<String>) {
    let row = "table.events tbody tr:first-child";
    let class = browser.find(row).await.attr("class").await.expect("class");
    let link = browser.find(&format!("{row} td.message a")).await.attr("href").await.expect("href");
    (class, browser.texts(&format!("{row} td")).await, link)
}

#[tokio::test]
async fn in_live_mode_a_new_event_appears_on_top_as_the_server_would_draw_its_row() {
    let app = common::spawn_app_with(&[("LOGBOARD__UI__TIMEZONE", "Asia/Seoul")]).await;
    let (status, _) = app
        .ingest(&json!({"env": "production", "events": [{"message": "already there", "timestamp": minutes_ago(2)}]}))
        .await;
    assert_eq!(status, 202);
    let browser = Browser::headless().await;
    browser.goto(&app.url("/logs?project=demo&env=production&q=-ignored&live=1")).await;
    log_in(&browser).await;
    assert_eq!(row_messages(&browser).await, ["already there"]);
    // The stream is open once the script says so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !browser.text(".live-status").await.starts_with("Live: new events") {
        assert!(std::time::Instant::now() < deadline, "the live stream did not open");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let hostile = "<img src=x onerror=\"document.title='pwned'\"> live event\nsecond line";
    let (status, _) = app
        .ingest(&json!({"env": "production", "events": [
            {"message": "ignored by the query", "level": "error"},
            {"message": hostile, "level": "error", "type": "http", "http": {"status": 503},
             "url": "https://shop.example/pay"},
        ]}))
        .await;
    assert_eq!(status, 202);
    let shown = "<img src=x onerror=\"document.title='pwned'\"> live event …";
    while row_messages(&browser).await.len() < 2 {
        assert!(std::time::Instant::now() < deadline + std::time::Duration::from_secs(10), "no live row appeared");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(row_messages(&browser).await, [shown, "already there"], "on top, the query applied, as text");
    assert!(browser.client.find_all(fantoccini::Locator::Css("table.events img")).await.expect("find").is_empty());
    let live = first_row(&browser).await;
    assert_eq!(live.1[1..], ["error", "http", shown, "503", "https://shop.example/pay"]);

    // The same row drawn by the server, once live mode is turned off.
    browser.click_to_navigate("a.live-toggle.on").await;
    assert!(!browser.path().await.contains("live="), "{}", browser.path().await);
    assert_eq!(first_row(&browser).await, live, "class, cells (the time on the page's clock) and link");
    assert!(
        browser.find("a.live-toggle").await.attr("href").await.expect("href").is_some_and(|h| h.ends_with("live=1"))
    );
}

#[tokio::test]
async fn the_alerts_page_shows_a_firing_rule_against_its_threshold_and_snoozes_it_with_a_form() {
    let receiver = common::receivers::Receiver::start(Vec::new()).await;
    let app = crate::alerts::app_with_rules(&receiver).await;
    assert_eq!(app.ingest(&crate::alerts::errors("production", 12, "checkout")).await.0, 202);
    assert_eq!(crate::alerts::wait_for_messages(&receiver, 1).await.len(), 1);

    let browser = Browser::headless().await;
    browser.goto(&app.url("/login?next=%2Falerts")).await;
    log_in(&browser).await;
    let rule = "tr.alert-rule[data-rule='checkout errors']";
    assert_eq!(browser.text(&format!("{rule} td.state")).await, "firing");
    assert_eq!(browser.text(&format!("{rule} td.value")).await, "production: 12 / 5 (firing)");
    let history = browser.texts("tr.alert-history li").await;
    assert!(history.iter().any(|h| h.contains("fired production: 12 events in 300 s")), "{history:?}");
    assert!(history.iter().any(|h| h.contains("to ops-slack: sent after 1 attempt(s)")), "{history:?}");

    // The form posts and comes back to /alerts, the same address: wait until the service has the
    // change, then load the page afresh (reading a page while it is replaced is unreliable).
    let state_after_click = |wanted: &'static str| {
        let (browser, app) = (&browser, &app);
        async move {
            browser.click(&format!("{rule} td.snooze button")).await;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let (_, alerts) = app.read("/api/v1/alerts").await;
                let listed = alerts["alerts"].as_array().into_iter().flatten().find(|a| a["name"] == "checkout errors");
                if listed.is_some_and(|a| a["state"] == wanted) || std::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            browser.goto(&app.url("/alerts")).await;
            browser.text(&format!("{rule} td.state")).await
        }
    };
    let state = state_after_click("snoozed").await;
    assert!(state.starts_with("snoozed") && state.contains("until"), "{state}");
    assert_eq!(state_after_click("firing").await, "firing", "un-snoozed");
    let history = browser.texts("tr.alert-history li").await;
    assert!(
        history.iter().any(|h| h.contains("unsnoozed")) && history.iter().any(|h| h.contains("snoozed: until")),
        "{history:?}"
    );

    // The same frame as the other pages without the sidebar: the content as far from the
    // window's left edge as the issues page's and the overview's.
    let mut lefts = Vec::new();
    for path in ["/alerts", "/issues", "/"] {
        browser.goto(&app.url(path)).await;
        let left = browser
            .client
            .execute("return document.querySelector('main > h1').getBoundingClientRect().left;", vec![])
            .await
            .expect("js");
        lefts.push((path, left.as_f64().expect("a number")));
    }
    assert!(lefts[0].1 > 0.0, "the alerts page's content is flush against the window's left edge: {lefts:?}");
    assert!(lefts.iter().all(|(_, left)| *left == lefts[0].1), "{lefts:?}");
}
