//! The format readers' oracles, for the fuzz targets
//! (`crates/lab-formats/fuzz`) and the property tests: the readers' pure
//! parts on bytes instead of files. Each `check_*` takes the raw fuzz input,
//! panics when the oracle fails, and says what it read. Not an API.

use crate::tail::feed;

mod memory;

pub use memory::MemoryStorage;

/// Largest TFRecord payload handed out.
const MAX_RECORD: usize = 16 << 20;

/// Splits the first TFRecord off `bytes`: `Ok(Some((payload, used)))`,
/// `Ok(None)` while incomplete, or why it is refused.
pub fn tfrecord(bytes: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    crate::tensorboard::record(bytes)
}

/// The masked CRC32C TFRecord uses.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    crate::tensorboard::masked_crc(bytes)
}

/// Feeds `bytes` to the event-file reader in `chunk`-sized pieces; returns
/// the points read, or the error that stopped the file.
pub fn events(bytes: &[u8], chunk: usize) -> Result<usize, String> {
    let mut events = crate::tensorboard::Events::default();
    feed(&mut events, bytes, chunk)?;
    Ok(events.points())
}

/// Feeds `bytes` to the W&B record-log reader in `chunk`-sized pieces;
/// returns the points read, or the error that stopped the log.
pub fn wandb(bytes: &[u8], chunk: usize) -> Result<usize, String> {
    let mut log = crate::wandb::Log::default();
    feed(&mut log, bytes, chunk)?;
    Ok(log.set.points())
}

/// The CRC a W&B log record of `kind` with `data` carries.
pub fn wandb_crc(kind: u8, data: &[u8]) -> u32 {
    crate::wandb::record_crc(kind, data)
}

/// Parses YAML the way every reader does.
pub fn yaml(text: &str) -> Result<serde_json::Value, String> {
    crate::yaml::parse(text)
}

/// Feeds `text` to the metrics-line reader (`csv`: as metrics.csv,
/// else metrics.jsonl); returns the points read.
pub fn lines(text: &[u8], csv: bool) -> usize {
    crate::lab::fuzz_lines(text, csv)
}

/// TFRecord framing and the event reader. The first byte is a chunk size,
/// the rest the file. A record is handed out only when its length is within
/// the cap, it lies wholly inside the input and both CRCs match
/// (recomputed here); "incomplete" only when the input really is shorter
/// than the record; the event reader, fed the same bytes in any chunking,
/// reads the same points or stops with the same error. Returns the points.
pub fn check_tfrecord(data: &[u8]) -> Result<usize, String> {
    let (chunk, bytes) = data.split_first().map_or((0, data), |(c, b)| (*c, b));
    match tfrecord(bytes) {
        Ok(Some((payload, used))) => {
            assert!(payload.len() <= MAX_RECORD);
            assert_eq!(used, payload.len() + 16);
            assert!(used <= bytes.len());
            let len = &bytes[..8];
            let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            assert_eq!(masked_crc(len), crc);
            let t = &bytes[12 + payload.len()..used];
            assert_eq!(
                masked_crc(payload),
                u32::from_le_bytes([t[0], t[1], t[2], t[3]])
            );
            let mut length = [0u8; 8];
            length.copy_from_slice(len);
            assert_eq!(u64::from_le_bytes(length), payload.len() as u64);
        }
        Ok(None) => {
            if bytes.len() >= 12 {
                let mut length = [0u8; 8];
                length.copy_from_slice(&bytes[..8]);
                let len = u64::from_le_bytes(length);
                assert!((bytes.len() as u64) < 16u64.saturating_add(len));
            }
        }
        Err(_) => {}
    }
    let whole = events(bytes, bytes.len().max(1));
    let pieces = events(bytes, usize::from(chunk) + 1);
    assert_eq!(whole, pieces, "chunking changes nothing");
    // The same bytes as an hparams summary's content.
    let _ = check_hparams(bytes);
    whole
}

