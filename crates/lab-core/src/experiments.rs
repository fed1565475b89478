//! Experiments: the group each run belongs to (SPEC §4 `experiment`), and
//! the list of them.
//!
//! A run's experiment is `{id, name}` with `id` = format + `:` + the
//! group's location:
//!
//! - what the run's own files name (lab-formats' [`Group`]): an MLflow
//!   store's experiment (`mlflow:/abs/store#ID`; a file store's is the
//!   run's parent directory, `mlflow:/abs/mlruns/ID`, named by that
//!   directory's `meta.yaml`), a W&B project (`wandb:PROJECT`, one
//!   namespace wherever its runs lie), `run.toml`'s `experiment`
//!   (`lab:NAME`);
//! - a runner job's project directory, the one it ran in
//!   (`lab:/abs/project`);
//! - where the run lies: a TensorBoard or Lightning logdir's parent
//!   (`tensorboard:/abs/logs`), a Ray Tune experiment directory, the
//!   parent of a Hugging Face, Keras, Stable-Baselines3 or DVCLive run,
//!   an Ultralytics `<task>/<project>`, a Hydra multirun's sweep
//!   directory, the parent holding `multirun.yaml`
//!   (`hydra:/abs/multirun/DAY/TIME`);
//! - else none.
//!
//! Only a directory within an allowed root is ever read for a name (an
//! MLflow experiment's `meta.yaml`, a sweep's `multirun.yaml`), through
//! lab-fs's no-follow, non-blocking opens; a name read is kept for
//! [`NAME_TTL`], so 20,000 runs of one experiment read its file once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lab_formats::{Format, Group, RunInfo};
use serde::Serialize;

use crate::list::ListQuery;
use crate::{Lab, Run, lock};

/// The group a run is in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Experiment {
    /// `format:location`.
    pub id: String,
    /// What people call it.
    pub name: String,
}

/// One experiment as `GET /api/experiments` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExperimentEntry {
    /// `format:location`.
    pub id: String,
    /// What people call it.
    pub name: String,
    /// The format of its runs.
    pub format: &'static str,
    /// How many runs are in it.
    pub runs: usize,
    /// When its newest run was created (ISO 8601, UTC).
    pub last_created: String,
}

/// How long a name read from a directory is kept.
pub(crate) const NAME_TTL: Duration = Duration::from_secs(30);

/// Names read from directories (a file store's experiment, whether a
/// directory is a sweep), by directory, with when they were read.
#[derive(Debug, Default)]
pub(crate) struct Names {
    read: Mutex<HashMap<(Format, String), Read>>,
}

/// A name read (or that there was none), and when.
type Read = (Instant, Option<String>);

impl Names {
    /// The name `read` finds for `dir`, read again when older than
    /// [`NAME_TTL`].
    fn get(
        &self,
        format: Format,
        dir: &str,
        read: impl FnOnce() -> Option<String>,
    ) -> Option<String> {
        let key = (format, dir.to_owned());
        if let Some((at, name)) = lock(&self.read).get(&key)
            && at.elapsed() < NAME_TTL
        {
            return name.clone();
        }
        let name = read();
        let mut names = lock(&self.read);
        if names.len() > 100_000 {
            names.clear();
        }
        names.insert(key, (Instant::now(), name.clone()));
        name
    }
}

impl Lab {
    /// The experiment of `run`, read as `format` with `info`; `job_cwd`
    /// is its job's directory when it is a job's run. Blocking (it may
    /// read a name from a directory within an allowed root).
    pub(crate) fn experiment_of(
        &self,
        run: &Run,
        format: Format,
        info: &RunInfo,
        job_cwd: Option<&str>,
    ) -> Option<Experiment> {
        if let Some(cwd) = job_cwd {
            return Some(Experiment {
                id: format!("{}:{cwd}", Format::Lab.as_str()),
                name: file_name(cwd).to_owned(),
            });
        }
        if let Some(Group { location, name }) = &info.experiment {
            let name = match (format, run.entry.is_none()) {
                // A file store's experiment names itself in its directory.
                (Format::Mlflow, true) => self
                    .experiment_names
                    .get(format, location, || {
                        self.in_dir(run, location, lab_formats::mlflow_experiment_name)
                    })
                    .unwrap_or_else(|| name.clone()),
                _ => name.clone(),
            };
            return Some(Experiment {
                id: format!("{format}:{location}"),
                name,
            });
        }
        let parent = run.root.parent()?.to_str()?;
        match format {
            // The directory holding the run: a logdir, a Ray Tune
            // experiment, the parent of an output directory.
            Format::Tensorboard
            | Format::Lightning
            | Format::Raytune
            | Format::Huggingface
            | Format::Keras
            | Format::Sb3
            | Format::Dvclive => Some(Experiment {
                id: format!("{format}:{parent}"),
                name: file_name(parent).to_owned(),
            }),
            // `runs/<task>/[<project>/]<name>`: `<task>/<project>`, or
            // `<task>` where the parent is the task's directory itself.
            Format::Ultralytics => {
                let mut up = Path::new(parent).iter().rev();
                let last = up.next()?.to_str()?;
                let above = up.next().and_then(|p| p.to_str());
                let name = match above {
                    Some(task) if task != "runs" => format!("{task}/{last}"),
                    _ => last.to_owned(),
                };
                Some(Experiment {
                    id: format!("{format}:{parent}"),
                    name,
                })
            }
            Format::Hydra => {
                self.experiment_names
                    .get(format, parent, || {
                        self.in_dir(run, parent, |sweep| sweep.stat("multirun.yaml").ok())?;
                        // `multirun/2026-12-07/01-34-35` → its day and time.
                        let mut tail = Path::new(parent).iter().rev().take(2);
                        let (time, day) = (tail.next()?.to_str()?, tail.next()?.to_str()?);
                        Some(format!("{day}/{time}"))
                    })
                    .map(|name| Experiment {
                        id: format!("{format}:{parent}"),
                        name,
                    })
            }
            _ => None,
        }
    }

