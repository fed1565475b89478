//! Run bundles: a plain tar of a run's allowlisted artifacts plus a
//! `MANIFEST.json` (each file's size and SHA-256, the Lab version, the
//! source run id), written only into the exports directory, and unpacked
//! only into a fresh directory under a given parent.
//!
//! Writing: regular files read through [`RunRoot::open_artifact`], relative
//! names, no links, no dotfiles; text may pass through a caller's
//! [`ExportFilter`] (redaction). The bundle is written under a temporary
//! dot-name, synced, and hard-linked to its final name — which fails if the
//! name exists, so nothing is ever overwritten and a crash never leaves a
//! half bundle under the final name. Memory is a copy buffer, whatever the
//! size of the run.
//!
//! Unpacking: only regular-file entries whose names parse as
//! [`ArtifactName`]s on the allowlist, each once, into a hidden staging
//! directory created beneath the parent's handle; every checksum is verified
//! against the manifest before the staging directory is renamed into place.
//! Absolute names, `..`, links, devices, FIFOs, directories, names off the
//! allowlist and files the manifest does not list are refused, with nothing
//! left behind.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, DirBuilder, DirBuilderExt as _, OpenOptions, OpenOptionsExt as _};
use sha2::{Digest, Sha256};

use crate::{Allowlist, ArtifactInfo, ArtifactName, Error, RunRoot};

/// The manifest's name inside a bundle.
pub const MANIFEST: &str = "MANIFEST.json";
/// Longest bundle file name.
pub const MAX_BUNDLE_NAME: usize = 100;
/// Largest manifest accepted when unpacking.
const MAX_MANIFEST: u64 = 4 * 1024 * 1024;
/// Format version written in the manifest.
pub const BUNDLE_VERSION: u32 = 1;

