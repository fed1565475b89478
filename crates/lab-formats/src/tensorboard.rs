//! TensorBoard event files: TFRecord framing (masked CRC32C on the length
//! and on the payload), each record an `Event` protobuf. Scalars come from
//! TF1's `simple_value` or TF2 tensors of the scalars plugin; text from the
//! text plugin; params, title and status from the hparams plugin's session
//! start and end (`hparams.rs`), and params, title and metrics from the
//! hparams trials `add_hparams` wrote beneath the run (folded into it: see
//! `trials::Folding`). Event files of one directory are read in name
//! order; each is followed from where it was left.

use prost::Message;

use crate::histogram::{HistogramPoint, Histograms, check_buckets};
use crate::hparams::Trial;
use crate::series::{Point, SeriesSet};
use crate::storage::{EntryKind, Storage, list_all};
use crate::tail::{Followed, Sink, Tail};
use crate::trials::Folding;
use crate::{MAX_TEXTS, RunInfo, TextEntry};

/// Largest record accepted (an image summary is the biggest usual one).
pub(crate) const MAX_RECORD: usize = 16 << 20;
/// Most event files read in one run directory.
const MAX_FILES: usize = 1000;
/// The prefix of an event file's name.
pub(crate) const PREFIX: &str = "events.out.tfevents.";

/// TFRecord's CRC mask.
pub(crate) fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Splits the first TFRecord off `bytes`: `Ok(None)` while it is
/// incomplete, the payload and the bytes used when whole and verified.
pub(crate) fn record(bytes: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    let Some(header) = bytes.get(..12) else {
        return Ok(None);
    };
    let (len_bytes, len_crc) = header.split_at(8);
    let stored = u32::from_le_bytes([len_crc[0], len_crc[1], len_crc[2], len_crc[3]]);
    if masked_crc(len_bytes) != stored {
        return Err("a record's length fails its CRC".to_owned());
    }
    let len = u64::from_le_bytes([
        len_bytes[0],
        len_bytes[1],
        len_bytes[2],
        len_bytes[3],
        len_bytes[4],
        len_bytes[5],
        len_bytes[6],
        len_bytes[7],
    ]);
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= MAX_RECORD)
        .ok_or_else(|| format!("a record claims {len} bytes (at most {MAX_RECORD} are read)"))?;
    let Some(rest) = bytes.get(12..12 + len + 4) else {
        return Ok(None);
    };
    let (payload, crc) = rest.split_at(len);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if masked_crc(payload) != stored {
        return Err("a record fails its CRC".to_owned());
    }
    Ok(Some((payload, 12 + len + 4)))
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "4")]
    pub image: Option<Image>,
    #[prost(message, optional, tag = "5")]
    pub histo: Option<HistogramProto>,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

/// `Summary.Image`: the encoded image (PNG, as TensorBoard writes it).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Image {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// `HistogramProto`: what tensorboardX's `add_histogram` (and TF1's
/// `tf.summary.histogram`) write; `sum` and `sum_squares` are not read.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct HistogramProto {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// A `HistogramProto` as a point: one with `num` 0 is empty (TensorBoard
/// draws zeros), one with a `num` but no buckets is all at `max` (as
/// TensorBoard's compressor makes of it).
pub(crate) fn histogram_of_proto(
    h: &HistogramProto,
    step: i64,
    wall: f64,
) -> Result<HistogramPoint, String> {
    check_buckets(h.bucket.len().max(h.bucket_limit.len()))?;
    if h.num == 0.0 {
        return HistogramPoint::new(step, wall, 0.0, 0.0, Vec::new(), Vec::new());
    }
    if h.bucket.is_empty() && h.bucket_limit.is_empty() {
        return HistogramPoint::new(step, wall, h.min, h.max, vec![h.max], vec![0.0]);
    }
    HistogramPoint::new(
        step,
        wall,
        h.min,
        h.max,
        h.bucket_limit.clone(),
        h.bucket.clone(),
    )
}

