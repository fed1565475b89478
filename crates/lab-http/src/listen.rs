//! Where the server listens, and what it refuses there (SPEC §3), inside
//! the library so an embedder gets the same refusals the binary makes: a
//! TCP address that is not loopback unless explicitly allowed; a Unix
//! socket only in a directory of this user's with mode 0700 (created so
//! when absent, never chmod-ed), the socket itself 0600, a stale socket of
//! ours replaced and anything else refused; the access key written, when
//! asked, only to a new 0600 file (never through a link) and never where a
//! job could read it; both removed when the server stops.
//!
//! These are the Lab's own files — its socket and its key file — never a
//! run's: xtask's `lab_http_never_touches_the_filesystem_directly` exempts
//! this module by name for them.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::auth::AccessKey;

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    /// A TCP address (port 0 picks a free port).
    Tcp(SocketAddr),
    /// A Unix socket at this path.
    Unix(PathBuf),
}

/// Why the server will not listen (or write its key file) there.
#[derive(Debug)]
pub enum ListenError {
    /// A TCP address that is not loopback, without
    /// [`Config::allow_external`](crate::Config::allow_external).
    External(SocketAddr),
    /// The socket's directory is not a directory of this user's with mode
    /// 0700: what it is.
    SocketDirectory {
        /// The directory.
        dir: PathBuf,
        /// What it is instead.
        found: String,
    },
    /// A server answers on the socket already.
    SocketInUse(PathBuf),
    /// Something that is not a stale socket of ours is at the path.
    SocketOccupied(PathBuf),
    /// The key file would lie where a job could read it: under this place.
    KeyFilePlace {
        /// The key file asked for.
        file: PathBuf,
        /// The place it lies under.
        place: PathBuf,
        /// What that place is ("the allowed root", …).
        what: &'static str,
    },
    /// An I/O error, and what was being done.
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl ListenError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ListenError {
        let context = context.into();
        move |source| ListenError::Io { context, source }
    }
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenError::External(addr) => write!(
                f,
                "refusing to listen on non-loopback address {addr}: the Lab serves this machine \
                 only unless external access is allowed explicitly"
            ),
            ListenError::SocketDirectory { dir, found } => write!(
                f,
                "refusing the socket directory {}: it must be a directory of yours with mode 0700 \
                 (it is {found}); it is never chmod-ed",
                dir.display()
            ),
            ListenError::SocketInUse(path) => {
                write!(f, "{} is in use by a running server", path.display())
            }
            ListenError::SocketOccupied(path) => write!(
                f,
                "refusing to replace {}: it exists and is not a stale socket of yours",
                path.display()
            ),
            ListenError::KeyFilePlace { file, place, what } => write!(
                f,
                "refusing the key file {}: it lies under {what} {}, where a job could read it; \
                 put it outside every allowed root and [runner] read_paths (e.g. in \
                 $XDG_RUNTIME_DIR)",
                file.display(),
                place.display()
            ),
            ListenError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for ListenError {}

impl From<ListenError> for std::io::Error {
    fn from(e: ListenError) -> Self {
        let kind = match &e {
            ListenError::Io { source, .. } => source.kind(),
            _ => std::io::ErrorKind::PermissionDenied,
        };
        std::io::Error::new(kind, e)
    }
}

/// Refuses a TCP address that is not loopback unless `allow_external`.
pub(crate) fn check_tcp(addr: SocketAddr, allow_external: bool) -> Result<(), ListenError> {
    if addr.ip().is_loopback() || allow_external {
        Ok(())
    } else {
        Err(ListenError::External(addr))
    }
}

/// This process's effective uid, from procfs (no `unsafe` here).
fn effective_uid() -> Result<u32, ListenError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(ListenError::io("reading /proc/self/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ListenError::Io {
            context: "reading /proc/self/status".into(),
            source: std::io::Error::other("no Uid line"),
        })
}

