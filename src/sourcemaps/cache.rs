//! Parsed maps kept for the next read, within a bound on their (estimated) memory: the least
//! recently used go first, a map larger than the whole bound is used once and not kept, and a
//! kept map is read again after [`MAP_TTL`].
//! Absent maps and debug ids are remembered briefly, so a page of events whose release has no
//! map does not ask the store again for each event; this process forgets them on an upload, other
//! tasks after [`MISS_TTL`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::map::ParsedMap;
use super::store::Key;

/// How long a parsed map is used before it is read again: another task may have replaced or
/// deleted it (this task forgets at once what it uploaded or deleted itself).
pub const MAP_TTL: Duration = Duration::from_secs(60);
/// How long "no map here" is believed.
pub const MISS_TTL: Duration = Duration::from_secs(5);
/// How long a debug id's map is believed (a new upload with the same id may move it).
const DEBUG_ID_TTL: Duration = Duration::from_secs(60);
/// Debug ids remembered at most; past it they are all forgotten.
const MAX_DEBUG_IDS: usize = 10_000;
/// Misses remembered at most; past it they are all forgotten.
const MAX_MISSES: usize = 10_000;

pub struct Cache {
    limit_bytes: usize,
    inner: Mutex<Inner>,
}

/// A parsed map, when it was last used (a tick) and when it was read.
struct Kept {
    map: Arc<ParsedMap>,
    used: u64,
    read_at: Instant,
}

#[derive(Default)]
struct Inner {
    maps: HashMap<Key, Kept>,
    bytes: usize,
    tick: u64,
    misses: HashMap<Key, Instant>,
    debug_ids: HashMap<(String, String), (Option<Key>, Instant)>,
    /// Per project: whether it holds any map, and when that was asked.
    has_maps: HashMap<String, (bool, Instant)>,
}

impl Cache {
    pub fn new(limit_bytes: usize) -> Cache {
        Cache { limit_bytes, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding it leaves only a cache behind: use it as it is.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The map at `key`: kept, or loaded by `load` (then kept if it fits).
    pub async fn map<F, Fut>(&self, key: &Key, load: F) -> Option<Arc<ParsedMap>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<ParsedMap>>>,
    {
        {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(kept) = inner.maps.get_mut(key).filter(|kept| kept.read_at.elapsed() < MAP_TTL) {
                kept.used = tick;
                return Some(Arc::clone(&kept.map));
            }
            if inner.misses.get(key).is_some_and(|at| at.elapsed() < MISS_TTL) {
                return None;
            }
        }
        let loaded = match load().await {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "a source map could not be read; frames stay minified");
                None
            }
        };
        let mut inner = self.lock();
        let Some(map) = loaded else {
            if inner.misses.len() >= MAX_MISSES {
                inner.misses.clear();
            }
            inner.misses.insert(key.clone(), Instant::now());
            return None;
        };
        let map = Arc::new(map);
        if map.bytes <= self.limit_bytes {
            inner.tick += 1;
            let tick = inner.tick;
            let kept = Kept { map: Arc::clone(&map), used: tick, read_at: Instant::now() };
            if let Some(old) = inner.maps.insert(key.clone(), kept) {
                inner.bytes -= old.map.bytes;
            }
            inner.bytes += map.bytes;
            inner.evict(self.limit_bytes);
        }
        Some(map)
    }

    /// The map a debug id names: remembered, or asked of `read`.
    pub async fn debug_id<F, Fut>(&self, project: &str, id: &str, read: F) -> Option<Key>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<Key>>>,
    {
        let cache_key = (project.to_string(), id.to_string());
        if let Some((key, at)) = self.lock().debug_ids.get(&cache_key) {
            let ttl = if key.is_some() { DEBUG_ID_TTL } else { MISS_TTL };
            if at.elapsed() < ttl {
                return key.clone();
            }
        }
        let key = match read().await {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "a debug id's map could not be looked up");
                None
            }
        };
        let mut inner = self.lock();
        if inner.debug_ids.len() >= MAX_DEBUG_IDS {
            inner.debug_ids.clear();
        }
        inner.debug_ids.insert(cache_key, (key.clone(), Instant::now()));
        key
    }

    /// Whether the project holds any map: remembered for [`MISS_TTL`], or asked of `read`
    /// (an error counts as yes: the maps are then looked for and the error logged there).
    pub async fn has_maps<F, Fut>(&self, project: &str, read: F) -> bool
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<bool>>,
    {
        if let Some((has, at)) = self.lock().has_maps.get(project) {
            if at.elapsed() < MISS_TTL {
                return *has;
            }
        }
        let has = read().await.unwrap_or(true);
        self.lock().has_maps.insert(project.to_string(), (has, Instant::now()));
        has
    }

    /// Drops what is kept about `key` (it was uploaded or deleted), and every debug id's record.
    pub fn forget(&self, key: &Key) {
        let mut inner = self.lock();
        if let Some(old) = inner.maps.remove(key) {
            inner.bytes -= old.map.bytes;
        }
        inner.misses.remove(key);
        inner.debug_ids.clear();
        inner.has_maps.remove(&key.project);
    }

    /// (estimated bytes, maps) held.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.bytes, inner.maps.len())
    }
}

impl Inner {
    fn evict(&mut self, limit_bytes: usize) {
        while self.bytes > limit_bytes {
            let Some(oldest) = self.maps.iter().min_by_key(|(_, kept)| kept.used).map(|(key, _)| key.clone()) else {
                return;
            };
            if let Some(old) = self.maps.remove(&oldest) {
                self.bytes -= old.map.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> ParsedMap {
        ParsedMap::parse(br#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA"}"#).expect("map")
    }

    fn key(file: &str) -> Key {
        Key { project: "demo".into(), release: "1".into(), file: file.into() }
    }

    #[tokio::test]
    async fn the_least_recently_used_map_goes_when_the_bound_is_reached() {
        let size = map().bytes;
        let cache = Cache::new(size * 2);
        for file in ["a", "b"] {
            assert!(cache.map(&key(file), || async { Ok(Some(map())) }).await.is_some());
        }
        // `a` used again: `b` is now the oldest.
        assert!(cache.map(&key("a"), || async { anyhow::bail!("not loaded again") }).await.is_some());
        assert!(cache.map(&key("c"), || async { Ok(Some(map())) }).await.is_some());
        assert_eq!(cache.usage(), (size * 2, 2));
        assert!(cache.map(&key("a"), || async { anyhow::bail!("kept") }).await.is_some());
        assert!(cache.map(&key("b"), || async { Ok(None) }).await.is_none(), "b was evicted, and is gone now");
        assert!(cache.map(&key("b"), || async { Ok(Some(map())) }).await.is_none(), "the miss is remembered");
        cache.forget(&key("b"));
        assert!(cache.map(&key("b"), || async { Ok(Some(map())) }).await.is_some(), "until an upload");
    }

    #[tokio::test]
    async fn a_map_larger_than_the_bound_is_used_and_not_kept() {
        let cache = Cache::new(1);
        assert!(cache.map(&key("a"), || async { Ok(Some(map())) }).await.is_some());
        assert_eq!(cache.usage(), (0, 0));
    }
}
