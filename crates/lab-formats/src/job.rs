//! What a job wrote (SPEC §5: "a job's output is its run's data"): which
//! run a job's `job/` directory holds — the Lab's run files at its top,
//! else the one run of another format beneath it — and the other runs
//! beneath, each a run of its own. Names are listed only, no file is
//! opened, no link followed, and the walk is bounded (a hostile job may
//! write a million files or a deep tree).

use std::path::Path;

/// Where a job's run reads what the job wrote (beneath its `job/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSource {
    /// The directory beneath the run's own: `job`, or a run inside it.
    pub sub: String,
    /// Its format.
    pub format: crate::Format,
    /// For a store's run: its id in the store.
    pub entry: Option<String>,
    /// The other runs found beneath `job/` (when the job's run is its top:
    /// the Lab's files, or several runs), each its own run whose parent is
    /// the job's run.
    pub children: Vec<crate::Found>,
}

/// The files that make a job's directory a run in the Lab's own format
/// (SPEC §5: its params and metrics are the job run's).
const LAB_FILES: &[&str] = &[
    "run.toml",
    "run.json",
    "params.json",
    "metrics.jsonl",
    "metrics.csv",
];

/// What the job wrote beneath `job` (the run's `job/`, a path only to list
/// names; no file is opened by it): its own top level when it holds the
/// Lab's run files, else the one run of another format found beneath it,
/// else its top level. A bounded walk (a hostile job may write a million
/// files or a deep tree): a few thousand directories, six deep.
pub fn detect_job_source(job: &Path) -> Option<JobSource> {
    if !std::fs::symlink_metadata(job).is_ok_and(|m| m.is_dir()) {
        return None;
    }
    Some(detect(job))
}

fn detect(job: &Path) -> JobSource {
    use crate::Format;
    let top = JobSource {
        sub: "job".to_owned(),
        format: Format::Lab,
        entry: None,
        children: Vec::new(),
    };
    let lab_files = std::fs::read_dir(job).is_ok_and(|entries| {
        entries.take(10_000).filter_map(Result::ok).any(|e| {
            e.file_type().is_ok_and(|t| t.is_file())
                && e.file_name()
                    .to_str()
                    .is_some_and(|n| LAB_FILES.contains(&n))
        })
    });
    if !lab_files && let Some(format) = crate::detect(job) {
        return JobSource { format, ..top };
    }
    // One budget for the whole walk: a wide tree costs what a narrow one
    // does (a job may write millions of names).
    let limits = crate::Limits {
        max_depth: 6,
        max_dirs: 2_000,
        max_runs: MAX_CHILDREN + 1,
        max_entries: 10_000,
        max_total_entries: MAX_ENTRIES,
        ..crate::Limits::default()
    };
    // Runs beneath `job/` (not `job/` itself, whose top is the job's run,
    // but a store at its top: each of the store's runs); only directories
    // that are where the walk found them, not through a link swapped in
    // meanwhile.
    let found: Vec<crate::Found> = crate::discover(job, &limits)
        .runs
        .into_iter()
        .filter(|f| f.dir != job || f.entry.is_some())
        .filter(|f| std::fs::canonicalize(&f.dir).is_ok_and(|real| real == f.dir))
        .collect();
    match found.as_slice() {
        // The one run the job wrote is its run (same id).
        [one] if !lab_files => {
            let rel = one.dir.strip_prefix(job).ok().and_then(|r| r.to_str());
            match rel {
                Some(rel) if !rel.is_empty() => JobSource {
                    sub: format!("job/{rel}"),
                    format: one.format,
                    entry: one.entry.clone(),
                    children: Vec::new(),
                },
                _ => top,
            }
        }
        _ => JobSource {
            children: found.into_iter().take(MAX_CHILDREN).collect(),
            ..top
        },
    }
}

/// Most names one look at what a job wrote reads, all directories
/// together.
pub const MAX_ENTRIES: usize = 100_000;

/// Most runs of a job reported beneath its run.
pub const MAX_CHILDREN: usize = 256;
