//! Discovery (SPEC §6): which directories under an allowed root are runs,
//! and of which format. It lists directories and, where names alone do not
//! decide, reads through the storage seam (one handle per directory, each
//! file's head at most once per walk): the head of a `run.json`,
//! `result.json`, `args.yaml`, a CSV log, a `trainer_state.json`, a
//! Trackio database's header; an `mlflow.db` store's or a Trackio
//! project's runs through a private copy; and, beneath a TensorBoard run,
//! the small event files of a sub-directory that may be an `add_hparams`
//! trial folded into the run (`trials::Folding`: at most 64 KiB per
//! sub-directory). It never follows a symbolic link, skips dot-directories
//! (a format's own, `.hydra`, is looked at, not walked), and stops at a
//! bounded depth and count with a warning.

use std::path::{Path, PathBuf};

use crate::Format;
use crate::storage::Storage;
use crate::tensorboard::PREFIX;

/// How far discovery goes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest directory looked at, counted from the root (its children
    /// are depth 1).
    pub max_depth: usize,
    /// Most directories listed in one walk.
    pub max_dirs: usize,
    /// Most runs reported by one walk.
    pub max_runs: usize,
    /// Most entries read from one directory.
    pub max_entries: usize,
    /// Most entries read in one walk, all directories together.
    pub max_total_entries: usize,
    /// Largest SQLite database (and largest `-wal`, `-journal` or `-shm`
    /// beside it) a store is read from, in bytes: `[formats]
    /// sqlite_max_bytes`, default [`DEFAULT_SQLITE_MAX_BYTES`] (512 MiB).
    /// Each read copies the database and its `-wal` into a private
    /// snapshot, so this bounds the disk and time one store may take.
    pub sqlite_max_bytes: u64,
    /// Most bytes the SQLite snapshots alive in the process hold together
    /// (`[formats] sqlite_snapshot_budget_bytes`, default
    /// [`DEFAULT_SQLITE_SNAPSHOT_BUDGET`], 2 GiB): a store whose copy would
    /// pass it is an error of that store ("read again later"), never
    /// waited for.
    pub sqlite_snapshot_budget: u64,
    /// Least time between two copies of one store (default 5 s): a store
    /// that changed since its snapshot was taken less than this ago is
    /// read from that snapshot, a few seconds stale, so a store touched
    /// in a loop is copied at most once per interval.
    pub sqlite_recopy_interval: std::time::Duration,
}

/// The default of [`Limits::sqlite_max_bytes`]: 512 MiB.
pub const DEFAULT_SQLITE_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// The default of [`Limits::sqlite_snapshot_budget`]: 2 GiB.
pub const DEFAULT_SQLITE_SNAPSHOT_BUDGET: u64 = 2 * 1024 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        // Room for a root holding 200,000 runs side by side (the registry
        // takes up to 2,000,000: `[formats] max_runs` and the others raise
        // these), and as many directories again inside stores; still a
        // bound on a hostile tree: listing is names only, about 6 MB at
        // the most entries.
        Self {
            max_depth: 8,
            max_dirs: 400_000,
            max_runs: 200_000,
            max_entries: 200_000,
            max_total_entries: usize::MAX,
            sqlite_max_bytes: DEFAULT_SQLITE_MAX_BYTES,
            sqlite_snapshot_budget: DEFAULT_SQLITE_SNAPSHOT_BUDGET,
            sqlite_recopy_interval: std::time::Duration::from_secs(5),
        }
    }
}

/// A run found by discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its directory (under the walked root, as the walk reached it); for
    /// a store's run, the store's directory.
    pub dir: PathBuf,
    /// Its format.
    pub format: Format,
    /// For a store's run: its id in the store (an MLflow run id).
    pub entry: Option<String>,
    /// The name the format gives it, when known at discovery.
    pub name: Option<String>,
}

/// What one walk found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Runs, in walk order (breadth first, names sorted).
    pub runs: Vec<Found>,
    /// What was skipped or cut short, one line each.
    pub warnings: Vec<String>,
    /// Directories folded into the TensorBoard run above them (hparams
    /// trials): never runs of their own, so a registry that holds one
    /// from before the folding may let it go.
    pub folded: Vec<PathBuf>,
    /// Run-like directories no reader recognises (an Aim repository, a
    /// video with no run files): how many, counted not read.
    pub unrecognised_count: usize,
    /// The first [`MAX_UNRECOGNISED_EXAMPLES`] of them, in walk order.
    pub unrecognised: Vec<Unrecognised>,
}

/// One listed entry: its name and whether it is a plain file or a real
/// directory (a symbolic link is neither).
struct Entry {
    name: String,
    file: bool,
    dir: bool,
}

/// What a walk walks: a local directory tree, or any [`Storage`] (an
/// object store's prefix). Directories are named relative to the tree's
/// top (`""`), `/`-separated.
trait Tree {
    /// The top's own name (a local root's last component).
    fn root_name(&self) -> &str;
    /// How a directory is named in warnings and in what the walk found.
    fn place(&self, rel: &str) -> PathBuf;
    /// The entries of `rel` (at most `max`; whether there were more).
    fn list(&self, rel: &str, max: usize) -> Result<(Vec<Entry>, bool), String>;
    /// The directory `rel` as a storage of its own.
    fn open(&self, rel: &str) -> Result<Box<dyn Storage + '_>, String>;
}

/// A local tree: listed by `read_dir` (kinds without following a link),
/// each directory opened as a [`crate::local::LocalStorage`] (its real
/// path checked).
struct LocalTree<'a>(&'a Path);

impl Tree for LocalTree<'_> {
    fn root_name(&self) -> &str {
        self.0.file_name().and_then(|n| n.to_str()).unwrap_or("")
    }

    fn place(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.0.to_path_buf()
        } else {
            self.0.join(rel)
        }
    }

    fn list(&self, rel: &str, max: usize) -> Result<(Vec<Entry>, bool), String> {
        list(&self.place(rel), max).map_err(|e| e.to_string())
    }

    fn open(&self, rel: &str) -> Result<Box<dyn Storage + '_>, String> {
        crate::local::LocalStorage::open_ambient(&self.place(rel))
            .map(|s| Box::new(s) as Box<dyn Storage>)
            .map_err(|e| e.to_string())
    }
}

/// A storage's tree: listed through [`Storage::list`] (every page, at
/// most [`crate::storage::MAX_LISTED`] entries a directory), each
/// directory a [`Sub`] storage of it. What it finds is named relative to
/// the storage (`team/run-1`).
struct StorageTree<'a>(&'a dyn Storage);

