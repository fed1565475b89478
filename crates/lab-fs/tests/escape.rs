//! The escape table: every way out of a run root we know of, built in a temp
//! directory at test time (no committed symlinks), plus a property test with
//! an oracle on the opened file's real path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use lab_fs::{Allowlist, Error, RunRoot};
use proptest::prelude::*;

/// A parent directory holding a run root `run/`, a sibling run `sibling/`,
/// a secret file beside them and `outside/canary`, what the root's
/// absolute link points at (inside the temp directory: never a file of the
/// machine, which a test run as root could harm).
const CANARY: &str = "canary: outside the root";

struct Layout {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

fn layout() -> Layout {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("run");
    let sibling = base.join("sibling");
    std::fs::create_dir_all(root.join("videos")).unwrap();
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(base.join("secret.txt"), "outside").unwrap();
    std::fs::create_dir(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/canary"), CANARY).unwrap();
    std::fs::write(sibling.join("notes.md"), "sibling notes").unwrap();
    std::fs::write(root.join("output.mp4"), b"0123456789").unwrap();
    std::fs::write(root.join("videos/a.mp4"), b"video a").unwrap();
    std::fs::write(root.join(".env"), "API_KEY=sk-live").unwrap();
    std::fs::write(root.join("real-notes.txt"), "inside target").unwrap();
    // Links inside the root that stay inside: may be followed.
    symlink("output.mp4", root.join("video.mp4")).unwrap();
    symlink("../output.mp4", root.join("videos/b.mp4")).unwrap();
    symlink("real-notes.txt", root.join("stdout.log")).unwrap();
    // Links that leave the root.
    symlink(base.join("outside/canary"), root.join("notes.md")).unwrap();
    symlink("../secret.txt", root.join("stderr.log")).unwrap();
    symlink(sibling.join("notes.md"), root.join("summary.json")).unwrap();
    symlink("../sibling/notes.md", root.join("params.json")).unwrap();
    // A chain: inside -> inside -> outside.
    symlink("../secret.txt", root.join("hop2")).unwrap();
    symlink("hop2", root.join("run.json")).unwrap();
    // A directory swapped for a symlink leading out.
    symlink(&sibling, root.join("images-out")).unwrap();
    std::fs::remove_dir(root.join("images")).unwrap();
    symlink(&sibling, root.join("images")).unwrap();
    // A loop.
    symlink("config.toml", root.join("config.toml")).unwrap();
    // Not regular files.
    std::fs::create_dir(root.join("metrics.jsonl")).unwrap();
    #[allow(clippy::disallowed_methods)] // a test fixture, not a job
    let fifo_ok = std::process::Command::new("mkfifo")
        .arg(root.join("metrics.csv"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        fifo_ok,
        "mkfifo must be available to build the escape table"
    );
    Layout { _tmp: tmp, root }
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    Content(&'static str),
    Invalid,
    NotAllowed,
    Escape,
    NotFound,
    NotAFile,
}

fn check(root: &RunRoot, allow: &Allowlist, name: &str, expected: Expect) {
    let result = allow
        .check(name)
        .and_then(|n| root.open_artifact(&n))
        .map(|a| std::io::read_to_string(&a.file).unwrap());
    match (&expected, &result) {
        (Expect::Content(want), Ok(got)) if got == want => {}
        (Expect::Invalid, Err(Error::InvalidName(_)))
        | (Expect::NotAllowed, Err(Error::NotAllowed))
        | (Expect::Escape, Err(Error::Escape))
        | (Expect::NotFound, Err(Error::NotFound))
        | (Expect::NotAFile, Err(Error::NotAFile)) => {}
        _ => panic!("{name:?}: expected {expected:?}, got {result:?}"),
    }
}

#[test]
fn escape_table() {
    let l = layout();
    let root = RunRoot::open_ambient(&l.root).unwrap();
    let allow = Allowlist::default();
    use Expect::*;
    let table: &[(&str, Expect)] = &[
        ("output.mp4", Content("0123456789")),
        ("videos/a.mp4", Content("video a")),
        // A symlink inside the root pointing inside the root may be followed.
        ("video.mp4", Content("0123456789")),
        ("videos/b.mp4", Content("0123456789")),
        ("stdout.log", Content("inside target")),
        // Traversal and absolute names never reach the filesystem.
        ("..", Invalid),
        ("../secret.txt", Invalid),
        ("./..", Invalid),
        ("videos/../../secret.txt", Invalid),
        ("/etc/passwd", Invalid),
        ("//etc/passwd", Invalid),
        ("..\\secret.txt", Invalid),
        ("output.mp4\0", Invalid),
        ("out\rput.mp4", Invalid),
        (".env", Invalid),
        ("videos/.hidden.mp4", Invalid),
        // Encoded variants are never decoded here (decoding happened
        // once, in the HTTP layer): a `%` outside an MLflow image name
        // beneath `artifacts/images/` is refused (SPEC §5).
        ("%2e%2e/secret.txt", Invalid),
        ("%2e%2e", Invalid),
        ("..%2fsecret.txt", Invalid),
        ("a%2f..%2fsecret.txt", Invalid),
        ("videos/%2e%2e%2fsecret.mp4", Invalid),
        ("real-notes.txt", NotAllowed),
        ("secret.txt", NotAllowed),
        // Symlinks that leave the root, directly, via `..`, into a sibling
        // run, through a chain, or via a directory swapped for a link.
        ("notes.md", Escape),
        ("stderr.log", Escape),
        ("summary.json", Escape),
        ("params.json", Escape),
        ("run.json", Escape),
        ("images/x.png", Escape),
        ("config.toml", Escape),
        // Not regular files.
        ("metrics.jsonl", NotAFile),
        ("metrics.csv", NotAFile),
        ("preview.mp4", NotFound),
        ("videos/missing.mp4", NotFound),
    ];
    for (name, expected) in table {
        check(&root, &allow, name, *expected);
        check_cached(&root, &allow, name, *expected);
    }
    let outside = l.root.parent().unwrap().join("outside/canary");
    assert_eq!(std::fs::read_to_string(outside).unwrap(), CANARY);
}

/// The no-wait open (`RESOLVE_CACHED`) agrees with the blocking one: when
/// it answers, it answers the same; after the blocking open warmed the
/// kernel's cache, it answers for every file that opens.
fn check_cached(root: &RunRoot, allow: &Allowlist, name: &str, expected: Expect) {
    let Ok(parsed) = allow.check(name) else {
        return;
    };
    let result = root
        .open_artifact_cached(&parsed)
        .map(|r| r.map(|a| std::io::read_to_string(&a.file).unwrap()));
    match (&expected, &result) {
        (Expect::Content(want), Some(Ok(got))) if got == want => {}
        (Expect::Content(_), _) => {
            panic!("{name:?}: a warm no-wait open must succeed, got {result:?}")
        }
        // It may always decline; the blocking path then answers.
        (_, None) => {}
        (Expect::NotAFile, Some(Err(Error::NotAFile))) => {}
        _ => panic!("{name:?}: expected {expected:?} or no answer, got {result:?}"),
    }
}

#[test]
fn a_job_directory_hard_link_is_refused_by_the_no_wait_open_too() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let run = base.join("run");
    std::fs::create_dir_all(run.join("job")).unwrap();
    std::fs::write(base.join("secret.txt"), "outside").unwrap();
    std::fs::hard_link(base.join("secret.txt"), run.join("job/output.mp4")).unwrap();
    std::fs::write(run.join("job/video.mp4"), "own").unwrap();
    symlink("../../secret.txt", run.join("job/preview.mp4")).unwrap();
    let root = RunRoot::open_ambient(&run).unwrap();
    let allow = Allowlist::default().plus(&["job/*.mp4"]).unwrap();
    for name in ["job/output.mp4", "job/video.mp4", "job/preview.mp4"] {
        let _ = root.open_artifact(&allow.check(name).unwrap());
    }
    let cached = |name: &str| root.open_artifact_cached(&allow.check(name).unwrap());
    assert!(matches!(
        cached("job/output.mp4"),
        Some(Err(Error::NotAFile))
    ));
    assert!(cached("job/preview.mp4").is_none());
    let own = cached("job/video.mp4").unwrap().unwrap();
    assert_eq!(std::io::read_to_string(&own.file).unwrap(), "own");
}

/// A job's directory opened as a root of its own (a job's run reads what
/// its job wrote from there) keeps the single-name rule, however deep.
#[test]
fn a_job_directory_opened_as_a_root_still_refuses_hard_links() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let run = base.join("run");
    std::fs::create_dir_all(run.join("job/events")).unwrap();
    std::fs::write(base.join("secret.txt"), "outside").unwrap();
    std::fs::hard_link(base.join("secret.txt"), run.join("job/stolen.txt")).unwrap();
    std::fs::hard_link(base.join("secret.txt"), run.join("job/events/stolen.txt")).unwrap();
    std::fs::hard_link(base.join("secret.txt"), run.join("job/output.mp4")).unwrap();
    std::fs::write(run.join("job/own.txt"), "own").unwrap();
    std::fs::write(run.join("job/events/own.txt"), "own").unwrap();
    let root = RunRoot::open_ambient(&run).unwrap();
    let job = root.open_sub("job").unwrap();
    let events = job.open_sub("events").unwrap();
    let direct = root.open_sub("job/events").unwrap();
    for (at, name) in [
        (&job, "stolen.txt"),
        (&events, "stolen.txt"),
        (&direct, "stolen.txt"),
    ] {
        assert!(
            matches!(at.open_regular(Path::new(name)), Err(Error::NotAFile)),
            "{}/{name}",
            at.path().display()
        );
    }
    for (at, name) in [
        (&job, "own.txt"),
        (&events, "own.txt"),
        (&direct, "own.txt"),
    ] {
        let own = at.open_regular(Path::new(name)).unwrap();
        assert_eq!(std::io::read_to_string(own).unwrap(), "own");
    }
    // Served names too, blocking and no-wait alike.
    let allow = Allowlist::default();
    let name = allow.check("output.mp4").unwrap();
    assert!(matches!(job.open_artifact(&name), Err(Error::NotAFile)));
    assert!(matches!(
        job.open_artifact_cached(&name),
        Some(Err(Error::NotAFile)) | None
    ));
    // A directory beside `job/` is not held to it.
    std::fs::create_dir(run.join("store")).unwrap();
    std::fs::hard_link(run.join("job/own.txt"), run.join("store/twice.txt")).unwrap();
    assert!(
        root.open_sub("store")
            .unwrap()
            .open_regular(Path::new("twice.txt"))
            .is_ok()
    );
    assert_eq!(
        std::fs::read_to_string(base.join("secret.txt")).unwrap(),
        "outside"
    );
}

#[test]
fn the_no_wait_root_open_refuses_a_root_moved_or_swapped_for_a_link() {
    let l = layout();
    let parent = l.root.parent().unwrap().to_path_buf();
    assert!(
        RunRoot::open_ambient_cached(&l.root).is_some(),
        "a warm root opens without waiting"
    );
    // Moved away: nothing there.
    std::fs::rename(&l.root, parent.join("run-moved")).unwrap();
    assert!(RunRoot::open_ambient_cached(&l.root).is_none());
    // Swapped for a link to the directory it was: refused, by both opens.
    symlink(parent.join("run-moved"), &l.root).unwrap();
    assert!(RunRoot::open_ambient_cached(&l.root).is_none());
    assert!(matches!(
        RunRoot::open_ambient(&l.root),
        Err(Error::RootMoved)
    ));
    // A new directory at the path is what the path names now, for both.
    std::fs::remove_file(&l.root).unwrap();
    std::fs::create_dir(&l.root).unwrap();
    std::fs::write(l.root.join("output.mp4"), b"new").unwrap();
    let _ = RunRoot::open_ambient(&l.root).unwrap();
    let fresh = RunRoot::open_ambient_cached(&l.root).unwrap();
    let name = Allowlist::default().check("output.mp4").unwrap();
    let _ = fresh.open_artifact(&name).unwrap();
    let opened = fresh.open_artifact_cached(&name).unwrap().unwrap();
    assert_eq!(std::io::read_to_string(&opened.file).unwrap(), "new");
}

#[test]
fn listing_shows_only_what_would_be_served() {
    let l = layout();
    let root = RunRoot::open_ambient(&l.root).unwrap();
    let names: Vec<String> = root
        .list_artifacts(&Allowlist::default())
        .unwrap()
        .into_iter()
        .map(|a| a.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "output.mp4",
            "stdout.log",
            "video.mp4",
            "videos/a.mp4",
            "videos/b.mp4"
        ]
    );
}

#[test]
fn root_swapped_for_a_symlink_is_refused() {
    let l = layout();
    let parent = l.root.parent().unwrap().to_path_buf();
    let moved = parent.join("run-moved");
    std::fs::rename(&l.root, &moved).unwrap();
    symlink(parent.join("sibling"), &l.root).unwrap();
    assert!(matches!(
        RunRoot::open_ambient(&l.root),
        Err(Error::RootMoved)
    ));
}

#[test]
fn a_missing_root_is_not_found() {
    let l = layout();
    assert!(matches!(
        RunRoot::open_ambient(&l.root.join("nope")),
        Err(Error::NotFound)
    ));
}

fn real_path(file: &std::fs::File) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap()
}

