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
