//! DVCLive: the directory holding `dvclive/` (`dvc.yaml` beside it), as
//! `dvclive/live.py` writes it:
//!
//! - `dvclive/params.yaml` (`Live.log_params`): flattened into params.
//! - `dvclive/plots/metrics/<name>.tsv` (`Live.log_metric`, through
//!   `dvclive/plots/metric.py`): a header `step\t<last segment of the
//!   name>` (with a `timestamp` column in milliseconds when asked for),
//!   then a row per step; a name with `/` is a subdirectory, so
//!   `plots/metrics/train/loss.tsv` is the series `train/loss`. Appended
//!   to: followed.
//! - `dvclive/metrics.json` (`Live.make_summary`): the latest values,
//!   nested by `/`, and `step`. A metric found there alone (logged with
//!   `plot=False`) is a series of one point at that step.
//! - images under `dvclive/plots/images/` (`Live.log_image`): media.
//!
//! Where the allowed root itself holds `dvclive/`, the `dvclive` directory
//! (a direct child of the root) is the run, read the same way without the
//! prefix. DVCLive writes no start time or status: the run was created
//! when `params.yaml` was written, and is running while its metrics were
//! written in the last few minutes.

use serde_json::Value;

use crate::discover::Listing;
use crate::lab::{MAX_LINE, MAX_META_BYTES, read_parsed};
use crate::series::{Point, SeriesSet};
use crate::storage::{EntryKind, Storage, StorageError, list_all};
use crate::tail::{Sink, Tail, next_line};
use crate::text::number;
use crate::ultralytics::{RUNNING_WITHIN, created_at, images, now_secs};
use crate::{MAX_KEY_LEN, MAX_SERIES, Media, RunInfo, flatten};

/// The artifacts this format adds to the default allowlist: the images
/// `Live.log_image` writes without a step directory (with one they are a
/// segment deeper than any pattern reaches), beneath `dvclive/` or, for
/// the `dvclive` directory as a run, beneath the run.
pub(crate) const ARTIFACTS: &[&str] = &[
    "dvclive/plots/images/*.png",
    "dvclive/plots/images/*.jpg",
    "dvclive/plots/images/*.gif",
    "dvclive/metrics.json",
    "dvclive/params.yaml",
    "dvc.yaml",
    "plots/images/*.png",
    "plots/images/*.jpg",
    "plots/images/*.gif",
];

/// Deepest nesting of a metric name (`a/b/c/d`).
const MAX_NAME_DEPTH: usize = 4;

/// Whether the directory `listing` shows is a DVCLive run: it holds a
/// `dvclive/` directory with DVCLive's files, or it is that directory,
/// directly beneath the allowed root.
pub(crate) fn recognises(listing: &Listing<'_>) -> bool {
    let has = |prefix: &str| {
        listing.head(&format!("{prefix}metrics.json"), 1).is_some()
            || listing.head(&format!("{prefix}params.yaml"), 1).is_some()
            || listing.storage().is_some_and(|s| {
                list_all(s, &format!("{prefix}plots"))
                    .is_ok_and(|e| e.iter().any(|e| e.name == "metrics" || e.name == "images"))
            })
    };
    (listing.subdir("dvclive") && has("dvclive/"))
        || (listing.depth == 1 && listing.name == "dvclive" && has(""))
}

/// One `.tsv` file's rows.
#[derive(Debug)]
struct Tsv<'a> {
    name: &'a str,
    set: &'a mut SeriesSet,
    header: &'a mut Option<Vec<String>>,
}

impl Sink for Tsv<'_> {
    fn restart(&mut self) {
        self.set.clear(self.name);
        *self.header = None;
    }

    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let Some((line, used)) = next_line(bytes) else {
            return Ok(0);
        };
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(used);
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let Some(header) = &*self.header else {
            *self.header = Some(fields.iter().map(|f| f.trim().to_owned()).collect());
            return Ok(used);
        };
        let cell = |name: &str| {
            let i = header.iter().position(|h| h == name)?;
            number(fields.get(i)?)
        };
        // The value is the column that is neither the step nor the time.
        let Some(at) = header.iter().rposition(|h| h != "step" && h != "timestamp") else {
            return Ok(used);
        };
        let Some(value) = fields.get(at).and_then(|v| number(v)) else {
            return Ok(used);
        };
        let Some(step) = cell("step").filter(|s| s.is_finite()) else {
            return Ok(used);
        };
        let wall = cell("timestamp").map_or(f64::NAN, |ms| ms / 1000.0);
        self.set.push(
            self.name,
            Point {
                step: step as i64,
                wall,
                value,
            },
        );
        Ok(used)
    }
}

