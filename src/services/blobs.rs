//! Content-addressed blob storage for sticker images.
//!
//! A blob is named by the SHA-256 of its bytes (64 lowercase hex digits) and stored under the key
//! `<first two hex digits>/<sha>`, so no directory holds more than about 1/256 of them.
//! One interface over `object_store`: the local filesystem by default (`data/blobs`, created on
//! start) or any S3-compatible store (AWS S3, MinIO, R2, moto in tests), addressed path-style.
//!
//! Writes are atomic on both: S3 publishes an object whole, and `LocalFileSystem` writes a staging
//! file `<key>#<n>` and renames it into place (listings skip staging files). Names are checked
//! before they become keys, so no request can reach a path outside the store.
//!
//! Reads for serving (`cached_*`) go through a bounded in-memory cache of small blobs and of
//! the sizes of larger ones. A blob never changes under its name, so an entry is never stale;
//! a deletion through any handle of this store drops it. (Another instance's purge deletes
//! only images of removed packs, which are answered 451 before the bytes are looked at.)

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Where blobs live (`[blobs]` in the configuration).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BlobSettings {
    /// A directory on this machine (created if missing).
    Local { dir: String },
    /// An S3-compatible bucket, addressed path-style (`{endpoint}/{bucket}/{key}`).
    S3 {
        bucket: String,
        /// `None` means AWS itself; MinIO, R2 or moto need their URL here.
        endpoint: Option<String>,
        region: String,
        access_key_id: String,
        secret_access_key: SecretString,
        /// Plain HTTP to the endpoint (local MinIO or moto only).
        #[serde(default)]
        allow_http: bool,
    },
}

impl Default for BlobSettings {
    fn default() -> Self {
        BlobSettings::Local {
            dir: "data/blobs".into(),
        }
    }
}

/// Size of a stored blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
}

/// Handle to the blob store; cheap to clone (clones share the cache).
#[derive(Debug, Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    hot: Arc<HotBlobs>,
}

