//! The format readers of recently used runs: one `RunReader` per run,
//! refreshed at most once a second, within a point budget (the least
//! recently used are dropped and read again when asked for); and where a
//! run's artifacts are served from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab_formats::RunReader;
use lab_fs::RunRoot;
use lab_registry::{RunId, RunRecord};

use crate::Run;
pub(crate) use crate::lock;

/// How long a run's reader goes without looking for new data, at most.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// Points all cached readers may hold together by default (`[formats]
/// cached_points`); the least recently used are dropped beyond it (and
/// read again when asked for). A point is 24 bytes: about 190 MiB.
pub const READER_BUDGET: usize = 8_000_000;
/// Most readers cached, whatever their size.
const MAX_READERS: usize = 1024;

struct Cached {
    root: std::path::PathBuf,
    format: lab_formats::Format,
    entry: Option<String>,
    reader: Arc<Mutex<RunReader>>,
    refreshed: Option<Instant>,
    /// When it was last used, as a tick of [`Table::tick`].
    used: u64,
    points: usize,
}

/// The cached readers, least recently used first in `lru`, and the
/// points they hold together: an eviction is a pop, not a scan.
#[derive(Default)]
struct Table {
    runs: HashMap<RunId, Cached>,
    lru: std::collections::BTreeMap<u64, RunId>,
    tick: u64,
    points: usize,
}

impl Table {
    /// Marks `id` used now.
    fn touch(&mut self, id: &RunId) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.runs.get_mut(id) {
            self.lru.remove(&entry.used);
            entry.used = tick;
            self.lru.insert(tick, id.clone());
        }
    }

    fn remove(&mut self, id: &RunId) {
        if let Some(gone) = self.runs.remove(id) {
            self.lru.remove(&gone.used);
            self.points -= gone.points;
        }
    }
}

/// How long what a job wrote is taken as the same kind of run before it
/// is looked at again (a job may start writing TensorBoard events late).
const JOB_SOURCE_TTL: Duration = Duration::from_secs(5);

/// The cache.
#[derive(Default)]
pub(crate) struct Readers {
    map: Mutex<Table>,
    /// What each new reader is bounded by.
    limits: lab_formats::Limits,
    /// Points all cached readers may hold together.
    budget: usize,
    /// `DATA_DIR/runs`: a run directly in it is a job's run, whose data
    /// is what the job wrote in its `job/`.
    job_runs: Option<std::path::PathBuf>,
    /// Each job run's source, when it was looked at, and whether its
    /// children were handed out for registering since.
    sources: Mutex<HashMap<RunId, (Instant, lab_formats::job::JobSource, bool)>>,
    /// The job runs whose job ended: looked at once more after that, then
    /// never again (what an ended job wrote does not change).
    settled: Mutex<std::collections::HashSet<RunId>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Readers")
    }
}

impl Readers {
    /// An empty cache whose readers are bounded by `limits`; runs directly
    /// in `job_runs` are jobs' runs.
    pub(crate) fn new(
        limits: lab_formats::Limits,
        budget: usize,
        job_runs: Option<std::path::PathBuf>,
    ) -> Self {
        Self {
            map: Mutex::default(),
            limits,
            budget,
            job_runs,
            sources: Mutex::default(),
            settled: Mutex::default(),
        }
    }

    /// Whether `run` is a job's run: a directory directly in `DATA_DIR/runs`.
    pub(crate) fn is_job_run(&self, run: &RunRecord) -> bool {
        run.entry.is_none()
            && self
                .job_runs
                .as_deref()
                .is_some_and(|jobs| run.root.parent() == Some(jobs))
    }

    /// The directory of the jobs' runs (`DATA_DIR/runs`).
    pub(crate) fn job_runs_dir(&self) -> Option<&std::path::Path> {
        self.job_runs.as_deref()
    }

