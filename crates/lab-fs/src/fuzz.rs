//! Oracles for the fuzz targets (`crates/lab-fs/fuzz`) and the property
//! tests: a few lines of glue call these on arbitrary input. Not an API.

use std::path::{Path, PathBuf};

use crate::Allowlist;
use crate::bundle::unpack_bundle_ambient;

/// Unpacks `bundle` (any bytes) into a fresh scratch parent beside an
/// `outside/` directory and checks, whatever the bytes: a refused bundle
/// leaves nothing in the parent (no run, no staging directory); an
/// accepted one leaves exactly its run directory there, holding only
/// directories and regular files with one link each, every file's path an
/// allowlisted artifact name; and nothing outside the parent changed.
/// Panics when the oracle fails; the scratch directory is removed.
/// Returns whether the bundle was unpacked.
pub fn check_unpack(bundle: &[u8]) -> bool {
    let base = scratch("unpack");
    let parent = base.join("parent");
    let outside = base.join("outside");
    for dir in [&parent, &outside] {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("scratch {}: {e}", dir.display()));
    }
    std::fs::write(outside.join("canary.md"), "canary")
        .unwrap_or_else(|e| panic!("the canary: {e}"));
    let outcome = std::panic::catch_unwind(|| {
        let before = tree(&base);
        let result = unpack_bundle_ambient(bundle, &parent, None, &Allowlist::default());
        let left = names(&parent);
        match &result {
            Err(_) => assert!(left.is_empty(), "a refused bundle left {left:?}"),
            Ok(unpacked) => {
                let run = unpacked
                    .dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                assert_eq!(
                    left,
                    run.into_iter().collect::<Vec<_>>(),
                    "only the run is left"
                );
                for (rel, kind) in tree(&unpacked.dir) {
                    match kind {
                        Kind::Dir => {}
                        Kind::File { links } => {
                            assert_eq!(links, 1, "{rel}: a file with another name");
                            assert!(
                                rel == crate::bundle::MANIFEST
                                    || Allowlist::default().check(&rel).is_ok(),
                                "{rel}: not an allowlisted name"
                            );
                        }
                        Kind::Other => panic!("{rel}: neither a file nor a directory"),
                    }
                }
            }
        }
        // Nothing changed outside the parent.
        let after: Vec<(String, Kind)> = tree(&base)
            .into_iter()
            .filter(|(rel, _)| !rel.starts_with("parent/"))
            .collect();
        let before: Vec<(String, Kind)> = before
            .into_iter()
            .filter(|(rel, _)| !rel.starts_with("parent/"))
            .collect();
        assert_eq!(after, before, "something changed outside the parent");
        assert_eq!(
            std::fs::read_to_string(outside.join("canary.md"))
                .ok()
                .as_deref(),
            Some("canary")
        );
        result.is_ok()
    });
    let _ = std::fs::remove_dir_all(&base);
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    File { links: u64 },
    Other,
}

/// Every entry under `dir` (links not followed), relative, sorted.
fn tree(dir: &Path) -> Vec<(String, Kind)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = rel.join(entry.file_name());
            let Ok(meta) = std::fs::symlink_metadata(dir.join(&path)) else {
                continue;
            };
            let kind = if meta.file_type().is_dir() {
                todo.push(path.clone());
                Kind::Dir
            } else if meta.file_type().is_file() {
                Kind::File {
                    links: meta.nlink(),
                }
            } else {
                Kind::Other
            };
            out.push((path.to_string_lossy().into_owned(), kind));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A fresh directory name under the system temp dir.
fn scratch(what: &str) -> PathBuf {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!("lab-fs-{what}-{}-{name}", std::process::id()))
}

/// One step of a plan that builds a hostile run directory.
#[derive(Clone, Debug)]
pub enum Step {
    /// A regular file.
    File(usize),
    /// A directory.
    Dir(usize),
    /// A symbolic link at a place, to a target (inside, outside, `..`).
    Link(usize, usize),
    /// A hard link at a place to the outside secret.
    HardLink(usize),
    /// A FIFO.
    Fifo(usize),
    /// A place renamed to another.
    Rename(usize, usize),
    /// A directory swapped for a link to the outside.
    SwapDir(usize),
}

/// Where steps act, under the run root.
pub const PLACES: &[&str] = &[
    "output.mp4",
    "video.mp4",
    "notes.md",
    "videos",
    "videos/a.mp4",
    "images",
    "images/x.png",
    "job",
    "job/output.mp4",
    "job/videos",
    "job/videos/b.mp4",
    "metrics.jsonl",
];

/// Where links point.
pub const TARGETS: &[&str] = &[
    "output.mp4",
    "../output.mp4",
    "videos",
    "../secret.txt",
    "../../secret.txt",
    "/etc/passwd",
    "job",
    ".",
    "..",
    "../sibling",
];

/// A plan from bytes, three per step (kind, place, target or second place).
pub fn plan(data: &[u8]) -> Vec<Step> {
    data.chunks(3)
        .take(24)
        .map(|c| {
            let at = |i: usize| usize::from(*c.get(i).unwrap_or(&0));
            let (place, other) = (at(1) % PLACES.len(), at(2));
            match at(0) % 7 {
                0 => Step::File(place),
                1 => Step::Dir(place),
                2 => Step::Link(place, other % TARGETS.len()),
                3 => Step::HardLink(place),
                4 => Step::Fifo(place),
                5 => Step::Rename(place, other % PLACES.len()),
                _ => Step::SwapDir(place),
            }
        })
        .collect()
}

