//! Which artifacts a run serves: the per-format allowlists (built once),
//! the fixed content-type table, and opening one — at once from the
//! kernel's lookup cache where no disk has to be waited on, else on a
//! blocking thread.

use std::collections::HashMap;

use lab_formats::Format;
use lab_fs::{Allowlist, ArtifactName};
use lab_registry::RunId;

use crate::readers::Source;
use crate::{Error, Lab};

/// The fixed, safe content-type table (SPEC §5). Anything else is an opaque
/// download; nothing is ever served as HTML, SVG or script.
pub fn content_type(name: &ArtifactName) -> &'static str {
    let ext = name
        .file()
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4") => "video/mp4",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webm") => "video/webm",
        Some("json") => "application/json",
        Some("log" | "csv" | "jsonl" | "toml" | "md" | "txt" | "yaml") => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

/// Per format, the artifact allowlist: the configured one plus the
/// format's fixed patterns. The one place these lists are built.
#[derive(Debug)]
pub struct Allowlists {
    base: Allowlist,
    by_format: HashMap<Format, Allowlist>,
}

impl Allowlists {
    /// The lists of every format over the configured `base`.
    pub fn new(base: Allowlist) -> Self {
        let by_format = Format::ALL
            .into_iter()
            .map(|f| {
                // The formats' patterns are constant; one that failed to
                // parse would leave that format with the base list.
                let list = base
                    .plus(f.artifact_patterns())
                    .unwrap_or_else(|_| base.clone());
                (f, list)
            })
            .collect();
        Self { base, by_format }
    }

    /// The configured list, without any format's patterns.
    pub fn base(&self) -> &Allowlist {
        &self.base
    }

    /// The list for a run of `format`.
    pub fn of(&self, format: Format) -> &Allowlist {
        self.by_format.get(&format).unwrap_or(&self.base)
    }

    /// Whether any format's list could serve `name` (checked before the
    /// run is looked up, so a name no run may have is refused alike).
    pub fn any(&self, name: &str) -> Result<ArtifactName, lab_fs::Error> {
        let mut last = lab_fs::Error::NotAllowed;
        for list in self.by_format.values() {
            match list.check(name) {
                Ok(name) => return Ok(name),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl Lab {
    /// Run `id`'s artifact `name`, opened here without waiting on a disk:
    /// a run whose files lie in its own directory, its root opened through
    /// no link from the kernel's lookup cache, the name resolved beneath it
    /// from that cache (lab-fs's `*_cached` opens, the same checks as the
    /// blocking path). `None`: [`Lab::open_artifact`] answers (and gives
    /// every error of record).
    pub fn open_artifact_cached(
        &self,
        id: &RunId,
        name: &ArtifactName,
    ) -> Option<Result<lab_fs::Artifact, Error>> {
        let run = self.run(id).ok()?;
        if run.entry.is_some() {
            return None;
        }
        if !self.allowlists.of(run.format).allows(name) {
            return Some(Err(lab_fs::Error::NotAllowed.into()));
        }
        let root = self.readers.open_root_cached(&run.root)?;
        Some(root.open_artifact_cached(name)?.map_err(Into::into))
    }

    /// Run `id`'s artifact `name`: allowed by its format's list, opened
    /// beneath the directory its artifacts are served from. Blocking: call
    /// it through the run's gate.
    pub fn open_artifact(
        &self,
        id: &RunId,
        name: &ArtifactName,
    ) -> Result<lab_fs::Artifact, Error> {
        let run = self.run(id)?;
        if !self.allowlists.of(run.format).allows(name) {
            return Err(lab_fs::Error::NotAllowed.into());
        }
        match self
            .readers
            .artifact_root(&run)?
            .ok_or(lab_fs::Error::NotFound)?
        {
            Source::Local(root) => Ok(root.open_artifact(name)?),
            Source::Remote(_) => Err(Error::RunUnavailable(
                "the run is in object storage: its artifacts are streamed".to_owned(),
            )),
        }
    }

    /// Whether run `id` lies in object storage (its artifacts are
    /// [`Lab::open_remote_artifact`]'s).
    pub fn is_remote(&self, id: &RunId) -> bool {
        self.s3.get(id).is_some()
    }

    /// Run `id`'s artifact `name` in object storage: allowed by its
    /// format's list, its length and ETag now (a HEAD beneath the run's
    /// directory), to stream by ranged GETs pinned to that ETag. Blocking:
    /// call it through the run's gate.
    pub fn open_remote_artifact(
        &self,
        id: &RunId,
        name: &ArtifactName,
    ) -> Result<crate::remote::RemoteArtifact, Error> {
        let run = self.run(id)?;
        if !self.allowlists.of(run.format).allows(name) {
            return Err(lab_fs::Error::NotAllowed.into());
        }
        if let Some(reason) = run.remote.as_ref().and_then(|r| r.root.unavailable()) {
            return Err(Error::RunUnavailable(reason));
        }
        match self
            .readers
            .artifact_root(&run)?
            .ok_or(lab_fs::Error::NotFound)?
        {
            Source::Remote(storage) => storage.artifact(name).map_err(|e| match e {
                lab_formats::storage::StorageError::NotFound => lab_fs::Error::NotFound.into(),
                lab_formats::storage::StorageError::InvalidName(why) => {
                    lab_fs::Error::InvalidName(why).into()
                }
                other => Error::RunUnavailable(other.to_string()),
            }),
            Source::Local(_) => Err(lab_fs::Error::NotFound.into()),
        }
    }

    /// A TensorBoard image of run `id`, read again from its record in the
    /// event file `file` (CRCs checked, the event decoded): the PNG's
    /// bytes, or `None` when there is none there. Blocking: call it
    /// through the run's gate.
    pub fn tensorboard_image(
        &self,
        id: &RunId,
        file: &str,
        offset: u64,
        n: usize,
    ) -> Result<Option<Vec<u8>>, Error> {
        let run = self.run(id)?;
        let source = self.readers.open_source(&run)?;
        // A job's run: the events the job wrote.
        let (content, format) = match &source {
            Source::Local(root) => {
                let (content, _, format, _) = self.readers.content(&run, root);
                (content.map(Source::Local), format)
            }
            Source::Remote(_) => (None, run.format),
        };
        if format != Format::Tensorboard {
            return Ok(None);
        }
        let source = content.unwrap_or(source);
        Ok(source
            .with_storage(|storage| lab_formats::tensorboard_image(storage, file, offset, n))
            .ok())
    }
}
