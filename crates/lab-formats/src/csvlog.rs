//! CSV logs that tools append a row to per epoch, dump or episode (Keras'
//! `CSVLogger`, Stable-Baselines3's `progress.csv` and `monitor.csv`):
//! a header, then rows; one column may be the x axis; `NA` or an empty
//! cell is a gap. Followed as they grow (`tail.rs`), and read again from
//! the start when the bytes already read changed under the same name: a
//! file truncated and written again (Keras' `append=False` on a second
//! `fit`), or rewritten in place with a longer header (SB3's
//! `CSVOutputFormat.write` rewrites the whole file when a key first
//! appears).

use crate::series::{Point, SeriesSet};
use crate::storage::Storage;
use crate::tail::{Followed, Sink, Tail};
use crate::text::{csv_fields, number};

/// Longest line read (a row, or the header).
pub(crate) const MAX_LINE: usize = 1 << 20;
/// Bytes before the read offset kept to notice a rewrite.
const GUARD: usize = 64;
/// Most columns a header may have (more is not a log of these tools).
pub(crate) const MAX_COLUMNS: usize = 4096;

/// What a log's header and rows mean.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// Separators tried on the header, in order: the first that gives a
    /// header `accepts` takes is the file's.
    pub(crate) separators: &'static [char],
    /// Whether the header is acceptable (its fields, as split).
    pub(crate) accepts: fn(&[String]) -> bool,
    /// The column whose value is a row's x (an integer), else the row
    /// index is.
    pub(crate) x: Option<&'static str>,
    /// The column whose value, plus the preamble's `t_start`, is a row's
    /// wall time (monitor.csv's `t`); not a series itself.
    pub(crate) wall: Option<&'static str>,
    /// A first line starting with `#` is a preamble (monitor.csv's JSON),
    /// kept aside.
    pub(crate) preamble: bool,
    /// The series a column is read into (`None`: not a series).
    pub(crate) series: fn(&str) -> Option<String>,
}

/// Series from one CSV log's lines.
#[derive(Debug)]
pub(crate) struct CsvLog {
    layout: Layout,
    /// Put before every series name (one of several files of a run).
    prefix: String,
    pub(crate) set: SeriesSet,
    /// The series name of each column (`None`: not read).
    columns: Vec<Option<String>>,
    header: bool,
    separator: char,
    x: Option<usize>,
    wall: Option<usize>,
    /// `t_start` from the preamble (NaN without one).
    wall_base: f64,
    /// Rows read (the x of a row without one).
    row: i64,
    /// Rows that were not UTF-8 or had more cells than the header.
    pub(crate) bad_rows: u64,
    /// The preamble line, without its `#`.
    pub(crate) preamble: Option<String>,
    /// Bytes consumed so far, and the first line and the last bytes of
    /// them (to notice the file rewritten under what was read).
    consumed: u64,
    first_line: Vec<u8>,
    last_bytes: Vec<u8>,
}

impl CsvLog {
    pub(crate) fn new(layout: Layout, prefix: String) -> Self {
        Self {
            layout,
            prefix,
            set: SeriesSet::default(),
            columns: Vec::new(),
            header: false,
            separator: ',',
            x: None,
            wall: None,
            wall_base: f64::NAN,
            row: 0,
            bad_rows: 0,
            preamble: None,
            consumed: 0,
            first_line: Vec::new(),
            last_bytes: Vec::new(),
        }
    }

    fn header_line(&mut self, line: &str) -> Result<(), String> {
        for &sep in self.layout.separators {
            let fields = csv_fields(line, sep);
            if fields.len() > MAX_COLUMNS || !(self.layout.accepts)(&fields) {
                continue;
            }
            self.separator = sep;
            let position =
                |name: Option<&str>| name.and_then(|n| fields.iter().position(|f| f == n));
            self.x = position(self.layout.x);
            self.wall = position(self.layout.wall);
            self.columns = fields
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    if Some(i) == self.x || Some(i) == self.wall {
                        None
                    } else {
                        (self.layout.series)(name).map(|s| format!("{}{s}", self.prefix))
                    }
                })
                .collect();
            self.header = true;
            return Ok(());
        }
        Err("the header is not one this format writes".to_owned())
    }

    fn row_line(&mut self, line: &str) {
        let cells = csv_fields(line, self.separator);
        if cells.len() > self.columns.len() {
            self.bad_rows += 1;
            self.row += 1;
            return;
        }
        let x = self
            .x
            .and_then(|i| number(cells.get(i)?))
            .filter(|x| x.is_finite() && x.abs() < 9.0e18)
            .map_or(self.row, |x| x as i64);
        let wall = self
            .wall
            .and_then(|i| number(cells.get(i)?))
            .map_or(f64::NAN, |t| self.wall_base + t);
        for (name, cell) in self.columns.iter().zip(&cells) {
            let Some(name) = name else { continue };
            if cell.trim() == "NA" {
                continue;
            }
            if let Some(value) = number(cell) {
                self.set.push(
                    name,
                    Point {
                        step: x,
                        wall,
                        value,
                    },
                );
            }
        }
        self.row += 1;
    }

    fn remember(&mut self, bytes: &[u8]) {
        if self.consumed == 0 {
            self.first_line = bytes.to_vec();
        }
        self.consumed += bytes.len() as u64;
        self.last_bytes.extend_from_slice(bytes);
        let extra = self.last_bytes.len().saturating_sub(GUARD);
        self.last_bytes.drain(..extra);
    }

    /// Whether what was read is still what `name` holds at the same
    /// offsets (its first line and the bytes just before the offset).
    fn still_there(&self, storage: &dyn Storage, name: &str) -> bool {
        if self.consumed == 0 {
            return true;
        }
        let same = |offset: u64, want: &[u8]| {
            storage
                .read_range(name, offset, want.len(), None)
                .is_ok_and(|got| got == want)
        };
        same(0, &self.first_line)
            && same(
                self.consumed - self.last_bytes.len() as u64,
                &self.last_bytes,
            )
    }
}

