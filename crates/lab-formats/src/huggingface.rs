//! Hugging Face Trainer output directories (transformers/trainer_callback.py,
//! `TrainerState.save_to_json`; transformers/trainer.py, `Trainer.log`):
//! `trainer_state.json` (written by `save_state()` at the end, and into
//! every `checkpoint-N/` as training goes) holds `log_history` — one row
//! per `log` call, `{loss, grad_norm, learning_rate, epoch, step}` while
//! training, `{eval_*, epoch, step}` after an evaluation, and a last
//! `{train_runtime, train_loss, total_flos, …}` row when `train()`
//! returned — and the state (`global_step`, `epoch`, `max_steps`,
//! `best_metric`, `best_model_checkpoint`, `trial_params`, …). JSON with
//! Python's bare `NaN` and `Infinity` (a diverged loss writes them).
//! `training_args.json`, when a script wrote it, holds the
//! hyperparameters (`TrainingArguments.to_json_string()`).
//!
//! The run is the output directory; its `checkpoint-N/` copies are not
//! runs: without a `trainer_state.json` of its own (training still going,
//! or stopped before `save_state()`), the newest checkpoint's state is the
//! run's. Series: every number of a `log_history` row but `step` (the x)
//! and `epoch`; params: `training_args.json` flattened, and the state's
//! values as `state.*`; name: `run_name`; title: `trial_params` (what a
//! hyperparameter search varied); status: `finished` once the last row
//! (`train_runtime`) is there, `running` while the state was written in
//! the last 15 minutes, else unknown; created: the earliest time one of
//! the files read was last written (the format records no start time).
//! `best_model_checkpoint` is a path the run's files name: shown only as a
//! name beneath the run (an absolute path under its root, or a relative
//! one whose last segment is one of its `checkpoint-N/`), never read.
//! `training_args.bin` is a `torch.save` pickle and is never opened; the
//! event files under `runs/` (the TensorBoard callback's copy of the same
//! scalars) are not read, and discovery does not descend into the run.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::discover::Listing;
use crate::lab::{MAX_META_BYTES, read_parsed};
use crate::series::{Point, SeriesSet};
use crate::storage::{EntryKind, Stat, Storage, StorageError, check_name, list_all};
use crate::text::{Bare, python_json};
use crate::{RunInfo, flatten};

/// The artifacts this format adds to the default allowlist: the Trainer's
/// JSON files (never its pickles or weights) and the model card.
pub(crate) const ARTIFACTS: &[&str] = &[
    "trainer_state.json",
    "training_args.json",
    "all_results.json",
    "train_results.json",
    "eval_results.json",
    "README.md",
];

const STATE: &str = "trainer_state.json";
const ARGS: &str = "training_args.json";
/// Largest `trainer_state.json` read (a long run logging every step).
pub(crate) const MAX_STATE_BYTES: u64 = 32 << 20;
/// A state not written for this long is no longer `running`.
const SILENT_AFTER: u64 = 15 * 60;
/// Most checkpoint directories looked into for a state.
const MAX_CHECKPOINTS_TRIED: usize = 8;
/// Longest title made of `trial_params`.
const MAX_TITLE: usize = 200;