impl Tree for StorageTree<'_> {
    fn root_name(&self) -> &str {
        let origin = self.0.origin().trim_end_matches('/');
        origin.rsplit('/').next().unwrap_or("")
    }

    fn place(&self, rel: &str) -> PathBuf {
        PathBuf::from(rel)
    }

    fn list(&self, rel: &str, max: usize) -> Result<(Vec<Entry>, bool), String> {
        let mut out = Vec::new();
        let mut truncated = false;
        for e in crate::storage::list_all(self.0, rel).map_err(|e| e.to_string())? {
            if out.len() >= max {
                truncated = true;
                break;
            }
            out.push(Entry {
                file: e.kind == crate::storage::EntryKind::File,
                dir: e.kind == crate::storage::EntryKind::Dir,
                name: e.name,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((out, truncated))
    }

    fn open(&self, rel: &str) -> Result<Box<dyn Storage + '_>, String> {
        Ok(Box::new(Sub::new(self.0, rel)))
    }
}

/// The objects of a storage beneath one of its directories, as a storage
/// of their own: every name is that directory's `prefix/NAME` in the
/// storage beneath, which checks it (nothing above the directory can be
/// named: a name's `..` segment is refused before it is joined).
#[derive(Debug)]
pub struct Sub<'a> {
    inner: &'a dyn Storage,
    prefix: String,
    origin: String,
}

impl<'a> Sub<'a> {
    /// `inner`'s directory `prefix` (`""`: all of it).
    pub fn new(inner: &'a dyn Storage, prefix: &str) -> Self {
        let origin = if prefix.is_empty() {
            inner.origin().to_owned()
        } else {
            format!("{}/{prefix}", inner.origin().trim_end_matches('/'))
        };
        Self {
            inner,
            prefix: prefix.to_owned(),
            origin,
        }
    }

    /// `name` in the storage beneath, checked first.
    fn name(&self, name: &str) -> Result<String, crate::storage::StorageError> {
        if self.prefix.is_empty() {
            return Ok(name.to_owned());
        }
        if name.is_empty() {
            return Ok(self.prefix.clone());
        }
        crate::storage::check_name(name)?;
        Ok(format!("{}/{name}", self.prefix))
    }
}

impl Storage for Sub<'_> {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn list(
        &self,
        prefix: &str,
        page: Option<&crate::storage::PageToken>,
    ) -> Result<crate::storage::Page, crate::storage::StorageError> {
        self.inner.list(&self.name(prefix)?, page)
    }

    fn stat(&self, name: &str) -> Result<crate::storage::Stat, crate::storage::StorageError> {
        if name.is_empty() {
            crate::storage::check_name(name)?;
        }
        self.inner.stat(&self.name(name)?)
    }

    fn read_range(
        &self,
        name: &str,
        offset: u64,
        len: usize,
        version: Option<&crate::storage::Version>,
    ) -> Result<Vec<u8>, crate::storage::StorageError> {
        if name.is_empty() {
            crate::storage::check_name(name)?;
        }
        self.inner
            .read_range(&self.name(name)?, offset, len, version)
    }

    fn private_copy_version(
        &self,
        name: &str,
        max_bytes: u64,
    ) -> Result<crate::storage::Version, crate::storage::StorageError> {
        if name.is_empty() {
            crate::storage::check_name(name)?;
        }
        self.inner
            .private_copy_version(&self.name(name)?, max_bytes)
    }

    fn copy_to_private_file(
        &self,
        name: &str,
        limits: crate::storage::CopyLimits,
    ) -> Result<crate::storage::PrivateCopy, crate::storage::StorageError> {
        if name.is_empty() {
            crate::storage::check_name(name)?;
        }
        self.inner.copy_to_private_file(&self.name(name)?, limits)
    }
}

fn list(dir: &Path, max: usize) -> std::io::Result<(Vec<Entry>, bool)> {
    let mut out = Vec::new();
    let mut truncated = false;
    for entry in std::fs::read_dir(dir)? {
        if out.len() >= max {
            truncated = true;
            break;
        }
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        out.push(Entry {
            name,
            file: kind.is_file(),
            dir: kind.is_dir(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, truncated))
}

/// The files that make a directory a `lab` run.
const LAB_MARKERS: &[&str] = &["run.toml", "run.json", "metrics.jsonl", "metrics.csv"];

/// The format of the run `listing` shows, if it is one.
fn classify(listing: &Listing<'_>) -> Option<Format> {
    Format::ALL
        .into_iter()
        .find(|format| recognises(*format, listing))
}

/// What a run-like directory that no reader reads looks like: its
/// marker, by entry names alone (nothing is opened). The set is small and
/// fixed; such a directory is counted in `/api/status`, never read.
const UNRECOGNISED: &[(&str, &str)] = &[
    ("aim", "an Aim repository (.aim/)"),
    ("clearml", "ClearML offline sessions (offline/*.zip)"),
    ("comet", "Comet offline archives (.cometml-runs/)"),
    ("neptune", "a Neptune offline store (.neptune/)"),
    // A root's direct child (what an older Lab registered as a `lab` run).
    (
        "files",
        "a directory of videos, images or logs without run files",
    ),
];

/// Which [`UNRECOGNISED`] marker the directory `l` shows, if any (for a
/// directory no reader took).
fn unrecognised(l: &Listing<'_>) -> Option<&'static str> {
    let what = |kind: &str| {
        UNRECOGNISED
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, w)| *w)
    };
    if l.subdir(".aim") {
        return what("aim");
    }
    if l.name == "offline" && l.files().any(|f| f.ends_with(".zip")) {
        return what("clearml");
    }
    if l.subdir(".cometml-runs") {
        return what("comet");
    }
    if l.subdir(".neptune") {
        return what("neptune");
    }
    if l.depth == 1 {
        let allow = lab_fs::Allowlist::default();
        if l.files().any(|f| allow.check(f).is_ok()) {
            return what("files");
        }
    }
    None
}

/// Whether `name` parses as lab-fs parses an artifact name (for the
/// oracles, and for the MLflow reader's images: the one parser, not a
/// copy).
pub(crate) fn is_artifact_name(name: &str) -> bool {
    lab_fs::ArtifactName::parse(name).is_ok()
}

/// MLflow's `log_image` file-name grammar, lab-fs's (the one that holds
/// SPEC §5's `%` rule), for the MLflow readers: a pure parse, no I/O.
pub(crate) use lab_fs::mlflow_image_name;

/// A run-like directory discovery could not read, and what it looked like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unrecognised {
    /// The directory.
    pub dir: PathBuf,
    /// What it looked like (`an Aim repository (.aim/)`).
    pub what: &'static str,
}

