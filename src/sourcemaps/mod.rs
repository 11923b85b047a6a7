//! Source maps (`../shared/spec/sourcemaps.md`): uploads kept by a [`MapStore`] (files under
//! `data_dir`, or S3), and applied when events are read — never at ingest, so an upload after
//! the error still helps, and fingerprints stay as ingest made them. [`SourceMaps`] is what the
//! web side holds: upload, list, delete, and [`SourceMaps::apply`] for a page of events.
//! `frames.rs` reads stack lines, `map.rs` one parsed map, `cache.rs` keeps parsed maps within a
//! memory bound.

mod cache;
pub mod frames;
pub mod map;
pub mod s3;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::{StreamExt as _, stream};
use serde_json::Value;

use self::cache::Cache;
use self::frames::{Frame, format_frame, parse_line, parse_location};
use self::map::{NotASourceMap, ParsedMap};
pub use self::store::{FileStore, Key, Listed, MapStore};
use crate::config::Config;
use crate::event::StoredEvent;

/// Where a Sentry event's `debug_meta.images` are kept in the stored event's `extra`: the
/// minified file's URL → its debug id.
pub const DEBUG_IDS_FIELD: &str = "debug_ids";
/// Distinct maps one read loads at most; frames of others stay as they are.
const MAX_MAPS_PER_READ: usize = 32;
/// Maps fetched from the store at once.
const PARALLEL_LOADS: usize = 4;
/// The longest release and file name accepted.
const MAX_NAME_BYTES: usize = 256;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    NotASourceMap(#[from] NotASourceMap),
    #[error("{0}")]
    BadName(String),
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    Created,
    Replaced,
}

/// The originals of one event's stack and location, where a map applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// The stack with every mapped frame rewritten (`at f (src:line:col)`), others as they were.
    pub stack_original: Option<String>,
    pub location_original: Option<String>,
    /// The stack's lines as the detail pane shows them: each with the source around it, when
    /// mapped and the map carries `sourcesContent`.
    pub lines: Vec<MappedLine>,
}

impl Mapped {
    /// The first mapped frame: where the error really is.
    pub fn top_frame(&self) -> Option<&str> {
        self.lines.iter().find(|line| line.mapped).map(|line| line.text.trim())
    }
}

/// One line of a mapped stack.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedLine {
    pub text: String,
    pub mapped: bool,
    /// (1-based line number, text, whether it is the frame's line).
    pub context: Vec<(u32, String, bool)>,
}

/// An event as the read API and the NDJSON export show it: as stored, with the originals of its
/// stack and location where a map applied.
#[derive(Debug, serde::Serialize)]
pub struct Shown<'a> {
    #[serde(flatten)]
    pub event: &'a StoredEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_original: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_original: Option<&'a str>,
}

impl<'a> Shown<'a> {
    pub fn new(event: &'a StoredEvent, mapped: Option<&'a Mapped>) -> Shown<'a> {
        Shown {
            event,
            stack_original: mapped.and_then(|m| m.stack_original.as_deref()),
            location_original: mapped.and_then(|m| m.location_original.as_deref()),
        }
    }

    /// The one-line JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.event.to_json())
    }
}

/// The uploaded maps and the parsed ones in memory.
pub struct SourceMaps {
    store: Arc<dyn MapStore>,
    cache: Cache,
    max_bytes: u64,
    max_files: u64,
    max_project_bytes: u64,
}

impl SourceMaps {
    pub fn new(store: Arc<dyn MapStore>, config: &Config) -> SourceMaps {
        let limits = &config.sourcemaps;
        SourceMaps {
            store,
            cache: Cache::new(usize::try_from(limits.cache_bytes).unwrap_or(usize::MAX)),
            max_bytes: limits.max_bytes,
            max_files: limits.max_files,
            max_project_bytes: limits.max_project_bytes,
        }
    }

