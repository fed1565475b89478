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
//!
//! Where the copies go is one place per process ([`use_snapshot_dir`]: the
//! Lab's data dir, which lies outside every allowed root; the system's
//! temporary directory until it is set), each in a directory
//! `lab-sqlite-<pid>-<random>` that a later [`use_snapshot_dir`] removes
//! when its process is gone. The copies alive at once take at most a
//! budget of bytes together: a snapshot past it is refused, never waited
//! for.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use cap_std::fs::{Dir, MetadataExt as _, OpenOptions, OpenOptionsExt as _};
use rustix::fs::{Mode, OFlags};

use crate::{Error, RunRoot};

/// The files SQLite opens beside a database `X`, by suffix: `X-journal`,
/// `X-wal`, `X-shm`. Each is checked; only `-wal` is copied.
pub const SQLITE_SIDE_FILES: [&str; 3] = ["-journal", "-wal", "-shm"];

/// How many times a snapshot is taken again when its sources changed while
/// they were copied; after that the last copy is kept (its identity is the
/// one from before the copy, so the next look copies again).
const COPY_ATTEMPTS: usize = 3;

/// The start of each snapshot directory's name: `lab-sqlite-<pid>-<random>`.
const DIR_PREFIX: &str = "lab-sqlite-";

/// Where snapshots are made: [`use_snapshot_dir`]'s place, or the
/// system's temporary directory while none is set.
static PLACE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Bytes the live snapshots of this process hold, together.
static IN_USE: AtomicU64 = AtomicU64::new(0);

