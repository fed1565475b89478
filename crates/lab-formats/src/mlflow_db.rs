//! MLflow's SQLite store (`mlflow.db`, the default since MLflow 3.7): the
//! tables `runs`, `params`, `tags`, `metrics` (and `experiments`), schema
//! versioned by Alembic. Each stored run is a run; the store's directory
//! is its root, and its artifacts are served from its `artifact_uri` only
//! where that lies inside the store's directory.
//!
//! The database is checked by lab-fs (a regular file beneath the root, no
//! link) and then opened **by path**, read-only — SQLite needs the path to
//! find the `-wal` and `-shm` files of a store being written. That is the
//! one exception to "lab-fs opens every file", named in
//! `lab_fs::RunRoot::sqlite_path`. Each refresh is one read transaction (a
//! consistent snapshot while a training process writes, WAL included), with
//! `query_only`, defensive mode and untrusted schema (a hostile file's
//! views and triggers cannot call functions), and reads at most
//! [`ROWS_PER_REFRESH`] new metric rows (by rowid, so nothing is read
//! twice).

use rusqlite::{Connection, OpenFlags, params};
use serde_json::Value;

use crate::series::{Point, SeriesSet};
use crate::{MAX_PARAMS, RunInfo};

/// The database's file name.
pub(crate) const DB_NAME: &str = "mlflow.db";
/// Most metric rows read per refresh; the rest come with the next ones.
const ROWS_PER_REFRESH: i64 = 500_000;
/// Most runs one store lists.
const MAX_RUNS: i64 = 20_000;
/// How long a read waits for a writer's lock.
const BUSY_MS: u64 = 2000;

/// Opens the store at the root read-only and checks it is an MLflow store.
fn open(root: &lab_fs::RunRoot) -> Result<Connection, String> {
    let db = root
        .sqlite_path(DB_NAME)
        .map_err(|e| format!("{DB_NAME}: {e}"))?;
    // A WAL store is read through its -wal and -shm files. SQLite would
    // create them (a write into the store) when they are missing, even
    // read-only: a WAL store without a -wal file (closed cleanly, all of it
    // in the main file) is opened immutable, which creates nothing; one
    // with a -wal but no -shm is not opened at all.
    let mut head = [0u8; 20];
    let wal_mode = root
        .open_regular(std::path::Path::new(DB_NAME))
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head).map_err(lab_fs::Error::Io))
        .is_ok_and(|()| head[18] == 2 && head[19] == 2);
    let names: Vec<String> = root
        .list_dir("")
        .map_err(|e| format!("{DB_NAME}: {e}"))?
        .into_iter()
        .map(|e| e.name)
        .collect();
    let has = |suffix: &str| names.iter().any(|n| *n == format!("{DB_NAME}{suffix}"));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if wal_mode && !has("-wal") {
        let path = db
            .path
            .to_str()
            .ok_or(format!("{DB_NAME}: the path is not UTF-8"))?;
        let escaped = path.replace('%', "%25").replace('?', "%3f").replace('#', "%23");
        Connection::open_with_flags(
            format!("file:{escaped}?immutable=1"),
            flags | OpenFlags::SQLITE_OPEN_URI,
        )
    } else if wal_mode && !has("-shm") {
        return Err(format!(
            "{DB_NAME}: a WAL store with a -wal file but no -shm file is not opened (reading it would create one)"
        ));
    } else {
        Connection::open_with_flags(&db.path, flags)
    }
    .map_err(|e| format!("{DB_NAME}: {e}"))?;
    if !db.still_same() {
        return Err(format!("{DB_NAME}: replaced while it was opened"));
    }
    let setup = || -> rusqlite::Result<()> {
        use rusqlite::config::DbConfig;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_MS))?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(())
    };
    setup().map_err(|e| format!("{DB_NAME}: {e}"))?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('runs', 'params', 'tags', 'metrics')",
            [],
            |row| row.get(0),
        )
        .map_err(|e| format!("{DB_NAME}: {e}"))?;
    if tables != 4 {
        return Err(format!(
            "{DB_NAME}: not an MLflow store (no runs, params, tags and metrics tables)"
        ));
    }
    Ok(conn)
}

