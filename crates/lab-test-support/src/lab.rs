//! Starting `lab serve` and reading the two lines it prints first:
//! `lab: listening on ADDRESS` and `lab: open URL#key=KEY`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `lab serve`, killed when dropped.
#[derive(Debug)]
pub struct Served {
    /// The process.
    pub child: Child,
    /// Its loopback port (0 on a Unix socket).
    pub port: u16,
    /// What it listens on: `http://127.0.0.1:PORT/` or `unix:PATH`.
    pub base: String,
    /// The access key from the login link.
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

/// A child process killed and reaped when dropped: a server a test
/// started never outlives it, whatever assertion failed first.
#[derive(Debug)]
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first two lines of `lab serve`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// `http://127.0.0.1:PORT/` or `unix:PATH`.
    pub base: String,
    /// The TCP port (0 on a Unix socket).
    pub port: u16,
    /// The login link.
    pub link: String,
    /// The key in it.
    pub key: String,
}

/// Reads `lab: listening on …` and `lab: open …#key=…` from `out`.
pub fn read_listening(out: &mut impl BufRead) -> Result<Listening, String> {
    let mut line = String::new();
    out.read_line(&mut line).map_err(|e| e.to_string())?;
    let base = line
        .trim()
        .strip_prefix("lab: listening on ")
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .to_owned();
    let port = if base.starts_with("unix:") {
        0
    } else {
        base.trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("no port in {base:?}"))?
    };
    let mut open = String::new();
    out.read_line(&mut open).map_err(|e| e.to_string())?;
    let link = open
        .trim()
        .strip_prefix("lab: open ")
        .ok_or_else(|| format!("no login link after the listening line: {open:?}"))?
        .to_owned();
    let key = crate::http::key_of(&link).ok_or_else(|| format!("no key in {link:?}"))?;
    Ok(Listening {
        base,
        port,
        link,
        key,
    })
}

/// Spawns `command` (a `lab … serve …` command; the caller sets stderr) and
/// returns once it printed its listening line and login link.
pub fn serve(mut command: Command) -> Served {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start lab: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let listening = read_listening(&mut BufReader::new(stdout)).unwrap_or_else(|e| panic!("{e}"));
    Served {
        child,
        port: listening.port,
        base: listening.base,
        key: listening.key,
        link: listening.link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_lines_parse() {
        let text = "lab: listening on http://127.0.0.1:4321/\nlab: open http://127.0.0.1:4321/#key=abc-_9\n";
        let got = read_listening(&mut text.as_bytes()).unwrap();
        assert_eq!(got.port, 4321);
        assert_eq!(got.key, "abc-_9");
        let unix = "lab: listening on unix:/run/lab.sock\nlab: open http://localhost:7878/#key=k\n";
        let got = read_listening(&mut unix.as_bytes()).unwrap();
        assert_eq!((got.port, got.base.as_str()), (0, "unix:/run/lab.sock"));
        assert!(read_listening(&mut "lab: listening on http://127.0.0.1:1/\n".as_bytes()).is_err());
        assert!(read_listening(&mut "hello\n".as_bytes()).is_err());
    }
}
