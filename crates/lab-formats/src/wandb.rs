//! Weights & Biases run directories (`wandb/run-*`, `wandb/offline-run-*`).
//! An offline run may hold only its record log, `run-<id>.wandb`, and
//! `files/media/…`: config, history and summary live inside that log.
//!
//! The log's framing (what wandb's datastore writes): a 7-byte header
//! (`:W&B`, magic 0xBEE1 little-endian, version 0), then 32 KiB blocks of
//! records, each `u32 crc`, `u16 length`, `u8 type` (FULL 1, FIRST 2,
//! MIDDLE 3, LAST 4) and its data; a record never crosses a block (a long
//! one is split FIRST, MIDDLE…, LAST), fewer than 7 bytes left in a block
//! are zero padding, and the CRC is zlib's CRC-32 of the type byte followed
//! by the data. Each whole record is a `Record` protobuf: run, config,
//! history, summary and exit are read; the rest is skipped.
//!
//! An incomplete final record (a training still writing, or a writer that
//! crashed mid-block) is pending: everything before it is read, and the
//! rest when it arrives. A complete record that fails its CRC, claims more
//! than its block holds, or has an unknown type stops this run's log there,
//! as an error of this run.

use prost::Message;
use serde_json::Value;
use std::collections::BTreeMap;

use crate::histogram::{HistogramPoint, Histograms, check_buckets};
use crate::lab::{MAX_META_BYTES, read_parsed};
use crate::series::{Point, SeriesSet};
use crate::storage::{EntryKind, Storage, list_all};
use crate::tail::{Sink, Tail};
use crate::{MAX_PARAMS, Media, RunInfo, TableRef, flatten};

