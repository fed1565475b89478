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
        "runs/c/deep",
        "runs/d",
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
    symlink(root.join("c"), root.join("link-c")).unwrap();
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
        // A link on the way to a run inside the root is resolved.
        (e.root.join("link-c/deep"), Expect::Ok("runs/c/deep")),
        // Stored as its components: no trailing or doubled slashes.
        (
            PathBuf::from(format!("{}//d/", e.root.display())),
            Expect::Ok("runs/d"),
        ),
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
    for linked in ["link-in", "link-c/nested", "link-c/../d", "c/./nested/"] {
        let again = e.registry().import(&e.root.join(linked), None);
        assert!(
            matches!(again, Err(Error::AlreadyRegistered(_))),
            "{linked}: {again:?}"
        );
    }
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

// The store: snapshot, journal, torn tails, compaction, generations.

fn journal(e: &Env) -> PathBuf {
    e.data.join("registry.log")
}

/// The journal's lines, each checked whole: a newline at its end and a
/// checksum that holds.
fn whole_journal_lines(e: &Env) -> Vec<String> {
    let text = std::fs::read_to_string(journal(e)).unwrap();
    assert!(text.ends_with('\n'), "{text:?}");
    text.lines()
        .map(|line| {
            let (crc, json) = line.split_at(8);
            let json = json.strip_prefix(' ').unwrap();
            assert_eq!(
                u32::from_str_radix(crc, 16).unwrap(),
                crc32fast::hash(json.as_bytes()),
                "{line}"
            );
            json.to_owned()
        })
        .collect()
}

/// The generation the snapshot names for its journal.
fn snapshot_generation(e: &Env) -> u64 {
    let text = std::fs::read_to_string(e.data.join("registry.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["journal"].as_u64().unwrap()
}

fn candidates(dirs: &[PathBuf]) -> Vec<lab_registry::Candidate> {
    dirs.iter()
        .map(|d| lab_registry::Candidate {
            dir: d.clone(),
            format: "lab".to_owned(),
            entry: None,
            name: None,
        })
        .collect()
}

fn make_dirs(e: &Env, under: &str, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let d = e.root.join(format!("{under}/{i}"));
            std::fs::create_dir_all(&d).unwrap();
            d
        })
        .collect()
}

fn roots_of(r: &Registry) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = r.runs().unwrap().iter().map(|x| x.root.clone()).collect();
    roots.sort();
    roots
}

#[test]
fn a_torn_last_entry_is_dropped_reported_and_repaired_by_the_next_change() {
    type Tear = fn(&mut Vec<u8>, usize);
    let tears: [(&str, Tear); 5] = [
        ("the newline lost", |b, _| {
            b.pop();
        }),
        ("cut in the middle", |b, start| {
            b.truncate(start + (b.len() - start) / 2)
        }),
        ("cut after the checksum", |b, start| b.truncate(start + 9)),
        ("a byte of its text damaged", |b, _| {
            let at = b.len() - 4;
            b[at] ^= 0x20;
        }),
        ("its blocks left as zeros", |b, start| {
            for byte in &mut b[start..] {
                *byte = 0;
            }
        }),
    ];
    for (how, tear) in tears {
        let e = env();
        let r = e.registry();
        let a = r.import(&e.root.join("a"), None).unwrap();
        let b = r.import(&e.root.join("b"), None).unwrap();
        let c = r.import(&e.root.join("c"), None).unwrap();
        let mut bytes = std::fs::read(journal(&e)).unwrap();
        let last = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&x| x == b'\n')
            .unwrap()
            + 1;
        tear(&mut bytes, last);
        std::fs::write(journal(&e), &bytes).unwrap();

        let reader = e.registry();
        let mut ids: Vec<_> = reader
            .runs()
            .unwrap()
            .iter()
            .map(|x| x.id.clone())
            .collect();
        ids.sort();
        let mut expected = vec![a.id.clone(), b.id.clone()];
        expected.sort();
        assert_eq!(ids, expected, "{how}");
        assert!(matches!(reader.get(&c.id), Err(Error::UnknownRun)), "{how}");
        let warnings = reader.warnings();
        assert_eq!(warnings.len(), 1, "{how}: {warnings:?}");
        assert!(
            warnings[0].contains(journal(&e).to_str().unwrap()),
            "{how}: {warnings:?}"
        );
        // Reading again reports nothing new and leaves the file alone.
        reader.runs().unwrap();
        assert_eq!(reader.warnings().len(), 1, "{how}");
        assert_eq!(std::fs::read(journal(&e)).unwrap(), bytes, "{how}");

        // The next change cuts the torn tail off before appending.
        let d = r.import(&e.root.join("c/nested"), None).unwrap();
        let lines = whole_journal_lines(&e);
        // The header, b's line and d's (a is in the snapshot).
        assert_eq!(lines.len(), 3, "{how}: {lines:?}");
        let fresh = e.registry();
        assert!(fresh.warnings().is_empty(), "{how}: {:?}", fresh.warnings());
        assert_eq!(fresh.runs().unwrap().len(), 3, "{how}");
        assert_eq!(fresh.get(&d.id).unwrap(), d, "{how}");
        assert_eq!(reader.get(&d.id).unwrap(), d, "{how}");
        assert!(matches!(fresh.get(&c.id), Err(Error::UnknownRun)), "{how}");
    }
}

