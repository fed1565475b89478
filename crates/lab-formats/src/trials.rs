//! The hparams trials beneath a TensorBoard run: the sub-directory
//! tensorboardX's and PyTorch's `add_hparams(hparam_dict, metric_dict)`
//! writes (`<logdir>/<time.time()>/`, or the `run_name`/`name` given: one
//! event file holding the hparams plugin's experiment, session start and
//! end, then each `metric_dict` value as a scalar) is the run's, not a run
//! of its own: see [`Folding`] for the rule, which discovery and the run's
//! reader share.

use std::collections::BTreeMap;

use prost::Message as _;

use crate::MAX_SERIES;
use crate::hparams::{Trial, decode};
use crate::series::{Point, SeriesSet};
use crate::storage::{EntryKind, Storage, StorageError, Version, list_all};
use crate::tensorboard::{Event, PREFIX, record, tensor_scalar};

/// Largest total of a sub-directory's event files for it to be read as an
/// hparams trial: what `add_hparams` writes is a few hundred bytes.
pub(crate) const MAX_TRIAL_BYTES: u64 = 64 << 10;
/// Bytes of each file read first: most sub-directories that are not a
/// trial say so in their first records.
const FIRST_READ: u64 = 4 << 10;
/// Most event files in a trial's sub-directory.
const MAX_TRIAL_FILES: usize = 8;
/// Most sub-directories of a run looked at: a run with more folds none.
pub(crate) const MAX_CHILDREN: usize = 256;

/// The hparams trials beneath a TensorBoard run that are folded into it.
///
/// A sub-directory `D` of a TensorBoard run `P` is an **hparams trial of
/// `P`** when
///
/// 1. `D` holds event files (1 to 8) and nothing else — no other file, no
///    directory, no link —, together at most [`MAX_TRIAL_BYTES`];
/// 2. every record of them is whole, passes its CRCs and decodes, and every
///    summary value in them is either an hparams-plugin summary that
///    decodes, or a scalar whose tag an experiment read *before it* in `D`
///    names as a metric (`add_hparams`' `metric_dict`), each such tag
///    written at most once per session start read before it (a metric
///    logged step after step is a curve, whatever names it);
/// 3. and at least one of them is a session start with at least one hparam.
///
/// The trials of `P` are **folded** into `P` (not runs of their own; their
/// hparams become `P`'s params and title, their metric scalars `P`'s
/// series) when `P` has at most [`MAX_CHILDREN`] sub-directories (dot
/// directories aside) and every trial logs the same hparams: one training
/// that called `add_hparams` once, or more than once with the same
/// hparams. Trials that differ (a sweep logged through one writer) stay
/// runs of their own, as do all of them when `P` has more sub-directories.
///
/// A real nested run with curves is never a trial: `add_scalars`' and
/// `add_custom_scalars`' sub-runs hold scalars with no experiment naming
/// them, and a run that wrote `hparams()` into its own directory before
/// its curves logs its metric more than once per session start (rule 2); a run with images, text, histograms or a graph fails
/// rule 2 or 3; a run grown past 64 KiB fails rule 1. The rule is the same
/// for discovery and for `P`'s reader (both call [`Folding::refresh`]),
/// and what it reads is bounded: at most 256 listings, 8 stats and 64 KiB
/// per sub-directory, through the storage seam (lab-fs's beneath-the-root,
/// non-blocking, regular-file-only opens locally).
#[derive(Debug, Default)]
pub(crate) struct Folding {
    /// What each sub-directory was found to be.
    seen: BTreeMap<String, Seen>,
    /// The folded sub-directories, in name order, and what they hold.
    folded: Vec<String>,
    trial: Trial,
    set: SeriesSet,
    /// Whether a trial was read again, came or went since the last fold.
    changed: bool,
}

/// What a sub-directory was found to be.
#[derive(Debug)]
enum Seen {
    /// One of its files held something no trial holds; event files only
    /// grow, so it is not looked at again while that file is listed.
    Not { file: String },
    /// Read at these versions and lengths: a trial, or not (yet) one.
    Read {
        files: Vec<Listed>,
        trial: Option<Box<Found>>,
    },
}

/// An event file as a look found it: its name, version and length.
type Listed = (String, Version, u64);

/// A trial and its metric points (tag, point), in the order written.
#[derive(Debug)]
struct Found {
    trial: Trial,
    points: Vec<(String, Point)>,
    /// Session starts read: `add_hparams` writes each metric once per
    /// call, after its start.
    starts: usize,
}

