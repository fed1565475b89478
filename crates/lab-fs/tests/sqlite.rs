//! SQLite stores are read only from a private snapshot (SPEC §6): the
//! database and each side file are checked beneath the root's handle, a
//! FIFO, link, hard link, directory or oversize file at any of the four
//! names is refused without blocking, and nothing is created or written in
//! the run root. The snapshots alive at once hold at most a budget of
//! bytes together. Every link planted here points at a canary inside the
//! test's own temp dir, and the canary is checked afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab_fs::{Error, RunRoot, SqliteRefusal};

const DB: &str = "mlflow.db";
const CANARY: &[u8] = b"canary: must never change";
/// The cap used here: the store's own files are smaller, an oversize one
/// larger.
const MAX: u64 = 1024;
/// The snapshot space used where the budget is not what is tested: room
/// for every snapshot these tests hold at once.
const SPACE: u64 = 1 << 30;

/// A temp dir holding a run root `run/` with a small `mlflow.db` and a
/// canary file beside the root.
struct Store {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
}

fn store() -> Store {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("run");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join(DB), vec![7u8; 100]).unwrap();
    std::fs::write(base.join("canary"), CANARY).unwrap();
    Store {
        _tmp: tmp,
        base,
        root,
    }
}

/// What is planted at a name.
#[derive(Clone, Copy, Debug)]
enum Plant {
    Fifo,
    /// A symbolic link to the canary.
    Link,
    /// A second name of the canary.
    HardLink,
    Dir,
    Oversize,
}

fn plant(store: &Store, name: &str, what: Plant) {
    let at = store.root.join(name);
    let _ = std::fs::remove_file(&at);
    match what {
        Plant::Fifo => lab_fs::fuzz::make_fifo(&at).unwrap(),
        Plant::Link => symlink(store.base.join("canary"), &at).unwrap(),
        Plant::HardLink => std::fs::hard_link(store.base.join("canary"), &at).unwrap(),
        Plant::Dir => std::fs::create_dir(&at).unwrap(),
        Plant::Oversize => std::fs::write(&at, vec![1u8; MAX as usize + 1]).unwrap(),
    }
}

/// Every entry of `dir`, without following links: name, kind, size,
/// mode, links, inode and modification time.
fn listing(dir: &Path) -> String {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            format!(
                "{:?} {:?} {} {:o} {} {} {}.{}",
                e.file_name(),
                m.file_type(),
                m.len(),
                m.mode(),
                m.nlink(),
                m.ino(),
                m.mtime(),
                m.mtime_nsec()
            )
        })
        .collect();
    out.sort();
    out.join("\n")
}

/// Runs `read` on a thread and fails if it has not answered in 5 s: an
/// assertion that it never blocks, not a benchmark.
fn within_5s<T: Send + 'static>(read: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the read blocked (a FIFO opened without O_NONBLOCK?)")
}

/// Plants `what` at `name` and expects both the identity check and the
/// snapshot to refuse it, naming `name`, within 5 s, with the root and the
/// canary untouched.
fn check(name: &str, what: Plant, expected: SqliteRefusal) {
    let store = store();
    plant(&store, name, what);
    let before = listing(&store.root);
    let root = RunRoot::open_ambient(&store.root).unwrap();
    let (identity, snapshot) = within_5s(move || {
        let identity = root.sqlite_identity(DB, MAX).map(|_| ());
        let snapshot = root.snapshot_sqlite(DB, MAX, SPACE).map(|_| ());
        (identity, snapshot)
    });
    for got in [identity, snapshot] {
        match &got {
            Err(e @ Error::Sqlite { file, refusal }) if file == name && *refusal == expected => {
                let message = e.to_string();
                assert!(message.starts_with(&format!("{name}: ")), "{message}");
            }
            other => panic!("{name} as {what:?}: expected {expected:?}, got {other:?}"),
        }
    }
    assert_eq!(listing(&store.root), before, "{name} as {what:?}");
    assert_eq!(std::fs::read(store.base.join("canary")).unwrap(), CANARY);
}

#[test]
fn anything_but_a_plain_small_file_at_any_of_the_four_names_is_refused_without_blocking() {
    let names = [DB, "mlflow.db-journal", "mlflow.db-wal", "mlflow.db-shm"];
    let table = [
        (Plant::Fifo, SqliteRefusal::NotRegular),
        (Plant::Link, SqliteRefusal::Link),
        (Plant::HardLink, SqliteRefusal::HardLinked),
        (Plant::Dir, SqliteRefusal::NotRegular),
        (Plant::Oversize, SqliteRefusal::TooLarge(MAX)),
    ];
    for name in names {
        for (what, expected) in table {
            check(name, what, expected);
        }
    }
}

