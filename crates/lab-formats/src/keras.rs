//! Keras `CSVLogger` (keras/src/callbacks/csv_logger.py): a CSV file the
//! user names (`training.log`, `history.csv`, `log.csv`, …) whose header
//! is `epoch` followed by the logged keys (sorted, with the model's
//! `val_*` metrics added), one row per epoch (0-based; continued from
//! `initial_epoch` when appended), `NA` for a key not logged that epoch,
//! the separator the user chose (`,`, or `;` or a tab). Found by its
//! header, never its name; the run is the file's directory, its series the
//! columns by epoch. The format records no time and no hyperparameters.
//!
//! Not a Keras log: the Lab's own `metrics.csv` (a Lab run, or a
//! Lightning `version_N`), a directory holding `run.toml`/`run.json`, an
//! Ultralytics run (`args.yaml` beside `results.csv`, whatever its
//! header), and SB3's `progress.csv`/`monitor.csv`.

use crate::RunInfo;
use crate::csvlog::{CsvFile, Layout, first_line};
use crate::discover::Listing;
use crate::series::SeriesSet;
use crate::storage::{EntryKind, Storage, list_all};

/// The artifacts this format adds to the default allowlist: the log
/// itself, and what else a script wrote beside it as text.
pub(crate) const ARTIFACTS: &[&str] = &["*.csv", "*.log"];

/// Bytes of a file's start read to look at its header.
const HEAD: usize = 16 * 1024;
/// Most files of a directory whose header is looked at.
const MAX_SNIFFED: usize = 8;
/// Names people give the file, looked at first.
const USUAL: &[&str] = &["training.log", "history.csv", "log.csv", "training.csv"];

/// What Keras' CSVLogger writes: `epoch`, then named columns, none
/// twice.
pub(crate) fn layout() -> Layout {
    Layout {
        separators: &[',', ';', '\t'],
        accepts: header_is_keras,
        x: Some("epoch"),
        wall: None,
        preamble: false,
        series: |name| Some(name.to_owned()),
    }
}

fn header_is_keras(fields: &[String]) -> bool {
    let mut seen = std::collections::HashSet::new();
    fields.first().is_some_and(|f| f == "epoch")
        && fields.len() > 1
        && fields
            .iter()
            .all(|f| !f.trim().is_empty() && f.len() <= 512 && seen.insert(f.as_str()))
}

/// Whether a file named `name` may be a Keras log.
fn candidate(name: &str) -> bool {
    (name.ends_with(".csv") || name.ends_with(".log"))
        && !matches!(name, "metrics.csv" | "progress.csv" | "monitor.csv")
        && !name.ends_with(".monitor.csv")
}

/// The first file of `names` (the usual names first, at most
/// [`MAX_SNIFFED`] looked at) whose first line is a Keras header, as
/// `head` reads files.
fn pick(names: &[&str], head: impl Fn(&str) -> Option<Vec<u8>>) -> Option<String> {
    let usual = USUAL.iter().copied().filter(|u| names.contains(u));
    let rest = names
        .iter()
        .copied()
        .filter(|n| candidate(n) && !USUAL.contains(n));
    usual.chain(rest).take(MAX_SNIFFED).find_map(|name| {
        let head = head(name)?;
        let line = first_line(&head)?;
        let sep_ok = layout()
            .separators
            .iter()
            .any(|sep| header_is_keras(&crate::text::csv_fields(line, *sep)));
        sep_ok.then(|| name.to_owned())
    })
}

/// Whether a directory holds files that make it another format's run, or
/// the Lab's, whatever a CSV in it says.
fn claimed_elsewhere(has: impl Fn(&str) -> bool) -> bool {
    (has("args.yaml") && has("results.csv")) || has("run.toml") || has("run.json")
}

