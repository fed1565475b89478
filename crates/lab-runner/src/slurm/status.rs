//! What Slurm says about a job: `squeue --json` (Slurm 22.05's OpenAPI
//! v0.0.38, where `job_state` is a string, and later versions, where it is
//! a list and numbers may be `{"set", "number"}` objects), or `scontrol
//! show job -o` when `squeue --json` cannot answer. Pure functions: the
//! answers are parsed here, asked for in `mod.rs`.

use serde_json::Value;

/// One job as Slurm sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStatus {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `TIMEOUT`, …
    pub state: String,
    /// Why it waits (`PartitionDown`, `Resources`, `Priority`), or `None`.
    pub reason: Option<String>,
    /// The node(s) it runs on.
    pub node: Option<String>,
    /// Its partition.
    pub partition: Option<String>,
    /// Its priority (for its place in the queue).
    pub priority: Option<u64>,
    /// Its numeric id.
    pub id: u64,
}

/// Where a job is, in the Lab's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting to start.
    Queued,
    /// Started, not ended.
    Running,
    /// Ended: Slurm's final state.
    Ended(String),
}

impl JobStatus {
    /// Which phase Slurm's state puts the job in: an unknown state is
    /// taken as running (it is not a final one Slurm documents).
    pub fn phase(&self) -> Phase {
        match self.state.as_str() {
            "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" => {
                Phase::Queued
            }
            "COMPLETED" | "FAILED" | "TIMEOUT" | "CANCELLED" | "NODE_FAIL" | "BOOT_FAIL"
            | "OUT_OF_MEMORY" | "PREEMPTED" | "DEADLINE" => Phase::Ended(self.state.clone()),
            _ => Phase::Running,
        }
    }
}

/// A number as either version writes it: `7`, or `{"set": true,
/// "number": 7}`.
fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::Object(o) if o.get("set").and_then(Value::as_bool) != Some(false) => {
            o.get("number").and_then(Value::as_u64)
        }
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "None" && *s != "(null)")
        .map(str::to_owned)
}

fn job_status(job: &Value) -> Option<JobStatus> {
    let state = match job.get("job_state")? {
        Value::Array(states) => states.first()?.as_str()?.to_owned(),
        state => state.as_str()?.to_owned(),
    };
    Some(JobStatus {
        state,
        reason: job.get("state_reason").and_then(text),
        node: job.get("nodes").and_then(text),
        partition: job.get("partition").and_then(text),
        priority: job.get("priority").and_then(number),
        id: job.get("job_id").and_then(number)?,
    })
}

/// Every job in a `squeue --json` answer; `Err` when it is not one.
pub fn parse_squeue(answer: &[u8]) -> Result<Vec<JobStatus>, String> {
    let value: Value = serde_json::from_slice(answer)
        .map_err(|e| format!("squeue --json answered something else: {e}"))?;
    let jobs = value
        .get("jobs")
        .and_then(Value::as_array)
        .ok_or("squeue --json answered without a job list")?;
    Ok(jobs.iter().filter_map(job_status).collect())
}

/// One job from `scontrol show job -o ID` (`Key=Value` words on one line;
/// values hold no spaces but `Reason`'s may: it runs to the next ` Key=`).
pub fn parse_scontrol(answer: &str) -> Option<JobStatus> {
    let line = answer.lines().find(|l| l.contains("JobId="))?;
    let mut fields: Vec<(&str, String)> = Vec::new();
    for word in line.split(' ') {
        match word.split_once('=') {
            Some((key, value))
                if !key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                fields.push((key, value.to_owned()));
            }
            _ => {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(word);
                }
            }
        }
    }
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    };
    let filled = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty() && *v != "None" && *v != "(null)")
            .map(str::to_owned)
    };
    Some(JobStatus {
        state: get("JobState")?.to_owned(),
        reason: filled(get("Reason")),
        node: filled(get("NodeList")),
        partition: filled(get("Partition")),
        priority: get("Priority").and_then(|p| p.parse().ok()),
        id: get("JobId")?.parse().ok()?,
    })
}

