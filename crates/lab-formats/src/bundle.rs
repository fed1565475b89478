//! What a bundle adds so its media and tables keep their keys and steps:
//! `media.json` (`{"media": [{"name", "kind", "key", "step"}], "tables":
//! [{"name", "key", "step"}]}`), written by [`crate::lab_form`] from the
//! source run's media and tables the bundle holds, and read back by the
//! Lab reader, which applies it to the artifacts present; and a
//! TensorBoard run's embedded images, materialised as
//! `images/<tag>_<step>_<n>.png` files of their own.
//!
//! `media.json` is a run's file like any other: hostile. It is read only
//! up to [`MAX_MEDIA_JSON`] bytes and [`MAX_ENTRIES`] entries of each
//! list; a name not on the Lab's allowlist, not a regular file of the run,
//! or of a kind other than video or image is ignored.

use serde_json::{Value, json};

use crate::storage::{Storage, StorageError, Version};
use crate::{Media, RunInfo, TableRef};

/// The bundle file holding each media file's and table's key and step.
pub(crate) const MEDIA_JSON: &str = "media.json";
/// Largest `media.json` read.
pub(crate) const MAX_MEDIA_JSON: u64 = 4 << 20;
/// Most media entries, and most table entries, read from it.
pub(crate) const MAX_ENTRIES: usize = 10_000;
/// Largest embedded image carried into a bundle.
pub(crate) const MAX_IMAGE_BYTES: usize = 16 << 20;
/// Most bytes of embedded images one bundle carries, all together.
pub(crate) const MAX_IMAGES_BYTES: usize = 256 << 20;
/// Most embedded images one bundle carries.
pub(crate) const MAX_IMAGES: usize = 2_000;
/// Longest tag kept in a materialised image's name.
const MAX_TAG_IN_NAME: usize = 64;

/// The media of `info` a bundle would not hold otherwise, each as a file
/// of its own under a name the Lab serves (`images/<key>_<step>_<n>.png`,
/// `.jpg`, `.gif`; `videos/…mp4`, `.webm`) with its entry for
/// `media.json`: a TensorBoard run's embedded images, read again from its
/// event files ([`crate::tensorboard_image`]: CRCs checked, a PNG only),
/// and files the source run serves (`serves`) under a name the bundle
/// does not carry (`has`), read through `storage`. Only bytes whose magic
/// says PNG, JPEG, GIF, MP4 or WebM are carried, at most [`MAX_IMAGES`]
/// files of at most [`MAX_IMAGE_BYTES`] each and [`MAX_IMAGES_BYTES`]
/// together; how many were left out (unreadable, of another kind, over a
/// cap) is the second value. Never a name the bundle holds.
pub(crate) fn carried_media(
    storage: &dyn Storage,
    info: &RunInfo,
    has: &dyn Fn(&str) -> bool,
    serves: &dyn Fn(&str) -> bool,
) -> (Vec<(String, Vec<u8>, Media)>, usize) {
    let mut out: Vec<(String, Vec<u8>, Media)> = Vec::new();
    let mut total = 0usize;
    let mut left_out = 0usize;
    for media in &info.media {
        if !media.embedded && (has(&media.artifact) || !serves(&media.artifact)) {
            continue;
        }
        // Nothing more is read once the files or bytes carried reach
        // their caps; a file is read only when its length fits what is
        // left.
        let room = MAX_IMAGES_BYTES.saturating_sub(total).min(MAX_IMAGE_BYTES);
        if out.len() >= MAX_IMAGES || room == 0 {
            left_out += 1;
            continue;
        }
        let bytes = if media.embedded {
            read_embedded(storage, &media.artifact)
        } else {
            read_file(storage, &media.artifact, room)
        };
        let Some((bytes, dir, ext)) = bytes.and_then(|b| {
            let (dir, ext) = kind_of(&b)?;
            Some((b, dir, ext))
        }) else {
            left_out += 1;
            continue;
        };
        if bytes.len() > MAX_IMAGE_BYTES || total + bytes.len() > MAX_IMAGES_BYTES {
            left_out += 1;
            continue;
        }
        total += bytes.len();
        let tag = safe_tag(media.key.as_deref().unwrap_or(dir));
        let step = media.step.map_or_else(|| "x".to_owned(), |s| s.to_string());
        let mut n = 0usize;
        let name = loop {
            let name = format!("{dir}/{tag}_{step}_{n}.{ext}");
            if !has(&name) && !out.iter().any(|(taken, _, _)| *taken == name) {
                break name;
            }
            n += 1;
        };
        let entry = Media {
            artifact: name.clone(),
            kind: if dir == "videos" { "video" } else { "image" },
            step: media.step,
            key: media.key.clone(),
            embedded: false,
            url: None,
        };
        out.push((name, bytes, entry));
    }
    (out, left_out)
}