/// Most unrecognised directories one walk names (the rest are counted).
pub const MAX_UNRECOGNISED_EXAMPLES: usize = 3;

/// What a reader looks at to tell whether a directory is its run: the
/// directory's name and entries (names and kinds, listed once), and the
/// first bytes of a file in it (through the storage seam: no link
/// followed, non-blocking, regular files only).
pub(crate) struct Listing<'a> {
    tree: &'a dyn Tree,
    /// The directory, relative to the walked root (`""` for the root).
    rel: &'a str,
    /// The directory's own name.
    pub(crate) name: &'a str,
    entries: &'a [Entry],
    /// How deep below the allowed root it lies (the root is 0).
    pub(crate) depth: usize,
    storage: std::cell::OnceCell<Result<Box<dyn Storage + 'a>, String>>,
    /// The first heads read (name, most bytes, what was read; at most
    /// [`MAX_CACHED_HEADS`]): a file two recognisers look at (`run.json`:
    /// Sacred's, else the Lab's) is read once per walk.
    heads: std::cell::RefCell<Vec<Head>>,
}

/// A file's head as [`Listing::head`] read it: name, most bytes, bytes.
type Head = (String, usize, Option<Vec<u8>>);

/// Most heads one [`Listing`] keeps.
const MAX_CACHED_HEADS: usize = 16;

impl<'a> Listing<'a> {
    fn new(tree: &'a dyn Tree, rel: &'a str, entries: &'a [Entry], depth: usize) -> Self {
        Listing {
            tree,
            rel,
            name: match rel.rsplit_once('/') {
                Some((_, name)) => name,
                None if rel.is_empty() => tree.root_name(),
                None => rel,
            },
            entries,
            depth,
            storage: std::cell::OnceCell::new(),
            heads: std::cell::RefCell::default(),
        }
    }

    /// Whether it holds a regular file `name`.
    pub(crate) fn file(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.file && e.name == name)
    }

    /// Whether it holds a real directory `name` (a link is not one).
    pub(crate) fn subdir(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.dir && e.name == name)
    }

    /// The names of its regular files.
    pub(crate) fn files(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| e.file)
            .map(|e| e.name.as_str())
    }

    /// The names of its real directories.
    pub(crate) fn subdirs(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| e.dir)
            .map(|e| e.name.as_str())
    }

    /// The directory itself as a storage, opened once (none when it
    /// cannot be opened as a root).
    pub(crate) fn storage(&self) -> Option<&dyn Storage> {
        self.opened().ok()
    }

    /// [`Listing::storage`], or why the directory cannot be opened.
    fn opened(&self) -> Result<&dyn Storage, String> {
        match self.storage.get_or_init(|| self.tree.open(self.rel)) {
            Ok(storage) => Ok(storage.as_ref()),
            Err(e) => Err(e.clone()),
        }
    }

    /// At most `max` bytes from the start of the file `name` beneath it
    /// (`name` may hold `/`): none when it is absent or not a regular file.
    pub(crate) fn head(&self, name: &str, max: usize) -> Option<Vec<u8>> {
        if let Some((_, _, head)) = self
            .heads
            .borrow()
            .iter()
            .find(|(n, m, _)| n == name && *m == max)
        {
            return head.clone();
        }
        let head = self.storage()?.read_range(name, 0, max, None).ok();
        let mut heads = self.heads.borrow_mut();
        // A few are kept (what two recognisers may both ask for), never
        // one per file of a directory of thousands (Trackio's `*.db`
        // sniff): a lookup stays a glance, the memory a few heads.
        if heads.len() < MAX_CACHED_HEADS {
            heads.push((name.to_owned(), max, head.clone()));
        }
        head
    }
}

/// Whether `format`'s reader takes the directory `l` shows as its run.
fn recognises(format: Format, l: &Listing<'_>) -> bool {
    match format {
        Format::Mlflow => {
            l.file("meta.yaml") && (l.subdir("metrics") || l.subdir("params") || l.subdir("tags"))
        }
        Format::Wandb => {
            (l.name.starts_with("run-") || l.name.starts_with("offline-run-"))
                && (l.files().any(|f| f.ends_with(".wandb")) || l.subdir("files"))
        }
        Format::Tensorboard => l.files().any(|f| f.starts_with(PREFIX)),
        Format::Lightning => {
            let versioned = l
                .name
                .strip_prefix("version_")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            versioned && l.file("metrics.csv")
        }
        Format::Hydra => {
            l.subdir(".hydra")
                && l.storage()
                    .is_some_and(|s| s.stat(".hydra/config.yaml").is_ok())
        }
        // Only its own files make a `lab` run: a directory that merely
        // holds a video is no run (SPEC §6), but counted (`unrecognised`).
        // A job's run (`DATA_DIR/runs/ID`, lab-runner's layout) is one by
        // its `provenance.json`, or while it runs by its `job/` and logs.
        Format::Lab => {
            LAB_MARKERS
                .iter()
                .any(|m| l.file(m) && (*m != "run.json" || crate::sacred::settled(l)))
                || l.file("provenance.json")
                || (l.subdir("job") && (l.file("stdout.log") || l.file("stderr.log")))
        }
        Format::Huggingface => crate::huggingface::recognises(l),
        Format::Ultralytics => crate::ultralytics::recognises(l),
        Format::Keras => crate::keras::recognises(l),
        Format::Sb3 => crate::sb3::recognises(l),
        Format::Raytune => crate::raytune::recognises(l),
        Format::Dvclive => crate::dvclive::recognises(l),
        // A Trackio project is never a directory's run: its runs are
        // entries of its database (`trackio::databases`).
        Format::Trackio => false,
        Format::Sacred => crate::sacred::recognises(l),
    }
}

/// The sub-directories of the TensorBoard run `listing` shows that are
/// hparams trials folded into it: the reader's own rule, through the
/// listing's storage (none when its directory cannot be opened as one).
fn folded_trials(listing: &Listing<'_>) -> Vec<String> {
    let dirs: Vec<String> = listing.subdirs().map(str::to_owned).collect();
    if dirs.is_empty() {
        return Vec::new();
    }
    let Some(storage) = listing.storage() else {
        return Vec::new();
    };
    let mut folding = crate::trials::Folding::default();
    folding.refresh(storage, &dirs);
    folding.folded().to_vec()
}

