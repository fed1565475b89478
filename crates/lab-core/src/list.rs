//! The list of runs: filtered, sorted (by a field, a param or a metric's
//! last value) and paged, from the summaries already computed; and the
//! param and metric columns the runs have.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab_formats::Format;
use serde_json::{Value, json};

use crate::experiments::ExperimentEntry;
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
            // A NaN has no place in an order: missing.
            Sort::Metric(k) => s
                .last(k)
                .filter(|v| !v.is_nan())
                .map_or(Key::Missing, Key::Number),
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

/// How many sorted orders a [`Table`] keeps (the most recently used).
const ORDERS_KEPT: usize = 8;

/// Every run's summary, in the registry's order, for one version of the
/// registry and of the summaries, with the orders lists asked for: a
/// sorted list is a walk of a kept order (O(page) unfiltered), not a sort.
pub(crate) struct Table {
    runs: Arc<Vec<Run>>,
    generation: u64,
    pub(crate) rows: Vec<Arc<RunSummary>>,
    orders: Recent<(Sort, bool), [u32]>,
    kept: Recent<Picks, Kept>,
    /// What `GET /api/experiments` answers, by picks.
    experiments: Recent<Picks, Vec<ExperimentEntry>>,
}

impl Table {
    /// The indices of [`Table::rows`] in `sort`'s order, computed once.
    fn order(&self, sort: &Sort, descending: bool) -> Arc<[u32]> {
        let key = (sort.clone(), descending);
        if let Some(found) = recent(&self.orders, &key) {
            return found;
        }
        // Each key computed once.
        let mut keyed: Vec<(Key, u32)> = self
            .rows
            .iter()
            .zip(0u32..)
            .map(|(s, i)| (sort.key(s), i))
            .collect();
        keyed.sort_unstable_by(|a, b| {
            compare(
                sort,
                descending,
                (&a.0, &self.rows[a.1 as usize]),
                (&b.0, &self.rows[b.1 as usize]),
            )
        });
        let order: Arc<[u32]> = keyed.into_iter().map(|(_, i)| i).collect();
        remember(&self.orders, &key, &order, ORDERS_KEPT);
        order
    }
}

/// Values kept by key, the most recently used last.
type Recent<K, V> = Mutex<Vec<(K, Arc<V>)>>;

/// What [`Lab::picked`] gives: the table, the picks, and which rows they
/// keep.
pub(crate) type Picked = (Arc<Table>, Picks, Option<Arc<Kept>>);

/// The longest list of experiments a [`Table`] keeps.
const EXPERIMENTS_KEPT_LEN: usize = 4_096;

/// How many sets of kept rows a [`Table`] keeps (the most recently used).
const KEPT_KEPT: usize = 16;

/// What of a list's query picks its runs (its order and page aside).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Picks {
    text: Option<String>,
    tag: Option<String>,
    has_video: Option<bool>,
    format: Option<Format>,
    experiment: Option<String>,
    filter: Option<crate::filter::Filter>,
}

impl Picks {
    fn of(query: &ListQuery) -> Self {
        Self {
            text: query.text.clone(),
            tag: query.tag.clone(),
            has_video: query.has_video,
            format: query.format,
            experiment: query.experiment.clone(),
            filter: query.filter.clone(),
        }
    }

    /// Whether `s` is one of the runs these picks keep.
    fn keep(&self, s: &RunSummary, finder: &memchr::memmem::Finder<'_>) -> bool {
        self.text
            .as_deref()
            .is_none_or(|q| s.matches_with(q, finder))
            && self
                .tag
                .as_deref()
                .is_none_or(|t| s.tags.iter().any(|x| x == t))
            && self.has_video.is_none_or(|v| s.has_video == v)
            && self.format.is_none_or(|f| s.format == f.as_str())
            && self
                .experiment
                .as_deref()
                .is_none_or(|id| s.experiment.as_ref().is_some_and(|e| e.id == id))
            && self.filter.as_ref().is_none_or(|f| f.matches(s))
    }
}

/// The rows of a [`Table`] some picks keep: a bit per row, and how many.
#[derive(Debug)]
pub(crate) struct Kept {
    bits: Vec<u64>,
    pub(crate) count: usize,
}

