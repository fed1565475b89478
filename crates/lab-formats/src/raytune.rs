//! Ray Tune: one trial directory, `<storage>/<exp>/<trainable>_<trial_id>_
//! <n>_<params>_<date>/`, as `ray/tune/logger/json.py` and `csv.py` write
//! it:
//!
//! - `result.json`: JSON lines, one per reported result, with
//!   `training_iteration` (the x), `timestamp` (wall time, seconds),
//!   `trial_id`, `config`, `done`, Ray's own bookkeeping and the reported
//!   metrics, nested ones flattened as `a/b` (as `progress.csv` names
//!   them). Appended to: followed.
//! - `params.json`: the trial's config, flattened into params (else the
//!   `config` of its results).
//! - `progress.csv`: the same results flattened, but its header is frozen
//!   at the first row (later keys are missing there), so it is read only
//!   where `result.json` is absent.
//! - `params.pkl` is a pickle: never opened. Event files beside them are
//!   Ray's copy of the same results: the trial's, never a run of their own.
//!
//! The experiment directory above (`experiment_state-*.json`,
//! `tuner.pkl`) is the trial's experiment (the core maps it by location);
//! it lies beyond the trial's storage, so the status comes from the trial
//! itself: `done: true` in its last result is `TERMINATED`, an
//! `error.txt` (Ray writes one when a trial fails) is `ERROR`, results
//! written in the last few minutes are `RUNNING`; else nothing is known.
//! The name is `<trainable>_<trial_id>`, as Ray prints a trial; the title
//! is what the directory name says the trial varied (`lr=0.1000,bs=32`).

use serde_json::Value;

use crate::discover::Listing;
use crate::lab::{MAX_LINE, MAX_META_BYTES, read_parsed};
use crate::series::{Point, SeriesSet};
use crate::storage::{Storage, StorageError};
use crate::tail::{Followed, Sink, Tail, next_line};
use crate::ultralytics::{FollowedCsv, RUNNING_WITHIN, StepCsv, created_at, now_secs};
use crate::{MAX_KEY_LEN, RunInfo, flatten};

/// The artifacts this format adds to the default allowlist (Ray's own
/// text files; `params.json` is in the default list already).
pub(crate) const ARTIFACTS: &[&str] = &["result.json", "progress.csv", "error.txt"];

/// Keys of a result that are Ray's bookkeeping, not metrics
/// (`ray/tune/result.py`'s automatic keys, less the times per iteration
/// and in all, which are kept as series).
const BOOKKEEPING: &[&str] = &[
    "training_iteration",
    "timestamp",
    "config",
    "trial_id",
    "experiment_id",
    "experiment_tag",
    "date",
    "pid",
    "hostname",
    "node_ip",
    "done",
    "checkpoint_dir_name",
    "should_checkpoint",
    "iterations_since_restore",
    "time_since_restore",
    "timesteps_since_restore",
    "warmup_time",
];

/// Deepest nesting of a reported metric flattened (`a/b/c/…`).
const MAX_DEPTH: usize = 8;

/// Whether the directory `listing` shows is a Ray Tune trial:
/// `params.json` beside `result.json` or `progress.csv`, and Ray's
/// `params.pkl` or a `trial_id` in the first result.
pub(crate) fn recognises(listing: &Listing<'_>) -> bool {
    listing.file("params.json")
        && (listing.file("result.json") || listing.file("progress.csv"))
        && (listing.file("params.pkl")
            || listing
                .head("result.json", 64 * 1024)
                .is_some_and(|head| String::from_utf8_lossy(&head).contains("\"trial_id\"")))
}

/// The results in `result.json`.
#[derive(Debug, Default)]
struct Results {
    set: SeriesSet,
    rows: i64,
    /// The first result's `timestamp - time_total_s`: when the trial began.
    started: Option<f64>,
    trial_id: Option<String>,
    done: bool,
    config: Option<Value>,
}

impl Results {
    fn line(&mut self, line: &str) {
        // Ray's JSON writes NaN and Infinity bare; read them as null.
        let parsed = crate::text::from_python_json::<Value>(line.as_bytes());
        self.rows += 1;
        let Ok(Value::Object(map)) = parsed else {
            return;
        };
        let step = map
            .get("training_iteration")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite())
            .map_or(self.rows, |s| s as i64);
        let wall = map
            .get("timestamp")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN);
        if self.started.is_none() && wall.is_finite() {
            let total = map
                .get("time_total_s")
                .and_then(Value::as_f64)
                .filter(|t| t.is_finite() && *t >= 0.0)
                .unwrap_or(0.0);
            self.started = Some(wall - total);
        }
        if let Some(id) = map.get("trial_id").and_then(Value::as_str) {
            self.trial_id = Some(crate::text::cap(id));
        }
        self.done = map.get("done").and_then(Value::as_bool) == Some(true);
        if self.config.is_none() {
            self.config = map.get("config").cloned();
        }
        for (key, value) in &map {
            if !BOOKKEEPING.contains(&key.as_str()) {
                self.push(key, value, step, wall, 0);
            }
        }
    }

    fn push(&mut self, key: &str, value: &Value, step: i64, wall: f64, depth: usize) {
        if key.len() > MAX_KEY_LEN || depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::Number(n) => {
                let value = n.as_f64().unwrap_or(f64::NAN);
                self.set.push(key, Point { step, wall, value });
            }
            // A NaN or infinity, read as null.
            Value::Null => self.set.push(
                key,
                Point {
                    step,
                    wall,
                    value: f64::NAN,
                },
            ),
            Value::Object(map) => {
                for (k, v) in map {
                    self.push(&format!("{key}/{k}"), v, step, wall, depth + 1);
                }
            }
            _ => {}
        }
    }
}

