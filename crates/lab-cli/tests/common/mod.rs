//! What the binary's integration tests share: starting `lab serve` and
//! reading its listening line.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The binary under test.
pub const LAB: &str = env!("CARGO_BIN_EXE_lab");

/// A running `lab serve`, killed when dropped.
pub struct Served {
    /// The process.
    pub child: Child,
    /// Its loopback port.
    pub port: u16,
    /// `http://127.0.0.1:PORT/`.
    pub base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `command` (a `lab … serve --bind 127.0.0.1:…` command; the caller
/// sets stderr) and returns once it printed `lab: listening on URL`.
pub fn serve(mut command: Command) -> Served {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("lab: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let port = base
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {base:?}"));
    Served { child, port, base }
}
