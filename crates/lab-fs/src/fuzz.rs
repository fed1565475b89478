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
    /// A regular file, new (whatever was at the place is unlinked first).
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
    /// A directory swapped for a link to the sibling run.
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

/// Where links point. A target starting with `/` is absolute *within the
/// scratch directory*: `/outside/canary` is planted as
/// `<scratch>/outside/canary`, never a file of the machine (a link to
/// `/etc/passwd` here once had `/etc/passwd` overwritten, run as root).
/// `..` appears only as leading segments, at most two: the run root sits
/// two levels below the scratch directory, so every relative target, from
/// wherever under the root a link ends up, stays inside the scratch
/// directory ([`check_plan`] asserts it of every link).
pub const TARGETS: &[&str] = &[
    "output.mp4",
    "../output.mp4",
    "videos",
    "../secret.txt",
    "../../secret.txt",
    "/outside/canary",
    "job",
    ".",
    "..",
    "../sibling",
];

/// What the canary outside the root (`<scratch>/outside/canary`, the
/// target of the absolute links) holds, before and after every plan.
pub const CANARY: &[u8] =
    b"CANARY: outside the run root; any change is a harness or resolver bug\n";

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

/// The scratch directory of one plan, laid out as
///
/// ```text
/// <scratch>/outside/canary            CANARY (the absolute links' target)
/// <scratch>/secret.txt                SECRET (`../../secret.txt` from the top)
/// <scratch>/parent/secret.txt         SECRET (`../secret.txt`; hard-linked)
/// <scratch>/parent/sibling/output.mp4 SIBLING (`../sibling`, swapped dirs)
/// <scratch>/parent/run/               the run root
/// ```
///
/// The plan acts as the run's owner: only beneath the root, through a
/// `cap_std` handle of it (a path that leads out of the root, by `..` or
/// a link, is refused), never following a link at the place it writes.
struct PlanScratch {
    base: PathBuf,
    root: PathBuf,
    root_dir: cap_std::fs::Dir,
    parent_dir: cap_std::fs::Dir,
}

impl PlanScratch {
    fn new(base: &Path) -> Self {
        let fail = |e: std::io::Error| -> ! { panic!("scratch {}: {e}", base.display()) };
        for dir in ["outside", "parent/run", "parent/sibling"] {
            std::fs::create_dir_all(base.join(dir)).unwrap_or_else(|e| fail(e));
        }
        for (file, text) in [
            ("outside/canary", CANARY),
            ("secret.txt", b"SECRET".as_slice()),
            ("parent/secret.txt", b"SECRET"),
            ("parent/sibling/output.mp4", b"SIBLING"),
        ] {
            std::fs::write(base.join(file), text).unwrap_or_else(|e| fail(e));
        }
        let base = base.canonicalize().unwrap_or_else(|e| fail(e));
        let open = |dir: &Path| {
            cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())
                .unwrap_or_else(|e| fail(e))
        };
        let root = base.join("parent/run");
        PlanScratch {
            root_dir: open(&root),
            parent_dir: open(&base.join("parent")),
            root,
            base,
        }
    }

    /// The directory holding `place` (opened beneath the root) and its
    /// last segment.
    fn parent_of<'a>(&self, place: &'a str) -> std::io::Result<(cap_std::fs::Dir, &'a str)> {
        match place.rsplit_once('/') {
            Some((dir, name)) => Ok((self.root_dir.open_dir(dir)?, name)),
            None => Ok((self.root_dir.try_clone()?, place)),
        }
    }

    /// A link target as planted: `/x` is `<scratch>/x`.
    fn target(&self, target: &str) -> PathBuf {
        match target.strip_prefix('/') {
            Some(within) => self.base.join(within),
            None => PathBuf::from(target),
        }
    }

    fn apply(&self, step: &Step) -> std::io::Result<()> {
        use cap_std::fs::OpenOptionsExt as _;
        use std::io::Write as _;
        let place = |i: usize| PLACES[i];
        match step {
            // Whatever is at the place (a link, a hard link to the secret,
            // a FIFO) is unlinked, never written through; the new file is
            // created exclusively and the open follows no link.
            Step::File(p) => {
                let (dir, name) = self.parent_of(place(*p))?;
                match dir.remove_file(name) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                let mut options = cap_std::fs::OpenOptions::new();
                options
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
                dir.open_with(name, &options)?
                    .write_all(place(*p).as_bytes())
            }
            Step::Dir(p) => self.root_dir.create_dir_all(place(*p)),
            Step::Link(p, t) => {
                let (dir, name) = self.parent_of(place(*p))?;
                Ok(rustix::fs::symlinkat(self.target(TARGETS[*t]), &dir, name)?)
            }
            Step::HardLink(p) => {
                let (dir, name) = self.parent_of(place(*p))?;
                self.parent_dir.hard_link("secret.txt", &dir, name)
            }
            Step::Fifo(p) => {
                let (dir, name) = self.parent_of(place(*p))?;
                Ok(rustix::fs::mknodat(
                    &dir,
                    name,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
                    0,
                )?)
            }
            Step::Rename(a, b) => self.root_dir.rename(place(*a), &self.root_dir, place(*b)),
            Step::SwapDir(p) => {
                self.root_dir.remove_dir_all(place(*p))?;
                let (dir, name) = self.parent_of(place(*p))?;
                Ok(rustix::fs::symlinkat(
                    self.base.join("parent/sibling"),
                    &dir,
                    name,
                )?)
            }
        }
    }

    /// Everything in the scratch directory outside the root: each entry
    /// (links not followed) with a file's bytes or a link's target.
    fn outside_root(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut todo = vec![PathBuf::new()];
        while let Some(rel) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(self.base.join(&rel)) else {
                continue;
            };
            for entry in entries.flatten() {
                let rel = rel.join(entry.file_name());
                let path = self.base.join(&rel);
                if path == self.root {
                    continue;
                }
                let what = match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => {
                        todo.push(rel.clone());
                        b"dir".to_vec()
                    }
                    Ok(meta) if meta.is_file() => std::fs::read(&path).unwrap_or_default(),
                    Ok(meta) if meta.is_symlink() => {
                        let target = std::fs::read_link(&path).unwrap_or_default();
                        [
                            b"link to ".as_slice(),
                            target.as_os_str().as_encoded_bytes(),
                        ]
                        .concat()
                    }
                    _ => b"other".to_vec(),
                };
                out.push((rel.to_string_lossy().into_owned(), what));
            }
        }
        out.sort();
        out
    }

    /// Asserts that every link under the root leads into the scratch
    /// directory: read where it physically is (no link followed to find
    /// it), its target lexically, `..` only leading.
    fn assert_links_stay_inside(&self, plan: &[Step]) {
        use std::path::Component;
        let mut todo = vec![self.root.clone()];
        while let Some(dir) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    todo.push(path);
                    continue;
                }
                if !meta.is_symlink() {
                    continue;
                }
                let target = std::fs::read_link(&path).unwrap_or_else(|e| panic!("{e}"));
                let mut resolved = if target.is_absolute() {
                    PathBuf::from("/")
                } else {
                    dir.clone()
                };
                let mut named = false;
                for part in target.components() {
                    match part {
                        Component::ParentDir => {
                            assert!(!named, "{target:?}: `..` after a name");
                            resolved.pop();
                        }
                        Component::Normal(name) => {
                            named = true;
                            resolved.push(name);
                        }
                        Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                    }
                }
                assert!(
                    resolved.starts_with(&self.base),
                    "{} -> {target:?} leads out of the scratch directory after {plan:?}",
                    path.display()
                );
            }
        }
    }
}

