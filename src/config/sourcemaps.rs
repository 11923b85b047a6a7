//! `[sourcemaps]`: uploaded source maps (`../shared/spec/sourcemaps.md`) — how large one may be,
//! how many a project may hold, how much memory the parsed ones may take, and where they live:
//! files under `data_dir`, or an S3 bucket every task of a CloudWatch deployment shares.

use serde::Deserialize;

use super::{Config, Problem, problem};

/// The largest `max_bytes` accepted: a map is read into memory whole.
const MAX_MAP_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SourcemapsConfig {
    /// One upload's limit: larger ones get 413.
    pub max_bytes: u64,
    /// The most maps one project may hold (all releases); an upload past it gets 413.
    pub max_files: u64,
    /// The most bytes of maps one project may hold.
    pub max_project_bytes: u64,
    /// The memory the parsed maps kept for reuse may take (estimated); least recently used go.
    pub cache_bytes: u64,
    /// Empty: files under `data_dir/sourcemaps`. Else the bucket every task reads and writes.
    pub s3_bucket: String,
    /// Put before every object key, e.g. `logboard/sourcemaps/`.
    pub s3_prefix: String,
    /// Empty: `cloudwatch.region`, else the AWS default chain.
    pub region: String,
    /// Empty: the real S3 endpoint (tests: moto's server, with path-style addresses).
    pub endpoint_url: String,
}

impl Default for SourcemapsConfig {
    fn default() -> Self {
        Self {
            max_bytes: 50 << 20,
            max_files: 2000,
            max_project_bytes: 5 << 30,
            cache_bytes: 256 << 20,
            s3_bucket: String::new(),
            s3_prefix: String::new(),
            region: String::new(),
            endpoint_url: String::new(),
        }
    }
}

impl SourcemapsConfig {
    /// The bucket's region: its own, else CloudWatch's, else (empty) the SDK's chain.
    pub fn region<'a>(&'a self, config: &'a Config) -> &'a str {
        if self.region.is_empty() { &config.cloudwatch.region } else { &self.region }
    }
}

/// S3's rule for bucket names (general purpose buckets).
fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

pub(super) fn validate(config: &Config, problems: &mut Vec<Problem>) {
    let maps = &config.sourcemaps;
    if maps.max_bytes == 0 || maps.max_bytes > MAX_MAP_BYTES {
        problems.push(problem("sourcemaps.max_bytes", format!("must be between 1 and {MAX_MAP_BYTES}")));
    }
    if maps.max_files == 0 {
        problems.push(problem("sourcemaps.max_files", "must be greater than 0"));
    }
    if maps.max_project_bytes < maps.max_bytes {
        problems.push(problem("sourcemaps.max_project_bytes", "must be at least sourcemaps.max_bytes"));
    }
    if maps.cache_bytes < 1 << 20 {
        problems.push(problem("sourcemaps.cache_bytes", "must be at least 1048576 (1 MiB)"));
    }
    if !maps.s3_bucket.is_empty() && !valid_bucket_name(&maps.s3_bucket) {
        problems.push(problem(
            "sourcemaps.s3_bucket",
            "must be 3 to 63 lower-case letters, digits, `.` or `-`, starting and ending with a letter or digit",
        ));
    }
    if !(maps.endpoint_url.is_empty()
        || maps.endpoint_url.starts_with("http://")
        || maps.endpoint_url.starts_with("https://"))
    {
        problems.push(problem("sourcemaps.endpoint_url", "must start with http:// or https://"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(toml: &str) -> Vec<String> {
        match Config::from_sources(&format!("{}\n{toml}", include_str!("../../config.toml")), &[]) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn maps_are_kept_on_disk_unless_a_bucket_is_named_and_bad_keys_are_named() {
        let config = Config::from_sources(include_str!("../../config.toml"), &[]).expect("config");
        assert_eq!((config.sourcemaps.max_bytes, config.sourcemaps.s3_bucket.as_str()), (50 << 20, ""));
        let found =
            problems("[sourcemaps]\nmax_bytes = 0\ns3_bucket = \"Not_A_Bucket\"\nendpoint_url = \"moto:5000\"\n");
        for key in ["sourcemaps.max_bytes", "sourcemaps.s3_bucket", "sourcemaps.endpoint_url"] {
            assert!(found.iter().any(|p| p.contains(key)), "{key}: {found:?}");
        }
        assert!(problems("[sourcemaps]\ns3_bucket = \"maps.example-1\"\n").is_empty());
        assert!(problems("[sourcemaps]\nunknown = 1\n").iter().any(|p| p.contains("unknown")));
    }
}
