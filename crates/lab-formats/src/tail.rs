//! Following a file that is still being written: read only what was
//! appended since last time, keep an incomplete final record pending, and
//! start over when the file was replaced or shrank.

use std::io::BufRead as _;

use crate::storage::{RangeReader, Storage, StorageError, Version};

/// Where one file was left.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// Bytes of the file read so far (consumed or pending).
    offset: u64,
    /// The version of the file read (locally its device and inode), to
    /// notice a replacement.
    version: Option<Version>,
    /// Read but not yet consumed: an incomplete final record.
    pending: Vec<u8>,
    /// Why the file stopped being read (a bad record); cleared when the
    /// file is replaced or shrinks.
    failed: Option<String>,
}

/// What [`Tail::follow`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Followed {
    /// Nothing new (or the file failed before; see [`Tail::failed`]).
    Same,
    /// The file is not there (any more): what was read of it is
    /// forgotten (the tail starts over, the sink was restarted).
    Missing,
    /// New bytes were consumed after what was read before.
    Appended,
    /// The file was replaced or shrank: everything derived from it must be
    /// forgotten; it was read again from the start.
    Restarted,
}

impl Tail {
    /// Why the file is not read further, if it failed.
    pub(crate) fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Whether an incomplete final record is waiting for more bytes.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Reads what was appended to `name` and hands it to `sink`. At most
    /// `max_pending` bytes may wait unconsumed: a record larger than that
    /// is an error of this file. A file not there resets this tail and
    /// restarts `sink` ([`Followed::Missing`]).
    pub(crate) fn follow(
        &mut self,
        storage: &dyn Storage,
        name: &str,
        max_pending: usize,
        sink: &mut impl Sink,
    ) -> Result<Followed, String> {
        let stat = match storage.stat(name) {
            Ok(stat) => stat,
            Err(StorageError::NotFound) => {
                // Gone (or never there): nothing to show.
                *self = Tail::default();
                sink.restart();
                return Ok(Followed::Missing);
            }
            Err(e) => return Err(format!("{name}: {e}")),
        };
        let mut followed = Followed::Same;
        if self.version.as_ref() != Some(&stat.version) || stat.len < self.offset {
            *self = Tail {
                version: Some(stat.version.clone()),
                ..Tail::default()
            };
            sink.restart();
            followed = Followed::Restarted;
        }
        if self.failed.is_some() || stat.len == self.offset {
            return Ok(followed);
        }
        // Never read past the length seen now: a file growing while it is
        // read is picked up by the next call. Every range is of the
        // version seen: a file replaced meanwhile stops this pass, and the
        // next one starts it over.
        let mut file = RangeReader::new(storage, name, Some(stat.version), self.offset, stat.len);
        loop {
            let chunk = match file.fill_buf() {
                Ok([]) => break,
                Ok(chunk) => chunk,
                Err(e) if matches!(StorageError::from_read(&e), Some(StorageError::Changed)) => {
                    break;
                }
                Err(e) => return Err(format!("{name}: {e}")),
            };
            let n = chunk.len();
            self.offset += n as u64;
            // Consumed from the chunk itself when nothing is pending (no
            // copy of every byte read); only an incomplete final record
            // is kept.
            let consumed = if self.pending.is_empty() {
                consume_all(sink, chunk).map(|used| {
                    self.pending.extend_from_slice(&chunk[used..]);
                })
            } else {
                self.pending.extend_from_slice(chunk);
                consume_all(sink, &self.pending).map(|used| {
                    self.pending.drain(..used);
                })
            };
            file.consume(n);
            if let Err(why) = consumed {
                self.failed = Some(format!("{name}: {why}"));
                self.pending = Vec::new();
                return Ok(if followed == Followed::Same {
                    Followed::Appended
                } else {
                    followed
                });
            }
            if self.pending.len() > max_pending {
                self.failed = Some(format!(
                    "{name}: a record is longer than {max_pending} bytes"
                ));
                self.pending = Vec::new();
                break;
            }
        }
        // What waits is an incomplete record: a buffer grown for a large
        // one is not kept for as long as the reader is.
        if self.pending.capacity() > PENDING_KEPT.max(2 * self.pending.len()) {
            self.pending
                .shrink_to(self.pending.len().max(PENDING_KEPT / 2));
        }
        Ok(if followed == Followed::Same {
            Followed::Appended
        } else {
            followed
        })
    }
}

/// The most capacity a tail's pending buffer keeps between reads beyond
/// twice what it holds.
const PENDING_KEPT: usize = 64 * 1024;

/// Hands `bytes` to `sink` until it needs more: how many it used.
fn consume_all(sink: &mut impl Sink, bytes: &[u8]) -> Result<usize, String> {
    let mut start = 0;
    while start < bytes.len() {
        match sink.consume(&bytes[start..])? {
            0 => break,
            used => start += used.min(bytes.len() - start),
        }
    }
    Ok(start)
}

/// Where [`Tail::follow`] delivers a file's bytes.
pub(crate) trait Sink {
    /// The file was replaced or shrank: forget what was derived from it
    /// (called before anything of the new file is consumed).
    fn restart(&mut self);
    /// Uses a prefix of `bytes`: returns its length (0: more is needed),
    /// or an error that stops this file.
    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String>;
}

