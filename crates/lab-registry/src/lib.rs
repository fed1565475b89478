//! lab-registry maps run ids to canonical run roots.
//!
//! It guarantees that every registered root
//!
//! - was a directory whose **real** path (symlinks resolved) lay strictly
//!   under an allowed root when it was imported, compared by path component,
//!   never by string prefix (`/data/runs-evil` is not under `/data/runs`);
//! - is stored exactly as the canonical path that was checked.
//!
//! The registry is kept in the data dir as a versioned snapshot,
//! `registry.json`, replaced atomically (temp file, fsync, rename, fsync of
//! the directory), and a journal of the changes since, `registry.log`, one
//! checksummed line per update, appended and synced; both change only under
//! an exclusive lock on `registry.lock`, so a `lab import` running beside a
//! server loses nothing, and an update costs the same at 100 runs or
//! 100,000. A reader keeps the registry in memory and reads only what was
//! appended since (one `stat` when nothing was). A torn last entry left by a
//! crash is dropped and reported ([`Registry::warnings`]); a registry that
//! cannot be parsed otherwise is an error naming the file, never silently
//! emptied. Forgetting a run never touches its files.
//!
//! A run's id is **stable** ([`RunId::stable`], SPEC §4): made from where
//! the run is, so the same directory has the same id in every data dir.
//! An id once issued keeps finding its run: a registry from before stable
//! ids is migrated when opened, each random id kept as an alias of the
//! run ([`RunRecord::aliases`]) that [`Registry::get`] and
//! [`Registry::forget`] accept.
//!
//! ```
//! # fn main() -> Result<(), lab_registry::Error> {
//! # let tmp = tempfile::tempdir().unwrap();
//! # let runs = tmp.path().join("runs");
//! # std::fs::create_dir_all(runs.join("exp-1")).unwrap();
//! let registry = lab_registry::Registry::open(&tmp.path().join("data"), &[runs.clone()])?;
//! let run = registry.import(&runs.join("exp-1"), None)?;
//! assert!(run.id.as_str().starts_with("exp-1-"));
//! assert!(registry.import(std::path::Path::new("/etc"), None).is_err());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod data_dir;
#[doc(hidden)]
pub mod fuzz;
mod id;
mod index;
mod journal;
mod state;
mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

pub use data_dir::DataDir;
pub use id::{MAX_ID_LEN, MAX_SLUG_LEN, Place, RunId};
use state::Batch;
use store::{Cache, Store};

/// Most runs one registry holds (discovery registers at most its own
/// `max_runs`, 200,000 unless `[formats] max_runs` says more).
pub const MAX_RUNS: usize = 2_000_000;

/// Why a registry operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A run id does not match `[a-z0-9][a-z0-9-]{0,63}`.
    InvalidId(&'static str),
    /// A path given for import is not absolute.
    RelativePath,
    /// A path is not valid UTF-8 (the registry stores text).
    NonUtf8Path,
    /// The directory to import does not exist.
    NotFound,
    /// The path to import is not a directory.
    NotADirectory,
    /// The directory's real path is not under any allowed root.
    OutsideAllowedRoots,
    /// The directory is an allowed root itself, not a run under it.
    IsAllowedRoot,
    /// The directory is already registered, under this id.
    AlreadyRegistered(RunId),
    /// The requested id is already used by another run.
    IdTaken(RunId),
    /// No run has this id.
    UnknownRun,
    /// The registry holds [`MAX_RUNS`] runs already.
    Full,
    /// An allowed root given in configuration is unusable.
    BadAllowedRoot {
        /// The root as given.
        root: PathBuf,
        /// Why.
        reason: String,
    },
    /// The data dir is, contains or lies under an allowed root: the walk
    /// would read the Lab's own files (job output, the registry) as runs.
    DataDirOverlapsRoot {
        /// The data dir.
        data_dir: PathBuf,
        /// The allowed root.
        root: PathBuf,
        /// How they overlap.
        relation: Overlap,
    },
    /// `forget-root` named a directory that is not a remembered root.
    UnknownRoot(PathBuf),
    /// The registry file exists but cannot be understood.
    Corrupt {
        /// The registry file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O failure while doing `context`.
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidId(reason) => write!(f, "invalid run id: {reason}"),
            Error::RelativePath => f.write_str("the path must be absolute"),
            Error::NonUtf8Path => f.write_str("the path is not valid UTF-8"),
            Error::NotFound => f.write_str("no such directory"),
            Error::NotADirectory => f.write_str("not a directory"),
            Error::OutsideAllowedRoots => f.write_str("the directory is not under an allowed root"),
            Error::IsAllowedRoot => f.write_str(
                "the directory is an allowed root itself; import a run directory inside it",
            ),
            Error::AlreadyRegistered(id) => {
                write!(f, "the directory is already registered as {id}")
            }
            Error::IdTaken(id) => write!(f, "the run id {id} is already taken"),
            Error::UnknownRun => f.write_str("no run with this id"),
            Error::Full => write!(f, "the registry already holds {MAX_RUNS} runs"),
            Error::BadAllowedRoot { root, reason } => {
                write!(f, "allowed root {}: {reason}", root.display())
            }
            Error::DataDirOverlapsRoot {
                data_dir,
                root,
                relation,
            } => write!(
                f,
                "the data dir {} {} the allowed root {}, so the Lab would read its own files as runs; \
                 use a --data-dir outside it, or run `lab forget-root {}` if it is a remembered root",
                data_dir.display(),
                relation.as_str(),
                root.display(),
                root.display()
            ),
            Error::UnknownRoot(root) => write!(
                f,
                "{} is not a remembered root (roots given with --root or in lab.toml are not remembered by this command; drop them there)",
                root.display()
            ),
            Error::Corrupt { file, reason } => {
                write!(
                    f,
                    "registry file {} is unreadable: {reason}",
                    file.display()
                )
            }
            Error::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

/// How a data dir and an allowed root overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// They are the same directory.
    Is,
    /// The root lies inside the data dir.
    Contains,
    /// The data dir lies inside the root.
    LiesUnder,
}

impl Overlap {
    fn as_str(self) -> &'static str {
        match self {
            Overlap::Is => "is",
            Overlap::Contains => "contains",
            Overlap::LiesUnder => "lies under",
        }
    }
}

