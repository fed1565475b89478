//! lab-formats reads the runs researchers already have — the fourteen
//! formats of [`Format::ALL`], `lab`, TensorBoard, MLflow and W&B among
//! them — into one model: a
//! [`RunInfo`] (name, format, flat params, tags, created, status, metric
//! names with counts and last values, media) and metric [`Series`].
//!
//! Every reader
//!
//! - reads only through the storage seam, a [`Storage`] (names, byte
//!   ranges pinned to a version, private copies for SQLite), never a path,
//!   and never writes; locally that is [`LocalStorage`] over lab-fs
//!   (beneath the run root, no final link followed, non-blocking, regular
//!   files only);
//! - is bounded whatever the input: files are read in capped chunks, a line
//!   or record over its cap is an error of that file, and a run keeps at
//!   most [`MAX_POINTS_PER_SERIES`] points per series and
//!   [`MAX_POINTS_PER_RUN`] in all (more is reported, not kept);
//! - verifies checksums where the format has them (TFRecord's masked
//!   CRC32C) and treats an incomplete final record as pending;
//! - follows a run still being written: [`RunReader::refresh`] reads only
//!   what was appended since the last call (a file that shrank or was
//!   replaced is read again from the start).
//!
//! [`discover`] walks an allowed root to a bounded depth and says which
//! directories are runs of which format. Nothing here panics on input; an
//! unreadable part of a run is an error string in [`RunInfo::errors`].
#![forbid(unsafe_code)]

mod bundle;
mod csvlog;
mod discover;
mod dvclive;
mod histogram;
mod hparams;
mod huggingface;
mod hydra;
pub mod job;
mod keras;
mod lab;
mod lightning;
pub mod local;
mod mlflow;
mod mlflow_db;
mod protowire;
mod raytune;
mod sacred;
mod sb3;
mod series;
mod status;
pub mod storage;
mod tail;
mod tensorboard;
mod text;
mod trackio;
mod trials;
mod ultralytics;
mod wandb;
mod yaml;

use std::collections::BTreeMap;

pub use discover::{
    DEFAULT_SQLITE_MAX_BYTES, DEFAULT_SQLITE_SNAPSHOT_BUDGET, Discovery, Found, Limits,
    MAX_UNRECOGNISED_EXAMPLES, Sub, Unrecognised, detect, discover, discover_storage,
    unrecognised_at,
};
pub use histogram::{
    BASIS_POINTS, HistogramInfo, HistogramPoint, MAX_BUCKETS, MAX_BUCKETS_PER_RUN,
    MAX_HISTOGRAM_POINTS, MAX_HISTOGRAMS, spread as spread_histogram,
};
pub use local::LocalStorage;
pub use mlflow::experiment_name as mlflow_experiment_name;
pub use mlflow_db::release_snapshots;
use serde_json::Value;
pub use series::{Bucketed, Point, Series, XAxis};
pub use status::RunStatus;
pub use storage::{
    CopyLimits, Entry, EntryKind, Page, PageToken, PrivateCopy, RangeReader, Stat, Storage,
    StorageError, Version,
};
pub use tensorboard::image as tensorboard_image;

/// Most points kept for one series.
pub const MAX_POINTS_PER_SERIES: usize = 2_000_000;
/// Most points kept for one run, all series together.
pub const MAX_POINTS_PER_RUN: usize = 4_000_000;
/// Most series one run may have.
pub const MAX_SERIES: usize = 1_000;
/// Most params kept per run.
pub const MAX_PARAMS: usize = 2_000;
/// Most tags kept per run, and the longest tag.
pub const MAX_TAGS: usize = 64;
/// Longest text kept for a param or tag value, in bytes.
pub const MAX_VALUE_LEN: usize = 4096;
/// Longest param key kept, in bytes (flattened: `a.b.0`). A longer one is
/// dropped, and never descended into: a 120 KB key over a 2,000-item array
/// would otherwise become 240 MB of keys.
pub const MAX_KEY_LEN: usize = 512;

/// The formats read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// The Lab's own: `run.toml`/`run.json`, `metrics.jsonl`/`metrics.csv`.
    Lab,
    /// TensorBoard event files.
    Tensorboard,
    /// One run of an MLflow file store.
    Mlflow,
    /// A Weights & Biases run directory (offline or synced).
    Wandb,
    /// A Lightning CSVLogger `version_N` directory.
    Lightning,
    /// A Hydra job's output directory.
    Hydra,
    /// A Hugging Face Trainer output directory (`trainer_state.json`).
    Huggingface,
    /// An Ultralytics run (`args.yaml` + `results.csv`).
    Ultralytics,
    /// A Keras `CSVLogger` file's directory.
    Keras,
    /// A Stable-Baselines3 log directory (`progress.csv`, `monitor.csv`).
    Sb3,
    /// A Ray Tune trial directory (`result.json`, `params.json`).
    Raytune,
    /// A DVCLive run (the directory holding `dvclive/`).
    Dvclive,
    /// One run of a Trackio project database.
    Trackio,
    /// A Sacred `FileStorageObserver` run directory.
    Sacred,
}

