//! Runs in object storage (SPEC §3, §5, §6): each `s3://BUCKET/PREFIX`
//! root is one lab-s3 [`Store`], probed at start, listed whole every
//! `[s3] relist_secs` (the listing kept as the root's [`Snapshot`]), and
//! walked by lab-formats' one walk over a storage; every run found is a
//! [`Run`] whose reads go through an [`S3Storage`] of its own directory.
//!
//! The prefix is the boundary: a run's storage names only keys beneath
//! its directory (lab-formats' `check_name` first, then lab-s3's own key
//! check), lab-s3 requests nothing outside its root's prefix, and what
//! a listing says is hostile input like any file. Runs in object storage
//! are not written into the registry: their ids are stable (SPEC §4: the
//! root's URL, the run's directory, its store key) and a listing finds
//! them again; the registry remembers the roots.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use lab_formats::storage::{
    CopyLimits, Entry, EntryKind, MAX_LISTED, Page, PageToken, PrivateCopy, Stat, Storage,
    StorageError, Version, check_name,
};
use lab_registry::{RunId, RunRecord};
pub use lab_s3::{ByteStream, Resolved, S3Url, Settings, Store};

use crate::{Run, lock};

/// One object-storage root: its store (none when it could not be made),
/// whether it answers, and its last listing.
#[derive(Debug)]
pub struct S3Root {
    url: S3Url,
    /// The URL as text (`s3://bucket/prefix`): the root's place in ids.
    text: String,
    store: Result<Store, String>,
    state: Mutex<RootState>,
}

#[derive(Debug)]
struct RootState {
    /// `Err(reason)` while the store does not answer.
    available: Result<(), String>,
    snapshot: Arc<Snapshot>,
    /// When it was last listed (or probed).
    listed: Option<Instant>,
    /// Keys whose object changed since the listing (a stream pinned to the
    /// listed ETag was refused): asked for by HEAD until the next listing.
    stale: std::collections::HashSet<String>,
}

/// Every object of a root's last listing, by its key relative to the
/// root's prefix.
#[derive(Debug, Default)]
pub struct Snapshot {
    objects: BTreeMap<String, lab_s3::Object>,
}

impl S3Root {
    /// The root `url` through a store made from `resolved` (no request
    /// made yet): unavailable, with the reason, if the store cannot be
    /// made.
    pub fn new(url: S3Url, resolved: Result<&Resolved, String>, settings: &Settings) -> Self {
        let store = resolved.and_then(|r| Store::new(&url, r, settings).map_err(|e| e.to_string()));
        let available = store.as_ref().map(|_| ()).map_err(Clone::clone);
        Self {
            text: url.to_string(),
            url,
            store,
            state: Mutex::new(RootState {
                available,
                snapshot: Arc::default(),
                listed: None,
                stale: std::collections::HashSet::new(),
            }),
        }
    }

