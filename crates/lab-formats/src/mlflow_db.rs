//! MLflow's SQLite store (`mlflow.db`, the default since MLflow 3.7): the
//! tables `runs`, `params`, `tags`, `metrics` (and `experiments`), schema
//! versioned by Alembic. Each stored run is a run; the store's directory
//! is its root, and its artifacts are served from its `artifact_uri` only
//! where that lies inside the store's directory.
//!
//! SQLite is never handed a path inside a run root (it would open the
//! `-journal`, `-wal` and `-shm` files beside it by name, follow a link,
//! block on a FIFO, create files). The storage checks `mlflow.db` and its
//! side files (locally: beneath the root's handle) and copies the database
//! and its `-wal` into a private 0700 directory
//! ([`Storage::copy_to_private_file`]); SQLite opens only that copy (read-write, as it is ours: it replays the
//! copied WAL there). A reader keeps its snapshot and copies again only
//! when the database's or the `-wal`'s identity (inode, size, mtime)
//! changed, and not before [`Limits::sqlite_recopy_interval`] (5 s) since
//! the copy it reads: what it shows may be that many seconds stale, and a
//! store changed in a loop is copied at most once per interval. Readers of
//! the same store share an unchanged snapshot, or one younger than the
//! interval. The snapshots alive together hold at most
//! [`Limits::sqlite_snapshot_budget`] (2 GiB); a store past it is an error
//! of that store until there is room. A copy SQLite rejects (not a
//! database, not an MLflow store, corrupt) is dropped at once, so it holds
//! no space, and the store is not copied again until it changes (or the
//! interval passed). Each refresh is one read transaction, with `query_only`, defensive mode and
//! untrusted schema, triggers and views off (a hostile file's views and
//! triggers cannot call functions), and reads at most
//! [`ROWS_PER_REFRESH`] new metric rows (by rowid, so nothing is read
//! twice).

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use rusqlite::{Connection, OpenFlags, params};
use serde_json::Value;

use crate::series::{Point, SeriesSet};
use crate::storage::{CopyLimits, PrivateCopy, Storage, StorageError, Version};
use crate::{Limits, MAX_PARAMS, RunInfo};

/// The database's file name.
pub(crate) const DB_NAME: &str = "mlflow.db";
/// Most metric rows read per refresh; the rest come with the next ones.
const ROWS_PER_REFRESH: i64 = 500_000;
/// Most runs one store lists.
const MAX_RUNS: i64 = 20_000;
/// How long a read waits on a lock of the private copy (held by another
/// reader of the same snapshot, checkpointing its copied WAL).
const BUSY_MS: u64 = 2000;
/// Most stores whose rejected copy is remembered.
const MAX_REJECTED: usize = 1024;

/// A snapshot kept in this process, the store it is a copy of, and when a
/// reader last asked for it.
struct Shared {
    /// The store: its [`Storage::origin`] and database name ([`key`]).
    store: String,
    snapshot: Arc<PrivateCopy>,
    used: Instant,
}

/// The snapshots this process keeps: the one owner of every copy between
/// reads (readers hold a `Weak` and an `Arc` only while they read), so the
/// readers of the runs of one store share one copy of an unchanged store
/// (or a young one), and a copy nobody reads can always be let go: one
/// unused for [`IDLE_RELEASE`], one a newer copy of its store replaces,
/// and — when a copy is refused for space — every one no read holds now.
/// So no set of stores can keep the snapshot space from the others, and a
/// store's own old copy never counts against its new one.
static SHARED: Mutex<Vec<Shared>> = Mutex::new(Vec::new());

/// How long a snapshot no reader asked for is kept.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Lets go of every kept snapshot (their directories are removed as the
/// last reads holding them end): for a process about to exit.
pub fn release_snapshots() {
    SHARED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}

/// Whether only the keeper holds `s` (no read has it now).
fn unread(s: &Shared) -> bool {
    Arc::strong_count(&s.snapshot) == 1
}

/// A copy of a store that SQLite rejected, and why.
struct Rejected {
    store: String,
    /// The store as it was copied.
    identity: Version,
    /// When the copy was taken: the rejection stands whatever the store
    /// became for the re-copy interval after it, then for as long as the
    /// store is unchanged.
    taken: Instant,
    error: String,
}

/// Stores whose last copy SQLite rejected (not a database, not an MLflow
/// store, corrupt), so that a rejected store is not copied again at every
/// look.
static REJECTED: Mutex<Vec<Rejected>> = Mutex::new(Vec::new());

/// The store a database `name` in `storage` is: its directory's origin
/// and the name (a directory may hold several, as Trackio's projects).
fn key(storage: &dyn Storage, name: &str) -> String {
    if name == DB_NAME {
        storage.origin().to_owned()
    } else {
        format!("{}/{name}", storage.origin())
    }
}