impl Format {
    /// Every format, most specific first (the precedence of SPEC §6):
    /// where several readers match one directory, the first wins.
    pub const ALL: [Format; 14] = [
        Format::Mlflow,
        Format::Wandb,
        Format::Trackio,
        Format::Sacred,
        Format::Raytune,
        Format::Huggingface,
        Format::Ultralytics,
        Format::Dvclive,
        Format::Sb3,
        Format::Lightning,
        Format::Tensorboard,
        Format::Keras,
        Format::Hydra,
        Format::Lab,
    ];

    /// The name used in the API and the registry.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Lab => "lab",
            Format::Tensorboard => "tensorboard",
            Format::Mlflow => "mlflow",
            Format::Wandb => "wandb",
            Format::Lightning => "lightning",
            Format::Hydra => "hydra",
            Format::Huggingface => "huggingface",
            Format::Ultralytics => "ultralytics",
            Format::Keras => "keras",
            Format::Sb3 => "sb3",
            Format::Raytune => "raytune",
            Format::Dvclive => "dvclive",
            Format::Trackio => "trackio",
            Format::Sacred => "sacred",
        }
    }

    /// The format's name as people write it (`TensorBoard`, `W&B`): what
    /// the UI's format filter shows.
    pub fn label(self) -> &'static str {
        match self {
            Format::Lab => "Lab",
            Format::Tensorboard => "TensorBoard",
            Format::Mlflow => "MLflow",
            Format::Wandb => "W&B",
            Format::Lightning => "Lightning",
            Format::Hydra => "Hydra",
            Format::Huggingface => "Hugging Face",
            Format::Ultralytics => "Ultralytics",
            Format::Keras => "Keras",
            Format::Sb3 => "Stable-Baselines3",
            Format::Raytune => "Ray Tune",
            Format::Dvclive => "DVCLive",
            Format::Trackio => "Trackio",
            Format::Sacred => "Sacred",
        }
    }

    /// What makes a directory a run of this format (SPEC §6's table), as
    /// an explicit import that found none says what it looked for.
    pub fn looked_for(self) -> &'static str {
        match self {
            Format::Mlflow => "meta.yaml with metrics/, params/ or tags/, or an mlflow.db",
            Format::Wandb => "a wandb run-* or offline-run-* directory",
            Format::Trackio => "a Trackio project database (PROJECT.db beside media/)",
            Format::Sacred => "Sacred's run.json (experiment, host, command) with config.json",
            Format::Raytune => "result.json with params.json",
            Format::Huggingface => "trainer_state.json",
            Format::Ultralytics => "args.yaml with results.csv",
            Format::Dvclive => "dvclive/ (metrics.json, plots/metrics/)",
            Format::Sb3 => "progress.csv (rollout/, train/, time/) or monitor.csv",
            Format::Lightning => "version_N/ with metrics.csv",
            Format::Tensorboard => "events.out.tfevents.* files",
            Format::Keras => "a CSV whose header starts with epoch",
            Format::Hydra => ".hydra/config.yaml",
            Format::Lab => {
                "run.toml, run.json, metrics.jsonl or metrics.csv; a Lab job's provenance.json"
            }
        }
    }

    /// The format named `name`, if it is one of ours.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The artifact patterns this format adds to the default allowlist
    /// (fixed, bounded depth, types from the fixed table).
    pub fn artifact_patterns(self) -> &'static [&'static str] {
        match self {
            Format::Mlflow => &MLFLOW_ARTIFACTS,
            // A bundle of an MLflow or W&B run reimports as a `lab` run
            // with its `artifacts/` or `files/`: the Lab's own format
            // serves both.
            // A bundle of any format reimports as a `lab` run with what
            // this list serves (its params and series in `run.json` and
            // `metrics.jsonl`); the newer formats' files are theirs alone:
            // folded in, they made every Lab run serve its `config.json`,
            // `args.yaml`, `log.txt`… (an attack session found a secret
            // served that way).
            Format::Lab => &LAB_ARTIFACTS,
            Format::Wandb => &WANDB_ARTIFACTS,
            Format::Lightning => &["hparams.yaml"],
            // Hydra logs to `<job name>.log` in the output directory.
            Format::Hydra => &["*.log"],
            Format::Tensorboard => &[],
            Format::Huggingface => huggingface::ARTIFACTS,
            Format::Ultralytics => ultralytics::ARTIFACTS,
            Format::Keras => keras::ARTIFACTS,
            Format::Sb3 => sb3::ARTIFACTS,
            Format::Raytune => raytune::ARTIFACTS,
            Format::Dvclive => dvclive::ARTIFACTS,
            Format::Trackio => trackio::ARTIFACTS,
            Format::Sacred => sacred::ARTIFACTS,
        }
    }
}

