//! One vocabulary for a run's status (SPEC §4): whatever a format calls it
//! (`FINISHED`, MLflow's `SCHEDULED`, W&B's exit code, a `run.toml`'s
//! free text), a run is `running`, `finished`, `failed`, `crashed`,
//! `killed` or `unknown`. The raw value is kept beside it as the tag
//! `status_raw=…`.

/// A run's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Still being written (or queued to be).
    Running,
    /// Ended on its own, successfully.
    Finished,
    /// Ended on its own with an error.
    Failed,
    /// Stopped without a chance to say how (a node failed, the process
    /// vanished).
    Crashed,
    /// Stopped from outside: killed, cancelled, out of time or memory.
    Killed,
    /// The format says nothing the Lab can map.
    Unknown,
}

impl RunStatus {
    /// The word the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Crashed => "crashed",
            RunStatus::Killed => "killed",
            RunStatus::Unknown => "unknown",
        }
    }

    /// Maps what a format wrote (case-insensitive, surrounding blanks
    /// ignored): the vocabulary itself, MLflow's `RunStatus` names, the
    /// words TensorBoard's hparams and W&B readers report, Ray Tune's trial
    /// states (`TERMINATED`, `ERROR`, `PAUSED`), and the common
    /// synonyms a hand-written `run.toml` uses. Anything else is
    /// [`RunStatus::Unknown`].
    pub fn from_raw(raw: &str) -> RunStatus {
        match raw.trim().to_ascii_lowercase().as_str() {
            "running" | "scheduled" | "queued" | "pending" | "started" | "in_progress"
            | "paused" => RunStatus::Running,
            "finished" | "completed" | "complete" | "done" | "success" | "succeeded" | "ok"
            | "exited" | "terminated" => RunStatus::Finished,
            "failed" | "failure" | "error" | "errored" | "refused" => RunStatus::Failed,
            // `probably_dead`: Omniboard's word for a Sacred run whose
            // heartbeat stopped (the Sacred reader says it of one).
            "crashed" | "node_fail" | "lost" | "probably_dead" => RunStatus::Crashed,
            "killed"
            | "cancelled"
            | "canceled"
            | "stopped"
            | "timeout"
            | "timed_out"
            | "oom"
            | "aborted"
            | "interrupted_by_user" => RunStatus::Killed,
            _ => RunStatus::Unknown,
        }
    }

    /// Maps a word in `format`'s own vocabulary: [`RunStatus::from_raw`],
    /// except where a format means something else by a word. Sacred's
    /// `INTERRUPTED` is a run stopped by a keyboard interrupt (`killed`),
    /// where a job's `interrupted` says nothing of how it ended.
    pub fn of(format: crate::Format, raw: &str) -> RunStatus {
        match (format, raw.trim()) {
            (crate::Format::Sacred, "INTERRUPTED") => RunStatus::Killed,
            _ => RunStatus::from_raw(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus::{self, *};

    fn check(raw: &str, expected: RunStatus) {
        assert_eq!(RunStatus::from_raw(raw), expected, "{raw:?}");
    }

    #[test]
    fn every_format_word_maps_to_one_of_the_six() {
        for (raw, expected) in [
            // MLflow's RunStatus names (meta.yaml numbers and the SQLite store).
            ("RUNNING", Running),
            ("SCHEDULED", Running),
            ("FINISHED", Finished),
            ("FAILED", Failed),
            ("KILLED", Killed),
            ("UNKNOWN", Unknown),
            // The vocabulary itself, any case, blanks around.
            ("running", Running),
            (" Finished ", Finished),
            ("crashed", Crashed),
            ("killed", Killed),
            ("unknown", Unknown),
            // Job states, as a job's run records them.
            ("timeout", Killed),
            ("cancelled", Killed),
            ("oom", Killed),
            ("node_fail", Crashed),
            ("refused", Failed),
            ("queued", Running),
            // Hand-written run.toml words.
            ("completed", Finished),
            ("success", Finished),
            ("error", Failed),
            ("canceled", Killed),
            // Ray Tune's trial states (a paused trial waits to go on).
            ("TERMINATED", Finished),
            ("ERROR", Failed),
            ("PAUSED", Running),
            ("PENDING", Running),
            // Nothing mappable.
            ("", Unknown),
            ("interrupted", Unknown),
            ("🎉", Unknown),
            // Sacred's words (its own INTERRUPTED below).
            ("COMPLETED", Finished),
            ("TIMEOUT", Killed),
            ("QUEUED", Running),
            ("PROBABLY_DEAD", Crashed),
        ] {
            check(raw, expected);
        }
    }

    #[test]
    fn a_word_a_format_means_otherwise_maps_for_that_format_alone() {
        use crate::Format;
        for (format, raw, expected) in [
            (Format::Sacred, "INTERRUPTED", Killed),
            (Format::Sacred, "FAILED", Failed),
            (Format::Lab, "INTERRUPTED", Unknown),
            (Format::Lab, "interrupted", Unknown),
        ] {
            assert_eq!(RunStatus::of(format, raw), expected, "{format} {raw}");
        }
    }

    #[test]
    fn the_words_are_lowercase_and_distinct() {
        let all = [Running, Finished, Failed, Crashed, Killed, Unknown];
        let words: std::collections::BTreeSet<&str> = all.iter().map(|s| s.as_str()).collect();
        assert_eq!(words.len(), all.len());
        for s in all {
            assert_eq!(s.as_str(), s.as_str().to_ascii_lowercase());
            assert_eq!(RunStatus::from_raw(s.as_str()), s);
        }
    }
}