#[test]
fn a_bad_entry_before_good_ones_is_an_error_naming_the_journal() {
    let e = env();
    let r = e.registry();
    for dir in ["a", "b", "c"] {
        r.import(&e.root.join(dir), None).unwrap();
    }
    let text = std::fs::read_to_string(journal(&e)).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 3, "{text}");
    let damaged = [
        // The first entry's checksum.
        format!(
            "{}{}{}",
            lines[0],
            lines[1].replacen(&lines[1][..1], "x", 1),
            lines[2]
        ),
        // The first entry's text (its root's name).
        format!(
            "{}{}{}",
            lines[0],
            lines[1].replacen("runs/b", "runs/q", 1),
            lines[2]
        ),
        // The first entry cut short, the next one after it.
        format!("{}{}{}", lines[0], &lines[1][..20], lines[2]),
    ];
    for bad in damaged {
        std::fs::write(journal(&e), &bad).unwrap();
        let err = Registry::open(&e.data, std::slice::from_ref(&e.root)).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
        assert!(
            err.to_string().contains(journal(&e).to_str().unwrap()),
            "{err}"
        );
        // Nothing is written over it.
        assert_eq!(std::fs::read_to_string(journal(&e)).unwrap(), bad);
    }
    // Without the lock file no writer can be at work: the bad line is
    // judged, not taken for an append in progress (which would silently
    // drop what follows it, a later forget included).
    std::fs::remove_file(e.data.join("registry.lock")).unwrap();
    let bad = format!(
        "{}{}{}",
        lines[0],
        lines[1].replacen(&lines[1][..1], "x", 1),
        lines[2]
    );
    std::fs::write(journal(&e), &bad).unwrap();
    let err = Registry::open(&e.data, std::slice::from_ref(&e.root)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

#[test]
fn an_entry_being_appended_is_not_reported_by_a_reader_without_the_lock() {
    let e = env();
    let r = e.registry();
    let a = r.import(&e.root.join("a"), None).unwrap();
    r.import(&e.root.join("b"), None).unwrap();
    // Stand in for a writer in the middle of its append: the lock held,
    // half a line written.
    let mut bytes = std::fs::read(journal(&e)).unwrap();
    let whole = bytes.len();
    let last = bytes[..whole - 1]
        .iter()
        .rposition(|&x| x == b'\n')
        .unwrap()
        + 1;
    bytes.truncate(last + (whole - last) / 2);
    let lock = std::fs::File::create(e.data.join("registry.lock")).unwrap();
    lock.lock().unwrap();
    std::fs::write(journal(&e), &bytes).unwrap();
    let reader = e.registry();
    assert_eq!(
        reader
            .runs()
            .unwrap()
            .iter()
            .map(|x| &x.id)
            .collect::<Vec<_>>(),
        [&a.id]
    );
    assert!(reader.warnings().is_empty(), "{:?}", reader.warnings());
    // Once no writer holds the lock, the same bytes are a torn tail.
    drop(lock);
    assert_eq!(reader.runs().unwrap().len(), 1);
    assert_eq!(reader.warnings().len(), 1, "{:?}", reader.warnings());
}

#[test]
fn compaction_keeps_everything_and_other_instances_follow_it() {
    let e = env();
    let writer = e.registry();
    let reader = e.registry();
    let dirs = make_dirs(&e, "many", 2600);
    let first = snapshot_generation_or_zero(&e);
    let mut forgotten = Vec::new();
    for (n, batch) in dirs.chunks(200).enumerate() {
        let report = writer.register(&candidates(batch), false).unwrap();
        assert_eq!(report.imported.len(), batch.len());
        // A forget and an import between the batches, so that every kind
        // of change crosses a compaction.
        let gone = report.imported[0].clone();
        writer.forget(&gone.id).unwrap();
        forgotten.push(gone.root);
        let extra = e.root.join(format!("extra/{n}"));
        std::fs::create_dir_all(&extra).unwrap();
        writer.import(&extra, None).unwrap();
        assert_eq!(roots_of(&reader), roots_of(&writer), "after batch {n}");
    }
    // 13 batches of 200 changes, 13 forgets and 13 imports: at least two
    // compactions.
    assert!(
        snapshot_generation(&e) >= first + 2,
        "{}",
        snapshot_generation(&e)
    );
    let fresh = e.registry();
    assert_eq!(roots_of(&fresh), roots_of(&writer));
    assert_eq!(fresh.runs().unwrap().len(), 2600 - 13 + 13);
    for gone in &forgotten {
        assert!(!roots_of(&fresh).contains(gone));
    }
    // Forgotten runs stay forgotten across compactions.
    let again = fresh.register(&candidates(&dirs), false).unwrap();
    assert!(again.imported.is_empty());
    let explicit = fresh.register(&candidates(&dirs), true).unwrap();
    assert_eq!(explicit.imported.len(), 13);
    assert_eq!(explicit.existing.len(), 2600 - 13);
    assert_eq!(reader.runs().unwrap().len(), 2600 + 13);
}

fn snapshot_generation_or_zero(e: &Env) -> u64 {
    if e.data.join("registry.json").exists() {
        snapshot_generation(e)
    } else {
        0
    }
}

#[test]
fn concurrent_importers_lose_nothing_across_compactions() {
    let e = env();
    let threads = 4;
    let per_thread: Vec<Vec<PathBuf>> = (0..threads)
        .map(|t| make_dirs(&e, &format!("t{t}"), 620))
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // A reader in its own instance, as a server beside the importers:
        // it never fails and never sees a run disappear.
        let reader = s.spawn(|| {
            let r = Registry::open(&e.data, std::slice::from_ref(&e.root)).unwrap();
            let mut seen = 0;
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let now = r.runs().unwrap().len();
                assert!(now >= seen, "{now} < {seen}");
                assert!(r.warnings().is_empty(), "{:?}", r.warnings());
                seen = now;
                reads += 1;
            }
            reads
        });
        let writers: Vec<_> = per_thread
            .iter()
            .map(|dirs| {
                s.spawn(|| {
                    let r = Registry::open(&e.data, std::slice::from_ref(&e.root)).unwrap();
                    // Batches that add up past the compaction threshold, and
                    // single imports between them.
                    let (singles, batches) = dirs.split_at(20);
                    for (chunk, single) in batches.chunks(150).zip(singles.chunks(5)) {
                        r.register(&candidates(chunk), false).unwrap();
                        for d in single {
                            r.import(d, None).unwrap();
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
    });
    let r = e.registry();
    assert_eq!(r.runs().unwrap().len(), threads * 620);
    let roots = roots_of(&r);
    for d in per_thread.iter().flatten() {
        assert!(roots.binary_search(d).is_ok(), "{d:?} lost");
    }
    assert!(snapshot_generation(&e) >= 2, "no compaction happened");
    let leftovers: Vec<_> = std::fs::read_dir(&e.data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_new_snapshot_beside_the_old_journal_is_read_once_without_duplicates() {
    // A crash between a compaction's two renames leaves the new snapshot
    // (which holds the old journal's changes) and the old journal.
    let e = env();
    let r = e.registry();
    for dir in ["a", "b", "c"] {
        r.import(&e.root.join(dir), None).unwrap();
    }
    let old_journal = std::fs::read(journal(&e)).unwrap();
    let before = snapshot_generation(&e);
    let dirs = make_dirs(&e, "many", 1100);
    r.register(&candidates(&dirs), false).unwrap();
    assert_eq!(snapshot_generation(&e), before + 1, "no compaction");
    let reader = e.registry();
    assert_eq!(reader.runs().unwrap().len(), 1103);
    // Put the old journal back, as the crash would have left it.
    let tmp = e.data.join("old-journal");
    std::fs::write(&tmp, &old_journal).unwrap();
    std::fs::rename(&tmp, journal(&e)).unwrap();

    for instance in [&reader, &e.registry()] {
        let runs = instance.runs().unwrap();
        assert_eq!(runs.len(), 1103);
        let mut roots: Vec<_> = runs.iter().map(|x| &x.root).collect();
        roots.dedup();
        assert_eq!(roots.len(), 1103);
        assert!(instance.warnings().is_empty(), "{:?}", instance.warnings());
    }
    // The next writer replaces the stale journal.
    let extra = r.import(&e.root.join("c/nested"), None).unwrap();
    assert_eq!(snapshot_generation(&e), before + 2);
    let lines = whole_journal_lines(&e);
    assert!(
        lines[0].contains(&format!("\"generation\":{}", before + 2)),
        "{lines:?}"
    );
    assert_eq!(reader.get(&extra.id).unwrap(), extra);
    assert_eq!(e.registry().runs().unwrap().len(), 1104);
}

#[test]
fn a_registry_from_before_the_journal_loads_and_its_opening_starts_one() {
    let e = env();
    std::fs::create_dir(&e.data).unwrap();
    let a = e.root.join("a");
    for (old, stray_journal) in [
        (
            format!(
                r#"{{"version": 1, "runs": [{{"id": "old", "root": {a:?}, "imported_at": 5}}]}}"#
            ),
            false,
        ),
        (
            format!(
                r#"{{"version": 2, "runs": [{{"id": "old", "root": {a:?}, "imported_at": 5}}], "forgotten": [], "roots": []}}"#
            ),
            true,
        ),
    ] {
        let _ = std::fs::remove_file(journal(&e));
        std::fs::write(e.data.join("registry.json"), &old).unwrap();
        if stray_journal {
            // A journal beside a file that names none is not its journal.
            let header = r#"{"journal":{"version":1,"generation":1}}"#;
            let line = format!("{:08x} {header}\n", crc32fast::hash(header.as_bytes()));
            std::fs::write(journal(&e), line).unwrap();
        }
        let r = e.registry();
        let runs = r.runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id.as_str(), "old");
        assert_eq!(runs[0].root, a);
        // Opened by this version, it is written anew (as version 3: its
        // ids were looked at once), with a journal of its own.
        assert!(snapshot_generation(&e) >= 1);
        assert_eq!(whole_journal_lines(&e).len(), 1);
        let b = r.import(&e.root.join("b"), None).unwrap();
        assert_eq!(whole_journal_lines(&e).len(), 2);
        let fresh = e.registry();
        assert_eq!(fresh.runs().unwrap().len(), 2);
        assert_eq!(fresh.get(&b.id).unwrap(), b);
    }
}

#[test]
fn registering_thousands_of_runs_imports_them_all_then_finds_them_all() {
    // Creating the directories is most of this test's time; 20,000 took
    // seconds just for that.
    let e = env();
    let dirs = make_dirs(&e, "many", 5_000);
    let r = e.registry();
    let report = r.register(&candidates(&dirs), false).unwrap();
    assert_eq!(report.imported.len(), 5_000);
    assert!(report.skipped.is_empty());
    let again = e.registry().register(&candidates(&dirs), true).unwrap();
    assert!(again.imported.is_empty());
    assert_eq!(again.existing.len(), 5_000);
    assert_eq!(e.registry().runs().unwrap().len(), 5_000);
    assert_eq!(r.runs().unwrap().len(), 5_000);
}

#[test]
fn a_registered_run_is_not_checked_again_by_a_walk() {
    // Its root was checked when it was registered; a walk that finds it
    // again only reports it, whatever became of the directory.
    let e = env();
    let r = e.registry();
    let found = candidates(&[e.root.join("b")]);
    let run = r.register(&found, false).unwrap().imported.remove(0);
    std::fs::remove_dir(e.root.join("b")).unwrap();
    let again = r.register(&found, true).unwrap();
    assert!(again.skipped.is_empty(), "{:?}", again.skipped);
    assert_eq!(again.existing, [run]);
    // An unknown directory is still checked.
    let missing = r
        .register(&candidates(&[e.root.join("missing")]), true)
        .unwrap();
    assert!(matches!(missing.skipped[..], [(_, Error::NotFound)]));
}

/// A directory above an allowed root swapped for a link after the Lab
/// started: a plain path below the root no longer names a place under it,
/// and neither a single import nor a batch takes the shortcut past
/// `canonicalize` that a plain path otherwise gets.
#[test]
fn a_root_whose_parent_became_a_link_admits_nothing_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("parent/runs");
    std::fs::create_dir_all(root.join("run")).unwrap();
    let registry = Registry::open(&base.join("data"), std::slice::from_ref(&root)).unwrap();
    std::fs::rename(base.join("parent"), base.join("moved")).unwrap();
    std::fs::create_dir_all(base.join("elsewhere/runs/run")).unwrap();
    std::fs::create_dir_all(base.join("elsewhere/runs/other")).unwrap();
    symlink(base.join("elsewhere"), base.join("parent")).unwrap();
    assert!(matches!(
        registry.import(&root.join("run"), None),
        Err(Error::OutsideAllowedRoots)
    ));
    // Enough candidates for the checks to run on several threads.
    let mut found = Vec::new();
    for i in 0..5000 {
        let dir = base.join(format!("elsewhere/runs/r{i}"));
        std::fs::create_dir(&dir).unwrap();
        found.push(lab_registry::Candidate {
            dir: root.join(format!("r{i}")),
            format: "lab".into(),
            entry: None,
            name: None,
        });
    }
    let report = registry.register(&found, false).unwrap();
    assert!(
        report.imported.is_empty(),
        "{} imported",
        report.imported.len()
    );
    assert_eq!(report.skipped.len(), found.len());
    assert!(registry.runs().unwrap().is_empty());
}

/// A real registry's files (a snapshot after a compaction and a journal
/// of imports and forgets since), written by the registry itself.
fn real_registry_files() -> (Vec<u8>, Vec<u8>) {
    let e = env();
    let r = e.registry();
    let dirs = make_dirs(&e, "many", 1100);
    r.register(&candidates(&dirs), false).unwrap();
    for dir in ["a", "b", "d"] {
        r.import(&e.root.join(dir), None).unwrap();
    }
    let b = r
        .runs()
        .unwrap()
        .iter()
        .find(|run| run.root.ends_with("runs/b"))
        .map(|run| run.id.clone())
        .unwrap();
    r.forget(&b).unwrap();
    let snapshot = std::fs::read(e.data.join("registry.json")).unwrap();
    let journal = std::fs::read(journal(&e)).unwrap();
    assert!(
        !snapshot.is_empty() && journal.len() > 100,
        "both files written"
    );
    (snapshot, journal)
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
    DuplicateLine(usize),
}

fn mutate(bytes: &[u8], how: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = |i: usize| {
        if out.is_empty() {
            0
        } else {
            i % (out.len() + 1)
        }
    };
    match how {
        Mutation::Flip(i, x) if !out.is_empty() => {
            let i = i % out.len();
            out[i] ^= x | 1;
        }
        Mutation::Flip(..) => {}
        Mutation::Cut(i) => out.truncate(at(*i)),
        Mutation::Insert(i, junk) => {
            let i = at(*i);
            out.splice(i..i, junk.iter().copied());
        }
        Mutation::DuplicateLine(n) => {
            let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
            if !lines.is_empty() {
                let line = lines[n % lines.len()].to_vec();
                out.extend_from_slice(&line);
            }
        }
    }
    out
}

fn mutation() -> impl proptest::strategy::Strategy<Value = Mutation> {
    use proptest::prelude::*;
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Cut),
        (
            any::<usize>(),
            proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'{'), Just(b'"'), Just(b' '), any::<u8>()],
                0..40
            )
        )
            .prop_map(|(i, junk)| Mutation::Insert(i, junk)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

    /// Damaged anywhere — a flipped byte, a cut, junk inserted, a line
    /// repeated — a real registry's snapshot and journal load into an
    /// error or a whole registry (`lab_registry::fuzz::check_load`: unique
    /// sorted ids, absolute roots, a second instance agreeing), never a
    /// panic. The same oracle is the `load` fuzz target's.
    #[test]
    fn damaged_registry_files_give_an_error_or_a_whole_registry(
        snapshot_damage in proptest::option::of(mutation()),
        journal_damage in proptest::option::of(mutation()),
    ) {
        thread_local!(static FILES: (Vec<u8>, Vec<u8>) = real_registry_files());
        let (snapshot, journal) = FILES.with(|f| f.clone());
        let snapshot = snapshot_damage.map_or(snapshot.clone(), |m| mutate(&snapshot, &m));
        let journal = journal_damage.map_or(journal.clone(), |m| mutate(&journal, &m));
        lab_registry::fuzz::check_load(&snapshot, &journal);
    }
}

#[test]
fn the_load_oracle_sees_an_undamaged_registry_whole() {
    let (snapshot, journal) = real_registry_files();
    // Undamaged, it opens (the oracle's checks run, not just its early exit).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registry.json"), &snapshot).unwrap();
    std::fs::write(dir.path().join("registry.log"), &journal).unwrap();
    let r = Registry::open(dir.path(), &[]).unwrap();
    assert_eq!(r.runs().unwrap().len(), 1100 + 3 - 1);
    lab_registry::fuzz::check_load(&snapshot, &journal);
}

/// The `load` fuzz target's seeds (real registry files) and every input
/// it ever failed on.
#[test]
fn committed_load_inputs_hold() {
    let loaded: Vec<Option<usize>> =
        lab_test_support::fuzz::committed_inputs(env!("CARGO_MANIFEST_DIR").as_ref(), "load")
            .iter()
            .map(|(_, bytes)| lab_registry::fuzz::check_load_bytes(bytes))
            .collect();
    assert_eq!(loaded, [Some(1), Some(2), Some(0)], "the seeds load whole");
}

/// Runs found beneath a job's `job/` are registered only where the walk
/// found them: one whose directory became a link (to another run, say) or
/// lies outside the directory named is skipped, never registered where
/// the link leads.
#[test]
fn runs_found_beneath_a_directory_register_only_where_they_are() {
    let e = env();
    let registry = Registry::open(&e.data, std::slice::from_ref(&e.root)).unwrap();
    let beneath = e.root.join("c");
    let candidate = |dir: PathBuf| lab_registry::Candidate {
        dir,
        format: "lab".into(),
        entry: None,
        name: None,
    };
    // `c/swapped` is a link to `b` (another run's directory), as a job
    // could make it between the walk and the registration.
    symlink(e.root.join("b"), beneath.join("swapped")).unwrap();
    let report = registry
        .register_beneath(
            &beneath,
            &[
                candidate(beneath.join("nested")),
                candidate(beneath.join("swapped")),
                candidate(e.root.join("d")),
            ],
        )
        .unwrap();
    let imported: Vec<PathBuf> = report.imported.iter().map(|r| r.root.clone()).collect();
    assert_eq!(imported, vec![beneath.join("nested")], "{report:?}");
    assert_eq!(report.skipped.len(), 2, "{report:?}");
    assert!(
        registry
            .runs()
            .unwrap()
            .iter()
            .all(|r| r.root != e.root.join("b")),
        "the link's target was not registered"
    );
}

// Stable ids (SPEC §4) and the migration of ids issued before them.

/// The first `digits` hex digits of SHA-256 over `bytes`, computed here
/// from the bytes SPEC §4 names, apart from the registry's code.
fn sha256_prefix(bytes: &[u8], digits: usize) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..digits]
        .to_owned()
}

