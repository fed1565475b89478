//! The persisted registry: a snapshot, `registry.json`, and a journal of
//! the changes since, `registry.log`, changed only under an exclusive lock
//! on `registry.lock`.
//!
//! - **Snapshot**: versioned JSON of everything, replaced atomically (temp
//!   file, fsync, rename, fsync of the directory). It names the generation
//!   of the journal that follows it (`journal`).
//! - **Journal**: a header naming its generation, then one checksummed line
//!   per update (see [`crate::journal`]), appended with `O_APPEND` and
//!   `fdatasync` under the lock. A journal whose generation is not the
//!   snapshot's is stale: the snapshot already holds it. It is ignored, and
//!   the next writer replaces it.
//! - **Compaction**: when the journal holds more than
//!   `max(1000, runs / 4)` changes, or is missing or stale, or the update
//!   asks for it (giving old runs their stable ids does), the writer
//!   writes a new snapshot with the next generation, then puts a new journal
//!   (just a header) in place by rename. A crash before the snapshot's
//!   rename leaves the old pair; after it, the new snapshot and the old,
//!   now stale, journal: nothing lost, nothing applied twice.
//! - **Torn tail**: only the last line can be torn (every earlier one was
//!   synced before the next was written). One without its newline, or
//!   failing its checksum, is dropped and reported; the next writer
//!   truncates it before appending. A bad line with more after it is
//!   corruption, an error naming the file. A reader without the lock cannot
//!   tell a torn line from one being appended: it takes the lock shared if
//!   it is free to decide, and otherwise stops at the last whole line.
//! - **Readers** keep the state in memory with the journal open and the
//!   offset read so far; a `stat` of the journal per call tells whether it
//!   grew (read the new lines) or was replaced (reload everything).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::data_dir::O_NOFOLLOW;
use crate::journal::{self, Line, Tail};
use crate::state::{Batch, State};
use crate::{Error, RunKey, RunRecord};

/// The registry file format version this build writes (it reads 1 and 2
/// too: version 2 added `forgotten` and `roots`, and later `journal`;
/// version 3 runs' `aliases`, and ids that are stable). A build that
/// reads only version 2 refuses a version 3 file by name rather than
/// lose the aliases.
pub(crate) const VERSION: u32 = 3;

/// The first version written after ids became stable: a snapshot of an
/// earlier one holds runs with random ids, to migrate (see
/// `Registry::migrate_ids`).
const STABLE_IDS: u32 = 3;

/// What a snapshot of a registry not yet migrated to stable ids is written
/// as: its version before them, so that a compaction for another change
/// (while a migration that failed waits for the next open) never marks it
/// migrated. It holds no aliases; only the migration makes them.
const BEFORE_STABLE_IDS: u32 = 2;

/// Changes a journal holds before it is compacted into the snapshot, at
/// the least (else a quarter of the runs, so compaction's `O(n)` write is
/// amortised over `n / 4` updates).
pub(crate) const COMPACT_AFTER: usize = 1000;

/// The persisted form, separate from in-memory types (STYLE.md); written
/// as [`OnDiskRef`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    runs: Vec<RunRecord>,
    #[serde(default)]
    forgotten: Vec<RunKey>,
    #[serde(default)]
    roots: Vec<PathBuf>,
    /// The generation of the journal that follows this snapshot; absent in
    /// files written before the journal (whose journal, if any, is ignored).
    #[serde(default)]
    journal: Option<u64>,
}

/// [`OnDisk`] borrowed from the state, for writing without a copy of every
/// run (the test below reads one back as `OnDisk`).
#[derive(serde::Serialize)]
struct OnDiskRef<'a> {
    version: u32,
    runs: &'a [RunRecord],
    forgotten: Vec<&'a RunKey>,
    roots: &'a [PathBuf],
    journal: Option<u64>,
}

/// Identifies one version of a file: a rename makes a new inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) len: u64,
    pub(crate) mtime_ns: i128,
}

impl FileStamp {
    pub(crate) fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        }
    }

    fn same_file(&self, m: &std::fs::Metadata) -> bool {
        (self.dev, self.ino) == (m.dev(), m.ino())
    }
}

/// The registry as last read, and where reading stopped.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) state: State,
    /// The highest generation seen, so the next one is new.
    newest: u64,
    /// The snapshot as read (`None`: there was none).
    snapshot: Option<FileStamp>,
    journal: Option<Journal>,
}

