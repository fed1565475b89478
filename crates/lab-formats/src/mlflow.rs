//! One run of an MLflow file store, `mlruns/<experiment>/<run>/`:
//! `meta.yaml` (name, status, start time), `params/<key>` (the value as
//! text), `tags/<key>` (`mlflow.runName` is the display name),
//! `metrics/<key>` (lines `timestamp_ms value step`); keys with `/` are
//! nested files. The run's `artifact_uri` is never followed: artifacts are
//! served from the run's own `artifacts/` only, beneath its root.

use serde_json::Value;

use crate::lab::{MAX_LINE, read_small};
use crate::series::{Point, SeriesSet};
use crate::storage::{EntryKind, Storage, StorageError, list_all};
use crate::tail::{Sink, Tail, next_line};
use crate::{MAX_PARAMS, MAX_SERIES, RunInfo};

/// Largest `meta.yaml`, param or tag file read.
const MAX_SMALL: u64 = 64 * 1024;
/// Deepest nesting of a key (`a/b/c/d`).
const MAX_KEY_DEPTH: usize = 4;

/// MLflow's `RunStatus` numbers, as `meta.yaml` stores them.
fn status_name(n: i64) -> &'static str {
    match n {
        1 => "RUNNING",
        2 => "SCHEDULED",
        3 => "FINISHED",
        4 => "FAILED",
        5 => "KILLED",
        _ => "UNKNOWN",
    }
}

/// The name of the MLflow file-store experiment `storage` is (the
/// directory holding its runs): `meta.yaml`'s `name`, when it has one.
pub fn experiment_name(storage: &dyn Storage) -> Option<String> {
    let text = read_small(storage, "meta.yaml", MAX_SMALL).ok()??;
    let meta = crate::yaml::parse(&text).ok()?;
    meta.get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(crate::text::cap)
}

/// What MLflow's tags say of a run (file store and SQLite store alike):
/// `mlflow.runName` is its name, `mlflow.note.content` its description,
/// `mlflow.user` its user, `mlflow.source.name` (and `.type`) its source,
/// `mlflow.source.git.commit` its commit, `mlflow.parentRunId` its parent;
/// other `mlflow.*` tags are MLflow's own, the rest are `key=value` tags.
pub(crate) fn apply_tags<K: AsRef<str>, V: AsRef<str>>(
    info: &mut RunInfo,
    tags: impl IntoIterator<Item = (K, V)>,
) {
    let (mut source, mut source_type) = (None, None);
    for (key, value) in tags {
        let (key, value) = (key.as_ref(), value.as_ref());
        let text = || Some(crate::text::cap(value.trim())).filter(|v| !v.is_empty());
        match key {
            "mlflow.runName" => info.name = Some(crate::text::cap(value)),
            "mlflow.note.content" => info.description = Some(crate::text::cap(value)),
            "mlflow.user" => info.user = text().or(info.user.take()),
            "mlflow.source.name" => source = text(),
            "mlflow.source.type" => source_type = text(),
            "mlflow.source.git.commit" => info.git_commit = text(),
            "mlflow.parentRunId" => info.parent = text(),
            k if k.starts_with("mlflow.") => {}
            _ if info.tags.len() < crate::MAX_TAGS => {
                info.tags.push(crate::text::cap(&format!("{key}={value}")));
            }
            _ => {}
        }
    }
    info.source = match (source, source_type) {
        (Some(name), Some(kind)) => Some(format!("{name} ({kind})")),
        (name, _) => name,
    };
}

/// Most `log_image` images listed per run.
const MAX_IMAGES: usize = 10_000;

/// The images MLflow's `log_image(key=…, step=…)` wrote beneath
/// `{dir}artifacts/images/` (`dir` empty for a file store's run, the
/// run's directory and `/` for a SQLite store's), as media with key and
/// step; MLflow's compressed `.webp` copies left out. A name lab-fs would
/// not serve (a planted `%2e%2e`) is never media.
pub(crate) fn images(storage: &dyn Storage, dir: &str, info: &mut RunInfo) {
    let rel = format!("{dir}artifacts/images");
    let entries = match list_all(storage, &rel) {
        Ok(entries) => entries,
        Err(StorageError::NotFound) => return,
        Err(e) => {
            info.errors.push(format!("artifacts/images: {e}"));
            return;
        }
    };
    let mut found: Vec<crate::Media> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .filter_map(|e| {
            let image = crate::discover::mlflow_image_name(&e.name).filter(|i| !i.compressed)?;
            let artifact = format!("artifacts/images/{}", e.name);
            if !crate::discover::is_artifact_name(&artifact) {
                return None;
            }
            Some(crate::Media {
                artifact,
                kind: "image",
                step: Some(image.step),
                key: Some(crate::text::cap(&image.key())),
                embedded: false,
                url: None,
            })
        })
        .take(MAX_IMAGES)
        .collect();
    found.sort_by(|a, b| (&a.key, a.step, &a.artifact).cmp(&(&b.key, b.step, &b.artifact)));
    info.media = found;
}

/// Milliseconds since the epoch as ISO 8601 UTC; `None` for none or 0.
pub(crate) fn millis(ms: Option<f64>) -> Option<String> {
    ms.filter(|t| t.is_finite() && *t > 0.0)
        .map(|ms| crate::text::iso8601_utc((ms / 1000.0) as u64))
}