/// MLflow's artifacts at the top of `artifacts/` and its two fixed
/// directories: what the Lab format serves too (a bundle of an MLflow run
/// reimports with them).
const MLFLOW_TOP: [&str; 10] = [
    "artifacts/*.mp4",
    "artifacts/*.png",
    "artifacts/*.jpg",
    "artifacts/*.json",
    "artifacts/*.txt",
    "artifacts/*.md",
    "artifacts/*.csv",
    "artifacts/*.log",
    "artifacts/videos/*.mp4",
    "artifacts/images/*.png",
];

/// MLflow's artifacts one and two directories down (`log_dict(…,
/// "config/labels.json")`): an MLflow run's alone. In every Lab run —
/// the catch-all format — they would serve any `artifacts/*/*.json` a
/// directory holds (an earlier widening of the Lab list served a secret).
const MLFLOW_DEEP: [&str; 16] = [
    "artifacts/*/*.mp4",
    "artifacts/*/*.png",
    "artifacts/*/*.jpg",
    "artifacts/*/*.json",
    "artifacts/*/*.txt",
    "artifacts/*/*.md",
    "artifacts/*/*.csv",
    "artifacts/*/*.log",
    "artifacts/*/*/*.mp4",
    "artifacts/*/*/*.png",
    "artifacts/*/*/*.jpg",
    "artifacts/*/*/*.json",
    "artifacts/*/*/*.txt",
    "artifacts/*/*/*.md",
    "artifacts/*/*/*.csv",
    "artifacts/*/*/*.log",
];

/// Beneath `artifacts/`, to the depth every format keeps (at most four
/// segments: `artifacts/a/b/c.json`): files at its top, in one
/// subdirectory and in two.
const MLFLOW_ARTIFACTS: [&str; 26] = concat(&[&MLFLOW_TOP, &MLFLOW_DEEP]);

const WANDB_ARTIFACTS: [&str; 11] = [
    "files/media/videos/*.mp4",
    "files/media/videos/*.webm",
    "files/media/videos/*.gif",
    "files/media/images/*.png",
    "files/media/images/*.jpg",
    "files/media/images/*.gif",
    "files/output.log",
    "files/config.yaml",
    "files/wandb-summary.json",
    "files/requirements.txt",
    // A logged `wandb.Table` (served as application/json).
    "files/media/table/*.table.json",
];

/// What the Lab format serves of its own beyond the default list: a
/// bundle's histograms, the key and step of each media file and table it
/// holds, and the media it carries under names of its own.
const LAB_OWN: [&str; 5] = [
    "histograms.jsonl",
    bundle::MEDIA_JSON,
    "images/*.jpg",
    "images/*.gif",
    "videos/*.webm",
];

/// MLflow's top patterns, every W&B one, then the Lab's own: built by
/// concatenation, so it cannot drift from any of the lists.
const LAB_ARTIFACTS: [&str; 26] = concat(&[&MLFLOW_TOP, &WANDB_ARTIFACTS, &LAB_OWN]);

/// `lists` one after the other; `N` must be their total length (checked
/// when the constant is built).
const fn concat<const N: usize>(lists: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut n = 0;
    let mut l = 0;
    while l < lists.len() {
        let list = lists[l];
        let mut i = 0;
        while i < list.len() {
            out[n] = list[i];
            n += 1;
            i += 1;
        }
        l += 1;
    }
    assert!(n == N, "the lists' lengths add up to the array's");
    out
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metric's name, how many points it has and its last value.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MetricInfo {
    /// The series name (a TensorBoard tag, an MLflow key, a CSV column).
    pub name: String,
    /// Points kept.
    pub count: usize,
    /// The last point's step.
    pub last_step: Option<i64>,
    /// The last point's value; `None` for NaN or ±Inf.
    pub last: Option<f64>,
}

/// A video or image with the step it belongs to, where the format says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Media {
    /// The artifact name it is served under (`name` in the API).
    #[serde(rename = "name")]
    pub artifact: String,
    /// `video` or `image`.
    pub kind: &'static str,
    /// The step, when the format gives one.
    pub step: Option<i64>,
    /// The key it was logged under, when the format gives one.
    pub key: Option<String>,
    /// Inside a run's data rather than a file of its own (a TensorBoard
    /// image: `artifact` is then `FILE/OFFSET/N`, not an artifact name).
    #[serde(skip)]
    pub embedded: bool,
    /// Where the API serves it, when not as an artifact (set by the server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A table the run logged (a W&B `Table`), served as a JSON artifact.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TableRef {
    /// The artifact name it is served under (`name` in the API).
    #[serde(rename = "name")]
    pub artifact: String,
    /// The key it was logged under, when the format gives one.
    pub key: Option<String>,
    /// The step, when the format gives one.
    pub step: Option<i64>,
}

/// A text summary (TensorBoard's text plugin).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TextEntry {
    /// Its tag.
    pub tag: String,
    /// Its step.
    pub step: i64,
    /// The text (capped at [`MAX_VALUE_LEN`]).
    pub text: String,
}