/// Feeds `bytes` to `sink` as a file's content arriving in `chunk`-sized
/// pieces, as the tail reader does: each piece appended to what is
/// pending, then consumed as far as the sink takes it. The error that
/// stopped it, if any.
pub(crate) fn feed(sink: &mut impl Sink, bytes: &[u8], chunk: usize) -> Result<(), String> {
    let mut pending: Vec<u8> = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        pending.extend_from_slice(piece);
        loop {
            let used = sink.consume(&pending)?;
            if used == 0 {
                break;
            }
            pending.drain(..used);
        }
    }
    Ok(())
}

/// The first complete line of `bytes` (without `\n` or `\r\n`) and the
/// bytes it used; `None` while the line is incomplete.
pub(crate) fn next_line(bytes: &[u8]) -> Option<(std::borrow::Cow<'_, str>, usize)> {
    let end = bytes.iter().position(|b| *b == b'\n')?;
    let raw = &bytes[..end];
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    Some((String::from_utf8_lossy(raw), end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        seen: Vec<String>,
        restarts: usize,
    }

    impl Sink for Collect {
        fn restart(&mut self) {
            self.restarts += 1;
        }
        fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
            Ok(next_line(bytes).map_or(0, |(line, used)| {
                self.seen.push(line.into_owned());
                used
            }))
        }
    }

    /// Records split across chunks (1 MiB) are whole when consumed, read
    /// straight from the chunk or joined with what was pending; a large
    /// record's buffer is not kept once it is consumed.
    #[test]
    fn records_across_chunks_are_whole_and_a_large_ones_buffer_is_let_go() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        // Lines of 1 KiB but one of 3 MiB: some end exactly where a chunk
        // does, others cross it.
        let mut text = String::new();
        let mut lines = Vec::new();
        for i in 0..2_500 {
            let len = if i == 1_000 { 3 << 20 } else { 1_000 + i % 50 };
            let line = format!("{i}-{}", "x".repeat(len));
            text.push_str(&line);
            text.push('\n');
            lines.push(line);
        }
        text.push_str("tail");
        std::fs::write(dir.join("big.jsonl"), &text).unwrap();
        let root = lab_fs::RunRoot::open_ambient(&dir).unwrap();
        let storage = crate::LocalStorage::new(&root);
        let mut tail = Tail::default();
        let mut sink = Collect::default();
        tail.follow(&storage, "big.jsonl", 4 << 20, &mut sink)
            .unwrap();
        assert_eq!(sink.seen, lines);
        assert_eq!(tail.pending(), 4);
        assert!(
            tail.pending.capacity() <= PENDING_KEPT,
            "{} bytes kept",
            tail.pending.capacity()
        );
    }

    #[test]
    fn appended_lines_are_read_once_and_a_partial_line_waits() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        let file = dir.join("m.jsonl");
        std::fs::write(&file, "a\nb\npart").unwrap();
        let root = lab_fs::RunRoot::open_ambient(&dir).unwrap();
        let storage = crate::LocalStorage::new(&root);
        let mut tail = Tail::default();
        let mut sink = Collect::default();
        let rel = "m.jsonl";
        let got = tail.follow(&storage, rel, 100, &mut sink).unwrap();
        assert_eq!(got, Followed::Restarted);
        assert_eq!(sink.seen, ["a", "b"]);
        assert_eq!(tail.pending(), 4);
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(b"ial\nc\n").unwrap();
        assert_eq!(
            tail.follow(&storage, rel, 100, &mut sink).unwrap(),
            Followed::Appended
        );
        assert_eq!(sink.seen, ["a", "b", "partial", "c"]);
        assert_eq!(
            tail.follow(&storage, rel, 100, &mut sink).unwrap(),
            Followed::Same
        );
        // A replaced file starts over.
        std::fs::write(dir.join("new"), "z\n").unwrap();
        std::fs::rename(dir.join("new"), &file).unwrap();
        assert_eq!(
            tail.follow(&storage, rel, 100, &mut sink).unwrap(),
            Followed::Restarted
        );
        assert_eq!(sink.restarts, 2);
        assert_eq!(sink.seen.last().map(String::as_str), Some("z"));
        // A line longer than the cap fails the file, not the reader.
        std::fs::write(dir.join("long"), "x".repeat(500)).unwrap();
        let mut long = Tail::default();
        long.follow(&storage, "long", 100, &mut sink).unwrap();
        assert!(long.failed().unwrap().contains("longer than 100"));
        // A file gone is forgotten: the tail starts over, the sink restarts.
        std::fs::write(&file, "z\npart").unwrap();
        let mut gone = Collect::default();
        tail.follow(&storage, rel, 100, &mut gone).unwrap();
        assert_eq!((gone.restarts, tail.pending()), (0, 4));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(
            tail.follow(&storage, rel, 100, &mut gone).unwrap(),
            Followed::Missing
        );
        assert_eq!((gone.restarts, tail.pending(), tail.offset), (1, 0, 0));
        assert!(tail.version.is_none());
    }
}
