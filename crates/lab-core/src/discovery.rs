//! Finding runs: the walk of every allowed root (at start and while
//! serving), and an explicit import of one directory, which yields the
//! run it is or each run found beneath it (a store's runs).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab_formats::{Format, Limits};
use lab_registry::{Candidate, Registry, ScanReport};
use tokio::sync::watch;

use crate::{Lab, Run, cap_warnings, lock};

/// What a walk of the allowed roots did.
#[derive(Debug, Default)]
pub struct Scanned {
    /// The registry's side: runs registered, skipped.
    pub report: ScanReport,
    /// What the walk cut short or could not read.
    pub warnings: Vec<String>,
    /// Run-like directories no reader reads.
    pub unrecognised: Unrecognised,
}

/// Run-like directories the walk found but no reader reads (an Aim
/// repository, ClearML offline sessions, a video without run files):
/// counted, not read (`/api/status` `unrecognised`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Unrecognised {
    /// How many, all roots together.
    pub count: usize,
    /// The first few, in walk order.
    pub examples: Vec<UnrecognisedDir>,
}

/// One run-like directory no reader reads.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnrecognisedDir {
    /// The directory (under an allowed root).
    pub path: String,
    /// What it looks like (`an Aim repository (.aim/)`).
    pub what: &'static str,
}

/// Walks every allowed root (bounded, no links followed) and registers the
/// runs not registered yet; forgotten runs stay forgotten. A run registered
/// before its directory was known to be a TensorBoard hparams trial (now
/// part of the run above it) is forgotten.
pub fn scan(registry: &Registry, limits: &Limits) -> Result<Scanned, lab_registry::Error> {
    let mut candidates = Vec::new();
    let mut warnings = Vec::new();
    let mut folded = std::collections::HashSet::new();
    let mut unrecognised = Unrecognised::default();
    for root in registry.allowed_roots() {
        let found = lab_formats::discover(root, limits);
        warnings.extend(found.warnings);
        unrecognised.count += found.unrecognised_count;
        for u in found.unrecognised {
            if unrecognised.examples.len() < lab_formats::MAX_UNRECOGNISED_EXAMPLES {
                unrecognised.examples.push(UnrecognisedDir {
                    path: u.dir.display().to_string(),
                    what: u.what,
                });
            }
        }
        folded.extend(found.folded);
        candidates.extend(found.runs.into_iter().map(candidate));
    }
    if !folded.is_empty() {
        let runs = registry.runs()?;
        for run in runs.iter().filter(|r| {
            r.entry.is_none()
                && r.format.as_deref() == Some(Format::Tensorboard.as_str())
                && folded.contains(&r.root)
        }) {
            registry.forget(&run.id)?;
            tracing::info!(
                "{} is an hparams trial of the run above it now: its params are that run's",
                run.id
            );
        }
    }
    Ok(Scanned {
        report: registry.register(&candidates, false)?,
        warnings,
        unrecognised,
    })
}