/// The runs of the store at `root`: (run id, name), deleted ones left out.
pub(crate) fn list_runs(root: &lab_fs::RunRoot) -> Result<Vec<(String, Option<String>)>, String> {
    let conn = open(root)?;
    let mut stmt = conn
        .prepare(
            "SELECT run_uuid, name FROM runs WHERE lifecycle_stage IS NOT 'deleted' \
             ORDER BY start_time, run_uuid LIMIT ?1",
        )
        .map_err(|e| format!("{DB_NAME}: {e}"))?;
    let rows = stmt
        .query_map([MAX_RUNS], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
        })
        .map_err(|e| format!("{DB_NAME}: {e}"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(|e| format!("{DB_NAME}: {e}"))?);
    }
    Ok(out)
}

/// The `key, value` rows of `table` (`params` or `tags`) for `run`, by key,
/// at most [`MAX_PARAMS`].
fn key_values(
    tx: &rusqlite::Transaction<'_>,
    table: &'static str,
    run: &str,
) -> Result<Vec<(String, Option<String>)>, String> {
    let err = |e: rusqlite::Error| format!("{DB_NAME}: {e}");
    let mut stmt = tx
        .prepare(&format!(
            "SELECT key, value FROM {table} WHERE run_uuid = ?1 ORDER BY key LIMIT ?2"
        ))
        .map_err(err)?;
    let rows = stmt
        .query_map(params![run, MAX_PARAMS as i64], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
        })
        .map_err(err)?;
    rows.map(|r| r.map_err(err)).collect()
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    run: String,
    info: RunInfo,
    set: SeriesSet,
    last_rowid: i64,
    error: Option<String>,
}

impl Reader {
    pub(crate) fn new(run: &str) -> Self {
        Self {
            run: run.to_owned(),
            ..Self::default()
        }
    }

    pub(crate) fn refresh(&mut self, root: &lab_fs::RunRoot) {
        self.error = self.read(root).err();
    }

    fn read(&mut self, root: &lab_fs::RunRoot) -> Result<(), String> {
        let mut conn = open(root)?;
        let err = |e: rusqlite::Error| format!("{DB_NAME}: {e}");
        // One snapshot for everything read now.
        let tx = conn.transaction().map_err(err)?;
        let run = tx
            .query_row(
                "SELECT name, status, start_time, artifact_uri, experiment_id FROM runs \
                 WHERE run_uuid = ?1",
                [&self.run],
                |row| {
                    Ok((
                        row.get::<_, Option<String>>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, Option<i64>>(4)?,
                    ))
                },
            )
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => {
                    format!("{DB_NAME}: the run {} is no longer in the store", self.run)
                }
                other => err(other),
            })?;
        let mut info = RunInfo {
            name: run.0.map(|n| crate::text::cap(&n)),
            status: run.1.map(|s| crate::text::cap(&s)),
            created: run
                .2
                .filter(|t| *t > 0)
                .map(|ms| lab_fs::bundle::iso8601_utc((ms / 1000) as u64)),
            artifact_dir: run.3.as_deref().and_then(|uri| inside(root, uri)),
            ..RunInfo::default()
        };
        if let Some(exp) = run.4 {
            info.tags.push(format!("experiment={exp}"));
        }
        for (k, v) in key_values(&tx, "params", &self.run)? {
            info.params.insert(
                crate::text::cap(&k),
                v.map_or(Value::Null, |v| Value::String(crate::text::cap(&v))),
            );
        }
        for (k, v) in key_values(&tx, "tags", &self.run)? {
            crate::mlflow::apply_tag(&mut info, &k, &v.unwrap_or_default());
        }
        {
            let mut stmt = tx
                .prepare(
                    "SELECT rowid, key, value, timestamp, step, is_nan FROM metrics \
                     WHERE run_uuid = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map(
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
                )
                .map_err(err)?;
            for row in rows {
                let (rowid, key, value, ts, step, is_nan) = row.map_err(err)?;
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
        tx.finish().map_err(err)?;
        self.info = info;
        Ok(())
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.info.clone();
        info.errors.extend(self.error.iter().cloned());
        info.errors.extend(self.set.cap_error());
        info
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.set]
    }
}

/// The run's directory for an `artifact_uri` (a path or a `file://` URI
/// ending in `artifacts`) below the store's directory, if it lies there;
/// never anything outside.
fn inside(root: &lab_fs::RunRoot, uri: &str) -> Option<String> {
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    let path = std::path::Path::new(path);
    let rel = path.strip_prefix(root.path()).ok()?;
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
