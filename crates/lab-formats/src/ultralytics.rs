//! Ultralytics: `runs/<task>/[<project>/]<name>/` with `args.yaml` and `results.csv`.
//!
//! Not read yet (issue 31): discovery does not recognise it, so no run of
//! this format is registered, and a reader made for one says so as an
//! error of its run.

use crate::RunInfo;
use crate::discover::Listing;
use crate::series::SeriesSet;
use crate::storage::Storage;

/// The artifacts this format adds to the default allowlist.
pub(crate) const ARTIFACTS: &[&str] = &[];

/// Whether the directory `listing` shows is a run of this format.
pub(crate) fn recognises(_listing: &Listing<'_>) -> bool {
    false
}

#[derive(Debug, Default)]
pub(crate) struct Reader {
    info: RunInfo,
}

impl Reader {
    pub(crate) fn refresh(&mut self, _storage: &dyn Storage) {
        self.info.errors = vec!["the ultralytics reader is not written yet".to_owned()];
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        Vec::new()
    }

    pub(crate) fn info(&self) -> RunInfo {
        self.info.clone()
    }
}
