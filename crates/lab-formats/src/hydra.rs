//! Hydra: a job's output directory holds `.hydra/config.yaml` (the
//! composed config, flattened into params) and `.hydra/overrides.yaml` (a
//! list of `key=value`, kept as the `hydra.overrides` param). The files
//! are read beneath the run root and never served.

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
            Ok(Some(value)) => flatten("", &value, &mut info.params),
            Err(e) => info.errors.push(e),
        }
        match read_parsed(storage, ".hydra/overrides.yaml", MAX_META_BYTES) {
            Ok(None) | Ok(Some(Value::Null)) => {}
            Ok(Some(Value::Array(items))) => {
                let list: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                if !list.is_empty() {
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

    /// Adds the config's params (the run's own win on a clash) and errors.
    pub(crate) fn merge_into(&self, info: &mut RunInfo) {
        for (k, v) in &self.info.params {
            info.params.entry(k.clone()).or_insert_with(|| v.clone());
        }
        info.errors.extend(self.info.errors.iter().cloned());
    }
}