/// `path` made absolute and resolved as far as it exists: component by
/// component, each one that exists replaced by its real path (links
/// followed), the rest taken as written with `..` removing the component
/// before it (a component that does not exist is no link). So a data dir
/// that is not made yet is compared where it will be, and
/// `/x/missing/../root/data` is `/x/root/data`.
pub fn canonical_as_far_as_exists(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut resolved = PathBuf::from("/");
    for part in absolute.components() {
        match part {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => {
                let next = resolved.join(name);
                resolved = match std::fs::canonicalize(&next) {
                    Ok(real) => real,
                    Err(_) => next,
                };
            }
        }
    }
    resolved
}

/// Whether `data_dir` and `root` (both canonical, as far as they exist)
/// overlap, by whole components. The data dir's own `runs/` (where jobs
/// run, always an allowed root) and what lies in it are not an overlap.
pub fn overlap(data_dir: &Path, root: &Path) -> Option<Overlap> {
    if root.starts_with(DataDir::new(data_dir).runs()) {
        return None;
    }
    if data_dir == root {
        Some(Overlap::Is)
    } else if root.starts_with(data_dir) {
        Some(Overlap::Contains)
    } else if data_dir.starts_with(root) {
        Some(Overlap::LiesUnder)
    } else {
        None
    }
}

/// Refuses a data dir that is, contains or lies under one of `roots`
/// (SPEC §3): the first such root, as [`Error::DataDirOverlapsRoot`].
pub fn check_data_dir_apart(data_dir: &Path, roots: &[PathBuf]) -> Result<(), Error> {
    let data_dir = canonical_as_far_as_exists(data_dir);
    for root in roots {
        let canonical = canonical_as_far_as_exists(root);
        if let Some(relation) = overlap(&data_dir, &canonical) {
            return Err(Error::DataDirOverlapsRoot {
                data_dir,
                root: canonical,
                relation,
            });
        }
    }
    Ok(())
}

/// The I/O cause is part of the message, so `source` stays empty (an error
/// chain would print it twice).
impl std::error::Error for Error {}

/// One registered run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// The canonical path of its root, exactly as checked at import.
    pub root: PathBuf,
    /// When it was imported, seconds since the Unix epoch.
    pub imported_at: u64,
    /// The format its reader is (`lab`, `tensorboard`, …); `None` in
    /// records written before formats were told apart, read as `lab`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// For one run of a store (`root` is the store's directory): its id in
    /// the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Ids the run had before, oldest first, which still find it (a run
    /// registered before ids were stable keeps its random id here). No
    /// other run has one of them as an id or an alias.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<RunId>,
}

impl RunRecord {
    /// What identifies the run's data: its root and, in a store, its entry.
    pub fn key(&self) -> RunKey {
        RunKey {
            root: self.root.clone(),
            entry: self.entry.clone(),
        }
    }
}