    /// The largest upload accepted.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Checks and stores an uploaded map, and the debug id it carries.
    pub async fn upload(&self, key: Key, bytes: Vec<u8>) -> Result<Uploaded, UploadError> {
        check_names(&key)?;
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(UploadError::TooLarge(format!("the map is over sourcemaps.max_bytes ({})", self.max_bytes)));
        }
        let (bytes, parsed) = tokio::task::spawn_blocking(move || {
            let parsed = ParsedMap::parse(&bytes);
            (bytes, parsed)
        })
        .await
        .context("the map parser stopped")?;
        let parsed = parsed?;
        let (files, stored_bytes) = self.store.usage(&key.project).await?;
        let replacing = self.store.list(&key.project, &key.release).await?.into_iter().find(|l| l.name == key.file);
        let (files, stored_bytes) = match &replacing {
            Some(old) => (files.saturating_sub(1), stored_bytes.saturating_sub(old.size)),
            None => (files, stored_bytes),
        };
        if files + 1 > self.max_files {
            return Err(UploadError::TooLarge(format!(
                "project `{}` holds {files} maps, the most sourcemaps.max_files allows; delete old releases' maps",
                key.project
            )));
        }
        if stored_bytes + size > self.max_project_bytes {
            return Err(UploadError::TooLarge(format!(
                "project `{}` would hold more than sourcemaps.max_project_bytes ({}) of maps",
                key.project, self.max_project_bytes
            )));
        }
        let replaced = self.store.put(&key, bytes).await?;
        if let Some(debug_id) = parsed.debug_id() {
            self.store.put_debug_id(&key.project, &debug_id, &key).await?;
        }
        self.cache.forget(&key);
        Ok(if replaced || replacing.is_some() { Uploaded::Replaced } else { Uploaded::Created })
    }

    pub async fn list(&self, project: &str, release: &str) -> anyhow::Result<Vec<Listed>> {
        self.store.list(project, release).await
    }

    /// `false` when there was no such map.
    pub async fn delete(&self, key: &Key) -> anyhow::Result<bool> {
        let deleted = self.store.delete(key).await?;
        self.cache.forget(key);
        Ok(deleted)
    }

    /// The originals of each event's stack and location, in order (`None` where no map applies).
    /// A map that cannot be read leaves its frames as they are (logged once here).
    pub async fn apply(&self, events: &[StoredEvent], with_context: bool) -> Vec<Option<Mapped>> {
        let debug_ids = self.debug_id_keys(events).await;
        let wanted = maps_wanted(events, &debug_ids);
        let loaded: HashMap<Key, Arc<ParsedMap>> = stream::iter(wanted)
            .map(|key| async move { self.load(&key).await.map(|map| (key, map)) })
            .buffer_unordered(PARALLEL_LOADS)
            .filter_map(|found| async move { found })
            .collect()
            .await;
        if loaded.is_empty() {
            return vec![None; events.len()];
        }
        events.iter().map(|event| map_event(event, &loaded, &debug_ids, with_context)).collect()
    }

    /// The maps recorded for the debug ids the events carry.
    async fn debug_id_keys(&self, events: &[StoredEvent]) -> HashMap<(String, String), Key> {
        let mut found = HashMap::new();
        let ids: HashSet<(String, String)> = events
            .iter()
            .flat_map(|event| debug_ids(event).into_values().map(|id| (event.project.clone(), id.to_string())))
            .take(MAX_MAPS_PER_READ)
            .collect();
        for (project, id) in ids {
            if let Some(key) = self.cache.debug_id(&project, &id, || self.store.debug_id(&project, &id)).await {
                found.insert((project, id), key);
            }
        }
        found
    }

    /// The parsed map at `key`, from the cache or the store; `None` when there is none or it
    /// cannot be read.
    async fn load(&self, key: &Key) -> Option<Arc<ParsedMap>> {
        self.cache
            .map(key, || async {
                let Some(bytes) = self.store.get(key).await? else { return Ok(None) };
                let parsed = tokio::task::spawn_blocking(move || ParsedMap::parse(&bytes))
                    .await
                    .context("the map parser stopped")?
                    .with_context(|| format!("the stored map {}/{}/{}", key.project, key.release, key.file))?;
                Ok(Some(parsed))
            })
            .await
    }

    /// Deletes the project's maps uploaded before `before_unix_s` (its retention); returns how
    /// many went.
    pub async fn prune(&self, project: &str, before_unix_s: i64) -> anyhow::Result<usize> {
        let mut deleted = 0;
        for (key, uploaded) in self.store.list_project(project).await? {
            if uploaded < before_unix_s && self.delete(&key).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Whether the project holds any map (remembered for a few seconds): pages that would read
    /// events only to map them ask this first.
    pub async fn project_has_maps(&self, project: &str) -> bool {
        self.cache.has_maps(project, || self.store.has_maps(project)).await
    }

    /// The first mapped frame of each event (`None` where no map applies): the issues page's
    /// "where it really is".
    pub async fn top_frames(&self, events: &[StoredEvent]) -> Vec<Option<String>> {
        let mapped = self.apply(events, false).await;
        mapped.into_iter().map(|m| m.and_then(|m| m.top_frame().map(str::to_string))).collect()
    }

    /// The estimated bytes and number of the parsed maps held.
    pub fn cache_usage(&self) -> (usize, usize) {
        self.cache.usage()
    }
}

/// The keys the events' frames name (their debug id's map, and their release and file), at
/// most [`MAX_MAPS_PER_READ`].
fn maps_wanted(events: &[StoredEvent], debug_keys: &HashMap<(String, String), Key>) -> Vec<Key> {
    let mut wanted: Vec<Key> = Vec::new();
    let mut seen = HashSet::new();
    for event in events {
        for (by_release, by_debug_id) in frame_keys(event, debug_keys) {
            for key in by_debug_id.into_iter().chain(by_release) {
                if wanted.len() < MAX_MAPS_PER_READ && seen.insert(key.clone()) {
                    wanted.push(key);
                }
            }
        }
    }
    wanted
}

/// A release and file name must be short and printable; the file has no `/`.
fn check_names(key: &Key) -> Result<(), UploadError> {
    for (what, name) in [("release", &key.release), ("file", &key.file)] {
        if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
            return Err(UploadError::BadName(format!(
                "the {what} must be 1 to {MAX_NAME_BYTES} bytes without control characters"
            )));
        }
    }
    if key.file.contains('/') || key.file == "." || key.file == ".." {
        return Err(UploadError::BadName("the file is the last segment of the minified file's URL: no `/`".into()));
    }
    Ok(())
}

