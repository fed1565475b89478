//! Jobs' runs: a run the runner made shows its job — its status is the
//! job's state, its title the job's command — and the runs its job wrote
//! beneath it are registered as runs of their own (its children).

use std::sync::Arc;

use lab_formats::{Format, RunInfo};
use lab_fs::RunRoot;
use lab_registry::RunId;
use lab_runner::JobState;
use serde::Serialize;

use crate::{Error, Lab, Run, lock};

/// What a run shows of its job, when it is a job's run.
#[derive(Debug, Default)]
pub(crate) struct JobView {
    /// It is a job's run (a record names it, or it reads a job's files).
    pub(crate) is_job: bool,
    /// The job's state, when known: from its record, else from the Lab's
    /// provenance once the job ended.
    state: Option<JobState>,
    /// The job's command, when known.
    command: Option<Vec<String>>,
    /// The directory it ran in (its project's), when known.
    pub(crate) cwd: Option<String>,
}

impl JobView {
    /// Shows the job in `info`: the title its command unless what the job
    /// wrote says what it varied (the program by its file name:
    /// `python3`, however it was found or asked for); the status its
    /// state's, whatever the job wrote (SPEC §4), the state kept beside it
    /// as `status_raw`; `unknown` while the state is not known.
    pub(crate) fn show(&self, info: &mut RunInfo) {
        if info.title.is_none()
            && let Some(mut words) = self.command.clone().filter(|w| !w.is_empty())
        {
            if let Some(name) = std::path::Path::new(&words[0])
                .file_name()
                .and_then(|n| n.to_str())
            {
                words[0] = name.to_owned();
            }
            info.title = Some(shell_words(&words));
        }
        if self.state.is_none() && self.is_job {
            info.tags.retain(|t| !t.starts_with("status_raw="));
            info.status = Some(lab_formats::RunStatus::Unknown.as_str().to_owned());
        }
        if let Some(state) = self.state {
            info.tags.retain(|t| !t.starts_with("status_raw="));
            info.tags.push(format!("status_raw={state}"));
            info.status = Some(job_run_status(state).to_owned());
        }
    }
}

impl Lab {
    /// The record of the job whose run `run` is, if it is one (a job's
    /// run has its job's id).
    pub(crate) fn job_record(&self, run: &Run) -> Option<lab_runner::jobs::JobRecord> {
        let id = run.id.as_str();
        let record = match &self.jobs {
            Some(jobs) => jobs.get(id)?,
            // Without the runner: the record in the data dir, read only —
            // for a job's run alone (no file is looked for for any other).
            None if self.readers.is_job_run(run) => {
                lab_runner::jobs::read_record(self.readers.data_dir()?, id)?
            }
            None => return None,
        };
        (record.run_id == id).then_some(record)
    }

    /// What `run` shows of its job (`record`, when this Lab has it).
    /// An ended job's files are looked at once more, then kept. Blocking.
    pub(crate) fn job_view(
        &self,
        run: &Run,
        root: Option<&RunRoot>,
        record: Option<lab_runner::jobs::JobRecord>,
    ) -> JobView {
        let reads_a_job = self.readers.job_source(run).is_some();
        let provenance = if record.is_none() && reads_a_job {
            root.and_then(read_provenance)
        } else {
            None
        };
        let state = record.as_ref().map(|r| r.state).or_else(|| {
            provenance
                .as_ref()
                .and_then(|p| JobState::of_recorded_exit(&p.exit))
        });
        if state.is_some_and(|s| !matches!(s, JobState::Running | JobState::Queued)) {
            self.readers.settle(&run.id);
        }
        let command = match (&record, &provenance) {
            (Some(r), _) => Some(
                std::iter::once(r.program.clone())
                    .chain(r.args.iter().cloned())
                    .collect::<Vec<_>>(),
            ),
            (None, Some(p)) => Some(p.argv.clone()),
            _ => None,
        };
        let cwd = match (&record, &provenance) {
            (Some(r), _) => r.relaunch.as_ref().and_then(|r| r.cwd.clone()),
            (None, Some(p)) => p.cwd.clone(),
            _ => None,
        };
        JobView {
            is_job: record.is_some() || reads_a_job,
            state,
            command,
            cwd,
        }
    }

