//! What provenance records of a program: its SHA-256, as the job sees it.
//! Read with a non-blocking, no-follow open of a regular file (SPEC §5),
//! off the async workers (the caller's `spawn_blocking`).

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::plan::StepPlan;

/// The SHA-256 of the program a step runs, as the job sees it: a program
/// inside the cwd is seen through the overlay, so when an earlier step left
/// its own copy in the job directory that copy is what runs and what is
/// hashed (`null` when the job put something there that is not a regular
/// file: what would run cannot be told). Blocking: call it off the async
/// workers.
pub(crate) fn program_hash(step: &StepPlan, cwd: Option<&Path>, job_dir: &Path) -> Option<String> {
    if let Some(cwd) = cwd {
        for path in [&step.exec_path, &step.path] {
            let Ok(rel) = path.strip_prefix(cwd) else {
                continue;
            };
            let opened = std::fs::canonicalize(job_dir)
                .map_err(lab_fs::Error::Io)
                .and_then(|dir| lab_fs::RunRoot::open_ambient(&dir))
                .and_then(|root| root.open_regular(rel));
            match opened {
                Ok(file) => return sha256_reader(file),
                Err(lab_fs::Error::NotFound) => {}
                Err(_) => return None,
            }
        }
    }
    sha256_file(&step.path)
}

/// The SHA-256 of the regular file at `path` (canonical: a link at its end
/// is not followed; a FIFO or device is not read).
pub(crate) fn sha256_file(path: &Path) -> Option<String> {
    sha256_reader(crate::files::open_regular_nofollow(path).ok()?)
}

pub(crate) fn sha256_reader(mut file: std::fs::File) -> Option<String> {
    let mut hash = Sha256::new();
    std::io::copy(&mut file, &mut HashWriter(&mut hash)).ok()?;
    Some(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
