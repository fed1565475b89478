//! A run held in memory, for the oracles that read fuzz input through a
//! whole reader: objects by name, each with a version that a `put`
//! changes and an `append` keeps (a file still being written, as a local
//! file is the same inode while it grows).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::storage::{
    CopyLimits, Entry, EntryKind, Page, PageToken, PrivateCopy, Stat, Storage, StorageError,
    Version, check_name,
};

/// Objects in memory. Also the storage the crate's unit tests read runs
/// from (origin `memory:` by default).
#[derive(Debug)]
pub struct MemoryStorage {
    objects: Mutex<BTreeMap<String, (u64, Vec<u8>)>>,
    origin: String,
    /// The length of every range handed back (to see a reader chunk).
    pub ranges: Mutex<Vec<usize>>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new("memory:")
    }
}

impl MemoryStorage {
    /// An empty storage whose origin is `origin` (a run that takes its
    /// name from its directory's, as a Ray trial does, reads it there).
    pub fn new(origin: &str) -> Self {
        Self {
            objects: Mutex::default(),
            origin: origin.to_owned(),
            ranges: Mutex::default(),
        }
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (u64, Vec<u8>)>> {
        // A panic elsewhere while it was held leaves the map whole.
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `name` anew: a new version.
    pub fn put(&self, name: &str, bytes: &[u8]) {
        let mut objects = self.objects();
        let version = objects.get(name).map_or(0, |(v, _)| v + 1);
        objects.insert(name.to_owned(), (version, bytes.to_vec()));
    }

    /// Appends to `name` (made when absent), keeping its version.
    pub fn append(&self, name: &str, bytes: &[u8]) {
        let mut objects = self.objects();
        objects
            .entry(name.to_owned())
            .or_insert_with(|| (0, Vec::new()))
            .1
            .extend_from_slice(bytes);
    }
}

impl Storage for MemoryStorage {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn list(&self, prefix: &str, _page: Option<&PageToken>) -> Result<Page, StorageError> {
        if !prefix.is_empty() {
            check_name(prefix)?;
        }
        let start = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let objects = self.objects();
        let mut entries: Vec<Entry> = Vec::new();
        for (key, (_, bytes)) in objects.range(start.clone()..) {
            let Some(rest) = key.strip_prefix(&start) else {
                break;
            };
            let entry = match rest.split_once('/') {
                Some((dir, _)) => Entry {
                    name: dir.to_owned(),
                    kind: EntryKind::Dir,
                    len: None,
                },
                None => Entry {
                    name: rest.to_owned(),
                    kind: EntryKind::File,
                    len: Some(bytes.len() as u64),
                },
            };
            if entries.last() != Some(&entry) {
                entries.push(entry);
            }
        }
        if entries.is_empty() && !prefix.is_empty() {
            return Err(StorageError::NotFound);
        }
        Ok(Page {
            entries,
            next: None,
        })
    }

    fn stat(&self, name: &str) -> Result<Stat, StorageError> {
        check_name(name)?;
        let objects = self.objects();
        let (version, bytes) = objects.get(name).ok_or(StorageError::NotFound)?;
        Ok(Stat {
            len: bytes.len() as u64,
            version: Version::new(version.to_string()),
            modified: None,
        })
    }

    fn read_range(
        &self,
        name: &str,
        offset: u64,
        len: usize,
        version: Option<&Version>,
    ) -> Result<Vec<u8>, StorageError> {
        check_name(name)?;
        let objects = self.objects();
        let (now, bytes) = objects.get(name).ok_or(StorageError::NotFound)?;
        if version.is_some_and(|v| v.as_str() != now.to_string()) {
            return Err(StorageError::Changed);
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = start.saturating_add(len).min(bytes.len());
        self.ranges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(end - start);
        Ok(bytes[start..end].to_vec())
    }

    fn private_copy_version(&self, name: &str, _max: u64) -> Result<Version, StorageError> {
        Ok(self.stat(name)?.version)
    }

    fn copy_to_private_file(
        &self,
        _name: &str,
        _limits: CopyLimits,
    ) -> Result<PrivateCopy, StorageError> {
        Err(StorageError::Other(
            "no private copies in memory".to_owned(),
        ))
    }
}