fn apply(base: &Path, root: &Path, step: &Step) {
    use std::os::unix::fs::symlink;
    // Steps may fail (a parent missing, a place taken): the plan goes on.
    let at = |i: usize| root.join(PLACES[i]);
    let _ = match step {
        // Non-blocking: writing where a FIFO was planted must not wait for
        // a reader (it fails instead).
        Step::File(p) => {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(at(*p))
                .and_then(|mut f| f.write_all(PLACES[*p].as_bytes()))
        }
        Step::Dir(p) => std::fs::create_dir_all(at(*p)),
        Step::Link(p, t) => symlink(TARGETS[*t], at(*p)),
        Step::HardLink(p) => std::fs::hard_link(base.join("secret.txt"), at(*p)),
        Step::Fifo(p) => rustix::fs::mknodat(
            rustix::fs::CWD,
            at(*p),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .map_err(std::io::Error::from),
        Step::Rename(a, b) => std::fs::rename(at(*a), at(*b)),
        Step::SwapDir(p) => {
            std::fs::remove_dir_all(at(*p)).and_then(|()| symlink(base.join("sibling"), at(*p)))
        }
    };
}

/// Builds a run directory by `plan` (from [`plan`]) beside an outside
/// secret and a sibling run, then opens every place through both opens
/// (blocking and no-wait) and checks: whatever either answers with is a
/// regular file whose real path is strictly under the root, its name
/// allowlisted, single-linked under `job/`, never the sibling's content,
/// never the outside secret but through a hard link the run's owner made
/// outside `job/` (served by policy, docs/SECURITY.md); and the two opens
/// agree on the inode. Panics when the oracle fails; returns how many
/// files were opened.
pub fn check_plan(plan: &[Step]) -> usize {
    use std::os::unix::fs::MetadataExt as _;
    use std::os::unix::io::AsRawFd as _;
    let base = scratch("plan");
    let root = base.join("run");
    for dir in [&root, &base.join("sibling")] {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("scratch: {e}"));
    }
    std::fs::write(base.join("secret.txt"), "SECRET").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(base.join("sibling/output.mp4"), "SIBLING").unwrap_or_else(|e| panic!("{e}"));
    let outcome = std::panic::catch_unwind(|| {
        let base = base.canonicalize().unwrap_or_else(|e| panic!("{e}"));
        let root = base.join("run");
        for step in plan {
            apply(&base, &root, step);
        }
        let allow = Allowlist::default()
            .plus(&["job/*.mp4", "job/videos/*.mp4"])
            .unwrap_or_else(|e| panic!("{e}"));
        let opened_root =
            crate::RunRoot::open_ambient(&root).unwrap_or_else(|e| panic!("the root: {e}"));
        let hard_linked_here = plan
            .iter()
            .any(|s| matches!(s, Step::HardLink(_) | Step::Rename(..)));
        let mut opened = 0;
        for place in PLACES {
            let Ok(name) = allow.check(place) else {
                continue;
            };
            let slow = opened_root.open_artifact(&name);
            let fast = opened_root.open_artifact_cached(&name);
            for artifact in slow.iter().chain(fast.iter().flatten()) {
                opened += 1;
                let real =
                    std::fs::read_link(format!("/proc/self/fd/{}", artifact.file.as_raw_fd()))
                        .unwrap_or_else(|e| panic!("{e}"));
                assert!(
                    real.starts_with(&root) && real != root,
                    "{place:?} opened {real:?} after {plan:?}"
                );
                let meta = artifact.file.metadata().unwrap_or_else(|e| panic!("{e}"));
                assert!(meta.is_file(), "{place:?} is not a regular file");
                if place.starts_with("job/") {
                    assert_eq!(meta.nlink(), 1, "{place:?} has another name");
                }
                let text = std::io::read_to_string(&artifact.file).unwrap_or_default();
                assert!(text != "SIBLING", "{place:?} read {text:?} after {plan:?}");
                if place.starts_with("job/") || !hard_linked_here {
                    assert!(text != "SECRET", "{place:?} read {text:?} after {plan:?}");
                }
            }
            if let (Ok(slow), Some(Ok(fast))) = (&slow, &fast) {
                assert_eq!(slow.inode, fast.inode, "{place:?}: the opens disagree");
            }
        }
        opened
    });
    let _ = std::fs::remove_dir_all(&base);
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// An artifact name (the input as UTF-8, lossily): a name that parses is
/// never repaired and has at most four segments (five under `job/`), none
/// empty, `.`/`..` or dot-prefixed, with no control character or backslash;
/// and a name the default allowlist accepts matches one of its patterns,
/// itself or (under `job/`, which mirrors a run's top level) without `job/`.
/// Panics when the oracle fails; returns whether the allowlist accepted it.
pub fn check_name(data: &[u8]) -> bool {
    let name = String::from_utf8_lossy(data);
    if let Ok(parsed) = crate::ArtifactName::parse(&name) {
        assert_eq!(parsed.as_str(), name, "never repaired");
        let segments: Vec<&str> = name.split('/').collect();
        let most = if segments[0] == crate::JOB_DIR { 5 } else { 4 };
        assert!(segments.len() <= most, "{name:?}: too deep");
        for segment in segments {
            assert!(!segment.is_empty() && !segment.starts_with('.'), "{name:?}");
            assert!(
                !segment.chars().any(|c| c.is_control() || c == '\\'),
                "{name:?}"
            );
        }
    }
    let allow = Allowlist::default();
    match allow.check(&name) {
        Ok(parsed) => {
            let matched = |n: &crate::ArtifactName| allow.patterns().iter().any(|p| p.matches(n));
            let inner = name
                .strip_prefix("job/")
                .and_then(|inner| crate::ArtifactName::parse(inner).ok());
            assert!(
                matched(&parsed) || inner.as_ref().is_some_and(matched),
                "{name:?} accepted by no pattern"
            );
            true
        }
        Err(_) => false,
    }
}
