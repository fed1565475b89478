//! Runs: typed summaries from the format readers (lab-formats), the list
//! with filtering, sorting, extra fields and paging, one run's details,
//! its metric series downsampled for charts, import and forget.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Response, StatusCode};
use hyper::body::Incoming;
use lab_formats::{Format, Media, MetricInfo, TextEntry};
use lab_fs::{ArtifactInfo, RunRoot};
use lab_registry::{RunId, RunRecord};
use lab_runner::JobState;
use serde::Serialize;
use serde_json::{Value, json};

use crate::State;
use crate::artifacts::Allowlists;
use crate::artifacts::content_type;
use crate::decode::query_pairs;
use crate::discovery::{ImportError, format_of};
use crate::gate::Gate;
use crate::guard::Checked;
use crate::readers::{REFRESH_EVERY, Readers, artifact_root, lock};
use crate::request::{Result, blocking, gated, parse_id, read_json};
use crate::response::{ApiError, Body, Code, json_response};
use crate::signed::Urls;

/// Default and largest page size of `GET /api/runs`.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;
/// How long a computed summary is reused before the run is looked at again.
const SUMMARY_TTL: Duration = Duration::from_secs(5);
/// Most `fields` one list request may ask for.
const MAX_FIELDS: usize = 32;

/// A run as the list shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RunSummary {
    id: RunId,
    /// The directory's own name.
    name: String,
    path: String,
    imported_at: u64,
    format: &'static str,
    available: bool,
    /// Why `available` is false: its directory cannot be opened, or a read
    /// of its files is stuck.
    unavailable_reason: Option<String>,
    /// The display name: the format's run name, else the directory's.
    title: String,
    tags: Vec<String>,
    created: String,
    status: Option<String>,
    has_video: bool,
    video: Option<String>,
    thumbnail: Option<String>,
    artifact_count: usize,
    /// How many parts of the run could not be read (details on the run).
    error_count: usize,
    /// The job's run whose job wrote this run (beneath its `job/`).
    parent: Option<RunId>,
    /// For a job's run: its job's id (`GET /api/jobs/{job}`).
    job: Option<String>,
    /// Params and last metric values, sorted by name: slices, not maps (a
    /// summary is kept for every run; 100,000 of them must stay small).
    #[serde(skip)]
    params: Box<[(Box<str>, Value)]>,
    #[serde(skip)]
    last: Box<[(Box<str>, Option<f64>)]>,
    /// The id, name, title and tags, lower-cased once and joined by NULs,
    /// for `?q=`.
    #[serde(skip)]
    searched: Box<str>,
}

impl RunSummary {
    /// Whether `q` (lower-cased) is in the id, name, title or a tag. A
    /// `q` without a NUL that occurs in the joined string lies within one
    /// field (an occurrence across fields would hold the NUL between
    /// them); one with a NUL is looked for in the fields themselves.
    fn matches(&self, q: &str) -> bool {
        if q.contains('\0') {
            let lower = |t: &str| t.to_lowercase();
            return [self.id.as_str(), &self.name, &self.title]
                .into_iter()
                .chain(self.tags.iter().map(String::as_str))
                .any(|field| lower(field).contains(q));
        }
        self.searched.contains(q)
    }

    /// [`RunSummary::matches`] with `q`'s searcher built once for a whole
    /// list (`q` lower-cased).
    fn matches_with(&self, q: &str, finder: &memchr::memmem::Finder<'_>) -> bool {
        if q.contains('\0') {
            return self.matches(q);
        }
        finder.find(self.searched.as_bytes()).is_some()
    }

    fn param(&self, key: &str) -> Option<&Value> {
        lookup(&self.params, key)
    }

    fn last(&self, metric: &str) -> Option<f64> {
        lookup(&self.last, metric).copied().flatten()
    }
}

/// The value of `key` in a slice sorted by key.
fn lookup<'a, T>(sorted: &'a [(Box<str>, T)], key: &str) -> Option<&'a T> {
    sorted
        .binary_search_by(|(k, _)| (**k).cmp(key))
        .ok()
        .map(|i| &sorted[i].1)
}

/// The fields `?q=` looks in, lower-cased, joined by NULs.
fn searched(id: &RunId, name: &str, title: &str, tags: &[String]) -> Box<str> {
    let fields: Vec<&str> = [id.as_str(), name, title]
        .into_iter()
        .chain(tags.iter().map(String::as_str))
        .collect();
    fields.join("\0").to_lowercase().into_boxed_str()
}