impl Blobs {
    /// Opens the configured store. Makes no network request: a wrong S3 setting shows up as an
    /// error on first use.
    pub fn from_settings(settings: &BlobSettings) -> anyhow::Result<Blobs> {
        let store: Arc<dyn ObjectStore> = match settings {
            BlobSettings::Local { dir } => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating blob directory {dir}"))?;
                // fsync: a blob is written before the row that names it commits, and that row
                // is durable, so the blob must be too.
                let local = LocalFileSystem::new_with_prefix(dir)
                    .with_context(|| format!("opening blob directory {dir}"))?
                    .with_fsync(true);
                Arc::new(local)
            }
            BlobSettings::S3 {
                bucket,
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
            } => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key.expose_secret())
                    .with_allow_http(*allow_http)
                    .with_virtual_hosted_style_request(false)
                    // The default retries for 3 minutes; a request waiting on a blob should
                    // fail (503) well before its client gives up.
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig::default(),
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(10),
                    });
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                let s3 = builder
                    .build()
                    .with_context(|| format!("configuring S3 blob store (bucket {bucket})"))?;
                Arc::new(s3)
            }
        };
        Ok(Blobs::from_store(store))
    }

    /// Wraps any store, e.g. `object_store::memory::InMemory` in other modules' tests.
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Blobs {
        Blobs {
            store,
            hot: Arc::new(HotBlobs::default()),
        }
    }

    /// SHA-256 of `bytes` as 64 lowercase hex digits: the blob's name.
    pub fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Stores bytes under their SHA-256 and returns it. Writes even when the blob exists
    /// (a dedup hit rewrites it, so a concurrent garbage collection cannot leave a row pointing at
    /// nothing: callers write the blob BEFORE committing the row that references it).
    pub async fn put(&self, bytes: Bytes) -> anyhow::Result<String> {
        let sha = Self::sha256_hex(&bytes);
        let key = key_of(&sha).context("a SHA-256 always makes a valid key")?;
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .with_context(|| format!("writing blob {sha}"))?;
        Ok(sha)
    }

    /// Whole blob, or `None` if absent or if `sha` is not 64 lowercase hex digits.
    pub async fn get(&self, sha: &str) -> anyhow::Result<Option<Bytes>> {
        let Some(key) = key_of(sha) else {
            return Ok(None);
        };
        let found = match self.store.get(&key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading blob {sha}")),
        };
        let bytes = found
            .bytes()
            .await
            .with_context(|| format!("reading blob {sha}"))?;
        Ok(Some(bytes))
    }

    /// Bytes `[start, end)` of a blob, or `None` if absent. An `end` past the blob's size is cut
    /// to it, as in HTTP; an empty range, or one starting at or past the size, is an error, so
    /// callers answering `Range:` requests check it against [`Blobs::stat`] first (416).
    pub async fn get_range(&self, sha: &str, range: Range<u64>) -> anyhow::Result<Option<Bytes>> {
        let Some(key) = key_of(sha) else {
            return Ok(None);
        };
        if range.start >= range.end {
            bail!("empty byte range {range:?} of blob {sha}");
        }
        match self.store.get_range(&key, range.clone()).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading bytes {range:?} of blob {sha}")),
        }
    }

    /// Size of a blob, or `None` if absent (or `sha` is malformed).
    pub async fn stat(&self, sha: &str) -> anyhow::Result<Option<Stat>> {
        let Some(key) = key_of(sha) else {
            return Ok(None);
        };
        Ok(self.head(&key).await?.map(|meta| Stat { size: meta.size }))
    }

    /// Deletes a blob; deleting an absent one (or a malformed name) is not an error.
    pub async fn delete(&self, sha: &str) -> anyhow::Result<()> {
        let Some(key) = key_of(sha) else {
            return Ok(());
        };
        self.delete_key(&key).await.map(|_| ())
    }

    /// Whole blob, from memory when it is there; kept there if it is small (see [`HOT_BYTES`]).
    pub async fn cached_get(&self, sha: &str) -> anyhow::Result<Option<Bytes>> {
        let Some(name) = name_of(sha) else {
            return Ok(None);
        };
        if let Some(bytes) = self.hot.get(&name).and_then(|(_, bytes)| bytes) {
            return Ok(Some(bytes));
        }
        let ticket = self.hot.ticket();
        let found = self.get(sha).await?;
        if let Some(bytes) = &found {
            let kept = (bytes.len() <= HOT_BLOB_MAX).then(|| bytes.clone());
            self.hot.put(name, bytes.len() as u64, kept, ticket);
        }
        Ok(found)
    }

    /// Size of a blob, from memory when known (then remembered), or `None` if absent.
    pub async fn cached_size(&self, sha: &str) -> anyhow::Result<Option<u64>> {
        let Some(name) = name_of(sha) else {
            return Ok(None);
        };
        if let Some((size, _)) = self.hot.get(&name) {
            return Ok(Some(size));
        }
        let ticket = self.hot.ticket();
        let found = self.stat(sha).await?;
        if let Some(stat) = found {
            self.hot.put(name, stat.size, None, ticket);
        }
        Ok(found.map(|s| s.size))
    }

    /// [`Blobs::get_range`], cut from memory when the blob is there.
    pub async fn cached_get_range(
        &self,
        sha: &str,
        range: Range<u64>,
    ) -> anyhow::Result<Option<Bytes>> {
        let held = name_of(sha).and_then(|name| self.hot.get(&name)?.1);
        match held {
            Some(bytes) if range.start < range.end && range.start < bytes.len() as u64 => {
                let end = range.end.min(bytes.len() as u64);
                Ok(Some(bytes.slice(range.start as usize..end as usize)))
            }
            _ => self.get_range(sha, range).await,
        }
    }

    /// Blobs and sizes held in memory now: (entries, bytes counted against [`HOT_BYTES`]).
    pub fn cached(&self) -> (usize, usize) {
        self.hot.usage()
    }

    /// Deletes blobs last modified before `older_than` whose sha is not in `referenced` (lowercase
    /// hex, as [`Blobs::put`] returns), at most `limit` per call, and returns how many went.
    /// Keys not of our `<ab>/<sha>` layout are left alone.
    ///
    /// A blob is written before its row commits, and rewritten on a dedup hit, so a blob still
    /// being referenced is younger than `older_than` (a grace period longer than any upload).
    /// Each candidate's age is read again just before it is deleted, so a rewrite during a long
    /// listing saves it; only a rewrite in the milliseconds between that check and the delete
    /// can still be lost.
    pub async fn collect_garbage(
        &self,
        referenced: &HashSet<String>,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<usize> {
        let mut deleted = 0;
        let mut listing = self.store.list(None);
        while deleted < limit {
            let Some(meta) = listing.try_next().await.context("listing blobs")? else {
                break;
            };
            let Some(sha) = sha_of(&meta.location) else {
                continue;
            };
            if referenced.contains(sha) || meta.last_modified >= older_than {
                continue;
            }
            let still_old = self
                .head(&meta.location)
                .await?
                .is_some_and(|now| now.last_modified < older_than);
            if still_old && self.delete_key(&meta.location).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    async fn head(&self, key: &Path) -> anyhow::Result<Option<ObjectMeta>> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading metadata of blob {key}")),
        }
    }

    /// `Ok(false)` if it was already gone (only the filesystem says so; S3 answers 204 anyway).
    async fn delete_key(&self, key: &Path) -> anyhow::Result<bool> {
        let deleted = self.store.delete(key).await;
        // After the delete: a read that raced it cannot put the bytes back (see `HotBlobs`).
        if let Some(name) = sha_of(key).and_then(name_of) {
            self.hot.forget(&name);
        }
        match deleted {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("deleting blob {key}")),
        }
    }
}

