//! The application driven directly, without a socket: discovery, the list
//! (filter, sort, page), details, a series, an artifact, an export, forget.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::sync::Arc;

use lab_core::list::{ListQuery, Sort};
use lab_core::series::SeriesQuery;
use lab_core::{Lab, LabConfig};
use lab_registry::{Registry, RunId};
use lab_test_support::fixture::Tree;

struct Setup {
    _scratch: tempfile::TempDir,
    lab: Arc<Lab>,
}

/// Three `lab` runs under one allowed root: `alpha` (lr 0.1, a video),
/// `beta` (lr 0.3), `gamma` (lr 0.2, no loss).
fn setup() -> Setup {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("runs");
    let tree = Tree::new(&root);
    tree.file("alpha/params.json", r#"{"lr": 0.1, "optimizer": "adam"}"#)
        .file(
            "alpha/metrics.jsonl",
            "{\"step\": 0, \"loss\": 2.0}\n{\"step\": 1, \"loss\": 1.5}\n{\"step\": 2, \"loss\": 0.5}\n",
        )
        .file("alpha/videos/clip.mp4", b"\x00\x00\x00\x18ftypmp42")
        .file("beta/params.json", r#"{"lr": 0.3, "optimizer": "sgd"}"#)
        .file("beta/metrics.jsonl", "{\"step\": 0, \"loss\": 3.0}\n{\"step\": 1, \"loss\": 0.9}\n")
        .file("gamma/params.json", r#"{"lr": 0.2}"#)
        .file("gamma/metrics.jsonl", "{\"step\": 0, \"acc\": 0.5}\n");
    let data = scratch.path().join("data");
    lab_registry::DataDir::new(&data).ensure().unwrap();
    let registry = Registry::open(&data, std::slice::from_ref(&root)).unwrap();
    let scanned = lab_core::discovery::scan(&registry, &Default::default()).unwrap();
    assert_eq!(scanned.report.imported.len(), 3, "{:?}", scanned.report);
    let mut config = LabConfig::new(Arc::new(registry), lab_fs::Allowlist::default());
    config.exports_dir = Some(data.join("exports"));
    Setup {
        _scratch: scratch,
        lab: Arc::new(Lab::new(config).unwrap()),
    }
}

fn titles(lab: &Arc<Lab>, query: &ListQuery) -> (Vec<String>, usize) {
    let page = lab.list(query).unwrap();
    let titles = page
        .rows
        .iter()
        .map(|s| {
            serde_json::to_value(&**s).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    (titles, page.total)
}

#[test]
fn the_list_takes_a_filter_expression() {
    let setup = setup();
    let lab = &setup.lab;
    let filtered = |expr: &str| {
        let query = ListQuery {
            filter: Some(lab_core::filter::Filter::parse(expr).unwrap()),
            ..ListQuery::default()
        };
        titles(lab, &query).0
    };
    assert_eq!(filtered("params.lr > 0.15 and metrics.loss < 1"), ["beta"]);
    assert_eq!(
        filtered("params.optimizer = 'adam' or name = \"gamma\""),
        ["alpha", "gamma"]
    );
    assert_eq!(filtered("params.lr IN (0.1, 0.2)"), ["alpha", "gamma"]);
    assert_eq!(filtered("name ILIKE 'B%'"), ["beta"]);
    assert_eq!(filtered("not metrics.loss < 1"), ["gamma"]);
    assert_eq!(
        filtered("format = 'lab' and created > '2000-01-01T00:00:00Z'").len(),
        3
    );
    let error = lab_core::filter::Filter::parse("params.lr > and").unwrap_err();
    assert_eq!(error.position, 12, "{error}");
}

#[test]
fn the_list_filters_sorts_and_pages() {
    // Held whole: the scratch directory lives as long as the test.
    let setup = setup();
    let lab = &setup.lab;
    let all = ListQuery::default();
    assert_eq!(titles(lab, &all).1, 3);
    // Sorted by a param, largest first.
    let by_lr = ListQuery {
        sort: Sort::Param("lr".into()),
        descending: true,
        ..ListQuery::default()
    };
    assert_eq!(titles(lab, &by_lr).0, ["beta", "gamma", "alpha"]);
    // By a metric's last value: a run without it comes last either way.
    let by_loss = ListQuery {
        sort: Sort::Metric("loss".into()),
        ..ListQuery::default()
    };
    assert_eq!(titles(lab, &by_loss).0, ["alpha", "beta", "gamma"]);
    let by_loss_desc = ListQuery {
        descending: true,
        ..by_loss.clone()
    };
    assert_eq!(titles(lab, &by_loss_desc).0, ["beta", "alpha", "gamma"]);
    // A page of one, the second.
    let page = ListQuery {
        limit: 1,
        offset: 1,
        ..by_lr.clone()
    };
    assert_eq!(titles(lab, &page), (vec!["gamma".to_owned()], 3));
    // Filters: text, video.
    let text = ListQuery {
        text: Some("alp".into()),
        ..ListQuery::default()
    };
    assert_eq!(titles(lab, &text), (vec!["alpha".to_owned()], 1));
    let no_video = ListQuery {
        has_video: Some(false),
        ..ListQuery::default()
    };
    assert_eq!(titles(lab, &no_video).0, ["beta", "gamma"]);
    let other_format = ListQuery {
        format: Some(lab_core::formats::Format::Tensorboard),
        ..ListQuery::default()
    };
    assert_eq!(titles(lab, &other_format), (vec![], 0));
    // The columns the runs have, most common first.
    let columns = lab.columns().unwrap();
    assert_eq!(columns["params"][0]["key"], "lr");
    assert_eq!(columns["params"][0]["runs"], 3);
    assert!(
        columns["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "loss" && m["runs"] == 2)
    );
}

/// A sorted list, a filtered one and the experiments are answered from
/// what the first ones computed (kept orders and picks) only while no
/// run changed: a run whose param changes moves at once in all three.
#[test]
fn kept_orders_and_picks_follow_a_run_that_changes() {
    let setup = setup();
    let lab = &setup.lab;
    let tree = Tree::new(setup._scratch.path().join("runs"));
    for run in ["alpha", "beta", "gamma"] {
        tree.file(&format!("{run}/run.toml"), "experiment = \"sweep\"\n");
    }
    lab.resummarise().unwrap();
    let by_lr = ListQuery {
        sort: Sort::Param("lr".into()),
        descending: true,
        ..ListQuery::default()
    };
    let high = ListQuery {
        filter: Some(lab_core::filter::Filter::parse("params.lr > 0.15").unwrap()),
        ..ListQuery::default()
    };
    let high_by_lr = ListQuery {
        filter: high.filter.clone(),
        ..by_lr.clone()
    };
    for _ in 0..2 {
        assert_eq!(titles(lab, &by_lr).0, ["beta", "gamma", "alpha"]);
        assert_eq!(titles(lab, &high), (vec!["beta".into(), "gamma".into()], 2));
        assert_eq!(titles(lab, &high_by_lr).0, ["beta", "gamma"]);
        let experiments = lab.experiments(&high).unwrap();
        assert_eq!(experiments.len(), 1, "{experiments:?}");
        assert_eq!(experiments[0].runs, 2);
    }
    // Recomputed the same, nothing moves.
    lab.resummarise().unwrap();
    assert_eq!(titles(lab, &by_lr).0, ["beta", "gamma", "alpha"]);
    tree.file("alpha/params.json", r#"{"lr": 0.5, "optimizer": "adam"}"#);
    // A run's reader looks for new data at most once a second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    lab.resummarise().unwrap();
    assert_eq!(titles(lab, &by_lr).0, ["alpha", "beta", "gamma"]);
    assert_eq!(titles(lab, &high).1, 3);
    assert_eq!(titles(lab, &high_by_lr).0, ["alpha", "beta", "gamma"]);
    assert_eq!(lab.experiments(&high).unwrap()[0].runs, 3);
    // A page of the kept order, past its end and within it.
    let page = ListQuery {
        limit: 1,
        offset: 2,
        ..high_by_lr.clone()
    };
    assert_eq!(titles(lab, &page), (vec!["gamma".to_owned()], 3));
    let past = ListQuery { offset: 3, ..page };
    assert_eq!(titles(lab, &past), (vec![], 3));
}

fn id_of(lab: &Arc<Lab>, title: &str) -> RunId {
    lab.runs()
        .unwrap()
        .iter()
        .find(|r| r.dir_name() == title)
        .unwrap()
        .id
        .clone()
}

#[test]
fn details_a_series_an_artifact_an_export_and_forget() {
    // Held whole: the scratch directory lives as long as the test.
    let setup = setup();
    let lab = &setup.lab;
    let alpha = lab.run(&id_of(lab, "alpha")).unwrap();
    assert_eq!(alpha.format, lab_core::formats::Format::Lab);
    let details = lab.details_of(&alpha)().unwrap();
    let json = serde_json::to_value(&details).unwrap();
    assert_eq!(json["params"]["optimizer"], "adam");
    assert_eq!(json["video"], "videos/clip.mp4");
    assert_eq!(json["has_video"], true);
    // The series, bucketed; an unknown one is None.
    let query = SeriesQuery {
        points: 2,
        from: None,
        to: None,
        axis: lab_core::formats::XAxis::Step,
    };
    let (tag, buckets) = lab.series(&alpha.id, "loss", query).unwrap().unwrap();
    assert!(tag.starts_with("\"m-"));
    assert_eq!(buckets.count, 3);
    assert!(lab.series(&alpha.id, "nope", query).unwrap().is_none());
    // An artifact: allowed and opened; a name the list refuses is refused.
    let name = lab.allowlists().any("videos/clip.mp4").unwrap();
    assert_eq!(lab.open_artifact(&alpha.id, &name).unwrap().len, 12);
    assert!(lab.allowlists().any("../params.json").is_err());
    // An export: a bundle in the exports directory; a second of the same
    // name is refused.
    let info = lab.export(&alpha.id, Some("alpha.tar")).unwrap();
    assert!(info.size > 0);
    assert!(matches!(
        lab.export(&alpha.id, Some("alpha.tar")),
        Err(lab_core::ExportError::Bundle(_))
    ));
    // Forget: gone from the list, the files untouched.
    let gone = lab.forget(&alpha.id).unwrap();
    assert!(gone.root.join("params.json").exists());
    assert_eq!(lab.list(&ListQuery::default()).unwrap().total, 2);
    assert!(matches!(
        lab.run(&alpha.id),
        Err(lab_core::Error::Registry(_))
    ));
}

/// A data dir from before hparams trials were folded holds the trial as a
/// run of its own: the next walk forgets it (its params are its parent's
/// now), and the parent shows them beside its curves.
#[test]
fn an_hparams_trial_registered_before_the_folding_is_let_go() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().canonicalize().unwrap().join("runs");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lab-formats/tests/data/tb-hparams");
    // The tensorboardX fixture, copied file by file into scratch.
    let tree = Tree::new(&root);
    let mut stack = vec![fixture.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("tfevents"))
            {
                let rel = path.strip_prefix(&fixture).unwrap();
                tree.file(
                    &format!("tb/{}", rel.display()),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    let trial = std::fs::read_dir(root.join("tb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("17"))
        .unwrap();
    let data = scratch.path().join("data");
    lab_registry::DataDir::new(&data).ensure().unwrap();
    let registry = Registry::open(&data, std::slice::from_ref(&root)).unwrap();
    // What an earlier release registered: the trial as a run.
    let old = lab_registry::Candidate {
        dir: trial.clone(),
        format: "tensorboard".to_owned(),
        entry: None,
        name: None,
    };
    registry.register(&[old], true).unwrap();
    assert_eq!(registry.runs().unwrap().len(), 1);
    lab_core::discovery::scan(&registry, &Default::default()).unwrap();
    let runs = registry.runs().unwrap();
    let roots: Vec<&std::path::Path> = runs.iter().map(|r| r.root.as_path()).collect();
    assert!(!roots.contains(&trial.as_path()), "{roots:?}");
    assert!(roots.contains(&root.join("tb").as_path()), "{roots:?}");
    // A second walk does not bring it back.
    lab_core::discovery::scan(&registry, &Default::default()).unwrap();
    assert!(!registry.runs().unwrap().iter().any(|r| r.root == trial));
}

/// A Lab over `data` with the allowed root `root`, its runs found.
fn lab_over(data: &std::path::Path, root: &std::path::Path) -> Arc<Lab> {
    lab_registry::DataDir::new(data).ensure().unwrap();
    let registry = Registry::open(data, &[root.to_path_buf()]).unwrap();
    assert!(registry.warnings().is_empty(), "{:?}", registry.warnings());
    lab_core::discovery::scan(&registry, &Default::default()).unwrap();
    let mut config = LabConfig::new(Arc::new(registry), lab_fs::Allowlist::default());
    config.exports_dir = Some(data.join("exports"));
    Arc::new(Lab::new(config).unwrap())
}

fn ids(lab: &Arc<Lab>) -> Vec<String> {
    lab.runs()
        .unwrap()
        .iter()
        .map(|r| r.id.to_string())
        .collect()
}

#[test]
fn the_same_runs_have_the_same_ids_in_two_data_dirs() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("runs");
    // A run needs its own files (SPEC §6): params.json alone is none.
    Tree::new(&root)
        .file("alpha/run.json", "{}")
        .file("alpha/params.json", r#"{"lr": 0.1}"#)
        .file("beta/run.json", "{}")
        .file("beta/params.json", r#"{"lr": 0.3}"#);
    let first = lab_over(&scratch.path().join("data-1"), &root);
    let second = lab_over(&scratch.path().join("data-2"), &root);
    assert_eq!(ids(&first).len(), 2);
    assert_eq!(ids(&first), ids(&second));
    // And imported explicitly into a third, the same again.
    let third_data = scratch.path().join("data-3");
    lab_registry::DataDir::new(&third_data).ensure().unwrap();
    let third = Registry::open(&third_data, std::slice::from_ref(&root)).unwrap();
    let alpha = third.import(&root.join("alpha"), None).unwrap();
    assert!(ids(&first).contains(&alpha.id.to_string()));
}

#[test]
fn a_data_dir_from_before_stable_ids_keeps_its_old_ids_working() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("runs");
    Tree::new(&root)
        .file("alpha/params.json", r#"{"lr": 0.1}"#)
        .file("alpha/metrics.jsonl", "{\"step\": 0, \"loss\": 2.0}\n")
        .file("beta/params.json", r#"{"lr": 0.3}"#);
    let root = root.canonicalize().unwrap();
    // As a version before stable ids left it: random ids, version 2.
    let data = scratch.path().join("data");
    lab_registry::DataDir::new(&data).ensure().unwrap();
    let old = serde_json::json!({"version": 2, "forgotten": [], "roots": [], "runs": [
        {"id": "alpha-3f9c2d", "root": root.join("alpha"), "imported_at": 5, "format": "lab"},
        {"id": "beta-00aa11", "root": root.join("beta"), "imported_at": 5, "format": "lab"},
    ]});
    std::fs::write(data.join("registry.json"), old.to_string()).unwrap();
    let lab = lab_over(&data, &root);
    let old_alpha = RunId::parse("alpha-3f9c2d").unwrap();
    // Listed once each, under the new ids.
    let listed = ids(&lab);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        !listed.iter().any(|id| id.ends_with("-3f9c2d")),
        "{listed:?}"
    );
    let rows = lab.list(&ListQuery::default()).unwrap();
    assert_eq!(rows.total, 2);
    // The old id finds the run, under its id now, for everything.
    let alpha = lab.run(&old_alpha).unwrap();
    assert_ne!(alpha.id, old_alpha);
    assert!(listed.contains(&alpha.id.to_string()));
    assert_eq!(alpha.root, root.join("alpha"));
    let query = SeriesQuery {
        points: 10,
        from: None,
        to: None,
        axis: lab_core::formats::XAxis::Step,
    };
    assert!(lab.series(&old_alpha, "loss", query).unwrap().is_some());
    let name = lab.allowlists().any("params.json").unwrap();
    assert!(lab.open_artifact(&old_alpha, &name).is_ok());
    let bundle = lab.export(&old_alpha, None).unwrap();
    assert!(
        bundle.name.as_str().starts_with(alpha.id.as_str()),
        "{}",
        bundle.name.as_str()
    );
    // Forgotten by its old id: gone under both, and a walk leaves it so.
    let gone = lab.forget(&old_alpha).unwrap();
    assert_eq!(gone.id, alpha.id);
    assert!(lab.run(&old_alpha).is_err());
    assert!(lab.run(&alpha.id).is_err());
    let again = lab_over(&data, &root);
    assert_eq!(ids(&again).len(), 1);
}

/// A run a job wrote beneath its job's run (registered as a run of its
/// own) is read under the job's single-link rule: a file there with a
/// second name — a hard link, which could lead outside — is neither served
/// nor read, by either open, while the same file with one name is.
#[test]
fn a_run_a_job_wrote_serves_no_hard_link() {
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().canonicalize().unwrap();
    let data = base.join("data");
    lab_registry::DataDir::new(&data).ensure().unwrap();
    let child = data.join("runs/job-1/job/child");
    let tree = Tree::new(&child);
    tree.file("metrics.jsonl", "{\"step\": 0, \"loss\": 1.0}\n")
        .file("notes.md", "mine\n");
    // The canary lies outside every run; the job's file is a second name
    // of it.
    std::fs::write(base.join("canary.txt"), "CANARY\n").unwrap();
    std::fs::hard_link(base.join("canary.txt"), child.join("summary.json")).unwrap();
    // The jobs' runs are an allowed root, as the server makes them.
    let registry = Registry::open(&data, &[data.join("runs")]).unwrap();
    let found = lab_registry::Candidate {
        dir: child.clone(),
        format: "lab".to_owned(),
        entry: None,
        name: None,
    };
    // As the Lab registers what a job wrote (`Lab::register_children`).
    let report = registry
        .register_beneath(&data.join("runs/job-1/job"), &[found])
        .unwrap();
    assert_eq!(report.imported.len(), 1, "{report:?}");
    let id = registry.runs().unwrap()[0].id.clone();
    let mut config = LabConfig::new(Arc::new(registry), lab_fs::Allowlist::default());
    config.job_runs = Some(data.join("runs"));
    let lab = Arc::new(Lab::new(config).unwrap());
    let allow = lab.allowlists();
    let mine = allow.any("notes.md").unwrap();
    let linked = allow.any("summary.json").unwrap();
    assert_eq!(lab.open_artifact(&id, &mine).unwrap().len, 5);
    assert!(lab.open_artifact(&id, &linked).is_err());
    if let Some(cached) = lab.open_artifact_cached(&id, &linked) {
        assert!(cached.is_err());
    }
    assert_eq!(
        std::fs::read_to_string(base.join("canary.txt")).unwrap(),
        "CANARY\n"
    );
}

/// `sort=experiment` keeps each experiment's runs together even where two
/// experiments share a name (two sweeps started in the same second, in two
/// projects): by name, then by id, then newest first.
#[test]
fn sorted_by_experiment_two_groups_of_one_name_stay_apart() {
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().canonicalize().unwrap();
    let root = base.join("runs");
    let tree = Tree::new(&root);
    for (job, created) in [
        ("x/2026-01-01/10-00-00/0", "2026-01-03T00:00:00Z"),
        ("y/2026-01-01/10-00-00/0", "2026-01-02T00:00:00Z"),
        ("x/2026-01-01/10-00-00/1", "2026-01-01T00:00:00Z"),
    ] {
        tree.file(&format!("{job}/.hydra/config.yaml"), "lr: 0.1\n")
            .file(&format!("{job}/.hydra/overrides.yaml"), "- lr=0.1\n")
            .file(
                &format!("{job}/run.json"),
                format!("{{\"name\": \"{job}\", \"created\": \"{created}\"}}"),
            );
    }
    for sweep in ["x", "y"] {
        tree.file(
            &format!("{sweep}/2026-01-01/10-00-00/multirun.yaml"),
            "hydra: {}\n",
        );
    }
    let data = base.join("data");
    let lab = lab_over(&data, &root);
    let page = lab
        .list(&ListQuery {
            sort: Sort::Experiment,
            ..ListQuery::default()
        })
        .unwrap();
    let rows: Vec<(String, String)> = page
        .rows
        .iter()
        .map(|s| {
            let s = serde_json::to_value(&**s).unwrap();
            assert_eq!(s["experiment"]["name"], "2026-01-01/10-00-00", "{s}");
            let id = s["experiment"]["id"].as_str().unwrap().to_owned();
            (id, s["name_raw"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "x/2026-01-01/10-00-00/0",
            "x/2026-01-01/10-00-00/1",
            "y/2026-01-01/10-00-00/0"
        ],
        "{rows:?}"
    );
}