/// Where a media file of these bytes goes, and its extension, by magic.
fn kind_of(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("images", "png"))
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some(("images", "jpg"))
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(("images", "gif"))
    } else if bytes.get(4..8) == Some(b"ftyp") {
        Some(("videos", "mp4"))
    } else if bytes.starts_with(b"\x1a\x45\xdf\xa3") {
        Some(("videos", "webm"))
    } else {
        None
    }
}

/// A media file of the run, if a regular file of at most `max` bytes: its
/// length looked at first, then one byte more read than it may hold (a
/// file that grew in between is left out), pinned to what was looked at.
fn read_file(storage: &dyn Storage, name: &str, max: usize) -> Option<Vec<u8>> {
    let stat = storage.stat(name).ok()?;
    if stat.len > max as u64 {
        return None;
    }
    let bytes = storage
        .read_range(name, 0, max + 1, Some(&stat.version))
        .ok()?;
    (bytes.len() <= max).then_some(bytes)
}

/// `FILE/OFFSET/N` (an embedded image's artifact) read again.
fn read_embedded(storage: &dyn Storage, artifact: &str) -> Option<Vec<u8>> {
    let mut parts = artifact.rsplitn(3, '/');
    let n = parts.next()?.parse().ok()?;
    let offset = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    crate::tensorboard_image(storage, file, offset, n).ok()
}

/// A tag as a file name's part: ASCII letters, digits, `-` and `_` kept,
/// anything else `_`, at most [`MAX_TAG_IN_NAME`] characters.
fn safe_tag(tag: &str) -> String {
    let safe: String = tag
        .chars()
        .take(MAX_TAG_IN_NAME)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "image".to_owned()
    } else {
        safe
    }
}

/// `media.json` for a bundle: every non-embedded media file and table of
/// `info` the bundle holds (`has`), and `extra` (materialised images).
pub(crate) fn media_json(
    info: &RunInfo,
    extra: &[Media],
    left_out: usize,
    has: &dyn Fn(&str) -> bool,
) -> Option<Vec<u8>> {
    let media: Vec<Value> = info
        .media
        .iter()
        .filter(|m| !m.embedded && has(&m.artifact))
        .chain(extra)
        .map(|m| json!({"name": m.artifact, "kind": m.kind, "key": m.key, "step": m.step}))
        .collect();
    let tables: Vec<Value> = info
        .tables
        .iter()
        .filter(|t| has(&t.artifact))
        .map(|t| json!({"name": t.artifact, "key": t.key, "step": t.step}))
        .collect();
    if media.is_empty() && tables.is_empty() && left_out == 0 {
        return None;
    }
    let mut doc = json!({"media": media, "tables": tables});
    if left_out > 0 {
        // Images that could not be carried (unreadable, over a cap).
        doc["left_out"] = Value::from(left_out);
    }
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    Some(bytes)
}

/// What a bundle's `media.json` says, as the Lab reader keeps it.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// The version of `media.json` read (it is read again only when it
    /// changed).
    version: Option<Version>,
    media: Vec<Media>,
    tables: Vec<TableRef>,
    error: Option<String>,
}