/// What a run is, whatever its format.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RunInfo {
    /// Its display name, when the format gives one (the summary's
    /// `name_raw`).
    pub name: Option<String>,
    /// A name that says what the run varied, where its files say it: a
    /// Hydra job's overrides (`lr=0.1,optimizer=adam`), a TensorBoard
    /// hparams trial's hparams. The summary's `name` prefers it.
    pub title: Option<String>,
    /// The group the run's own files put it in (an MLflow experiment, a
    /// W&B project, `run.toml`'s `experiment`); groups that are where a
    /// run lies (a logdir's parent, a Hydra sweep) are the core's to add.
    pub experiment: Option<Group>,
    /// Flat params: `a.b.c` keys, values string, number, bool or null.
    pub params: BTreeMap<String, Value>,
    /// Tags (labels; MLflow's `key=value` tags are params-like and listed
    /// here as `key=value`, `mlflow.*` ones left out).
    pub tags: Vec<String>,
    /// When it started (ISO 8601, UTC), when known.
    pub created: Option<String>,
    /// Its status, one of [`RunStatus`]'s words once [`RunReader::info`]
    /// has mapped it (readers set the format's own word, which is then
    /// kept as the tag `status_raw=…`).
    pub status: Option<String>,
    /// A free-text description.
    pub description: Option<String>,
    /// Metric series, by name.
    pub metrics: Vec<MetricInfo>,
    /// Videos and images with steps.
    pub media: Vec<Media>,
    /// Text summaries (the last [`MAX_TEXTS`] kept).
    pub texts: Vec<TextEntry>,
    /// What could not be read, one line each (a file and why).
    pub errors: Vec<String>,
    /// Why the run as a whole cannot be read now (its store refused a
    /// snapshot, cannot be opened, no longer holds it), when it cannot:
    /// what was read before is still shown, and the run is unavailable.
    #[serde(skip)]
    pub unavailable: Option<String>,
    /// For a store's run, its own directory relative to the store's (its
    /// artifacts lie in `artifacts/` beneath it, as in a file store); never
    /// outside the root.
    #[serde(skip)]
    pub artifact_dir: Option<String>,
    /// Histogram tags, by name, with their point counts and last steps
    /// (their points: [`RunReader::histogram`]).
    pub histograms: Vec<HistogramInfo>,
    /// Tables the run logged (a W&B `Table`), each a JSON artifact, with
    /// the key and step it was logged at.
    pub tables: Vec<TableRef>,
    /// When it ended (ISO 8601, UTC), when known (MLflow's `end_time`).
    pub ended: Option<String>,
    /// Who ran it, when the format says (MLflow's `mlflow.user` tag or
    /// `user_id`).
    pub user: Option<String>,
    /// What ran it (MLflow's `mlflow.source.name`, with
    /// `mlflow.source.type` in parentheses when given).
    pub source: Option<String>,
    /// The git commit it ran at (MLflow's `mlflow.source.git.commit`).
    pub git_commit: Option<String>,
    /// The key of its parent run in the same store (MLflow's
    /// `mlflow.parentRunId`); the core turns it into the parent's id.
    pub parent: Option<String>,
}

impl RunInfo {
    /// Seconds from `created` to `ended`, when both are known and in order.
    pub fn duration_secs(&self) -> Option<f64> {
        let created = text::iso8601_secs(self.created.as_deref()?)?;
        let ended = text::iso8601_secs(self.ended.as_deref()?)?;
        (ended >= created).then_some(ended - created)
    }
}

/// A group of runs as a run's files name it (SPEC §4 `experiment`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    /// Where the group is: beneath the run's storage's origin
    /// (`ORIGIN#KEY`, an MLflow store's experiment), or a name the format
    /// treats as one namespace (a W&B project, a `run.toml` experiment).
    pub location: String,
    /// Its name as the researcher wrote it.
    pub name: String,
}

/// Most text entries kept per run.
pub const MAX_TEXTS: usize = 200;

/// Follows one run: what was read so far and where each file was left.
#[derive(Debug)]
pub struct RunReader {
    format: Format,
    state: State,
    /// Params a Hydra config beside the run adds.
    hydra: Option<hydra::Reader>,
}

#[derive(Debug)]
enum State {
    Lab(lab::Reader),
    Tensorboard(tensorboard::Reader),
    Mlflow(mlflow::Reader),
    MlflowDb(mlflow_db::Reader),
    Wandb(wandb::Reader),
    Lightning(lightning::Reader),
    Hydra(hydra::Reader, lab::Reader),
    Huggingface(huggingface::Reader),
    Ultralytics(ultralytics::Reader),
    Keras(keras::Reader),
    Sb3(sb3::Reader),
    Raytune(raytune::Reader),
    Dvclive(dvclive::Reader),
    Trackio(trackio::Reader),
    Sacred(sacred::Reader),
}

impl RunReader {
    /// A reader for one stored run (`entry`, its id in the store) of a
    /// store at the run root, or for the run the root is (`None`), with
    /// the default [`Limits`].
    pub fn new_entry(format: Format, entry: Option<&str>) -> Self {
        Self::new_entry_with(format, entry, &Limits::default())
    }