#[test]
fn refusals_read_as_the_file_and_the_reason() {
    let table = [
        (
            SqliteRefusal::NotRegular,
            "mlflow.db-wal: not a regular file",
        ),
        (
            SqliteRefusal::Link,
            "mlflow.db-wal: a symbolic link, never followed",
        ),
        (
            SqliteRefusal::HardLinked,
            "mlflow.db-wal: more than one hard link",
        ),
        (
            SqliteRefusal::TooLarge(5),
            "mlflow.db-wal: larger than the cap of 5 bytes",
        ),
        (
            SqliteRefusal::SpaceInUse(2 << 30),
            "mlflow.db-wal: the Lab's SQLite snapshot space (2 GiB) is in use by other stores; \
             read again later",
        ),
        (
            SqliteRefusal::LargerThanSpace(300 << 20),
            "mlflow.db-wal: with its -wal, larger than the Lab's SQLite snapshot space (300 MiB)",
        ),
    ];
    for (refusal, expected) in table {
        let e = Error::Sqlite {
            file: "mlflow.db-wal".into(),
            refusal,
        };
        assert_eq!(e.to_string(), expected);
    }
}

#[test]
fn a_database_is_one_plain_name_directly_in_the_root() {
    let store = store();
    let root = RunRoot::open_ambient(&store.root).unwrap();
    for name in [
        "",
        "../run/mlflow.db",
        "sub/mlflow.db",
        ".mlflow.db",
        "a\0b",
    ] {
        assert!(
            matches!(
                root.snapshot_sqlite(name, MAX, SPACE),
                Err(Error::InvalidName(_))
            ),
            "{name:?}"
        );
    }
    assert!(matches!(
        root.snapshot_sqlite("absent.db", MAX, SPACE),
        Err(Error::NotFound)
    ));
}

#[test]
fn a_snapshot_is_a_private_copy_of_the_database_and_its_wal_and_nothing_else() {
    let store = store();
    std::fs::write(store.root.join("mlflow.db-wal"), b"the wal").unwrap();
    std::fs::write(store.root.join("mlflow.db-shm"), b"the shm").unwrap();
    std::fs::write(store.root.join("mlflow.db-journal"), b"").unwrap();
    let before = listing(&store.root);
    let root = RunRoot::open_ambient(&store.root).unwrap();
    let snapshot = root.snapshot_sqlite(DB, MAX, SPACE).unwrap();

    let private = snapshot.path().parent().unwrap().to_path_buf();
    assert!(!private.starts_with(&store.base), "{}", private.display());
    let mode = std::fs::metadata(&private).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    assert_eq!(std::fs::read(snapshot.path()).unwrap(), vec![7u8; 100]);
    assert_eq!(
        std::fs::read(private.join("mlflow.db-wal")).unwrap(),
        b"the wal"
    );
    let mut copied: Vec<String> = std::fs::read_dir(&private)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    copied.sort();
    assert_eq!(copied, ["mlflow.db", "mlflow.db-wal"]);
    for name in &copied {
        let meta = std::fs::symlink_metadata(private.join(name)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o077, 0, "{name}");
    }
    // The identity is the sources', as a look without copying sees them.
    assert_eq!(snapshot.identity(), root.sqlite_identity(DB, MAX).unwrap());
    assert_eq!(snapshot.identity().db.len, 100);
    assert_eq!(snapshot.identity().wal.map(|w| w.len), Some(7));
    assert_eq!(listing(&store.root), before, "nothing created in the root");

    drop(snapshot);
    assert!(!private.exists(), "the private copy goes with the snapshot");
}

#[test]
fn the_identity_changes_when_the_database_or_its_wal_changes_and_only_then() {
    let store = store();
    let root = RunRoot::open_ambient(&store.root).unwrap();
    let first = root.sqlite_identity(DB, MAX).unwrap();
    assert_eq!(first.wal, None);
    assert_eq!(root.sqlite_identity(DB, MAX).unwrap(), first);
    // A -shm or -journal is checked, not part of the identity.
    std::fs::write(store.root.join("mlflow.db-shm"), b"shm").unwrap();
    assert_eq!(root.sqlite_identity(DB, MAX).unwrap(), first);
    std::fs::write(store.root.join("mlflow.db-wal"), b"frames").unwrap();
    let with_wal = root.sqlite_identity(DB, MAX).unwrap();
    assert_ne!(with_wal, first);
    std::fs::write(store.root.join("mlflow.db-wal"), b"more frames").unwrap();
    assert_ne!(root.sqlite_identity(DB, MAX).unwrap(), with_wal);
    std::fs::write(store.root.join(DB), vec![8u8; 200]).unwrap();
    assert_ne!(root.sqlite_identity(DB, MAX).unwrap().db, first.db);
}

