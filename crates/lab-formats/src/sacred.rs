//! Sacred's `FileStorageObserver` (`sacred/observers/file_storage.py`): a
//! run directory `<basedir>/<id>/` with `run.json` (`experiment` {`name`,
//! `base_dir`, `sources`, …}, `host`, `command`, `status`, `start_time`,
//! `stop_time`, `heartbeat`, `result`, `meta`, `artifacts`), `config.json`
//! (the params), `metrics.json` (`{name: {steps, values, timestamps}}`,
//! what `_run.log_scalar` logged) and `cout.txt` (the captured output,
//! served as a log). `_sources/` beside the runs is no run.
//!
//! Sacred rewrites each JSON file whole (`open(…, "w")`, the same inode),
//! so a file is read again whenever its length, identity or time changed;
//! one caught half-written (it does not parse to its end) is pending once
//! and an error of this run if it is still cut the next time. Its
//! `run.json` is not a Lab `run.json`: discovery tells them apart by
//! content (an `experiment` object, a `host` object and a `command`).
//!
//! The experiment is `experiment.name`, one namespace (the name Sacred's
//! observers all group by, wherever the base directory lies). The status
//! is Sacred's word (`COMPLETED`, `FAILED`, `INTERRUPTED`, `TIMEOUT`,
//! `QUEUED`, `RUNNING`), except that a `RUNNING` run whose last heartbeat
//! (or start) is older than [`STALE_SECS`] is `PROBABLY_DEAD` (Omniboard's
//! word for it): `crashed`. Times are Sacred's naive UTC.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::discover::Listing;
use crate::lab::{MAX_META_BYTES, first_line};
use crate::series::{Point, SeriesSet};
use crate::storage::{Stat, Storage, StorageError};
use crate::text::from_python_json;
use crate::{Group, Media, RunInfo, flatten};

/// The artifacts this format adds to the default allowlist: the captured
/// output, the run's JSON files, and what `add_artifact` copied beside
/// them (images, videos, text).
pub(crate) const ARTIFACTS: &[&str] = &[
    "cout.txt",
    "config.json",
    "metrics.json",
    "info.json",
    "*.png",
    "*.jpg",
    "*.gif",
    "*.mp4",
    "*.webm",
    "*.txt",
    "*.csv",
];

/// How much of `run.json` discovery looks at.
const HEAD: usize = 64 * 1024;
/// Largest `metrics.json` read.
pub(crate) const MAX_METRICS_BYTES: u64 = 64 << 20;
/// A `RUNNING` run silent for longer than this (Sacred beats every 10 s)
/// is taken for dead: 10 minutes.
pub(crate) const STALE_SECS: f64 = 600.0;
/// Most media entries kept (from `run.json`'s `artifacts`).
const MAX_MEDIA: usize = 1_000;

/// Whether the directory `listing` shows is a Sacred run: `run.json`
/// whose head is Sacred's (an `experiment` object, a `host` object and a
/// `command`). Its content decides, not `config.json` beside it: Sacred
/// writes `run.json` first.
pub(crate) fn recognises(listing: &Listing<'_>) -> bool {
    listing.file("run.json")
        && listing
            .head("run.json", HEAD)
            .is_some_and(|head| is_sacred_run(&head))
}

/// Whether a `run.json` that is not Sacred's (see [`is_sacred_run`]) is
/// settled enough to make its directory a Lab run: not while it is empty
/// or cut short below the head's size (a writer — Sacred's rewrites
/// included — may be in the middle of it; the next walk decides).
pub(crate) fn settled(listing: &Listing<'_>) -> bool {
    let Some(head) = listing.head("run.json", HEAD) else {
        return false;
    };
    match serde_json::from_slice::<serde::de::IgnoredAny>(&head) {
        Ok(_) => true,
        Err(e) if e.is_eof() => head.len() >= HEAD,
        Err(_) => !head.is_empty(),
    }
}

