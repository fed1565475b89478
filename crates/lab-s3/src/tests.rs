//! Endpoint rules, credential precedence and secrecy.
#![cfg(test)]

use std::collections::HashMap;
use std::path::Path;

use object_store::aws::AmazonS3ConfigKey;

use crate::config::check_endpoint;
use crate::{CredentialSource, Error, Resolved, S3Url, Settings, Store};

fn check_endpoint_case(endpoint: &str, allow_http: bool, expected: Option<&str>) {
    let got = check_endpoint(endpoint, allow_http);
    match expected {
        Some(want) => assert_eq!(got.as_deref(), Ok(want), "{endpoint}"),
        None => assert!(got.is_err(), "{endpoint} accepted as {got:?}"),
    }
}

#[test]
fn endpoint_rules() {
    for (endpoint, allow_http, expected) in [
        (
            "https://s3.us-east-1.amazonaws.com",
            false,
            Some("https://s3.us-east-1.amazonaws.com"),
        ),
        (
            "https://minio.example:9000/",
            false,
            Some("https://minio.example:9000"),
        ),
        ("http://127.0.0.1:8333", true, Some("http://127.0.0.1:8333")),
        ("http://127.1.2.3:8333", true, Some("http://127.1.2.3:8333")),
        ("http://localhost", true, Some("http://localhost")),
        ("http://LOCALHOST:9000", true, Some("http://localhost:9000")),
        ("http://[::1]:9000", true, Some("http://[::1]:9000")),
        // http needs allow_http, and then a loopback host.
        ("http://127.0.0.1:8333", false, None),
        ("http://10.0.0.1:9000", true, None),
        ("http://s3.example.com", true, None),
        ("http://127.0.0.1.nip.io", true, None),
        ("http://localhost.evil.com", true, None),
        ("http://[::ffff:10.0.0.1]", true, None),
        ("http://169.254.169.254", true, None),
        ("http://0.0.0.0:9000", true, None),
        // Userinfo, paths, queries and fragments are refused.
        ("https://user:pw@s3.example.com", false, None),
        ("https://user@s3.example.com", false, None),
        ("http://user:pw@127.0.0.1:8333", true, None),
        ("https://s3.example.com/bucket", false, None),
        ("https://s3.example.com/?x=1", false, None),
        ("https://s3.example.com/#f", false, None),
        ("https://s3.example.com\\@evil", false, None),
        ("ftp://s3.example.com", false, None),
        ("file:///etc/passwd", false, None),
        ("s3.example.com", false, None),
        ("", false, None),
        ("https://", false, None),
        ("https://s3.exa mple.com", false, None),
        ("https://s3.example.com\n", false, None),
    ] {
        check_endpoint_case(endpoint, allow_http, expected);
    }
}

/// A HOME with `.aws/credentials` and `.aws/config` as given.
fn home(credentials: Option<&str>, config: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir(dir.path().join(".aws")).expect("mkdir .aws");
    if let Some(text) = credentials {
        std::fs::write(dir.path().join(".aws/credentials"), text).expect("write credentials");
    }
    if let Some(text) = config {
        std::fs::write(dir.path().join(".aws/config"), text).expect("write config");
    }
    dir
}

fn resolve(env: &[(&str, &str)], home: &Path, settings: &Settings) -> Result<Resolved, String> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Resolved::resolve(settings, &|k| env.get(k).cloned(), Some(home)).map_err(|e| e.to_string())
}

const CREDENTIALS: &str = "\
[default]
aws_access_key_id = AKIDCREDFILE
aws_secret_access_key = secret-from-credentials-file

[work]
aws_access_key_id = AKIDWORK
aws_secret_access_key = secret-work
region = eu-west-3
";

const CONFIG: &str = "\
[default]
region = eu-central-1
aws_access_key_id = AKIDCONFIG
aws_secret_access_key = secret-from-config-file
endpoint_url = https://config.example:9000

[profile cfgonly]
aws_access_key_id = AKIDCFGONLY
aws_secret_access_key = secret-cfgonly

[profile proc]
credential_process = /usr/bin/steal-everything

