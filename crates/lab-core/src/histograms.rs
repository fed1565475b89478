//! One histogram of a run, as the quantile bands TensorBoard's
//! distribution view draws of each step (`lab_formats::HistogramPoint::bands`).

use lab_registry::RunId;
use serde::Serialize;

use crate::readers::REFRESH_EVERY;
use crate::{Error, Lab, lock};

/// One step of a histogram, compressed to its bands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bands {
    /// The step.
    pub step: i64,
    /// Wall-clock seconds, when known.
    pub wall_time: Option<f64>,
    /// The values at [`lab_formats::BASIS_POINTS`] (0, 6.68 %, 15.87 %,
    /// 30.85 %, 50 %, 69.15 %, 84.13 %, 93.32 %, 100 % of the weight);
    /// `None` where not finite.
    pub bands: [Option<f64>; 9],
}

impl Lab {
    /// Run `id`'s histogram `name` as at most `points` steps spread evenly
    /// over its steps (the first and last among them), each compressed to
    /// its bands; `None` when the run has no such histogram. Blocking:
    /// call it through the run's gate.
    pub fn histogram(
        &self,
        id: &RunId,
        name: &str,
        points: usize,
    ) -> Result<Option<Vec<Bands>>, Error> {
        let run = self.run(id)?;
        let source = self.readers.open_source(&run)?;
        let reader = self.readers.reader(&run, &source, REFRESH_EVERY);
        let reader = lock(&reader);
        Ok(reader.histogram(name).map(|all| {
            lab_formats::spread_histogram(all, points)
                .into_iter()
                .map(|p| Bands {
                    step: p.step,
                    wall_time: p.wall.is_finite().then_some(p.wall),
                    bands: p.bands().map(|v| v.is_finite().then_some(v)),
                })
                .collect()
        }))
    }
}