#[derive(Debug, Default)]
struct TsvFile {
    tail: Tail,
    header: Option<Vec<String>>,
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    meta: RunInfo,
    /// `dvclive/`, or nothing where the run is the `dvclive` directory.
    prefix: &'static str,
    plots: SeriesSet,
    files: Vec<(String, TsvFile)>,
    /// Metrics in `metrics.json` with no plot of their own.
    summary: SeriesSet,
    errors: Vec<String>,
    written: Option<u64>,
    media: Vec<Media>,
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        let prefix = match list_all(storage, "") {
            Ok(top)
                if top
                    .iter()
                    .any(|e| e.kind == EntryKind::Dir && e.name == "dvclive") =>
            {
                "dvclive/"
            }
            _ => "",
        };
        if prefix != self.prefix {
            *self = Reader {
                prefix,
                ..Reader::default()
            };
        }
        self.errors.clear();
        let mut meta = RunInfo::default();
        let params = format!("{prefix}params.yaml");
        match read_parsed(storage, &params, MAX_META_BYTES) {
            Ok(None) => {}
            Ok(Some(value)) => {
                flatten("", &value, &mut meta.params);
                meta.created = storage
                    .stat(&params)
                    .ok()
                    .and_then(|s| s.modified)
                    .and_then(created_at);
            }
            Err(e) => meta.errors.push(e),
        }
        self.meta = meta;
        self.refresh_plots(storage);
        let metrics = format!("{prefix}metrics.json");
        self.summary = SeriesSet::default();
        self.written = None;
        match read_parsed(storage, &metrics, MAX_META_BYTES) {
            Ok(None) => {}
            Ok(Some(Value::Object(map))) => {
                self.written = storage.stat(&metrics).ok().and_then(|s| s.modified);
                let step = map
                    .get("step")
                    .and_then(Value::as_f64)
                    .filter(|s| s.is_finite())
                    .map_or(0, |s| s as i64);
                let mut leaves = Vec::new();
                for (k, v) in &map {
                    if k != "step" {
                        leaves_of(k, v, 0, &mut leaves);
                    }
                }
                for (name, value) in leaves {
                    if self.plots.get(&name).is_none_or(|s| s.points().is_empty()) {
                        let point = Point {
                            step,
                            wall: f64::NAN,
                            value,
                        };
                        self.summary.push(&name, point);
                    }
                }
            }
            Ok(Some(_)) => self.errors.push(format!("{metrics}: not an object")),
            Err(e) => self.errors.push(e),
        }
        self.media = images(
            storage,
            &format!("{prefix}plots/images"),
            &["png", "jpg", "gif"],
        );
    }

    /// Follows every `.tsv` beneath `plots/metrics`.
    fn refresh_plots(&mut self, storage: &dyn Storage) {
        let base = format!("{}plots/metrics", self.prefix);
        for name in self.tsv_names(storage, &base) {
            if !self.files.iter().any(|(n, _)| *n == name) {
                self.files.push((name, TsvFile::default()));
            }
        }
        let set = &mut self.plots;
        for (name, file) in &mut self.files {
            let rel = format!("{base}/{name}.tsv");
            let mut sink = Tsv {
                name,
                set: &mut *set,
                header: &mut file.header,
            };
            // A file gone is forgotten (its series cleared) by the tail.
            if let Err(e) = file.tail.follow(storage, &rel, MAX_LINE, &mut sink) {
                self.errors.push(e);
            }
            if let Some(failed) = file.tail.failed() {
                self.errors.push(failed.to_owned());
            }
        }
    }

    /// The series names of the `.tsv` files beneath `base`, bounded.
    fn tsv_names(&mut self, storage: &dyn Storage, base: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![(String::new(), 1usize)];
        while let Some((prefix, depth)) = pending.pop() {
            let rel = if prefix.is_empty() {
                base.to_owned()
            } else {
                format!("{base}/{prefix}")
            };
            let entries = match list_all(storage, &rel) {
                Ok(e) => e,
                Err(StorageError::NotFound) => continue,
                Err(e) => {
                    self.errors.push(format!("{rel}: {e}"));
                    continue;
                }
            };
            for entry in entries {
                let key = if prefix.is_empty() {
                    entry.name.clone()
                } else {
                    format!("{prefix}/{}", entry.name)
                };
                match entry.kind {
                    EntryKind::File if out.len() < MAX_SERIES => {
                        if let Some(name) = key.strip_suffix(".tsv")
                            && !name.is_empty()
                            && name.len() <= MAX_KEY_LEN
                        {
                            out.push(name.to_owned());
                        }
                    }
                    EntryKind::Dir if depth < MAX_NAME_DEPTH => pending.push((key, depth + 1)),
                    // A link or FIFO where a plot should be: never opened.
                    EntryKind::Other if key.ends_with(".tsv") => self
                        .errors
                        .push(format!("{base}/{key}: {}", StorageError::NotAFile)),
                    _ => {}
                }
            }
        }
        out.sort();
        out
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.plots, &self.summary]
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.meta.clone();
        info.errors.extend(self.errors.iter().cloned());
        info.errors.extend(self.plots.cap_error());
        info.errors.extend(self.summary.cap_error());
        if self
            .written
            .is_some_and(|at| now_secs().saturating_sub(at) < RUNNING_WITHIN)
        {
            info.status = Some("running".to_owned());
        }
        info.media = self.media.clone();
        info
    }
}