/// Why a sub-directory is not a trial now.
enum NotTrial {
    /// For good: this file holds something else.
    File(String),
    /// For now (too large, unreadable, incomplete, no session start yet).
    Now,
}

impl Folding {
    /// The folded sub-directories' names.
    pub(crate) fn folded(&self) -> &[String] {
        &self.folded
    }

    /// The folded trials' hparams, merged.
    pub(crate) fn trial(&self) -> &Trial {
        &self.trial
    }

    /// The folded trials' metric points.
    pub(crate) fn set(&self) -> &SeriesSet {
        &self.set
    }

    /// Looks at the sub-directories `dirs` (names directly beneath the top
    /// of `storage`, the run's own directory) and decides which are folded.
    pub(crate) fn refresh(&mut self, storage: &dyn Storage, dirs: &[String]) {
        let dirs: Vec<&String> = dirs.iter().filter(|d| !d.starts_with('.')).collect();
        if dirs.len() > MAX_CHILDREN {
            *self = Folding::default();
            return;
        }
        let before = self.seen.len();
        self.seen.retain(|name, _| dirs.contains(&name));
        self.changed |= self.seen.len() != before;
        for dir in &dirs {
            self.look(storage, dir);
        }
        let trials: Vec<(&String, &Found)> = self
            .seen
            .iter()
            .filter_map(|(name, seen)| match seen {
                Seen::Read {
                    trial: Some(found), ..
                } => Some((name, found.as_ref())),
                _ => None,
            })
            .collect();
        let agree = trials
            .windows(2)
            .all(|w| w[0].1.trial.same_hparams(&w[1].1.trial));
        let folded: Vec<String> = if agree {
            trials.iter().map(|(name, _)| (*name).clone()).collect()
        } else {
            Vec::new()
        };
        if !self.changed && folded == self.folded {
            return;
        }
        let mut trial = Trial::default();
        let mut set = SeriesSet::default();
        if agree {
            for (_, found) in &trials {
                if trial.is_empty() {
                    trial = found.trial.clone();
                }
                trial.cut |= found.trial.cut;
                for (tag, point) in &found.points {
                    set.push(tag, *point);
                }
            }
        }
        self.folded = folded;
        self.trial = trial;
        self.set = set;
        self.changed = false;
    }

    /// Decides what the sub-directory `dir` is, reading it only when its
    /// files changed since the last look.
    fn look(&mut self, storage: &dyn Storage, dir: &str) {
        let seen = match self.files(storage, dir) {
            Ok(None) => return,
            Err(()) => Seen::Read {
                files: Vec::new(),
                trial: None,
            },
            Ok(Some(files)) => match peek(storage, dir, &files) {
                Ok(found) => Seen::Read {
                    files,
                    trial: Some(Box::new(found)),
                },
                Err(NotTrial::File(file)) => Seen::Not { file },
                Err(NotTrial::Now) => Seen::Read { files, trial: None },
            },
        };
        let was_trial = matches!(self.seen.get(dir), Some(Seen::Read { trial: Some(_), .. }));
        let is_trial = matches!(seen, Seen::Read { trial: Some(_), .. });
        self.changed |= was_trial || is_trial;
        self.seen.insert(dir.to_owned(), seen);
    }

    /// The event files of `dir` with their versions and lengths, when it
    /// holds 1 to [`MAX_TRIAL_FILES`] of them, nothing else, and at most
    /// [`MAX_TRIAL_BYTES`] together; `Ok(None)` when they are what was
    /// looked at last time (or one of them was found to be no trial's).
    fn files(&self, storage: &dyn Storage, dir: &str) -> Result<Option<Vec<Listed>>, ()> {
        let entries = list_all(storage, dir).map_err(|_| ())?;
        let only_events = entries
            .iter()
            .all(|e| e.kind == EntryKind::File && e.name.starts_with(PREFIX));
        if entries.is_empty() || entries.len() > MAX_TRIAL_FILES || !only_events {
            return Err(());
        }
        if let Some(Seen::Not { file }) = self.seen.get(dir)
            && entries.iter().any(|e| e.name == *file)
        {
            return Ok(None);
        }
        let mut files = Vec::with_capacity(entries.len());
        let mut total = 0u64;
        for entry in entries {
            let stat = storage
                .stat(&format!("{dir}/{}", entry.name))
                .map_err(|_| ())?;
            total = total.saturating_add(stat.len);
            if total > MAX_TRIAL_BYTES {
                return Err(());
            }
            files.push((entry.name, stat.version, stat.len));
        }
        match self.seen.get(dir) {
            Some(Seen::Read { files: before, .. }) if *before == files => Ok(None),
            _ => Ok(Some(files)),
        }
    }
}

