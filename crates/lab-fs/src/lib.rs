//! lab-fs is the only way Lab opens a file under a run root.
//!
//! It guarantees that a file handed out by [`RunRoot::open_artifact`]
//!
//! - has a name that parsed as an [`ArtifactName`] (no `..`, no absolute path,
//!   no empty, dot or dot-prefixed segment, no NUL, control character or
//!   backslash, at most four segments) and is on the [`Allowlist`];
//! - was resolved by the kernel beneath the run root's directory handle
//!   (cap-std, `openat2(RESOLVE_BENEATH)` on Linux), so a symlink may be
//!   followed only while it stays inside the root — a link to `/etc`, to a
//!   sibling run or through `..` is refused as [`Error::Escape`];
//! - is a regular file (a FIFO, socket, device or directory is refused, and
//!   opening never blocks).
//!
//! ```
//! # fn main() -> Result<(), lab_fs::Error> {
//! # let tmp = tempfile::tempdir().unwrap();
//! # std::fs::write(tmp.path().join("notes.md"), "hi").unwrap();
//! # let canonical = tmp.path().canonicalize().unwrap();
//! let allow = lab_fs::Allowlist::default();
//! let root = lab_fs::RunRoot::open_ambient(&canonical)?;
//! let name = allow.check("notes.md")?;
//! let artifact = root.open_artifact(&name)?;
//! assert_eq!(artifact.len, 2);
//! assert!(allow.check("../etc/passwd").is_err());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod bundle;
#[doc(hidden)]
pub mod fuzz;
mod name;
mod sqlite;

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cap_std::fs::{Dir, MetadataExt as _, OpenOptions, OpenOptionsExt as _};
use rustix::fs::{OFlags, ResolveFlags};

pub use name::{
    Allowlist, ArtifactName, DEFAULT_ALLOWLIST, JOB_DIR, MAX_LEVELS, MAX_NAME_LEN, MlflowImageName,
    Pattern, mlflow_image_name,
};
pub use sqlite::{
    FileIdentity, SQLITE_SIDE_FILES, SqliteIdentity, SqliteRefusal, SqliteSnapshot, private_copy,
    snapshot_bytes_in_use, snapshot_dir, use_snapshot_dir,
};

/// Most entries looked at in one directory when listing artifacts; a run
/// directory with more is listed partially rather than stalling a request.
pub const MAX_LISTED_ENTRIES: usize = 4096;
/// Most directories one `*`-segment pattern's directory expands to when
/// artifacts are listed (a format's step directories).
pub const MAX_WILD_DIRS: usize = 4096;
/// Most entries looked at in one listing of a run's artifacts, every
/// directory together: a run of 4,096 step directories of 4,096 files
/// each costs this many, not 16 million, each time it is listed.
pub const MAX_LISTED_TOTAL: usize = 65_536;

/// Whether `name` is a directory name an artifact name may hold.
fn check_segment_name(name: &str) -> bool {
    ArtifactName::parse(&format!("{name}/x")).is_ok()
}
/// Most entries [`RunRoot::clear_setid_bits`] looks at.
pub const MAX_SETID_WALK: usize = 1_000_000;