/// Whether `head` (the first bytes of a `run.json`) is Sacred's: parsed
/// whole when it is all there, else by its top-level keys as Sacred writes
/// them (sorted, indented by two).
pub(crate) fn is_sacred_run(head: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(head) {
        Ok(value) => {
            value.get("experiment").is_some_and(Value::is_object)
                && value.get("host").is_some_and(Value::is_object)
                && value.get("command").is_some()
        }
        Err(e) if e.is_eof() => {
            let text = String::from_utf8_lossy(head);
            text.starts_with('{')
                && text.contains("\n  \"command\": ")
                && text.contains("\n  \"experiment\": {")
                && text.contains("\n  \"host\": {")
        }
        Err(_) => false,
    }
}

/// One JSON file Sacred rewrites whole, and what was read of it.
#[derive(Debug, Default)]
struct Whole {
    /// The file as it was read last (length, identity, time).
    seen: Option<Stat>,
    /// A half-written state seen once.
    cut: Option<Stat>,
    error: Option<String>,
}

/// What [`Whole::refresh`] says.
enum Fresh {
    /// Unchanged, or pending: keep what was read.
    Keep,
    /// Gone.
    Missing,
    /// New bytes to parse, of the file as it was then.
    Bytes(Vec<u8>, Stat),
}

impl Whole {
    fn refresh(&mut self, storage: &dyn Storage, rel: &str, max: u64) -> Fresh {
        let stat = match storage.stat(rel) {
            Ok(stat) => stat,
            Err(StorageError::NotFound) => {
                *self = Whole::default();
                return Fresh::Missing;
            }
            Err(e) => {
                self.seen = None;
                self.error = Some(format!("{rel}: {e}"));
                return Fresh::Keep;
            }
        };
        if self.seen.as_ref() == Some(&stat) {
            return Fresh::Keep;
        }
        if stat.len > max {
            self.seen = Some(stat);
            self.error = Some(format!("{rel}: larger than {max} bytes"));
            return Fresh::Keep;
        }
        let want = usize::try_from(stat.len).unwrap_or(usize::MAX);
        match storage.read_range(rel, 0, want, Some(&stat.version)) {
            Ok(bytes) => Fresh::Bytes(bytes, stat),
            // Replaced while read: read again next time.
            Err(StorageError::Changed) => Fresh::Keep,
            Err(e) => {
                self.seen = None;
                self.error = Some(format!("{rel}: {e}"));
                Fresh::Keep
            }
        }
    }

