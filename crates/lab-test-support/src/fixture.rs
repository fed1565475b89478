//! Building run directories for tests, the bench and the audit: files,
//! directories, links, sparse files and copies of files and directories
//! under one root, each parent made as needed. A failure panics with the path (test support never skips).
//!
//! Safe run as root: the tree never writes through a link. A path is taken
//! segment by segment from the root, each existing segment a real
//! directory (a link, `..` or an absolute path on the way panics); what is
//! at the last segment is unlinked, never truncated, and the new file is
//! created exclusively. Links may point anywhere (a test plants them for
//! the code under test to refuse) — nothing here follows one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // panics name the path

use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

/// A directory tree being built under `root`.
#[derive(Debug, Clone)]
pub struct Tree {
    root: PathBuf,
}

impl Tree {
    /// A tree rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        Self { root }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `root/rel`, every directory on the way made or checked real (never
    /// a link): the last segment is left as it is.
    fn beneath(&self, rel: &str) -> PathBuf {
        let mut path = self.root.clone();
        let mut segments = Path::new(rel).components().peekable();
        while let Some(segment) = segments.next() {
            let Component::Normal(name) = segment else {
                panic!("{rel:?}: a fixture path is relative, without `.` or `..`");
            };
            path.push(name);
            if segments.peek().is_some() {
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => panic!(
                        "{}: not a directory (a fixture never writes through a link)",
                        path.display()
                    ),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::fs::create_dir(&path)
                            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    }
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
        }
        path
    }