const HEADER: [u8; 7] = [b':', b'W', b'&', b'B', 0xe1, 0xbe, 0];
const BLOCK: u64 = 32 * 1024;
const RECORD_HEADER: u64 = 7;
/// Largest record (all its pieces) accepted.
const MAX_RECORD: usize = 16 << 20;
/// Most media entries kept.
const MAX_MEDIA: usize = 10_000;
/// Largest config or summary value kept (its JSON text); a larger one is
/// kept as a note of its size.
const MAX_VALUE_JSON: usize = 64 * 1024;
/// Most bytes of config and summary values kept per run.
const MAX_KEPT_JSON: usize = 4 << 20;

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Record {
    #[prost(message, optional, tag = "2")]
    pub history: Option<HistoryRecord>,
    #[prost(message, optional, tag = "3")]
    pub summary: Option<ItemsRecord>,
    #[prost(message, optional, tag = "5")]
    pub config: Option<ItemsRecord>,
    #[prost(message, optional, tag = "17")]
    pub run: Option<RunRecord>,
    #[prost(message, optional, tag = "18")]
    pub exit: Option<ExitRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct HistoryRecord {
    #[prost(message, repeated, tag = "1")]
    pub item: Vec<Item>,
    #[prost(message, optional, tag = "2")]
    pub step: Option<HistoryStep>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct HistoryStep {
    #[prost(int64, tag = "1")]
    pub num: i64,
}

/// `HistoryItem`, `ConfigItem` and `SummaryItem` share these fields.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Item {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, repeated, tag = "2")]
    pub nested_key: Vec<String>,
    #[prost(bool, optional, tag = "4")]
    pub boolean: Option<bool>,
    #[prost(sint64, optional, tag = "5")]
    pub integer: Option<i64>,
    #[prost(double, optional, tag = "6")]
    pub number: Option<f64>,
    #[prost(string, optional, tag = "7")]
    pub text: Option<String>,
    #[prost(string, tag = "16")]
    pub value_json: String,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ItemsRecord {
    #[prost(message, repeated, tag = "1")]
    pub update: Vec<Item>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct RunRecord {
    #[prost(string, tag = "1")]
    pub run_id: String,
    #[prost(string, tag = "3")]
    pub project: String,
    #[prost(message, optional, tag = "4")]
    pub config: Option<ItemsRecord>,
    #[prost(string, tag = "8")]
    pub display_name: String,
    #[prost(string, tag = "9")]
    pub notes: String,
    #[prost(string, repeated, tag = "10")]
    pub tags: Vec<String>,
    #[prost(message, optional, tag = "17")]
    pub start_time: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ExitRecord {
    #[prost(int32, tag = "1")]
    pub exit_code: i32,
}

/// zlib's CRC-32 of `type` then `data`.
pub(crate) fn record_crc(kind: u8, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(data);
    h.finalize()
}

impl Item {
    /// The item's dotted key (`nested_key` joined, else `key`).
    fn name(&self) -> String {
        if self.nested_key.is_empty() {
            self.key.clone()
        } else {
            self.nested_key.join(".")
        }
    }

    /// The item's value as JSON.
    fn value(&self) -> Value {
        if !self.value_json.is_empty() {
            // Python's bare NaN and Infinity read as null.
            return crate::text::from_python_json(self.value_json.as_bytes())
                .unwrap_or(Value::Null);
        }
        if let Some(b) = self.boolean {
            Value::Bool(b)
        } else if let Some(i) = self.integer {
            Value::from(i)
        } else if let Some(n) = self.number {
            serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
        } else if let Some(t) = &self.text {
            Value::String(t.clone())
        } else {
            Value::Null
        }
    }
}

/// What the log says so far.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Bytes of the file consumed (its header included).
    pos: u64,
    header: bool,
    /// A record split over blocks, until its LAST piece.
    partial: Option<Vec<u8>>,
    pub(crate) set: SeriesSet,
    pub(crate) info: RunInfo,
    config: BTreeMap<String, Value>,
    summary: BTreeMap<String, Value>,
    /// Bytes of value JSON kept in `config` and `summary`.
    kept_json: usize,
    media: Vec<Media>,
    /// `wandb.Histogram`s logged in history rows.
    pub(crate) histograms: Histograms,
    tables: Vec<TableRef>,
}

impl Log {
    fn record(&mut self, data: &[u8]) -> Result<(), String> {
        let record = Record::decode(data).map_err(|e| format!("a record does not decode: {e}"))?;
        if let Some(run) = record.run {
            if !run.display_name.is_empty() {
                self.info.name = Some(crate::text::cap(&run.display_name));
            }
            if !run.notes.is_empty() {
                self.info.description = Some(crate::text::cap(&run.notes));
            }
            self.info.tags = run
                .tags
                .iter()
                .take(crate::MAX_TAGS)
                .map(|t| crate::text::cap(t))
                .collect();
            if !run.project.is_empty() {
                // A W&B project is one namespace (of its entity), wherever
                // its runs' directories lie.
                let project = crate::text::cap(&run.project);
                self.info.experiment = Some(crate::Group {
                    location: project.clone(),
                    name: project,
                });
            }
            if let Some(t) = run.start_time.filter(|t| t.seconds > 0) {
                self.info.created = Some(crate::text::iso8601_utc(t.seconds as u64));
            }
            self.info.status.get_or_insert_with(|| "RUNNING".to_owned());
            if let Some(config) = run.config {
                self.config_items(&config.update);
            }
        }
        if let Some(config) = record.config {
            self.config_items(&config.update);
        }
        if let Some(summary) = record.summary {
            for item in summary.update {
                let name = item.name();
                if !name.starts_with('_') && self.summary.len() < MAX_PARAMS {
                    let value = self.bounded(&item);
                    self.summary.insert(name, value);
                }
            }
        }
        if let Some(history) = record.history {
            self.history(&history);
        }
        if let Some(exit) = record.exit {
            self.info.status = Some(
                if exit.exit_code == 0 {
                    "FINISHED"
                } else {
                    "FAILED"
                }
                .to_owned(),
            );
        }
        Ok(())
    }

    fn config_items(&mut self, items: &[Item]) {
        for item in items {
            let name = item.name();
            if name.starts_with("_wandb") || self.config.len() >= MAX_PARAMS {
                continue;
            }
            let value = self.bounded(item);
            self.config.insert(name, value);
        }
    }

    /// An item's value if its JSON is small and the run's budget allows,
    /// else a note of its size (memory stays bounded whatever the log says).
    fn bounded(&mut self, item: &Item) -> Value {
        let len = item.value_json.len();
        if len > MAX_VALUE_JSON || self.kept_json + len > MAX_KEPT_JSON {
            return Value::String(format!("(a value of {len} bytes, not kept)"));
        }
        self.kept_json += len;
        item.value()
    }

    fn history(&mut self, history: &HistoryRecord) {
        let mut row: BTreeMap<String, Value> = BTreeMap::new();
        for item in &history.item {
            row.insert(item.name(), item.value());
        }
        let step = row
            .get("_step")
            .and_then(Value::as_i64)
            .or_else(|| history.step.as_ref().map(|s| s.num))
            .unwrap_or(0);
        let wall = row
            .get("_timestamp")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN);
        // Media: `KEY._type` says what `KEY.path` (under files/) is.
        for (name, value) in &row {
            let Some(key) = name.strip_suffix("._type") else {
                continue;
            };
            let kind = match value.as_str() {
                Some("video-file") => "video",
                Some("image-file") => "image",
                Some("table-file") => "table",
                _ => continue,
            };
            let Some(path) = row.get(&format!("{key}.path")).and_then(Value::as_str) else {
                continue;
            };
            if kind == "table" {
                if self.tables.len() < MAX_MEDIA && !path.contains("..") {
                    self.tables.push(TableRef {
                        artifact: format!("files/{path}"),
                        key: Some(key.to_owned()),
                        step: Some(step),
                    });
                }
                continue;
            }
            if self.media.len() < MAX_MEDIA && !path.contains("..") {
                self.media.push(Media {
                    artifact: format!("files/{path}"),
                    kind,
                    step: Some(step),
                    key: Some(key.to_owned()),
                    embedded: false,
                    url: None,
                });
            }
        }
        // Histograms: `KEY._type` "histogram" with `KEY.values` and
        // `KEY.bins`.
        for (name, value) in &row {
            let Some(key) = name.strip_suffix("._type") else {
                continue;
            };
            if value.as_str() == Some("histogram") {
                let point = histogram_of_row(&row, key, step, wall);
                self.histograms.push(key, point);
            }
        }
        // A media object's fields (size, width, sha256…) are no metrics.
        let objects = typed_prefixes(row.keys());
        for (name, value) in &row {
            if name.starts_with('_') || in_object(&objects, name) {
                continue;
            }
            let value = match value {
                Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::Null => f64::NAN,
                _ => continue,
            };
            self.set.push(name, Point { step, wall, value });
        }
    }
}

impl Sink for Log {
    fn restart(&mut self) {
        *self = Log::default();
    }

    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
        if !self.header {
            let Some(head) = bytes.get(..HEADER.len()) else {
                return Ok(0);
            };
            if head != HEADER {
                return Err("not a W&B run log (bad header)".to_owned());
            }
            self.header = true;
            self.pos = HEADER.len() as u64;
            return Ok(HEADER.len());
        }
        let left = BLOCK - self.pos % BLOCK;
        if left < RECORD_HEADER {
            let Some(pad) = bytes.get(..left as usize) else {
                return Ok(0);
            };
            if pad.iter().any(|b| *b != 0) {
                return Err(format!("bad block padding at offset {}", self.pos));
            }
            self.pos += left;
            return Ok(left as usize);
        }
        let Some(head) = bytes.get(..RECORD_HEADER as usize) else {
            return Ok(0);
        };
        let crc = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = u64::from(u16::from_le_bytes([head[4], head[5]]));
        let kind = head[6];
        if !(1..=4).contains(&kind) {
            return Err(format!("record type {kind} at offset {}", self.pos));
        }
        if RECORD_HEADER + len > left {
            return Err(format!(
                "a record at offset {} claims {len} bytes, past its block",
                self.pos
            ));
        }
        let total = (RECORD_HEADER + len) as usize;
        let Some(data) = bytes.get(RECORD_HEADER as usize..total) else {
            return Ok(0);
        };
        if record_crc(kind, data) != crc {
            return Err(format!("a record at offset {} fails its CRC", self.pos));
        }
        self.pos += total as u64;
        match (kind, self.partial.take()) {
            (1, None) => self.record(data)?,
            (2, None) => self.partial = Some(data.to_vec()),
            (3 | 4, Some(mut partial)) => {
                partial.extend_from_slice(data);
                if partial.len() > MAX_RECORD {
                    return Err(format!("a record longer than {MAX_RECORD} bytes"));
                }
                if kind == 4 {
                    self.record(&partial)?;
                } else {
                    self.partial = Some(partial);
                }
            }
            (k, _) => {
                return Err(format!(
                    "record piece of type {k} out of order at offset {}",
                    self.pos - total as u64
                ));
            }
        }
        Ok(total)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    log_name: Option<String>,
    tail: Tail,
    log: Log,
    files: RunInfo,
    errors: Vec<String>,
    /// When the record log was last written (Unix seconds), if the storage
    /// says: a log without an exit record that has been silent for
    /// [`SILENT_AFTER`] is a crashed run's.
    log_written: Option<u64>,
}

/// How long a W&B run's record log may be silent, without an exit record,
/// before the run is taken as crashed — what W&B itself calls a run whose
/// process stopped its heartbeats without `finish()` (killed, out of
/// memory, preempted). A live run's wandb process writes system metrics
/// into the log every few seconds.
const SILENT_AFTER: u64 = 15 * 60;

/// `KEY` for every `KEY._type` among `names`: the logged objects (a video,
/// an image, a table) whose fields are no values of their own.
fn typed_prefixes<'a>(
    names: impl Iterator<Item = &'a String>,
) -> std::collections::HashSet<&'a str> {
    names.filter_map(|n| n.strip_suffix("._type")).collect()
}

