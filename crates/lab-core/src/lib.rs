//! lab-core is the Lab's application: what a run is and everything both
//! faces do with runs — discover and import them, forget them, list,
//! filter, sort and page their summaries, show one, open an artifact, read
//! a metric series, export a bundle, start and cancel jobs. It knows no
//! HTTP and no command line: lab-http adapts [`Lab`] to HTTP, lab-cli to
//! flags.
//!
//! Every run is held as a [`Run`]: its registry record and its format,
//! parsed once. Files are reached only through lab-registry (which run)
//! and lab-fs (which file); a run's formats are read by lab-formats'
//! readers, and jobs run through lab-runner — the only crate above them,
//! re-exported here ([`formats`], [`runner`]) for the faces' types.
#![forbid(unsafe_code)]

pub mod artifacts;
pub mod discovery;
mod experiments;
mod exports;
pub mod filter;
pub mod gate;
pub mod histograms;
mod job_runs;
pub mod jobs;
pub mod list;
mod readers;
pub use readers::READER_BUDGET;
pub mod remote;
pub mod series;
pub mod summaries;

/// The storage seam every format reader reads through (`list`, `stat`,
/// `read_range` pinned to a version, `copy_to_private_file` for SQLite
/// stores): the trait is lab-formats' input, defined beside the readers;
/// the Lab chooses the storage of each run. Locally that is
/// [`LocalStorage`](storage::LocalStorage) over lab-fs (beneath-handle
/// opens, no link out, single-linked under `job/`, `O_NONBLOCK`).
pub mod storage {
    pub use lab_formats::LocalStorage;
    pub use lab_formats::storage::*;
}

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use artifacts::{Allowlists, content_type};
pub use experiments::{Experiment, ExperimentEntry};
pub use exports::{BundleImportError, ExportError};
pub use job_runs::Child;
pub use lab_formats as formats;
use lab_registry::{Registry, RunId, RunRecord};
pub use lab_runner as runner;

/// A registered run: its record and its format, parsed once.
#[derive(Clone, Debug)]
pub struct Run {
    /// What the registry holds of it (for a run in object storage, what
    /// the last listing found: never written to the registry; its `root`
    /// is its `s3://` URL, which no local open takes).
    pub record: RunRecord,
    /// The format its reader is (`lab` for records from before formats).
    pub format: lab_formats::Format,
    /// For a run in object storage: its root and directory there.
    pub remote: Option<Arc<remote::RemoteRun>>,
}

impl Run {
    /// `record` with its format parsed.
    pub fn new(record: RunRecord) -> Self {
        let format = Self::format_of(&record);
        Self {
            record,
            format,
            remote: None,
        }
    }

    /// The format of `record`: the one place a stored format is parsed.
    pub fn format_of(record: &RunRecord) -> lab_formats::Format {
        record
            .format
            .as_deref()
            .and_then(lab_formats::Format::parse)
            .unwrap_or(lab_formats::Format::Lab)
    }
}

impl std::ops::Deref for Run {
    type Target = RunRecord;

    fn deref(&self) -> &RunRecord {
        &self.record
    }
}

/// What the runner may do, as `/api/status` reports it.
#[derive(Clone, Debug, Default)]
pub struct RunnerStatus {
    /// Jobs may be started.
    pub enabled: bool,
    /// Jobs may use the network.
    pub network_allowed: bool,
    /// Workflow exec hooks may run (with confirmation).
    pub workflow_exec_allowed: bool,
    /// Allowlisted program names.
    pub programs: Vec<String>,
    /// Allowlisted environment variable names.
    pub env_allow: Vec<String>,
    /// The isolation layers this machine provided when the Lab started (a
    /// probe run through the sandbox), or why it could not.
    pub isolation: Option<lab_runner::record::Isolation>,
    /// Why jobs cannot run on this machine (a required isolation layer is
    /// missing), when they cannot; every job is then refused.
    pub unavailable: Option<String>,
    /// The configured job limits and how this machine applies them
    /// (`lab_runner::Runner::limits_status`).
    pub limits: serde_json::Value,
}

