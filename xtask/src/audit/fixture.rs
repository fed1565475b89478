//! The audit's fixture: hostile runs made at run time in a temp dir.

use std::path::PathBuf;

use lab_test_support::fixture::Tree;

use super::probes::{DECOY_CANARY, ENV_SECRET, OUTSIDE_CANARY};
use crate::root;

/// Size of the sparse "large video" (sparse: costs no disk).
pub(super) const BIG_LEN: u64 = 1 << 30;

pub(super) struct Fixture {
    pub(super) dir: PathBuf,
    pub(super) runs: PathBuf,
    pub(super) data: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Hostile runs: decoys, symlinks out, secrets in logs and provenance, a
/// large sparse video, and a run directory that is a link leaving the root.
pub(super) fn fixture() -> anyhow::Result<Fixture> {
    let dir = std::env::temp_dir().join(format!("lab-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = Tree::new(&dir);
    let outside = t.path("outside");
    t.dir("runs/good/videos")
        .dir("runs/good/.git")
        .dir("outside")
        .copy(
            "runs/good/output.mp4",
            root().join("fixtures/runs/cartpole-ppo/output.mp4"),
        )
        .file("runs/good/metrics.jsonl", "{\"step\": 1, \"loss\": 0.5}\n")
        .file("runs/good/notes.md", "# audit run\n")
        .file(
            "runs/good/stdout.log",
            format!("using key {ENV_SECRET}\naws AKIAIOSFODNN7EXAMPLE\n"),
        )
        .file(
            "runs/good/provenance.json",
            format!(
                "{{\"program\": \"train\", \"env\": {{\"AUDIT_API_KEY\": \"{ENV_SECRET}\"}}}}\n"
            ),
        );
    for decoy in [
        ".env",
        "secret.txt",
        ".git/config",
        "videos/.hidden.mp4",
        "notes.html",
    ] {
        t.file(
            &format!("runs/good/{decoy}"),
            format!("{DECOY_CANARY} OPENAI_API_KEY={ENV_SECRET}\n"),
        );
    }
    t.file(
        "runs/sibling/summary.json",
        format!("{{\"x\": \"{DECOY_CANARY}\"}}"),
    )
    .file("outside/secret.txt", OUTSIDE_CANARY)
    // A stand-in for /etc/passwd: the audit runs as root, and a link it
    // plants never leads at a system file.
    .file("outside/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    .link("runs/good/params.json", outside.join("secret.txt"))
    .link("runs/good/summary.json", "../sibling/summary.json")
    .link("runs/good/stderr.log", outside.join("passwd"))
    .link("runs/good/outside-link", &outside)
    .link("runs/escape-link", &outside)
    // A run of its own files (a directory holding only a video is no run).
    .file("runs/big/run.toml", "name = \"big\"\n")
    .sparse("runs/big/output.mp4", BIG_LEN);
    Ok(Fixture {
        data: dir.join("data"),
        runs: dir.join("runs"),
        dir,
    })
}
