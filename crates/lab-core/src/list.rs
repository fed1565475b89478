//! The list of runs: filtered, sorted (by a field, a param or a metric's
//! last value) and paged, from the summaries already computed; and the
//! param and metric columns the runs have.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab_formats::Format;
use serde_json::{Value, json};

use crate::summaries::RunSummary;
use crate::{Error, Lab, Run, lock};

/// Default and largest page size of a list.
pub const DEFAULT_PAGE: usize = 100;
/// The largest page of a list.
pub const MAX_PAGE: usize = 500;
/// Most extra fields one list may ask for.
pub const MAX_FIELDS: usize = 32;

/// What a list is sorted by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// The run id (the registry's order).
    #[default]
    Id,
    /// The name (the title that says what the run varied).
    Name,
    /// The experiment's name (then its id): runs of one group together.
    Experiment,
    /// When the run was created.
    Created,
    /// When it was imported.
    Imported,
    /// Its format.
    Format,
    /// Its status.
    Status,
    /// A param's value.
    Param(String),
    /// A metric's last value.
    Metric(String),
}

/// A value to sort by: missing ones last, numbers before text.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum Key<'a> {
    Number(f64),
    Text(std::borrow::Cow<'a, str>),
    Missing,
}

/// `t` lower-cased for sorting, borrowed when it is lower-case ASCII
/// already (no allocation per row for the usual names and dates).
fn lower(t: &str) -> Key<'_> {
    if t.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Key::Text(std::borrow::Cow::Borrowed(t))
    } else {
        Key::Text(std::borrow::Cow::Owned(t.to_lowercase()))
    }
}

fn key_of(value: Option<&Value>) -> Key<'_> {
    match value {
        Some(Value::Number(n)) => n.as_f64().map_or(Key::Missing, Key::Number),
        Some(Value::Bool(b)) => Key::Number(f64::from(u8::from(*b))),
        Some(Value::String(s)) => match s.parse::<f64>() {
            Ok(n) if n.is_finite() => Key::Number(n),
            _ => lower(s),
        },
        _ => Key::Missing,
    }
}

impl Sort {
    fn key<'a>(&self, s: &'a RunSummary) -> Key<'a> {
        let text = lower;
        match self {
            Sort::Id => text(s.id.as_str()),
            Sort::Name => text(&s.name),
            Sort::Experiment => s
                .experiment
                .as_ref()
                .map_or(Key::Missing, |e| text(&e.name)),
            Sort::Created => text(&s.created),
            Sort::Imported => Key::Number(s.imported_at as f64),
            Sort::Format => text(s.format),
            Sort::Status => s.status.as_deref().map_or(Key::Missing, text),
            Sort::Param(k) => key_of(s.param(k)),
            Sort::Metric(k) => s.last(k).map_or(Key::Missing, Key::Number),
        }
    }
}

/// Which runs a list holds, in which order, which page.
#[derive(Clone, Debug, PartialEq)]
pub struct ListQuery {
    /// Runs per page.
    pub limit: usize,
    /// How many runs of the list come before the page.
    pub offset: usize,
    /// Lower-cased text looked for in the id, name, title and tags.
    pub text: Option<String>,
    /// A tag every run listed has.
    pub tag: Option<String>,
    /// Only runs with (or without) a video.
    pub has_video: Option<bool>,
    /// Only runs of this format.
    pub format: Option<Format>,
    /// Only runs of the experiment with this id.
    pub experiment: Option<String>,
    /// A filter expression every run listed passes (`?filter=`).
    pub filter: Option<crate::filter::Filter>,
    /// The order.
    pub sort: Sort,
    /// Largest first.
    pub descending: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE,
            offset: 0,
            text: None,
            tag: None,
            has_video: None,
            format: None,
            experiment: None,
            filter: None,
            sort: Sort::Id,
            descending: false,
        }
    }
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The runs of the page, in order.
    pub rows: Vec<Arc<RunSummary>>,
    /// How many runs the whole list holds.
    pub total: usize,
}

/// Most names [`Lab::columns`] gives of each kind.
const MAX_COLUMNS: usize = 1_000;
/// How long a count of the columns is answered again.
const COLUMNS_TTL: Duration = Duration::from_secs(10);

