//! `lab serve`: the bind rules (TCP, Unix socket), the key file, the
//! connection cap, and composing the server.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};

use lab_http::Bind;

use crate::cli::ServeArgs;
use crate::run::runner_config;
use crate::{DEFAULT_PORT, Setup, open_registry, shutdown_signal};

/// Parses `--bind`: an `IP:PORT`, `localhost:PORT`, or `unix:PATH`.
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
    // The jobs' runs directory is the Lab's own, not a root of runs.
    let jobs = std::fs::canonicalize(lab_registry::DataDir::new(&ctx.data_dir).runs()).ok();
    let has_local_root = registry
        .allowed_roots()
        .iter()
        .any(|r| Some(r) != jobs.as_ref());
    let (s3, s3_secrets) = s3_roots(ctx, has_local_root)?;
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
        let slurm = runner.backend().name() == "slurm";
        runner_status = if slurm {
            // Jobs are isolated on the node, by the helper there, which
            // refuses a job whose layers it cannot set up: this machine
            // (a login node, perhaps) is not probed.
            lab_core::RunnerStatus {
                programs: runner_status.programs,
                env_allow: runner_status.env_allow,
                enabled: true,
                network_allowed: args.runner_allow_network,
                workflow_exec_allowed: args.runner_allow_workflow_exec,
                limits: runner.limits_status(),
                ..Default::default()
            }
        } else {
            lab_core::RunnerStatus {
                programs: runner_status.programs,
                env_allow: runner_status.env_allow,
                ..runtime.block_on(lab_core::RunnerStatus::probe(
                    &runner,
                    &lab_registry::DataDir::new(&ctx.data_dir).jobs(),
                    args.runner_allow_network,
                    args.runner_allow_workflow_exec,
                ))
            }
        };
        if let Some(why) = &runner_status.unavailable {
            eprintln!("lab: WARNING: runner UNAVAILABLE: {why}");
        }
        if slurm {
            let backend = runner.backend_status();
            eprintln!(
                "lab: runner enabled on Slurm (partition {}); network {}; each job is isolated on its node",
                backend["partition"].as_str().unwrap_or("?"),
                if args.runner_allow_network {
                    "ALLOWED"
                } else {
                    "disabled"
                }
            );
        } else if let Some(isolation) = &runner_status.isolation {
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
        let manager = Arc::new(manager);
        // Jobs an earlier Lab left on the cluster are followed again.
        runtime.block_on(async { manager.reattach() });
        Some(manager)
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
    // The store's keys are redacted from every bundle like the Lab's own
    // secrets.
    config.lab_secrets.extend(s3_secrets);
    config.s3 = s3;
    config.discover_every = Some(std::time::Duration::from_secs(5));
    config.formats = ctx.format_limits()?;
    config.cached_points = ctx.cached_points()?;
    config.job_runs = ctx.job_runs();
    // SIGTERM stops the Lab within 5 s: 3 s for open responses, then the
    // runtime is left behind (a read stuck on a hung file keeps its thread,
    // never the process).
    config.limits.shutdown_grace = std::time::Duration::from_secs(3);
    config.allow_external = args.allow_external;
    let mut builder = lab_http::Builder::new(config);
    if let Some(file) = &args.key_file {
        builder = builder.key_file(file);
        for place in &ctx.config.runner.read_paths {
            builder = builder.key_file_away_from(place, "the [runner] read_paths entry");
        }
    }
    let served = runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        let bound = builder.bind(&bind).await.map_err(|e| match e {
            lab_http::ListenError::Io { context, source }
                if tcp.is_some() && source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                anyhow::anyhow!(
                    "{context}: the port is in use; another Lab may be running there (its \
                     `lab: open` line has the link), or pass --bind 127.0.0.1:0 to pick a free port"
                )
            }
            lab_http::ListenError::Io { context, source } => {
                anyhow::Error::from(source).context(context)
            }
            // The binary's own words for the fix: its flag, not the
            // library's "allowed root".
            lab_http::ListenError::KeyFilePlace { file, place, what } => anyhow::anyhow!(
                "refusing the key file {}: it lies under {what} {}, where a job could read it; \
                 put it outside every --root and [runner] read_paths (e.g. in $XDG_RUNTIME_DIR)",
                file.display(),
                place.display()
            ),
            other => other.into(),
        })?;
        println!("lab: listening on {}", bound.listening());
        println!("lab: open {}", bound.login_link());
        std::io::stdout().flush()?;
        bound.serve(shutdown).await?;
        eprintln!("lab: stopped");
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    served
}

/// The `s3://` roots: credentials and endpoint resolved once (the `AWS_*`
/// environment, static keys in `~/.aws`, `[s3]` in lab.toml — never a
/// credential process, SSO or instance metadata), each root's store made
/// and probed (a List of one key, 10 s at most). A root that fails is one
/// line `lab: s3://B/P: REASON` and is served unavailable; only when no
/// root at all is usable does the Lab refuse to start. Also the secret
/// values, for redaction.
fn s3_roots(
    ctx: &crate::Setup,
    has_local_root: bool,
) -> anyhow::Result<(Arc<lab_core::remote::S3Roots>, Vec<Vec<u8>>)> {
    use lab_core::remote::{Resolved, S3Root, S3Roots, S3Url};
    // Those given, remembered for later servers on this data dir, and
    // those remembered from before.
    let data = lab_registry::DataDir::new(&ctx.data_dir);
    let given: Vec<String> = ctx.s3_roots.iter().map(ToString::to_string).collect();
    data.remember_s3_roots(&given)
        .context("remembering the s3:// roots")?;
    let mut urls = ctx.s3_roots.clone();
    for text in data.s3_roots().context("the remembered s3:// roots")? {
        match S3Url::parse(&text) {
            Ok(url) if !urls.contains(&url) => urls.push(url),
            Ok(_) => {}
            Err(e) => eprintln!(
                "lab: warning: a remembered root {text:?}: {e}; forget it with `lab forget-root`"
            ),
        }
    }
    if urls.is_empty() {
        return Ok((Arc::default(), Vec::new()));
    }
    let settings = ctx.config.s3.clone();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let resolved = Resolved::resolve(&settings, &|k| std::env::var(k).ok(), home.as_deref())
        .map_err(|e| e.to_string());
    let secrets = resolved
        .as_ref()
        .map(|r| r.secrets().into_iter().map(String::into_bytes).collect())
        .unwrap_or_default();
    let mut roots = Vec::new();
    let mut usable = 0usize;
    for url in &urls {
        let root = S3Root::new(
            url.clone(),
            resolved.as_ref().map_err(Clone::clone),
            &settings,
        );
        match root.probe() {
            Ok(()) => usable += 1,
            Err(reason) => eprintln!("lab: {url}: {reason}"),
        }
        roots.push(Arc::new(root));
    }
    // A local root (given, in lab.toml or remembered) is usable.
    if usable == 0 && !has_local_root {
        bail!("no root is usable: every s3:// root failed (see above)");
    }
    Ok((Arc::new(S3Roots::new(roots, settings)), secrets))
}
