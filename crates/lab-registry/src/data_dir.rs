//! The one owner of the data directory's layout and of its writes.
//!
//! ```text
//! DATA_DIR/
//!   registry.json     the run registry's snapshot (lab-registry)
//!   registry.log      the changes since the snapshot, appended
//!   registry.idx      the snapshot's keys and ids, hashed, for imports
//!                     that need not read it (safe to delete)
//!   registry.lock     taken by every change to the registry
//!   runs/ID/          each runner job's run directory (0700)
//!   jobs/ID.json      job records, and the sandbox's scratch reports
//!   exports/NAME.tar  bundles
//!   snapshots/        private copies of SQLite stores (lab-fs, 0700;
//!                     leftovers of dead processes swept at start)
//! ```
//!
//! Every JSON file the Lab writes there goes through [`write_json`]: a fresh
//! temp name created exclusively (never through a link), fsync, rename,
//! fsync of the directory — so a crash or a concurrent CLI leaves the old
//! file or the new one, never a mix, and no fixed temp name can be planted.
//! The one file changed in place is the registry's journal, which is only
//! appended to, under the registry's lock, one checksummed line at a time
//! (see the registry's store).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Registry, RunId, RunRecord};

/// `O_NOFOLLOW` on Linux (libc is not a dependency of this crate).
pub(crate) const O_NOFOLLOW: i32 = 0o400000;
/// `O_NONBLOCK` on Linux: opening a FIFO planted where a file is read
/// does not wait for a writer.
pub(crate) const O_NONBLOCK: i32 = 0o4000;

/// The data directory and its layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The layout under `root` (nothing is created yet).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where runner jobs' run directories are (an allowed root).
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Where job records are.
    pub fn jobs(&self) -> PathBuf {
        self.root.join("jobs")
    }

    /// Where bundles are written.
    pub fn exports(&self) -> PathBuf {
        self.root.join("exports")
    }

    /// Creates the data directory and `runs/` and `jobs/` (private, 0700)
    /// if absent.
    pub fn ensure(&self) -> std::io::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        for dir in [self.root.clone(), self.runs(), self.jobs()] {
            builder.create(&dir)?;
        }
        Ok(())
    }

    /// Creates a new, empty run directory (0700) for a job named after
    /// `name` under [`DataDir::runs`] and registers it at once, so the UI
    /// can open the run while the job runs.
    pub fn create_job_run(&self, registry: &Registry, name: &str) -> Result<RunRecord, Error> {
        let id = RunId::generate(name)?;
        let dir = self.runs().join(id.as_str());
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|source| Error::Io {
                context: "creating the job's run directory",
                source,
            })?;
        registry.import(&dir, Some(id.as_str()))
    }
}

/// Random bytes from the OS as lower-case hex (`2 * bytes` digits).
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The file holding the remembered object-storage roots.
const S3_ROOTS: &str = "s3-roots.json";

impl DataDir {
    /// The object-storage roots (`s3://BUCKET/PREFIX`, as their URLs)
    /// `lab serve` was given before, which later servers on this data dir
    /// list too until forgotten. A missing file is none; an unreadable or
    /// corrupt one is an error naming it.
    pub fn s3_roots(&self) -> std::io::Result<Vec<String>> {
        let file = self.root().join(S3_ROOTS);
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", file.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Remembers `roots` beside those remembered (written atomically).
    pub fn remember_s3_roots(&self, roots: &[String]) -> std::io::Result<()> {
        let mut known = self.s3_roots()?;
        let before = known.len();
        for root in roots {
            if !known.contains(root) {
                known.push(root.clone());
            }
        }
        if known.len() == before {
            return Ok(());
        }
        self.ensure()?;
        write_json(self.root(), S3_ROOTS, &known)
    }

    /// Forgets the remembered root `url`; whether it was remembered.
    pub fn forget_s3_root(&self, url: &str) -> std::io::Result<bool> {
        let mut known = self.s3_roots()?;
        let before = known.len();
        known.retain(|r| r.trim_end_matches('/') != url.trim_end_matches('/'));
        if known.len() == before {
            return Ok(false);
        }
        write_json(self.root(), S3_ROOTS, &known)?;
        Ok(true)
    }
}

/// Writes `bytes` to `dir/name` atomically (see the module docs), mode 0600.
pub fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", random_hex(8)?));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes `value` as pretty JSON (with a final newline) to `dir/name`
/// atomically: the one JSON writer of the data directory.
pub fn write_json(dir: &Path, name: &str, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_bytes(dir, name, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_storage_roots_are_remembered_once_and_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path());
        assert!(data.s3_roots().unwrap().is_empty());
        data.remember_s3_roots(&["s3://a/p".to_owned(), "s3://b".to_owned()])
            .unwrap();
        data.remember_s3_roots(&["s3://a/p".to_owned()]).unwrap();
        assert_eq!(data.s3_roots().unwrap(), ["s3://a/p", "s3://b"]);
        assert!(data.forget_s3_root("s3://a/p/").unwrap());
        assert!(!data.forget_s3_root("s3://a/p").unwrap());
        assert_eq!(data.s3_roots().unwrap(), ["s3://b"]);
        std::fs::write(tmp.path().join(S3_ROOTS), "not json").unwrap();
        assert!(data.s3_roots().is_err());
    }

    #[test]
    fn writes_replace_whole_files_and_never_follow_planted_names() {
        let dir = std::env::temp_dir().join(format!("lab-datadir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write_json(&dir, "a.json", &serde_json::json!({"v": 1})).unwrap();
        write_json(&dir, "a.json", &serde_json::json!({"v": 2})).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("a.json")).unwrap(),
            "{\n  \"v\": 2\n}\n"
        );
        // A link planted at the final name is replaced, not written through.
        let outside = dir.join("outside.txt");
        std::fs::write(&outside, "keep").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("b.json")).unwrap();
        write_json(&dir, "b.json", &serde_json::json!(true)).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert!(
            !std::fs::symlink_metadata(dir.join("b.json"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // No temp file is left behind.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty());
        assert_eq!(random_hex(4).unwrap().len(), 8);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
