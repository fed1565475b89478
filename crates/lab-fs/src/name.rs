//! Artifact names and the allowlist they are matched against.

use crate::Error;

/// Longest artifact name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 512;
/// The subdirectory of a runner job's run directory that holds what the job
/// wrote (everything else in the run is the Lab's own). A name
/// `job/NAME` is allowlisted when `NAME` is.
pub const JOB_DIR: &str = "job";
/// Longest single segment accepted, in bytes (a common `NAME_MAX`).
const MAX_SEGMENT_LEN: usize = 255;
/// Most segments in a name or pattern (three directory levels and a file):
/// enough for the formats' fixed places (W&B's `files/media/videos/X.mp4`).
pub const MAX_LEVELS: usize = 4;

/// A syntactically safe artifact name: a file, under at most three
/// directory levels, joined by `/`.
///
/// Holding an `ArtifactName` proves the name has no `.` or `..` segment, no
/// empty segment, no segment starting with `.`, no absolute prefix, no NUL,
/// control character or backslash, and at most [`MAX_LEVELS`] segments
/// (one more under [`JOB_DIR`]). It does
/// **not** prove the name is on an allowlist; see [`Allowlist::check`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactName(String);

impl ArtifactName {
    /// Parses a name exactly as given. Nothing is repaired: a name that is not
    /// already safe is an error (STYLE.md "Reject, never repair").
    pub fn parse(name: &str) -> Result<Self, Error> {
        if name.len() > MAX_NAME_LEN {
            return Err(Error::InvalidName("name is too long"));
        }
        let segments = split_segments(name)?;
        let levels = if segments.first() == Some(&JOB_DIR) {
            MAX_LEVELS + 1
        } else {
            MAX_LEVELS
        };
        if segments.len() > levels {
            return Err(Error::InvalidName("more than four path segments"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as a `/`-separated relative path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory part, if the name has one.
    pub fn dir(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(dir, _)| dir)
    }

    /// For `job/NAME`, `NAME`: the part a job wrote, named as in any run.
    pub fn in_job_dir(&self) -> Option<ArtifactName> {
        let inner = self.0.strip_prefix(JOB_DIR)?.strip_prefix('/')?;
        let inner = ArtifactName::parse(inner).ok()?;
        (inner.0.split('/').count() <= MAX_LEVELS).then_some(inner)
    }

    /// The last segment.
    pub fn file(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl std::fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits on `/` and checks every segment; shared by names and patterns.
fn split_segments(name: &str) -> Result<Vec<&str>, Error> {
    if name.is_empty() {
        return Err(Error::InvalidName("empty name"));
    }
    if name.starts_with('/') {
        return Err(Error::InvalidName("absolute path"));
    }
    let segments: Vec<&str> = name.split('/').collect();
    for segment in &segments {
        check_segment(segment)?;
    }
    // SPEC §5: a literal `%` only in an MLflow `log_image` file name
    // directly beneath `artifacts/images/` (MLflow before 3 wrote
    // `KEY%step%N%timestamp%MS%UUID.png`); anywhere else a `%` is the
    // trace of an encoded form and refused.
    if name.contains('%') {
        let legacy_image = match segments.as_slice() {
            ["artifacts", "images", file] => {
                mlflow_image_name(file).is_some_and(|image| image.separator == '%')
            }
            _ => false,
        };
        if !legacy_image {
            return Err(Error::InvalidName("percent sign"));
        }
    }
    Ok(segments)
}

/// An MLflow `log_image(image, key=…, step=…)` file name, as MLflow
/// writes it beneath `artifacts/images/`:
/// `KEY+step+N+timestamp+MS+UUID.png` (MLflow 3, a `/` in the key written
/// `~`), `KEY%step%N%timestamp%MS%UUID.png` (MLflow 2, `/` written `#`),
/// each with a `+compressed.webp` (`%compressed.webp`) copy beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlflowImageName<'a> {
    /// The key as MLflow sanitised it (`~` or `#` for each `/`).
    pub key: &'a str,
    /// The step.
    pub step: i64,
    /// The timestamp, in milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Whether this is MLflow's compressed (`.webp`) copy.
    pub compressed: bool,
    /// `+` or `%`.
    pub separator: char,
}

impl MlflowImageName<'_> {
    /// The key as logged: each `~` (or `#`) back to `/`.
    pub fn key(&self) -> String {
        self.key.replace(['~', '#'], "/")
    }
}

/// Parses `file` (one segment) as an MLflow `log_image` file name; `None`
/// for anything else. The grammar is exact: a key of the characters MLflow
/// accepts (letters, digits, `_ - .`, space and the `/` stand-in), decimal
/// step and timestamp, a UUID of hex digits and dashes, `.png` (or
/// `compressed` and `.webp`).
pub fn mlflow_image_name(file: &str) -> Option<MlflowImageName<'_>> {
    let (stem, ext) = file.rsplit_once('.')?;
    ['+', '%'].into_iter().find_map(|sep| {
        let mut fields = stem.split(sep);
        let key = fields.next()?;
        let key_ok = !key.is_empty()
            && key.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '~' | '#')
            });
        let number = |s: &str| {
            let digits = s.strip_prefix('-').unwrap_or(s);
            (!digits.is_empty() && digits.len() <= 19 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<i64>().ok())
                .flatten()
        };
        if !key_ok || fields.next()? != "step" {
            return None;
        }
        let step = number(fields.next()?)?;
        if fields.next()? != "timestamp" {
            return None;
        }
        let timestamp_ms = number(fields.next()?)?;
        let uuid = fields.next()?;
        if uuid.is_empty()
            || uuid.len() > 64
            || !uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            return None;
        }
        let compressed = match (fields.next(), ext) {
            (None, "png") => false,
            (Some("compressed"), "webp") => true,
            _ => return None,
        };
        fields.next().is_none().then_some(MlflowImageName {
            key,
            step,
            timestamp_ms,
            compressed,
            separator: sep,
        })
    })
}