/// Why an explicit import failed.
#[derive(Debug)]
pub enum ImportError {
    /// The registry refused it.
    Registry(lab_registry::Error),
    /// An id was given for a directory holding several runs.
    IdForMany(usize),
    /// No reader recognises the directory or anything beneath it.
    NoRunFound {
        /// What it looks like, when it is run-like (an Aim repository).
        looks_like: Option<&'static str>,
    },
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
            ImportError::NoRunFound { looks_like } => {
                f.write_str("no run found there")?;
                if let Some(what) = looks_like {
                    write!(f, " (it looks like {what}, which the Lab does not read)")?;
                }
                f.write_str("; looked for, in it and beneath it: ")?;
                for (i, format) in Format::ALL.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{} ({})", format.label(), format.looked_for())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// Imports `dir`: the run it is (in the most specific format that
/// recognises it), else each run found beneath it (say, every run of an
/// `mlruns/` store); a directory with neither is refused
/// ([`ImportError::NoRunFound`], saying what was looked for). Returns the
/// runs registered, new and already known.
pub fn import_dir(
    registry: &Registry,
    dir: &Path,
    id: Option<&str>,
    limits: &Limits,
) -> Result<Vec<Run>, ImportError> {
    // Checked against the allowed roots before anything is listed.
    let canonical = registry.resolve(dir)?;
    if let Some(format) = lab_formats::detect(&canonical) {
        return Ok(vec![Run::new(registry.import_as(
            &canonical,
            id,
            Some(format.as_str()),
        )?)]);
    }
    let found = lab_formats::discover(&canonical, limits);
    if found.runs.is_empty() {
        // SPEC §6: a directory no reader recognises is never a run.
        let looks_like = lab_formats::unrecognised_at(&canonical, 1)
            .or_else(|| found.unrecognised.first().map(|u| u.what));
        return Err(ImportError::NoRunFound { looks_like });
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
    Ok(runs.into_iter().map(Run::new).collect())
}

pub(crate) fn candidate(f: lab_formats::Found) -> Candidate {
    Candidate {
        dir: f.dir,
        format: f.format.as_str().to_owned(),
        entry: f.entry,
        name: f.name,
    }
}

/// `text` for a log line: control characters (a newline, an escape
/// sequence in a directory's name) written as `\u{…}`, so what a run's
/// names hold can neither forge a line nor drive the terminal.
pub fn log_safe(text: impl std::fmt::Display) -> String {
    text.to_string()
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The walks of the allowed roots while serving.
#[derive(Debug)]
pub struct Walks {
    /// `true` once the first walk returned (at once when there is none).
    first: watch::Sender<bool>,
    /// A walk is in flight, since this instant.
    walking: std::sync::Mutex<Option<Instant>>,
    /// How long the last walk took.
    last: std::sync::Mutex<Duration>,
    /// When the Lab started.
    born: Instant,
}

impl Walks {
    pub(crate) fn new(walking_at_start: bool) -> Self {
        Self {
            first: watch::channel(!walking_at_start).0,
            walking: std::sync::Mutex::new(None),
            last: std::sync::Mutex::new(Duration::ZERO),
            born: Instant::now(),
        }
    }

    /// Waits for the first walk to return, until at most `limit` after the
    /// Lab started: a list asked for right after the start shows what
    /// the walk finds; once that time has passed (a stuck first walk),
    /// nothing waits for it any more.
    pub async fn first_done(&self, limit: Duration) {
        let left = limit.saturating_sub(self.born.elapsed());
        if left.is_zero() {
            return;
        }
        let mut first = self.first.subscribe();
        let _ = tokio::time::timeout(left, first.wait_for(|done| *done)).await;
    }

    /// Whether a walk has been in flight longer than the gate's limit.
    pub fn stuck_for(&self) -> Option<Duration> {
        let walking = *lock(&self.walking);
        walking
            .map(|since| since.elapsed())
            .filter(|d| *d >= crate::gate::STUCK_AFTER)
    }
}

impl Lab {
    /// Walks the allowed roots now and then every `every`, so runs that
    /// appear later are registered without a restart (one walk at a time,
    /// on a blocking thread; forgotten runs stay forgotten), until the Lab
    /// stops. The loop never awaits a walk: one that does not return (a
    /// hung mount) is reported, and no other starts until it does.
    pub async fn keep_discovering(self: Arc<Self>, every: Duration) {
        let mut reported_stuck = false;
        while !self.stopping() {
            let started = {
                let mut walking = lock(&self.walks.walking);
                match *walking {
                    Some(_) => None,
                    None => {
                        let now = Instant::now();
                        *walking = Some(now);
                        Some(now)
                    }
                }
            };
            if let Some(started) = started {
                reported_stuck = false;
                tokio::spawn(Arc::clone(&self).walk_once(started));
            } else if let Some(stuck) = self.walks.stuck_for()
                && !reported_stuck
            {
                reported_stuck = true;
                let warning = format!(
                    "the walk of the allowed roots has not returned for {} s (a hung mount?); no new walk starts until it does",
                    stuck.as_secs()
                );
                tracing::warn!("warning: {warning}");
                lock(&self.discovery_warnings).push(warning);
            }
            // The pause between walks is `every`, or 20 times what the last
            // walk took if that is longer: walking a root of 100,000 runs
            // takes about a second, and discovery keeps to a twentieth of
            // one core however many there are.
            let last = *lock(&self.walks.last);
            tokio::time::sleep(every.max(last * 20)).await;
        }
    }

    /// One walk of the allowed roots, on a blocking thread.
    async fn walk_once(self: Arc<Self>, started: Instant) {
        let registry = Arc::clone(&self.registry);
        let first = !*self.walks.first.borrow();
        let limits = self.formats;
        // The object-storage roots, listed again when due (every `[s3]
        // relist_secs`) on a thread of their own: a slow store never holds
        // up the walk of the local roots, and one listing at a time.
        let s3 = Arc::clone(&self.s3);
        if (first || s3.due()) && s3.begin_listing() {
            let registry = Arc::clone(&self.registry);
            tokio::task::spawn_blocking(move || {
                s3.rediscover_claimed(&limits, &|id| registry.get(id).is_ok());
            });
        }
        let walked = tokio::task::spawn_blocking(move || scan(&registry, &limits)).await;
        *lock(&self.walks.last) = started.elapsed();
        match walked {
            Ok(Ok(scanned)) => {
                for run in &scanned.report.imported {
                    tracing::info!(
                        "{} {} run {} at {}",
                        if first { "imported" } else { "found" },
                        run.format.as_deref().unwrap_or("lab"),
                        run.id,
                        log_safe(run.root.display())
                    );
                }
                if first {
                    for (path, why) in &scanned.report.skipped {
                        tracing::info!("skipped {}: {}", log_safe(path.display()), log_safe(why));
                    }
                    for warning in &scanned.warnings {
                        tracing::warn!("{}", log_safe(warning));
                    }
                }
                *lock(&self.discovery_warnings) = cap_warnings(scanned.warnings);
                *lock(&self.unrecognised) = scanned.unrecognised;
            }
            Ok(Err(e)) => tracing::error!("looking for new runs failed: {e}"),
            Err(_) => tracing::error!("looking for new runs failed"),
        }
        *lock(&self.walks.walking) = None;
        self.walks.first.send_replace(true);
    }
}
#[cfg(test)]
mod log_tests {
    #[test]
    fn names_cannot_forge_log_lines() {
        assert_eq!(
            super::log_safe("/runs/evil\nname\x1b[31m"),
            "/runs/evil\\u{a}name\\u{1b}[31m"
        );
        assert_eq!(super::log_safe("/runs/plain é"), "/runs/plain é");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod walk_tests {
    use super::*;

    /// Whether `first_done(limit)` returns within `within`.
    async fn returns(walks: &Walks, limit: Duration, within: Duration) -> bool {
        tokio::time::timeout(within, walks.first_done(limit))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn nothing_waits_for_a_stuck_first_walk_once_its_time_after_the_start_has_passed() {
        // A first walk still running, the server just started: a request
        // waits for it (not past the limit).
        let walks = Walks::new(true);
        assert!(!returns(&walks, Duration::from_secs(60), Duration::from_millis(100)).await);
        assert!(returns(&walks, Duration::from_millis(50), Duration::from_secs(5)).await);
        // Started long ago and the walk is still stuck: no wait at all.
        let old = Walks {
            born: std::time::Instant::now() - Duration::from_secs(10),
            ..Walks::new(true)
        };
        assert!(returns(&old, Duration::from_secs(5), Duration::from_millis(20)).await);
        // Once the walk returned, nothing waits either.
        walks.first.send_replace(true);
        assert!(returns(&walks, Duration::from_secs(60), Duration::from_millis(20)).await);
        // No walk at all (an embedder that walks itself): never waits.
        assert!(
            returns(
                &Walks::new(false),
                Duration::from_secs(60),
                Duration::from_millis(20)
            )
            .await
        );
    }
}