impl RunnerStatus {
    /// An enabled runner's status: the sandbox probed once on this machine
    /// (a job that only reports its isolation, its records in `jobs_dir`).
    /// Fail closed: a kernel without every layer, or a probe the sandbox
    /// refused or that failed, leaves the runner unavailable, saying why.
    pub async fn probe(
        runner: &lab_runner::Runner,
        jobs_dir: &std::path::Path,
        network_allowed: bool,
        workflow_exec_allowed: bool,
    ) -> Self {
        let isolation = runner.probe(jobs_dir).await;
        let unavailable = match (runner.kernel_plan(), &isolation.refused) {
            (Err(e), _) => Some(e.to_string()),
            (Ok(_), Some(refused)) => Some(format!(
                "the sandbox probe was refused at {}: {}",
                refused.layer, refused.error
            )),
            (Ok(_), None) => isolation
                .error
                .as_ref()
                .map(|error| format!("the sandbox probe failed: {error}")),
        };
        Self {
            enabled: true,
            network_allowed,
            workflow_exec_allowed,
            programs: Vec::new(),
            env_allow: Vec::new(),
            isolation: Some(isolation),
            unavailable,
            limits: runner.limits_status(),
        }
    }
}

/// Everything the application needs.
#[derive(Debug)]
pub struct LabConfig {
    /// The run registry.
    pub registry: Arc<Registry>,
    /// Which artifact names are served (before each format's own).
    pub allowlist: lab_fs::Allowlist,
    /// Runner switches and what the machine provides.
    pub runner: RunnerStatus,
    /// Where bundles are written (`DATA_DIR/exports`); `None` turns
    /// exports off.
    pub exports_dir: Option<PathBuf>,
    /// The job table when the runner is enabled; `None` refuses every job.
    pub jobs: Option<Arc<lab_runner::jobs::JobManager>>,
    /// `DATA_DIR/runs` (canonical): a run directly in it is a job's run,
    /// whose params, metrics and media are what the job wrote in its
    /// `job/` (SPEC §5); `None`: no run is read so.
    pub job_runs: Option<PathBuf>,
    /// The values of the Lab's own secret-looking environment variables
    /// (`lab_redact::secret_values`), redacted from every bundle; the
    /// caller reads its environment, the core never does.
    pub lab_secrets: Vec<Vec<u8>>,
    /// What the caller's walk at start could not read (shown in the status
    /// until the next walk).
    pub discovery_warnings: Vec<String>,
    /// Whether the allowed roots are walked while serving (the first walk
    /// then starts with the server; lists wait for it a little).
    pub walking: bool,
    /// The format readers' and the walk's bounds (`[formats]`).
    pub formats: lab_formats::Limits,
    /// Points the cached readers hold together at most (`[formats]
    /// cached_points`; default [`READER_BUDGET`]).
    pub cached_points: usize,
    /// The object-storage roots (made and probed by the caller).
    pub s3: Arc<remote::S3Roots>,
}

impl LabConfig {
    /// A configuration with the runner off, no exports, no job runs.
    pub fn new(registry: Arc<Registry>, allowlist: lab_fs::Allowlist) -> Self {
        Self {
            registry,
            allowlist,
            runner: RunnerStatus::default(),
            exports_dir: None,
            jobs: None,
            job_runs: None,
            lab_secrets: Vec::new(),
            discovery_warnings: Vec::new(),
            walking: false,
            formats: lab_formats::Limits::default(),
            cached_points: readers::READER_BUDGET,
            s3: Arc::default(),
        }
    }
}

/// Why an operation of the Lab failed.
#[derive(Debug)]
pub enum Error {
    /// The registry refused it (unknown run, outside the roots, …).
    Registry(lab_registry::Error),
    /// A file could not be opened or is not served.
    Fs(lab_fs::Error),
    /// A run's directory cannot be opened now: why, in words (never a
    /// path).
    RunUnavailable(String),
    /// The exports directory cannot be opened.
    Exports(lab_fs::bundle::BundleError),
}

impl From<lab_registry::Error> for Error {
    fn from(e: lab_registry::Error) -> Self {
        Error::Registry(e)
    }
}