/// Reads the event files of `dir` (listed with their versions and
/// lengths, name order) and says whether they are an hparams trial.
fn peek(storage: &dyn Storage, dir: &str, files: &[Listed]) -> Result<Found, NotTrial> {
    let mut found = Found {
        trial: Trial::default(),
        points: Vec::new(),
        starts: 0,
    };
    for (name, version, len) in files {
        let path = format!("{dir}/{name}");
        let read = |offset: u64, end: u64| -> Result<Vec<u8>, NotTrial> {
            // At most MAX_TRIAL_BYTES: it fits a usize.
            let want = usize::try_from(end.saturating_sub(offset)).unwrap_or(0);
            storage
                .read_range(&path, offset, want, Some(version))
                .map_err(|_: StorageError| NotTrial::Now)
        };
        let first = read(0, (*len).min(FIRST_READ))?;
        let not = |()| NotTrial::File(name.clone());
        let used = scan(&first, &mut found).map_err(not)?;
        let mut end = used as u64;
        if end < *len {
            // The first read ended inside a record: the rest of the file,
            // from that record on.
            let rest = read(end, *len)?;
            end += scan(&rest, &mut found).map_err(not)? as u64;
        }
        if end < *len {
            // An incomplete final record: being written.
            return Err(NotTrial::Now);
        }
    }
    if found.trial.started && !found.trial.is_empty() {
        Ok(found)
    } else {
        Err(NotTrial::Now)
    }
}

