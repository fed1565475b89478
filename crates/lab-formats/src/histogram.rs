//! Histograms over steps (TensorBoard's `HistogramProto` and TF2
//! histogram tensors, W&B's `Histogram`, the Lab's `histograms.jsonl`),
//! kept per tag with caps, and the quantile bands TensorBoard's
//! distribution view draws of each.
//!
//! One point is TensorBoard's `HistogramProto` form: `min`, `max`, the
//! buckets' right edges (`limits`) and their `counts`. A point with no
//! buckets is an empty histogram (its bands are zeros). Every number is
//! checked when a point is made ([`HistogramPoint::new`]): finite edges,
//! finite non-negative counts, as many limits as counts, at most
//! [`MAX_BUCKETS`]; a point that fails is an error of its run, never kept.
//!
//! The bands ([`HistogramPoint::bands`]) are TensorBoard's
//! `compress_histogram_proto` (tensorboard/plugins/distribution/
//! compressor.py), step for step:
//!
//! ```text
//! counts [1, 3], limits [1, 2], min 0, max 2
//!   weights (cumulative, scaled to 10,000): [2500, 10000]
//!   basis point 5000 → bucket 1 (first weight > 5000),
//!   between max(limit 0, min) = 1 and min(limit 1, max) = 2:
//!   1 + (5000 - 2500) * (2 - 1) / (10000 - 2500) = 1.333…
//! ```

use std::collections::BTreeMap;

/// Most histogram tags one run keeps.
pub const MAX_HISTOGRAMS: usize = 100;
/// Most points one histogram tag keeps (the first ones).
pub const MAX_HISTOGRAM_POINTS: usize = 10_000;
/// Most buckets one histogram point may have.
pub const MAX_BUCKETS: usize = 1_000;
/// Most buckets one run keeps, every point of every tag together
/// (16 bytes each: 64 MB at most).
pub const MAX_BUCKETS_PER_RUN: usize = 4_000_000;
/// Most distinct error lines kept about a run's histograms.
const MAX_ERROR_LINES: usize = 10;

/// TensorBoard's basis points (`NORMAL_HISTOGRAM_BPS`): the normal
/// distribution's CDF at -∞, -1.5σ, -1σ, -0.5σ, 0, 0.5σ, 1σ, 1.5σ and +∞,
/// in hundredths of a percent.
pub const BASIS_POINTS: [f64; 9] = [
    0.0, 668.0, 1587.0, 3085.0, 5000.0, 6915.0, 8413.0, 9332.0, 10000.0,
];

/// One histogram at one step, in `HistogramProto`'s form.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramPoint {
    /// The step.
    pub step: i64,
    /// Wall-clock seconds since the epoch (NaN when unknown).
    pub wall: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// Each bucket's right edge.
    pub limits: Vec<f64>,
    /// Each bucket's count.
    pub counts: Vec<f64>,
}

/// A histogram tag as a run's details list it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HistogramInfo {
    /// The tag.
    pub name: String,
    /// Points kept.
    pub count: usize,
    /// The last point's step (in the order written).
    pub last_step: Option<i64>,
}

impl HistogramPoint {
    /// A point, if its numbers make a histogram: as many limits as counts,
    /// at most [`MAX_BUCKETS`], finite `min`, `max` and limits, finite
    /// non-negative counts. The error says what is wrong.
    pub fn new(
        step: i64,
        wall: f64,
        min: f64,
        max: f64,
        limits: Vec<f64>,
        counts: Vec<f64>,
    ) -> Result<Self, String> {
        if limits.len() != counts.len() {
            return Err(format!(
                "{} bucket limits but {} counts",
                limits.len(),
                counts.len()
            ));
        }
        check_buckets(limits.len())?;
        if !min.is_finite() || !max.is_finite() {
            return Err("a min or max that is not a finite number".to_owned());
        }
        if limits.iter().any(|l| !l.is_finite()) {
            return Err("a bucket limit that is not a finite number".to_owned());
        }
        if counts.iter().any(|c| !c.is_finite() || *c < 0.0) {
            return Err("a bucket count that is negative or not a finite number".to_owned());
        }
        Ok(Self {
            step,
            wall,
            min,
            max,
            limits,
            counts,
        })
    }