/// The keys under `dir` (files, nested through subdirectories), bounded.
fn keys(storage: &dyn Storage, dir: &str, limit: usize) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut pending = vec![(String::new(), 0usize)];
    while let Some((prefix, depth)) = pending.pop() {
        let rel = if prefix.is_empty() {
            dir.to_owned()
        } else {
            format!("{dir}/{prefix}")
        };
        let entries = match list_all(storage, &rel) {
            Ok(e) => e,
            Err(StorageError::NotFound) if prefix.is_empty() => return Ok(out),
            Err(e) => return Err(format!("{rel}: {e}")),
        };
        for entry in entries {
            if entry.name.starts_with('.') {
                continue;
            }
            let key = if prefix.is_empty() {
                entry.name.clone()
            } else {
                format!("{prefix}/{}", entry.name)
            };
            match entry.kind {
                EntryKind::File if out.len() < limit => out.push(key),
                EntryKind::Dir if depth + 1 < MAX_KEY_DEPTH => pending.push((key, depth + 1)),
                _ => {}
            }
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    info: RunInfo,
    set: SeriesSet,
    metrics: Vec<(String, Tail)>,
    errors: Vec<String>,
}

struct MetricSink<'a> {
    name: &'a str,
    set: &'a mut SeriesSet,
}

impl Sink for MetricSink<'_> {
    fn restart(&mut self) {
        self.set.clear(self.name);
    }

    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let Some((line, used)) = next_line(bytes) else {
            return Ok(0);
        };
        let mut parts = line.split_whitespace();
        let (Some(ts), Some(value)) = (parts.next(), parts.next()) else {
            return Ok(used);
        };
        let step = parts
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0);
        let (Ok(ts), Ok(value)) = (ts.parse::<f64>(), value.parse::<f64>()) else {
            return Ok(used);
        };
        self.set.push(
            self.name,
            Point {
                step,
                wall: ts / 1000.0,
                value,
            },
        );
        Ok(used)
    }
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.errors.clear();
        let mut info = RunInfo::default();
        match read_small(storage, "meta.yaml", MAX_SMALL) {
            Ok(Some(text)) => match crate::yaml::parse(&text) {
                Ok(meta) => {
                    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(crate::text::cap);
                    info.name = text("run_name").filter(|n| !n.is_empty());
                    info.status = meta
                        .get("status")
                        .and_then(Value::as_i64)
                        .map(|n| status_name(n).to_owned());
                    info.created = millis(meta.get("start_time").and_then(Value::as_f64));
                    info.ended = millis(meta.get("end_time").and_then(Value::as_f64));
                    info.user = text("user_id").filter(|u| !u.is_empty());
                    if let Some(exp) = meta.get("experiment_id") {
                        let exp = exp.as_str().map_or_else(|| exp.to_string(), str::to_owned);
                        // The experiment is the run's parent directory;
                        // its name is in that directory's `meta.yaml`,
                        // beyond this run's storage: the core reads it
                        // (`experiment_name`), the id stands in till then.
                        if let Some((parent, _)) = storage.origin().rsplit_once('/') {
                            info.experiment = Some(crate::Group {
                                location: if parent.is_empty() { "/" } else { parent }.to_owned(),
                                name: crate::text::cap(&exp),
                            });
                        }
                    }
                }
                Err(e) => self.errors.push(format!("meta.yaml: {e}")),
            },
            Ok(None) => self.errors.push("meta.yaml: missing".to_owned()),
            Err(e) => self.errors.push(e),
        }
        match keys(storage, "params", MAX_PARAMS) {
            Ok(params) => {
                for key in params {
                    match read_small(storage, &format!("params/{key}"), MAX_SMALL) {
                        Ok(Some(v)) => {
                            info.params.insert(key, Value::String(crate::text::cap(&v)));
                        }
                        Ok(None) => {}
                        Err(e) => self.errors.push(e),
                    }
                }
            }
            Err(e) => self.errors.push(e),
        }
        match keys(storage, "tags", MAX_PARAMS) {
            Ok(keys) => {
                let mut tags = Vec::new();
                for key in keys {
                    match read_small(storage, &format!("tags/{key}"), MAX_SMALL) {
                        Ok(Some(v)) => tags.push((key, v)),
                        Ok(None) => {}
                        Err(e) => self.errors.push(e),
                    }
                }
                apply_tags(&mut info, tags);
            }
            Err(e) => self.errors.push(e),
        }
        images(storage, "", &mut info);
        self.info = info;
        let names = match keys(storage, "metrics", MAX_SERIES) {
            Ok(n) => n,
            Err(e) => {
                self.errors.push(e);
                return;
            }
        };
        for name in names {
            if !self.metrics.iter().any(|(n, _)| *n == name) {
                self.metrics.push((name, Tail::default()));
            }
        }
        let set = &mut self.set;
        for (name, tail) in &mut self.metrics {
            let rel = format!("metrics/{name}");
            let mut sink = MetricSink {
                name,
                set: &mut *set,
            };
            // A file gone is forgotten (its series cleared) by the tail.
            if let Err(e) = tail.follow(storage, &rel, MAX_LINE, &mut sink) {
                self.errors.push(e);
            }
            if let Some(failed) = tail.failed() {
                self.errors.push(failed.to_owned());
            }
        }
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.info.clone();
        info.errors.extend(self.errors.iter().cloned());
        info.errors.extend(self.set.cap_error());
        info
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.set]
    }
}

/// The points an MLflow metric file with `bytes` gives, fed in
/// `chunk`-sized pieces (for the fuzz oracle; the sink never fails).
pub(crate) fn fuzz_metric(bytes: &[u8], chunk: usize) -> Vec<Point> {
    let mut set = SeriesSet::default();
    let mut sink = MetricSink {
        name: "m",
        set: &mut set,
    };
    let _ = crate::tail::feed(&mut sink, bytes, chunk);
    set.get("m")
        .map(|s| s.points().to_vec())
        .unwrap_or_default()
}
