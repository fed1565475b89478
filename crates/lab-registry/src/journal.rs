//! The journal's line format, as pure functions from bytes to typed results.
//!
//! `registry.log` is a header line and then one line per locked update:
//!
//! ```text
//! c5c7df85 {"journal":{"version":1,"generation":4}}
//! 9566b0b5 {"update":[{"add":{"id":"exp-1-3f9c2d","root":"/data/runs/exp-1","imported_at":1700000000}}]}
//! 783a3e4b {"update":[{"forget":{"id":"exp-1-3f9c2d"}}]}
//! ```
//!
//! Each line is eight lower-case hex digits of the CRC-32 (zlib's, via
//! `crc32fast`) of the JSON text after the space, the JSON text, and `\n`.
//! An update is one line however many changes it holds, so an update
//! interrupted by a crash is lost whole, never half applied: every line but
//! the last was synced before the next one was written, so only the last
//! can be torn.

use std::path::PathBuf;

use crate::{RunId, RunRecord};

/// The journal format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;

/// One line of the journal (a persisted form, apart from the in-memory
/// state).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Line {
    /// The first line: the journal's format, and the generation the
    /// snapshot it follows names (a journal whose generation is not the
    /// snapshot's is stale and ignored).
    Journal {
        /// The journal format version.
        version: u32,
        /// The generation.
        generation: u64,
    },
    /// One locked update's changes, applied in order.
    Update(Vec<Change>),
}

/// One change to the registry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Change {
    /// A run was registered; its key is no longer forgotten.
    Add(RunRecord),
    /// A run was forgotten; its key is remembered as forgotten.
    Forget {
        /// The run.
        id: RunId,
    },
    /// A run's id changed (to its stable id, when a registry from before
    /// stable ids is opened); the old id stays an alias of the run.
    Rename {
        /// Its id before.
        from: RunId,
        /// Its id now.
        to: RunId,
    },
    /// Allowed roots were remembered (only ones not known before).
    Roots(Vec<PathBuf>),
    /// Remembered roots were forgotten (`lab forget-root`).
    ForgetRoots(Vec<PathBuf>),
}

/// The line for `line`, checksum and newline included.
pub(crate) fn encode(line: &Line) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(line)?;
    let mut out = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    out.extend_from_slice(&json);
    out.push(b'\n');
    Ok(out)
}

/// What a run of journal bytes holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The good lines, in order.
    pub(crate) lines: Vec<Line>,
    /// How many bytes the good lines take: where the next line starts.
    pub(crate) good_len: usize,
    /// What follows the good lines.
    pub(crate) tail: Tail,
}

/// What follows the good lines of a [`Scan`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Nothing.
    Clean,
    /// One last line that has no newline, or whose checksum fails, with
    /// nothing after it: a write torn by a crash, or one still under way.
    Torn {
        /// Its length in bytes.
        len: usize,
    },
    /// A line that is bad although more follows it, or whose checksum holds
    /// but whose text is not a journal line: corruption, not a torn write.
    Bad {
        /// Where the line starts, from the start of the bytes scanned.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads whole lines from `bytes` (which start at a line boundary) until
/// the first one that is not good.
pub(crate) fn scan(bytes: &[u8]) -> Scan {
    let mut lines = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
            return Scan {
                lines,
                good_len: at,
                tail: Tail::Torn { len: rest.len() },
            };
        };
        let is_last = at + newline + 1 == bytes.len();
        match decode(&rest[..newline]) {
            Ok(line) => lines.push(line),
            Err(Bad::Checksum) if is_last && !ends_in_a_good_line(&rest[..newline]) => {
                return Scan {
                    lines,
                    good_len: at,
                    tail: Tail::Torn { len: newline + 1 },
                };
            }
            Err(bad) => {
                return Scan {
                    lines,
                    good_len: at,
                    tail: Tail::Bad {
                        offset: at,
                        reason: bad.to_string(),
                    },
                };
            }
        }
        at += newline + 1;
    }
    Scan {
        lines,
        good_len: at,
        tail: Tail::Clean,
    }
}

/// Whether a bad line ends in a good one: a damaged line that lost its
/// newline, merged with the good line after it, is corruption, not a torn
/// write (a torn write is one line: its bytes hold no other line's).
fn ends_in_a_good_line(line: &[u8]) -> bool {
    (1..line.len().saturating_sub(9)).any(|start| {
        let rest = &line[start..];
        rest[..8]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            && rest[8] == b' '
            && decode(rest).is_ok()
    })
}

/// Why one line is not good.
enum Bad {
    /// The checksum is missing or does not match the text: the bytes are
    /// not what was written.
    Checksum,
    /// The checksum holds but the text is not a journal line.
    Text(String),
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Checksum => f.write_str("checksum mismatch"),
            Bad::Text(why) => write!(f, "not a journal line: {why}"),
        }
    }
}