/// Builds a run directory by `plan` (from [`plan`]) beside an outside
/// secret, a canary and a sibling run ([`PlanScratch`]), acting only
/// beneath the root and never writing through a link, then opens every
/// place through both opens (blocking and no-wait) and checks: whatever
/// either answers with is a regular file whose real path is strictly
/// under the root, its name allowlisted, single-linked under `job/`, never
/// the sibling's content, never the outside secret but through a hard link
/// the run's owner made outside `job/` (served by policy,
/// docs/SECURITY.md); the two opens agree on the inode; every link the
/// plan left leads into the scratch directory; and nothing outside the
/// root changed, the canary byte for byte. Panics when the oracle fails;
/// returns how many files were opened.
pub fn check_plan(plan: &[Step]) -> usize {
    use std::os::unix::fs::MetadataExt as _;
    use std::os::unix::io::AsRawFd as _;
    let base = scratch("plan");
    let outcome = std::panic::catch_unwind(|| {
        let scratch = PlanScratch::new(&base);
        let root = &scratch.root;
        let before = scratch.outside_root();
        for step in plan {
            // Steps may fail (a parent missing, a place taken, a path out
            // of the root): the plan goes on.
            let _ = scratch.apply(step);
        }
        scratch.assert_links_stay_inside(plan);
        let allow = Allowlist::default()
            .plus(&["job/*.mp4", "job/videos/*.mp4"])
            .unwrap_or_else(|e| panic!("{e}"));
        let opened_root =
            crate::RunRoot::open_ambient(root).unwrap_or_else(|e| panic!("the root: {e}"));
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
                    real.starts_with(root) && real != *root,
                    "{place:?} opened {real:?} after {plan:?}"
                );
                let meta = artifact.file.metadata().unwrap_or_else(|e| panic!("{e}"));
                assert!(meta.is_file(), "{place:?} is not a regular file");
                if place.starts_with("job/") {
                    assert_eq!(meta.nlink(), 1, "{place:?} has another name");
                }
                let text = std::io::read_to_string(&artifact.file).unwrap_or_default();
                assert!(text != "SIBLING", "{place:?} read {text:?} after {plan:?}");
                assert!(
                    text.as_bytes() != CANARY,
                    "{place:?} read the canary after {plan:?}"
                );
                if place.starts_with("job/") || !hard_linked_here {
                    assert!(text != "SECRET", "{place:?} read {text:?} after {plan:?}");
                }
            }
            if let (Ok(slow), Some(Ok(fast))) = (&slow, &fast) {
                assert_eq!(slow.inode, fast.inode, "{place:?}: the opens disagree");
            }
        }
        assert_eq!(
            std::fs::read(scratch.base.join("outside/canary"))
                .ok()
                .as_deref(),
            Some(CANARY),
            "the canary changed after {plan:?}"
        );
        assert_eq!(
            scratch.outside_root(),
            before,
            "something outside the root changed after {plan:?}"
        );
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

/// Makes a FIFO at `path` (mode 0600) for a test or harness, without a
/// process (no `mkfifo` to spawn outside lab-runner).
pub fn make_fifo(path: &std::path::Path) -> std::io::Result<()> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .map_err(std::io::Error::from)
}