    /// [`RunReader::new_entry`] under `limits` (of which a reader uses
    /// the `sqlite_*` ones, for an MLflow SQLite store).
    pub fn new_entry_with(format: Format, entry: Option<&str>, limits: &Limits) -> Self {
        match (format, entry) {
            (Format::Mlflow, Some(run)) => Self {
                format,
                state: State::MlflowDb(mlflow_db::Reader::new(run, limits)),
                hydra: None,
            },
            (Format::Trackio, Some(run)) => Self {
                format,
                state: State::Trackio(trackio::Reader::new(run, limits)),
                hydra: None,
            },
            _ => Self::new(format),
        }
    }

    /// A reader for a run of `format`; nothing is read until
    /// [`RunReader::refresh`].
    pub fn new(format: Format) -> Self {
        let state = match format {
            Format::Lab => State::Lab(lab::Reader::default()),
            Format::Tensorboard => State::Tensorboard(tensorboard::Reader::default()),
            Format::Mlflow => State::Mlflow(mlflow::Reader::default()),
            Format::Wandb => State::Wandb(wandb::Reader::default()),
            Format::Lightning => State::Lightning(lightning::Reader::default()),
            Format::Hydra => State::Hydra(hydra::Reader::default(), lab::Reader::default()),
            Format::Huggingface => State::Huggingface(huggingface::Reader::default()),
            Format::Ultralytics => State::Ultralytics(ultralytics::Reader::default()),
            Format::Keras => State::Keras(keras::Reader::default()),
            Format::Sb3 => State::Sb3(sb3::Reader::default()),
            Format::Raytune => State::Raytune(raytune::Reader::default()),
            Format::Dvclive => State::Dvclive(dvclive::Reader::default()),
            // A Trackio run is an entry of its project's database; without
            // one there is nothing to read.
            Format::Trackio => State::Trackio(trackio::Reader::new("", &Limits::default())),
            Format::Sacred => State::Sacred(sacred::Reader::default()),
        };
        let hydra = (format != Format::Hydra).then(hydra::Reader::default);
        Self {
            format,
            state,
            hydra,
        }
    }

    /// The run's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Reads what was added to the run since the last call. Errors of
    /// single files land in [`RunInfo::errors`]; this never fails as a whole.
    pub fn refresh(&mut self, storage: &dyn Storage) {
        match &mut self.state {
            State::Lab(r) => r.refresh(storage),
            State::Tensorboard(r) => r.refresh(storage),
            State::Mlflow(r) => r.refresh(storage),
            State::MlflowDb(r) => r.refresh(storage),
            State::Wandb(r) => r.refresh(storage),
            State::Lightning(r) => r.refresh(storage),
            State::Hydra(h, l) => {
                h.refresh(storage);
                l.refresh(storage);
            }
            State::Huggingface(r) => r.refresh(storage),
            State::Ultralytics(r) => r.refresh(storage),
            State::Keras(r) => r.refresh(storage),
            State::Sb3(r) => r.refresh(storage),
            State::Raytune(r) => r.refresh(storage),
            State::Dvclive(r) => r.refresh(storage),
            State::Trackio(r) => r.refresh(storage),
            State::Sacred(r) => r.refresh(storage),
        }
        if let Some(h) = &mut self.hydra {
            h.refresh(storage);
        }
    }

    fn sets(&self) -> Vec<&series::SeriesSet> {
        match &self.state {
            State::Lab(r) => r.sets(),
            State::Tensorboard(r) => r.sets(),
            State::Mlflow(r) => r.sets(),
            State::MlflowDb(r) => r.sets(),
            State::Wandb(r) => r.sets(),
            State::Lightning(r) => r.sets(),
            State::Hydra(_, l) => l.sets(),
            State::Huggingface(r) => r.sets(),
            State::Ultralytics(r) => r.sets(),
            State::Keras(r) => r.sets(),
            State::Sb3(r) => r.sets(),
            State::Raytune(r) => r.sets(),
            State::Dvclive(r) => r.sets(),
            State::Trackio(r) => r.sets(),
            State::Sacred(r) => r.sets(),
        }
    }

    /// What the run is, as read so far.
    pub fn info(&self) -> RunInfo {
        let mut info = match &self.state {
            State::Lab(r) => r.info(),
            State::Tensorboard(r) => r.info(),
            State::Mlflow(r) => r.info(),
            State::MlflowDb(r) => r.info(),
            State::Wandb(r) => r.info(),
            State::Lightning(r) => r.info(),
            State::Hydra(h, l) => {
                let mut info = l.info();
                h.merge_into(&mut info);
                info
            }
            State::Huggingface(r) => r.info(),
            State::Ultralytics(r) => r.info(),
            State::Keras(r) => r.info(),
            State::Sb3(r) => r.info(),
            State::Raytune(r) => r.info(),
            State::Dvclive(r) => r.info(),
            State::Trackio(r) => r.info(),
            State::Sacred(r) => r.info(),
        };
        if let Some(h) = &self.hydra {
            h.merge_into(&mut info);
        }
        // One vocabulary (SPEC §4): the format's own word kept as a tag.
        let raw = info.status.take();
        let status = raw
            .as_deref()
            .map_or(RunStatus::Unknown, |raw| RunStatus::of(self.format, raw));
        if let Some(raw) = raw
            && info.tags.len() < MAX_TAGS
        {
            info.tags.push(format!("status_raw={}", text::cap(&raw)));
        }
        info.status = Some(status.as_str().to_owned());
        // Whatever a reader inserted, no key longer than the cap leaves it.
        info.params.retain(|k, _| k.len() <= MAX_KEY_LEN);
        info.metrics = self.sets().iter().flat_map(|s| s.summaries()).collect();
        info.metrics.sort_by(|a, b| a.name.cmp(&b.name));
        info.metrics.dedup_by(|a, b| a.name == b.name);
        if let Some(h) = self.histograms() {
            info.histograms = h.infos();
            info.errors.extend(h.errors());
        }
        info
    }