/// A run's root and, for a store's run, its id in the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunKey {
    /// The canonical root.
    pub root: PathBuf,
    /// The store entry, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
}

impl RunRecord {
    /// The last component of the root: the directory's own name.
    pub fn dir_name(&self) -> &str {
        self.root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    }
}

/// What registering discovered runs did.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Newly registered runs.
    pub imported: Vec<RunRecord>,
    /// Runs that were registered already (for an explicit import).
    pub existing: Vec<RunRecord>,
    /// Entries skipped, with the reason (already registered and forgotten
    /// ones are not listed).
    pub skipped: Vec<(PathBuf, Error)>,
}

/// A run directory to register, and its format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The directory (a store's directory for a store's run).
    pub dir: PathBuf,
    /// Its format's name.
    pub format: String,
    /// For a store's run: its id in the store.
    pub entry: Option<String>,
    /// A name to make the id from (else the directory's name).
    pub name: Option<String>,
}

/// Most forgotten roots remembered (the oldest are dropped first).
pub const MAX_FORGOTTEN: usize = 100_000;

/// The run registry of one data dir.
#[derive(Debug)]
pub struct Registry {
    store: Store,
    allowed_roots: Vec<PathBuf>,
    /// The registry as last read. An update holds it from when it has the
    /// file lock to the end, so that it starts from it and leaves it
    /// current.
    cache: Mutex<Cache>,
}

impl Registry {
    /// Opens (creating the data dir if needed) the registry in `data_dir`.
    /// Each allowed root is canonicalised; a missing one is an error. A
    /// corrupt registry file is an error naming the file: here, or, where
    /// the snapshot's index (`registry.idx`, see `index.rs`) names the
    /// snapshot and so spares reading it, at the first read of the runs.
    ///
    /// Roots remembered in the registry file (see [`Registry::remember_roots`])
    /// are allowed too, when they still exist.
    pub fn open(data_dir: &Path, allowed_roots: &[PathBuf]) -> Result<Self, Error> {
        let store = Store::open(data_dir)?;
        let mut cache = Cache::default();
        // The remembered roots from the snapshot's index and the journal
        // where they can tell (the snapshot is loaded when first needed),
        // else from the snapshot.
        let quick = store.quick().filter(|read| !read.quick.before_stable_ids());
        let remembered = match &quick {
            Some(read) => read.quick.roots().to_vec(),
            None => store.refresh(&mut cache)?.state.roots().to_vec(),
        };
        let mut roots = Vec::with_capacity(allowed_roots.len());
        for root in allowed_roots {
            let canonical = std::fs::canonicalize(root).map_err(|e| Error::BadAllowedRoot {
                root: root.clone(),
                reason: e.to_string(),
            })?;
            if !canonical.is_dir() {
                return Err(Error::BadAllowedRoot {
                    root: root.clone(),
                    reason: "not a directory".into(),
                });
            }
            if canonical.to_str().is_none() {
                return Err(Error::BadAllowedRoot {
                    root: root.clone(),
                    reason: "not valid UTF-8".into(),
                });
            }
            if !roots.contains(&canonical) {
                roots.push(canonical);
            }
        }
        for root in remembered {
            // A remembered root that is gone (or is no longer a real
            // directory at that path) is simply not allowed any more.
            let still = std::fs::canonicalize(&root).is_ok_and(|c| c == root && c.is_dir());
            if still && !roots.contains(&root) {
                roots.push(root);
            }
        }
        let registry = Self {
            store,
            allowed_roots: roots,
            cache: Mutex::new(cache),
        };
        let job_runs = canonical_as_far_as_exists(&DataDir::new(data_dir).runs());
        // (An index that could be used says the ids are stable already.)
        if quick.is_some() {
            return Ok(registry);
        }
        if let Err(e) = registry.migrate_ids(&job_runs) {
            // The registry works as it is (the old ids are its ids); the
            // next open tries again.
            registry.cache().warn(format!(
                "could not give the runs registered with random ids their stable ids: {e}"
            ));
        }
        Ok(registry)
    }

