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

use crate::discovery::format_of;

/// How long a run's reader goes without looking for new data, at most.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// Points all cached readers may hold together; the least recently used
/// are dropped beyond it (and read again when asked for).
const READER_BUDGET: usize = 8_000_000;
/// Most readers cached, whatever their size.
const MAX_READERS: usize = 4096;

struct Cached {
    root: std::path::PathBuf,
    format: lab_formats::Format,
    entry: Option<String>,
    reader: Arc<Mutex<RunReader>>,
    refreshed: Option<Instant>,
    used: Instant,
    points: usize,
}

/// The cache.
#[derive(Default)]
pub(crate) struct Readers {
    map: Mutex<HashMap<RunId, Cached>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Readers")
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Readers {
    /// The reader of `run`, refreshed when older than `max_age`. Blocking.
    pub(crate) fn reader(
        &self,
        run: &RunRecord,
        root: &RunRoot,
        max_age: Duration,
    ) -> Arc<Mutex<RunReader>> {
        let format = format_of(run);
        let (reader, stale) = {
            let mut readers = lock(&self.map);
            let fresh = || Cached {
                root: run.root.clone(),
                format,
                entry: run.entry.clone(),
                reader: Arc::new(Mutex::new(RunReader::new_entry(
                    format,
                    run.entry.as_deref(),
                ))),
                refreshed: None,
                used: Instant::now(),
                points: 0,
            };
            let entry = readers.entry(run.id.clone()).or_insert_with(fresh);
            // Compared without taking the reader's own lock: a reader busy
            // refreshing never holds up the others.
            if entry.root != run.root || entry.format != format || entry.entry != run.entry {
                *entry = fresh();
            }
            entry.used = Instant::now();
            let stale = entry.refreshed.is_none_or(|at| at.elapsed() >= max_age);
            if stale {
                entry.refreshed = Some(Instant::now());
            }
            (Arc::clone(&entry.reader), stale)
        };
        if stale {
            let points = {
                let mut r = lock(&reader);
                r.refresh(root);
                r.points()
            };
            let mut readers = lock(&self.map);
            if let Some(entry) = readers.get_mut(&run.id) {
                entry.points = points;
            }
            evict(&mut readers, &run.id);
        }
        reader
    }

    /// The root `run`'s artifacts are served from. Blocking.
    pub(crate) fn artifact_root(
        &self,
        run: &RunRecord,
    ) -> std::result::Result<Option<RunRoot>, lab_fs::Error> {
        let root = RunRoot::open_ambient(&run.root)?;
        if run.entry.is_none() {
            return Ok(Some(root));
        }
        let reader = self.reader(run, &root, REFRESH_EVERY);
        let info = lock(&reader).info();
        Ok(artifact_root(run, root, &info))
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
    root: RunRoot,
    info: &lab_formats::RunInfo,
) -> Option<RunRoot> {
    if run.entry.is_none() {
        return Some(root);
    }
    root.open_sub(info.artifact_dir.as_deref()?).ok()
}

/// Drops the least recently used readers beyond the budget (never `keep`).
fn evict(readers: &mut HashMap<RunId, Cached>, keep: &RunId) {
    let mut total: usize = readers.values().map(|c| c.points).sum();
    while total > READER_BUDGET || readers.len() > MAX_READERS {
        let Some(oldest) = readers
            .iter()
            .filter(|(id, _)| *id != keep)
            .min_by_key(|(_, c)| c.used)
            .map(|(id, _)| id.clone())
        else {
            break;
        };
        if let Some(gone) = readers.remove(&oldest) {
            total -= gone.points;
        }
    }
}
