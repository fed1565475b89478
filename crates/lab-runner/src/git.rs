//! The git commit of a job's working directory, read from `.git` directly:
//! no git process, so no repository config (hooks, `core.fsmonitor`,
//! filters) ever runs. Every read is small and bounded.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Largest file read from `.git` (HEAD, a ref, `packed-refs`).
const MAX_READ: u64 = 1 << 20;

fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_READ).read_to_string(&mut text).ok()?;
    Some(text)
}

fn is_object_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The git directory of the work tree containing `dir`: `.git` as a
/// directory, or the `gitdir:` a `.git` file names (worktrees, submodules).
fn git_dir(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    for top in dir.ancestors().take(64) {
        let dot_git = top.join(".git");
        let Ok(meta) = std::fs::metadata(&dot_git) else {
            continue;
        };
        if meta.is_dir() {
            return Some((top.to_path_buf(), dot_git));
        }
        let text = read_small(&dot_git)?;
        let target = text.trim().strip_prefix("gitdir:")?.trim();
        return Some((top.to_path_buf(), top.join(target)));
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
/// is not in a git work tree. `dirty` is `null`: telling needs the index and
/// every file hashed, which the Lab does not do.
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

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lab-git-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".git/refs/heads")).unwrap();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        dir
    }

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn loose_packed_and_detached_heads() {
        let dir = scratch("loose");
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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostile_refs_and_no_repository() {
        let dir = scratch("hostile");
        std::fs::write(dir.join(".git/HEAD"), "ref: refs/../../../etc/passwd\n").unwrap();
        assert_eq!(describe(&dir)["commit"], Value::Null);
        std::fs::remove_dir_all(dir.join(".git")).unwrap();
        assert_eq!(describe(&dir.join("src")), Value::Null);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
