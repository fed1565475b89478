//! SQLite stores read through a private snapshot (SPEC §6).
//!
//! SQLite opens its database by path, and opens the `-journal`, `-wal` and
//! `-shm` files beside it by name: given a path inside a run root it would
//! follow a link planted there, block on a FIFO, or create files in the
//! root. So no path inside a root is ever handed to it. Instead
//! [`RunRoot::snapshot_sqlite`] checks the database and its side files
//! beneath the root's handle, copies the database (and its `-wal`, if any)
//! through the handles it checked into a 0700 directory the Lab owns, and
//! hands out the path of that copy.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cap_std::fs::{Dir, MetadataExt as _, OpenOptions, OpenOptionsExt as _};

use crate::{Error, RunRoot};

/// The files SQLite opens beside a database `X`, by suffix: `X-journal`,
/// `X-wal`, `X-shm`. Each is checked; only `-wal` is copied.
pub const SQLITE_SIDE_FILES: [&str; 3] = ["-journal", "-wal", "-shm"];

/// How many times a snapshot is taken again when its sources changed while
/// they were copied; after that the last copy is kept (its identity is the
/// one from before the copy, so the next look copies again).
const COPY_ATTEMPTS: usize = 3;

/// Why a database file or one of its side files is not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqliteRefusal {
    /// It is a symbolic link (never followed).
    Link,
    /// It is a FIFO, socket, device or directory.
    NotRegular,
    /// It is a regular file with more than one hard link (it may be a file
    /// outside the root under a second name).
    HardLinked,
    /// It is larger than the cap, in bytes (or grew past it while copied).
    TooLarge(u64),
}

impl std::fmt::Display for SqliteRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqliteRefusal::Link => f.write_str("a symbolic link, never followed"),
            SqliteRefusal::NotRegular => f.write_str("not a regular file"),
            SqliteRefusal::HardLinked => f.write_str("more than one hard link"),
            SqliteRefusal::TooLarge(max) => write!(f, "larger than the cap of {max} bytes"),
        }
    }
}

/// One source file as it was when copied: which file, its length and
/// modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    /// Device of the inode.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Length in bytes.
    pub len: u64,
    /// Modification time.
    pub modified: SystemTime,
}

/// The sources of a snapshot: the database and its `-wal`, when it has
/// one. Equal identities mean there is nothing new to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteIdentity {
    /// The database file.
    pub db: FileIdentity,
    /// Its write-ahead log, when present.
    pub wal: Option<FileIdentity>,
}

/// A private copy of a database (and its `-wal`) in a 0700 directory the
/// Lab owns, removed when this is dropped. The copy is the caller's to
/// open however it likes (read-write included: writing into it never
/// reaches the run root).
#[derive(Debug)]
pub struct SqliteSnapshot {
    _dir: tempfile::TempDir,
    path: PathBuf,
    identity: SqliteIdentity,
}

impl SqliteSnapshot {
    /// The path of the private copy of the database, to hand to SQLite; its
    /// `-wal`, if the source had one, lies beside it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was copied, as it was just before the copy.
    pub fn identity(&self) -> SqliteIdentity {
        self.identity
    }
}

/// The name of a database: one segment directly in the root.
fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
        || name.len() > crate::MAX_NAME_LEN
    {
        return Err(Error::InvalidName(
            "a database is one file directly in the root",
        ));
    }
    Ok(())
}

fn refused(file: &str, refusal: SqliteRefusal) -> Error {
    Error::Sqlite {
        file: file.to_owned(),
        refusal,
    }
}

/// The checks every file of a store passes, from its `lstat` or `fstat`.
fn verdict(
    file: &str,
    link: bool,
    regular: bool,
    nlink: u64,
    len: u64,
    max_bytes: u64,
) -> Result<(), Error> {
    if link {
        Err(refused(file, SqliteRefusal::Link))
    } else if !regular {
        Err(refused(file, SqliteRefusal::NotRegular))
    } else if nlink != 1 {
        Err(refused(file, SqliteRefusal::HardLinked))
    } else if len > max_bytes {
        Err(refused(file, SqliteRefusal::TooLarge(max_bytes)))
    } else {
        Ok(())
    }
}

