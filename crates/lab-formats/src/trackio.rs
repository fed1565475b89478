//! Trackio: a project database (`PROJECT.db`) beside `media/`; each run in it.
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

#[derive(Debug)]
pub(crate) struct Reader {
    /// The run's name in its project's database.
    #[allow(dead_code)] // read once the reader is written
    run: String,
    info: RunInfo,
}

impl Reader {
    /// A reader of the run `run` of the database at the storage's top,
    /// bounded by `limits`.
    pub(crate) fn new(run: &str, _limits: &crate::Limits) -> Self {
        Self {
            run: run.to_owned(),
            info: RunInfo::default(),
        }
    }

    pub(crate) fn refresh(&mut self, _storage: &dyn Storage) {
        self.info.errors = vec!["the trackio reader is not written yet".to_owned()];
    }

    pub(crate) fn sets(&self) -> Vec<&SeriesSet> {
        Vec::new()
    }

    pub(crate) fn info(&self) -> RunInfo {
        self.info.clone()
    }
}
