//! `registry.idx`: what adding one run needs to know of the snapshot,
//! without parsing it — the hashes of every run's key and ids, the
//! forgotten keys' hashes, the remembered roots and the count — written
//! with each snapshot, for the snapshot it names (its inode, length and
//! modification time).
//!
//! The index only ever says "certainly not": a key or id whose hash is not
//! in it (nor added by the journal since) is certainly not registered,
//! forgotten or taken. Anything else — a hash that matches, an index of
//! another snapshot, a journal that is not current, that ends in a torn
//! line or whose changes would compact it, a registry before stable ids —
//! sends the caller to the full load, so what is written is what the full
//! load would have written. Readers replay the line like any other, with
//! all their checks.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use crate::data_dir::{O_NOFOLLOW, O_NONBLOCK};
use crate::journal::{self, Change, Line, Tail};
use crate::state::State;
use crate::store::{FileStamp, Store};
use crate::{Error, RunId, RunKey, RunRecord};

const MAGIC: &[u8; 8] = b"LABIDX1\n";
pub(crate) const INDEX_NAME: &str = "registry.idx";

/// 64-bit FNV-1a: stable across builds and processes (only ever a filter:
/// a collision costs a full load, never a wrong answer).
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator no path or id holds.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A key's hash, its root hashed component by component: paths that
/// compare equal (`/a/b/` and `/a/b`) hash the same.
pub(crate) fn key_hash(key: &RunKey) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let mut parts: Vec<&[u8]> = key
        .root
        .components()
        .map(|c| c.as_os_str().as_bytes())
        .collect();
    match &key.entry {
        Some(entry) => parts.extend([b"\x01".as_slice(), entry.as_bytes()]),
        None => parts.push(b"\x00"),
    }
    fnv(&parts)
}

pub(crate) fn id_hash(id: &RunId) -> u64 {
    fnv(&[id.as_str().as_bytes()])
}

/// The index of one snapshot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Index {
    /// The snapshot's format version: the index is used only for this
    /// build's own ([`crate::store::VERSION`]).
    version: u32,
    snapshot: FileStamp,
    generation: u64,
    before_stable_ids: bool,
    runs: u64,
    roots: Vec<PathBuf>,
    keys: Vec<u64>,
    ids: Vec<u64>,
    forgotten: Vec<u64>,
}