/// The format of the directory `dir` as a run on its own (for an explicit
/// import), or `None` when no reader recognises it.
pub fn detect(dir: &Path) -> Option<Format> {
    let (entries, _) = list(dir, Limits::default().max_entries).ok()?;
    classify(&Listing::new(&LocalTree(dir), "", &entries, 2))
}

/// What the directory `dir` looks like when it is run-like but no reader
/// reads it (an Aim repository…), as discovery would count it at `depth`.
pub fn unrecognised_at(dir: &Path, depth: usize) -> Option<&'static str> {
    let (entries, _) = list(dir, Limits::default().max_entries).ok()?;
    unrecognised(&Listing::new(&LocalTree(dir), "", &entries, depth))
}

/// Walks `root` breadth first and reports its runs. Below a run of the
/// `lab`, `mlflow`, `wandb`, `lightning`, `huggingface`, `raytune`,
/// `ultralytics`, `dvclive` or `sacred` format nothing more is looked for (its
/// subdirectories are its own: a Trainer output dir's `checkpoint-N/` and
/// `runs/`, a Ray trial's or an Ultralytics run's event files and weights,
/// `dvclive/`); below a TensorBoard or Hydra run the walk
/// goes on (TensorBoard's subdirectories are runs of their own, a Hydra
/// job's outputs often hold some) — except into the `add_hparams` trials
/// folded into a TensorBoard run, which are that run's (see
/// `trials::Folding` for the rule).
pub fn discover(root: &Path, limits: &Limits) -> Discovery {
    walk(&LocalTree(root), limits)
}

/// [`discover`] over a storage (an object store's prefix): the same walk,
/// the same recognisers, every directory listed through
/// [`Storage::list`] and read as a [`Sub`] storage. What it finds is named
/// relative to the storage (`team/run-1`; the top is never a run).
pub fn discover_storage(storage: &dyn Storage, limits: &Limits) -> Discovery {
    walk(&StorageTree(storage), limits)
}