/// An error of the storage about the database `name`, naming the file.
fn describe(name: &str, e: StorageError) -> String {
    match e {
        // It names the file already (`mlflow.db-wal: not a regular file`).
        StorageError::Refused { .. } | StorageError::SpaceInUse { .. } => e.to_string(),
        other => format!("{name}: {other}"),
    }
}

/// A snapshot of the store in `storage` as it is now: `held` when nothing
/// changed since it was taken, else one another reader holds of the same
/// state, else `held` or another reader's of the same store when it was
/// taken less than [`Limits::sqlite_recopy_interval`] ago (a few seconds
/// stale), else a fresh copy (within [`Limits::sqlite_snapshot_budget`]).
/// A store whose copy SQLite rejected is that error again, without a
/// copy, while it is unchanged or the rejection is younger than the
/// interval.
pub(crate) fn snapshot_of(
    storage: &dyn Storage,
    name: &str,
    limits: &Limits,
    held: Option<Arc<PrivateCopy>>,
) -> Result<Arc<PrivateCopy>, String> {
    let max_bytes = limits.sqlite_max_bytes;
    let now = storage
        .private_copy_version(name, max_bytes)
        .map_err(|e| describe(name, e))?;
    let store = key(storage, name);
    let store = store.as_str();
    if let Some(held) = held.as_ref().filter(|h| *h.version() == now) {
        touch_in(
            &mut SHARED.lock().unwrap_or_else(PoisonError::into_inner),
            store,
            held,
        );
        return Ok(Arc::clone(held));
    }
    {
        let mut rejected = REJECTED.lock().unwrap_or_else(PoisonError::into_inner);
        // A rejection of this store that no longer stands goes.
        rejected.retain(|r| {
            r.store != store
                || r.identity == now
                || r.taken.elapsed() < limits.sqlite_recopy_interval
        });
        if let Some(r) = rejected.iter().find(|r| r.store == store) {
            return Err(r.error.clone());
        }
    }
    let young = |s: &PrivateCopy| s.taken().elapsed() < limits.sqlite_recopy_interval;
    {
        let mut list = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|s| !(unread(s) && s.used.elapsed() >= IDLE_RELEASE));
        // The same state, else (held young) the held one, else a young
        // one of the same store.
        let same = list.iter().position(|s| *s.snapshot.version() == now);
        if same.is_none()
            && let Some(held) = held.as_ref().filter(|h| young(h))
        {
            touch_in(&mut list, store, held);
            return Ok(Arc::clone(held));
        }
        let found = same.or_else(|| {
            list.iter()
                .enumerate()
                .filter(|(_, s)| s.store == store && young(&s.snapshot))
                .max_by_key(|(_, s)| s.snapshot.taken())
                .map(|(i, _)| i)
        });
        if let Some(i) = found {
            list[i].used = Instant::now();
            return Ok(Arc::clone(&list[i].snapshot));
        }
        // A new copy is taken: this store's older ones that no read holds
        // go first, so they never count against it.
        drop(held);
        list.retain(|s| !(s.store == store && unread(s)));
    }
    // Copied without the lock held: two readers racing copy twice, and
    // no store waits on another's copy.
    let copy = || {
        let limits = CopyLimits {
            max_bytes,
            budget: limits.sqlite_snapshot_budget,
        };
        storage.copy_to_private_file(name, limits)
    };
    let fresh = match copy() {
        Err(StorageError::SpaceInUse { .. }) => {
            // Out of space: let go of every kept copy no read holds now,
            // and try once more.
            SHARED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|s| !unread(s));
            copy()
        }
        other => other,
    };
    let fresh = Arc::new(fresh.map_err(|e| describe(name, e))?);
    SHARED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Shared {
            store: store.to_owned(),
            snapshot: Arc::clone(&fresh),
            used: Instant::now(),
        });
    Ok(fresh)
}

/// Marks `snapshot` of `store` used now, keeping it again if it was let
/// go while a read held it.
fn touch_in(list: &mut Vec<Shared>, store: &str, snapshot: &Arc<PrivateCopy>) {
    match list.iter_mut().find(|s| Arc::ptr_eq(&s.snapshot, snapshot)) {
        Some(entry) => entry.used = Instant::now(),
        None => list.push(Shared {
            store: store.to_owned(),
            snapshot: Arc::clone(snapshot),
            used: Instant::now(),
        }),
    }
}

/// Why SQLite failed to read a copy of a store (MLflow's, a Trackio
/// project): the text shown, and whether the copy itself is rejected (not
/// a database, not a store of its format — its tables or columns are not
/// the format's —, corrupt) rather than a passing failure or one of a row.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: String,
    pub(crate) rejects: bool,
}

impl Failure {
    /// SQLite's error `e` reading the database `db` (the file's name).
    pub(crate) fn of(db: &str, e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let rejects = matches!(
            e.sqlite_error_code(),
            // `Unknown` is SQLITE_ERROR: here, a table or column missing.
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt | ErrorCode::Unknown)
        );
        Failure {
            error: format!("{db}: {e}"),
            rejects,
        }
    }
}