/// Checks the socket's directory: a directory of this user's, mode 0700.
fn check_socket_dir(dir: &Path, uid: u32) -> Result<(), ListenError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(dir).map_err(ListenError::io(format!(
        "socket directory {}",
        dir.display()
    )))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o777 != 0o700 {
        return Err(ListenError::SocketDirectory {
            dir: dir.to_owned(),
            found: format!(
                "{}, owner {}, mode {:o}",
                if meta.is_dir() {
                    "a directory"
                } else {
                    "not a directory"
                },
                meta.uid(),
                meta.permissions().mode() & 0o7777
            ),
        });
    }
    Ok(())
}

/// Prepares `path` for a Unix socket: its directory is created 0700 if
/// absent, and an existing one must be ours and 0700 (never chmod-ed); a
/// socket of ours that refuses connections is stale and removed; anything
/// else at `path` is refused.
pub fn prepare_unix_socket(path: &Path) -> Result<(), ListenError> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
    let uid = effective_uid()?;
    let dir = path.parent().ok_or_else(|| ListenError::Io {
        context: format!("socket path {}", path.display()),
        source: std::io::Error::other("it has no directory"),
    })?;
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(ListenError::io(format!(
                    "creating the socket directory {}",
                    dir.display()
                )))?;
        }
        Err(e) => {
            return Err(ListenError::io(format!(
                "socket directory {}",
                dir.display()
            ))(e));
        }
        Ok(_) => check_socket_dir(dir, uid)?,
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ListenError::io(format!("socket path {}", path.display()))(
            e,
        )),
        Ok(meta) if meta.file_type().is_socket() && meta.uid() == uid => {
            match std::os::unix::net::UnixStream::connect(path) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(ListenError::io(format!(
                        "removing the stale socket {}",
                        path.display()
                    )))
                }
                Ok(_) => Err(ListenError::SocketInUse(path.to_owned())),
                Err(e) => Err(ListenError::io(format!("probing {}", path.display()))(e)),
            }
        }
        Ok(_) => Err(ListenError::SocketOccupied(path.to_owned())),
    }
}

/// What `serve` checks of a Unix listener it is handed: its directory is
/// this user's and 0700; then the socket is made 0600.
pub(crate) fn secure_unix_socket(path: &Path) -> Result<(), ListenError> {
    use std::os::unix::fs::PermissionsExt;
    let uid = effective_uid()?;
    let dir = path.parent().ok_or_else(|| ListenError::Io {
        context: format!("socket path {}", path.display()),
        source: std::io::Error::other("it has no directory"),
    })?;
    check_socket_dir(dir, uid)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(ListenError::io(
        format!("making {} mode 0600", path.display()),
    ))
}

/// Refuses a key file under any of `places` (each with what it is).
pub(crate) fn check_key_file_place(
    file: &Path,
    places: &[(PathBuf, &'static str)],
) -> Result<(), ListenError> {
    let real = lab_registry::canonical_as_far_as_exists(file);
    for (place, what) in places {
        let place = lab_registry::canonical_as_far_as_exists(place);
        if real.starts_with(&place) {
            return Err(ListenError::KeyFilePlace {
                file: file.to_owned(),
                place,
                what,
            });
        }
    }
    Ok(())
}

/// Writes the access key to `path`: created exclusively (never through a
/// link), mode 0600.
pub(crate) fn write_key_file(path: &Path, key: &AccessKey) -> Result<(), ListenError> {
    use std::os::unix::fs::OpenOptionsExt;
    const O_NOFOLLOW: i32 = 0o400000;
    let context = || {
        format!(
            "creating the key file {} (it must not exist)",
            path.display()
        )
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(O_NOFOLLOW)
        .open(path)
        .map_err(ListenError::io(context()))?;
    file.write_all(format!("{}\n", key.as_str()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(ListenError::io(context()))
}

/// Removes what a server made when it stops (its socket, its key file).
#[derive(Debug, Default)]
pub(crate) struct Leftovers(Vec<PathBuf>);

impl Leftovers {
    pub(crate) fn push(&mut self, path: PathBuf) {
        self.0.push(path);
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
