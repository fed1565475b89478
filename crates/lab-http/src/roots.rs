//! Open root handles of the runs served lately, kept between requests so
//! an artifact request does not open its run's directory and look its
//! real path up in `/proc` each time. Every request still checks the
//! handle against the registered path (`RunRoot::still_here`) and resolves
//! its name beneath it afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lab_fs::RunRoot;
use lab_registry::{RunId, RunRecord};

use crate::readers::lock;

/// Most handles kept (each is one descriptor).
const MAX_HELD: usize = 128;

/// The handles.
#[derive(Default)]
pub(crate) struct Roots {
    map: Mutex<HashMap<RunId, Arc<RunRoot>>>,
}

impl std::fmt::Debug for Roots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Roots")
    }
}

impl Roots {
    /// `run`'s root without waiting on a disk: the handle kept for it if
    /// its path still names that directory, else one opened from the
    /// kernel's lookup cache (and kept). `None`: the caller opens it on a
    /// blocking thread.
    pub(crate) fn cached(&self, run: &RunRecord) -> Option<Arc<RunRoot>> {
        let held = lock(&self.map).get(&run.id).cloned();
        if let Some(root) = held {
            if root.path() == run.root && root.still_here() {
                return Some(root);
            }
            lock(&self.map).remove(&run.id);
        }
        let root = Arc::new(RunRoot::open_ambient_cached(&run.root)?);
        let mut map = lock(&self.map);
        if map.len() >= MAX_HELD
            && let Some(any) = map.keys().next().cloned()
        {
            map.remove(&any);
        }
        map.insert(run.id.clone(), Arc::clone(&root));
        Some(root)
    }

    /// Drops `id`'s handle (a forgotten run).
    pub(crate) fn forget(&self, id: &RunId) {
        lock(&self.map).remove(id);
    }
}
