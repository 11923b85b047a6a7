//! Where uploaded maps are kept: the [`MapStore`] trait, [`Key`] (project, release, file) and
//! its encoding into one path or object key, and [`FileStore`], the maps as files under
//! `data_dir/sourcemaps/` (the embedded store). `s3.rs` keeps them in a bucket instead.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use async_trait::async_trait;
use serde::Serialize;

/// One uploaded map: the release it belongs to and the minified file's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub project: String,
    pub release: String,
    pub file: String,
}

/// A stored map as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    /// RFC 3339, UTC.
    pub uploaded_at: String,
}

/// The maps' storage: the same layout on disk and in a bucket, `maps/<project>/<release>/<file>`
/// and `debug-ids/<project>/<debug id>` (which names the map's release and file), each part
/// [`encode`]d.
#[async_trait]
pub trait MapStore: Send + Sync {
    /// Stores `bytes` under `key`; `true` when it replaced a map.
    async fn put(&self, key: &Key, bytes: Vec<u8>) -> anyhow::Result<bool>;
    /// The map, or `None` when there is none.
    async fn get(&self, key: &Key) -> anyhow::Result<Option<Vec<u8>>>;
    /// The maps of a release, by name.
    async fn list(&self, project: &str, release: &str) -> anyhow::Result<Vec<Listed>>;
    /// How many maps the project holds and their bytes.
    async fn usage(&self, project: &str) -> anyhow::Result<(u64, u64)>;
    /// Every map of the project, each with its key and upload time (Unix seconds).
    async fn list_project(&self, project: &str) -> anyhow::Result<Vec<(Key, i64)>>;
    /// Whether the project holds any map.
    async fn has_maps(&self, project: &str) -> anyhow::Result<bool> {
        Ok(self.usage(project).await?.0 > 0)
    }
    /// `false` when there was none.
    async fn delete(&self, key: &Key) -> anyhow::Result<bool>;
    /// Records that `debug_id` is the map at `key`.
    async fn put_debug_id(&self, project: &str, debug_id: &str, key: &Key) -> anyhow::Result<()>;
    /// The map a debug id was recorded for.
    async fn debug_id(&self, project: &str, debug_id: &str) -> anyhow::Result<Option<Key>>;
}

/// A name as one path segment: letters, digits, `-`, `_` and `.` kept (a leading `.` is not),
/// every other byte `%XX`. Nothing encoded is `.`, `..` or holds a `/`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, byte) in name.bytes().enumerate() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_') || (byte == b'.' && i > 0) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The inverse of [`encode`].
pub fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `maps/<project>/<release>/`: a release's maps (a path under the store's root).
pub fn release_path(project: &str, release: &str) -> String {
    format!("maps/{}/{}/", encode(project), encode(release))
}

/// `maps/<project>/<release>/<file>`.
pub fn map_path(key: &Key) -> String {
    format!("{}{}", release_path(&key.project, &key.release), encode(&key.file))
}

/// `debug-ids/<project>/<debug id>`.
pub fn debug_id_path(project: &str, debug_id: &str) -> String {
    format!("debug-ids/{}/{}", encode(project), encode(debug_id))
}

/// What a debug id's record holds: the release and the file, one per line.
pub fn debug_id_record(key: &Key) -> String {
    format!("{}\n{}", encode(&key.release), encode(&key.file))
}

/// The key a debug id's record names.
pub fn read_debug_id_record(project: &str, record: &str) -> Option<Key> {
    let (release, file) = record.split_once('\n')?;
    Some(Key { project: project.to_string(), release: decode(release)?, file: decode(file)? })
}

/// The maps as files under a directory (`data_dir/sourcemaps`); each write goes to a temporary
/// file, is synced, then renamed over the old one, so a reader never sees half a map.
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub fn open(data_dir: &Path) -> anyhow::Result<FileStore> {
        let root = data_dir.join("sourcemaps");
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        Ok(FileStore { root })
    }

    async fn write(&self, relative: &str, bytes: Vec<u8>) -> anyhow::Result<bool> {
        let path = self.root.join(relative);
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().context("a map's path has a directory")?;
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let existed = path.exists();
            let temporary = path.with_extension(format!("upload-{}", rand::random::<u64>()));
            let written = (|| {
                use std::io::Write as _;
                let mut file = std::fs::File::create(&temporary)?;
                file.write_all(&bytes)?;
                file.sync_all()?;
                std::fs::rename(&temporary, &path)
            })();
            if let Err(error) = written {
                let _ = std::fs::remove_file(&temporary);
                return Err(error).with_context(|| format!("writing {}", path.display()));
            }
            Ok(existed)
        })
        .await
        .context("the map writer stopped")?
    }

    async fn read(&self, relative: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let path = self.root.join(relative);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// The entries of a directory with their metadata and full paths; none when it does not exist.
fn entries_of(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf, std::fs::Metadata)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("listing {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = entry.metadata().with_context(|| format!("reading {name}'s metadata"))?;
        found.push((name, entry.path(), metadata));
    }
    Ok(found)
}