/// TensorBoard's hparams plugin data (`HParamsPluginData`), decoded by
/// hand: never a panic; what decodes is within the caps (at most
/// `MAX_PARAMS` hparams, keys of at most `MAX_KEY_LEN` bytes, strings of
/// at most `MAX_VALUE_LEN`, nesting at most 4 deep) with a title of at
/// most 200 bytes; and its hparams, written back as a session start, read
/// back the same. Returns how many hparams it read.
pub fn check_hparams(data: &[u8]) -> Result<usize, String> {
    use crate::hparams::{HValue, MAX_DEPTH, MAX_TITLE, Trial, decode, encode_start};
    let decoded = decode(data)?;
    let hparams = decoded.hparams.clone();
    assert!(hparams.len() <= crate::MAX_PARAMS);
    for (key, value) in &hparams {
        assert!(
            key.len() <= crate::MAX_KEY_LEN,
            "a key of {} bytes",
            key.len()
        );
        match value {
            HValue::Text(s) => assert!(s.len() <= crate::MAX_VALUE_LEN),
            HValue::Nested(json) => assert!(depth(json) <= MAX_DEPTH, "{json}"),
            _ => {}
        }
    }
    let again = decode(&encode_start(&hparams)).map_err(|e| format!("written back: {e}"));
    // Debug, so that a NaN equals itself.
    let again = again.map(|d| format!("{:?}", d.hparams));
    assert_eq!(again, Ok(format!("{hparams:?}")), "written back");
    let mut trial = Trial::default();
    trial.absorb(decoded);
    let title = trial.title().unwrap_or_default();
    assert!(title.len() <= MAX_TITLE, "a title of {} bytes", title.len());
    Ok(hparams.len())
}

/// W&B's `.wandb` header, which every input is put behind.
const WANDB_HEADER: [u8; 7] = [b':', b'W', b'&', b'B', 0xe1, 0xbe, 0];

/// The W&B record-log reader. The first byte is a chunk size, the second
/// says whether to make the first record's CRC right (so the fuzzer
/// reaches the record decoding), the rest follows W&B's header. It never
/// panics, reads the same whatever the chunking, and accepts nothing after
/// a header that is not W&B's. Returns the points.
pub fn check_wandb(data: &[u8]) -> Result<usize, String> {
    let chunk = data.first().copied().unwrap_or(0);
    let fix = data.get(1).is_some_and(|b| b & 1 == 1);
    let mut bytes = WANDB_HEADER.to_vec();
    bytes.extend_from_slice(data.get(2..).unwrap_or(&[]));
    if fix && bytes.len() >= 14 {
        let len = usize::from(u16::from_le_bytes([bytes[11], bytes[12]]));
        let kind = bytes[13];
        if let Some(record) = bytes.get(14..14 + len) {
            let crc = wandb_crc(kind, record);
            bytes[7..11].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let whole = wandb(&bytes, bytes.len());
    let pieces = wandb(&bytes, usize::from(chunk) + 1);
    assert_eq!(whole, pieces, "chunking changes nothing");
    let mut other = bytes.clone();
    other[0] ^= 0xff;
    assert!(wandb(&other, 64).is_err(), "a foreign header was read");
    whole
}

/// The deepest nesting in `v` (a scalar is 0), without recursion.
pub(crate) fn depth(v: &serde_json::Value) -> usize {
    let mut most = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        most = most.max(d);
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    most
}

/// YAML as every reader parses it (the input as UTF-8, lossily): never a
/// panic; a document without `*` never fails for aliases; what parses is
/// nested at most 64 levels; a document that uses an alias is refused,
/// never expanded.
pub fn check_yaml(data: &[u8]) -> Result<serde_json::Value, String> {
    let text = String::from_utf8_lossy(data);
    let parsed = yaml(&text);
    match &parsed {
        Ok(value) => assert!(depth(value) <= 64, "nested {} deep", depth(value)),
        Err(e) if !text.contains('*') => assert!(!e.contains("aliases"), "{e}"),
        Err(_) => {}
    }
    parsed
}

/// The metrics-line readers (first byte odd: as metrics.csv, else
/// metrics.jsonl): never a panic, never more points than there are numbers
/// and words in the input. Returns the points.
pub fn check_lines(data: &[u8]) -> usize {
    let (csv, text) = data
        .split_first()
        .map_or((false, data), |(c, t)| (c & 1 == 1, t));
    let points = lines(text, csv);
    let digits = text.iter().filter(|b| b.is_ascii_digit()).count();
    let words = text
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .count();
    assert!(
        points <= digits + words,
        "{points} points from {} bytes",
        text.len()
    );
    points
}

/// An MLflow metric file (`timestamp_ms value step` lines; the first byte
/// is a chunk size): the same points whatever the chunking, at most one a
/// line, and every point written back as a line reads back the same (step
/// and value exactly, NaN as NaN; the time within rounding). Returns the
/// points.
pub fn check_mlflow(data: &[u8]) -> usize {
    let (chunk, bytes) = data.split_first().map_or((0, data), |(c, b)| (*c, b));
    let whole = crate::mlflow::fuzz_metric(bytes, bytes.len());
    let pieces = crate::mlflow::fuzz_metric(bytes, usize::from(chunk) + 1);
    let same = |a: &[crate::series::Point], b: &[crate::series::Point]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.step == y.step
                    && x.value.to_bits() == y.value.to_bits()
                    && x.wall.to_bits() == y.wall.to_bits()
            })
    };
    assert!(same(&whole, &pieces), "chunking changed the points");
    let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
    assert!(
        whole.len() <= lines,
        "{} points from {lines} lines",
        whole.len()
    );
    let written: String = whole
        .iter()
        .map(|p| format!("{} {} {}\n", p.wall * 1000.0, p.value, p.step))
        .collect();
    let again = crate::mlflow::fuzz_metric(written.as_bytes(), written.len());
    assert_eq!(again.len(), whole.len(), "written back: {written:?}");
    for (a, b) in whole.iter().zip(&again) {
        assert_eq!(a.step, b.step);
        assert!(
            a.value.to_bits() == b.value.to_bits() || (a.value.is_nan() && b.value.is_nan()),
            "{} read back as {}",
            a.value,
            b.value
        );
        let close = a.wall == b.wall
            || (a.wall.is_nan() && b.wall.is_nan())
            || (a.wall - b.wall).abs() <= a.wall.abs() * 1e-12;
        assert!(close, "time {} read back as {}", a.wall, b.wall);
    }
    whole.len()
}

