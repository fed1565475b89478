//! Ultralytics: `runs/<task>/[<project>/]<name>[N]/`, as
//! `ultralytics/cfg/__init__.py` `get_save_dir` names it, with what
//! `ultralytics/engine/trainer.py` writes there:
//!
//! - `args.yaml` (`BaseTrainer.__init__`, `YAML.save(save_dir /
//!   "args.yaml", vars(self.args))`): every hyperparameter, flattened into
//!   params; its `name` is the run's name. Paths in it (`data:`, `model:`)
//!   are text, never opened. The run was created when it was written.
//! - `results.csv` (`BaseTrainer.save_metrics`): a header `epoch,time,
//!   <keys…>` (padded with spaces by older versions), then one row per
//!   epoch, 1-based, values `%.6g`. Each column but `epoch` is a series by
//!   epoch, its name as written (`train/box_loss`, `metrics/mAP50(B)`,
//!   `lr/pg0`, `time`). The file is appended to: followed.
//! - `weights/{last,best}.pt` are pickles: never opened, never served.
//! - plots and batch images (`results.png`, `confusion_matrix.png`,
//!   `train_batch0.jpg`, `val_batch0_pred.jpg`) at the top: media.
//!
//! Ultralytics writes no status: a run whose last row is its `epochs`th
//! is finished; one whose `results.csv` was written in the last
//! [`RUNNING_WITHIN`] seconds is running; else unknown.

use serde_json::Value;

use crate::discover::Listing;
use crate::lab::{MAX_LINE, MAX_META_BYTES, read_parsed};
use crate::series::{Point, SeriesSet};
use crate::storage::{EntryKind, Storage, StorageError, list_all};
use crate::tail::{Followed, Sink, Tail, next_line};
use crate::text::{csv_fields, number};
use crate::{Media, RunInfo, flatten};

/// The artifacts this format adds to the default allowlist: its own
/// files (text) and the plots and batch images at the top. Never
/// `weights/*.pt`.
pub(crate) const ARTIFACTS: &[&str] = &["args.yaml", "results.csv", "*.png", "*.jpg"];

/// A run whose metrics file was written less than this many seconds ago,
/// and that says nothing of its own end, is running.
pub(crate) const RUNNING_WITHIN: u64 = 10 * 60;

/// Whether the directory `listing` shows is a run of this format: an
/// `args.yaml` that starts as Ultralytics' does (`task:` and `mode:`
/// lines among its first bytes), beside `results.csv` or `weights/`.
pub(crate) fn recognises(listing: &Listing<'_>) -> bool {
    listing.file("args.yaml")
        && (listing.file("results.csv") || listing.subdir("weights"))
        && listing
            .head("args.yaml", 4096)
            .is_some_and(|head| looks_like_args(&head))
}

fn looks_like_args(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let has = |key: &str| text.lines().any(|l| l.starts_with(key));
    has("task:") && has("mode:")
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The last second of the year 9999: a later time is no ISO 8601 date
/// of four-digit years, and no run's.
const LAST_SECOND: u64 = 253_402_300_799;

/// `secs` after the Unix epoch as ISO 8601 UTC, when it is a time a run
/// may have been created at (up to the year 9999).
pub(crate) fn created_at(secs: u64) -> Option<String> {
    (secs <= LAST_SECOND).then(|| crate::text::iso8601_utc(secs))
}

/// Rows of a CSV file with a header, as series by the number in one
/// column (`epoch`, Ray's `training_iteration`): every other column whose
/// cell is a number is a point of the series named by its (trimmed)
/// header. Cells that are not numbers (`False`, an id) are passed over.
#[derive(Debug, Default)]
pub(crate) struct StepCsv {
    pub(crate) set: SeriesSet,
    header: Option<Vec<String>>,
    /// The column that is the x.
    pub(crate) step: &'static str,
    /// The column that is wall time in seconds, if any.
    pub(crate) wall: Option<&'static str>,
    /// Columns that are neither series nor axes.
    pub(crate) skip: &'static [&'static str],
    /// Rows read (the x of a row without a step).
    rows: i64,
    /// The largest step read.
    pub(crate) last_step: Option<i64>,
}

