//! Saved searches (`/api/v1/searches`, the logs page's "Save this search", `../shared/spec/ui.md`):
//! create, list, delete, the bounds (a name once per project, 500 per project), validation, the
//! cross-site guard, the page's form and links; and on `[state] backend = "dynamodb"` one list
//! for every task, the bounds holding across two tasks.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::binary::{Server, start_server};
use common::moto::{Moto, table_for};
use common::spawn_app;
use logboard::dynamo::DynamoSearches;
use logboard::searches::{MAX_PER_PROJECT, NotSaved, SavedSearch, SavedSearches};
use serde_json::{Value, json};

/// A read-API token of the first test's service.
const API_TOKEN: &str = "searches-token-0123456789";
/// The table `crate::shared_state::state_env` names.
const TABLE: &str = "logboard-state-test";

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// POSTs `body` to `/api/v1/searches` on `base` with `client` (logged in).
async fn create(client: &reqwest::Client, base: &str, body: &Value) -> (u16, Value) {
    answer(client.post(format!("{base}/api/v1/searches")).json(body).send().await.expect("post")).await
}

async fn list(client: &reqwest::Client, base: &str, query: &str) -> Vec<Value> {
    let (status, listed) =
        answer(client.get(format!("{base}/api/v1/searches{query}")).send().await.expect("get")).await;
    assert_eq!(status, 200, "{listed}");
    listed["searches"].as_array().expect("searches").clone()
}

fn names(searches: &[Value]) -> Vec<&str> {
    searches.iter().map(|s| s["name"].as_str().expect("name")).collect()
}

#[tokio::test]
async fn a_saved_search_is_created_listed_and_deleted_with_its_range_kept_as_written() {
    let data_dir = tempfile::tempdir().expect("dir");
    let mut config = common::test_config(data_dir.path(), &[]);
    config.auth.api_tokens = vec![logboard::config::Secret::new(API_TOKEN)];
    let app = common::spawn_app_from(config, data_dir).await;
    let client = app.logged_in_client().await;
    let body = json!({"name": "checkout errors", "project": "demo", "env": "production",
        "q": "level:error checkout", "from": "now-24h", "to": "now"});
    let (status, saved) = create(&client, &app.base, &body).await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().expect("an id").to_string();
    for key in ["name", "project", "env", "q", "from", "to"] {
        assert_eq!(saved[key], body[key], "{key} kept as written");
    }
    let (status, staging) =
        create(&client, &app.base, &json!({"name": "all of staging", "project": "demo", "env": "staging", "q": ""}))
            .await;
    assert_eq!(status, 201, "from/to and an empty query are optional: {staging}");
    assert!(staging.get("from").is_none() && staging.get("to").is_none(), "{staging}");

    assert_eq!(names(&list(&client, &app.base, "?project=demo").await), ["checkout errors", "all of staging"]);
    assert_eq!(names(&list(&client, &app.base, "").await), ["checkout errors", "all of staging"], "every project's");
    let canary = app.state.projects.iter().find(|p| p.internal).map(|p| p.name.clone());
    if let Some(canary) = canary {
        assert!(list(&client, &app.base, &format!("?project={canary}")).await.is_empty(), "another project's list");
    }
    let (status, unknown) =
        answer(client.get(app.url("/api/v1/searches?project=nope")).send().await.expect("get")).await;
    assert_eq!((status, unknown["error"].as_str()), (404, Some("no project `nope`")));

    let delete = |id: String| client.delete(app.url(&format!("/api/v1/searches/{id}"))).send();
    assert_eq!(delete(id.clone()).await.expect("delete").status(), 204);
    assert_eq!(delete(id).await.expect("delete").status(), 404, "gone");
    assert_eq!(names(&list(&client, &app.base, "?project=demo").await), ["all of staging"]);

    let anonymous = reqwest::Client::new();
    assert_eq!(anonymous.get(app.url("/api/v1/searches")).send().await.expect("get").status(), 401);
    let (status, _) = create(&anonymous, &app.base, &body).await;
    assert_eq!(status, 401, "saving needs a login");
    let by_basic = reqwest::Client::new()
        .get(app.url("/api/v1/searches?project=demo"))
        .basic_auth("admin", Some(common::ADMIN_PASSWORD))
        .send()
        .await
        .expect("get");
    assert_eq!(by_basic.status(), 200, "Basic auth reads them as every read API");
    let by_token = reqwest::Client::new()
        .post(app.url("/api/v1/searches"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"name": "by a script", "project": "demo", "env": "dev"}))
        .send()
        .await
        .expect("post");
    assert_eq!(by_token.status(), 201, "an API token saves, as it sets an issue's status");
}

