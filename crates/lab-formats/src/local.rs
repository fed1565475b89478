//! The local [`Storage`]: a run root's files, through lab-fs and nothing
//! else, so every guarantee lab-fs gives holds for every reader:
//!
//! - each name is resolved by the kernel beneath the run root's directory
//!   handle (a link may be followed only while it stays inside; one out is
//!   [`StorageError::Escape`]), and the final component is never a link;
//! - each open is non-blocking (a FIFO planted at a name cannot stall a
//!   reader) and only a regular file is read; under `job/` only a file
//!   with one name (a hard link may be a file from outside the run);
//! - a SQLite database is never opened in place: it and its side files
//!   are checked beneath the handle and copied (with its `-wal`) into a
//!   private 0700 directory the Lab owns (lab-fs's `snapshot_sqlite`).
//!
//! The only module of lab-formats that names lab-fs outside tests (the
//! `tidy` test in xtask holds it so); it is meant to move to the
//! application crate, which builds a storage for each run it reads.

use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use lab_fs::{FileIdentity, RunRoot, SqliteIdentity, SqliteRefusal};

use crate::storage::{
    CopyLimits, Entry, EntryKind, Page, PageToken, PrivateCopy, Stat, Storage, StorageError,
    Version, check_name,
};

/// A run root as a [`Storage`]: names are paths beneath it.
#[derive(Debug)]
pub struct LocalStorage<'a> {
    root: Root<'a>,
    origin: String,
}

#[derive(Debug)]
enum Root<'a> {
    Borrowed(&'a RunRoot),
    Owned(RunRoot),
}

impl<'a> LocalStorage<'a> {
    /// The storage of an opened run root.
    pub fn new(root: &'a RunRoot) -> Self {
        Self {
            origin: origin_of(root.path()),
            root: Root::Borrowed(root),
        }
    }

    /// The run root read.
    pub fn root(&self) -> &RunRoot {
        match &self.root {
            Root::Borrowed(root) => root,
            Root::Owned(root) => root,
        }
    }
}

impl LocalStorage<'static> {
    /// The storage of a run root it keeps.
    pub fn owning(root: RunRoot) -> Self {
        Self {
            origin: origin_of(root.path()),
            root: Root::Owned(root),
        }
    }

    /// Opens the directory at `canonical` with the process's ambient
    /// authority, as [`RunRoot::open_ambient`] does (its real path must be
    /// `canonical`).
    pub fn open_ambient(canonical: &Path) -> Result<Self, StorageError> {
        RunRoot::open_ambient(canonical)
            .map(Self::owning)
            .map_err(from_fs)
    }
}

/// A root's path as an origin: the path itself when it is UTF-8 (as
/// every registered root is), else a text no writer's location starts
/// with and no other root shares.
fn origin_of(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    match path.to_str() {
        Some(text) => text.to_owned(),
        None => {
            let hex: String = path
                .as_os_str()
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("local-not-utf8:{hex}")
        }
    }
}

/// lab-fs's error as the storage's, with the same text.
fn from_fs(e: lab_fs::Error) -> StorageError {
    match e {
        lab_fs::Error::NotFound => StorageError::NotFound,
        lab_fs::Error::Escape => StorageError::Escape,
        lab_fs::Error::NotAFile => StorageError::NotAFile,
        lab_fs::Error::InvalidName(reason) => StorageError::InvalidName(reason),
        lab_fs::Error::Io(e) => StorageError::Io(e),
        lab_fs::Error::Sqlite {
            file,
            refusal: refusal @ SqliteRefusal::SpaceInUse(_),
        } => StorageError::SpaceInUse {
            file,
            reason: refusal.to_string(),
        },
        lab_fs::Error::Sqlite { file, refusal } => StorageError::Refused {
            file,
            reason: refusal.to_string(),
        },
        other => StorageError::Other(other.to_string()),
    }
}