impl Sink for CsvLog {
    fn restart(&mut self) {
        *self = CsvLog::new(self.layout, std::mem::take(&mut self.prefix));
    }

    fn consume(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let Some(end) = bytes.iter().position(|b| *b == b'\n') else {
            return Ok(0);
        };
        let used = end + 1;
        let raw = &bytes[..end];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let first = self.consumed == 0;
        self.remember(&bytes[..used]);
        let Ok(line) = std::str::from_utf8(raw) else {
            if !self.header {
                return Err("the header is not UTF-8".to_owned());
            }
            self.bad_rows += 1;
            self.row += 1;
            return Ok(used);
        };
        if line.trim().is_empty() {
            return Ok(used);
        }
        if first && self.layout.preamble && line.starts_with('#') {
            let text = &line[1..];
            self.wall_base = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("t_start")?.as_f64())
                .unwrap_or(f64::NAN);
            self.preamble = Some(crate::text::cap(text));
            return Ok(used);
        }
        if self.header {
            self.row_line(line);
        } else {
            self.header_line(line)?;
        }
        Ok(used)
    }
}

/// One CSV log followed through a storage.
#[derive(Debug)]
pub(crate) struct CsvFile {
    tail: Tail,
    pub(crate) log: CsvLog,
    error: Option<String>,
}

impl CsvFile {
    pub(crate) fn new(layout: Layout) -> Self {
        Self::with_prefix(layout, String::new())
    }

    /// A file whose series are named `prefix` + the column's series.
    pub(crate) fn with_prefix(layout: Layout, prefix: String) -> Self {
        Self {
            tail: Tail::default(),
            log: CsvLog::new(layout, prefix),
            error: None,
        }
    }

    /// Reads what was appended to `name` (from the start again when the
    /// bytes read before changed). Whether the file is there.
    pub(crate) fn refresh(&mut self, storage: &dyn Storage, name: &str) -> bool {
        self.error = None;
        if !self.log.still_there(storage, name) {
            self.tail = Tail::default();
            self.log.restart();
        }
        let mut present = true;
        match self.tail.follow(storage, name, MAX_LINE, &mut self.log) {
            Ok(Followed::Same | Followed::Appended | Followed::Restarted) => {}
            Ok(Followed::Missing) => present = false,
            Err(e) => self.error = Some(e),
        }
        if let Some(failed) = self.tail.failed() {
            self.error = Some(failed.to_owned());
        }
        present
    }

    /// This file's errors: why it stopped, bad rows, points over the caps.
    pub(crate) fn errors(&self, name: &str) -> Vec<String> {
        let mut errors: Vec<String> = self.error.iter().cloned().collect();
        if self.log.bad_rows > 0 {
            errors.push(format!(
                "{name}: {} rows could not be read (not UTF-8, or more cells than the header)",
                self.log.bad_rows
            ));
        }
        errors.extend(self.log.set.cap_error());
        errors
    }
}

/// The first line of `head` (a file's first bytes), when it is complete
/// and UTF-8.
pub(crate) fn first_line(head: &[u8]) -> Option<&str> {
    let end = head.iter().position(|b| *b == b'\n')?;
    let raw = &head[..end];
    std::str::from_utf8(raw.strip_suffix(b"\r").unwrap_or(raw)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tail::feed;

    fn keras() -> Layout {
        Layout {
            separators: &[',', ';', '\t'],
            accepts: |h| h.first().is_some_and(|f| f == "epoch") && h.len() > 1,
            x: Some("epoch"),
            wall: None,
            preamble: false,
            series: |name| Some(name.to_owned()),
        }
    }

    fn values(log: &CsvLog, name: &str) -> Vec<(i64, f64)> {
        log.set
            .get(name)
            .map(|s| s.points().iter().map(|p| (p.step, p.value)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn rows_become_points_by_the_x_column_with_gaps_for_na() {
        let mut log = CsvLog::new(keras(), String::new());
        let text = "epoch;loss;val_loss;note\n0;0.5;NA;\"a;b\"\n1;0.25;0.3;x\n2;nan;;y\n";
        feed(&mut log, text.as_bytes(), 3).unwrap();
        assert_eq!(values(&log, "loss")[..2], [(0, 0.5), (1, 0.25)]);
        assert!(values(&log, "loss")[2].1.is_nan());
        assert_eq!(values(&log, "val_loss"), [(1, 0.3)]);
        assert_eq!(values(&log, "note"), []);
        assert_eq!(log.bad_rows, 0);
        // A header this layout does not take stops the file.
        let mut other = CsvLog::new(keras(), String::new());
        assert!(feed(&mut other, b"step,loss\n", 64).is_err());
    }

    #[test]
    fn rows_not_utf8_or_too_wide_are_counted_not_read() {
        let mut log = CsvLog::new(keras(), String::new());
        feed(&mut log, b"epoch,loss\n0,\xff\n1,0.5,9\n2,0.25\n", 64).unwrap();
        assert_eq!(values(&log, "loss"), [(2, 0.25)]);
        assert_eq!(log.bad_rows, 2);
    }
}
