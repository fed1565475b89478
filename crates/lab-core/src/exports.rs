//! Bundles: writing one of a run (the server's route and `lab export`
//! alike), one export of a run at a time, and the bundles written.

use std::sync::Arc;
use std::time::SystemTime;

use lab_fs::bundle::{BundleError, BundleInfo, BundleName, ExportsDir, default_bundle_name};
use lab_registry::RunId;

use crate::readers::artifact_root;
use crate::{Lab, Run, lock};

/// Why an export failed.
#[derive(Debug)]
pub enum ExportError {
    /// This Lab has no exports directory.
    NotConfigured,
    /// An export of this run is being written.
    InProgress,
    /// The run is not known.
    Registry(lab_registry::Error),
    /// The bundle could not be written (or its name is taken or invalid).
    Bundle(BundleError),
}

impl From<BundleError> for ExportError {
    fn from(e: BundleError) -> Self {
        ExportError::Bundle(e)
    }
}

impl From<lab_registry::Error> for ExportError {
    fn from(e: lab_registry::Error) -> Self {
        ExportError::Registry(e)
    }
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::NotConfigured => f.write_str("this Lab has no exports directory"),
            ExportError::InProgress => {
                f.write_str("an export of this run is being written; try again when it is done")
            }
            ExportError::Registry(e) => e.fmt(f),
            ExportError::Bundle(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ExportError {}

impl Lab {
    /// The exports directory, when this Lab has one.
    pub fn exports(&self) -> Result<&ExportsDir, ExportError> {
        self.exports.as_ref().ok_or(ExportError::NotConfigured)
    }

    /// Bundles run `id` as `name` (default: the run's id and the time).
    /// Not through the run gate: a bundle of a 3 GiB video legitimately
    /// takes longer than the gate's 5 s, and its reads are lab-fs's
    /// non-blocking opens of regular files and a private SQLite snapshot.
    /// One export of a run at a time: each holds a blocking thread for as
    /// long as its bundle takes. Blocking.
    pub fn export(
        self: &Arc<Self>,
        id: &RunId,
        name: Option<&str>,
    ) -> Result<BundleInfo, ExportError> {
        let exports = self.exports()?;
        let name = name.map(BundleName::parse).transpose()?;
        // By its id now, whichever id (or alias) asked: one export of a
        // run at a time, and its bundle named by its id.
        let run = match self.registry.get(id) {
            Ok(record) => Run::new(record),
            Err(e) => self.s3.get(id).ok_or(e)?,
        };
        let name = match name {
            Some(name) => name,
            None => BundleName::parse(&default_bundle_name(run.id.as_str(), SystemTime::now()))?,
        };
        if !lock(&self.exporting).insert(run.id.clone()) {
            return Err(ExportError::InProgress);
        }
        let _done = Exporting(self, run.id.clone());
        // The group the list shows it in travels with it.
        // The group the list shows it in, and its created time, travel
        // with it.
        let summary = self.listed(std::iter::once(&run)).pop();
        let shown = lab_formats::Shown {
            experiment: summary
                .as_ref()
                .and_then(|s| s.experiment.as_ref())
                .map(|e| e.name.as_str()),
            created: summary.as_ref().map(|s| s.created.as_str()),
            name: summary.as_ref().map(|s| s.name.as_str()),
        };
        Ok(self.export_run(exports, &name, &run, shown)?)
    }
}

impl Lab {
    /// Bundles `run` as `name` into `exports`: its allowlisted artifacts (a
    /// store's run: from its own artifact directory) and, for a run of another
    /// format, its params and series in the Lab's own form (`run.json`,
    /// `metrics.jsonl`), so the bundle reimports whole. Blocking. The server's
    /// route and `lab export` both call it through [`Lab::export`]; what
    /// the list shows of the run (`shown`) goes into its `run.json`.
    fn export_run(
        &self,
        exports: &ExportsDir,
        name: &BundleName,
        run: &Run,
        shown: lab_formats::Shown<'_>,
    ) -> Result<BundleInfo, BundleError> {
        let format = run.format;
        // What the bundle holds is what its `lab` run will serve once
        // reimported: the source format's patterns the Lab format shares
        // (a Keras run's `*.csv` logs stay behind; their series travel in
        // `metrics.jsonl`).
        let lab = lab_formats::Format::Lab.artifact_patterns();
        let shared: Vec<&str> = format
            .artifact_patterns()
            .iter()
            .copied()
            .filter(|p| lab.contains(p))
            .collect();
        let allow = self.allowlists.base().plus(&shared)?;
        let root = self.readers.open_source(run)?;
        let mut reader =
            lab_formats::RunReader::new_entry_with(format, run.entry.as_deref(), &self.formats);
        root.with_storage(|storage| reader.refresh(storage));
        // A store's run bundles its own artifact directory; when its store
        // names none inside the store (or one that leaves it), the bundle holds
        // its params and series alone.
        let nothing = lab_fs::Allowlist::only::<&str>(&[])?;
        let (source, allow) = match &run.entry {
            None => (root, &allow),
            Some(_) => match artifact_root(run, root, &reader.info()) {
                Some(dir) => (dir, &allow),
                None => (self.readers.open_source(run)?, &nothing),
            },
        };
        let present = source.list_artifacts(allow)?;
        // What the run serves as its own format (media the bundle carries
        // under names the Lab serves, when the Lab does not serve theirs).
        let served = if std::ptr::eq(allow, &nothing) {
            Vec::new()
        } else {
            source.list_artifacts(self.allowlists.of(format))?
        };
        let extra: Vec<(lab_fs::ArtifactName, Vec<u8>)> =
            // A TensorBoard run's embedded images are read again from
            // its event files, through the storage seam.
            source.with_storage(|storage| lab_formats::lab_form(
                &reader,
                storage,
                shown,
                |n| present.iter().any(|a| a.name.as_str() == n),
                |n| served.iter().any(|a| a.name.as_str() == n),
            ))
            .into_iter()
            .filter_map(|(n, bytes)| Some((lab_fs::ArtifactName::parse(&n).ok()?, bytes)))
            .collect();
        exports.write_bundle(
            name,
            &source,
            allow,
            run.id.as_str(),
            &self.export_filter,
            &extra,
        )
    }
}

/// Marks the export of a run done when dropped (written, failed or
/// panicked).
struct Exporting<'a>(&'a Lab, RunId);

impl Drop for Exporting<'_> {
    fn drop(&mut self) {
        lock(&self.0.exporting).remove(&self.1);
    }
}

