//! Lightning's CSVLogger: `version_N/metrics.csv` (header `epoch,step,…`,
//! a row per log call, empty cells where a metric was not logged) and
//! `hparams.yaml` (flattened into params).

use crate::lab::{MAX_META_BYTES, read_parsed};
use crate::series::SeriesSet;
use crate::storage::Storage;
use crate::{RunInfo, flatten};

#[derive(Debug, Default)]
pub(crate) struct Reader {
    metrics: crate::lab::Reader,
    hparams: RunInfo,
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        self.metrics
            .refresh_csv_only(storage, "metrics.csv", &["epoch"]);
        let mut hparams = RunInfo::default();
        match read_parsed(storage, "hparams.yaml", MAX_META_BYTES) {
            Ok(None) => {}
            Ok(Some(value)) => flatten("", &value, &mut hparams.params),
            Err(e) => hparams.errors.push(e),
        }
        self.hparams = hparams;
    }

    pub(crate) fn info(&self) -> RunInfo {
        let mut info = self.hparams.clone();
        info.errors.extend(self.metrics.csv_errors());
        info
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        self.metrics.sets()
    }
}