/// A run with everything `GET /api/runs/{id}` shows.
#[derive(Debug, Serialize)]
struct RunDetails {
    #[serde(flatten)]
    summary: RunSummary,
    description: Option<String>,
    params: BTreeMap<String, Value>,
    metrics: Vec<MetricInfo>,
    media: Vec<Media>,
    texts: Vec<TextEntry>,
    errors: Vec<String>,
    artifacts: Vec<Listed>,
}

#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    size: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    modified: u64,
}

/// The readers of recently used runs, and their summaries.
///
/// A list is answered from the summaries already computed, whatever their
/// age: it never waits for runs to be read, but for a run never summarised.
/// One background task ([`Summaries::keep_fresh`]) summarises every run at
/// start, as fast as it can, then goes round the registry again and again,
/// computing each summary older than [`SUMMARY_TTL`] again at no more than
/// [`REFRESH_RATE`] runs a second: with 1,000 runs a list is at most 5 s
/// behind its runs, with 100,000 at most about 100 s, for a bounded share
/// of one core either way. Recomputing is incremental where the run's
/// reader is still cached (only appended bytes are read).
#[derive(Default)]
pub(crate) struct Summaries {
    /// The format readers of recently used runs.
    pub(crate) readers: Arc<Readers>,
    /// The reads of runs in flight: one per run, none of a stuck one.
    pub(crate) gate: Gate,
    /// The job table, when the runner is on: a job's run shows its job's
    /// state as its status.
    jobs: Option<Arc<lab_runner::jobs::JobManager>>,
    /// Where the runs a job wrote beneath its run are registered.
    registry: Option<Arc<lab_registry::Registry>>,
    summaries: Mutex<HashMap<RunId, (Instant, Arc<RunSummary>)>>,
    /// The last `GET /api/columns` answer and when it was counted. Held
    /// while counting, so requests at once wait for one count.
    columns: Mutex<Option<(Instant, Arc<Value>)>>,
    /// The server is shutting down: background passes stop.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
}

/// Most summaries computed again per second once every run was
/// summarised.
const REFRESH_RATE: usize = 1_000;

impl std::fmt::Debug for Summaries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Summaries")
    }
}

impl Summaries {
    /// No summaries yet; readers made under `limits`; job runs' states
    /// from `jobs`.
    pub(crate) fn new(
        limits: lab_formats::Limits,
        jobs: Option<Arc<lab_runner::jobs::JobManager>>,
        job_runs: Option<std::path::PathBuf>,
        registry: Arc<lab_registry::Registry>,
    ) -> Self {
        Self {
            registry: Some(registry),
            readers: Arc::new(Readers::new(limits, job_runs)),
            jobs,
            ..Self::default()
        }
    }

    /// The record of the job whose run `run` is, if it is one (a job's
    /// run has its job's id).
    fn job_record(&self, run: &RunRecord) -> Option<lab_runner::jobs::JobRecord> {
        let id = run.id.as_str();
        let record = match &self.jobs {
            Some(jobs) => jobs.get(id)?,
            // Without the runner: the record in the data dir, read only —
            // for a job's run alone (no file is looked for for any other).
            None if self.readers.is_job_run(run) => {
                lab_runner::jobs::read_record(self.readers.data_dir()?, id)?
            }
            None => return None,
        };
        (record.run_id == id).then_some(record)
    }