/// One CSV line (the input up to its first line break, as UTF-8 lossily):
/// its fields, written back with every field quoted, split into the same
/// fields. Returns the fields.
pub fn check_csv(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    let fields = crate::text::csv_fields(line, ',');
    let written: Vec<String> = fields
        .iter()
        .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
        .collect();
    let again = crate::text::csv_fields(&written.join(","), ',');
    assert_eq!(again, fields, "{line:?} written back as {written:?}");
    fields
}

/// Series by name, each point as its step and the bits of its value and
/// wall time (so NaN equals NaN).
type Points = Vec<(String, Vec<(i64, u64, u64)>)>;

/// Every point of every series of `reader`.
fn all_points(reader: &crate::RunReader) -> Points {
    reader
        .info()
        .metrics
        .iter()
        .map(|m| {
            let points = reader
                .series(&m.name)
                .map(|s| {
                    s.points()
                        .iter()
                        .map(|p| (p.step, p.value.to_bits(), p.wall.to_bits()))
                        .collect()
                })
                .unwrap_or_default();
            (m.name.clone(), points)
        })
        .collect()
}

/// `file` of a run of `format` read through the reader, once whole and
/// once appended in `chunk`-byte pieces with a refresh after each: the
/// points of each, and the errors of the whole read.
fn read_both_ways(
    format: crate::Format,
    name: &str,
    file: &[u8],
    chunk: usize,
) -> (Points, Points, crate::RunInfo) {
    let whole = memory::MemoryStorage::new("/fuzz/run");
    whole.put(name, file);
    let mut reader = crate::RunReader::new(format);
    reader.refresh(&whole);
    let info = reader.info();
    let at_once = all_points(&reader);
    let growing = memory::MemoryStorage::new("/fuzz/run");
    let mut reader = crate::RunReader::new(format);
    let mut end = 0;
    loop {
        let from = end;
        end = (end + chunk.max(1)).min(file.len());
        growing.append(name, &file[from..end]);
        reader.refresh(&growing);
        if end == file.len() {
            break;
        }
    }
    (at_once, all_points(&reader), info)
}