    /// Records how parsing the bytes of `stat` ended: `Ok`, a file cut
    /// short (pending the first time), or another error.
    fn parsed(&mut self, stat: Stat, rel: &str, result: Result<(), serde_json::Error>) {
        let stat = Some(stat);
        match result {
            Ok(()) => {
                self.seen = stat;
                self.cut = None;
                self.error = None;
            }
            Err(e) if e.is_eof() && self.cut != stat => {
                // Caught while Sacred rewrites it: read again next time.
                self.cut = stat;
            }
            Err(e) => {
                self.seen = stat;
                self.cut = None;
                self.error = Some(format!("{rel}: {}", first_line(&e.to_string())));
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    run_json: Whole,
    config_json: Whole,
    metrics_json: Whole,
    /// What `run.json` says.
    meta: RunInfo,
    /// The raw status and when the run last showed life (Unix seconds).
    status: Option<String>,
    alive: Option<f64>,
    params: std::collections::BTreeMap<String, Value>,
    set: SeriesSet,
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        match self.run_json.refresh(storage, "run.json", MAX_META_BYTES) {
            Fresh::Keep => {}
            Fresh::Missing => {
                (self.meta, self.status, self.alive) = (RunInfo::default(), None, None);
            }
            Fresh::Bytes(bytes, stat) => {
                let parsed = from_python_json::<Value>(&bytes).map(|run| self.read_run(&run));
                self.run_json.parsed(stat, "run.json", parsed);
            }
        }
        match self
            .config_json
            .refresh(storage, "config.json", MAX_META_BYTES)
        {
            Fresh::Keep => {}
            Fresh::Missing => self.params.clear(),
            Fresh::Bytes(bytes, stat) => {
                let parsed = from_python_json::<Value>(&bytes).map(|config| {
                    self.params.clear();
                    flatten("", &config, &mut self.params);
                });
                self.config_json.parsed(stat, "config.json", parsed);
            }
        }
        match self
            .metrics_json
            .refresh(storage, "metrics.json", MAX_METRICS_BYTES)
        {
            Fresh::Keep => {}
            Fresh::Missing => self.set = SeriesSet::default(),
            Fresh::Bytes(bytes, stat) => {
                let parsed = metrics(&bytes).map(|set| self.set = set);
                self.metrics_json.parsed(stat, "metrics.json", parsed);
            }
        }
    }

    fn read_run(&mut self, run: &Value) {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(crate::text::cap);
        let mut meta = RunInfo {
            description: text(run.pointer("/meta/comment")).filter(|c| !c.is_empty()),
            ..RunInfo::default()
        };
        let start = run.get("start_time").and_then(Value::as_str);
        let start = start.and_then(crate::text::iso8601_secs);
        meta.created = start.map(|s| crate::text::iso8601_utc(s as u64));
        meta.experiment = text(run.pointer("/experiment/name"))
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty() && n.len() <= 200)
            .map(|name| Group {
                location: name.clone(),
                name,
            });
        // What the run changed from the experiment's config says what it
        // varied: `lr=0.1,fail=True` (Sacred's own `with` syntax).
        if let Some(Value::Object(updates)) = run.pointer("/meta/config_updates") {
            let mut flat = std::collections::BTreeMap::new();
            flatten("", &Value::Object(updates.clone()), &mut flat);
            let title: Vec<String> = flat
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            let title = title.join(",");
            if !title.is_empty() && title.len() <= 200 {
                meta.title = Some(title);
            }
        }
        if let Some(result) = run.get("result").filter(|r| !r.is_null()) {
            let result = match result {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if result.len() <= 64 {
                meta.tags.push(format!("result={result}"));
            }
        }
        if let Some(host) = text(run.pointer("/host/hostname")).filter(|h| h.len() <= 64) {
            meta.tags.push(format!("host={host}"));
        }
        if let Some(Value::Array(artifacts)) = run.get("artifacts") {
            for name in artifacts.iter().filter_map(Value::as_str) {
                if meta.media.len() >= MAX_MEDIA {
                    break;
                }
                // Only a plain file name beside run.json: Sacred copies an
                // artifact there under its name.
                if name.is_empty() || name.contains(['/', '\\', '\0']) || name.starts_with('.') {
                    continue;
                }
                let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
                let kind = match ext.as_deref() {
                    Some("mp4" | "webm") => "video",
                    Some("png" | "jpg" | "jpeg" | "gif") => "image",
                    _ => continue,
                };
                meta.media.push(Media {
                    artifact: name.to_owned(),
                    kind,
                    step: None,
                    key: Some(crate::text::cap(name)),
                    embedded: false,
                    url: None,
                });
            }
        }
        self.status = text(run.get("status"));
        let heartbeat = run.get("heartbeat").and_then(Value::as_str);
        self.alive = heartbeat.and_then(crate::text::iso8601_secs).or(start);
        self.meta = meta;
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.set]
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.meta.clone();
        info.params = self.params.clone();
        info.status = self.status.clone();
        if self.status.as_deref() == Some("RUNNING") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            if self.alive.is_some_and(|t| now - t > STALE_SECS) {
                info.status = Some("PROBABLY_DEAD".to_owned());
            }
        }
        for whole in [&self.run_json, &self.config_json, &self.metrics_json] {
            info.errors.extend(whole.error.iter().cloned());
        }
        info.errors.extend(self.set.cap_error());
        info
    }
}

