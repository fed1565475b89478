//! lab-protocol is the typed, versioned protocol between the job supervisor
//! (lab-runner) and the sandbox helper (`lab __sandbox`, crate lab-sandbox),
//! and what the kernel reports for it ([`kernel`]).
//!
//! Architecture invariant: this crate is types and pure functions over them
//! — serde and serde_json only, no I/O, no processes, no environment, no
//! other crate of ours. It is the one crate of ours that the privileged
//! helper (lab-sandbox) links, so the helper never links the supervisor
//! (tokio, the registry, cap-std, regex).
//!
//! Both ways typed:
//!
//! - runner → helper, on the helper's stdin: one [`SandboxSpec`] as a JSON
//!   line; then, with user-mode networking, the byte `1` once the job's
//!   network namespace is connected; then at any time the byte `t` (ask
//!   every process of the job to terminate). SIGKILL of the helper ends it
//!   all.
//! - helper → runner, in the report file (outside the run directory): one
//!   [`Report`] per JSON line, as each layer is set up.
//! - `lab __sandbox kernel` prints the [`kernel::KernelFeatures`] the
//!   kernel reports, as JSON; `lab __sandbox pasta PASTA PID` runs pasta
//!   for a helper's namespaces, dying with its parent.
//!
//! ```
//! use lab_protocol::Report;
//!
//! let line = r#"{"stage":"refused","layer":"landlock","error":"ABI 2"}"#;
//! let report: Report = serde_json::from_str(line).unwrap();
//! assert_eq!(
//!     report,
//!     Report::Refused { layer: "landlock".into(), error: "ABI 2".into() }
//! );
//! ```
#![forbid(unsafe_code)]

pub mod kernel;

use std::path::PathBuf;

use serde_json::Value;

/// The protocol version a [`SandboxSpec`] carries; the helper refuses any
/// other.
pub const PROTOCOL_VERSION: u32 = 2;

/// The byte that asks the helper to terminate the job's processes.
pub const TERMINATE: u8 = b't';
/// The byte that tells the helper the job's network namespace is connected.
pub const NETWORK_READY: u8 = b'1';

/// Resource limits for a job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_secs: u64,
    /// Largest file the job may write, bytes (RLIMIT_FSIZE).
    pub file_size: u64,
    /// Open descriptors (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Processes of the job's user inside its namespace (RLIMIT_NPROC).
    pub processes: u64,
    /// Size of the job's private `/tmp` tmpfs, bytes.
    pub tmp_size: u64,
    /// Size of the job's private `/dev/shm` tmpfs, bytes (PyTorch's
    /// DataLoader workers pass batches through it).
    pub shm_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_secs: 3600,
            file_size: 16 << 30,
            open_files: 1024,
            processes: 512,
            tmp_size: 4 << 30,
            shm_size: 8 << 30,
        }
    }
}

/// The job's view of its working directory: an overlay whose lower layer
/// is the project (read-only) and whose upper layer is the run's job
/// directory, so whatever the job writes there lands in the run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Overlay {
    /// The project directory (canonical); also where the overlay is mounted.
    pub lower: PathBuf,
    /// overlayfs's work directory: on the run directory's filesystem,
    /// outside the job directory, removed after the job.
    pub work: PathBuf,
}

/// What the helper needs to run one job.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SandboxSpec {
    /// [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The program to execute: the configured absolute path (a venv's
    /// `bin/python3` stays that venv's python).
    pub program: PathBuf,
    /// argv, `argv[0]` included.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// The run's job directory: the only writable place the job keeps (the
    /// overlay's upper layer when there is a project cwd).
    pub job_dir: PathBuf,
    /// The project cwd, seen through an overlay; `None`: the job starts in
    /// `job_dir`.
    pub cwd: Option<Overlay>,
    /// Readable (and executable) beyond the system directories: the
    /// program's installation, `[runner] read_paths`.
    pub read_only: Vec<PathBuf>,
    /// Device files passed through (read, write, ioctl), beyond the harmless
    /// defaults in [`DEFAULT_DEVICES`].
    pub devices: Vec<PathBuf>,
    /// Where the layers report (JSON lines), outside the run directory.
    pub report: PathBuf,
    /// Whether the job may use IP networking (only `AF_INET`/`AF_INET6`
    /// sockets, in any case).
    pub network: bool,
    /// With `network`: the job gets a network namespace of its own which the
    /// runner connects to the outside with user-mode networking (pasta)
    /// before the job starts; the helper waits for the runner's go-ahead
    /// byte on stdin after the spec line. Without it a job with `network`
    /// is refused: it never shares the host's network namespace.
    pub user_mode_network: bool,
    /// Resource limits.
    pub limits: Limits,
    /// The Landlock ABI the rules are written for ([`kernel::decide`]).
    pub landlock_abi: u32,
    /// The job cgroup's `cgroup.procs` files (one per hierarchy; none when
    /// no limit is configured): the helper writes its pid to each before
    /// it makes its namespaces, so every process of the job is bound.
    #[serde(default)]
    pub cgroup_procs: Vec<PathBuf>,
}

/// System directories every job may read and execute from.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys", "/proc",
];
/// Devices every job gets (read and write).
pub const DEFAULT_DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"];
/// The job's `HOME`, on its private `/tmp`.
pub const JOB_HOME: &str = "/tmp/home";

/// Exit code when the sandbox could not be set up (nothing ran).
pub const REFUSED: i32 = 125;

/// One line of the helper's report: what each layer did.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Report {
    /// The namespaces were made.
    Namespaces {
        /// A user namespace.
        #[serde(default)]
        user_namespace: bool,
        /// A mount namespace.
        #[serde(default)]
        mount_namespace: bool,
        /// A PID namespace.
        #[serde(default)]
        pid_namespace: bool,
        /// A network namespace of its own.
        #[serde(default)]
        network_namespace: bool,
        /// The job's uid inside.
        #[serde(default)]
        uid_inside: u32,
    },
    /// What the network flag gave the job.
    Network {
        /// In words.
        network: String,
    },
    /// The helper joined the job's cgroup(s).
    Cgroup {
        /// How many hierarchies it joined.
        joined: usize,
    },
    /// The namespace's init was started.
    Started,
    /// The job's mounts.
    Mounts {
        /// Each mount, in words.
        mounts: Value,
    },
    /// The layers applied in the job process just before `exec`.
    Job {
        /// Landlock's rules and status.
        #[serde(default)]
        landlock_filesystem: Value,
        /// The seccomp filter, in words.
        #[serde(default)]
        seccomp: String,
        /// `PR_SET_NO_NEW_PRIVS`.
        #[serde(default)]
        no_new_privs: bool,
        /// The capabilities left (none).
        #[serde(default)]
        capabilities: String,
        /// The resource limits.
        #[serde(default)]
        rlimits: Value,
    },
    /// The job ended.
    Exit {
        /// Its exit code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        /// The signal that killed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    /// init was killed (the helper's end).
    Killed {
        /// The signal.
        signal: i32,
    },
    /// A required layer could not be set up: nothing ran.
    Refused {
        /// The layer.
        layer: String,
        /// Why.
        error: String,
    },
    /// The helper hit an error after the job started.
    Helper {
        /// What.
        error: String,
    },
    /// init hit an error.
    Init {
        /// What.
        error: String,
    },
}
