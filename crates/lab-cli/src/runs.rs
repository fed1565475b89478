//! `lab runs`: the registered runs as a table or as JSON lines, from the
//! same summaries `GET /api/runs` lists (lab-core computes the missing
//! ones through the gate, as the server does).

use std::io::Write;
use std::sync::Arc;

use serde_json::Value;

use crate::{Setup, open_lab_to_read};

/// The table's columns, in order.
pub(crate) const HEADER: [&str; 6] = ["ID", "NAME", "EXPERIMENT", "FORMAT", "STATUS", "CREATED"];

/// Widest NAME shown; a longer title is cut with `…` (`--json` has it whole).
const MAX_NAME: usize = 60;

pub(crate) fn runs(ctx: &Setup, json: bool, filter: Option<&str>) -> anyhow::Result<()> {
    let filter = match filter.map(lab_core::filter::Filter::parse).transpose() {
        Ok(filter) => filter,
        Err(e) => {
            // A usage error: the message, the expression, a caret under
            // the character, exit 2 (as clap's own).
            eprintln!("{}", caret(filter.unwrap_or_default(), &e));
            std::process::exit(2);
        }
    };
    // Reading never creates the data dir: none means no runs.
    let entries = match open_lab_to_read(ctx)? {
        Some(lab) => entries(&Arc::new(lab), filter)?,
        None => Vec::new(),
    };
    let mut out = std::io::stdout().lock();
    if json {
        for entry in &entries {
            serde_json::to_writer(&mut out, entry)?;
            out.write_all(b"\n")?;
        }
    } else {
        let rows: Vec<[String; 6]> = entries.iter().map(row).collect();
        write_table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(())
}

/// Every run's `/api/runs` entry (without URLs: those are signed for a
/// browser session), by id.
fn entries(
    lab: &Arc<lab_core::Lab>,
    filter: Option<lab_core::filter::Filter>,
) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut query = lab_core::list::ListQuery {
        limit: lab_core::list::MAX_PAGE,
        filter,
        ..Default::default()
    };
    loop {
        let page = lab.list(&query)?;
        let got = page.rows.len();
        for summary in &page.rows {
            all.push(serde_json::to_value(&**summary)?);
        }
        query.offset += got;
        if got == 0 || query.offset >= page.total {
            return Ok(all);
        }
    }
}

/// A filter's syntax error shown under its expression:
///
/// ```text
/// lab: error: bad filter: expected a value at character 8
///   status =
///           ^
/// ```
fn caret(expr: &str, e: &lab_core::filter::FilterError) -> String {
    // One column a character; tabs and newlines shown as spaces so the
    // caret stays under its character.
    let shown: String = expr
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "lab: error: bad filter: {} at character {}\n  {shown}\n  {}^",
        e.message,
        e.position,
        " ".repeat(e.position)
    )
}

/// One entry's cells, in [`HEADER`]'s order.
fn row(entry: &Value) -> [String; 6] {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(cell).unwrap_or_default();
    let mut name = text(entry.get("name"));
    if name.chars().count() > MAX_NAME {
        name = name.chars().take(MAX_NAME - 1).chain(['…']).collect();
    }
    [
        text(entry.get("id")),
        name,
        text(entry.get("experiment").and_then(|e| e.get("name"))),
        text(entry.get("format")),
        text(entry.get("status")),
        text(entry.get("created")),
    ]
}

/// A value as one cell: control characters (a title comes from a run's
/// files) escaped, so a row stays one line and no escape sequence reaches
/// the terminal.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The header and the rows in columns two spaces apart, each as wide as
/// its widest cell (the last column unpadded).
fn write_table(out: &mut impl Write, rows: &[[String; 6]]) -> std::io::Result<()> {
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = width - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_titles_stay_on_one_line() {
        let rows = vec![
            row(&serde_json::json!({
                "id": "a-1", "name": "long title\n\u{1b}[31mred", "format": "mlflow",
                "experiment": {"id": "mlflow:/m/1", "name": "demo"},
                "status": "finished", "created": "2026-01-02T03:04:05Z"
            })),
            row(
                &serde_json::json!({"id": "bb-22", "name": "t", "format": "lab", "experiment": null}),
            ),
        ];
        let mut out = Vec::new();
        write_table(&mut out, &rows).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        let at = |line: &str, word: &str| line.find(word).unwrap_or_else(|| panic!("{word}"));
        assert_eq!(at(lines[0], "FORMAT"), at(lines[1], "mlflow"), "{text}");
        assert_eq!(at(lines[0], "FORMAT"), at(lines[2], "lab"), "{text}");
        assert_eq!(at(lines[0], "STATUS"), at(lines[1], "finished"), "{text}");
        assert_eq!(at(lines[0], "EXPERIMENT"), at(lines[1], "demo"), "{text}");
    }

    #[test]
    fn long_titles_are_cut() {
        let title = "x".repeat(200);
        let cells = row(&serde_json::json!({"id": "a", "name": title}));
        assert_eq!(cells[1].chars().count(), MAX_NAME);
        assert!(cells[1].ends_with('…'));
    }
}
