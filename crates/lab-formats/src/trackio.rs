//! Trackio (`trackio/sqlite_storage.py`): `$TRACKIO_DIR` holds one SQLite
//! database per project, `PROJECT.db` — tables `metrics(id, run_id,
//! timestamp, run_name, step, metrics JSON, …)`, `configs(run_id,
//! run_name, config JSON, created_at)`, `system_metrics`, … (before
//! Trackio 0.24 runs had no `run_id`: the name is the key) — and media in
//! `media/PROJECT/RUN/STEP/FILE`, which a metric row names as `{"_type":
//! "trackio.image", "file_path": "PROJECT/RUN/STEP/FILE"}` (relative to
//! `media/`). Each run of a project database is a run; the directory is
//! its root, the project its experiment.
//!
//! The database is read exactly as MLflow's SQLite store is
//! (`mlflow_db.rs`): only from a private snapshot of the `.db` and its
//! `-wal`, checked beneath the handle, shared and re-copied by the same
//! rules; no path inside a root is handed to SQLite. New metric rows are
//! read by id. Values: numbers, and Trackio's `"NaN"`, `"Infinity"`,
//! `"-Infinity"`; nested objects as `a/b`; media with their step.
//! A `file_path` is untrusted: only `PROJECT/RUN/STEP/FILE` with safe
//! segments, the same `PROJECT/RUN` for the whole run, is served, as
//! `STEP/FILE` from the run's `media/PROJECT/RUN` (never outside it).
//! System metrics are not read; nor are pending writes in `inbox/`
//! (Trackio imports them into the database itself).
//!
//! Trackio records no end of a run: a run whose last row is younger than
//! [`RECENT_SECS`] is `running`, else `unknown`.

use std::sync::Weak;

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::discover::Listing;
use crate::mlflow_db::{Failure, open_private, read_snapshot};
use crate::series::{Point, SeriesSet};
use crate::storage::{PrivateCopy, Storage};
use crate::{Group, Limits, Media, RunInfo};

/// The artifacts this format adds to the default allowlist: media in a
/// run's step directories (relative to its `media/PROJECT/RUN`).
pub(crate) const ARTIFACTS: &[&str] = &[
    "*/*.png", "*/*.jpg", "*/*.jpeg", "*/*.gif", "*/*.mp4", "*/*.webm",
];

/// SQLite's file header.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
/// Most project databases one directory yields.
const MAX_DATABASES: usize = 256;
/// Most runs one project lists.
const MAX_RUNS: i64 = 20_000;
/// Most metric rows read per refresh.
const ROWS_PER_REFRESH: i64 = 500_000;
/// Largest metric row or config read, in bytes.
const MAX_ROW: usize = 1 << 20;
/// Most media kept per run.
const MAX_MEDIA: usize = 10_000;
/// A run whose last row is younger than this is running: 5 minutes.
pub(crate) const RECENT_SECS: f64 = 300.0;

/// The project databases of the directory `listing` shows: `*.db` files
/// starting with SQLite's header, beside `media/` or in a directory named
/// `trackio` (Trackio's default, `~/.cache/huggingface/trackio`); not
/// `mlflow.db`, nor Trackio's artifact registries (`registry-*.db`).
pub(crate) fn databases(listing: &Listing<'_>) -> Vec<String> {
    if !(listing.subdir("media") || listing.name == "trackio") {
        return Vec::new();
    }
    listing
        .files()
        .filter(|f| {
            f.len() > 3
                && f.ends_with(".db")
                && *f != crate::mlflow_db::DB_NAME
                && !f.starts_with("registry-")
                && !f.starts_with('.')
        })
        .filter(|f| {
            listing
                .head(f, SQLITE_HEADER.len())
                .is_some_and(|h| h == SQLITE_HEADER)
        })
        .take(MAX_DATABASES)
        .map(str::to_owned)
        .collect()
}

/// Opens a snapshot and checks it is a Trackio project; says which column
/// keys a run (`run_id`, or `run_name` before Trackio 0.24).
fn open(db: &str, snapshot: &PrivateCopy) -> Result<(Connection, &'static str), Failure> {
    let conn = open_private(snapshot).map_err(|e| Failure::of(db, e))?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('metrics', 'configs')",
            [],
            |row| row.get(0),
        )
        .map_err(|e| Failure::of(db, e))?;
    if tables != 2 {
        return Err(Failure {
            error: format!("{db}: not a Trackio project (no metrics and configs tables)"),
            rejects: true,
        });
    }
    let with_ids = ["metrics", "configs"].iter().all(|table| {
        conn.prepare(&format!("SELECT run_id FROM {table} LIMIT 0"))
            .is_ok()
    });
    Ok((conn, if with_ids { "run_id" } else { "run_name" }))
}