fn is_under(path: &Path, root: &Path) -> bool {
    path.starts_with(root) && path != root
}

/// Pieces names are built from: real entries, traversal, separators,
/// encodings and control characters.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("output.mp4".to_owned()),
        Just("videos".to_owned()),
        Just("a.mp4".to_owned()),
        Just("b.mp4".to_owned()),
        Just("images".to_owned()),
        Just("x.png".to_owned()),
        Just("notes.md".to_owned()),
        Just("stderr.log".to_owned()),
        Just("run.json".to_owned()),
        Just("params.json".to_owned()),
        Just("secret.txt".to_owned()),
        Just("sibling".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just("%2e".to_owned()),
        Just("\0".to_owned()),
        Just(".env".to_owned()),
        "[ -~]{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// For any name: if lab-fs opens it, the opened file's real path lies
    /// strictly under the root and the name matches the allowlist.
    #[test]
    fn ok_means_under_the_root_and_allowlisted(parts in proptest::collection::vec(piece(), 1..5)) {
        // One layout per process is enough; the oracle does not depend on it.
        thread_local!(static LAYOUT: Layout = layout());
        LAYOUT.with(|l| {
            let name: String = parts.concat();
            let allow = Allowlist::default();
            let root = RunRoot::open_ambient(&l.root).unwrap();
            if let Ok(parsed) = allow.check(&name) {
                prop_assert!(allow.allows(&parsed));
                let slow = root.open_artifact(&parsed);
                if let Ok(artifact) = &slow {
                    let real = real_path(&artifact.file);
                    prop_assert!(is_under(&real, &l.root), "{name:?} opened {real:?}");
                    prop_assert!(artifact.file.metadata().unwrap().is_file());
                }
                // The no-wait open, when it opens something, opens the
                // same file the blocking one did.
                if let Some(Ok(fast)) = root.open_artifact_cached(&parsed) {
                    let real = real_path(&fast.file);
                    prop_assert!(is_under(&real, &l.root), "{name:?} opened {real:?}");
                    prop_assert_eq!(slow.map(|a| a.inode).ok(), Some(fast.inode));
                }
            }
            Ok(())
        })?;
    }
}