    /// The runs the job wrote beneath its run: each registered as a run of
    /// its own (walked and checked as any run under an allowed root:
    /// DATA_DIR/runs is one), its parent this run. Blocking.
    pub(crate) fn register_children(&self, run: &Run) {
        let children = self.readers.new_children(run);
        if children.is_empty() {
            return;
        }
        // At most MAX_CHILDREN over the job run's life, however many its
        // job keeps making.
        let known = self.registry.runs().map_or(usize::MAX, |runs| {
            runs.iter()
                .filter(|r| self.readers.parent_of(r).as_ref() == Some(&run.id))
                .count()
        });
        let room = lab_formats::job::MAX_CHILDREN.saturating_sub(known);
        let candidates: Vec<lab_registry::Candidate> = children
            .into_iter()
            .take(room)
            .map(crate::discovery::candidate)
            .collect();
        let beneath = run.root.join("job");
        if !candidates.is_empty()
            && let Err(e) = self.registry.register_beneath(&beneath, &candidates)
        {
            tracing::warn!("registering the runs job {} wrote: {e}", run.id);
        }
    }

    /// The runs `parent`'s job wrote beneath it, each a run of its own,
    /// then the runs of its own store that name it their parent (an MLflow
    /// run's nested runs) (at most 1,000): id, name and format. Blocking.
    pub fn children(self: &Arc<Self>, parent: &RunId) -> Result<Vec<Child>, Error> {
        let runs = self.runs()?;
        let mut out: Vec<Child> = {
            let summaries = lock(&self.summaries.summaries);
            runs.iter()
                .filter(|r| self.readers.parent_of(r).as_ref() == Some(parent))
                .take(1_000)
                .map(|r| Child {
                    id: r.id.clone(),
                    name: summaries
                        .get(&r.id)
                        .map_or_else(|| r.dir_name().to_owned(), |(_, s)| s.name.clone()),
                    format: r.format.as_str(),
                })
                .collect()
        };
        let Some(run) = runs.iter().find(|r| r.id == *parent) else {
            return Ok(out);
        };
        // The other runs of its store that name it their parent, as their
        // summaries say (kept by the background summariser; a page view
        // reads no run of the store).
        let summaries = lock(&self.summaries.summaries);
        for r in runs.iter().filter(|r| r.id != run.id && same_store(run, r)) {
            if out.len() >= 1_000 {
                break;
            }
            if let Some((_, summary)) = summaries.get(&r.id)
                && summary.parent.as_ref() == Some(parent)
            {
                out.push(Child {
                    id: summary.id.clone(),
                    name: summary.name.clone(),
                    format: summary.format,
                });
            }
        }
        Ok(out)
    }

    /// The run of `run`'s own store whose key is `key` (an MLflow run's
    /// `mlflow.parentRunId`): in a SQLite store the entry `key` of the same
    /// store; in a file store the directory `key` beside `run`'s. The key
    /// is only compared, never joined to a path. Blocking.
    pub(crate) fn store_run(&self, run: &Run, key: &str) -> Option<RunId> {
        let (store, _) = store_key(run)?;
        let (_, keys) = self.typed().ok()?;
        keys.get(&(store, key.to_owned()))
            .filter(|id| **id != run.id)
            .cloned()
    }
}

/// The MLflow runs by (their store, their key in it): looked up, not
/// searched, for every nested run summarised.
pub(crate) type StoreKeys = std::collections::HashMap<(std::path::PathBuf, String), RunId>;

/// Every MLflow run of `runs` by its [`store_key`].
pub(crate) fn store_keys(runs: &[Run]) -> StoreKeys {
    runs.iter()
        .filter_map(|r| Some((store_key(r)?, r.id.clone())))
        .collect()
}