    /// A new regular file at `rel`: whatever was there (a file, a link) is
    /// unlinked first; the file is created exclusively (`O_EXCL`: a link
    /// there is never followed).
    fn create(&self, rel: &str) -> (PathBuf, std::fs::File) {
        let path = self.beneath(rel);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                panic!("{}: {e}", path.display())
            }
            _ => {}
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (path, file)
    }

    /// Writes `content` at `rel` (a new file: see [`Tree`]).
    pub fn file(&self, rel: &str, content: impl AsRef<[u8]>) -> &Self {
        let (path, mut file) = self.create(rel);
        file.write_all(content.as_ref())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self
    }

    /// Makes the directory `rel`.
    pub fn dir(&self, rel: &str) -> &Self {
        let path = self.beneath(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => panic!("{}: not a directory", path.display()),
            Err(_) => {
                std::fs::create_dir(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
        }
        self
    }

    /// A symbolic link at `rel` pointing at `target` (as given, never
    /// followed here).
    pub fn link(&self, rel: &str, target: impl AsRef<Path>) -> &Self {
        let path = self.beneath(rel);
        std::os::unix::fs::symlink(target.as_ref(), &path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self
    }

    /// A sparse file of `len` bytes at `rel` (no disk used; a new file).
    pub fn sparse(&self, rel: &str, len: u64) -> &Self {
        let (path, file) = self.create(rel);
        file.set_len(len)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self
    }

    /// Copies the file `from` to `rel` (a new file).
    pub fn copy(&self, rel: &str, from: impl AsRef<Path>) -> &Self {
        let (path, mut file) = self.create(rel);
        std::fs::File::open(from.as_ref())
            .and_then(|mut source| std::io::copy(&mut source, &mut file))
            .unwrap_or_else(|e| panic!("{} -> {}: {e}", from.as_ref().display(), path.display()));
        self
    }

    /// Copies the directory `from` to `rel` (`""`: the root), recursively:
    /// its directories, and its regular files as new files (see [`Tree`])
    /// with their modification times. Anything else in `from` (a link, a
    /// FIFO) is left out, never followed.
    pub fn copy_dir(&self, rel: &str, from: impl AsRef<Path>) -> &Self {
        let from = from.as_ref();
        if !rel.is_empty() {
            self.dir(rel);
        }
        let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", from.display()));
            let name = entry.file_name();
            let name = name.to_str().unwrap_or_else(|| {
                panic!("{}: a fixture's names are UTF-8", entry.path().display())
            });
            let at = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry
                .file_type()
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            if kind.is_dir() {
                self.copy_dir(&at, entry.path());
            } else if kind.is_file() {
                let modified = entry
                    .metadata()
                    .and_then(|meta| meta.modified())
                    .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
                let (path, mut file) = self.create(&at);
                std::fs::File::open(entry.path())
                    .and_then(|mut source| std::io::copy(&mut source, &mut file))
                    .and_then(|_| file.set_modified(modified))
                    .unwrap_or_else(|e| {
                        panic!("{} -> {}: {e}", entry.path().display(), path.display())
                    });
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_holds_what_was_built() {
        let tmp = tempfile::tempdir().unwrap();
        let t = Tree::new(tmp.path().join("runs"));
        let outside = tmp.path().join("outside");
        t.file("a/run.toml", "name = 'a'\n")
            .dir("b/videos")
            .link("a/out", &outside)
            .sparse("b/big.mp4", 1 << 30);
        assert_eq!(
            std::fs::read_to_string(t.path("a/run.toml")).unwrap(),
            "name = 'a'\n"
        );
        assert!(t.path("b/videos").is_dir());
        assert_eq!(std::fs::read_link(t.path("a/out")).unwrap(), outside);
        assert_eq!(
            std::fs::metadata(t.path("b/big.mp4")).unwrap().len(),
            1 << 30
        );
    }

    #[test]
    fn a_copied_directory_holds_its_files_and_dirs_and_no_link() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("canary"), "canary").unwrap();
        let from = Tree::new(tmp.path().join("from"));
        from.file("run.toml", "name = 'a'\n")
            .file("logs/deep/events", "e")
            .link("out", outside.join("canary"))
            .link("up", &outside);
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(from.path("run.toml"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let to = Tree::new(tmp.path().join("to"));
        to.copy_dir("", from.root())
            .copy_dir("again/here", from.root());
        for base in ["", "again/here/"] {
            let at = |rel: &str| to.path(&format!("{base}{rel}"));
            assert_eq!(
                std::fs::read_to_string(at("run.toml")).unwrap(),
                "name = 'a'\n"
            );
            assert_eq!(
                std::fs::metadata(at("run.toml"))
                    .unwrap()
                    .modified()
                    .unwrap(),
                old
            );
            assert_eq!(
                std::fs::read_to_string(at("logs/deep/events")).unwrap(),
                "e"
            );
            assert!(
                std::fs::symlink_metadata(at("out")).is_err(),
                "{base}out copied"
            );
            assert!(
                std::fs::symlink_metadata(at("up")).is_err(),
                "{base}up copied"
            );
        }
        assert_eq!(
            std::fs::read_to_string(outside.join("canary")).unwrap(),
            "canary"
        );
    }

    /// Issue 22: a fixture that writes at a link, or beneath one, leaves
    /// what the link points at alone.
    #[test]
    fn writes_never_go_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("canary"), "canary").unwrap();
        let t = Tree::new(tmp.path().join("runs"));
        t.link("stderr.log", outside.join("canary"))
            .link("up", &outside)
            .link("dangling", outside.join("made-through-a-link"));
        // At a link: the link is replaced by the file.
        t.file("stderr.log", "mine").sparse("dangling", 8);
        assert_eq!(
            std::fs::read_to_string(t.path("stderr.log")).unwrap(),
            "mine"
        );
        assert!(
            std::fs::symlink_metadata(t.path("dangling"))
                .unwrap()
                .is_file()
        );
        // Beneath a link, or out by `..` or an absolute path: refused.
        for rel in ["up/canary", "up/new", "../outside/canary", "/tmp/x"] {
            let refused = std::panic::catch_unwind(|| {
                t.file(rel, "through");
            });
            assert!(refused.is_err(), "{rel} was written");
        }
        let refused = std::panic::catch_unwind(|| {
            t.dir("up/sub");
        });
        assert!(refused.is_err(), "a directory made beneath a link");
        assert_eq!(
            std::fs::read_to_string(outside.join("canary")).unwrap(),
            "canary"
        );
        let mut left: Vec<String> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["canary"], "nothing made outside");
    }
}
