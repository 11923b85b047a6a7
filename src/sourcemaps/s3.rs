//! The maps in an S3 bucket (`[sourcemaps] s3_bucket`, under `s3_prefix`), so that every task
//! of a CloudWatch deployment sees every upload. The same layout as on disk ([`super::store`]).
//! Calls: HeadObject, PutObject, GetObject, ListObjectsV2, DeleteObject (deploy/ grants them).

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use super::store::{Key, Listed, MapStore, debug_id_path, debug_id_record, decode, map_path, read_debug_id_record};
use crate::config::Config;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A 50 MiB map takes a while to send.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

pub struct S3Store {
    client: Client,
    bucket: String,
    /// Put before every key (`s3_prefix`, with its `/` if it has one).
    prefix: String,
}

impl S3Store {
    /// A client from the AWS default chain with `[sourcemaps]`'s region and endpoint (path-style
    /// addressing when an endpoint is set: moto's server, or another S3-compatible store).
    pub async fn connect(config: &Config) -> S3Store {
        let maps = &config.sourcemaps;
        let shared = crate::aws::loader(maps.region(config), CONNECT_TIMEOUT, ATTEMPT_TIMEOUT).load().await;
        let mut s3 = aws_sdk_s3::config::Builder::from(&shared);
        if !maps.endpoint_url.is_empty() {
            s3 = s3.endpoint_url(&maps.endpoint_url).force_path_style(true);
        }
        S3Store {
            client: Client::from_conf(s3.build()),
            bucket: maps.s3_bucket.clone(),
            prefix: maps.s3_prefix.clone(),
        }
    }

    fn key(&self, relative: &str) -> String {
        format!("{}{relative}", self.prefix)
    }

    async fn exists(&self, key: &str) -> anyhow::Result<bool> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(error) => Err(error).with_context(|| format!("HeadObject {key}")),
        }
    }

    async fn read(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(object) => {
                let body = object.body.collect().await.with_context(|| format!("reading {key}"))?;
                Ok(Some(body.into_bytes().to_vec()))
            }
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(error) => Err(error).with_context(|| format!("GetObject {key}")),
        }
    }

    async fn write(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .with_context(|| format!("PutObject {key}"))?;
        Ok(())
    }

    /// Every object under `prefix`: (key without the store's prefix, size, last modified).
    async fn list_under(&self, prefix: &str) -> anyhow::Result<Vec<(String, u64, Option<time::OffsetDateTime>)>> {
        let mut found = Vec::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(self.key(prefix)).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("ListObjectsV2 {prefix}"))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else { continue };
                let modified = object
                    .last_modified()
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok());
                let size = object.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                found.push((key.to_string(), size, modified));
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl MapStore for S3Store {
    async fn put(&self, key: &Key, bytes: Vec<u8>) -> anyhow::Result<bool> {
        let object = self.key(&map_path(key));
        let existed = self.exists(&object).await?;
        self.write(&object, bytes).await?;
        Ok(existed)
    }

    async fn get(&self, key: &Key) -> anyhow::Result<Option<Vec<u8>>> {
        self.read(&self.key(&map_path(key))).await
    }

    async fn list(&self, project: &str, release: &str) -> anyhow::Result<Vec<Listed>> {
        let prefix = super::store::release_path(project, release);
        let mut listed: Vec<Listed> = self
            .list_under(&prefix)
            .await?
            .into_iter()
            .filter_map(|(key, size, modified)| {
                let name = decode(key.strip_prefix(&prefix)?)?;
                let uploaded_at = modified.map(crate::event::timestamp_format::format).unwrap_or_default();
                Some(Listed { name, size, uploaded_at })
            })
            .collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    async fn usage(&self, project: &str) -> anyhow::Result<(u64, u64)> {
        let objects = self.list_under(&format!("maps/{}/", super::store::encode(project))).await?;
        Ok((objects.len() as u64, objects.iter().map(|(_, size, _)| size).sum()))
    }

    async fn list_project(&self, project: &str) -> anyhow::Result<Vec<(Key, i64)>> {
        let prefix = format!("maps/{}/", super::store::encode(project));
        let objects = self.list_under(&prefix).await?;
        Ok(objects
            .into_iter()
            .filter_map(|(key, _, modified)| {
                let (release, file) = key.strip_prefix(&prefix)?.split_once('/')?;
                let key = Key { project: project.to_string(), release: decode(release)?, file: decode(file)? };
                Some((key, modified.map_or(0, |t| t.unix_timestamp())))
            })
            .collect())
    }

    async fn has_maps(&self, project: &str) -> anyhow::Result<bool> {
        let prefix = self.key(&format!("maps/{}/", super::store::encode(project)));
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .max_keys(1)
            .send()
            .await
            .with_context(|| format!("ListObjectsV2 {prefix}"))?;
        Ok(!page.contents().is_empty())
    }

    async fn delete(&self, key: &Key) -> anyhow::Result<bool> {
        let object = self.key(&map_path(key));
        if !self.exists(&object).await? {
            return Ok(false);
        }
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&object)
            .send()
            .await
            .with_context(|| format!("DeleteObject {object}"))?;
        Ok(true)
    }

    async fn put_debug_id(&self, project: &str, debug_id: &str, key: &Key) -> anyhow::Result<()> {
        self.write(&self.key(&debug_id_path(project, debug_id)), debug_id_record(key).into_bytes()).await
    }

    async fn debug_id(&self, project: &str, debug_id: &str) -> anyhow::Result<Option<Key>> {
        let record = self.read(&self.key(&debug_id_path(project, debug_id))).await?;
        Ok(record.and_then(|r| read_debug_id_record(project, &String::from_utf8_lossy(&r))))
    }
}