/// `N` of a directory named `checkpoint-N`.
fn checkpoint_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("checkpoint-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether the directory `listing` shows is a run of this format: it holds
/// `trainer_state.json`, or a `checkpoint-N/` that does — and is not
/// itself a checkpoint (its output directory is the run).
pub(crate) fn recognises(listing: &Listing<'_>) -> bool {
    if checkpoint_number(listing.name).is_some() {
        return false;
    }
    listing.file(STATE)
        || listing
            .subdirs()
            .filter(|d| checkpoint_number(d).is_some())
            .take(MAX_CHECKPOINTS_TRIED)
            .any(|d| listing.head(&format!("{d}/{STATE}"), 1).is_some())
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// The state file read and what it was then.
    state_seen: Option<(String, Stat)>,
    state: Parsed,
    /// An incomplete state (still being written?), and when it was.
    incomplete: Option<(String, Option<u64>)>,
    state_error: Option<String>,
    args_seen: Option<Stat>,
    args: RunInfo,
    /// Read this refresh: the run's own errors, created, best checkpoint.
    errors: Vec<String>,
    created: Option<u64>,
    best: Option<String>,
}

/// What one `trainer_state.json` said.
#[derive(Debug, Default)]
struct Parsed {
    set: SeriesSet,
    params: BTreeMap<String, Value>,
    title: Option<String>,
    finished: bool,
    written: Option<u64>,
    best_raw: Option<String>,
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.errors.clear();
        let entries = match list_all(storage, "") {
            Ok(entries) => entries,
            Err(e) => {
                self.errors.push(format!("the run's directory: {e}"));
                return;
            }
        };
        let mut checkpoints: Vec<(u64, &str)> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Dir)
            .filter_map(|e| Some((checkpoint_number(&e.name)?, e.name.as_str())))
            .collect();
        checkpoints.sort_unstable();
        let mut oldest_written = None;
        let mut state_name = None;
        match entries.iter().find(|e| e.name == STATE).map(|e| e.kind) {
            Some(EntryKind::File) => state_name = Some(STATE.to_owned()),
            Some(_) => self
                .errors
                .push(format!("{STATE}: {}", StorageError::NotAFile)),
            None => {}
        }
        if state_name.is_none() {
            state_name = checkpoints
                .iter()
                .rev()
                .take(MAX_CHECKPOINTS_TRIED)
                .map(|(_, d)| format!("{d}/{STATE}"))
                .find(|name| storage.stat(name).is_ok());
        }
        if let Some((_, first)) = checkpoints.first() {
            oldest_written = storage
                .stat(&format!("{first}/{STATE}"))
                .ok()
                .and_then(|s| s.modified);
        }
        match &state_name {
            Some(name) => self.read_state(storage, name),
            None => {
                self.errors
                    .push(format!("no {STATE} here, nor in a checkpoint-N/ directory"));
                self.state_seen = None;
                self.state = Parsed::default();
            }
        }
        self.read_args(storage);
        self.created = [
            oldest_written,
            self.state.written,
            self.args_seen.as_ref().and_then(|s| s.modified),
        ]
        .into_iter()
        .flatten()
        .min();
        let dirs: Vec<&str> = checkpoints.iter().map(|(_, d)| *d).collect();
        self.best = self
            .state
            .best_raw
            .as_deref()
            .and_then(|raw| beneath_the_run(raw, storage.origin(), &dirs));
    }

    fn read_state(&mut self, storage: &dyn Storage, name: &str) {
        let stat = match storage.stat(name) {
            Ok(stat) => stat,
            Err(e) => {
                self.state_error = Some(format!("{name}: {e}"));
                return;
            }
        };
        if self
            .state_seen
            .as_ref()
            .is_some_and(|(n, s)| n == name && *s == stat)
        {
            return;
        }
        self.state_error = None;
        self.incomplete = None;
        if stat.len > MAX_STATE_BYTES {
            self.state_error = Some(format!("{name}: larger than {MAX_STATE_BYTES} bytes"));
            self.state_seen = Some((name.to_owned(), stat));
            return;
        }
        let want = usize::try_from(stat.len)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let bytes = match storage.read_range(name, 0, want, Some(&stat.version)) {
            Ok(bytes) => bytes,
            Err(StorageError::Changed) => return,
            Err(e) => {
                self.state_error = Some(format!("{name}: {e}"));
                return;
            }
        };
        if bytes.len() as u64 != stat.len {
            // Written while read: read again next time.
            return;
        }
        let written = stat.modified;
        self.state_seen = Some((name.to_owned(), stat));
        match parse_state(&bytes) {
            Ok(mut parsed) => {
                parsed.written = written;
                self.state = parsed;
            }
            Err(e) if e.is_eof() => self.incomplete = Some((format!("{name}: {e}"), written)),
            Err(e) => self.state_error = Some(format!("{name}: {e}")),
        }
    }

    fn read_args(&mut self, storage: &dyn Storage) {
        let stat = match storage.stat(ARGS) {
            Ok(stat) => stat,
            Err(StorageError::NotFound) => {
                self.args_seen = None;
                self.args = RunInfo::default();
                return;
            }
            Err(e) => {
                self.args_seen = None;
                self.args = RunInfo::default();
                self.args.errors.push(format!("{ARGS}: {e}"));
                return;
            }
        };
        if self.args_seen.as_ref() == Some(&stat) {
            return;
        }
        let mut args = RunInfo::default();
        match read_parsed(storage, ARGS, MAX_META_BYTES) {
            Ok(None) => {}
            Ok(Some(value)) => {
                flatten("", &value, &mut args.params);
                let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::trim);
                args.name = text("run_name")
                    .filter(|n| !n.is_empty() && Some(*n) != text("output_dir"))
                    .map(crate::text::cap);
            }
            Err(e) => args.errors.push(e),
        }
        self.args = args;
        self.args_seen = Some(stat);
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.state.set]
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.args.clone();
        info.errors.extend(self.errors.iter().cloned());
        info.errors.extend(self.state_error.iter().cloned());
        let now = now();
        if let Some((error, written)) = &self.incomplete
            && written.is_none_or(|at| now.saturating_sub(at) >= 60)
        {
            info.errors.push(error.clone());
        }
        info.errors.extend(self.state.set.cap_error());
        for (key, value) in &self.state.params {
            if info.params.len() >= crate::MAX_PARAMS {
                break;
            }
            info.params.insert(key.clone(), value.clone());
        }
        if let Some(best) = &self.best {
            info.params.insert(
                "state.best_model_checkpoint".to_owned(),
                Value::String(best.clone()),
            );
        }
        info.title.clone_from(&self.state.title);
        info.created = self.created.map(crate::text::iso8601_utc);
        info.status = if self.state.finished {
            Some("finished".to_owned())
        } else if self
            .state
            .written
            .is_some_and(|at| now.saturating_sub(at) < SILENT_AFTER)
        {
            Some("running".to_owned())
        } else {
            None
        };
        info
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `raw` (a `best_model_checkpoint` path) as a name beneath the run whose
/// storage lies at `origin` with checkpoint directories `dirs`: an
/// absolute path under the origin, or a relative path whose last segment
/// is one of `dirs`. Anything else (a path elsewhere, `..`) is none.
fn beneath_the_run(raw: &str, origin: &str, dirs: &[&str]) -> Option<String> {
    let raw = raw.trim_end_matches('/');
    let rel = if raw.starts_with('/') {
        raw.strip_prefix(origin)?.strip_prefix('/')?
    } else {
        let last = raw.rsplit('/').next()?;
        if !dirs.contains(&last) {
            return None;
        }
        last
    };
    check_name(rel).ok()?;
    Some(rel.to_owned())
}

