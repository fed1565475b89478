//! Bundles: exact content from a run full of decoys, no overwrite, round
//! trip, and hostile archives refused with nothing written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // mkfifo for a decoy

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use lab_fs::bundle::{
    BundleError, BundleName, ExportsDir, MANIFEST, NoFilter, unpack_bundle_ambient,
};
use lab_fs::{Allowlist, RunRoot};

struct Env {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    run: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let run = base.join("runs/demo");
    std::fs::create_dir_all(run.join("videos")).unwrap();
    std::fs::create_dir_all(run.join(".git")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(run.join("output.mp4"), vec![7u8; 300_000]).unwrap();
    std::fs::write(run.join("videos/a.mp4"), b"aaaa").unwrap();
    std::fs::write(run.join("metrics.jsonl"), "{\"step\":1}\n").unwrap();
    std::fs::write(run.join("notes.md"), "# notes\n").unwrap();
    // Decoys: none of these may end up in a bundle.
    std::fs::write(run.join(".env"), "OPENAI_API_KEY=sk-decoy").unwrap();
    std::fs::write(run.join("secret.txt"), "decoy").unwrap();
    std::fs::write(run.join(".git/config"), "decoy").unwrap();
    std::fs::write(run.join("videos/.hidden.mp4"), "decoy").unwrap();
    std::fs::write(base.join("outside/secret.json"), "decoy").unwrap();
    std::fs::write(base.join("outside/canary"), "decoy canary").unwrap();
    symlink(base.join("outside/secret.json"), run.join("params.json")).unwrap();
    symlink("../../outside/secret.json", run.join("summary.json")).unwrap();
    // Absolute links lead only into the temp directory (never a file of
    // the machine, which a test run as root could harm).
    symlink(base.join("outside/canary"), run.join("stderr.log")).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg(run.join("stdout.log"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    Env {
        _tmp: tmp,
        base,
        run,
    }
}

fn tar_entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        assert_eq!(entry.header().entry_type(), tar::EntryType::Regular);
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.insert(name, data);
    }
    out
}

#[test]
fn bundle_names_are_validated() {
    for (name, expected) in [
        ("run-1", Some("run-1.tar")),
        ("run_1.v2.tar", Some("run_1.v2.tar")),
        ("A.tar", Some("A.tar")),
        ("", None),
        (".hidden", None),
        ("../x", None),
        ("a/b", None),
        ("a b", None),
        ("a\0b", None),
        ("é", None),
        ("a;b", None),
    ] {
        assert_eq!(
            BundleName::parse(name)
                .ok()
                .map(|n| n.as_str().to_owned())
                .as_deref(),
            expected,
            "{name:?}"
        );
    }
    assert!(BundleName::parse(&"a".repeat(96)).is_ok());
    assert!(
        BundleName::parse(&"a".repeat(97)).is_err(),
        "100 characters with .tar"
    );
}

#[test]
fn a_bundle_holds_exactly_the_allowlisted_artifacts_and_a_manifest() {
    let e = env();
    let exports = ExportsDir::open_ambient(&e.base.join("data/exports")).unwrap();
    let root = RunRoot::open_ambient(&e.run).unwrap();
    let name = BundleName::parse("demo").unwrap();
    let info = exports
        .write_bundle(&name, &root, &Allowlist::default(), "demo", &NoFilter, &[])
        .unwrap();
    let path = e.base.join("data/exports/demo.tar");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), info.size);
    let entries = tar_entries(&path);
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            MANIFEST,
            "metrics.jsonl",
            "notes.md",
            "output.mp4",
            "videos/a.mp4"
        ]
    );
    assert_eq!(entries["output.mp4"], vec![7u8; 300_000]);
    let manifest: serde_json::Value = serde_json::from_slice(&entries[MANIFEST]).unwrap();
    assert_eq!(manifest["source_run"], "demo");
    assert_eq!(manifest["format"], "lab-bundle");
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    let mp4 = files.iter().find(|f| f["name"] == "videos/a.mp4").unwrap();
    assert_eq!(mp4["size"], 4);
    // sha256("aaaa")
    assert_eq!(
        mp4["sha256"],
        "61be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b4"
    );
    for (name, data) in &entries {
        assert!(
            !String::from_utf8_lossy(data).contains("decoy"),
            "{name} carries a decoy"
        );
    }
    // Only the bundle is left in the exports dir: no temp or scratch files.
    let listed: Vec<String> = std::fs::read_dir(e.base.join("data/exports"))
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, ["demo.tar"]);
    let bundles: Vec<String> = exports
        .list()
        .unwrap()
        .into_iter()
        .map(|b| b.name.to_string())
        .collect();
    assert_eq!(bundles, ["demo.tar"]);
}