    fn histograms(&self) -> Option<&histogram::Histograms> {
        match &self.state {
            State::Lab(r) => Some(r.histograms()),
            State::Hydra(_, l) => Some(l.histograms()),
            State::Tensorboard(r) => Some(r.histograms()),
            State::Wandb(r) => Some(r.histograms()),
            _ => None,
        }
    }

    /// One histogram tag's points, in the order written.
    pub fn histogram(&self, name: &str) -> Option<&[HistogramPoint]> {
        self.histograms().and_then(|h| h.get(name))
    }

    /// One metric series by name.
    pub fn series(&self, name: &str) -> Option<&Series> {
        self.sets().into_iter().find_map(|s| s.get(name))
    }

    /// Points held, all series together, a histogram's bucket counted
    /// as one (for a cache's budget).
    pub fn points(&self) -> usize {
        let buckets = self.histograms().map_or(0, histogram::Histograms::buckets);
        self.sets().iter().map(|s| s.points()).sum::<usize>() + buckets
    }
}

/// Flattens a JSON-like tree into `a.b.c` keys (arrays as `a.0`), at most
/// [`MAX_PARAMS`] entries, text values capped.
pub(crate) fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    fn walk(key: String, value: &Value, out: &mut BTreeMap<String, Value>, depth: usize) {
        if out.len() >= MAX_PARAMS || depth > 32 || key.len() > MAX_KEY_LEN {
            return;
        }
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if key.is_empty() {
                        k.clone()
                    } else {
                        format!("{key}.{k}")
                    };
                    walk(key, v, out, depth + 1);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(format!("{key}.{i}"), v, out, depth + 1);
                }
            }
            Value::String(s) => {
                out.insert(key, Value::String(text::cap(s)));
            }
            other => {
                out.insert(key, other.clone());
            }
        }
    }
    walk(prefix.to_owned(), value, out, 0);
}

/// What the core shows of a run beyond what its reader reads, carried into
/// its bundle so the reimported run shows the same: the name of the group
/// it is in, and when it was created (the import time, for a format that
/// records none).
#[derive(Clone, Copy, Debug, Default)]
pub struct Shown<'a> {
    /// Its experiment's name.
    pub experiment: Option<&'a str>,
    /// Its `created`, as the list shows it.
    pub created: Option<&'a str>,
    /// Its `name`, as the list shows it (a title that says what it
    /// varied, its own name, else its directory's): a reimported run is
    /// called what its source was.
    pub name: Option<&'a str>,
}