/// Cells a CSV text can hold at most: one per separator or line break,
/// plus one.
fn most_cells(text: &[u8]) -> usize {
    text.iter()
        .filter(|b| matches!(b, b',' | b';' | b'\t' | b'\n'))
        .count()
        + 1
}

/// A Keras CSVLogger file (the first byte a chunk size, the rest the
/// file): read whole or as it grows in any chunking, the same points;
/// never more points than cells; every series a header column other
/// than `epoch`, and an error of the run only where the file gives one
/// (never a panic). Returns the points.
pub fn check_keras(data: &[u8]) -> usize {
    let (chunk, file) = data.split_first().map_or((0, data), |(c, b)| (*c, b));
    let (whole, pieces, info) = read_both_ways(
        crate::Format::Keras,
        "training.log",
        file,
        usize::from(chunk) + 1,
    );
    let whole_names: Vec<&String> = whole.iter().map(|(n, _)| n).collect();
    if info.errors.is_empty() {
        assert_eq!(whole, pieces, "chunking changes nothing");
    } else {
        assert_eq!(
            whole_names,
            pieces.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "chunking changes no series"
        );
    }
    let points: usize = whole.iter().map(|(_, p)| p.len()).sum();
    assert!(points <= most_cells(file), "{points} points");
    let text = String::from_utf8_lossy(file);
    let header = text.lines().next().unwrap_or("");
    let columns: Vec<String> = [',', ';', '\t']
        .into_iter()
        .flat_map(|sep| crate::text::csv_fields(header, sep))
        .collect();
    for name in whole_names {
        assert!(
            name != "epoch" && columns.contains(name),
            "{name:?} is no column"
        );
    }
    points
}

/// Stable-Baselines3 logs (the first byte a chunk size, the second odd
/// for `monitor.csv`, else `progress.csv`; the rest the file): read
/// whole or as it grows, the same points; never more points than cells;
/// a monitor's series are `episode/…`. Returns the points.
pub fn check_sb3(data: &[u8]) -> usize {
    let chunk = data.first().copied().unwrap_or(0);
    let monitor = data.get(1).is_some_and(|b| b & 1 == 1);
    let file = data.get(2..).unwrap_or(&[]);
    let name = if monitor {
        "monitor.csv"
    } else {
        "progress.csv"
    };
    let (whole, pieces, info) =
        read_both_ways(crate::Format::Sb3, name, file, usize::from(chunk) + 1);
    if info.errors.is_empty() {
        assert_eq!(whole, pieces, "chunking changes nothing");
    }
    let points: usize = whole.iter().map(|(_, p)| p.len()).sum();
    assert!(points <= most_cells(file), "{points} points");
    if monitor {
        assert!(
            whole.iter().all(|(n, _)| n.starts_with("episode/")),
            "{whole:?}"
        );
    }
    points
}