fn is_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The key of a blob, or `None` if `sha` is not 64 lowercase hex digits. Only checked names
/// become keys: nothing else can reach the filesystem or the bucket.
fn key_of(sha: &str) -> Option<Path> {
    is_sha(sha).then(|| Path::from_iter([&sha[..2], sha]))
}

/// A blob's name as 32 bytes (the cache's key), if `sha` is 64 lowercase hex digits.
fn name_of(sha: &str) -> Option<[u8; 32]> {
    let mut name = [0u8; 32];
    (is_sha(sha) && hex::decode_to_slice(sha, &mut name).is_ok()).then_some(name)
}

/// Memory the cache of served blobs may hold: 32 MiB keeps the hot stickers of a busy store
/// (most are 10-60 KiB, at most 512 KiB) while staying small beside the upload budget.
pub const HOT_BYTES: usize = 32 << 20;
/// Blobs larger than this (pack archives, mostly) are read from the store each time; only
/// their size is kept. The largest static sticker is 512 KiB.
const HOT_BLOB_MAX: usize = 512 << 10;
/// What an entry costs beyond its bytes (key, map slot, queue slot), counted in the budget so
/// that the many size-only entries are bounded too.
const HOT_ENTRY_COST: usize = 128;

/// Small blobs (and sizes of larger ones) recently served, within [`HOT_BYTES`], evicted by
/// the clock algorithm: an entry read since the hand last passed gets a second chance.
/// Every deletion bumps `generation`: a read that started before it cannot store what it read.
#[derive(Default)]
struct HotBlobs {
    inner: RwLock<HotInner>,
    generation: AtomicU64,
}

#[derive(Default)]
struct HotInner {
    entries: HashMap<[u8; 32], HotEntry>,
    /// The clock: every entry's name at least once, the hand at the front. Names of entries
    /// already gone are skipped, and dropped when they outnumber the live ones.
    clock: VecDeque<[u8; 32]>,
    used: usize,
}

struct HotEntry {
    size: u64,
    bytes: Option<Bytes>,
    read: AtomicBool,
}

impl HotEntry {
    fn cost(&self) -> usize {
        HOT_ENTRY_COST + self.bytes.as_ref().map_or(0, Bytes::len)
    }
}

impl std::fmt::Debug for HotBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, used) = self.usage();
        f.debug_struct("HotBlobs")
            .field("entries", &entries)
            .field("used", &used)
            .finish()
    }
}

