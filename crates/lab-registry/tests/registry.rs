//! The registry's import rules, persistence and concurrency.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use lab_registry::{Error, Registry};

struct Env {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    data: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("runs");
    for dir in [
        "runs/a",
        "runs/b",
        "runs/c/nested",
        "runs-evil/x",
        "outside/y",
    ] {
        std::fs::create_dir_all(base.join(dir)).unwrap();
    }
    std::fs::write(root.join("a/notes.md"), "keep me").unwrap();
    std::fs::write(root.join("file.txt"), "not a dir").unwrap();
    std::fs::create_dir(root.join(".hidden")).unwrap();
    symlink(base.join("outside/y"), root.join("link-out")).unwrap();
    symlink(root.join("b"), root.join("link-in")).unwrap();
    Env {
        data: base.join("data"),
        _tmp: tmp,
        base,
        root,
    }
}

impl Env {
    fn registry(&self) -> Registry {
        Registry::open(&self.data, std::slice::from_ref(&self.root)).unwrap()
    }
}

#[derive(Debug)]
enum Expect {
    /// Imported, with this canonical root (relative to base).
    Ok(&'static str),
    Outside,
    IsRoot,
    Relative,
    NotFound,
    NotADirectory,
}

fn check(env: &Env, path: &Path, expected: Expect) {
    let registry = env.registry();
    let result = registry.import(path, None);
    match (&expected, &result) {
        (Expect::Ok(rel), Ok(run)) => assert_eq!(run.root, env.base.join(rel)),
        (Expect::Outside, Err(Error::OutsideAllowedRoots))
        | (Expect::IsRoot, Err(Error::IsAllowedRoot))
        | (Expect::Relative, Err(Error::RelativePath))
        | (Expect::NotFound, Err(Error::NotFound))
        | (Expect::NotADirectory, Err(Error::NotADirectory)) => {}
        _ => panic!("{path:?}: expected {expected:?}, got {result:?}"),
    }
}

#[test]
fn import_only_accepts_real_paths_under_an_allowed_root() {
    let e = env();
    let cases: Vec<(PathBuf, Expect)> = vec![
        (e.root.join("a"), Expect::Ok("runs/a")),
        (e.root.join("c/nested"), Expect::Ok("runs/c/nested")),
        // Stored canonical: `..` and inner links resolved before checking.
        (e.root.join("c/../b"), Expect::Ok("runs/b")),
        // A string-prefix sibling is not under the root (Jupyter CVE-2026-35397).
        (e.base.join("runs-evil/x"), Expect::Outside),
        (e.root.join("../runs-evil/x"), Expect::Outside),
        (e.root.join("../outside/y"), Expect::Outside),
        (e.root.join("link-out"), Expect::Outside),
        (PathBuf::from("/etc"), Expect::Outside),
        (PathBuf::from("/"), Expect::Outside),
        (e.root.clone(), Expect::IsRoot),
        (e.root.join("c/.."), Expect::IsRoot),
        (PathBuf::from("runs/a"), Expect::Relative),
        (PathBuf::from(""), Expect::Relative),
        (e.root.join("missing"), Expect::NotFound),
        (e.root.join("file.txt/x"), Expect::NotFound),
        (e.root.join("file.txt"), Expect::NotADirectory),
    ];
    for (path, expected) in cases {
        check(&e, &path, expected);
    }
    // A link inside the root to a run inside the root is stored as its target.
    let linked = e.registry().import(&e.root.join("link-in"), None);
    assert!(
        matches!(linked, Err(Error::AlreadyRegistered(_))),
        "{linked:?}"
    );
}

#[test]
fn ids_are_validated_and_unique() {
    let e = env();
    let r = e.registry();
    let a = r.import(&e.root.join("a"), Some("exp-1")).unwrap();
    assert_eq!(a.id.as_str(), "exp-1");
    assert!(matches!(
        r.import(&e.root.join("b"), Some("exp-1")),
        Err(Error::IdTaken(_))
    ));
    assert!(matches!(
        r.import(&e.root.join("b"), Some("../x")),
        Err(Error::InvalidId(_))
    ));
    assert!(matches!(
        r.import(&e.root.join("b"), Some("Exp")),
        Err(Error::InvalidId(_))
    ));
    assert!(
        matches!(r.import(&e.root.join("a"), None), Err(Error::AlreadyRegistered(id)) if id.as_str() == "exp-1")
    );
    let b = r.import(&e.root.join("b"), None).unwrap();
    assert!(b.id.as_str().starts_with("b-"));
    assert_eq!(r.get(&b.id).unwrap(), b);
}

#[test]
fn forgetting_never_touches_the_run_files() {
    let e = env();
    let r = e.registry();
    let run = r.import(&e.root.join("a"), None).unwrap();
    r.forget(&run.id).unwrap();
    assert!(matches!(r.get(&run.id), Err(Error::UnknownRun)));
    assert!(matches!(r.forget(&run.id), Err(Error::UnknownRun)));
    assert_eq!(
        std::fs::read_to_string(e.root.join("a/notes.md")).unwrap(),
        "keep me"
    );
}

#[test]
fn the_registry_persists_and_other_instances_see_changes() {
    let e = env();
    let first = e.registry();
    let second = e.registry();
    let run = first.import(&e.root.join("a"), None).unwrap();
    // The second instance (a server, say) sees the CLI's import without restarting.
    assert_eq!(second.get(&run.id).unwrap(), run);
    second.forget(&run.id).unwrap();
    assert!(first.runs().unwrap().is_empty());
    let again = first.import(&e.root.join("b"), None).unwrap();
    assert_eq!(e.registry().runs().unwrap().as_slice(), &[again]);
}

#[test]
fn a_corrupt_registry_is_an_error_naming_the_file() {
    let e = env();
    e.registry().import(&e.root.join("a"), None).unwrap();
    let file = e.data.join("registry.json");
    for bad in [
        "{not json",
        "",
        r#"{"version": 99, "runs": []}"#,
        r#"{"version": 1, "runs": [{"id": "BAD", "root": "/x", "imported_at": 0}]}"#,
        r#"{"version": 1, "runs": [{"id": "a", "root": "x", "imported_at": 0}]}"#,
        r#"{"version": 1, "runs": [], "extra": 1}"#,
    ] {
        std::fs::write(&file, bad).unwrap();
        let err = Registry::open(&e.data, std::slice::from_ref(&e.root)).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{bad}: {err:?}");
        assert!(err.to_string().contains(file.to_str().unwrap()), "{err}");
        // Never silently emptied: the file is left as it was.
        assert_eq!(std::fs::read_to_string(&file).unwrap(), bad);
    }
}

#[test]
fn registering_found_runs_checks_each_and_forgotten_ones_stay_forgotten() {
    use lab_registry::Candidate;
    let e = env();
    let r = e.registry();
    let found: Vec<Candidate> = ["a", "b", "c", "link-in", "link-out"]
        .iter()
        .map(|d| Candidate {
            dir: e.root.join(d),
            format: "lab".to_owned(),
            entry: None,
            name: None,
        })
        .collect();
    let report = r.register(&found, false).unwrap();
    let rel = |runs: &[lab_registry::RunRecord]| {
        let mut v: Vec<String> = runs
            .iter()
            .map(|run| {
                run.root
                    .strip_prefix(&e.base)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    // link-in resolves to runs/b, so it is registered once; link-out leaves the root.
    assert_eq!(rel(&report.imported), ["runs/a", "runs/b", "runs/c"]);
    assert!(
        report
            .imported
            .iter()
            .all(|run| run.format.as_deref() == Some("lab"))
    );
    let skipped: Vec<&Path> = report.skipped.iter().map(|(p, _)| p.as_path()).collect();
    assert_eq!(skipped, [e.root.join("link-out").as_path()]);
    assert!(matches!(report.skipped[0].1, Error::OutsideAllowedRoots));
    // A second walk finds nothing new.
    assert!(r.register(&found, false).unwrap().imported.is_empty());
    assert_eq!(r.runs().unwrap().len(), 3);
    // A forgotten run is not brought back by a walk, even by a new process...
    let a = r
        .runs()
        .unwrap()
        .iter()
        .find(|x| x.root.ends_with("runs/a"))
        .cloned()
        .unwrap();
    r.forget(&a.id).unwrap();
    assert!(r.register(&found, false).unwrap().imported.is_empty());
    assert!(
        e.registry()
            .register(&found, false)
            .unwrap()
            .imported
            .is_empty()
    );
    assert_eq!(r.runs().unwrap().len(), 2);
    // ...only by an explicit import, which also lists what was known.
    let again = r.register(&found[..2], true).unwrap();
    assert_eq!(rel(&again.imported), ["runs/a"]);
    assert_eq!(rel(&again.existing), ["runs/b"]);
    assert_eq!(r.runs().unwrap().len(), 3);
}

#[test]
fn allowed_roots_are_remembered_for_later_commands() {
    let e = env();
    let r = e.registry();
    r.remember_roots(std::slice::from_ref(&e.root)).unwrap();
    // A later command given no root still accepts a run under it.
    let later = Registry::open(&e.data, &[]).unwrap();
    assert_eq!(later.allowed_roots(), std::slice::from_ref(&e.root));
    later.import(&e.root.join("a"), None).unwrap();
    // A remembered root that is gone is simply not allowed any more.
    let gone = e.base.join("gone");
    std::fs::create_dir(&gone).unwrap();
    later.remember_roots(std::slice::from_ref(&gone)).unwrap();
    std::fs::remove_dir(&gone).unwrap();
    let after = Registry::open(&e.data, &[]).unwrap();
    assert_eq!(after.allowed_roots(), std::slice::from_ref(&e.root));
}

#[test]
fn a_missing_allowed_root_is_an_error() {
    let e = env();
    let err = Registry::open(&e.data, &[e.base.join("nope")]).unwrap_err();
    assert!(matches!(err, Error::BadAllowedRoot { .. }), "{err:?}");
}

#[test]
fn concurrent_importers_lose_nothing() {
    let e = env();
    let dirs: Vec<PathBuf> = (0..40)
        .map(|i| {
            let d = e.root.join(format!("many/{i}"));
            std::fs::create_dir_all(&d).unwrap();
            d
        })
        .collect();
    std::thread::scope(|s| {
        for chunk in dirs.chunks(10) {
            let data = e.data.clone();
            let root = e.root.clone();
            s.spawn(move || {
                // A separate Registry per thread: its own lock file handle,
                // as a second process would have.
                let r = Registry::open(&data, &[root]).unwrap();
                for d in chunk {
                    r.import(d, None).unwrap();
                }
            });
        }
    });
    let runs = e.registry().runs().unwrap();
    assert_eq!(runs.len(), 40);
    for d in &dirs {
        assert!(runs.iter().any(|r| &r.root == d), "{d:?} lost");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&e.data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
}