/// The journal as read.
#[derive(Debug)]
struct Journal {
    /// Held open, so that its inode number cannot be reused by a later
    /// journal while we compare against it.
    file: File,
    /// The file as it was when last looked at (taken before reading, so
    /// all it counts was read).
    stamp: FileStamp,
    /// Whether all of it up to `stamp` was judged: good lines, or a torn
    /// tail reported. Not when a writer held the lock while a line after
    /// `offset` looked incomplete.
    settled: bool,
    /// Whether it follows the snapshot (else it is stale and ignored).
    current: bool,
    /// Where the last good line ends.
    offset: u64,
    /// How many changes its lines hold.
    changes: usize,
}

/// What a reader keeps: the registry (once read) and what it noticed.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    loaded: Option<Loaded>,
    warnings: Vec<String>,
}

impl Cache {
    /// Whether the registry is loaded in memory.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.is_some()
    }

    pub(crate) fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub(crate) fn warn(&mut self, warning: String) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }
}

#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    file: PathBuf,
    journal: PathBuf,
    lock: PathBuf,
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// Whether the caller holds `registry.lock` (shared or exclusive).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Lock,
    Nothing,
}

/// What a refresh without the lock could decide.
enum Refreshed {
    /// The cache holds what the files hold.
    Done,
    /// The journal ends in a line that is torn or still being written, or
    /// has a bad line that may be a torn one being replaced: only a reader
    /// holding the lock can tell.
    Unsure,
}

const JOURNAL_NAME: &str = "registry.log";
const SNAPSHOT_NAME: &str = "registry.json";

