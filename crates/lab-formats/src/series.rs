//! Metric series, their caps, and downsampling into buckets for charts.

use std::collections::BTreeMap;

use crate::{MAX_POINTS_PER_RUN, MAX_POINTS_PER_SERIES, MAX_SERIES, MetricInfo};

/// One point: its step, wall time (seconds; NaN when unknown) and value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// The step (x).
    pub step: i64,
    /// Wall-clock time in seconds since the epoch (NaN when unknown).
    pub wall: f64,
    /// The value (may be NaN or ±Inf).
    pub value: f64,
}

/// One series, in the order it was written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    points: Vec<Point>,
    /// Points not kept because a cap was reached.
    pub dropped: u64,
    /// Bumped on every change: with `len`, what an ETag is made of.
    pub generation: u64,
    /// Whether a point's step was ever below the one before (else a range
    /// of steps is found by binary search).
    unsorted_steps: bool,
}

impl Series {
    /// The points kept.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Downsamples the points whose x lies in `[from, to]` into at most
    /// `buckets` buckets of equal count, each giving its first x, last y,
    /// and min and max (exact values when there are no more points than
    /// buckets). NaN and ±Inf values are `None` and ignored by min and max.
    pub fn bucketed(
        &self,
        buckets: usize,
        from: Option<f64>,
        to: Option<f64>,
        axis: XAxis,
    ) -> Bucketed {
        let x_of = |p: &Point| match axis {
            XAxis::Step => p.step as f64,
            XAxis::Wall => p.wall,
        };
        if axis == XAxis::Step && !self.unsorted_steps {
            // Steps in order: the range is a slice, found by binary
            // search (no pass over every point, no copy).
            let lo = from.map_or(0, |f| self.points.partition_point(|p| (p.step as f64) < f));
            let hi = to.map_or(self.points.len(), |t| {
                self.points.partition_point(|p| (p.step as f64) <= t)
            });
            let inside = &self.points[lo..hi.max(lo)];
            return bucket(inside.len(), |i| &inside[i], buckets, x_of);
        }
        let inside: Vec<&Point> = self
            .points
            .iter()
            .filter(|p| {
                let x = x_of(p);
                from.is_none_or(|f| x >= f) && to.is_none_or(|t| x <= t)
            })
            .collect();
        bucket(inside.len(), |i| inside[i], buckets, x_of)
    }
}

/// The `n` points `at` gives, in order, in at most `buckets` buckets of
/// equal count (see [`Series::bucketed`]).
fn bucket<'a>(
    n: usize,
    at: impl Fn(usize) -> &'a Point,
    buckets: usize,
    x_of: impl Fn(&Point) -> f64,
) -> Bucketed {
    let buckets = buckets.max(1);
    let mut out = Bucketed::default();
    if n == 0 {
        return out;
    }
    let groups = n.min(buckets);
    for g in 0..groups {
        // Equal-count buckets: [start, end) covers n/groups points.
        let start = g * n / groups;
        let end = (g + 1) * n / groups;
        if start >= end {
            continue;
        }
        let (first, last) = (at(start), at(end - 1));
        let finite = (start..end)
            .map(&at)
            .map(|p| p.value)
            .filter(|v| v.is_finite());
        let (min, max) = finite.fold((None, None), |(lo, hi): (Option<f64>, Option<f64>), v| {
            (
                Some(lo.map_or(v, |l| l.min(v))),
                Some(hi.map_or(v, |h| h.max(v))),
            )
        });
        out.x.push(finite_or_none(x_of(first)));
        out.y.push(finite_or_none(last.value));
        out.min.push(min);
        out.max.push(max);
    }
    out.count = n;
    out
}

fn finite_or_none(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Which x a chart uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    /// The step.
    Step,
    /// Wall-clock time.
    Wall,
}

/// A downsampled series: parallel arrays, `None` for NaN and ±Inf.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Bucketed {
    /// Points inside the requested x range.
    pub count: usize,
    /// Each bucket's first x.
    pub x: Vec<Option<f64>>,
    /// Each bucket's last y.
    pub y: Vec<Option<f64>>,
    /// Each bucket's smallest finite y.
    pub min: Vec<Option<f64>>,
    /// Each bucket's largest finite y.
    pub max: Vec<Option<f64>>,
}

/// The series of one run, by name, with the caps enforced.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeriesSet {
    map: BTreeMap<String, Series>,
    total: usize,
    /// Points or series refused by a cap.
    pub(crate) refused: u64,
}

impl SeriesSet {
    /// Appends a point to `name`; a point over a cap is counted, not kept.
    pub(crate) fn push(&mut self, name: &str, point: Point) {
        if self.total >= MAX_POINTS_PER_RUN {
            self.refused += 1;
            return;
        }
        // One lookup for a series already there (the usual case).
        let series = match self.map.get_mut(name) {
            Some(series) => series,
            None => {
                if self.map.len() >= MAX_SERIES || name.is_empty() || name.len() > 512 {
                    self.refused += 1;
                    return;
                }
                self.map.entry(name.to_owned()).or_default()
            }
        };
        if series.points.len() >= MAX_POINTS_PER_SERIES {
            series.dropped += 1;
            self.refused += 1;
            return;
        }
        if series
            .points
            .last()
            .is_some_and(|last| point.step < last.step)
        {
            series.unsorted_steps = true;
        }
        series.points.push(point);
        series.generation += 1;
        self.total += 1;
    }

    /// Counts `n` points of `name` refused unseen (a reader that stopped
    /// storing them past the cap), as [`SeriesSet::push`] counts them.
    pub(crate) fn refuse(&mut self, name: &str, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(series) = self.map.get_mut(name) {
            series.dropped += n;
        }
        self.refused += n;
    }

