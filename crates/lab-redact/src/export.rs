//! Redaction on the way into a bundle (SPEC §5 "Secrets").

use std::io::{self, Read, Write};

use lab_fs::ArtifactName;
use lab_fs::bundle::ExportFilter;
use serde_json::Value;

use crate::{REDACTED, Redactor, is_secret_name};

/// Largest provenance.json parsed as JSON; a larger one is redacted as text.
const MAX_PROVENANCE: u64 = 16 * 1024 * 1024;
/// Keys whose object value is an environment: only its names survive.
const ENV_KEYS: &[&str] = &["env", "environ", "environment", "env_vars", "envs"];

/// Redacts every text artifact with a [`Redactor`] and re-checks
/// `provenance.json`: environment values are dropped (names kept), values
/// of secret-looking keys become `[REDACTED]`, and every string is redacted.
/// Media (`.mp4`, `.png`, `.jpg`) is copied unchanged.
#[derive(Debug, Clone)]
pub struct RedactingFilter {
    redactor: Redactor,
}

impl RedactingFilter {
    /// A filter using `redactor`.
    pub fn new(redactor: Redactor) -> Self {
        Self { redactor }
    }

    /// Sanitises a provenance document.
    pub fn sanitize(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    let lower = key.to_ascii_lowercase();
                    if ENV_KEYS.contains(&lower.as_str()) {
                        *child = env_names(child);
                    } else if is_secret_name(key) && child.is_string() {
                        *child = Value::String(String::from_utf8_lossy(REDACTED).into_owned());
                    } else {
                        self.sanitize(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.sanitize(v)),
            Value::String(s) => *s = self.redactor.redact_str(s),
            _ => {}
        }
    }

    fn redact_stream(&self, input: &mut dyn Read, output: &mut dyn Write) -> io::Result<()> {
        let mut stream = self.redactor.stream();
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(buf.len());
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            stream.push(&buf[..n], &mut out);
            output.write_all(&out)?;
            out.clear();
        }
        stream.finish(&mut out);
        output.write_all(&out)
    }
}

/// An environment as names only: object keys, or the `NAME` of `NAME=value`
/// strings; anything else is dropped.
fn env_names(value: &Value) -> Value {
    let names: Vec<Value> = match value {
        Value::Object(map) => map.keys().cloned().map(Value::String).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| Value::String(s.split('=').next().unwrap_or_default().to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    Value::Array(names)
}

impl ExportFilter for RedactingFilter {
    fn filter(
        &self,
        name: &ArtifactName,
        input: &mut dyn Read,
        output: &mut dyn Write,
    ) -> io::Result<bool> {
        let file = name.file().to_ascii_lowercase();
        if [".mp4", ".png", ".jpg", ".jpeg"]
            .iter()
            .any(|ext| file.ends_with(ext))
        {
            return Ok(false);
        }
        if file == "provenance.json" {
            let mut text = Vec::new();
            input.take(MAX_PROVENANCE + 1).read_to_end(&mut text)?;
            if text.len() as u64 <= MAX_PROVENANCE
                && let Ok(mut value) = serde_json::from_slice::<Value>(&text)
            {
                self.sanitize(&mut value);
                let pretty = serde_json::to_vec_pretty(&value).map_err(io::Error::other)?;
                output.write_all(&pretty)?;
                output.write_all(b"\n")?;
                return Ok(true);
            }
            let mut rest = io::Cursor::new(text).chain(input);
            self.redact_stream(&mut rest, output)?;
            return Ok(true);
        }
        self.redact_stream(input, output)?;
        Ok(true)
    }
}