#[tokio::test]
async fn a_name_is_taken_once_per_project_and_the_501st_search_is_refused() {
    let app = spawn_app().await;
    let client = app.logged_in_client().await;
    let search = |name: &str| json!({"name": name, "project": "demo", "env": "dev", "q": "timeout"});
    assert_eq!(create(&client, &app.base, &search("slow")).await.0, 201);
    let (status, taken) = create(&client, &app.base, &search("  slow ")).await;
    assert_eq!(
        (status, taken["error"].as_str()),
        (409, Some("project `demo` already has a saved search named `slow`")),
        "names are compared trimmed"
    );
    for i in 1..MAX_PER_PROJECT {
        let (status, answer) = create(&client, &app.base, &search(&format!("search {i}"))).await;
        assert_eq!(status, 201, "search {i}: {answer}");
    }
    assert_eq!(list(&client, &app.base, "?project=demo").await.len(), MAX_PER_PROJECT);
    let (status, full) = create(&client, &app.base, &search("one too many")).await;
    assert_eq!(status, 409, "{full}");
    assert_eq!(
        full["error"].as_str(),
        Some("project `demo` has 500 saved searches, the most it may have; delete one first")
    );
    assert_eq!(list(&client, &app.base, "?project=demo").await.len(), MAX_PER_PROJECT, "nothing saved past it");
}

#[tokio::test]
async fn bad_searches_are_refused_with_the_reason_and_a_cross_site_post_is_refused() {
    let app = spawn_app().await;
    let client = app.logged_in_client().await;
    let good = json!({"name": "n", "project": "demo", "env": "dev", "q": "x"});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let long_name = "n".repeat(101);
    for (body, status, message) in [
        (with("project", json!("nope")), 404, "no project `nope`"),
        (with("env", json!("qa")), 404, "project `demo` has no env `qa`"),
        (with("env", json!("")), 400, "`env` is required"),
        (with("name", json!("  ")), 400, "`name` must not be empty"),
        (with("name", json!(long_name)), 400, "`name` is longer than 100 characters"),
        (with("q", json!("level:")), 400, "a value is missing after `level:`"),
        (with("from", json!("monday")), 400, "`from`: `monday` is not a time"),
        (with("color", json!("red")), 400, "the body is not a search to save: unknown field `color`"),
        (with("name", json!(7)), 400, "the body is not a search to save: invalid type"),
    ] {
        let (got, answer) = create(&client, &app.base, &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(message), "{body}: {error}");
    }
    let (status, bad_query) = create(&client, &app.base, &with("q", json!("level:"))).await;
    assert_eq!((status, bad_query["position"].as_u64().is_some()), (400, true), "as the searches give it: {bad_query}");
    let not_json = client.post(app.url("/api/v1/searches")).body("{name").send().await.expect("post");
    assert_eq!(not_json.status(), 400);

    let cross_site = client
        .post(app.url("/api/v1/searches"))
        .header("Sec-Fetch-Site", "cross-site")
        .json(&good)
        .send()
        .await
        .expect("post");
    assert_eq!(answer(cross_site).await, (403, json!({"error": "cross-site request refused"})));
    let (status, saved) = create(&client, &app.base, &good).await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().expect("id");
    let cross_site_delete = client
        .delete(app.url(&format!("/api/v1/searches/{id}")))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("delete");
    assert_eq!(cross_site_delete.status(), 403);
    assert_eq!(list(&client, &app.base, "").await.len(), 1, "nothing saved or deleted from another site");
}