impl StepCsv {
    pub(crate) fn new(
        step: &'static str,
        wall: Option<&'static str>,
        skip: &'static [&'static str],
    ) -> Self {
        Self {
            step,
            wall,
            skip,
            ..Self::default()
        }
    }

    fn row(&mut self, line: &str) {
        let fields: Vec<String> = csv_fields(line, ',')
            .into_iter()
            .map(|f| f.trim().to_owned())
            .collect();
        let Some(header) = &self.header else {
            self.header = Some(fields);
            return;
        };
        let cell = |name: &str| {
            let i = header.iter().position(|h| h == name)?;
            number(fields.get(i)?)
        };
        let step = cell(self.step)
            .filter(|s| s.is_finite())
            .map_or(self.rows, |s| s as i64);
        let wall = self.wall.and_then(cell).unwrap_or(f64::NAN);
        for (name, raw) in header.iter().zip(&fields) {
            if name == self.step
                || self.wall == Some(name.as_str())
                || self.skip.contains(&name.as_str())
            {
                continue;
            }
            if let Some(value) = number(raw) {
                self.set.push(name, Point { step, wall, value });
            }
        }
        self.last_step = Some(self.last_step.map_or(step, |s| s.max(step)));
        self.rows += 1;
    }
}

impl Sink for StepCsv {
    fn restart(&mut self) {
        self.set.clear_all();
        self.header = None;
        self.rows = 0;
        self.last_step = None;
    }

    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let Some((line, used)) = next_line(bytes) else {
            return Ok(0);
        };
        let line = line.trim();
        if !line.is_empty() {
            self.row(line);
        }
        Ok(used)
    }
}

/// One followed CSV file and why it stopped, if it did.
#[derive(Debug, Default)]
pub(crate) struct FollowedCsv {
    tail: Tail,
    pub(crate) sink: StepCsv,
    pub(crate) error: Option<String>,
    /// When it was last written (Unix seconds), as last seen.
    pub(crate) written: Option<u64>,
}

impl FollowedCsv {
    pub(crate) fn new(sink: StepCsv) -> Self {
        Self {
            sink,
            ..Self::default()
        }
    }

    /// Reads what was appended to `rel`; false when it is not there.
    pub(crate) fn refresh(&mut self, storage: &dyn Storage, rel: &str) -> bool {
        self.error = None;
        self.written = storage.stat(rel).ok().and_then(|s| s.modified);
        let present = match self.tail.follow(storage, rel, MAX_LINE, &mut self.sink) {
            Ok(Followed::Missing) => false,
            Ok(_) => true,
            Err(e) => {
                self.error = Some(e);
                true
            }
        };
        if let Some(failed) = self.tail.failed() {
            self.error = Some(failed.to_owned());
        }
        present
    }

    pub(crate) fn errors(&self) -> Vec<String> {
        let mut errors: Vec<String> = self.error.iter().cloned().collect();
        errors.extend(self.sink.set.cap_error());
        errors
    }
}

/// The images at the top of `prefix` (`""` for the run's top) whose
/// extension is one of `exts`: media without a step, keyed by their stem.
pub(crate) fn images(storage: &dyn Storage, prefix: &str, exts: &[&str]) -> Vec<Media> {
    let Ok(entries) = list_all(storage, prefix) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|e| e.kind == EntryKind::File)
        .filter_map(|e| {
            let (stem, ext) = e.name.rsplit_once('.')?;
            if stem.is_empty() || !exts.contains(&ext) {
                return None;
            }
            Some(Media {
                artifact: if prefix.is_empty() {
                    e.name.clone()
                } else {
                    format!("{prefix}/{}", e.name)
                },
                kind: "image",
                step: None,
                key: Some(stem.to_owned()),
                embedded: false,
                url: None,
            })
        })
        .collect()
}

