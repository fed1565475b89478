//! Oracle: whatever the input, a name that parses has at most four
//! segments (five under `job/`),
//! none empty, `.`/`..` or dot-prefixed, no NUL, control character or
//! backslash, no leading `/`; and a name the allowlist accepts matches one
//! of its patterns.
#![no_main]

use lab_fs::{Allowlist, ArtifactName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|name: &str| {
    if let Ok(parsed) = ArtifactName::parse(name) {
        assert_eq!(parsed.as_str(), name, "never repaired");
        let segments: Vec<&str> = name.split('/').collect();
        let most = if segments[0] == lab_fs::JOB_DIR { 5 } else { 4 };
        assert!(segments.len() <= most);
        for segment in segments {
            assert!(!segment.is_empty() && !segment.starts_with('.'));
            assert!(!segment.chars().any(|c| c.is_control() || c == '\\'));
        }
    }
    let allow = Allowlist::default();
    if let Ok(parsed) = allow.check(name) {
        assert!(allow.patterns().iter().any(|p| p.matches(&parsed)));
    }
});
