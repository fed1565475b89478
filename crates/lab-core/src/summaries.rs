//! Runs as lists show them: typed summaries from the format readers
//! (lab-formats), kept fresh in the background; the list with filtering,
//! sorting, extra fields and paging; one run's details; the param and
//! metric columns the runs have.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab_formats::{Format, Media, MetricInfo, TextEntry};
use lab_fs::ArtifactInfo;
use lab_registry::RunId;
use serde::Serialize;
use serde_json::Value;

use crate::artifacts::content_type;
use crate::gate::Gate;
use crate::readers::{REFRESH_EVERY, Readers, artifact_root};
use crate::{Lab, Run, lock};

/// How long a computed summary is reused before the run is looked at again.
const SUMMARY_TTL: Duration = Duration::from_secs(5);

/// A run as the list shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// Its id.
    pub id: RunId,
    /// A title that says what the run varied (SPEC §4): a Hydra job's
    /// overrides, a TensorBoard trial's hparams, a job's command; else the
    /// format's run name; else the directory's.
    pub(crate) name: String,
    /// The format's own run name, when it gives one.
    pub(crate) name_raw: Option<String>,
    /// The group it is in.
    pub(crate) experiment: Option<crate::Experiment>,
    pub(crate) path: String,
    pub(crate) imported_at: u64,
    pub(crate) format: &'static str,
    pub(crate) available: bool,
    /// Why `available` is false: its directory cannot be opened, or a read
    /// of its files is stuck.
    pub(crate) unavailable_reason: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) created: String,
    pub(crate) status: Option<String>,
    pub(crate) has_video: bool,
    pub(crate) video: Option<String>,
    pub(crate) thumbnail: Option<String>,
    pub(crate) artifact_count: usize,
    /// How many parts of the run could not be read (details on the run).
    pub(crate) error_count: usize,
    /// The job's run whose job wrote this run (beneath its `job/`).
    pub(crate) parent: Option<RunId>,
    /// For a job's run: its job's id (`GET /api/jobs/{job}`).
    pub(crate) job: Option<String>,
    /// Who ran it, when its format says (MLflow's user).
    pub(crate) user: Option<String>,
    /// What ran it, when its format says (MLflow's source).
    pub(crate) source: Option<String>,
    /// The git commit it ran at, when its format says.
    pub(crate) git_commit: Option<String>,
    /// Seconds from created to ended, when both are known.
    pub(crate) duration_secs: Option<f64>,
    /// Params and last metric values, sorted by name: slices, not maps (a
    /// summary is kept for every run; 100,000 of them must stay small).
    #[serde(skip)]
    pub(crate) params: Box<[(Box<str>, Value)]>,
    #[serde(skip)]
    pub(crate) last: Box<[(Box<str>, Option<f64>)]>,
    /// The id, name, raw name, directory name, experiment name and tags,
    /// lower-cased once and joined by NULs, for `?q=`.
    #[serde(skip)]
    pub(crate) searched: Box<str>,
}

impl RunSummary {
    /// Whether `q` (lower-cased) is in a field [`searched`] joins. A
    /// `q` without a NUL that occurs in the joined string lies within one
    /// field (an occurrence across fields would hold the NUL between
    /// them); one with a NUL is looked for in the fields themselves.
    fn matches(&self, q: &str) -> bool {
        if q.contains('\0') {
            let dir = self.path.rsplit('/').next().unwrap_or_default();
            return searched_fields(self, dir).any(|field| field.to_lowercase().contains(q));
        }
        self.searched.contains(q)
    }

    /// [`RunSummary::matches`] with `q`'s searcher built once for a whole
    /// list (`q` lower-cased).
    pub(crate) fn matches_with(&self, q: &str, finder: &memchr::memmem::Finder<'_>) -> bool {
        if q.contains('\0') {
            return self.matches(q);
        }
        finder.find(self.searched.as_bytes()).is_some()
    }

