//! Where the store is and who we are: the `[s3]` table, the `AWS_*`
//! environment and the static keys of `~/.aws/credentials` and
//! `~/.aws/config` — never `credential_process`, SSO, web identity, the
//! container endpoint or instance metadata (SPEC §3).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The `[s3]` table of `lab.toml`: where and how, never keys.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The endpoint (`https://…`; `http://` only with `allow_http` and a
    /// loopback host), when neither the environment nor the profile names one.
    pub endpoint: Option<String>,
    /// The region, when neither the environment nor the profile names one.
    pub region: Option<String>,
    /// Allows an `http://` endpoint on a loopback host (off by default).
    pub allow_http: bool,
    /// The most objects one root lists.
    pub max_keys: usize,
    /// How often a root is listed again, in seconds.
    pub relist_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            endpoint: None,
            region: None,
            allow_http: false,
            max_keys: 200_000,
            relist_secs: 30,
        }
    }
}

/// Why the store cannot be configured. Never carries a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn config_error(reason: impl Into<String>) -> ConfigError {
    ConfigError(reason.into())
}

/// Where the credentials came from (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// The profile's static keys in the shared credentials file.
    CredentialsFile,
    /// The profile's static keys in the shared config file.
    ConfigFile,
}

/// Static keys. Never printed: `Debug` is written by hand.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

/// Where the store is and who we are. `Debug` never prints a key.
#[derive(Clone)]
pub struct Resolved {
    endpoint: String,
    region: String,
    allow_http: bool,
    pub(crate) credentials: Credentials,
    source: CredentialSource,
    profile: String,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("credentials", &"[redacted]")
            .field("source", &self.source)
            .field("profile", &self.profile)
            .finish()
    }
}

impl Resolved {
    /// Resolves endpoint, region and static credentials, in this order:
    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`)
    /// in `env`; else the static keys of profile `$AWS_PROFILE` (default
    /// `default`) in `HOME/.aws/credentials`, then `HOME/.aws/config`
    /// (`AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE` honoured). Region:
    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`,
    /// `settings.region`, else `us-east-1`. Endpoint: `AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL`, the profile's `endpoint_url`, `settings.endpoint`,
    /// else `https://s3.REGION.amazonaws.com`; then checked (https, or http
    /// with `allow_http` on a loopback host; no userinfo, path, query or
    /// fragment). Reads files only; runs nothing, asks no metadata service.
    pub fn resolve(
        settings: &Settings,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Resolved, ConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        let aws_dir = home.map(|h| h.join(".aws"));
        let credentials_path = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| aws_dir.as_ref().map(|d| d.join("credentials")));
        let config_path = env("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| aws_dir.as_ref().map(|d| d.join("config")));
        let from_credentials = read_section(credentials_path.as_deref(), &profile, false)?;
        let from_config = read_section(config_path.as_deref(), &profile, true)?;

        let (credentials, source) = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(access_key_id), Some(secret_access_key)) => (
                Credentials {
                    access_key_id,
                    secret_access_key,
                    session_token: env("AWS_SESSION_TOKEN"),
                },
                CredentialSource::Environment,
            ),
            _ => {
                let found = static_keys(from_credentials.as_ref())
                    .map(|c| (c, CredentialSource::CredentialsFile))
                    .or_else(|| {
                        static_keys(from_config.as_ref()).map(|c| (c, CredentialSource::ConfigFile))
                    });
                match found {
                    Some(found) => found,
                    None => {
                        for section in [&from_credentials, &from_config].into_iter().flatten() {
                            if let Some(what) = unsupported(section) {
                                return Err(config_error(format!(
                                    "profile {profile} uses {what}, which the Lab never runs; give static keys"
                                )));
                            }
                        }
                        return Err(config_error(
                            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or static keys in ~/.aws/credentials",
                        ));
                    }
                }
            }
        };

        let profile_value = |key: &str| {
            from_credentials
                .as_ref()
                .and_then(|s| s.get(key).cloned())
                .or_else(|| from_config.as_ref().and_then(|s| s.get(key).cloned()))
                .filter(|v| !v.is_empty())
        };
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| profile_value("region"))
            .or_else(|| settings.region.clone())
            .unwrap_or_else(|| "us-east-1".to_owned());
        if region.is_empty()
            || region.len() > 64
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(config_error(format!("not a region name: {region:?}")));
        }
        let endpoint = env("AWS_ENDPOINT_URL_S3")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| profile_value("endpoint_url"))
            .or_else(|| settings.endpoint.clone())
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = check_endpoint(&endpoint, settings.allow_http)?;
        Ok(Resolved {
            endpoint,
            region,
            allow_http: settings.allow_http,
            credentials,
            source,
            profile,
        })
    }

    /// The endpoint, `scheme://host[:port]` (never userinfo).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Where the credentials came from.
    pub fn source(&self) -> CredentialSource {
        self.source
    }

    /// Whether the endpoint is plain http (checked: loopback only).
    pub fn is_http(&self) -> bool {
        self.endpoint.starts_with("http://")
    }

    /// The secret values (secret key, session token, access key id), for a
    /// caller's redaction list.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = vec![self.credentials.secret_access_key.clone()];
        out.extend(self.credentials.session_token.clone());
        out.push(self.credentials.access_key_id.clone());
        out
    }

    /// A `Resolved` for tests and embedders that hold their own keys; the
    /// endpoint is checked like [`Resolved::resolve`] does.
    pub fn with_static_keys(
        endpoint: &str,
        region: &str,
        allow_http: bool,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<Resolved, ConfigError> {
        if access_key_id.is_empty() || secret_access_key.is_empty() {
            return Err(config_error("an empty access key or secret key"));
        }
        Ok(Resolved {
            endpoint: check_endpoint(endpoint, allow_http)?,
            region: region.to_owned(),
            allow_http,
            credentials: Credentials {
                access_key_id: access_key_id.to_owned(),
                secret_access_key: secret_access_key.to_owned(),
                session_token: None,
            },
            source: CredentialSource::Environment,
            profile: "default".to_owned(),
        })
    }
}

