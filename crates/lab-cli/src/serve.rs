//! `lab serve`: the bind rules (TCP, Unix socket), the key file, the
//! connection cap, and composing the server.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::ServeArgs;
use crate::run::runner_config;
use crate::{DEFAULT_PORT, Setup, open_registry, shutdown_signal};

/// Parses `--bind`: an `IP:PORT`, or `localhost:PORT`.
/// Where `lab serve` listens.
pub(crate) enum Bind {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

pub(crate) fn parse_bind(text: &str) -> anyhow::Result<Bind> {
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
pub(crate) fn effective_uid() -> anyhow::Result<u32> {
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
pub(crate) fn prepare_unix_socket(path: &Path) -> anyhow::Result<()> {
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

/// Refuses a `--key-file` where a job could read it: under an allowed root
/// or a `[runner] read_paths` entry (where a `lab run` job's working
/// directory may be, and the job reads its cwd), or in a system directory
/// every job reads.
pub(crate) fn check_key_file_place(
    path: &Path,
    roots: &[PathBuf],
    read_paths: &[PathBuf],
) -> anyhow::Result<()> {
    let real = lab_registry::canonical_as_far_as_exists(path);
    let places = roots
        .iter()
        .map(|r| (r.clone(), "the allowed root"))
        .chain(read_paths.iter().map(|r| {
            (
                lab_registry::canonical_as_far_as_exists(r),
                "the [runner] read_paths entry",
            )
        }))
        .chain(lab_core::runner::protocol::SYSTEM_DIRS.iter().map(|d| {
            (
                lab_registry::canonical_as_far_as_exists(Path::new(d)),
                "the system directory",
            )
        }));
    for (place, what) in places {
        if real.starts_with(&place) {
            bail!(
                "refusing the key file {}: it lies under {what} {}, where a job could read it; \
                 put it outside every --root and [runner] read_paths (e.g. in $XDG_RUNTIME_DIR)",
                path.display(),
                place.display()
            );
        }
    }
    Ok(())
}

/// Writes the access key to `path`: created exclusively (never through a
/// link), mode 0600.
pub(crate) fn write_key_file(path: &Path, key: &lab_http::AccessKey) -> anyhow::Result<()> {
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
pub(crate) const fn libc_o_nofollow() -> i32 {
    0o400000
}

/// Connections the server may hold: half the descriptors this process may
/// open (a streaming response holds a file too), after raising the soft
/// limit to the hard one.
pub(crate) fn max_connections() -> usize {
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    usize::try_from(nofile.saturating_sub(128) / 2)
        .unwrap_or(65_536)
        .clamp(64, 65_536)
}

pub(crate) fn serve(ctx: &Setup, args: ServeArgs) -> anyhow::Result<()> {
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
    // Later commands on this data dir accept what this server was given.
    registry
        .remember_roots(&ctx.roots)
        .context("remembering the allowed roots")?;
    // The roots are walked by the server once it listens (the listening
    // line comes first, whatever a root holds), then every 5 s.
    for warning in registry.warnings() {
        eprintln!("lab: warning: {}", lab_core::discovery::log_safe(warning));
    }
    let mut allowed_hosts = ctx.config.allowed_hosts.clone();
    allowed_hosts.extend(args.allowed_hosts);
    let registry = Arc::new(registry);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut runner_status = lab_core::RunnerStatus {
        programs: ctx.config.runner.programs.clone(),
        env_allow: ctx.config.runner.env_allow.clone(),
        ..Default::default()
    };
    let jobs = if args.enable_runner {
        let (runner, warnings) = lab_core::runner::Runner::new(runner_config(
            ctx,
            args.runner_allow_network,
            args.runner_allow_workflow_exec,
            3600,
            args.key_file.as_deref(),
        )?)
        .context("[runner] in the config file")?;
        for warning in warnings {
            eprintln!("lab: warning: {warning}");
        }
        runner_status = lab_core::RunnerStatus {
            programs: runner_status.programs,
            env_allow: runner_status.env_allow,
            ..runtime.block_on(lab_core::RunnerStatus::probe(
                &runner,
                &lab_registry::DataDir::new(&ctx.data_dir).jobs(),
                args.runner_allow_network,
                args.runner_allow_workflow_exec,
            ))
        };
        if let Some(why) = &runner_status.unavailable {
            eprintln!("lab: WARNING: runner UNAVAILABLE: {why}");
        }
        if let Some(isolation) = &runner_status.isolation {
            eprintln!(
                "lab: runner enabled; network {}; isolation on this machine: {isolation}",
                if args.runner_allow_network {
                    "ALLOWED"
                } else {
                    "disabled"
                }
            );
        }
        let manager =
            lab_core::runner::jobs::JobManager::open(runner, Arc::clone(&registry), &ctx.data_dir)
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
    config.discover_every = Some(std::time::Duration::from_secs(5));
    config.formats = ctx.format_limits();
    // Jobs' runs (lab run's too) read what their job wrote.
    config.job_runs = std::fs::canonicalize(&ctx.data_dir)
        .ok()
        .map(|dir| lab_registry::DataDir::new(&dir).runs());
    // SIGTERM stops the Lab within 5 s: 3 s for open responses, then the
    // runtime is left behind (a read stuck on a hung file keeps its thread,
    // never the process).
    config.limits.shutdown_grace = std::time::Duration::from_secs(3);
    if let Bind::Unix(path) = &bind {
        prepare_unix_socket(path)?;
    }
    if let Some(file) = &args.key_file {
        check_key_file_place(
            file,
            config.registry.allowed_roots(),
            &ctx.config.runner.read_paths,
        )?;
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
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    if let Some(path) = socket {
        let _ = std::fs::remove_file(path);
    }
    if let Some(file) = key_file {
        let _ = std::fs::remove_file(file);
    }
    served
}