/// The part of `trainer_state.json` read (the rest is skipped unparsed).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct State {
    log_history: History,
    best_model_checkpoint: Option<Value>,
    global_step: Option<Value>,
    epoch: Option<Value>,
    max_steps: Option<Value>,
    num_train_epochs: Option<Value>,
    train_batch_size: Option<Value>,
    best_metric: Option<Value>,
    best_global_step: Option<Value>,
    trial_name: Option<Value>,
    trial_params: Option<Value>,
}

impl State {
    /// The values kept as `state.*` params, by name.
    fn params(&self) -> [(&'static str, &Option<Value>); 9] {
        [
            ("global_step", &self.global_step),
            ("epoch", &self.epoch),
            ("max_steps", &self.max_steps),
            ("num_train_epochs", &self.num_train_epochs),
            ("train_batch_size", &self.train_batch_size),
            ("best_metric", &self.best_metric),
            ("best_global_step", &self.best_global_step),
            ("trial_name", &self.trial_name),
            ("trial_params", &self.trial_params),
        ]
    }
}

/// `log_history`, read a row at a time straight into series (never held
/// whole: a 32 MiB state holds millions of small rows). Each number of a
/// row but `step` (its x; else the row's index) and `epoch` is a point;
/// a `train_runtime` says training returned.
#[derive(Default)]
struct History {
    set: SeriesSet,
    finished: bool,
}

impl History {
    fn row(&mut self, index: usize, Row(cells): Row) {
        let step = cells
            .iter()
            .find(|(k, _)| k == "step")
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite() && v.abs() < 9.0e18)
            .map_or(index as i64, |v| v as i64);
        for (key, value) in &cells {
            if key == "step" || key == "epoch" {
                continue;
            }
            self.finished |= key == "train_runtime";
            self.set.push(
                key,
                Point {
                    step,
                    wall: f64::NAN,
                    value: *value,
                },
            );
        }
    }
}

impl<'de> serde::Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HistoryVisitor;
        impl<'de> Visitor<'de> for HistoryVisitor {
            type Value = History;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<History, A::Error> {
                let mut history = History::default();
                let mut index = 0;
                while let Some(row) = seq.next_element::<Row>()? {
                    history.row(index, row);
                    index += 1;
                }
                Ok(history)
            }
        }
        d.deserialize_seq(HistoryVisitor)
    }
}

