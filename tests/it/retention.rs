//! Retention on CloudWatch, against moto: the groups logboard creates get the configured
//! retention policy (a project's own `retention_days` first), existing own groups with another
//! policy are corrected at start-up, 0 days removes the policy, and other groups are left alone.
//! (The embedded store's deletion is tested in `src/store/local/prune.rs`.)

use crate::common;

use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::Client;
use common::moto::{CloudWatchApp, Moto};
use logboard::config::Config;
use serde_json::json;

const SHIP_TIMEOUT: Duration = Duration::from_secs(30);

fn config(dir: &std::path::Path, endpoint: &str, days: &str) -> Config {
    common::test_config(
        dir,
        &[
            ("LOGBOARD__STORAGE__BACKEND", "cloudwatch"),
            ("LOGBOARD__CLOUDWATCH__ENDPOINT_URL", endpoint),
            ("LOGBOARD__CLOUDWATCH__REGION", "us-east-1"),
            ("LOGBOARD__RETENTION__DAYS", days),
        ],
    )
}

async fn create_group(client: &Client, group: &str, days: Option<i32>) {
    client.create_log_group().log_group_name(group).send().await.expect("CreateLogGroup");
    if let Some(days) = days {
        client.put_retention_policy().log_group_name(group).retention_in_days(days).send().await.expect("policy");
    }
}

/// The group's `retentionInDays` (`None`: kept for ever); panics if the group does not exist.
async fn retention_of(client: &Client, group: &str) -> Option<i32> {
    let page = client.describe_log_groups().log_group_name_prefix(group).send().await.expect("DescribeLogGroups");
    let found = page.log_groups().iter().find(|g| g.log_group_name() == Some(group));
    found.unwrap_or_else(|| panic!("no group {group}")).retention_in_days()
}

/// Waits until every group has the retention wanted (the comparison runs in the background).
async fn wait_for(client: &Client, wanted: &[(&str, Option<i32>)]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut found = Vec::new();
        for (group, _) in wanted {
            found.push((*group, retention_of(client, group).await));
        }
        if found == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "retention {found:?}, wanted {wanted:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn groups_logboard_creates_get_the_projects_retention_and_existing_own_groups_are_corrected() {
    let moto = Moto::start().await;
    let client = moto.client();
    // Before logboard starts: own groups with another policy and with none, and a group that
    // is not logboard's though it shares the prefix.
    create_group(&client, "/logboard/demo/staging", Some(7)).await;
    create_group(&client, "/logboard/demo/dev", None).await;
    create_group(&client, "/logboard/someone-else", Some(7)).await;

    let dir = tempfile::tempdir().expect("dir");
    let mut config = config(dir.path(), &moto.url, "3");
    config.projects[0].retention_days = Some(14);
    let app = CloudWatchApp::start(config, dir, &moto.url).await;
    let (status, _) = app.ingest(&json!({"env": "production", "message": "creates its group"})).await;
    assert_eq!(status, 202);
    app.wait_until_shipped(SHIP_TIMEOUT).await;

    wait_for(
        &client,
        &[
            ("/logboard/demo/production", Some(14)),
            ("/logboard/demo/staging", Some(14)),
            ("/logboard/demo/dev", Some(14)),
            ("/logboard/someone-else", Some(7)),
        ],
    )
    .await;
}

#[tokio::test]
async fn with_zero_days_an_own_groups_policy_is_removed_and_a_new_group_gets_none() {
    let moto = Moto::start().await;
    let client = moto.client();
    create_group(&client, "/logboard/demo/staging", Some(30)).await;
    let dir = tempfile::tempdir().expect("dir");
    let app = CloudWatchApp::start(config(dir.path(), &moto.url, "0"), dir, &moto.url).await;
    let (status, _) = app.ingest(&json!({"env": "production", "message": "kept for ever"})).await;
    assert_eq!(status, 202);
    app.wait_until_shipped(SHIP_TIMEOUT).await;
    wait_for(&client, &[("/logboard/demo/production", None), ("/logboard/demo/staging", None)]).await;
}
