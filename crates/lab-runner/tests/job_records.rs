//! Job records across versions: the version-1 records today's Lab wrote
//! (`tests/fixtures/job-records-v1`, copied from a real `lab serve`) are
//! listed with SPEC §4's state words, a running one is marked interrupted
//! and rewritten as version 2, and a record that cannot be read is listed
//! as an error entry — none is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lab_runner::jobs::{JobEntry, JobManager, JobRecord, RECORD_VERSION};
use lab_runner::{JobState, Runner, RunnerConfig};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/job-records-v1")
}

/// A job manager over `data` (no helper: nothing runs).
fn manager(data: &Path) -> JobManager {
    let config = RunnerConfig {
        programs: vec!["true".into()],
        env_allow: Vec::new(),
        allow_network: false,
        allow_workflow_exec: false,
        limits: lab_runner::Limits::default(),
        helper: data.join("no-helper"),
        default_timeout: Duration::from_secs(60),
        read_paths: Vec::new(),
        devices: Vec::new(),
        log_max_bytes: lab_runner::runner::DEFAULT_LOG_MAX_BYTES,
        lab_secrets: Vec::new(),
        data_dir: Some(data.to_path_buf()),
        config_file: None,
        key_file: None,
        cgroup: lab_runner::cgroup::Wanted::default(),
        backend: Default::default(),
        path: lab_runner::runner::RUNNER_PATH.to_owned(),
    };
    let (runner, _) = Runner::new(config).unwrap();
    let registry = Arc::new(lab_registry::Registry::open(data, &[]).unwrap());
    JobManager::open(runner, registry, data).unwrap()
}

/// `DATA/jobs` holding the version-1 fixtures and `extra` files.
fn data_dir_with(extra: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().canonicalize().unwrap().join("data");
    let jobs = data.join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(&path, jobs.join(path.file_name().unwrap())).unwrap();
        }
    }
    for (name, text) in extra {
        std::fs::write(jobs.join(name), text).unwrap();
    }
    (tmp, data)
}

#[test]
fn version_1_records_read_with_the_new_state_words() {
    for (file, state, exit) in [
        ("echo-42b8c0.json", JobState::Finished, json!({"code": 0})),
        ("sh-f2bf13.json", JobState::Failed, json!({"code": 3})),
        (
            "sh-11b9da.json",
            JobState::Timeout,
            json!({"timed_out": true}),
        ),
        ("sh-5a0e77.json", JobState::Running, Value::Null),
    ] {
        let text = std::fs::read_to_string(fixtures().join(file)).unwrap();
        let record = JobRecord::parse(&text).unwrap();
        let recorded = serde_json::to_value(&record.exit).unwrap();
        assert_eq!((record.state, &recorded), (state, &exit), "{file}");
        assert_eq!(record.version, RECORD_VERSION);
        assert_eq!(record.backend, "local");
        assert_eq!((record.exec_path, record.owner), (None, None));
        // Written again, it is a version-2 record that reads the same.
        let again = serde_json::to_string(&JobRecord::parse(&text).unwrap()).unwrap();
        let reread = JobRecord::parse(&again).unwrap();
        assert_eq!(reread, JobRecord::parse(&text).unwrap(), "{file}");
        let value: Value = serde_json::from_str(&again).unwrap();
        assert_eq!(value["version"], 2);
        assert_eq!(value["state"], state.as_str());
    }
}