    /// In a registry written before ids were stable (a snapshot of
    /// version 2 or older), gives every run registered with a random id (an
    /// id of the shape `RunId::generate` gave, `SLUG-` and six hex digits,
    /// on a run that is not a job's run, directly in `job_runs`) its
    /// stable id, with the same slug; the old id is kept as an alias and
    /// keeps finding the run. An id of another shape was chosen by someone
    /// and is kept. One locked update, written as a new snapshot (version
    /// 3, whether or not a run was renamed): a crash leaves the old
    /// registry or the migrated one, and a build that knows no aliases
    /// refuses the data dir instead of losing them. Done once: a second
    /// open, or another process racing this one, finds version 3 and
    /// nothing to do. Forgotten runs are not registered, so they stay
    /// forgotten. Returns how many runs were given a new id.
    fn migrate_ids(&self, job_runs: &Path) -> Result<usize, Error> {
        {
            let mut cache = self.cache();
            if !self.store.refresh(&mut cache)?.state.before_stable_ids {
                return Ok(0);
            }
        }
        let stale =
            |run: &RunRecord| id::has_random_suffix(&run.id) && run.root.parent() != Some(job_runs);
        let mut left = Vec::new();
        let renamed = self.update(|batch| {
            if !batch.before_stable_ids() {
                // Another process migrated it since.
                return Ok(0);
            }
            let mut old: Vec<RunRecord> = batch.runs().filter(|r| stale(r)).cloned().collect();
            old.sort_by(|a, b| a.id.cmp(&b.id));
            let mut renamed = 0;
            for run in old {
                let name = id::slug_of(&run.id);
                match stable_id_in(
                    &self.allowed_roots,
                    &run.root,
                    run.entry.as_deref(),
                    name,
                    |id| batch.has_id(id),
                ) {
                    Ok(id) => {
                        batch.rename(&run.id, id);
                        renamed += 1;
                    }
                    Err(e) => left.push(format!("run {} keeps its id: {e}", run.id)),
                }
            }
            batch.migrated();
            batch.compact();
            Ok(renamed)
        })?;
        let mut cache = self.cache();
        for warning in left {
            cache.warn(warning);
        }
        Ok(renamed)
    }

    /// The canonical allowed roots.
    pub fn allowed_roots(&self) -> &[PathBuf] {
        &self.allowed_roots
    }

    /// The registry file's path (its snapshot; the journal of changes
    /// since is `registry.log` beside it).
    pub fn file(&self) -> &Path {
        self.store.file()
    }