    /// Its URL.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// The directory `place` (an `s3://` URL) names beneath the root,
    /// relative to its prefix (`""` for the root itself); `None` when it
    /// lies elsewhere or is not a clean key.
    pub(crate) fn within<'a>(&self, place: &'a str) -> Option<&'a str> {
        if place == self.text {
            return Some("");
        }
        let rel = place.strip_prefix(&self.text)?.strip_prefix('/')?;
        check_name(rel).ok()?;
        Some(rel)
    }

    /// Asks the store whether it answers (a List of one key, 10 s at
    /// most) and remembers the answer: `Err(reason)` when it does not.
    /// Blocking.
    pub fn probe(&self) -> Result<(), String> {
        let answer = self
            .store
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| s.probe().map_err(|e| e.to_string()));
        lock(&self.state).available = answer.clone();
        answer
    }

    /// Why it cannot be read now, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        lock(&self.state).available.clone().err()
    }

    /// Its store, or why there is none or it does not answer.
    fn store(&self) -> Result<&Store, String> {
        self.store.as_ref().map_err(Clone::clone)
    }

    /// Lists every object beneath the prefix (at most `max_keys`) and
    /// keeps the listing; the store's failure makes the root unavailable
    /// (its runs stay known, shown unavailable with the reason). A
    /// warning when the listing was cut. Blocking.
    pub fn relist(&self, max_keys: usize) -> Vec<String> {
        let mut warnings = Vec::new();
        let listed = self
            .store()
            .and_then(|s| s.list_all(max_keys).map_err(|e| e.to_string()));
        let mut state = lock(&self.state);
        state.listed = Some(Instant::now());
        match listed {
            Ok(listing) => {
                if listing.truncated {
                    warnings.push(format!(
                        "{}: more than {max_keys} objects ([s3] max_keys); runs beyond were not looked for",
                        self.text
                    ));
                }
                let objects = listing
                    .objects
                    .into_iter()
                    .filter(|o| check_name(&o.key).is_ok())
                    .map(|o| (o.key.clone(), o))
                    .collect();
                state.snapshot = Arc::new(Snapshot { objects });
                state.stale.clear();
                state.available = Ok(());
            }
            Err(reason) => {
                warnings.push(format!("{}: {reason}", self.text));
                state.available = Err(reason);
            }
        }
        warnings
    }

    /// When it was last listed.
    pub(crate) fn listed(&self) -> Option<Instant> {
        lock(&self.state).listed
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&lock(&self.state).snapshot)
    }

    /// Whether the last listing (one that answered) shows no object `key`:
    /// a read of it is `NotFound` without a request (a reader's look for
    /// an optional file costs nothing; an object written since is read
    /// after the next listing).
    /// The object `key` as the last listing saw it, with its ETag: what a
    /// stream is pinned to without a HEAD first (a seek costs one request,
    /// not two). `None` when it was not listed, has no ETag, or changed
    /// since.
    fn listed_object(&self, key: &str) -> Option<lab_s3::Object> {
        let state = lock(&self.state);
        if state.stale.contains(key) || state.available.is_err() {
            return None;
        }
        state
            .snapshot
            .objects
            .get(key)
            .filter(|o| o.etag.is_some())
            .cloned()
    }

    /// Marks `key` changed since the listing.
    fn changed(&self, key: &str) {
        let mut state = lock(&self.state);
        if state.stale.len() < 10_000 {
            state.stale.insert(key.to_owned());
        }
    }

    fn absent(&self, key: &str) -> bool {
        let state = lock(&self.state);
        state.listed.is_some()
            && state.available.is_ok()
            && !state.snapshot.objects.contains_key(key)
    }

    /// Its directory `dir` (relative to the prefix; `""` for all of it)
    /// as a storage.
    pub fn storage(self: &Arc<Self>, dir: &str) -> S3Storage {
        S3Storage::new(Arc::clone(self), dir)
    }
}

/// A run in object storage: its root and its directory there.
#[derive(Debug)]
pub struct RemoteRun {
    /// The root.
    pub root: Arc<S3Root>,
    /// The run's directory, relative to the root's prefix (for a store's
    /// run, the store's directory); `""` never (the top is no run).
    pub dir: String,
}

/// A directory of an object-storage root as a [`Storage`]: names are keys
/// beneath it; listings come from the root's last listing; lengths,
/// versions (ETags) and bytes from the store, each read pinned to the
/// version asked for (`If-Match`).
#[derive(Clone, Debug)]
pub struct S3Storage {
    root: Arc<S3Root>,
    dir: String,
    origin: String,
}

impl S3Storage {
    fn new(root: Arc<S3Root>, dir: &str) -> Self {
        let origin = if dir.is_empty() {
            root.text.clone()
        } else {
            format!("{}/{dir}", root.text)
        };
        Self {
            root,
            dir: dir.to_owned(),
            origin,
        }
    }

    /// Its subdirectory `sub` (a store run's artifact directory), checked.
    pub(crate) fn sub(&self, sub: &str) -> Result<Self, StorageError> {
        let key = self.key(sub)?;
        Ok(Self::new(Arc::clone(&self.root), &key))
    }