    /// Forgets `name`'s points (its file is read again from the start).
    pub(crate) fn clear(&mut self, name: &str) {
        if let Some(series) = self.map.get_mut(name) {
            self.total -= series.points.len();
            series.points.clear();
            series.unsorted_steps = false;
            series.generation += 1;
        }
    }

    /// Forgets everything.
    pub(crate) fn clear_all(&mut self) {
        for series in self.map.values_mut() {
            series.points.clear();
            series.unsorted_steps = false;
            series.generation += 1;
        }
        self.total = 0;
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Series> {
        self.map.get(name)
    }

    pub(crate) fn points(&self) -> usize {
        self.total
    }

    pub(crate) fn summaries(&self) -> Vec<MetricInfo> {
        self.map
            .iter()
            .filter(|(_, s)| !s.points.is_empty())
            .map(|(name, s)| {
                let last = s.points.last();
                MetricInfo {
                    name: name.clone(),
                    count: s.points.len(),
                    last_step: last.map(|p| p.step),
                    last: last.map(|p| p.value).filter(|v| v.is_finite()),
                }
            })
            .collect()
    }

    /// A line for [`crate::RunInfo::errors`] when a cap refused points.
    pub(crate) fn cap_error(&self) -> Option<String> {
        (self.refused > 0).then(|| {
            format!(
                "{} points or series over the caps were not kept ({MAX_POINTS_PER_SERIES} per series, {MAX_POINTS_PER_RUN} per run, {MAX_SERIES} series)",
                self.refused
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Series {
        let mut set = SeriesSet::default();
        for (i, v) in values.iter().enumerate() {
            set.push(
                "m",
                Point {
                    step: i as i64 * 10,
                    wall: f64::NAN,
                    value: *v,
                },
            );
        }
        set.get("m").cloned().unwrap_or_default()
    }

    proptest::proptest! {
        /// Buckets cover every point in range once: counts add up, each
        /// bucket's min <= its last y <= its max, extremes are kept, and x
        /// never goes back.
        #[test]
        fn buckets_account_for_every_point(
            values in proptest::collection::vec(-1e6f64..1e6, 0..3000),
            buckets in 1usize..200,
        ) {
            let s = series(&values);
            let b = s.bucketed(buckets, None, None, XAxis::Step);
            proptest::prop_assert_eq!(b.count, values.len());
            proptest::prop_assert_eq!(b.x.len(), values.len().min(buckets));
            for i in 0..b.x.len() {
                let (lo, hi, y) = (b.min[i].unwrap(), b.max[i].unwrap(), b.y[i].unwrap());
                proptest::prop_assert!(lo <= y && y <= hi);
                if i > 0 {
                    proptest::prop_assert!(b.x[i] > b.x[i - 1]);
                }
            }
            if let Some(top) = values.iter().copied().reduce(f64::max) {
                let kept = b.max.iter().flatten().copied().reduce(f64::max);
                proptest::prop_assert_eq!(kept, Some(top));
            }
        }
    }

    proptest::proptest! {
        /// A range of steps found by binary search buckets as the pass
        /// over every point does; steps out of order take that pass.
        #[test]
        fn a_range_by_binary_search_is_the_range_filtered(
            values in proptest::collection::vec(-1e6f64..1e6, 0..2000),
            buckets in 1usize..300,
            from in proptest::option::of(-100.0f64..21000.0),
            to in proptest::option::of(-100.0f64..21000.0),
        ) {
            let sorted = series(&values);
            let mut filtered = sorted.clone();
            filtered.unsorted_steps = true;
            proptest::prop_assert_eq!(
                sorted.bucketed(buckets, from, to, XAxis::Step),
                filtered.bucketed(buckets, from, to, XAxis::Step)
            );
        }
    }

    #[test]
    fn steps_out_of_order_are_ranged_by_their_values() {
        let mut set = SeriesSet::default();
        for (step, value) in [(0, 1.0), (20, 2.0), (10, 3.0), (30, 4.0)] {
            set.push(
                "m",
                Point {
                    step,
                    wall: f64::NAN,
                    value,
                },
            );
        }
        let s = set.get("m").cloned().unwrap_or_default();
        let b = s.bucketed(10, Some(5.0), Some(25.0), XAxis::Step);
        assert_eq!(b.count, 2);
        assert_eq!(b.y, [Some(2.0), Some(3.0)]);
    }

    #[test]
    fn short_series_are_exact_and_long_ones_keep_extremes() {
        let s = series(&[1.0, f64::NAN, 3.0]);
        let b = s.bucketed(10, None, None, XAxis::Step);
        assert_eq!(b.count, 3);
        assert_eq!(b.x, [Some(0.0), Some(10.0), Some(20.0)]);
        assert_eq!(b.y, [Some(1.0), None, Some(3.0)]);
        assert_eq!(b.min, [Some(1.0), None, Some(3.0)]);

        let mut values = vec![0.0; 1000];
        values[567] = 99.0;
        values[123] = -5.0;
        let s = series(&values);
        let b = s.bucketed(10, None, None, XAxis::Step);
        assert_eq!(b.x.len(), 10);
        assert_eq!(b.x[1], Some(1000.0));
        assert_eq!(b.max[5], Some(99.0));
        assert_eq!(b.min[1], Some(-5.0));
        assert_eq!(b.max.iter().filter(|m| **m == Some(99.0)).count(), 1);
        // A zoomed range only looks at the points inside.
        let z = s.bucketed(1000, Some(5600.0), Some(5700.0), XAxis::Step);
        assert_eq!(z.count, 11);
        assert_eq!(z.y[7], Some(99.0));
    }
}