/// The place of `job` among `pending` (a partition's pending jobs): 1 +
/// those Slurm would start first (higher priority, or the same and an
/// older id).
pub fn position(job: &JobStatus, pending: &[JobStatus]) -> u32 {
    let ahead = pending
        .iter()
        .filter(|other| other.id != job.id && other.phase() == Phase::Queued)
        .filter(|other| {
            let (a, b) = (other.priority.unwrap_or(0), job.priority.unwrap_or(0));
            a > b || (a == b && other.id < job.id)
        })
        .count();
    u32::try_from(ahead).unwrap_or(u32::MAX).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_json_of_either_shape_reads_the_same() {
        // Slurm 22.05 (v0.0.38): strings and bare numbers.
        let old = br#"{"meta":{},"errors":[],"jobs":[{"job_id":12,"job_state":"PENDING",
            "state_reason":"PartitionDown","nodes":"","partition":"lab","priority":4294901757}]}"#;
        // Slurm 23.11+: a list of states and number objects.
        let new = br#"{"jobs":[{"job_id":{"set":true,"infinite":false,"number":12},
            "job_state":["PENDING"],"state_reason":"PartitionDown","nodes":"",
            "partition":"lab","priority":{"set":true,"infinite":false,"number":4294901757}}]}"#;
        for answer in [&old[..], &new[..]] {
            let jobs = parse_squeue(answer).unwrap();
            assert_eq!(
                jobs,
                [JobStatus {
                    state: "PENDING".into(),
                    reason: Some("PartitionDown".into()),
                    node: None,
                    partition: Some("lab".into()),
                    priority: Some(4_294_901_757),
                    id: 12,
                }]
            );
            assert_eq!(jobs[0].phase(), Phase::Queued);
        }
        assert!(parse_squeue(b"squeue: error: Invalid user").is_err());
        assert!(parse_squeue(b"{}").is_err());
        assert_eq!(parse_squeue(br#"{"jobs":[]}"#).unwrap(), []);
    }

    #[test]
    fn scontrol_one_line_reads_with_spaces_in_the_reason() {
        let line = "JobId=7 JobName=lab-x UserId=root(0) Priority=4294901759 Nice=0 \
                    JobState=RUNNING Reason=None Dependency=(null) Partition=lab \
                    NodeList=node1 BatchHost=node1\n";
        let status = parse_scontrol(line).unwrap();
        assert_eq!(status.state, "RUNNING");
        assert_eq!(status.reason, None);
        assert_eq!(status.node.as_deref(), Some("node1"));
        assert_eq!(status.id, 7);
        assert_eq!(status.phase(), Phase::Running);
        let held = "JobId=8 JobState=PENDING Reason=launch failed requeued held Partition=lab";
        let status = parse_scontrol(held).unwrap();
        assert_eq!(
            status.reason.as_deref(),
            Some("launch failed requeued held")
        );
        assert!(parse_scontrol("slurm_load_jobs error: Invalid job id specified").is_none());
    }

    #[test]
    fn final_states_end_the_job_and_the_queue_has_an_order() {
        for state in [
            "COMPLETED",
            "FAILED",
            "TIMEOUT",
            "CANCELLED",
            "NODE_FAIL",
            "OUT_OF_MEMORY",
        ] {
            let s = JobStatus {
                state: state.into(),
                ..JobStatus::default()
            };
            assert_eq!(s.phase(), Phase::Ended(state.into()));
        }
        let job = |id, priority| JobStatus {
            state: "PENDING".into(),
            priority: Some(priority),
            id,
            ..JobStatus::default()
        };
        let pending = [job(1, 10), job(2, 50), job(3, 10), job(4, 10)];
        assert_eq!(position(&pending[2], &pending), 3);
        assert_eq!(position(&pending[1], &pending), 1);
        assert_eq!(position(&pending[3], &pending), 4);
    }
}
