//! Oracle: parsing never panics; a document without `*` never fails for
//! aliases; what parses is nested at most 64 levels; a document that uses
//! an alias is refused, never expanded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn depth(v: &serde_json::Value) -> usize {
    let mut most = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        most = most.max(d);
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    most
}

fuzz_target!(|text: &str| {
    match lab_formats::fuzz::yaml(text) {
        Ok(value) => {
            assert!(depth(&value) <= 64);
        }
        Err(e) => {
            if !text.contains('*') {
                assert!(!e.contains("aliases"), "{e}");
            }
        }
    }
});
