//! What the binary's integration tests share: the binary, and (from
//! lab-test-support) starting `lab serve` and reading its address and key.

#![allow(dead_code)] // each test binary uses part of it

use std::io::BufReader;
use std::process::{Child, Command, Stdio};

#[allow(unused_imports)] // not every test binary names the type
pub use lab_test_support::lab::{Served, serve};

/// The binary under test.
pub const LAB: &str = env!("CARGO_BIN_EXE_lab");

/// Spawns `command` (a `lab … serve --bind unix:…` command) and returns the
/// child once it printed its listening line (and the login link).
pub fn serve_socket(mut command: Command) -> Child {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let listening =
        lab_test_support::lab::read_listening(&mut BufReader::new(child.stdout.take().unwrap()))
            .unwrap();
    assert!(listening.base.starts_with("unix:"), "{listening:?}");
    child
}

/// A scratch directory outside `/tmp` and `/dev/shm` (which a job sees as
/// its own private tmpfs), wherever the checkout and its target dir are: so
/// what a job is refused there is refused on the real path. `/var/tmp`.
pub fn outside_tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lab-test-")
        .tempdir_in("/var/tmp")
        .expect("a scratch directory in /var/tmp")
}
