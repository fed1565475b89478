//! `lab`: parse arguments, build the library objects, run, map errors to an
//! exit code. Nothing else lives here.
#![forbid(unsafe_code)]

mod config;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::config::FileConfig;

const DEFAULT_PORT: u16 = 7878;

/// Lab: browse, watch, compare and export experiment runs, safely, from a
/// browser on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "lab", version, about, max_term_width = 100)]
struct Cli {
    /// Where the registry, exports and job runs live
    /// [default: $XDG_DATA_HOME/lab or ~/.local/share/lab]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Config file [default: lab.toml in the data dir, if present]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// An allowed import root (repeatable); run directories directly under
    /// it are imported when the server starts
    #[arg(long = "root", global = true, value_name = "DIR")]
    roots: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the Lab's web UI and API
    Serve(ServeArgs),
    /// Register a run directory (it must lie under an allowed root)
    Import {
        /// The run directory
        dir: PathBuf,
        /// Run id to use instead of a generated one ([a-z0-9][a-z0-9-]{0,63})
        #[arg(long)]
        id: Option<String>,
    },
    /// List registered runs
    Runs,
    /// Forget a run (its files are never touched)
    Forget {
        /// The run id
        id: String,
    },
    /// Export a run as a bundle (a tar of its allowlisted artifacts, redacted,
    /// with a checksummed MANIFEST.json) into DATA_DIR/exports
    Export {
        /// The run id
        id: String,
        /// Bundle name ([A-Za-z0-9._-], at most 100 characters; `.tar` is
        /// added) [default: RUNID-YYYYMMDD-HHMMSS]
        #[arg(long)]
        name: Option<String>,
    },
    /// Unpack a bundle into a new run directory under DIR (an allowed root or
    /// a directory under one), verify it, and register the run
    ImportBundle {
        /// The bundle file
        file: PathBuf,
        /// Where to create the run directory (named after the source run)
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
    },
    /// Run a program from the [runner] programs allowlist in the sandbox
    /// (no network, writes only to its new run directory under
    /// DATA_DIR/runs/), with redacted logs and provenance
    Run {
        /// A workflow file (TOML, under an allowed root): its steps run in
        /// order in one job
        #[arg(long)]
        workflow: Option<PathBuf>,
        /// Pass this allowlisted environment variable (repeatable)
        #[arg(long = "env", value_name = "NAME")]
        env: Vec<String>,
        /// Kill the job and everything it started after this many seconds
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        timeout: u64,
        /// Let the job use the network
        #[arg(long)]
        runner_allow_network: bool,
        /// Allow the workflow's exec hooks (steps with `exec = true`)...
        #[arg(long)]
        runner_allow_workflow_exec: bool,
        /// ...and confirm running them; both are needed
        #[arg(long)]
        confirm_exec_hooks: bool,
        /// Program and arguments, after `--`
        #[arg(last = true, value_name = "PROGRAM ARGS")]
        argv: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port), or unix:PATH for a
    /// Unix socket (mode 0600, in a 0700 directory) [default: 127.0.0.1:7878]
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Also write the access key to PATH (created exclusively, mode 0600,
    /// removed at shutdown), for scripts
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Allow a non-loopback --bind (exposes the Lab to the network)
    #[arg(long)]
    allow_external: bool,
    /// Extra Host header value to accept, e.g. behind a reverse proxy (repeatable)
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
    /// Enable the sandboxed runner
    #[arg(long)]
    enable_runner: bool,
    /// Let runner jobs use the network
    #[arg(long)]
    runner_allow_network: bool,
    /// Let workflows run exec hooks (each job must still confirm)
    #[arg(long)]
    runner_allow_workflow_exec: bool,
}

fn main() -> ExitCode {
    // The sandbox helper is this binary re-executed; it parses nothing else.
    if std::env::args_os().nth(1).is_some_and(|a| a == "__sandbox") {
        lab_sandbox::helper_main();
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("lab: error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// What every command shares: the data dir, the config, the allowed roots.
struct Setup {
    data_dir: PathBuf,
    config: FileConfig,
    roots: Vec<PathBuf>,
    /// The values of the Lab's own secret-looking environment variables,
    /// read once here and passed to every redactor.
    lab_secrets: Vec<Vec<u8>>,
}

fn context(cli: &Cli) -> anyhow::Result<Setup> {
    let data_dir = match &cli.data_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir()?,
    };
    if data_dir.exists() && !data_dir.is_dir() {
        bail!("data dir {} is not a directory", data_dir.display());
    }
    let config = match &cli.config {
        Some(file) => FileConfig::load(file, true)?,
        None => FileConfig::load(&data_dir.join("lab.toml"), false)?,
    };
    let mut roots = cli.roots.clone();
    roots.extend(config.roots.iter().cloned());
    Ok(Setup {
        data_dir,
        config,
        roots,
        lab_secrets: lab_redact::secret_values(std::env::vars_os()),
    })
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("lab"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/lab")),
        None => bail!("cannot find a data directory: set --data-dir, XDG_DATA_HOME or HOME"),
    }
}

/// The registry, with `DATA_DIR/runs` (where jobs run) always an allowed root.
fn open_registry(ctx: &Setup) -> anyhow::Result<lab_registry::Registry> {
    let layout = lab_registry::DataDir::new(&ctx.data_dir);
    layout
        .ensure()
        .with_context(|| format!("creating the data dir {}", ctx.data_dir.display()))?;
    let mut roots = ctx.roots.clone();
    roots.push(layout.runs());
    Ok(lab_registry::Registry::open(&ctx.data_dir, &roots)?)
}

/// The runner settings: allowlists from the config file, the network switch
/// from the command line only.
fn runner_config(
    ctx: &Setup,
    allow_network: bool,
    allow_workflow_exec: bool,
    timeout: u64,
) -> anyhow::Result<lab_runner::RunnerConfig> {
    let runner = &ctx.config.runner;
    let defaults = lab_runner::Limits::default();
    let mut read_paths = Vec::new();
    for path in &runner.read_paths {
        read_paths.push(std::fs::canonicalize(path).with_context(|| {
            format!(
                "[runner] read_paths entry {} in the config file",
                path.display()
            )
        })?);
    }
    Ok(lab_runner::RunnerConfig {
        programs: runner.programs.clone(),
        env_allow: runner.env_allow.clone(),
        allow_network,
        allow_workflow_exec,
        limits: lab_runner::Limits {
            tmp_size: runner.tmp_size.unwrap_or(defaults.tmp_size),
            shm_size: runner.shm_size.unwrap_or(defaults.shm_size),
            ..defaults
        },
        helper: std::env::current_exe().context("locating the lab binary")?,
        default_timeout: std::time::Duration::from_secs(timeout),
        read_paths,
        devices: runner.devices.clone(),
        log_max_bytes: runner
            .log_max_bytes
            .unwrap_or(lab_runner::runner::DEFAULT_LOG_MAX_BYTES),
        lab_secrets: ctx.lab_secrets.clone(),
        data_dir: std::fs::create_dir_all(&ctx.data_dir)
            .and_then(|()| std::fs::canonicalize(&ctx.data_dir))
            .ok(),
    })
}

/// `lab run -- PROGRAM ARGS`: one job, in the foreground. Returns the exit
/// code to leave with: the job's, 128+signal, 124 on timeout, 125 when the
/// sandbox refused.
fn run_job(ctx: &Setup, job: JobArgs) -> anyhow::Result<i32> {
    let registry = open_registry(ctx)?;
    let (runner, warnings) = lab_runner::Runner::new(runner_config(
        ctx,
        job.allow_network,
        job.allow_workflow_exec,
        job.timeout,
    )?)
    .context("[runner] in the config file")?;
    for warning in warnings {
        eprintln!("lab: warning: {warning}");
    }
    if let Err(e) = runner.kernel_plan() {
        // Refused like a job whose sandbox could not be set up.
        eprintln!("lab: error: {e}");
        return Ok(125);
    }
    let timeout = std::time::Duration::from_secs(job.timeout);
    let (name, steps, passed, cwd) = match &job.workflow {
        Some(file) => {
            let file = std::path::absolute(file).context("resolving the workflow path")?;
            let file = lab_runner::jobs::workflow_under_roots(&registry, &file)?;
            let (name, steps) = runner.plan_workflow(&file, job.confirm_exec_hooks)?;
            let cwd = runner.check_cwd(
                file.parent().unwrap_or(std::path::Path::new("/")),
                registry.allowed_roots(),
            )?;
            (
                if name.is_empty() {
                    "workflow".to_owned()
                } else {
                    name
                },
                steps,
                Vec::new(),
                cwd,
            )
        }
        None => {
            let Some((program, args)) = job.argv.split_first() else {
                bail!(
                    "nothing to run: give the program after `--`, e.g. `lab run -- python3 train.py`"
                );
            };
            let request = lab_runner::JobRequest {
                program: program.clone(),
                args: args.to_vec(),
                env: job.env.clone(),
                timeout_secs: Some(job.timeout),
                cwd: None,
            };
            let (step, passed, _) = runner.plan(&request)?;
            // The job starts where `lab run` was invoked (SPEC §3).
            let here = std::env::current_dir().context("reading the current directory")?;
            let cwd = runner.check_cwd(&here, registry.allowed_roots())?;
            (
                lab_runner::runner::step_name(&step),
                vec![step],
                passed,
                cwd,
            )
        }
    };
    let layout = lab_registry::DataDir::new(&ctx.data_dir);
    let run = layout.create_job_run(&registry, &name)?;
    let report = layout.jobs().join(format!("{}.report", run.id));
    eprintln!(
        "lab: job {} in {} (working directory {}, seen through an overlay)",
        run.id,
        terminal_safe_str(&run.root.display().to_string()),
        terminal_safe_str(&cwd.display().to_string())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(async {
        let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
        let interrupt = shutdown_signal()?;
        tokio::spawn(async move {
            interrupt.await;
            let _ = cancel_tx.send(true);
        });
        use std::io::IsTerminal;
        let terminals = [
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        ];
        let echo = move |stream: lab_runner::Stream, bytes: &[u8]| {
            // A job's bytes reach a terminal with their control bytes shown,
            // not obeyed (no OSC 52 clipboard writes, fake links, retitling).
            let shown = |tty: bool| {
                if tty {
                    std::borrow::Cow::Owned(terminal_safe(bytes))
                } else {
                    std::borrow::Cow::Borrowed(bytes)
                }
            };
            let _ = match stream {
                lab_runner::Stream::Stdout => std::io::stdout().write_all(&shown(terminals[0])),
                lab_runner::Stream::Stderr => std::io::stderr().write_all(&shown(terminals[1])),
            };
        };
        anyhow::Ok(
            runner
                .run_steps(
                    &steps,
                    &passed,
                    Some(&cwd),
                    timeout,
                    &run.root,
                    &report,
                    echo,
                    cancel_rx,
                )
                .await?,
        )
    })?;
    eprintln!(
        "lab: job {} ended: {} (isolation: {})",
        run.id,
        terminal_safe_str(&outcome.exit.to_json().to_string()),
        terminal_safe_str(&outcome.isolation.to_string())
    );
    Ok(match outcome.exit {
        lab_runner::Exit::Code(code) => code,
        lab_runner::Exit::Signal(sig) => 128 + sig,
        lab_runner::Exit::TimedOut => 124,
        lab_runner::Exit::Cancelled => 130,
        lab_runner::Exit::Refused { .. } => 125,
    })
}

/// `bytes` with every control byte but newline, tab and carriage return
/// shown as `\xNN` (ESC, BEL, C1 controls in UTF-8 included), for a
/// terminal.
fn terminal_safe(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.into_bytes()
}

/// [`terminal_safe`] for a string the Lab prints (paths a job may have named).
fn terminal_safe_str(text: &str) -> String {
    String::from_utf8_lossy(&terminal_safe(text.as_bytes())).into_owned()
}

/// What `lab run` was asked.
struct JobArgs {
    workflow: Option<PathBuf>,
    argv: Vec<String>,
    env: Vec<String>,
    timeout: u64,
    allow_network: bool,
    allow_workflow_exec: bool,
    confirm_exec_hooks: bool,
}

/// Says which roots are allowed when an import is refused for that reason.
fn explain_import(registry: &lab_registry::Registry, e: lab_registry::Error) -> anyhow::Error {
    if !matches!(e, lab_registry::Error::OutsideAllowedRoots) {
        return e.into();
    }
    let roots: Vec<String> = registry
        .allowed_roots()
        .iter()
        .map(|r| r.display().to_string())
        .collect();
    if roots.is_empty() {
        anyhow::anyhow!("{e}: no root is allowed yet; pass --root DIR or set roots in lab.toml")
    } else {
        anyhow::anyhow!("{e} (allowed roots: {})", roots.join(", "))
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = context(&cli)?;
    match cli.command {
        Command::Serve(args) => serve(&ctx, args),
        Command::Import { dir, id } => {
            let registry = open_registry(&ctx)?;
            let dir = std::path::absolute(&dir).context("resolving the directory")?;
            let run = registry
                .import(&dir, id.as_deref())
                .map_err(|e| explain_import(&registry, e))?;
            println!("imported {} from {}", run.id, run.root.display());
            Ok(())
        }
        Command::Runs => {
            let registry = open_registry(&ctx)?;
            let mut out = std::io::stdout().lock();
            for run in registry.runs()?.iter() {
                writeln!(out, "{}\t{}", run.id, run.root.display())?;
            }
            Ok(())
        }
        Command::Forget { id } => {
            let registry = open_registry(&ctx)?;
            let run = registry.forget(&lab_registry::RunId::parse(&id)?)?;
            println!(
                "forgot {} (its files at {} are untouched)",
                run.id,
                run.root.display()
            );
            Ok(())
        }
        Command::Export { id, name } => export(&ctx, &id, name.as_deref()),
        Command::ImportBundle { file, into } => import_bundle(&ctx, &file, &into),
        Command::Run {
            workflow,
            env,
            timeout,
            runner_allow_network,
            runner_allow_workflow_exec,
            confirm_exec_hooks,
            argv,
        } => {
            if workflow.is_some() && !argv.is_empty() {
                bail!("give either --workflow FILE or `-- PROGRAM ARGS`, not both");
            }
            let code = run_job(
                &ctx,
                JobArgs {
                    workflow,
                    argv,
                    env,
                    timeout,
                    allow_network: runner_allow_network,
                    allow_workflow_exec: runner_allow_workflow_exec,
                    confirm_exec_hooks,
                },
            )?;
            std::process::exit(code);
        }
    }
}

fn export(ctx: &Setup, id: &str, name: Option<&str>) -> anyhow::Result<()> {
    let registry = open_registry(ctx)?;
    let run = registry.get(&lab_registry::RunId::parse(id)?)?;
    let allowlist = lab_fs::Allowlist::with_extra(&ctx.config.artifacts.allow)
        .context("[artifacts] allow in the config file")?;
    let name = match name {
        Some(name) => lab_fs::bundle::BundleName::parse(name)?,
        None => lab_fs::bundle::BundleName::parse(&lab_fs::bundle::default_bundle_name(
            run.id.as_str(),
            std::time::SystemTime::now(),
        ))?,
    };
    let exports_path = lab_registry::DataDir::new(&ctx.data_dir).exports();
    let exports = lab_fs::bundle::ExportsDir::open_ambient(&exports_path)?;
    let root = lab_fs::RunRoot::open_ambient(&run.root)?;
    let filter =
        lab_redact::export::RedactingFilter::new(lab_redact::Redactor::new(&ctx.lab_secrets));
    let info = exports.write_bundle(&name, &root, &allowlist, run.id.as_str(), &filter)?;
    println!(
        "exported {} to {} ({} bytes, {} files)",
        run.id,
        exports_path.join(info.name.as_str()).display(),
        info.size,
        info.manifest.files.len()
    );
    Ok(())
}

fn import_bundle(
    ctx: &Setup,
    file: &std::path::Path,
    into: &std::path::Path,
) -> anyhow::Result<()> {
    let registry = open_registry(ctx)?;
    let into = std::fs::canonicalize(into).with_context(|| format!("--into {}", into.display()))?;
    if !into.is_dir() {
        bail!("--into {} is not a directory", into.display());
    }
    if !registry
        .allowed_roots()
        .iter()
        .any(|root| into.starts_with(root))
    {
        return Err(explain_import(
            &registry,
            lab_registry::Error::OutsideAllowedRoots,
        ));
    }
    let allowlist = lab_fs::Allowlist::with_extra(&ctx.config.artifacts.allow)
        .context("[artifacts] allow in the config file")?;
    let bundle = std::fs::File::open(file).with_context(|| format!("bundle {}", file.display()))?;
    let unpacked = lab_fs::bundle::unpack_bundle_ambient(
        std::io::BufReader::new(bundle),
        &into,
        None,
        &allowlist,
    )
    .with_context(|| format!("bundle {}", file.display()))?;
    let wanted = unpacked.manifest.source_run.as_str();
    let run = match registry.import(&unpacked.dir, Some(wanted)) {
        Err(lab_registry::Error::IdTaken(_)) => registry.import(&unpacked.dir, None)?,
        other => other?,
    };
    println!(
        "imported bundle as {} at {} ({} files verified)",
        run.id,
        run.root.display(),
        unpacked.manifest.files.len()
    );
    Ok(())
}

/// Parses `--bind`: an `IP:PORT`, or `localhost:PORT`.
/// Where `lab serve` listens.
enum Bind {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

fn parse_bind(text: &str) -> anyhow::Result<Bind> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            bail!(
                "invalid --bind {text:?}: unix: needs a path, e.g. unix:/run/user/1000/lab/lab.sock"
            );
        }
        return Ok(Bind::Unix(
            std::path::absolute(path).context("resolving the socket path")?,
        ));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(Bind::Tcp(addr));
    }
    if let Some(port) = text.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(Bind::Tcp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
        )));
    }
    bail!("invalid --bind address {text:?}: expected IP:PORT, e.g. 127.0.0.1:7878, or unix:PATH")
}