/// The debug ids a stored Sentry event carries: minified file URL → debug id.
fn debug_ids(event: &StoredEvent) -> HashMap<&str, &str> {
    let Some(Value::Object(ids)) = event.extra.as_ref().and_then(|extra| extra.get(DEBUG_IDS_FIELD)) else {
        return HashMap::new();
    };
    ids.iter().filter_map(|(url, id)| Some((url.as_str(), id.as_str()?))).collect()
}

/// The frames of an event's stack and location, each with the map its release and file name
/// and the map its debug id names.
fn frame_keys(event: &StoredEvent, debug_keys: &HashMap<(String, String), Key>) -> Vec<(Option<Key>, Option<Key>)> {
    let ids = debug_ids(event);
    let frames = event.stack.iter().flat_map(|stack| stack.lines().filter_map(parse_line));
    let location = event.location.as_deref().and_then(parse_location);
    frames.chain(location).map(|frame| keys_of(event, &frame, &ids, debug_keys)).collect()
}

fn keys_of(
    event: &StoredEvent,
    frame: &Frame<'_>,
    ids: &HashMap<&str, &str>,
    debug_keys: &HashMap<(String, String), Key>,
) -> (Option<Key>, Option<Key>) {
    let by_release = event.release.as_ref().map(|release| Key {
        project: event.project.clone(),
        release: release.clone(),
        file: frame.file().to_string(),
    });
    let by_debug_id = ids
        .iter()
        .find(|(url, _)| **url == frame.url || frames::file_of(url) == frame.file())
        .and_then(|(_, id)| debug_keys.get(&(event.project.clone(), id.to_string())).cloned());
    (by_release, by_debug_id)
}