    /// The value at each of [`BASIS_POINTS`], as TensorBoard's
    /// `compress_histogram_proto` computes it: the counts' cumulative
    /// weights scaled to 10,000; for each basis point the first bucket
    /// whose weight is past it (numpy's `searchsorted(side="right")`,
    /// skipping buckets that add nothing), and the value interpolated
    /// linearly in that bucket, between `max(previous limit, min)` (or
    /// `min`, for the first bucket or one with nothing before it) and
    /// `min(its limit, max)`; basis points past the last weight are `max`.
    /// An empty histogram's bands are zeros.
    pub fn bands(&self) -> [f64; 9] {
        if self.counts.is_empty() {
            return [0.0; 9];
        }
        let total: f64 = self.counts.iter().sum();
        let total = if total == 0.0 { 1.0 } else { total };
        let last = BASIS_POINTS[8];
        let mut weights = Vec::with_capacity(self.counts.len());
        let mut sum = 0.0;
        for c in &self.counts {
            // numpy: `bucket * bps[-1] / total`, then `cumsum()`.
            sum += c * last / total;
            weights.push(sum);
        }
        let mut out = [self.max; 9];
        let mut j = 0;
        'points: while j < BASIS_POINTS.len() {
            let bp = BASIS_POINTS[j];
            // Counts are non-negative, so the weights never decrease.
            let mut i = weights.partition_point(|w| *w <= bp);
            loop {
                let (Some(&cumsum), Some(&limit)) = (weights.get(i), self.limits.get(i)) else {
                    break 'points;
                };
                let prev = if i > 0 { weights[i - 1] } else { 0.0 };
                if cumsum == prev {
                    i += 1;
                    continue;
                }
                let lhs = if i == 0 || prev == 0.0 {
                    self.min
                } else {
                    self.limits[i - 1].max(self.min)
                };
                let rhs = limit.min(self.max);
                out[j] = lhs + (bp - prev) * (rhs - lhs) / (cumsum - prev);
                j += 1;
                break;
            }
        }
        out
    }
}

/// An error unless `n` buckets are within [`MAX_BUCKETS`]: what a reader
/// checks before it reads a histogram's buckets.
pub(crate) fn check_buckets(n: usize) -> Result<(), String> {
    if n > MAX_BUCKETS {
        return Err(format!("{n} buckets (at most {MAX_BUCKETS} are read)"));
    }
    Ok(())
}

/// `n` points of `points` spread evenly over them in step order, the
/// first and the last always among them (all of them when there are no
/// more than `n`; only the last when `n` is 1).
pub fn spread(points: &[HistogramPoint], n: usize) -> Vec<&HistogramPoint> {
    let mut sorted: Vec<&HistogramPoint> = points.iter().collect();
    sorted.sort_by_key(|p| p.step);
    let len = sorted.len();
    if len <= n {
        return sorted;
    }
    if n <= 1 {
        return sorted.last().copied().into_iter().collect();
    }
    // k (len - 1) / (n - 1) for k in 0..n: 0 first, len - 1 last, and
    // strictly increasing as len > n.
    (0..n)
        .filter_map(|k| sorted.get(k * (len - 1) / (n - 1)).copied())
        .collect()
}

/// The histograms of one run, by tag, with the caps enforced.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histograms {
    tags: BTreeMap<String, Vec<HistogramPoint>>,
    /// Buckets kept, every point together.
    buckets: usize,
    /// Points refused by a cap.
    refused: u64,
    /// Points refused for what they hold, and the first few reasons.
    bad: u64,
    reasons: Vec<String>,
}