/// The runs of the project database `db` in `storage`: (run key, name).
pub(crate) fn list_runs(
    storage: &dyn Storage,
    db: &str,
    limits: &Limits,
) -> Result<Vec<(String, Option<String>)>, String> {
    read_snapshot(storage, db, limits, &mut None, |snapshot| {
        runs_in(db, snapshot)
    })
}

fn runs_in(db: &str, snapshot: &PrivateCopy) -> Result<Vec<(String, Option<String>)>, Failure> {
    let (conn, key) = open(db, snapshot)?;
    let fail = |e| Failure::of(db, e);
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {key}, max(run_name), min(first) FROM (\
               SELECT {key}, run_name, min(id) AS first FROM configs GROUP BY {key} \
               UNION ALL SELECT {key}, run_name, min(id) + 1e15 FROM metrics GROUP BY {key}) \
             WHERE {key} IS NOT NULL GROUP BY {key} ORDER BY 3, 1 LIMIT ?1"
        ))
        .map_err(fail)?;
    let rows = stmt
        .query_map([MAX_RUNS], |row| {
            Ok((
                text_of(row.get_ref(0)?),
                row.get_ref(1).ok().and_then(|v| text_of(v)),
            ))
        })
        .map_err(fail)?;
    let mut out = Vec::new();
    for row in rows {
        let (run, name) = row.map_err(fail)?;
        if let Some(run) = run.filter(|r| !r.is_empty() && r.len() <= 512) {
            out.push((run, name.map(|n| crate::text::cap(&n))));
        }
    }
    Ok(out)
}