[profile sso]
sso_start_url = https://example.awsapps.com/start
sso_region = us-east-1

[profile imds]
credential_source = Ec2InstanceMetadata
";

#[test]
fn environment_keys_come_first() {
    let home = home(Some(CREDENTIALS), Some(CONFIG));
    let r = resolve(
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "secret-env"),
            ("AWS_SESSION_TOKEN", "token-env"),
        ],
        home.path(),
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(r.source(), CredentialSource::Environment);
    assert_eq!(r.secrets(), ["secret-env", "token-env", "AKIDENV"]);
    // The default profile's region and endpoint still apply.
    assert_eq!(r.region(), "eu-central-1");
    assert_eq!(r.endpoint(), "https://config.example:9000");
}

#[test]
fn the_credentials_file_comes_before_the_config_file() {
    let home = home(Some(CREDENTIALS), Some(CONFIG));
    let r = resolve(&[], home.path(), &Settings::default()).unwrap();
    assert_eq!(r.source(), CredentialSource::CredentialsFile);
    assert_eq!(
        r.secrets(),
        ["secret-from-credentials-file", "AKIDCREDFILE"]
    );
    // Half the environment's keys is not a credential.
    let r = resolve(
        &[("AWS_ACCESS_KEY_ID", "AKIDENV")],
        home.path(),
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(r.source(), CredentialSource::CredentialsFile);
}

#[test]
fn the_config_file_is_used_when_the_credentials_file_has_no_keys() {
    let home = home(None, Some(CONFIG));
    let r = resolve(&[], home.path(), &Settings::default()).unwrap();
    assert_eq!(r.source(), CredentialSource::ConfigFile);
    assert_eq!(r.secrets(), ["secret-from-config-file", "AKIDCONFIG"]);
    let r = resolve(
        &[("AWS_PROFILE", "cfgonly")],
        home.path(),
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(r.secrets(), ["secret-cfgonly", "AKIDCFGONLY"]);
    // `[cfgonly]` in the config file is not `[profile cfgonly]`.
    let home = home_with_config("[cfgonly]\naws_access_key_id = A\naws_secret_access_key = B\n");
    let r = resolve(
        &[("AWS_PROFILE", "cfgonly")],
        home.path(),
        &Settings::default(),
    );
    assert!(r.unwrap_err().starts_with("no credentials"));
}

fn home_with_config(config: &str) -> tempfile::TempDir {
    home(None, Some(config))
}

#[test]
fn aws_profile_picks_the_section() {
    let home = home(Some(CREDENTIALS), Some(CONFIG));
    let r = resolve(
        &[("AWS_PROFILE", "work")],
        home.path(),
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(r.secrets(), ["secret-work", "AKIDWORK"]);
    assert_eq!(r.region(), "eu-west-3");
    assert_eq!(r.endpoint(), "https://s3.eu-west-3.amazonaws.com");
}

#[test]
fn shared_file_locations_are_honoured() {
    let elsewhere = home(Some(CREDENTIALS), None);
    let empty = home(None, None);
    let path = elsewhere.path().join(".aws/credentials");
    let r = resolve(
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", path.to_str().unwrap()),
            ("AWS_PROFILE", "work"),
        ],
        empty.path(),
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(r.secrets(), ["secret-work", "AKIDWORK"]);
    let config_home = home(None, Some(CONFIG));
    let path = config_home.path().join(".aws/config");
    let r = resolve(
        &[("AWS_CONFIG_FILE", path.to_str().unwrap())],
        empty.path(),
        &Settings::default(),
    )
    .unwrap();
    assert_eq!(r.source(), CredentialSource::ConfigFile);
}

#[test]
fn credential_process_sso_and_metadata_profiles_are_refused() {
    let home = home(Some(CREDENTIALS), Some(CONFIG));
    for (profile, what) in [
        (
            "proc",
            "profile proc uses credential_process, which the Lab never runs; give static keys",
        ),
        (
            "sso",
            "profile sso uses SSO, which the Lab never runs; give static keys",
        ),
        (
            "imds",
            "profile imds uses credential_source (container or instance metadata), which the Lab never runs; give static keys",
        ),
    ] {
        let err = resolve(
            &[("AWS_PROFILE", profile)],
            home.path(),
            &Settings::default(),
        )
        .unwrap_err();
        assert_eq!(err, what);
    }
}

#[test]
fn no_credentials_anywhere_is_an_error() {
    let home = home(None, None);
    let err = resolve(
        &[("AWS_REGION", "us-west-2")],
        home.path(),
        &Settings::default(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or static keys in ~/.aws/credentials"
    );
    let err = Resolved::resolve(&Settings::default(), &|_| None, None).unwrap_err();
    assert!(err.to_string().starts_with("no credentials"));
}

#[test]
fn region_and_endpoint_precedence() {
    let home = home(None, None);
    let keys = [("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "B")];
    let settings = Settings {
        endpoint: Some("http://127.0.0.1:8333".to_owned()),
        region: Some("ap-south-1".to_owned()),
        allow_http: true,
        ..Settings::default()
    };
    let r = resolve(&keys, home.path(), &settings).unwrap();
    assert_eq!(
        (r.region(), r.endpoint()),
        ("ap-south-1", "http://127.0.0.1:8333")
    );
    let mut env = keys.to_vec();
    env.push(("AWS_DEFAULT_REGION", "us-west-1"));
    env.push(("AWS_ENDPOINT_URL", "http://localhost:1"));
    let r = resolve(&env, home.path(), &settings).unwrap();
    assert_eq!(
        (r.region(), r.endpoint()),
        ("us-west-1", "http://localhost:1")
    );
    env.push(("AWS_REGION", "us-west-2"));
    env.push(("AWS_ENDPOINT_URL_S3", "http://[::1]:2"));
    let r = resolve(&env, home.path(), &settings).unwrap();
    assert_eq!((r.region(), r.endpoint()), ("us-west-2", "http://[::1]:2"));
    let r = resolve(&keys, home.path(), &Settings::default()).unwrap();
    assert_eq!(
        (r.region(), r.endpoint()),
        ("us-east-1", "https://s3.us-east-1.amazonaws.com")
    );
    // An http endpoint without allow_http, or off loopback, is refused.
    let err = resolve(
        &[
            keys[0],
            keys[1],
            ("AWS_ENDPOINT_URL", "http://10.1.1.1:9000"),
        ],
        home.path(),
        &settings,
    );
    assert!(err.unwrap_err().contains("loopback"));
}

#[test]
fn settings_parse_with_defaults_and_refuse_unknown_keys() {
    let s: Settings =
        toml::from_str("endpoint = \"http://127.0.0.1:1\"\nallow_http = true\n").unwrap();
    assert_eq!(s.max_keys, 200_000);
    assert_eq!(s.relist_secs, 30);
    assert!(s.allow_http);
    assert!(toml::from_str::<Settings>("aws_secret_access_key = \"x\"\n").is_err());
}

pub(crate) const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
pub(crate) const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const TOKEN: &str = "FwoGZXIvYXdzEXAMPLETOKEN";

#[test]
fn secrets_never_appear_in_display_or_debug() {
    let home = home(None, None);
    let r = resolve(
        &[
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", TOKEN),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ],
        home.path(),
        &Settings {
            allow_http: true,
            ..Settings::default()
        },
    )
    .unwrap();
    let url = S3Url::parse("s3://bucket/prefix").unwrap();
    let store = Store::new(&url, &r, &Settings::default()).unwrap();
    let mut texts = vec![
        format!("{r:?}"),
        format!("{store:?}"),
        format!("{:?}", store.stream("x", 0, 1, "e")),
    ];
    let errors = [
        Error::InvalidKey("an empty key"),
        Error::NotFound,
        Error::Changed,
        Error::Denied("access denied".to_owned()),
        Error::NoSuchBucket,
        Error::Unreachable("connection refused".to_owned()),
        Error::TimedOut,
        Error::Other("x".to_owned()),
    ];
    for e in &errors {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
    }
    // Real failures: nothing listens on port 9.
    for e in [
        store.probe().unwrap_err(),
        store.head("a").unwrap_err(),
        store.get_range("a", 0, 1, None).unwrap_err(),
    ] {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
    }
    let config_errors = [
        resolve(
            &[("AWS_ACCESS_KEY_ID", KEY_ID)],
            home.path(),
            &Settings::default(),
        )
        .unwrap_err(),
        crate::config::check_endpoint(&format!("https://{KEY_ID}:{SECRET}@example.com"), false)
            .unwrap_err()
            .to_string(),
    ];
    texts.extend(config_errors);
    for text in &texts {
        for secret in [SECRET, KEY_ID, TOKEN] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    assert!(format!("{r:?}").contains("127.0.0.1:9"));
}

#[test]
fn the_client_is_never_pointed_at_instance_metadata() {
    let r =
        Resolved::with_static_keys("https://s3.example.com", "us-east-1", false, KEY_ID, SECRET)
            .unwrap();
    let url = S3Url::parse("s3://bucket/prefix").unwrap();
    let b = crate::store::builder(&url, &r, None);
    let value = |k: AmazonS3ConfigKey| b.get_config_value(&k);
    // Static keys are always given: object_store then never builds the
    // instance, container, EKS or web identity providers.
    assert_eq!(
        value(AmazonS3ConfigKey::AccessKeyId).as_deref(),
        Some(KEY_ID)
    );
    assert_eq!(
        value(AmazonS3ConfigKey::SecretAccessKey).as_deref(),
        Some(SECRET)
    );
    for key in [
        AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
        AmazonS3ConfigKey::ContainerCredentialsFullUri,
        AmazonS3ConfigKey::ContainerAuthorizationTokenFile,
        AmazonS3ConfigKey::WebIdentityTokenFile,
        AmazonS3ConfigKey::RoleArn,
    ] {
        assert_eq!(value(key), None, "{key:?}");
    }
    for key in [
        AmazonS3ConfigKey::MetadataEndpoint,
        AmazonS3ConfigKey::Endpoint,
    ] {
        assert!(!value(key).unwrap_or_default().contains("169.254"));
    }
    assert_eq!(
        value(AmazonS3ConfigKey::Endpoint).as_deref(),
        Some("https://s3.example.com")
    );
    assert_eq!(
        value(AmazonS3ConfigKey::VirtualHostedStyleRequest).as_deref(),
        Some("false")
    );
    // No keys, no Resolved: nothing is built, nothing is asked.
    assert!(Resolved::resolve(&Settings::default(), &|_| None, None).is_err());
    assert!(
        Resolved::with_static_keys("https://s3.example.com", "us-east-1", false, "", "").is_err()
    );
}

#[test]
fn keys_outside_the_root_are_refused_before_any_request() {
    let r = Resolved::with_static_keys("http://127.0.0.1:9", "us-east-1", true, KEY_ID, SECRET)
        .unwrap();
    let store = Store::new(
        &S3Url::parse("s3://bucket/prefix").unwrap(),
        &r,
        &Settings::default(),
    )
    .unwrap();
    for bad in ["", "/x", "../x", "a/../../x", "a//b", "a/", ".", "a\0b"] {
        assert!(
            matches!(store.head(bad), Err(Error::InvalidKey(_))),
            "{bad:?}"
        );
        assert!(
            matches!(store.get_range(bad, 0, 1, None), Err(Error::InvalidKey(_))),
            "{bad:?}"
        );
        if !bad.is_empty() {
            assert!(
                matches!(store.list_dir(bad, 1), Err(Error::InvalidKey(_))),
                "{bad:?}"
            );
        }
    }
}

#[test]
fn a_byte_stream_is_send_unpin_and_static() {
    fn check<
        T: futures_core::Stream<Item = Result<bytes::Bytes, Error>> + Send + Unpin + 'static,
    >() {
    }
    check::<crate::ByteStream>();
    fn clone_send<T: Clone + Send + Sync + 'static>() {}
    clone_send::<Store>();
    clone_send::<Error>();
}
