//! The storage seam every reader reads through: no reader opens a path.
//!
//! A [`Storage`] holds a run's (or a store's) files as objects named by
//! `/`-separated relative keys (`metrics.jsonl`, `params/lr`,
//! `files/media/videos/v_1_h.mp4`). A reader lists a "directory" (a key
//! prefix), asks an object's length and [`Version`], reads byte ranges of
//! it (pinned to a version where it must not mix two objects), and for a
//! SQLite store asks for a private copy to hand to SQLite. That is all a
//! reader can do: it cannot name anything outside the storage, and it
//! never sees a file handle or a path inside it.
//!
//! The local implementation is `LocalStorage` over lab-fs (every open
//! beneath the run root's handle, no final link followed, non-blocking,
//! regular files only, single-linked under `job/`, SQLite copies into a
//! private 0700 directory). An object store fits the same shape: a key
//! prefix is a directory, [`Storage::list`] is paged, a version is an ETag,
//! [`Storage::read_range`] is a ranged GET with `If-Match`.
//!
//! Everything a storage returns is hostile input: a listing may lie about
//! kinds, an object may change or vanish between two calls (the version
//! check turns that into [`StorageError::Changed`], which readers treat as
//! "read again"), and lengths are bounds asked for, never trusted as what
//! will come back.

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Most entries a listing hands a reader, all pages together: a directory
/// with more is read partially rather than stalling a refresh (lab-fs's
/// bound on one listed directory).
pub const MAX_LISTED: usize = 4096;

/// Bytes [`RangeReader`] asks for at a time.
pub const READ_CHUNK: usize = 1 << 20;

/// Where a reader's bytes come from. Object safe: readers take
/// `&dyn Storage`.
///
/// Names are `/`-separated keys relative to the storage (see
/// [`check_name`]); the empty name is the storage's top, and is only ever a
/// listing's prefix.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Where this storage lies, as the tools that write into it name it:
    /// a local storage's canonical absolute path, an object store's
    /// `s3://bucket/prefix`. Two storages with the same origin hold the
    /// same objects (the SQLite reader shares its private copies by it),
    /// and a location a run's own files record (MLflow's `artifact_uri`)
    /// names an object of this storage only when it lies beneath the
    /// origin; nothing is ever read by that location itself.
    fn origin(&self) -> &str;

    /// The entries directly beneath `prefix` (`""` for the top; a
    /// directory's name, without a trailing `/`), sorted by name, names
    /// that are not UTF-8 left out, kinds as the storage says them (a link
    /// is [`EntryKind::Other`] and is never followed). `page` is `None` for
    /// the first page, then the last page's [`Page::next`]. No storage
    /// hands out more than [`MAX_LISTED`] entries of one prefix.
    fn list(&self, prefix: &str, page: Option<&PageToken>) -> Result<Page, StorageError>;

    /// The length and version of the object `name`, which must be a
    /// regular file: a directory, a link, a FIFO or a device is
    /// [`StorageError::NotAFile`].
    fn stat(&self, name: &str) -> Result<Stat, StorageError>;

    /// At most `len` bytes of `name` from `offset` (fewer only at its end;
    /// none at or past it). With `version`, the object must still be that
    /// version, else [`StorageError::Changed`]: bytes of two objects are
    /// never mixed. The same checks as [`Storage::stat`]; at most `len`
    /// bytes are allocated.
    fn read_range(
        &self,
        name: &str,
        offset: u64,
        len: usize,
        version: Option<&Version>,
    ) -> Result<Vec<u8>, StorageError>;

    /// [`Storage::read_range`] into `buf` (replacing what it held), so a
    /// reader going through a file reuses one buffer: no fresh pages to
    /// fault in for every chunk.
    fn read_range_into(
        &self,
        name: &str,
        offset: u64,
        len: usize,
        version: Option<&Version>,
        buf: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        *buf = self.read_range(name, offset, len, version)?;
        Ok(())
    }

    /// The version [`Storage::copy_to_private_file`] would copy now,
    /// checked as a copy is checked, without copying: equal versions mean
    /// there is nothing new to copy. (Locally a SQLite database's version
    /// covers its `-wal`, and a link, FIFO, hard link or oversize file at
    /// any of its side files' names is refused here already.)
    fn private_copy_version(&self, name: &str, max_bytes: u64) -> Result<Version, StorageError>;

    /// A copy of `name` in a private place the Lab owns (0700, outside
    /// every root), for a library that must open a path (SQLite); removed
    /// when the [`PrivateCopy`] is dropped. At most `limits.max_bytes` per
    /// file copied, and every copy alive in the process together within
    /// `limits.budget` ([`StorageError::SpaceInUse`] when others hold it).
    /// Locally, a SQLite database is copied with its `-wal`, and its side
    /// files are checked as [`Storage::private_copy_version`] checks them.
    fn copy_to_private_file(
        &self,
        name: &str,
        limits: CopyLimits,
    ) -> Result<PrivateCopy, StorageError>;
}