/// Why a bundle could not be written or unpacked.
#[derive(Debug)]
#[non_exhaustive]
pub enum BundleError {
    /// The bundle name is not `[A-Za-z0-9._-]{1,100}` without a leading dot.
    InvalidName(&'static str),
    /// A bundle by that name exists already; it is never overwritten.
    AlreadyExists,
    /// No bundle by that name.
    NotFound,
    /// The target directory for unpacking exists already.
    TargetExists,
    /// The bundle holds something refused; the reason names it.
    Refused(String),
    /// The manifest is missing or does not match the files.
    Manifest(String),
    /// Reading an artifact through the sandbox failed.
    Fs(Error),
    /// Any other I/O failure.
    Io(io::Error),
}

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BundleError::InvalidName(reason) => write!(f, "invalid bundle name: {reason}"),
            BundleError::AlreadyExists => f.write_str("a bundle with this name exists already"),
            BundleError::NotFound => f.write_str("no such bundle"),
            BundleError::TargetExists => f.write_str("the target directory exists already"),
            BundleError::Refused(why) => write!(f, "bundle refused: {why}"),
            BundleError::Manifest(why) => write!(f, "bundle manifest: {why}"),
            BundleError::Fs(e) => write!(f, "{e}"),
            BundleError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for BundleError {}

impl From<io::Error> for BundleError {
    fn from(e: io::Error) -> Self {
        BundleError::Io(e)
    }
}

impl From<Error> for BundleError {
    fn from(e: Error) -> Self {
        BundleError::Fs(e)
    }
}

/// A validated bundle file name, always ending in `.tar`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BundleName(String);

impl BundleName {
    /// Parses a name; `.tar` is appended when missing. Nothing is repaired.
    pub fn parse(name: &str) -> Result<Self, BundleError> {
        if name.is_empty() {
            return Err(BundleError::InvalidName("empty"));
        }
        if name.starts_with('.') {
            return Err(BundleError::InvalidName("must not start with a dot"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(BundleError::InvalidName(
                "only A-Z, a-z, 0-9, '.', '_' and '-' are allowed",
            ));
        }
        let full = if name.ends_with(".tar") {
            name.to_owned()
        } else {
            format!("{name}.tar")
        };
        if full.len() > MAX_BUNDLE_NAME {
            return Err(BundleError::InvalidName("longer than 100 characters"));
        }
        Ok(Self(full))
    }

    /// The file name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Transforms artifacts on their way into a bundle (redaction).
pub trait ExportFilter {
    /// Writes `name`'s content from `input` to `output`, transformed, and
    /// returns `Ok(true)`; or returns `Ok(false)` without writing to copy the
    /// artifact unchanged.
    fn filter(
        &self,
        name: &ArtifactName,
        input: &mut dyn Read,
        output: &mut dyn Write,
    ) -> io::Result<bool>;
}

/// Where a bundle's artifacts come from: a run's directory (a
/// [`RunRoot`]), or another place that lists a run's allowlisted
/// artifacts and reads one from its start (a run in object storage).
pub trait BundleSource {
    /// The allowlisted artifacts.
    fn list_artifacts(&self, allow: &Allowlist) -> Result<Vec<ArtifactInfo>, Error>;

    /// The artifact `name`'s bytes from its start, its length (exactly
    /// what is read: fewer is an error) and its modification time.
    #[allow(clippy::type_complexity)]
    fn open_for_bundle(
        &self,
        name: &ArtifactName,
    ) -> Result<(Box<dyn Read + '_>, u64, SystemTime), Error>;
}

impl BundleSource for RunRoot {
    fn list_artifacts(&self, allow: &Allowlist) -> Result<Vec<ArtifactInfo>, Error> {
        RunRoot::list_artifacts(self, allow)
    }

    fn open_for_bundle(
        &self,
        name: &ArtifactName,
    ) -> Result<(Box<dyn Read + '_>, u64, SystemTime), Error> {
        let artifact = self.open_artifact(name)?;
        Ok((Box::new(artifact.file), artifact.len, artifact.modified))
    }
}

/// Copies everything unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFilter;

impl ExportFilter for NoFilter {
    fn filter(&self, _: &ArtifactName, _: &mut dyn Read, _: &mut dyn Write) -> io::Result<bool> {
        Ok(false)
    }
}

/// One file in a manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Artifact name.
    pub name: String,
    /// Size in bytes, as stored in the bundle.
    pub size: u64,
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
}

/// `MANIFEST.json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `"lab-bundle"`.
    pub format: String,
    /// [`BUNDLE_VERSION`].
    pub version: u32,
    /// The Lab version that wrote it.
    pub lab_version: String,
    /// The id of the run it was made from.
    pub source_run: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The files, in archive order.
    pub files: Vec<ManifestFile>,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct BundleInfo {
    /// File name in the exports directory.
    pub name: BundleName,
    /// Size in bytes.
    pub size: u64,
    /// The manifest inside.
    pub manifest: Manifest,
}

/// `RUNID-YYYYMMDD-HHMMSS` in UTC.
pub fn default_bundle_name(run_id: &str, now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let [year, month, day, hour, minute, second] = utc_fields(secs);
    format!("{run_id}-{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch.
pub fn iso8601_utc(secs: u64) -> String {
    let [year, month, day, hour, minute, second] = utc_fields(secs);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Year, month, day, hour, minute, second (UTC) of a Unix time, by Howard
/// Hinnant's `civil_from_days`.
fn utc_fields(secs: u64) -> [u64; 6] {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    [
        year.max(0) as u64,
        month as u64,
        day as u64,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    ]
}

/// The exports directory: the only place bundles are written.
#[derive(Debug)]
pub struct ExportsDir {
    dir: Dir,
    path: std::path::PathBuf,
}

fn random_hex() -> io::Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads exactly `len` bytes or fails: a file that shrinks while it is being
/// bundled must not produce a corrupt archive.
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "artifact shrank while it was being exported",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn header(size: u64, modified: SystemTime) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(
        modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
    );
    header
}

impl ExportsDir {
    /// Opens `path` (created with mode 0700 if missing) with ambient
    /// authority; everything after goes through the handle.
    pub fn open_ambient(path: &Path) -> Result<Self, BundleError> {
        // Private: bundles hold a run's data.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(path)
            .map_err(BundleError::Io)?;
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Self {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// Bundles, sorted by name (hidden temporary files are not listed).
    pub fn list(&self) -> Result<Vec<ArtifactInfo>, BundleError> {
        let root = RunRoot::new(self.dir.try_clone()?, self.path.clone());
        Ok(root.list_artifacts(&Allowlist::only(&["*.tar"])?)?)
    }

    /// Opens a bundle for reading.
    pub fn open(&self, name: &BundleName) -> Result<crate::Artifact, BundleError> {
        let root = RunRoot::new(self.dir.try_clone()?, self.path.clone());
        let name = ArtifactName::parse(name.as_str())?;
        root.open_artifact(&name).map_err(|e| match e {
            Error::NotFound => BundleError::NotFound,
            other => BundleError::Fs(other),
        })
    }

    /// Writes a bundle of `root`'s allowlisted artifacts as `name`, plus
    /// `extra` generated files (a run of another format in the Lab's own
    /// form: `run.json`, `metrics.jsonl`), each replacing an artifact of
    /// the same name; they pass the same filter.
    pub fn write_bundle(
        &self,
        name: &BundleName,
        root: &dyn BundleSource,
        allow: &Allowlist,
        source_run: &str,
        filter: &dyn ExportFilter,
        extra: &[(ArtifactName, Vec<u8>)],
    ) -> Result<BundleInfo, BundleError> {
        if self.dir.symlink_metadata(name.as_str()).is_ok() {
            return Err(BundleError::AlreadyExists);
        }
        let tmp = format!(".{}.{}.tmp", name.as_str(), random_hex()?);
        let result = self.write_tmp(&tmp, root, allow, source_run, filter, extra);
        let outcome = result.and_then(|(manifest, size)| {
            // `link` fails if the final name exists: never an overwrite.
            match self.dir.hard_link(&tmp, &self.dir, name.as_str()) {
                Ok(()) => Ok(BundleInfo {
                    name: name.clone(),
                    size,
                    manifest,
                }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Err(BundleError::AlreadyExists)
                }
                Err(e) => Err(BundleError::Io(e)),
            }
        });
        let _ = self.dir.remove_file(&tmp);
        if outcome.is_ok()
            && let Ok(handle) = self.dir.open(".")
        {
            let _ = handle.sync_all();
        }
        outcome
    }

    /// An anonymous scratch file in the exports directory: created
    /// exclusively under a random hidden name, then unlinked at once.
    fn scratch(&self) -> Result<cap_std::fs::File, BundleError> {
        let name = format!(".scratch.{}.tmp", random_hex()?);
        let file = self.dir.open_with(
            &name,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600),
        )?;
        let _ = self.dir.remove_file(&name);
        Ok(file)
    }

    fn write_tmp(
        &self,
        tmp: &str,
        root: &dyn BundleSource,
        allow: &Allowlist,
        source_run: &str,
        filter: &dyn ExportFilter,
        extra: &[(ArtifactName, Vec<u8>)],
    ) -> Result<(Manifest, u64), BundleError> {
        let file = self.dir.open_with(
            tmp,
            OpenOptions::new().write(true).create_new(true).mode(0o600),
        )?;
        let mut builder = tar::Builder::new(io::BufWriter::with_capacity(256 * 1024, file));
        let mut files = Vec::new();
        let listed = root.list_artifacts(allow)?;
        // An extra file replaces an artifact of the same name (a run of
        // another format's own `run.json` is not the Lab's).
        for (extra_name, bytes) in extra {
            let mut scratch = self.scratch()?;
            {
                let mut out = io::BufWriter::new(&mut scratch);
                if !filter.filter(extra_name, &mut bytes.as_slice(), &mut out)? {
                    out.write_all(bytes)?;
                }
                out.flush()?;
            }
            let size = scratch.seek(io::SeekFrom::End(0))?;
            scratch.rewind()?;
            let mut reader = Hashing {
                inner: Exact {
                    inner: (&scratch).take(size),
                    left: size,
                },
                hash: Sha256::new(),
            };
            builder.append_data(
                &mut header(size, SystemTime::now()),
                extra_name.as_str(),
                &mut reader,
            )?;
            files.push(ManifestFile {
                name: extra_name.as_str().to_owned(),
                size,
                sha256: hex(&reader.hash.finalize()),
            });
        }
        for info in listed {
            if extra.iter().any(|(name, _)| *name == info.name) {
                continue;
            }
            let (file, len, modified) = root.open_for_bundle(&info.name)?;
            let name = info.name.as_str();
            // Let the filter transform the artifact into a scratch file, so
            // its final size is known before the tar header is written.
            let mut scratch = self.scratch()?;
            let mut input = Exact {
                inner: file.take(len),
                left: len,
            };
            let filtered = {
                let mut out = io::BufWriter::new(&mut scratch);
                let filtered = filter.filter(&info.name, &mut input, &mut out)?;
                out.flush()?;
                filtered
            };
            let (size, digest) = if filtered {
                let size = scratch.seek(io::SeekFrom::End(0))?;
                scratch.rewind()?;
                let mut reader = Hashing {
                    inner: Exact {
                        inner: (&scratch).take(size),
                        left: size,
                    },
                    hash: Sha256::new(),
                };
                builder.append_data(&mut header(size, modified), name, &mut reader)?;
                (size, reader.hash.finalize())
            } else {
                // Read again from its start: the filter may have read.
                drop(input);
                let (file, len, modified) = root.open_for_bundle(&info.name)?;
                let mut reader = Hashing {
                    inner: Exact {
                        inner: file.take(len),
                        left: len,
                    },
                    hash: Sha256::new(),
                };
                builder.append_data(&mut header(len, modified), name, &mut reader)?;
                (len, reader.hash.finalize())
            };
            files.push(ManifestFile {
                name: name.to_owned(),
                size,
                sha256: hex(&digest),
            });
        }
        let manifest = Manifest {
            format: "lab-bundle".to_owned(),
            version: BUNDLE_VERSION,
            lab_version: env!("CARGO_PKG_VERSION").to_owned(),
            source_run: source_run.to_owned(),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            files,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        builder.append_data(
            &mut header(json.len() as u64, SystemTime::now()),
            MANIFEST,
            json.as_slice(),
        )?;
        let writer = builder.into_inner()?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        Ok((manifest, size))
    }
}

/// What unpacking produced.
#[derive(Clone, Debug)]
pub struct Unpacked {
    /// The new run directory.
    pub dir: PathBuf,
    /// The verified manifest.
    pub manifest: Manifest,
}

/// Unpacks `bundle` (any reader, e.g. a file the user named) into a new
/// directory under `parent`, verifying every checksum. The directory is
/// `dir_name`, or the manifest's source run id when `None`; either must be a
/// single safe segment. `parent` is opened with ambient authority;
/// everything beneath goes through its handle.
pub fn unpack_bundle_ambient(
    bundle: impl Read,
    parent: &Path,
    dir_name: Option<&str>,
    allow: &Allowlist,
) -> Result<Unpacked, BundleError> {
    let segment = |name: &str| {
        ArtifactName::parse(name)
            .ok()
            .filter(|n| n.dir().is_none())
            .ok_or(BundleError::InvalidName("not a single safe directory name"))
    };
    let chosen = dir_name.map(segment).transpose()?;
    let parent_dir = Dir::open_ambient_dir(parent, cap_std::ambient_authority())?;
    if let Some(name) = &chosen
        && parent_dir.symlink_metadata(name.as_str()).is_ok()
    {
        return Err(BundleError::TargetExists);
    }
    let stage = format!(".lab-import-{}", random_hex()?);
    let mut builder = DirBuilder::new();
    builder.mode(0o755);
    parent_dir.create_dir_with(&stage, &builder)?;
    let result = (|| {
        let stage_dir = parent_dir.open_dir(&stage)?;
        let manifest = unpack_into(bundle, &stage_dir, allow)?;
        let name = match chosen {
            Some(name) => name,
            None => segment(&manifest.source_run)?,
        };
        if parent_dir.symlink_metadata(name.as_str()).is_ok() {
            return Err(BundleError::TargetExists);
        }
        // rename(2) replaces only an empty directory, so nothing is lost
        // even if one appeared since the check.
        parent_dir
            .rename(&stage, &parent_dir, name.as_str())
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty => {
                    BundleError::TargetExists
                }
                _ => BundleError::Io(e),
            })?;
        Ok((name, manifest))
    })();
    match result {
        Ok((name, manifest)) => Ok(Unpacked {
            dir: parent.join(name.as_str()),
            manifest,
        }),
        Err(e) => {
            let _ = parent_dir.remove_dir_all(&stage);
            Err(e)
        }
    }
}

fn unpack_into(bundle: impl Read, stage: &Dir, allow: &Allowlist) -> Result<Manifest, BundleError> {
    let mut archive = tar::Archive::new(bundle);
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind != tar::EntryType::Regular && kind != tar::EntryType::Continuous {
            return Err(BundleError::Refused(format!(
                "{shown:?} is not a regular file ({kind:?})"
            )));
        }
        let name = String::from_utf8(raw)
            .map_err(|_| BundleError::Refused(format!("{shown:?} is not UTF-8")))?;
        if name == MANIFEST {
            if manifest.is_some() {
                return Err(BundleError::Refused("two manifests".to_owned()));
            }
            if entry.size() > MAX_MANIFEST {
                return Err(BundleError::Refused("the manifest is too large".to_owned()));
            }
            let mut text = Vec::new();
            entry.by_ref().take(MAX_MANIFEST).read_to_end(&mut text)?;
            let parsed: Manifest = serde_json::from_slice(&text)
                .map_err(|e| BundleError::Manifest(format!("unreadable: {e}")))?;
            if parsed.format != "lab-bundle" || parsed.version != BUNDLE_VERSION {
                return Err(BundleError::Manifest(format!(
                    "format {} version {} is not supported",
                    parsed.format, parsed.version
                )));
            }
            manifest = Some(parsed);
            continue;
        }
        let artifact = allow
            .check(&name)
            .map_err(|e| BundleError::Refused(format!("{shown:?}: {e}")))?;
        if seen.contains_key(&name) {
            return Err(BundleError::Refused(format!("{shown:?} appears twice")));
        }
        // Its directories (up to three levels), beneath the staging handle;
        // only regular files are ever unpacked, so none of them is a link.
        if let Some(dir) = artifact.dir()
            && stage.symlink_metadata(dir).is_err()
        {
            stage.create_dir_all(dir)?;
        }
        let mut out = stage.open_with(
            artifact.as_str(),
            OpenOptions::new().write(true).create_new(true).mode(0o644),
        )?;
        let mut reader = Hashing {
            inner: &mut entry,
            hash: Sha256::new(),
        };
        let size = io::copy(&mut reader, &mut out)?;
        out.sync_all()?;
        seen.insert(name, (size, hex(&reader.hash.finalize())));
    }
    let manifest = manifest.ok_or_else(|| BundleError::Manifest("missing".to_owned()))?;
    let listed: BTreeMap<String, (u64, String)> = manifest
        .files
        .iter()
        .map(|f| (f.name.clone(), (f.size, f.sha256.clone())))
        .collect();
    if listed.len() != manifest.files.len() {
        return Err(BundleError::Manifest("a file is listed twice".to_owned()));
    }
    for (name, got) in &seen {
        match listed.get(name) {
            None => {
                return Err(BundleError::Manifest(format!("{name:?} is not listed")));
            }
            Some(want) if want != got => {
                return Err(BundleError::Manifest(format!(
                    "{name:?} does not match its checksum"
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(missing) = listed.keys().find(|n| !seen.contains_key(*n)) {
        return Err(BundleError::Manifest(format!(
            "{missing:?} is listed but absent"
        )));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn default_names_carry_the_utc_time() {
        let at = |secs| {
            super::default_bundle_name("run-1", super::UNIX_EPOCH + Duration::from_secs(secs))
        };
        assert_eq!(at(0), "run-1-19700101-000000");
        assert_eq!(at(951_782_400), "run-1-20000229-000000");
        assert_eq!(at(1_795_549_932), "run-1-20261124-195212");
        assert_eq!(super::iso8601_utc(1_795_549_932), "2026-11-24T19:52:12Z");
    }
}