    /// The blocking read of everything about `run`, to run through the
    /// [`Gate`].
    fn details_of(
        &self,
        run: &RunRecord,
        allow: &Arc<Allowlists>,
    ) -> impl FnOnce() -> std::result::Result<RunDetails, lab_fs::Error> + Send + 'static {
        let readers = Arc::clone(&self.readers);
        let allow = Arc::clone(allow);
        let job = self.job_record(run);
        let run = run.clone();
        let registry = self.registry.clone();
        move || {
            // The runs the job wrote beneath its run: each registered as a
            // run of its own (walked and checked as any run under an
            // allowed root: DATA_DIR/runs is one), its parent this run.
            if let Some(registry) = registry {
                let children = readers.new_children(&run);
                if !children.is_empty() {
                    // At most MAX_CHILDREN over the job run's life, however
                    // many its job keeps making.
                    let known = registry.runs().map_or(usize::MAX, |runs| {
                        runs.iter()
                            .filter(|r| readers.parent_of(r).as_ref() == Some(&run.id))
                            .count()
                    });
                    let room = lab_formats::job::MAX_CHILDREN.saturating_sub(known);
                    let candidates: Vec<lab_registry::Candidate> = children
                        .into_iter()
                        .take(room)
                        .map(|f| lab_registry::Candidate {
                            dir: f.dir,
                            format: f.format.as_str().to_owned(),
                            entry: f.entry,
                            name: f.name,
                        })
                        .collect();
                    let beneath = run.root.join("job");
                    if !candidates.is_empty()
                        && let Err(e) = registry.register_beneath(&beneath, &candidates)
                    {
                        eprintln!("lab: registering the runs job {} wrote: {e}", run.id);
                    }
                }
            }
            read_details(&readers, &run, &allow, job)
        }
    }

    /// The summaries of `runs` for a list: each the one computed already,
    /// if it is of this root, else computed now. One lock for the lookups.
    /// Blocking.
    fn listed<'a>(
        &self,
        runs: impl Iterator<Item = &'a RunRecord>,
        allow: &Arc<Allowlists>,
    ) -> Vec<Arc<RunSummary>> {
        let mut found: Vec<(&RunRecord, Option<Arc<RunSummary>>)> = {
            let summaries = lock(&self.summaries);
            runs.map(|run| match summaries.get(&run.id) {
                Some((_, summary)) if run.root.to_str() == Some(summary.path.as_str()) => {
                    (run, Some(Arc::clone(summary)))
                }
                _ => (run, None),
            })
            .collect()
        };
        for (run, summary) in &mut found {
            if summary.is_none() {
                *summary = Some(self.compute(run, allow));
            }
        }
        found.into_iter().filter_map(|(_, s)| s).collect()
    }

    /// Computes `run`'s summary and keeps it: through the gate, so a run
    /// whose read is stuck is summarised as unavailable at once. Blocking.
    fn compute(&self, run: &RunRecord, allow: &Arc<Allowlists>) -> Arc<RunSummary> {
        let read = self.gate.read_sync(&run.id, self.details_of(run, allow));
        let summary = Arc::new(match read {
            Ok(Ok(details)) => details.summary,
            Ok(Err(e)) => unavailable(run, cannot_open(&e)),
            Err(stuck) => unavailable(run, stuck.reason()),
        });
        let mut summaries = lock(&self.summaries);
        if summaries.len() > 200_000 {
            summaries.clear();
        }
        summaries.insert(run.id.clone(), (Instant::now(), Arc::clone(&summary)));
        summary
    }

    /// Whether `run` needs summarising: never summarised, of another
    /// root, or older than [`SUMMARY_TTL`].
    fn due(&self, run: &RunRecord) -> bool {
        lock(&self.summaries)
            .get(&run.id)
            .is_none_or(|(at, summary)| {
                run.root.to_str() != Some(summary.path.as_str()) || at.elapsed() >= SUMMARY_TTL
            })
    }

    /// The background task: summarises every run (at start, unthrottled),
    /// then keeps going round, computing due summaries at no more than
    /// [`REFRESH_RATE`] a second, until the server stops or is gone (it
    /// holds the state only for one summary at a time). Blocking.
    pub(crate) fn keep_fresh(state: std::sync::Weak<State>) {
        use std::sync::atomic::Ordering;
        let live = || {
            state
                .upgrade()
                .filter(|s| !s.summaries.stopping.load(Ordering::Relaxed))
        };
        let mut first = true;
        loop {
            let Some(runs) = live().and_then(|s| s.registry.runs().ok()) else {
                return;
            };
            let mut done = 0usize;
            let mut window = Instant::now();
            for run in runs.iter() {
                let Some(state) = live() else { return };
                if !state.summaries.due(run) {
                    continue;
                }
                state.summaries.compute(run, &state.allowlists);
                drop(state);
                done += 1;
                if !first && done.is_multiple_of(REFRESH_RATE / 10) {
                    // A tenth of the rate per tenth of a second.
                    if let Some(rest) = Duration::from_millis(100).checked_sub(window.elapsed()) {
                        std::thread::sleep(rest);
                    }
                    window = Instant::now();
                }
            }
            first = false;
            // Round again after a pause: a short registry waits for its
            // summaries to come due rather than spinning.
            for _ in 0..10 {
                if live().is_none() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Everything about `run`. Blocking: call it through the [`Gate`].
fn read_details(
    readers: &Readers,
    run: &RunRecord,
    allow: &Allowlists,
    record: Option<lab_runner::jobs::JobRecord>,
) -> std::result::Result<RunDetails, lab_fs::Error> {
    let root = RunRoot::open_ambient(&run.root)?;
    let format = format_of(run);
    // A job's run: its job's state and command, from its record, else
    // (a record this server has not read) from the Lab's provenance once
    // the job ended.
    let provenance = if record.is_none() && readers.job_source(run).is_some() {
        read_provenance(&root)
    } else {
        None
    };
    let job = record.as_ref().map(|r| r.state).or_else(|| {
        provenance
            .as_ref()
            .and_then(|p| JobState::of_recorded_exit(&p.exit))
    });
    // An ended job's files are looked at once more, then kept.
    if job.is_some_and(|s| !matches!(s, JobState::Running | JobState::Queued)) {
        readers.settle(&run.id);
    }
    let command = match (&record, &provenance) {
        (Some(r), _) => Some(
            std::iter::once(r.program.clone())
                .chain(r.args.iter().cloned())
                .collect::<Vec<_>>(),
        ),
        (None, Some(p)) => Some(p.argv.clone()),
        _ => None,
    };
    let reader = readers.reader(run, &root, REFRESH_EVERY);
    let (mut info, shown) = {
        let reader = lock(&reader);
        (reader.info(), reader.format())
    };
    // A job's run is titled by its command (the program by its file name:
    // `python3`, however it was found or asked for) unless what it wrote
    // names it.
    if info.name.is_none()
        && let Some(mut words) = command.filter(|w| !w.is_empty())
    {
        if let Some(name) = std::path::Path::new(&words[0])
            .file_name()
            .and_then(|n| n.to_str())
        {
            words[0] = name.to_owned();
        }
        info.name = Some(shell_words(&words));
    }
    // A job's run whose state is not known (its record unread, no
    // provenance yet): its status is not what the job wrote either.
    if job.is_none() && (record.is_some() || readers.job_source(run).is_some()) {
        info.tags.retain(|t| !t.starts_with("status_raw="));
        info.status = Some(lab_formats::RunStatus::Unknown.as_str().to_owned());
    }
    if let Some(state) = job {
        // A job's run: its status is its job's (SPEC §4), whatever the
        // job wrote; the job state is the raw value kept beside it.
        info.tags.retain(|t| !t.starts_with("status_raw="));
        info.tags.push(format!("status_raw={state}"));
        info.status = Some(job_run_status(state).to_owned());
    }
    // A job's run serves the Lab's own files of it (logs, provenance) from
    // its directory; what the job wrote is read, not served, here.
    let artifacts = match artifact_root(run, root, &info) {
        Some(root) => root.list_artifacts(allow.of(format))?,
        None => Vec::new(),
    };
    let is_job = record.is_some() || readers.job_source(run).is_some();
    let mut details = details(run, shown, info, &artifacts);
    details.summary.parent = readers.parent_of(run);
    // A job's id is its run's.
    details.summary.job = is_job.then(|| run.id.to_string());
    Ok(details)
}

/// A job's run's `provenance.json` (the Lab's own file, where the job
/// cannot write), at most 4 MiB, as this Lab writes it; `None` while it
/// has none (or one of another version).
fn read_provenance(root: &RunRoot) -> Option<lab_runner::record::Provenance> {
    use std::io::Read;
    let name = lab_fs::ArtifactName::parse("provenance.json").ok()?;
    let artifact = root.open_artifact(&name).ok()?;
    let mut text = Vec::new();
    artifact.file.take(4 << 20).read_to_end(&mut text).ok()?;
    lab_runner::record::Provenance::parse(&text)
}

/// `words` as a POSIX shell would read them back: a word of letters,
/// digits and `_@%+=:,./-` as it is, any other in single quotes (`'\''`
/// for a quote inside), as the UI's `quoteArgv` writes them. Long titles
/// are cut at 200 characters.
fn shell_words(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect();
    let line = quoted.join(" ");
    if line.chars().count() > 200 {
        line.chars().take(199).chain(std::iter::once('…')).collect()
    } else {
        line
    }
}

/// The status of a job's run (SPEC §4): the job state's word in the one
/// run-status vocabulary (`queued`, `running` → running; `failed`,
/// `refused` → failed; `killed`, `timeout`, `cancelled`, `oom` → killed;
/// `node_fail` → crashed; `interrupted` → unknown).
fn job_run_status(state: JobState) -> &'static str {
    lab_formats::RunStatus::from_raw(state.as_str()).as_str()
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
fn unavailable(run: &RunRecord, reason: String) -> RunSummary {
    RunSummary {
        id: run.id.clone(),
        name: run.dir_name().to_owned(),
        path: run.root.display().to_string(),
        imported_at: run.imported_at,
        format: format_of(run).as_str(),
        available: false,
        unavailable_reason: Some(reason),
        title: run.dir_name().to_owned(),
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
        params: Box::default(),
        last: Box::default(),
        searched: searched(&run.id, run.dir_name(), run.dir_name(), &[]),
    }
}

fn details(
    run: &RunRecord,
    format: Format,
    info: lab_formats::RunInfo,
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
    let mut media = info.media.clone();
    for m in media.iter_mut().filter(|m| m.embedded) {
        m.url = Some(crate::signed::image_path(run.id.as_str(), &m.artifact));
    }
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
    let title = info
        .name
        .clone()
        .unwrap_or_else(|| run.dir_name().to_owned());
    let summary = RunSummary {
        searched: searched(&run.id, run.dir_name(), &title, &info.tags),
        id: run.id.clone(),
        name: run.dir_name().to_owned(),
        path: run.root.display().to_string(),
        imported_at: run.imported_at,
        format: format.as_str(),
        available: info.unavailable.is_none(),
        unavailable_reason: info.unavailable.clone(),
        title,
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
    };
    RunDetails {
        summary,
        description: info.description,
        params: info.params,
        metrics: info.metrics,
        media,
        texts: info.texts,
        errors: info.errors,
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

/// Adds the URLs a page's elements load to a run's JSON (a summary or the
/// details), written by `urls`: `video_url` and `thumbnail_url` beside
/// `video` and `thumbnail`, `url` on each artifact, and on each media item
/// (an artifact's, or a TensorBoard image's own).
pub(crate) fn add_urls(value: &mut Value, run: &str, urls: &Urls) {
    let Value::Object(object) = value else {
        return;
    };
    for (field, url_field) in [("video", "video_url"), ("thumbnail", "thumbnail_url")] {
        if let Some(name) = object.get(field).and_then(Value::as_str) {
            let url = urls.url(&crate::signed::artifact_path(run, name));
            object.insert(url_field.to_owned(), Value::String(url));
        }
    }
    if let Some(Value::Array(artifacts)) = object.get_mut("artifacts") {
        for artifact in artifacts {
            if let Some(name) = artifact.get("name").and_then(Value::as_str) {
                let url = urls.url(&crate::signed::artifact_path(run, name));
                artifact["url"] = Value::String(url);
            }
        }
    }
    if let Some(Value::Array(media)) = object.get_mut("media") {
        for item in media {
            let path = match (
                item.get("url").and_then(Value::as_str),
                item.get("name").and_then(Value::as_str),
            ) {
                (Some(own), _) => own.to_owned(),
                (None, Some(name)) => crate::signed::artifact_path(run, name),
                (None, None) => continue,
            };
            item["url"] = Value::String(urls.url(&path));
        }
    }
}

/// The basic fields of a run (what an import or forget answers with).
pub(crate) fn run_json(run: &RunRecord) -> Value {
    json!({
        "id": run.id,
        "name": run.dir_name(),
        "path": run.root.display().to_string(),
        "imported_at": run.imported_at,
        "format": format_of(run).as_str(),
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Sort {
    Id,
    Name,
    Created,
    Imported,
    Format,
    Status,
    Param(String),
    Metric(String),
}

/// A value to sort by: missing ones last, numbers before text.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum Key<'a> {
    Number(f64),
    Text(std::borrow::Cow<'a, str>),
    Missing,
}

/// `t` lower-cased for sorting, borrowed when it is lower-case ASCII
/// already (no allocation per row for the usual names and dates).
fn lower(t: &str) -> Key<'_> {
    if t.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Key::Text(std::borrow::Cow::Borrowed(t))
    } else {
        Key::Text(std::borrow::Cow::Owned(t.to_lowercase()))
    }
}

fn key_of(value: Option<&Value>) -> Key<'_> {
    match value {
        Some(Value::Number(n)) => n.as_f64().map_or(Key::Missing, Key::Number),
        Some(Value::Bool(b)) => Key::Number(f64::from(u8::from(*b))),
        Some(Value::String(s)) => match s.parse::<f64>() {
            Ok(n) if n.is_finite() => Key::Number(n),
            _ => lower(s),
        },
        _ => Key::Missing,
    }
}

impl Sort {
    fn key<'a>(&self, s: &'a RunSummary) -> Key<'a> {
        let text = lower;
        match self {
            Sort::Id => text(s.id.as_str()),
            Sort::Name => text(&s.title),
            Sort::Created => text(&s.created),
            Sort::Imported => Key::Number(s.imported_at as f64),
            Sort::Format => text(s.format),
            Sort::Status => s.status.as_deref().map_or(Key::Missing, text),
            Sort::Param(k) => key_of(s.param(k)),
            Sort::Metric(k) => s.last(k).map_or(Key::Missing, Key::Number),
        }
    }
}

/// A requested extra field: `params.KEY` or `metrics.NAME`.
enum Field {
    Param(String),
    Metric(String),
}

pub(crate) fn bad(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, Code::BadQuery, message)
}

/// `GET /api/runs?limit=&cursor=&q=&tag=&has_video=&format=&sort=&order=&fields=`.
pub(crate) async fn list(
    state: &Arc<State>,
    query: Option<&str>,
    urls: &Urls,
) -> Result<Response<Body>> {
    let pairs = query_pairs(query.unwrap_or("")).ok_or_else(|| bad("malformed query string"))?;
    let mut limit = DEFAULT_PAGE;
    let mut offset = 0usize;
    let mut text: Option<String> = None;
    let mut tag: Option<String> = None;
    let mut has_video: Option<bool> = None;
    let mut format: Option<Format> = None;
    let mut sort = Sort::Id;
    let mut descending = false;
    let mut fields: Vec<Field> = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad("limit must be a number from 1 to 500"))?;
            }
            "cursor" if !value.is_empty() => {
                offset = value
                    .parse::<usize>()
                    .map_err(|_| bad("cursor must be a next_cursor from a previous page"))?;
            }
            "q" if !value.is_empty() => text = Some(value.to_lowercase()),
            "tag" if !value.is_empty() => tag = Some(value),
            "format" if !value.is_empty() => {
                format = Some(Format::parse(&value).ok_or_else(|| {
                    bad("format must be lab, tensorboard, mlflow, wandb, lightning or hydra")
                })?);
            }
            "has_video" => {
                has_video = Some(match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad("has_video must be true or false")),
                });
            }
            "sort" => {
                sort = match value.as_str() {
                    "id" => Sort::Id,
                    "name" => Sort::Name,
                    "created" => Sort::Created,
                    "imported" => Sort::Imported,
                    "format" => Sort::Format,
                    "status" => Sort::Status,
                    other => match (
                        other.strip_prefix("params."),
                        other.strip_prefix("metrics."),
                    ) {
                        (Some(k), _) if !k.is_empty() => Sort::Param(k.to_owned()),
                        (_, Some(k)) if !k.is_empty() => Sort::Metric(k.to_owned()),
                        _ => {
                            return Err(bad(
                                "sort must be id, name, created, imported, format, status, params.KEY or metrics.NAME",
                            ));
                        }
                    },
                };
            }
            "order" => {
                descending = match value.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(bad("order must be asc or desc")),
                };
            }
            "fields" => {
                for field in value.split(',').filter(|f| !f.is_empty()) {
                    let parsed = match (
                        field.strip_prefix("params."),
                        field.strip_prefix("metrics."),
                    ) {
                        (Some(k), _) if !k.is_empty() => Field::Param(k.to_owned()),
                        (_, Some(k)) if !k.is_empty() => Field::Metric(k.to_owned()),
                        _ => {
                            return Err(bad(
                                "fields are params.KEY or metrics.NAME, comma-separated",
                            ));
                        }
                    };
                    fields.push(parsed);
                }
                if fields.len() > MAX_FIELDS {
                    return Err(bad("at most 32 fields"));
                }
            }
            _ => {}
        }
    }
    let shared = Arc::clone(state);
    let (rows, total) = blocking(move || {
        let state = shared;
        let runs = state.registry.runs()?;
        let filtered = text.is_some() || tag.is_some() || has_video.is_some() || format.is_some();
        // Without a filter or a sort that needs the summaries, only the
        // page is summarised.
        if !filtered && sort == Sort::Id {
            let ordered: Box<dyn Iterator<Item = &RunRecord>> = if descending {
                Box::new(runs.iter().rev())
            } else {
                Box::new(runs.iter())
            };
            let page = state
                .summaries
                .listed(ordered.skip(offset).take(limit), &state.allowlists);
            return Ok((page, runs.len()));
        }
        let finder = memchr::memmem::Finder::new(text.as_deref().unwrap_or("").as_bytes());
        let rows: Vec<Arc<RunSummary>> = state
            .summaries
            .listed(runs.iter(), &state.allowlists)
            .into_iter()
            .filter(|s| {
                text.as_deref().is_none_or(|q| s.matches_with(q, &finder))
                    && tag.as_deref().is_none_or(|t| s.tags.iter().any(|x| x == t))
                    && has_video.is_none_or(|v| s.has_video == v)
                    && format.is_none_or(|f| s.format == f.as_str())
            })
            .collect();
        let total = rows.len();
        let wanted = offset.saturating_add(limit).min(total);
        let page: Vec<Arc<RunSummary>> = if sort == Sort::Id {
            // The registry is sorted by id already.
            let ordered: Box<dyn Iterator<Item = Arc<RunSummary>>> = if descending {
                Box::new(rows.into_iter().rev())
            } else {
                Box::new(rows.into_iter())
            };
            ordered.skip(offset).take(limit).collect()
        } else {
            // Each key computed once; only the rows up to the page's end
            // are put in order.
            let mut keyed: Vec<(Key, &Arc<RunSummary>)> =
                rows.iter().map(|s| (sort.key(s), s)).collect();
            let order = |a: &(Key, &Arc<RunSummary>), b: &(Key, &Arc<RunSummary>)| {
                // Missing values last in either order; ties by id.
                let by_key = match (&a.0, &b.0) {
                    (Key::Missing, Key::Missing) => std::cmp::Ordering::Equal,
                    (Key::Missing, _) => return std::cmp::Ordering::Greater,
                    (_, Key::Missing) => return std::cmp::Ordering::Less,
                    (ka, kb) => ka.partial_cmp(kb).unwrap_or(std::cmp::Ordering::Equal),
                };
                let by_key = if descending { by_key.reverse() } else { by_key };
                by_key.then_with(|| a.1.id.cmp(&b.1.id))
            };
            if wanted > 0 && wanted < keyed.len() {
                keyed.select_nth_unstable_by(wanted - 1, order);
                keyed.truncate(wanted);
            }
            keyed.sort_unstable_by(order);
            keyed
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|(_, s)| Arc::clone(s))
                .collect()
        };
        Ok((page, total))
    })
    .await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(&**s).unwrap_or(Value::Null);
            add_urls(&mut v, s.id.as_str(), urls);
            if !fields.is_empty() {
                let mut params = serde_json::Map::new();
                let mut metrics = serde_json::Map::new();
                for f in &fields {
                    match f {
                        Field::Param(k) => {
                            params.insert(k.clone(), s.param(k).cloned().unwrap_or(Value::Null));
                        }
                        Field::Metric(k) => {
                            metrics.insert(k.clone(), json!(s.last(k)));
                        }
                    }
                }
                v["params"] = Value::Object(params);
                v["metrics"] = Value::Object(metrics);
            }
            v
        })
        .collect();
    let end = offset + items.len();
    let next = (end < total).then(|| end.to_string());
    Ok(json_response(
        StatusCode::OK,
        &json!({ "runs": items, "next_cursor": next, "total": total }),
    ))
}

