//! Finding runs: the walk of every allowed root (at start and while
//! serving), and an explicit import of one directory, which yields the
//! run it is or each run found beneath it (a store's runs).

use std::path::Path;

use lab_formats::{Format, Limits};
use lab_registry::{Candidate, Registry, RunRecord, ScanReport};

/// What a walk of the allowed roots did.
#[derive(Debug, Default)]
pub struct Scanned {
    /// The registry's side: runs registered, skipped.
    pub report: ScanReport,
    /// What the walk cut short or could not read.
    pub warnings: Vec<String>,
}

/// Walks every allowed root (bounded, no links followed) and registers the
/// runs not registered yet; forgotten runs stay forgotten.
pub fn scan(registry: &Registry, limits: &Limits) -> Result<Scanned, lab_registry::Error> {
    let mut candidates = Vec::new();
    let mut warnings = Vec::new();
    for root in registry.allowed_roots() {
        let found = lab_formats::discover(root, limits);
        warnings.extend(found.warnings);
        candidates.extend(found.runs.into_iter().map(candidate));
    }
    Ok(Scanned {
        report: registry.register(&candidates, false)?,
        warnings,
    })
}

/// Why an explicit import failed.
#[derive(Debug)]
pub enum ImportError {
    /// The registry refused it.
    Registry(lab_registry::Error),
    /// An id was given for a directory holding several runs.
    IdForMany(usize),
}

impl From<lab_registry::Error> for ImportError {
    fn from(e: lab_registry::Error) -> Self {
        ImportError::Registry(e)
    }
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Registry(e) => e.fmt(f),
            ImportError::IdForMany(n) => write!(
                f,
                "the directory holds {n} runs; an id can only be given for a single run"
            ),
        }
    }
}

impl std::error::Error for ImportError {}

/// Imports `dir`: the run it is (in the most specific format that
/// recognises it), else each run found beneath it (say, every run of an
/// `mlruns/` store), else the directory as a `lab` run. Returns the runs
/// registered, new and already known.
pub fn import_dir(
    registry: &Registry,
    dir: &Path,
    id: Option<&str>,
    limits: &Limits,
) -> Result<Vec<RunRecord>, ImportError> {
    // Checked against the allowed roots before anything is listed.
    let canonical = registry.resolve(dir)?;
    if let Some(format) = lab_formats::detect(&canonical) {
        return Ok(vec![registry.import_as(
            &canonical,
            id,
            Some(format.as_str()),
        )?]);
    }
    let found = lab_formats::discover(&canonical, limits);
    if found.runs.is_empty() {
        return Ok(vec![registry.import_as(
            &canonical,
            id,
            Some(Format::Lab.as_str()),
        )?]);
    }
    if id.is_some() {
        return Err(ImportError::IdForMany(found.runs.len()));
    }
    let candidates: Vec<Candidate> = found.runs.into_iter().map(candidate).collect();
    let report = registry.register(&candidates, true)?;
    if let Some((_, e)) = report.skipped.into_iter().next()
        && report.imported.is_empty()
        && report.existing.is_empty()
    {
        return Err(e.into());
    }
    let mut runs = report.imported;
    runs.extend(report.existing);
    Ok(runs)
}

fn candidate(f: lab_formats::Found) -> Candidate {
    Candidate {
        dir: f.dir,
        format: f.format.as_str().to_owned(),
        entry: f.entry,
        name: f.name,
    }
}

/// The format of a registered run (`lab` for records from before formats).
pub fn format_of(run: &RunRecord) -> Format {
    run.format
        .as_deref()
        .and_then(Format::parse)
        .unwrap_or(Format::Lab)
}