fn id(text: &str) -> lab_registry::RunId {
    lab_registry::RunId::parse(text).unwrap()
}

fn store_run(dir: &Path, entry: &str, name: &str) -> lab_registry::Candidate {
    lab_registry::Candidate {
        dir: dir.to_path_buf(),
        format: "mlflow".to_owned(),
        entry: Some(entry.to_owned()),
        name: Some(name.to_owned()),
    }
}

#[test]
fn the_same_directory_has_the_same_id_in_any_data_dir() {
    let e = env();
    let store = e.root.join("c");
    let mut seen = Vec::new();
    for data in ["data-1", "data-2"] {
        let r = Registry::open(&e.base.join(data), std::slice::from_ref(&e.root)).unwrap();
        let a = r.import(&e.root.join("a"), None).unwrap();
        let walked = r.register(&candidates(&[e.root.join("b")]), false).unwrap();
        let stored = r
            .register(&[store_run(&store, "0/abc", "Happy Fox")], false)
            .unwrap();
        seen.push((
            a.id,
            walked.imported[0].id.clone(),
            stored.imported[0].id.clone(),
        ));
    }
    assert_eq!(seen[0], seen[1]);
    let root = e.root.to_str().unwrap();
    let (a, b, stored) = &seen[0];
    assert_eq!(
        a.as_str(),
        format!("a-{}", sha256_prefix(format!("{root}\0a").as_bytes(), 12))
    );
    assert_eq!(
        b.as_str(),
        format!("b-{}", sha256_prefix(format!("{root}\0b").as_bytes(), 12))
    );
    assert_eq!(
        stored.as_str(),
        format!(
            "happy-fox-{}",
            sha256_prefix(format!("{root}\0c\x000/abc").as_bytes(), 12)
        )
    );
}