#[test]
fn reader_listing_and_opens_stay_beneath_the_root_and_follow_no_final_link() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root_dir = base.join("run");
    std::fs::create_dir_all(root_dir.join("params/nested")).unwrap();
    std::fs::create_dir_all(root_dir.join("job")).unwrap();
    std::fs::write(base.join("secret.txt"), "outside").unwrap();
    std::fs::write(root_dir.join("params/lr"), "0.1").unwrap();
    symlink(base.join("secret.txt"), root_dir.join("params/leak")).unwrap();
    symlink(&base, root_dir.join("params/up")).unwrap();
    std::fs::write(root_dir.join("job/own"), "mine").unwrap();
    std::fs::hard_link(root_dir.join("job/own"), root_dir.join("job/second")).unwrap();
    let root = RunRoot::open_ambient(&root_dir).unwrap();
    let listed: Vec<(String, lab_fs::EntryKind)> = root
        .list_dir("params")
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    use lab_fs::EntryKind::{Dir, File, Other};
    assert_eq!(
        listed,
        [
            ("leak".to_owned(), Other),
            ("lr".to_owned(), File),
            ("nested".to_owned(), Dir),
            ("up".to_owned(), Other),
        ]
    );
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut root.open_regular(Path::new("params/lr")).unwrap(),
        &mut text,
    )
    .unwrap();
    assert_eq!(text, "0.1");
    assert!(root.open_regular(Path::new("params/leak")).is_err());
    assert!(
        root.open_regular(Path::new("params/up/secret.txt"))
            .is_err()
    );
    assert!(root.list_dir("params/up").is_err());
    assert!(root.list_dir("..").is_err());
    // A hard-linked file in a job's directory is not opened.
    assert!(root.open_regular(Path::new("job/own")).is_err());
}