impl Index {
    /// The index of `state`, as written in the snapshot `snapshot` of
    /// journal generation `generation`.
    pub(crate) fn of(state: &State, snapshot: FileStamp, generation: u64) -> Self {
        let mut keys: Vec<u64> = state.runs().iter().map(|r| key_hash(&r.key())).collect();
        let mut ids: Vec<u64> = state
            .runs()
            .iter()
            .flat_map(|r| std::iter::once(&r.id).chain(&r.aliases))
            .map(id_hash)
            .collect();
        let mut forgotten: Vec<u64> = state.forgotten().map(key_hash).collect();
        for v in [&mut keys, &mut ids, &mut forgotten] {
            v.sort_unstable();
            v.dedup();
        }
        Self {
            version: crate::store::VERSION,
            snapshot,
            generation,
            before_stable_ids: state.before_stable_ids,
            runs: state.runs().len() as u64,
            roots: state.roots().to_vec(),
            keys,
            ids,
            forgotten,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        let mut out = Vec::with_capacity(64 + 8 * (self.keys.len() + self.ids.len()));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        let s = &self.snapshot;
        for v in [s.dev, s.ino, s.len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&s.mtime_ns.to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.push(u8::from(self.before_stable_ids));
        out.extend_from_slice(&self.runs.to_le_bytes());
        out.extend_from_slice(&(self.roots.len() as u64).to_le_bytes());
        for root in &self.roots {
            let bytes = root.as_os_str().as_bytes();
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        for list in [&self.keys, &self.ids, &self.forgotten] {
            out.extend_from_slice(&(list.len() as u64).to_le_bytes());
            for v in list {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// The index in `bytes`, or `None` for anything but a whole index of
    /// this version (the caller loads the snapshot instead).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        use std::os::unix::ffi::OsStrExt;
        let mut r = Reader { bytes, at: 0 };
        if r.take(8)? != MAGIC {
            return None;
        }
        let version = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
        let snapshot = FileStamp {
            dev: r.u64()?,
            ino: r.u64()?,
            len: r.u64()?,
            mtime_ns: i128::from_le_bytes(r.take(16)?.try_into().ok()?),
        };
        let generation = r.u64()?;
        let before_stable_ids = match r.take(1)? {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        let runs = r.u64()?;
        let mut roots = Vec::new();
        for _ in 0..r.count(8)? {
            let len = usize::try_from(r.u64()?).ok()?;
            roots.push(PathBuf::from(std::ffi::OsStr::from_bytes(r.take(len)?)));
        }
        let mut lists = [Vec::new(), Vec::new(), Vec::new()];
        for list in &mut lists {
            let n = r.count(8)?;
            list.reserve(n);
            for _ in 0..n {
                list.push(r.u64()?);
            }
            if !list.is_sorted() {
                return None;
            }
        }
        if r.at != bytes.len() {
            return None;
        }
        let [keys, ids, forgotten] = lists;
        Some(Self {
            version,
            snapshot,
            generation,
            before_stable_ids,
            runs,
            roots,
            keys,
            ids,
            forgotten,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A count of items of at least `size` bytes each that the rest can
    /// hold (a lying count is refused before anything is reserved).
    fn count(&mut self, size: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= (self.bytes.len() - self.at) / size).then_some(n)
    }
}

/// The registry as the index and the journal after it say, enough to
/// tell that a key or id is certainly free.
#[derive(Debug)]
pub(crate) struct Quick {
    index: Index,
    keys: Vec<u64>,
    ids: Vec<u64>,
    added: u64,
    /// The changes the journal holds (compaction is the full load's).
    pub(crate) changes: usize,
    roots: Vec<PathBuf>,
}

impl Quick {
    /// Whether `key` may be registered or forgotten.
    pub(crate) fn may_have_key(&self, key: &RunKey) -> bool {
        let h = key_hash(key);
        self.index.keys.binary_search(&h).is_ok()
            || self.index.forgotten.binary_search(&h).is_ok()
            || self.keys.contains(&h)
    }

    /// Whether `id` may be some run's id or alias.
    pub(crate) fn may_have_id(&self, id: &RunId) -> bool {
        let h = id_hash(id);
        self.index.ids.binary_search(&h).is_ok() || self.ids.contains(&h)
    }

    /// At most how many runs are registered.
    pub(crate) fn most_runs(&self) -> usize {
        usize::try_from(self.index.runs.saturating_add(self.added)).unwrap_or(usize::MAX)
    }

    /// Whether the registry's runs still await their stable ids.
    pub(crate) fn before_stable_ids(&self) -> bool {
        self.index.before_stable_ids
    }

    /// The remembered roots.
    pub(crate) fn roots(&self) -> &[PathBuf] {
        &self.roots
    }
}

/// What [`Store::quick`] read: the view, and the journal as it was.
pub(crate) struct Read {
    pub(crate) quick: Quick,
    journal: File,
    len: u64,
}

impl Store {
    /// The registry as its index and journal say, or `None` where only
    /// the full load can tell (see the module's notes). Without the lock a
    /// journal that ends in an incomplete line is `None` too.
    pub(crate) fn quick(&self) -> Option<Read> {
        let snapshot = FileStamp::of(&std::fs::symlink_metadata(self.file()).ok()?);
        let bytes = read_nofollow(&self.dir().join(INDEX_NAME), 64 << 20)?;
        let index = Index::decode(&bytes)?;
        if index.snapshot != snapshot || index.version != crate::store::VERSION {
            return None;
        }
        let journal = OpenOptions::new()
            .read(true)
            .custom_flags(O_NOFOLLOW | O_NONBLOCK)
            .open(self.journal_path())
            .ok()?;
        let meta = journal.metadata().ok()?;
        if !meta.is_file() || meta.len() > 256 << 20 {
            return None;
        }
        let mut bytes = Vec::new();
        crate::store::read_from(&journal, 0, &mut bytes).ok()?;
        let scanned = journal::scan(&bytes);
        if scanned.tail != Tail::Clean {
            return None;
        }
        let mut lines = scanned.lines.into_iter();
        match lines.next()? {
            Line::Journal {
                version: journal::VERSION,
                generation,
            } if generation == index.generation => {}
            _ => return None,
        }
        let mut quick = Quick {
            roots: index.roots.clone(),
            index,
            keys: Vec::new(),
            ids: Vec::new(),
            added: 0,
            changes: 0,
        };
        for line in lines {
            let Line::Update(changes) = line else {
                return None;
            };
            quick.changes += changes.len();
            for change in changes {
                match change {
                    Change::Add(run) => {
                        quick.keys.push(key_hash(&run.key()));
                        quick
                            .ids
                            .extend(std::iter::once(&run.id).chain(&run.aliases).map(id_hash));
                        quick.added += 1;
                    }
                    // What a forgotten run frees stays "maybe taken": only
                    // the full load knows its key.
                    Change::Forget { .. } => {}
                    Change::Rename { to, .. } => quick.ids.push(id_hash(&to)),
                    Change::Roots(roots) => {
                        for root in roots {
                            if !quick.roots.contains(&root) {
                                quick.roots.push(root);
                            }
                        }
                    }
                    Change::ForgetRoots(roots) => quick.roots.retain(|r| !roots.contains(r)),
                }
            }
        }
        Some(Read {
            quick,
            len: meta.len(),
            journal,
        })
    }

    /// Adds the run `decide` gives, by appending it to the journal under
    /// the exclusive lock, when the index and journal can tell it is free
    /// (`decide` returns `None` when they cannot): `Ok(None)` sends the
    /// caller to the full load.
    pub(crate) fn quick_add(
        &self,
        decide: impl FnOnce(&Quick) -> Option<RunRecord>,
    ) -> Result<Option<RunRecord>, Error> {
        let lock = self.open_lock()?;
        lock.lock().map_err(|source| Error::Io {
            context: "locking the registry",
            source,
        })?;
        let Some(read) = self.quick() else {
            return Ok(None);
        };
        let limit = crate::store::COMPACT_AFTER.max(read.quick.most_runs() / 4);
        if read.quick.changes + 1 > limit {
            return Ok(None);
        }
        let Some(run) = decide(&read.quick) else {
            return Ok(None);
        };
        let line = journal::encode(&Line::Update(vec![Change::Add(run.clone())])).map_err(|e| {
            Error::Io {
                context: "encoding the registry",
                source: std::io::Error::other(e),
            }
        })?;
        let io = |source| Error::Io {
            context: "appending to the registry journal",
            source,
        };
        let mut file = OpenOptions::new()
            .append(true)
            .custom_flags(O_NOFOLLOW | O_NONBLOCK)
            .open(self.journal_path())
            .map_err(io)?;
        let (now, was) = (
            file.metadata().map_err(io)?,
            read.journal.metadata().map_err(io)?,
        );
        if now.dev() != was.dev() || now.ino() != was.ino() || now.len() != read.len {
            // Changed without the lock: the full load decides.
            return Ok(None);
        }
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_data()) {
            // Written but not durable, perhaps: take it back.
            let _ = file.set_len(read.len);
            return Err(io(e));
        }
        drop(lock);
        Ok(Some(run))
    }
}

/// A regular file's bytes, opened without following a link (nor waiting
/// on a FIFO), at most `max`.
fn read_nofollow(path: &std::path::Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW | O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let mut out = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
    file.take(max).read_to_end(&mut out).ok()?;
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn an_index_reads_back_and_refuses_anything_else() {
        let index = Index {
            version: 3,
            snapshot: FileStamp {
                dev: 1,
                ino: 2,
                len: 3,
                mtime_ns: -4,
            },
            generation: 5,
            before_stable_ids: false,
            runs: 2,
            roots: vec![PathBuf::from("/r")],
            keys: vec![1, 7],
            ids: vec![2, 3, 9],
            forgotten: vec![],
        };
        let bytes = index.encode();
        assert_eq!(Index::decode(&bytes), Some(index));
        // Cut anywhere, grown, or with a lying count: refused.
        for cut in 0..bytes.len() {
            assert_eq!(Index::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Index::decode(&longer), None);
        let mut lying = bytes.clone();
        let at = bytes.len() - 8; // the forgotten count's place
        lying[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Index::decode(&lying), None);
    }

    /// Opens the registry of `data` over `root` afresh (nothing loaded).
    fn open(data: &std::path::Path, root: &std::path::Path) -> crate::Registry {
        crate::Registry::open(data, &[root.to_path_buf()]).unwrap()
    }

    #[test]
    fn an_import_appends_without_the_snapshot_and_means_what_the_full_load_would() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("runs");
        let tree = lab_test_support::fixture::Tree::new(&root);
        tree.dir("a").dir("b").dir("c").dir("d");
        let root = std::fs::canonicalize(&root).unwrap();
        let data = tmp.path().join("data");
        // The first change writes the snapshot (there is no journal yet),
        // and its index.
        let a = open(&data, &root).import(&root.join("a"), None).unwrap();
        assert!(data.join(INDEX_NAME).is_file());
        let quick = open(&data, &root);
        assert!(!quick.cache().is_loaded());
        let b = quick.import(&root.join("b"), None).unwrap();
        assert!(!quick.cache().is_loaded(), "the snapshot was loaded");
        // The id the full load gives it (a data dir of its own, without
        // an index).
        let other = tmp.path().join("other");
        let full = open(&other, &root).import(&root.join("b"), None).unwrap();
        assert_eq!(b.id, full.id);
        // Registered already, an id taken: the full load's answers.
        assert!(matches!(
            open(&data, &root).import(&root.join("b"), None),
            Err(Error::AlreadyRegistered(id)) if id == b.id
        ));
        assert!(matches!(
            open(&data, &root).import(&root.join("c"), Some(a.id.as_str())),
            Err(Error::IdTaken(_))
        ));
        // Forgotten, then imported again: the full load brings it back.
        let registry = open(&data, &root);
        registry.forget(&b.id).unwrap();
        let again = open(&data, &root).import(&root.join("b"), None).unwrap();
        assert_eq!(again.id, b.id);
        // Every reader sees the runs, the quick ones among them.
        let ids: Vec<RunId> = open(&data, &root)
            .runs()
            .unwrap()
            .iter()
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids.contains(&a.id) && ids.contains(&b.id));
        // An index that is not whole, or names another snapshot: the
        // full load, and the same answers.
        for bad in [b"LABIDX1\n".to_vec(), Vec::new()] {
            lab_test_support::fixture::Tree::new(&data).file(INDEX_NAME, &bad);
            let registry = open(&data, &root);
            let d = registry.import(&root.join("d"), None).unwrap();
            assert!(registry.cache().is_loaded());
            registry.forget(&d.id).unwrap();
            let d2 = open(&data, &root).import(&root.join("d"), None).unwrap();
            assert_eq!(d2.id, d.id);
            open(&data, &root).forget(&d.id).unwrap();
        }
    }

    #[test]
    fn hashes_tell_keys_with_and_without_an_entry_apart() {
        let bare = RunKey {
            root: PathBuf::from("/r/a"),
            entry: None,
        };
        let empty = RunKey {
            root: PathBuf::from("/r/a"),
            entry: Some(String::new()),
        };
        assert_ne!(key_hash(&bare), key_hash(&empty));
        let slashed = RunKey {
            root: PathBuf::from("/r//a/"),
            entry: None,
        };
        assert_eq!(slashed, bare);
        assert_eq!(key_hash(&slashed), key_hash(&bare));
        assert_eq!(key_hash(&bare), key_hash(&bare.clone()));
    }
}