#[test]
fn every_record_is_listed_and_none_is_skipped() {
    let (_tmp, data) = data_dir_with(&[
        ("broken.json", "{\"version\": 1, \"id\": "),
        ("future.json", "{\"version\": 9, \"id\": \"future\"}"),
        // Not records: the writer's temporary files and the helper's reports.
        (".echo-42b8c0.json.tmp", "{"),
        ("echo-42b8c0.report", "{}"),
    ]);
    let jobs = manager(&data);
    let listed = jobs.list();
    let mut states: Vec<(String, String)> = listed
        .iter()
        .map(|entry| {
            let value = serde_json::to_value(entry).unwrap();
            (
                entry.id().to_owned(),
                value["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    states.sort();
    let expected: Vec<(String, String)> = [
        ("broken", "error"),
        ("echo-42b8c0", "finished"),
        ("future", "error"),
        ("sh-11b9da", "timeout"),
        ("sh-5a0e77", "interrupted"),
        ("sh-f2bf13", "failed"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(states, expected);
    for entry in &listed {
        match entry {
            JobEntry::Unreadable(bad) => {
                let says = if bad.id == "future" {
                    "version 9"
                } else {
                    "not a job record"
                };
                assert!(bad.error.contains(says), "{bad:?}");
                assert!(jobs.get(&bad.id).is_none());
            }
            JobEntry::Record(record) => {
                assert_eq!(jobs.get(&record.id).as_ref(), Some(record.as_ref()));
            }
        }
    }
    // The interrupted one was rewritten as version 2; the others are left
    // as they were written.
    let rewritten: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("jobs/sh-5a0e77.json")).unwrap())
            .unwrap();
    assert_eq!(rewritten["version"], 2);
    assert_eq!(rewritten["state"], "interrupted");
    assert_eq!(rewritten["backend"], "local");
    let untouched = std::fs::read(data.join("jobs/echo-42b8c0.json")).unwrap();
    assert_eq!(
        untouched,
        std::fs::read(fixtures().join("echo-42b8c0.json")).unwrap()
    );
    // And a second start reads the rewritten record as it is.
    let again = manager(&data);
    assert_eq!(again.get("sh-5a0e77").unwrap().state, JobState::Interrupted);
}

#[test]
fn an_error_entry_says_state_error_and_why() {
    let (_tmp, data) = data_dir_with(&[("zz-broken.json", "not json")]);
    let listed = manager(&data).list();
    let entry = listed.iter().find(|e| e.id() == "zz-broken").unwrap();
    let value = serde_json::to_value(entry).unwrap();
    assert_eq!(value["state"], "error");
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("not a job record")
    );
    assert!(value["created"].as_u64().unwrap() > 0);
    assert!(entry.record().is_none());
}

#[test]
fn hostile_record_files_are_errors_and_never_stop_the_lab_or_write_elsewhere() {
    let record = |id: &str| {
        format!(
            "{{\"version\": 1, \"id\": {id:?}, \"run_id\": \"x\", \"program\": \"p\", \"args\": [], \"env_names\": [], \"state\": \"running\", \"exit\": null, \"isolation\": null, \"network_allowed\": false, \"created\": 1, \"ended\": null}}"
        )
    };
    let (tmp, data) = data_dir_with(&[
        // An id that climbs out of the jobs directory, and one that is
        // another record's: rewriting either would write elsewhere.
        ("evil.json", &record("../../evil")),
        ("mismatch.json", &record("other")),
    ]);
    let jobs = data.join("jobs");
    // A FIFO (nothing ever writes it), a link to a canary, and a file past
    // the cap (sparse: no disk).
    lab_fs::fuzz::make_fifo(&jobs.join("fifo.json")).unwrap();
    let canary = tmp.path().join("canary.json");
    std::fs::write(&canary, record("canary")).unwrap();
    std::os::unix::fs::symlink(&canary, jobs.join("canary.json")).unwrap();
    std::fs::File::create(jobs.join("huge.json"))
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let opened = data.clone();
    std::thread::spawn(move || {
        let listed: Vec<(String, String)> = manager(&opened)
            .list()
            .iter()
            .filter_map(|entry| match entry {
                JobEntry::Unreadable(bad) => Some((bad.id.clone(), bad.error.clone())),
                JobEntry::Record(_) => None,
            })
            .collect();
        let _ = tx.send(listed);
    });
    let mut errors = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("opening the job records hung");
    errors.sort();
    let says: Vec<(&str, &str)> = errors
        .iter()
        .map(|(id, e)| (id.as_str(), e.as_str()))
        .collect();
    for (id, needle) in [
        ("canary", "not a regular file"),
        ("evil", "is not its file's name"),
        ("fifo", "not a regular file"),
        ("huge", "larger than"),
        ("mismatch", "is not its file's name"),
    ] {
        assert!(
            says.iter().any(|(i, e)| *i == id && e.contains(needle)),
            "{id}: {says:?}"
        );
    }
    // Nothing was written for them: not beside the data dir, not as
    // another record, not through the link.
    assert!(!tmp.path().join("evil.json").exists());
    assert!(!data.join("evil.json").exists());
    assert!(!jobs.join("other.json").exists());
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), record("canary"));
}