/// Most names `GET /api/columns` gives of each kind.
const MAX_COLUMNS: usize = 1_000;
/// How long a count of the columns is answered again.
const COLUMNS_TTL: Duration = Duration::from_secs(10);

/// `GET /api/columns`: the param keys and metric names the runs have
/// (from the summaries), each with how many runs have it, most common
/// first, at most [`MAX_COLUMNS`] of each: what a runs table can show.
/// Counted at most once per [`COLUMNS_TTL`] (the count walks every
/// summary), and once for requests that arrive together.
pub(crate) async fn columns(state: &Arc<State>) -> Result<Response<Body>> {
    let shared = Arc::clone(state);
    let body = blocking(move || {
        let state = shared;
        let mut cached = lock(&state.summaries.columns);
        if let Some((at, body)) = cached.as_ref()
            && at.elapsed() < COLUMNS_TTL
        {
            return Ok(Arc::clone(body));
        }
        let runs = state.registry.runs()?;
        let mut params: HashMap<Box<str>, usize> = HashMap::new();
        let mut metrics: HashMap<Box<str>, usize> = HashMap::new();
        for s in state.summaries.listed(runs.iter(), &state.allowlists) {
            for (k, _) in s.params.iter() {
                *params.entry(k.clone()).or_default() += 1;
            }
            for (k, _) in s.last.iter() {
                *metrics.entry(k.clone()).or_default() += 1;
            }
        }
        let ranked = |counts: HashMap<Box<str>, usize>, name: &str| -> Vec<Value> {
            let mut all: Vec<(Box<str>, usize)> = counts.into_iter().collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all.truncate(MAX_COLUMNS);
            all.into_iter()
                .map(|(k, n)| json!({ name: &*k, "runs": n }))
                .collect()
        };
        let body = Arc::new(
            json!({ "params": ranked(params, "key"), "metrics": ranked(metrics, "name") }),
        );
        *cached = Some((Instant::now(), Arc::clone(&body)));
        Ok(body)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /api/runs/{id}`: the summary, params, metric names, media,
/// errors and artifacts.
pub(crate) async fn show(state: &Arc<State>, id: RunId, urls: &Urls) -> Result<Response<Body>> {
    let registry = Arc::clone(&state.registry);
    let run = blocking(move || Ok(registry.get(&id)?)).await?;
    let read = state.summaries.details_of(&run, &state.allowlists);
    let details = gated(state, &run.id, move || {
        read()
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, Code::RunUnavailable, cannot_open(&e)))
    })
    .await?;
    let mut body = serde_json::to_value(&details).unwrap_or(Value::Null);
    add_urls(&mut body, run.id.as_str(), urls);
    // The runs this run's job wrote beneath it, each a run of its own.
    let shared = Arc::clone(state);
    let parent = run.id.clone();
    let children = blocking(move || {
        let state = shared;
        let runs = state.registry.runs()?;
        let summaries = lock(&state.summaries.summaries);
        Ok(runs
            .iter()
            .filter(|r| state.summaries.readers.parent_of(r).as_ref() == Some(&parent))
            .take(1_000)
            .map(|r| {
                let title = summaries
                    .get(&r.id)
                    .map_or_else(|| r.dir_name().to_owned(), |(_, s)| s.title.clone());
                json!({"id": r.id, "title": title, "format": format_of(r).as_str()})
            })
            .collect::<Vec<_>>())
    })
    .await?;
    body["children"] = Value::Array(children);
    Ok(json_response(StatusCode::OK, &body))
}

/// The answer to a request for a run whose read is stuck.
pub(crate) fn stuck_error(stuck: crate::gate::Stuck) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::RunUnavailable,
        format!("the run cannot be read now: {}", stuck.reason()),
    )
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    path: String,
    #[serde(default)]
    id: Option<String>,
}

/// `POST /api/runs`: import a directory — the run it is, or each run of a
/// store beneath it. Answers with the first run's fields and `runs`, all.
pub(crate) async fn import(
    state: &Arc<State>,
    req: http::Request<Incoming>,
    checked: Checked,
) -> Result<Response<Body>> {
    let body: ImportBody = read_json(state, req, &checked).await?;
    if body.path.contains('\0') || body.path.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidPath,
            "the path contains a NUL or control character",
        ));
    }
    let registry = Arc::clone(&state.registry);
    let limits = state.formats;
    let runs = blocking(move || {
        let path = std::path::PathBuf::from(&body.path);
        crate::discovery::import_dir(&registry, &path, body.id.as_deref(), &limits).map_err(|e| {
            match e {
                // Inside a root but unreadable: the client's own file
                // permissions, not a server fault.
                ImportError::Registry(lab_registry::Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        Code::PermissionDenied,
                        "the Lab may not read that directory",
                    )
                }
                ImportError::Registry(other) => ApiError::from(other),
                e @ ImportError::IdForMany(_) => {
                    ApiError::new(StatusCode::BAD_REQUEST, Code::IdForManyRuns, e.to_string())
                }
            }
        })
    })
    .await?;
    for run in &runs {
        eprintln!(
            "lab: imported run {} from {}",
            run.id,
            crate::log_safe(run.root.display())
        );
    }
    let mut body = runs.first().map_or_else(|| json!({}), run_json);
    body["runs"] = Value::Array(runs.iter().map(run_json).collect());
    Ok(json_response(StatusCode::CREATED, &body))
}

/// `DELETE /api/runs/{id}`: forget a run (its files are untouched; the
/// walk does not bring it back).
pub(crate) async fn forget(state: &Arc<State>, id: &str) -> Result<Response<Body>> {
    let id = parse_id(id)?;
    let registry = Arc::clone(&state.registry);
    let run = blocking(move || Ok(registry.forget(&id)?)).await?;
    state.summaries.readers.forget(&run.id);
    lock(&state.summaries.summaries).remove(&run.id);
    eprintln!("lab: forgot run {}", run.id);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "forgotten": run_json(&run) }),
    ))
}

#[cfg(test)]
mod job_status_tests {
    use lab_runner::JobState;

    #[test]
    fn a_command_is_quoted_as_a_shell_reads_it_back() {
        let words =
            |w: &[&str]| super::shell_words(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            words(&["python3", "train.py", "--lr", "0.1"]),
            "python3 train.py --lr 0.1"
        );
        assert_eq!(words(&["echo", "$HOME; id"]), "echo '$HOME; id'");
        assert_eq!(words(&["a b", "", "it's"]), "'a b' '' 'it'\\''s'");
        assert_eq!(words(&["x".repeat(300).as_str()]).chars().count(), 200);
    }

    #[test]
    fn a_jobs_run_status_follows_its_state() {
        for (state, status) in [
            (JobState::Queued, "running"),
            (JobState::Running, "running"),
            (JobState::Finished, "finished"),
            (JobState::Failed, "failed"),
            (JobState::Refused, "failed"),
            (JobState::Killed, "killed"),
            (JobState::Timeout, "killed"),
            (JobState::Cancelled, "killed"),
            (JobState::Oom, "killed"),
            (JobState::NodeFail, "crashed"),
            (JobState::Interrupted, "unknown"),
        ] {
            assert_eq!(super::job_run_status(state), status, "{state}");
        }
    }
}
