//! The Lab's own format: `run.toml` or `run.json` (name, created, tags,
//! description, status), `params.json` and `config.toml` (params), and
//! `metrics.jsonl` (one object per line) or `metrics.csv` (a header, then
//! rows) for series, and `histograms.jsonl` (one histogram point per
//! line, as a bundle carries them: [`HistogramLine`]). Also the metrics
//! files beside a Hydra job.

use serde_json::Value;

use crate::histogram::{HistogramPoint, Histograms};
use crate::series::{Point, SeriesSet};
use crate::storage::{Storage, StorageError};
use crate::tail::{Sink, Tail, next_line};
use crate::text::{csv_fields, number};
use crate::{RunInfo, flatten};

/// Largest metadata or params file parsed.
pub(crate) const MAX_META_BYTES: u64 = 256 * 1024;
/// Longest metrics line.
pub(crate) const MAX_LINE: usize = 1 << 20;
/// Column or field names taken as the x axis, in order of preference.
const STEP_KEYS: &[&str] = &["step", "_step", "global_step", "iteration"];
/// Column or field names taken as wall time.
const WALL_KEYS: &[&str] = &["wall_time", "time", "timestamp", "_timestamp"];

/// Reads a small file beneath the root as text, capped at `max` bytes
/// (more is an error, not a silent cut). `Ok(None)` when it is absent.
pub(crate) fn read_small(
    storage: &dyn Storage,
    rel: &str,
    max: u64,
) -> Result<Option<String>, String> {
    // One byte past the cap tells a file over it from one at it.
    let want = usize::try_from(max.saturating_add(1)).unwrap_or(usize::MAX);
    let bytes = match storage.read_range(rel, 0, want, None) {
        Ok(bytes) => bytes,
        Err(StorageError::NotFound) => return Ok(None),
        Err(e) => return Err(format!("{rel}: {e}")),
    };
    if bytes.len() as u64 > max {
        return Err(format!("{rel}: larger than {max} bytes"));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| format!("{rel}: not UTF-8"))
}

/// A small metadata file beneath the root, parsed by its extension
/// (`.toml`, `.json`, else YAML) into JSON: `Ok(None)` when it is absent,
/// an error naming the file when it is too large or does not parse.
pub(crate) fn read_parsed(
    storage: &dyn Storage,
    rel: &str,
    max: u64,
) -> Result<Option<Value>, String> {
    let Some(text) = read_small(storage, rel, max)? else {
        return Ok(None);
    };
    let parsed = if rel.ends_with(".toml") {
        toml::from_str::<Value>(&text).map_err(|e| e.to_string())
    } else if rel.ends_with(".json") {
        serde_json::from_str::<Value>(&text).map_err(|e| e.to_string())
    } else {
        crate::yaml::parse(&text)
    };
    parsed
        .map(Some)
        .map_err(|e| format!("{rel}: {}", first_line(&e)))
}

/// The lab format's reader.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    meta: Meta,
    jsonl: Metrics,
    csv: Metrics,
    /// A bundle's `media.json`: its media's and tables' keys and steps.
    media: crate::bundle::Applied,
    histograms: HistogramFile,
}

/// One line of `histograms.jsonl`: a histogram point in TensorBoard's
/// `HistogramProto` form (`limits` the buckets' right edges).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistogramLine {
    pub(crate) name: String,
    pub(crate) step: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) wall_time: Option<f64>,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) limits: Vec<f64>,
    pub(crate) counts: Vec<f64>,
}

/// `histograms.jsonl`, followed as it grows.
#[derive(Debug, Default)]
struct HistogramFile {
    tail: Tail,
    sink: HistogramLines,
    error: Option<String>,
}

#[derive(Debug, Default)]
struct HistogramLines {
    histograms: Histograms,
    line: u64,
}

