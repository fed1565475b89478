//! Stable-Baselines3 log directories:
//!
//! - `progress.csv` (stable_baselines3/common/logger.py,
//!   `CSVOutputFormat.write`): a header of the recorded keys
//!   (`rollout/ep_rew_mean`, `time/total_timesteps`, `train/value_loss`,
//!   …) in the order they first appeared, a row per dump, empty cells for
//!   keys not recorded then. When a key first appears the writer rewrites
//!   the whole file in place with a longer header (csvlog.rs notices and
//!   reads it again). Series by `time/total_timesteps` where a row has it,
//!   else by row.
//! - `monitor.csv`, or `<name>.monitor.csv` for one env of several
//!   (stable_baselines3/common/monitor.py, `Monitor` and `ResultsWriter`):
//!   a first line `#{"t_start": …, "env_id": …}`, then the header `r,l,t`
//!   (plus any info keywords), then a row per episode. Series
//!   `episode/reward` and `episode/length` (and `episode/<keyword>`) by
//!   episode index, at wall time `t_start + t`; `<name>.monitor.csv`'s
//!   series are prefixed `<name>/`. `created` is the earliest `t_start`,
//!   `env_id` a param.
//!
//! No hyperparameters are written by SB3 itself, and no status.

use crate::csvlog::{CsvFile, Layout, first_line};
use crate::discover::Listing;
use crate::series::SeriesSet;
use crate::storage::{EntryKind, Storage, list_all};
use crate::text::csv_fields;
use crate::{MAX_PARAMS, RunInfo};

/// The artifacts this format adds to the default allowlist: the logs
/// (`progress.csv`, the monitor files) and the text log.
pub(crate) const ARTIFACTS: &[&str] = &["*.csv", "log.txt"];

const PROGRESS: &str = "progress.csv";
const MONITOR: &str = "monitor.csv";
/// Bytes of a file's start read to look at its header.
const HEAD: usize = 16 * 1024;
/// Most monitor files of one run read (one per env).
const MAX_MONITORS: usize = 64;
/// The key prefixes SB3's logger records under.
const PREFIXES: &[&str] = &["rollout/", "train/", "time/", "eval/"];

fn progress_layout() -> Layout {
    Layout {
        separators: &[','],
        accepts: progress_header,
        x: Some("time/total_timesteps"),
        wall: None,
        preamble: false,
        series: |name| Some(name.to_owned()),
    }
}

fn monitor_layout() -> Layout {
    Layout {
        separators: &[','],
        accepts: |h| h.len() >= 3 && h[..3] == ["r", "l", "t"],
        x: None,
        wall: Some("t"),
        preamble: true,
        series: |name| {
            Some(match name {
                "r" => "episode/reward".to_owned(),
                "l" => "episode/length".to_owned(),
                other => format!("episode/{other}"),
            })
        },
    }
}

fn progress_header(fields: &[String]) -> bool {
    fields
        .iter()
        .any(|f| PREFIXES.iter().any(|p| f.starts_with(p)))
}

/// Whether `name` is a monitor file's name.
fn is_monitor(name: &str) -> bool {
    name == MONITOR
        || name
            .strip_suffix(".monitor.csv")
            .is_some_and(|s| !s.is_empty())
}

/// Whether `head` (a file's first bytes) starts as a monitor file does.
fn monitor_head(head: &[u8]) -> bool {
    first_line(head)
        .and_then(|l| l.strip_prefix('#'))
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .is_some_and(|v| v.get("t_start").is_some_and(serde_json::Value::is_number))
}

/// Whether the directory `listing` shows is a run of this format.
pub(crate) fn recognises(listing: &Listing<'_>) -> bool {
    if listing.file(PROGRESS)
        && listing
            .head(PROGRESS, HEAD)
            .as_deref()
            .and_then(first_line)
            .is_some_and(|line| progress_header(&csv_fields(line, ',')))
    {
        return true;
    }
    listing
        .files()
        .filter(|n| is_monitor(n))
        .take(4)
        .any(|n| listing.head(n, HEAD).is_some_and(|h| monitor_head(&h)))
}