impl Store {
    pub(crate) fn open(data_dir: &Path) -> Result<Self, Error> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(io("creating the data directory"))?;
        Ok(Self {
            dir: data_dir.to_path_buf(),
            file: data_dir.join(SNAPSHOT_NAME),
            journal: data_dir.join(JOURNAL_NAME),
            lock: data_dir.join("registry.lock"),
        })
    }

    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    fn corrupt(&self, file: &Path, reason: String) -> Error {
        Error::Corrupt {
            file: file.to_path_buf(),
            reason,
        }
    }

    /// The data directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal's path.
    pub(crate) fn journal_path(&self) -> &Path {
        &self.journal
    }

    pub(crate) fn open_lock(&self) -> Result<File, Error> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock)
            .map_err(io("opening the registry lock"))
    }

    /// Brings `cache` up to date with the files and returns the registry.
    /// Without the lock; an unsure ending is settled under the lock taken
    /// shared, when no writer holds it.
    pub(crate) fn refresh<'c>(&self, cache: &'c mut Cache) -> Result<&'c Loaded, Error> {
        if let Refreshed::Unsure = self.refresh_as(cache, Held::Nothing)? {
            // Read-only is enough for `flock`. Only a writer holding the
            // lock defers the judgement (what it writes is not ours to judge
            // yet: stop at the last whole line). A lock file that is missing
            // or cannot be opened has no writer behind it (writers create
            // it before they append): the ending is decided now, so a bad
            // line is an error, never a silently shorter registry.
            // The shared lock, when taken, is held until the judgement is
            // made (`lock` lives to the end of this block).
            let lock = File::open(&self.lock).ok();
            let busy = lock.as_ref().is_some_and(|l| l.try_lock_shared().is_err());
            if !busy {
                self.refresh_as(cache, Held::Lock)?;
            }
            drop(lock);
        }
        Self::loaded(cache)
    }

    fn loaded(cache: &mut Cache) -> Result<&Loaded, Error> {
        cache.loaded.as_ref().ok_or_else(not_loaded)
    }

    fn refresh_as(&self, cache: &mut Cache, held: Held) -> Result<Refreshed, Error> {
        let result = self.try_refresh(cache, held);
        if result.is_err() {
            // Partly applied, perhaps: start from the files next time.
            cache.loaded = None;
        }
        result
    }

    fn try_refresh(&self, cache: &mut Cache, held: Held) -> Result<Refreshed, Error> {
        // One stat per call when a journal is there; without one (an
        // empty data dir, or a file from before the journal) the snapshot
        // is all there is, so it is the snapshot that is stat'ed.
        let meta = match std::fs::metadata(&self.journal) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.corrupt(&self.journal, e.to_string())),
        };
        if let Some(loaded) = &mut cache.loaded {
            match (&mut loaded.journal, &meta) {
                (Some(journal), Some(m)) if journal.stamp.same_file(m) => {
                    let now = FileStamp::of(m);
                    if now == journal.stamp && (journal.settled || !journal.current) {
                        return Ok(Refreshed::Done);
                    }
                    // Lab's writers only append to the current journal, or
                    // cut a torn tail and append: a stale journal that
                    // changed, one shorter than what was read, or one
                    // rewritten in place (same length, new mtime) is read
                    // again from the start.
                    let rewritten = now.len == journal.offset
                        && journal.stamp.len == journal.offset
                        && now.mtime_ns != journal.stamp.mtime_ns;
                    if journal.current && now.len >= journal.offset && !rewritten {
                        let at = journal.offset;
                        let mut bytes = Vec::new();
                        read_from(&journal.file, at, &mut bytes)
                            .map_err(|e| self.corrupt(&self.journal, e.to_string()))?;
                        journal.stamp = now;
                        return self.take_lines(cache, &bytes, at, held);
                    }
                }
                (None, None) => {
                    let stamp = match std::fs::metadata(&self.file) {
                        Ok(m) => Some(FileStamp::of(&m)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(e) => return Err(self.corrupt(&self.file, e.to_string())),
                    };
                    if stamp == loaded.snapshot {
                        return Ok(Refreshed::Done);
                    }
                }
                _ => {}
            }
        }
        self.load_all(cache, held)
    }

    /// Reads the snapshot and the journal from the start.
    fn load_all(&self, cache: &mut Cache, held: Held) -> Result<Refreshed, Error> {
        cache.loaded = None;
        // The journal is opened before the snapshot is read: a compaction
        // puts its snapshot in place before its journal, so a journal opened
        // first is never newer than the snapshot read after it. If it is
        // older (stale), the snapshot read holds all it held.
        let journal_file = match OpenOptions::new()
            .read(true)
            .custom_flags(O_NOFOLLOW)
            .open(&self.journal)
        {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.corrupt(&self.journal, e.to_string())),
        };
        let (on_disk, snapshot) = self.read_snapshot()?;
        let generation = on_disk.journal;
        let mut state = State::new(on_disk.runs, on_disk.forgotten, on_disk.roots);
        state.before_stable_ids = on_disk.version < STABLE_IDS;
        let mut loaded = Loaded {
            state,
            newest: generation.unwrap_or(0),
            snapshot,
            journal: None,
        };
        let Some(file) = journal_file else {
            cache.loaded = Some(loaded);
            return Ok(Refreshed::Done);
        };
        let mut bytes = Vec::new();
        let stamp = file
            .metadata()
            .and_then(|m| {
                read_from(&file, 0, &mut bytes)?;
                Ok(FileStamp::of(&m))
            })
            .map_err(|e| self.corrupt(&self.journal, e.to_string()))?;
        // The header is written with the journal, which is put in place by
        // rename: it is never torn.
        let header_end = bytes.iter().position(|&b| b == b'\n').map_or(0, |n| n + 1);
        let header = journal::scan(&bytes[..header_end]);
        let journal_generation = match header.lines.as_slice() {
            [
                Line::Journal {
                    version: journal::VERSION,
                    generation,
                },
            ] => *generation,
            [Line::Journal { version, .. }] => {
                return Err(self.corrupt(
                    &self.journal,
                    format!(
                        "journal version {version} is not supported (this build reads version {})",
                        journal::VERSION
                    ),
                ));
            }
            _ => {
                return Err(self.corrupt(&self.journal, "the journal has no header".into()));
            }
        };
        loaded.newest = loaded.newest.max(journal_generation);
        let current = generation == Some(journal_generation);
        loaded.journal = Some(Journal {
            file,
            stamp,
            settled: true,
            current,
            offset: header_end as u64,
            changes: 0,
        });
        cache.loaded = Some(loaded);
        if !current {
            return Ok(Refreshed::Done);
        }
        self.take_lines(cache, &bytes[header_end..], header_end as u64, held)
    }

    /// Applies the journal lines in `bytes`, which start at `offset`.
    fn take_lines(
        &self,
        cache: &mut Cache,
        bytes: &[u8],
        offset: u64,
        held: Held,
    ) -> Result<Refreshed, Error> {
        let scanned = journal::scan(bytes);
        let Some(loaded) = cache.loaded.as_mut() else {
            return Err(not_loaded());
        };
        let Some(journal) = loaded.journal.as_mut() else {
            return Err(not_loaded());
        };
        let mut batch = Batch::new(&mut loaded.state);
        for line in scanned.lines {
            let Line::Update(changes) = line else {
                return Err(self.corrupt(&self.journal, "a second journal header".into()));
            };
            journal.changes += changes.len();
            for change in changes {
                batch
                    .apply(change)
                    .map_err(|why| self.corrupt(&self.journal, why))?;
            }
        }
        batch.finish();
        journal.offset = offset + scanned.good_len as u64;
        let file_len = offset + bytes.len() as u64;
        journal.settled = matches!(scanned.tail, Tail::Clean) || held == Held::Lock;
        match scanned.tail {
            Tail::Clean => Ok(Refreshed::Done),
            _ if held == Held::Nothing => Ok(Refreshed::Unsure),
            Tail::Torn { len } => {
                let warning = format!(
                    "registry journal {}: dropped a torn last entry ({len} bytes at offset {}), \
                     left by an interrupted write; the next change removes it",
                    self.journal.display(),
                    journal.offset
                );
                cache.warn(warning);
                Ok(Refreshed::Done)
            }
            // `scan` puts a bad line right after the good ones, where
            // `journal.offset` now is.
            Tail::Bad { reason, .. } => Err(self.corrupt(
                &self.journal,
                format!(
                    "bad entry at offset {} of {file_len} bytes: {reason}",
                    journal.offset
                ),
            )),
        }
    }

    fn read_snapshot(&self) -> Result<(OnDisk, Option<FileStamp>), Error> {
        let corrupt = |reason: String| self.corrupt(&self.file, reason);
        let mut file = match File::open(&self.file) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let empty = OnDisk {
                    version: VERSION,
                    runs: Vec::new(),
                    forgotten: Vec::new(),
                    roots: Vec::new(),
                    journal: None,
                };
                return Ok((empty, None));
            }
            Err(e) => return Err(corrupt(e.to_string())),
        };
        let mut text = Vec::new();
        let stamp = file
            .metadata()
            .and_then(|m| {
                file.read_to_end(&mut text)?;
                Ok(FileStamp::of(&m))
            })
            .map_err(|e| corrupt(e.to_string()))?;
        let on_disk: OnDisk = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        if !(1..=VERSION).contains(&on_disk.version) {
            return Err(corrupt(format!(
                "format version {} is not supported (this build reads version {VERSION})",
                on_disk.version
            )));
        }
        let mut ids = std::collections::HashSet::with_capacity(on_disk.runs.len());
        for run in &on_disk.runs {
            if !run.root.is_absolute() {
                return Err(corrupt(format!("run {} has a relative root", run.id)));
            }
            for id in std::iter::once(&run.id).chain(&run.aliases) {
                if !ids.insert(id) {
                    return Err(corrupt(format!("run id {id} appears twice")));
                }
            }
        }
        for path in on_disk
            .forgotten
            .iter()
            .map(|k| &k.root)
            .chain(&on_disk.roots)
        {
            if !path.is_absolute() {
                return Err(corrupt(format!("{} is not absolute", path.display())));
            }
        }
        Ok((on_disk, Some(stamp)))
    }

    /// Runs `change` on the registry brought up to date under the exclusive
    /// lock and, if it succeeds and changed anything, appends the changes
    /// to the journal (or compacts).
    ///
    /// The file lock is taken before `cache`'s mutex, so readers in this
    /// process are not held up while another process holds the lock.
    pub(crate) fn update<T>(
        &self,
        cache: &Mutex<Cache>,
        change: impl FnOnce(&mut Batch) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let lock = self.open_lock()?;
        lock.lock().map_err(io("locking the registry"))?;
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.update_locked(&mut cache, change);
        // The lock is released when `lock` is dropped (and by the kernel if
        // this process dies).
        drop(lock);
        result
    }

    fn update_locked<T>(
        &self,
        cache: &mut Cache,
        change: impl FnOnce(&mut Batch) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // Under the lock, a refresh is never unsure.
        self.refresh_as(cache, Held::Lock)?;
        let (result, stale) = self.change_and_write(cache, change);
        if stale {
            // The state in memory is half changed, or ahead of the files:
            // read the files again next time.
            cache.loaded = None;
        }
        result
    }

    /// The update proper; with whether the state in memory is no longer
    /// what the files hold.
    fn change_and_write<T>(
        &self,
        cache: &mut Cache,
        change: impl FnOnce(&mut Batch) -> Result<T, Error>,
    ) -> (Result<T, Error>, bool) {
        let Some(loaded) = cache.loaded.as_mut() else {
            return (Err(not_loaded()), true);
        };
        let mut batch = Batch::new(&mut loaded.state);
        let value = match change(&mut batch) {
            Ok(value) => value,
            // Refusals (already registered, unknown run) change nothing.
            Err(e) => return (Err(e), batch.changed()),
        };
        let compact = batch.wants_compaction();
        let changes = batch.finish();
        if changes.is_empty() && !compact {
            return (Ok(value), false);
        }
        let limit = COMPACT_AFTER.max(loaded.state.runs().len() / 4);
        let written = match &mut loaded.journal {
            Some(journal)
                if !compact && journal.current && journal.changes + changes.len() <= limit =>
            {
                let count = changes.len();
                encode(&Line::Update(changes))
                    .and_then(|line| self.append(journal, &line))
                    .map(|()| journal.changes += count)
            }
            _ => self.compact(loaded),
        };
        match written {
            Ok(()) => (Ok(value), false),
            Err(e) => (Err(e), true),
        }
    }

    /// Appends `line` to the journal, first cutting off a torn tail.
    fn append(&self, journal: &mut Journal, line: &[u8]) -> Result<(), Error> {
        let mut file = OpenOptions::new()
            .append(true)
            .custom_flags(O_NOFOLLOW)
            .open(&self.journal)
            .map_err(io("opening the registry journal"))?;
        let meta = file
            .metadata()
            .map_err(io("reading the registry journal"))?;
        if !journal.stamp.same_file(&meta) || meta.len() < journal.offset {
            return Err(Error::Io {
                context: "appending to the registry journal",
                source: std::io::Error::other("the journal was replaced without the lock"),
            });
        }
        if meta.len() > journal.offset {
            // A torn tail (reported when it was read): cut it, so the
            // new line follows the last good one.
            file.set_len(journal.offset)
                .map_err(io("truncating the registry journal's torn tail"))?;
        }
        let written = file
            .write_all(line)
            .and_then(|()| file.sync_data())
            .and_then(|()| file.metadata());
        let meta = match written {
            Ok(meta) => meta,
            Err(e) => {
                // What was written may be in the page cache, readable but
                // not durable: take it back, so a failed update is not seen.
                let _ = file.set_len(journal.offset);
                return Err(io("appending to the registry journal")(e));
            }
        };
        journal.offset += line.len() as u64;
        journal.stamp = FileStamp::of(&meta);
        journal.settled = true;
        Ok(())
    }

    /// Writes everything as a new snapshot with the next generation, then
    /// puts an empty journal of that generation in place.
    fn compact(&self, loaded: &mut Loaded) -> Result<(), Error> {
        let generation = loaded.newest + 1;
        let state = &loaded.state;
        let mut body = serde_json::to_vec_pretty(&OnDiskRef {
            version: if state.before_stable_ids {
                BEFORE_STABLE_IDS
            } else {
                VERSION
            },
            runs: state.runs(),
            forgotten: state.forgotten().collect(),
            roots: state.roots(),
            journal: Some(generation),
        })
        .map_err(|e| Error::Io {
            context: "encoding the registry",
            source: std::io::Error::other(e),
        })?;
        body.push(b'\n');
        crate::data_dir::write_bytes(&self.dir, SNAPSHOT_NAME, &body)
            .map_err(io("replacing the registry"))?;
        loaded.newest = generation;
        loaded.snapshot = std::fs::metadata(&self.file)
            .map(|m| Some(FileStamp::of(&m)))
            .map_err(io("reading the registry"))?;
        if let Some(stamp) = loaded.snapshot {
            // The index of this snapshot (see `crate::index`). Written
            // before the journal of this generation: until that is in
            // place, the old journal's generation tells the index is not
            // yet to be used. One that cannot be written is one that does
            // not name this snapshot: the next import loads the snapshot.
            let index = crate::index::Index::of(&loaded.state, stamp, generation).encode();
            if crate::data_dir::write_bytes(&self.dir, crate::index::INDEX_NAME, &index).is_err() {
                let _ = std::fs::remove_file(self.dir.join(crate::index::INDEX_NAME));
            }
        }
        // A crash here leaves the new snapshot and the old journal, which
        // is stale now: readers ignore it and the next writer replaces it.
        loaded.journal = None;
        let header = encode(&Line::Journal {
            version: journal::VERSION,
            generation,
        })?;
        crate::data_dir::write_bytes(&self.dir, JOURNAL_NAME, &header)
            .map_err(io("starting the registry journal"))?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(O_NOFOLLOW)
            .open(&self.journal)
            .map_err(io("opening the registry journal"))?;
        let stamp = file
            .metadata()
            .map(|m| FileStamp::of(&m))
            .map_err(io("reading the registry journal"))?;
        loaded.journal = Some(Journal {
            file,
            stamp,
            settled: true,
            current: true,
            offset: header.len() as u64,
            changes: 0,
        });
        Ok(())
    }
}