#[test]
fn an_existing_bundle_is_never_overwritten() {
    let e = env();
    let exports_path = e.base.join("data/exports");
    let exports = ExportsDir::open_ambient(&exports_path).unwrap();
    std::fs::write(exports_path.join("taken.tar"), "precious").unwrap();
    let root = RunRoot::open_ambient(&e.run).unwrap();
    let err = exports
        .write_bundle(
            &BundleName::parse("taken").unwrap(),
            &root,
            &Allowlist::default(),
            "demo",
            &NoFilter,
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, BundleError::AlreadyExists), "{err:?}");
    assert_eq!(
        std::fs::read_to_string(exports_path.join("taken.tar")).unwrap(),
        "precious"
    );
    assert_eq!(std::fs::read_dir(&exports_path).unwrap().count(), 1);
}

#[test]
fn export_then_unpack_gives_identical_artifacts() {
    let e = env();
    let exports = ExportsDir::open_ambient(&e.base.join("data/exports")).unwrap();
    let root = RunRoot::open_ambient(&e.run).unwrap();
    exports
        .write_bundle(
            &BundleName::parse("rt").unwrap(),
            &root,
            &Allowlist::default(),
            "demo",
            &NoFilter,
            &[],
        )
        .unwrap();
    let target = e.base.join("elsewhere");
    std::fs::create_dir_all(&target).unwrap();
    let bundle = std::fs::File::open(e.base.join("data/exports/rt.tar")).unwrap();
    let unpacked =
        unpack_bundle_ambient(bundle, &target, Some("demo-copy"), &Allowlist::default()).unwrap();
    assert_eq!(unpacked.dir, target.join("demo-copy"));
    assert_eq!(unpacked.manifest.source_run, "demo");
    for name in ["output.mp4", "videos/a.mp4", "metrics.jsonl", "notes.md"] {
        assert_eq!(
            std::fs::read(e.run.join(name)).unwrap(),
            std::fs::read(unpacked.dir.join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(!unpacked.dir.join(".env").exists());
    assert!(
        !unpacked.dir.join(MANIFEST).exists(),
        "the manifest is checked, not unpacked"
    );
    // Unpacking again into the same name is refused.
    let bundle = std::fs::File::open(e.base.join("data/exports/rt.tar")).unwrap();
    let err = unpack_bundle_ambient(bundle, &target, Some("demo-copy"), &Allowlist::default())
        .unwrap_err();
    assert!(matches!(err, BundleError::TargetExists));
    // Without a name, the directory is named after the source run.
    let bundle = std::fs::File::open(e.base.join("data/exports/rt.tar")).unwrap();
    let unpacked = unpack_bundle_ambient(bundle, &target, None, &Allowlist::default()).unwrap();
    assert_eq!(unpacked.dir, target.join("demo"));
}

/// A tar with entries written header by header, so names and types the
/// `tar` crate's safe API refuses can be planted.
struct Hostile {
    bytes: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
}

impl Hostile {
    fn new() -> Self {
        Self {
            bytes: Vec::new(),
            files: Vec::new(),
        }
    }

    fn raw(mut self, name: &[u8], kind: tar::EntryType, data: &[u8], link: Option<&[u8]>) -> Self {
        let mut header = tar::Header::new_gnu();
        {
            let old = header.as_old_mut();
            old.name[..name.len()].copy_from_slice(name);
            if let Some(link) = link {
                old.linkname[..link.len()].copy_from_slice(link);
            }
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, data).unwrap();
        let mut bytes = builder.into_inner().unwrap();
        bytes.truncate(bytes.len() - 1024); // drop the end-of-archive blocks
        self.bytes.extend(bytes);
        self
    }

    fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.files.push((name.to_owned(), data.to_vec()));
        self.raw(name.as_bytes(), tar::EntryType::Regular, data, None)
    }

    fn manifest(self) -> Self {
        let files: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|(name, data)| {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(data);
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                serde_json::json!({"name": name, "size": data.len(), "sha256": hex})
            })
            .collect();
        let manifest = serde_json::json!({
            "format": "lab-bundle", "version": 1, "lab_version": "0", "source_run": "x",
            "created": 0, "files": files,
        });
        self.raw(
            MANIFEST.as_bytes(),
            tar::EntryType::Regular,
            manifest.to_string().as_bytes(),
            None,
        )
    }

    fn finish(mut self) -> Vec<u8> {
        self.bytes.extend(vec![0u8; 1024]);
        self.bytes
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn hostile_bundles_are_refused_with_nothing_written() {
    use tar::EntryType as T;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let parent = base.join("parent/root");
    std::fs::create_dir_all(&parent).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/canary"), "canary").unwrap();
    // Links in the bundles lead to the canary, never a file of the machine.
    let canary = base.join("outside/canary");
    let canary = canary.as_os_str().as_encoded_bytes();
    assert!(canary.len() < 100, "a tar link name holds 100 bytes");
    let ok = Hostile::new().file("notes.md", b"fine");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "tar slip",
            Hostile::new()
                .raw(b"../../evil.md", T::Regular, b"x", None)
                .manifest()
                .finish(),
        ),
        (
            "absolute",
            Hostile::new()
                .raw(b"/tmp/evil.md", T::Regular, b"x", None)
                .manifest()
                .finish(),
        ),
        (
            "dot segment",
            Hostile::new()
                .raw(b"./notes.md", T::Regular, b"x", None)
                .manifest()
                .finish(),
        ),
        (
            "symlink",
            Hostile::new()
                .raw(b"notes.md", T::Symlink, b"", Some(canary))
                .manifest()
                .finish(),
        ),
        (
            "hard link",
            Hostile::new()
                .raw(b"notes.md", T::Link, b"", Some(canary))
                .manifest()
                .finish(),
        ),
        (
            "char device",
            Hostile::new()
                .raw(b"notes.md", T::Char, b"", None)
                .manifest()
                .finish(),
        ),
        (
            "block device",
            Hostile::new()
                .raw(b"notes.md", T::Block, b"", None)
                .manifest()
                .finish(),
        ),
        (
            "fifo",
            Hostile::new()
                .raw(b"notes.md", T::Fifo, b"", None)
                .manifest()
                .finish(),
        ),
        (
            "directory",
            Hostile::new()
                .raw(b"videos/", T::Directory, b"", None)
                .manifest()
                .finish(),
        ),
        (
            "dotfile",
            Hostile::new().file(".env", b"KEY=1").manifest().finish(),
        ),
        (
            "off the allowlist",
            Hostile::new().file("secret.txt", b"x").manifest().finish(),
        ),
        (
            "backslash",
            Hostile::new()
                .raw(b"..\\evil.md", T::Regular, b"x", None)
                .manifest()
                .finish(),
        ),
        (
            "duplicate",
            Hostile::new()
                .file("notes.md", b"a")
                .file("notes.md", b"b")
                .manifest()
                .finish(),
        ),
        (
            "no manifest",
            Hostile::new().file("notes.md", b"x").finish(),
        ),
        ("bad checksum", {
            let mut h = Hostile::new().file("notes.md", b"x");
            h.files[0].1 = b"y".to_vec();
            h.manifest().finish()
        }),
        ("unlisted file", {
            let mut h = Hostile::new().file("notes.md", b"x").file("run.toml", b"y");
            h.files.pop();
            h.manifest().finish()
        }),
        ("listed but absent", {
            let mut h = Hostile::new().file("notes.md", b"x");
            h.files.push(("run.toml".into(), b"y".to_vec()));
            h.manifest().finish()
        }),
        ("garbage", b"this is not a tar archive at all".repeat(40)),
    ];
    for (what, bytes) in cases {
        let result = unpack_bundle_ambient(
            bytes.as_slice(),
            &parent,
            Some("target"),
            &Allowlist::default(),
        );
        let needle = match what {
            "tar slip" | "dot segment" => "dot segment",
            "absolute" => "absolute path",
            "symlink" | "hard link" | "char device" | "block device" | "fifo" | "directory" => {
                "is not a regular file"
            }
            "dotfile" | "backslash" => "hidden",
            "off the allowlist" => "not on the artifact allowlist",
            "duplicate" => "appears twice",
            "no manifest" => "manifest: missing",
            "bad checksum" => "does not match its checksum",
            "unlisted file" => "is not listed",
            "listed but absent" => "is listed but absent",
            _ => "",
        };
        let err = result.expect_err(what).to_string();
        assert!(
            err.contains(needle),
            "{what}: refused for the wrong reason: {err}"
        );
        assert!(
            listing(&parent).is_empty(),
            "{what}: left {:?}",
            listing(&parent)
        );
        assert_eq!(
            listing(&base.join("parent")),
            ["root"],
            "{what}: wrote outside"
        );
        assert!(!Path::new("/tmp/evil.md").exists(), "{what}");
        assert_eq!(
            std::fs::read_to_string(base.join("outside/canary")).unwrap(),
            "canary",
            "{what}"
        );
    }
    // The same builder makes an acceptable bundle, so the refusals above are real.
    let good = ok.manifest().finish();
    unpack_bundle_ambient(
        good.as_slice(),
        &parent,
        Some("target"),
        &Allowlist::default(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(parent.join("target/notes.md")).unwrap(),
        "fine"
    );
}

/// Tars built entry by entry from the pieces hostile bundles are made of —
/// traversal, absolute and dot names, links, FIFOs, directories, names off
/// the allowlist, a manifest that matches, lies or is missing — unpack into
/// a whole run or nothing (`lab_fs::fuzz::check_unpack`, the `unpack` fuzz
/// target's oracle): never a file outside, never a half-unpacked run.
mod hostile_tars {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"notes.md".to_vec()),
            Just(b"output.mp4".to_vec()),
            Just(b"videos/a.mp4".to_vec()),
            Just(b"images/x.png".to_vec()),
            Just(b"../notes.md".to_vec()),
            Just(b"videos/../../../outside/canary.md".to_vec()),
            Just(b"/tmp/evil.md".to_vec()),
            Just(b"./notes.md".to_vec()),
            Just(b".env".to_vec()),
            Just(b"videos".to_vec()),
            Just(b"MANIFEST.json".to_vec()),
            Just(b"secret.txt".to_vec()),
            // A letter first: in 12 characters, however it traverses, a
            // name stays in the oracle's scratch directory, where a write
            // is seen (the names above start with `.`, `..` and `/`).
            "[a-z][a-z./]{0,11}".prop_map(String::into_bytes),
        ]
    }

    fn kind() -> impl Strategy<Value = tar::EntryType> {
        use tar::EntryType as T;
        prop_oneof![
            4 => Just(T::Regular),
            1 => Just(T::Symlink),
            1 => Just(T::Link),
            1 => Just(T::Directory),
            1 => Just(T::Fifo),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

        #[test]
        fn hostile_tars_unpack_whole_or_not_at_all(
            entries in proptest::collection::vec(
                (name(), kind(), proptest::collection::vec(any::<u8>(), 0..64)),
                0..6
            ),
            manifest in 0u8..3,
        ) {
            let mut tar = Hostile::new();
            for (name, kind, data) in &entries {
                tar = if *kind == tar::EntryType::Regular {
                    match std::str::from_utf8(name) {
                        // Listed in the manifest (when there is one).
                        Ok(text) => tar.file(text, data),
                        Err(_) => tar.raw(name, *kind, data, None),
                    }
                } else {
                    // From the run's top level: the oracle's canary.
                    let link: &[u8] = b"../../outside/canary.md";
                    tar.raw(name, *kind, &[], Some(link))
                };
            }
            let tar = match manifest {
                // A manifest naming every regular file, with its sums.
                0 => tar.manifest(),
                // One that lies: an extra file it never holds.
                1 => {
                    let lying = serde_json::json!({
                        "format": "lab-bundle", "version": 1, "lab_version": "0",
                        "source_run": "x", "created": 0,
                        "files": [{"name": "notes.md", "size": 16, "sha256": "00".repeat(32)}],
                    })
                    .to_string();
                    tar.raw(MANIFEST.as_bytes(), tar::EntryType::Regular, lying.as_bytes(), None)
                }
                // None at all.
                _ => tar,
            };
            lab_fs::fuzz::check_unpack(&tar.finish());
            prop_assert!(!Path::new("/tmp/evil.md").exists(), "an absolute name was written");
        }

        #[test]
        fn a_good_bundle_unpacks(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let tar = Hostile::new()
                .file("notes.md", &data)
                .file("videos/a.mp4", b"v")
                .manifest()
                .finish();
            prop_assert!(lab_fs::fuzz::check_unpack(&tar), "a good bundle unpacks");
        }
    }
}

