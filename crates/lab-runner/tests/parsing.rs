//! Job requests and workflow files, whatever they hold, never get a
//! program off the allowlist, an exec hook outside the workflow's
//! directory or unconfirmed, or a refused variable past the runner
//! (`lab_runner::fuzz::RunnerHarness`, the fuzz target's oracle).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use lab_runner::fuzz::RunnerHarness;
use proptest::prelude::*;

const PROGRAMS: &[&str] = &[
    "true",
    "echo",
    "/usr/bin/true",
    "/bin/true",
    "/usr/bin/../bin/echo",
    "false",
    "sh",
    "/bin/sh",
    "../../bin/true",
    "true\u{0}",
    "",
    "hook.sh",
    "escape",
    "inside",
    "sub/inner.sh",
    "sub/../hook.sh",
    "../outside/evil.sh",
    "dir",
    "loop",
    "nope.sh",
];
const VARS: &[&str] = &[
    "LAB_FUZZ_OK",
    "CUDA_VISIBLE_DEVICES",
    "LD_PRELOAD",
    "PYTHONPATH",
    "HTTP_PROXY",
    "PATH",
    "HOME",
    "lab_fuzz_ok",
    "1BAD",
    "",
];

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn the_oracle_accepts_what_is_allowed_and_nothing_else() {
    let lab = RunnerHarness::start();
    assert!(lab.check_request(br#"{"program": "true", "env": ["LAB_FUZZ_OK"]}"#));
    assert!(lab.check_request(br#"{"program": "/usr/bin/../bin/echo", "args": ["x"]}"#));
    assert!(!lab.check_request(br#"{"program": "sh", "args": ["-c", "id"]}"#));
    assert!(!lab.check_request(br#"{"program": "true", "env": ["LD_PRELOAD"]}"#));
    assert!(!lab.check_request(br#"{"program": "true", "surprise": 1}"#));
    let hook = b"[[steps]]\nprogram = \"hook.sh\"\nexec = true\n";
    assert!(lab.check_workflow(hook, true, true));
    assert!(!lab.check_workflow(hook, false, true), "not allowed");
    assert!(!lab.check_workflow(hook, true, false), "not confirmed");
    assert!(lab.check_workflow(
        b"[[steps]]\nprogram = \"inside\"\nexec = true\n",
        true,
        true
    ));
    for outside in ["escape", "../outside/evil.sh", "dir", "loop"] {
        let text = format!("[[steps]]\nprogram = \"{outside}\"\nexec = true\n");
        assert!(
            !lab.check_workflow(text.as_bytes(), true, true),
            "{outside}"
        );
    }
    assert!(!lab.check_workflow(b"[[steps]]\nprogram = \"sh\"\n", true, true));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_request_is_allowlisted_or_refused(
        program in 0..PROGRAMS.len(),
        args in proptest::collection::vec("[ -~]{0,8}", 0..3),
        env in proptest::collection::vec(0..VARS.len(), 0..3),
        extra in proptest::option::of("[a-z_]{1,8}"),
    ) {
        let lab = harness();
        let env: Vec<String> = env.iter().map(|v| json_string(VARS[*v])).collect();
        let args: Vec<String> = args.iter().map(|a| json_string(a)).collect();
        let mut json = format!(
            "{{\"program\": {}, \"args\": [{}], \"env\": [{}]",
            json_string(PROGRAMS[program]),
            args.join(","),
            env.join(",")
        );
        if let Some(extra) = extra {
            json.push_str(&format!(", {}: 1", json_string(&extra)));
        }
        json.push('}');
        lab.check_request(json.as_bytes());
    }

    #[test]
    fn any_workflow_is_allowlisted_hooks_inside_or_refused(
        steps in proptest::collection::vec((0..PROGRAMS.len(), any::<bool>()), 0..4),
        allow in any::<bool>(),
        confirm in any::<bool>(),
    ) {
        let lab = harness();
        let mut text = String::from("name = \"w\"\n");
        for (program, exec) in steps {
            text.push_str(&format!(
                "[[steps]]\nprogram = {}\nexec = {exec}\n",
                json_string(PROGRAMS[program])
            ));
        }
        lab.check_workflow(text.as_bytes(), allow, confirm);
    }
}

fn harness() -> &'static RunnerHarness {
    static LAB: std::sync::OnceLock<RunnerHarness> = std::sync::OnceLock::new();
    LAB.get_or_init(RunnerHarness::start)
}

/// The fuzz target's seeds and every input it ever failed on.
#[test]
fn committed_fuzz_inputs_hold() {
    let lab = RunnerHarness::start();
    let mut accepted = 0;
    for (_, bytes) in
        lab_test_support::fuzz::committed_inputs(env!("CARGO_MANIFEST_DIR").as_ref(), "request")
    {
        accepted += usize::from(lab.check(&bytes));
    }
    assert!(accepted > 0, "no seed is accepted: they reach no planning");
}
