//! Building run directories for tests, the bench and the audit: files,
//! directories, links and sparse files under one root, each parent made as
//! needed. A failure panics with the path (test support never skips).

#![allow(clippy::unwrap_used, clippy::expect_used)] // panics name the path

use std::path::{Path, PathBuf};

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

    fn parent_of(&self, rel: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        path
    }

    /// Writes `content` at `rel`.
    pub fn file(&self, rel: &str, content: impl AsRef<[u8]>) -> &Self {
        let path = self.parent_of(rel);
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self
    }

    /// Makes the directory `rel`.
    pub fn dir(&self, rel: &str) -> &Self {
        let path = self.path(rel);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self
    }

    /// A symbolic link at `rel` pointing at `target` (as given).
    pub fn link(&self, rel: &str, target: impl AsRef<Path>) -> &Self {
        let path = self.parent_of(rel);
        std::os::unix::fs::symlink(target.as_ref(), &path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self
    }

    /// A sparse file of `len` bytes at `rel` (no disk used).
    pub fn sparse(&self, rel: &str, len: u64) -> &Self {
        let path = self.parent_of(rel);
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(len))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        self
    }

    /// Copies the file `from` to `rel`.
    pub fn copy(&self, rel: &str, from: impl AsRef<Path>) -> &Self {
        let path = self.parent_of(rel);
        std::fs::copy(from.as_ref(), &path)
            .unwrap_or_else(|e| panic!("{} -> {}: {e}", from.as_ref().display(), path.display()));
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
        t.file("a/run.toml", "name = 'a'\n")
            .dir("b/videos")
            .link("a/out", "/etc")
            .sparse("b/big.mp4", 1 << 30);
        assert_eq!(
            std::fs::read_to_string(t.path("a/run.toml")).unwrap(),
            "name = 'a'\n"
        );
        assert!(t.path("b/videos").is_dir());
        assert_eq!(
            std::fs::read_link(t.path("a/out")).unwrap(),
            Path::new("/etc")
        );
        assert_eq!(
            std::fs::metadata(t.path("b/big.mp4")).unwrap().len(),
            1 << 30
        );
    }
}