#[test]
fn the_no_wait_root_open_refuses_a_parent_swapped_for_a_link_to_where_it_went() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let run = base.join("parent/runs/run");
    std::fs::create_dir_all(&run).unwrap();
    assert!(RunRoot::open_ambient_cached(&run).is_some());
    // The same directory is still reachable by the registered path, but
    // only through a link: its real path is elsewhere now.
    std::fs::rename(base.join("parent"), base.join("moved")).unwrap();
    symlink(base.join("moved"), base.join("parent")).unwrap();
    assert!(run.is_dir());
    assert!(RunRoot::open_ambient_cached(&run).is_none());
    assert!(matches!(RunRoot::open_ambient(&run), Err(Error::RootMoved)));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever plan of files, directories, links in and out, hard links,
    /// FIFOs, renames and directory swaps built the run: every name either
    /// open answers for is a regular file whose real path is strictly
    /// under the root, its name allowlisted, with a single link under
    /// `job/`; the two opens never disagree on what they opened; every link
    /// planted leads into the scratch directory and the canary outside the
    /// root is byte-equal after (`lab_fs::fuzz::check_plan`, the fuzz
    /// target `resolve`'s oracle). The plan acts only beneath the root and
    /// never writes through a link: safe run as root.
    #[test]
    fn any_plan_of_links_and_swaps_opens_only_files_under_the_root(
        plan in proptest::collection::vec(any::<u8>(), 0..36),
    ) {
        lab_fs::fuzz::check_plan(&lab_fs::fuzz::plan(&plan));
    }
}

