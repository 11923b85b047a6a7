//! AWS CloudWatch Logs: reads through the SDK; writes go through the spool and the writer task.

use anyhow::bail;

use crate::config::Config;

pub struct CloudWatchStore;

impl CloudWatchStore {
    pub async fn open(_config: &Config) -> anyhow::Result<CloudWatchStore> {
        bail!("the CloudWatch backend is being built")
    }
}
