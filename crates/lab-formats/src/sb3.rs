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

use crate::csvlog::{CsvFile, Layout, first_line, split};
use crate::discover::Listing;
use crate::series::SeriesSet;
use crate::storage::{EntryKind, Storage, list_all};
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
            .is_some_and(|line| progress_header(&split(line, ',')))
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
        let names: Vec<String> = match list_all(storage, "") {
            Ok(entries) => entries
                .into_iter()
                .filter(|e| e.kind == EntryKind::File && is_monitor(&e.name))
                .map(|e| e.name)
                .take(MAX_MONITORS)
                .collect(),
            Err(e) => {
                self.errors.push(format!("the run's directory: {e}"));
                return;
            }
        };
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