    /// The key of `name` relative to the root's prefix, checked.
    fn key(&self, name: &str) -> Result<String, StorageError> {
        check_name(name)?;
        Ok(if self.dir.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.dir)
        })
    }

    fn store(&self) -> Result<&Store, StorageError> {
        self.root.store().map_err(StorageError::Other)
    }

    /// A read's failure, for that read alone: whether the root answers is
    /// its listing's to say (one object a policy denies, or a slow answer,
    /// never takes the root's runs down).
    fn error(e: lab_s3::Error) -> StorageError {
        match e {
            lab_s3::Error::NotFound => StorageError::NotFound,
            lab_s3::Error::Changed => StorageError::Changed,
            lab_s3::Error::InvalidKey(why) => StorageError::InvalidName(why),
            other => StorageError::Other(other.to_string()),
        }
    }

    /// The object `name`'s length, ETag and time. Blocking.
    pub(crate) fn head(&self, name: &str) -> Result<lab_s3::Object, StorageError> {
        let key = self.key(name)?;
        if self.root.absent(&key) {
            return Err(StorageError::NotFound);
        }
        self.store()?.head(&key).map_err(Self::error)
    }

    /// The allowlisted artifacts beneath the directory, from the root's
    /// last listing: names parsed by lab-fs (at most four segments), each
    /// allowed by `allow`; at most lab-fs's listing bound looked at.
    pub(crate) fn list_artifacts(&self, allow: &lab_fs::Allowlist) -> Vec<lab_fs::ArtifactInfo> {
        let snapshot = self.root.snapshot();
        let base = if self.dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.dir)
        };
        let mut found = Vec::new();
        for (key, object) in snapshot
            .objects
            .range(base.clone()..)
            .take_while(|(k, _)| k.starts_with(&base))
            .take(lab_fs::MAX_LISTED_TOTAL)
        {
            let Ok(name) = lab_fs::ArtifactName::parse(&key[base.len()..]) else {
                continue;
            };
            if !allow.allows(&name) {
                continue;
            }
            found.push(lab_fs::ArtifactInfo {
                name,
                len: object.size,
                modified: UNIX_EPOCH + Duration::from_secs(object.last_modified.unwrap_or(0)),
            });
        }
        found
    }

    /// The artifact `name` to stream: its length, ETag and time now.
    /// Blocking.
    pub(crate) fn artifact(
        &self,
        name: &lab_fs::ArtifactName,
    ) -> Result<RemoteArtifact, StorageError> {
        let key = self.key(name.as_str())?;
        if self.root.absent(&key) {
            return Err(StorageError::NotFound);
        }
        let object = match self.root.listed_object(&key) {
            Some(object) => object,
            None => self.store()?.head(&key).map_err(Self::error)?,
        };
        let etag = object
            .etag
            .clone()
            .ok_or_else(|| StorageError::Other("the store gave the object no ETag".to_owned()))?;
        Ok(RemoteArtifact {
            store: self.store()?.clone(),
            root: Arc::clone(&self.root),
            key,
            len: object.size,
            etag,
            modified: UNIX_EPOCH + Duration::from_secs(object.last_modified.unwrap_or(0)),
        })
    }
}

impl S3Storage {
    /// The artifact `name` to put in a bundle: its bytes read by ranged
    /// GETs pinned to the ETag it has now ([`READ_CHUNK`] at a time), its
    /// length and time. Blocking.
    pub(crate) fn open_for_bundle(
        &self,
        name: &lab_fs::ArtifactName,
    ) -> Result<(Box<dyn std::io::Read + '_>, u64, std::time::SystemTime), lab_fs::Error> {
        let key = name.as_str().to_owned();
        let stat = self.stat(&key).map_err(|e| match e {
            StorageError::NotFound => lab_fs::Error::NotFound,
            other => lab_fs::Error::Io(std::io::Error::other(other.to_string())),
        })?;
        let modified = UNIX_EPOCH + Duration::from_secs(stat.modified.unwrap_or(0));
        let reader = ObjectReader {
            storage: self,
            key,
            version: stat.version,
            offset: 0,
            len: stat.len,
        };
        // The bundle's writer reads a few KiB at a time: a GET is
        // [`READ_CHUNK`].
        let buffered = std::io::BufReader::with_capacity(lab_formats::storage::READ_CHUNK, reader);
        Ok((Box::new(buffered), stat.len, modified))
    }
}

/// An object read from its start by ranged GETs pinned to one version.
struct ObjectReader<'a> {
    storage: &'a S3Storage,
    key: String,
    version: Version,
    offset: u64,
    len: u64,
}