/// A column's text (TEXT or BLOB, as Trackio writes `orjson` bytes).
fn text_of(value: rusqlite::types::ValueRef<'_>) -> Option<String> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8(t.to_vec()).ok(),
        ValueRef::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A run's entry in discovery: its database and its key.
pub(crate) fn entry(db: &str, run: &str) -> String {
    format!("{db}/{run}")
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// The project database's file name.
    db: String,
    /// The run's key in it.
    run: String,
    limits: Limits,
    snapshot: Option<Weak<PrivateCopy>>,
    info: RunInfo,
    set: SeriesSet,
    last_id: i64,
    /// The run's media directory (`PROJECT/RUN` under `media/`), from the
    /// first media path read.
    media_dir: Option<String>,
    media: Vec<Media>,
    /// Media paths refused (outside the run's media directory).
    refused_media: usize,
    /// Rows that were not JSON objects.
    bad_rows: usize,
    /// When the run last wrote a row (Unix seconds).
    last_write: Option<f64>,
    error: Option<String>,
}

impl Reader {
    /// A reader of the run `entry` (`PROJECT.db/RUN`, see [`entry`]) of
    /// the storage's databases.
    pub(crate) fn new(entry: &str, limits: &Limits) -> Self {
        let (db, run) = entry.split_once('/').unwrap_or(("", ""));
        Self {
            db: db.to_owned(),
            run: run.to_owned(),
            limits: *limits,
            ..Self::default()
        }
    }

    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.error = self.read(storage).err();
    }

    fn read(&mut self, storage: &dyn Storage) -> Result<(), String> {
        if self.db.is_empty() || self.run.is_empty() {
            return Err("not a run of a Trackio project".to_owned());
        }
        let (db, limits, mut kept) = (self.db.clone(), self.limits, self.snapshot.take());
        let read = read_snapshot(storage, &db, &limits, &mut kept, |snapshot| {
            self.read_from(storage, snapshot)
        });
        self.snapshot = kept;
        read
    }

    fn read_from(&mut self, storage: &dyn Storage, snapshot: &PrivateCopy) -> Result<(), Failure> {
        let db = self.db.clone();
        let fail = |e| Failure::of(&db, e);
        let (mut conn, key) = open(&db, snapshot)?;
        let tx = conn.transaction().map_err(fail)?;
        let project = db.strip_suffix(".db").unwrap_or(&db).to_owned();
        let mut info = RunInfo {
            experiment: Some(Group {
                location: format!("{}#{project}", storage.origin()),
                name: crate::text::cap(&project),
            }),
            ..RunInfo::default()
        };
        let config = tx
            .query_row(
                &format!(
                    "SELECT config, created_at, run_name FROM configs WHERE {key} = ?1 \
                     ORDER BY id DESC LIMIT 1"
                ),
                [&self.run],
                |row| {
                    Ok((
                        text_of(row.get_ref(0)?),
                        text_of(row.get_ref(1)?),
                        text_of(row.get_ref(2)?),
                    ))
                },
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(fail(other)),
            })?;
        if let Some((config, created_at, name)) = config {
            info.name = name.map(|n| crate::text::cap(&n));
            let config = config
                .filter(|c| c.len() <= MAX_ROW)
                .and_then(|c| serde_json::from_str::<Value>(&c).ok());
            let created = config
                .as_ref()
                .and_then(|c| c.get("_Created"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or(created_at);
            info.created = created
                .as_deref()
                .and_then(crate::text::iso8601_secs)
                .map(|s| crate::text::iso8601_utc(s as u64));
            if let Some(Value::Object(map)) = config {
                for (k, v) in &map {
                    // Trackio's own keys: `_Created`, `_Username`, `_Group`.
                    match (k.as_str(), v) {
                        ("_Group", Value::String(g)) if g.len() <= 64 => {
                            info.tags.push(format!("group={g}"));
                        }
                        ("_Username", Value::String(u)) if u.len() <= 64 => {
                            info.tags.push(format!("user={u}"));
                        }
                        _ if k.starts_with('_') => {}
                        _ => crate::flatten(k, v, &mut info.params),
                    }
                }
            }
            if let Some(t) = created.as_deref().and_then(crate::text::iso8601_secs) {
                self.last_write = Some(self.last_write.map_or(t, |w| w.max(t)));
            }
        }
        if info.name.is_none() {
            info.name = tx
                .query_row(
                    &format!("SELECT run_name FROM metrics WHERE {key} = ?1 LIMIT 1"),
                    [&self.run],
                    |row| Ok(text_of(row.get_ref(0)?)),
                )
                .ok()
                .flatten()
                .map(|n| crate::text::cap(&n));
        }
        {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT id, timestamp, step, metrics FROM metrics \
                     WHERE {key} = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
                ))
                .map_err(fail)?;
            let mut rows = stmt
                .query(params![self.run, self.last_id, ROWS_PER_REFRESH])
                .map_err(fail)?;
            while let Some(row) = rows.next().map_err(fail)? {
                let id: i64 = row.get(0).map_err(fail)?;
                self.last_id = id;
                let wall = text_of(row.get_ref(1).map_err(fail)?)
                    .as_deref()
                    .and_then(crate::text::iso8601_secs)
                    .unwrap_or(f64::NAN);
                let step = row.get::<_, Option<i64>>(2).ok().flatten().unwrap_or(0);
                let metrics = text_of(row.get_ref(3).map_err(fail)?);
                if wall.is_finite() {
                    self.last_write = Some(self.last_write.map_or(wall, |w| w.max(wall)));
                }
                let parsed = metrics
                    .filter(|m| m.len() <= MAX_ROW)
                    .and_then(|m| serde_json::from_str::<Value>(&m).ok());
                let Some(Value::Object(map)) = parsed else {
                    self.bad_rows += 1;
                    continue;
                };
                self.absorb(&map, step, wall, "", 0);
            }
        }
        tx.finish().map_err(fail)?;
        info.artifact_dir = self.media_dir.as_ref().map(|d| format!("media/{d}"));
        self.info = info;
        Ok(())
    }

    /// One logged object's values at `step`: numbers (and Trackio's
    /// `"NaN"`, `"Infinity"`, `"-Infinity"`) as points, nested objects as
    /// `a/b`, media as media.
    fn absorb(
        &mut self,
        map: &serde_json::Map<String, Value>,
        step: i64,
        wall: f64,
        prefix: &str,
        depth: usize,
    ) {
        for (key, value) in map {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}/{key}")
            };
            if name.len() > crate::MAX_KEY_LEN {
                continue;
            }
            let point = |value| Point { step, wall, value };
            match value {
                Value::Number(n) => {
                    if let Some(v) = n.as_f64() {
                        self.set.push(&name, point(v));
                    }
                }
                Value::String(s) => {
                    let v = match s.as_str() {
                        "NaN" => f64::NAN,
                        "Infinity" => f64::INFINITY,
                        "-Infinity" => f64::NEG_INFINITY,
                        _ => continue,
                    };
                    self.set.push(&name, point(v));
                }
                Value::Object(inner) => match inner.get("_type").and_then(Value::as_str) {
                    Some(kind @ ("trackio.image" | "trackio.video")) => {
                        let path = inner.get("file_path").and_then(Value::as_str);
                        self.add_media(&name, kind, path, step);
                    }
                    Some(_) => {}
                    None if depth < 8 => self.absorb(inner, step, wall, &name, depth + 1),
                    None => {}
                },
                _ => {}
            }
        }
    }

    /// A media file at `path` (under `media/`), if it lies in this run's
    /// media directory: `PROJECT/RUN/STEP/FILE`, each segment safe, the
    /// same `PROJECT/RUN` as the run's other media.
    fn add_media(&mut self, key: &str, kind: &str, path: Option<&str>, step: i64) {
        if self.media.len() >= MAX_MEDIA {
            return;
        }
        let parts: Vec<&str> = path.map(|p| p.split('/').collect()).unwrap_or_default();
        let safe = |s: &&str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.len() <= 255
                && !s.chars().any(|c| c.is_control() || c == '\\')
        };
        let [project, run, step_dir, file] = parts.as_slice() else {
            self.refused_media += 1;
            return;
        };
        // Each part as the rest of the Lab parses a name (lab-fs's one
        // parser: no `%`, no encoded forms), not merely printable.
        let artifact = format!("{step_dir}/{file}");
        if !parts.iter().all(safe)
            || !parts.iter().all(|p| crate::discover::is_artifact_name(p))
            || !crate::discover::is_artifact_name(&artifact)
        {
            self.refused_media += 1;
            return;
        }
        let dir = format!("{project}/{run}");
        match &self.media_dir {
            Some(d) if *d != dir => {
                self.refused_media += 1;
                return;
            }
            Some(_) => {}
            None => self.media_dir = Some(dir),
        }
        self.media.push(Media {
            artifact,
            kind: if kind == "trackio.video" {
                "video"
            } else {
                "image"
            },
            step: Some(step),
            key: Some(crate::text::cap(key)),
            embedded: false,
            url: None,
        });
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.info.clone();
        info.media = self.media.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if self.last_write.is_some_and(|t| now - t < RECENT_SECS) {
            info.status = Some("running".to_owned());
        }
        if self.refused_media > 0 {
            info.errors.push(format!(
                "{}: {} media paths outside the run's media directory were not served",
                self.db, self.refused_media
            ));
        }
        if self.bad_rows > 0 {
            info.errors.push(format!(
                "{}: {} metric rows were not JSON objects (or over {MAX_ROW} bytes)",
                self.db, self.bad_rows
            ));
        }
        info.errors.extend(self.error.iter().cloned());
        info.unavailable.clone_from(&self.error);
        info.errors.extend(self.set.cap_error());
        info
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.set]
    }
}