/// The series of a `metrics.json`: each name's `steps`, `values` and
/// `timestamps` side by side (the shortest of the first two decides; a
/// missing or odd time is NaN, a null value NaN, any other value skipped).
/// Numbers are read straight into the points, never held as JSON values.
pub(crate) fn metrics(bytes: &[u8]) -> Result<SeriesSet, serde_json::Error> {
    let Metrics(set) = from_python_json(bytes)?;
    Ok(set)
}

struct Metrics(SeriesSet);

impl<'de> de::Deserialize<'de> for Metrics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct All;
        impl<'de> Visitor<'de> for All {
            type Value = Metrics;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of metrics")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metrics, A::Error> {
                let mut set = SeriesSet::default();
                while let Some(name) = map.next_key::<String>()? {
                    let one: One = map.next_value()?;
                    // A repeated name: the last one stands, as in JSON
                    // values.
                    set.clear(&name);
                    let n = one.steps.len().min(one.values.len());
                    for i in 0..n {
                        let (Some(step), Some(value)) = (one.steps[i], one.values[i]) else {
                            continue;
                        };
                        if !step.is_finite() {
                            continue;
                        }
                        let wall = one.timestamps.get(i).copied().unwrap_or(f64::NAN);
                        set.push(
                            &name,
                            Point {
                                step: step as i64,
                                wall,
                                value,
                            },
                        );
                    }
                    // Pairs past the lists' cap were never stored: each
                    // is counted a point refused, as one stored would have
                    // been. An approximation past the cap (2,000,000
                    // elements): such an element that was not a number
                    // is counted too, and one bad pair within the cap
                    // leaves a place for none beyond it.
                    let listed = (one.steps.len() as u64 + one.steps_beyond)
                        .min(one.values.len() as u64 + one.values_beyond);
                    set.refuse(&name, listed - n as u64);
                }
                Ok(Metrics(set))
            }
        }
        d.deserialize_map(All)
    }
}

/// One metric's arrays: steps and values as numbers (`None` for what is
/// not one; a null value is NaN), times as seconds (NaN when unreadable);
/// each at most [`crate::MAX_POINTS_PER_SERIES`] long, with how many
/// elements past that were skipped unstored.
#[derive(Default)]
struct One {
    steps: Vec<Option<f64>>,
    steps_beyond: u64,
    values: Vec<Option<f64>>,
    values_beyond: u64,
    timestamps: Vec<f64>,
}