    /// The directory `dir` opened as a root (`RunRoot::open_ambient`: its
    /// real path checked), its files a job's — hard links refused — when
    /// it lies in the jobs' runs: what a job wrote is read under the same
    /// single-link rule wherever it is registered. The one way lab-core
    /// opens a run's (or a name's) directory.
    pub(crate) fn open_root(&self, dir: &std::path::Path) -> Result<RunRoot, lab_fs::Error> {
        // Only an absolute path is a directory (a run in object storage
        // has its URL there, which names nothing here).
        if !dir.is_absolute() {
            return Err(lab_fs::Error::NotFound);
        }
        Ok(self.marked(dir, RunRoot::open_ambient(dir)?))
    }

    /// Where `run`'s files are read: its directory opened as a root
    /// ([`Readers::open_root`]), or its directory in object storage.
    pub(crate) fn open_source(&self, run: &Run) -> Result<Source, lab_fs::Error> {
        match &run.remote {
            Some(remote) => Ok(Source::Remote(remote.root.storage(&remote.dir))),
            None => Ok(Source::Local(self.open_root(&run.root)?)),
        }
    }

    /// [`Readers::open_root`] from the kernel's caches alone, `None` when
    /// that cannot be done (`RunRoot::open_ambient_cached`).
    pub(crate) fn open_root_cached(&self, dir: &std::path::Path) -> Option<RunRoot> {
        if !dir.is_absolute() {
            return None;
        }
        Some(self.marked(dir, RunRoot::open_ambient_cached(dir)?))
    }

    fn marked(&self, dir: &std::path::Path, root: RunRoot) -> RunRoot {
        if self
            .job_runs
            .as_deref()
            .is_some_and(|jobs| dir.starts_with(jobs))
        {
            root.within_job()
        } else {
            root
        }
    }

    /// The data dir whose `runs/` holds the jobs' runs.
    pub(crate) fn data_dir(&self) -> Option<&std::path::Path> {
        self.job_runs.as_deref()?.parent()
    }

    /// The job's run whose `job/` holds `run`, if it is such a run (a run
    /// the job wrote, registered beneath its job's run).
    pub(crate) fn parent_of(&self, run: &RunRecord) -> Option<RunId> {
        let jobs = self.job_runs.as_deref()?;
        let rest = run.root.strip_prefix(jobs).ok()?;
        let mut parts = rest.components();
        let parent = parts.next()?.as_os_str().to_str()?;
        let job = parts.next()?.as_os_str();
        (job == "job").then(|| RunId::parse(parent).ok()).flatten()
    }

    /// Where a job's run reads what its job wrote; `None` for any other
    /// run (or a job's run without a `job/`). Blocking.
    pub(crate) fn job_source(&self, run: &RunRecord) -> Option<lab_formats::job::JobSource> {
        if !self.is_job_run(run) {
            return None;
        }
        let settled = lock(&self.settled).contains(&run.id);
        if let Some((at, source, _)) = lock(&self.sources).get(&run.id)
            && (settled || at.elapsed() < JOB_SOURCE_TTL)
        {
            return Some(source.clone());
        }
        let source = lab_formats::job::detect_job_source(&run.root.join("job"))?;
        let mut sources = lock(&self.sources);
        if sources.len() > 100_000 {
            sources.clear();
        }
        sources.insert(run.id.clone(), (Instant::now(), source.clone(), false));
        Some(source)
    }

    /// Marks `run`'s job ended: what it wrote is looked at once more, then
    /// kept (a walk of a job's files is not repeated every few seconds for
    /// every job that ever ran).
    pub(crate) fn settle(&self, run: &RunId) {
        let mut settled = lock(&self.settled);
        if settled.len() > 100_000 {
            settled.clear();
        }
        if settled.insert(run.clone()) {
            lock(&self.sources).remove(run);
        }
    }

    /// The runs a job wrote beneath its run's `job/` that were found since
    /// they were last asked for (each look at the job's files hands them
    /// out once), to register with the job's run as their parent.
    pub(crate) fn new_children(&self, run: &RunRecord) -> Vec<lab_formats::Found> {
        self.job_source(run);
        match lock(&self.sources).get_mut(&run.id) {
            Some((_, source, handed)) if !*handed => {
                *handed = true;
                source.children.clone()
            }
            _ => Vec::new(),
        }
    }