/// Makes `path` the place of every later snapshot of this process, as the
/// composition does once at start (the Lab: `DATA_DIR/snapshots`, outside
/// every allowed root, so no walk ever meets a snapshot). Until it is
/// called, snapshots go to the system's temporary directory.
///
/// `path` is created 0700 if absent (its parent must exist); an existing
/// one must be a directory of our own (owned by our effective uid; made
/// 0700 if it was not): a symbolic link or any other file there, or a
/// directory of another user, is refused and nothing is changed. Then
/// leftovers of Lab processes that are gone (killed while they held
/// snapshots) are removed: only directories named
/// `lab-sqlite-<pid>-<random>` whose `<pid>` is not alive (no `/proc/<pid>`;
/// nothing is removed where `/proc` is not mounted), opened beneath the
/// place's handle and emptied without following a link. A later call
/// moves later snapshots to its place; those taken before stay where they
/// are until dropped.
pub fn use_snapshot_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR => {
            return Err(io::Error::other(format!(
                "{}: not a directory (a symbolic link or another file); \
                 SQLite snapshots are made only in a directory of the Lab's own",
                path.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    let ours = rustix::process::geteuid().as_raw();
    if stat.st_uid != ours {
        return Err(io::Error::other(format!(
            "{}: owned by uid {}, not by the Lab's uid {ours}; \
             SQLite snapshots are made only in a directory of the Lab's own",
            path.display(),
            stat.st_uid
        )));
    }
    if stat.st_mode & 0o7777 != 0o700 {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))?;
    }
    sweep(&Dir::from_std_file(std::fs::File::from(fd)));
    *PLACE.lock().unwrap_or_else(PoisonError::into_inner) = Some(path.to_path_buf());
    Ok(())
}

/// Where the next snapshot is made: the place [`use_snapshot_dir`] set,
/// or the system's temporary directory.
pub fn snapshot_dir() -> PathBuf {
    PLACE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_else(std::env::temp_dir)
}

/// The bytes the live snapshots of this process hold, together (what each
/// snapshot's budget is measured against).
pub fn snapshot_bytes_in_use() -> u64 {
    IN_USE.load(Ordering::SeqCst)
}

/// The process whose snapshot directory `name` is, if `name` is one
/// (`lab-sqlite-<pid>-<random>`).
fn snapshot_dir_pid(name: &str) -> Option<u32> {
    let (pid, random) = name.strip_prefix(DIR_PREFIX)?.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || random.is_empty() {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` may be alive (`/proc/<pid>` is there; ours is).
fn alive(pid: u32) -> bool {
    pid == std::process::id() || std::fs::symlink_metadata(format!("/proc/{pid}")).is_ok()
}

/// Removes the snapshot directories of processes that are gone, beneath
/// `place`; best effort (what cannot be removed stays).
fn sweep(place: &Dir) {
    if std::fs::symlink_metadata("/proc/self").is_err() {
        // No /proc: no telling which process is gone.
        return;
    }
    let Ok(entries) = place.entries() else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(snapshot_dir_pid) else {
            continue;
        };
        // A link (or anything but a directory) is left alone.
        if entry.file_type().is_ok_and(|t| t.is_dir()) && !alive(pid) {
            // cap-std's removal opens each level beneath its parent's
            // handle without following a link, and removes links as links.
            let _ = place.remove_dir_all(&name);
        }
    }
}

/// Bytes of the process's snapshot space held by one snapshot, given back
/// when dropped.
#[derive(Debug)]
struct Space(u64);

impl Space {
    /// Takes `bytes` more, keeping the total at most `budget`; `false`
    /// (and nothing taken) when that would pass it.
    fn take(&mut self, bytes: u64, budget: u64) -> bool {
        let taken = IN_USE.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            used.checked_add(bytes).filter(|total| *total <= budget)
        });
        if taken.is_ok() {
            self.0 += bytes;
        }
        taken.is_ok()
    }

    /// Gives back what is held beyond `bytes`.
    fn keep(&mut self, bytes: u64) {
        let back = self.0.saturating_sub(bytes);
        IN_USE.fetch_sub(back, Ordering::SeqCst);
        self.0 -= back;
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        IN_USE.fetch_sub(self.0, Ordering::SeqCst);
    }
}

/// A number of bytes as people read it: `2 GiB`, `300 MiB`, `5 bytes`.
fn in_units(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

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
    /// Its copy would take the process's snapshot space past its budget,
    /// in bytes, as other snapshots hold the rest: read again later.
    SpaceInUse(u64),
    /// With its `-wal`, it is larger than the whole snapshot space, in
    /// bytes.
    LargerThanSpace(u64),
}

impl std::fmt::Display for SqliteRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqliteRefusal::Link => f.write_str("a symbolic link, never followed"),
            SqliteRefusal::NotRegular => f.write_str("not a regular file"),
            SqliteRefusal::HardLinked => f.write_str("more than one hard link"),
            SqliteRefusal::TooLarge(max) => write!(f, "larger than the cap of {max} bytes"),
            SqliteRefusal::SpaceInUse(budget) => write!(
                f,
                "the Lab's SQLite snapshot space ({}) is in use by other stores; read again later",
                in_units(*budget)
            ),
            SqliteRefusal::LargerThanSpace(budget) => write!(
                f,
                "with its -wal, larger than the Lab's SQLite snapshot space ({})",
                in_units(*budget)
            ),
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
/// Lab owns, removed when this is dropped, and its bytes given back to the
/// process's snapshot space. The copy is the caller's to open however it
/// likes (read-write included: writing into it never reaches the run
/// root).
#[derive(Debug)]
pub struct SqliteSnapshot {
    // Dropped in this order: the files, then their space.
    _dir: tempfile::TempDir,
    space: Space,
    path: PathBuf,
    identity: SqliteIdentity,
    taken: Instant,
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

    /// When the copy was begun.
    pub fn taken(&self) -> Instant {
        self.taken
    }

    /// The bytes it holds of the process's snapshot space: those copied.
    pub fn bytes(&self) -> u64 {
        self.space.0
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
    identity_of(&meta)
}

/// What `fstat` says of an open file now, unchecked: after a copy, to tell
/// whether the file changed meanwhile (a WAL the last writer removed has
/// no link left, and is still the file that was copied).
fn identity_of(meta: &std::fs::Metadata) -> Result<FileIdentity, Error> {
    use std::os::unix::fs::MetadataExt as _;
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
    /// at most `max_bytes` each, into a fresh 0700 directory
    /// `lab-sqlite-<pid>-<random>` in [`snapshot_dir`] (files created
    /// exclusively, 0600). A link, FIFO, directory, hard link or oversize
    /// file at any of the four names is [`Error::Sqlite`], naming the
    /// file. Nothing is ever created or written in the root.
    ///
    /// The bytes copied count against `budget`, shared by every snapshot
    /// this process holds: a copy that would pass it is refused before it
    /// is made ([`SqliteRefusal::SpaceInUse`], or
    /// [`SqliteRefusal::LargerThanSpace`] when the database and its `-wal`
    /// alone are larger), never waited for; the bytes are given back when
    /// the snapshot is dropped.
    ///
    /// This creates the private directory with ambient authority (it lies
    /// outside every root, and belongs to the Lab).
    pub fn snapshot_sqlite(
        &self,
        name: &str,
        max_bytes: u64,
        budget: u64,
    ) -> Result<SqliteSnapshot, Error> {
        let wal_name = format!("{name}-wal");
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.sqlite_identity(name, max_bytes)?;
            let taken = Instant::now();
            let (db, db_before) = self
                .open_store_file(name, max_bytes)?
                .ok_or(Error::NotFound)?;
            let wal = self.open_store_file(&wal_name, max_bytes)?;
            let identity = SqliteIdentity {
                db: db_before,
                wal: wal.as_ref().map(|(_, identity)| *identity),
            };
            let need = identity.db.len + identity.wal.map_or(0, |w| w.len);
            let mut space = Space(0);
            if need > budget {
                return Err(refused(name, SqliteRefusal::LargerThanSpace(budget)));
            }
            if !space.take(need, budget) {
                return Err(refused(name, SqliteRefusal::SpaceInUse(budget)));
            }
            let (dir, private) = private_dir()?;
            let mut copied = copy_bounded(&db, &private, name, max_bytes)?;
            if let Some((wal, _)) = &wal {
                copied += copy_bounded(wal, &private, &wal_name, max_bytes)?;
            }
            // A file that grew while copied takes what it took, if there
            // is room; one that shrank gives the rest back.
            if copied > space.0 && !space.take(copied - space.0, budget) {
                return Err(refused(name, SqliteRefusal::SpaceInUse(budget)));
            }
            space.keep(copied);
            // A writer may have changed the store while it was copied (a
            // checkpoint, mostly; a WAL only appended to is harmless, its
            // torn tail fails SQLite's frame checksums). Copy again, a few
            // times.
            let now = |file: &std::fs::File| identity_of(&file.metadata().map_err(Error::Io)?);
            let after = SqliteIdentity {
                db: now(&db)?,
                wal: match &wal {
                    Some((wal, _)) => Some(now(wal)?),
                    None => None,
                },
            };
            if after == identity || attempt >= COPY_ATTEMPTS {
                return Ok(SqliteSnapshot {
                    path: dir.path().join(name),
                    _dir: dir,
                    space,
                    identity,
                    taken,
                });
            }
        }
    }
}

/// A new 0700 directory `lab-sqlite-<pid>-<random>` in the snapshot
/// place (removed when the first is dropped), and a handle of it.
fn private_dir() -> Result<(tempfile::TempDir, Dir), Error> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
        .rand_bytes(8)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(snapshot_dir())
        .map_err(Error::Io)?;
    let private =
        Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).map_err(Error::Io)?;
    Ok((dir, private))
}

/// A private copy of bytes that come from elsewhere (an object store's
/// object), made as [`RunRoot::snapshot_sqlite`] makes its copies: a new
/// 0700 directory `lab-sqlite-<pid>-<random>` in the snapshot place, the
/// file `file_name` (one segment) created in it without following a link,
/// and `len` bytes of the process's snapshot space taken first (refused
/// when `len` passes `max_bytes` or the space's `budget`). `fill` writes
/// the bytes; more than `len` written is refused. Removed when dropped.
pub fn private_copy(
    file_name: &str,
    len: u64,
    max_bytes: u64,
    budget: u64,
    fill: impl FnOnce(&mut dyn std::io::Write) -> io::Result<()>,
) -> Result<SqliteSnapshot, Error> {
    if file_name.is_empty() || file_name.contains('/') || file_name.starts_with('.') {
        return Err(Error::InvalidName("a private copy's name is one segment"));
    }
    if len > max_bytes {
        return Err(refused(file_name, SqliteRefusal::TooLarge(max_bytes)));
    }
    if len > budget {
        return Err(refused(file_name, SqliteRefusal::LargerThanSpace(budget)));
    }
    let mut space = Space(0);
    if !space.take(len, budget) {
        return Err(refused(file_name, SqliteRefusal::SpaceInUse(budget)));
    }
    let taken = Instant::now();
    let (dir, private) = private_dir()?;
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC).bits() as i32);
    let file = private.open_with(file_name, &options).map_err(Error::Io)?;
    let mut bounded = Bounded {
        file: file.into_std(),
        left: len,
    };
    fill(&mut bounded).map_err(Error::Io)?;
    let written = len - bounded.left;
    space.keep(written);
    let identity = identity_of(&bounded.file.metadata().map_err(Error::Io)?)?;
    Ok(SqliteSnapshot {
        path: dir.path().join(file_name),
        _dir: dir,
        space,
        identity: SqliteIdentity {
            db: identity,
            wal: None,
        },
        taken,
    })
}

/// A file that takes at most `left` more bytes: more is an error.
struct Bounded {
    file: std::fs::File,
    left: u64,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::other("more bytes than the object's length"));
        }
        let n = self.file.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Copies at most `max_bytes` of `source` (from its start, through the
/// handle) into a new file `name` beneath `private`; more is
/// [`SqliteRefusal::TooLarge`] (the file grew past the cap since it was
/// checked). The bytes copied.
fn copy_bounded(
    source: &std::fs::File,
    private: &Dir,
    name: &str,
    max_bytes: u64,
) -> Result<u64, Error> {
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
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, symlink};

    use super::*;

    /// The tests that set the process's snapshot place take turns, and put
    /// it back.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn unset_place() {
        *PLACE.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A pid no process can have: above the largest `pid_max` Linux
    /// allows (2^22).
    fn dead_pid() -> u32 {
        let pid = (1 << 22) + 1;
        assert!(!alive(pid));
        pid
    }

    /// What is at a name in the place before the sweep.
    #[derive(Clone, Copy, Debug)]
    enum Left {
        /// A snapshot directory with its files, a link to the canary
        /// directory, and a directory inside holding a link to the canary.
        Snapshot,
        /// An empty directory.
        Dir,
        /// A symbolic link to the canary directory.
        Link,
        /// A plain file.
        File,
    }

    #[test]
    fn leftovers_of_a_dead_pid_are_swept_and_those_of_a_live_pid_are_kept() {
        let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let canary = base.join("canary");
        std::fs::create_dir(&canary).unwrap();
        std::fs::write(canary.join("file"), b"canary").unwrap();
        let place = base.join("snapshots");
        std::fs::create_dir(&place).unwrap();
        let (dead, live) = (dead_pid(), std::process::id());
        let table = [
            (format!("lab-sqlite-{dead}-a1b2c3d4"), Left::Snapshot, false),
            (format!("lab-sqlite-{dead}-emptydir"), Left::Dir, false),
            (format!("lab-sqlite-{live}-a1b2c3d4"), Left::Snapshot, true),
            (format!("lab-sqlite-{live}-emptydir"), Left::Dir, true),
            (format!("lab-sqlite-{dead}-linkdir0"), Left::Link, true),
            (format!("lab-sqlite-{dead}-plainfil"), Left::File, true),
            (format!("lab-sqlite-{dead}-"), Left::Dir, true),
            ("lab-sqlite-x1-a1b2c3d4".to_owned(), Left::Dir, true),
            (format!("lab-sqlite--{dead}"), Left::Dir, true),
            (format!("other-{dead}-a1b2c3d4"), Left::Dir, true),
        ];
        for (name, left, _) in &table {
            let at = place.join(name);
            match left {
                Left::Snapshot => {
                    std::fs::create_dir(&at).unwrap();
                    std::fs::write(at.join("mlflow.db"), b"db").unwrap();
                    std::fs::write(at.join("mlflow.db-wal"), b"wal").unwrap();
                    symlink(&canary, at.join("mlflow.db-shm")).unwrap();
                    std::fs::create_dir(at.join("inner")).unwrap();
                    symlink(canary.join("file"), at.join("inner/link")).unwrap();
                }
                Left::Dir => std::fs::create_dir(&at).unwrap(),
                Left::Link => symlink(&canary, &at).unwrap(),
                Left::File => std::fs::write(&at, b"file").unwrap(),
            }
        }
        use_snapshot_dir(&place).unwrap();
        unset_place();
        for (name, left, kept) in &table {
            assert_eq!(
                std::fs::symlink_metadata(place.join(name)).is_ok(),
                *kept,
                "{name} ({left:?})"
            );
        }
        // Nothing was followed out of the place.
        let listed: Vec<_> = std::fs::read_dir(&canary).unwrap().collect();
        assert_eq!(listed.len(), 1);
        assert_eq!(std::fs::read(canary.join("file")).unwrap(), b"canary");
    }

    /// What is at the place `use_snapshot_dir` is given.
    #[derive(Clone, Copy, Debug)]
    enum At {
        Nothing,
        /// A directory of ours, 0755.
        OpenDir,
        /// A symbolic link to a directory of ours.
        Link,
        File,
        /// A directory of another user (the test runs as root to make it).
        Foreign,
    }

    #[test]
    fn a_snapshot_lands_in_the_place_set_never_under_the_run_root_and_the_place_is_a_directory_of_our_own()
     {
        let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let run = base.join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("mlflow.db"), [7u8; 100]).unwrap();
        let canary = base.join("canary");
        std::fs::create_dir(&canary).unwrap();
        std::fs::set_permissions(&canary, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root_user = rustix::process::geteuid().is_root();
        let table = [
            (At::Nothing, true),
            (At::OpenDir, true),
            (At::Link, false),
            (At::File, false),
            (At::Foreign, false),
        ];
        for (i, (at, accepted)) in table.into_iter().enumerate() {
            if matches!(at, At::Foreign) && !root_user {
                continue;
            }
            let place = base.join(format!("place-{i}"));
            match at {
                At::Nothing => {}
                At::OpenDir => {
                    std::fs::create_dir(&place).unwrap();
                    std::fs::set_permissions(&place, std::fs::Permissions::from_mode(0o755))
                        .unwrap();
                }
                At::Link => symlink(&canary, &place).unwrap(),
                At::File => std::fs::write(&place, b"file").unwrap(),
                At::Foreign => {
                    std::fs::create_dir(&place).unwrap();
                    std::os::unix::fs::chown(&place, Some(65534), Some(65534)).unwrap();
                }
            }
            let got = use_snapshot_dir(&place);
            assert_eq!(got.is_ok(), accepted, "{at:?}: {got:?}");
            if !accepted {
                assert_eq!(snapshot_dir(), std::env::temp_dir(), "{at:?}");
                continue;
            }
            assert_eq!(snapshot_dir(), place, "{at:?}");
            let meta = std::fs::symlink_metadata(&place).unwrap();
            assert!(meta.is_dir(), "{at:?}");
            assert_eq!(meta.mode() & 0o7777, 0o700, "{at:?}");
            let root = RunRoot::open_ambient(&run).unwrap();
            let snapshot = root.snapshot_sqlite("mlflow.db", 1024, 1 << 20).unwrap();
            let private = snapshot.path().parent().unwrap().to_path_buf();
            unset_place();
            assert_eq!(private.parent(), Some(place.as_path()), "{at:?}");
            let name = private.file_name().unwrap().to_str().unwrap();
            assert_eq!(snapshot_dir_pid(name), Some(std::process::id()), "{name}");
            let under_root: Vec<_> = std::fs::read_dir(&run)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(under_root, ["mlflow.db"], "{at:?}");
            drop(snapshot);
            assert!(!private.exists(), "{at:?}");
        }
        // The directory behind the link was left as it was.
        let mode = std::fs::metadata(&canary).unwrap().mode();
        assert_eq!(mode & 0o7777, 0o755);
        assert_eq!(std::fs::read_dir(&canary).unwrap().count(), 0);
    }

    #[test]
    fn a_private_copy_of_outside_bytes_is_bounded_private_and_removed_when_dropped() {
        use std::os::unix::fs::PermissionsExt as _;
        let copy = private_copy("mlflow.db", 5, 100, u64::MAX, |w| w.write_all(b"hello")).unwrap();
        assert_eq!(std::fs::read(copy.path()).unwrap(), b"hello");
        let dir = copy.path().parent().unwrap().to_path_buf();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(copy);
        assert!(!dir.exists());
        // More than said, more than the cap, a name that is a path: refused.
        assert!(private_copy("a.db", 2, 100, u64::MAX, |w| w.write_all(b"abc")).is_err());
        assert!(matches!(
            private_copy("a.db", 200, 100, u64::MAX, |_| Ok(())),
            Err(Error::Sqlite {
                refusal: SqliteRefusal::TooLarge(100),
                ..
            })
        ));
        assert!(private_copy("../a.db", 1, 100, u64::MAX, |w| w.write_all(b"a")).is_err());
    }

    #[test]
    fn sizes_read_in_the_largest_whole_unit() {
        let table = [
            (2 << 30, "2 GiB"),
            (512 << 20, "512 MiB"),
            (1536 << 20, "1536 MiB"),
            (3 << 10, "3 KiB"),
            (1000, "1000 bytes"),
            (0, "0 bytes"),
        ];
        for (bytes, text) in table {
            assert_eq!(in_units(bytes), text);
        }
    }

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
        crate::fuzz::make_fifo(&run.join("fifo")).unwrap();
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