    /// What reading the registry noticed and repaired or skipped, such as
    /// a torn last journal entry left by a crash, for the caller to show.
    pub fn warnings(&self) -> Vec<String> {
        self.cache().warnings().to_vec()
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// All runs, sorted by id. Reads what other processes changed since
    /// the last call (one `stat` when nothing did).
    pub fn runs(&self) -> Result<Arc<Vec<RunRecord>>, Error> {
        let mut cache = self.cache();
        Ok(Arc::clone(self.store.refresh(&mut cache)?.state.runs()))
    }

    /// One run by id, or by an id it had before (see
    /// [`RunRecord::aliases`]): the record holds its id now.
    pub fn get(&self, id: &RunId) -> Result<RunRecord, Error> {
        let mut cache = self.cache();
        let loaded = self.store.refresh(&mut cache)?;
        loaded.state.get(id).cloned().ok_or(Error::UnknownRun)
    }

    /// Runs `change` in one locked update (see `Store::update`).
    fn update<T>(&self, change: impl FnOnce(&mut Batch) -> Result<T, Error>) -> Result<T, Error> {
        self.store.update(&self.cache, change)
    }

    /// Imports one directory as a `lab` run, with `id` or its stable one.
    pub fn import(&self, dir: &Path, id: Option<&str>) -> Result<RunRecord, Error> {
        self.import_as(dir, id, None)
    }

    /// Imports one directory of `format`, with `id` or its stable one
    /// ([`RunId::stable`]). An explicit import brings a forgotten run back.
    pub fn import_as(
        &self,
        dir: &Path,
        id: Option<&str>,
        format: Option<&str>,
    ) -> Result<RunRecord, Error> {
        let id = id.map(RunId::parse).transpose()?;
        let root = self.check_dir(dir)?;
        if !self.cache().is_loaded()
            && let Some(record) = self.quick_import(&root, id.as_ref(), format)?
        {
            return Ok(record);
        }
        self.update(|batch| {
            let key = RunKey {
                root: root.clone(),
                entry: None,
            };
            if let Some(existing) = batch.by_key(&key) {
                return Err(Error::AlreadyRegistered(existing.id.clone()));
            }
            let id = match id {
                Some(id) => id,
                None => self.stable_id(batch, &root, None, None)?,
            };
            let mut record = new_record(batch, &root, id)?;
            record.format = format.map(str::to_owned);
            batch.add(record.clone());
            Ok(record)
        })
    }

    /// [`Registry::import_as`] without loading the snapshot (see
    /// `index.rs`): one line appended to the journal when the snapshot's
    /// index and the journal tell the run and its id are certainly new;
    /// `None` when they cannot tell, for the full update to decide.
    fn quick_import(
        &self,
        root: &Path,
        id: Option<&RunId>,
        format: Option<&str>,
    ) -> Result<Option<RunRecord>, Error> {
        self.store.quick_add(|quick| {
            let key = RunKey {
                root: root.to_path_buf(),
                entry: None,
            };
            if quick.before_stable_ids()
                || quick.most_runs() >= MAX_RUNS
                || quick.may_have_key(&key)
            {
                return None;
            }
            let id = match id {
                Some(id) => (!quick.may_have_id(id)).then(|| id.clone())?,
                None => {
                    let unsure = std::cell::Cell::new(false);
                    let id = stable_id_in(
                        &self.allowed_roots,
                        root,
                        None,
                        default_name(root, None),
                        |id| {
                            let maybe = quick.may_have_id(id);
                            unsure.set(unsure.get() || maybe);
                            maybe
                        },
                    )
                    .ok()?;
                    (!unsure.get()).then_some(id)?
                }
            };
            Some(RunRecord {
                id,
                root: root.to_path_buf(),
                imported_at: now_secs(),
                format: format.map(str::to_owned),
                entry: None,
                aliases: Vec::new(),
            })
        })
    }

    /// Registers discovered runs in one locked update. With `explicit`
    /// (the user named the directory), forgotten runs come back and runs
    /// registered already are listed in `existing`; otherwise forgotten
    /// runs stay forgotten.
    ///
    /// A candidate whose directory and entry are a registered run's is not
    /// checked again: its root was checked when it was registered, and it
    /// is only reported, never registered anew.
    pub fn register(&self, found: &[Candidate], explicit: bool) -> Result<ScanReport, Error> {
        let mut report = ScanReport::default();
        let known: Vec<bool> = {
            let mut cache = self.cache();
            let state = &self.store.refresh(&mut cache)?.state;
            found
                .iter()
                .map(|c| {
                    state.has_key(&RunKey {
                        root: c.dir.clone(),
                        entry: c.entry.clone(),
                    })
                })
                .collect()
        };
        let unknown: Vec<&Path> = found
            .iter()
            .zip(&known)
            .filter(|(_, known)| !**known)
            .map(|(c, _)| c.dir.as_path())
            .collect();
        let mut results = self.check_dirs(&unknown).into_iter();
        let mut checked = Vec::with_capacity(found.len());
        for (candidate, known) in found.iter().zip(known) {
            if known {
                checked.push((candidate.dir.clone(), candidate, Checked::Before));
                continue;
            }
            match results.next() {
                Some(Ok(root)) => checked.push((root, candidate, Checked::Now)),
                Some(Err(e)) => report.skipped.push((candidate.dir.clone(), e)),
                None => {}
            }
        }
        let (imported, existing, skipped) = self.update(|batch| {
            let mut imported = Vec::new();
            let mut existing = Vec::new();
            let mut skipped = Vec::new();
            for (root, candidate, checked) in checked {
                let mut key = RunKey {
                    root,
                    entry: candidate.entry.clone(),
                };
                if let Some(known) = batch.by_key(&key) {
                    if explicit {
                        existing.push(known.clone());
                    }
                    continue;
                }
                if checked == Checked::Before {
                    // Registered when we looked, gone now (another process
                    // forgot it): check it as the new candidate it is.
                    match self.check_dir(&candidate.dir) {
                        Ok(root) => key.root = root,
                        Err(e) => {
                            skipped.push((candidate.dir.clone(), e));
                            continue;
                        }
                    }
                    if let Some(known) = batch.by_key(&key) {
                        if explicit {
                            existing.push(known.clone());
                        }
                        continue;
                    }
                }
                if batch.is_forgotten(&key) && !explicit {
                    continue;
                }
                if batch.len() >= MAX_RUNS {
                    return Err(Error::Full);
                }
                let id = match self.stable_id(
                    batch,
                    &key.root,
                    key.entry.as_deref(),
                    candidate.name.as_deref(),
                ) {
                    Ok(id) => id,
                    Err(e) => {
                        skipped.push((candidate.dir.clone(), e));
                        continue;
                    }
                };
                let mut record = new_record(batch, &key.root, id)?;
                record.format = Some(candidate.format.clone());
                record.entry = key.entry;
                batch.add(record.clone());
                imported.push(record);
            }
            Ok((imported, existing, skipped))
        })?;
        report.imported = imported;
        report.existing = existing;
        report.skipped.extend(skipped);
        Ok(report)
    }

    /// Registers runs found beneath `beneath` (a job's run's `job/`) as
    /// [`Registry::register`] does, but only those whose directory is,
    /// checked now, exactly where it was found and beneath `beneath`: a
    /// directory swapped for a link after the walk listed it (pointing at
    /// another run, say) is skipped, never registered where the link leads.
    pub fn register_beneath(
        &self,
        beneath: &Path,
        found: &[Candidate],
    ) -> Result<ScanReport, Error> {
        let mut report = ScanReport::default();
        let mut plain = Vec::new();
        for candidate in found {
            match self.check_dir(&candidate.dir) {
                Ok(real) if real == candidate.dir && real.starts_with(beneath) => {
                    plain.push(candidate.clone());
                }
                Ok(_) => report
                    .skipped
                    .push((candidate.dir.clone(), Error::OutsideAllowedRoots)),
                Err(e) => report.skipped.push((candidate.dir.clone(), e)),
            }
        }
        let mut registered = self.register(&plain, false)?;
        registered.skipped.extend(report.skipped);
        Ok(registered)
    }

    /// Remembers `roots` (canonicalised) as allowed roots for later
    /// commands on this data dir.
    pub fn remember_roots(&self, roots: &[PathBuf]) -> Result<(), Error> {
        let roots: Vec<PathBuf> = roots
            .iter()
            .filter_map(|r| std::fs::canonicalize(r).ok())
            .collect();
        {
            let mut cache = self.cache();
            let known = self.store.refresh(&mut cache)?.state.roots();
            if roots.iter().all(|r| known.contains(r)) {
                return Ok(());
            }
        }
        self.update(|batch| {
            batch.add_roots(roots);
            Ok(())
        })
    }

    /// Forgets the remembered root `dir` (given as written; compared by its
    /// real path when it still exists): later commands no longer allow it
    /// unless it is given again. Its runs stay registered.
    pub fn forget_root(&self, dir: &Path) -> Result<PathBuf, Error> {
        let absolute = std::path::absolute(dir).map_err(|source| Error::Io {
            context: "resolving the root",
            source,
        })?;
        let canonical = std::fs::canonicalize(&absolute).unwrap_or_else(|_| absolute.clone());
        let mut forgotten = None;
        self.update(|batch| {
            let known = batch.roots().to_vec();
            let Some(root) = known
                .into_iter()
                .find(|r| *r == canonical || *r == absolute)
            else {
                return Err(Error::UnknownRoot(absolute.clone()));
            };
            batch.forget_roots(vec![root.clone()]);
            forgotten = Some(root);
            Ok(())
        })?;
        forgotten.ok_or(Error::UnknownRoot(absolute))
    }

    /// Forgets a run (by its id or an alias): discovery will not bring it
    /// back. Its files are never touched.
    pub fn forget(&self, id: &RunId) -> Result<RunRecord, Error> {
        self.update(|batch| batch.forget(id).ok_or(Error::UnknownRun))
    }

    /// Canonicalises `dir` and checks it against the allowed roots, as an
    /// import would: the canonical directory, or why it may not be a run.
    pub fn resolve(&self, dir: &Path) -> Result<PathBuf, Error> {
        self.check_dir(dir)
    }

    /// [`Registry::check_dir`] for each of `dirs`, in order, on a few
    /// threads when there are thousands (a first start-up finds them all
    /// new; each check is a few system calls).
    fn check_dirs(&self, dirs: &[&Path]) -> Vec<Result<PathBuf, Error>> {
        const PER_THREAD: usize = 4096;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
            .min(dirs.len().div_ceil(PER_THREAD));
        // Once for the batch: whether each allowed root is still its own
        // real path (what lets a plain path skip `canonicalize`).
        let roots_real = self.roots_still_real();
        let serial = |part: &[&Path]| {
            part.iter()
                .map(|d| self.check_dir_given(d, roots_real))
                .collect::<Vec<_>>()
        };
        if threads <= 1 {
            return serial(dirs);
        }
        std::thread::scope(|scope| {
            let parts = dirs.chunks(dirs.len().div_ceil(threads));
            let spawned: Vec<_> = parts
                .map(|part| {
                    let handle = std::thread::Builder::new()
                        .name("lab-registry-check".into())
                        .spawn_scoped(scope, move || serial(part));
                    (part, handle)
                })
                .collect();
            let mut results = Vec::with_capacity(dirs.len());
            for (part, handle) in spawned {
                match handle {
                    Ok(handle) => results.extend(
                        handle
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    ),
                    // No thread to be had: check this part here.
                    Err(_) => results.extend(serial(part)),
                }
            }
            results
        })
    }

    /// The stable id of the run at `dir` (canonical; a store's directory
    /// for a store's run, with its `entry`), its slug from `name` (else
    /// the directory's name), free in `batch`.
    fn stable_id(
        &self,
        batch: &Batch,
        dir: &Path,
        entry: Option<&str>,
        name: Option<&str>,
    ) -> Result<RunId, Error> {
        let name = default_name(dir, name);
        stable_id_in(&self.allowed_roots, dir, entry, name, |id| batch.has_id(id))
    }

    /// Canonicalises `dir` and checks it against the allowed roots.
    fn check_dir(&self, dir: &Path) -> Result<PathBuf, Error> {
        self.check_dir_given(dir, self.roots_still_real())
    }

    /// Whether every allowed root still resolves to itself: no component
    /// above one was swapped for a link since the Lab started. The walk
    /// looks only at the components below a root (with `lstat`, which
    /// follows links on the way), so a plain path below a root is its own
    /// real path only when the root is.
    fn roots_still_real(&self) -> bool {
        self.allowed_roots
            .iter()
            .all(|root| std::fs::canonicalize(root).is_ok_and(|real| real == *root))
    }

    /// [`Registry::check_dir`], told whether the allowed roots are still
    /// real (see [`Registry::roots_still_real`]).
    fn check_dir_given(&self, dir: &Path, roots_real: bool) -> Result<PathBuf, Error> {
        if !dir.is_absolute() {
            return Err(Error::RelativePath);
        }
        if dir.to_str().is_none() {
            return Err(Error::NonUtf8Path);
        }
        // Whether a place outside every allowed root exists (or can be
        // read) is none of the asker's business: one answer for all of them,
        // decided before the filesystem is asked anything about it.
        let canonical = match self.walk(dir) {
            Walk::Leaves => return Err(Error::OutsideAllowedRoots),
            // Every component below the (canonical) root was looked at and
            // none is a link, nor `.` or `..`, and the last is a directory:
            // the path is its own real path, as `canonicalize` would say
            // with a readlink per component and a stat more.
            Walk::Plain if roots_real => dir.components().collect(),
            Walk::Plain | Walk::Other => self.canonicalize(dir)?,
        };
        if self.allowed_roots.contains(&canonical) {
            return Err(Error::IsAllowedRoot);
        }
        if !self.is_under_allowed_root(&canonical) {
            return Err(Error::OutsideAllowedRoots);
        }
        Ok(canonical)
    }

    /// The real path of `dir`, which must be a directory.
    fn canonicalize(&self, dir: &Path) -> Result<PathBuf, Error> {
        let canonical = std::fs::canonicalize(dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound,
            std::io::ErrorKind::NotADirectory => Error::NotFound,
            _ => Error::Io {
                context: "resolving the directory",
                source: e,
            },
        })?;
        if canonical.to_str().is_none() {
            return Err(Error::NonUtf8Path);
        }
        if !canonical.is_dir() {
            return Err(Error::NotADirectory);
        }
        Ok(canonical)
    }
}