    /// The root a run's data is read from, and its format and store entry:
    /// its own directory, or for a job's run what the job wrote (opened
    /// beneath the run's root, never through a link out). Blocking.
    pub(crate) fn content(
        &self,
        run: &Run,
        root: &RunRoot,
    ) -> (
        Option<RunRoot>,
        std::path::PathBuf,
        lab_formats::Format,
        Option<String>,
    ) {
        if let Some(source) = self.job_source(run)
            && let Ok(sub) = root.open_sub(&source.sub)
        {
            return (
                Some(sub),
                run.root.join(&source.sub),
                source.format,
                source.entry,
            );
        }
        (None, run.root.clone(), run.format, run.entry.clone())
    }

    /// The reader of `run`, refreshed when older than `max_age`. Blocking.
    pub(crate) fn reader(
        &self,
        run: &Run,
        source: &Source,
        max_age: Duration,
    ) -> Arc<Mutex<RunReader>> {
        let (content, key, format, entry) = match source {
            Source::Local(root) => self.content(run, root),
            Source::Remote(_) => (None, run.root.clone(), run.format, run.entry.clone()),
        };
        let (reader, stale) = {
            let mut readers = lock(&self.map);
            let fresh = || Cached {
                root: key.clone(),
                format,
                entry: entry.clone(),
                reader: Arc::new(Mutex::new(RunReader::new_entry_with(
                    format,
                    entry.as_deref(),
                    &self.limits,
                ))),
                refreshed: None,
                used: 0,
                points: 0,
            };
            // Compared without taking the reader's own lock: a reader busy
            // refreshing never holds up the others.
            let same = readers.runs.get(&run.id).is_some_and(|cached| {
                cached.root == key && cached.format == format && cached.entry == entry
            });
            if !same {
                readers.remove(&run.id);
                readers.runs.insert(run.id.clone(), fresh());
            }
            readers.touch(&run.id);
            // Present: inserted above if it was not.
            let entry = readers.runs.entry(run.id.clone()).or_insert_with(fresh);
            let stale = entry.refreshed.is_none_or(|at| at.elapsed() >= max_age);
            if stale {
                entry.refreshed = Some(Instant::now());
            }
            (Arc::clone(&entry.reader), stale)
        };
        if stale {
            let points = {
                let mut r = lock(&reader);
                match (&content, source) {
                    (Some(sub), _) | (None, Source::Local(sub)) => {
                        r.refresh(&lab_formats::LocalStorage::new(sub));
                    }
                    (None, Source::Remote(storage)) => r.refresh(storage),
                }
                r.points()
            };
            let mut readers = lock(&self.map);
            if let Some(entry) = readers.runs.get_mut(&run.id) {
                let old = std::mem::replace(&mut entry.points, points);
                readers.points = readers.points - old + points;
            }
            evict(&mut readers, &run.id, self.budget);
        }
        reader
    }

    /// The root `run`'s artifacts are served from. Blocking.
    pub(crate) fn artifact_root(
        &self,
        run: &Run,
    ) -> std::result::Result<Option<Source>, lab_fs::Error> {
        let source = self.open_source(run)?;
        if run.entry.is_none() {
            return Ok(Some(source));
        }
        let reader = self.reader(run, &source, REFRESH_EVERY);
        let info = lock(&reader).info();
        Ok(artifact_root(run, source, &info))
    }

    /// Drops `id`'s reader (a forgotten run).
    pub(crate) fn forget(&self, id: &RunId) {
        lock(&self.map).remove(id);
    }
}

/// A run's own directory serves its artifacts; a store's run serves the
/// directory its store names for it, only when that lies inside the store
/// (lab-formats never reports one outside), else none.
pub(crate) fn artifact_root(
    run: &RunRecord,
    source: Source,
    info: &lab_formats::RunInfo,
) -> Option<Source> {
    if run.entry.is_none() {
        return Some(source);
    }
    let dir = info.artifact_dir.as_deref()?;
    match source {
        Source::Local(root) => root.open_sub(dir).ok().map(Source::Local),
        Source::Remote(storage) => storage.sub(dir).ok().map(Source::Remote),
    }
}

