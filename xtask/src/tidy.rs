//! Tidy checks of STYLE.md, run as ordinary tests (rust-analyzer's habit).

use std::path::{Path, PathBuf};

use crate::root;

/// Crates that may hold `unsafe` (in one `sys` module).
const UNSAFE_ALLOWED: &[&str] = &["lab-sandbox"];

fn members() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.push(root().join("xtask"));
    dirs.sort();
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn manifest(dir: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap()
}

fn name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_member_uses_the_workspace_lints() {
    for dir in members() {
        let m = manifest(&dir);
        let inherited = m
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(toml::Value::as_bool);
        assert_eq!(
            inherited,
            Some(true),
            "{}: add [lints] workspace = true",
            name(&dir)
        );
    }
}

#[test]
fn every_crate_forbids_unsafe_code_except_the_sandbox() {
    for dir in members() {
        if UNSAFE_ALLOWED.contains(&name(&dir).as_str()) {
            continue;
        }
        for root_file in ["src/lib.rs", "src/main.rs"] {
            let path = dir.join(root_file);
            if let Ok(text) = std::fs::read_to_string(&path) {
                assert!(
                    text.contains("#![forbid(unsafe_code)]"),
                    "{} lacks #![forbid(unsafe_code)]",
                    path.display()
                );
            }
        }
    }
}

/// The `src/` files of every member (tidy.rs itself aside), with their text.
fn member_sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for dir in members() {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files.into_iter().filter(|f| !f.ends_with("tidy.rs")) {
            let text = std::fs::read_to_string(&file).unwrap();
            out.push((file, text));
        }
    }
    out
}

/// Non-test source: the part of a file before its first `#[cfg(test)]`
/// (nothing, for a file that is `#![cfg(test)]` as a whole), without
/// comment lines.
fn non_test_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| {
            let l = l.trim_start();
            !l.starts_with("#[cfg(test)]") && !l.starts_with("#![cfg(test)]")
        })
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
        .collect()
}