/// The `unpack` fuzz target's seeds and every input it ever failed on.
#[test]
fn committed_unpack_inputs_hold() {
    let unpacked: Vec<bool> =
        lab_test_support::fuzz::committed_inputs(env!("CARGO_MANIFEST_DIR").as_ref(), "unpack")
            .iter()
            .map(|(_, bytes)| lab_fs::fuzz::check_unpack(bytes))
            .collect();
    assert_eq!(unpacked, [true, false, false, false], "the good seed only");
}

/// A generated file replaces the run's artifact of the same name (a run
/// of another format's own `metrics.jsonl` or `run.json` is not the
/// Lab's): the bundle holds it once, with the generated bytes, and its
/// manifest lists it once.
#[test]
fn an_extra_file_replaces_the_artifact_of_its_name() {
    let e = env();
    let exports = ExportsDir::open_ambient(&e.base.join("data/exports")).unwrap();
    let root = RunRoot::open_ambient(&e.run).unwrap();
    let extra = [(
        lab_fs::ArtifactName::parse("metrics.jsonl").unwrap(),
        b"{\"step\": 0, \"replaced\": 1}\n".to_vec(),
    )];
    exports
        .write_bundle(
            &BundleName::parse("replaced").unwrap(),
            &root,
            &Allowlist::default(),
            "demo",
            &NoFilter,
            &extra,
        )
        .unwrap();
    let path = e.base.join("data/exports/replaced.tar");
    let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .filter(|n| n == "metrics.jsonl")
        .collect();
    assert_eq!(names, ["metrics.jsonl"]);
    let entries = tar_entries(&path);
    assert_eq!(entries["metrics.jsonl"], extra[0].1);
    let manifest: serde_json::Value = serde_json::from_slice(&entries[MANIFEST]).unwrap();
    let listed = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "metrics.jsonl")
        .count();
    assert_eq!(listed, 1, "{manifest}");
}