/// The identity of an opened file after the checks, from `fstat`.
fn opened_identity(
    file_name: &str,
    file: &std::fs::File,
    max_bytes: u64,
) -> Result<FileIdentity, Error> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = file.metadata().map_err(Error::Io)?;
    verdict(
        file_name,
        false,
        meta.is_file(),
        meta.nlink(),
        meta.len(),
        max_bytes,
    )?;
    Ok(FileIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        modified: meta.modified().map_err(Error::Io)?,
    })
}

impl RunRoot {
    /// Checks `file` (one segment) by `lstat` beneath the handle — nothing
    /// is opened, so a FIFO cannot block — and returns its identity, or
    /// `None` when there is no such file.
    fn look_at(&self, file: &str, max_bytes: u64) -> Result<Option<FileIdentity>, Error> {
        let meta = match self.dir.symlink_metadata(file) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::from_io(e)),
        };
        verdict(
            file,
            meta.file_type().is_symlink(),
            meta.is_file(),
            meta.nlink(),
            meta.len(),
            max_bytes,
        )?;
        Ok(Some(FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            modified: meta.modified().map_err(Error::from_io)?.into_std(),
        }))
    }

    /// Opens `file` beneath the handle: `O_NONBLOCK` (a FIFO swapped in
    /// cannot block), `O_NOFOLLOW` (a link swapped in is refused), then the
    /// same checks on the opened file. `None` when there is no such file.
    fn open_store_file(
        &self,
        file: &str,
        max_bytes: u64,
    ) -> Result<Option<(std::fs::File, FileIdentity)>, Error> {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW);
        let opened = match self.dir.open_with(file, &options) {
            Ok(opened) => opened.into_std(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(refused(file, SqliteRefusal::Link));
            }
            Err(e) => return Err(Error::from_io(e)),
        };
        let identity = opened_identity(file, &opened, max_bytes)?;
        Ok(Some((opened, identity)))
    }

    /// What [`RunRoot::snapshot_sqlite`] would copy now, without copying:
    /// the database `name` (one segment directly in the root) and each of
    /// its side files ([`SQLITE_SIDE_FILES`]) are checked by `lstat`
    /// beneath the handle — a regular file with one link, at most
    /// `max_bytes` — and the identities of the database and its `-wal` are
    /// returned. Nothing is opened. A caller holding a snapshot with this
    /// identity has nothing new to copy.
    pub fn sqlite_identity(&self, name: &str, max_bytes: u64) -> Result<SqliteIdentity, Error> {
        check_name(name)?;
        let db = self.look_at(name, max_bytes)?.ok_or(Error::NotFound)?;
        let mut wal = None;
        for suffix in SQLITE_SIDE_FILES {
            let found = self.look_at(&format!("{name}{suffix}"), max_bytes)?;
            if suffix == "-wal" {
                wal = found;
            }
        }
        Ok(SqliteIdentity { db, wal })
    }

    /// A private copy of the SQLite database `name` (one segment directly
    /// in the root) for SQLite to open: no path inside the root is ever
    /// handed to SQLite.
    ///
    /// The database and its side files pass [`RunRoot::sqlite_identity`]'s
    /// checks; then the database and its `-wal` (if any) are opened beneath
    /// the handle (`O_NONBLOCK | O_NOFOLLOW`, checked again on the open
    /// file) and copied, through those handles and never reopened by name,
    /// at most `max_bytes` each, into a fresh 0700 directory under the
    /// system's temporary directory (files created exclusively, 0600). A
    /// link, FIFO, directory, hard link or oversize file at any of the four
    /// names is [`Error::Sqlite`], naming the file. Nothing is ever created
    /// or written in the root.
    ///
    /// This creates the private directory with ambient authority (it lies
    /// outside every root, and belongs to the Lab).
    pub fn snapshot_sqlite(&self, name: &str, max_bytes: u64) -> Result<SqliteSnapshot, Error> {
        let wal_name = format!("{name}-wal");
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.sqlite_identity(name, max_bytes)?;
            let (db, db_before) = self
                .open_store_file(name, max_bytes)?
                .ok_or(Error::NotFound)?;
            let wal = self.open_store_file(&wal_name, max_bytes)?;
            let dir = tempfile::Builder::new()
                .prefix("lab-sqlite-")
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .tempdir()
                .map_err(Error::Io)?;
            let private = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority())
                .map_err(Error::Io)?;
            copy_bounded(&db, &private, name, max_bytes)?;
            if let Some((wal, _)) = &wal {
                copy_bounded(wal, &private, &wal_name, max_bytes)?;
            }
            let identity = SqliteIdentity {
                db: db_before,
                wal: wal.as_ref().map(|(_, identity)| *identity),
            };
            // A writer may have changed the store while it was copied (a
            // checkpoint, mostly; a WAL only appended to is harmless, its
            // torn tail fails SQLite's frame checksums). Copy again, a few
            // times.
            let after = SqliteIdentity {
                db: opened_identity(name, &db, max_bytes)?,
                wal: match &wal {
                    Some((wal, _)) => Some(opened_identity(&wal_name, wal, max_bytes)?),
                    None => None,
                },
            };
            if after == identity || attempt >= COPY_ATTEMPTS {
                return Ok(SqliteSnapshot {
                    path: dir.path().join(name),
                    _dir: dir,
                    identity,
                });
            }
        }
    }
}