#[test]
fn a_stable_id_hashes_the_run_below_the_longest_allowed_root_holding_it() {
    let e = env();
    let inner = e.root.join("c");
    let r = Registry::open(&e.data, &[e.root.clone(), inner.clone()]).unwrap();
    let nested = r.import(&inner.join("nested"), None).unwrap();
    let inner = inner.to_str().unwrap();
    assert_eq!(
        nested.id.as_str(),
        format!(
            "nested-{}",
            sha256_prefix(format!("{inner}\0nested").as_bytes(), 12)
        )
    );
    // An explicit id still wins.
    let d = r.import(&e.root.join("d"), Some("mine")).unwrap();
    assert_eq!(d.id.as_str(), "mine");
}

#[test]
fn a_run_under_no_allowed_root_is_hashed_by_its_absolute_path() {
    // A registry opened with no roots (an embedder's, a test's) still
    // gives the runs it holds stable ids: below `/`.
    let e = env();
    std::fs::create_dir(&e.data).unwrap();
    let a = e.root.join("a");
    let old = format!(
        r#"{{"version": 2, "runs": [{{"id": "a-3f9c2d", "root": {a:?}, "imported_at": 5}}]}}"#
    );
    std::fs::write(e.data.join("registry.json"), old).unwrap();
    let r = Registry::open(&e.data, &[]).unwrap();
    let within = a.to_str().unwrap().trim_start_matches('/');
    let expected = format!("a-{}", sha256_prefix(format!("/\0{within}").as_bytes(), 12));
    assert_eq!(r.get(&id("a-3f9c2d")).unwrap().id.as_str(), expected);
}