impl Histograms {
    /// Keeps `point` under `name`, or counts it: a point of a tag past
    /// [`MAX_HISTOGRAMS`], past [`MAX_HISTOGRAM_POINTS`] of its tag or past
    /// [`MAX_BUCKETS_PER_RUN`] is refused; an `Err` is a bad point, its
    /// reason kept for [`Histograms::errors`].
    pub(crate) fn push(&mut self, name: &str, point: Result<HistogramPoint, String>) {
        let point = match point {
            Ok(point) => point,
            Err(why) => {
                let name = crate::protowire::text(name.as_bytes(), 200);
                self.bad(format!("histogram {name:?}: {why}"));
                return;
            }
        };
        let buckets = point.counts.len();
        let full = self.buckets + buckets > MAX_BUCKETS_PER_RUN;
        let known = self.tags.contains_key(name);
        if full
            || (!known
                && (self.tags.len() >= MAX_HISTOGRAMS || name.is_empty() || name.len() > 512))
        {
            self.refused += 1;
            return;
        }
        let points = self.tags.entry(name.to_owned()).or_default();
        if points.len() >= MAX_HISTOGRAM_POINTS {
            self.refused += 1;
            return;
        }
        points.push(point);
        self.buckets += buckets;
    }

    /// Counts a point that could not be read, keeping the first few
    /// distinct reasons.
    pub(crate) fn bad(&mut self, line: String) {
        self.bad += 1;
        if self.reasons.len() < MAX_ERROR_LINES && !self.reasons.contains(&line) {
            self.reasons.push(line);
        }
    }

    /// Buckets kept, every point of every tag together.
    pub(crate) fn buckets(&self) -> usize {
        self.buckets
    }

    /// The points of `name`, in the order written.
    pub(crate) fn get(&self, name: &str) -> Option<&[HistogramPoint]> {
        self.tags.get(name).map(Vec::as_slice)
    }

    /// Each tag with its count and last step, by name.
    pub(crate) fn infos(&self) -> Vec<HistogramInfo> {
        self.tags
            .iter()
            .map(|(name, points)| HistogramInfo {
                name: name.clone(),
                count: points.len(),
                last_step: points.last().map(|p| p.step),
            })
            .collect()
    }