/// A TF2 histogram (a tensor of the `histograms` plugin, shape `[k, 3]`:
/// each bucket's left edge, right edge and count) as a point: `min` the
/// first left edge, `max` the last right edge; `k` 0 is empty.
pub(crate) fn histogram_of_tensor(
    t: &TensorProto,
    step: i64,
    wall: f64,
) -> Result<HistogramPoint, String> {
    let values: Vec<f64> = match t.dtype {
        DT_DOUBLE if !t.double_val.is_empty() => {
            check_buckets(t.double_val.len() / 3)?;
            t.double_val.clone()
        }
        DT_DOUBLE => {
            check_buckets(t.tensor_content.len() / 24)?;
            t.tensor_content
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect()
        }
        DT_FLOAT if !t.float_val.is_empty() => {
            check_buckets(t.float_val.len() / 3)?;
            t.float_val.iter().map(|v| f64::from(*v)).collect()
        }
        DT_FLOAT => {
            check_buckets(t.tensor_content.len() / 12)?;
            t.tensor_content
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect()
        }
        other => return Err(format!("a histogram tensor of dtype {other}")),
    };
    if !values.len().is_multiple_of(3) {
        return Err(format!(
            "a histogram tensor of {} numbers, not rows of three",
            values.len()
        ));
    }
    let rows: Vec<&[f64]> = values.chunks_exact(3).collect();
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return HistogramPoint::new(step, wall, 0.0, 0.0, Vec::new(), Vec::new());
    };
    HistogramPoint::new(
        step,
        wall,
        first[0],
        last[1],
        rows.iter().map(|r| r[1]).collect(),
        rows.iter().map(|r| r[2]).collect(),
    )
}

/// PNG's signature.
pub(crate) const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";

#[derive(Clone, PartialEq, Message)]
pub(crate) struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
}

const DT_FLOAT: i32 = 1;
const DT_DOUBLE: i32 = 2;
const DT_INT32: i32 = 3;
const DT_INT64: i32 = 9;
const DT_HALF: i32 = 19;

/// The single number a scalar tensor holds.
pub(crate) fn tensor_scalar(t: &TensorProto) -> Option<f64> {
    let le = |n: usize| t.tensor_content.get(..n);
    match t.dtype {
        DT_FLOAT => t
            .float_val
            .first()
            .map(|v| f64::from(*v))
            .or_else(|| le(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))),
        DT_DOUBLE => t.double_val.first().copied().or_else(|| {
            le(8).map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        }),
        DT_INT32 => t.int_val.first().map(|v| f64::from(*v)),
        DT_INT64 => t.int64_val.first().map(|v| *v as f64),
        // float16 values are stored in int_val.
        DT_HALF => t.int_val.first().map(|v| half_to_f64(*v as u16)),
        _ => None,
    }
}

fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// What the events of a directory say.
#[derive(Debug, Default)]
pub(crate) struct Events {
    set: SeriesSet,
    /// Histograms (`HistogramProto` values and TF2 histogram tensors).
    pub(crate) histograms: Histograms,
    info: RunInfo,
    /// The hparams of the run's own session start (TensorBoard's
    /// `hp.hparams`).
    trial: Trial,
    first_wall: Option<f64>,
    /// The file being read (its name) and the offset of the next record.
    file: String,
    pos: u64,
}

/// Most images listed per run.
const MAX_IMAGES: usize = 10_000;

impl Events {
    /// Points read so far.
    pub(crate) fn points(&self) -> usize {
        self.set.points()
    }

    fn event(&mut self, event: Event) {
        if self.first_wall.is_none() && event.wall_time.is_finite() && event.wall_time > 0.0 {
            self.first_wall = Some(event.wall_time);
        }
        let Some(summary) = event.summary else {
            return;
        };
        for (n, value) in summary.value.iter().enumerate() {
            if let Some(image) = &value.image {
                // Listed by where it lies (file, record offset, value
                // index); the bytes are read again, and checked, when asked
                // for.
                if image.encoded_image_string.starts_with(PNG) && self.info.media.len() < MAX_IMAGES
                {
                    self.info.media.push(crate::Media {
                        artifact: format!("{}/{}/{n}", self.file, self.pos),
                        kind: "image",
                        step: Some(event.step),
                        key: Some(crate::text::cap(&value.tag)),
                        embedded: true,
                        url: None,
                    });
                }
                continue;
            }
            if let Some(h) = &value.histo {
                let point = histogram_of_proto(h, event.step, event.wall_time);
                self.histograms.push(&value.tag, point);
                continue;
            }
            let plugin = value.metadata.as_ref().and_then(|m| m.plugin_data.as_ref());
            let plugin_name = plugin.map_or("", |p| p.plugin_name.as_str());
            let point = |v: f64| Point {
                step: event.step,
                wall: event.wall_time,
                value: v,
            };
            if let Some(v) = value.simple_value {
                self.set.push(&value.tag, point(f64::from(v)));
                continue;
            }
            match (plugin_name, &value.tensor) {
                ("hparams", _) => {
                    if let Some(p) = plugin {
                        self.hparams(&p.content);
                    }
                }
                ("text", Some(t)) => {
                    if let Some(text) = t.string_val.first() {
                        if self.info.texts.len() >= MAX_TEXTS {
                            self.info.texts.remove(0);
                        }
                        self.info.texts.push(TextEntry {
                            tag: value.tag.clone(),
                            step: event.step,
                            text: crate::text::cap(&String::from_utf8_lossy(text)),
                        });
                    }
                }
                ("histograms", Some(t)) => {
                    let point = histogram_of_tensor(t, event.step, event.wall_time);
                    self.histograms.push(&value.tag, point);
                }
                ("scalars" | "", Some(t)) => {
                    if let Some(v) = tensor_scalar(t) {
                        self.set.push(&value.tag, point(v));
                    }
                }
                _ => {}
            }
        }
    }

