//! TensorBoard's hparams plugin: its `HParamsPluginData` decoded by hand
//! (`protowire.rs`; bounded, no recursion past [`MAX_DEPTH`]) and the trial
//! it describes ([`Trial`]: params, the order they were logged in, a
//! title). `trials.rs` folds `add_hparams`' sub-directory into the run.
//!
//! The messages, from `tensorboard/plugins/hparams/plugin_data.proto` and
//! `api.proto` (field numbers checked against the `_pb2` descriptors of
//! the tensorboard package the format tests write with):
//!
//! - `HParamsPluginData { version = 1, experiment = 2,
//!   session_start_info = 3, session_end_info = 4 }`
//! - `Experiment { description = 1, user = 2, time_created_secs = 3,
//!   hparam_infos = 4 (HParamInfo { name = 1 }), metric_infos = 5
//!   (MetricInfo { name = 1: MetricName { group = 1, tag = 2 } }), name = 6 }`
//! - `SessionStartInfo { hparams = 1 (map<string, google.protobuf.Value>),
//!   model_uri = 2, monitor_url = 3, group_name = 4, start_time_secs = 5 }`
//! - `SessionEndInfo { status = 1, end_time_secs = 2 }`
//! - `google.protobuf.Value { null_value = 1, number_value = 2,
//!   string_value = 3, bool_value = 4, struct_value = 5 (Struct { fields =
//!   1: map<string, Value> }), list_value = 6 (ListValue { values = 1 }) }`
//!
//! A map is a repeated entry message `{ key = 1, value = 2 }`; its order on
//! the wire is the writer's hash order (Python's protobuf writes
//! `warmup, lr, eps, batch, opt` for `lr, batch, opt, warmup, eps`), so the
//! order logged is taken from the experiment's `hparam_infos`, which
//! tensorboardX fills in the dict's order.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::protowire::{Wire, fields, put, text, wrong};
use crate::{MAX_KEY_LEN, MAX_PARAMS, MAX_SERIES, MAX_VALUE_LEN};

/// Deepest nesting of `struct_value`/`list_value` kept: a value nested
/// deeper is null, and its bytes are skipped, not looked into.
pub(crate) const MAX_DEPTH: usize = 4;
/// Most hparams and nested values one summary yields, all together.
const MAX_NODES: usize = MAX_PARAMS;
/// Longest title, in bytes (the `…` included).
pub(crate) const MAX_TITLE: usize = 200;

/// An hparam's value: `google.protobuf.Value`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum HValue {
    Null,
    Number(f64),
    Text(String),
    Bool(bool),
    /// A `struct_value` or `list_value`, as JSON (nested at most
    /// [`MAX_DEPTH`] deep).
    Nested(Json),
}

/// A number as a param: Python's ints arrive as doubles, so an integral
/// one is an integer (64, not 64.0); NaN and ±Inf are null.
fn json_number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Json::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