impl HotBlobs {
    fn ticket(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Size and, if held, bytes.
    fn get(&self, name: &[u8; 32]) -> Option<(u64, Option<Bytes>)> {
        let inner = self.inner.read().ok()?;
        let entry = inner.entries.get(name)?;
        entry.read.store(true, Ordering::Relaxed);
        Some((entry.size, entry.bytes.clone()))
    }

    /// Keeps what a read found, unless a deletion happened since `ticket`; bytes replace a
    /// size-only entry, never the other way round.
    fn put(&self, name: [u8; 32], size: u64, bytes: Option<Bytes>, ticket: u64) {
        let entry = HotEntry {
            size,
            bytes,
            read: AtomicBool::new(false),
        };
        let cost = entry.cost();
        if cost > HOT_BYTES {
            return;
        }
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        if self.generation.load(Ordering::Acquire) != ticket {
            return;
        }
        let inner = &mut *inner;
        match inner.entries.get(&name) {
            Some(old) if old.bytes.is_some() || entry.bytes.is_none() => return,
            Some(old) => inner.used -= old.cost(),
            None => inner.clock.push_back(name),
        }
        inner.entries.insert(name, entry);
        inner.used += cost;
        while inner.used > HOT_BYTES {
            let Some(hand) = inner.clock.pop_front() else {
                break;
            };
            let Some(at) = inner.entries.get(&hand) else {
                continue;
            };
            if at.read.swap(false, Ordering::Relaxed) {
                inner.clock.push_back(hand);
            } else if let Some(gone) = inner.entries.remove(&hand) {
                inner.used -= gone.cost();
            }
        }
        if inner.clock.len() > 2 * inner.entries.len() + 64 {
            let entries = &inner.entries;
            let mut seen = HashSet::new();
            inner
                .clock
                .retain(|n| entries.contains_key(n) && seen.insert(*n));
        }
    }

    fn forget(&self, name: &[u8; 32]) {
        if let Ok(mut inner) = self.inner.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            if let Some(gone) = inner.entries.remove(name) {
                inner.used -= gone.cost();
            }
        }
    }

    fn usage(&self) -> (usize, usize) {
        self.inner
            .read()
            .map(|i| (i.entries.len(), i.used))
            .unwrap_or_default()
    }
}