impl std::io::Read for ObjectReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let want = (self.len - self.offset)
            .min(out.len() as u64)
            .min(lab_formats::storage::READ_CHUNK as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let bytes = self
            .storage
            .read_range(&self.key, self.offset, want, Some(&self.version))
            .map_err(std::io::Error::other)?;
        let n = bytes.len().min(want);
        out[..n].copy_from_slice(&bytes[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

/// An artifact in object storage, to be streamed by ranged GETs pinned to
/// its ETag.
#[derive(Clone)]
pub struct RemoteArtifact {
    /// The store holding it.
    pub store: Store,
    /// Its root (told when the object changed under a stream).
    root: Arc<S3Root>,
    /// Its key relative to the store's prefix.
    pub key: String,
    /// Its length.
    pub len: u64,
    /// Its ETag: every ranged GET carries `If-Match` with it.
    pub etag: String,
    /// Its last-modified time.
    pub modified: std::time::SystemTime,
}

impl std::fmt::Debug for RemoteArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteArtifact")
            .field("key", &self.key)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl RemoteArtifact {
    /// Tells its root why a stream of it failed: an object that changed
    /// since it was listed is asked for by HEAD from now on.
    pub fn stream_failed(&self, e: &lab_s3::Error) {
        if matches!(e, lab_s3::Error::Changed) {
            self.root.changed(&self.key);
        }
    }

    /// A stable number for lab-stream's validator, from the ETag.
    pub fn tag(&self) -> u64 {
        // FNV-1a: stable across processes (a hash map's hasher is not).
        self.etag.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

/// The entries directly beneath `dir` in `snapshot` (sorted, at most
/// [`MAX_LISTED`]): each next key found by a range lookup, a directory's
/// whole subtree skipped at once.
fn entries(snapshot: &Snapshot, dir: &str) -> Vec<Entry> {
    let base = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut out = Vec::new();
    let mut from = base.clone();
    while out.len() < MAX_LISTED {
        let Some((key, object)) = snapshot.objects.range(from.clone()..).next() else {
            break;
        };
        let Some(rest) = key.strip_prefix(&base) else {
            break;
        };
        match rest.split_once('/') {
            Some((name, _)) => {
                out.push(Entry {
                    name: name.to_owned(),
                    kind: EntryKind::Dir,
                    len: None,
                });
                // Past every key beneath `name/`: `0` follows `/`.
                from = format!("{base}{name}0");
            }
            None => {
                out.push(Entry {
                    name: rest.to_owned(),
                    kind: EntryKind::File,
                    len: Some(object.size),
                });
                from = format!("{key}\0");
            }
        }
    }
    out
}

impl Storage for S3Storage {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn list(&self, prefix: &str, _page: Option<&PageToken>) -> Result<Page, StorageError> {
        let dir = if prefix.is_empty() {
            self.dir.clone()
        } else {
            self.key(prefix)?
        };
        if let Some(reason) = self.root.unavailable() {
            return Err(StorageError::Other(reason));
        }
        Ok(Page {
            entries: entries(&self.root.snapshot(), &dir),
            next: None,
        })
    }

    fn stat(&self, name: &str) -> Result<Stat, StorageError> {
        let object = self.head(name)?;
        let version = object
            .etag
            .clone()
            .unwrap_or_else(|| format!("{}-{}", object.size, object.last_modified.unwrap_or(0)));
        Ok(Stat {
            len: object.size,
            version: Version::new(version),
            modified: object.last_modified,
        })
    }

    fn read_range(
        &self,
        name: &str,
        offset: u64,
        len: usize,
        version: Option<&Version>,
    ) -> Result<Vec<u8>, StorageError> {
        let key = self.key(name)?;
        if self.root.absent(&key) {
            return Err(StorageError::NotFound);
        }
        let mut bytes = self
            .store()?
            .get_range(&key, offset, len, version.map(Version::as_str))
            .map_err(Self::error)?;
        bytes.truncate(len);
        Ok(bytes)
    }

    fn private_copy_version(&self, name: &str, max_bytes: u64) -> Result<Version, StorageError> {
        let stat = self.stat(name)?;
        if stat.len > max_bytes {
            return Err(StorageError::Refused {
                file: name.rsplit('/').next().unwrap_or(name).to_owned(),
                reason: format!("larger than {max_bytes} bytes ([formats] sqlite_max_bytes)"),
            });
        }
        Ok(stat.version)
    }

    fn copy_to_private_file(
        &self,
        name: &str,
        limits: CopyLimits,
    ) -> Result<PrivateCopy, StorageError> {
        let stat = self.stat(name)?;
        let file = name.rsplit('/').next().unwrap_or(name);
        let taken = Instant::now();
        let copy = lab_fs::private_copy(file, stat.len, limits.max_bytes, limits.budget, |w| {
            let mut offset = 0u64;
            while offset < stat.len {
                let want = (stat.len - offset).min(lab_formats::storage::READ_CHUNK as u64);
                let chunk = self
                    .read_range(name, offset, want as usize, Some(&stat.version))
                    .map_err(std::io::Error::other)?;
                if chunk.is_empty() {
                    return Err(std::io::Error::other("the object ended early"));
                }
                w.write_all(&chunk)?;
                offset += chunk.len() as u64;
            }
            Ok(())
        })
        .map_err(|e| match e {
            lab_fs::Error::Io(io) => match StorageError::from_read(&io) {
                Some(StorageError::Changed) => StorageError::Changed,
                _ => StorageError::Other(io.to_string()),
            },
            lab_fs::Error::Sqlite { file, refusal } => match refusal {
                lab_fs::SqliteRefusal::SpaceInUse(_) => StorageError::SpaceInUse {
                    file,
                    reason: refusal.to_string(),
                },
                _ => StorageError::Refused {
                    file,
                    reason: refusal.to_string(),
                },
            },
            other => StorageError::Other(other.to_string()),
        })?;
        Ok(PrivateCopy::new(
            copy.path().to_path_buf(),
            stat.version,
            taken,
            Box::new(copy),
        ))
    }
}

/// The object-storage roots and the runs last found in them.
#[derive(Debug, Default)]
pub struct S3Roots {
    roots: Vec<Arc<S3Root>>,
    settings: Settings,
    runs: Mutex<Found>,
    /// A listing of the roots is under way.
    listing: std::sync::atomic::AtomicBool,
    /// What the last listing could not read or cut short.
    warnings: Mutex<Vec<String>>,
}

#[derive(Debug, Default)]
struct Found {
    runs: Arc<Vec<Run>>,
    by_id: std::collections::HashMap<RunId, Run>,
}

impl S3Roots {
    /// The roots (each made and probed by the caller), listed by the
    /// bounds in `settings`.
    pub fn new(roots: Vec<Arc<S3Root>>, settings: Settings) -> Self {
        Self {
            roots,
            settings,
            runs: Mutex::default(),
            listing: std::sync::atomic::AtomicBool::new(false),
            warnings: Mutex::default(),
        }
    }

    /// Claims the one listing of the roots that may run at a time;
    /// `false` when one is under way.
    pub(crate) fn begin_listing(&self) -> bool {
        !self.listing.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    /// Ends the listing [`S3Roots::begin_listing`] claimed.
    pub(crate) fn end_listing(&self) {
        self.listing
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// [`S3Roots::rediscover`] under the claim of
    /// [`S3Roots::begin_listing`], given back however it ends (a panic
    /// included). Blocking.
    pub(crate) fn rediscover_claimed(
        &self,
        limits: &lab_formats::Limits,
        taken: &dyn Fn(&RunId) -> bool,
    ) {
        struct Claim<'a>(&'a S3Roots);
        impl Drop for Claim<'_> {
            fn drop(&mut self) {
                self.0.end_listing();
            }
        }
        let _claim = Claim(self);
        self.rediscover(limits, taken);
    }

    /// What the last listing of the roots could not read or cut short.
    pub(crate) fn warnings(&self) -> Vec<String> {
        lock(&self.warnings).clone()
    }

    /// The roots.
    pub fn roots(&self) -> &[Arc<S3Root>] {
        &self.roots
    }

    /// Every run found in them, by id.
    pub(crate) fn runs(&self) -> Arc<Vec<Run>> {
        Arc::clone(&lock(&self.runs).runs)
    }

    /// Run `id`, if it is one of theirs.
    pub(crate) fn get(&self, id: &RunId) -> Option<Run> {
        lock(&self.runs).by_id.get(id).cloned()
    }

    /// Whether a root is due to be listed again.
    pub(crate) fn due(&self) -> bool {
        let every = Duration::from_secs(self.settings.relist_secs.max(1));
        self.roots
            .iter()
            .any(|r| r.listed().is_none_or(|at| at.elapsed() >= every))
    }

    /// Lists every root again and walks what it holds (a root that does
    /// not answer keeps the runs it had, unavailable); the warnings.
    /// Blocking.
    /// `taken` says whether an id is a registered run's (or an alias): a
    /// run in a bucket never takes a local run's id, whatever its name
    /// and place hash to.
    pub(crate) fn rediscover(
        &self,
        limits: &lab_formats::Limits,
        taken: &dyn Fn(&RunId) -> bool,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let old = self.runs();
        let mut runs: Vec<Run> = Vec::new();
        for root in &self.roots {
            warnings.extend(root.relist(self.settings.max_keys));
            if root.unavailable().is_some() {
                runs.extend(
                    old.iter()
                        .filter(|r| {
                            r.remote
                                .as_ref()
                                .is_some_and(|m| Arc::ptr_eq(&m.root, root))
                        })
                        .cloned(),
                );
                continue;
            }
            let top = root.storage("");
            let found = lab_formats::discover_storage(&top, limits);
            warnings.extend(found.warnings.iter().map(|w| format!("{}: {w}", root.text)));
            let imported_at = std::time::SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            for f in &found.runs {
                let Some(dir) = f.dir.to_str().filter(|d| !d.is_empty()) else {
                    continue;
                };
                let name = f
                    .name
                    .clone()
                    .unwrap_or_else(|| dir.rsplit('/').next().unwrap_or(dir).to_owned());
                let place = lab_registry::Place {
                    root: &root.text,
                    within: dir,
                    entry: f.entry.as_deref(),
                };
                let clash = |id: &RunId| runs.iter().any(|r| &r.id == id) || taken(id);
                let Ok(id) = RunId::stable(&name, &place, clash) else {
                    warnings.push(format!("{}/{dir}: its id is taken", root.text));
                    continue;
                };
                let kept = old.iter().find(|r| r.id == id).map(|r| r.imported_at);
                let record = RunRecord {
                    id,
                    root: std::path::PathBuf::from(format!("{}/{dir}", root.text)),
                    imported_at: kept.unwrap_or(imported_at),
                    format: Some(f.format.as_str().to_owned()),
                    entry: f.entry.clone(),
                    aliases: Vec::new(),
                };
                let mut run = Run::new(record);
                run.remote = Some(Arc::new(RemoteRun {
                    root: Arc::clone(root),
                    dir: dir.to_owned(),
                }));
                runs.push(run);
            }
        }
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        let by_id = runs.iter().map(|r| (r.id.clone(), r.clone())).collect();
        *lock(&self.runs) = Found {
            runs: Arc::new(runs),
            by_id,
        };
        lock(&self.warnings).clone_from(&warnings);
        warnings
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    fn object(key: &str, size: u64) -> (String, lab_s3::Object) {
        (
            key.to_owned(),
            lab_s3::Object {
                key: key.to_owned(),
                size,
                etag: Some(format!("\"{key}\"")),
                last_modified: Some(1),
            },
        )
    }

    #[test]
    fn a_listing_gives_one_level_with_kinds_and_skips_subtrees() {
        let snapshot = Snapshot {
            objects: [
                object("a/run.toml", 1),
                object("a/metrics.jsonl", 2),
                object("a/media/x.png", 3),
                object("a/media/y.png", 3),
                object("a0", 4),
                object("b/c/d", 5),
                object("top", 6),
            ]
            .into_iter()
            .collect(),
        };
        let names = |dir: &str| -> Vec<(String, EntryKind)> {
            entries(&snapshot, dir)
                .into_iter()
                .map(|e| (e.name, e.kind))
                .collect()
        };
        assert_eq!(
            names(""),
            [
                ("a".to_owned(), EntryKind::Dir),
                ("a0".to_owned(), EntryKind::File),
                ("b".to_owned(), EntryKind::Dir),
                ("top".to_owned(), EntryKind::File),
            ]
        );
        assert_eq!(
            names("a"),
            [
                ("media".to_owned(), EntryKind::Dir),
                ("metrics.jsonl".to_owned(), EntryKind::File),
                ("run.toml".to_owned(), EntryKind::File),
            ]
        );
        assert_eq!(names("b/c"), [("d".to_owned(), EntryKind::File)]);
        assert!(names("nothing").is_empty());
    }
}