impl Sink for Results {
    fn restart(&mut self) {
        *self = Results {
            set: std::mem::take(&mut self.set),
            ..Results::default()
        };
        self.set.clear_all();
    }

    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let Some((line, used)) = next_line(bytes) else {
            return Ok(0);
        };
        let line = line.trim();
        if !line.is_empty() {
            self.line(line);
        }
        Ok(used)
    }
}

#[derive(Debug)]
pub(crate) struct Reader {
    /// params.json, the name and title, `error.txt`.
    meta: RunInfo,
    result: Tail,
    results: Results,
    result_error: Option<String>,
    /// `result.json` is there (else `progress.csv` is read).
    has_result: bool,
    progress: FollowedCsv,
    /// When the results were last written (Unix seconds).
    written: Option<u64>,
    failed: bool,
    /// The directory's own name (the last segment of the storage's origin).
    dir_name: String,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            meta: RunInfo::default(),
            result: Tail::default(),
            results: Results::default(),
            result_error: None,
            has_result: false,
            progress: FollowedCsv::new(StepCsv::new(
                "training_iteration",
                Some("timestamp"),
                BOOKKEEPING,
            )),
            written: None,
            failed: false,
            dir_name: String::new(),
        }
    }
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.dir_name = storage
            .origin()
            .rsplit('/')
            .next()
            .map(crate::text::cap)
            .unwrap_or_default();
        let mut meta = RunInfo::default();
        match read_parsed(storage, "params.json", MAX_META_BYTES) {
            Ok(None) => {}
            Ok(Some(value)) => flatten("", &value, &mut meta.params),
            Err(e) => meta.errors.push(e),
        }
        self.result_error = None;
        self.has_result = true;
        match self
            .result
            .follow(storage, "result.json", MAX_LINE, &mut self.results)
        {
            Ok(Followed::Missing) => self.has_result = false,
            Ok(_) => {}
            Err(e) => self.result_error = Some(e),
        }
        if let Some(failed) = self.result.failed() {
            self.result_error = Some(failed.to_owned());
        }
        self.written = storage.stat("result.json").ok().and_then(|s| s.modified);
        if !self.has_result && self.progress.refresh(storage, "progress.csv") {
            self.written = self.progress.written;
        }
        self.failed = match storage.stat("error.txt") {
            Ok(_) => true,
            Err(StorageError::NotFound) => false,
            Err(e) => {
                meta.errors.push(format!("error.txt: {e}"));
                false
            }
        };
        self.meta = meta;
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        if self.has_result {
            vec![&self.results.set]
        } else {
            vec![&self.progress.sink.set]
        }
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.meta.clone();
        if info.params.is_empty()
            && let Some(config) = &self.results.config
        {
            flatten("", config, &mut info.params);
        }
        if self.has_result {
            info.errors.extend(self.result_error.iter().cloned());
            info.errors.extend(self.results.set.cap_error());
        } else {
            info.errors.extend(self.progress.errors());
        }
        let (name, title) = names(&self.dir_name, self.results.trial_id.as_deref());
        info.name = name;
        info.title = title;
        info.created = self
            .results
            .started
            .filter(|t| t.is_finite() && *t >= 0.0)
            .and_then(|t| created_at(t.round() as u64));
        info.status = if self.failed {
            Some("ERROR".to_owned())
        } else if self.results.done {
            Some("TERMINATED".to_owned())
        } else if self
            .written
            .is_some_and(|at| now_secs().saturating_sub(at) < RUNNING_WITHIN)
        {
            Some("RUNNING".to_owned())
        } else {
            None
        };
        info
    }
}