    /// Every tag with its points.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Vec<HistogramPoint>)> {
        self.tags.iter()
    }

    /// Lines for [`crate::RunInfo::errors`]: the bad points' reasons and
    /// how many points the caps refused.
    pub(crate) fn errors(&self) -> Vec<String> {
        let mut out = self.reasons.clone();
        if self.bad > self.reasons.len() as u64 {
            out.push(format!("{} histogram points could not be read", self.bad));
        }
        if self.refused > 0 {
            out.push(format!(
                "{} histogram points over the caps were not kept ({MAX_HISTOGRAMS} histograms, {MAX_HISTOGRAM_POINTS} points each, {MAX_BUCKETS_PER_RUN} buckets per run)",
                self.refused
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(min: f64, max: f64, limits: &[f64], counts: &[f64]) -> HistogramPoint {
        HistogramPoint::new(0, f64::NAN, min, max, limits.to_vec(), counts.to_vec()).unwrap()
    }

    /// Compares bands with values computed by hand (to 1e-12).
    fn check(p: &HistogramPoint, expected: [f64; 9]) {
        let got = p.bands();
        for (g, e) in got.iter().zip(expected) {
            assert!(
                (g - e).abs() <= 1e-12 * e.abs().max(1.0),
                "{got:?} != {expected:?}"
            );
        }
    }

    #[test]
    fn bands_are_tensorboards_compressed_histogram() {
        // Four equal buckets over [0, 4]: the weights are 2500, 5000,
        // 7500, 10000. A basis point b lies in bucket floor(b / 2500) and
        // is interpolated there: the value is b / 2500 (a uniform
        // distribution), except where a weight equals the basis point
        // exactly (5000: side="right" goes to the next bucket, whose left
        // edge is limit 1 = 2).
        let uniform = point(0.0, 4.0, &[1.0, 2.0, 3.0, 4.0], &[1.0, 1.0, 1.0, 1.0]);
        check(
            &uniform,
            [
                0.0,
                668.0 / 2500.0,
                1587.0 / 2500.0,
                3085.0 / 2500.0,
                2.0,
                6915.0 / 2500.0,
                8413.0 / 2500.0,
                9332.0 / 2500.0,
                4.0,
            ],
        );
        // counts [1, 3], limits [1, 2], min 0, max 2: weights 2500 and
        // 10000. Below 2500 in bucket 0 from min: b / 2500; above, in
        // bucket 1 from 1: 1 + (b - 2500) / 7500.
        let skewed = point(0.0, 2.0, &[1.0, 2.0], &[1.0, 3.0]);
        let upper = |b: f64| 1.0 + (b - 2500.0) / 7500.0;
        check(
            &skewed,
            [
                0.0,
                668.0 / 2500.0,
                1587.0 / 2500.0,
                upper(3085.0),
                upper(5000.0),
                upper(6915.0),
                upper(8413.0),
                upper(9332.0),
                2.0,
            ],
        );
        // A limit past max is clamped to max, one below min to min: one
        // bucket [min 1, max 3] with limit 10 is interpolated over [1, 3].
        let clamped = point(1.0, 3.0, &[10.0], &[5.0]);
        let lerp = |b: f64| 1.0 + b * 2.0 / 10000.0;
        check(&clamped, BASIS_POINTS.map(lerp));
        // An empty leading bucket (tensorboardX writes one) is skipped:
        // the first weight is 0, so the first real bucket starts at min.
        let led = point(2.0, 4.0, &[1.5, 4.0], &[0.0, 2.0]);
        check(&led, BASIS_POINTS.map(|b| 2.0 + b * 2.0 / 10000.0));
    }

    #[test]
    fn empty_and_zero_histograms_give_zeros_or_max() {
        // No buckets: zeros, as TensorBoard says of a histogram with num 0.
        check(&point(5.0, 9.0, &[], &[]), [0.0; 9]);
        // Buckets that count nothing: every weight is 0, no bucket is past
        // any basis point, so every band is max.
        check(&point(5.0, 9.0, &[6.0, 9.0], &[0.0, 0.0]), [9.0; 9]);
        // Everything in the last of three buckets: below it nothing, so
        // from min (prev weight 0) to min(limit, max).
        check(
            &point(0.0, 3.0, &[1.0, 2.0, 3.0], &[0.0, 0.0, 7.0]),
            BASIS_POINTS.map(|b| b * 3.0 / 10000.0),
        );
    }

    #[test]
    fn bad_points_are_refused_with_a_reason() {
        let new = |limits: Vec<f64>, counts: Vec<f64>| {
            HistogramPoint::new(0, 0.0, 0.0, 1.0, limits, counts).map(|_| ())
        };
        assert!(
            new(vec![1.0], vec![])
                .unwrap_err()
                .contains("1 bucket limits but 0")
        );
        assert!(
            new(vec![f64::NAN], vec![1.0])
                .unwrap_err()
                .contains("limit")
        );
        assert!(
            new(vec![f64::INFINITY], vec![1.0])
                .unwrap_err()
                .contains("limit")
        );
        assert!(new(vec![1.0], vec![-1.0]).unwrap_err().contains("negative"));
        assert!(
            new(vec![1.0], vec![f64::NAN])
                .unwrap_err()
                .contains("count")
        );
        let many = vec![1.0; MAX_BUCKETS + 1];
        assert!(new(many.clone(), many).unwrap_err().contains("buckets"));
        assert!(
            HistogramPoint::new(0, 0.0, f64::NAN, 1.0, vec![], vec![])
                .unwrap_err()
                .contains("min or max")
        );
        assert_eq!(new(vec![1.0; MAX_BUCKETS], vec![1.0; MAX_BUCKETS]), Ok(()));
    }

    #[test]
    fn caps_refuse_and_count_never_keep() {
        let mut h = Histograms::default();
        let p = |step| HistogramPoint::new(step, 0.0, 0.0, 1.0, vec![1.0], vec![1.0]);
        for i in 0..=MAX_HISTOGRAMS {
            h.push(&format!("t{i}"), p(0));
        }
        assert_eq!(h.infos().len(), MAX_HISTOGRAMS);
        for step in 0..MAX_HISTOGRAM_POINTS as i64 + 5 {
            h.push("t0", p(step));
        }
        assert_eq!(h.get("t0").map(<[_]>::len), Some(MAX_HISTOGRAM_POINTS));
        h.push("t1", Err("bad".to_owned()));
        let errors = h.errors();
        assert_eq!(errors[0], "histogram \"t1\": bad");
        assert!(
            errors[1].starts_with("7 histogram points over the caps"),
            "{errors:?}"
        );
        // The buckets of a run are capped whatever the tags.
        let mut h = Histograms::default();
        let big = || {
            HistogramPoint::new(
                0,
                0.0,
                0.0,
                1.0,
                vec![1.0; MAX_BUCKETS],
                vec![1.0; MAX_BUCKETS],
            )
        };
        for i in 0..(MAX_BUCKETS_PER_RUN / MAX_BUCKETS + 3) {
            h.push(&format!("t{}", i % 50), big());
        }
        assert_eq!(h.buckets, MAX_BUCKETS_PER_RUN);
        assert_eq!(h.refused, 3);
    }

    proptest::proptest! {
        /// For a histogram whose limits rise within [min, max] and whose
        /// counts add up to more than nothing, the bands start at min,
        /// never fall and never leave [min, max] (up to rounding): the
        /// quantiles of a distribution on [min, max].
        #[test]
        fn bands_of_a_histogram_are_its_quantiles(
            min in -1e6f64..1e6,
            span in 1e-3f64..1e6,
            cuts in proptest::collection::vec(0.0f64..1.0, 1..60),
            counts in proptest::collection::vec(0u32..1000, 60),
        ) {
            let max = min + span;
            let mut cuts = cuts;
            cuts.sort_by(f64::total_cmp);
            let mut limits: Vec<f64> = cuts.iter().map(|c| min + c * span).collect();
            if let Some(last) = limits.last_mut() {
                *last = max;
            }
            let counts: Vec<f64> = counts[..limits.len()].iter().map(|c| f64::from(*c)).collect();
            proptest::prop_assume!(counts.iter().sum::<f64>() > 0.0);
            let p = HistogramPoint::new(0, 0.0, min, max, limits, counts).unwrap();
            let bands = p.bands();
            let slack = 1e-9 * (min.abs() + max.abs() + 1.0);
            proptest::prop_assert_eq!(bands[0], min);
            for pair in bands.windows(2) {
                proptest::prop_assert!(pair[0] <= pair[1] + slack, "{:?}", bands);
            }
            for b in bands {
                proptest::prop_assert!(b >= min - slack && b <= max + slack, "{:?}", bands);
            }
        }
    }

    #[test]
    fn spread_picks_evenly_and_keeps_the_last() {
        let points: Vec<HistogramPoint> = (0..10)
            .rev()
            .map(|s| HistogramPoint::new(s * 10, 0.0, 0.0, 1.0, vec![], vec![]).unwrap())
            .collect();
        let steps = |n| {
            spread(&points, n)
                .iter()
                .map(|p| p.step)
                .collect::<Vec<_>>()
        };
        assert_eq!(steps(100), (0..10).map(|s| s * 10).collect::<Vec<_>>());
        assert_eq!(steps(1), [90]);
        assert_eq!(steps(2), [0, 90]);
        assert_eq!(steps(4), [0, 30, 60, 90]);
        assert_eq!(steps(9).len(), 9);
        assert_eq!(steps(9).last(), Some(&90));
    }
}