/// A Trainer's `trainer_state.json` (any bytes): never a panic; bytes that
/// are JSON read the same after Python's NaN/Infinity are turned into
/// strings (valid JSON has none outside strings); where the state parses,
/// each series has exactly the numbers its `log_history` rows hold under
/// that key (counted here from the JSON itself), read through the reader
/// from an in-memory run as from the bytes. Returns the points.
pub fn check_huggingface(data: &[u8]) -> usize {
    use serde_json::Value;
    if let Ok(direct) = serde_json::from_slice::<Value>(data) {
        let turned = serde_json::from_slice::<Value>(&crate::text::python_json(
            data,
            crate::text::Bare::Quoted,
        ));
        assert_eq!(turned.ok(), Some(direct), "valid JSON changed");
    }
    let files = memory::MemoryStorage::new("/fuzz/run");
    files.put("trainer_state.json", data);
    let mut reader = crate::RunReader::new(crate::Format::Huggingface);
    reader.refresh(&files);
    let read = all_points(&reader);
    let info = reader.info();
    assert!(info.params.len() <= crate::MAX_PARAMS);
    let Ok((series, _)) = crate::huggingface::fuzz_state(data) else {
        assert!(read.is_empty(), "points from a state that does not parse");
        return 0;
    };
    let from_bytes: Vec<(String, usize)> =
        series.iter().map(|(n, p)| (n.clone(), p.len())).collect();
    let through_reader: Vec<(String, usize)> =
        read.iter().map(|(n, p)| (n.clone(), p.len())).collect();
    assert_eq!(
        from_bytes, through_reader,
        "the reader reads what the bytes hold"
    );
    let json =
        serde_json::from_slice::<Value>(&crate::text::python_json(data, crate::text::Bare::Quoted));
    if let Ok(Value::Object(state)) = json
        && let Some(Value::Array(rows)) = state.get("log_history")
    {
        let mut counted = std::collections::BTreeMap::<String, usize>::new();
        for row in rows {
            let Value::Object(row) = row else { continue };
            for (key, value) in row {
                let number = value.is_number()
                    || matches!(value.as_str(), Some("NaN" | "Infinity" | "-Infinity"));
                // The caps on a series' name (empty, over 512 bytes).
                let named = !key.is_empty() && key.len() <= 512;
                if number && named && key != "step" && key != "epoch" {
                    *counted.entry(key.clone()).or_default() += 1;
                }
            }
        }
        if counted.len() <= crate::MAX_SERIES {
            let counted: Vec<(String, usize)> = counted.into_iter().collect();
            assert_eq!(from_bytes, counted, "each row's numbers, once");
        }
    }
    from_bytes.iter().map(|(_, n)| n).sum()
}

/// Where the oracles' runs lie: the directory Ray named the trial of the
/// committed `raytune` seed (a trial's name and title come from it).
const ORIGIN: &str = "memory:/fuzz/exp/trainable_81caa_00000_0_lr=0.1000_2026-12-07_11-29-47";

/// The files of a run of `format` from fuzz input: the input after its
/// first byte, split at NUL bytes, is the content of `names` in order (a
/// name without a part is absent). Read through the whole reader (a
/// [`crate::RunReader`] over a [`MemoryStorage`]) twice: once whole, once
/// each file cut where the first byte says, read, then completed by
/// appending (the same version: a file still being written) and read
/// again. Both reads end the same (every series point for point, params,
/// status, errors); nothing panics; what is read is within the caps: at
/// most `MAX_PARAMS` params, keys of at most `MAX_KEY_LEN` bytes, no
/// series longer than the files have lines, a status of the six words, a
/// created time in ISO 8601 UTC, media named by relative names of at most
/// four segments. Returns what was read.
fn check_run(format: crate::Format, names: &[&str], data: &[u8]) -> crate::RunInfo {
    let (cut, rest) = data.split_first().map_or((0, data), |(c, r)| (*c, r));
    let parts: Vec<&[u8]> = rest.splitn(names.len(), |b| *b == 0).collect();
    let whole = MemoryStorage::new(ORIGIN);
    let growing = MemoryStorage::new(ORIGIN);
    for (name, part) in names.iter().zip(&parts) {
        whole.put(name, part);
        let at = usize::from(cut) % (part.len() + 1);
        growing.put(name, &part[..at]);
    }
    let mut once = crate::RunReader::new(format);
    once.refresh(&whole);
    let mut twice = crate::RunReader::new(format);
    twice.refresh(&growing);
    for (name, part) in names.iter().zip(&parts) {
        let at = usize::from(cut) % (part.len() + 1);
        growing.append(name, &part[at..]);
    }
    twice.refresh(&growing);
    let info = once.info();
    let again = twice.info();
    // Debug, so that a NaN equals itself.
    assert_eq!(
        format!("{info:?}"),
        format!("{again:?}"),
        "read in two pieces"
    );
    let lines = rest.iter().filter(|b| **b == b'\n').count() + 1;
    for metric in &info.metrics {
        let a = once.series(&metric.name).map(|s| s.points().to_vec());
        let b = twice.series(&metric.name).map(|s| s.points().to_vec());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{}", metric.name);
        assert!(
            metric.count <= lines,
            "{}: {} points from {lines} lines",
            metric.name,
            metric.count
        );
        assert!(metric.name.len() <= crate::MAX_KEY_LEN);
    }
    assert!(info.metrics.len() <= crate::MAX_SERIES);
    assert!(info.params.len() <= crate::MAX_PARAMS);
    assert!(info.params.keys().all(|k| k.len() <= crate::MAX_KEY_LEN));
    assert!(
        STATUS_WORDS.contains(&info.status.as_deref().unwrap_or("")),
        "{:?}",
        info.status
    );
    if let Some(created) = &info.created {
        let b = created.as_bytes();
        assert!(
            b.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z',
            "created {created:?}"
        );
    }
    for media in &info.media {
        let name = &media.artifact;
        assert!(
            !name.starts_with('/')
                && name.split('/').count() <= 4
                && name
                    .split('/')
                    .all(|s| !s.is_empty() && s != "." && s != ".."),
            "media {name:?}"
        );
    }
    info
}