/// For the fuzz oracle: one metrics row's JSON read as the reader reads
/// it at step 3: its points, its media names and the run's media
/// directory, and how many media paths were refused.
pub(crate) fn fuzz_row(row: &[u8]) -> (usize, Vec<String>, Option<String>, usize) {
    let mut reader = Reader::default();
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(row) {
        reader.absorb(&map, 3, 0.0, "", 0);
    }
    let media = reader.media.iter().map(|m| m.artifact.clone()).collect();
    (
        reader.set.points(),
        media,
        reader.media_dir,
        reader.refused_media,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a row gives: points, media names, the media directory, paths
    /// refused.
    fn row(json: &str) -> (usize, Vec<String>, Option<String>, usize) {
        fuzz_row(json.as_bytes())
    }

    #[test]
    fn values_nested_objects_and_trackio_texts_are_points() {
        let (points, media, _, _) = row(
            r#"{"loss": 0.5, "acc": 1, "train": {"grad": 2, "deep": {"x": 3}},
                "bad": "NaN", "up": "Infinity", "label": "cat", "flag": true, "list": [1]}"#,
        );
        assert_eq!((points, media.len()), (6, 0));
    }

    #[test]
    fn media_paths_are_served_only_from_the_runs_own_media_directory() {
        let image = |path: &str| {
            format!(
                r#"{{"_type": "trackio.image", "file_path": {}}}"#,
                Value::from(path)
            )
        };
        for (paths, served, refused) in [
            (vec!["p/r/2/a.png"], vec!["2/a.png"], 0),
            (
                vec!["p/r/2/a.png", "p/r/3/b.png"],
                vec!["2/a.png", "3/b.png"],
                0,
            ),
            // Another run's directory, after this one's.
            (vec!["p/r/2/a.png", "p/other/2/b.png"], vec!["2/a.png"], 1),
            (vec!["../../../etc/passwd"], vec![], 1),
            (vec!["p/r/../a.png"], vec![], 1),
            (vec!["/abs/r/2/a.png"], vec![], 1),
            (vec!["p/r/2/.hidden.png"], vec![], 1),
            (vec!["p/r/2/x/a.png"], vec![], 1),
            (vec!["p/r/2\\a.png"], vec![], 1),
            (vec!["p/r/2/a\u{7}.png"], vec![], 1),
        ] {
            let fields: Vec<String> = paths
                .iter()
                .enumerate()
                .map(|(i, p)| format!(r#""m{i}": {}"#, image(p)))
                .collect();
            let (_, media, dir, n) = row(&format!("{{{}}}", fields.join(",")));
            assert_eq!(
                (media, n),
                (served.iter().map(|s| s.to_string()).collect(), refused),
                "{paths:?}"
            );
            if n == 0 {
                assert_eq!(dir.as_deref(), Some("p/r"));
            }
        }
    }
}
