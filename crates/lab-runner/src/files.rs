//! Files the runner keeps or tidies: the capped logs, the devices a job
//! gets, overlayfs's work directory; and the one open of a file outside any
//! run root that provenance reads with.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Opens `path` (an absolute path outside any run root: ambient authority)
/// for reading the way every provenance read does (SPEC §5 Runner): never
/// through a final symlink (`O_NOFOLLOW`), never waiting on a FIFO or a
/// device (`O_NONBLOCK`), and only a regular file (checked on the opened
/// descriptor, so a swap after the check cannot matter). Call it off the
/// async workers.
pub(crate) fn open_regular_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// The text of the regular file at `path` (opened as
/// [`open_regular_nofollow`] does), or `None` when it holds more than `max`
/// bytes (at most `max + 1` are read).
pub(crate) fn read_regular_capped(path: &Path, max: u64) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let mut text = String::new();
    open_regular_nofollow(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    Ok((text.len() as u64 <= max).then_some(text))
}

/// A log file of the Lab's (created exclusively in the run directory, where
/// the job cannot write) holding at most about `cap` bytes of output: the
/// first half as it arrives, the last half kept in memory and written at the
/// end after a marker saying how much was left out between.
pub(crate) struct CappedLog {
    file: std::fs::File,
    head_left: u64,
    tail: std::collections::VecDeque<u8>,
    tail_cap: usize,
    omitted: u64,
}

impl CappedLog {
    pub(crate) fn create(dir: &Path, name: &str, cap: u64) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(name))
            .map_err(Error::RunDir)?;
        Ok(Self {
            file,
            head_left: cap / 2,
            tail: std::collections::VecDeque::new(),
            tail_cap: usize::try_from(cap - cap / 2).unwrap_or(usize::MAX),
            omitted: 0,
        })
    }

    pub(crate) fn write(&mut self, mut bytes: &[u8]) {
        if self.head_left > 0 {
            let n = bytes
                .len()
                .min(usize::try_from(self.head_left).unwrap_or(usize::MAX));
            let _ = self.file.write_all(&bytes[..n]);
            self.head_left -= n as u64;
            bytes = &bytes[n..];
        }
        self.tail.extend(bytes);
        if self.tail.len() > self.tail_cap {
            let excess = self.tail.len() - self.tail_cap;
            self.tail.drain(..excess);
            self.omitted += excess as u64;
        }
    }

    pub(crate) fn finish(mut self) {
        if self.omitted > 0 {
            let _ = write!(
                self.file,
                "\n[lab: {} bytes of output omitted here: the log keeps its first and last parts ([runner] log_max_bytes)]\n",
                self.omitted
            );
        }
        let (a, b) = self.tail.as_slices();
        let _ = self.file.write_all(a);
        let _ = self.file.write_all(b);
        let _ = self.file.sync_all();
    }
}

/// `[runner] devices` entries expanded (`*` in the last segment) to the
/// device files that exist, canonical; anything that is not a device is left
/// out.
pub fn expand_devices(patterns: &[String]) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut found = Vec::new();
    for pattern in patterns {
        let path = Path::new(pattern);
        let candidates: Vec<PathBuf> =
            match (path.parent(), path.file_name().and_then(|f| f.to_str())) {
                (Some(dir), Some(file)) if file.contains('*') => {
                    let (prefix, suffix) = file.split_once('*').unwrap_or((file, ""));
                    std::fs::read_dir(dir)
                        .map(|entries| {
                            entries
                                .flatten()
                                .filter(|e| {
                                    let name = e.file_name();
                                    let name = name.to_string_lossy();
                                    name.len() >= prefix.len() + suffix.len()
                                        && name.starts_with(prefix)
                                        && name.ends_with(suffix)
                                })
                                .map(|e| e.path())
                                .collect()
                        })
                        .unwrap_or_default()
                }
                _ => vec![path.to_path_buf()],
            };
        for candidate in candidates {
            let Ok(canonical) = std::fs::canonicalize(&candidate) else {
                continue;
            };
            let is_device = std::fs::metadata(&canonical)
                .is_ok_and(|m| m.file_type().is_char_device() || m.file_type().is_block_device());
            if is_device && canonical.starts_with("/dev") {
                found.push(canonical);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Removes overlayfs's work directory (the kernel leaves a mode-000
/// `work/` in it).
pub(crate) fn remove_work_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ =
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