/// An Ultralytics run (`args.yaml`, `results.csv`; see [`check_run`]).
pub fn check_ultralytics(data: &[u8]) -> crate::RunInfo {
    check_run(
        crate::Format::Ultralytics,
        &["args.yaml", "results.csv"],
        data,
    )
}

/// A Ray Tune trial (`result.json`, `params.json`, `progress.csv`,
/// `error.txt`; see [`check_run`]).
pub fn check_raytune(data: &[u8]) -> crate::RunInfo {
    check_run(
        crate::Format::Raytune,
        &["result.json", "params.json", "progress.csv", "error.txt"],
        data,
    )
}

/// A DVCLive run (`dvclive/plots/metrics/train/loss.tsv`,
/// `dvclive/plots/metrics/acc.tsv`, `dvclive/metrics.json`,
/// `dvclive/params.yaml`; see [`check_run`]).
pub fn check_dvclive(data: &[u8]) -> crate::RunInfo {
    check_run(
        crate::Format::Dvclive,
        &[
            "dvclive/plots/metrics/train/loss.tsv",
            "dvclive/plots/metrics/acc.tsv",
            "dvclive/metrics.json",
            "dvclive/params.yaml",
        ],
        data,
    )
}

/// The six words a run's status may be (SPEC §4), spelt out here as the
/// oracle's own, not taken from the code it checks.
const STATUS_WORDS: [&str; 6] = [
    "running", "finished", "failed", "crashed", "killed", "unknown",
];

/// The flat params, status and series of a run `reader` read: within the
/// caps, the status one of the six words. Returns the points.
fn check_reader(reader: &crate::RunReader) -> usize {
    let info = reader.info();
    assert!(info.params.len() <= crate::MAX_PARAMS);
    assert!(info.params.keys().all(|k| k.len() <= crate::MAX_KEY_LEN));
    assert!(info.tags.len() <= crate::MAX_TAGS);
    let status = info.status.as_deref().unwrap_or("");
    assert!(STATUS_WORDS.contains(&status), "{status}");
    assert!(info.metrics.len() <= crate::MAX_SERIES);
    reader.points()
}