/// Whether the directory `listing` shows is a run of this format.
pub(crate) fn recognises(listing: &Listing<'_>) -> bool {
    !claimed_elsewhere(|n| listing.file(n))
        && pick(&listing.files().collect::<Vec<_>>(), |name| {
            listing.head(name, HEAD)
        })
        .is_some()
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// The log's name, once found.
    file: Option<String>,
    log: Option<CsvFile>,
    errors: Vec<String>,
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.errors.clear();
        if self.file.is_none() {
            let entries = match list_all(storage, "") {
                Ok(entries) => entries,
                Err(e) => {
                    self.errors.push(format!("the run's directory: {e}"));
                    return;
                }
            };
            let files: Vec<&str> = entries
                .iter()
                .filter(|e| e.kind == EntryKind::File)
                .map(|e| e.name.as_str())
                .collect();
            self.file = pick(&files, |name| storage.read_range(name, 0, HEAD, None).ok());
            self.log = None;
        }
        let Some(file) = self.file.clone() else {
            self.errors
                .push("no Keras CSVLogger file (a header `epoch,…`) here".to_owned());
            return;
        };
        let log = self.log.get_or_insert_with(|| CsvFile::new(layout()));
        if !log.refresh(storage, &file) {
            // Gone: look again next time.
            self.file = None;
            self.log = None;
        }
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        self.log.iter().map(|l| &l.log.set).collect()
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = RunInfo::default();
        info.errors.clone_from(&self.errors);
        if let (Some(file), Some(log)) = (&self.file, &self.log) {
            info.errors.extend(log.errors(file));
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_names_are_looked_at_first_and_headers_decide() {
        let heads = |name: &str| -> Option<Vec<u8>> {
            Some(match name {
                "a.csv" => b"x,y\n1,2\n".to_vec(),
                "b.log" => b"epoch;loss\n0;1\n".to_vec(),
                "training.log" => b"epoch\tacc\tloss\n".to_vec(),
                "metrics.csv" => b"epoch,loss\n".to_vec(),
                _ => return None,
            })
        };
        let names = ["a.csv", "b.log", "metrics.csv", "training.log"];
        assert_eq!(pick(&names, heads).as_deref(), Some("training.log"));
        let names = ["a.csv", "b.log", "metrics.csv"];
        assert_eq!(pick(&names, heads).as_deref(), Some("b.log"));
        // The Lab's metrics.csv is never a Keras log, whatever its header.
        assert_eq!(pick(&["metrics.csv"], heads), None);
        assert_eq!(pick(&["a.csv"], heads), None);
    }

    #[test]
    fn a_header_is_epoch_then_distinct_names() {
        let h = |s: &str| crate::text::csv_fields(s, ',');
        assert!(header_is_keras(&h("epoch,loss,val_loss")));
        assert!(!header_is_keras(&h("epoch")));
        assert!(!header_is_keras(&h("epoch,loss,loss")));
        assert!(!header_is_keras(&h("epoch,,loss")));
        assert!(!header_is_keras(&h("step,epoch,loss")));
    }
}

#[cfg(test)]
mod reading {
    use super::*;

    /// `fit` again with `append=False` truncates and rewrites the log
    /// under the same inode: read again from the start, not on from the
    /// old offset.
    #[test]
    fn a_log_truncated_and_written_again_is_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        let file = dir.join("training.log");
        std::fs::write(&file, "epoch,loss\n0,0.5\n1,0.25\n").unwrap();
        let root = lab_fs::RunRoot::open_ambient(&dir).unwrap();
        let storage = crate::LocalStorage::new(&root);
        let mut reader = Reader::default();
        reader.refresh(&storage);
        let loss = |r: &Reader| -> Vec<(i64, f64)> {
            r.sets()[0]
                .get("loss")
                .map(|s| s.points().iter().map(|p| (p.step, p.value)).collect())
                .unwrap_or_default()
        };
        assert_eq!(loss(&reader), [(0, 0.5), (1, 0.25)]);
        // Truncated and written again in place, longer than before.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .unwrap();
        f.write_all(b"epoch,loss\n0,0.75\n1,0.5\n2,0.125\n")
            .unwrap();
        drop(f);
        reader.refresh(&storage);
        assert_eq!(loss(&reader), [(0, 0.75), (1, 0.5), (2, 0.125)]);
        // Appended (append=True, a second fit from initial_epoch=3).
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(b"3,NA\n4,0.0625\n").unwrap();
        drop(f);
        reader.refresh(&storage);
        assert_eq!(loss(&reader).last(), Some(&(4, 0.0625)));
        assert_eq!(loss(&reader).len(), 4);
        assert_eq!(reader.info().errors, Vec::<String>::new());
    }
}