    /// `read` of the directory `dir` as a storage: for a run in object
    /// storage, a directory beneath its root; else a directory within an
    /// allowed root, opened as any root is. `None` when it is neither or
    /// cannot be opened.
    fn in_dir<R>(
        &self,
        run: &Run,
        dir: &str,
        read: impl FnOnce(&dyn lab_formats::Storage) -> Option<R>,
    ) -> Option<R> {
        match &run.remote {
            Some(remote) => read(&remote.root.storage(remote.root.within(dir)?)),
            None => {
                let root = self.readers.open_root(self.readable(dir)?).ok()?;
                read(&lab_formats::LocalStorage::new(&root))
            }
        }
    }

    /// `dir` when it lies within an allowed root (or the jobs' runs), so
    /// the Lab may read it.
    fn readable<'a>(&self, dir: &'a str) -> Option<&'a Path> {
        let path = Path::new(dir);
        let within = self
            .registry
            .allowed_roots()
            .iter()
            .map(std::path::PathBuf::as_path)
            .chain(self.readers.job_runs_dir())
            .any(|root| path.starts_with(root));
        within.then_some(path)
    }

    /// Every experiment of the runs `query` lists (its paging aside),
    /// by name then id. Blocking.
    pub fn experiments(
        self: &std::sync::Arc<Self>,
        query: &ListQuery,
    ) -> Result<Vec<ExperimentEntry>, crate::Error> {
        let (table, picks, kept) = self.picked(query)?;
        let list = table.experiments(&picks, || {
            let mut groups: HashMap<&str, ExperimentEntry> = HashMap::new();
            let rows = table.rows.iter().zip(0u32..);
            for (run, _) in rows.filter(|(_, i)| kept.as_ref().is_none_or(|k| k.has(*i))) {
                let Some(experiment) = &run.experiment else {
                    continue;
                };
                let entry =
                    groups
                        .entry(experiment.id.as_str())
                        .or_insert_with(|| ExperimentEntry {
                            id: experiment.id.clone(),
                            name: experiment.name.clone(),
                            format: run.format,
                            runs: 0,
                            last_created: String::new(),
                        });
                entry.runs += 1;
                if run.created > entry.last_created {
                    entry.last_created.clone_from(&run.created);
                }
            }
            let mut list: Vec<ExperimentEntry> = groups.into_values().collect();
            list.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
            list
        });
        Ok(list.as_ref().clone())
    }
}

/// The last part of a path (`/a/b` → `b`; `/` → `/`).
fn file_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paths_last_part_names_it() {
        assert_eq!(file_name("/a/b"), "b");
        assert_eq!(file_name("/a/b/"), "b");
        assert_eq!(file_name("/"), "/");
        assert_eq!(file_name("x"), "x");
    }

    #[test]
    fn names_are_read_once_within_their_time() {
        let names = Names::default();
        let mut reads = 0;
        for _ in 0..3 {
            let name = names.get(Format::Mlflow, "/m/1", || {
                reads += 1;
                Some("demo".to_owned())
            });
            assert_eq!(name.as_deref(), Some("demo"));
        }
        assert_eq!(reads, 1);
        // Another directory, or another format's, is read on its own.
        assert_eq!(names.get(Format::Hydra, "/m/1", || None), None);
        assert_eq!(
            names
                .get(Format::Mlflow, "/m/2", || Some("other".to_owned()))
                .as_deref(),
            Some("other")
        );
    }
}