/// What `registry.json` holds, parsed.
fn snapshot(e: &Env) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(e.data.join("registry.json")).unwrap()).unwrap()
}

#[test]
fn a_registry_from_before_stable_ids_migrates_and_old_ids_still_resolve() {
    let e = env();
    std::fs::create_dir_all(e.data.join("runs/job-1-0a0b0c")).unwrap();
    let (a, b, c, d) = (
        e.root.join("a"),
        e.root.join("b"),
        e.root.join("c"),
        e.root.join("d"),
    );
    let job = e.data.join("runs/job-1-0a0b0c").canonicalize().unwrap();
    // As a version before stable ids wrote it: random ids, an explicit
    // one, a job's run, a store's run, a forgotten run, and a journal.
    let old = format!(
        r#"{{"version": 2, "journal": 1, "roots": [], "forgotten": [{{"root": {d:?}}}], "runs": [
            {{"id": "a-3f9c2d", "root": {a:?}, "imported_at": 5, "format": "lab"}},
            {{"id": "mine", "root": {b:?}, "imported_at": 5}},
            {{"id": "job-1-0a0b0c", "root": {job:?}, "imported_at": 5}},
            {{"id": "happy-fox-00ff00", "root": {c:?}, "entry": "0/abc", "imported_at": 5, "format": "mlflow"}}
        ]}}"#
    );
    std::fs::create_dir_all(&e.data).unwrap();
    std::fs::write(e.data.join("registry.json"), old).unwrap();
    let header = r#"{"journal":{"version":1,"generation":1}}"#;
    std::fs::write(
        journal(&e),
        format!("{:08x} {header}\n", crc32fast::hash(header.as_bytes())),
    )
    .unwrap();
    let roots = [e.root.clone(), e.data.join("runs")];
    let r = Registry::open(&e.data, &roots).unwrap();
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    let root = e.root.to_str().unwrap();
    let new_a = format!("a-{}", sha256_prefix(format!("{root}\0a").as_bytes(), 12));
    let new_c = format!(
        "happy-fox-{}",
        sha256_prefix(format!("{root}\0c\x000/abc").as_bytes(), 12)
    );
    let mut listed: Vec<String> = r
        .runs()
        .unwrap()
        .iter()
        .map(|run| run.id.to_string())
        .collect();
    listed.sort();
    let mut expected = vec![
        new_a.clone(),
        new_c.clone(),
        "job-1-0a0b0c".to_owned(),
        "mine".to_owned(),
    ];
    expected.sort();
    // Each run once, with its id now; explicit ids and jobs' runs kept.
    assert_eq!(listed, expected);
    // The old ids find the runs, whose records hold the new ids.
    for (old, new) in [("a-3f9c2d", &new_a), ("happy-fox-00ff00", &new_c)] {
        let run = r.get(&id(old)).unwrap();
        assert_eq!(run.id.as_str(), new.as_str());
        assert_eq!(run.aliases, [id(old)]);
        assert_eq!(r.get(&run.id).unwrap(), run);
    }
    // Written as a new snapshot (version 3), the journal started anew.
    let written = snapshot(&e);
    assert_eq!(written["version"], 3);
    assert_eq!(snapshot_generation(&e), 2);
    assert_eq!(whole_journal_lines(&e).len(), 1);
    // The forgotten run stays forgotten.
    assert!(
        r.register(&candidates(std::slice::from_ref(&d)), false)
            .unwrap()
            .imported
            .is_empty()
    );
    // Idempotent: opening again changes nothing, in this process or another.
    let before = (
        std::fs::read(e.data.join("registry.json")).unwrap(),
        std::fs::read(journal(&e)).unwrap(),
    );
    let again = Registry::open(&e.data, &roots).unwrap();
    assert_eq!(*again.runs().unwrap(), *r.runs().unwrap());
    let other_roots = Registry::open(&e.data, &[]).unwrap();
    assert_eq!(*other_roots.runs().unwrap(), *r.runs().unwrap());
    assert_eq!(
        before,
        (
            std::fs::read(e.data.join("registry.json")).unwrap(),
            std::fs::read(journal(&e)).unwrap(),
        )
    );
    // A walk finds them registered, under their new ids.
    let walked = r
        .register(
            &[
                candidates(std::slice::from_ref(&a)).remove(0),
                store_run(&c, "0/abc", "x"),
            ],
            true,
        )
        .unwrap();
    assert!(walked.imported.is_empty());
    assert_eq!(walked.existing.len(), 2);
    // An old id is taken: no other run may have it.
    assert!(matches!(
        r.import(&d, Some("a-3f9c2d")),
        Err(Error::IdTaken(_))
    ));
    // Forgetting by an old id forgets the run; then neither id finds it.
    let gone = r.forget(&id("a-3f9c2d")).unwrap();
    assert_eq!(gone.id.as_str(), new_a);
    for lookup in ["a-3f9c2d", new_a.as_str()] {
        assert!(matches!(r.get(&id(lookup)), Err(Error::UnknownRun)));
        assert!(matches!(
            e.registry().get(&id(lookup)),
            Err(Error::UnknownRun)
        ));
    }
    assert!(
        r.register(&candidates(&[a]), false)
            .unwrap()
            .imported
            .is_empty()
    );
}