#[tokio::test]
async fn the_logs_page_saves_the_search_as_its_address_has_it_and_lists_the_projects_searches() {
    let app = spawn_app().await;
    let client = app.logged_in_client().await;
    let page = client
        .get(app.url("/logs?project=demo&env=staging&q=payment%20failed&from=now-6h"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains(r#"<form class="save-search" method="post" action="/logs/searches">"#), "{page}");
    assert!(page.contains(r#"<input type="hidden" name="from" value="now-6h">"#), "the range as the address has it");

    let form = [
        ("project", "demo"),
        ("env", "staging"),
        ("q", "payment failed"),
        ("from", "now-6h"),
        ("to", ""),
        ("name", "payments"),
    ];
    let saved = client.post(app.url("/logs/searches")).form(&form).send().await.expect("post");
    assert_eq!(saved.status(), 303);
    let back = saved.headers()["location"].to_str().expect("ascii").to_string();
    assert_eq!(back, "/logs?project=demo&env=staging&q=payment%20failed&from=now-6h");
    let listed = list(&client, &app.base, "?project=demo").await;
    assert_eq!((listed[0]["name"].as_str(), listed[0]["from"].as_str()), (Some("payments"), Some("now-6h")));
    assert!(listed[0].get("to").is_none(), "an empty `to` is not saved");

    let page = client.get(app.url(&back)).send().await.expect("page").text().await.expect("html");
    assert!(
        page.contains(&format!(r#"<a href="{}">payments</a>"#, back.replace('&', "&#38;"))),
        "listed as a link: {page}"
    );
    let other_env =
        client.get(app.url("/logs?project=demo&env=dev")).send().await.expect("page").text().await.expect("html");
    assert!(other_env.contains(">payments</a>"), "the project's searches, on every env's page");

    let again = client.post(app.url("/logs/searches")).form(&form).send().await.expect("post");
    assert_eq!(again.status(), 409, "the page answers the API's refusal");
    let cross_site =
        client.post(app.url("/logs/searches")).header("Sec-Fetch-Site", "cross-site").form(&form).send().await;
    assert_eq!(cross_site.expect("post").status(), 403);
    let anonymous = app.client().post(app.url("/logs/searches")).form(&form).send().await.expect("post");
    assert_eq!(anonymous.status(), 303, "to the login page");
}

/// The state table's variables for a `logboard` process, as `tests/it/shared_state.rs` sets
/// them, with one session secret and admin password for both tasks.
fn state_env(moto: &Moto) -> Vec<(&'static str, String)> {
    let mut env = crate::shared_state::state_env(moto);
    env.push(("LOGBOARD__AUTH__SESSION_SECRET", "a shared secret of the service, 32+ bytes long".into()));
    env.push(("LOGBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD.into()));
    env
}

fn start_task(moto: &Moto, dir: &tempfile::TempDir) -> Server {
    let env = state_env(moto);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    start_server(dir.path(), &env, None)
}

/// A client that sends Basic auth with every request.
fn basic(client: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    client.basic_auth("admin", Some(common::ADMIN_PASSWORD))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_shared_state_two_tasks_see_one_list_and_a_name_saved_on_one_is_taken_on_the_other() {
    let moto = Moto::start().await;
    table_for(&moto.url, TABLE).create().await.expect("create the table");
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let (a, b) = (start_task(&moto, &dirs[0]), start_task(&moto, &dirs[1]));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let post = |base: &str, name: &str| {
        basic(http.post(format!("{base}/api/v1/searches")))
            .json(&json!({"name": name, "project": "demo", "env": "production", "q": "level:error", "from": "now-7d"}))
            .send()
    };
    let saved = answer(post(&a.base, "errors this week").await.expect("post")).await;
    assert_eq!(saved.0, 201, "{}", saved.1);
    assert_eq!(answer(post(&b.base, "errors this week").await.expect("post")).await.0, 409, "taken on the other task");
    assert_eq!(answer(post(&b.base, "another").await.expect("post")).await.0, 201);

    for task in [&a, &b] {
        let (status, listed) =
            answer(basic(http.get(format!("{}/api/v1/searches?project=demo", task.base))).send().await.expect("get"))
                .await;
        assert_eq!(status, 200, "{listed}");
        let listed = listed["searches"].as_array().expect("searches").clone();
        assert_eq!(names(&listed), ["errors this week", "another"], "the same list on {}", task.base);
        assert_eq!(listed[0]["from"], "now-7d");
    }
    let id = saved.1["id"].as_str().expect("id");
    let deleted = basic(http.delete(format!("{}/api/v1/searches/{id}", b.base))).send().await.expect("delete");
    assert_eq!(deleted.status(), 204, "deleted on the other task");
    let again = basic(http.delete(format!("{}/api/v1/searches/{id}", a.base))).send().await.expect("delete");
    assert_eq!(again.status(), 404);
    assert_eq!(answer(post(&a.base, "errors this week").await.expect("post")).await.0, 201, "the name is free again");

    // Nothing of it under either task's data_dir: the table is where they live.
    for dir in &dirs {
        assert!(!dir.path().join("searches.db").exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_shared_state_two_tasks_share_the_names_and_the_limit_and_a_refusal_takes_no_place() {
    let moto = Moto::start().await;
    let table = table_for(&moto.url, TABLE);
    table.create().await.expect("create the table");
    let tasks = [Arc::new(DynamoSearches::new(table.clone())), Arc::new(DynamoSearches::new(table))];
    let search = |name: String, project: &str| SavedSearch {
        id: logboard::event::new_id(time::OffsetDateTime::now_utc()).to_string(),
        name,
        project: project.into(),
        env: "production".into(),
        q: String::new(),
        from: None,
        to: None,
        created_ms: 0,
    };
    // The two tasks take turns: every name is tried on both, and only the first is saved.
    // (Conditional writes make this hold when they race, too; moto, unlike DynamoDB, does not
    // serialize concurrent conditional writes to one item, so the race itself is not run here.)
    let mut saved = BTreeSet::new();
    for i in 0..(MAX_PER_PROJECT - 1) {
        let (first, second) = (i % 2, (i + 1) % 2);
        let name = format!("s{i:03}");
        let made = tasks[first].create(search(name.clone(), "demo")).await.expect("create");
        assert_eq!(made.map(|s| s.name), Ok(name.clone()));
        saved.insert(name.clone());
        let again = tasks[second].create(search(name.clone(), "demo")).await.expect("create");
        assert_eq!(again, Err(NotSaved::NameTaken { project: "demo".into(), name }), "taken on the other task");
    }
    let listed = |task: usize| {
        let task = Arc::clone(&tasks[task]);
        async move { task.list(Some("demo")).await.expect("list").into_iter().map(|s| s.name).collect::<BTreeSet<_>>() }
    };
    // The refused attempts took no place: the 500th fits, on either task, and the 501st does not.
    assert!(tasks[1].create(search("the 500th".into(), "demo")).await.expect("create").is_ok());
    saved.insert("the 500th".into());
    for task in &tasks {
        let refused = task.create(search("the 501st".into(), "demo")).await.expect("create");
        assert_eq!(refused, Err(NotSaved::Full { project: "demo".into() }));
    }
    assert_eq!((listed(0).await, listed(1).await), (saved.clone(), saved));
    let one = tasks[0].list(Some("demo")).await.expect("list").remove(0);
    assert!(tasks[1].delete(&one.id).await.expect("delete"));
    assert!(!tasks[0].delete(&one.id).await.expect("delete"), "deleted once");
    assert!(tasks[0].create(search("after a delete".into(), "demo")).await.expect("create").is_ok(), "a place freed");
    assert!(
        tasks[0].create(search("s000".into(), "other")).await.expect("create").is_ok(),
        "names and places per project"
    );
}

#[tokio::test]
async fn in_chromium_save_this_search_keeps_the_range_as_typed_and_lists_it_as_a_link() {
    let app = spawn_app().await;
    let (status, _) = app.ingest(&json!({"env": "production", "message": "payment failed", "level": "error"})).await;
    assert_eq!(status, 202);
    let browser = common::browser::Browser::headless().await;
    browser.goto(&app.url("/login")).await;
    browser.fill("input[name=username]", "admin").await;
    browser.fill("input[name=password]", common::ADMIN_PASSWORD).await;
    browser.click_to_navigate("form button[type=submit]").await;
    let (_, found) = app.read("/api/v1/events?project=demo&env=production").await;
    let id = found["events"][0]["id"].as_str().expect("the event's id").to_string();
    // Reading one event of the search, its detail open.
    browser.goto(&app.url(&format!("/logs?project=demo&env=production&q=payment&from=now-2h&event={id}"))).await;

    browser.fill("form.save-search input[name=name]", "payments, 2 h").await;
    browser.click_to_navigate("form.save-search button[type=submit]").await;
    assert_eq!(
        browser.path().await,
        "/logs?project=demo&env=production&q=payment&from=now-2h",
        "back on the search, as saved"
    );
    assert_eq!(browser.texts("section.saved-searches ul.saved a").await, ["payments, 2 h"]);
    let listed = list(&app.logged_in_client().await, &app.base, "?project=demo").await;
    assert_eq!(
        (listed[0]["q"].as_str(), listed[0]["from"].as_str(), listed[0].get("to")),
        (Some("payment"), Some("now-2h"), None),
        "saved as the address had it"
    );

    // From another page of the project, the link opens the saved search.
    browser.goto(&app.url("/logs?project=demo&env=staging")).await;
    browser.click_to_navigate("section.saved-searches ul.saved a").await;
    assert_eq!(browser.path().await, "/logs?project=demo&env=production&q=payment&from=now-2h");
    assert_eq!(browser.texts("table.events tbody tr.event td.message").await, ["payment failed"]);
}