/// One step of [`the_budget_refuses_a_snapshot_past_it_and_admits_it_again_once_another_is_dropped`]:
/// take a snapshot of store `i` (kept), or drop the one of store `i`.
#[derive(Clone, Copy, Debug)]
enum Step {
    Take(usize),
    Drop(usize),
}

/// What a step gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Taken,
    InUse,
    LargerThanSpace,
    Dropped,
}

#[test]
fn the_budget_refuses_a_snapshot_past_it_and_admits_it_again_once_another_is_dropped() {
    // Stores of 1 MiB (the last one 1 MiB and a 2 MiB -wal) under a
    // budget of 2.5 MiB: two fit, a third does not, whatever the other
    // tests of this binary hold meanwhile (a few KiB).
    const MIB: u64 = 1 << 20;
    const BUDGET: u64 = 5 * MIB / 2;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let roots: Vec<RunRoot> = (0..4)
        .map(|i| {
            let dir = base.join(format!("store-{i}"));
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join(DB), vec![i as u8; MIB as usize]).unwrap();
            if i == 3 {
                std::fs::write(dir.join("mlflow.db-wal"), vec![3u8; 2 * MIB as usize]).unwrap();
            }
            RunRoot::open_ambient(&dir).unwrap()
        })
        .collect();
    let table = [
        (Step::Take(0), Outcome::Taken),
        (Step::Take(1), Outcome::Taken),
        (Step::Take(2), Outcome::InUse),
        (Step::Drop(0), Outcome::Dropped),
        (Step::Take(2), Outcome::Taken),
        (Step::Take(0), Outcome::InUse),
        (Step::Drop(1), Outcome::Dropped),
        (Step::Drop(2), Outcome::Dropped),
        (Step::Take(3), Outcome::LargerThanSpace),
        (Step::Take(0), Outcome::Taken),
    ];
    let mut held: Vec<Option<lab_fs::SqliteSnapshot>> = (0..4).map(|_| None).collect();
    for (n, (step, expected)) in table.into_iter().enumerate() {
        let got = match step {
            Step::Drop(i) => {
                let snapshot = held[i].take().unwrap();
                let private = snapshot.path().parent().unwrap().to_path_buf();
                drop(snapshot);
                assert!(!private.exists(), "step {n}");
                Outcome::Dropped
            }
            Step::Take(i) => match roots[i].snapshot_sqlite(DB, 4 * MIB, BUDGET) {
                Ok(snapshot) => {
                    assert_eq!(snapshot.bytes(), MIB, "step {n}");
                    held[i] = Some(snapshot);
                    Outcome::Taken
                }
                Err(e @ Error::Sqlite { .. }) => {
                    let text = e.to_string();
                    match e {
                        Error::Sqlite {
                            refusal: SqliteRefusal::SpaceInUse(b),
                            ..
                        } if b == BUDGET => {
                            assert_eq!(
                                text,
                                "mlflow.db: the Lab's SQLite snapshot space (2560 KiB) is in use \
                                 by other stores; read again later"
                            );
                            Outcome::InUse
                        }
                        Error::Sqlite {
                            refusal: SqliteRefusal::LargerThanSpace(b),
                            ..
                        } if b == BUDGET => Outcome::LargerThanSpace,
                        other => panic!("step {n}: {other:?}"),
                    }
                }
                Err(other) => panic!("step {n}: {other:?}"),
            },
        };
        assert_eq!(got, expected, "step {n}: {step:?}");
    }
    // A refusal left no directory behind: only the held snapshot is there.
    let private = held[0].as_ref().unwrap().path().parent().unwrap();
    let place = private.parent().unwrap();
    let ours = format!("lab-sqlite-{}-", std::process::id());
    assert!(
        private
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&ours),
        "{}",
        private.display()
    );
    assert_eq!(place, lab_fs::snapshot_dir());
    assert!(lab_fs::snapshot_bytes_in_use() >= MIB);
}
