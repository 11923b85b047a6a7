//! The live tail over real HTTP: `/api/v1/tail` read as a stream with reqwest while events are
//! ingested, on the embedded store and on CloudWatch (moto); the cap on watchers; the end of the
//! streams at shutdown of the real binary.

use crate::common;

use std::time::{Duration, Instant};

use common::moto::Moto;
use common::{ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// Longer than any delivery should take (the spec's 2 s), so that a slow machine does not fail
/// the test; the time taken is printed.
const WAIT: Duration = Duration::from_secs(10);

/// One open `text/event-stream`, read message by message.
pub struct SseStream {
    response: reqwest::Response,
    pending: String,
}

/// One message of the stream: its `event:` (empty for the default) and its `data:`.
#[derive(Debug, PartialEq)]
pub struct SseMessage {
    pub event: String,
    pub data: String,
}

impl SseStream {
    /// Opens `url` with Basic credentials; panics unless the answer is a 200 event stream.
    pub async fn open(url: &str) -> SseStream {
        let response =
            reqwest::Client::new().get(url).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.expect("tail");
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut stream = SseStream { response, pending: String::new() };
        // The first thing sent is a comment: the subscription is in place from here on.
        assert_eq!(stream.next_block().await.as_deref(), Some(": live"));
        stream
    }

    /// The next block of lines (up to a blank line), or `None` when the stream ended.
    async fn next_block(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block = self.pending[..end].to_string();
                self.pending.drain(..end + 2);
                return Some(block);
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk()).await.expect("something within WAIT");
            match chunk.expect("the stream ended cleanly, not cut") {
                Some(bytes) => self.pending.push_str(std::str::from_utf8(&bytes).expect("utf-8")),
                None => return None,
            }
        }
    }

    /// The next message that is not a comment (keep-alives are comments), `None` at the end.
    pub async fn next_message(&mut self) -> Option<SseMessage> {
        loop {
            let block = self.next_block().await?;
            let mut message = SseMessage { event: String::new(), data: String::new() };
            for line in block.lines() {
                if let Some(data) = line.strip_prefix("data: ") {
                    assert!(message.data.is_empty(), "one data line per event: {block}");
                    message.data = data.to_string();
                } else if let Some(event) = line.strip_prefix("event: ") {
                    message.event = event.to_string();
                }
            }
            if !message.data.is_empty() {
                return Some(message);
            }
        }
    }

    /// The next event's stored JSON.
    pub async fn next_event(&mut self) -> Value {
        let message = self.next_message().await.expect("an event, not the end");
        assert_eq!(message.event, "", "a plain event: {message:?}");
        serde_json::from_str(&message.data).expect("stored-event JSON")
    }
}

/// Ingests into demo/production: one event the tail's query wants between two it does not, and
/// one in another environment.
async fn ingest_mixed(app: &TestApp, tag: &str) {
    let (status, answer) = app
        .ingest(&json!({"env": "production", "events": [
            {"message": format!("{tag} checkout ok"), "level": "info"},
            {"message": format!("{tag} payment failed <b>card</b>"), "level": "error", "extra": {"cart": 7}},
            {"env": "staging", "message": format!("{tag} payment failed on staging"), "level": "error"},
            {"message": format!("{tag} payment retried"), "level": "info"},
        ]}))
        .await;
    assert_eq!((status, &answer["accepted"]), (202, &json!(4)), "{answer}");
}

/// Opens a tail for `level:error payment`, ingests [`ingest_mixed`], and checks that exactly the
/// wanted event arrives, as the read API stores it.
async fn the_wanted_event_arrives(app: &TestApp, tag: &str) {
    let mut tail = SseStream::open(&app.url("/api/v1/tail?project=demo&env=production&q=level:error%20payment")).await;
    let sent = Instant::now();
    ingest_mixed(app, tag).await;
    let event = tail.next_event().await;
    println!("the live event arrived {:?} after the ingest request was sent", sent.elapsed());
    let (_, read) =
        app.read(&format!("/api/v1/events?project=demo&env=production&q=%22{tag}%20payment%20failed%22")).await;
    let id = read["events"][0]["id"].as_str().expect("the wanted event is stored");
    assert_eq!(event["message"], format!("{tag} payment failed <b>card</b>"));
    assert_eq!((event["project"].as_str(), event["env"].as_str()), (Some("demo"), Some("production")));
    assert_eq!(event["extra"]["cart"], 7);
    let (_, stored) = app.read(&format!("/api/v1/events/{id}?project=demo&env=production")).await;
    assert_eq!(event, stored, "the same JSON as the read API");
    // The next one is the next match, not any of the others.
    let (status, _) =
        app.ingest(&json!({"env": "production", "events": [{"message": "payment again", "level": "error"}]})).await;
    assert_eq!(status, 202);
    assert_eq!(tail.next_event().await["message"], "payment again");
}

