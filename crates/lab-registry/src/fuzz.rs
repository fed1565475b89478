//! The registry's load as a fuzzing and property-testing oracle (issue
//! "every boundary fuzzed"): any bytes as `registry.json` and
//! `registry.log` open into a registry or an error — never a panic — and
//! a registry that opens is whole: ids unique and sorted, every root
//! absolute, every alias finding its run, and a second instance on the same files sees exactly the
//! same runs (nothing depends on what happened to be read first).
//! Used by `fuzz/fuzz_targets/load.rs` and the registry tests; not part of
//! the API.

use std::path::PathBuf;

use crate::Registry;

/// Opens a scratch data dir holding `snapshot` and `journal` (an empty
/// slice: the file is absent) and checks the oracle; panics when it
/// fails. The scratch dir is removed afterwards. Returns how many runs
/// loaded (`None`: an error).
#[doc(hidden)]
pub fn check_load(snapshot: &[u8], journal: &[u8]) -> Option<usize> {
    let dir = scratch();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("a scratch data dir: {e}"));
    if !snapshot.is_empty() {
        std::fs::write(dir.join("registry.json"), snapshot)
            .unwrap_or_else(|e| panic!("writing the snapshot: {e}"));
    }
    if !journal.is_empty() {
        std::fs::write(dir.join("registry.log"), journal)
            .unwrap_or_else(|e| panic!("writing the journal: {e}"));
    }
    let outcome = std::panic::catch_unwind(|| oracle(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The fuzz target's entry: the input split at its first NUL, snapshot
/// before, journal after.
#[doc(hidden)]
pub fn check_load_bytes(data: &[u8]) -> Option<usize> {
    match data.iter().position(|b| *b == 0) {
        Some(at) => check_load(&data[..at], &data[at + 1..]),
        None => check_load(data, &[]),
    }
}

fn oracle(dir: &std::path::Path) -> Option<usize> {
    let first = Registry::open(dir, &[]).ok()?;
    let runs = first
        .runs()
        .unwrap_or_else(|e| panic!("a registry that opened lists its runs: {e}"));
    for pair in runs.windows(2) {
        assert!(pair[0].id < pair[1].id, "ids unique and sorted");
    }
    for run in runs.iter() {
        assert!(
            run.root.is_absolute(),
            "a relative root loaded: {:?}",
            run.root
        );
        assert_eq!(first.get(&run.id).ok().as_ref(), Some(run));
        for alias in &run.aliases {
            assert_eq!(
                first.get(alias).ok().as_ref(),
                Some(run),
                "an alias finds its run"
            );
        }
    }
    let again = Registry::open(dir, &[])
        .unwrap_or_else(|e| panic!("a registry that opened once opens again: {e}"));
    assert_eq!(
        *again.runs().unwrap_or_else(|e| panic!("listed again: {e}")),
        *runs,
        "a second instance sees the same runs"
    );
    Some(runs.len())
}

/// A fresh directory name under the system temp dir.
fn scratch() -> PathBuf {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!("lab-registry-load-{}-{name}", std::process::id()))
}