#[derive(Debug)]
pub(crate) struct Reader {
    progress: CsvFile,
    /// The monitor files, by name.
    monitors: Vec<(String, CsvFile)>,
    errors: Vec<String>,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            progress: CsvFile::new(progress_layout()),
            monitors: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.errors.clear();
        self.progress.refresh(storage, PROGRESS);
        let entries = match list_all(storage, "") {
            Ok(entries) => entries,
            Err(e) => {
                self.errors.push(format!("the run's directory: {e}"));
                return;
            }
        };
        // A link, FIFO or device at a monitor file's name is never opened.
        for e in &entries {
            if e.kind == EntryKind::Other && is_monitor(&e.name) {
                let why = crate::storage::StorageError::NotAFile;
                self.errors.push(format!("{}: {why}", e.name));
            }
        }
        let names: Vec<String> = entries
            .into_iter()
            .filter(|e| e.kind == EntryKind::File && is_monitor(&e.name))
            .map(|e| e.name)
            .take(MAX_MONITORS)
            .collect();
        self.monitors.retain(|(name, _)| names.contains(name));
        for name in names {
            if !self.monitors.iter().any(|(n, _)| *n == name) {
                let prefix = name
                    .strip_suffix(".monitor.csv")
                    .map(|stem| format!("{stem}/"))
                    .unwrap_or_default();
                self.monitors
                    .push((name, CsvFile::with_prefix(monitor_layout(), prefix)));
            }
        }
        self.monitors.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, file) in &mut self.monitors {
            file.refresh(storage, name);
        }
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        std::iter::once(&self.progress.log.set)
            .chain(self.monitors.iter().map(|(_, m)| &m.log.set))
            .collect()
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = RunInfo::default();
        info.errors.clone_from(&self.errors);
        info.errors.extend(self.progress.errors(PROGRESS));
        let mut start: Option<f64> = None;
        for (name, file) in &self.monitors {
            info.errors.extend(file.errors(name));
            let Some(preamble) = &file.log.preamble else {
                continue;
            };
            let Ok(serde_json::Value::Object(header)) = serde_json::from_str(preamble) else {
                continue;
            };
            if let Some(t) = header.get("t_start").and_then(serde_json::Value::as_f64)
                && t.is_finite()
                && t >= 0.0
            {
                start = Some(start.map_or(t, |s| s.min(t)));
            }
            // The first file's header names the env (`env_id`); a key
            // another file gives differently is that file's.
            for (key, value) in header.iter().filter(|(k, _)| *k != "t_start") {
                if info.params.len() >= MAX_PARAMS {
                    break;
                }
                let value = match value {
                    serde_json::Value::String(s) => serde_json::Value::String(crate::text::cap(s)),
                    serde_json::Value::Number(_) | serde_json::Value::Bool(_) => value.clone(),
                    _ => continue,
                };
                if key.len() <= crate::MAX_KEY_LEN {
                    info.params.entry(key.clone()).or_insert(value);
                }
            }
        }
        info.created = start.map(|t| crate::text::iso8601_utc(t as u64));
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(reader: &Reader, name: &str) -> Vec<(i64, f64)> {
        reader
            .sets()
            .iter()
            .find_map(|s| s.get(name))
            .map(|s| s.points().iter().map(|p| (p.step, p.value)).collect())
            .unwrap_or_default()
    }

    /// SB3's CSVOutputFormat rewrites progress.csv in place (same inode)
    /// when a key first appears: the reader reads it again, not on from
    /// its old offset.
    #[test]
    fn progress_rewritten_in_place_with_a_new_key_is_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        let file = dir.join(PROGRESS);
        std::fs::write(
            &file,
            "time/total_timesteps,rollout/ep_rew_mean\n64,1.5\n128,2.5\n",
        )
        .unwrap();
        let root = lab_fs::RunRoot::open_ambient(&dir).unwrap();
        let storage = crate::LocalStorage::new(&root);
        let mut reader = Reader::default();
        reader.refresh(&storage);
        assert_eq!(
            points(&reader, "rollout/ep_rew_mean"),
            [(64, 1.5), (128, 2.5)]
        );
        // What the writer does: seek(0), a longer header, old rows padded.
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.write_all(
            b"time/total_timesteps,rollout/ep_rew_mean,train/value_loss\n64,1.5,\n128,2.5,\n192,3.5,0.25\n",
        )
        .unwrap();
        drop(f);
        reader.refresh(&storage);
        assert_eq!(
            points(&reader, "rollout/ep_rew_mean"),
            [(64, 1.5), (128, 2.5), (192, 3.5)]
        );
        assert_eq!(points(&reader, "train/value_loss"), [(192, 0.25)]);
        assert_eq!(reader.info().errors, Vec::<String>::new());
    }

    #[test]
    fn monitor_files_give_episodes_from_their_start_time() {
        let memory = crate::storage::tests::Memory::default();
        let monitor = "#{\"t_start\": 1700000000.5, \"env_id\": \"CartPole-v1\"}\nr,l,t\n9.0,9,0.25\n12.5,12,0.5\n";
        memory.put("monitor.csv", monitor.as_bytes());
        memory.put(
            "1.monitor.csv",
            b"#{\"t_start\": 1700000100.0, \"env_id\": \"CartPole-v1\"}\nr,l,t\n3.0,3,1.0\n",
        );
        let mut reader = Reader::default();
        reader.refresh(&memory);
        assert_eq!(points(&reader, "episode/reward"), [(0, 9.0), (1, 12.5)]);
        assert_eq!(points(&reader, "episode/length"), [(0, 9.0), (1, 12.0)]);
        assert_eq!(points(&reader, "1/episode/reward"), [(0, 3.0)]);
        let walls: Vec<f64> = reader
            .sets()
            .iter()
            .find_map(|s| s.get("episode/reward"))
            .unwrap()
            .points()
            .iter()
            .map(|p| p.wall)
            .collect();
        assert_eq!(walls, [1_700_000_000.75, 1_700_000_001.0]);
        let info = reader.info();
        assert_eq!(info.created.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(info.params["env_id"], "CartPole-v1");
        assert_eq!(info.errors, Vec::<String>::new());
        // More episodes arrive.
        memory.put("monitor.csv", format!("{monitor}7.0,7,0.75\n").as_bytes());
        reader.refresh(&memory);
        assert_eq!(points(&reader, "episode/reward").len(), 3);
    }
}