impl Sink for HistogramLines {
    fn restart(&mut self) {
        *self = HistogramLines::default();
    }

    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let Some((line, used)) = next_line(bytes) else {
            return Ok(0);
        };
        self.line += 1;
        let line = line.trim();
        if line.is_empty() {
            return Ok(used);
        }
        match serde_json::from_str::<HistogramLine>(line) {
            Ok(h) => {
                let point = HistogramPoint::new(
                    h.step,
                    h.wall_time.unwrap_or(f64::NAN),
                    h.min,
                    h.max,
                    h.limits,
                    h.counts,
                );
                self.histograms.push(&h.name, point);
            }
            Err(e) => {
                let why = first_line(&e.to_string()).to_owned();
                self.histograms
                    .bad(format!("histograms.jsonl line {}: {why}", self.line));
            }
        }
        Ok(used)
    }
}

#[derive(Debug, Default)]
struct Metrics {
    tail: Tail,
    sink: LineMetrics,
    error: Option<String>,
}

impl Metrics {
    fn refresh(&mut self, storage: &dyn Storage, rel: &str) {
        self.error = None;
        // Gone (or never there): nothing to show, as the tail forgot it.
        if let Err(e) = self.tail.follow(storage, rel, MAX_LINE, &mut self.sink) {
            self.error = Some(e);
        }
        if let Some(failed) = self.tail.failed() {
            self.error = Some(failed.to_owned());
        }
    }
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.meta = read_meta(storage);
        self.jsonl.sink.kind = Lines::Jsonl;
        self.csv.sink.kind = Lines::Csv;
        self.jsonl.refresh(storage, "metrics.jsonl");
        // A bundle of another format's run is described by its `run.json`
        // and `metrics.jsonl` alone (the run's own files of the Lab's
        // names may travel beside them, as artifacts).
        if self.meta.bundled {
            self.csv = Metrics::default();
        } else {
            self.csv.refresh(storage, "metrics.csv");
        }
        self.media.refresh(storage);
        let h = &mut self.histograms;
        h.error = None;
        if let Err(e) = h
            .tail
            .follow(storage, "histograms.jsonl", MAX_LINE, &mut h.sink)
        {
            h.error = Some(e);
        }
        if let Some(failed) = h.tail.failed() {
            h.error = Some(failed.to_owned());
        }
    }

    pub(crate) fn histograms(&self) -> &Histograms {
        &self.histograms.sink.histograms
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.meta.info.clone();
        self.media.merge_into(&mut info);
        info.errors.extend(self.jsonl.error.iter().cloned());
        info.errors.extend(self.csv.error.iter().cloned());
        info.errors.extend(self.histograms.error.iter().cloned());
        for set in self.sets() {
            info.errors.extend(set.cap_error());
        }
        info
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.jsonl.sink.set, &self.csv.sink.set]
    }

    /// Reads `rel` (a CSV metrics file of another format) as this reader's
    /// CSV series.
    pub(crate) fn refresh_csv_only(
        &mut self,
        storage: &dyn Storage,
        rel: &str,
        skip: &'static [&'static str],
    ) {
        self.csv.sink.kind = Lines::Csv;
        self.csv.sink.skip = skip;
        self.csv.refresh(storage, rel);
    }

    /// The CSV series' errors only (for another format's reader).
    pub(crate) fn csv_errors(&self) -> Vec<String> {
        let mut errors: Vec<String> = self.csv.error.iter().cloned().collect();
        errors.extend(self.csv.sink.set.cap_error());
        errors
    }
}

/// Whether `meta` is a bundle's `run.json`: one of another format's run
/// (`source_format` other than `lab`).
fn is_bundle(meta: &Value) -> bool {
    meta.get("source_format")
        .and_then(Value::as_str)
        .is_some_and(|f| f != "lab")
}