#[tokio::test]
async fn a_tail_on_the_embedded_store_streams_the_new_events_its_query_matches() {
    let app = spawn_app().await;
    the_wanted_event_arrives(&app, "local").await;
}

#[tokio::test]
async fn a_tail_on_the_cloudwatch_store_streams_the_new_events_its_query_matches() {
    let moto = Moto::start().await;
    let app = crate::cloudwatch::start_app(&moto.url).await;
    the_wanted_event_arrives(&app, "cloudwatch").await;
}

#[tokio::test]
async fn on_cloudwatch_a_tail_shows_what_another_task_ingested_once_and_nothing_from_before() {
    let moto = Moto::start().await;
    let watched = crate::cloudwatch::start_app(&moto.url).await;
    let other = crate::cloudwatch::start_app(&moto.url).await;
    // Before anyone watches: never sent.
    let (status, _) =
        other.ingest(&json!({"env": "production", "events": [{"message": "before the tail", "level": "error"}]})).await;
    assert_eq!(status, 202);
    let mut tail = SseStream::open(&watched.url("/api/v1/tail?project=demo&env=production&q=level:error")).await;
    let (status, _) = other
        .ingest(&json!({"env": "production", "events": [
            {"message": "from the other task", "level": "error"},
            {"message": "not wanted", "level": "info"},
        ]}))
        .await;
    assert_eq!(status, 202);
    let (status, _) = watched
        .ingest(&json!({"env": "production", "events": [{"message": "from this task", "level": "error"}]}))
        .await;
    assert_eq!(status, 202);
    let mut messages = vec![tail.next_event().await["message"].clone(), tail.next_event().await["message"].clone()];
    messages.sort_by_key(|m| m.to_string());
    assert_eq!(messages, [json!("from the other task"), json!("from this task")]);
    // This task's own event, read back from CloudWatch too, is not sent again; the next is new.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, _) =
        other.ingest(&json!({"env": "production", "events": [{"message": "last", "level": "error"}]})).await;
    assert_eq!(status, 202);
    assert_eq!(tail.next_event().await["message"], "last");
}

#[tokio::test]
async fn a_tail_needs_a_login_a_known_environment_and_a_query_that_parses() {
    let app = spawn_app().await;
    let anonymous = reqwest::get(app.url("/api/v1/tail?project=demo&env=production")).await.expect("get");
    assert_eq!(anonymous.status(), 401);
    let (status, body) = app.read("/api/v1/tail?project=demo&env=nowhere").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app.read("/api/v1/tail?project=demo&env=production&q=level:").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["position"].is_number(), "{body}");
    let (status, body) = app.read("/api/v1/tail?project=demo&env=production&level=loud").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn watchers_past_the_cap_are_refused_at_once_and_a_closed_one_frees_its_place() {
    let app = spawn_app_with(&[("LOGBOARD__SERVER__MAX_TAIL_WATCHERS", "2")]).await;
    let url = app.url("/api/v1/tail?project=demo&env=production");
    let first = SseStream::open(&url).await;
    let _second = SseStream::open(&url).await;
    let (status, body) = app.read("/api/v1/tail?project=demo&env=production").await;
    assert_eq!(status, 503, "{body}");
    let refused = reqwest::Client::new().get(&url).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await;
    assert!(refused.expect("answer").headers().contains_key("retry-after"));
    drop(first);
    assert_eq!(status_once_a_place_is_free(&app, &url).await, 200, "the place came back");
}

/// Opens `url` until it is not refused for lack of a place (or [`WAIT`] passes), sending an event
/// between tries so that every open stream writes (a closed one is noticed at a write at the
/// latest); returns the last status.
async fn status_once_a_place_is_free(app: &TestApp, url: &str) -> u16 {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer =
            reqwest::Client::new().get(url).basic_auth("admin", Some(ADMIN_PASSWORD)).send().await.expect("get");
        let status = answer.status().as_u16();
        if status != 503 || Instant::now() > deadline {
            return status;
        }
        let (ingested, _) = app.ingest(&json!({"env": "production", "message": "wake the streams"})).await;
        assert_eq!(ingested, 202);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_tails_cleanly_and_the_process_exits() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = common::binary::start_server(dir.path(), &[("LOGBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)], None);
    let mut tail = SseStream::open(&format!("{}/api/v1/tail?project=demo&env=production", server.base)).await;
    server.terminate();
    // Ended by the server (the chunked body's end), not cut when the process exits.
    assert_eq!(tail.next_message().await, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 30 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}
