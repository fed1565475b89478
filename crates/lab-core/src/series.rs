//! One metric series of a run, downsampled for a chart.

use lab_formats::{Bucketed, XAxis};
use lab_registry::RunId;

use crate::readers::REFRESH_EVERY;
use crate::{Error, Lab, lock};

/// Which part of a series, in how many buckets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesQuery {
    /// Buckets at most.
    pub points: usize,
    /// The first x shown.
    pub from: Option<f64>,
    /// The last x shown.
    pub to: Option<f64>,
    /// Steps or wall-clock time as x.
    pub axis: XAxis,
}

impl Lab {
    /// Run `id`'s series `name` bucketed as `query` asks (first x, last y,
    /// min, max), with a tag that changes when the series grows; `None`
    /// when the run has no such metric. Blocking: call it through the
    /// run's gate.
    pub fn series(
        &self,
        id: &RunId,
        name: &str,
        query: SeriesQuery,
    ) -> Result<Option<(String, Bucketed)>, Error> {
        let SeriesQuery {
            points,
            from,
            to,
            axis,
        } = query;
        let run = self.run(id)?;
        let source = self.readers.open_source(&run)?;
        let reader = self.readers.reader(&run, &source, REFRESH_EVERY);
        let reader = lock(&reader);
        Ok(reader.series(name).map(|series| {
            let tag = format!(
                "\"m-{}-{}-{}-{points}-{from:?}-{to:?}-{axis:?}\"",
                run.id,
                series.generation,
                series.points().len()
            );
            (tag, series.bucketed(points, from, to, axis))
        }))
    }
}