/// One event through the loaded maps: the debug id's map first, else its release's.
fn map_event(
    event: &StoredEvent,
    maps: &HashMap<Key, Arc<ParsedMap>>,
    debug_keys: &HashMap<(String, String), Key>,
    with_context: bool,
) -> Option<Mapped> {
    let ids = debug_ids(event);
    let map_of = |frame: &Frame<'_>| {
        let (by_release, by_debug_id) = keys_of(event, frame, &ids, debug_keys);
        by_debug_id.and_then(|k| maps.get(&k)).or_else(|| by_release.and_then(|k| maps.get(&k))).cloned()
    };
    let map_frame = |frame: &Frame<'_>, with_context: bool| {
        let original = map_of(frame)?.lookup(frame.line, frame.column, with_context)?;
        let function = original.function.as_deref().or(frame.function);
        let text = format_frame(frame.indent, function, &original.source, original.line, original.column);
        let context = original.context.into_iter().map(|(n, line)| (n, line, n == original.line)).collect::<Vec<_>>();
        Some((text, context))
    };
    let mut mapped = Mapped::default();
    if let Some(stack) = &event.stack {
        let mut any = false;
        for line in stack.lines() {
            match parse_line(line).and_then(|frame| map_frame(&frame, with_context)) {
                Some((text, context)) => {
                    any = true;
                    mapped.lines.push(MappedLine { text, mapped: true, context });
                }
                None => mapped.lines.push(MappedLine { text: line.to_string(), mapped: false, context: Vec::new() }),
            }
        }
        if any {
            mapped.stack_original = Some(mapped.lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n"));
        } else {
            mapped.lines.clear();
        }
    }
    // A location keeps its own form, `file:line:col`.
    mapped.location_original = event.location.as_deref().and_then(parse_location).and_then(|frame| {
        let original = map_of(&frame)?.lookup(frame.line, frame.column, false)?;
        Some(format!("{}:{}:{}", original.source, original.line, original.column))
    });
    (mapped.stack_original.is_some() || mapped.location_original.is_some()).then_some(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Level;
    use serde_json::json;
    use time::OffsetDateTime;

    fn maps(dir: &std::path::Path) -> SourceMaps {
        let config = Config::from_sources(include_str!("../../config.toml"), &[]).expect("config");
        SourceMaps::new(Arc::new(FileStore::open(dir).expect("store")), &config)
    }

    fn event(release: Option<&str>, stack: &str, location: Option<&str>) -> StoredEvent {
        let now = OffsetDateTime::now_utc();
        let mut event = StoredEvent::bare(
            crate::event::new_id(now),
            ("demo", "production"),
            (now, now),
            Level::Error,
            "Error: x".into(),
        );
        event.release = release.map(str::to_string);
        event.stack = Some(stack.to_string());
        event.location = location.map(str::to_string);
        event
    }

    fn key(release: &str) -> Key {
        Key { project: "demo".into(), release: release.into(), file: "app.js".into() }
    }

    #[tokio::test]
    async fn chrome_and_firefox_frames_of_the_maps_release_are_mapped_and_others_left_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let maps = maps(dir.path());
        assert_eq!(maps.upload(key("web@1"), map::tests::small_map()).await.expect("upload"), Uploaded::Created);
        let chrome =
            "Error: x\n    at e (https://shop.example/assets/app.js?v=1:1:20)\n    at https://cdn.example/other.js:1:5";
        let firefox = "e@https://shop.example/assets/app.js:1:20\n@https://cdn.example/other.js:1:5";
        let events = [
            event(Some("web@1"), chrome, Some("https://shop.example/assets/app.js:1:20")),
            event(Some("web@1"), firefox, None),
            event(Some("web@2"), chrome, None),
            event(None, chrome, None),
        ];
        let mapped = maps.apply(&events, true).await;
        let first = mapped[0].as_ref().expect("mapped");
        assert_eq!(
            first.stack_original.as_deref(),
            Some("Error: x\n    at explode (src/a.js:3:9)\n    at https://cdn.example/other.js:1:5")
        );
        assert_eq!(first.location_original.as_deref(), Some("src/a.js:3:9"));
        assert_eq!(first.top_frame(), Some("at explode (src/a.js:3:9)"));
        assert!(first.lines[1].context.contains(&(3, "  throw new Error('x');".into(), true)));
        let second = mapped[1].as_ref().and_then(|m| m.stack_original.as_deref());
        assert_eq!(second, Some("at explode (src/a.js:3:9)\n@https://cdn.example/other.js:1:5"));
        assert_eq!((&mapped[2], &mapped[3]), (&None, &None), "another release, and none, are not mapped");

        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert_eq!(maps.prune("demo", now - 60).await.expect("prune"), 0, "uploaded within the retention");
        assert!(maps.delete(&key("web@1")).await.expect("delete"));
        assert_eq!(maps.apply(&events[..1], false).await, [None], "deleted: not applied any more");
    }

    #[tokio::test]
    async fn a_sentry_events_debug_id_finds_its_map_whatever_the_release() {
        let dir = tempfile::tempdir().expect("dir");
        let maps = maps(dir.path());
        let mut with_id: Value = serde_json::from_slice(&map::tests::small_map()).expect("json");
        with_id["debugId"] = json!("c1ab7c7e-1ad8-4b6a-9a36-c0ae1f5b2e34");
        let bytes = serde_json::to_vec(&with_id).expect("json");
        maps.upload(key("build-17"), bytes).await.expect("upload");
        let mut sentry = event(Some("web@9"), "at e (https://shop.example/assets/app.js:1:20)", None);
        let ids = json!({"https://shop.example/assets/app.js": "c1ab7c7e-1ad8-4b6a-9a36-c0ae1f5b2e34"});
        sentry.extra = Some([(DEBUG_IDS_FIELD.to_string(), ids)].into_iter().collect());
        let mapped = maps.apply(&[sentry], false).await;
        let stack = mapped[0].as_ref().and_then(|m| m.stack_original.as_deref());
        assert_eq!(stack, Some("at explode (src/a.js:3:9)"));
    }

    #[tokio::test]
    async fn bad_names_and_maps_over_the_limits_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let maps = maps(dir.path());
        let refused = |result: Result<Uploaded, UploadError>| result.err().map(|e| e.to_string()).unwrap_or_default();
        let bad = Key { file: "a/b.js".into(), ..key("1") };
        assert!(refused(maps.upload(bad, map::tests::small_map()).await).contains("no `/`"));
        let bad = Key { release: "\n".into(), ..key("1") };
        assert!(refused(maps.upload(bad, map::tests::small_map()).await).contains("control characters"));
        let small = SourceMaps { max_files: 1, ..maps };
        small.upload(key("1"), map::tests::small_map()).await.expect("the first");
        assert_eq!(small.upload(key("1"), map::tests::small_map()).await.expect("replaced"), Uploaded::Replaced);
        assert!(refused(small.upload(key("2"), map::tests::small_map()).await).contains("sourcemaps.max_files"));
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert_eq!(small.prune("demo", now + 60).await.expect("prune"), 1, "older than the retention");
        assert!(small.list("demo", "1").await.expect("list").is_empty());
    }
}
