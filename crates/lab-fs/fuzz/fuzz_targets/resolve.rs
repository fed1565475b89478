//! Oracle (in `lab_fs::fuzz::check_plan`): whatever plan of files,
//! directories, links in and out, hard links, FIFOs, renames and directory
//! swaps built the run (three bytes a step), both opens answer only with
//! regular files strictly under the root, allowlisted, single-linked under
//! `job/`, never another run's or an outside file's content, and agree on
//! the inode; every link planted leads into the scratch directory (the
//! absolute ones to its canary) and nothing outside the root changes. The
//! plan acts beneath the root only and never writes through a link.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lab_fs::fuzz::check_plan(&lab_fs::fuzz::plan(data));
});