/// A run of any format in the Lab's own form, for a bundle that reimports
/// whole: `run.json` (name, source format, `experiment` and `created` as
/// the core shows them ([`Shown`]), status, description, tags, params,
/// ended, user, source, git commit) unless `has("run.toml")` or `has("run.json")`, and
/// `metrics.jsonl` (one line per point: `step`, `wall_time` when known,
/// and the metric; NaN and ±Inf as null) unless the run already has
/// `metrics.jsonl` or `metrics.csv` (for a run of another format, both are
/// always written: the bundle's replace the run's files of those names,
/// and the Lab reader reads nothing else of a bundle's); `histograms.jsonl`
/// (one line per histogram point: `name`, `step`, `wall_time` when known,
/// `min`, `max`, `limits`, `counts`) for a run with histograms; media the
/// bundle would not hold otherwise (a TensorBoard run's embedded images,
/// files the source run serves (`serves`) under names the Lab does not),
/// read again through `storage`, as `images/<key>_<step>_<n>.png` and the
/// like; and `media.json`, the key and step of every media file and
/// table the bundle holds, which the Lab reader applies on reimport.
pub fn lab_form(
    reader: &RunReader,
    storage: &dyn Storage,
    shown: Shown<'_>,
    has: impl Fn(&str) -> bool,
    serves: impl Fn(&str) -> bool,
) -> Vec<(String, Vec<u8>)> {
    let info = reader.info();
    let mut out = Vec::new();
    if !has(bundle::MEDIA_JSON) {
        let (images, left_out) = bundle::carried_media(storage, &info, &has, &serves);
        let entries: Vec<Media> = images.iter().map(|(_, _, m)| m.clone()).collect();
        if let Some(bytes) = bundle::media_json(&info, &entries, left_out, &has) {
            out.push((bundle::MEDIA_JSON.to_owned(), bytes));
        }
        out.extend(images.into_iter().map(|(name, bytes, _)| (name, bytes)));
    }
    // A Lab run's own files travel as they are; another format's run is
    // described by these alone.
    let lab = reader.format() == Format::Lab;
    if !lab || (!has("run.toml") && !has("run.json")) {
        let meta = serde_json::json!({
            // What the run is called where it came from: what it varied,
            // else its own name.
            "name": shown.name.or(info.title.as_deref()).or(info.name.as_deref()),
            "source_format": reader.format().as_str(),
            "experiment": shown.experiment,
            "created": shown.created.or(info.created.as_deref()),
            "status": info.status,
            "description": info.description,
            "tags": info.tags,
            "params": info.params,
            "ended": info.ended,
            "user": info.user,
            "source": info.source,
            "git_commit": info.git_commit,
        });
        let mut bytes = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        bytes.push(b'\n');
        out.push(("run.json".to_owned(), bytes));
    }
    if !lab || (!has("metrics.jsonl") && !has("metrics.csv") && !info.metrics.is_empty()) {
        let mut bytes = Vec::new();
        for metric in &info.metrics {
            let Some(series) = reader.series(&metric.name) else {
                continue;
            };
            for p in series.points() {
                let mut line = serde_json::Map::new();
                line.insert("step".to_owned(), Value::from(p.step));
                // Always there (null when unknown), so a metric called
                // `time` or `timestamp` is never taken for the wall time.
                line.insert(
                    "wall_time".to_owned(),
                    serde_json::Number::from_f64(p.wall).map_or(Value::Null, Value::Number),
                );
                line.insert(
                    metric.name.clone(),
                    serde_json::Number::from_f64(p.value).map_or(Value::Null, Value::Number),
                );
                if serde_json::to_writer(&mut bytes, &line).is_ok() {
                    bytes.push(b'\n');
                }
            }
        }
        out.push(("metrics.jsonl".to_owned(), bytes));
    }
    if let Some(h) = reader
        .histograms()
        .filter(|_| !lab || !has("histograms.jsonl"))
    {
        let mut bytes = Vec::new();
        for (name, points) in h.iter() {
            for p in points {
                let line = lab::HistogramLine {
                    name: name.clone(),
                    step: p.step,
                    wall_time: p.wall.is_finite().then_some(p.wall),
                    min: p.min,
                    max: p.max,
                    limits: p.limits.clone(),
                    counts: p.counts.clone(),
                };
                if serde_json::to_writer(&mut bytes, &line).is_ok() {
                    bytes.push(b'\n');
                }
            }
        }
        if !bytes.is_empty() {
            out.push(("histograms.jsonl".to_owned(), bytes));
        }
    }
    out
}