/// An error of MLflow's store, always [`DB_NAME`].
impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::of(DB_NAME, e)
    }
}

/// Reads the database `name` in `storage` with `read`, from a snapshot
/// ([`snapshot_of`]; `kept` is the one read last, and becomes this one):
/// a copy `read` finds SQLite rejects is let go at once ([`reject`]), and
/// a store that can no longer be snapshotted keeps no copy either.
pub(crate) fn read_snapshot<T>(
    storage: &dyn Storage,
    name: &str,
    limits: &Limits,
    kept: &mut Option<Weak<PrivateCopy>>,
    read: impl FnOnce(&PrivateCopy) -> Result<T, Failure>,
) -> Result<T, String> {
    let held = kept.take().and_then(|w| w.upgrade());
    let snapshot = snapshot_of(storage, name, limits, held)?;
    *kept = Some(Arc::downgrade(&snapshot));
    read(&snapshot).map_err(|failure| {
        if failure.rejects {
            // A copy SQLite rejects holds no space: dropped now (with the
            // last reader sharing it), not copied again until the store
            // changes.
            *kept = None;
            reject(storage, name, &snapshot, &failure.error);
        }
        failure.error
    })
}

/// Records that SQLite rejected `snapshot` of the database `name` in
/// `storage`, and lets go of it (with its caller's drop the copy holds no
/// space): the store is not copied again while the rejection stands (see
/// [`snapshot_of`]).
pub(crate) fn reject(storage: &dyn Storage, name: &str, snapshot: &PrivateCopy, error: &str) {
    let store = key(storage, name);
    SHARED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|s| !std::ptr::eq(&*s.snapshot, snapshot));
    let mut rejected = REJECTED.lock().unwrap_or_else(PoisonError::into_inner);
    rejected.retain(|r| r.store != store);
    if rejected.len() >= MAX_REJECTED {
        rejected.remove(0);
    }
    rejected.push(Rejected {
        store,
        identity: snapshot.version().clone(),
        taken: snapshot.taken(),
        error: error.to_owned(),
    });
}

/// Opens the private copy and checks it is an MLflow store.
fn open(snapshot: &PrivateCopy) -> Result<Connection, Failure> {
    let conn = open_private(snapshot)?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
         AND name IN ('runs', 'params', 'tags', 'metrics')",
        [],
        |row| row.get(0),
    )?;
    if tables != 4 {
        return Err(Failure {
            error: format!(
                "{DB_NAME}: not an MLflow store (no runs, params, tags and metrics tables)"
            ),
            rejects: true,
        });
    }
    Ok(conn)
}

/// The longest string, blob or row SQLite may make or read in a store's
/// snapshot (a real run's values are far smaller).
const MAX_SQLITE_VALUE: i32 = 16 << 20;
/// How long one connection to a snapshot may compute, all its queries
/// together.
const SQLITE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens a private copy. Read-write, because the copy is ours: SQLite
/// replays a copied `-wal` into it and keeps its `-shm` beside it;
/// `query_only` keeps this connection from writing anything else, and
/// defensive mode, untrusted schema, no triggers and no views keep a
/// hostile file's schema from calling anything. A hostile file's schema
/// can still make SQLite compute (a generated column of
/// `hex(zeroblob(450000000))`, an attack found: 2 GB and a core for as
/// long as it had rows): no string or blob may grow past
/// [`MAX_SQLITE_VALUE`], and everything one connection runs stops after
/// [`SQLITE_DEADLINE`], an error of that store's read alone.
pub(crate) fn open_private(snapshot: &PrivateCopy) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(snapshot.path(), flags)?;
    conn.set_limit(
        rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH,
        MAX_SQLITE_VALUE,
    )?;
    let opened = std::time::Instant::now();
    conn.progress_handler(10_000, Some(move || opened.elapsed() > SQLITE_DEADLINE))?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
        false,
    )?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER,
        false,
    )?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW,
        false,
    )?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_MS))?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// The runs of the store in `storage`: (run id, name), deleted ones left
/// out.
pub(crate) fn list_runs(
    storage: &dyn Storage,
    limits: &Limits,
) -> Result<Vec<(String, Option<String>)>, String> {
    read_snapshot(storage, DB_NAME, limits, &mut None, runs_in)
}