impl lab_fs::bundle::BundleSource for Source {
    fn list_artifacts(
        &self,
        allow: &lab_fs::Allowlist,
    ) -> Result<Vec<lab_fs::ArtifactInfo>, lab_fs::Error> {
        Source::list_artifacts(self, allow)
    }

    fn open_for_bundle(
        &self,
        name: &lab_fs::ArtifactName,
    ) -> Result<(Box<dyn std::io::Read + '_>, u64, std::time::SystemTime), lab_fs::Error> {
        match self {
            Source::Local(root) => root.open_for_bundle(name),
            Source::Remote(storage) => storage.open_for_bundle(name),
        }
    }
}

/// Where a run's files are read from.
pub(crate) enum Source {
    /// Its directory (or a store's), opened as a root.
    Local(RunRoot),
    /// Its directory in object storage.
    Remote(crate::remote::S3Storage),
}

impl Source {
    /// The directory as a local root, if it is one.
    pub(crate) fn local(&self) -> Option<&RunRoot> {
        match self {
            Source::Local(root) => Some(root),
            Source::Remote(_) => None,
        }
    }

    /// The allowlisted artifacts beneath it.
    pub(crate) fn list_artifacts(
        &self,
        allow: &lab_fs::Allowlist,
    ) -> Result<Vec<lab_fs::ArtifactInfo>, lab_fs::Error> {
        match self {
            Source::Local(root) => root.list_artifacts(allow),
            Source::Remote(storage) => Ok(storage.list_artifacts(allow)),
        }
    }

    /// Runs `f` with the directory as a storage.
    pub(crate) fn with_storage<R>(
        &self,
        f: impl FnOnce(&dyn lab_formats::storage::Storage) -> R,
    ) -> R {
        match self {
            Source::Local(root) => f(&lab_formats::LocalStorage::new(root)),
            Source::Remote(storage) => f(storage),
        }
    }
}

/// Drops the least recently used readers beyond the budget (never `keep`).
fn evict(readers: &mut Table, keep: &RunId, budget: usize) {
    while readers.points > budget || readers.runs.len() > MAX_READERS {
        let oldest = readers.lru.values().find(|id| *id != keep).cloned();
        let Some(oldest) = oldest else { break };
        readers.remove(&oldest);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    fn cached() -> Cached {
        Cached {
            root: "/r".into(),
            format: lab_formats::Format::Lab,
            entry: None,
            reader: Arc::new(Mutex::new(RunReader::new_entry(
                lab_formats::Format::Lab,
                None,
            ))),
            refreshed: None,
            used: 0,
            points: 0,
        }
    }

    #[test]
    fn eviction_drops_the_least_recently_used_but_never_the_one_in_use() {
        let id = |i: usize| RunId::parse(&format!("r{i}")).unwrap();
        let mut table = Table::default();
        for i in 0..MAX_READERS + 2 {
            table.runs.insert(id(i), cached());
            table.touch(&id(i));
        }
        // r0 used again: r1 and r2 are now the oldest; r1 is the one
        // being read and stays.
        table.touch(&id(0));
        evict(&mut table, &id(1), READER_BUDGET);
        assert_eq!(table.runs.len(), MAX_READERS);
        assert_eq!(table.lru.len(), MAX_READERS);
        assert!(table.runs.contains_key(&id(0)));
        assert!(table.runs.contains_key(&id(1)));
        assert!(!table.runs.contains_key(&id(2)));
        assert!(!table.runs.contains_key(&id(3)));
        // Points over the budget drop readers too, and the total follows.
        if let Some(big) = table.runs.get_mut(&id(4)) {
            big.points = READER_BUDGET + 1;
        }
        table.points = READER_BUDGET + 1;
        evict(&mut table, &id(1), READER_BUDGET);
        assert_eq!(table.points, 0);
        assert!(!table.runs.contains_key(&id(4)));
    }
}