/// Copies at most `max_bytes` of `source` (from its start, through the
/// handle) into a new file `name` beneath `private`; more is
/// [`SqliteRefusal::TooLarge`] (the file grew past the cap since it was
/// checked).
fn copy_bounded(
    source: &std::fs::File,
    private: &Dir,
    name: &str,
    max_bytes: u64,
) -> Result<(), Error> {
    use std::io::{Read as _, Seek as _};
    let mut source = source;
    source.rewind().map_err(Error::Io)?;
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW);
    let mut target = private.open_with(name, &options).map_err(Error::Io)?;
    let copied =
        io::copy(&mut source.take(max_bytes.saturating_add(1)), &mut target).map_err(Error::Io)?;
    if copied > max_bytes {
        return Err(refused(name, SqliteRefusal::TooLarge(max_bytes)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The open after the look is a defence of its own: what was swapped
    /// in between (a FIFO, a link, a second name, a directory, a larger
    /// file) is refused by the open and `fstat`, and the open never blocks.
    #[test]
    fn the_open_refuses_what_was_swapped_in_after_the_look_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let run = base.join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(base.join("canary"), b"canary").unwrap();
        #[allow(clippy::disallowed_methods)] // a test fixture, not a job
        let made = std::process::Command::new("mkfifo")
            .arg(run.join("fifo"))
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo must be available");
        std::os::unix::fs::symlink(base.join("canary"), run.join("link")).unwrap();
        std::fs::hard_link(base.join("canary"), run.join("second-name")).unwrap();
        std::fs::create_dir(run.join("dir")).unwrap();
        std::fs::write(run.join("large"), [0u8; 11]).unwrap();
        std::fs::write(run.join("plain"), [0u8; 10]).unwrap();
        let table = [
            ("fifo", Some(SqliteRefusal::NotRegular)),
            ("link", Some(SqliteRefusal::Link)),
            ("second-name", Some(SqliteRefusal::HardLinked)),
            ("dir", Some(SqliteRefusal::NotRegular)),
            ("large", Some(SqliteRefusal::TooLarge(10))),
            ("plain", None),
        ];
        let root = RunRoot::open_ambient(&run).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let got: Vec<_> = table
                .iter()
                .map(|(name, _)| match root.open_store_file(name, 10) {
                    Ok(Some(_)) => None,
                    Err(Error::Sqlite { refusal, .. }) => Some(refusal),
                    other => panic!("{name}: {other:?}"),
                })
                .collect();
            let _ = tx.send(got);
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("an open blocked");
        let expected: Vec<_> = table.iter().map(|(_, e)| *e).collect();
        assert_eq!(got, expected);
        assert_eq!(std::fs::read(base.join("canary")).unwrap(), b"canary");
    }
}
