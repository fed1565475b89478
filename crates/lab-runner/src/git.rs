//! The git commit of a job's working directory, read from `.git` directly:
//! no git process, so no repository config (hooks, `core.fsmonitor`,
//! filters) ever runs. Every read is small and bounded, and made the way
//! SPEC §5 asks of provenance reads: a non-blocking, no-follow open of a
//! regular file (a FIFO, device, directory or link named `.git`, `HEAD` or a
//! ref is no repository), off the async workers (the caller's
//! `spawn_blocking`). The walk up to `.git` stops at a directory that is not
//! the Lab's user's, and a `.git` that is not its user's is not used: another
//! user of the machine cannot choose the commit a job's provenance records.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::files::open_regular_nofollow;

/// Largest file read from `.git` (HEAD, a ref, `packed-refs`).
const MAX_READ: u64 = 1 << 20;

fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = open_regular_nofollow(path).ok()?;
    let mut text = String::new();
    file.take(MAX_READ).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Whether `meta` belongs to the Lab's user (its effective uid).
fn ours(meta: &std::fs::Metadata) -> bool {
    meta.uid() == rustix::process::geteuid().as_raw()
}

fn is_object_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The git directory of the work tree containing `dir`: `.git` as a
/// directory, or the `gitdir:` a `.git` file names (worktrees, submodules).
/// The walk goes up at most 64 directories and stops at the first that is
/// not the Lab's user's; the `.git` found (never through a link) and the
/// git directory it leads to must be the Lab's user's too.
fn git_dir(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    for top in dir.ancestors().take(64) {
        if !std::fs::symlink_metadata(top).is_ok_and(|m| ours(&m)) {
            return None;
        }
        let dot_git = top.join(".git");
        let Ok(meta) = std::fs::symlink_metadata(&dot_git) else {
            continue;
        };
        if !ours(&meta) {
            return None;
        }
        let git = if meta.is_dir() {
            dot_git
        } else {
            let text = read_small(&dot_git)?;
            let target = text.trim().strip_prefix("gitdir:")?.trim();
            top.join(target)
        };
        let owned_dir = std::fs::symlink_metadata(&git).is_ok_and(|m| m.is_dir() && ours(&m));
        return owned_dir.then(|| (top.to_path_buf(), git));
    }
    None
}

/// Resolves a ref name to an object id through loose refs, then
/// `packed-refs` (also in the common dir of a worktree).
fn resolve_ref(git: &Path, name: &str) -> Option<String> {
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    let common = read_small(&git.join("commondir"))
        .map(|c| git.join(c.trim()))
        .unwrap_or_else(|| git.to_path_buf());
    for base in [git, common.as_path()] {
        if let Some(id) = read_small(&base.join(name)).map(|t| t.trim().to_owned())
            && is_object_id(&id)
        {
            return Some(id);
        }
        if let Some(packed) = read_small(&base.join("packed-refs")) {
            for line in packed.lines() {
                if let Some((id, refname)) = line.split_once(' ')
                    && refname == name
                    && is_object_id(id)
                {
                    return Some(id.to_owned());
                }
            }
        }
    }
    None
}