fn runs_in(snapshot: &PrivateCopy) -> Result<Vec<(String, Option<String>)>, Failure> {
    let conn = open(snapshot)?;
    let mut stmt = conn.prepare(
        "SELECT run_uuid, name FROM runs WHERE lifecycle_stage IS NOT 'deleted' \
         ORDER BY start_time, run_uuid LIMIT ?1",
    )?;
    let rows = stmt.query_map([MAX_RUNS], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

/// The `key, value` rows of `table` (`params` or `tags`) for `run`, by key,
/// at most [`MAX_PARAMS`].
fn key_values(
    tx: &rusqlite::Transaction<'_>,
    table: &'static str,
    run: &str,
) -> rusqlite::Result<Vec<(String, Option<String>)>> {
    let mut stmt = tx.prepare(&format!(
        "SELECT key, value FROM {table} WHERE run_uuid = ?1 ORDER BY key LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![run, MAX_PARAMS as i64], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
    })?;
    rows.collect()
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    run: String,
    info: RunInfo,
    set: SeriesSet,
    last_rowid: i64,
    error: Option<String>,
    /// The `sqlite_*` bounds of [`Limits`].
    limits: Limits,
    /// The private copy read last (kept by [`SHARED`] until the store
    /// changes, it idles or its space is needed).
    snapshot: Option<Weak<PrivateCopy>>,
}

impl Reader {
    pub(crate) fn new(run: &str, limits: &Limits) -> Self {
        Self {
            run: run.to_owned(),
            limits: *limits,
            ..Self::default()
        }
    }

    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.error = self.read(storage).err();
    }

    fn read(&mut self, storage: &dyn Storage) -> Result<(), String> {
        let (limits, mut kept) = (self.limits, self.snapshot.take());
        let read = read_snapshot(storage, DB_NAME, &limits, &mut kept, |snapshot| {
            self.read_from(storage, snapshot)
        });
        self.snapshot = kept;
        read
    }

    fn read_from(&mut self, storage: &dyn Storage, snapshot: &PrivateCopy) -> Result<(), Failure> {
        let mut conn = open(snapshot)?;
        // One snapshot for everything read now.
        let tx = conn.transaction()?;
        let run = tx
            .query_row(
                // `end_time` and `user_id` are read where the store has
                // them (every MLflow schema does; a store without them is
                // read as before).
                "SELECT * FROM runs WHERE run_uuid = ?1",
                [&self.run],
                |row| {
                    Ok((
                        row.get::<_, Option<String>>("name")?,
                        row.get::<_, Option<String>>("status")?,
                        row.get::<_, Option<i64>>("start_time")?,
                        row.get::<_, Option<String>>("artifact_uri")?,
                        row.get::<_, Option<i64>>("experiment_id")?,
                        row.get::<_, Option<i64>>("end_time").ok().flatten(),
                        row.get::<_, Option<String>>("user_id").ok().flatten(),
                    ))
                },
            )
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Failure {
                    error: format!("{DB_NAME}: the run {} is no longer in the store", self.run),
                    rejects: false,
                },
                other => Failure::from(other),
            })?;
        let mut info = RunInfo {
            name: run.0.map(|n| crate::text::cap(&n)),
            status: run.1.map(|s| crate::text::cap(&s)),
            created: run
                .2
                .filter(|t| *t > 0)
                .map(|ms| crate::text::iso8601_utc((ms / 1000) as u64)),
            artifact_dir: run
                .3
                .as_deref()
                .and_then(|uri| inside(storage, uri, &self.run)),
            ended: crate::mlflow::millis(run.5.map(|ms| ms as f64)),
            user: run
                .6
                .map(|u| crate::text::cap(u.trim()))
                .filter(|u| !u.is_empty()),
            ..RunInfo::default()
        };
        if let Some(exp) = run.4 {
            // The experiment's name from its table; an old or odd store
            // without one shows its id.
            let name = tx
                .query_row(
                    "SELECT name FROM experiments WHERE experiment_id = ?1",
                    [exp],
                    |row| row.get::<_, Option<String>>(0),
                )
                .ok()
                .flatten()
                .filter(|n| !n.is_empty())
                .map_or_else(|| exp.to_string(), |n| crate::text::cap(&n));
            info.experiment = Some(crate::Group {
                location: format!("{}#{exp}", storage.origin()),
                name,
            });
        }
        for (k, v) in key_values(&tx, "params", &self.run)? {
            info.params.insert(
                crate::text::cap(&k),
                v.map_or(Value::Null, |v| Value::String(crate::text::cap(&v))),
            );
        }
        let tags = key_values(&tx, "tags", &self.run)?;
        crate::mlflow::apply_tags(
            &mut info,
            tags.into_iter().map(|(k, v)| (k, v.unwrap_or_default())),
        );
        {
            let mut stmt = tx.prepare(
                "SELECT rowid, key, value, timestamp, step, is_nan FROM metrics \
                 WHERE run_uuid = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![self.run, self.last_rowid, ROWS_PER_REFRESH],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, f64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, Option<bool>>(5)?,
                    ))
                },
            )?;
            for row in rows {
                let (rowid, key, value, ts, step, is_nan) = row?;
                self.last_rowid = rowid;
                let value = if is_nan == Some(true) {
                    f64::NAN
                } else {
                    value
                };
                self.set.push(
                    &key,
                    Point {
                        step,
                        wall: ts as f64 / 1000.0,
                        value,
                    },
                );
            }
        }
        tx.finish()?;
        if let Some(dir) = info.artifact_dir.clone() {
            crate::mlflow::images(storage, &format!("{dir}/"), &mut info);
        }
        self.info = info;
        Ok(())
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.info.clone();
        info.errors.extend(self.error.iter().cloned());
        info.unavailable.clone_from(&self.error);
        info.errors.extend(self.set.cap_error());
        info
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.set]
    }
}