/// Why a bundle could not be imported.
#[derive(Debug)]
pub enum BundleImportError {
    /// `into` could not be resolved, or lies outside the allowed roots.
    Into(lab_registry::Error),
    /// `into` (resolved: this path) is not a directory.
    NotADirectory(std::path::PathBuf),
    /// The bundle is not a valid one (or could not be unpacked).
    Bundle(BundleError),
    /// The registry refused the unpacked run.
    Registry(lab_registry::Error),
}

impl std::fmt::Display for BundleImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleImportError::Into(e) | BundleImportError::Registry(e) => e.fmt(f),
            BundleImportError::NotADirectory(path) => {
                write!(f, "{} is not a directory", path.display())
            }
            BundleImportError::Bundle(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for BundleImportError {}

impl Lab {
    /// Unpacks `bundle` (its manifest and every file's hash checked, only
    /// what a `lab` run serves) into a new directory in `into`, which must
    /// lie under an allowed root, and registers it — under the id it was
    /// exported with when that is free. Returns the run and how many files
    /// were verified. Blocking.
    pub fn import_bundle(
        &self,
        bundle: impl std::io::Read,
        into: &std::path::Path,
    ) -> Result<(Run, usize), BundleImportError> {
        let into = std::fs::canonicalize(into).map_err(|source| {
            BundleImportError::Into(lab_registry::Error::Io {
                context: "the directory to import into",
                source,
            })
        })?;
        if !into.is_dir() {
            return Err(BundleImportError::NotADirectory(into));
        }
        if !self.registry.is_under_allowed_root(&into) {
            return Err(BundleImportError::Into(
                lab_registry::Error::OutsideAllowedRoots,
            ));
        }
        // The bundle becomes a `lab` run: what that format serves.
        let allowlist = self.allowlists.of(lab_formats::Format::Lab);
        let unpacked = lab_fs::bundle::unpack_bundle_ambient(bundle, &into, None, allowlist)
            .map_err(BundleImportError::Bundle)?;
        let wanted = unpacked.manifest.source_run.as_str();
        let run = match self.registry.import(&unpacked.dir, Some(wanted)) {
            Err(lab_registry::Error::IdTaken(_)) => self.registry.import(&unpacked.dir, None),
            other => other,
        }
        .map_err(BundleImportError::Registry)?;
        Ok((Run::new(run), unpacked.manifest.files.len()))
    }
}
