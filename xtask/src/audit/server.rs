//! Starting the real `lab` binary on the fixture and signing in to it.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use super::fixture::Fixture;
use super::probes::ENV_SECRET;

pub(super) struct Lab {
    pub(super) child: Child,
    pub(super) port: u16,
    pub(super) stderr: PathBuf,
    /// The access key from its login link.
    pub(super) key: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn lab_command(lab: &Path, fixture: &Fixture) -> Command {
    let mut cmd = Command::new(lab);
    cmd.arg("--data-dir")
        .arg(&fixture.data)
        .arg("--root")
        .arg(&fixture.runs)
        .env("AUDIT_API_KEY", ENV_SECRET)
        .stdin(Stdio::null());
    cmd
}

/// Starts `lab serve ARGS`, returns once it printed its listening line.
pub(super) fn start(lab: &Path, fixture: &Fixture, args: &[&str]) -> anyhow::Result<Lab> {
    let stderr = fixture.dir.join(format!("lab-stderr-{}.log", args.len()));
    let mut child = lab_command(lab, fixture)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr)?)
        .spawn()?;
    let listening = lab_test_support::lab::read_listening(&mut BufReader::new(
        child.stdout.take().context("no stdout")?,
    ))
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}; log: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        )
    })?;
    let (port, key) = (listening.port, listening.key);
    // Probes speak as the signed-in browser (the cookie; mutations still
    // need the page's token), but for those that say they are anonymous.
    crate::http::sign_in(port, &key).context("signing in with the printed key")?;
    Ok(Lab {
        child,
        port,
        stderr,
        key,
    })
}
