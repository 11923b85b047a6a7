//! The query's words marked in the logs table: free words and quoted phrases, whatever their case,
//! as text (event markup stays escaped); field tests and negated terms are not marked.

use crate::common;

use serde_json::json;

#[tokio::test]
async fn the_words_and_phrases_of_the_query_are_marked_in_the_message_column() {
    let app = common::spawn_app().await;
    let ago =
        |minutes: i64| (time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes)).unix_timestamp() * 1000;
    let events = json!({"env": "production", "events": [
        {"timestamp": ago(4), "level": "error", "message": "Checkout failed: card DECLINED for <b>order</b> & co"},
        {"timestamp": ago(3), "level": "error", "message": "checkout error at level 3, card declined, retry soon"},
        {"timestamp": ago(2), "level": "info", "message": "checkout card declined but only an info"},
        {"timestamp": ago(1), "level": "error", "message": "checkout ok, card accepted"},
    ]});
    assert_eq!(app.ingest(&events).await.0, 202);
    let client = app.logged_in_client().await;
    let q = r#"checkout "card declined" level:error -"retry later" -accepted"#;
    let path = format!(
        "/logs?project=demo&env=production&q={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let html = client.get(app.url(&path)).send().await.expect("page").text().await.expect("html");

    // The link text of each row's message cell, as sent.
    let cells: Vec<&str> = html
        .split("<td class=\"message\"")
        .skip(1)
        .map(|cell| {
            let link = &cell[cell.find("<a ").expect("a link")..];
            let text = &link[link.find('>').expect("tag end") + 1..];
            &text[..text.find("</a>").expect("link end")]
        })
        .collect();
    assert_eq!(
        cells,
        [
            "<mark>checkout</mark> error at level 3, <mark>card declined</mark>, retry soon",
            "<mark>Checkout</mark> failed: <mark>card DECLINED</mark> for &#60;b&#62;order&#60;/b&#62; &#38; co",
        ],
        "the free words marked, not `level`, `error` nor the negated `retry later`; markup escaped"
    );
}

#[tokio::test]
async fn in_live_mode_a_new_row_has_the_same_words_marked_as_the_server_marks_them() {
    let app = common::spawn_app().await;
    let browser = common::browser::Browser::headless().await;
    let q = r#"checkout "card declined" -ignored"#;
    let path = format!(
        "/logs?project=demo&env=production&q={}&live=1",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    browser.open_logged_in(&app.base, &path).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !browser.text(".live-status").await.starts_with("Live: new events") {
        assert!(std::time::Instant::now() < deadline, "the live stream did not open");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let message = "CHECKOUT <b>failed</b>: Card declined & checkout retried";
    assert_eq!(
        app.ingest(&json!({"env": "production", "events": [{"level": "error", "message": message}]})).await.0,
        202
    );
    let link = "table.events tbody tr.event td.message a";
    let inner = format!("document.querySelector('{link}') && document.querySelector('{link}').innerHTML");
    let mut live = browser.eval(&inner).await;
    while live.is_null() {
        assert!(std::time::Instant::now() < deadline, "no live row appeared");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        live = browser.eval(&inner).await;
    }
    assert_eq!(
        live,
        json!(
            "<mark>CHECKOUT</mark> &lt;b&gt;failed&lt;/b&gt;: <mark>Card declined</mark> &amp; <mark>checkout</mark> retried"
        )
    );
    browser.click_to_navigate("a.live-toggle.on").await;
    assert_eq!(browser.eval(&inner).await, live, "the server's row is marked the same");
}
