//! `lab`: parse arguments, build the library objects, run, map errors to an
//! exit code. Nothing else lives here.
#![forbid(unsafe_code)]

mod cli;
mod config;
mod data;
mod log;
mod run;
mod runs;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::FileConfig;
use crate::data::{export, import_bundle};
use crate::run::{JobArgs, run_job};
use crate::serve::serve;

pub(crate) const DEFAULT_PORT: u16 = 7878;

fn main() -> ExitCode {
    // The sandbox helper is this binary re-executed; it parses nothing else.
    if std::env::args_os().nth(1).is_some_and(|a| a == "__sandbox") {
        lab_sandbox::helper_main();
    }
    // A Slurm job's batch script (`#!LAB __slurm-helper`): the job's
    // sandbox on the node.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "__slurm-helper")
    {
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
        let code = lab_core::runner::slurm::node::helper_main(&args);
        std::process::exit(code);
    }
    // Two malloc arenas, set before any thread starts: a server's threads
    // otherwise each grow their own, fragmenting (docs/BENCHMARKS.md).
    lab_sandbox::limit_malloc_arenas(2);
    // After the helper's dispatch: the helper logs nothing through tracing
    // (see lab-sandbox), and no subscriber state is carried into it.
    log::init();
    let cli = Cli::parse();
    let outcome = run(cli);
    // The SQLite snapshots this process kept go with it.
    lab_core::formats::release_snapshots();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("lab: error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// What every command shares: the data dir, the config, the allowed roots.
pub(crate) struct Setup {
    data_dir: PathBuf,
    config: FileConfig,
    roots: Vec<PathBuf>,
    /// The `s3://BUCKET/PREFIX` roots, parsed at the boundary (never
    /// paths).
    s3_roots: Vec<lab_core::remote::S3Url>,
    /// The config file in force (given or the default), which no job may read.
    config_file: PathBuf,
    /// The values of the Lab's own secret-looking environment variables,
    /// read once here and passed to every redactor.
    lab_secrets: Vec<Vec<u8>>,
}

/// The `--root`s the command was given: its own, and those written before
/// it (`lab --root R serve`, as older scripts do). A command that has no
/// use for a root refuses one rather than ignore it.
fn command_roots(cli: &mut Cli) -> anyhow::Result<Vec<PathBuf>> {
    let before = std::mem::take(&mut cli.roots);
    let name = cli.command.name();
    match cli.command.roots_mut() {
        Some(roots) => {
            let mut all = before;
            all.append(roots);
            Ok(all)
        }
        None if before.is_empty() => Ok(Vec::new()),
        None => bail!(
            "--root means nothing to `lab {name}` (it works on the runs already registered); \
             give --root to `lab serve`, `lab import`, `lab import-bundle` or `lab run`"
        ),
    }
}

fn context(cli: &Cli, given_roots: Vec<PathBuf>) -> anyhow::Result<Setup> {
    let data_dir = match &cli.data_dir {
        Some(dir) => dir.clone(),
        None => default_data_dir()?,
    };
    // A relative --data-dir means its absolute form: the runner and the
    // sandbox see the same directory whatever their working directory.
    let data_dir = std::path::absolute(&data_dir)
        .with_context(|| format!("resolving the data dir {}", data_dir.display()))?;
    if data_dir.exists() && !data_dir.is_dir() {
        bail!("data dir {} is not a directory", data_dir.display());
    }
    let config = match &cli.config {
        Some(file) => FileConfig::load(file, true)?,
        None => FileConfig::load(&data_dir.join("lab.toml"), false)?,
    };
    let mut roots = given_roots;
    roots.extend(config.roots.iter().cloned());
    let (s3, roots): (Vec<PathBuf>, Vec<PathBuf>) =
        roots.into_iter().partition(|r| config::is_s3(r));
    let mut s3_roots = Vec::new();
    for root in s3 {
        let text = root.to_string_lossy();
        let url = lab_core::remote::S3Url::parse(&text)
            .map_err(|e| anyhow::anyhow!("--root {text}: {e}"))?;
        if !s3_roots.contains(&url) {
            s3_roots.push(url);
        }
    }
    Ok(Setup {
        s3_roots,
        config_file: cli
            .config
            .clone()
            .unwrap_or_else(|| data_dir.join("lab.toml")),
        data_dir,
        config,
        roots,
        lab_secrets: lab_redact::secret_values(std::env::vars_os()),
    })
}

impl Setup {
    /// The format readers' bounds, `[formats]` in the config.
    pub(crate) fn format_limits(&self) -> anyhow::Result<lab_core::formats::Limits> {
        let formats = &self.config.formats;
        let mut limits = lab_core::formats::Limits::default();
        if let Some(max) = formats.sqlite_max_bytes {
            limits.sqlite_max_bytes = max;
        }
        if let Some(budget) = formats.sqlite_snapshot_budget_bytes {
            limits.sqlite_snapshot_budget = budget;
        }
        // The walk's bounds: each a bound on a hostile tree still, so each
        // has a ceiling.
        for (name, value, ceiling, into) in [
            (
                "max_runs",
                formats.max_runs,
                lab_registry::MAX_RUNS,
                &mut limits.max_runs,
            ),
            (
                "max_dirs",
                formats.max_dirs,
                20_000_000,
                &mut limits.max_dirs,
            ),
            (
                "max_entries",
                formats.max_entries,
                20_000_000,
                &mut limits.max_entries,
            ),
            ("max_depth", formats.max_depth, 32, &mut limits.max_depth),
        ] {
            if let Some(value) = value {
                if !(1..=ceiling).contains(&value) {
                    bail!("[formats] {name} = {value}: from 1 to {ceiling}");
                }
                *into = value;
            }
        }
        Ok(limits)
    }

    /// `[formats] cached_points`, checked: from 1,000,000 (a 1,000,000-point
    /// series read whole) to 400,000,000 (about 9 GiB).
    pub(crate) fn cached_points(&self) -> anyhow::Result<usize> {
        match self.config.formats.cached_points {
            None => Ok(lab_core::READER_BUDGET),
            Some(n) if (1_000_000..=400_000_000).contains(&n) => Ok(n),
            Some(n) => bail!("[formats] cached_points = {n}: from 1000000 to 400000000"),
        }
    }

    /// Where the jobs' runs lie (`DATA_DIR/runs`, canonical): every Lab a
    /// command opens reads them as the server does, what their job wrote
    /// under the job's single-link rule.
    pub(crate) fn job_runs(&self) -> Option<PathBuf> {
        std::fs::canonicalize(&self.data_dir)
            .ok()
            .map(|dir| lab_registry::DataDir::new(&dir).runs())
    }
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

/// The registry, with `DATA_DIR/runs` (where jobs run) always an allowed
/// root. A data dir that is, contains or lies under an allowed root (given
/// now or remembered) is refused before anything is created. Every command
/// that reads runs comes here, so this is also where the SQLite snapshots
/// of this process are placed: `DATA_DIR/snapshots`, outside every allowed
/// root (never in `TMPDIR`, which may lie inside one), its leftovers of
/// killed Labs removed.
pub(crate) fn open_registry(ctx: &Setup) -> anyhow::Result<lab_registry::Registry> {
    open_registry_with(ctx, true)
}

/// [`open_registry`], creating the data dir's layout or not (`create`:
/// for a command that only reads, the data dir exists already; see
/// [`open_lab_to_read`]).
fn open_registry_with(ctx: &Setup, create: bool) -> anyhow::Result<lab_registry::Registry> {
    lab_registry::check_data_dir_apart(&ctx.data_dir, &ctx.roots)?;
    let registry = open_registry_unchecked(ctx, create)?;
    lab_registry::check_data_dir_apart(&ctx.data_dir, registry.allowed_roots())?;
    let snapshots = ctx.data_dir.join("snapshots");
    lab_fs::use_snapshot_dir(&snapshots).with_context(|| {
        format!(
            "preparing the SQLite snapshot directory {}",
            snapshots.display()
        )
    })?;
    Ok(registry)
}

/// The application over this data dir, for the commands that do not serve
/// and write or read no bundle (`import`, `runs`, `forget`): the registry
/// ([`open_registry`]) and the readers' bounds. Neither the exports
/// directory nor the configured artifact allowlist is opened or parsed, as
/// before these commands went through a Lab: they never needed either, and
/// neither one's trouble stops them. Nothing runs in the background.
pub(crate) fn open_lab(ctx: &Setup) -> anyhow::Result<lab_core::Lab> {
    lab_with(ctx, open_registry(ctx)?)
}

fn lab_with(ctx: &Setup, registry: lab_registry::Registry) -> anyhow::Result<lab_core::Lab> {
    Ok(lab_core::Lab::new(config_with(
        ctx,
        registry,
        lab_fs::Allowlist::default(),
    )?)?)
}

/// What every command's Lab shares: the readers' bounds, and the jobs'
/// runs (`lab run`'s too) read as the server reads them, so `lab runs`
/// shows what `/api/runs` shows and `lab export` bundles what the server
/// serves.
fn config_with(
    ctx: &Setup,
    registry: lab_registry::Registry,
    allowlist: lab_fs::Allowlist,
) -> anyhow::Result<lab_core::LabConfig> {
    let mut config = lab_core::LabConfig::new(std::sync::Arc::new(registry), allowlist);
    config.formats = ctx.format_limits()?;
    config.cached_points = ctx.cached_points()?;
    config.job_runs = ctx.job_runs();
    Ok(config)
}

/// Whether the data dir is there. Reading never creates it: a command
/// that only reads (or looks a run up) finds nothing in one that is not.
pub(crate) fn data_dir_exists(ctx: &Setup) -> bool {
    ctx.data_dir.is_dir()
}

/// [`open_lab`] for a command that only reads (`runs`): `None` when the
/// data dir does not exist, which is left so; in one that does, nothing
/// of the layout is created (`runs/` is an allowed root only if present).
pub(crate) fn open_lab_to_read(ctx: &Setup) -> anyhow::Result<Option<lab_core::Lab>> {
    if !data_dir_exists(ctx) {
        return Ok(None);
    }
    lab_with(ctx, open_registry_with(ctx, false)?).map(Some)
}

/// [`open_lab`] for `export` and `import-bundle`: with the configured
/// allowlist (what a bundle may hold) and, for `export` (`exports`), the
/// exports directory (created if missing) and the Lab's secrets to redact
/// from bundles.
pub(crate) fn open_lab_for_bundles(ctx: &Setup, exports: bool) -> anyhow::Result<lab_core::Lab> {
    let registry = open_registry(ctx)?;
    let allowlist = lab_fs::Allowlist::with_extra(&ctx.config.artifacts.allow)
        .context("[artifacts] allow in the config file")?;
    let mut config = config_with(ctx, registry, allowlist)?;
    if exports {
        config.exports_dir = Some(lab_registry::DataDir::new(&ctx.data_dir).exports());
        config.lab_secrets = ctx.lab_secrets.clone();
    }
    Ok(lab_core::Lab::new(config)?)
}

/// [`open_registry`] without the data-dir check: for `lab forget-root`,
/// which is how a remembered root that overlaps the data dir is removed.
/// `create`: make the data dir and its layout if absent; else only an
/// existing `runs/` is allowed.
fn open_registry_unchecked(ctx: &Setup, create: bool) -> anyhow::Result<lab_registry::Registry> {
    let layout = lab_registry::DataDir::new(&ctx.data_dir);
    if create {
        layout
            .ensure()
            .with_context(|| format!("creating the data dir {}", ctx.data_dir.display()))?;
    }
    let mut roots = ctx.roots.clone();
    if create || layout.runs().is_dir() {
        roots.push(layout.runs());
    }
    Ok(lab_registry::Registry::open(&ctx.data_dir, &roots)?)
}

/// Says which roots are allowed when an import is refused for that reason,
/// and how to allow another (`command`: the `lab` command that takes
/// `--root`).
pub(crate) fn explain_import(
    registry: &lab_registry::Registry,
    e: lab_registry::Error,
    command: &str,
) -> anyhow::Error {
    if !matches!(e, lab_registry::Error::OutsideAllowedRoots) {
        return e.into();
    }
    let roots: Vec<String> = registry
        .allowed_roots()
        .iter()
        .map(|r| r.display().to_string())
        .collect();
    if roots.is_empty() {
        anyhow::anyhow!(
            "{e}: no root is allowed yet; pass `lab {command} --root DIR` with a directory \
             above it, or set roots in lab.toml"
        )
    } else {
        anyhow::anyhow!(
            "{e} (allowed roots: {}); to allow another, pass `lab {command} --root DIR` \
             (`lab serve --root DIR` remembers it)",
            roots.join(", ")
        )
    }
}

/// "No run with this id", naming the id and where the ids are listed.
pub(crate) fn explain_run_id(e: lab_registry::Error, id: &str) -> anyhow::Error {
    match e {
        lab_registry::Error::UnknownRun => {
            anyhow::anyhow!("no run with this id: {id} (see `lab runs` for the ids)")
        }
        other => other.into(),
    }
}

/// A run id as typed, parsed; a bad one is named.
pub(crate) fn parse_run_id(id: &str) -> anyhow::Result<lab_registry::RunId> {
    lab_registry::RunId::parse(id).map_err(|e| match e {
        lab_registry::Error::InvalidId(why) => {
            anyhow::anyhow!("invalid run id {id:?}: {why} (see `lab runs` for the ids)")
        }
        other => other.into(),
    })
}

/// The directory `lab import` was given, made absolute; one that does not
/// exist is said so, with the path looked at.
fn import_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(dir)
        .with_context(|| format!("resolving the directory {}", dir.display()))?;
    match std::fs::symlink_metadata(&absolute) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if absolute == dir {
                bail!("cannot import {}: it does not exist", dir.display())
            }
            bail!(
                "cannot import {}: {} does not exist",
                dir.display(),
                absolute.display()
            )
        }
        _ => Ok(absolute),
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    let roots = command_roots(&mut cli)?;
    let ctx = context(&cli, roots)?;
    match cli.command {
        Command::Serve(args) => serve(&ctx, args),
        Command::Import { dir, id, roots: _ } => {
            let dir = import_dir(&dir)?;
            let lab = open_lab(&ctx)?;
            let runs = lab.import(&dir, id.as_deref()).map_err(|e| match e {
                lab_core::discovery::ImportError::Registry(e) => {
                    explain_import(lab.registry(), e, "import")
                        .context(format!("cannot import {}", dir.display()))
                }
                other => {
                    anyhow::Error::from(other).context(format!("cannot import {}", dir.display()))
                }
            })?;
            for run in runs {
                println!(
                    "imported {} ({}) from {}",
                    run.id,
                    run.format,
                    run.root.display()
                );
            }
            Ok(())
        }
        Command::Runs { json, filter } => runs::runs(&ctx, json, filter.as_deref()),
        Command::Forget { id } => {
            let parsed = parse_run_id(&id)?;
            if !data_dir_exists(&ctx) {
                return Err(explain_run_id(lab_registry::Error::UnknownRun, &id));
            }
            let lab = open_lab(&ctx)?;
            let run = lab.forget(&parsed).map_err(|e| match e {
                lab_core::Error::Registry(e) => explain_run_id(e, &id),
                other => other.into(),
            })?;
            println!(
                "forgot {} (its files at {} are untouched)",
                run.id,
                run.root.display()
            );
            Ok(())
        }
        Command::ForgetRoot { dir } => {
            if !data_dir_exists(&ctx) {
                return Err(lab_registry::Error::UnknownRoot(std::path::absolute(&dir)?).into());
            }
            if config::is_s3(&dir) {
                let url = dir.to_string_lossy();
                if !lab_registry::DataDir::new(&ctx.data_dir).forget_s3_root(&url)? {
                    bail!("{url} is not a remembered root");
                }
                println!("forgot the root {url} (its files are untouched)");
                return Ok(());
            }
            let registry = open_registry_unchecked(&ctx, true)?;
            let root = registry.forget_root(&dir)?;
            println!(
                "forgot the root {} (its runs stay registered; its files are untouched)",
                root.display()
            );
            Ok(())
        }
        Command::Export { id, name } => export(&ctx, &id, name.as_deref()),
        Command::ImportBundle { file, into, .. } => import_bundle(&ctx, &file, &into),
        Command::Run {
            workflow,
            env,
            timeout,
            runner_allow_network,
            runner_allow_workflow_exec,
            confirm_exec_hooks,
            cpus,
            mem_mb,
            gpus,
            verbose,
            argv,
            roots: _,
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
                    resources: lab_core::runner::Resources { cpus, mem_mb, gpus },
                    verbose,
                },
            )?;
            std::process::exit(code);
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now (before the listening line
/// is printed, so a signal sent right after it is never lost) and returns a
/// future that completes when either arrives.
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
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