/// One `log_history` row: its numbers, in the order written.
struct Row(Vec<(String, f64)>);

impl<'de> serde::Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a log_history row (an object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                // A key written twice keeps its last value, as Python's
                // json reads it.
                let mut cells: Vec<(String, Option<f64>)> = Vec::new();
                let mut at: std::collections::HashMap<String, usize> =
                    std::collections::HashMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let Cell(value) = map.next_value()?;
                    if let Some(i) = at.get(&key) {
                        cells[*i].1 = value;
                    } else if cells.len() < crate::MAX_SERIES {
                        at.insert(key.clone(), cells.len());
                        cells.push((key, value));
                    }
                }
                Ok(Row(cells
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v?)))
                    .collect()))
            }
        }
        d.deserialize_map(RowVisitor)
    }
}

/// A row's value: a number (or Python's NaN/Infinity), else nothing.
struct Cell(Option<f64>);

impl<'de> serde::Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CellVisitor;
        impl<'de> Visitor<'de> for CellVisitor {
            type Value = Cell;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell, E> {
                Ok(Cell(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell, E> {
                Ok(Cell(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell, E> {
                Ok(Cell(Some(v as f64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell, E> {
                Ok(Cell(match v {
                    "NaN" => Some(f64::NAN),
                    "Infinity" => Some(f64::INFINITY),
                    "-Infinity" => Some(f64::NEG_INFINITY),
                    _ => None,
                }))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Cell, E> {
                Ok(Cell(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Cell(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cell, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Cell(None))
            }
        }
        d.deserialize_any(CellVisitor)
    }
}

/// Reads a `trainer_state.json`'s bytes.
fn parse_state(bytes: &[u8]) -> Result<Parsed, serde_json::Error> {
    let mut state: State = serde_json::from_slice(&python_json(bytes, Bare::Quoted))?;
    let mut parsed = Parsed::default();
    let History { set, finished } = std::mem::take(&mut state.log_history);
    (parsed.set, parsed.finished) = (set, finished);
    for (key, value) in state.params() {
        let Some(value) = value else { continue };
        flatten(&format!("state.{key}"), value, &mut parsed.params);
        if key == "trial_params"
            && let Value::Object(trial) = value
        {
            let title: Vec<String> = trial
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            let title = title.join(",");
            if !title.is_empty() && title.len() <= MAX_TITLE {
                parsed.title = Some(title);
            }
        }
    }
    parsed.params.retain(|_, v| !v.is_null());
    parsed.best_raw = state
        .best_model_checkpoint
        .as_ref()
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(parsed)
}

/// Series by name, each point as its step and value.
pub(crate) type StatePoints = Vec<(String, Vec<(i64, f64)>)>;

/// For the fuzz oracle: the series a state's bytes give and how many
/// params, or why they do not parse.
pub(crate) fn fuzz_state(bytes: &[u8]) -> Result<(StatePoints, usize), String> {
    let parsed = parse_state(bytes).map_err(|e| e.to_string())?;
    let series = parsed
        .set
        .summaries()
        .into_iter()
        .map(|m| {
            let points = parsed
                .set
                .get(&m.name)
                .map(|s| s.points().iter().map(|p| (p.step, p.value)).collect())
                .unwrap_or_default();
            (m.name, points)
        })
        .collect();
    Ok((series, parsed.params.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_nan_and_infinity_become_numbers_and_strings_stay() {
        let text = br#"{"log_history": [{"loss": NaN, "grad_norm": Infinity, "x": -Infinity, "note": "NaN \"Infinity\"", "step": 2, "epoch": 0.5}], "global_step": 2, "best_metric": null}"#;
        let parsed = parse_state(text).unwrap();
        let point = |name: &str| parsed.set.get(name).unwrap().points()[0];
        assert!(point("loss").value.is_nan());
        assert_eq!(point("grad_norm").value, f64::INFINITY);
        assert_eq!(point("x").value, f64::NEG_INFINITY);
        assert_eq!(point("loss").step, 2);
        assert!(parsed.set.get("note").is_none() && parsed.set.get("epoch").is_none());
        assert_eq!(parsed.params["state.global_step"], 2);
        assert!(!parsed.params.contains_key("state.best_metric"));
        assert!(!parsed.finished);
    }

    #[test]
    fn the_best_checkpoint_is_shown_only_beneath_the_run() {
        let dirs = ["checkpoint-4", "checkpoint-8"];
        for (raw, expected) in [
            ("/data/out/checkpoint-8", Some("checkpoint-8")),
            ("/data/out/checkpoint-8/", Some("checkpoint-8")),
            ("out/checkpoint-4", Some("checkpoint-4")),
            ("checkpoint-4", Some("checkpoint-4")),
            // Relative, but not one of the run's checkpoints.
            ("out/checkpoint-5", None),
            // Elsewhere, or climbing out.
            ("/data/other/checkpoint-8", None),
            ("/data/outside/checkpoint-8", None),
            ("/data/out/../secret", None),
            ("/data/out", None),
            ("../checkpoint-4/..", None),
        ] {
            assert_eq!(
                beneath_the_run(raw, "/data/out", &dirs).as_deref(),
                expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn checkpoints_are_named_by_a_number() {
        assert_eq!(checkpoint_number("checkpoint-500"), Some(500));
        assert_eq!(checkpoint_number("checkpoint-"), None);
        assert_eq!(checkpoint_number("checkpoint-5a"), None);
        assert_eq!(checkpoint_number("checkpoint-+5"), None);
    }
}

#[cfg(test)]
mod reading {
    use super::*;

    fn state(steps: &[i64], last: bool) -> String {
        let mut rows: Vec<String> = steps
            .iter()
            .map(|s| {
                format!(
                    r#"{{"loss": {}, "learning_rate": 0.001, "epoch": 0.5, "step": {s}}}"#,
                    1.0 / (*s as f64 + 1.0)
                )
            })
            .collect();
        if last {
            rows.push(r#"{"train_runtime": 1.5, "train_loss": 0.4, "total_flos": 10.0, "epoch": 1.0, "step": 4}"#.to_owned());
        }
        format!(
            r#"{{"log_history": [{}], "global_step": {}, "max_steps": 4, "best_model_checkpoint": "memory:/checkpoint-2", "trial_params": {{"lr": 0.1, "opt": "adam"}}}}"#,
            rows.join(","),
            steps.last().copied().unwrap_or(0)
        )
    }

    /// While training, the newest checkpoint's state is the run's; once
    /// `save_state()` wrote the output dir's own, that one.
    #[test]
    fn the_newest_checkpoint_stands_in_until_the_run_saves_its_state() {
        let memory = crate::storage::tests::Memory::default();
        memory.put(
            "checkpoint-2/trainer_state.json",
            state(&[1, 2], false).as_bytes(),
        );
        memory.put("checkpoint-10/trainer_state.json", b"{");
        memory.put("training_args.bin", b"\x80\x04 never opened");
        memory.put(
            "training_args.json",
            br#"{"output_dir": "out", "run_name": "tiny", "learning_rate": 0.001, "seed": 7}"#,
        );
        let mut reader = Reader::default();
        reader.refresh(&memory);
        // checkpoint-10's state is cut short: an error, and nothing of it.
        let info = reader.info();
        assert!(
            info.errors
                .iter()
                .any(|e| e.contains("checkpoint-10/trainer_state.json")),
            "{:?}",
            info.errors
        );
        memory.put(
            "checkpoint-10/trainer_state.json",
            state(&[1, 2, 3], false).as_bytes(),
        );
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(reader.sets()[0].get("loss").unwrap().points().len(), 3);
        assert_eq!(info.name.as_deref(), Some("tiny"));
        assert_eq!(info.params["seed"], 7);
        assert_eq!(info.params["state.global_step"], 3);
        assert_eq!(info.params["state.trial_params.opt"], "adam");
        assert_eq!(info.title.as_deref(), Some("lr=0.1,opt=adam"));
        // The best checkpoint lies under the storage's origin.
        assert_eq!(info.params["state.best_model_checkpoint"], "checkpoint-2");
        assert_eq!(info.status, None, "no time is known in memory");
        memory.put("trainer_state.json", state(&[1, 2, 3, 4], true).as_bytes());
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.status.as_deref(), Some("finished"));
        let loss = reader.sets()[0].get("loss").unwrap();
        assert_eq!(loss.points().len(), 4);
        assert_eq!(
            reader.sets()[0].get("train_runtime").unwrap().points()[0].step,
            4
        );
        assert!(reader.sets()[0].get("epoch").is_none());
    }
}