impl Registry {
    /// Whether a canonical path lies under an allowed root (by whole
    /// components: `runs-evil` is not under `runs`).
    pub fn is_under_allowed_root(&self, canonical: &Path) -> bool {
        self.allowed_roots
            .iter()
            .any(|root| canonical.starts_with(root))
    }

    /// Whether `dir` leads outside every allowed root: lexically (after
    /// `.` and `..` are resolved as text), or through a symbolic link on the
    /// way whose target is outside (or cannot be resolved). Only the parts
    /// of the path inside a root are looked at.
    pub fn leaves_allowed_roots(&self, dir: &Path) -> bool {
        matches!(self.walk(dir), Walk::Leaves)
    }

    /// The walk behind [`Registry::leaves_allowed_roots`], which also
    /// tells whether `dir` is plainly a directory under a root.
    fn walk(&self, dir: &Path) -> Walk {
        use std::path::Component;
        let mut normal = PathBuf::new();
        for part in dir.components() {
            match part {
                Component::RootDir => normal.push("/"),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    normal.pop();
                }
                Component::Normal(name) => normal.push(name),
            }
        }
        let inside = |p: &Path| self.allowed_roots.iter().any(|root| p.starts_with(root));
        if !inside(&normal) {
            return Walk::Leaves;
        }
        // Walk down from the root, component by component; a link on the way
        // must resolve inside a root.
        let mut prefix = PathBuf::new();
        let mut plain = true;
        let mut last_is_dir = false;
        for part in dir.components() {
            plain &= matches!(part, Component::RootDir | Component::Normal(_));
            prefix.push(part);
            if !inside(&prefix) {
                continue;
            }
            match std::fs::symlink_metadata(&prefix) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    plain = false;
                    match std::fs::canonicalize(&prefix) {
                        Ok(target) if inside(&target) => prefix = target,
                        _ => return Walk::Leaves,
                    }
                }
                Ok(meta) => last_is_dir = meta.is_dir(),
                // Not there, or not readable: what lies below is unknown but
                // no link took it out.
                Err(_) => return Walk::Other,
            }
        }
        // The allowed roots are canonical, so a path of plain names that
        // reaches one has real components up to it, and the walk looked at
        // every one after it (each is inside), the last one included.
        if plain && last_is_dir {
            Walk::Plain
        } else {
            Walk::Other
        }
    }
}