impl From<lab_fs::Error> for Error {
    fn from(e: lab_fs::Error) -> Self {
        Error::Fs(e)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Registry(e) => e.fmt(f),
            Error::Fs(e) => e.fmt(f),
            Error::RunUnavailable(why) => f.write_str(why),
            Error::Exports(e) => write!(f, "exports directory: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The application: the registry and everything known of its runs.
pub struct Lab {
    registry: Arc<Registry>,
    allowlists: Allowlists,
    /// The format readers of recently used runs.
    readers: Arc<readers::Readers>,
    /// The summaries of every run, and the reads of runs in flight.
    summaries: summaries::Summaries,
    /// Experiment names read from directories.
    experiment_names: experiments::Names,
    jobs: Option<Arc<lab_runner::jobs::JobManager>>,
    runner: RunnerStatus,
    formats: lab_formats::Limits,
    exports: Option<lab_fs::bundle::ExportsDir>,
    /// Redaction applied to text going into a bundle: the values of the
    /// secret-looking variables in the Lab's own environment, known formats.
    export_filter: lab_redact::export::RedactingFilter,
    /// The runs an export is being written of: one at a time per run.
    exporting: Mutex<HashSet<RunId>>,
    /// What the last walk of the allowed roots could not read or cut short.
    discovery_warnings: Mutex<Vec<String>>,
    /// The run-like directories the last walk could not read.
    unrecognised: Mutex<discovery::Unrecognised>,
    /// The walks of the allowed roots.
    walks: discovery::Walks,
    /// The registry's last list and the same runs typed, so a format is
    /// parsed once per change of the registry.
    typed: Mutex<Typed>,
    /// The object-storage roots and their runs.
    s3: Arc<remote::S3Roots>,
}

/// The registry's list of runs (compared by pointer), the same runs
/// typed, and the MLflow runs by their store and key in it.
type Typed = (
    Arc<Vec<RunRecord>>,
    Arc<Vec<Run>>,
    Arc<job_runs::StoreKeys>,
    Arc<Vec<Run>>,
);

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lab")
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// At most 100 warnings, the rest counted.
pub(crate) fn cap_warnings(mut warnings: Vec<String>) -> Vec<String> {
    if warnings.len() > 100 {
        let more = warnings.len() - 99;
        warnings.truncate(99);
        warnings.push(format!("… and {more} more"));
    }
    warnings
}

impl Lab {
    /// The application over `config`: opens the exports directory.
    pub fn new(config: LabConfig) -> Result<Self, Error> {
        let exports = config
            .exports_dir
            .as_deref()
            .map(lab_fs::bundle::ExportsDir::open_ambient)
            .transpose()
            .map_err(Error::Exports)?;
        Ok(Self {
            readers: Arc::new(readers::Readers::new(
                config.formats,
                config.cached_points,
                config.job_runs,
            )),
            summaries: summaries::Summaries::default(),
            experiment_names: experiments::Names::default(),
            jobs: config.jobs,
            runner: config.runner,
            formats: config.formats,
            exports,
            export_filter: lab_redact::export::RedactingFilter::new(lab_redact::Redactor::new(
                config.lab_secrets.iter(),
            )),
            exporting: Mutex::default(),
            discovery_warnings: Mutex::new(cap_warnings(config.discovery_warnings)),
            unrecognised: Mutex::default(),
            walks: discovery::Walks::new(config.walking),
            allowlists: Allowlists::new(config.allowlist),
            typed: Mutex::new((
                Arc::default(),
                Arc::default(),
                Arc::default(),
                Arc::default(),
            )),
            registry: config.registry,
            s3: config.s3,
        })
    }

    /// The run registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The artifact allowlists.
    pub fn allowlists(&self) -> &Allowlists {
        &self.allowlists
    }

    /// What the runner may do here.
    pub fn runner(&self) -> &RunnerStatus {
        &self.runner
    }

    /// The job table, when the runner is on.
    pub fn jobs(&self) -> Option<&Arc<lab_runner::jobs::JobManager>> {
        self.jobs.as_ref()
    }

    /// The format readers' and the walk's bounds.
    pub fn format_limits(&self) -> &lab_formats::Limits {
        &self.formats
    }

    /// The reads of runs in flight: one per run, none of a stuck one.
    pub fn gate(&self) -> &gate::Gate {
        &self.summaries.gate
    }

    /// What the last walk of the allowed roots could not read.
    pub fn discovery_warnings(&self) -> Vec<String> {
        let mut warnings = lock(&self.discovery_warnings).clone();
        warnings.extend(self.s3.warnings());
        cap_warnings(warnings)
    }

    /// The run-like directories the last walk found but no reader reads.
    pub fn unrecognised(&self) -> discovery::Unrecognised {
        lock(&self.unrecognised).clone()
    }

    /// The walks of the allowed roots.
    pub fn walks(&self) -> &discovery::Walks {
        &self.walks
    }

    /// Every registered run, typed, sorted by id. Blocking (the registry
    /// may read its store).
    pub fn runs(&self) -> Result<Arc<Vec<Run>>, Error> {
        Ok(self.typed()?.0)
    }

    /// [`Lab::runs`], and the MLflow runs among them by their store and
    /// key in it, both built once per change of the registry. Blocking.
    pub(crate) fn typed(&self) -> Result<(Arc<Vec<Run>>, Arc<job_runs::StoreKeys>), Error> {
        let records = self.registry.runs()?;
        let remote = self.s3.runs();
        let mut typed = lock(&self.typed);
        if !Arc::ptr_eq(&typed.0, &records) || !Arc::ptr_eq(&typed.3, &remote) {
            let mut runs: Vec<Run> = records.iter().cloned().map(Run::new).collect();
            if !remote.is_empty() {
                runs.extend(remote.iter().cloned());
                runs.sort_by(|a, b| a.id.cmp(&b.id));
            }
            let keys = job_runs::store_keys(&runs);
            *typed = (Arc::clone(&records), Arc::new(runs), Arc::new(keys), remote);
        }
        Ok((Arc::clone(&typed.1), Arc::clone(&typed.2)))
    }

    /// Lists the object-storage roots again and finds their runs (what a
    /// server's walks do every `[s3] relist_secs`). The warnings. Blocking.
    pub fn rediscover_s3(&self) -> Vec<String> {
        self.s3
            .rediscover(&self.formats, &|id| self.registry.get(id).is_ok())
    }

    /// The object-storage roots.
    pub fn s3_roots(&self) -> &[Arc<remote::S3Root>] {
        self.s3.roots()
    }

    /// One run. Blocking.
    pub fn run(&self, id: &RunId) -> Result<Run, Error> {
        // A registered run first: a run in a bucket never stands in for one.
        match self.registry.get(id) {
            Ok(record) => Ok(Run::new(record)),
            Err(e) => self.s3.get(id).ok_or(Error::Registry(e)),
        }
    }

    /// Forgets run `id` (its files are untouched; the walk does not bring
    /// it back). Blocking.
    pub fn forget(&self, id: &RunId) -> Result<Run, Error> {
        if self.s3.get(id).is_some() {
            return Err(Error::RunUnavailable(
                "a run in object storage is not forgotten one by one: `lab forget-root` its root"
                    .to_owned(),
            ));
        }
        let run = Run::new(self.registry.forget(id)?);
        self.readers.forget(&run.id);
        self.summaries.forget(&run.id);
        Ok(run)
    }

    /// Imports `dir` (see [`discovery::import_dir`]). Blocking.
    pub fn import(
        &self,
        dir: &std::path::Path,
        id: Option<&str>,
    ) -> Result<Vec<Run>, discovery::ImportError> {
        discovery::import_dir(&self.registry, dir, id, &self.formats)
    }

    /// Stops the background work (the summariser, the walks).
    pub fn stop(&self) {
        self.summaries
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether [`Lab::stop`] was called.
    pub(crate) fn stopping(&self) -> bool {
        self.summaries
            .stopping
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// How long a run's reader goes without looking for new data, at most.
pub const REFRESH_EVERY: Duration = readers::REFRESH_EVERY;