/// Why a name could not be resolved or a root could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The name is not a well-formed artifact name (the reason is static text).
    InvalidName(&'static str),
    /// The name is well formed but not on the artifact allowlist.
    NotAllowed,
    /// An allowlist entry from configuration is malformed.
    InvalidPattern {
        /// The entry as written.
        pattern: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Resolving the name would leave the run root (a symlink out, usually).
    Escape,
    /// Nothing by that name exists under the root.
    NotFound,
    /// The name resolves to something other than a regular file.
    NotAFile,
    /// The run root's real path is no longer the one that was registered
    /// (a component was replaced by a symlink, or it was moved).
    RootMoved,
    /// A SQLite database or one of its side files is not one a snapshot
    /// is taken of (see [`RunRoot::snapshot_sqlite`]).
    Sqlite {
        /// The file's name (`mlflow.db`, `mlflow.db-wal`, …).
        file: String,
        /// Why it was refused.
        refusal: SqliteRefusal,
    },
    /// Any other I/O failure.
    Io(io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidName(reason) => write!(f, "invalid artifact name: {reason}"),
            Error::NotAllowed => f.write_str("name is not on the artifact allowlist"),
            Error::InvalidPattern { pattern, reason } => {
                write!(f, "invalid allowlist entry {pattern:?}: {reason}")
            }
            Error::Escape => f.write_str("path leads outside the run root"),
            Error::NotFound => f.write_str("no such artifact"),
            Error::NotAFile => f.write_str("artifact is not a regular file"),
            Error::RootMoved => f.write_str("run root no longer resolves to its registered path"),
            Error::Sqlite { file, refusal } => write!(f, "{file}: {refusal}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Classifies an error from cap-std. cap-std reports an escape as a
    /// `PermissionDenied` error of its own making (no OS error code), which
    /// keeps it apart from a real `EACCES`.
    #[cold]
    fn from_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound,
            io::ErrorKind::PermissionDenied if e.raw_os_error().is_none() => Error::Escape,
            _ if e.raw_os_error() == Some(libc::ELOOP) => Error::Escape,
            _ if e.raw_os_error() == Some(libc::EXDEV) => Error::Escape,
            _ if e.raw_os_error() == Some(libc::ENOTDIR) => Error::NotFound,
            _ => Error::Io(e),
        }
    }
}

/// An opened regular file under a run root, with what a response needs.
#[derive(Debug)]
pub struct Artifact {
    /// The open file, read-only.
    pub file: std::fs::File,
    /// Its length in bytes, from `fstat` on the open handle.
    pub len: u64,
    /// Modification time.
    pub modified: SystemTime,
    /// Inode number, for a strong validator.
    pub inode: u64,
}

/// A listed artifact: name, size, modification time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactInfo {
    /// The allowlisted name.
    pub name: ArtifactName,
    /// Size in bytes.
    pub len: u64,
    /// Modification time.
    pub modified: SystemTime,
}

/// What kind of entry [`RunRoot::list_dir`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else: a symbolic link, FIFO, socket or device.
    Other,
}

/// One entry of a listed directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name (one segment).
    pub name: String,
    /// Its kind, without following a link.
    pub kind: EntryKind,
}

/// The checks every opened artifact passes: a regular file, and under a
/// job's directory one with a single name.
fn checked_artifact(
    file: std::fs::File,
    name: &ArtifactName,
    in_job: bool,
) -> Result<Artifact, Error> {
    let meta = file.metadata().map_err(Error::from_io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile);
    }
    // What a job wrote is hostile: a file there with a second name may
    // be a hard link to something outside the run; it is not served.
    if (in_job || name.in_job_dir().is_some()) && meta.nlink() > 1 {
        return Err(Error::NotAFile);
    }
    Ok(Artifact {
        modified: meta.modified().map_err(Error::from_io)?,
        inode: meta.ino(),
        len: meta.len(),
        file,
    })
}

/// `openat2(start, path, O_RDONLY | O_CLOEXEC | extra, RESOLVE_BENEATH |
/// RESOLVE_NO_MAGICLINKS | RESOLVE_CACHED)`: `None` on any failure (see
/// [`RunRoot::open_artifact_cached`]).
fn open_cached(
    start: &impl std::os::fd::AsFd,
    path: &str,
    extra: OFlags,
) -> Option<std::os::fd::OwnedFd> {
    rustix::fs::openat2(
        start,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | extra,
        rustix::fs::Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::CACHED,
    )
    .ok()
}

/// A directory handle for one registered run root.
#[derive(Debug)]
pub struct RunRoot {
    dir: Dir,
    /// The canonical path it was opened at.
    path: PathBuf,
    /// It is a job's directory (`job/`) or lies beneath one, opened with
    /// [`RunRoot::open_sub`]: every file opened through it must have a
    /// single name, as every file under `job/` of a run's root must.
    in_job: bool,
}

impl RunRoot {
    fn new(dir: Dir, path: PathBuf) -> Self {
        Self {
            dir,
            path,
            in_job: false,
        }
    }

    /// Opens `canonical` with the process's ambient authority and checks that
    /// the opened directory's real path is exactly `canonical`, so a root
    /// whose path was swapped for a symlink after registration is refused.
    ///
    /// This is the one place lab-fs uses ambient authority; everything below
    /// the root goes through the handle.
    pub fn open_ambient(canonical: &Path) -> Result<Self, Error> {
        let dir = Dir::open_ambient_dir(canonical, cap_std::ambient_authority())
            .map_err(Error::from_io)?;
        Self::verified(dir, canonical)
    }