#[test]
fn no_unwrap_outside_tests_without_a_note() {
    let mut offenders = Vec::new();
    for (file, text) in member_sources() {
        let all: Vec<&str> = text.lines().collect();
        for (n, line) in non_test_lines(&text) {
            if line.contains(".unwrap()") || line.contains(".expect(") {
                let context = &all[n.saturating_sub(4)..n];
                if !context.iter().any(|l| l.contains("NOTE(unwrap)")) {
                    offenders.push(format!("{}:{n}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "unwrap/expect without NOTE(unwrap):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn ignored_tests_give_a_reason() {
    let mut offenders = Vec::new();
    for dir in members() {
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for file in files {
            if file.ends_with("tidy.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for (i, line) in text.lines().enumerate() {
                if line.trim() == "#[ignore]" {
                    offenders.push(format!("{}:{}", file.display(), i + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "#[ignore] without a reason: {offenders:?}"
    );
}

/// What a crate may never depend on, and why.
#[test]
fn the_core_and_the_leaves_stay_below_the_faces() {
    let rules: &[(&str, &[&str], &str)] = &[
        (
            "lab-core",
            &[
                "hyper",
                "http",
                "http-body",
                "hyper-util",
                "clap",
                "lab-http",
                "lab-cli",
            ],
            "the application knows no HTTP and no command line",
        ),
        (
            "lab-protocol",
            &[
                "tokio",
                "cap-std",
                "regex",
                "lab-registry",
                "lab-runner",
                "lab-fs",
            ],
            "the helper protocol is a leaf of plain types",
        ),
        (
            "lab-sandbox",
            &[
                "tokio",
                "cap-std",
                "regex",
                "lab-registry",
                "lab-runner",
                "lab-fs",
                "lab-core",
                "tracing",
                "tracing-subscriber",
            ],
            "the privileged helper depends only on leaves (it writes its own stderr, see `say`)",
        ),
        (
            "lab-redact",
            &["tokio", "cap-std", "rustix", "libc", "tempfile"],
            "redaction is pure: the caller passes text in",
        ),
    ];
    let mut checked = 0;
    for dir in members() {
        let crate_name = name(&dir);
        for (krate, banned, why) in rules {
            if crate_name != *krate {
                continue;
            }
            checked += 1;
            for dep in dependencies(&dir) {
                assert!(
                    !banned.contains(&dep.as_str()),
                    "{crate_name} depends on {dep}, but {why}"
                );
            }
        }
    }
    assert!(
        checked >= 3,
        "found only {checked} of the crates these rules name"
    );
}

/// lab-redact does no I/O: it is handed bytes and hands bytes back.
#[test]
fn redaction_does_no_io() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/lab-redact/src"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in non_test_lines(&text) {
            for io in [
                "std::fs",
                "File::",
                "std::net",
                "std::process",
                "std::env::var",
            ] {
                assert!(
                    !line.contains(io),
                    "{}:{n}: lab-redact does no I/O ({io})",
                    file.display()
                );
            }
        }
    }
}

/// A source file over ~600 lines is named in docs/ARCHITECTURE.md with a
/// sentence on why it is one piece.
#[test]
fn long_files_are_explained() {
    let architecture = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let mut unexplained = Vec::new();
    for (file, text) in member_sources() {
        if text.lines().count() <= 650 {
            continue;
        }
        let relative = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        if !architecture.contains(&format!("`{relative}`")) {
            unexplained.push(format!("{relative} ({} lines)", text.lines().count()));
        }
    }
    assert!(
        unexplained.is_empty(),
        "files over ~600 lines not explained in docs/ARCHITECTURE.md (name them in backquotes with why they are one piece):\n{}",
        unexplained.join("\n")
    );
}

fn dependencies(dir: &Path) -> Vec<String> {
    let m = manifest(dir);
    let mut deps = Vec::new();
    for table in ["dependencies", "build-dependencies"] {
        if let Some(t) = m.get(table).and_then(toml::Value::as_table) {
            deps.extend(t.keys().cloned());
        }
    }
    deps
}

#[test]
fn dependency_edges_follow_the_architecture() {
    // (dependency, the only crates that may use it, why)
    let rules: &[(&str, &[&str], &str)] = &[
        (
            "cap-std",
            &["lab-fs"],
            "only lab-fs opens files under a run root",
        ),
        ("clap", &["lab-cli"], "only lab-cli knows the command line"),
        (
            "tracing-subscriber",
            &["lab-cli"],
            "libraries emit `tracing` events; only the binary (or an embedder) installs a subscriber",
        ),
        (
            "anyhow",
            &["lab-cli", "xtask"],
            "libraries have typed errors",
        ),
        ("hyper", &["lab-http"], "only lab-http speaks HTTP"),
        (
            "aho-corasick",
            &["lab-redact"],
            "redaction is one pure crate (the caller passes the secrets in)",
        ),
        (
            "landlock",
            &["lab-sandbox"],
            "only the sandbox sets up Landlock",
        ),
        (
            "seccompiler",
            &["lab-sandbox"],
            "only the sandbox loads seccomp filters",
        ),
        (
            "lab-http",
            &["lab-cli"],
            "the server is composed only by the binary",
        ),
        (
            "prost",
            &["lab-formats"],
            "only the format readers decode protobufs",
        ),
        (
            "crc32c",
            &["lab-formats"],
            "only the format readers verify TFRecord checksums",
        ),
        (
            "crc32fast",
            &["lab-formats", "lab-registry"],
            "only the format readers (W&B record checksums) and the registry (its journal's line checksums) use CRC-32",
        ),
        (
            "rusqlite",
            &["lab-formats"],
            "only the MLflow store reader opens SQLite (a private snapshot lab-fs made, never a path in a root)",
        ),
        (
            "yaml-rust2",
            &["lab-formats"],
            "only the format readers parse YAML (bounded, no aliases)",
        ),
        (
            "rustix",
            &["lab-fs", "lab-stream", "lab-runner"],
            "only lab-fs opens files under a run root (its no-wait fast path), only FileBody reads them, and lab-runner (like lab-fs's snapshot sweep) asks only for its effective uid (provenance's owner check, job records' owner)",
        ),
        (
            "lab-formats",
            &["lab-core"],
            "the readers are the application core's (the faces use its types through lab-core)",
        ),
        (
            "lab-runner",
            &["lab-core"],
            "jobs are the application core's (the faces use its types through lab-core)",
        ),
        (
            "lab-sandbox",
            &["lab-cli"],
            "only the binary links the sandbox helper (`lab __sandbox`)",
        ),
        (
            "lab-core",
            &["lab-http", "lab-cli"],
            "the application is used by its two faces",
        ),
        (
            "object_store",
            &["lab-s3"],
            "only lab-s3 talks to object storage (static keys, no proxy, no redirects, keys beneath the root)",
        ),
        (
            "reqwest",
            &["lab-s3"],
            "the one HTTP client is lab-s3's, built for object_store with no proxy and no redirects",
        ),
        (
            "lab-test-support",
            &["xtask"],
            "test helpers are a dev-dependency of the product's crates (xtask, which drives the tests and the audit and never ships, uses them directly)",
        ),
    ];
    for dir in members() {
        let crate_name = name(&dir);
        for dep in dependencies(&dir) {
            for (banned, allowed, why) in rules {
                if dep == *banned {
                    assert!(
                        allowed.contains(&crate_name.as_str()),
                        "{crate_name} depends on {dep}, but {why}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_error_code_is_documented() {
    let source = std::fs::read_to_string(root().join("crates/lab-http/src/response.rs")).unwrap();
    let api = std::fs::read_to_string(root().join("docs/API.md")).unwrap();
    // The arms of `Code::as_str`: `Code::Variant => "snake_case",`.
    let codes: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Code::"))
        .filter_map(|l| l.split_once(" => \""))
        .filter_map(|(_, rest)| rest.split('"').next())
        .collect();
    assert!(codes.len() > 40, "found only {} codes", codes.len());
    let missing: Vec<&&str> = codes
        .iter()
        .filter(|c| !api.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "error codes missing from docs/API.md: {missing:?}"
    );
}

/// Element URLs (artifacts, TensorBoard images, bundle downloads, job log
/// streams) are signed by the server for one session: the UI takes each
/// from the API's `url` fields and never writes such a path itself.
#[test]
fn the_ui_builds_no_element_url() {
    let ui = root().join("crates/lab-http/ui");
    let mut checked = 0;
    for entry in std::fs::read_dir(&ui).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "js") {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            for built in [
                "/artifacts/",
                "/images/",
                "/exports/",
                "/log`",
                "/log'",
                "/log\"",
            ] {
                assert!(
                    !line.contains(built),
                    "{}:{}: builds an element URL ({built}); take it from the API's url field: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(checked >= 5, "found only {checked} UI scripts");
}

/// The names in `ui.rs`'s `assets![…]` list.
fn served_assets(ui_rs: &str) -> Vec<String> {
    let start = ui_rs
        .find("assets![")
        .expect("ui.rs lists its assets in assets![…]");
    let list = &ui_rs[start + "assets![".len()..];
    let list = &list[..list.find(']').expect("the assets list ends")];
    list.split(',')
        .map(|item| item.trim().trim_matches('"').to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The files in `ui/` that must be served: all but the HTML templates.
fn ui_files(ui: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ui)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".html"))
        .collect();
    names.sort();
    names
}

/// What differs between the files and the list: files not served, and
/// names served that are not files.
fn asset_drift(files: &[String], served: &[String]) -> (Vec<String>, Vec<String>) {
    let unserved = files
        .iter()
        .filter(|f| !served.contains(f))
        .cloned()
        .collect();
    let missing = served
        .iter()
        .filter(|s| !files.contains(s))
        .cloned()
        .collect();
    (unserved, missing)
}

#[test]
fn every_ui_file_is_served() {
    let ui = root().join("crates/lab-http/ui");
    let ui_rs = std::fs::read_to_string(root().join("crates/lab-http/src/ui.rs")).unwrap();
    let served = served_assets(&ui_rs);
    let files = ui_files(&ui);
    assert!(files.len() >= 10, "found only {files:?} in ui/");
    let (unserved, missing) = asset_drift(&files, &served);
    assert!(
        unserved.is_empty(),
        "files in crates/lab-http/ui/ not in ui.rs's assets![…]: {unserved:?}"
    );
    assert!(
        missing.is_empty(),
        "ui.rs's assets![…] names files not in crates/lab-http/ui/: {missing:?}"
    );
}

#[test]
fn the_asset_check_sees_a_file_left_out_and_a_name_with_no_file() {
    let ui_rs = "const ASSETS: X = assets![\n    \"app.js\",\n    \"gone.js\",\n];\n";
    let served = served_assets(ui_rs);
    assert_eq!(served, ["app.js", "gone.js"]);
    let files = ["app.js".to_string(), "new.js".to_string()];
    let (unserved, missing) = asset_drift(&files, &served);
    assert_eq!(unserved, ["new.js"]);
    assert_eq!(missing, ["gone.js"]);
}

#[test]
fn lab_http_never_touches_the_filesystem_directly() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/lab-http/src"), &mut files);
    for file in files {
        // The guard's fuzz harness builds its scratch run and reads the
        // exports directory to judge a request; `serve` never calls it.
        // `listen.rs` handles the Lab's own socket and key file, never a
        // run's files.
        if file.ends_with("src/fuzz.rs") || file.ends_with("src/listen.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in non_test_lines(&text) {
            assert!(
                !line.contains("std::fs") && !line.contains("File::open"),
                "{}:{n}: lab-http reaches files only through lab-fs",
                file.display()
            );
        }
    }
}

#[test]
fn no_shell_is_ever_invoked() {
    let mut offenders = Vec::new();
    for (file, text) in member_sources() {
        for (n, line) in non_test_lines(&text) {
            // A shell started by name, or any `-c` argument.
            let shell_started = ["sh", "bash", "dash", "zsh", "/bin/sh", "/bin/bash"]
                .iter()
                .any(|shell| line.contains(&format!("new(\"{shell}\")")));
            // nginx's configuration flag in the benchmark, named once.
            let nginx_flag = line
                .trim_start()
                .starts_with("const NGINX_CONF_FLAG: &str = \"-c\";");
            if shell_started || (line.contains("\"-c\"") && !nginx_flag) {
                offenders.push(format!("{}:{n}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "shell invocations:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn every_fuzz_target_is_run_and_has_seeds() {
    let mut found = Vec::new();
    for dir in members() {
        let fuzz = dir.join("fuzz");
        let Ok(text) = std::fs::read_to_string(fuzz.join("Cargo.toml")) else {
            continue;
        };
        let manifest: toml::Table = text.parse().unwrap();
        let krate = name(&dir);
        for bin in manifest["bin"].as_array().unwrap() {
            let target = bin["name"].as_str().unwrap().to_owned();
            let seeds = fuzz.join("seeds").join(&target);
            assert!(
                std::fs::read_dir(&seeds).is_ok_and(|mut d| d.next().is_some()),
                "{krate}'s fuzz target {target} has no seeds under {}",
                seeds.display()
            );
            found.push((krate.clone(), target));
        }
    }
    let mut listed: Vec<(String, String)> = crate::fuzz::TARGETS
        .iter()
        .map(|(c, t, _)| ((*c).to_owned(), (*t).to_owned()))
        .collect();
    found.sort();
    listed.sort();
    assert_eq!(
        found, listed,
        "cargo xtask fuzz runs exactly the targets there are"
    );
}

/// lab-formats files that may name lab-fs or `std::fs` outside their tests,
/// and why. Every reader reads through `storage::Storage`; these are not
/// readers.
const FORMATS_FS_ALLOWED: &[(&str, &str)] = &[
    (
        "local.rs",
        "the local Storage itself: it reads through lab-fs, and nothing else does",
    ),
    (
        "discover.rs",
        "discovery walks an allowed root by path, listing names (up to 200,000 \
         a directory, where a Storage listing stops at 4,096); whatever it reads \
         of a file (a head, a store's runs) it reads through LocalStorage",
    ),
    (
        "job.rs",
        "finds which run a job's directory holds by the same walk as discovery",
    ),
];

/// What in `line` reaches files other than through a Storage, if anything.
fn filesystem_use(line: &str) -> Option<&'static str> {
    const NEEDLES: &[&str] = &[
        "lab_fs",
        "std::fs",
        "std::os::unix::fs",
        "std::os::fd",
        "cap_std",
        "File::open",
        "OpenOptions",
        "read_dir",
        "symlink_metadata",
        "canonicalize",
    ];
    if let Some(needle) = NEEDLES.iter().find(|n| line.contains(**n)) {
        return Some(needle);
    }
    // `fs::…` through any other path or alias (`use std::{fs, io}`).
    let bytes = line.as_bytes();
    let aliased = line.match_indices("fs::").any(|(at, _)| {
        at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_')
    });
    let grouped = line.contains("use std::{")
        && line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| word == "fs");
    (aliased || grouped).then_some("fs::")
}

/// Run directories are opened, outside lab-fs, only by lab-core's
/// `Readers::open_root` (readers.rs), which marks what a job wrote
/// `within_job`: any other `RunRoot::open_ambient*` in the faces or the
/// core would read a job's run without the single-link rule.
#[test]
fn run_directories_are_opened_only_through_open_root() {
    let mut files = Vec::new();
    for dir in [
        "crates/lab-core/src",
        "crates/lab-http/src",
        "crates/lab-cli/src",
    ] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() >= 20, "found only {} files", files.len());
    let mut offenders = Vec::new();
    for file in files {
        if file.ends_with("lab-core/src/readers.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in non_test_lines(&text) {
            // `LocalStorage::open_ambient` opens one too; a renamed import
            // would hide either from this check.
            if line.contains("RunRoot::open_ambient")
                || line.contains("LocalStorage::open_ambient")
                || line.contains("RunRoot as ")
            {
                offenders.push(format!("{}:{n}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "open a run's directory with lab-core's Readers::open_root:\n{}",
        offenders.join("\n")
    );
}

/// The lines of a source file that are not its test module:
/// everything before a `#[cfg(test)]` that opens a `mod` (test modules end
/// their files), comments included — strict: a doc naming `lab_fs::` is
/// a reader that still thinks in paths.
fn outside_test_module(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let opens_tests = line.trim_start().starts_with("#[cfg(test)]")
            && lines[i + 1..]
                .iter()
                .map(|l| l.trim_start())
                .find(|l| !l.starts_with("#["))
                .is_some_and(|l| l.starts_with("mod ") || l.starts_with("pub(crate) mod "));
        if opens_tests || line.trim_start().starts_with("#![cfg(test)]") {
            break;
        }
        out.push((i + 1, *line));
    }
    out
}

#[test]
fn format_readers_read_only_through_the_storage_seam() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/lab-formats/src"), &mut files);
    assert!(files.len() >= 10, "found only {} files", files.len());
    let mut offenders = Vec::new();
    for file in files {
        let allowed = FORMATS_FS_ALLOWED
            .iter()
            .any(|(name, _)| file.file_name().is_some_and(|f| f == *name));
        if allowed {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in outside_test_module(&text) {
            if let Some(what) = filesystem_use(line) {
                offenders.push(format!("{}:{n}: `{what}`: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "lab-formats readers reach files only through `storage::Storage` \
         (LocalStorage in local.rs is the one that calls lab-fs):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_storage_seam_check_sees_what_it_must() {
    for line in [
        "use lab_fs::RunRoot;",
        "    let f = std::fs::read(p)?;",
        "use std::{fs, io};",
        "    fs::read_to_string(p)",
        "use std::os::unix::fs::MetadataExt;",
        "    root.open_regular(Path::new(rel)).map_err(|e: lab_fs::Error| e)",
        "    let dir = cap_std::fs::Dir::open_ambient_dir(p, a);",
    ] {
        assert!(filesystem_use(line).is_some(), "{line}");
    }
    for line in [
        "use crate::storage::{Storage, StorageError};",
        "    storage.read_range(name, 0, 12, Some(&version))",
        "    let refs = offsets::read(x);",
        "    // lab-fs, named with its hyphen, in prose",
    ] {
        assert_eq!(filesystem_use(line), None, "{line}");
    }
    let text = "use a;\n#[cfg(test)]\npub(crate) fn helper() {}\nuse std::fs;\n#[cfg(test)]\n#[allow(x)]\nmod tests {\n    use std::fs;\n}\n";
    let kept: Vec<usize> = outside_test_module(text).iter().map(|(n, _)| *n).collect();
    assert_eq!(kept, [1, 2, 3, 4]);
}

/// Members that may write to stdout and stderr themselves: the binary (its
/// output is its interface; it installs the `tracing` subscriber the
/// libraries log through) and xtask.
const MAY_PRINT: &[&str] = &["lab-cli", "xtask"];

/// Library files that may write their own stderr or stdout (never with a
/// print macro), and why.
const STDIO_ALLOWED: &[(&str, &str)] = &[
    (
        "lab-sandbox/src/lib.rs",
        "the sandbox helper (`lab __sandbox`) is its own process: its stderr is the job's (the runner \
         reads it into the job's stderr.log), its stdout the kernel report the runner reads; it has \
         no subscriber and starts no thread (see `say`)",
    ),
    (
        "lab-runner/src/slurm/node.rs",
        "the Slurm helper (`lab __slurm-helper`) is its own process on the node, with no subscriber: \
         its stderr is Slurm's --output file, where the Lab reads why a job could not start (see `say`)",
    ),
];

/// What in `line` prints or writes to the process's own stdio, if anything.
fn printing(line: &str) -> Option<&'static str> {
    const MACROS: &[&str] = &["println!", "eprintln!", "print!", "eprint!", "dbg!"];
    const STREAMS: &[&str] = &["stdout()", "stderr()"];
    let bytes = line.as_bytes();
    let starts_word =
        |at: usize| at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
    MACROS
        .iter()
        .chain(STREAMS)
        .find(|needle| line.match_indices(**needle).any(|(at, _)| starts_word(at)))
        .copied()
}

#[test]
fn libraries_log_through_tracing_and_never_print() {
    let mut checked = 0;
    let mut offenders = Vec::new();
    for dir in members() {
        if MAY_PRINT.contains(&name(&dir).as_str()) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            checked += 1;
            let stdio_allowed = STDIO_ALLOWED.iter().any(|(path, _)| file.ends_with(path));
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in outside_test_module(&text) {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                match printing(line) {
                    Some(stream) if stream.ends_with("()") && stdio_allowed => {}
                    Some(what) => {
                        offenders.push(format!(
                            "{}:{n}: `{what}`: {}",
                            file.display(),
                            line.trim()
                        ));
                    }
                    None => {}
                }
            }
        }
    }
    assert!(checked >= 50, "found only {checked} library files");
    assert!(
        offenders.is_empty(),
        "library crates log through `tracing::{{info, warn, error}}` (lab-cli installs the \
         subscriber that writes `lab: MESSAGE`), never print:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_printing_check_sees_what_it_must() {
    for line in [
        "    eprintln!(\"lab: warning: {w}\");",
        "println!(\"{text}\")",
        "        print!(\"x\");",
        "    eprint!(\"x\")",
        "    let x = dbg!(y);",
        "    let _ = writeln!(std::io::stderr(), \"x\");",
        "    let mut out = io::stdout().lock();",
    ] {
        assert!(printing(line).is_some(), "{line}");
    }
    for line in [
        "    tracing::warn!(\"warning: {w}\");",
        "    writeln!(self.0, \"{text}\")",
        "        .stderr(Stdio::piped())",
        "    let stderr = child.stderr.take();",
        "    my_println!(\"x\")",
    ] {
        assert_eq!(printing(line), None, "{line}");
    }
}