/// Reads the whole records at the start of `bytes` into `found`: the
/// bytes they used, or `Err` at the first thing no trial holds.
fn scan(bytes: &[u8], found: &mut Found) -> Result<usize, ()> {
    let mut used = 0;
    while let Some((payload, n)) = record(&bytes[used..]).map_err(|_| ())? {
        used += n;
        let event = Event::decode(payload).map_err(|_| ())?;
        let Some(summary) = event.summary else {
            continue;
        };
        for value in summary.value {
            let plugin = value.metadata.as_ref().and_then(|m| m.plugin_data.as_ref());
            let plugin_name = plugin.map_or("", |p| p.plugin_name.as_str());
            if value.image.is_some() {
                return Err(());
            }
            if let (Some(p), "hparams") = (plugin, plugin_name) {
                let data = decode(&p.content).map_err(|_| ())?;
                found.starts += usize::from(data.started);
                found.trial.absorb(data);
                continue;
            }
            let scalar = match (value.simple_value, plugin_name, &value.tensor) {
                (Some(v), ..) => Some(f64::from(v)),
                (None, "scalars" | "", Some(t)) => tensor_scalar(t),
                _ => None,
            };
            match scalar {
                Some(v) if found.trial.names_metric(&value.tag) => {
                    // A metric written more often than `add_hparams` was
                    // called is a curve: a run of its own logged its
                    // hparams into its directory (rule 2).
                    let written = found.points.iter().filter(|(t, _)| *t == value.tag).count();
                    if written >= found.starts {
                        return Err(());
                    }
                    if found.points.len() < MAX_SERIES {
                        let point = Point {
                            step: event.step,
                            wall: event.wall_time,
                            value: v,
                        };
                        found.points.push((value.tag, point));
                    }
                }
                _ => return Err(()),
            }
        }
    }
    Ok(used)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use std::path::{Path, PathBuf};

    use prost::Message as _;

    use super::*;
    use crate::hparams::{HValue, encode_start};
    use crate::storage::tests::Memory;
    use crate::tensorboard::{Event, PluginData, Summary, SummaryMetadata, SummaryValue};
    use crate::{Format, LocalStorage, RunReader};

    /// The fixture tensorboardX 2.6.5 wrote (`tests/data/write_tb_hparams.py`),
    /// copied into a scratch root.
    fn fixture() -> (tempfile::TempDir, PathBuf) {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                let to = to.join(entry.file_name());
                if entry.file_type().unwrap().is_dir() {
                    copy(&entry.path(), &to);
                } else {
                    std::fs::copy(entry.path(), to).unwrap();
                }
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tb-hparams");
        copy(&data, &root.join("tb-hparams"));
        (tmp, root)
    }

    fn runs(root: &Path) -> Vec<String> {
        let mut runs: Vec<String> = crate::discover(root, &crate::Limits::default())
            .runs
            .iter()
            .map(|f| {
                assert_eq!(f.format, Format::Tensorboard);
                f.dir.strip_prefix(root).unwrap().display().to_string()
            })
            .collect();
        runs.sort();
        runs
    }

    fn read(dir: &Path) -> (RunReader, crate::RunInfo) {
        let root = lab_fs::RunRoot::open_ambient(dir).unwrap();
        let mut reader = RunReader::new(Format::Tensorboard);
        reader.refresh(&LocalStorage::new(&root));
        let info = reader.info();
        (reader, info)
    }

    fn trial_dir(root: &Path) -> String {
        std::fs::read_dir(root.join("tb-hparams"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with(|c: char| c.is_ascii_digit()))
            .unwrap()
    }

    /// What tensorboardX wrote: the `add_hparams` trial is the run's (its
    /// hparams its params and title, its metric its series); the
    /// `add_scalars` sub-runs, flat or nested, stay runs of their own.
    #[test]
    fn a_tensorboardx_trial_is_folded_into_its_run_and_curves_are_not() {
        let (_tmp, root) = fixture();
        assert_eq!(
            runs(&root),
            [
                "tb-hparams",
                "tb-hparams/loss/train",
                "tb-hparams/loss/val",
                "tb-hparams/loss_test"
            ]
        );
        let (reader, info) = read(&root.join("tb-hparams"));
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(
            serde_json::to_value(&info.params).unwrap(),
            serde_json::json!({"lr": 0.001, "batch": 64, "opt": "adam", "warmup": true, "eps": 1e-5})
        );
        assert_eq!(
            info.title.as_deref(),
            Some("lr=0.001,batch=64,opt=adam,warmup=true,eps=1e-05")
        );
        let names: Vec<&str> = info.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["hparam/score", "train/loss"]);
        let score = reader.series("hparam/score").unwrap().points();
        assert_eq!((score.len(), score[0].step), (1, 0));
        assert!((score[0].value - 0.9).abs() < 1e-6);
        // The trial read on its own (an explicit import) is still a run.
        let (_, alone) = read(&root.join("tb-hparams").join(trial_dir(&root)));
        assert_eq!(alone.params["opt"], "adam");
        assert_eq!(alone.status.as_deref(), Some("finished"));
        // A curves sub-run has no hparams.
        let (_, curves) = read(&root.join("tb-hparams/loss_test"));
        assert_eq!((curves.title, curves.params.len()), (None, 0));
    }

    /// A second trial with the same hparams folds too (its points join the
    /// series); one with other hparams is a sweep: every trial is then a run.
    #[test]
    fn trials_fold_only_while_they_agree() {
        let (_tmp, root) = fixture();
        let run = root.join("tb-hparams");
        let trial = trial_dir(&root);
        let copy = |name: &str| {
            std::fs::create_dir(run.join(name)).unwrap();
            for e in std::fs::read_dir(run.join(&trial)).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), run.join(name).join(e.file_name())).unwrap();
            }
        };
        copy("again");
        let root_storage = lab_fs::RunRoot::open_ambient(&run).unwrap();
        let storage = LocalStorage::new(&root_storage);
        let mut reader = RunReader::new(Format::Tensorboard);
        reader.refresh(&storage);
        assert_eq!(runs(&root).len(), 4);
        assert_eq!(reader.series("hparam/score").unwrap().points().len(), 2);
        // Now a trial with other hparams: nothing folds.
        let other = encode_start(&[("lr".to_owned(), HValue::Number(0.1))]);
        write_events(
            &run.join("other"),
            &[hparams_value(&other), scalar_value("hparam/score", 0.5)],
            Some("hparam/score"),
        );
        assert_eq!(runs(&root).len(), 7);
        reader.refresh(&storage);
        let info = reader.info();
        assert_eq!((info.title, info.params.len()), (None, 0));
        assert!(reader.series("hparam/score").is_none());
        // It goes: the two that agree fold again.
        std::fs::remove_dir_all(run.join("other")).unwrap();
        reader.refresh(&storage);
        assert_eq!(reader.info().params["batch"], 64);
        assert_eq!(runs(&root).len(), 4);
    }

    use crate::tensorboard::tests::frame;

    fn hparams_value(content: &[u8]) -> SummaryValue {
        SummaryValue {
            tag: "_hparams_/session_start_info".to_owned(),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "hparams".to_owned(),
                    content: content.to_vec(),
                }),
            }),
            ..SummaryValue::default()
        }
    }

    fn scalar_value(tag: &str, v: f32) -> SummaryValue {
        SummaryValue {
            tag: tag.to_owned(),
            simple_value: Some(v),
            ..SummaryValue::default()
        }
    }

    /// An event file's bytes: an experiment naming `metric` (when given),
    /// then one event per value.
    fn events(values: &[SummaryValue], metric: Option<&str>) -> Vec<u8> {
        let mut out = frame(
            &Event {
                wall_time: 1.7e9,
                file_version: Some("brain.Event:2".to_owned()),
                ..Event::default()
            }
            .encode_to_vec(),
        );
        let mut all = Vec::new();
        if let Some(tag) = metric {
            use crate::protowire::{Wire, put};
            let mut name = Vec::new();
            put(&mut name, 2, Wire::Bytes(tag.as_bytes()));
            let mut info = Vec::new();
            put(&mut info, 1, Wire::Bytes(&name));
            let mut experiment = Vec::new();
            put(&mut experiment, 5, Wire::Bytes(&info));
            let mut data = Vec::new();
            put(&mut data, 2, Wire::Bytes(&experiment));
            all.push(hparams_value(&data));
        }
        all.extend_from_slice(values);
        for value in all {
            let event = Event {
                wall_time: 1.7e9,
                step: 0,
                summary: Some(Summary { value: vec![value] }),
                ..Event::default()
            };
            out.extend(frame(&event.encode_to_vec()));
        }
        out
    }

    fn write_events(dir: &Path, values: &[SummaryValue], metric: Option<&str>) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("events.out.tfevents.1.h"), events(values, metric)).unwrap();
    }

    /// A parent run in memory with one sub-directory `sub` holding `bytes`
    /// as an event file (and `extra` beside it): what folds.
    fn folds(bytes: &[u8], extra: Option<&str>) -> Vec<String> {
        let memory = Memory::default();
        memory.put("events.out.tfevents.0.h", &events(&[], None));
        memory.put("sub/events.out.tfevents.1.h", bytes);
        if let Some(name) = extra {
            memory.put(&format!("sub/{name}"), b"x");
        }
        let mut folding = Folding::default();
        folding.refresh(&memory, &["sub".to_owned()]);
        folding.folded().to_vec()
    }

    /// The rule, case by case: only hparams and the metrics the experiment
    /// names, whole, small, and nothing else in the directory.
    #[test]
    fn only_an_hparams_trial_folds() {
        let start = encode_start(&[("lr".to_owned(), HValue::Number(0.1))]);
        let good = events(
            &[hparams_value(&start), scalar_value("hparam/score", 0.5)],
            Some("hparam/score"),
        );
        assert_eq!(folds(&good, None), ["sub"]);
        let no = Vec::<String>::new();
        // Curves: scalars no experiment names (add_scalars' sub-runs).
        assert_eq!(folds(&events(&[scalar_value("loss", 1.0)], None), None), no);
        // A scalar the experiment does not name, beside the hparams.
        let other = events(
            &[hparams_value(&start), scalar_value("loss", 0.5)],
            Some("hparam/score"),
        );
        assert_eq!(folds(&other, None), no);
        // A run that wrote `hparams()` into its own directory, then its
        // curve of the metric the experiment names: not a trial.
        let curve: Vec<SummaryValue> = std::iter::once(hparams_value(&start))
            .chain((0..3u8).map(|i| scalar_value("hparam/score", f32::from(i))))
            .collect();
        assert_eq!(folds(&events(&curve, Some("hparam/score")), None), no);
        // Two calls of add_hparams, each writing the metric once: a trial.
        let twice = [
            hparams_value(&start),
            scalar_value("hparam/score", 0.5),
            hparams_value(&start),
            scalar_value("hparam/score", 0.6),
        ];
        assert_eq!(folds(&events(&twice, Some("hparam/score")), None), ["sub"]);
        // A metric before the experiment that names it.
        let early = [scalar_value("hparam/score", 0.5), hparams_value(&start)];
        let mut bytes = events(&early[..1], None);
        bytes.extend_from_slice(&events(&early[1..], Some("hparam/score"))[..]);
        assert_eq!(folds(&bytes, None), no);
        // Only an experiment: no session start, no hparams.
        assert_eq!(folds(&events(&[], Some("hparam/score")), None), no);
        // An hparams summary that does not decode.
        assert_eq!(
            folds(&events(&[hparams_value(&[0x1a, 0x05])], None), None),
            no
        );
        // Another file beside it; a truncated or corrupt record.
        assert_eq!(folds(&good, Some("notes.txt")), no);
        assert_eq!(folds(&good[..good.len() - 3], None), no);
        let mut bad = good.clone();
        let at = bad.len() - 20;
        bad[at] ^= 1;
        assert_eq!(folds(&bad, None), no);
        // Past the byte bound (padding records of file_version events).
        let mut big = good.clone();
        let pad = frame(
            &Event {
                file_version: Some("x".repeat(1000)),
                ..Event::default()
            }
            .encode_to_vec(),
        );
        while big.len() as u64 <= MAX_TRIAL_BYTES {
            big.extend_from_slice(&pad);
        }
        assert_eq!(folds(&big, None), no);
        big.truncate(good.len() + pad.len() * 10);
        assert_eq!(folds(&big, None), ["sub"]);
    }

    /// A trial still being written folds once it is whole; a directory
    /// that held something else is not read again while its file is there.
    #[test]
    fn a_trial_being_written_folds_once_whole() {
        let start = encode_start(&[("opt".to_owned(), HValue::Text("sgd".to_owned()))]);
        let good = events(&[hparams_value(&start)], None);
        let memory = Memory::default();
        memory.put("sub/events.out.tfevents.1.h", &good[..good.len() - 5]);
        let mut folding = Folding::default();
        let dirs = ["sub".to_owned()];
        folding.refresh(&memory, &dirs);
        assert!(folding.folded().is_empty());
        memory.put("sub/events.out.tfevents.1.h", &good);
        folding.refresh(&memory, &dirs);
        assert_eq!(folding.folded(), ["sub"]);
        assert_eq!(folding.trial().title().as_deref(), Some("opt=sgd"));
        // Read again only when a file changed.
        let reads = memory.ranges.lock().unwrap().len();
        folding.refresh(&memory, &dirs);
        assert_eq!(memory.ranges.lock().unwrap().len(), reads);
        memory.put(
            "curves/events.out.tfevents.1.h",
            &events(&[scalar_value("loss", 1.0)], None),
        );
        let dirs = ["curves".to_owned(), "sub".to_owned()];
        folding.refresh(&memory, &dirs);
        let reads = memory.ranges.lock().unwrap().len();
        folding.refresh(&memory, &dirs);
        assert_eq!(memory.ranges.lock().unwrap().len(), reads);
        assert_eq!(folding.folded(), ["sub"]);
        // More sub-directories than looked at: none folds.
        let dirs: Vec<String> = (0..=MAX_CHILDREN).map(|i| format!("d{i}")).collect();
        folding.refresh(&memory, &dirs);
        assert!(folding.folded().is_empty() && folding.trial().is_empty());
    }

    /// The run's own hparams (TensorBoard's `hp.hparams` writes the session
    /// start into the run's files) are its params and title; one that does
    /// not decode is an error of the run, whose scalars still read.
    #[test]
    fn a_runs_own_hparams_are_its_params_and_bad_ones_its_errors() {
        let start = encode_start(&[
            ("units".to_owned(), HValue::Number(32.0)),
            ("dropout".to_owned(), HValue::Number(0.2)),
        ]);
        let memory = Memory::default();
        memory.put(
            "events.out.tfevents.1.h",
            &events(
                &[hparams_value(&start), scalar_value("accuracy", 0.8)],
                None,
            ),
        );
        let mut reader = RunReader::new(Format::Tensorboard);
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.title.as_deref(), Some("dropout=0.2,units=32"));
        assert_eq!(info.params["units"], 32);
        assert_eq!(info.status.as_deref(), Some("running"));
        let memory = Memory::default();
        memory.put(
            "events.out.tfevents.1.h",
            &events(
                &[hparams_value(&[0x1a, 0x80]), scalar_value("accuracy", 0.8)],
                None,
            ),
        );
        let mut reader = RunReader::new(Format::Tensorboard);
        reader.refresh(&memory);
        let info = reader.info();
        assert_eq!(info.errors.len(), 1, "{:?}", info.errors);
        assert!(
            info.errors[0].contains("does not decode"),
            "{:?}",
            info.errors
        );
        assert_eq!(info.metrics.len(), 1);
    }
}