/// A Sacred run whose `run.json`, `config.json` and `metrics.json` are all
/// the input: never a panic, a run within the caps, its status one of the
/// six words; `metrics.json`'s streaming parse (numbers straight into
/// points) reads exactly the points a parse into JSON values and the
/// format's rules read (the last of a repeated name; steps and values side
/// by side; null NaN; a step that is not a finite number skipped); and
/// discovery's content test never takes what does not parse as an object
/// with `experiment` and `host` objects and a `command` for Sacred's when
/// it is whole. Returns the points.
pub fn check_sacred(data: &[u8]) -> usize {
    use serde_json::Value;
    let storage = memory::MemoryStorage::new("/fuzz/run");
    for name in ["run.json", "config.json", "metrics.json"] {
        storage.put(name, data);
    }
    let mut reader = crate::RunReader::new(crate::Format::Sacred);
    reader.refresh(&storage);
    reader.refresh(&storage);
    let points = check_reader(&reader);

    let streamed = crate::sacred::metrics(data);
    let parsed = crate::text::from_python_json::<Value>(data);
    // An object of metrics reads, anything else parsed is an error
    // (`metrics.json: invalid type`). (The streaming parse skips what it
    // ignores without checking it all: a lone surrogate escape in an
    // ignored key's value, which a parse into values refuses, passes.)
    if let Ok(value) = &parsed {
        assert_eq!(streamed.is_ok(), value.is_object(), "{value}");
    }
    if let (Ok(set), Ok(Value::Object(map))) = (streamed, parsed) {
        let number = |v: &Value| match v {
            Value::Number(n) => n.as_f64(),
            Value::Null => Some(f64::NAN),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        };
        let array = |one: &Value, key: &str| -> Vec<Value> {
            one.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let mut expected = 0;
        for (name, one) in &map {
            let (steps, values) = (array(one, "steps"), array(one, "values"));
            let times = array(one, "timestamps");
            let mut want = Vec::new();
            for (i, (s, v)) in steps.iter().zip(&values).enumerate() {
                let (Some(s), Some(v)) = (number(s), number(v)) else {
                    continue;
                };
                if !s.is_finite() {
                    continue;
                }
                let wall = times
                    .get(i)
                    .and_then(Value::as_str)
                    .and_then(crate::text::iso8601_secs)
                    .unwrap_or(f64::NAN);
                want.push((s as i64, v.to_bits(), wall.to_bits()));
            }
            let got: Vec<_> = set.get(name).map_or_else(Vec::new, |s| {
                s.points()
                    .iter()
                    .map(|p| (p.step, p.value.to_bits(), p.wall.to_bits()))
                    .collect()
            });
            // Within the caps, what is kept is the start of what is wanted.
            assert!(
                got.len() <= want.len() && want[..got.len()] == got[..],
                "{name}"
            );
            if set.refused == 0 {
                assert_eq!(got.len(), want.len(), "{name}");
            }
            expected += got.len();
        }
        assert_eq!(set.points(), expected);
    }
    if crate::sacred::is_sacred_run(data)
        && let Ok(value) = serde_json::from_slice::<Value>(data)
    {
        assert!(value.get("experiment").is_some_and(Value::is_object));
        assert!(value.get("host").is_some_and(Value::is_object));
        assert!(value.get("command").is_some());
    }
    points
}

/// One Trackio metrics row (the `metrics` JSON of a row of a project's
/// database): never a panic; at most one point per number or
/// `NaN`/`Infinity` text in it; every media path either refused or
/// served as `STEP/FILE` from `media/PROJECT/RUN` — each part a safe
/// artifact segment, and the two joined exactly the path the row gave
/// (nothing repaired, nothing outside the run's media directory).
/// Returns the points.
pub fn check_trackio(data: &[u8]) -> usize {
    use serde_json::Value;
    let (points, media, dir, _refused) = crate::trackio::fuzz_row(data);
    let parsed = serde_json::from_slice::<Value>(data).ok();
    let mut paths = Vec::new();
    let mut values = 0usize;
    let mut stack: Vec<&Value> = parsed.iter().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(path) = map.get("file_path").and_then(Value::as_str) {
                    paths.push(path.to_owned());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            Value::Number(_) | Value::String(_) => values += 1,
            _ => {}
        }
    }
    assert!(points <= values, "{points} points from {values} values");
    if !media.is_empty() {
        let dir = dir.as_deref().unwrap_or_default();
        let parts: Vec<&str> = dir.split('/').collect();
        assert_eq!(parts.len(), 2, "{dir}");
        for part in parts {
            assert!(crate::discover::is_artifact_name(part), "{dir}");
        }
    }
    for name in &media {
        assert!(crate::discover::is_artifact_name(name), "{name}");
        assert_eq!(name.split('/').count(), 2, "{name}");
        let whole = format!("{}/{name}", dir.as_deref().unwrap_or_default());
        assert!(paths.contains(&whole), "{whole} is not a path the row gave");
    }
    points
}