/// The fuzz target's seeds and every input it ever failed on.
#[test]
fn committed_resolve_inputs_hold() {
    let mut opened = 0;
    for (_, bytes) in
        lab_test_support::fuzz::committed_inputs(env!("CARGO_MANIFEST_DIR").as_ref(), "resolve")
    {
        opened += lab_fs::fuzz::check_plan(&lab_fs::fuzz::plan(&bytes));
    }
    assert!(opened > 0, "no seed opens a file");
}

/// The `name` fuzz target's seeds and every input it ever failed on.
#[test]
fn committed_name_inputs_hold() {
    let accepted: Vec<bool> =
        lab_test_support::fuzz::committed_inputs(env!("CARGO_MANIFEST_DIR").as_ref(), "name")
            .iter()
            .map(|(_, bytes)| lab_fs::fuzz::check_name(bytes))
            .collect();
    assert!(
        accepted.contains(&true) && accepted.contains(&false),
        "{accepted:?}"
    );
}

/// A `*`-segment pattern (`*/*.png`, a format's step directories) lists
/// the files of every real step directory, never through a link, and the
/// whole listing looks at no more than `MAX_LISTED_TOTAL` entries however
/// many directories and files a run holds.
#[test]
fn a_wildcard_listing_follows_no_link_and_stops_at_its_budget() {
    let l = layout();
    let steps = 17;
    let per_step = 4_000;
    assert!(steps * per_step > lab_fs::MAX_LISTED_TOTAL);
    for s in 0..steps {
        let dir = l.root.join(format!("{s}"));
        std::fs::create_dir(&dir).unwrap();
        for i in 0..per_step {
            std::fs::write(dir.join(format!("{i}.png")), b"p").unwrap();
        }
    }
    let outside = l.root.parent().unwrap().join("outside");
    std::fs::write(outside.join("leak.png"), b"secret").unwrap();
    symlink(&outside, l.root.join("linked")).unwrap();
    let root = RunRoot::open_ambient(&l.root).unwrap();
    let allow = Allowlist::default().plus(&["*/*.png"]).unwrap();
    let listed = root.list_artifacts(&allow).unwrap();
    let pngs = listed
        .iter()
        .filter(|a| a.name.as_str().ends_with(".png"))
        .count();
    assert!(pngs > 0);
    assert!(pngs < lab_fs::MAX_LISTED_TOTAL, "{pngs}");
    assert!(
        !listed
            .iter()
            .any(|a| a.name.as_str().starts_with("linked/")),
        "listed through a link"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("canary")).unwrap(),
        CANARY
    );
}