fn check_segment(segment: &str) -> Result<(), Error> {
    if segment.is_empty() {
        return Err(Error::InvalidName("empty path segment"));
    }
    if segment == "." || segment == ".." {
        return Err(Error::InvalidName("dot segment"));
    }
    if segment.starts_with('.') {
        return Err(Error::InvalidName("hidden (dot-prefixed) segment"));
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(Error::InvalidName("path segment is too long"));
    }
    for c in segment.chars() {
        if c == '\0' {
            return Err(Error::InvalidName("NUL character"));
        }
        if c.is_control() {
            return Err(Error::InvalidName("control character"));
        }
        if c == '\\' {
            return Err(Error::InvalidName("backslash"));
        }
    }
    Ok(())
}

/// One allowlist entry: `NAME`, `DIR/NAME`, `*.ext` or `DIR/*.ext`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    dir: Option<String>,
    file: FilePattern,
    source: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum FilePattern {
    Exact(String),
    /// `prefix*suffix`: one wildcard, matching any (possibly empty) run of
    /// characters within the last segment.
    Wildcard {
        prefix: String,
        suffix: String,
    },
}

impl Pattern {
    /// Parses an allowlist entry. At most [`MAX_LEVELS`] segments, `*` only in
    /// the last segment (at most once), no dot-prefixed segment.
    pub fn parse(pattern: &str) -> Result<Self, Error> {
        let invalid = |reason: &'static str| Error::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        let segments = split_segments(pattern).map_err(|e| match e {
            Error::InvalidName(reason) => invalid(reason),
            other => other,
        })?;
        if segments.len() > MAX_LEVELS {
            return Err(invalid("more than four path segments"));
        }
        let (file, dirs) = segments.split_last().ok_or_else(|| invalid("empty name"))?;
        let file = *file;
        let dir = (!dirs.is_empty()).then(|| dirs.join("/"));
        let dir = dir.as_deref();
        // A directory segment is a name, or `*` whole: any one directory
        // (a format's step directories); never part of a name.
        if dirs.iter().any(|d| d.contains('*') && *d != "*") {
            return Err(invalid("`*` is only allowed in the last segment"));
        }
        let file = match file.split_once('*') {
            None => FilePattern::Exact(file.to_owned()),
            Some((prefix, suffix)) if !suffix.contains('*') => FilePattern::Wildcard {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            },
            Some(_) => return Err(invalid("at most one `*` per pattern")),
        };
        Ok(Self {
            dir: dir.map(str::to_owned),
            file,
            source: pattern.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The directory this pattern reaches into, if any and if it is one
    /// (no `*` segment: see [`Pattern::wild_dir`]).
    pub fn dir(&self) -> Option<&str> {
        self.dir.as_deref().filter(|d| !Self::wild(d))
    }

    /// The directories this pattern reaches into when some of them are
    /// `*` (any one directory): `*`, `media/*`, `*/images`.
    pub fn wild_dir(&self) -> Option<&str> {
        self.dir.as_deref().filter(|d| Self::wild(d))
    }

    fn wild(dir: &str) -> bool {
        dir.split('/').any(|s| s == "*")
    }

    /// Whether `name` matches this pattern.
    pub fn matches(&self, name: &ArtifactName) -> bool {
        let same_dir = match (self.dir.as_deref(), name.dir()) {
            (None, None) => true,
            (Some(pattern), Some(dir)) => {
                let (mut p, mut d) = (pattern.split('/'), dir.split('/'));
                loop {
                    match (p.next(), d.next()) {
                        (None, None) => break true,
                        (Some(a), Some(b)) if a == "*" || a == b => {}
                        _ => break false,
                    }
                }
            }
            _ => false,
        };
        if !same_dir {
            return false;
        }
        let file = name.file();
        match &self.file {
            FilePattern::Exact(exact) => file == exact,
            FilePattern::Wildcard { prefix, suffix } => {
                file.len() >= prefix.len() + suffix.len()
                    && file.starts_with(prefix.as_str())
                    && file.ends_with(suffix.as_str())
            }
        }
    }
}

/// The SPEC §5 default allowlist.
pub const DEFAULT_ALLOWLIST: &[&str] = &[
    "run.toml",
    "run.json",
    "params.json",
    "config.toml",
    "summary.json",
    "metrics.jsonl",
    "metrics.csv",
    "provenance.json",
    "stdout.log",
    "stderr.log",
    "notes.md",
    "output.mp4",
    "preview.mp4",
    "video.mp4",
    "preview.png",
    "thumbnail.png",
    "thumbnail.jpg",
    "videos/*.mp4",
    "images/*.png",
];

/// The set of artifact names Lab will serve.
#[derive(Clone, Debug)]
pub struct Allowlist {
    patterns: Vec<Pattern>,
}

impl Default for Allowlist {
    fn default() -> Self {
        let patterns = DEFAULT_ALLOWLIST
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            // NOTE(unwrap): the default table is constant and covered by
            // `default_allowlist_parses`.
            .unwrap_or_default();
        Self { patterns }
    }
}

impl Allowlist {
    /// The default allowlist plus `extra` entries from configuration
    /// (whose directories are names: a `*` directory is a format's, never
    /// the configuration's).
    pub fn with_extra<S: AsRef<str>>(extra: &[S]) -> Result<Self, Error> {
        let mut list = Self::default();
        for entry in extra {
            let pattern = Pattern::parse(entry.as_ref())?;
            if pattern.wild_dir().is_some() {
                return Err(Error::InvalidPattern {
                    pattern: entry.as_ref().to_owned(),
                    reason: "`*` is only allowed in the last segment",
                });
            }
            list.patterns.push(pattern);
        }
        Ok(list)
    }

    /// This allowlist plus `extra` entries.
    pub fn plus<S: AsRef<str>>(&self, extra: &[S]) -> Result<Self, Error> {
        let mut list = self.clone();
        for entry in extra {
            list.patterns.push(Pattern::parse(entry.as_ref())?);
        }
        Ok(list)
    }

    /// An allowlist of exactly these entries (no defaults).
    pub fn only<S: AsRef<str>>(entries: &[S]) -> Result<Self, Error> {
        let patterns = entries
            .iter()
            .map(|e| Pattern::parse(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { patterns })
    }

    /// The patterns, defaults first.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Parses `name` and checks it against the allowlist.
    pub fn check(&self, name: &str) -> Result<ArtifactName, Error> {
        let name = ArtifactName::parse(name)?;
        if self.allows(&name) {
            Ok(name)
        } else {
            Err(Error::NotAllowed)
        }
    }

    /// Whether a parsed name is on the allowlist.
    pub fn allows(&self, name: &ArtifactName) -> bool {
        let matched = |name: &ArtifactName| self.patterns.iter().any(|p| p.matches(name));
        matched(name) || name.in_job_dir().is_some_and(|inner| matched(&inner))
    }

    /// The `*`-segment directories of some patterns (`*`, `media/*`),
    /// deduplicated.
    pub fn wild_dirs(&self) -> Vec<&str> {
        let mut dirs: Vec<&str> = self.patterns.iter().filter_map(Pattern::wild_dir).collect();
        dirs.sort_unstable();
        dirs.dedup();
        dirs
    }

    /// The directories that some pattern reaches into, deduplicated.
    pub fn dirs(&self) -> Vec<&str> {
        let mut dirs: Vec<&str> = self.patterns.iter().filter_map(Pattern::dir).collect();
        dirs.sort_unstable();
        dirs.dedup();
        dirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allowlist_parses() {
        for p in DEFAULT_ALLOWLIST {
            Pattern::parse(p).unwrap();
        }
        assert_eq!(
            Allowlist::default().patterns().len(),
            DEFAULT_ALLOWLIST.len()
        );
    }

    fn check(name: &str, expected: Result<(), &str>) {
        let list = Allowlist::with_extra(&["extra/*.txt", "report-*.json"]).unwrap();
        let got = list.check(name).map(|_| ()).map_err(|e| e.to_string());
        match expected {
            Ok(()) => assert!(got.is_ok(), "{name:?} should be allowed, got {got:?}"),
            Err(needle) => {
                let msg = got.expect_err(name);
                assert!(msg.contains(needle), "{name:?}: {msg:?} lacks {needle:?}");
            }
        }
    }

    #[test]
    fn names_are_checked_against_the_allowlist() {
        let table: &[(&str, Result<(), &str>)] = &[
            ("output.mp4", Ok(())),
            ("videos/a.mp4", Ok(())),
            ("videos/a b#?;.mp4", Ok(())),
            ("videos/a b%2e#?;.mp4", Err("percent sign")),
            ("images/x.png", Ok(())),
            ("extra/notes.txt", Ok(())),
            ("report-1.json", Ok(())),
            ("report-.json", Ok(())),
            ("videos/.mp4", Err("hidden")),
            ("videos/.x.mp4", Err("hidden")),
            (".env", Err("hidden")),
            ("..", Err("dot segment")),
            (".", Err("dot segment")),
            ("../output.mp4", Err("dot segment")),
            ("./output.mp4", Err("dot segment")),
            ("videos/../output.mp4", Err("dot segment")),
            ("videos/./a.mp4", Err("dot segment")),
            ("/etc/passwd", Err("absolute")),
            ("//output.mp4", Err("absolute")),
            ("videos//a.mp4", Err("empty path segment")),
            ("output.mp4/", Err("empty path segment")),
            ("", Err("empty name")),
            ("out\0put.mp4", Err("NUL")),
            ("out\nput.mp4", Err("control")),
            ("out\u{7f}put.mp4", Err("control")),
            ("videos\\a.mp4", Err("backslash")),
            ("..\\output.mp4", Err("hidden")),
            ("a/b/c.mp4", Err("not on the artifact allowlist")),
            ("a/b/c/d/e.mp4", Err("more than four path segments")),
            ("secret.txt", Err("not on the artifact allowlist")),
            ("videos/a.mkv", Err("not on the artifact allowlist")),
            ("extra/a.txt.gz", Err("not on the artifact allowlist")),
            ("Output.mp4", Err("not on the artifact allowlist")),
            ("%2e%2e", Err("percent sign")),
            ("output.mp4;", Err("not on the artifact allowlist")),
        ];
        for (name, expected) in table {
            check(name, *expected);
        }
        check(&"a".repeat(600), Err("too long"));
        check(&format!("videos/{}.mp4", "a".repeat(300)), Err("too long"));
    }

    #[test]
    fn config_patterns_are_restricted() {
        let table: &[(&str, Option<&str>)] = &[
            ("extra.txt", None),
            ("logs/*.log", None),
            ("*.txt", None),
            ("a/b/c.txt", None),
            ("a/b/c/d/e.txt", Some("more than four path segments")),
            ("a/*/c.txt", None),
            ("*/x.txt", None),
            ("a*/c.txt", Some("last segment")),
            (".env", Some("hidden")),
            ("logs/.secret", Some("hidden")),
            (".cache/*.txt", Some("hidden")),
            ("../x", Some("dot segment")),
            ("/etc/passwd", Some("absolute")),
            ("a*b*", Some("at most one")),
            ("a\\b", Some("backslash")),
        ];
        for (pattern, expected) in table {
            match (Pattern::parse(pattern), expected) {
                (Ok(_), None) => {}
                (Err(e), Some(needle)) => assert!(e.to_string().contains(needle), "{pattern}: {e}"),
                (got, _) => panic!("{pattern:?}: unexpected {got:?}"),
            }
        }
    }

    /// A format's `*` directory matches any one directory, named as any
    /// segment is (no dot, no empty, not two); the configuration may not
    /// use one.
    #[test]
    fn a_star_directory_matches_exactly_one_directory_and_is_a_formats_alone() {
        let list = Allowlist::default()
            .plus(&["*/*.png", "media/*/x.jpg"])
            .unwrap();
        for (name, allowed) in [
            ("12/a.png", true),
            ("step-3/a b.png", true),
            ("a.png", false),
            ("1/2/a.png", false),
            ("12/a.jpg", false),
            (".12/a.png", false),
            ("../a.png", false),
            ("media/7/x.jpg", true),
            ("media/7/y.jpg", false),
            ("media/x.jpg", false),
            ("other/7/x.jpg", false),
        ] {
            assert_eq!(list.check(name).is_ok(), allowed, "{name}");
        }
        assert_eq!(list.wild_dirs(), ["*", "media/*"]);
        assert!(!list.dirs().contains(&"*"));
        for pattern in ["*/*.png", "a/*/b.txt"] {
            let e = Allowlist::with_extra(&[pattern]).unwrap_err().to_string();
            assert!(e.contains("last segment"), "{pattern}: {e}");
        }
        assert!(Pattern::parse("a*/b.png").is_err());
    }

    #[test]
    fn a_config_wildcard_never_serves_dotfiles() {
        let list = Allowlist::with_extra(&["*"]).unwrap();
        assert!(list.check("anything.bin").is_ok());
        assert!(list.check(".env").is_err());
        assert!(list.check(".git").is_err());
    }

    /// SPEC §5: a literal `%` is accepted only in an MLflow `log_image`
    /// file name directly beneath `artifacts/images/`; every other `%`
    /// (an encoded dot, separator or NUL, a `%` elsewhere) is refused.
    #[test]
    fn a_percent_sign_is_refused_but_in_an_mlflow_image_name_beneath_artifacts_images() {
        let list = Allowlist::default()
            .plus(&[
                "artifacts/images/*.png",
                "artifacts/*.png",
                "artifacts/images/*.webp",
            ])
            .unwrap();
        let legacy = "loss#a%step%3%timestamp%1796653770703%93904f9c-f7a9-45fb-8809-dee7ca15adb7";
        let table: &[(String, Result<(), &str>)] = &[
            (format!("artifacts/images/{legacy}.png"), Ok(())),
            (format!("artifacts/images/{legacy}%compressed.webp"), Ok(())),
            (
                "artifacts/images/a~b+step+0+timestamp+1+0a-1b.png".to_owned(),
                Ok(()),
            ),
            (format!("artifacts/{legacy}.png"), Err("percent sign")),
            (
                format!("artifacts/images/x/{legacy}.png"),
                Err("percent sign"),
            ),
            (
                format!("job/artifacts/images/{legacy}.png"),
                Err("percent sign"),
            ),
            (format!("images/{legacy}.png"), Err("percent sign")),
            (
                "artifacts/images/%2e%2e.png".to_owned(),
                Err("percent sign"),
            ),
            ("artifacts/images/%2e%2e".to_owned(), Err("percent sign")),
            ("artifacts/images/a%00.png".to_owned(), Err("percent sign")),
            ("artifacts/images/..%2f..%2fx.png".to_owned(), Err("hidden")),
            (
                "artifacts/images/a..%2f..%2fx.png".to_owned(),
                Err("percent sign"),
            ),
            (
                "artifacts/images/a%2fb%step%1%timestamp%2%ab.png".to_owned(),
                Err("percent sign"),
            ),
            (
                "artifacts/images/a%step%1%timestamp%2%zz.png".to_owned(),
                Err("percent sign"),
            ),
            (
                "artifacts/images/a%step%1%timestamp%2%ab.png%".to_owned(),
                Err("percent sign"),
            ),
            (
                "artifacts/images/a%step%x%timestamp%2%ab.png".to_owned(),
                Err("percent sign"),
            ),
            (
                "artifacts/images/a%step%1%timestamp%2%ab%more.png".to_owned(),
                Err("percent sign"),
            ),
            (
                "artifacts/images/a%step%1%timestamp%2%ab.webp".to_owned(),
                Err("percent sign"),
            ),
            (
                "artifacts/images/%step%1%timestamp%2%ab.png".to_owned(),
                Err("percent sign"),
            ),
            ("artifacts%2fimages/x.png".to_owned(), Err("percent sign")),
            (
                "artifacts/images%2f%2e%2e/x.png".to_owned(),
                Err("percent sign"),
            ),
            ("run.json%00".to_owned(), Err("percent sign")),
        ];
        for (name, expected) in table {
            let got = list.check(name).map(|_| ()).map_err(|e| e.to_string());
            match expected {
                Ok(()) => assert!(got.is_ok(), "{name:?}: {got:?}"),
                Err(needle) => {
                    let msg = got.expect_err(name);
                    assert!(msg.contains(needle), "{name:?}: {msg:?}");
                }
            }
        }
    }

    /// The MLflow image grammar, both writers' separators, against names
    /// MLflow 3.17 wrote (`+`, `~` for `/`) and MLflow 2 wrote (`%`, `#`).
    #[test]
    fn mlflow_image_names_give_key_and_step() {
        /// A file name and what it parses into: key, step, compressed.
        type Row<'a> = (&'a str, Option<(&'a str, i64, bool)>);
        let table: &[Row<'_>] = &[
            (
                "samples~a+step+2+timestamp+1796653770814+37718422-0e0f-4dbb-be66-a992427dba58.png",
                Some(("samples/a", 2, false)),
            ),
            (
                "samples~a+step+2+timestamp+1796653770814+37718422-0e0f+compressed.webp",
                Some(("samples/a", 2, true)),
            ),
            ("x#y%step%-1%timestamp%5%ab.png", Some(("x/y", -1, false))),
            (
                "my key.v2+step+10+timestamp+5+ab.png",
                Some(("my key.v2", 10, false)),
            ),
            ("a+step+1+timestamp+2+ab.jpg", None),
            ("a+step+1+timestamp+2+ab+compressed.png", None),
            ("a+step+1+timestamp+2.png", None),
            ("a+step+1+timestamp+2+ab+x+compressed.webp", None),
            ("a+step++timestamp+2+ab.png", None),
            ("a+step+99999999999999999999+timestamp+2+ab.png", None),
            ("a%step+1+timestamp+2+ab.png", None),
            ("a/b+step+1+timestamp+2+ab.png", None),
            ("plain.png", None),
        ];
        for (file, expected) in table {
            let got = mlflow_image_name(file);
            let got = got.as_ref().map(|n| (n.key(), n.step, n.compressed));
            let want = expected.map(|(k, s, c)| (k.to_owned(), s, c));
            assert_eq!(got, want, "{file}");
        }
    }
}