/// The trial's name (`<trainable>_<trial_id>`) and title (what it varied)
/// from its directory's name, `<trainable>_<trial_id>_<n>_<params>_<date>`;
/// with no trial id known yet, neither.
fn names(dir: &str, trial_id: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(id) = trial_id.filter(|id| !id.is_empty()) else {
        return (None, None);
    };
    let Some(at) = dir.find(&format!("_{id}_")) else {
        return (Some(id.to_owned()), None);
    };
    let name = &dir[..at + 1 + id.len()];
    let rest = &dir[at + id.len() + 2..];
    // `_YYYY-MM-DD_HH-MM-SS` ends the name.
    let rest = match rest.len().checked_sub(20) {
        Some(cut) if rest.is_char_boundary(cut) && is_date(&rest[cut..]) => &rest[..cut],
        _ => rest,
    };
    // `<n>_` begins it: the trial's number.
    let tag = match rest.split_once('_') {
        Some((n, tag)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => tag,
        _ if rest.bytes().all(|b| b.is_ascii_digit()) => "",
        _ => rest,
    };
    let title = (!tag.is_empty() && tag.len() <= 200).then(|| tag.to_owned());
    (Some(name.to_owned()), title)
}

/// `_YYYY-MM-DD_HH-MM-SS`.
fn is_date(s: &str) -> bool {
    let shape = b"_0000-00-00_00-00-00";
    s.len() == shape.len()
        && s.bytes().zip(shape.iter()).all(|(b, want)| {
            if *want == b'0' {
                b.is_ascii_digit()
            } else {
                b == *want
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::Memory;

    #[test]
    fn a_trial_directory_name_gives_its_name_and_what_it_varied() {
        for (dir, id, name, title) in [
            (
                "trainable_f83ef_00000_0_lr=0.1000_2026-12-07_11-25-56",
                "f83ef_00000",
                Some("trainable_f83ef_00000"),
                Some("lr=0.1000"),
            ),
            (
                "train_fn_ab_00003_3_bs=32,lr=0.0100_2026-01-02_03-04-05",
                "ab_00003",
                Some("train_fn_ab_00003"),
                Some("bs=32,lr=0.0100"),
            ),
            // Nothing varied.
            (
                "trainable_c_00000_0_2026-12-07_11-25-56",
                "c_00000",
                Some("trainable_c_00000"),
                None,
            ),
            // A directory named otherwise: the id alone.
            ("custom-name", "c_00000", Some("c_00000"), None),
            ("é_x_1_é", "x", Some("é_x"), Some("é")),
        ] {
            let (n, t) = names(dir, Some(id));
            assert_eq!((n.as_deref(), t.as_deref()), (name, title), "{dir}");
        }
        assert_eq!(
            names("trainable_x_0_a=1_2026-12-07_11-25-56", None),
            (None, None)
        );
    }

    #[test]
    fn results_are_series_by_iteration_and_result_json_wins() {
        let memory = Memory::default();
        memory.put("params.json", br#"{"lr": 0.1, "opt": {"name": "adam"}}"#);
        memory.put(
            "result.json",
            b"{\"loss\": 0.5, \"nested\": {\"acc\": 0.25}, \"timestamp\": 1700000010, \"time_total_s\": 10.0, \"training_iteration\": 1, \"trial_id\": \"a_00000\", \"done\": false, \"config\": {\"lr\": 0.1}, \"pid\": 7}\n{\"loss\": NaN, \"extra\": 3, \"timestamp\": 1700000020, \"training_iteration\": 2, \"done\": true}\n",
        );
        memory.put("progress.csv", b"loss,training_iteration\n9,1\n");
        let mut reader = Reader::default();
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.params["opt.name"], "adam");
        assert_eq!(info.created.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(info.status.as_deref(), Some("TERMINATED"));
        let set = &reader.results.set;
        let loss = set.get("loss").unwrap().points();
        assert_eq!((loss[0].step, loss[0].value), (1, 0.5));
        assert!(loss[1].value.is_nan());
        assert_eq!(set.get("nested/acc").unwrap().points().len(), 1);
        assert_eq!(set.get("extra").unwrap().points()[0].step, 2);
        assert!(set.get("pid").is_none() && set.get("timestamp").is_none());
        // Without result.json, progress.csv.
        let memory = Memory::default();
        memory.put("params.json", b"{}");
        memory.put(
            "progress.csv",
            b"loss,done,training_iteration,trial_id,nested/acc\n0.5,False,1,a_0,0.1\n",
        );
        memory.put("error.txt", b"Traceback");
        let mut reader = Reader::default();
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.status.as_deref(), Some("ERROR"));
        assert_eq!(reader.series_names(), ["loss", "nested/acc"]);
    }

    /// Strings that hold the words stay as written beside a bare NaN.
    #[test]
    fn a_bare_nan_leaves_strings_naming_it_alone() {
        let memory = Memory::default();
        memory.put(
            "result.json",
            b"{\"loss\": NaN, \"training_iteration\": 1, \"trial_id\": \"NaN_1\", \"config\": {\"act\": \"NaN-safe\", \"lo\": \"-Infinity\"}}\n",
        );
        let mut reader = Reader::default();
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.params["act"], "NaN-safe");
        assert_eq!(info.params["lo"], "-Infinity");
        assert_eq!(reader.results.trial_id.as_deref(), Some("NaN_1"));
        assert!(
            reader.results.set.get("loss").unwrap().points()[0]
                .value
                .is_nan()
        );
    }

    impl Reader {
        fn series_names(&self) -> Vec<String> {
            self.sets()
                .iter()
                .flat_map(|s| s.summaries())
                .map(|m| m.name)
                .collect()
        }
    }
}