/// The sha a key names, if the key follows our layout.
fn sha_of(key: &Path) -> Option<&str> {
    let (fan_out, sha) = key.as_ref().split_once('/')?;
    (is_sha(sha) && fan_out == &sha[..2]).then_some(sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    struct LocalStore {
        root: tempfile::TempDir,
        blobs: Blobs,
    }

    impl LocalStore {
        /// The store lives in `<tmp>/blobs`, so `<tmp>` is "outside" for the traversal tests.
        fn new() -> LocalStore {
            let root = tempfile::tempdir().expect("tempdir");
            let dir = root.path().join("blobs").to_string_lossy().into_owned();
            let blobs = Blobs::from_settings(&BlobSettings::Local { dir }).expect("open store");
            LocalStore { root, blobs }
        }

        fn file_of(&self, sha: &str) -> std::path::PathBuf {
            self.root.path().join("blobs").join(&sha[..2]).join(sha)
        }

        fn make_old(&self, sha: &str, age: Duration) {
            let file = std::fs::File::options()
                .write(true)
                .open(self.file_of(sha))
                .expect("open blob file");
            file.set_modified(SystemTime::now() - age)
                .expect("set mtime");
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn minutes_ago(minutes: i64) -> DateTime<Utc> {
        Utc::now() - chrono::Duration::minutes(minutes)
    }

    #[tokio::test]
    async fn put_returns_the_sha_and_get_gives_the_bytes_back() {
        let store = LocalStore::new();

        let sha = store.blobs.put(Bytes::from_static(b"hello")).await.unwrap();

        assert_eq!(sha, HELLO_SHA);
        assert_eq!(Blobs::sha256_hex(b"hello"), HELLO_SHA);
        assert!(store.file_of(&sha).is_file(), "fanned out as 2c/<sha>");
        let got = store.blobs.get(&sha).await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    }

    #[tokio::test]
    async fn putting_existing_bytes_again_rewrites_the_blob_and_makes_it_young() {
        let store = LocalStore::new();
        let sha = store.blobs.put(Bytes::from_static(b"hello")).await.unwrap();
        store.make_old(&sha, HOUR);

        let again = store.blobs.put(Bytes::from_static(b"hello")).await.unwrap();

        assert_eq!(again, sha);
        assert_eq!(store.blobs.get(&sha).await.unwrap().unwrap(), "hello");
        let collected = store
            .blobs
            .collect_garbage(&HashSet::new(), minutes_ago(10), 10)
            .await
            .unwrap();
        assert_eq!(collected, 0, "the rewrite protects it from the GC");
    }

    #[tokio::test]
    async fn malformed_names_are_absent_and_never_reach_outside_the_store() {
        let store = LocalStore::new();
        let sha = store.blobs.put(Bytes::from_static(b"hello")).await.unwrap();
        let outside = store.root.path().join("secret");
        std::fs::write(&outside, b"not a blob").unwrap();

        for name in [
            "../secret",
            "../../secret",
            "../etc/passwd",
            "/etc/passwd",
            &sha.to_uppercase(),
            &sha[..63],
            &format!("{sha}0"),
            &format!("2c/../{}", &sha[6..]),
            "",
        ] {
            assert_eq!(store.blobs.get(name).await.unwrap(), None, "{name}");
            assert_eq!(store.blobs.get_range(name, 0..1).await.unwrap(), None);
            assert_eq!(store.blobs.stat(name).await.unwrap(), None, "{name}");
            store.blobs.delete(name).await.unwrap();
        }

        assert_eq!(std::fs::read(&outside).unwrap(), b"not a blob");
        assert!(store.file_of(&sha).is_file());
    }

    #[tokio::test]
    async fn get_of_an_absent_blob_is_none() {
        let store = LocalStore::new();

        assert_eq!(store.blobs.get(HELLO_SHA).await.unwrap(), None);
        assert_eq!(store.blobs.get_range(HELLO_SHA, 0..1).await.unwrap(), None);
    }

    #[tokio::test]
    async fn get_range_returns_the_asked_bytes_and_cuts_at_the_end() {
        let store = LocalStore::new();
        let sha = store
            .blobs
            .put(Bytes::from_static(b"hello world"))
            .await
            .unwrap();

        let first = store.blobs.get_range(&sha, 0..5).await.unwrap();
        let last = store.blobs.get_range(&sha, 6..11).await.unwrap();
        let past_end = store.blobs.get_range(&sha, 6..100).await.unwrap();

        assert_eq!(first.unwrap(), "hello");
        assert_eq!(last.unwrap(), "world");
        assert_eq!(past_end.unwrap(), "world");
        assert!(store.blobs.get_range(&sha, 3..3).await.is_err());
        assert!(store.blobs.get_range(&sha, 11..12).await.is_err());
    }

    #[tokio::test]
    async fn stat_gives_the_size_and_delete_removes_the_blob() {
        let store = LocalStore::new();
        let sha = store
            .blobs
            .put(Bytes::from_static(b"hello world"))
            .await
            .unwrap();

        assert_eq!(
            store.blobs.stat(&sha).await.unwrap(),
            Some(Stat { size: 11 })
        );
        store.blobs.delete(&sha).await.unwrap();
        store.blobs.delete(&sha).await.unwrap();

        assert_eq!(store.blobs.stat(&sha).await.unwrap(), None);
        assert_eq!(store.blobs.get(&sha).await.unwrap(), None);
    }

    #[tokio::test]
    async fn gc_deletes_only_old_unreferenced_blobs() {
        let store = LocalStore::new();
        let kept = store
            .blobs
            .put(Bytes::from_static(b"referenced"))
            .await
            .unwrap();
        let garbage = store
            .blobs
            .put(Bytes::from_static(b"garbage"))
            .await
            .unwrap();
        let young = store
            .blobs
            .put(Bytes::from_static(b"uploading"))
            .await
            .unwrap();
        store.make_old(&kept, HOUR);
        store.make_old(&garbage, HOUR);
        let foreign = store.root.path().join("blobs").join("notes.txt");
        std::fs::write(&foreign, b"not ours").unwrap();
        let referenced = HashSet::from([kept.clone()]);

        let collected = store
            .blobs
            .collect_garbage(&referenced, minutes_ago(10), 100)
            .await
            .unwrap();

        assert_eq!(collected, 1);
        assert_eq!(store.blobs.stat(&garbage).await.unwrap(), None);
        assert!(store.blobs.stat(&kept).await.unwrap().is_some());
        assert!(store.blobs.stat(&young).await.unwrap().is_some());
        assert!(foreign.is_file(), "keys outside the layout are left alone");
    }

    #[tokio::test]
    async fn gc_deletes_at_most_limit_per_call() {
        let store = LocalStore::new();
        for content in ["a", "b", "c"] {
            let sha = store.blobs.put(Bytes::from(content)).await.unwrap();
            store.make_old(&sha, HOUR);
        }
        let nothing = HashSet::new();

        let first = store.blobs.collect_garbage(&nothing, minutes_ago(10), 2);
        assert_eq!(first.await.unwrap(), 2);
        let second = store.blobs.collect_garbage(&nothing, minutes_ago(10), 2);
        assert_eq!(second.await.unwrap(), 1);
        let third = store.blobs.collect_garbage(&nothing, minutes_ago(10), 2);
        assert_eq!(third.await.unwrap(), 0);
    }

    #[tokio::test]
    async fn served_blobs_come_from_memory_until_deleted() {
        let store = LocalStore::new();
        let sha = store
            .blobs
            .put(Bytes::from_static(b"hello world"))
            .await
            .unwrap();
        assert_eq!(
            store.blobs.cached_get(&sha).await.unwrap().unwrap(),
            "hello world"
        );
        // Gone from the disk behind the cache's back: still served, as it cannot change.
        std::fs::remove_file(store.file_of(&sha)).unwrap();

        let size = store.blobs.cached_size(&sha).await.unwrap();
        let range = store.blobs.cached_get_range(&sha, 6..100).await.unwrap();
        let whole = store.blobs.cached_get(&sha).await.unwrap();

        assert_eq!(size, Some(11));
        assert_eq!(range.unwrap(), "world");
        assert_eq!(whole.unwrap(), "hello world");
        store.blobs.delete(&sha).await.unwrap();
        assert_eq!(store.blobs.cached_get(&sha).await.unwrap(), None);
        assert_eq!(store.blobs.cached_size(&sha).await.unwrap(), None);
        assert_eq!(store.blobs.cached(), (0, 0));
    }

    #[test]
    fn the_cache_of_served_blobs_stays_within_its_budget_and_keeps_what_is_read() {
        let hot = HotBlobs::default();
        let blob = Bytes::from(vec![7u8; HOT_BLOB_MAX]);
        let name = |i: u32| {
            let mut n = [0u8; 32];
            n[..4].copy_from_slice(&i.to_le_bytes());
            n
        };
        hot.put(name(0), blob.len() as u64, Some(blob.clone()), hot.ticket());

        for i in 1..200 {
            hot.put(name(i), blob.len() as u64, Some(blob.clone()), hot.ticket());
            hot.get(&name(0));
        }

        let (entries, used) = hot.usage();
        assert!(used <= HOT_BYTES, "{used} bytes held");
        assert!(entries > 32, "{entries} entries");
        assert!(hot.get(&name(0)).is_some(), "read often, kept");
        assert!(hot.get(&name(1)).is_none(), "the oldest unread one went");
    }

    #[test]
    fn a_read_that_raced_a_deletion_is_not_kept() {
        let hot = HotBlobs::default();
        let ticket = hot.ticket();

        hot.forget(&[1; 32]);
        hot.put([1; 32], 5, Some(Bytes::from_static(b"hello")), ticket);

        assert!(hot.get(&[1; 32]).is_none());
    }

    #[test]
    fn settings_read_both_kinds_and_never_print_the_secret() {
        let local: BlobSettings =
            serde_json::from_str(r#"{"kind": "local", "dir": "/srv/blobs"}"#).unwrap();
        let s3: BlobSettings = serde_json::from_str(
            r#"{"kind": "s3", "bucket": "stickers", "endpoint": "http://127.0.0.1:9000",
                "region": "us-east-1", "access_key_id": "AK", "secret_access_key": "hunter2"}"#,
        )
        .unwrap();
        let typo = serde_json::from_str::<BlobSettings>(r#"{"kind": "local", "dri": "x"}"#);

        assert!(matches!(local, BlobSettings::Local { dir } if dir == "/srv/blobs"));
        assert!(matches!(
            s3,
            BlobSettings::S3 {
                allow_http: false,
                ..
            }
        ));
        assert!(!format!("{s3:?}").contains("hunter2"));
        assert!(typo.is_err(), "unknown fields are refused");
    }

    #[tokio::test]
    async fn an_unreachable_store_is_an_error_not_an_absent_blob() {
        // Nothing listens on port 1: connections are refused at once, retries end in about 1 s.
        let blobs = Blobs::from_settings(&BlobSettings::S3 {
            bucket: "stickers".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: SecretString::from("test"),
            allow_http: true,
        })
        .unwrap();

        let err = blobs.get(HELLO_SHA).await.unwrap_err();

        assert!(format!("{err:#}").contains("reading blob"), "{err:#}");
    }

    /// Runs against a real S3 API: `TEST_S3_ENDPOINT`, e.g. `moto_server -p 5099` and
    /// `TEST_S3_ENDPOINT=http://127.0.0.1:5099` (ignored when it was unset at build time).
    #[tokio::test]
    #[cfg_attr(
        not(kopilka_s3_tests),
        ignore = "TEST_S3_ENDPOINT was not set when the tests were built"
    )]
    async fn s3_round_trip() {
        let endpoint = std::env::var("TEST_S3_ENDPOINT").expect("TEST_S3_ENDPOINT");
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let bucket = format!(
            "kopilka-blobs-{}-{}",
            std::process::id(),
            Utc::now().timestamp_micros()
        );
        // moto takes any credentials and an unsigned CreateBucket.
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("create bucket");
        assert!(created.status().is_success(), "{}", created.status());
        let blobs = Blobs::from_settings(&BlobSettings::S3 {
            bucket,
            endpoint: Some(endpoint),
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: SecretString::from("test"),
            allow_http: true,
        })
        .unwrap();

        let sha = blobs.put(Bytes::from_static(b"hello world")).await.unwrap();
        assert_eq!(
            blobs.put(Bytes::from_static(b"hello world")).await.unwrap(),
            sha
        );
        assert_eq!(blobs.get(&sha).await.unwrap().unwrap(), "hello world");
        assert_eq!(
            blobs.get_range(&sha, 6..11).await.unwrap().unwrap(),
            "world"
        );
        assert_eq!(
            blobs.get_range(&sha, 6..100).await.unwrap().unwrap(),
            "world"
        );
        assert!(blobs.get_range(&sha, 11..12).await.is_err());
        assert_eq!(blobs.stat(&sha).await.unwrap(), Some(Stat { size: 11 }));
        assert_eq!(blobs.get(HELLO_SHA).await.unwrap(), None);
        assert_eq!(blobs.get_range(HELLO_SHA, 0..1).await.unwrap(), None);
        assert_eq!(blobs.stat(HELLO_SHA).await.unwrap(), None);
        assert_eq!(blobs.get("../etc/passwd").await.unwrap(), None);
        blobs.delete(HELLO_SHA).await.unwrap();

        // Every blob counts as old when the cut-off is in the future.
        let kept = blobs.put(Bytes::from_static(b"referenced")).await.unwrap();
        for content in ["a", "b", "c"] {
            blobs.put(Bytes::from(content)).await.unwrap();
        }
        let referenced = HashSet::from([kept.clone()]);
        let later = Utc::now() + chrono::Duration::minutes(1);
        assert_eq!(
            blobs.collect_garbage(&referenced, later, 3).await.unwrap(),
            3
        );
        assert_eq!(
            blobs.collect_garbage(&referenced, later, 3).await.unwrap(),
            1
        );
        assert_eq!(
            blobs.collect_garbage(&referenced, later, 3).await.unwrap(),
            0
        );
        assert!(blobs.stat(&kept).await.unwrap().is_some());
        assert_eq!(blobs.stat(&sha).await.unwrap(), None);
        let nothing = HashSet::new();
        let young = blobs.collect_garbage(&nothing, minutes_ago(10), 10);
        assert_eq!(young.await.unwrap(), 0, "nothing is older than ten minutes");
    }
}