/// The finished files of a directory (not the temporary ones of an upload in progress), with
/// their size and modification time.
fn files_in(dir: &Path) -> anyhow::Result<Vec<(String, std::fs::Metadata)>> {
    let entries = entries_of(dir)?.into_iter();
    Ok(entries
        .filter(|(name, _, metadata)| metadata.is_file() && !name.contains(".upload-"))
        .map(|(name, _, metadata)| (name, metadata))
        .collect())
}

/// Every map under a project's directory: (release segment, file segment, metadata).
fn project_files(dir: &Path) -> anyhow::Result<Vec<(String, String, std::fs::Metadata)>> {
    let mut found = Vec::new();
    for (release, path, metadata) in entries_of(dir)? {
        if metadata.is_dir() {
            found.extend(files_in(&path)?.into_iter().map(|(file, metadata)| (release.clone(), file, metadata)));
        }
    }
    Ok(found)
}

#[async_trait]
impl MapStore for FileStore {
    async fn put(&self, key: &Key, bytes: Vec<u8>) -> anyhow::Result<bool> {
        self.write(&map_path(key), bytes).await
    }

    async fn get(&self, key: &Key) -> anyhow::Result<Option<Vec<u8>>> {
        self.read(&map_path(key)).await
    }

    async fn list(&self, project: &str, release: &str) -> anyhow::Result<Vec<Listed>> {
        let dir = self.root.join(release_path(project, release));
        let files = tokio::task::spawn_blocking(move || files_in(&dir)).await.context("listing maps")??;
        let mut listed: Vec<Listed> = files
            .into_iter()
            .filter_map(|(name, metadata)| {
                let uploaded_at = time::OffsetDateTime::from(metadata.modified().ok()?);
                Some(Listed {
                    name: decode(&name)?,
                    size: metadata.len(),
                    uploaded_at: crate::event::timestamp_format::format(uploaded_at),
                })
            })
            .collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    async fn usage(&self, project: &str) -> anyhow::Result<(u64, u64)> {
        let dir = self.root.join("maps").join(encode(project));
        let files = tokio::task::spawn_blocking(move || project_files(&dir)).await.context("counting maps")??;
        Ok((files.len() as u64, files.iter().map(|(_, _, metadata)| metadata.len()).sum()))
    }

    async fn list_project(&self, project: &str) -> anyhow::Result<Vec<(Key, i64)>> {
        let dir = self.root.join("maps").join(encode(project));
        let files = tokio::task::spawn_blocking(move || project_files(&dir)).await.context("listing maps")??;
        Ok(files
            .into_iter()
            .filter_map(|(release, file, metadata)| {
                let key = Key { project: project.to_string(), release: decode(&release)?, file: decode(&file)? };
                Some((key, time::OffsetDateTime::from(metadata.modified().ok()?).unix_timestamp()))
            })
            .collect())
    }

    async fn delete(&self, key: &Key) -> anyhow::Result<bool> {
        let path = self.root.join(map_path(key));
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error).with_context(|| format!("deleting {}", path.display())),
        }
    }

    async fn put_debug_id(&self, project: &str, debug_id: &str, key: &Key) -> anyhow::Result<()> {
        self.write(&debug_id_path(project, debug_id), debug_id_record(key).into_bytes()).await.map(|_| ())
    }

    async fn debug_id(&self, project: &str, debug_id: &str) -> anyhow::Result<Option<Key>> {
        let record = self.read(&debug_id_path(project, debug_id)).await?;
        Ok(record.and_then(|r| read_debug_id_record(project, &String::from_utf8_lossy(&r))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_encode_to_one_safe_segment_and_back() {
        for name in ["web@1.4.2", "app.3f2a91c4.js", "..", ".", "a/b", "résumé", "%41", ""] {
            let encoded = encode(name);
            assert!(!encoded.contains('/') && encoded != "." && encoded != "..", "{name:?} → {encoded:?}");
            assert_eq!(decode(&encoded).as_deref(), Some(name));
        }
        assert_eq!(encode("web@1.4.2"), "web%401.4.2");
    }

    #[tokio::test]
    async fn files_are_put_listed_read_and_deleted() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FileStore::open(dir.path()).expect("store");
        let key = Key { project: "demo".into(), release: "web@1".into(), file: "app.js".into() };
        assert!(!store.put(&key, b"{}".to_vec()).await.expect("put"), "new");
        assert!(store.put(&key, b"{ }".to_vec()).await.expect("put"), "replaced");
        assert_eq!(store.get(&key).await.expect("get").as_deref(), Some(&b"{ }"[..]));
        let listed = store.list("demo", "web@1").await.expect("list");
        assert_eq!(listed.iter().map(|l| (l.name.as_str(), l.size)).collect::<Vec<_>>(), [("app.js", 3)]);
        assert_eq!(store.usage("demo").await.expect("usage"), (1, 3));
        let all = store.list_project("demo").await.expect("all");
        assert_eq!(all.iter().map(|(k, _)| k).collect::<Vec<_>>(), [&key]);
        store.put_debug_id("demo", "a-b", &key).await.expect("debug id");
        assert_eq!(store.debug_id("demo", "a-b").await.expect("read"), Some(key.clone()));
        assert!(store.delete(&key).await.expect("delete"));
        assert!(!store.delete(&key).await.expect("delete"));
        assert_eq!(store.get(&key).await.expect("get"), None);
        assert!(store.list("demo", "other").await.expect("list").is_empty());
    }
}