/// A data dir as a version before stable ids left it: a version 2
/// snapshot of `runs` (`(id, dir below the root)`), no journal.
fn write_old_registry(e: &Env, runs: &[(&str, &str)]) {
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|(id, dir)| serde_json::json!({"id": id, "root": e.root.join(dir), "imported_at": 5}))
        .collect();
    std::fs::create_dir_all(&e.data).unwrap();
    let old = serde_json::json!({"version": 2, "runs": runs, "forgotten": [], "roots": []});
    std::fs::write(e.data.join("registry.json"), old.to_string()).unwrap();
}

#[test]
fn registries_opening_an_old_one_at_once_migrate_it_once() {
    let e = env();
    write_old_registry(&e, &[("a-3f9c2d", "a"), ("b-000000", "b")]);
    let opened: Vec<Registry> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6).map(|_| scope.spawn(|| e.registry())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let runs = opened[0].runs().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs.iter() {
        // Renamed once: one alias each, and the stable id.
        assert_eq!(run.aliases.len(), 1, "{run:?}");
        assert_eq!(run.id.as_str().rsplit_once('-').unwrap().1.len(), 12);
    }
    for r in &opened {
        assert_eq!(*r.runs().unwrap(), *runs);
        assert_eq!(r.get(&id("a-3f9c2d")).unwrap().root, e.root.join("a"));
        assert_eq!(r.get(&id("b-000000")).unwrap().root, e.root.join("b"));
    }
}