fn decode(line: &[u8]) -> Result<Line, Bad> {
    if line.len() < 9 || line[8] != b' ' {
        return Err(Bad::Checksum);
    }
    let (crc, json) = (&line[..8], &line[9..]);
    if !crc
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(Bad::Checksum);
    }
    let crc = std::str::from_utf8(crc)
        .ok()
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or(Bad::Checksum)?;
    if crc32fast::hash(json) != crc {
        return Err(Bad::Checksum);
    }
    serde_json::from_slice(json).map_err(|e| Bad::Text(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may panic

    use super::*;
    use proptest::prelude::*;

    fn header(generation: u64) -> Line {
        Line::Journal {
            version: VERSION,
            generation,
        }
    }

    fn add(id: &str) -> Line {
        Line::Update(vec![Change::Add(RunRecord {
            id: RunId::parse(id).unwrap(),
            root: PathBuf::from(format!("/data/runs/{id}")),
            imported_at: 7,
            format: Some("lab".into()),
            entry: None,
            aliases: Vec::new(),
        })])
    }

    fn bytes(lines: &[Line]) -> Vec<u8> {
        lines.iter().flat_map(|l| encode(l).unwrap()).collect()
    }

    fn with_checksum(json: &str) -> Vec<u8> {
        format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())).into_bytes()
    }

    /// What scanning `input` gives: the number of good lines, their length,
    /// and the tail's kind.
    fn check(input: &[u8], good: usize, good_len: usize, tail: &str) {
        let scanned = scan(input);
        let kind = match &scanned.tail {
            Tail::Clean => "clean",
            Tail::Torn { len } => {
                assert_eq!(good_len + len, input.len());
                "torn"
            }
            Tail::Bad { offset, .. } => {
                assert_eq!(*offset, good_len);
                "bad"
            }
        };
        assert_eq!(
            (scanned.lines.len(), scanned.good_len, kind),
            (good, good_len, tail),
            "{}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn lines_are_written_as_the_module_docs_show() {
        // The checksums are zlib's CRC-32 (Python's `zlib.crc32` agrees).
        let run = RunRecord {
            id: RunId::parse("exp-1-3f9c2d").unwrap(),
            root: PathBuf::from("/data/runs/exp-1"),
            imported_at: 1_700_000_000,
            format: None,
            entry: None,
            aliases: Vec::new(),
        };
        let id = run.id.clone();
        let lines = [
            header(4),
            Line::Update(vec![Change::Add(run)]),
            Line::Update(vec![Change::Forget { id }]),
        ];
        let text = String::from_utf8(bytes(&lines)).unwrap();
        let docs: String = include_str!("journal.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```text"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", &l[4..]))
            .collect();
        assert_eq!(text, docs);
        assert_eq!(scan(text.as_bytes()).lines, lines);
    }

    #[test]
    fn lines_are_read_up_to_the_first_bad_one() {
        let three = bytes(&[header(1), add("a"), add("b")]);
        let first = encode(&header(1)).unwrap().len();
        let two = first + encode(&add("a")).unwrap().len();
        let flip = |at: usize| {
            let mut b = three.clone();
            b[at] ^= 0x01;
            b
        };
        let cases: Vec<(Vec<u8>, usize, usize, &str)> = vec![
            (Vec::new(), 0, 0, "clean"),
            (three.clone(), 3, three.len(), "clean"),
            // The last line without its newline, or cut short.
            (three[..three.len() - 1].to_vec(), 2, two, "torn"),
            (three[..two + 5].to_vec(), 2, two, "torn"),
            (three[..two + 1].to_vec(), 2, two, "torn"),
            // The last line's text or checksum damaged, newline intact.
            (flip(three.len() - 3), 2, two, "torn"),
            (flip(two + 2), 2, two, "torn"),
            // Zeros where a crash left the last line's blocks unwritten.
            ([&three[..two], &[0u8; 40][..]].concat(), 2, two, "torn"),
            (
                [&three[..two], &[0u8; 40][..], b"\n"].concat(),
                2,
                two,
                "torn",
            ),
            // A damaged line with good lines after it is corruption.
            (flip(first + 12), 1, first, "bad"),
            (flip(3), 0, 0, "bad"),
            // Even when it lost its newline and ran into the next one.
            (
                [&three[..first + 20], &three[two..]].concat(),
                1,
                first,
                "bad",
            ),
            (
                [&three[..first], &[0u8; 30][..], &three[two..]].concat(),
                1,
                first,
                "bad",
            ),
            // So is a damaged line followed by a torn one.
            (
                flip(first + 12)[..three.len() - 1].to_vec(),
                1,
                first,
                "bad",
            ),
            // A line whose checksum holds but which is not a journal line.
            (
                [&three[..], &with_checksum(r#"{"nope":1}"#)].concat(),
                3,
                three.len(),
                "bad",
            ),
            ([&with_checksum("{}"), &three[..]].concat(), 0, 0, "bad"),
            (
                [&three[..], &with_checksum("{}")].concat(),
                3,
                three.len(),
                "bad",
            ),
            // Upper-case or short checksums are not ours.
            (b"1C291CA3 {}\n".to_vec(), 0, 0, "torn"),
            (b"1c29 {}\n".to_vec(), 0, 0, "torn"),
        ];
        for (input, good, good_len, tail) in cases {
            check(&input, good, good_len, tail);
        }
    }

    proptest! {
        /// Cut anywhere, a journal of good lines scans as a prefix of its
        /// lines and, at most, a torn tail: never as corruption, so a reader
        /// racing a writer's append never reports one.
        #[test]
        fn a_journal_cut_anywhere_is_a_prefix_and_a_torn_tail(
            ids in proptest::collection::vec("[a-z][a-z0-9]{0,8}", 0..6),
            cut in any::<proptest::sample::Index>(),
        ) {
            let mut lines = vec![header(3)];
            lines.extend(ids.iter().map(|id| add(id)));
            let all = bytes(&lines);
            let cut = cut.index(all.len() + 1);
            let scanned = scan(&all[..cut]);
            let bad = matches!(scanned.tail, Tail::Bad { .. });
            prop_assert!(!bad, "{:?}", scanned.tail);
            prop_assert_eq!(&scanned.lines[..], &lines[..scanned.lines.len()]);
            prop_assert_eq!(
                scanned.good_len,
                bytes(&lines[..scanned.lines.len()]).len()
            );
            prop_assert_eq!(scanned.tail == Tail::Clean, scanned.good_len == cut);
        }
    }
}