    /// [`RunRoot::open_ambient`] for a caller on an async worker, in one
    /// call: `openat2(canonical, RESOLVE_NO_SYMLINKS | RESOLVE_CACHED)`.
    /// No link at any component (magic links included) means the opened
    /// directory's real path is `canonical` itself — the check
    /// `open_ambient` makes through `/proc`, made by the kernel during the
    /// resolution — and `RESOLVE_CACHED` means the kernel answers from its
    /// lookup cache or refuses at once. `None` on any failure (a link on
    /// the way, a component not cached, a kernel without `openat2`): the
    /// caller goes to [`RunRoot::open_ambient`] on a blocking thread for
    /// the answer of record.
    pub fn open_ambient_cached(canonical: &Path) -> Option<Self> {
        let fd = rustix::fs::openat2(
            rustix::fs::CWD,
            canonical,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY,
            rustix::fs::Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::CACHED,
        )
        .ok()?;
        Some(Self::new(
            Dir::from_std_file(std::fs::File::from(fd)),
            canonical.to_path_buf(),
        ))
    }

    /// `dir`, opened at `canonical`, if its real path is exactly that.
    fn verified(dir: Dir, canonical: &Path) -> Result<Self, Error> {
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        match std::fs::read_link(&proc_path) {
            Ok(real) if real == canonical => Ok(Self::new(dir, canonical.to_path_buf())),
            Ok(_) => Err(Error::RootMoved),
            // Without /proc, fall back to comparing the handle with a fresh
            // stat of the path (device and inode).
            Err(_) => {
                let opened = dir.dir_metadata().map_err(Error::from_io)?;
                let named = std::fs::symlink_metadata(canonical).map_err(Error::Io)?;
                if named.file_type().is_dir()
                    && opened.dev() == named.dev()
                    && opened.ino() == named.ino()
                {
                    Ok(Self::new(dir, canonical.to_path_buf()))
                } else {
                    Err(Error::RootMoved)
                }
            }
        }
    }

    /// Opens an allowlisted artifact for reading, beneath the root.
    pub fn open_artifact(&self, name: &ArtifactName) -> Result<Artifact, Error> {
        let mut options = OpenOptions::new();
        // O_NONBLOCK: opening a FIFO planted under the root must not block
        // a thread; O_NOCTTY: never acquire a terminal.
        options
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
        // What a job wrote is opened beneath its job directory, so a link
        // it planted cannot reach even the Lab's own files of the run.
        let file = match name.in_job_dir() {
            Some(inner) => self
                .dir
                .open_dir(JOB_DIR)
                .and_then(|job| job.open_with(inner.as_str(), &options)),
            None => self.dir.open_with(name.as_str(), &options),
        }
        .map_err(Error::from_io)?;
        checked_artifact(file.into_std(), name, self.in_job)
    }

    /// [`RunRoot::open_artifact`] for a caller on an async worker, which
    /// must not wait on a disk: the same kernel resolution beneath the
    /// root's handle (`openat2` with `RESOLVE_BENEATH |
    /// RESOLVE_NO_MAGICLINKS`, cap-std's flags), plus `RESOLVE_CACHED`, so
    /// the kernel answers from its lookup cache or refuses at once.
    ///
    /// `None` when this path cannot answer — a component not in the cache,
    /// a kernel without `openat2` or `RESOLVE_CACHED`, or any failure to
    /// resolve, a missing file included — and the caller goes to
    /// [`RunRoot::open_artifact`] on a blocking thread, which gives the
    /// answer (and the error) of record. `Some` once a file was opened: it
    /// passed the same checks as [`RunRoot::open_artifact`].
    pub fn open_artifact_cached(&self, name: &ArtifactName) -> Option<Result<Artifact, Error>> {
        let file = match name.in_job_dir() {
            Some(inner) => {
                let job = open_cached(&self.dir, JOB_DIR, OFlags::DIRECTORY)?;
                open_cached(&job, inner.as_str(), OFlags::NONBLOCK | OFlags::NOCTTY)?
            }
            None => open_cached(&self.dir, name.as_str(), OFlags::NONBLOCK | OFlags::NOCTTY)?,
        };
        Some(checked_artifact(
            std::fs::File::from(file),
            name,
            self.in_job,
        ))
    }