    /// The value of param `key`.
    pub fn param(&self, key: &str) -> Option<&Value> {
        lookup(&self.params, key)
    }

    /// The last value of `metric`.
    pub fn last(&self, metric: &str) -> Option<f64> {
        lookup(&self.last, metric).copied().flatten()
    }

    /// The value of tag `key`: `VALUE` of the first tag `key=VALUE`, or
    /// `""` for a tag `key` alone.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags.iter().find_map(|t| {
            if t == key {
                Some("")
            } else {
                t.strip_prefix(key)?.strip_prefix('=')
            }
        })
    }

    /// A fixed summary (for the filter's tests and fuzz oracle): run
    /// `sample`, title `Sample`, tags `baseline` and `team=vision`, params
    /// `lr` 0.1, `model.lr` "0.01", `opt` "adam", metrics `loss` 0.5 and
    /// `acc` none.
    pub(crate) fn sample() -> RunSummary {
        let id = match RunId::parse("sample") {
            Ok(id) => id,
            Err(e) => panic!("a fixed id: {e}"),
        };
        let tags = vec!["baseline".to_owned(), "team=vision".to_owned()];
        RunSummary {
            id,
            name: "Sample".to_owned(),
            name_raw: Some("sample-raw".to_owned()),
            experiment: Some(crate::Experiment {
                id: "lab:vision".to_owned(),
                name: "vision".to_owned(),
            }),
            searched: Box::default(),
            path: "/runs/sample".to_owned(),
            imported_at: 0,
            format: "lab",
            available: true,
            unavailable_reason: None,
            tags,
            created: "2026-01-02T03:04:05Z".to_owned(),
            status: Some("finished".to_owned()),
            has_video: false,
            video: None,
            thumbnail: None,
            artifact_count: 0,
            error_count: 0,
            parent: None,
            job: None,
            user: None,
            source: None,
            git_commit: None,
            duration_secs: None,
            params: vec![
                ("lr".into(), serde_json::json!(0.1)),
                ("model.lr".into(), serde_json::json!("0.01")),
                ("opt".into(), serde_json::json!("adam")),
            ]
            .into_boxed_slice(),
            last: vec![("acc".into(), None), ("loss".into(), Some(0.5))].into_boxed_slice(),
        }
        .searchable()
    }

    /// Whether `other` says the same of the run: every field equal, a
    /// metric's last value by its bits (a NaN is the same NaN).
    fn same_as(&self, other: &RunSummary) -> bool {
        let RunSummary {
            id,
            name,
            name_raw,
            experiment,
            path,
            imported_at,
            format,
            available,
            unavailable_reason,
            tags,
            created,
            status,
            has_video,
            video,
            thumbnail,
            artifact_count,
            error_count,
            parent,
            job,
            user,
            source,
            git_commit,
            duration_secs,
            params,
            last,
            searched,
        } = self;
        *id == other.id
            && *name == other.name
            && *name_raw == other.name_raw
            && *experiment == other.experiment
            && *path == other.path
            && *imported_at == other.imported_at
            && *format == other.format
            && *available == other.available
            && *unavailable_reason == other.unavailable_reason
            && *tags == other.tags
            && *created == other.created
            && *status == other.status
            && *has_video == other.has_video
            && *video == other.video
            && *thumbnail == other.thumbnail
            && *artifact_count == other.artifact_count
            && *error_count == other.error_count
            && *parent == other.parent
            && *job == other.job
            && *user == other.user
            && *source == other.source
            && *git_commit == other.git_commit
            && duration_secs.map(f64::to_bits) == other.duration_secs.map(f64::to_bits)
            && *params == other.params
            && last.len() == other.last.len()
            && last
                .iter()
                .zip(other.last.iter())
                .all(|(a, b)| a.0 == b.0 && a.1.map(f64::to_bits) == b.1.map(f64::to_bits))
            && *searched == other.searched
    }

    /// This summary with [`RunSummary::searched`] filled in.
    fn searchable(mut self) -> Self {
        let dir = self.path.rsplit('/').next().unwrap_or_default();
        let fields: Vec<&str> = searched_fields(&self, dir).collect();
        self.searched = fields.join("\0").to_lowercase().into_boxed_str();
        self
    }
}

