//! The inputs a fuzz target keeps in the repository: its seeds
//! (`fuzz/seeds/TARGET/`, where a run starts) and every input it ever
//! failed on (`fuzz/regressions/TARGET/`). A crate's tests run its oracle
//! on each, so a finding stays a regression test once committed.

use std::path::{Path, PathBuf};

/// The committed inputs of `target` under `crate_dir/fuzz/`, seeds first,
/// each with its path. Panics when there are none (a target without seeds
/// is a mistake) or one cannot be read.
pub fn committed_inputs(crate_dir: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let dir = crate_dir.join("fuzz").join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| {
                e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                    .path()
            })
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path, bytes));
        }
    }
    assert!(
        !out.is_empty(),
        "no committed inputs for fuzz target {target} under {}",
        crate_dir.join("fuzz").display()
    );
    out
}