    /// Opens `rel` (any relative path, not only an artifact name) beneath
    /// the root for reading, never following a final link, never blocking,
    /// regular files only: for the runner to hash what a job left where a
    /// later step's program lies. Not reachable from any route.
    pub fn open_regular(&self, rel: &Path) -> Result<std::fs::File, Error> {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW);
        let file = self.dir.open_with(rel, &options).map_err(Error::from_io)?;
        let meta = file.metadata().map_err(Error::from_io)?;
        if !meta.is_file() {
            return Err(Error::NotAFile);
        }
        // As for artifacts: a second name under a job's directory may be a
        // hard link to something outside the run.
        if (self.in_job || rel.starts_with(JOB_DIR)) && meta.nlink() > 1 {
            return Err(Error::NotAFile);
        }
        Ok(file.into_std())
    }

    /// The canonical path this root was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This root, its files a job's: a file with a second name (a hard
    /// link, which may lead outside the run) is refused beneath it, as
    /// beneath `job/`. For a run a job wrote (registered beneath its job's
    /// run) and for anything else read inside the jobs' runs.
    pub fn within_job(mut self) -> Self {
        self.in_job = true;
        self
    }

    /// The directory `rel` beneath this root as a root of its own (for a
    /// store's run whose files lie in a subdirectory of the store): opened
    /// beneath the handle, never through a link.
    pub fn open_sub(&self, rel: &str) -> Result<RunRoot, Error> {
        let dir = self.dir.open_dir(rel).map_err(Error::from_io)?;
        // A job's directory stays one beneath: its files single-linked.
        let in_job = self.in_job || Path::new(rel).starts_with(JOB_DIR);
        Ok(RunRoot {
            in_job,
            ..RunRoot::new(dir, self.path.join(rel))
        })
    }

    /// Lists the directory `rel` beneath the root (`""` for the root
    /// itself): at most [`MAX_LISTED_ENTRIES`] entries, sorted by name,
    /// names that are not UTF-8 left out, kinds as the directory says them
    /// (a symbolic link is [`EntryKind::Other`], never followed). For the
    /// format readers, which look for their files by name; nothing here is
    /// served.
    pub fn list_dir(&self, rel: &str) -> Result<Vec<DirEntry>, Error> {
        let entries = if rel.is_empty() {
            self.dir.entries()
        } else {
            self.dir.read_dir(rel)
        }
        .map_err(Error::from_io)?;
        let mut out = Vec::new();
        for entry in entries.take(MAX_LISTED_ENTRIES) {
            let Ok(entry) = entry else { continue };
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let kind = match entry.file_type() {
                Ok(t) if t.is_dir() => EntryKind::Dir,
                Ok(t) if t.is_file() => EntryKind::File,
                _ => EntryKind::Other,
            };
            out.push(DirEntry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Clears the setuid and setgid bits of every regular file beneath
    /// `sub` (a runner job's directory, after the job ended), through the
    /// handle: links are never followed, at most [`MAX_SETID_WALK`] entries
    /// are looked at. Returns how many files were changed.
    pub fn clear_setid_bits(&self, sub: &str) -> Result<usize, Error> {
        use cap_std::fs::PermissionsExt as _;
        let mut changed = 0;
        let mut seen = 0;
        let mut pending = vec![(sub.to_owned(), 0usize)];
        while let Some((dir, depth)) = pending.pop() {
            let entries = self.dir.read_dir(&dir).map_err(Error::from_io)?;
            for entry in entries.flatten() {
                seen += 1;
                if seen > MAX_SETID_WALK {
                    return Ok(changed);
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = format!("{dir}/{}", entry.file_name().to_string_lossy());
                if kind.is_dir() && depth < 64 {
                    pending.push((path, depth + 1));
                } else if kind.is_file() {
                    let Ok(meta) = entry.metadata() else { continue };
                    let mode = meta.permissions().mode();
                    if mode & 0o6000 != 0 {
                        self.dir
                            .set_permissions(
                                &path,
                                cap_std::fs::Permissions::from_mode(mode & !0o6000 & 0o777),
                            )
                            .map_err(Error::from_io)?;
                        changed += 1;
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Lists the allowlisted artifacts present, sorted by name. Every entry is
    /// opened exactly as [`RunRoot::open_artifact`] would, so the list never
    /// shows a name that would then be refused.
    pub fn list_artifacts(&self, allow: &Allowlist) -> Result<Vec<ArtifactInfo>, Error> {
        let mut found = Vec::new();
        let mut budget = MAX_LISTED_TOTAL;
        self.collect(None, allow, &mut found, &mut budget)?;
        let job_dirs = allow.dirs().into_iter().map(|d| format!("{JOB_DIR}/{d}"));
        let mut dirs: Vec<String> = allow.dirs().into_iter().map(str::to_owned).collect();
        dirs.push(JOB_DIR.to_owned());
        dirs.extend(job_dirs);
        for wild in allow.wild_dirs() {
            dirs.extend(self.expand(wild, &mut budget));
        }
        for dir in dirs.iter().map(String::as_str) {
            // A missing or escaping directory simply contributes nothing.
            if let Err(e) = self.collect(Some(dir), allow, &mut found, &mut budget) {
                match e {
                    Error::NotFound | Error::Escape | Error::NotAFile => {}
                    Error::Io(ref io) if io.raw_os_error() == Some(libc::ENOTDIR) => {}
                    other => return Err(other),
                }
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found.dedup_by(|a, b| a.name == b.name);
        Ok(found)
    }

    /// The directories beneath the root a `*`-segment directory (`*`,
    /// `media/*`) names: each `*` any real directory there whose name is
    /// a safe segment, at most [`MAX_WILD_DIRS`] in all. What cannot be
    /// listed contributes nothing; every file found is still opened as
    /// [`RunRoot::open_artifact`] opens it. Every entry looked at is taken
    /// from `budget`.
    fn expand(&self, wild: &str, budget: &mut usize) -> Vec<String> {
        let mut found: Vec<String> = vec![String::new()];
        for segment in wild.split('/') {
            let mut next = Vec::new();
            for prefix in &found {
                if segment != "*" {
                    next.push(if prefix.is_empty() {
                        segment.to_owned()
                    } else {
                        format!("{prefix}/{segment}")
                    });
                    continue;
                }
                let entries = if prefix.is_empty() {
                    self.dir.entries()
                } else {
                    self.dir.read_dir(prefix)
                };
                let Ok(entries) = entries else { continue };
                for entry in entries.take(MAX_LISTED_ENTRIES.min(*budget)) {
                    *budget -= 1;
                    let Ok(entry) = entry else { continue };
                    // The entry itself: a link is not a directory here.
                    if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                        continue;
                    }
                    let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                        continue;
                    };
                    if check_segment_name(&name) {
                        next.push(if prefix.is_empty() {
                            name
                        } else {
                            format!("{prefix}/{name}")
                        });
                    }
                    if next.len() >= MAX_WILD_DIRS {
                        break;
                    }
                }
            }
            next.truncate(MAX_WILD_DIRS);
            found = next;
        }
        found
    }

    /// Adds the allowlisted artifacts of the root (`None`) or `subdir` to
    /// `found`, every entry looked at taken from `budget`.
    fn collect(
        &self,
        subdir: Option<&str>,
        allow: &Allowlist,
        found: &mut Vec<ArtifactInfo>,
        budget: &mut usize,
    ) -> Result<(), Error> {
        let entries = match subdir {
            None => self.dir.entries(),
            Some(dir) => self.dir.read_dir(dir),
        }
        .map_err(Error::from_io)?;
        for entry in entries.take(MAX_LISTED_ENTRIES.min(*budget)) {
            *budget -= 1;
            let Ok(entry) = entry else { continue };
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let full = match subdir {
                None => file_name,
                Some(dir) => format!("{dir}/{file_name}"),
            };
            let Ok(name) = ArtifactName::parse(&full) else {
                continue;
            };
            if !allow.allows(&name) {
                continue;
            }
            if let Ok(artifact) = self.open_artifact(&name) {
                found.push(ArtifactInfo {
                    name,
                    len: artifact.len,
                    modified: artifact.modified,
                });
            }
        }
        Ok(())
    }
}
