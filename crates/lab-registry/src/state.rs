//! The registry in memory, indexed, and the one way it changes: a
//! [`Batch`] of [`Change`]s, the same whether a locked update makes them or a
//! reader replays them from the journal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::journal::Change;
use crate::{MAX_FORGOTTEN, RunId, RunKey, RunRecord};

/// The registered runs, forgotten keys and remembered roots.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Sorted by id, shared with callers of `Registry::runs`.
    runs: Arc<Vec<RunRecord>>,
    /// Every run's key, to its id.
    keys: HashMap<RunKey, RunId>,
    /// Every registered run's earlier ids (`RunRecord::aliases`), to its id.
    aliases: HashMap<RunId, RunId>,
    forgotten: Forgotten,
    roots: Vec<PathBuf>,
    /// Whether the snapshot this was read from was written before ids
    /// were stable (its runs' random ids are still to migrate).
    pub(crate) before_stable_ids: bool,
}

/// Forgotten keys, oldest first, with an index (the oldest are dropped
/// past [`MAX_FORGOTTEN`]).
#[derive(Debug, Default)]
struct Forgotten {
    order: BTreeMap<u64, RunKey>,
    seq: HashMap<RunKey, u64>,
    next: u64,
}

impl Forgotten {
    fn contains(&self, key: &RunKey) -> bool {
        !self.seq.is_empty() && self.seq.contains_key(key)
    }

    fn push(&mut self, key: RunKey) {
        if self.seq.contains_key(&key) {
            return;
        }
        if self.seq.len() >= MAX_FORGOTTEN
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.seq.remove(&oldest);
        }
        self.seq.insert(key.clone(), self.next);
        self.order.insert(self.next, key);
        self.next += 1;
    }

    fn remove(&mut self, key: &RunKey) {
        // Most registries forget nothing: spare the hashing.
        if self.seq.is_empty() {
            return;
        }
        if let Some(seq) = self.seq.remove(key) {
            self.order.remove(&seq);
        }
    }
}

impl State {
    /// The state a snapshot holds. Runs must have distinct ids and
    /// aliases (the snapshot's loader checks); of runs sharing a key, the
    /// first is the one found by key, as a linear search found it before.
    pub(crate) fn new(runs: Vec<RunRecord>, forgotten: Vec<RunKey>, roots: Vec<PathBuf>) -> Self {
        let mut keys = HashMap::with_capacity(runs.len());
        let mut aliases = HashMap::new();
        for run in &runs {
            keys.entry(run.key()).or_insert_with(|| run.id.clone());
            for alias in &run.aliases {
                aliases
                    .entry(alias.clone())
                    .or_insert_with(|| run.id.clone());
            }
        }
        let mut runs = runs;
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        let mut state = Self {
            runs: Arc::new(runs),
            keys,
            aliases,
            forgotten: Forgotten::default(),
            roots,
            before_stable_ids: false,
        };
        for key in forgotten {
            state.forgotten.push(key);
        }
        state
    }

    /// The runs, sorted by id.
    pub(crate) fn runs(&self) -> &Arc<Vec<RunRecord>> {
        &self.runs
    }

    /// One run by id, or by an id it had before (an alias).
    pub(crate) fn get(&self, id: &RunId) -> Option<&RunRecord> {
        self.by_current_id(id).or_else(|| {
            // Most registries hold no alias: spare the hashing.
            if self.aliases.is_empty() {
                return None;
            }
            self.by_current_id(self.aliases.get(id)?)
        })
    }

    /// One run by its id now.
    fn by_current_id(&self, id: &RunId) -> Option<&RunRecord> {
        self.runs
            .binary_search_by(|r| r.id.cmp(id))
            .ok()
            .map(|i| &self.runs[i])
    }

    /// Whether `key` is a registered run's.
    pub(crate) fn has_key(&self, key: &RunKey) -> bool {
        self.keys.contains_key(key)
    }