impl<'de> de::Deserialize<'de> for One {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = One;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("steps, values and timestamps")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<One, A::Error> {
                let mut one = One::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "steps" => {
                            Numbers(one.steps, one.steps_beyond) = map.next_value()?;
                        }
                        "values" => {
                            Numbers(one.values, one.values_beyond) = map.next_value()?;
                        }
                        "timestamps" => one.timestamps = map.next_value::<Times>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(one)
            }
            // Anything but an object: no points.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<One, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(One::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<One, E> {
                Ok(One::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<One, E> {
                Ok(One::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<One, E> {
                Ok(One::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<One, E> {
                Ok(One::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<One, E> {
                Ok(One::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<One, E> {
                Ok(One::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A list of numbers: null is NaN, anything else not a number `None`; at
/// most [`crate::MAX_POINTS_PER_SERIES`] kept, and how many more there were.
struct Numbers(Vec<Option<f64>>, u64);

/// One element of [`Numbers`].
struct Number(Option<f64>);

impl<'de> de::Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(Some(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Number, E> {
                Ok(Number(Some(f64::from(u8::from(v)))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
                Ok(Number(Some(f64::NAN)))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Number, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Number(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Number, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Number(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A list (nothing for anything that is not one) of at most `max`
/// elements, and how many more it had: those are skipped, never stored
/// (a 64 MiB `metrics.json` holds tens of millions of them).
fn lenient_list<'de, D, T>(d: D, max: usize) -> Result<(Vec<T>, u64), D::Error>
where
    D: Deserializer<'de>,
    T: de::Deserialize<'de>,
{
    struct List<T> {
        max: usize,
        item: std::marker::PhantomData<T>,
    }
    impl<'de, T: de::Deserialize<'de>> Visitor<'de> for List<T> {
        type Value = (Vec<T>, u64);
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(Vec<T>, u64), A::Error> {
            let mut out = Vec::new();
            while out.len() < self.max {
                let Some(item) = seq.next_element::<T>()? else {
                    return Ok((out, 0));
                };
                out.push(item);
            }
            let mut beyond = 0;
            while seq.next_element::<IgnoredAny>()?.is_some() {
                beyond += 1;
            }
            Ok((out, beyond))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(Vec<T>, u64), A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok((Vec::new(), 0))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(Vec<T>, u64), E> {
            Ok((Vec::new(), 0))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(Vec<T>, u64), E> {
            Ok((Vec::new(), 0))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(Vec<T>, u64), E> {
            Ok((Vec::new(), 0))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(Vec<T>, u64), E> {
            Ok((Vec::new(), 0))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(Vec<T>, u64), E> {
            Ok((Vec::new(), 0))
        }
        fn visit_unit<E: de::Error>(self) -> Result<(Vec<T>, u64), E> {
            Ok((Vec::new(), 0))
        }
    }
    d.deserialize_any(List {
        max,
        item: std::marker::PhantomData,
    })
}

impl<'de> de::Deserialize<'de> for Numbers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (items, beyond) = lenient_list::<_, Number>(d, crate::MAX_POINTS_PER_SERIES)?;
        Ok(Numbers(items.into_iter().map(|n| n.0).collect(), beyond))
    }
}

/// A list of times (seconds; NaN for what is not an ISO 8601 text).
struct Times(Vec<f64>);

/// One element of [`Times`].
struct Time(f64);

impl<'de> de::Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Time;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a time")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Time, E> {
                Ok(Time(crate::text::iso8601_secs(v).unwrap_or(f64::NAN)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Time, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Time(f64::NAN))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Time, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Time(f64::NAN))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Time, E> {
                Ok(Time(f64::NAN))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Time, E> {
                Ok(Time(f64::NAN))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Time, E> {
                Ok(Time(f64::NAN))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Time, E> {
                Ok(Time(f64::NAN))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Time, E> {
                Ok(Time(f64::NAN))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> de::Deserialize<'de> for Times {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only the times of steps and values kept are ever looked at.
        let (items, _) = lenient_list::<_, Time>(d, crate::MAX_POINTS_PER_SERIES)?;
        Ok(Times(items.into_iter().map(|t| t.0).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::Memory;
    use crate::{Format, RunReader};

    const RUN: &str = r#"{
  "artifacts": ["plot.png", "../escape.png", "notes.md"],
  "command": "main",
  "experiment": {"base_dir": "/tmp/x", "name": "mnist_sweep", "sources": []},
  "heartbeat": "2026-12-07T11:25:40.000000",
  "host": {"hostname": "vm"},
  "meta": {"command": "main", "config_updates": {"lr": 0.1, "opt": {"name": "sgd"}}},
  "result": 0.5,
  "start_time": "2026-12-07T11:25:33.343004",
  "status": "COMPLETED",
  "stop_time": "2026-12-07T11:25:41.000000"
}"#;

    fn read(memory: &Memory) -> (RunReader, RunInfo) {
        let mut reader = RunReader::new(Format::Sacred);
        reader.refresh(memory);
        let info = reader.info();
        (reader, info)
    }

    #[test]
    fn a_run_reads_its_status_config_metrics_and_artifacts() {
        let memory = Memory::default();
        memory.put("run.json", RUN.as_bytes());
        memory.put(
            "config.json",
            br#"{"lr": 0.1, "model": {"depth": 4}, "seed": 7}"#,
        );
        memory.put(
            "metrics.json",
            br#"{"loss": {"steps": [0, 1, 2], "values": [1.0, NaN, 0.25],
                "timestamps": ["2026-12-07T11:25:34", "bad", "2026-12-07T11:25:35.5"]},
                "odd": [1, 2], "short": {"steps": [0, 1], "values": [3, "x"]}}"#,
        );
        let (reader, info) = read(&memory);
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.status.as_deref(), Some("finished"));
        assert!(info.tags.contains(&"status_raw=COMPLETED".to_owned()));
        assert!(info.tags.contains(&"result=0.5".to_owned()));
        assert_eq!(info.created.as_deref(), Some("2026-12-07T11:25:33Z"));
        assert_eq!(info.title.as_deref(), Some("lr=0.1,opt.name=sgd"));
        let exp = info.experiment.unwrap();
        assert_eq!(
            (exp.location.as_str(), exp.name.as_str()),
            ("mnist_sweep", "mnist_sweep")
        );
        assert_eq!(info.params["model.depth"], 4);
        assert_eq!(info.params["seed"], 7);
        let loss = reader.series("loss").unwrap().points();
        assert_eq!(loss.len(), 3);
        assert!(loss[1].value.is_nan() && loss[1].wall.is_nan());
        assert_eq!((loss[2].step, loss[2].value), (2, 0.25));
        assert_eq!(loss[2].wall, 1_796_642_735.5);
        assert_eq!(reader.series("short").unwrap().points().len(), 1);
        let media: Vec<_> = info
            .media
            .iter()
            .map(|m| (m.artifact.as_str(), m.kind))
            .collect();
        assert_eq!(media, [("plot.png", "image")]);
    }

    /// A bare NaN reads as null; strings that hold the words stay.
    #[test]
    fn a_bare_nan_leaves_strings_naming_it_alone() {
        let memory = Memory::default();
        let run = RUN.replace("\"vm\"", "\"NaN-host\"").replace("0.5", "NaN");
        memory.put("run.json", run.as_bytes());
        memory.put(
            "config.json",
            br#"{"act": "NaN-safe", "lr": NaN, "note": "say \"Infinity\""}"#,
        );
        let (_, info) = read(&memory);
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.params["act"], "NaN-safe");
        assert_eq!(info.params["note"], "say \"Infinity\"");
        assert!(info.params["lr"].is_null());
        assert!(info.tags.contains(&"host=NaN-host".to_owned()));
        assert!(!info.tags.iter().any(|t| t.starts_with("result=")));
    }

    #[test]
    fn each_sacred_word_maps_and_a_silent_running_run_is_crashed() {
        let memory = Memory::default();
        memory.put("config.json", b"{}");
        let old = "2020-01-01T00:00:00";
        let now = crate::text::iso8601_utc(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
        let now = now.trim_end_matches('Z');
        for (status, heartbeat, expected) in [
            ("COMPLETED", old, "finished"),
            ("FAILED", old, "failed"),
            ("INTERRUPTED", old, "killed"),
            ("TIMEOUT", old, "killed"),
            ("QUEUED", old, "running"),
            ("RUNNING", now, "running"),
            ("RUNNING", old, "crashed"),
            ("SOMETHING", old, "unknown"),
        ] {
            let run = RUN
                .replace("COMPLETED", status)
                .replace("2026-12-07T11:25:40.000000", heartbeat);
            memory.put("run.json", run.as_bytes());
            let (_, info) = read(&memory);
            assert_eq!(
                info.status.as_deref(),
                Some(expected),
                "{status} {heartbeat}"
            );
        }
    }

    #[test]
    fn a_file_caught_half_written_is_pending_once_then_an_error() {
        let memory = Memory::default();
        memory.put("run.json", RUN.as_bytes());
        memory.put("config.json", br#"{"lr": 0.1}"#);
        let mut reader = RunReader::new(Format::Sacred);
        reader.refresh(&memory);
        memory.put("config.json", br#"{"lr": 0.2, "be"#);
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(info.params["lr"], 0.1, "what was read before stays");
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.params["lr"], 0.1);
        assert_eq!(info.errors.len(), 1, "{:?}", info.errors);
        assert!(
            info.errors[0].starts_with("config.json: EOF"),
            "{:?}",
            info.errors
        );
        memory.put("config.json", br#"{"lr": 0.2}"#);
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(
            (info.errors.len(), &info.params["lr"]),
            (0, &Value::from(0.2))
        );
    }

    #[test]
    fn bad_files_are_errors_of_the_run_and_the_rest_reads() {
        let memory = Memory::default();
        memory.put("run.json", RUN.as_bytes());
        memory.put("config.json", b"\xff\xfe not json");
        memory.put(
            "metrics.json",
            br#"{"loss": {"steps": [0], "values": [2.5]}}"#,
        );
        let (reader, info) = read(&memory);
        assert_eq!(info.errors.len(), 1, "{:?}", info.errors);
        assert!(info.errors[0].starts_with("config.json: "));
        assert_eq!(info.status.as_deref(), Some("finished"));
        assert_eq!(reader.series("loss").unwrap().points().len(), 1);
    }

    /// A list longer than the cap keeps the cap's worth and counts the
    /// rest without storing it; what is not a list is none.
    #[test]
    fn a_list_past_its_cap_is_counted_not_stored() {
        let list = |text: &str| {
            let mut d = serde_json::Deserializer::from_str(text);
            let (items, beyond) = lenient_list::<_, Number>(&mut d, 3).unwrap();
            let items: Vec<Option<f64>> = items.into_iter().map(|n| n.0).collect();
            (items, beyond)
        };
        assert_eq!(
            list(r#"[1, null, "x", [4], {"a": 5}, 6, 7]"#).1,
            4,
            "what is past the cap is skipped whatever it is"
        );
        let (items, beyond) = list(r#"[1, "x", 2.5, [4], {"a": 5}, 6]"#);
        assert_eq!((items, beyond), (vec![Some(1.0), None, Some(2.5)], 3));
        assert_eq!(
            list("[1, 2, 3]"),
            (vec![Some(1.0), Some(2.0), Some(3.0)], 0)
        );
        assert_eq!(list(r#"{"a": [1, 2, 3, 4]}"#), (vec![], 0));
        // What is skipped must still be JSON.
        let mut d = serde_json::Deserializer::from_str("[1, 2, 3, 4, ]");
        assert!(lenient_list::<_, Number>(&mut d, 3).is_err());
    }

    /// A series longer than the cap: the cap's worth kept, the rest
    /// counted as refused, as when each was pushed.
    #[test]
    fn a_series_past_the_cap_keeps_the_cap_and_reports_the_rest() {
        let n = crate::MAX_POINTS_PER_SERIES + 5;
        let zeros = "0,".repeat(n - 1) + "0";
        let text = format!(r#"{{"loss": {{"steps": [{zeros}], "values": [{zeros}, 1]}}}}"#);
        let set = metrics(text.as_bytes()).unwrap();
        let loss = set.get("loss").unwrap();
        assert_eq!(loss.points().len(), crate::MAX_POINTS_PER_SERIES);
        assert_eq!((set.refused, loss.dropped), (5, 5));
        assert!(set.cap_error().unwrap().starts_with("5 points"));
    }

    #[test]
    fn sacred_run_json_is_told_from_a_lab_run_json_by_content() {
        for (head, sacred) in [
            (RUN.as_bytes(), true),
            // Cut at the head's size: by its keys as Sacred writes them.
            (&RUN.as_bytes()[..RUN.find("\"host\"").unwrap() + 20], true),
            (&RUN.as_bytes()[..RUN.find("\"host\"").unwrap() - 3], false),
            (br#"{"name": "a lab run", "params": {"lr": 0.1}}"#, false),
            (
                br#"{"experiment": "exp", "host": "h", "command": "c"}"#,
                false,
            ),
            (br#"{"experiment": {"name": "exp"}, "command": "c"}"#, false),
            (b"\xff\xfe", false),
        ] {
            assert_eq!(
                is_sacred_run(head),
                sacred,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
