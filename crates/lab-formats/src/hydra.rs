//! Hydra: a job's output directory holds `.hydra/config.yaml` (the
//! composed config, flattened into params) and `.hydra/overrides.yaml` (a
//! list of `key=value`, kept as the `hydra.overrides` param). Hydra writes
//! them as the job starts and records no start time of its own, so the
//! run was created when `config.yaml` was last written. The files are read
//! beneath the run root and never served.

use serde_json::Value;

use crate::lab::{MAX_META_BYTES, read_parsed};
use crate::storage::Storage;
use crate::{RunInfo, flatten};

#[derive(Debug, Default)]
pub(crate) struct Reader {
    info: RunInfo,
}

impl Reader {
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        let mut info = RunInfo::default();
        match read_parsed(storage, ".hydra/config.yaml", MAX_META_BYTES) {
            Ok(None) => {}
            Ok(Some(value)) => {
                flatten("", &value, &mut info.params);
                info.created = storage
                    .stat(".hydra/config.yaml")
                    .ok()
                    .and_then(|stat| stat.modified)
                    .map(crate::text::iso8601_utc);
            }
            Err(e) => info.errors.push(e),
        }
        match read_parsed(storage, ".hydra/overrides.yaml", MAX_META_BYTES) {
            Ok(None) | Ok(Some(Value::Null)) => {}
            Ok(Some(Value::Array(items))) => {
                let list: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                if !list.is_empty() {
                    // What the job varied: its name (`lr=0.1,optimizer=adam`).
                    info.title = Some(crate::text::cap(&list.join(",")));
                    info.params.insert(
                        "hydra.overrides".to_owned(),
                        Value::String(crate::text::cap(&list.join(" "))),
                    );
                }
            }
            Ok(Some(_)) => info
                .errors
                .push(".hydra/overrides.yaml: not a list".to_owned()),
            Err(e) => info.errors.push(e),
        }
        self.info = info;
    }

    /// Adds the config's params (the run's own win on a clash), its time
    /// and its overrides as the title when the run has none of its own,
    /// and its errors.
    pub(crate) fn merge_into(&self, info: &mut RunInfo) {
        if info.created.is_none() {
            info.created.clone_from(&self.info.created);
        }
        if info.title.is_none() {
            info.title.clone_from(&self.info.title);
        }
        for (k, v) in &self.info.params {
            info.params.entry(k.clone()).or_insert_with(|| v.clone());
        }
        info.errors.extend(self.info.errors.iter().cloned());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use crate::{Format, LocalStorage, RunReader};

    #[test]
    fn a_hydra_run_was_created_when_its_config_was_written() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().canonicalize().unwrap().join("job");
        std::fs::create_dir_all(run.join(".hydra")).unwrap();
        let config = run.join(".hydra/config.yaml");
        std::fs::write(&config, "model:\n  lr: 0.1\n").unwrap();
        let written = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(&config)
            .unwrap()
            .set_modified(written)
            .unwrap();
        let root = lab_fs::RunRoot::open_ambient(&run).unwrap();
        let mut reader = RunReader::new(Format::Hydra);
        reader.refresh(&LocalStorage::new(&root));
        let info = reader.info();
        assert_eq!(info.created.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(info.params.get("model.lr"), Some(&serde_json::json!(0.1)));
    }
}