    /// The remembered allowed roots.
    pub(crate) fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Forgotten keys, oldest first.
    pub(crate) fn forgotten(&self) -> impl Iterator<Item = &RunKey> {
        self.forgotten.order.values()
    }
}

/// Changes to a [`State`], checked one by one, recorded in order, and
/// merged into the sorted runs once at [`Batch::finish`] (so a batch of `k`
/// additions costs `O(n + k log k)`, not `O(n k)`).
///
/// Keys, forgotten keys and roots change at once, each change recorded as
/// it is made; the sorted runs only at `finish`. A batch dropped unfinished
/// after a change leaves the state inconsistent: the caller throws the
/// state away instead (see `Store::update`).
#[derive(Debug)]
pub(crate) struct Batch<'a> {
    state: &'a mut State,
    added: HashMap<RunId, RunRecord>,
    /// Ids of runs in `state.runs` that are gone.
    removed: HashSet<RunId>,
    changes: Vec<Change>,
    /// Whether the changes are to be written as a new snapshot.
    compact: bool,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(state: &'a mut State) -> Self {
        Self {
            state,
            added: HashMap::new(),
            removed: HashSet::new(),
            changes: Vec::new(),
            compact: false,
        }
    }

    /// Whether anything was changed yet.
    pub(crate) fn changed(&self) -> bool {
        !self.changes.is_empty()
    }

    /// How many runs there are.
    pub(crate) fn len(&self) -> usize {
        self.state.runs.len() - self.removed.len() + self.added.len()
    }

    /// Whether a run has this id, or had it (an alias): an id once issued
    /// names no other run while its run is registered.
    pub(crate) fn has_id(&self, id: &RunId) -> bool {
        self.added.contains_key(id)
            || (!self.removed.contains(id) && self.state.by_current_id(id).is_some())
            || self.state.aliases.contains_key(id)
    }

    /// The id now of the run that has, or had, `id`.
    pub(crate) fn resolve(&self, id: &RunId) -> Option<RunId> {
        if self.by_id(id).is_some() {
            return Some(id.clone());
        }
        let current = self.state.aliases.get(id)?;
        self.by_id(current).map(|run| run.id.clone())
    }

    /// The registered runs, as changed so far (in no order).
    pub(crate) fn runs(&self) -> impl Iterator<Item = &RunRecord> {
        self.state
            .runs
            .iter()
            .filter(|r| !self.removed.contains(&r.id))
            .chain(self.added.values())
    }

    /// Whether the registry was written before ids were stable.
    pub(crate) fn before_stable_ids(&self) -> bool {
        self.state.before_stable_ids
    }

    /// Marks the registry migrated to stable ids (written so by the
    /// compaction the migration asks for).
    pub(crate) fn migrated(&mut self) {
        self.state.before_stable_ids = false;
    }

    /// Asks for the changes to be written as a new snapshot, not appended
    /// to the journal (see `Store::update`).
    pub(crate) fn compact(&mut self) {
        self.compact = true;
    }

    /// Whether [`Batch::compact`] was asked.
    pub(crate) fn wants_compaction(&self) -> bool {
        self.compact
    }

    /// The run with this key.
    pub(crate) fn by_key(&self, key: &RunKey) -> Option<&RunRecord> {
        let id = self.state.keys.get(key)?;
        self.by_id(id)
    }

    fn by_id(&self, id: &RunId) -> Option<&RunRecord> {
        if let Some(run) = self.added.get(id) {
            return Some(run);
        }
        if self.removed.contains(id) {
            return None;
        }
        self.state.by_current_id(id)
    }

    /// Whether this key was forgotten.
    pub(crate) fn is_forgotten(&self, key: &RunKey) -> bool {
        self.state.forgotten.contains(key)
    }

    /// Registers `run`, whose id and key the caller checked are free. Its
    /// key is no longer forgotten.
    pub(crate) fn add(&mut self, run: RunRecord) {
        self.changes.push(Change::Add(run.clone()));
        self.insert(run);
    }

    fn insert(&mut self, run: RunRecord) {
        let key = run.key();
        self.state.forgotten.remove(&key);
        self.state.keys.insert(key, run.id.clone());
        for alias in &run.aliases {
            self.state.aliases.insert(alias.clone(), run.id.clone());
        }
        self.added.insert(run.id.clone(), run);
    }

    /// Takes the run with id `id` (its id now) out of the runs, its key
    /// and aliases out of the indexes.
    fn take(&mut self, id: &RunId) -> Option<RunRecord> {
        let run = match self.added.remove(id) {
            Some(run) => run,
            None => {
                let run = self.by_id(id)?.clone();
                self.removed.insert(id.clone());
                run
            }
        };
        let key = run.key();
        if self.state.keys.get(&key) == Some(id) {
            self.state.keys.remove(&key);
        }
        for alias in &run.aliases {
            if self.state.aliases.get(alias) == Some(id) {
                self.state.aliases.remove(alias);
            }
        }
        Some(run)
    }

    /// Forgets the run that has (or had) `id`, remembering its key as
    /// forgotten. Its aliases go with it.
    pub(crate) fn forget(&mut self, id: &RunId) -> Option<RunRecord> {
        let id = self.resolve(id)?;
        let run = self.take(&id)?;
        self.state.forgotten.push(run.key());
        self.changes.push(Change::Forget { id });
        Some(run)
    }

    /// Gives the run `from` (its id now) the id `to`, which the caller
    /// checked is free; `from` becomes an alias of it, and resolves still.
    pub(crate) fn rename(&mut self, from: &RunId, to: RunId) -> Option<RunRecord> {
        let mut run = self.take(from)?;
        run.id = to.clone();
        run.aliases.push(from.clone());
        self.changes.push(Change::Rename {
            from: from.clone(),
            to,
        });
        self.insert(run.clone());
        Some(run)
    }

    /// The remembered roots, as changed so far.
    pub(crate) fn roots(&self) -> &[PathBuf] {
        &self.state.roots
    }

    /// Remembers those of `roots` not remembered yet.
    pub(crate) fn add_roots(&mut self, roots: Vec<PathBuf>) {
        let mut new = Vec::new();
        for root in roots {
            if !self.state.roots.contains(&root) && !new.contains(&root) {
                new.push(root);
            }
        }
        if !new.is_empty() {
            self.state.roots.extend(new.iter().cloned());
            self.changes.push(Change::Roots(new));
        }
    }

    /// Forgets those of `roots` that are remembered.
    pub(crate) fn forget_roots(&mut self, roots: Vec<PathBuf>) {
        let gone: Vec<PathBuf> = roots
            .into_iter()
            .filter(|r| self.state.roots.contains(r))
            .collect();
        if !gone.is_empty() {
            self.state.roots.retain(|r| !gone.contains(r));
            self.changes.push(Change::ForgetRoots(gone));
        }
    }

    /// Replays one change read from the journal, checking that it fits:
    /// why not, if it does not.
    pub(crate) fn apply(&mut self, change: Change) -> Result<(), String> {
        match change {
            Change::Add(run) => {
                if !run.root.is_absolute() {
                    return Err(format!("run {} has a relative root", run.id));
                }
                let mut ids = HashSet::new();
                if let Some(id) = std::iter::once(&run.id)
                    .chain(&run.aliases)
                    .find(|id| !ids.insert(*id) || self.has_id(id))
                {
                    return Err(format!("run id {id} appears twice"));
                }
                if self.by_key(&run.key()).is_some() {
                    return Err(format!(
                        "run {} has the root of another run ({})",
                        run.id,
                        run.root.display()
                    ));
                }
                self.add(run);
            }
            Change::Forget { id } => {
                if self.forget(&id).is_none() {
                    return Err(format!("forgets {id}, which is not registered"));
                }
            }
            Change::Rename { from, to } => {
                if self.by_id(&from).is_none() {
                    return Err(format!("renames {from}, which is not registered"));
                }
                if self.has_id(&to) {
                    return Err(format!("renames {from} to {to}, which is taken"));
                }
                self.rename(&from, to);
            }
            Change::Roots(roots) => {
                if let Some(relative) = roots.iter().find(|r| !r.is_absolute()) {
                    return Err(format!("{} is not absolute", relative.display()));
                }
                self.add_roots(roots);
            }
            Change::ForgetRoots(roots) => self.forget_roots(roots),
        }
        Ok(())
    }

    /// Merges the changes into the sorted runs; the changes made, in order.
    pub(crate) fn finish(self) -> Vec<Change> {
        if !self.removed.is_empty() || !self.added.is_empty() {
            let runs = Arc::make_mut(&mut self.state.runs);
            if !self.removed.is_empty() {
                // Where the removed runs are, found by id, then one pass
                // that keeps the rest (no hashing of every run's id).
                let mut gone: Vec<usize> = self
                    .removed
                    .iter()
                    .filter_map(|id| runs.binary_search_by(|r| r.id.cmp(id)).ok())
                    .collect();
                gone.sort_unstable();
                let mut gone = gone.into_iter().peekable();
                let mut index = 0;
                runs.retain(|_| {
                    let keep = gone.next_if_eq(&index).is_none();
                    index += 1;
                    keep
                });
            }
            if !self.added.is_empty() {
                let mut added: Vec<RunRecord> = self.added.into_values().collect();
                added.sort_by(|a, b| a.id.cmp(&b.id));
                runs.extend(added);
                // Two sorted runs: the stable sort finds them and merges,
                // in linear time.
                runs.sort_by(|a, b| a.id.cmp(&b.id));
            }
        }
        self.changes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may panic

    use super::*;

    fn run(id: &str, root: &str) -> RunRecord {
        RunRecord {
            id: RunId::parse(id).unwrap(),
            root: PathBuf::from(root),
            imported_at: 0,
            format: None,
            entry: None,
            aliases: Vec::new(),
        }
    }

    #[test]
    fn a_batch_sees_its_own_changes_and_merges_them_sorted() {
        let mut state = State::new(vec![run("b", "/r/b"), run("a", "/r/a")], vec![], vec![]);
        let mut batch = Batch::new(&mut state);
        batch.add(run("c", "/r/c"));
        assert!(batch.has_id(&RunId::parse("c").unwrap()));
        assert_eq!(batch.len(), 3);
        batch.forget(&RunId::parse("a").unwrap()).unwrap();
        batch.forget(&RunId::parse("c").unwrap()).unwrap();
        assert_eq!(batch.len(), 1);
        assert!(batch.is_forgotten(&run("c", "/r/c").key()));
        // The same id again, for another root, after it was forgotten.
        batch.add(run("a", "/r/a2"));
        batch.add(run("0", "/r/0"));
        let changes = batch.finish();
        assert_eq!(changes.len(), 5);
        let ids: Vec<&str> = state.runs().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["0", "a", "b"]);
        assert_eq!(
            state.get(&RunId::parse("a").unwrap()).unwrap().root,
            PathBuf::from("/r/a2")
        );
        assert!(!state.has_key(&run("a", "/r/a").key()));
        assert!(state.has_key(&run("a", "/r/a2").key()));
    }

    #[test]
    fn replayed_changes_that_do_not_fit_are_refused() {
        let mut state = State::new(vec![run("a", "/r/a")], vec![], vec![]);
        let mut batch = Batch::new(&mut state);
        for change in [
            Change::Add(run("a", "/r/other")),
            Change::Add(run("b", "/r/a")),
            Change::Add(run("c", "relative")),
            Change::Forget {
                id: RunId::parse("zz").unwrap(),
            },
            Change::Roots(vec![PathBuf::from("relative")]),
        ] {
            assert!(batch.apply(change.clone()).is_err(), "{change:?}");
        }
    }

    #[test]
    fn a_renamed_run_is_found_by_its_old_id_until_it_is_forgotten() {
        let id = |s: &str| RunId::parse(s).unwrap();
        let mut state = State::new(
            vec![run("a-3f9c2d", "/r/a"), run("b", "/r/b")],
            vec![],
            vec![],
        );
        let mut batch = Batch::new(&mut state);
        let renamed = batch.rename(&id("a-3f9c2d"), id("a-stable")).unwrap();
        assert_eq!(renamed.aliases, [id("a-3f9c2d")]);
        assert_eq!(batch.resolve(&id("a-3f9c2d")), Some(id("a-stable")));
        // The old id names no other run.
        assert!(batch.has_id(&id("a-3f9c2d")));
        let changes = batch.finish();
        assert_eq!(
            changes,
            [Change::Rename {
                from: id("a-3f9c2d"),
                to: id("a-stable")
            }]
        );
        let ids: Vec<&str> = state.runs().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a-stable", "b"]);
        assert_eq!(state.get(&id("a-3f9c2d")).unwrap().id, id("a-stable"));
        // The same change replayed on the old state gives the same state.
        let mut replayed = State::new(
            vec![run("a-3f9c2d", "/r/a"), run("b", "/r/b")],
            vec![],
            vec![],
        );
        let mut batch = Batch::new(&mut replayed);
        for change in changes {
            batch.apply(change).unwrap();
        }
        batch.finish();
        assert_eq!(replayed.runs(), state.runs());
        // Forgotten by its old id: gone under both, its key forgotten.
        let mut batch = Batch::new(&mut state);
        let gone = batch.forget(&id("a-3f9c2d")).unwrap();
        assert_eq!(gone.id, id("a-stable"));
        assert!(!batch.has_id(&id("a-3f9c2d")) && !batch.has_id(&id("a-stable")));
        assert!(batch.is_forgotten(&run("x", "/r/a").key()));
        assert_eq!(batch.finish(), [Change::Forget { id: id("a-stable") }]);
        assert!(state.get(&id("a-3f9c2d")).is_none());
    }

    #[test]
    fn replayed_renames_and_aliases_that_do_not_fit_are_refused() {
        let id = |s: &str| RunId::parse(s).unwrap();
        let mut aliased = run("c", "/r/c");
        aliased.aliases = vec![id("c-old")];
        let mut state = State::new(vec![run("a", "/r/a"), aliased], vec![], vec![]);
        let mut batch = Batch::new(&mut state);
        let mut twice = run("d", "/r/d");
        twice.aliases = vec![id("d-old"), id("d-old")];
        let mut taken = run("e", "/r/e");
        taken.aliases = vec![id("c-old")];
        for change in [
            // Renaming what is not registered, or to an id taken (an id or
            // an alias).
            Change::Rename {
                from: id("zz"),
                to: id("y"),
            },
            Change::Rename {
                from: id("a"),
                to: id("c"),
            },
            Change::Rename {
                from: id("a"),
                to: id("c-old"),
            },
            // Renaming by an alias: the journal names ids as they are.
            Change::Rename {
                from: id("c-old"),
                to: id("y"),
            },
            Change::Add(twice),
            Change::Add(taken),
        ] {
            assert!(batch.apply(change.clone()).is_err(), "{change:?}");
        }
    }

    #[test]
    fn the_oldest_forgotten_keys_are_dropped_first() {
        let mut forgotten = Forgotten::default();
        for i in 0..MAX_FORGOTTEN + 2 {
            forgotten.push(run("a", &format!("/r/{i}")).key());
        }
        assert_eq!(forgotten.seq.len(), MAX_FORGOTTEN);
        assert!(!forgotten.contains(&run("a", "/r/0").key()));
        assert!(!forgotten.contains(&run("a", "/r/1").key()));
        assert!(forgotten.contains(&run("a", "/r/2").key()));
    }
}
