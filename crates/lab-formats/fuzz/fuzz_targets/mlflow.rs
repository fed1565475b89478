//! Oracle (in `lab_formats::fuzz::check_mlflow`): an MLflow metric file
//! reads the same in any chunking, at most one point a line, and every point
//! written back as a line reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_mlflow(data);
});