fn encode(line: &Line) -> Result<Vec<u8>, Error> {
    journal::encode(line).map_err(|e| Error::Io {
        context: "encoding the registry",
        source: std::io::Error::other(e),
    })
}

/// A refresh that succeeded always leaves the registry loaded; this is the
/// error should it not.
fn not_loaded() -> Error {
    Error::Io {
        context: "reading the registry",
        source: std::io::Error::other("the registry was not loaded"),
    }
}

/// Appends the bytes of `file` from `offset` to its end to `out`.
pub(crate) fn read_from(file: &File, offset: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut at = offset;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match file.read_at(&mut chunk, at) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.extend_from_slice(&chunk[..n]);
                at += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may panic

    use super::*;

    #[test]
    fn the_borrowed_snapshot_is_read_back_whole() {
        let run = RunRecord {
            id: crate::RunId::parse("a").unwrap(),
            root: PathBuf::from("/r/a"),
            imported_at: 3,
            format: Some("lab".into()),
            entry: Some("e".into()),
            aliases: vec![crate::RunId::parse("a-3f9c2d").unwrap()],
        };
        let forgotten = run.key();
        let roots = [PathBuf::from("/r")];
        let text = serde_json::to_vec(&OnDiskRef {
            version: VERSION,
            runs: std::slice::from_ref(&run),
            forgotten: vec![&forgotten],
            roots: &roots,
            journal: Some(9),
        })
        .unwrap();
        let back: OnDisk = serde_json::from_slice(&text).unwrap();
        assert_eq!(
            (
                back.version,
                back.runs,
                back.forgotten,
                back.roots,
                back.journal
            ),
            (VERSION, vec![run], vec![forgotten], roots.to_vec(), Some(9))
        );
    }

    /// A registry from before stable ids stays one through compactions
    /// for other changes (a migration that failed is tried again at the
    /// next open, never skipped); the migration's own compaction writes the
    /// current version.
    #[test]
    fn only_the_migration_marks_an_old_registry_migrated() {
        let tmp = tempfile::tempdir().unwrap();
        let old = serde_json::json!({"version": 2, "runs": [], "forgotten": [], "roots": []});
        std::fs::write(tmp.path().join(SNAPSHOT_NAME), old.to_string()).unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let cache = Mutex::new(Cache::default());
        let version = || {
            let text = std::fs::read(tmp.path().join(SNAPSHOT_NAME)).unwrap();
            serde_json::from_slice::<OnDisk>(&text).unwrap().version
        };
        store
            .update(&cache, |batch| {
                batch.compact();
                Ok(())
            })
            .unwrap();
        assert_eq!(version(), BEFORE_STABLE_IDS);
        store
            .update(&cache, |batch| {
                assert!(batch.before_stable_ids());
                batch.migrated();
                batch.compact();
                Ok(())
            })
            .unwrap();
        assert_eq!(version(), VERSION);
        // Read again from the files: migrated.
        let fresh = Mutex::new(Cache::default());
        store
            .update(&fresh, |batch| {
                assert!(!batch.before_stable_ids());
                Ok(())
            })
            .unwrap();
    }
}