/// The metadata and params files of a lab run.
fn read_meta(storage: &dyn Storage) -> Meta {
    let mut info = RunInfo::default();
    let mut meta = Value::Null;
    // A bundle's `run.json` (a `source_format` other than `lab`) is the
    // run whatever else travelled with it: a `run.toml` the source run
    // held is one of its artifacts, never its description.
    let json = read_parsed(storage, "run.json", MAX_META_BYTES);
    let chosen = match json {
        Ok(Some(v)) if is_bundle(&v) => Ok(Some(v)),
        json => match read_parsed(storage, "run.toml", MAX_META_BYTES) {
            Ok(None) => json,
            toml => toml,
        },
    };
    match chosen {
        Ok(Some(v)) => meta = v,
        Ok(None) => {}
        Err(e) => info.errors.push(e),
    }
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(crate::text::cap);
    info.name = text("name").or_else(|| text("title"));
    info.created = text("created");
    info.description = text("description");
    info.status = text("status");
    // A bundle's `run.json` keeps when it ended, who and what ran it, and
    // its commit (an MLflow run's, say).
    info.ended = text("ended");
    info.user = text("user");
    info.source = text("source");
    info.git_commit = text("git_commit");
    // `experiment = "NAME"`, or a bundle's `{"name": …}`: one namespace.
    info.experiment = meta
        .get("experiment")
        .and_then(|e| e.as_str().or_else(|| e.get("name")?.as_str()))
        .map(|e| crate::text::cap(e.trim()))
        .filter(|e| !e.is_empty() && e.len() <= 200)
        .map(|name| crate::Group {
            location: name.clone(),
            name,
        });
    info.tags = meta
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .filter(|t| t.len() <= 64)
                .take(crate::MAX_TAGS)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(params) = meta.get("params") {
        flatten("", params, &mut info.params);
    }
    // A bundle of another format's run (`source_format` in its
    // `run.json`): its params are all in `run.json`.
    let bundled = is_bundle(&meta);
    for rel in ["params.json", "config.toml"] {
        if bundled {
            break;
        }
        match read_parsed(storage, rel, MAX_META_BYTES) {
            Ok(None) => {}
            Ok(Some(v)) => flatten("", &v, &mut info.params),
            Err(e) => info.errors.push(e),
        }
    }
    Meta { info, bundled }
}

/// A Lab run's metadata, and whether it is a bundle of another format's
/// run.
#[derive(Debug, Default)]
struct Meta {
    info: RunInfo,
    bundled: bool,
}

/// For the fuzz target: `text` through the line reader, all at once.
pub(crate) fn fuzz_lines(text: &[u8], csv: bool) -> usize {
    let mut sink = LineMetrics {
        kind: if csv { Lines::Csv } else { Lines::Jsonl },
        ..LineMetrics::default()
    };
    let mut rest = text;
    while let Ok(used) = sink.consume(rest) {
        if used == 0 {
            break;
        }
        rest = &rest[used..];
    }
    sink.set.points()
}

pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Lines {
    #[default]
    Jsonl,
    Csv,
}

/// Series from text lines: JSON objects or CSV rows.
#[derive(Debug, Default)]
pub(crate) struct LineMetrics {
    kind: Lines,
    set: SeriesSet,
    /// Lines read (the x of a row without a step).
    row: i64,
    header: Option<Vec<String>>,
    /// CSV columns that are axes, not metrics.
    skip: &'static [&'static str],
}

impl Sink for LineMetrics {
    fn restart(&mut self) {
        self.set.clear_all();
        self.row = 0;
        self.header = None;
    }

    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let Some((line, used)) = next_line(bytes) else {
            return Ok(0);
        };
        let line = line.trim();
        if !line.is_empty() {
            match self.kind {
                Lines::Jsonl => self.json_line(line),
                Lines::Csv => self.csv_line(line),
            }
        }
        Ok(used)
    }
}

impl LineMetrics {
    fn json_line(&mut self, line: &str) {
        // Python's json writes NaN and Infinity bare; read them as null.
        let parsed = crate::text::from_python_json::<Value>(line.as_bytes());
        let Ok(Value::Object(map)) = parsed else {
            self.row += 1;
            return;
        };
        // The first axis key present is the axis (a null wall time is an
        // unknown one); the others are metrics like any (a bundle's
        // `metrics.jsonl` of a run that logged `time` as a metric).
        let step_key = STEP_KEYS.iter().find(|k| map.contains_key(**k));
        let wall_key = WALL_KEYS.iter().find(|k| map.contains_key(**k));
        let step = step_key
            .and_then(|k| map.get(*k)?.as_f64())
            .map_or(self.row, |s| s as i64);
        let wall = wall_key
            .and_then(|k| map.get(*k)?.as_f64())
            .unwrap_or(f64::NAN);
        for (key, value) in &map {
            if step_key == Some(&key.as_str()) || wall_key == Some(&key.as_str()) {
                continue;
            }
            let value = match value {
                Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                Value::Null => f64::NAN,
                _ => continue,
            };
            self.set.push(key, Point { step, wall, value });
        }
        self.row += 1;
    }