    fn hparams(&mut self, content: &[u8]) {
        let data = match crate::hparams::decode(content) {
            Ok(data) => data,
            Err(why) => {
                if self.info.errors.len() < MAX_ERRORS {
                    self.info
                        .errors
                        .push(format!("an hparams summary does not decode: {why}"));
                }
                return;
            }
        };
        if data.started {
            if let Some(secs) = data.start_time {
                self.first_wall = Some(secs);
            }
            self.info.status.get_or_insert_with(|| "RUNNING".to_owned());
        }
        if let Some(status) = data.end_status {
            self.info.status = Some(
                match status {
                    1 => "FINISHED",
                    2 => "FAILED",
                    3 => "RUNNING",
                    _ => "UNKNOWN",
                }
                .to_owned(),
            );
        }
        self.trial.absorb(data);
    }
}

/// Most errors one run's events add (a file of bad hparams summaries
/// says so once per summary, up to this).
const MAX_ERRORS: usize = 100;

impl Sink for Events {
    /// A file that was read before and is now replaced makes the reader
    /// start the directory over (see `Reader::pass`); a new file's start
    /// needs nothing forgotten.
    fn restart(&mut self) {}

    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let Some((payload, used)) = record(bytes)? else {
            return Ok(0);
        };
        let event = Event::decode(payload).map_err(|e| format!("an event does not decode: {e}"))?;
        self.event(event);
        self.pos += used as u64;
        Ok(used)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// Each event file, where it was left, and whether it is new.
    files: Vec<(String, Tail, bool)>,
    /// Each file's offset of the next whole record.
    offsets: std::collections::HashMap<String, u64>,
    events: Events,
    errors: Vec<String>,
    /// The hparams trials beneath the run, folded into it.
    folding: Folding,
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.errors.clear();
        let entries = match list_all(storage, "") {
            Ok(entries) => entries,
            Err(e) => {
                self.errors.push(format!("listing the run: {e}"));
                return;
            }
        };
        let dirs: Vec<String> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Dir)
            .map(|e| e.name.clone())
            .collect();
        self.folding.refresh(storage, &dirs);
        let names: Vec<String> = entries
            .into_iter()
            .filter(|e| e.kind == EntryKind::File && e.name.starts_with(PREFIX))
            .map(|e| e.name)
            .take(MAX_FILES)
            .collect();
        // Files come and go in name order; a file that vanished, shrank or
        // was replaced makes the whole directory be read again.
        let known = self.files.len();
        if names.len() < known || self.files.iter().zip(&names).any(|((n, ..), m)| n != m) {
            self.reset();
        }
        if !self.pass(storage, &names) {
            self.reset();
            self.errors.clear();
            self.pass(storage, &names);
        }
    }

    /// Follows every file; `false` when one was replaced and everything
    /// must be read again.
    fn pass(&mut self, storage: &dyn Storage, names: &[String]) -> bool {
        for name in names.iter().skip(self.files.len()) {
            self.files.push((name.clone(), Tail::default(), true));
        }
        for (name, tail, fresh) in &mut self.files {
            // Offsets of this file's records: from its start when it is new.
            if *fresh {
                self.events.pos = 0;
            } else {
                self.events.pos = self.offsets.get(name.as_str()).copied().unwrap_or_default();
            }
            self.events.file = name.clone();
            let followed = tail.follow(storage, name, MAX_RECORD + 16, &mut self.events);
            self.offsets.insert(name.clone(), self.events.pos);
            match followed {
                Ok(Followed::Restarted) if !*fresh => return false,
                Ok(Followed::Missing) => return false,
                Ok(_) => {}
                Err(e) => self.errors.push(e),
            }
            *fresh = false;
            if let Some(failed) = tail.failed() {
                self.errors.push(failed.to_owned());
            }
        }
        true
    }

    fn reset(&mut self) {
        self.files.clear();
        self.offsets.clear();
        self.events = Events::default();
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.events.info.clone();
        info.created = self
            .events
            .first_wall
            .map(|w| crate::text::iso8601_utc(w as u64));
        info.errors.extend(self.errors.iter().cloned());
        info.errors.extend(self.events.set.cap_error());
        // The run's own session start first, then the trials folded in.
        let own = &self.events.trial;
        let folded = self.folding.trial();
        own.params_into(&mut info.params);
        folded.params_into(&mut info.params);
        info.title = own.title().or_else(|| folded.title());
        if own.cut || folded.cut {
            info.errors.push(format!(
                "hparams past the caps ({} hparams, keys of {} bytes, {} levels) were left out",
                crate::MAX_PARAMS,
                crate::MAX_KEY_LEN,
                crate::hparams::MAX_DEPTH
            ));
        }
        info
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        vec![&self.events.set, self.folding.set()]
    }

    pub(crate) fn histograms(&self) -> &Histograms {
        &self.events.histograms
    }
}

