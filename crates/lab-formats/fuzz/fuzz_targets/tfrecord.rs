//! Oracle (in `lab_formats::fuzz::check_tfrecord`): a TFRecord is handed
//! out only when its length is within the cap, it lies wholly inside the
//! input and both CRCs match; "incomplete" only when the input is shorter;
//! the event reader reads the same in any chunking, and never panics; the
//! same bytes as TensorBoard hparams plugin data (`check_hparams`) decode
//! within the caps and read back the same when written back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_tfrecord(data);
});
