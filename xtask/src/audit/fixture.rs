//! The audit's fixture: hostile runs made at run time in a temp dir.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use anyhow::Context;

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
    let runs = dir.join("runs");
    let good = runs.join("good");
    let outside = dir.join("outside");
    for d in [
        good.join("videos"),
        good.join(".git"),
        runs.join("sibling"),
        runs.join("big"),
        outside.clone(),
    ] {
        std::fs::create_dir_all(&d)?;
    }
    std::fs::copy(
        root().join("fixtures/runs/cartpole-ppo/output.mp4"),
        good.join("output.mp4"),
    )
    .context("copying the fixture video")?;
    std::fs::write(good.join("metrics.jsonl"), "{\"step\": 1, \"loss\": 0.5}\n")?;
    std::fs::write(good.join("notes.md"), "# audit run\n")?;
    std::fs::write(
        good.join("stdout.log"),
        format!("using key {ENV_SECRET}\naws AKIAIOSFODNN7EXAMPLE\n"),
    )?;
    std::fs::write(
        good.join("provenance.json"),
        format!("{{\"program\": \"train\", \"env\": {{\"AUDIT_API_KEY\": \"{ENV_SECRET}\"}}}}\n"),
    )?;
    for decoy in [
        ".env",
        "secret.txt",
        ".git/config",
        "videos/.hidden.mp4",
        "notes.html",
    ] {
        std::fs::write(
            good.join(decoy),
            format!("{DECOY_CANARY} OPENAI_API_KEY={ENV_SECRET}\n"),
        )?;
    }
    std::fs::write(
        runs.join("sibling/summary.json"),
        format!("{{\"x\": \"{DECOY_CANARY}\"}}"),
    )?;
    std::fs::write(outside.join("secret.txt"), OUTSIDE_CANARY)?;
    symlink(outside.join("secret.txt"), good.join("params.json"))?;
    symlink("../sibling/summary.json", good.join("summary.json"))?;
    symlink("/etc/passwd", good.join("stderr.log"))?;
    symlink(&outside, good.join("outside-link"))?;
    symlink(&outside, runs.join("escape-link"))?;
    std::fs::File::create(runs.join("big/output.mp4"))?.set_len(BIG_LEN)?;
    Ok(Fixture {
        data: dir.join("data"),
        dir,
        runs,
    })
}