/// This process's effective uid, from procfs (no `unsafe` outside lab-runner).
fn effective_uid() -> anyhow::Result<u32> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
        .context("no Uid line in /proc/self/status")
}

/// Prepares `path` for a Unix socket (SPEC §3): its directory is created
/// 0700 if absent, and an existing one must be ours and 0700 (never
/// chmod-ed); a socket of ours that refuses connections is stale and
/// removed; anything else at `path` is refused.
fn prepare_unix_socket(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
    let uid = effective_uid()?;
    let dir = path.parent().context("the socket path has no directory")?;
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating the socket directory {}", dir.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("socket directory {}", dir.display())),
        Ok(meta) => {
            if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o777 != 0o700 {
                bail!(
                    "refusing the socket directory {}: it must be a directory of yours with mode 0700 (it is {}, owner {}, mode {:o}); it is never chmod-ed",
                    dir.display(),
                    if meta.is_dir() {
                        "a directory"
                    } else {
                        "not a directory"
                    },
                    meta.uid(),
                    meta.permissions().mode() & 0o7777
                );
            }
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("socket path {}", path.display())),
        Ok(meta) if meta.file_type().is_socket() && meta.uid() == uid => {
            match std::os::unix::net::UnixStream::connect(path) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path)
                        .with_context(|| format!("removing the stale socket {}", path.display()))
                }
                Ok(_) => bail!("{} is in use by a running server", path.display()),
                Err(e) => Err(e).with_context(|| format!("probing {}", path.display())),
            }
        }
        Ok(_) => bail!(
            "refusing to replace {}: it exists and is not a stale socket of yours",
            path.display()
        ),
    }
}