/// The value of `key` in a slice sorted by key.
fn lookup<'a, T>(sorted: &'a [(Box<str>, T)], key: &str) -> Option<&'a T> {
    sorted
        .binary_search_by(|(k, _)| (**k).cmp(key))
        .ok()
        .map(|i| &sorted[i].1)
}

/// The fields `?q=` looks in: the id, name, raw name, directory name
/// (`dir`), experiment name and tags.
fn searched_fields<'a>(s: &'a RunSummary, dir: &'a str) -> impl Iterator<Item = &'a str> {
    [
        Some(s.id.as_str()),
        Some(s.name.as_str()),
        s.name_raw.as_deref(),
        Some(dir),
        s.experiment.as_ref().map(|e| e.name.as_str()),
    ]
    .into_iter()
    .flatten()
    .chain(s.tags.iter().map(String::as_str))
}

/// A run with everything `GET /api/runs/{id}` shows.
#[derive(Debug, Serialize)]
pub struct RunDetails {
    /// What the list shows of it.
    #[serde(flatten)]
    pub summary: RunSummary,
    description: Option<String>,
    params: BTreeMap<String, Value>,
    metrics: Vec<MetricInfo>,
    /// Its videos and images (an embedded image's `url` is the face's to
    /// set).
    pub media: Vec<Media>,
    texts: Vec<TextEntry>,
    errors: Vec<String>,
    artifacts: Vec<Listed>,
    /// Its histograms (name, count, last step).
    histograms: Vec<lab_formats::HistogramInfo>,
    /// Its tables (a W&B `Table`): each a JSON artifact, with its size
    /// when it is served (a regular, allowlisted file), else null (the
    /// face gives a `url` only to those).
    tables: Vec<TableListed>,
}

/// A table as a run's details list it.
#[derive(Debug, Serialize)]
pub struct TableListed {
    name: String,
    key: Option<String>,
    step: Option<i64>,
    size: Option<u64>,
}

/// An artifact as a run's details list it.
#[derive(Debug, Serialize)]
pub struct Listed {
    name: String,
    size: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    modified: u64,
}

/// The summaries of every run, and the reads of runs in flight.
///
/// A list is answered from the summaries already computed, whatever their
/// age: it never waits for runs to be read, but for a run never summarised.
/// One background task ([`Lab::keep_fresh`]) summarises every run at
/// start, as fast as it can, then goes round the registry again and again,
/// computing each summary older than [`SUMMARY_TTL`] again at no more than
/// [`REFRESH_RATE`] runs a second: with 1,000 runs a list is at most 5 s
/// behind its runs, with 100,000 at most about 100 s, for a bounded share
/// of one core either way. Recomputing is incremental where the run's
/// reader is still cached (only appended bytes are read).
#[derive(Default)]
pub(crate) struct Summaries {
    /// The reads of runs in flight: one per run, none of a stuck one.
    pub(crate) gate: Gate,
    pub(crate) summaries: Mutex<HashMap<RunId, (Instant, Arc<RunSummary>)>>,
    /// The last count of the columns and when it was counted. Held while
    /// counting, so requests at once wait for one count.
    pub(crate) columns: Mutex<Option<(Instant, Arc<Value>)>>,
    /// The Lab is stopping: background passes stop.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// Counts the changes to `summaries`: a summary added, changed or
    /// dropped (one computed again the same is no change).
    generation: AtomicU64,
    /// The last table of every run's summary lists were answered from.
    pub(crate) table: Mutex<Option<Arc<crate::list::Table>>>,
}