/// The numbers in a `metrics.json` value, their names joined by `/`.
fn leaves_of(key: &str, value: &Value, depth: usize, out: &mut Vec<(String, f64)>) {
    if key.len() > MAX_KEY_LEN || depth >= MAX_NAME_DEPTH || out.len() >= MAX_SERIES {
        return;
    }
    match value {
        Value::Number(n) => out.push((key.to_owned(), n.as_f64().unwrap_or(f64::NAN))),
        Value::Object(map) => {
            for (k, v) in map {
                leaves_of(&format!("{key}/{k}"), v, depth + 1, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::Memory;

    #[test]
    fn plots_are_series_and_the_summary_fills_in_the_rest() {
        let memory = Memory::default();
        memory.put("dvclive/params.yaml", b"lr: 0.01\nmodel:\n  depth: 4\n");
        memory.put(
            "dvclive/plots/metrics/train/loss.tsv",
            b"step\tloss\n0\t1.0\n1\t0.5\n",
        );
        memory.put(
            "dvclive/plots/metrics/acc.tsv",
            b"timestamp\tstep\tacc\n1700000000000\t0\t0.1\n",
        );
        memory.put(
            "dvclive/metrics.json",
            br#"{"train": {"loss": 0.5}, "acc": 0.1, "best": {"f1": 0.75}, "step": 1}"#,
        );
        memory.put("dvclive/plots/images/final.png", b"\x89PNG");
        let mut reader = Reader::default();
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.params["model.depth"], 4);
        let loss = reader.plots.get("train/loss").unwrap().points();
        assert_eq!((loss.len(), loss[1].step, loss[1].value), (2, 1, 0.5));
        let acc = reader.plots.get("acc").unwrap().points();
        assert_eq!(acc[0].wall, 1_700_000_000.0);
        let f1 = reader.summary.get("best/f1").unwrap().points();
        assert_eq!((f1.len(), f1[0].step, f1[0].value), (1, 1, 0.75));
        assert!(reader.summary.get("train/loss").is_none());
        assert_eq!(info.media[0].artifact, "dvclive/plots/images/final.png");
        // Written again with a row more: read again.
        memory.put(
            "dvclive/plots/metrics/train/loss.tsv",
            b"step\tloss\n0\t1.0\n1\t0.5\n2\t0.25\n",
        );
        reader.refresh(&memory);
        assert_eq!(reader.plots.get("train/loss").unwrap().points().len(), 3);
    }
}