/// A number as Python's `repr` writes a float, except that an integral
/// one is written as an int (`64`, as it was logged, not `64.0`):
/// `0.001`, `1e-05`, `1e+16`, `nan`, `-inf`.
pub(crate) fn python_number(n: f64) -> String {
    if n.is_nan() {
        return "nan".to_owned();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let a = n.abs();
    if n.fract() == 0.0 && a < 1e16 {
        return format!("{}", n as i64);
    }
    if !(1e-4..1e16).contains(&a) {
        // Rust writes `1e-5`; Python `1e-05`.
        let s = format!("{n:e}");
        if let Some((mantissa, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{n}")
}

impl HValue {
    fn json(&self) -> Json {
        match self {
            HValue::Null => Json::Null,
            HValue::Number(n) => json_number(*n),
            HValue::Text(s) => Json::String(s.clone()),
            HValue::Bool(b) => Json::Bool(*b),
            HValue::Nested(j) => j.clone(),
        }
    }

    /// As a title shows it: strings bare, numbers as Python writes them.
    fn display(&self) -> String {
        match self {
            HValue::Null => "null".to_owned(),
            HValue::Number(n) => python_number(*n),
            HValue::Text(s) => s.clone(),
            HValue::Bool(b) => b.to_string(),
            HValue::Nested(j) => j.to_string(),
        }
    }
}

/// What one hparams summary says.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct PluginData {
    /// The experiment's hparam names, in order (at most [`MAX_PARAMS`]).
    pub(crate) order: Vec<String>,
    /// The experiment's metric tags (at most [`MAX_SERIES`]).
    pub(crate) metrics: Vec<String>,
    /// Whether a session start was there.
    pub(crate) started: bool,
    /// The session start's hparams, in wire order, the last of a key
    /// winning (at most [`MAX_PARAMS`] nodes in all).
    pub(crate) hparams: Vec<(String, HValue)>,
    /// The session start's time, when given and sane.
    pub(crate) start_time: Option<f64>,
    /// The session end's status (`api.proto`'s `Status`), when there is one.
    pub(crate) end_status: Option<i32>,
    /// Whether something was left out for a cap (too many hparams, a key
    /// over [`MAX_KEY_LEN`], nesting past [`MAX_DEPTH`]).
    pub(crate) cut: bool,
}

/// Decodes an hparams summary's `plugin_data.content`. Bounded by the
/// input and the caps; never recurses past [`MAX_DEPTH`].
pub(crate) fn decode(content: &[u8]) -> Result<PluginData, String> {
    let mut data = PluginData::default();
    let mut budget = MAX_NODES;
    for field in fields(content) {
        match field? {
            (1, Wire::Varint(_)) => {}
            (2, Wire::Bytes(b)) => experiment(b, &mut data)?,
            (3, Wire::Bytes(b)) => session_start(b, &mut data, &mut budget)?,
            (4, Wire::Bytes(b)) => {
                for field in fields(b) {
                    match field? {
                        (1, Wire::Varint(v)) => data.end_status = Some(v as i32),
                        (2, Wire::Fixed64(_)) => {}
                        (n @ (1 | 2), _) => return Err(wrong("SessionEndInfo", n)),
                        _ => {}
                    }
                }
            }
            (n @ 1..=4, _) => return Err(wrong("HParamsPluginData", n)),
            _ => {}
        }
    }
    Ok(data)
}

fn experiment(bytes: &[u8], data: &mut PluginData) -> Result<(), String> {
    for field in fields(bytes) {
        match field? {
            (4, Wire::Bytes(info)) => {
                // HParamInfo: its name.
                let mut name = None;
                for field in fields(info) {
                    match field? {
                        (1, Wire::Bytes(b)) => name = Some(b),
                        (1, _) => return Err(wrong("HParamInfo", 1)),
                        _ => {}
                    }
                }
                match name {
                    Some(b) if b.len() <= MAX_KEY_LEN && data.order.len() < MAX_PARAMS => {
                        data.order.push(text(b, MAX_KEY_LEN));
                    }
                    Some(_) => data.cut = true,
                    None => {}
                }
            }
            (5, Wire::Bytes(info)) => {
                // MetricInfo: its name's tag.
                let mut tag = None;
                for field in fields(info) {
                    match field? {
                        (1, Wire::Bytes(name)) => {
                            for field in fields(name) {
                                match field? {
                                    (2, Wire::Bytes(b)) => tag = Some(b),
                                    (n @ (1 | 2), _) => return Err(wrong("MetricName", n)),
                                    _ => {}
                                }
                            }
                        }
                        (1, _) => return Err(wrong("MetricInfo", 1)),
                        _ => {}
                    }
                }
                match tag {
                    Some(b) if b.len() <= MAX_KEY_LEN && data.metrics.len() < MAX_SERIES => {
                        data.metrics.push(text(b, MAX_KEY_LEN));
                    }
                    Some(_) => data.cut = true,
                    None => {}
                }
            }
            (1 | 2 | 6, Wire::Bytes(_)) | (3, Wire::Fixed64(_)) => {}
            (n @ 1..=6, _) => return Err(wrong("Experiment", n)),
            _ => {}
        }
    }
    Ok(())
}

fn session_start(bytes: &[u8], data: &mut PluginData, budget: &mut usize) -> Result<(), String> {
    data.started = true;
    for field in fields(bytes) {
        match field? {
            (1, Wire::Bytes(entry)) => {
                if let Some((key, value)) = map_entry(entry, 0, budget, &mut data.cut)? {
                    match data.hparams.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => data.hparams.push((key, value)),
                    }
                }
            }
            (5, Wire::Fixed64(bits)) => {
                let secs = f64::from_bits(bits);
                if secs.is_finite() && secs > 0.0 {
                    data.start_time = Some(secs);
                }
            }
            (2..=4, Wire::Bytes(_)) => {}
            (n @ 1..=5, _) => return Err(wrong("SessionStartInfo", n)),
            _ => {}
        }
    }
    Ok(())
}

/// A map entry `{ key = 1, value = 2 }` at `depth`: `None` (and `cut`
/// set) when its key is too long or the node budget is spent.
fn map_entry(
    entry: &[u8],
    depth: usize,
    budget: &mut usize,
    cut: &mut bool,
) -> Result<Option<(String, HValue)>, String> {
    let mut key: &[u8] = &[];
    let mut value: &[u8] = &[];
    for field in fields(entry) {
        match field? {
            (1, Wire::Bytes(b)) => key = b,
            (2, Wire::Bytes(b)) => value = b,
            (n @ (1 | 2), _) => return Err(wrong("a map entry's", n)),
            _ => {}
        }
    }
    if key.len() > MAX_KEY_LEN || *budget == 0 {
        *cut = true;
        return Ok(None);
    }
    *budget -= 1;
    let value = proto_value(value, depth, budget, cut)?;
    Ok(Some((text(key, MAX_KEY_LEN), value)))
}

/// A `google.protobuf.Value` at `depth` (the last kind on the wire wins).
fn proto_value(
    bytes: &[u8],
    depth: usize,
    budget: &mut usize,
    cut: &mut bool,
) -> Result<HValue, String> {
    let mut out = HValue::Null;
    for field in fields(bytes) {
        out = match field? {
            (1, Wire::Varint(_)) => HValue::Null,
            (2, Wire::Fixed64(bits)) => HValue::Number(f64::from_bits(bits)),
            (3, Wire::Bytes(b)) => HValue::Text(text(b, MAX_VALUE_LEN)),
            (4, Wire::Varint(v)) => HValue::Bool(v != 0),
            (5, Wire::Bytes(b)) => HValue::Nested(nested(b, false, depth + 1, budget, cut)?),
            (6, Wire::Bytes(b)) => HValue::Nested(nested(b, true, depth + 1, budget, cut)?),
            (n @ 1..=6, _) => return Err(wrong("Value", n)),
            _ => continue,
        };
    }
    Ok(out)
}

/// A `Struct` (`list` false) or `ListValue` at `depth`, as JSON: null past
/// [`MAX_DEPTH`] (its bytes not looked into), members past the budget
/// left out.
fn nested(
    bytes: &[u8],
    list: bool,
    depth: usize,
    budget: &mut usize,
    cut: &mut bool,
) -> Result<Json, String> {
    if depth > MAX_DEPTH {
        *cut = true;
        return Ok(Json::Null);
    }
    let mut items = Vec::new();
    let mut map = serde_json::Map::new();
    for field in fields(bytes) {
        match field? {
            (1, Wire::Bytes(b)) if list => {
                if *budget == 0 {
                    *cut = true;
                    continue;
                }
                *budget -= 1;
                items.push(proto_value(b, depth, budget, cut)?.json());
            }
            (1, Wire::Bytes(b)) => {
                if let Some((k, v)) = map_entry(b, depth, budget, cut)? {
                    map.insert(k, v.json());
                }
            }
            (1, _) => return Err(wrong(if list { "ListValue" } else { "Struct" }, 1)),
            _ => {}
        }
    }
    Ok(if list {
        Json::Array(items)
    } else {
        Json::Object(map)
    })
}

/// One hparams trial as its summaries say it, summaries merged in the
/// order read (a later value of a key wins).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Trial {
    /// The hparams, by key.
    values: BTreeMap<String, HValue>,
    /// The order logged (the experiment's), as far as it is known.
    order: Vec<String>,
    ordered: BTreeSet<String>,
    /// The metric tags the experiment names.
    metrics: BTreeSet<String>,
    /// Whether a session start was read.
    pub(crate) started: bool,
    /// Whether a cap left something out.
    pub(crate) cut: bool,
}

impl Trial {
    /// Adds what one summary says.
    pub(crate) fn absorb(&mut self, data: PluginData) {
        for name in data.order {
            if self.order.len() < MAX_PARAMS && self.ordered.insert(name.clone()) {
                self.order.push(name);
            }
        }
        for tag in data.metrics {
            if self.metrics.len() < MAX_SERIES {
                self.metrics.insert(tag);
            }
        }
        for (key, value) in data.hparams {
            if self.values.len() < MAX_PARAMS || self.values.contains_key(&key) {
                self.values.insert(key, value);
            } else {
                self.cut = true;
            }
        }
        self.started |= data.started;
        self.cut |= data.cut;
    }

    /// Whether the experiment names `tag` as one of its metrics.
    pub(crate) fn names_metric(&self, tag: &str) -> bool {
        self.metrics.contains(tag)
    }

    /// Whether `other` logs the same hparams with the same values.
    pub(crate) fn same_hparams(&self, other: &Trial) -> bool {
        self.values == other.values
    }

    /// Whether it holds any hparam.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Adds its hparams to `params` where a key is not there yet (a list
    /// or struct flattened: `key.0`, `key.a`), at most [`MAX_PARAMS`].
    pub(crate) fn params_into(&self, params: &mut BTreeMap<String, Json>) {
        for (key, value) in &self.values {
            if params.len() >= MAX_PARAMS {
                break;
            }
            match value {
                HValue::Nested(json) => {
                    let mut flat = BTreeMap::new();
                    crate::flatten(key, json, &mut flat);
                    for (k, v) in flat {
                        if params.len() < MAX_PARAMS {
                            params.entry(k).or_insert(v);
                        }
                    }
                }
                other => {
                    params.entry(key.clone()).or_insert_with(|| other.json());
                }
            }
        }
    }

    /// `k=v` joined by `,`: in the order logged where the experiment says
    /// it, the rest in key order; strings bare, numbers as Python writes
    /// them; at most [`MAX_TITLE`] bytes, cut on a character boundary
    /// with `…`. `None` without hparams.
    pub(crate) fn title(&self) -> Option<String> {
        if self.values.is_empty() {
            return None;
        }
        let logged = self
            .order
            .iter()
            .filter_map(|k| self.values.get_key_value(k));
        let rest = self
            .values
            .iter()
            .filter(|(k, _)| !self.ordered.contains(k.as_str()));
        let mut title = String::new();
        for (key, value) in logged.chain(rest) {
            if title.len() > MAX_TITLE {
                break;
            }
            if !title.is_empty() {
                title.push(',');
            }
            title.push_str(key);
            title.push('=');
            title.push_str(&value.display());
        }
        if title.len() > MAX_TITLE {
            let mut end = MAX_TITLE - '…'.len_utf8();
            while !title.is_char_boundary(end) {
                end -= 1;
            }
            title.truncate(end);
            title.push('…');
        }
        Some(title)
    }
}

/// `HParamsPluginData { session_start_info { hparams } }` holding
/// `hparams` in their order: what [`decode`] reads back as they are (the
/// fuzz oracle's round trip, and tests).
pub(crate) fn encode_start(hparams: &[(String, HValue)]) -> Vec<u8> {
    fn value(v: &HValue) -> Vec<u8> {
        match v {
            HValue::Nested(json) => json_value(json),
            other => json_value(&match other {
                HValue::Number(n) => return number(*n),
                other => other.json(),
            }),
        }
    }
    fn number(n: f64) -> Vec<u8> {
        let mut out = Vec::new();
        put(&mut out, 2, Wire::Fixed64(n.to_bits()));
        out
    }
    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put(&mut out, 1, Wire::Bytes(key.as_bytes()));
        put(&mut out, 2, Wire::Bytes(value));
        out
    }
    // Our own JSON, nested at most MAX_DEPTH deep: the recursion is bounded.
    fn json_value(json: &Json) -> Vec<u8> {
        let mut out = Vec::new();
        match json {
            Json::Null => put(&mut out, 1, Wire::Varint(0)),
            Json::Bool(b) => put(&mut out, 4, Wire::Varint(u64::from(*b))),
            Json::Number(n) => return number(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => put(&mut out, 3, Wire::Bytes(s.as_bytes())),
            Json::Array(items) => {
                let mut list = Vec::new();
                for item in items {
                    put(&mut list, 1, Wire::Bytes(&json_value(item)));
                }
                put(&mut out, 6, Wire::Bytes(&list));
            }
            Json::Object(map) => {
                let mut fields = Vec::new();
                for (k, v) in map {
                    put(&mut fields, 1, Wire::Bytes(&entry(k, &json_value(v))));
                }
                put(&mut out, 5, Wire::Bytes(&fields));
            }
        }
        out
    }
    let mut start = Vec::new();
    for (key, v) in hparams {
        put(&mut start, 1, Wire::Bytes(&entry(key, &value(v))));
    }
    let mut out = Vec::new();
    put(&mut out, 3, Wire::Bytes(&start));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    fn num(n: f64) -> HValue {
        HValue::Number(n)
    }

    fn text_value(s: &str) -> HValue {
        HValue::Text(s.to_owned())
    }

    /// What tensorboardX 2.6.5 wrote for `add_hparams({"lr": 0.001,
    /// "batch": 64, "opt": "adam", "warmup": True, "eps": 1e-05},
    /// {"hparam/score": 0.9})`: the session start (map in hash order) and
    /// the experiment (the dict's order), copied from the fixture's bytes.
    fn tensorboardx() -> (Vec<u8>, Vec<u8>) {
        let start = encode_start(&[
            ("warmup".to_owned(), HValue::Bool(true)),
            ("lr".to_owned(), num(0.001)),
            ("eps".to_owned(), num(1e-5)),
            ("batch".to_owned(), num(64.0)),
            ("opt".to_owned(), text_value("adam")),
        ]);
        let mut experiment = Vec::new();
        for name in ["lr", "batch", "opt", "warmup", "eps"] {
            let mut info = Vec::new();
            put(&mut info, 1, Wire::Bytes(name.as_bytes()));
            put(&mut info, 4, Wire::Varint(3));
            put(&mut experiment, 4, Wire::Bytes(&info));
        }
        let mut metric_name = Vec::new();
        put(&mut metric_name, 2, Wire::Bytes(b"hparam/score"));
        let mut metric = Vec::new();
        put(&mut metric, 1, Wire::Bytes(&metric_name));
        put(&mut experiment, 5, Wire::Bytes(&metric));
        let mut data = Vec::new();
        put(&mut data, 2, Wire::Bytes(&experiment));
        (start, data)
    }

    #[test]
    fn tensorboardx_hparams_read_as_logged() {
        let (start, experiment) = tensorboardx();
        let mut trial = Trial::default();
        trial.absorb(decode(&experiment).unwrap());
        let data = decode(&start).unwrap();
        assert!(data.started && !data.cut);
        assert_eq!(data.hparams.len(), 5);
        trial.absorb(data);
        assert!(trial.names_metric("hparam/score"));
        let mut params = BTreeMap::new();
        trial.params_into(&mut params);
        assert_eq!(
            Json::Object(params.into_iter().collect()),
            serde_json::json!({"lr": 0.001, "batch": 64, "opt": "adam", "warmup": true, "eps": 1e-5})
        );
        assert_eq!(
            trial.title().as_deref(),
            Some("lr=0.001,batch=64,opt=adam,warmup=true,eps=1e-05")
        );
        // Without the experiment, key order.
        let mut bare = Trial::default();
        bare.absorb(decode(&start).unwrap());
        assert_eq!(
            bare.title().as_deref(),
            Some("batch=64,eps=1e-05,lr=0.001,opt=adam,warmup=true")
        );
        // The session end's status, and the start's time.
        let mut end = Vec::new();
        put(&mut end, 1, Wire::Varint(2));
        let mut data = Vec::new();
        put(&mut data, 4, Wire::Bytes(&end));
        put(&mut data, 1, Wire::Varint(0));
        assert_eq!(decode(&data).unwrap().end_status, Some(2));
        let mut start = Vec::new();
        put(&mut start, 5, Wire::Fixed64(1.7e9f64.to_bits()));
        let mut data = Vec::new();
        put(&mut data, 3, Wire::Bytes(&start));
        assert_eq!(decode(&data).unwrap().start_time, Some(1.7e9));
    }

    #[test]
    fn numbers_are_written_as_python_writes_them() {
        for (n, text) in [
            (0.001, "0.001"),
            (64.0, "64"),
            (-3.0, "-3"),
            (1e-5, "1e-05"),
            (2.5e-7, "2.5e-07"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123.456, "123.456"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(python_number(n), text, "{n:e}");
        }
    }

    /// Every prefix of a good message decodes or is refused, never panics;
    /// lengths past the message, overlong varints, groups and known fields
    /// of the wrong wire type are errors.
    #[test]
    fn truncated_and_hostile_bytes_are_errors_not_panics() {
        let (start, experiment) = tensorboardx();
        for whole in [&start, &experiment] {
            for end in 0..whole.len() {
                let _ = decode(&whole[..end]);
            }
        }
        let mut cut = start.clone();
        cut.truncate(start.len() - 1);
        assert!(decode(&cut).unwrap_err().contains("runs past"));
        for (bad, why) in [
            // session_start_info claiming 2^63 bytes.
            (
                vec![
                    0x1a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
                ],
                "runs past",
            ),
            (
                vec![
                    0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                "ten bytes",
            ),
            (vec![0x1b], "wire type 3"),
            // session_start_info as a varint.
            (vec![0x18, 0x01], "wrong wire type"),
            // A Value's number_value as bytes.
            (
                encode_start(&[("a".to_owned(), num(1.0))])
                    .into_iter()
                    .map(|b| if b == 0x11 { 0x12 } else { b })
                    .collect(),
                "",
            ),
        ] {
            let err = decode(&bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn caps_hold_for_counts_keys_lengths_and_nesting() {
        // More hparams than MAX_PARAMS, a key over MAX_KEY_LEN, a value
        // over MAX_VALUE_LEN.
        let mut many: Vec<(String, HValue)> = (0..MAX_PARAMS + 500)
            .map(|i| (format!("k{i}"), num(i as f64)))
            .collect();
        many.insert(0, ("K".repeat(MAX_KEY_LEN + 1), num(1.0)));
        many.insert(
            1,
            ("long".to_owned(), text_value(&"é".repeat(MAX_VALUE_LEN))),
        );
        let data = decode(&encode_start(&many)).unwrap();
        assert!(data.cut);
        assert_eq!(data.hparams.len(), MAX_PARAMS);
        assert_eq!(data.hparams[0].0, "long");
        let HValue::Text(long) = &data.hparams[0].1 else {
            panic!("{:?}", data.hparams[0]);
        };
        assert_eq!(long.len(), MAX_VALUE_LEN);
        // A list nested 10,000 deep: null past MAX_DEPTH, no recursion.
        let mut value = Vec::new();
        put(&mut value, 2, Wire::Fixed64(1f64.to_bits()));
        for _ in 0..10_000 {
            let mut list = Vec::new();
            put(&mut list, 1, Wire::Bytes(&value));
            value.clear();
            put(&mut value, 6, Wire::Bytes(&list));
        }
        let mut entry = Vec::new();
        put(&mut entry, 1, Wire::Bytes(b"deep"));
        put(&mut entry, 2, Wire::Bytes(&value));
        let mut start = Vec::new();
        put(&mut start, 1, Wire::Bytes(&entry));
        let mut bytes = Vec::new();
        put(&mut bytes, 3, Wire::Bytes(&start));
        let data = decode(&bytes).unwrap();
        let HValue::Nested(json) = &data.hparams[0].1 else {
            panic!("{:?}", data.hparams[0]);
        };
        assert!(data.cut && crate::fuzz::depth(json) == MAX_DEPTH, "{json}");
        // A list of 100,000 items: the node budget.
        let mut list = Vec::new();
        for _ in 0..100_000 {
            put(&mut list, 1, Wire::Bytes(&[0x20, 0x01]));
        }
        let mut value = Vec::new();
        put(&mut value, 6, Wire::Bytes(&list));
        let mut entry = Vec::new();
        put(&mut entry, 1, Wire::Bytes(b"wide"));
        put(&mut entry, 2, Wire::Bytes(&value));
        let mut start = Vec::new();
        put(&mut start, 1, Wire::Bytes(&entry));
        let mut bytes = Vec::new();
        put(&mut bytes, 3, Wire::Bytes(&start));
        let data = decode(&bytes).unwrap();
        let HValue::Nested(Json::Array(items)) = &data.hparams[0].1 else {
            panic!("{:?}", data.hparams[0]);
        };
        assert!(data.cut && items.len() == MAX_NODES - 1);
        // Flattened into params: `wide.0` …, within MAX_PARAMS.
        let mut trial = Trial::default();
        trial.absorb(data);
        let mut params = BTreeMap::new();
        trial.params_into(&mut params);
        assert_eq!(params.len(), MAX_PARAMS - 1);
        assert_eq!(params["wide.0"], Json::Bool(true));
    }

    #[test]
    fn titles_are_capped_on_a_character_boundary() {
        let values: Vec<(String, HValue)> = (0..50)
            .map(|i| (format!("ключ{i}"), text_value("значение")))
            .collect();
        let mut trial = Trial::default();
        trial.absorb(decode(&encode_start(&values)).unwrap());
        let title = trial.title().unwrap();
        assert!(title.len() <= MAX_TITLE && title.ends_with('…'), "{title}");
        assert!(title.starts_with("ключ0=значение,ключ1=значение"));
        assert_eq!(Trial::default().title(), None);
    }
}