/// Most summaries kept: every run the registry can hold, and as many of
/// object storage's.
const MAX_SUMMARIES: usize = lab_registry::MAX_RUNS + 200_000;

/// Most threads that compute summaries for one list or pass. One for now:
/// with more, two SQLite stores read at once can each find the snapshot
/// space (`[formats] sqlite_snapshot_budget_bytes`) held by the other's
/// read, and CI saw a store's details answered "in use by other stores"
/// (`stuck.rs`'s `stores_that_fill_the_snapshot_space_never_lock_the_others_out`).
/// A list and the background task still read two runs at once, from
/// either end. Raise it once a store's read waits its turn for the space.
const SUMMARY_THREADS: usize = 1;

/// Most summaries computed again per second once every run was
/// summarised.
const REFRESH_RATE: usize = 1_000;

impl std::fmt::Debug for Summaries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Summaries")
    }
}

impl Summaries {
    /// Drops `id`'s summary (a forgotten run).
    pub(crate) fn forget(&self, id: &RunId) {
        if lock(&self.summaries).remove(id).is_some() {
            self.changed();
        }
    }

    /// The count of changes to the summaries so far.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether `run` was never summarised (or only at another root).
    fn never(&self, run: &Run) -> bool {
        lock(&self.summaries)
            .get(&run.id)
            .is_none_or(|(_, summary)| run.root.to_str() != Some(summary.path.as_str()))
    }

    /// Whether `run` needs summarising: never summarised, of another
    /// root, or older than [`SUMMARY_TTL`].
    fn due(&self, run: &Run) -> bool {
        lock(&self.summaries)
            .get(&run.id)
            .is_none_or(|(at, summary)| {
                run.root.to_str() != Some(summary.path.as_str()) || at.elapsed() >= SUMMARY_TTL
            })
    }
}