/// An MLflow run's store and its key in it: a SQLite store's directory
/// and the entry; a file-store experiment's directory and the run's
/// directory name ([`same_store`]'s stores).
fn store_key(run: &Run) -> Option<(std::path::PathBuf, String)> {
    if run.format != Format::Mlflow {
        return None;
    }
    match &run.entry {
        Some(entry) => Some((run.root.clone(), entry.clone())),
        None => Some((
            run.root.parent()?.to_path_buf(),
            run.root.file_name()?.to_str()?.to_owned(),
        )),
    }
}

/// Whether `a` and `b` are runs of one MLflow store: the same SQLite
/// store, or two run directories of one file-store experiment.
fn same_store(a: &Run, b: &Run) -> bool {
    if a.format != Format::Mlflow || b.format != Format::Mlflow {
        return false;
    }
    match (&a.entry, &b.entry) {
        (Some(_), Some(_)) => a.root == b.root,
        (None, None) => a.root.parent().is_some() && a.root.parent() == b.root.parent(),
        _ => false,
    }
}

/// A run a job wrote beneath its job's run.
#[derive(Clone, Debug, Serialize)]
pub struct Child {
    /// Its id.
    pub id: RunId,
    /// Its name.
    pub name: String,
    /// Its format.
    pub format: &'static str,
}

/// A job's run's `provenance.json` (the Lab's own file, where the job
/// cannot write), at most 4 MiB, as this Lab writes it; `None` while it
/// has none (or one of another version).
fn read_provenance(root: &RunRoot) -> Option<lab_runner::record::Provenance> {
    use std::io::Read;
    let name = lab_fs::ArtifactName::parse("provenance.json").ok()?;
    let artifact = root.open_artifact(&name).ok()?;
    let mut text = Vec::new();
    artifact.file.take(4 << 20).read_to_end(&mut text).ok()?;
    lab_runner::record::Provenance::parse(&text)
}

/// `words` as a POSIX shell would read them back: a word of letters,
/// digits and `_@%+=:,./-` as it is, any other in single quotes (`'\''`
/// for a quote inside), as the UI's `quoteArgv` writes them. Long titles
/// are cut at 200 characters.
fn shell_words(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect();
    let line = quoted.join(" ");
    if line.chars().count() > 200 {
        line.chars().take(199).chain(std::iter::once('…')).collect()
    } else {
        line
    }
}

/// The status of a job's run (SPEC §4): the job state's word in the one
/// run-status vocabulary (`queued`, `running` → running; `failed`,
/// `refused` → failed; `killed`, `timeout`, `cancelled`, `oom` → killed;
/// `node_fail` → crashed; `interrupted` → unknown).
fn job_run_status(state: JobState) -> &'static str {
    lab_formats::RunStatus::from_raw(state.as_str()).as_str()
}

#[cfg(test)]
mod job_status_tests {
    use lab_runner::JobState;

    #[test]
    fn a_command_is_quoted_as_a_shell_reads_it_back() {
        let words =
            |w: &[&str]| super::shell_words(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            words(&["python3", "train.py", "--lr", "0.1"]),
            "python3 train.py --lr 0.1"
        );
        assert_eq!(words(&["echo", "$HOME; id"]), "echo '$HOME; id'");
        assert_eq!(words(&["a b", "", "it's"]), "'a b' '' 'it'\\''s'");
        assert_eq!(words(&["x".repeat(300).as_str()]).chars().count(), 200);
    }

    #[test]
    fn a_jobs_run_status_follows_its_state() {
        for (state, status) in [
            (JobState::Queued, "running"),
            (JobState::Running, "running"),
            (JobState::Finished, "finished"),
            (JobState::Failed, "failed"),
            (JobState::Refused, "failed"),
            (JobState::Killed, "killed"),
            (JobState::Timeout, "killed"),
            (JobState::Cancelled, "killed"),
            (JobState::Oom, "killed"),
            (JobState::NodeFail, "crashed"),
            (JobState::Interrupted, "unknown"),
        ] {
            assert_eq!(super::job_run_status(state), status, "{state}");
        }
    }
}
