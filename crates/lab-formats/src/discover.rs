//! Discovery (SPEC §6): which directories under an allowed root are runs,
//! and of which format. It lists directories, opening no file but an
//! `mlflow.db` store's (through its private copy) and, beneath a
//! TensorBoard run, the small event files of a sub-directory that may be an
//! `add_hparams` trial folded into the run (`trials::Folding`: at most 64
//! KiB per sub-directory, through the storage seam); it never follows a
//! symbolic link, skips dot-directories (a format's own, `.hydra`, is
//! looked at, not walked), and stops at a bounded depth and count with a
//! warning.

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
        // Room for a root holding as many runs side by side as the
        // registry takes (200,000), and as many directories again inside
        // stores; still a bound on a hostile tree: listing is names only,
        // about 6 MB at the most entries.
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
}

/// One listed entry: its name and whether it is a plain file or a real
/// directory (a symbolic link is neither).
struct Entry {
    name: String,
    file: bool,
    dir: bool,
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

/// The format of the run at `dir`, if it is one; `depth` is its depth
/// under the allowed root (a direct child holding any allowlisted file is
/// a `lab` run, as it always was).
fn classify(dir: &Path, entries: &[Entry], depth: usize) -> Option<Format> {
    let listing = Listing {
        dir,
        name: dir.file_name().and_then(|n| n.to_str()).unwrap_or(""),
        entries,
        depth,
        storage: std::cell::OnceCell::new(),
    };
    Format::ALL
        .into_iter()
        .find(|format| recognises(*format, &listing))
}

/// What a reader looks at to tell whether a directory is its run: the
/// directory's name and entries (names and kinds, listed once), and the
/// first bytes of a file in it (through the storage seam: no link
/// followed, non-blocking, regular files only).
pub(crate) struct Listing<'a> {
    dir: &'a Path,
    /// The directory's own name.
    pub(crate) name: &'a str,
    entries: &'a [Entry],
    /// How deep below the allowed root it lies (the root is 0).
    pub(crate) depth: usize,
    #[allow(dead_code)] // for the readers that look inside files (issue 31)
    storage: std::cell::OnceCell<Option<crate::local::LocalStorage<'static>>>,
}

#[allow(dead_code)] // some are for the readers issue 31 adds
impl Listing<'_> {
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
        self.storage
            .get_or_init(|| crate::local::LocalStorage::open_ambient(self.dir).ok())
            .as_ref()
            .map(|s| s as &dyn Storage)
    }

    /// At most `max` bytes from the start of the file `name` beneath it
    /// (`name` may hold `/`): none when it is absent or not a regular file.
    pub(crate) fn head(&self, name: &str, max: usize) -> Option<Vec<u8>> {
        self.storage()?.read_range(name, 0, max, None).ok()
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
                && std::fs::symlink_metadata(l.dir.join(".hydra/config.yaml"))
                    .is_ok_and(|m| m.is_file())
        }
        Format::Lab => {
            if LAB_MARKERS.iter().any(|m| l.file(m)) {
                return true;
            }
            if l.depth != 1 {
                return false;
            }
            let allow = lab_fs::Allowlist::default();
            l.entries
                .iter()
                .any(|e| e.file && allow.check(&e.name).is_ok())
                || l.entries.iter().any(|e| {
                    e.dir
                        && allow.dirs().contains(&e.name.as_str())
                        && list(&l.dir.join(&e.name), 64).is_ok_and(|(inner, _)| {
                            inner.iter().any(|i| {
                                i.file && allow.check(&format!("{}/{}", e.name, i.name)).is_ok()
                            })
                        })
                })
        }
        Format::Huggingface => crate::huggingface::recognises(l),
        Format::Ultralytics => crate::ultralytics::recognises(l),
        Format::Keras => crate::keras::recognises(l),
        Format::Sb3 => crate::sb3::recognises(l),
        Format::Raytune => crate::raytune::recognises(l),
        Format::Dvclive => crate::dvclive::recognises(l),
        Format::Trackio => crate::trackio::recognises(l),
        Format::Sacred => crate::sacred::recognises(l),
    }
}

/// The sub-directories of the TensorBoard run at `dir` that are hparams
/// trials folded into it: the reader's own rule, through a local storage
/// of `dir` (none when `dir` cannot be opened as one).
fn folded_trials(dir: &Path, entries: &[Entry]) -> Vec<String> {
    let dirs: Vec<String> = entries
        .iter()
        .filter(|e| e.dir)
        .map(|e| e.name.clone())
        .collect();
    if dirs.is_empty() {
        return Vec::new();
    }
    let Ok(storage) = crate::local::LocalStorage::open_ambient(dir) else {
        return Vec::new();
    };
    let mut folding = crate::trials::Folding::default();
    folding.refresh(&storage, &dirs);
    folding.folded().to_vec()
}