/// Whether `name` is a field of one of `objects` (`KEY.…` for a `KEY` in
/// the set): one lookup per dot in the name, whatever the set's size.
fn in_object(objects: &std::collections::HashSet<&str>, name: &str) -> bool {
    name.match_indices('.')
        .any(|(at, _)| objects.contains(&name[..at]))
}

/// The `wandb.Histogram` logged as `key` in a history row (`values`: the
/// counts, `bins`: their edges, one more) as a point: `min` the first
/// edge, `max` the last, the others the limits. Counts that add up to 0
/// make an empty histogram (what TensorBoard makes of a `HistogramProto`
/// whose `num` is their sum).
fn histogram_of_row(
    row: &BTreeMap<String, Value>,
    key: &str,
    step: i64,
    wall: f64,
) -> Result<HistogramPoint, String> {
    let array = |field: &str| {
        row.get(&format!("{key}.{field}"))
            .and_then(Value::as_array)
            .ok_or_else(|| format!("no {field} list"))
    };
    let (values, bins) = (array("values")?, array("bins")?);
    check_buckets(values.len())?;
    if bins.len() != values.len() + 1 {
        return Err(format!(
            "{} bins for {} values (one more is needed)",
            bins.len(),
            values.len()
        ));
    }
    let numbers = |list: &[Value]| -> Result<Vec<f64>, String> {
        list.iter()
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| "a bin or value that is not a number".to_owned())
            })
            .collect()
    };
    let (counts, edges) = (numbers(values)?, numbers(bins)?);
    let (Some(&min), Some(&max)) = (edges.first(), edges.last()) else {
        return Err("no bins".to_owned());
    };
    if counts.iter().sum::<f64>() == 0.0 {
        return HistogramPoint::new(step, wall, 0.0, 0.0, Vec::new(), Vec::new());
    }
    HistogramPoint::new(step, wall, min, max, edges[1..].to_vec(), counts)
}