/// What walking a path down from its allowed root found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Walk {
    /// It leads outside every allowed root.
    Leaves,
    /// Only plain names (no `.`, `..` or links) down to a directory: the
    /// path is canonical already.
    Plain,
    /// It stays inside, but only `canonicalize` can say where it leads.
    Other,
}

/// How a candidate's root was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checked {
    /// When it was registered (it was registered when `register` looked).
    Before,
    /// By this `register`.
    Now,
}

/// A record of the run at `root` with id `id`, which must be free.
fn new_record(batch: &Batch, root: &Path, id: RunId) -> Result<RunRecord, Error> {
    if batch.len() >= MAX_RUNS {
        return Err(Error::Full);
    }
    if batch.has_id(&id) {
        return Err(Error::IdTaken(id));
    }
    Ok(RunRecord {
        id,
        root: root.to_path_buf(),
        imported_at: now_secs(),
        format: None,
        entry: None,
        aliases: Vec::new(),
    })
}

/// Seconds since the epoch, now.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A stable id's name: `name`, else the directory's, else `run`.
fn default_name<'a>(dir: &'a Path, name: Option<&'a str>) -> &'a str {
    name.filter(|n| !n.is_empty())
        .or_else(|| dir.file_name().and_then(|n| n.to_str()))
        .unwrap_or("run")
}