/// The format of the directory `dir` as a run on its own (for an explicit
/// import), or `None` when no reader recognises it.
pub fn detect(dir: &Path) -> Option<Format> {
    let (entries, _) = list(dir, Limits::default().max_entries).ok()?;
    classify(dir, &entries, 2)
}

/// Walks `root` breadth first and reports its runs. Below a run of the
/// `lab`, `mlflow` or `lightning` format nothing more is looked for (its
/// subdirectories are its own); below a TensorBoard or Hydra run the walk
/// goes on (TensorBoard's subdirectories are runs of their own, a Hydra
/// job's outputs often hold some) — except into the `add_hparams` trials
/// folded into a TensorBoard run, which are that run's (see
/// `trials::Folding` for the rule).
pub fn discover(root: &Path, limits: &Limits) -> Discovery {
    let mut found = Discovery::default();
    let mut queue = std::collections::VecDeque::from([(root.to_path_buf(), 0usize)]);
    let mut listed = 0usize;
    let mut entries_read = 0usize;
    while let Some((dir, depth)) = queue.pop_front() {
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
        let (entries, truncated) = match list(&dir, room) {
            Ok(listing) => listing,
            Err(e) => {
                found.warnings.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        entries_read += entries.len();
        if truncated {
            found.warnings.push(format!(
                "{}: more than {} entries; the rest were not looked at",
                dir.display(),
                limits.max_entries
            ));
        }
        if entries
            .iter()
            .any(|e| e.file && e.name == crate::mlflow_db::DB_NAME)
        {
            let listed = crate::local::LocalStorage::open_ambient(&dir)
                .map_err(|e| e.to_string())
                .and_then(|storage| crate::mlflow_db::list_runs(&storage, limits));
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
        let format = if depth == 0 {
            None
        } else {
            classify(&dir, &entries, depth)
        };
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
            if matches!(
                format,
                Format::Lab | Format::Mlflow | Format::Lightning | Format::Wandb | Format::Sacred
            ) {
                continue;
            }
        }
        if depth >= limits.max_depth {
            continue;
        }
        let folded = if format == Some(Format::Tensorboard) {
            folded_trials(&dir, &entries)
        } else {
            Vec::new()
        };
        found
            .folded
            .extend(folded.iter().map(|name| dir.join(name)));
        for entry in entries {
            if entry.dir && !entry.name.starts_with('.') && !folded.contains(&entry.name) {
                queue.push_back((dir.join(&entry.name), depth + 1));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_is_found_once_and_links_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let mk = |rel: &str, files: &[&str]| {
            let d = root.join(rel);
            std::fs::create_dir_all(&d).unwrap();
            for f in files {
                if let Some(parent) = Path::new(f).parent() {
                    std::fs::create_dir_all(d.join(parent)).unwrap();
                }
                std::fs::write(d.join(f), "x").unwrap();
            }
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
        let got: Vec<(String, Format)> = found
            .runs
            .iter()
            .map(|f| {
                (
                    f.dir.strip_prefix(&root).unwrap().display().to_string(),
                    f.format,
                )
            })
            .collect();
        let mut got = got;
        got.sort();
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
                ("video-only".to_owned(), Format::Lab),
                (
                    "wandb/offline-run-20261201_000000-abc".to_owned(),
                    Format::Wandb
                ),
            ]
        );
        // Bounded: a count limit stops the walk with a warning.
        let small = Limits {
            max_dirs: 3,
            ..Limits::default()
        };
        let cut = discover(&root, &small);
        assert!(cut.warnings.iter().any(|w| w.contains("stopped after 3")));
    }

    /// A Sacred `run.json` (an `experiment` object, `host`, `command`) is
    /// not a Lab `run.json`: the directory is a Sacred run; a Lab
    /// `run.json` beside a `config.json` stays a Lab run, and `_sources/`
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
            // Without its config.json a Sacred run.json is read as a Lab one.
            ("half", &[("run.json", sacred)][..]),
        ] {
            std::fs::create_dir_all(root.join(rel)).unwrap();
            for (name, text) in files {
                std::fs::write(root.join(rel).join(name), text).unwrap();
            }
        }
        let mut got: Vec<(String, Format)> = discover(&root, &Limits::default())
            .runs
            .iter()
            .map(|f| {
                (
                    f.dir.strip_prefix(&root).unwrap().display().to_string(),
                    f.format,
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("half".to_owned(), Format::Lab),
                ("lab".to_owned(), Format::Lab),
                ("sacred/1".to_owned(), Format::Sacred),
                ("sacred/2".to_owned(), Format::Sacred),
            ]
        );
    }
}