/// Writes the access key to `path`: created exclusively (never through a
/// link), mode 0600.
fn write_key_file(path: &Path, key: &lab_http::AccessKey) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc_o_nofollow())
        .open(path)
        .with_context(|| {
            format!(
                "creating the key file {} (it must not exist)",
                path.display()
            )
        })?;
    file.write_all(format!("{}\n", key.as_str()).as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// `O_NOFOLLOW` on Linux.
const fn libc_o_nofollow() -> i32 {
    0o400000
}

/// Connections the server may hold: half the descriptors this process may
/// open (a streaming response holds a file too), after raising the soft
/// limit to the hard one.
fn max_connections() -> usize {
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    usize::try_from(nofile.saturating_sub(128) / 2)
        .unwrap_or(65_536)
        .clamp(64, 65_536)
}

fn serve(ctx: &Setup, args: ServeArgs) -> anyhow::Result<()> {
    if !args.enable_runner && (args.runner_allow_network || args.runner_allow_workflow_exec) {
        bail!("--runner-allow-network and --runner-allow-workflow-exec need --enable-runner");
    }
    let bind = match args.bind.as_deref().or(ctx.config.bind.as_deref()) {
        Some(text) => parse_bind(text)?,
        None => Bind::Tcp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            DEFAULT_PORT,
        )),
    };
    let tcp = match &bind {
        Bind::Tcp(addr) => Some(*addr),
        Bind::Unix(_) => None,
    };
    // The port to suggest forwarding: the chosen one, or the default for 0.
    let hint_port = match tcp {
        Some(addr) if addr.port() != 0 => addr.port(),
        _ => DEFAULT_PORT,
    };
    if let Some(bind) = tcp
        && !bind.ip().is_loopback()
    {
        if !args.allow_external {
            bail!(
                "refusing to listen on non-loopback address {bind} without --allow-external; \
                 to use the Lab from another machine, keep it on 127.0.0.1 and forward a port: \
                 ssh -L {p}:127.0.0.1:{p} THIS_HOST",
                p = hint_port
            );
        }
        eprintln!(
            "lab: WARNING: listening on {bind}, reachable from the network. Anyone who can reach \
             it and learn the session token can read your runs. Prefer 127.0.0.1 with \
             `ssh -L {p}:127.0.0.1:{p} THIS_HOST`.",
            p = hint_port
        );
    }
    let allowlist = lab_fs::Allowlist::with_extra(&ctx.config.artifacts.allow)
        .context("[artifacts] allow in the config file")?;
    let registry = open_registry(ctx)?;
    let report = registry.scan_allowed_roots()?;
    for run in &report.imported {
        eprintln!("lab: imported {} from {}", run.id, run.root.display());
    }
    for (path, why) in &report.skipped {
        eprintln!("lab: skipped {}: {why}", path.display());
    }
    let mut allowed_hosts = ctx.config.allowed_hosts.clone();
    allowed_hosts.extend(args.allowed_hosts);
    let registry = Arc::new(registry);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut runner_status = lab_http::RunnerStatus {
        programs: ctx.config.runner.programs.clone(),
        env_allow: ctx.config.runner.env_allow.clone(),
        ..Default::default()
    };
    let jobs = if args.enable_runner {
        let (runner, warnings) = lab_runner::Runner::new(runner_config(
            ctx,
            args.runner_allow_network,
            args.runner_allow_workflow_exec,
            3600,
        )?)
        .context("[runner] in the config file")?;
        for warning in warnings {
            eprintln!("lab: warning: {warning}");
        }
        let isolation =
            runtime.block_on(runner.probe(&lab_registry::DataDir::new(&ctx.data_dir).jobs()));
        // Fail closed: a kernel without every layer, or a probe the sandbox
        // refused, leaves the runner unavailable (and says why).
        runner_status.unavailable = match (runner.kernel_plan(), isolation.get("refused")) {
            (Err(e), _) => Some(e.to_string()),
            (Ok(_), Some(refused)) => Some(format!(
                "the sandbox probe was refused at {}: {}",
                refused["layer"].as_str().unwrap_or("?"),
                refused["error"].as_str().unwrap_or("?")
            )),
            (Ok(_), None) if isolation.get("error").is_some() => {
                Some(format!("the sandbox probe failed: {}", isolation["error"]))
            }
            _ => None,
        };
        if let Some(why) = &runner_status.unavailable {
            eprintln!("lab: WARNING: runner UNAVAILABLE: {why}");
        }
        eprintln!(
            "lab: runner enabled; network {}; isolation on this machine: {isolation}",
            if args.runner_allow_network {
                "ALLOWED"
            } else {
                "disabled"
            }
        );
        runner_status.enabled = true;
        runner_status.network_allowed = args.runner_allow_network;
        runner_status.workflow_exec_allowed = args.runner_allow_workflow_exec;
        runner_status.isolation = isolation;
        let manager =
            lab_runner::jobs::JobManager::open(runner, Arc::clone(&registry), &ctx.data_dir)
                .context("opening the job records")?;
        Some(Arc::new(manager))
    } else {
        None
    };
    let key = lab_http::AccessKey::generate().context("drawing the access key")?;
    let mut config = lab_http::Config {
        allowed_hosts,
        exports_dir: Some(lab_registry::DataDir::new(&ctx.data_dir).exports()),
        runner: runner_status,
        jobs,
        ..lab_http::Config::new(registry, allowlist, key.clone())
    };
    config.limits.max_connections = max_connections();
    config.lab_secrets = ctx.lab_secrets.clone();
    if let Bind::Unix(path) = &bind {
        prepare_unix_socket(path)?;
    }
    if let Some(file) = &args.key_file {
        write_key_file(file, &key)?;
    }
    let key_file = args.key_file.clone();
    let socket = match &bind {
        Bind::Unix(path) => Some(path.clone()),
        Bind::Tcp(_) => None,
    };
    let served = runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        let (listener, listening, link): (lab_http::Listener, String, String) = match &bind {
            Bind::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                let local = listener.local_addr()?;
                (
                    listener.into(),
                    format!("http://{local}/"),
                    format!("http://{local}/#key={}", key.as_str()),
                )
            }
            Bind::Unix(path) => {
                use std::os::unix::fs::PermissionsExt;
                let listener = tokio::net::UnixListener::bind(path)
                    .with_context(|| format!("cannot listen on unix:{}", path.display()))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} mode 0600", path.display()))?;
                (
                    lab_http::Listener::Unix(listener, path.clone()),
                    format!("unix:{}", path.display()),
                    // What a browser opens after `ssh -L 7878:PATH host`.
                    format!("http://localhost:{DEFAULT_PORT}/#key={}", key.as_str()),
                )
            }
        };
        println!("lab: listening on {listening}");
        println!("lab: open {link}");
        std::io::stdout().flush()?;
        lab_http::serve(config, listener, shutdown).await?;
        eprintln!("lab: stopped");
        anyhow::Ok(())
    });
    if let Some(path) = socket {
        let _ = std::fs::remove_file(path);
    }
    if let Some(file) = key_file {
        let _ = std::fs::remove_file(file);
    }
    served
}

/// Installs the SIGINT and SIGTERM handlers now (before the listening line
/// is printed, so a signal sent right after it is never lost) and returns a
/// future that completes when either arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("lab: shutting down");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_reach_a_terminal_shown_not_obeyed() {
        // OSC 52 (clipboard write), an OSC 8 hyperlink, a title change, a C1
        // CSI, BEL, and backspace; newline, tab and carriage return pass.
        let hostile = b"\x1b]52;c;ZWNobyBwd25lZA==\x07ok\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\\xc2\x9b2J\x08\ttab\r\n";
        let shown = String::from_utf8(terminal_safe(hostile)).unwrap();
        assert!(
            !shown
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')),
            "{shown:?}"
        );
        assert!(
            shown.starts_with("\\x1b]52;c;ZWNobyBwd25lZA==\\x07ok"),
            "{shown:?}"
        );
        assert!(shown.contains("\\x9b2J\\x08\ttab\r\n"), "{shown:?}");
        assert_eq!(terminal_safe(b"plain text\n"), b"plain text\n");
        assert_eq!(terminal_safe_str("/runs/a\x1b[2Jb"), "/runs/a\\x1b[2Jb");
    }
}