impl Lab {
    /// One page of the runs `query` asks for. Blocking: without a filter
    /// or a sort that needs the summaries, only the page is summarised.
    pub fn list(self: &Arc<Self>, query: &ListQuery) -> Result<Page, Error> {
        let ListQuery {
            limit,
            offset,
            ref text,
            ref tag,
            has_video,
            format,
            ref experiment,
            ref filter,
            ref sort,
            descending,
        } = *query;
        let runs = self.runs()?;
        let filtered = text.is_some()
            || tag.is_some()
            || has_video.is_some()
            || format.is_some()
            || experiment.is_some()
            || filter.is_some();
        if !filtered && *sort == Sort::Id {
            let ordered: Box<dyn Iterator<Item = &Run>> = if descending {
                Box::new(runs.iter().rev())
            } else {
                Box::new(runs.iter())
            };
            let rows = self.listed(ordered.skip(offset).take(limit));
            return Ok(Page {
                rows,
                total: runs.len(),
            });
        }
        let finder = memchr::memmem::Finder::new(text.as_deref().unwrap_or("").as_bytes());
        let rows: Vec<Arc<RunSummary>> = self
            .listed(runs.iter())
            .into_iter()
            .filter(|s| {
                text.as_deref().is_none_or(|q| s.matches_with(q, &finder))
                    && tag.as_deref().is_none_or(|t| s.tags.iter().any(|x| x == t))
                    && has_video.is_none_or(|v| s.has_video == v)
                    && format.is_none_or(|f| s.format == f.as_str())
                    && experiment
                        .as_deref()
                        .is_none_or(|id| s.experiment.as_ref().is_some_and(|e| e.id == id))
                    && filter.as_ref().is_none_or(|f| f.matches(s))
            })
            .collect();
        let total = rows.len();
        let wanted = offset.saturating_add(limit).min(total);
        let rows: Vec<Arc<RunSummary>> = if *sort == Sort::Id {
            // The registry is sorted by id already.
            let ordered: Box<dyn Iterator<Item = Arc<RunSummary>>> = if descending {
                Box::new(rows.into_iter().rev())
            } else {
                Box::new(rows.into_iter())
            };
            ordered.skip(offset).take(limit).collect()
        } else {
            // Each key computed once; only the rows up to the page's end
            // are put in order.
            let mut keyed: Vec<(Key, &Arc<RunSummary>)> =
                rows.iter().map(|s| (sort.key(s), s)).collect();
            let order = |a: &(Key, &Arc<RunSummary>), b: &(Key, &Arc<RunSummary>)| {
                // Missing values last in either order; ties by id.
                let by_key = match (&a.0, &b.0) {
                    (Key::Missing, Key::Missing) => std::cmp::Ordering::Equal,
                    (Key::Missing, _) => return std::cmp::Ordering::Greater,
                    (_, Key::Missing) => return std::cmp::Ordering::Less,
                    (ka, kb) => ka.partial_cmp(kb).unwrap_or(std::cmp::Ordering::Equal),
                };
                let by_key = if descending { by_key.reverse() } else { by_key };
                // Experiments of one name apart (by their id), and within
                // one, newest first (`created` is ISO 8601 UTC: its text
                // orders it); else by id.
                let by_key = if *sort == Sort::Experiment {
                    fn group(s: &RunSummary) -> Option<&str> {
                        s.experiment.as_ref().map(|e| e.id.as_str())
                    }
                    by_key
                        .then_with(|| group(a.1).cmp(&group(b.1)))
                        .then_with(|| b.1.created.cmp(&a.1.created))
                } else {
                    by_key
                };
                by_key.then_with(|| a.1.id.cmp(&b.1.id))
            };
            if wanted > 0 && wanted < keyed.len() {
                keyed.select_nth_unstable_by(wanted - 1, order);
                keyed.truncate(wanted);
            }
            keyed.sort_unstable_by(order);
            keyed
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|(_, s)| Arc::clone(s))
                .collect()
        };
        Ok(Page { rows, total })
    }

    /// The param keys and metric names the runs have (from the
    /// summaries), each with how many runs have it, most common first, at
    /// most [`MAX_COLUMNS`] of each: what a runs table can show, as
    /// `{"params": [{"key", "runs"}], "metrics": [{"name", "runs"}]}`.
    /// Counted at most once per [`COLUMNS_TTL`] (the count walks every
    /// summary), and once for callers that arrive together. Blocking.
    pub fn columns(self: &Arc<Self>) -> Result<Arc<Value>, Error> {
        let mut cached = lock(&self.summaries.columns);
        if let Some((at, body)) = cached.as_ref()
            && at.elapsed() < COLUMNS_TTL
        {
            return Ok(Arc::clone(body));
        }
        let runs = self.runs()?;
        let mut params: HashMap<Box<str>, usize> = HashMap::new();
        let mut metrics: HashMap<Box<str>, usize> = HashMap::new();
        for s in self.listed(runs.iter()) {
            for (k, _) in s.params.iter() {
                *params.entry(k.clone()).or_default() += 1;
            }
            for (k, _) in s.last.iter() {
                *metrics.entry(k.clone()).or_default() += 1;
            }
        }
        let ranked = |counts: HashMap<Box<str>, usize>, name: &str| -> Vec<Value> {
            let mut all: Vec<(Box<str>, usize)> = counts.into_iter().collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all.truncate(MAX_COLUMNS);
            all.into_iter()
                .map(|(k, n)| json!({ name: &*k, "runs": n }))
                .collect()
        };
        let body = Arc::new(
            json!({ "params": ranked(params, "key"), "metrics": ranked(metrics, "name") }),
        );
        *cached = Some((Instant::now(), Arc::clone(&body)));
        Ok(body)
    }
}