    fn csv_line(&mut self, line: &str) {
        let fields = csv_fields(line, ',');
        let Some(header) = &self.header else {
            self.header = Some(fields);
            return;
        };
        let cell = |names: &[&str]| {
            names.iter().find_map(|n| {
                let i = header.iter().position(|h| h == n)?;
                number(fields.get(i)?)
            })
        };
        let step = cell(STEP_KEYS).map_or(self.row, |s| s as i64);
        let wall = cell(WALL_KEYS).unwrap_or(f64::NAN);
        for (name, raw) in header.iter().zip(&fields) {
            if STEP_KEYS.contains(&name.as_str())
                || WALL_KEYS.contains(&name.as_str())
                || self.skip.contains(&name.as_str())
            {
                continue;
            }
            // An empty cell: the metric was not logged at this step.
            if let Some(value) = number(raw) {
                self.set.push(name, Point { step, wall, value });
            }
        }
        self.row += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare NaN reads as NaN, and a key that holds the word keeps it.
    #[test]
    fn a_bare_nan_beside_a_key_naming_it_reads_the_key_as_written() {
        let mut sink = LineMetrics::default();
        let line = b"{\"step\": 3, \"NaN-rate\": NaN, \"Infinity\": 1.5}\n";
        assert_eq!(sink.consume(line), Ok(line.len()));
        let nan = sink.set.get("NaN-rate").unwrap().points();
        assert_eq!(nan.len(), 1);
        assert!(nan[0].value.is_nan() && nan[0].step == 3);
        assert_eq!(sink.set.get("Infinity").unwrap().points()[0].value, 1.5);
        assert!(sink.set.get("null-rate").is_none());
    }

    /// Every float reads back bit for bit (a bundle's series are its
    /// source's exactly), and a metric named like an axis that is not the
    /// line's axis is a metric: `time` beside a null `wall_time`.
    #[test]
    fn floats_read_exactly_and_only_the_axes_used_are_skipped() {
        let mut sink = LineMetrics::default();
        let line =
            b"{\"step\": 2, \"wall_time\": null, \"time\": 1.5, \"lr\": 5.684341886080803e-14}\n";
        assert_eq!(sink.consume(line), Ok(line.len()));
        let lr = sink.set.get("lr").unwrap().points()[0];
        assert_eq!(lr.value.to_bits(), 5.684341886080803e-14_f64.to_bits());
        assert!(lr.wall.is_nan() && lr.step == 2);
        assert_eq!(sink.set.get("time").unwrap().points()[0].value, 1.5);
        assert!(sink.set.get("wall_time").is_none() && sink.set.get("step").is_none());
    }

    /// A bundle's `run.json` describes the run even when a `run.toml` the
    /// source run held travelled beside it (an attack: a stray `run.toml`
    /// in a TensorBoard run renamed and re-parametrised its reimport); a
    /// Lab run's own `run.toml` still comes before its `run.json`.
    #[test]
    fn a_bundles_run_json_wins_over_a_stray_run_toml() {
        let bundle = crate::storage::tests::Memory::default();
        bundle.put("run.toml", b"name = \"stray\"\n[params]\nlr = 9\n");
        bundle.put(
            "run.json",
            br#"{"name": "tb", "source_format": "tensorboard", "params": {"lr": 0.1}}"#,
        );
        bundle.put("params.json", br#"{"extra": 1}"#);
        let meta = read_meta(&bundle);
        assert_eq!(meta.info.name.as_deref(), Some("tb"));
        assert_eq!(meta.info.params.get("lr"), Some(&Value::from(0.1)));
        assert!(!meta.info.params.contains_key("extra"));
        assert!(meta.bundled);
        let own = crate::storage::tests::Memory::default();
        own.put("run.toml", b"name = \"mine\"\n");
        own.put("run.json", br#"{"name": "other"}"#);
        let meta = read_meta(&own);
        assert_eq!(meta.info.name.as_deref(), Some("mine"));
        assert!(!meta.bundled);
    }
}