/// The run's directory for an `artifact_uri` (a path or a `file://` URI
/// ending in `artifacts`) below the store's directory (the storage's
/// origin), if it lies there; never anything outside. The location is only
/// compared, never opened. A store moved or copied since it was written
/// (its URIs name where it was) keeps MLflow's default layout beside it:
/// a URI ending in `mlruns/<experiment>/<run>/artifacts` (or
/// `mlartifacts/…`), `<run>` this run's id, a local path, is taken as
/// that directory beneath the store's.
fn inside(storage: &dyn Storage, uri: &str, run: &str) -> Option<String> {
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    let path = std::path::Path::new(path);
    let Ok(rel) = path.strip_prefix(storage.origin()) else {
        // A local path only: `s3://`, `mlflow-artifacts:` and the like
        // name no directory here.
        if !path.is_absolute() {
            return None;
        }
        let mut tail = path.components().rev().map(|c| c.as_os_str().to_str());
        let (artifacts, id, experiment, root) =
            (tail.next()??, tail.next()??, tail.next()??, tail.next()??);
        let default_layout = artifacts == "artifacts"
            && id == run
            && !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && matches!(root, "mlruns" | "mlartifacts")
            && !experiment.is_empty()
            && experiment.bytes().all(|b| b.is_ascii_digit());
        return default_layout.then(|| format!("{root}/{experiment}/{id}"));
    };
    let mut parts = Vec::new();
    for part in rel.components() {
        match part {
            // Dot-directories never, as for every artifact name.
            std::path::Component::Normal(p) if !p.to_str()?.starts_with('.') => {
                parts.push(p.to_str()?);
            }
            _ => return None,
        }
    }
    if parts.pop() != Some("artifacts") || parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use rusqlite::Connection;

    use super::*;

    /// The snapshot `reader` read last, as kept.
    fn held(reader: &Reader) -> Arc<PrivateCopy> {
        reader.snapshot.as_ref().and_then(Weak::upgrade).unwrap()
    }
    use crate::{Format, Limits, RunReader};

    /// MLflow's tables, as far as the reader looks at them.
    const SCHEMA: &str = "
        CREATE TABLE runs (run_uuid TEXT PRIMARY KEY, name TEXT, status TEXT,
            start_time INTEGER, artifact_uri TEXT, experiment_id INTEGER,
            lifecycle_stage TEXT);
        CREATE TABLE params (key TEXT, value TEXT, run_uuid TEXT);
        CREATE TABLE tags (key TEXT, value TEXT, run_uuid TEXT);
        CREATE TABLE metrics (key TEXT, value REAL, timestamp INTEGER,
            step INTEGER, is_nan BOOLEAN, run_uuid TEXT);
        INSERT INTO runs VALUES ('r1', 'alpha', 'RUNNING', 1700000000000, '',
            0, 'active');
        INSERT INTO params VALUES ('lr', '0.1', 'r1');";

    /// A temp dir holding a store directory `store/` and a canary beside it.
    struct Scratch {
        _tmp: tempfile::TempDir,
        base: PathBuf,
        store: PathBuf,
    }

    fn scratch() -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let store = base.join("store");
        std::fs::create_dir(&store).unwrap();
        std::fs::write(base.join("canary"), b"canary").unwrap();
        Scratch {
            _tmp: tmp,
            base,
            store,
        }
    }

    /// A writer holding the store open in WAL mode with checkpoints off:
    /// everything it wrote is in `mlflow.db-wal` alone until it closes.
    fn wal_writer(store: &Path) -> Connection {
        let conn = Connection::open(store.join(DB_NAME)).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn
    }

    fn log(conn: &Connection, steps: std::ops::Range<i64>) {
        for step in steps {
            conn.execute(
                "INSERT INTO metrics VALUES ('loss', ?1, 1700000000000, ?2, 0, 'r1')",
                params![1.0 / (step + 1) as f64, step],
            )
            .unwrap();
        }
    }

    /// Every entry of `dir`, links not followed: name, kind, size, mode,
    /// inode and modification time.
    fn listing(dir: &Path) -> String {
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                format!(
                    "{:?} {:?} {} {:o} {} {}.{}",
                    e.file_name(),
                    m.file_type(),
                    m.len(),
                    m.mode(),
                    m.ino(),
                    m.mtime(),
                    m.mtime_nsec()
                )
            })
            .collect();
        out.sort();
        out.join("\n")
    }

    fn loss_count(reader: &Reader) -> usize {
        reader.set.get("loss").map_or(0, |s| s.points().len())
    }

    #[test]
    fn a_wal_store_is_read_whole_from_a_snapshot_including_rows_only_in_the_wal() {
        let scratch = scratch();
        let writer = wal_writer(&scratch.store);
        log(&writer, 0..5);
        // Nothing of it in the database file yet: the tables are in the
        // -wal alone.
        let alone = scratch.base.join("alone.db");
        std::fs::copy(scratch.store.join(DB_NAME), &alone).unwrap();
        let tables: i64 = Connection::open(&alone)
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
        assert!(
            std::fs::metadata(scratch.store.join("mlflow.db-wal"))
                .unwrap()
                .len()
                > 0
        );

        let before = listing(&scratch.store);
        let found = crate::discover(&scratch.base, &Limits::default());
        let ids: Vec<_> = found.runs.iter().map(|f| f.entry.as_deref()).collect();
        assert_eq!(ids, [Some("r1")], "{:?}", found.warnings);
        let root =
            crate::LocalStorage::owning(lab_fs::RunRoot::open_ambient(&scratch.store).unwrap());
        let mut reader = RunReader::new_entry(Format::Mlflow, Some("r1"));
        reader.refresh(&root);
        let info = reader.info();
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.name.as_deref(), Some("alpha"));
        assert_eq!(info.params["lr"], "0.1");
        assert_eq!(reader.series("loss").map(|s| s.points().len()), Some(5));
        assert_eq!(
            listing(&scratch.store),
            before,
            "nothing written in the store"
        );
        drop(writer);
    }

    /// Limits whose re-copy interval is `interval`.
    fn recopy_after(interval: Duration) -> Limits {
        Limits {
            sqlite_recopy_interval: interval,
            ..Limits::default()
        }
    }

    /// An hour: nothing in a test is copied again for being old.
    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn a_growing_store_is_copied_again_when_it_changes_and_not_when_unchanged() {
        let scratch = scratch();
        let writer = wal_writer(&scratch.store);
        log(&writer, 0..3);
        let root =
            crate::LocalStorage::owning(lab_fs::RunRoot::open_ambient(&scratch.store).unwrap());
        let mut reader = Reader::new("r1", &recopy_after(LONG));
        reader.refresh(&root);
        assert_eq!((reader.error.clone(), loss_count(&reader)), (None, 3));
        let first = held(&reader);

        // Unchanged: the same snapshot, not a new copy.
        reader.refresh(&root);
        assert!(Arc::ptr_eq(&held(&reader), &first));
        // Another reader of the same store shares it.
        let mut other = Reader::new("r1", &recopy_after(LONG));
        other.refresh(&root);
        assert!(Arc::ptr_eq(&held(&other), &first));

        // Grown, but the snapshot is younger than the interval: read from
        // it still (a few seconds stale), by this reader and a new one.
        log(&writer, 3..7);
        assert_ne!(
            &root
                .private_copy_version(DB_NAME, crate::DEFAULT_SQLITE_MAX_BYTES)
                .unwrap(),
            first.version()
        );
        reader.refresh(&root);
        assert!(Arc::ptr_eq(&held(&reader), &first));
        assert_eq!((reader.error.clone(), loss_count(&reader)), (None, 3));
        let mut late = Reader::new("r1", &recopy_after(LONG));
        late.refresh(&root);
        assert!(Arc::ptr_eq(&held(&late), &first));

        // Grown and the interval passed: copied again, and the new rows
        // read once.
        reader.limits = recopy_after(Duration::ZERO);
        reader.refresh(&root);
        let second = held(&reader);
        assert!(!Arc::ptr_eq(&second, &first));
        assert_ne!(second.version(), first.version());
        assert_eq!((reader.error.clone(), loss_count(&reader)), (None, 7));
        reader.refresh(&root);
        assert!(Arc::ptr_eq(&held(&reader), &second));
        assert_eq!(loss_count(&reader), 7);
        // A reader of the same store whose copy is old shares the new one.
        other.limits = recopy_after(Duration::ZERO);
        other.refresh(&root);
        assert!(Arc::ptr_eq(&held(&other), &second));

        // Checkpointed and closed by the writer: still all of it.
        drop(writer);
        reader.refresh(&root);
        assert_eq!((reader.error.clone(), loss_count(&reader)), (None, 7));
    }

    /// A step of [`a_copy_sqlite_rejects_holds_no_space_and_is_not_copied_again_until_the_store_changes`].
    #[derive(Clone, Copy, Debug)]
    enum Change {
        /// The file's bytes replaced by a real store's, in place, its
        /// length and mtime as they were: the same identity.
        Repaired,
        /// Its mtime moved on: a new identity.
        Touched,
        Nothing,
    }

    #[test]
    fn a_copy_sqlite_rejects_holds_no_space_and_is_not_copied_again_until_the_store_changes() {
        let scratch = scratch();
        let db = scratch.store.join(DB_NAME);
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        drop(conn);
        let good = std::fs::read(&db).unwrap();
        // The same length, but not SQLite's header.
        let mut bad = good.clone();
        bad[..16].copy_from_slice(b"not SQLite at al");
        std::fs::write(&db, &bad).unwrap();
        let mtime = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let set_mtime = |t| {
            std::fs::File::options()
                .write(true)
                .open(&db)
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        set_mtime(mtime);
        let root =
            crate::LocalStorage::owning(lab_fs::RunRoot::open_ambient(&scratch.store).unwrap());
        let not_a_db = "mlflow.db: file is not a database";
        let table = [
            // Rejected: the copy is dropped at once.
            (Change::Nothing, LONG, Some(not_a_db)),
            // Unchanged (as the Lab sees it): not copied again, whatever
            // the interval, so the repair is not seen.
            (Change::Repaired, Duration::ZERO, Some(not_a_db)),
            // Changed, but the rejection is younger than the interval.
            (Change::Touched, LONG, Some(not_a_db)),
            // Changed and the interval passed: copied again, and read.
            (Change::Nothing, Duration::ZERO, None),
        ];
        let mut reader = Reader::new("r1", &Limits::default());
        for (i, (change, interval, expected)) in table.into_iter().enumerate() {
            match change {
                Change::Repaired => {
                    std::fs::write(&db, &good).unwrap();
                    set_mtime(mtime);
                }
                Change::Touched => set_mtime(mtime + Duration::from_secs(1)),
                Change::Nothing => {}
            }
            reader.limits = recopy_after(interval);
            reader.refresh(&root);
            assert_eq!(reader.error.as_deref(), expected, "step {i}: {change:?}");
            let store_copies = SHARED
                .lock()
                .unwrap()
                .iter()
                .filter(|s| Some(s.store.as_str()) == scratch.store.to_str())
                .count();
            assert_eq!(
                (
                    reader.snapshot.as_ref().and_then(Weak::upgrade).is_some(),
                    store_copies
                ),
                if expected.is_none() {
                    (true, 1)
                } else {
                    (false, 0)
                },
                "step {i}: {change:?}"
            );
        }
        // Discovery lists it now too.
        let found = crate::discover(&scratch.base, &Limits::default());
        let ids: Vec<_> = found.runs.iter().map(|f| f.entry.as_deref()).collect();
        assert_eq!(ids, [Some("r1")], "{:?}", found.warnings);
    }

    #[test]
    fn a_store_larger_than_the_snapshot_space_is_an_error_of_that_store_and_is_not_copied() {
        let scratch = scratch();
        let conn = Connection::open(scratch.store.join(DB_NAME)).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        drop(conn);
        let limits = Limits {
            sqlite_snapshot_budget: 1024,
            ..Limits::default()
        };
        let root =
            crate::LocalStorage::owning(lab_fs::RunRoot::open_ambient(&scratch.store).unwrap());
        let mut reader = RunReader::new_entry_with(Format::Mlflow, Some("r1"), &limits);
        reader.refresh(&root);
        assert_eq!(
            reader.info().errors,
            ["mlflow.db: with its -wal, larger than the Lab's SQLite snapshot space (1 KiB)"]
        );
        let found = crate::discover(&scratch.base, &limits);
        assert!(found.runs.is_empty());
        assert_eq!(
            found.warnings,
            [format!(
                "{}: mlflow.db: with its -wal, larger than the Lab's SQLite snapshot space (1 KiB)",
                scratch.store.display()
            )]
        );
    }

    /// What is planted at a name of the store.
    #[derive(Clone, Copy, Debug)]
    enum Plant {
        Fifo,
        /// A symbolic link to the canary beside the store.
        Link,
        /// A second name of the canary.
        HardLink,
        /// A file over the cap of [`check`]'s limits.
        Oversize,
    }

    const CAP: u64 = 64 * 1024;

    /// A store with one run, `what` planted at `name`: the run's reader
    /// and discovery each report `expected` for that store within 5 s,
    /// a healthy store beside it is read, and the canary is unchanged.
    fn check(name: &str, what: Plant, expected: &str) {
        let scratch = scratch();
        let conn = Connection::open(scratch.store.join(DB_NAME)).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        drop(conn);
        let healthy = scratch.base.join("healthy");
        std::fs::create_dir(&healthy).unwrap();
        std::fs::copy(scratch.store.join(DB_NAME), healthy.join(DB_NAME)).unwrap();
        let at = scratch.store.join(name);
        let _ = std::fs::remove_file(&at);
        match what {
            Plant::Fifo => {
                lab_fs::fuzz::make_fifo(&at).unwrap();
            }
            Plant::Link => std::os::unix::fs::symlink(scratch.base.join("canary"), &at).unwrap(),
            Plant::HardLink => std::fs::hard_link(scratch.base.join("canary"), &at).unwrap(),
            Plant::Oversize => std::fs::write(&at, vec![0u8; CAP as usize + 1]).unwrap(),
        }
        let before = listing(&scratch.store);
        let limits = Limits {
            sqlite_max_bytes: CAP,
            ..Limits::default()
        };
        let (base, store) = (scratch.base.clone(), scratch.store.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let root = crate::LocalStorage::owning(lab_fs::RunRoot::open_ambient(&store).unwrap());
            let mut reader = RunReader::new_entry_with(Format::Mlflow, Some("r1"), &limits);
            reader.refresh(&root);
            let _ = tx.send((reader.info().errors, crate::discover(&base, &limits)));
        });
        let (errors, found) = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{name} as {what:?}: the read blocked"));
        assert_eq!(errors, [expected], "{name} as {what:?}");
        let runs: Vec<_> = found.runs.iter().map(|f| f.dir.clone()).collect();
        assert_eq!(runs, [healthy], "{name} as {what:?}");
        // Discovery lists directories only: a database that is not a
        // regular file is no store at all; any other refusal is a warning.
        let no_store = name == DB_NAME && matches!(what, Plant::Fifo | Plant::Link);
        assert_eq!(
            found.warnings.iter().any(|w| w.contains(expected)),
            !no_store,
            "{name} as {what:?}: {:?}",
            found.warnings
        );
        assert_eq!(listing(&scratch.store), before, "{name} as {what:?}");
        assert_eq!(
            std::fs::read(scratch.base.join("canary")).unwrap(),
            b"canary"
        );
    }

    #[test]
    fn a_fifo_link_or_oversize_file_at_any_name_of_a_store_is_an_error_of_that_store_alone() {
        for name in [
            DB_NAME,
            "mlflow.db-journal",
            "mlflow.db-wal",
            "mlflow.db-shm",
        ] {
            let table = [
                (Plant::Fifo, format!("{name}: not a regular file")),
                (
                    Plant::Link,
                    format!("{name}: a symbolic link, never followed"),
                ),
                (Plant::HardLink, format!("{name}: more than one hard link")),
                (
                    Plant::Oversize,
                    format!("{name}: larger than the cap of {CAP} bytes"),
                ),
            ];
            for (what, expected) in table {
                check(name, what, &expected);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod bombs {
    use super::*;

    /// A snapshot whose schema makes SQLite compute: a generated column
    /// of `hex(zeroblob(450000000))` (an attack's store: 2 GB and a core
    /// per row before). Reading it is a quick error, every row of it.
    #[test]
    fn a_schema_that_makes_sqlite_compute_is_an_error_not_a_burden() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.db");
        {
            let db = Connection::open(&path).unwrap();
            db.execute_batch("CREATE TABLE metrics(id INTEGER PRIMARY KEY, m0);")
                .unwrap();
            for _ in 0..50 {
                db.execute("INSERT INTO metrics(m0) VALUES (450000000)", [])
                    .unwrap();
            }
            // Added after the rows, so writing them computed nothing.
            db.execute_batch("ALTER TABLE metrics ADD COLUMN metrics TEXT AS (hex(zeroblob(m0)));")
                .unwrap();
        }
        let snapshot = PrivateCopy::new(
            path,
            crate::Version::new("1"),
            std::time::Instant::now(),
            Box::new(()),
        );
        let conn = open_private(&snapshot).unwrap();
        let mut stmt = conn.prepare("SELECT metrics FROM metrics").unwrap();
        let read: Result<Vec<String>, _> = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .collect();
        let e = read.unwrap_err().to_string();
        assert!(e.contains("too big") || e.contains("interrupt"), "{e}");
    }

    /// A run's `artifact_uri` below the store gives its directory; a store
    /// copied elsewhere (its URIs naming where it was written) keeps
    /// MLflow's default layout, for this run's id only; nothing else
    /// outside is ever a directory of the run.
    #[test]
    fn an_artifact_uri_gives_a_directory_beneath_the_store_only() {
        let memory = crate::storage::tests::Memory::new("/data/store");
        let cases = [
            ("/data/store/mlruns/1/abc/artifacts", Some("mlruns/1/abc")),
            ("file:///data/store/x/abc/artifacts", Some("x/abc")),
            (
                "/elsewhere/store/mlruns/1/abc/artifacts",
                Some("mlruns/1/abc"),
            ),
            (
                "file:///old/mlartifacts/7/abc/artifacts",
                Some("mlartifacts/7/abc"),
            ),
            ("/elsewhere/store/mlruns/1/other/artifacts", None),
            ("/elsewhere/store/runs/1/abc/artifacts", None),
            ("/elsewhere/store/mlruns/x/abc/artifacts", None),
            ("/elsewhere/store/mlruns/1/abc/files", None),
            ("/data/store/../etc/abc/artifacts", None),
            ("/data/store/.hidden/abc/artifacts", None),
            ("s3://bucket/mlruns/1/abc/artifacts", None),
            ("mlflow-artifacts:/1/abc/artifacts", None),
        ];
        for (uri, want) in cases {
            assert_eq!(inside(&memory, uri, "abc").as_deref(), want, "{uri}");
        }
        assert_eq!(inside(&memory, "/x/mlruns/1/../artifacts", ".."), None);
    }
}