/// What kind of entry a listing found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (an object).
    File,
    /// A directory (a key prefix with objects beneath).
    Dir,
    /// Anything else: a symbolic link, FIFO, socket or device. Never
    /// followed or read.
    Other,
}

/// One listed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name: one segment beneath the listed prefix.
    pub name: String,
    /// Its kind, without following a link.
    pub kind: EntryKind,
    /// Its length, when the listing says it (an object store's does; a
    /// local directory's does not, and it is not looked up).
    pub len: Option<u64>,
}

/// Where the next page of a listing starts (opaque).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageToken(pub String);

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Its entries, sorted by name.
    pub entries: Vec<Entry>,
    /// The token of the next page, if there is one.
    pub next: Option<PageToken>,
}

/// Which object a name held when it was looked at (opaque; compare only
/// for equality). Locally the file's device and inode, so a file that
/// grew is still the same version (formats that follow a run still being
/// written append, and read what was added); in an object store its ETag
/// (an object there never grows: a change is a new version). A reader
/// that saw a version read more than the length it saw only from that
/// same version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// A version from a storage's own description of it.
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The storage's description, for the storage that made it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What [`Storage::stat`] says of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Its length in bytes, now.
    pub len: u64,
    /// Which object it is.
    pub version: Version,
    /// When it was last written, Unix seconds, when the storage says
    /// (a file's mtime; an object's last-modified): for a run whose format
    /// records no time of its own. Never a version: it may go back.
    pub modified: Option<u64>,
}

/// The bounds of one private copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyLimits {
    /// Largest file copied, in bytes (a SQLite database and each side file).
    pub max_bytes: u64,
    /// Most bytes the private copies alive in the process hold together.
    pub budget: u64,
}

/// A private copy of an object, removed (and its bytes given back to the
/// budget) when dropped. The copy is the holder's to open however it likes,
/// read-write included: nothing written there reaches the storage.
pub struct PrivateCopy {
    path: PathBuf,
    version: Version,
    taken: Instant,
    /// What owns the copy's directory and its share of the budget.
    _owner: Box<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for PrivateCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateCopy")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl PrivateCopy {
    /// For a [`Storage`] implementation: the copy at `path` (in a private
    /// directory of the Lab's own), of `version`, begun at `taken`, kept
    /// while `owner` lives (dropping it removes the copy).
    pub fn new(
        path: PathBuf,
        version: Version,
        taken: Instant,
        owner: Box<dyn std::any::Any + Send + Sync>,
    ) -> Self {
        Self {
            path,
            version,
            taken,
            _owner: owner,
        }
    }

    /// The copy's path, to hand to the library that opens it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was copied, as it was just before the copy.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// When the copy was begun.
    pub fn taken(&self) -> Instant {
        self.taken
    }
}