/// The stable id (SPEC §4, [`RunId::stable`]) of the run at `dir` (a
/// canonical path; a store's directory, with its `entry`), named `name`:
/// hashed below the longest of `roots` (canonical) that holds it, else
/// below `/`. `taken`: whether another run has an id.
fn stable_id_in(
    roots: &[PathBuf],
    dir: &Path,
    entry: Option<&str>,
    name: &str,
    taken: impl Fn(&RunId) -> bool,
) -> Result<RunId, Error> {
    let slash = Path::new("/");
    let root = roots
        .iter()
        .map(PathBuf::as_path)
        .filter(|root| dir.starts_with(root) && dir != *root)
        .max_by_key(|root| root.as_os_str().len())
        .unwrap_or(slash);
    let within = dir.strip_prefix(root).map_err(|_| Error::RelativePath)?;
    let place = Place {
        root: root.to_str().ok_or(Error::NonUtf8Path)?,
        within: within.to_str().ok_or(Error::NonUtf8Path)?,
        entry,
    };
    RunId::stable(name, &place, taken)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod data_dir_tests {
    use super::*;

    #[test]
    fn a_data_dir_is_compared_where_it_will_be_whatever_the_path_says() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("root/real")).unwrap();
        std::os::unix::fs::symlink(base.join("root/real"), base.join("alias")).unwrap();
        for (given, expected) in [
            // Not made yet: where it will be.
            (base.join("root/new/data"), base.join("root/new/data")),
            // `..` after a missing component.
            (base.join("nx/../root/data"), base.join("root/data")),
            (
                base.join("nx/more/../../root/./data"),
                base.join("root/data"),
            ),
            // A link on the way is followed.
            (base.join("alias/data"), base.join("root/real/data")),
            (base.join("alias/../x"), base.join("root/x")),
        ] {
            assert_eq!(canonical_as_far_as_exists(&given), expected, "{given:?}");
        }
        let roots = [base.join("root")];
        for data_dir in [
            base.join("nx/../root/labdata"),
            base.join("alias/data"),
            base.join("root"),
        ] {
            assert!(
                matches!(
                    check_data_dir_apart(&data_dir, &roots),
                    Err(Error::DataDirOverlapsRoot { .. })
                ),
                "{data_dir:?}"
            );
        }
        // The data dir's own runs/ is no overlap; a sibling is none either.
        let data = base.join("data");
        assert!(check_data_dir_apart(&data, &[data.join("runs")]).is_ok());
        assert!(check_data_dir_apart(&base.join("rootx"), &roots).is_ok());
    }
}