/// The fuzz targets' oracles (`crates/lab-formats/fuzz`). Not an API.
#[doc(hidden)]
pub mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader needs nothing but the storage seam: a run held in memory
    /// (no path anywhere) reads as it would from disk, and follows what
    /// is added, whatever the storage's versions say.
    #[test]
    fn a_run_reads_through_any_storage() {
        let memory = storage::tests::Memory::default();
        memory.put(
            "run.json",
            br#"{"name": "in memory", "params": {"lr": 0.1}}"#,
        );
        memory.put(
            "metrics.jsonl",
            b"{\"step\": 0, \"loss\": 1.0}\n{\"step\": 1, \"lo",
        );
        memory.put(".hydra/config.yaml", b"seed: 7\n");
        let mut reader = RunReader::new(Format::Lab);
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.name.as_deref(), Some("in memory"));
        assert_eq!(info.params["lr"], 0.1);
        assert_eq!(info.params["seed"], 7);
        assert_eq!(reader.series("loss").map(|s| s.points().len()), Some(1));
        // The object is replaced (a new version) with more lines.
        memory.put(
            "metrics.jsonl",
            b"{\"step\": 0, \"loss\": 1.0}\n{\"step\": 1, \"loss\": 0.5}\n",
        );
        reader.refresh(&memory);
        assert_eq!(reader.series("loss").map(|s| s.points().len()), Some(2));
    }

    /// A long key over a long array (one small file) is dropped whole,
    /// never expanded into thousands of long keys; keys within the cap
    /// are kept, nested ones included.
    #[test]
    fn params_with_keys_over_the_cap_are_dropped_not_expanded() {
        let long = "K".repeat(120_000);
        let items: Vec<Value> = (0..2000).map(Value::from).collect();
        let value = serde_json::json!({ long.clone(): items, "lr": 0.1, "model": { "depth": 4 } });
        let mut out = BTreeMap::new();
        flatten("", &value, &mut out);
        assert_eq!(
            out.keys().map(String::as_str).collect::<Vec<_>>(),
            ["lr", "model.depth"]
        );
        // Just under the cap: kept.
        let edge = "k".repeat(MAX_KEY_LEN - 2);
        let mut out = BTreeMap::new();
        flatten("", &serde_json::json!({ edge.clone(): [1] }), &mut out);
        assert_eq!(out.keys().next().map(String::len), Some(MAX_KEY_LEN));
    }

    /// An MLflow file-store run's user, source, commit, parent, end and
    /// `log_image` images (MLflow 3's `+` names and MLflow 2's `%` ones;
    /// never the `.webp` copies or a name lab-fs would refuse), and a
    /// bundle's `run.json` giving the same facts back.
    #[test]
    fn an_mlflow_run_gives_its_origin_parent_and_images_by_step() {
        let memory = storage::tests::Memory::default();
        memory.put(
            "meta.yaml",
            b"run_name: outer\nstart_time: 1796653770517\nend_time: 1796653772876\nstatus: 3\nuser_id: meta-user\n",
        );
        for (key, value) in [
            ("mlflow.user", "alice"),
            ("mlflow.source.name", "train.py"),
            ("mlflow.source.type", "LOCAL"),
            ("mlflow.source.git.commit", "0123456789abcdef"),
            ("mlflow.parentRunId", "9de24516c88a4364"),
            ("mlflow.loggedImages", "True"),
            ("team", "vision"),
        ] {
            memory.put(&format!("tags/{key}"), value.as_bytes());
        }
        for name in [
            "a~b+step+2+timestamp+1+ab-cd.png",
            "a~b+step+2+timestamp+1+ab-cd+compressed.webp",
            "a~b+step+0+timestamp+1+ef.png",
            "a#b%step%5%timestamp%1%01.png",
            "%2e%2e.png",
            "x%step%1%timestamp%1%zz.png",
            "plain.png",
        ] {
            memory.put(&format!("artifacts/images/{name}"), b"png");
        }
        let mut reader = RunReader::new(Format::Mlflow);
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.user.as_deref(), Some("alice"));
        assert_eq!(info.source.as_deref(), Some("train.py (LOCAL)"));
        assert_eq!(info.git_commit.as_deref(), Some("0123456789abcdef"));
        assert_eq!(info.parent.as_deref(), Some("9de24516c88a4364"));
        assert_eq!(info.tags, ["team=vision", "status_raw=FINISHED"]);
        // 1796653770 to 1796653772, in whole seconds.
        assert_eq!(info.duration_secs(), Some(2.0));
        let media: Vec<(Option<&str>, Option<i64>, &str)> = info
            .media
            .iter()
            .map(|m| (m.key.as_deref(), m.step, m.artifact.as_str()))
            .collect();
        assert_eq!(
            media,
            [
                (
                    Some("a/b"),
                    Some(0),
                    "artifacts/images/a~b+step+0+timestamp+1+ef.png"
                ),
                (
                    Some("a/b"),
                    Some(2),
                    "artifacts/images/a~b+step+2+timestamp+1+ab-cd.png"
                ),
                (
                    Some("a/b"),
                    Some(5),
                    "artifacts/images/a#b%step%5%timestamp%1%01.png"
                ),
            ]
        );
        // Without the tag, `meta.yaml`'s `user_id`.
        let bare = storage::tests::Memory::default();
        bare.put("meta.yaml", b"user_id: meta-user\nstatus: 1\n");
        let mut reader = RunReader::new(Format::Mlflow);
        reader.refresh(&bare);
        let info = reader.info();
        assert_eq!(info.user.as_deref(), Some("meta-user"));
        assert_eq!((info.ended.as_deref(), info.duration_secs()), (None, None));

        let bundle = storage::tests::Memory::default();
        bundle.put(
            "run.json",
            br#"{"name": "b", "created": "2026-12-07T10:00:00Z", "ended": "2026-12-07T10:01:05Z", "user": "alice", "source": "train.py (LOCAL)", "git_commit": "0123456789abcdef"}"#,
        );
        let mut reader = RunReader::new(Format::Lab);
        reader.refresh(&bundle);
        let info = reader.info();
        assert_eq!(info.user.as_deref(), Some("alice"));
        assert_eq!(info.source.as_deref(), Some("train.py (LOCAL)"));
        assert_eq!(info.git_commit.as_deref(), Some("0123456789abcdef"));
        assert_eq!(info.duration_secs(), Some(65.0));
    }

    /// The Lab's own list carries MLflow's top patterns, every W&B one and
    /// its own, never MLflow's deeper ones (every Lab run would serve any
    /// `artifacts/*/*.json`).
    #[test]
    fn the_lab_list_is_mlflows_top_wandbs_and_its_own() {
        let mut all = MLFLOW_TOP.to_vec();
        all.extend(WANDB_ARTIFACTS);
        all.extend(LAB_OWN);
        assert_eq!(LAB_ARTIFACTS.to_vec(), all);
        assert!(MLFLOW_DEEP.iter().all(|p| !LAB_ARTIFACTS.contains(p)));
        assert_eq!(MLFLOW_ARTIFACTS[..MLFLOW_TOP.len()], MLFLOW_TOP);
        for pattern in Format::ALL.iter().flat_map(|f| f.artifact_patterns()) {
            lab_fs::Pattern::parse(pattern).unwrap();
        }
    }
}