impl Lab {
    /// The blocking read of everything about `run`, to run through the
    /// [`Gate`].
    pub fn details_of(
        self: &Arc<Self>,
        run: &Run,
    ) -> impl FnOnce() -> Result<RunDetails, lab_fs::Error> + Send + 'static {
        let lab = Arc::clone(self);
        let job = self.job_record(run);
        let run = run.clone();
        move || {
            lab.register_children(&run);
            read_details(&lab, &run, job)
        }
    }

    /// The summaries of `runs` for a list: each the one computed already,
    /// if it is of this root, else computed now. One lock for the lookups.
    /// Blocking.
    pub(crate) fn listed<'a>(
        self: &Arc<Self>,
        runs: impl Iterator<Item = &'a Run>,
    ) -> Vec<Arc<RunSummary>> {
        let mut found: Vec<(&Run, Option<Arc<RunSummary>>)> = {
            let summaries = lock(&self.summaries.summaries);
            runs.map(|run| match summaries.get(&run.id) {
                Some((_, summary)) if run.root.to_str() == Some(summary.path.as_str()) => {
                    (run, Some(Arc::clone(summary)))
                }
                _ => (run, None),
            })
            .collect()
        };
        // Last first: the background task goes first to last, so the two
        // meet in the middle rather than reading the same runs together.
        let missing: Vec<usize> = (0..found.len())
            .rev()
            .filter(|&i| found[i].1.is_none())
            .collect();
        let computed = self.compute_all(&missing.iter().map(|&i| found[i].0).collect::<Vec<_>>());
        for (i, summary) in missing.into_iter().zip(computed) {
            found[i].1 = Some(summary);
        }
        found.into_iter().filter_map(|(_, s)| s).collect()
    }

    /// The summaries of `runs`, in order: each one kept of its root if
    /// there is one by now (another list, or the background task, may
    /// have computed it meanwhile), else computed now; on up to
    /// [`SUMMARY_THREADS`] threads, each in the caller's tokio runtime
    /// when there is one (so each run's read goes to its blocking pool,
    /// not to a thread of its own). Each run's read still goes through
    /// the gate, one at a time per run. Blocking.
    fn compute_all(self: &Arc<Self>, runs: &[&Run]) -> Vec<Arc<RunSummary>> {
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(SUMMARY_THREADS)
            .min(runs.len());
        if threads <= 1 {
            return runs.iter().map(|run| self.kept_or_computed(run)).collect();
        }
        let runtime = tokio::runtime::Handle::try_current().ok();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done: Mutex<Vec<Option<Arc<RunSummary>>>> = Mutex::new(vec![None; runs.len()]);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let _entered = runtime.as_ref().map(tokio::runtime::Handle::enter);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(run) = runs.get(i) else { break };
                        let summary = self.kept_or_computed(run);
                        lock(&done)[i] = Some(summary);
                    }
                });
            }
        });
        let done = done.into_inner().unwrap_or_else(|p| p.into_inner());
        // Every slot was filled (a thread that panicked would have
        // panicked the scope); a gap is computed here rather than lost.
        done.into_iter()
            .zip(runs)
            .map(|(s, run)| s.unwrap_or_else(|| self.kept_or_computed(run)))
            .collect()
    }

    /// `run`'s summary of its root if one is kept, else computed now.
    fn kept_or_computed(self: &Arc<Self>, run: &Run) -> Arc<RunSummary> {
        let kept = lock(&self.summaries.summaries)
            .get(&run.id)
            .filter(|(_, s)| run.root.to_str() == Some(s.path.as_str()))
            .map(|(_, s)| Arc::clone(s));
        kept.unwrap_or_else(|| self.compute(run))
    }

    /// Computes `run`'s summary and keeps it: through the gate, so a run
    /// whose read is stuck is summarised as unavailable at once. Blocking.
    fn compute(self: &Arc<Self>, run: &Run) -> Arc<RunSummary> {
        // A run in object storage whose store does not answer: why, at
        // once (nothing is asked of it).
        let down = run.remote.as_ref().and_then(|r| r.root.unavailable());
        let read = match down {
            Some(reason) => Err(reason),
            None => Ok(self.summaries.gate.read_sync(&run.id, self.details_of(run))),
        };
        let summary = Arc::new(match read {
            Err(reason) => unavailable(run, reason),
            Ok(read) => match read {
                Ok(Ok(details)) => details.summary,
                Ok(Err(e)) => unavailable(run, cannot_open(&e)),
                Err(stuck) => unavailable(run, stuck.reason()),
            },
        });
        let mut summaries = lock(&self.summaries.summaries);
        if summaries.len() > MAX_SUMMARIES {
            // Runs dropped without being forgotten one by one: the
            // background task computes the registered ones again.
            summaries.clear();
        }
        let kept = match summaries.get(&run.id) {
            // The same as before: the one kept stays (lists and their
            // sorted orders stay valid).
            Some((_, old)) if old.same_as(&summary) => Arc::clone(old),
            _ => {
                self.summaries.changed();
                summary
            }
        };
        summaries.insert(run.id.clone(), (Instant::now(), Arc::clone(&kept)));
        kept
    }

    /// Computes every run's summary again now, as one pass of the
    /// background task does (unthrottled): what a list shows after it is
    /// what the runs hold now. Blocking.
    pub fn resummarise(self: &Arc<Self>) -> Result<(), crate::Error> {
        for run in self.runs()?.iter() {
            self.compute(run);
        }
        Ok(())
    }

    /// The background task: summarises every run never summarised (at
    /// start, and each run registered since) at once, on several threads;
    /// then keeps going round, computing due summaries again at no more
    /// than [`REFRESH_RATE`] a second, until the Lab stops or is gone (it
    /// holds the Lab only for a slice of runs at a time). Blocking.
    pub fn keep_fresh(lab: std::sync::Weak<Lab>) {
        let live = || lab.upgrade().filter(|l| !l.stopping());
        loop {
            let Some(runs) = live().and_then(|l| l.runs().ok()) else {
                return;
            };
            // Never summarised: unthrottled, in slices so that a stopping
            // Lab is let go of soon.
            for slice in runs.chunks(256) {
                let Some(lab) = live() else { return };
                let new: Vec<&Run> = slice.iter().filter(|r| lab.summaries.never(r)).collect();
                lab.compute_all(&new);
            }
            let mut done = 0usize;
            let mut window = Instant::now();
            for run in runs.iter() {
                let Some(lab) = live() else { return };
                if !lab.summaries.due(run) {
                    continue;
                }
                lab.compute(run);
                drop(lab);
                done += 1;
                if done.is_multiple_of(REFRESH_RATE / 10) {
                    // A tenth of the rate per tenth of a second.
                    if let Some(rest) = Duration::from_millis(100).checked_sub(window.elapsed()) {
                        std::thread::sleep(rest);
                    }
                    window = Instant::now();
                }
            }
            // Round again after a pause: a short registry waits for its
            // summaries to come due rather than spinning; a registry that
            // changed is gone round at once.
            for _ in 0..10 {
                let Some(lab) = live() else { return };
                if lab.runs().is_ok_and(|now| !Arc::ptr_eq(&now, &runs)) {
                    break;
                }
                drop(lab);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Everything about `run`. Blocking: call it through the [`Gate`].
fn read_details(
    lab: &Lab,
    run: &Run,
    record: Option<lab_runner::jobs::JobRecord>,
) -> std::result::Result<RunDetails, lab_fs::Error> {
    let readers: &Readers = &lab.readers;
    let allow = &lab.allowlists;
    let source = lab.readers.open_source(run)?;
    let format = run.format;
    let job = lab.job_view(run, source.local(), record);
    let reader = readers.reader(run, &source, REFRESH_EVERY);
    let (mut info, shown) = {
        let reader = lock(&reader);
        (reader.info(), reader.format())
    };
    job.show(&mut info);
    let experiment = lab.experiment_of(run, shown, &info, job.cwd.as_deref());
    // A job's run serves the Lab's own files of it (logs, provenance) from
    // its directory; what the job wrote is read, not served, here.
    let artifacts = match artifact_root(run, source, &info) {
        Some(source) => source.list_artifacts(allow.of(format))?,
        None => Vec::new(),
    };
    let store_parent = info.parent.clone();
    let mut details = details(run, shown, info, experiment, &artifacts);
    // The job's run that wrote it, else its parent in its own store (an
    // MLflow run's `mlflow.parentRunId`).
    details.summary.parent = readers
        .parent_of(run)
        .or_else(|| lab.store_run(run, store_parent.as_deref()?));
    // A job's id is its run's.
    details.summary.job = job.is_job.then(|| run.id.to_string());
    Ok(details)
}

/// Why a run whose directory cannot be opened is unavailable (its kind,
/// never a path).
fn cannot_open(e: &lab_fs::Error) -> String {
    match e {
        lab_fs::Error::NotFound => "its directory is gone (moved or deleted?)".to_owned(),
        lab_fs::Error::RootMoved => "its directory was moved or replaced".to_owned(),
        _ => "its directory cannot be opened".to_owned(),
    }
}

fn modified_secs(a: &ArtifactInfo) -> u64 {
    a.modified
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A run that cannot be read now, and why.
fn unavailable(run: &Run, reason: String) -> RunSummary {
    RunSummary {
        id: run.id.clone(),
        name: run.dir_name().to_owned(),
        name_raw: None,
        experiment: None,
        path: run.root.display().to_string(),
        imported_at: run.imported_at,
        format: run.format.as_str(),
        available: false,
        unavailable_reason: Some(reason),
        tags: Vec::new(),
        created: lab_fs::bundle::iso8601_utc(run.imported_at),
        status: None,
        has_video: false,
        video: None,
        thumbnail: None,
        artifact_count: 0,
        error_count: 0,
        parent: None,
        job: None,
        user: None,
        source: None,
        git_commit: None,
        duration_secs: None,
        params: Box::default(),
        last: Box::default(),
        searched: Box::default(),
    }
    .searchable()
}

fn details(
    run: &Run,
    format: Format,
    info: lab_formats::RunInfo,
    experiment: Option<crate::Experiment>,
    artifacts: &[ArtifactInfo],
) -> RunDetails {
    let video = artifacts
        .iter()
        .find(|a| a.name.as_str().ends_with(".mp4"))
        .map(|a| a.name.to_string());
    let thumbnail = ["thumbnail.png", "thumbnail.jpg", "preview.png"]
        .iter()
        .find(|t| artifacts.iter().any(|a| a.name.as_str() == **t))
        .map(|t| (*t).to_owned())
        .or_else(|| {
            artifacts
                .iter()
                .find(|a| content_type(&a.name).starts_with("image/"))
                .map(|a| a.name.to_string())
        });
    // An embedded image's `url` is the face's to set.
    let mut media = info.media.clone();
    for a in artifacts {
        let kind = content_type(&a.name);
        let kind = if kind.starts_with("video/") {
            "video"
        } else if kind.starts_with("image/") {
            "image"
        } else {
            continue;
        };
        if !media.iter().any(|m| m.artifact == a.name.as_str()) {
            media.push(Media {
                artifact: a.name.to_string(),
                kind,
                step: None,
                key: None,
                embedded: false,
                url: None,
            });
        }
    }
    let name = info
        .title
        .clone()
        .or_else(|| info.name.clone())
        .unwrap_or_else(|| run.dir_name().to_owned());
    let summary = RunSummary {
        searched: Box::default(),
        id: run.id.clone(),
        name,
        name_raw: info.name.clone(),
        experiment,
        path: run.root.display().to_string(),
        imported_at: run.imported_at,
        format: format.as_str(),
        available: info.unavailable.is_none(),
        unavailable_reason: info.unavailable.clone(),
        tags: info.tags.clone(),
        created: info
            .created
            .clone()
            .unwrap_or_else(|| lab_fs::bundle::iso8601_utc(run.imported_at)),
        status: info.status.clone(),
        has_video: video.is_some(),
        video,
        thumbnail,
        artifact_count: artifacts.len(),
        error_count: info.errors.len(),
        parent: None,
        job: None,
        user: info.user.clone(),
        source: info.source.clone(),
        git_commit: info.git_commit.clone(),
        duration_secs: info.duration_secs(),
        // A BTreeMap iterates in key order: the slice is sorted.
        params: info
            .params
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.clone()))
            .collect(),
        last: info
            .metrics
            .iter()
            .map(|m| (m.name.as_str(), m.last))
            // Sorted by name, the last of a repeated name kept.
            .collect::<BTreeMap<&str, Option<f64>>>()
            .into_iter()
            .map(|(name, last)| (name.into(), last))
            .collect(),
    }
    .searchable();
    RunDetails {
        summary,
        description: info.description,
        params: info.params,
        metrics: info.metrics,
        media,
        texts: info.texts,
        errors: info.errors,
        histograms: info.histograms,
        tables: info
            .tables
            .into_iter()
            .map(|t| TableListed {
                size: artifacts
                    .iter()
                    .find(|a| a.name.as_str() == t.artifact)
                    .map(|a| a.len),
                name: t.artifact,
                key: t.key,
                step: t.step,
            })
            .collect(),
        artifacts: artifacts
            .iter()
            .map(|a| Listed {
                name: a.name.to_string(),
                size: a.len,
                kind: content_type(&a.name),
                modified: modified_secs(a),
            })
            .collect(),
    }
}

/// Why a run whose directory cannot be opened is unavailable (its kind,
/// never a path).
pub fn unavailable_reason(e: &lab_fs::Error) -> String {
    cannot_open(e)
}
