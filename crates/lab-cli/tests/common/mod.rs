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
    /// The access key from the login link (`lab: open …/#key=KEY`).
    pub key: String,
    /// The login link itself.
    pub link: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `command` (a `lab … serve --bind 127.0.0.1:…` command; the caller
/// sets stderr) and returns once it printed `lab: listening on URL` and the
/// login link after it.
pub fn serve(mut command: Command) -> Served {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let mut open = String::new();
    out.read_line(&mut open).unwrap();
    let link = open
        .trim()
        .strip_prefix("lab: open ")
        .unwrap_or_else(|| panic!("no login link after the listening line: {open:?}"))
        .to_owned();
    let key = link
        .split_once("#key=")
        .map(|(_, key)| key.to_owned())
        .unwrap_or_else(|| panic!("no key in {link:?}"));
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
    Served {
        child,
        port,
        base,
        key,
        link,
    }
}

/// Spawns `command` (a `lab … serve --bind unix:…` command) and returns the
/// child once it printed its listening line (and the login link).
pub fn serve_socket(mut command: Command) -> Child {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("lab: listening on unix:"), "{line:?}");
    child
}