/// A file's version: its device and inode (a file that grew is the same
/// file; one renamed over it is not).
fn file_version(meta: &std::fs::Metadata) -> Version {
    Version::new(format!("{}:{}", meta.dev(), meta.ino()))
}

fn time_text(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => format!("{}.{:09}", d.as_secs(), d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            format!("-{}.{:09}", d.as_secs(), d.subsec_nanos())
        }
    }
}

fn identity_text(i: &FileIdentity) -> String {
    format!("{}:{}:{}:{}", i.dev, i.ino, i.len, time_text(i.modified))
}

/// A SQLite copy's version: the database's and its `-wal`'s identities
/// (device, inode, length, modification time), equal exactly when the
/// identities are.
fn sqlite_version(identity: &SqliteIdentity) -> Version {
    let wal = identity
        .wal
        .as_ref()
        .map_or_else(|| "-".to_owned(), identity_text);
    Version::new(format!("db={};wal={wal}", identity_text(&identity.db)))
}

impl LocalStorage<'_> {
    /// `name` opened beneath the root (lab-fs's `open_regular`: no final
    /// link, non-blocking, regular, single-linked under `job/`).
    fn open(&self, name: &str) -> Result<(std::fs::File, std::fs::Metadata), StorageError> {
        check_name(name)?;
        let file = self.root().open_regular(Path::new(name)).map_err(from_fs)?;
        let meta = file.metadata().map_err(StorageError::Io)?;
        Ok((file, meta))
    }
}

impl Storage for LocalStorage<'_> {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn list(&self, prefix: &str, page: Option<&PageToken>) -> Result<Page, StorageError> {
        if !prefix.is_empty() {
            check_name(prefix)?;
        }
        // Everything comes on the first page.
        if page.is_some() {
            return Ok(Page::default());
        }
        let entries = self.root().list_dir(prefix).map_err(from_fs)?;
        Ok(Page {
            entries: entries
                .into_iter()
                .map(|e| Entry {
                    name: e.name,
                    kind: match e.kind {
                        lab_fs::EntryKind::File => EntryKind::File,
                        lab_fs::EntryKind::Dir => EntryKind::Dir,
                        lab_fs::EntryKind::Other => EntryKind::Other,
                    },
                    len: None,
                })
                .collect(),
            next: None,
        })
    }

    fn stat(&self, name: &str) -> Result<Stat, StorageError> {
        let (_, meta) = self.open(name)?;
        Ok(Stat {
            len: meta.len(),
            version: file_version(&meta),
            modified: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
        })
    }

    fn read_range(
        &self,
        name: &str,
        offset: u64,
        len: usize,
        version: Option<&Version>,
    ) -> Result<Vec<u8>, StorageError> {
        let mut buf = Vec::new();
        self.read_range_into(name, offset, len, version, &mut buf)?;
        Ok(buf)
    }

    fn read_range_into(
        &self,
        name: &str,
        offset: u64,
        len: usize,
        version: Option<&Version>,
        buf: &mut Vec<u8>,
    ) -> Result<(), StorageError> {
        buf.clear();
        let (file, meta) = self.open(name)?;
        if version.is_some_and(|v| *v != file_version(&meta)) {
            return Err(StorageError::Changed);
        }
        // Never more than asked, nor than the file holds now.
        let want = meta
            .len()
            .saturating_sub(offset)
            .min(u64::try_from(len).unwrap_or(u64::MAX));
        let want = usize::try_from(want).unwrap_or(len);
        buf.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    buf.clear();
                    return Err(StorageError::Io(e));
                }
            }
        }
        buf.truncate(filled);
        Ok(())
    }

    fn private_copy_version(&self, name: &str, max_bytes: u64) -> Result<Version, StorageError> {
        check_name(name)?;
        self.root()
            .sqlite_identity(name, max_bytes)
            .map(|identity| sqlite_version(&identity))
            .map_err(from_fs)
    }

    fn copy_to_private_file(
        &self,
        name: &str,
        limits: CopyLimits,
    ) -> Result<PrivateCopy, StorageError> {
        check_name(name)?;
        let snapshot = self
            .root()
            .snapshot_sqlite(name, limits.max_bytes, limits.budget)
            .map_err(from_fs)?;
        Ok(PrivateCopy::new(
            snapshot.path().to_path_buf(),
            sqlite_version(&snapshot.identity()),
            snapshot.taken(),
            Box::new(snapshot),
        ))
    }
}