fn static_keys(section: Option<&HashMap<String, String>>) -> Option<Credentials> {
    let section = section?;
    let access_key_id = section.get("aws_access_key_id").filter(|v| !v.is_empty())?;
    let secret_access_key = section
        .get("aws_secret_access_key")
        .filter(|v| !v.is_empty())?;
    Some(Credentials {
        access_key_id: access_key_id.clone(),
        secret_access_key: secret_access_key.clone(),
        session_token: section
            .get("aws_session_token")
            .filter(|v| !v.is_empty())
            .cloned(),
    })
}

/// The credential mechanism a profile names that the Lab never uses.
fn unsupported(section: &HashMap<String, String>) -> Option<&'static str> {
    if section.contains_key("credential_process") {
        Some("credential_process")
    } else if section.keys().any(|k| k.starts_with("sso_")) {
        Some("SSO")
    } else if section.contains_key("web_identity_token_file") {
        Some("web identity")
    } else if section.contains_key("credential_source") {
        Some("credential_source (container or instance metadata)")
    } else if section.contains_key("role_arn") || section.contains_key("source_profile") {
        Some("an assumed role")
    } else {
        None
    }
}

/// The largest shared config file read.
const MAX_FILE: u64 = 1 << 20;

/// The `key = value` pairs of the profile's section of an INI-style AWS
/// file (`[NAME]` in the credentials file; `[profile NAME]`, or
/// `[default]`, in the config file). A missing file is `None`.
fn read_section(
    path: Option<&Path>,
    profile: &str,
    config_file: bool,
) -> Result<Option<HashMap<String, String>>, ConfigError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(config_error(format!("cannot read {}: {e}", path.display())));
        }
        Ok(meta) if meta.len() > MAX_FILE => {
            return Err(config_error(format!(
                "{} is larger than 1 MiB",
                path.display()
            )));
        }
        Ok(_) => std::fs::read_to_string(path)
            .map_err(|e| config_error(format!("cannot read {}: {e}", path.display())))?,
    };
    Ok(parse_section(&text, profile, config_file))
}

pub(crate) fn parse_section(
    text: &str,
    profile: &str,
    config_file: bool,
) -> Option<HashMap<String, String>> {
    let wanted = |header: &str| {
        let header = header.trim();
        if config_file {
            if profile == "default" && header == "default" {
                return true;
            }
            header
                .strip_prefix("profile")
                .filter(|rest| rest.starts_with(char::is_whitespace))
                .is_some_and(|rest| rest.trim() == profile)
        } else {
            header == profile
        }
    };
    let mut found: Option<HashMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = wanted(header);
            if inside {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if !inside {
            continue;
        }
        // Indented lines continue a nested value (`s3 =` sub-sections);
        // they are not keys of the profile.
        if let Some((key, value)) = line.split_once('=')
            && let Some(section) = found.as_mut()
        {
            section.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    found
}

/// Checks an endpoint URL: `https://HOST[:PORT]`, or `http://` when
/// `allow_http` and the host is a loopback literal or `localhost`; no
/// userinfo, path, query or fragment. Returns it as `scheme://host[:port]`.
pub(crate) fn check_endpoint(endpoint: &str, allow_http: bool) -> Result<String, ConfigError> {
    let refuse = |why: &str| config_error(format!("endpoint refused: {why}"));
    if endpoint
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(refuse("a control character, space or backslash"));
    }
    let parsed = url::Url::parse(endpoint).map_err(|_| refuse("not a URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() || endpoint.contains('@') {
        return Err(refuse(
            "user information in the URL (credentials never go in the endpoint)",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(refuse("a query or fragment"));
    }
    if !matches!(parsed.path(), "" | "/") {
        return Err(refuse("a path (give scheme, host and port only)"));
    }
    let host = parsed.host().ok_or_else(|| refuse("no host"))?;
    match parsed.scheme() {
        "https" => {}
        "http" => {
            if !allow_http {
                return Err(refuse(
                    "http:// needs `allow_http = true` in [s3] (and a loopback host)",
                ));
            }
            let loopback = match &host {
                url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
                url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
                url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
            };
            if !loopback {
                return Err(refuse(
                    "http:// is allowed only to a loopback host (127.0.0.0/8, ::1, localhost)",
                ));
            }
        }
        _ => {
            return Err(refuse(
                "the scheme must be https (or http to a loopback host)",
            ));
        }
    }
    let host = match host {
        url::Host::Domain(d) => d.to_owned(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => format!("[{ip}]"),
    };
    Ok(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}