impl Kept {
    /// Whether row `i` is kept.
    pub(crate) fn has(&self, i: u32) -> bool {
        let i = i as usize;
        self.bits
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

impl Table {
    /// The rows `picks` keep, computed once.
    fn kept(&self, picks: &Picks) -> Arc<Kept> {
        if let Some(found) = recent(&self.kept, picks) {
            return found;
        }
        let finder = memchr::memmem::Finder::new(picks.text.as_deref().unwrap_or("").as_bytes());
        let mut bits = vec![0u64; self.rows.len().div_ceil(64)];
        let mut count = 0;
        for (i, s) in self.rows.iter().enumerate() {
            if picks.keep(s, &finder) {
                bits[i / 64] |= 1 << (i % 64);
                count += 1;
            }
        }
        let kept = Arc::new(Kept { bits, count });
        remember(&self.kept, picks, &kept, KEPT_KEPT);
        kept
    }

    /// The experiments of the rows `picks` keep, computed once with
    /// `compute`.
    pub(crate) fn experiments(
        &self,
        picks: &Picks,
        compute: impl FnOnce() -> Vec<ExperimentEntry>,
    ) -> Arc<Vec<ExperimentEntry>> {
        if let Some(found) = recent(&self.experiments, picks) {
            return found;
        }
        let value = Arc::new(compute());
        // Kept only while small (a list of as many experiments as runs
        // is computed again).
        if value.len() <= EXPERIMENTS_KEPT_LEN {
            remember(&self.experiments, picks, &value, KEPT_KEPT);
        }
        value
    }
}

/// The value kept for `key`, made the most recently used.
fn recent<K: PartialEq, V: ?Sized>(kept: &Recent<K, V>, key: &K) -> Option<Arc<V>> {
    let mut kept = lock(kept);
    let at = kept.iter().position(|(k, _)| k == key)?;
    let entry = kept.remove(at);
    let value = Arc::clone(&entry.1);
    kept.push(entry);
    Some(value)
}

/// Keeps `value` for `key`, the least recently used dropped past `most`.
fn remember<K: Clone, V: ?Sized>(kept: &Recent<K, V>, key: &K, value: &Arc<V>, most: usize) {
    let mut kept = lock(kept);
    if kept.len() >= most {
        kept.remove(0);
    }
    kept.push((key.clone(), Arc::clone(value)));
}

/// The order of two rows with their keys: missing values last in either
/// order; experiments of one name apart (by their id), and within one,
/// newest first (`created` is ISO 8601 UTC: its text orders it); ties by
/// id.
fn compare(
    sort: &Sort,
    descending: bool,
    a: (&Key, &RunSummary),
    b: (&Key, &RunSummary),
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let by_key = match (a.0, b.0) {
        (Key::Missing, Key::Missing) => Ordering::Equal,
        (Key::Missing, _) => return Ordering::Greater,
        (_, Key::Missing) => return Ordering::Less,
        (ka, kb) => ka.partial_cmp(kb).unwrap_or(Ordering::Equal),
    };
    let by_key = if descending { by_key.reverse() } else { by_key };
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
}

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
        if !filtered && *sort == Sort::Id && limit <= MAX_PAGE {
            // A page in the registry's order: only its runs are
            // summarised (a list asked for before the background task
            // summarised every run does not wait for all of them).
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
        let table = self.table(&runs);
        let kept = filtered.then(|| table.kept(&Picks::of(query)));
        // The rows in the list's order: the registry's (by id), or an
        // order of every run computed once per sort and kept with the
        // table; those the picks keep (computed once per picks and kept
        // with the table too), and the page of them.
        let order: Option<Arc<[u32]>> = (*sort != Sort::Id).then(|| table.order(sort, descending));
        let count = u32::try_from(table.rows.len()).unwrap_or(u32::MAX);
        let ordered: Box<dyn Iterator<Item = u32>> = match &order {
            Some(order) => Box::new(order.iter().copied()),
            None if descending => Box::new((0..count).rev()),
            None => Box::new(0..count),
        };
        let (rows, total) = match &kept {
            Some(kept) => (
                ordered
                    .filter(|&i| kept.has(i))
                    .skip(offset)
                    .take(limit)
                    .map(|i| Arc::clone(&table.rows[i as usize]))
                    .collect(),
                kept.count,
            ),
            None => (
                ordered
                    .skip(offset)
                    .take(limit)
                    .map(|i| Arc::clone(&table.rows[i as usize]))
                    .collect(),
                table.rows.len(),
            ),
        };
        Ok(Page { rows, total })
    }

    /// The table of every run's summary, and which of its rows `query`'s
    /// picks keep (all, for a query without any). Blocking.
    pub(crate) fn picked(self: &Arc<Self>, query: &ListQuery) -> Result<Picked, Error> {
        let runs = self.runs()?;
        let table = self.table(&runs);
        let picks = Picks::of(query);
        let kept = (picks != Picks::default()).then(|| table.kept(&picks));
        Ok((table, picks, kept))
    }

    /// Every run's summary in the registry's order, as of now: the table
    /// kept while neither the registry nor any summary changed (a summary
    /// computed again the same leaves it), else built again (each summary
    /// missing computed now). Blocking.
    pub(crate) fn table(self: &Arc<Self>, runs: &Arc<Vec<Run>>) -> Arc<Table> {
        // Read before the rows are: a summary changed while they are
        // looked up makes the next list build the table again.
        let generation = self.summaries.generation();
        if let Some(table) = lock(&self.summaries.table).as_ref()
            && Arc::ptr_eq(&table.runs, runs)
            && table.generation == generation
        {
            return Arc::clone(table);
        }
        let table = Arc::new(Table {
            runs: Arc::clone(runs),
            generation,
            rows: self.listed(runs.iter()),
            orders: Mutex::new(Vec::new()),
            kept: Mutex::new(Vec::new()),
            experiments: Mutex::new(Vec::new()),
        });
        *lock(&self.summaries.table) = Some(Arc::clone(&table));
        table
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
        let table = self.table(&runs);
        let mut params: HashMap<Box<str>, usize> = HashMap::new();
        let mut metrics: HashMap<Box<str>, usize> = HashMap::new();
        for s in &table.rows {
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