/// Why a storage could not answer. The texts are the ones readers have
/// always shown (lab-fs's words), as they appear in a run's errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum StorageError {
    /// The name is not a well-formed relative key (the reason is static
    /// text).
    InvalidName(&'static str),
    /// Nothing by that name exists.
    NotFound,
    /// Resolving the name would leave the storage (a symlink out, usually).
    Escape,
    /// The name is something other than a regular file (a directory,
    /// FIFO, socket, device, or under a job's directory a file with a
    /// second name).
    NotAFile,
    /// The object is no longer the version that was asked for: read again.
    Changed,
    /// A file of a private copy is not copied: which, and why (a link, not
    /// regular, hard-linked, too large, larger than the whole space).
    Refused {
        /// The file's name (`mlflow.db`, `mlflow.db-wal`, …).
        file: String,
        /// Why.
        reason: String,
    },
    /// The private-copy space is held by other copies now: read again
    /// later.
    SpaceInUse {
        /// The file's name.
        file: String,
        /// Why, with the budget.
        reason: String,
    },
    /// An I/O failure.
    Io(io::Error),
    /// Any other failure of the storage, described.
    Other(String),
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::InvalidName(reason) => write!(f, "invalid artifact name: {reason}"),
            StorageError::NotFound => f.write_str("no such artifact"),
            StorageError::Escape => f.write_str("path leads outside the run root"),
            StorageError::NotAFile => f.write_str("artifact is not a regular file"),
            StorageError::Changed => f.write_str("changed while it was read; read again"),
            StorageError::Refused { file, reason } | StorageError::SpaceInUse { file, reason } => {
                write!(f, "{file}: {reason}")
            }
            StorageError::Io(e) => write!(f, "I/O error: {e}"),
            StorageError::Other(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for StorageError {}

impl StorageError {
    /// The storage error an I/O error of [`RangeReader`] carries, if any.
    pub fn from_read(e: &io::Error) -> Option<&StorageError> {
        e.get_ref()?.downcast_ref()
    }
}

/// Checks that `name` is a relative key: not empty, not starting with `/`,
/// no NUL, no empty, `.` or `..` segment. Every [`Storage`] refuses any
/// other name with [`StorageError::InvalidName`] before it looks at it.
pub fn check_name(name: &str) -> Result<(), StorageError> {
    if name.is_empty() {
        return Err(StorageError::InvalidName("empty"));
    }
    if name.contains('\0') {
        return Err(StorageError::InvalidName("contains NUL"));
    }
    if name
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(StorageError::InvalidName(
            "an absolute name, or an empty, `.` or `..` segment",
        ));
    }
    Ok(())
}

/// The entries beneath `prefix`, every page followed, at most
/// [`MAX_LISTED`] of them.
pub fn list_all(storage: &dyn Storage, prefix: &str) -> Result<Vec<Entry>, StorageError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = storage.list(prefix, token.as_ref())?;
        out.extend(page.entries);
        if out.len() >= MAX_LISTED {
            out.truncate(MAX_LISTED);
            break;
        }
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok(out)
}

/// Reads an object from an offset to a bound through
/// [`Storage::read_range`], [`READ_CHUNK`] bytes at a time (at most that
/// held), for readers that stream. Pinned to a version, a change of the
/// object is an I/O error carrying [`StorageError::Changed`] (see
/// [`StorageError::from_read`]).
#[derive(Debug)]
pub struct RangeReader<'a> {
    storage: &'a dyn Storage,
    name: &'a str,
    version: Option<Version>,
    /// The next offset to ask for.
    offset: u64,
    /// Nothing at or past this is asked for.
    end: u64,
    buf: Vec<u8>,
    used: usize,
}

impl<'a> RangeReader<'a> {
    /// Reads `name` from `offset` up to `end` (or its end, if shorter), of
    /// `version` when given.
    pub fn new(
        storage: &'a dyn Storage,
        name: &'a str,
        version: Option<Version>,
        offset: u64,
        end: u64,
    ) -> Self {
        Self {
            storage,
            name,
            version,
            offset,
            end,
            buf: Vec::new(),
            used: 0,
        }
    }
}

