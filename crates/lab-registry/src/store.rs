//! The persisted registry: `registry.json`, versioned, replaced atomically
//! under an exclusive lock.

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, RunKey, RunRecord};

/// The registry file format version this build writes (it reads 1 too:
/// version 2 added `forgotten` and `roots`).
pub(crate) const VERSION: u32 = 2;

/// The persisted form, separate from in-memory types (STYLE.md).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    runs: Vec<RunRecord>,
    #[serde(default)]
    forgotten: Vec<RunKey>,
    #[serde(default)]
    roots: Vec<PathBuf>,
}

/// What the registry file holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct Contents {
    /// The registered runs.
    pub(crate) runs: Vec<RunRecord>,
    /// Runs that were forgotten: discovery does not bring them back (an
    /// explicit import does).
    pub(crate) forgotten: Vec<RunKey>,
    /// Allowed roots remembered from `lab serve --root` and the config.
    pub(crate) roots: Vec<PathBuf>,
}

/// Identifies one version of the file: a rename makes a new inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    file: PathBuf,
    lock: PathBuf,
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

impl Store {
    pub(crate) fn open(data_dir: &Path) -> Result<Self, Error> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(io("creating the data directory"))?;
        Ok(Self {
            dir: data_dir.to_path_buf(),
            file: data_dir.join("registry.json"),
            lock: data_dir.join("registry.lock"),
        })
    }

    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    pub(crate) fn stamp(&self) -> Result<Option<FileStamp>, Error> {
        match std::fs::metadata(&self.file) {
            Ok(m) => Ok(Some(FileStamp {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Corrupt {
                file: self.file.clone(),
                reason: e.to_string(),
            }),
        }
    }

    pub(crate) fn load(&self) -> Result<Contents, Error> {
        let corrupt = |reason: String| Error::Corrupt {
            file: self.file.clone(),
            reason,
        };
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => return Err(corrupt(e.to_string())),
        };
        let on_disk: OnDisk = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if on_disk.version != VERSION && on_disk.version != 1 {
            return Err(corrupt(format!(
                "format version {} is not supported (this build reads version {VERSION})",
                on_disk.version
            )));
        }
        let mut ids = std::collections::HashSet::new();
        for run in &on_disk.runs {
            if !run.root.is_absolute() {
                return Err(corrupt(format!("run {} has a relative root", run.id)));
            }
            if !ids.insert(&run.id) {
                return Err(corrupt(format!("run id {} appears twice", run.id)));
            }
        }
        for path in on_disk
            .forgotten
            .iter()
            .map(|k| &k.root)
            .chain(&on_disk.roots)
        {
            if !path.is_absolute() {
                return Err(corrupt(format!("{} is not absolute", path.display())));
            }
        }
        Ok(Contents {
            runs: on_disk.runs,
            forgotten: on_disk.forgotten,
            roots: on_disk.roots,
        })
    }

    /// Runs `change` on the current runs under the exclusive lock and, if it
    /// succeeds, replaces the file atomically.
    pub(crate) fn update<T>(
        &self,
        change: impl FnOnce(&mut Contents) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock)
            .map_err(io("opening the registry lock"))?;
        lock.lock().map_err(io("locking the registry"))?;
        let mut contents = self.load()?;
        let result = change(&mut contents)?;
        self.write(&contents)?;
        // The lock is released when `lock` is dropped (and by the kernel if
        // this process dies).
        drop(lock);
        Ok(result)
    }

    fn write(&self, contents: &Contents) -> Result<(), Error> {
        let body = serde_json::to_vec_pretty(&OnDisk {
            version: VERSION,
            runs: contents.runs.clone(),
            forgotten: contents.forgotten.clone(),
            roots: contents.roots.clone(),
        })
        .map_err(|e| Error::Io {
            context: "encoding the registry",
            source: std::io::Error::other(e),
        })?;
        let name = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "registry.json".to_owned());
        crate::data_dir::write_bytes(&self.dir, &name, &body).map_err(io("replacing the registry"))
    }
}