#[derive(Debug)]
pub(crate) struct Reader {
    args: RunInfo,
    /// `args.yaml`'s `epochs`: how many rows a finished run has.
    epochs: Option<i64>,
    results: FollowedCsv,
    media: Vec<Media>,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            args: RunInfo::default(),
            epochs: None,
            results: FollowedCsv::new(StepCsv::new("epoch", None, &[])),
            media: Vec::new(),
        }
    }
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        let mut args = RunInfo::default();
        self.epochs = None;
        match read_parsed(storage, "args.yaml", MAX_META_BYTES) {
            Ok(None) => args.errors.push("args.yaml: missing".to_owned()),
            Ok(Some(value)) => {
                flatten("", &value, &mut args.params);
                args.name = value
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .map(crate::text::cap);
                self.epochs = value.get("epochs").and_then(Value::as_i64);
                args.created = match storage.stat("args.yaml") {
                    Ok(stat) => stat.modified.and_then(created_at),
                    Err(StorageError::NotFound) => None,
                    Err(e) => {
                        args.errors.push(format!("args.yaml: {e}"));
                        None
                    }
                };
            }
            Err(e) => args.errors.push(e),
        }
        self.args = args;
        self.results.refresh(storage, "results.csv");
        self.media = images(storage, "", &["png", "jpg"]);
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.results.sink.set]
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.args.clone();
        info.errors.extend(self.results.errors());
        let last = self.results.sink.last_step;
        info.status = if last.is_some() && last >= self.epochs && self.epochs.is_some() {
            Some("finished".to_owned())
        } else if self
            .results
            .written
            .is_some_and(|at| now_secs().saturating_sub(at) < RUNNING_WITHIN)
        {
            Some("running".to_owned())
        } else {
            None
        };
        info.media = self.media.clone();
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::Memory;

    const ARGS: &str = "task: detect\nmode: train\nmodel: ../../../etc/passwd\ndata: /etc/shadow\nepochs: 3\nlr0: 0.01\nname: train2\n";

    #[test]
    fn padded_headers_and_values_read_as_series_by_epoch() {
        let memory = Memory::default();
        memory.put("args.yaml", ARGS.as_bytes());
        memory.put(
            "results.csv",
            b"                  epoch,         train/box_loss,       metrics/mAP50(B)\n                      1,                 1.2345,                   0.1\n                      2,                 1.1,                    0.2\n",
        );
        let mut reader = Reader::default();
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.params["lr0"], 0.01);
        assert_eq!(info.params["data"], "/etc/shadow");
        assert_eq!(info.name.as_deref(), Some("train2"));
        let box_loss = reader.results.sink.set.get("train/box_loss").unwrap();
        let steps: Vec<i64> = box_loss.points().iter().map(|p| p.step).collect();
        assert_eq!(steps, [1, 2]);
        assert_eq!(
            reader
                .results
                .sink
                .set
                .get("metrics/mAP50(B)")
                .unwrap()
                .points()[1]
                .value,
            0.2
        );
        // Two of three epochs, and no time known: unknown.
        assert_eq!(reader.info().status, None);
        memory.put(
            "results.csv",
            b"epoch,time,train/box_loss\n1,1.5,1\n2,3,0.5\n3,4.5,0.25\n",
        );
        reader.refresh(&memory);
        // The third of three epochs ends it.
        assert_eq!(reader.info().status.as_deref(), Some("finished"));
        assert_eq!(
            reader.results.sink.set.get("time").unwrap().points()[2].value,
            4.5
        );
    }

    #[test]
    fn a_directory_is_a_run_only_with_ultralytics_args() {
        assert!(looks_like_args(ARGS.as_bytes()));
        assert!(!looks_like_args(b"lr: 0.1\nepochs: 3\n"));
    }
}