/// SPEC §5's one `%`: an MLflow 2 `log_image` file beneath
/// `artifacts/images/` opens by its literal name; files planted with
/// `%2e%2e`, `%2f` or `%00` in their names there, or a `%` name anywhere
/// else, are refused by name before any open (never decoded into a dot
/// segment, a separator or a NUL).
#[test]
fn only_an_mlflow_image_name_beneath_artifacts_images_may_hold_a_percent_sign() {
    let tmp = tempfile::tempdir().unwrap();
    let root_path = tmp.path().join("run");
    let images = root_path.join("artifacts/images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(tmp.path().join("secret.png"), CANARY).unwrap();
    let legacy = "loss%step%2%timestamp%1796653770703%93904f9c-f7a9.png";
    std::fs::write(images.join(legacy), "legacy image").unwrap();
    for planted in ["%2e%2e", "%2e%2e%2fsecret.png", "a%00.png", "x%2fy.png"] {
        std::fs::write(images.join(planted), "planted").unwrap();
    }
    std::fs::write(root_path.join("artifacts/a%2e.png"), "planted").unwrap();
    let root = RunRoot::open_ambient(&root_path).unwrap();
    let allow = Allowlist::default()
        .plus(&["artifacts/images/*.png", "artifacts/*.png"])
        .unwrap();
    use Expect::*;
    let table: &[(String, Expect)] = &[
        (
            format!("artifacts/images/{legacy}"),
            Content("legacy image"),
        ),
        ("artifacts/images/%2e%2e".to_owned(), Invalid),
        ("artifacts/images/%2e%2e%2fsecret.png".to_owned(), Invalid),
        ("artifacts/images/a%00.png".to_owned(), Invalid),
        ("artifacts/images/x%2fy.png".to_owned(), Invalid),
        ("artifacts/a%2e.png".to_owned(), Invalid),
        (format!("artifacts/{legacy}"), Invalid),
    ];
    for (name, expected) in table {
        check(&root, &allow, name, *expected);
        check_cached(&root, &allow, name, *expected);
    }
    // The listing names only what would be served.
    let listed: Vec<String> = root
        .list_artifacts(&allow)
        .unwrap()
        .into_iter()
        .map(|a| a.name.to_string())
        .collect();
    assert_eq!(listed, [format!("artifacts/images/{legacy}")]);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("secret.png")).unwrap(),
        CANARY
    );
}