/// The PNG bytes of image value `n` of the record at `offset` of the event
/// file `file` (one segment, `events.out.tfevents.*`) of `storage`: the
/// record is read again (both ranges of the version first seen), its CRCs
/// checked, the event decoded, and only bytes that are a PNG are returned.
pub fn image(storage: &dyn Storage, file: &str, offset: u64, n: usize) -> Result<Vec<u8>, String> {
    if !file.starts_with(PREFIX) || file.contains('/') {
        return Err("not an event file".to_owned());
    }
    let version = storage.stat(file).map_err(|e| e.to_string())?.version;
    let mut whole = storage
        .read_range(file, offset, 12, Some(&version))
        .map_err(|e| e.to_string())?;
    let Ok(head) = <[u8; 12]>::try_from(whole.as_slice()) else {
        return Err("a truncated record".to_owned());
    };
    // The length is checked (CRC, cap) before anything is allocated.
    record(&head)?;
    let len = u64::from_le_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]) as usize;
    let rest = storage
        .read_range(file, offset.saturating_add(12), len + 4, Some(&version))
        .map_err(|e| e.to_string())?;
    whole.extend_from_slice(&rest);
    let (payload, _) = record(&whole)?.ok_or("a truncated record")?;
    let event = Event::decode(payload).map_err(|e| e.to_string())?;
    let bytes = event
        .summary
        .and_then(|s| s.value.into_iter().nth(n))
        .and_then(|v| v.image)
        .map(|i| i.encoded_image_string)
        .ok_or("no image there")?;
    if !bytes.starts_with(PNG) {
        return Err("not a PNG".to_owned());
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `payload` as one TFRecord: length, its CRC, the payload, its CRC.
    pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u64).to_le_bytes();
        let mut out = len.to_vec();
        out.extend(masked_crc(&len).to_le_bytes());
        out.extend(payload);
        out.extend(masked_crc(payload).to_le_bytes());
        out
    }

    #[test]
    fn framing_checks_lengths_and_crcs() {
        let rec = frame(b"hello");
        assert_eq!(record(&rec).unwrap(), Some((&b"hello"[..], rec.len())));
        assert_eq!(record(&rec[..rec.len() - 1]).unwrap(), None);
        let mut bad = rec.clone();
        bad[13] ^= 1;
        assert!(record(&bad).unwrap_err().contains("fails its CRC"));
        let mut huge = (1u64 << 63).to_le_bytes().to_vec();
        huge.extend(masked_crc(&huge).to_le_bytes());
        assert!(record(&huge).unwrap_err().contains("claims"));
        assert!(record(&[0u8; 64]).unwrap_err().contains("length fails"));
    }

    #[test]
    fn deeply_nested_protobufs_are_refused_not_recursed() {
        // Field 15 as a start-group, 100 000 deep: unknown, so prost skips
        // it — and its recursion limit refuses it long before the stack.
        let nested = vec![0x7bu8; 100_000];
        assert!(Event::decode(nested.as_slice()).is_err());
        // Framed as a record of an event file, it is an error of that file.
        let mut events = Events::default();
        let err = events.consume(&frame(&nested)).unwrap_err();
        assert!(err.contains("does not decode"), "{err}");
    }

    #[test]
    fn half_floats_decode() {
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert!(half_to_f64(0x7e00).is_nan());
    }

    fn histo_value(
        tag: &str,
        min: f64,
        max: f64,
        limits: Vec<f64>,
        counts: Vec<f64>,
    ) -> SummaryValue {
        SummaryValue {
            tag: tag.to_owned(),
            histo: Some(HistogramProto {
                min,
                max,
                num: counts.iter().sum(),
                bucket_limit: limits,
                bucket: counts,
            }),
            ..SummaryValue::default()
        }
    }

    fn feed(events: &mut Events, step: i64, values: Vec<SummaryValue>) -> Result<usize, String> {
        let event = Event {
            wall_time: 1.0,
            step,
            file_version: None,
            summary: Some(Summary { value: values }),
        };
        events.consume(&frame(&event.encode_to_vec()))
    }

    /// Hostile histograms are errors of their run, never kept, and never
    /// stop the good ones beside them: a million buckets given, NaN and
    /// infinite limits, lengths that differ, negative counts, a TF2
    /// tensor whose numbers are not rows of three; a packed field claiming
    /// more than its record holds does not decode (nothing allocated for
    /// the claim).
    #[test]
    fn hostile_histograms_are_errors_not_kept() {
        let mut events = Events::default();
        let million = vec![1.0; 1_000_000];
        let values = vec![
            histo_value("good", 0.0, 2.0, vec![1.0, 2.0], vec![1.0, 3.0]),
            histo_value("million", 0.0, 1.0, million.clone(), million),
            histo_value("nan", 0.0, 1.0, vec![f64::NAN], vec![1.0]),
            histo_value("inf", 0.0, 1.0, vec![f64::INFINITY], vec![1.0]),
            histo_value("lengths", 0.0, 1.0, vec![1.0, 2.0], vec![1.0]),
            histo_value("negative", 0.0, 1.0, vec![1.0], vec![-1.0]),
            SummaryValue {
                tag: "tf2".to_owned(),
                tensor: Some(TensorProto {
                    dtype: DT_DOUBLE,
                    double_val: vec![0.0; 7],
                    ..TensorProto::default()
                }),
                metadata: Some(SummaryMetadata {
                    plugin_data: Some(PluginData {
                        plugin_name: "histograms".to_owned(),
                        content: Vec::new(),
                    }),
                }),
                ..SummaryValue::default()
            },
        ];
        assert!(feed(&mut events, 3, values).is_ok());
        let h = &events.histograms;
        assert_eq!(
            h.infos()
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>(),
            ["good"]
        );
        let errors = h.errors().join("\n");
        for why in [
            "\"million\": 1000000 buckets (at most 1000",
            "\"nan\": a bucket limit that is not a finite number",
            "\"inf\": a bucket limit",
            "\"lengths\": 2 bucket limits but 1 counts",
            "\"negative\": a bucket count that is negative",
            "\"tf2\": a histogram tensor of 7 numbers",
        ] {
            assert!(errors.contains(why), "{why} not in {errors}");
        }
        // A packed `bucket_limit` claiming 8 MB in a record of a few bytes.
        let mut histo = vec![0x32u8];
        histo.extend(encode_varint(8_000_000));
        histo.extend([0u8; 16]);
        let mut value = vec![0x0a, 0x01, b'x', 0x2a];
        value.extend(encode_varint(histo.len() as u64));
        value.extend(histo);
        let mut summary = vec![0x0a];
        summary.extend(encode_varint(value.len() as u64));
        summary.extend(value);
        let mut event = vec![0x10, 0x01, 0x2a];
        event.extend(encode_varint(summary.len() as u64));
        event.extend(summary);
        let err = events.consume(&frame(&event)).unwrap_err();
        assert!(err.contains("does not decode"), "{err}");
        assert_eq!(events.histograms.infos().len(), 1);
    }

    fn encode_varint(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    }

    /// A `HistogramProto` with `num` 0 is empty (bands of zeros), one with
    /// a `num` and no buckets all at max; a TF2 tensor's rows give min,
    /// limits and counts.
    #[test]
    fn histogram_protos_and_tensors_map_as_tensorboard_reads_them() {
        let empty = HistogramProto {
            min: f64::MAX,
            max: -f64::MAX,
            ..HistogramProto::default()
        };
        let p = histogram_of_proto(&empty, 0, 0.0).unwrap();
        assert_eq!(p.bands(), [0.0; 9]);
        let bare = HistogramProto {
            min: 1.0,
            max: 5.0,
            num: 3.0,
            ..HistogramProto::default()
        };
        assert_eq!(histogram_of_proto(&bare, 0, 0.0).unwrap().bands(), [5.0; 9]);
        let rows: Vec<f64> = vec![1.0, 2.5, 3.0, 2.5, 4.0, 1.0];
        let tensor = TensorProto {
            dtype: DT_DOUBLE,
            tensor_content: rows.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..TensorProto::default()
        };
        let p = histogram_of_tensor(&tensor, 7, 1.5).unwrap();
        assert_eq!((p.step, p.min, p.max), (7, 1.0, 4.0));
        assert_eq!((p.limits, p.counts), (vec![2.5, 4.0], vec![3.0, 1.0]));
    }
}