fn walk(tree: &dyn Tree, limits: &Limits) -> Discovery {
    let root = tree.place("");
    let mut found = Discovery::default();
    let mut queue = std::collections::VecDeque::from([(String::new(), 0usize)]);
    let mut listed = 0usize;
    let mut entries_read = 0usize;
    while let Some((rel, depth)) = queue.pop_front() {
        if entries_read >= limits.max_total_entries {
            found.warnings.push(format!(
                "{}: stopped after {} entries; runs beyond were not looked for",
                root.display(),
                limits.max_total_entries
            ));
            break;
        }
        if listed >= limits.max_dirs {
            found.warnings.push(format!(
                "{}: stopped after {} directories; runs beyond were not looked for",
                root.display(),
                limits.max_dirs
            ));
            break;
        }
        listed += 1;
        let room = limits
            .max_entries
            .min(limits.max_total_entries - entries_read);
        let place = tree.place(&rel);
        let (entries, truncated) = match tree.list(&rel, room) {
            Ok(listing) => listing,
            Err(e) => {
                found.warnings.push(format!("{}: {e}", place.display()));
                continue;
            }
        };
        entries_read += entries.len();
        if truncated {
            found.warnings.push(format!(
                "{}: more than {} entries; the rest were not looked at",
                place.display(),
                limits.max_entries
            ));
        }
        // Every look at the directory goes through one listing: its
        // handle opened once, a file's head read once.
        let listing = Listing::new(tree, &rel, &entries, depth);
        let dir = place;
        if listing.file(crate::mlflow_db::DB_NAME) {
            let listed = listing
                .opened()
                .and_then(|storage| crate::mlflow_db::list_runs(storage, limits));
            match listed {
                Ok(runs) => {
                    for (id, name) in runs {
                        if found.runs.len() >= limits.max_runs {
                            break;
                        }
                        found.runs.push(Found {
                            dir: dir.clone(),
                            format: Format::Mlflow,
                            entry: Some(id),
                            name,
                        });
                    }
                }
                Err(e) => found.warnings.push(format!("{}: {e}", dir.display())),
            }
        }
        // Trackio project databases: each of their runs is a run, and
        // their `media/` and `inbox/` are theirs, not walked.
        let projects = crate::trackio::databases(&listing);
        if !projects.is_empty() {
            match listing.opened() {
                Ok(storage) => {
                    for db in &projects {
                        match crate::trackio::list_runs(storage, db, limits) {
                            Ok(runs) => {
                                for (run, name) in runs {
                                    if found.runs.len() >= limits.max_runs {
                                        break;
                                    }
                                    found.runs.push(Found {
                                        dir: dir.clone(),
                                        format: Format::Trackio,
                                        entry: Some(crate::trackio::entry(db, &run)),
                                        name,
                                    });
                                }
                            }
                            Err(e) => found.warnings.push(format!("{}: {e}", dir.display())),
                        }
                    }
                }
                Err(e) => found.warnings.push(format!("{}: {e}", dir.display())),
            }
        }
        let format = if depth == 0 { None } else { classify(&listing) };
        if let Some(format) = format {
            if found.runs.len() >= limits.max_runs {
                found.warnings.push(format!(
                    "{}: stopped at {} runs",
                    root.display(),
                    limits.max_runs
                ));
                break;
            }
            found.runs.push(Found {
                dir: dir.clone(),
                format,
                entry: None,
                name: None,
            });
            // A Hugging Face output dir's `checkpoint-N/` copies and the
            // event files under its `runs/` are the run's own; so are a
            // Ray trial's, an Ultralytics run's or a DVCLive run's
            // subdirectories, event files included (SPEC §6).
            if matches!(
                format,
                Format::Lab
                    | Format::Mlflow
                    | Format::Lightning
                    | Format::Wandb
                    | Format::Huggingface
                    | Format::Raytune
                    | Format::Ultralytics
                    | Format::Dvclive
                    | Format::Sacred
            ) {
                continue;
            }
        }
        if format.is_none()
            && depth > 0
            && let Some(what) = unrecognised(&listing)
        {
            found.unrecognised_count += 1;
            if found.unrecognised.len() < MAX_UNRECOGNISED_EXAMPLES {
                found.unrecognised.push(Unrecognised {
                    dir: dir.clone(),
                    what,
                });
            }
        }
        if depth >= limits.max_depth {
            continue;
        }
        let folded = if format == Some(Format::Tensorboard) {
            folded_trials(&listing)
        } else {
            Vec::new()
        };
        found
            .folded
            .extend(folded.iter().map(|name| dir.join(name)));
        for entry in &entries {
            let trackio_own =
                !projects.is_empty() && (entry.name == "media" || entry.name == "inbox");
            if entry.dir
                && !entry.name.starts_with('.')
                && !folded.contains(&entry.name)
                && !trackio_own
            {
                let sub = if rel.is_empty() {
                    entry.name.clone()
                } else {
                    format!("{rel}/{}", entry.name)
                };
                queue.push_back((sub, depth + 1));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `files` (name, text) in `root/rel`, directories made.
    fn plant(root: &Path, rel: &str, files: &[(&str, &str)]) {
        let d = root.join(rel);
        std::fs::create_dir_all(&d).unwrap();
        for (f, text) in files {
            if let Some(parent) = Path::new(f).parent() {
                std::fs::create_dir_all(d.join(parent)).unwrap();
            }
            std::fs::write(d.join(f), text).unwrap();
        }
    }

    /// The runs `found` holds as (directory within `root`, format), sorted.
    fn runs_of(root: &Path, found: &Discovery) -> Vec<(String, Format)> {
        let mut got: Vec<(String, Format)> = found
            .runs
            .iter()
            .map(|f| {
                (
                    f.dir.strip_prefix(root).unwrap().display().to_string(),
                    f.format,
                )
            })
            .collect();
        got.sort();
        got
    }

    #[test]
    fn each_format_is_found_once_and_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let mk = |rel: &str, files: &[&str]| {
            let files: Vec<(&str, &str)> = files.iter().map(|f| (*f, "x")).collect();
            plant(&root, rel, &files);
        };
        mk("tb-ppo-seed1", &["events.out.tfevents.1.host"]);
        mk("tb-ppo-seed1/1700000000.1", &["events.out.tfevents.2.host"]);
        mk("mlruns/0", &["meta.yaml"]);
        mk("mlruns/0/abc", &["meta.yaml", "metrics/loss", "params/lr"]);
        mk("mlruns/0/def", &["meta.yaml", "tags/mlflow.runName"]);
        mk("mlruns/.trash/old", &["meta.yaml", "params/lr"]);
        mk("lightning_logs/version_0", &["metrics.csv", "hparams.yaml"]);
        mk(
            "outputs/2026-12-01/10-00-00",
            &[".hydra/config.yaml", "main.log"],
        );
        mk("plain", &["run.toml"]);
        mk(
            "wandb/offline-run-20261201_000000-abc",
            &["run-abc.wandb", "files/media/videos/v_1_h.mp4"],
        );
        std::os::unix::fs::symlink(
            root.join("wandb/offline-run-20261201_000000-abc"),
            root.join("wandb/latest-run"),
        )
        .unwrap();
        mk("video-only", &["output.mp4"]);
        mk("deep/a/b/c/d/e/f/g/h", &["run.toml"]);
        std::os::unix::fs::symlink(root.join("plain"), root.join("latest-run")).unwrap();
        let found = discover(&root, &Limits::default());
        let got = runs_of(&root, &found);
        assert_eq!(
            got,
            [
                ("lightning_logs/version_0".to_owned(), Format::Lightning),
                ("mlruns/0/abc".to_owned(), Format::Mlflow),
                ("mlruns/0/def".to_owned(), Format::Mlflow),
                ("outputs/2026-12-01/10-00-00".to_owned(), Format::Hydra),
                ("plain".to_owned(), Format::Lab),
                ("tb-ppo-seed1".to_owned(), Format::Tensorboard),
                ("tb-ppo-seed1/1700000000.1".to_owned(), Format::Tensorboard),
                (
                    "wandb/offline-run-20261201_000000-abc".to_owned(),
                    Format::Wandb
                ),
            ]
        );
        // A directory holding only a video is no run: counted.
        assert_eq!(found.unrecognised_count, 1);
        assert_eq!(found.unrecognised[0].dir, root.join("video-only"));
        // Bounded: a count limit stops the walk with a warning.
        let small = Limits {
            max_dirs: 3,
            ..Limits::default()
        };
        let cut = discover(&root, &small);
        assert!(cut.warnings.iter().any(|w| w.contains("stopped after 3")));
        storage_walk_agrees(&root);
    }

    /// The tree under `root` as objects (regular files only: a link or a
    /// FIFO has no object), its origin the root's path.
    fn mirror(root: &Path) -> crate::fuzz::MemoryStorage {
        let memory = crate::fuzz::MemoryStorage::new(root.to_str().unwrap());
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    stack.push(entry.path());
                } else if kind.is_file() {
                    let rel = entry.path().strip_prefix(root).unwrap().to_owned();
                    memory.put(rel.to_str().unwrap(), &std::fs::read(entry.path()).unwrap());
                }
            }
        }
        memory
    }

    /// A walk of the same tree through a storage (as of an object store's
    /// prefix) finds the same runs, of the same formats, names and
    /// entries, and counts the same run-like directories.
    fn storage_walk_agrees(root: &Path) {
        let local = discover(root, &Limits::default());
        let memory = mirror(root);
        let objects = discover_storage(&memory, &Limits::default());
        let rel = |f: &Found| {
            (
                f.dir.strip_prefix(root).unwrap_or(&f.dir).to_owned(),
                f.format,
                f.entry.clone(),
                f.name.clone(),
            )
        };
        let want: Vec<_> = local.runs.iter().map(rel).collect();
        let got: Vec<_> = objects.runs.iter().map(rel).collect();
        assert!(!want.is_empty());
        assert_eq!(got, want);
        assert_eq!(objects.unrecognised_count, local.unrecognised_count);
        let folded: Vec<_> = local
            .folded
            .iter()
            .map(|d| d.strip_prefix(root).unwrap().to_owned())
            .collect();
        assert_eq!(objects.folded, folded);
    }

    /// (The tree of `each_format_is_found_once_and_links_are_not_followed`
    /// and the others is walked through a storage there too.)
    #[test]
    fn a_storage_is_walked_as_its_tree_would_be() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let mk = |rel: &str, files: &[&str]| {
            let files: Vec<(&str, &str)> = files.iter().map(|f| (*f, "x")).collect();
            plant(&root, rel, &files);
        };
        mk("mlruns/0", &["meta.yaml"]);
        mk("mlruns/0/abc", &["meta.yaml", "metrics/loss", "params/lr"]);
        mk("outputs/2026-12-01/10-00-00", &[".hydra/config.yaml"]);
        // A `.hydra/` without its config is no Hydra run in either.
        mk("outputs/2026-12-01/11-00-00", &["main.log"]);
        std::fs::create_dir_all(root.join("outputs/2026-12-01/11-00-00/.hydra")).unwrap();
        mk("plain", &["run.toml"]);
        plant(
            &root,
            "sacred/1",
            &[
                (
                    "run.json",
                    r#"{"status": "COMPLETED", "experiment": {}, "host": {}, "command": "main"}"#,
                ),
                ("config.json", "{}"),
                ("metrics.json", "{}"),
            ],
        );
        storage_walk_agrees(&root);
        // Relative to a directory of the storage, as a `Sub` of it.
        let memory = mirror(&root);
        let sub = Sub::new(&memory, "mlruns");
        let found = discover_storage(&sub, &Limits::default());
        let dirs: Vec<_> = found.runs.iter().map(|f| f.dir.clone()).collect();
        assert_eq!(dirs, [PathBuf::from("0/abc")]);
        assert!(matches!(
            sub.read_range("../plain/run.toml", 0, 10, None),
            Err(crate::storage::StorageError::InvalidName(_))
        ));
        assert_eq!(
            sub.read_range("0/abc/params/lr", 0, 10, None).unwrap(),
            b"x"
        );
        assert_eq!(sub.origin(), format!("{}/mlruns", root.display()));
    }

    /// Where two formats could claim one directory, SPEC §6's precedence
    /// and each reader's own rule decide; a Trainer output dir's
    /// checkpoints and event files are its own.
    #[test]
    fn overlapping_formats_are_one_run_of_the_right_format() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let mk = |rel: &str, files: &[(&str, &str)]| plant(&root, rel, files);
        let state = r#"{"log_history": [], "global_step": 0}"#;
        let keras = "epoch,loss,val_loss\n0,0.5,0.6\n";
        let progress = "time/total_timesteps,rollout/ep_rew_mean\n64,1.5\n";
        let monitor =
            "#{\"t_start\": 1700000000.5, \"env_id\": \"CartPole-v1\"}\nr,l,t\n9.0,9,0.1\n";
        // HF: checkpoints and `runs/` event files belong to the output dir.
        mk(
            "hf-out",
            &[
                ("trainer_state.json", state),
                ("checkpoint-2/trainer_state.json", state),
                ("checkpoint-2/training_args.bin", "pickle"),
                ("runs/Dec01_10-00-00_host/events.out.tfevents.1.host", "x"),
            ],
        );
        // Stopped before save_state(): the checkpoints make it a run.
        mk(
            "hf-ckpt-only",
            &[
                ("checkpoint-2/trainer_state.json", state),
                ("checkpoint-4/trainer_state.json", state),
            ],
        );
        // A Keras header in a Lightning version_N, or in the Lab's own
        // metrics.csv, is theirs.
        mk(
            "lightning_logs/version_0",
            &[("metrics.csv", keras), ("training.log", keras)],
        );
        mk("lab-run", &[("metrics.csv", keras)]);
        mk(
            "lab-run-toml",
            &[("run.toml", "name = 'x'"), ("history.csv", keras)],
        );
        // An Ultralytics run's results.csv is never Keras'.
        mk(
            "runs/detect/train",
            &[
                ("args.yaml", "task: detect\nmode: train\nepochs: 3\n"),
                ("results.csv", "epoch,time,train/box_loss\n1,2.5,0.9\n"),
            ],
        );
        // Keras by header, whatever the name and separator.
        mk(
            "keras-semicolon",
            &[("training.log", "epoch;acc;loss\n0;0.5;1\n")],
        );
        mk(
            "keras-named",
            &[("my_log.csv", keras), ("notes.log", "hello\n")],
        );
        mk(
            "not-keras",
            &[("train.log", "INFO started\n"), ("data.csv", "a,b\n")],
        );
        // SB3: progress.csv beside event files and a monitor; a monitor
        // alone; an `epoch,…` progress.csv is neither SB3's nor Keras'.
        mk(
            "sb3-ppo",
            &[
                ("progress.csv", progress),
                ("monitor.csv", monitor),
                ("events.out.tfevents.1.host", "x"),
            ],
        );
        mk(
            "sb3-monitors",
            &[("0.monitor.csv", monitor), ("1.monitor.csv", monitor)],
        );
        mk("progress-epoch", &[("progress.csv", keras)]);
        // A Hydra job whose script wrote a Keras log: Keras (the Hydra
        // config's params are merged into it by the reader).
        mk(
            "outputs/2026-12-01/10-00-00",
            &[(".hydra/config.yaml", "lr: 0.1\n"), ("training.log", keras)],
        );
        let found = discover(&root, &Limits::default());
        let got = runs_of(&root, &found);
        let mut expected = vec![
            ("hf-ckpt-only", Format::Huggingface),
            ("hf-out", Format::Huggingface),
            ("keras-named", Format::Keras),
            ("keras-semicolon", Format::Keras),
            ("lab-run", Format::Lab),
            ("lab-run-toml", Format::Lab),
            ("lightning_logs/version_0", Format::Lightning),
            ("outputs/2026-12-01/10-00-00", Format::Keras),
            ("sb3-monitors", Format::Sb3),
            ("sb3-ppo", Format::Sb3),
        ];
        // The Ultralytics run is that reader's, never Keras'.
        expected.push(("runs/detect/train", Format::Ultralytics));
        let mut expected: Vec<(String, Format)> = expected
            .into_iter()
            .map(|(d, f)| (d.to_owned(), f))
            .collect();
        expected.sort();
        assert_eq!(got, expected);
        assert_eq!(detect(&root.join("hf-out/checkpoint-2")), None);
        assert_eq!(detect(&root.join("progress-epoch")), None);
        storage_walk_agrees(&root);
    }

    /// Where the readers of Ray Tune, Ultralytics and DVCLive overlap with
    /// others, precedence and the stopped descent decide (SPEC §6): event
    /// files in a Ray trial or an Ultralytics run are that run's, never a
    /// TensorBoard run of their own; an Ultralytics `results.csv` (an
    /// `epoch` header a Keras sniffer would take) is Ultralytics'; a Ray
    /// experiment directory is no run; a `dvclive/` directory is its
    /// parent's run, or the run itself right beneath the root.
    #[test]
    fn ray_trials_ultralytics_and_dvclive_runs_take_what_lies_in_them() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let mk = |rel: &str, files: &[(&str, &str)]| plant(&root, rel, files);
        let trial = "ray/exp/trainable_a1_00000_0_lr=0.1_2026-12-07_11-25-56";
        mk(
            "ray/exp",
            &[
                ("experiment_state-2026-12-07_11-25-56.json", "{}"),
                ("tuner.pkl", "x"),
                ("basic-variant-state-2026-12-07_11-25-56.json", "{}"),
            ],
        );
        mk(
            trial,
            &[
                ("params.json", "{\"lr\": 0.1}"),
                ("params.pkl", "x"),
                ("result.json", "{\"trial_id\": \"a1_00000\"}\n"),
                ("progress.csv", "loss,training_iteration\n"),
                ("events.out.tfevents.1.host", "x"),
                ("checkpoint_000000/events.out.tfevents.2.host", "x"),
                ("checkpoint_000000/metrics.csv", "step,loss\n"),
            ],
        );
        // A Ray trial without its pickle, known by its result's trial id.
        mk(
            "ray/exp/trainable_a1_00001_1_lr=0.2_2026-12-07_11-25-56",
            &[
                ("params.json", "{\"lr\": 0.2}"),
                ("result.json", "{\"loss\": 1, \"trial_id\": \"a1_00001\"}\n"),
            ],
        );
        // params.json and result.json that are not Ray's: not a trial.
        mk(
            "not-ray",
            &[
                ("params.json", "{}"),
                ("result.json", "{\"score\": 1}"),
                ("run.json", "{}"),
            ],
        );
        let args = "task: detect\nmode: train\nmodel: yolov8n.pt\nepochs: 3\n";
        mk(
            "runs/detect/train2",
            &[
                ("args.yaml", args),
                ("results.csv", "epoch,time,train/box_loss\n1,2.5,1.2\n"),
                ("results.png", "x"),
                ("events.out.tfevents.3.host", "x"),
                ("weights/last.pt", "x"),
                ("weights/events.out.tfevents.4.host", "x"),
            ],
        );
        // Just started: args and weights, no results yet.
        mk(
            "runs/segment/proj/exp",
            &[("args.yaml", args), ("weights/last.pt", "x")],
        );
        // An args.yaml that is not Ultralytics': not its run.
        mk(
            "other/args-only",
            &[("args.yaml", "lr: 0.1\n"), ("weights/a.pt", "x")],
        );
        mk(
            "project",
            &[
                ("dvc.yaml", "metrics:\n- dvclive/metrics.json\n"),
                ("dvclive/metrics.json", "{\"acc\": 1}"),
                ("dvclive/params.yaml", "lr: 0.1\n"),
                ("dvclive/plots/metrics/acc.tsv", "step\tacc\n"),
                ("dvclive/metrics.csv", "step,acc\n"),
            ],
        );
        mk(
            "dvclive",
            &[("plots/metrics/train/loss.tsv", "step\tloss\n")],
        );
        let found = discover(&root, &Limits::default());
        let got = runs_of(&root, &found);
        assert_eq!(
            got,
            [
                ("dvclive".to_owned(), Format::Dvclive),
                ("not-ray".to_owned(), Format::Lab),
                ("project".to_owned(), Format::Dvclive),
                (trial.to_owned(), Format::Raytune),
                (
                    "ray/exp/trainable_a1_00001_1_lr=0.2_2026-12-07_11-25-56".to_owned(),
                    Format::Raytune
                ),
                ("runs/detect/train2".to_owned(), Format::Ultralytics),
                ("runs/segment/proj/exp".to_owned(), Format::Ultralytics),
            ]
        );
        // An explicit import of each says the same.
        assert_eq!(detect(&root.join(trial)), Some(Format::Raytune));
        assert_eq!(detect(&root.join("ray/exp")), None);
        assert_eq!(
            detect(&root.join("runs/detect/train2")),
            Some(Format::Ultralytics)
        );
        assert_eq!(detect(&root.join("project")), Some(Format::Dvclive));
        storage_walk_agrees(&root);
    }

    /// A Sacred `run.json` (an `experiment` object, `host`, `command`) is
    /// not a Lab `run.json`: the directory is a Sacred run, with or
    /// without its `config.json` yet; a Lab `run.json` beside a
    /// `config.json` stays a Lab run; a `run.json` caught empty or cut
    /// short (being written) is no run until it is whole; `_sources/`
    /// beside the runs is none.
    #[test]
    fn a_sacred_run_json_is_not_a_lab_run_json() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let sacred = r#"{"command": "main", "experiment": {"name": "e"}, "host": {"hostname": "h"}, "status": "COMPLETED"}"#;
        for (rel, files) in [
            (
                "sacred/1",
                &[("run.json", sacred), ("config.json", "{}")][..],
            ),
            (
                "sacred/2",
                &[
                    ("run.json", sacred),
                    ("config.json", "{}"),
                    ("metrics.json", "{}"),
                ][..],
            ),
            ("sacred/_sources", &[("train_0123.py", "print()")][..]),
            (
                "lab",
                &[("run.json", r#"{"name": "mine"}"#), ("config.json", "{}")][..],
            ),
            // Sacred writes run.json before config.json.
            ("first", &[("run.json", sacred)][..]),
            ("empty", &[("run.json", "")][..]),
            ("cut", &[("run.json", r#"{"name": "mi"#)][..]),
            ("broken", &[("run.json", "not json")][..]),
        ] {
            std::fs::create_dir_all(root.join(rel)).unwrap();
            for (name, text) in files {
                std::fs::write(root.join(rel).join(name), text).unwrap();
            }
        }
        let got = runs_of(&root, &discover(&root, &Limits::default()));
        assert_eq!(
            got,
            [
                ("broken".to_owned(), Format::Lab),
                ("first".to_owned(), Format::Sacred),
                ("lab".to_owned(), Format::Lab),
                ("sacred/1".to_owned(), Format::Sacred),
                ("sacred/2".to_owned(), Format::Sacred),
            ]
        );
    }

    /// Run-like directories no reader reads are counted, never runs: one
    /// of each marker, and a directory holding only a video directly under
    /// the root (deeper, it is not run-like); the first three are named.
    #[test]
    fn run_like_directories_no_reader_reads_are_counted_not_registered() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        for (rel, file) in [
            ("aim-project/.aim", "meta"),
            ("clearml/offline", "0123abcd.zip"),
            ("comet-project/.cometml-runs", "abc.zip"),
            ("neptune-project/.neptune", "x"),
            ("video-only", "output.mp4"),
            ("deeper/video-only", "output.mp4"),
            ("plain", "notes.txt"),
        ] {
            std::fs::create_dir_all(root.join(rel)).unwrap();
            std::fs::write(root.join(rel).join(file), "x").unwrap();
        }
        let found = discover(&root, &Limits::default());
        assert_eq!(found.runs, []);
        assert_eq!(found.unrecognised_count, 5);
        let named: Vec<_> = found
            .unrecognised
            .iter()
            .map(|u| {
                (
                    u.dir.strip_prefix(&root).unwrap().display().to_string(),
                    u.what,
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                ("aim-project".to_owned(), "an Aim repository (.aim/)"),
                (
                    "comet-project".to_owned(),
                    "Comet offline archives (.cometml-runs/)"
                ),
                (
                    "neptune-project".to_owned(),
                    "a Neptune offline store (.neptune/)"
                ),
            ]
        );
        assert_eq!(
            unrecognised_at(&root.join("clearml/offline"), 2),
            Some("ClearML offline sessions (offline/*.zip)")
        );
        assert_eq!(unrecognised_at(&root.join("plain"), 1), None);
    }

    /// A Trackio project database beside `media/` yields each of its runs
    /// (keyed by run id) and its `media/` is not walked; a `.db` without
    /// SQLite's header, or away from `media/` and a `trackio` directory,
    /// is no project.
    #[test]
    fn each_run_of_a_trackio_project_is_a_run_and_its_media_is_not_walked() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let project = |dir: &Path| {
            std::fs::create_dir_all(dir).unwrap();
            let conn = rusqlite::Connection::open(dir.join("vision.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE configs (id INTEGER PRIMARY KEY, run_id TEXT, run_name TEXT,
                    config TEXT, created_at TEXT);
                 CREATE TABLE metrics (id INTEGER PRIMARY KEY, run_id TEXT, timestamp TEXT,
                    run_name TEXT, step INTEGER, metrics TEXT);
                 INSERT INTO configs VALUES (1, 'id-a', 'alpha', '{}', '2026-01-01T00:00:00');
                 INSERT INTO metrics VALUES (1, 'id-b', '2026-01-01T00:00:00', 'beta', 0, '{}');",
            )
            .unwrap();
        };
        project(&root.join("tracked"));
        std::fs::create_dir_all(root.join("tracked/media/vision/alpha/0")).unwrap();
        std::fs::write(root.join("tracked/media/vision/alpha/0/run.toml"), "").unwrap();
        std::fs::write(root.join("tracked/notes.db"), "not SQLite").unwrap();
        project(&root.join("elsewhere"));
        let found = discover(&root, &Limits::default());
        let got: Vec<(String, Format, Option<&str>, Option<&str>)> = found
            .runs
            .iter()
            .map(|f| {
                (
                    f.dir.strip_prefix(&root).unwrap().display().to_string(),
                    f.format,
                    f.entry.as_deref(),
                    f.name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "tracked".to_owned(),
                    Format::Trackio,
                    Some("vision.db/id-a"),
                    Some("alpha")
                ),
                (
                    "tracked".to_owned(),
                    Format::Trackio,
                    Some("vision.db/id-b"),
                    Some("beta")
                ),
            ],
            "{:?}",
            found.warnings
        );
        assert_eq!(found.warnings, Vec::<String>::new());
    }

    /// Every file a recogniser reads the head of, planted as a FIFO and
    /// as a link to a Sacred-looking canary outside the root: the walk
    /// returns at once, takes none of them for a run, and the canary is
    /// as it was.
    #[test]
    fn a_fifo_or_a_link_at_any_name_a_recogniser_reads_is_no_run_and_no_hang() {
        let scratch = tempfile::tempdir().unwrap();
        let base = scratch.path().canonicalize().unwrap();
        let root = base.join("root");
        let canary = base.join("canary.json");
        let sacred = r#"{"command": "main", "experiment": {"name": "x"}, "host": {"hostname": "h"}, "status": "COMPLETED"}"#;
        std::fs::write(&canary, sacred).unwrap();
        // (directory, the sniffed file, regular files beside it)
        let cases: &[(&str, &str, &[&str])] = &[
            ("sacred", "run.json", &[]),
            ("raytune", "result.json", &["params.json"]),
            ("ultralytics", "args.yaml", &["results.csv"]),
            ("huggingface", "checkpoint-1/trainer_state.json", &[]),
            ("dvclive", "dvclive/metrics.json", &[]),
            ("dvclive-params", "dvclive/params.yaml", &[]),
            ("sb3", "progress.csv", &[]),
            ("keras", "log.csv", &[]),
            ("trackio", "proj.db", &["media/x"]),
        ];
        for (dir, sniffed, beside) in cases {
            for (kind, plant) in [("fifo", true), ("link", false)] {
                let d = root.join(format!("{dir}-{kind}"));
                for f in *beside {
                    let at = d.join(f);
                    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
                    std::fs::write(at, "x").unwrap();
                }
                let at = d.join(sniffed);
                std::fs::create_dir_all(at.parent().unwrap()).unwrap();
                if plant {
                    lab_fs::fuzz::make_fifo(&at).unwrap();
                } else {
                    std::os::unix::fs::symlink(&canary, &at).unwrap();
                }
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let walked = root.clone();
        std::thread::spawn(move || {
            let _ = tx.send(discover(&walked, &Limits::default()));
        });
        let found = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the walk hung on a planted file");
        let runs: Vec<_> = found.runs.iter().map(|f| (&f.dir, f.format)).collect();
        assert!(runs.is_empty(), "{runs:?}");
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), sacred);
    }

    /// A listing keeps the first heads it reads, a few, never one per file
    /// of a directory that holds thousands; what it keeps it gives again.
    #[test]
    fn a_listing_keeps_a_few_heads_not_one_per_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        for i in 0..100 {
            std::fs::write(dir.join(format!("{i:03}.db")), format!("head {i}")).unwrap();
        }
        let (entries, _) = list(&dir, 1_000).unwrap();
        let tree = LocalTree(&dir);
        let listing = Listing::new(&tree, "", &entries, 1);
        for i in 0..100 {
            let name = format!("{i:03}.db");
            let want = format!("head {i}");
            assert_eq!(listing.head(&name, 6), Some(want.as_bytes()[..6].to_vec()));
        }
        assert_eq!(listing.heads.borrow().len(), MAX_CACHED_HEADS);
        std::fs::write(dir.join("000.db"), "rewritten").unwrap();
        assert_eq!(listing.head("000.db", 6), Some(b"head 0".to_vec()), "kept");
        assert_eq!(listing.head("099.db", 6), Some(b"head 9".to_vec()));
    }
}