impl Applied {
    /// Reads `media.json` again if it changed since the last call.
    pub(crate) fn refresh(&mut self, storage: &dyn Storage) {
        let version = match storage.stat(MEDIA_JSON) {
            Ok(stat) => stat.version,
            Err(StorageError::NotFound) => {
                *self = Applied::default();
                return;
            }
            Err(e) => {
                *self = Applied {
                    error: Some(format!("{MEDIA_JSON}: {e}")),
                    ..Applied::default()
                };
                return;
            }
        };
        if self.version.as_ref() == Some(&version) {
            return;
        }
        *self = Applied::default();
        match crate::lab::read_small(storage, MEDIA_JSON, MAX_MEDIA_JSON) {
            Ok(Some(text)) => match serde_json::from_str::<Value>(&text) {
                Ok(doc) => self.apply(storage, &doc),
                Err(e) => self.error = Some(format!("{MEDIA_JSON}: {e}")),
            },
            Ok(None) => {}
            Err(e) => self.error = Some(e),
        }
        self.version = Some(version);
    }

    fn apply(&mut self, storage: &dyn Storage, doc: &Value) {
        // A name on the Lab's allowlist that is a regular file of the run.
        let present = |entry: &Value| -> Option<String> {
            let name = entry.get("name")?.as_str()?;
            if !crate::local::lab_serves(name) {
                return None;
            }
            storage.stat(name).ok()?;
            Some(name.to_owned())
        };
        let key = |entry: &Value| {
            entry
                .get("key")
                .and_then(Value::as_str)
                .map(crate::text::cap)
        };
        let step = |entry: &Value| entry.get("step").and_then(Value::as_i64);
        let list = |field: &str| {
            doc.get(field)
                .and_then(Value::as_array)
                .map(|a| a.iter().take(MAX_ENTRIES).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        for entry in list("media") {
            let kind = match entry.get("kind").and_then(Value::as_str) {
                Some("video") => "video",
                Some("image") => "image",
                _ => continue,
            };
            let Some(name) = present(entry) else {
                continue;
            };
            if self.media.iter().any(|m| m.artifact == name) {
                continue;
            }
            self.media.push(Media {
                artifact: name,
                kind,
                step: step(entry),
                key: key(entry),
                embedded: false,
                url: None,
            });
        }
        // Media its source had that the bundle could not carry: said, as
        // an error of the reimported run.
        if let Some(n) = doc
            .get("left_out")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
        {
            self.error = Some(format!(
                "{MEDIA_JSON}: {n} media of the source run could not be carried \
                 into its bundle (unreadable, of another kind, or over a cap)"
            ));
        }
        for entry in list("tables") {
            let Some(name) = present(entry) else {
                continue;
            };
            if self.tables.iter().any(|t| t.artifact == name) {
                continue;
            }
            self.tables.push(TableRef {
                artifact: name,
                key: key(entry),
                step: step(entry),
            });
        }
    }

    /// Adds what was read to `info`.
    pub(crate) fn merge_into(&self, info: &mut RunInfo) {
        info.media.extend(self.media.iter().cloned());
        info.tables.extend(self.tables.iter().cloned());
        info.errors.extend(self.error.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::tests::Memory;

    fn applied(memory: &Memory) -> RunInfo {
        let mut applied = Applied::default();
        applied.refresh(memory);
        let mut info = RunInfo::default();
        applied.merge_into(&mut info);
        info
    }

    /// Entries for files present and allowlisted are kept with their key
    /// and step; a name absent, off the allowlist, escaping, or of an
    /// unknown kind is ignored.
    #[test]
    fn media_json_applies_to_the_allowlisted_files_present_only() {
        let memory = Memory::default();
        memory.put("files/media/images/a_1_x.png", b"png");
        memory.put("files/media/table/t_0_x.table.json", b"{}");
        memory.put("secret.txt", b"no");
        memory.put(
            MEDIA_JSON,
            br#"{"media": [
                {"name": "files/media/images/a_1_x.png", "kind": "image", "key": "a", "step": 7},
                {"name": "files/media/images/gone.png", "kind": "image", "key": "g", "step": 1},
                {"name": "secret.txt", "kind": "image", "key": "s", "step": 1},
                {"name": "../x.png", "kind": "image"},
                {"name": "files/media/images/a_1_x.png", "kind": "script"}
            ], "tables": [
                {"name": "files/media/table/t_0_x.table.json", "key": "preds", "step": 3},
                {"name": "secret.txt", "key": "s"}
            ]}"#,
        );
        let info = applied(&memory);
        assert_eq!(info.errors, Vec::<String>::new());
        assert_eq!(
            info.media
                .iter()
                .map(|m| (m.artifact.as_str(), m.kind, m.key.as_deref(), m.step))
                .collect::<Vec<_>>(),
            [("files/media/images/a_1_x.png", "image", Some("a"), Some(7))]
        );
        assert_eq!(
            info.tables,
            [TableRef {
                artifact: "files/media/table/t_0_x.table.json".to_owned(),
                key: Some("preds".to_owned()),
                step: Some(3),
            }]
        );
    }

    /// A `media.json` that is not JSON, or over its cap, is an error of
    /// the run; the rest still reads.
    #[test]
    fn a_bad_or_huge_media_json_is_an_error_not_a_failure() {
        let memory = Memory::default();
        memory.put(MEDIA_JSON, b"{not json");
        let info = applied(&memory);
        assert_eq!(info.errors.len(), 1, "{:?}", info.errors);
        let huge = vec![b' '; MAX_MEDIA_JSON as usize + 1];
        memory.put(MEDIA_JSON, &huge);
        let info = applied(&memory);
        assert!(info.errors[0].contains("larger than"), "{:?}", info.errors);
        assert!(info.media.is_empty());
        // Media the source had that its bundle could not carry: said.
        memory.put(MEDIA_JSON, br#"{"media": [], "left_out": 2}"#);
        let info = applied(&memory);
        assert_eq!(info.errors.len(), 1, "{:?}", info.errors);
        assert!(info.errors[0].contains("2 media"), "{:?}", info.errors);
    }

    fn media(name: &str, key: &str, step: Option<i64>) -> Media {
        Media {
            artifact: name.to_owned(),
            kind: "image",
            step,
            key: Some(key.to_owned()),
            embedded: false,
            url: None,
        }
    }

    /// Only files the source serves and the bundle would not hold are
    /// carried, and only when their bytes are a PNG, JPEG, GIF, MP4 or
    /// WebM: a text file named like an image (a secret) is left out, and
    /// said to be; a name the bundle holds is never taken.
    #[test]
    fn only_served_media_whose_magic_says_so_is_carried() {
        let memory = Memory::default();
        memory.put("plots/a.png", b"\x89PNG\r\n\x1a\nrest");
        memory.put("plots/b.jpg", b"\xff\xd8\xffrest");
        memory.put("plots/secret.png", b"AWS_SECRET=abc");
        memory.put("plots/unserved.png", b"\x89PNG\r\n\x1a\n");
        memory.put("images/held.png", b"\x89PNG\r\n\x1a\n");
        let info = RunInfo {
            media: vec![
                media("plots/a.png", "loss curve", Some(3)),
                media("plots/b.jpg", "batch", None),
                media("plots/secret.png", "s", Some(1)),
                media("plots/unserved.png", "u", Some(1)),
                media("images/held.png", "h", Some(1)),
            ],
            ..RunInfo::default()
        };
        let has = |n: &str| n == "images/held.png" || n == "images/loss_curve_3_0.png";
        let serves = |n: &str| n != "plots/unserved.png";
        let (carried, left_out) = carried_media(&memory, &info, &has, &serves);
        let names: Vec<(&str, Option<&str>, Option<i64>)> = carried
            .iter()
            .map(|(n, _, m)| (n.as_str(), m.key.as_deref(), m.step))
            .collect();
        assert_eq!(
            names,
            [
                ("images/loss_curve_3_1.png", Some("loss curve"), Some(3)),
                ("images/batch_x_0.jpg", Some("batch"), None),
            ]
        );
        assert_eq!(left_out, 1);
        let json = media_json(
            &info,
            &carried
                .iter()
                .map(|(_, _, m)| m.clone())
                .collect::<Vec<_>>(),
            left_out,
            &has,
        )
        .unwrap();
        let doc: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(doc["left_out"], 1);
        assert_eq!(doc["media"].as_array().unwrap().len(), 3, "{doc}");
    }

    /// Tags become safe file-name parts.
    #[test]
    fn tags_become_safe_names() {
        assert_eq!(safe_tag("train/sample img"), "train_sample_img");
        assert_eq!(safe_tag(""), "image");
        assert_eq!(safe_tag("../..").as_str(), "_____");
        assert_eq!(safe_tag(&"x".repeat(500)).len(), MAX_TAG_IN_NAME);
    }
}