/// `<key>_<step>_<hash>.<ext>` (W&B's media file names; `.table.json`
/// for a table): the step.
fn step_in_name(name: &str) -> Option<(String, i64)> {
    let stem = match name.strip_suffix(".table.json") {
        Some(stem) => stem,
        None => name.rsplit_once('.')?.0,
    };
    let mut parts = stem.rsplitn(3, '_');
    let _hash = parts.next()?;
    let step = parts.next()?.parse().ok()?;
    let key = parts.next()?;
    Some((key.to_owned(), step))
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.errors.clear();
        let entries = match list_all(storage, "") {
            Ok(e) => e,
            Err(e) => {
                self.errors.push(format!("listing the run: {e}"));
                return;
            }
        };
        let log = entries
            .iter()
            .find(|e| e.kind == EntryKind::File && e.name.ends_with(".wandb"))
            .map(|e| e.name.clone());
        if log != self.log_name {
            self.tail = Tail::default();
            self.log = Log::default();
            self.log_name = log;
        }
        if let Some(name) = &self.log_name {
            // A log gone is forgotten (the log restarted) by the tail.
            if let Err(e) = self
                .tail
                .follow(storage, name, MAX_RECORD + 64, &mut self.log)
            {
                self.errors.push(e);
            }
            if let Some(failed) = self.tail.failed() {
                self.errors.push(failed.to_owned());
            }
            self.log_written = storage.stat(name).ok().and_then(|stat| stat.modified);
        }
        // What a synced run (or one that wrote them) has as files.
        let mut files = RunInfo::default();
        match read_parsed(storage, "files/config.yaml", MAX_META_BYTES) {
            Ok(Some(Value::Object(map))) => {
                for (k, v) in map {
                    if k.starts_with("_wandb") {
                        continue;
                    }
                    // Synced configs wrap each value: {value: …, desc: …}.
                    let v = v.get("value").cloned().unwrap_or(v);
                    flatten(&k, &v, &mut files.params);
                }
            }
            Ok(_) => {}
            Err(e) => files.errors.push(e),
        }
        match read_parsed(storage, "files/wandb-summary.json", MAX_META_BYTES) {
            Ok(Some(Value::Object(map))) => {
                for (k, v) in map {
                    if !k.starts_with('_') && v.is_number() {
                        files.params.insert(format!("summary.{k}"), v);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => files.errors.push(e),
        }
        for (dir, kind) in [
            ("files/media/videos", "video"),
            ("files/media/images", "image"),
        ] {
            let Ok(listed) = list_all(storage, dir) else {
                continue;
            };
            for entry in listed.into_iter().filter(|e| e.kind == EntryKind::File) {
                let parsed = step_in_name(&entry.name);
                // A GIF is shown as an image wherever W&B filed it.
                let kind = if entry.name.ends_with(".gif") {
                    "image"
                } else {
                    kind
                };
                files.media.push(Media {
                    artifact: format!("{dir}/{}", entry.name),
                    kind,
                    step: parsed.as_ref().map(|(_, s)| *s),
                    key: parsed.map(|(k, _)| k),
                    embedded: false,
                    url: None,
                });
            }
        }
        // Tables (`wandb.Table`), by name where the log does not say.
        if let Ok(listed) = list_all(storage, "files/media/table") {
            for entry in listed
                .into_iter()
                .filter(|e| e.name.ends_with(".table.json"))
                .take(MAX_MEDIA)
            {
                let parsed = step_in_name(&entry.name);
                // A link, FIFO or directory is listed too: the run page
                // says why it is not served.
                files.tables.push(TableRef {
                    artifact: format!("files/media/table/{}", entry.name),
                    step: parsed.as_ref().map(|(_, s)| *s),
                    key: parsed.map(|(k, _)| k),
                });
            }
        }
        self.files = files;
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.log.info.clone();
        // No exit record, and the log silent long since: crashed, as W&B
        // says of a run whose heartbeats stopped (a killed process writes
        // no exit record).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if info.status.as_deref() == Some("RUNNING")
            && self
                .log_written
                .is_some_and(|at| now.saturating_sub(at) >= SILENT_AFTER)
        {
            info.status = Some("CRASHED".to_owned());
        }
        for (k, v) in &self.log.config {
            flatten(k, v, &mut info.params);
        }
        for (k, v) in &self.files.params {
            info.params.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let objects = typed_prefixes(self.log.summary.keys());
        for (k, v) in &self.log.summary {
            if in_object(&objects, k) {
                continue;
            }
            if v.is_number() || v.is_boolean() || v.is_string() {
                info.params
                    .entry(format!("summary.{k}"))
                    .or_insert_with(|| v.clone());
            }
        }
        // Media the log names with their history step win over what the
        // file names say.
        info.media = self.log.media.clone();
        for m in &self.files.media {
            if !info.media.iter().any(|l| l.artifact == m.artifact) {
                info.media.push(m.clone());
            }
        }
        info.media
            .sort_by(|a, b| (a.step, &a.artifact).cmp(&(b.step, &b.artifact)));
        info.tables = self.log.tables.clone();
        for t in &self.files.tables {
            if !info.tables.iter().any(|l| l.artifact == t.artifact) {
                info.tables.push(t.clone());
            }
        }
        info.tables
            .sort_by(|a, b| (a.step, &a.artifact).cmp(&(b.step, &b.artifact)));
        info.errors.extend(self.errors.iter().cloned());
        info.errors.extend(self.files.errors.iter().cloned());
        info.errors.extend(self.log.set.cap_error());
        info
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.log.set]
    }

    pub(crate) fn histograms(&self) -> &Histograms {
        &self.log.histograms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An item's JSON with Python's bare NaN reads it as null, and leaves
    /// strings that hold the word as written.
    #[test]
    fn a_bare_nan_in_an_items_json_leaves_its_strings_alone() {
        let item = Item {
            key: "opt".to_owned(),
            value_json: r#"{"act": "NaN-safe", "lr": NaN, "hi": -Infinity}"#.to_owned(),
            ..Item::default()
        };
        assert_eq!(
            item.value(),
            serde_json::json!({"act": "NaN-safe", "lr": null, "hi": null})
        );
    }

    /// Frames `records` the way wandb's datastore does.
    fn log(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        for data in records {
            let mut rest = data.as_slice();
            let mut first = true;
            loop {
                let left = (BLOCK - out.len() as u64 % BLOCK) as usize;
                if left < 7 {
                    out.extend(vec![0u8; left]);
                    continue;
                }
                let room = left - 7;
                let (piece, more) = rest.split_at(rest.len().min(room));
                let kind = match (first, more.is_empty()) {
                    (true, true) => 1,
                    (true, false) => 2,
                    (false, false) => 3,
                    (false, true) => 4,
                };
                out.extend(record_crc(kind, piece).to_le_bytes());
                out.extend((piece.len() as u16).to_le_bytes());
                out.push(kind);
                out.extend(piece);
                rest = more;
                first = false;
                if rest.is_empty() {
                    break;
                }
            }
        }
        out
    }

    fn feed(bytes: &[u8]) -> Result<Log, String> {
        let mut log = Log::default();
        let mut at = 0;
        while at < bytes.len() {
            let used = log.consume(&bytes[at..])?;
            if used == 0 {
                break;
            }
            at += used;
        }
        Ok(log)
    }

    fn history(step: i64, loss: f64) -> Vec<u8> {
        let item = |k: &str, v: String| Item {
            nested_key: vec![k.to_owned()],
            value_json: v,
            ..Item::default()
        };
        Record {
            history: Some(HistoryRecord {
                item: vec![
                    item("_step", step.to_string()),
                    item("loss", loss.to_string()),
                ],
                step: None,
            }),
            ..Record::default()
        }
        .encode_to_vec()
    }

    /// A run record (no exit record follows it).
    fn started() -> Vec<u8> {
        Record {
            run: Some(RunRecord {
                run_id: "abc".into(),
                project: "p".into(),
                ..RunRecord::default()
            }),
            ..Record::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn a_run_without_an_exit_record_whose_log_went_silent_crashed() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().canonicalize().unwrap().join("offline-run-1");
        std::fs::create_dir(&run).unwrap();
        let file = run.join("run-abc.wandb");
        std::fs::write(&file, log(&[started(), history(0, 1.0)])).unwrap();
        let status = || {
            let root = lab_fs::RunRoot::open_ambient(&run).unwrap();
            let mut reader = Reader::default();
            reader.refresh(&crate::LocalStorage::new(&root));
            reader.info().status
        };
        // Just written: still running.
        assert_eq!(status().as_deref(), Some("RUNNING"));
        // Silent for an hour without an exit record: crashed.
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let set = |at| {
            std::fs::File::options()
                .write(true)
                .open(&file)
                .unwrap()
                .set_modified(at)
                .unwrap()
        };
        set(hour_ago);
        assert_eq!(status().as_deref(), Some("CRASHED"));
        // With its exit record, what it says, however old.
        let exit = Record {
            exit: Some(ExitRecord { exit_code: 1 }),
            ..Record::default()
        }
        .encode_to_vec();
        std::fs::write(&file, log(&[started(), history(0, 1.0), exit])).unwrap();
        set(hour_ago);
        assert_eq!(status().as_deref(), Some("FAILED"));
    }

    #[test]
    fn records_split_over_blocks_and_hostile_bytes() {
        // Enough records to cross several blocks, and one long one.
        let mut records: Vec<Vec<u8>> = (0..3000)
            .map(|s| history(s, 1.0 / (s as f64 + 1.0)))
            .collect();
        let long = Record {
            config: Some(ItemsRecord {
                update: vec![Item {
                    key: "big".to_owned(),
                    value_json: format!("\"{}\"", "x".repeat(100_000)),
                    ..Item::default()
                }],
            }),
            ..Record::default()
        };
        records.insert(10, long.encode_to_vec());
        let bytes = log(&records);
        assert!(bytes.len() > 3 * BLOCK as usize);
        let read = feed(&bytes).unwrap();
        let loss = read.set.get("loss").unwrap();
        assert_eq!(loss.points().len(), 3000);
        assert_eq!(loss.points()[2999].step, 2999);
        assert!(read.config.contains_key("big"));
        // Torn: readable up to the tear, the rest pending.
        let torn = feed(&bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(torn.set.get("loss").unwrap().points().len(), 2999);
        // A flipped byte, an unknown type, a length past the block, zeros.
        let mut bad = bytes.clone();
        bad[40] ^= 1;
        assert!(feed(&bad).unwrap_err().contains("CRC"));
        let mut typed = bytes.clone();
        typed[7 + 6] = 9;
        assert!(feed(&typed).unwrap_err().contains("record type 9"));
        let mut long_len = bytes.clone();
        long_len[7 + 4] = 0xff;
        long_len[7 + 5] = 0xff;
        assert!(feed(&long_len).unwrap_err().contains("past its block"));
        assert!(
            feed(&vec![0u8; 10 << 20])
                .unwrap_err()
                .contains("bad header")
        );
        let mut zeros = HEADER.to_vec();
        zeros.extend(vec![0u8; 1 << 20]);
        assert!(feed(&zeros).unwrap_err().contains("record type 0"));
    }

    #[test]
    fn many_typed_items_and_huge_values_stay_cheap() {
        // 200 000 items, half of them `KEY._type`: linear, not quadratic.
        let mut items = Vec::new();
        for i in 0..100_000 {
            items.push(Item {
                key: format!("k{i}._type"),
                value_json: "\"x\"".to_owned(),
                ..Item::default()
            });
            items.push(Item {
                key: format!("m{i}"),
                value_json: "1".to_owned(),
                ..Item::default()
            });
        }
        let record = Record {
            history: Some(HistoryRecord {
                item: items,
                step: None,
            }),
            ..Record::default()
        };
        let read = feed(&log(&[record.encode_to_vec()])).unwrap();
        // The k*._type fields are no series; the m* are, up to the cap.
        assert_eq!(read.set.points(), crate::MAX_SERIES);
        assert!(read.set.get("k0._type").is_none());
        // A config value of 1 MB is kept as a note of its size.
        let big = Record {
            config: Some(ItemsRecord {
                update: vec![Item {
                    key: "blob".to_owned(),
                    value_json: format!("[{}0]", "0,".repeat(500_000)),
                    ..Item::default()
                }],
            }),
            ..Record::default()
        };
        let read = feed(&log(&[big.encode_to_vec()])).unwrap();
        assert!(read.config["blob"].as_str().unwrap().contains("not kept"));
    }

    #[test]
    fn media_names_give_key_and_step() {
        assert_eq!(
            step_in_name("rollout_9_36fe4e9b86ee5fb80a09.mp4"),
            Some(("rollout".to_owned(), 9))
        );
        assert_eq!(
            step_in_name("eval_video_120_abc.mp4"),
            Some(("eval_video".to_owned(), 120))
        );
        assert_eq!(step_in_name("notes.txt"), None);
        assert_eq!(
            step_in_name("preds_0_e578403a3239faa8f7b8.table.json"),
            Some(("preds".to_owned(), 0))
        );
    }

    /// A history row logging `wandb.Histogram`s as W&B writes them
    /// (`KEY._type`, `KEY.values`, `KEY.bins`), each `(key, values, bins)`.
    fn histogram_row(step: i64, histograms: &[(&str, String, String)]) -> Vec<u8> {
        let item = |k: &[&str], v: String| Item {
            nested_key: k.iter().map(|s| (*s).to_owned()).collect(),
            value_json: v,
            ..Item::default()
        };
        let mut items = vec![item(&["_step"], step.to_string())];
        for (key, values, bins) in histograms {
            items.push(item(&[key, "_type"], "\"histogram\"".to_owned()));
            items.push(item(&[key, "values"], values.clone()));
            items.push(item(&[key, "bins"], bins.clone()));
        }
        Record {
            history: Some(HistoryRecord {
                item: items,
                step: None,
            }),
            ..Record::default()
        }
        .encode_to_vec()
    }

    /// A `wandb.Histogram` is a histogram point (min the first bin edge,
    /// max the last, limits the others, counts the values), none of its
    /// fields a metric; hostile ones are errors of the run, never kept.
    #[test]
    fn wandb_histograms_read_and_hostile_ones_are_errors() {
        let million = format!("[{}1]", "1,".repeat(999_999));
        let million_bins = format!("[{}1]", "0,".repeat(1_000_000));
        let rows = [
            histogram_row(
                4,
                &[
                    ("good", "[1,3]".into(), "[0,1,2]".into()),
                    ("million", million, million_bins),
                    ("short", "[1,2]".into(), "[0,1]".into()),
                    ("nan", "[1]".into(), "[0,NaN]".into()),
                    ("negative", "[-1]".into(), "[0,1]".into()),
                    ("text", "\"x\"".into(), "[0,1]".into()),
                ],
            ),
            histogram_row(5, &[("good", "[0,0]".into(), "[0,1,2]".into())]),
        ];
        let read = feed(&log(&rows)).unwrap();
        assert_eq!(read.set.points(), 0, "no metric from a histogram's fields");
        let good = read.histograms.get("good").unwrap();
        assert_eq!(good.len(), 2);
        assert_eq!((good[0].step, good[0].min, good[0].max), (4, 0.0, 2.0));
        assert_eq!(
            (&good[0].limits, &good[0].counts),
            (&vec![1.0, 2.0], &vec![1.0, 3.0])
        );
        // Counts adding up to nothing: an empty histogram.
        assert_eq!(good[1].bands(), [0.0; 9]);
        assert_eq!(read.histograms.infos().len(), 1);
        let errors = read.histograms.errors().join("\n");
        for why in [
            "\"million\": 1000000 buckets",
            "\"short\": 2 bins for 2 values",
            "\"nan\": a bin or value that is not a number",
            "\"negative\": a bucket count that is negative",
            "\"text\": no values list",
        ] {
            assert!(errors.contains(why), "{why} not in {errors}");
        }
    }
}