#[test]
fn an_explicit_id_of_the_old_shape_given_now_is_kept() {
    let e = env();
    write_old_registry(&e, &[]);
    let r = e.registry();
    let run = r.import(&e.root.join("a"), Some("a-3f9c2d")).unwrap();
    assert_eq!(e.registry().get(&run.id).unwrap(), run);
    assert_eq!(e.registry().runs().unwrap()[0].id.as_str(), "a-3f9c2d");
}

#[test]
fn a_crash_between_the_migrated_snapshot_and_its_journal_loses_nothing() {
    let e = env();
    // An old registry whose journal (generation 1) holds a run too.
    write_old_registry(&e, &[("a-3f9c2d", "a")]);
    let mut snapshot = snapshot(&e);
    snapshot["journal"] = 1.into();
    std::fs::write(e.data.join("registry.json"), snapshot.to_string()).unwrap();
    let line = |json: String| format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
    let old_journal = [
        line(r#"{"journal":{"version":1,"generation":1}}"#.to_owned()),
        line(
            serde_json::json!({"update": [{"add": {
                "id": "b-000000", "root": e.root.join("b"), "imported_at": 6
            }}]})
            .to_string(),
        ),
    ]
    .concat();
    std::fs::write(journal(&e), &old_journal).unwrap();
    let migrated = e.registry().get(&id("a-3f9c2d")).unwrap();
    let b = e.registry().get(&id("b-000000")).unwrap();
    assert_ne!(b.id.as_str(), "b-000000");
    assert_eq!(snapshot_generation(&e), 2);
    // The journal as it was before the migration's compaction replaced
    // it: stale now (its generation is not the snapshot's), so ignored.
    std::fs::write(journal(&e), old_journal).unwrap();
    let reopened = e.registry();
    let runs = reopened.runs().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.contains(&migrated) && runs.contains(&b));
    assert_eq!(reopened.get(&id("a-3f9c2d")).unwrap(), migrated);
}

/// A FIFO planted where the snapshot's index (`registry.idx`) is read is
/// not waited on: the import goes on through the snapshot, and its run is
/// there for every reader.
#[test]
#[allow(clippy::disallowed_methods)] // mkfifo(1) plants the FIFO
fn a_fifo_at_the_index_is_not_waited_on() {
    let env = env();
    // The first change writes the snapshot and its index.
    let a = env.registry().import(&env.root.join("a"), None).unwrap();
    let index = env.data.join("registry.idx");
    assert!(index.is_file());
    std::fs::remove_file(&index).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&index)
        .status()
        .unwrap();
    assert!(made.success());
    let (done, wait) = std::sync::mpsc::channel();
    let (data, root) = (env.data.clone(), env.root.clone());
    std::thread::spawn(move || {
        let registry = Registry::open(&data, std::slice::from_ref(&root)).unwrap();
        let _ = done.send(registry.import(&root.join("b"), None).map(|r| r.id));
    });
    let b = wait
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the import waited on the FIFO")
        .unwrap();
    let ids: Vec<_> = env
        .registry()
        .runs()
        .unwrap()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a.id) && ids.contains(&b));
}