impl BufRead for RangeReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.used == self.buf.len() {
            self.buf.clear();
            self.used = 0;
            let want = self.end.saturating_sub(self.offset).min(READ_CHUNK as u64);
            if want > 0 {
                // At most READ_CHUNK: it fits a usize.
                let want = usize::try_from(want).unwrap_or(READ_CHUNK);
                // The buffer of the last chunk is reused.
                self.storage
                    .read_range_into(
                        self.name,
                        self.offset,
                        want,
                        self.version.as_ref(),
                        &mut self.buf,
                    )
                    .map_err(io::Error::other)?;
                // A storage that hands back more than was asked is cut.
                self.buf.truncate(want);
                self.offset += self.buf.len() as u64;
                if self.buf.is_empty() {
                    // The object ended before `end`: nothing more is asked.
                    self.end = self.offset;
                }
            }
        }
        Ok(&self.buf[self.used..])
    }

    fn consume(&mut self, amount: usize) {
        self.used = (self.used + amount).min(self.buf.len());
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Objects in memory, versioned by a counter bumped on every change:
    /// the oracle the local storage is held to, and a second
    /// implementation that keeps the trait honest (the fuzz oracles' own).
    pub(crate) type Memory = crate::fuzz::MemoryStorage;

    #[test]
    fn names_are_relative_keys_or_refused() {
        for good in ["a", "a/b", ".hydra/config.yaml", "x..y", "a\\b"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/a", "a/", "a//b", ".", "..", "a/../b", "./a", "a/.", "a\0b",
        ] {
            assert!(
                matches!(check_name(bad), Err(StorageError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_range_reader_reads_in_bounded_chunks_to_its_end() {
        let memory = Memory::default();
        let bytes: Vec<u8> = (0..(READ_CHUNK * 2 + 10)).map(|i| i as u8).collect();
        memory.put("f", &bytes);
        let version = memory.stat("f").unwrap().version;
        let mut all = Vec::new();
        RangeReader::new(&memory, "f", Some(version.clone()), 5, u64::MAX)
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, bytes[5..]);
        assert!(
            memory
                .ranges
                .lock()
                .unwrap()
                .iter()
                .all(|n| *n <= READ_CHUNK)
        );
        // Bounded by `end`.
        let mut some = Vec::new();
        RangeReader::new(&memory, "f", None, 1, 4)
            .read_to_end(&mut some)
            .unwrap();
        assert_eq!(some, bytes[1..4]);
    }

    #[test]
    fn a_pinned_read_of_a_changed_object_says_so() {
        let memory = Memory::default();
        memory.put("f", b"one");
        let version = memory.stat("f").unwrap().version;
        memory.put("f", b"two");
        let err = memory.read_range("f", 0, 3, Some(&version)).unwrap_err();
        assert!(matches!(err, StorageError::Changed));
        let mut reader = RangeReader::new(&memory, "f", Some(version), 0, u64::MAX);
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(matches!(
            StorageError::from_read(&err),
            Some(StorageError::Changed)
        ));
    }

    #[test]
    fn listings_give_one_segment_names_with_kinds() {
        let memory = Memory::default();
        memory.put("metrics/loss", b"1");
        memory.put("metrics/nested/acc", b"1");
        memory.put("meta.yaml", b"x");
        let names = |prefix: &str| -> Vec<(String, EntryKind)> {
            list_all(&memory, prefix)
                .unwrap()
                .into_iter()
                .map(|e| (e.name, e.kind))
                .collect()
        };
        assert_eq!(
            names(""),
            [
                ("meta.yaml".to_owned(), EntryKind::File),
                ("metrics".to_owned(), EntryKind::Dir)
            ]
        );
        assert_eq!(
            names("metrics"),
            [
                ("loss".to_owned(), EntryKind::File),
                ("nested".to_owned(), EntryKind::Dir)
            ]
        );
    }
}