/// `{"commit", "branch", "work_tree", "dirty"}` for `dir`, or `null` when it
/// is not in a git work tree of the Lab's user. `dirty` is `null`: telling
/// needs the index and every file hashed, which the Lab does not do.
/// Blocking file reads: call it off the async workers.
pub fn describe(dir: &Path) -> Value {
    let Some((top, git)) = git_dir(dir) else {
        return Value::Null;
    };
    let Some(head) = read_small(&git.join("HEAD")) else {
        return Value::Null;
    };
    let head = head.trim();
    let (commit, branch) = match head.strip_prefix("ref:") {
        Some(name) => {
            let name = name.trim();
            (
                resolve_ref(&git, name),
                name.strip_prefix("refs/heads/").map(str::to_owned),
            )
        }
        None if is_object_id(head) => (Some(head.to_owned()), None),
        None => (None, None),
    };
    json!({
        "commit": commit,
        "branch": branch,
        "work_tree": top.display().to_string(),
        "dirty": Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    /// A scratch directory holding `.git/refs/heads` and `src/`.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(dir.join(".git/refs/heads")).unwrap();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        (tmp, dir)
    }

    fn fifo(path: &Path) {
        lab_fs::fuzz::make_fifo(path).unwrap();
    }

    /// `describe(dir)` on a thread: it must answer within 5 s.
    fn describe_promptly(dir: &Path) -> Value {
        let (tx, rx) = mpsc::channel();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(describe(&dir));
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("provenance blocked on a git read")
    }

    #[test]
    fn loose_packed_and_detached_heads() {
        let (_tmp, dir) = scratch();
        std::fs::write(dir.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(dir.join(".git/refs/heads/main"), format!("{ID}\n")).unwrap();
        let got = describe(&dir.join("src"));
        assert_eq!(got["commit"], ID);
        assert_eq!(got["branch"], "main");
        std::fs::remove_file(dir.join(".git/refs/heads/main")).unwrap();
        std::fs::write(
            dir.join(".git/packed-refs"),
            format!("# pack-refs with: peeled\n{ID} refs/heads/main\n"),
        )
        .unwrap();
        assert_eq!(describe(&dir)["commit"], ID);
        std::fs::write(dir.join(".git/HEAD"), format!("{ID}\n")).unwrap();
        let got = describe(&dir);
        assert_eq!(got["commit"], ID);
        assert_eq!(got["branch"], Value::Null);
    }

    #[test]
    fn hostile_refs_and_no_repository() {
        let (_tmp, dir) = scratch();
        std::fs::write(dir.join(".git/HEAD"), "ref: refs/../../../etc/passwd\n").unwrap();
        assert_eq!(describe(&dir)["commit"], Value::Null);
        std::fs::remove_dir_all(dir.join(".git")).unwrap();
        assert_eq!(describe(&dir.join("src")), Value::Null);
    }

    #[test]
    fn a_fifo_named_dot_git_answers_promptly_without_a_commit() {
        let (_tmp, dir) = scratch();
        std::fs::remove_dir_all(dir.join(".git")).unwrap();
        fifo(&dir.join(".git"));
        assert_eq!(describe_promptly(&dir.join("src")), Value::Null);
    }

    #[test]
    fn fifos_inside_dot_git_answer_promptly_without_a_commit() {
        let (_tmp, dir) = scratch();
        fifo(&dir.join(".git/HEAD"));
        assert_eq!(describe_promptly(&dir), Value::Null);
        // HEAD readable, the ref it names a FIFO (and packed-refs too).
        std::fs::remove_file(dir.join(".git/HEAD")).unwrap();
        std::fs::write(dir.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        fifo(&dir.join(".git/refs/heads/main"));
        fifo(&dir.join(".git/packed-refs"));
        let got = describe_promptly(&dir);
        assert_eq!(got["commit"], Value::Null, "{got}");
        assert_eq!(got["branch"], "main");
    }

    #[test]
    fn a_dot_git_file_that_is_a_fifo_or_names_one_answers_promptly() {
        let (_tmp, dir) = scratch();
        std::fs::rename(dir.join(".git"), dir.join("real-git")).unwrap();
        fifo(&dir.join("real-git/HEAD"));
        std::fs::write(dir.join(".git"), "gitdir: real-git\n").unwrap();
        assert_eq!(describe_promptly(&dir), Value::Null);
    }

    #[test]
    fn links_inside_dot_git_are_not_followed() {
        let (_tmp, dir) = scratch();
        // Canaries inside the scratch dir that would give a commit if read.
        std::fs::write(dir.join("canary-head"), format!("{ID}\n")).unwrap();
        std::fs::write(dir.join("canary-ref"), format!("{ID}\n")).unwrap();
        std::os::unix::fs::symlink(dir.join("canary-head"), dir.join(".git/HEAD")).unwrap();
        assert_eq!(describe(&dir), Value::Null);
        std::fs::remove_file(dir.join(".git/HEAD")).unwrap();
        std::fs::write(dir.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::os::unix::fs::symlink(dir.join("canary-ref"), dir.join(".git/refs/heads/main"))
            .unwrap();
        assert_eq!(describe(&dir)["commit"], Value::Null);
        // A `.git` that is itself a link to a repository is not used.
        let other = dir.join("src/.git");
        std::fs::create_dir_all(dir.join("elsewhere/refs/heads")).unwrap();
        std::fs::write(dir.join("elsewhere/HEAD"), format!("{ID}\n")).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), &other).unwrap();
        assert_eq!(describe(&dir.join("src")), Value::Null);
    }

    #[test]
    fn a_repository_in_a_directory_of_another_user_is_not_used() {
        // Tests run as root (CI), which may chown to nobody.
        let euid = rustix::process::geteuid().as_raw();
        let (_tmp, dir) = scratch();
        std::fs::write(dir.join(".git/HEAD"), format!("{ID}\n")).unwrap();
        // dir (nobody's, with a .git of ours) / mine (ours): the walk from
        // `mine` stops at `dir`.
        let mine = dir.join("src");
        assert_eq!(describe(&mine)["commit"], ID, "ours: used");
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        assert_eq!(describe(&mine), Value::Null, "a parent of another user");
        std::os::unix::fs::chown(&dir, Some(euid), None).unwrap();
        // A .git of another user in a directory of ours.
        std::os::unix::fs::chown(dir.join(".git"), Some(65534), Some(65534)).unwrap();
        assert_eq!(describe(&mine), Value::Null, "a .git of another user");
        std::os::unix::fs::chown(dir.join(".git"), Some(euid), None).unwrap();
        assert_eq!(describe(&mine)["commit"], ID);
    }
}
