//! Oracles for the fuzz targets (`crates/lab-fs/fuzz`) and the property
//! tests: a few lines of glue call these on arbitrary input. Not an API.

use std::path::{Path, PathBuf};

use crate::Allowlist;
use crate::bundle::unpack_bundle_ambient;

/// Unpacks `bundle` (any bytes) into a fresh scratch parent beside an
/// `outside/` directory and checks, whatever the bytes: a refused bundle
/// leaves nothing in the parent (no run, no staging directory); an
/// accepted one leaves exactly its run directory there, holding only
/// directories and regular files with one link each, every file's path an
/// allowlisted artifact name; and nothing outside the parent changed.
/// Panics when the oracle fails; the scratch directory is removed.
/// Returns whether the bundle was unpacked.
pub fn check_unpack(bundle: &[u8]) -> bool {
    let base = scratch("unpack");
    let parent = base.join("parent");
    let outside = base.join("outside");
    for dir in [&parent, &outside] {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("scratch {}: {e}", dir.display()));
    }
    std::fs::write(outside.join("canary.md"), "canary")
        .unwrap_or_else(|e| panic!("the canary: {e}"));
    let outcome = std::panic::catch_unwind(|| {
        let before = tree(&base);
        let result = unpack_bundle_ambient(bundle, &parent, None, &Allowlist::default());
        let left = names(&parent);
        match &result {
            Err(_) => assert!(left.is_empty(), "a refused bundle left {left:?}"),
            Ok(unpacked) => {
                let run = unpacked
                    .dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                assert_eq!(
                    left,
                    run.into_iter().collect::<Vec<_>>(),
                    "only the run is left"
                );
                for (rel, kind) in tree(&unpacked.dir) {
                    match kind {
                        Kind::Dir => {}
                        Kind::File { links } => {
                            assert_eq!(links, 1, "{rel}: a file with another name");
                            assert!(
                                rel == crate::bundle::MANIFEST
                                    || Allowlist::default().check(&rel).is_ok(),
                                "{rel}: not an allowlisted name"
                            );
                        }
                        Kind::Other => panic!("{rel}: neither a file nor a directory"),
                    }
                }
            }
        }
        // Nothing changed outside the parent.
        let after: Vec<(String, Kind)> = tree(&base)
            .into_iter()
            .filter(|(rel, _)| !rel.starts_with("parent/"))
            .collect();
        let before: Vec<(String, Kind)> = before
            .into_iter()
            .filter(|(rel, _)| !rel.starts_with("parent/"))
            .collect();
        assert_eq!(after, before, "something changed outside the parent");
        assert_eq!(
            std::fs::read_to_string(outside.join("canary.md"))
                .ok()
                .as_deref(),
            Some("canary")
        );
        result.is_ok()
    });
    let _ = std::fs::remove_dir_all(&base);
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    File { links: u64 },
    Other,
}

/// Every entry under `dir` (links not followed), relative, sorted.
fn tree(dir: &Path) -> Vec<(String, Kind)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = rel.join(entry.file_name());
            let Ok(meta) = std::fs::symlink_metadata(dir.join(&path)) else {
                continue;
            };
            let kind = if meta.file_type().is_dir() {
                todo.push(path.clone());
                Kind::Dir
            } else if meta.file_type().is_file() {
                Kind::File {
                    links: meta.nlink(),
                }
            } else {
                Kind::Other
            };
            out.push((path.to_string_lossy().into_owned(), kind));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A fresh directory name under the system temp dir.
fn scratch(what: &str) -> PathBuf {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!("lab-fs-{what}-{}-{name}", std::process::id()))
}