/// Whether the Lab format's allowlist (lab-fs's default list and the Lab's
/// patterns, [`crate::Format::Lab`]) serves `name`: lab-fs's name rules
/// (no `..`, dot segment, absolute path, NUL or backslash) and pattern
/// match, with no I/O. For a bundle's `media.json`, whose names are
/// applied only to files the Lab serves.
pub(crate) fn lab_serves(name: &str) -> bool {
    lab_fs::Allowlist::default()
        .plus(crate::Format::Lab.artifact_patterns())
        .is_ok_and(|list| list.check(name).is_ok())
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::storage::{RangeReader, list_all};

    struct Scratch {
        _tmp: tempfile::TempDir,
        /// Beside the root: what a link out points at.
        outside: std::path::PathBuf,
        root: std::path::PathBuf,
    }

    fn scratch() -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let root = base.join("run");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(base.join("canary"), b"canary").unwrap();
        Scratch {
            _tmp: tmp,
            outside: base.join("canary"),
            root,
        }
    }

    /// What reading `name` whole gives: its bytes, or the error's kind.
    fn check(storage: &dyn Storage, name: &str) -> Result<Vec<u8>, String> {
        let read = |name: &str| -> Result<Vec<u8>, StorageError> {
            let stat = storage.stat(name)?;
            let bytes = storage.read_range(name, 0, 1 << 20, Some(&stat.version))?;
            assert_eq!(bytes.len() as u64, stat.len);
            Ok(bytes)
        };
        read(name).map_err(|e| match e {
            StorageError::NotFound => "not found".to_owned(),
            StorageError::Escape => "escape".to_owned(),
            StorageError::NotAFile => "not a file".to_owned(),
            StorageError::InvalidName(_) => "invalid".to_owned(),
            other => other.to_string(),
        })
    }

    #[test]
    fn every_read_stays_beneath_the_root_and_takes_regular_files_only() {
        let s = scratch();
        std::fs::write(s.root.join("m.jsonl"), b"{}\n").unwrap();
        std::fs::create_dir(s.root.join("sub")).unwrap();
        std::fs::write(s.root.join("sub/inner"), b"in").unwrap();
        std::os::unix::fs::symlink(&s.outside, s.root.join("out")).unwrap();
        std::os::unix::fs::symlink("../canary", s.root.join("dotdot")).unwrap();
        std::os::unix::fs::symlink(s.outside.parent().unwrap(), s.root.join("dirout")).unwrap();
        std::os::unix::fs::symlink("m.jsonl", s.root.join("inside-link")).unwrap();
        lab_fs::fuzz::make_fifo(&s.root.join("fifo")).unwrap();
        std::fs::create_dir(s.root.join("job")).unwrap();
        std::fs::hard_link(&s.outside, s.root.join("job/twice")).unwrap();
        std::fs::write(s.root.join("job/once"), b"1").unwrap();
        let root = RunRoot::open_ambient(&s.root).unwrap();
        let storage = LocalStorage::new(&root);
        let table: &[(&str, Result<&[u8], &str>)] = &[
            ("m.jsonl", Ok(b"{}\n")),
            ("sub/inner", Ok(b"in")),
            ("job/once", Ok(b"1")),
            ("missing", Err("not found")),
            ("out", Err("escape")),
            ("dotdot", Err("escape")),
            ("dirout/canary", Err("escape")),
            // A final link is never followed, even one that stays inside.
            ("inside-link", Err("escape")),
            ("fifo", Err("not a file")),
            ("sub", Err("not a file")),
            ("job/twice", Err("not a file")),
            ("../canary", Err("invalid")),
            ("/etc/passwd", Err("invalid")),
            ("sub/../m.jsonl", Err("invalid")),
            ("", Err("invalid")),
        ];
        for (name, expected) in table {
            let got = check(&storage, name);
            let expected = expected.map(<[u8]>::to_vec).map_err(str::to_owned);
            assert_eq!(got, expected, "{name}");
        }
        assert!(matches!(
            storage.list("dirout", None),
            Err(StorageError::Escape)
        ));
        let top: Vec<(String, EntryKind)> = list_all(&storage, "")
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        assert!(top.contains(&("out".to_owned(), EntryKind::Other)));
        assert!(top.contains(&("fifo".to_owned(), EntryKind::Other)));
        assert!(top.contains(&("sub".to_owned(), EntryKind::Dir)));
        assert_eq!(std::fs::read(&s.outside).unwrap(), b"canary");
    }

    #[test]
    fn a_grown_file_keeps_its_version_and_a_replaced_one_does_not() {
        let s = scratch();
        let path = s.root.join("events");
        std::fs::write(&path, b"abc").unwrap();
        let root = RunRoot::open_ambient(&s.root).unwrap();
        let storage = LocalStorage::new(&root);
        let first = storage.stat("events").unwrap();
        assert_eq!(first.len, 3);
        std::fs::write(&path, b"abcdef").unwrap();
        let grown = storage.stat("events").unwrap();
        assert_eq!((grown.len, &grown.version), (6, &first.version));
        assert_eq!(
            storage
                .read_range("events", 2, 100, Some(&first.version))
                .unwrap(),
            b"cdef"
        );
        assert!(
            storage
                .read_range("events", 6, 100, Some(&first.version))
                .unwrap()
                .is_empty()
        );
        std::fs::write(s.root.join("new"), b"xyz").unwrap();
        std::fs::rename(s.root.join("new"), &path).unwrap();
        assert!(matches!(
            storage.read_range("events", 0, 3, Some(&first.version)),
            Err(StorageError::Changed)
        ));
        let mut reader = RangeReader::new(&storage, "events", Some(first.version), 0, 6);
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(matches!(
            StorageError::from_read(&err),
            Some(StorageError::Changed)
        ));
    }

    #[test]
    fn sqlite_copies_are_private_and_versioned_by_the_database_and_its_wal() {
        let s = scratch();
        std::fs::write(s.root.join("mlflow.db"), b"not really").unwrap();
        let root = RunRoot::open_ambient(&s.root).unwrap();
        let storage = LocalStorage::new(&root);
        let limits = CopyLimits {
            max_bytes: 1 << 20,
            budget: 1 << 30,
        };
        let before = storage.private_copy_version("mlflow.db", 1 << 20).unwrap();
        let copy = storage.copy_to_private_file("mlflow.db", limits).unwrap();
        assert_eq!(copy.version(), &before);
        assert!(!copy.path().starts_with(&s.root));
        assert_eq!(std::fs::read(copy.path()).unwrap(), b"not really");
        let private = copy.path().parent().unwrap().to_path_buf();
        std::fs::write(s.root.join("mlflow.db-wal"), b"w").unwrap();
        assert_ne!(
            storage.private_copy_version("mlflow.db", 1 << 20).unwrap(),
            before
        );
        drop(copy);
        assert!(!private.exists());
        // A FIFO at a side file's name: refused, naming it.
        lab_fs::fuzz::make_fifo(&s.root.join("mlflow.db-shm")).unwrap();
        let err = storage
            .copy_to_private_file("mlflow.db", limits)
            .unwrap_err();
        assert!(matches!(err, StorageError::Refused { .. }), "{err}");
        assert_eq!(err.to_string(), "mlflow.db-shm: not a regular file");
    }
}
