//! The command line: clap's types, in one place.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// What `lab --help` says the Lab is for.
const LONG_ABOUT: &str = "\
Lab: one place to browse, watch, compare and export the experiment runs your \
tools already write (TensorBoard, MLflow, W&B, Hydra, Lightning and more, \
read where they lie, never changed), and to start new ones in a sandbox. \
`lab serve` opens it in your browser on 127.0.0.1; the other commands work on \
the same data dir, also while a server runs.";

const EXAMPLES: &str = "\
Examples:
  lab serve --root ~/experiments          find every run under ~/experiments and open the UI
  lab runs                                list the registered runs
  lab import ~/experiments/new-run        register one more run
  lab export cartpole-ppo-3f9c2d41e07b    bundle a run (redacted, checksummed)
  lab serv                                a typo: lab suggests `serve`";

/// Lab: browse, watch, compare and export experiment runs, safely, from a
/// browser on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(
    name = "lab",
    version,
    max_term_width = 100,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
pub(crate) struct Cli {
    /// Where the registry, exports and job runs live
    /// [default: $XDG_DATA_HOME/lab or ~/.local/share/lab]
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Config file [default: lab.toml in the data dir, if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// `--root` before the command (`lab --root R serve`), as older
    /// scripts write it: taken by the commands that have `--root`, refused
    /// by the others.
    #[arg(long = "root", value_name = "DIR", hide = true)]
    pub(crate) roots: Vec<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `--root` on `lab serve`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct ServeRoots {
    /// An allowed import root (repeatable), remembered in the data dir so
    /// later commands accept what lies under it: walked up to 8 directories
    /// deep, each run found (a directory a format reader recognises, or
    /// every run of a store) is registered at start and while the server
    /// runs; a run you forgot stays forgotten
    #[arg(long = "root", value_name = "DIR")]
    pub(crate) roots: Vec<PathBuf>,
}

/// `--root` on the commands that check a path against the allowed roots
/// once (`import`, `import-bundle`, `run`): allowed for this command only.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct CommandRoots {
    /// An allowed root for this command only (repeatable; the roots
    /// `lab serve --root` remembered, and `roots` in lab.toml, are allowed
    /// too)
    #[arg(long = "root", value_name = "DIR")]
    pub(crate) roots: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start the Lab's web UI and API
    #[command(after_help = "\
Examples:
  lab serve --root ~/experiments              on 127.0.0.1:7878, the runs under ~/experiments
  lab serve --bind 127.0.0.1:0 --root ~/exp   a free port (the address is printed)
  lab serve --root ~/exp --enable-runner      also start sandboxed jobs from the UI
  lab serve --bind unix:$XDG_RUNTIME_DIR/lab/lab.sock --root ~/exp
                                              a Unix socket, for shared machines")]
    Serve(ServeArgs),
    /// Register a run directory (it must lie under an allowed root)
    ///
    /// A directory holding runs (a store, a sweep) registers each run found
    /// beneath it, up to 8 directories deep.
    #[command(after_help = "\
Examples:
  lab import ~/experiments/new-run                 under a root `lab serve --root` remembered
  lab import --root ~/scratch ~/scratch/try-3      allow ~/scratch for this import only
  lab import ~/experiments/mlruns                  every run of an MLflow store
  lab import ~/experiments/new-run --id baseline   choose the id")]
    Import {
        /// The run directory (a relative path is taken from the working
        /// directory)
        dir: PathBuf,
        /// Run id to use instead of a generated one ([a-z0-9][a-z0-9-]{0,63})
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        roots: CommandRoots,
    },
    /// List registered runs: ID NAME EXPERIMENT FORMAT STATUS CREATED
    #[command(
        long_about = "\
List registered runs, one a line under a header: ID NAME EXPERIMENT FORMAT \
STATUS CREATED, in columns, by id. NAME says what the run varied (a Hydra \
job's overrides, a TensorBoard trial's hparams, a job's command), else its \
format's run name; EXPERIMENT is the group its format puts it in (an MLflow \
experiment, a W&B project, a Hydra sweep, a logdir), empty where none; STATUS \
its state (running, finished, failed, crashed, killed, unknown), CREATED when \
it began. \
A run whose files cannot be read now is listed too (`available` false in --json).

Reading never creates the data dir: on one that does not exist, the header \
alone (nothing with --json).",
        after_help = "\
Examples:
  lab runs                                   the table
  lab runs --json | jq -r 'select(.status == \"failed\") | .id'
  lab --data-dir /mnt/lab runs               another data dir"
    )]
    Runs {
        /// One JSON object a line: the same fields as each entry of
        /// `GET /api/runs`, without the signed URLs (`video_url`,
        /// `thumbnail_url`), which belong to a browser session
        #[arg(long)]
        json: bool,
        /// Only the runs this expression holds for, e.g.
        /// `params.lr > 0.1 and metrics.loss < 1` (the language of
        /// `GET /api/runs?filter=`; docs/API.md). A syntax error exits 2
        #[arg(long, value_name = "EXPR")]
        filter: Option<String>,
    },
    /// Forget a run (its files are never touched)
    #[command(after_help = "\
Examples:
  lab forget cartpole-ppo-3f9c2d41e07b  unregister it (`lab runs` lists the ids)")]
    Forget {
        /// The run id (see `lab runs`)
        id: String,
    },
    /// Forget a remembered allowed root (one a `lab serve --root` remembered
    /// for later commands); its runs stay registered, its files untouched
    #[command(after_help = "\
Examples:
  lab forget-root ~/old-experiments    stop allowing it (and stop walking it at start)")]
    ForgetRoot {
        /// The root, as it was given
        dir: PathBuf,
    },
    /// Export a run as a bundle (a tar of its allowlisted artifacts, redacted,
    /// with a checksummed MANIFEST.json) into DATA_DIR/exports
    #[command(after_help = "\
Examples:
  lab export cartpole-ppo-3f9c2d41e07b                  DATA_DIR/exports/cartpole-ppo-3f9c2d41e07b-YYYYMMDD-HHMMSS.tar
  lab export cartpole-ppo-3f9c2d41e07b --name for-ana   DATA_DIR/exports/for-ana.tar")]
    Export {
        /// The run id (see `lab runs`)
        id: String,
        /// Bundle name ([A-Za-z0-9._-], at most 100 characters; `.tar` is
        /// added) [default: RUNID-YYYYMMDD-HHMMSS]
        #[arg(long)]
        name: Option<String>,
    },
    /// Unpack a bundle into a new run directory under DIR (an allowed root or
    /// a directory under one), verify it, and register the run
    #[command(after_help = "\
Examples:
  lab import-bundle for-ana.tar --into ~/experiments                       a remembered root
  lab import-bundle for-ana.tar --into ~/received --root ~/received        allow it for this command")]
    ImportBundle {
        /// The bundle file
        file: PathBuf,
        /// Where to create the run directory (named after the source run)
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
        #[command(flatten)]
        roots: CommandRoots,
    },
    /// Run a program from the [runner] programs allowlist in the sandbox
    /// (no network, writes only to its new run directory under
    /// DATA_DIR/runs/), with redacted logs and provenance
    #[command(after_help = "\
Examples:
  cd ~/experiments/proj && lab run -- python3 train.py --lr 0.01
  lab run --root ~/scratch --timeout 600 -- python3 sweep.py   working directory under ~/scratch
  lab run --workflow ~/experiments/proj/pipeline.toml")]
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
        /// CPUs for the job (a cgroup limit here, at most [runner] cpu_max;
        /// --cpus-per-task on Slurm, at most [runner.slurm] max_cpus)
        #[arg(long, value_name = "N")]
        cpus: Option<u32>,
        /// Memory for the job in MiB (a cgroup limit here, at most
        /// [runner] memory_max; --mem on Slurm, at most max_mem_mb)
        #[arg(long, value_name = "MIB")]
        mem_mb: Option<u64>,
        /// GPUs for the job (Slurm only: --gres=gpu:N, at most max_gpus)
        #[arg(long, value_name = "N")]
        gpus: Option<u32>,
        /// Also print the isolation layers in force when the job ends
        #[arg(long, short)]
        verbose: bool,
        #[command(flatten)]
        roots: CommandRoots,
        /// Program and arguments, after `--`; PROGRAM is looked up in your
        /// PATH (an activated venv first) and its real path must be on
        /// [runner] programs
        #[arg(last = true, value_name = "PROGRAM ARGS")]
        argv: Vec<String>,
    },
}

impl Command {
    /// The command's name, as typed.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Serve(_) => "serve",
            Command::Import { .. } => "import",
            Command::Runs { .. } => "runs",
            Command::Forget { .. } => "forget",
            Command::ForgetRoot { .. } => "forget-root",
            Command::Export { .. } => "export",
            Command::ImportBundle { .. } => "import-bundle",
            Command::Run { .. } => "run",
        }
    }

    /// The `--root` list of the commands that have one.
    pub(crate) fn roots_mut(&mut self) -> Option<&mut Vec<PathBuf>> {
        match self {
            Command::Serve(args) => Some(&mut args.roots.roots),
            Command::Import { roots, .. }
            | Command::ImportBundle { roots, .. }
            | Command::Run { roots, .. } => Some(&mut roots.roots),
            Command::Runs { .. }
            | Command::Forget { .. }
            | Command::ForgetRoot { .. }
            | Command::Export { .. } => None,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port), or unix:PATH for a
    /// Unix socket (mode 0600, in a 0700 directory) [default: 127.0.0.1:7878]
    #[arg(long, value_name = "ADDR")]
    pub(crate) bind: Option<String>,
    #[command(flatten)]
    pub(crate) roots: ServeRoots,
    /// Also write the access key to PATH (created exclusively, mode 0600,
    /// removed at shutdown), for scripts
    #[arg(long, value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,
    /// Allow a non-loopback --bind (exposes the Lab to the network)
    #[arg(long)]
    pub(crate) allow_external: bool,
    /// Extra Host header value to accept, e.g. behind a reverse proxy (repeatable)
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub(crate) allowed_hosts: Vec<String>,
    /// Enable the sandboxed runner
    #[arg(long)]
    pub(crate) enable_runner: bool,
    /// Let runner jobs use the network
    #[arg(long)]
    pub(crate) runner_allow_network: bool,
    /// Let workflows run exec hooks (each job must still confirm)
    #[arg(long)]
    pub(crate) runner_allow_workflow_exec: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// The walk depth the help promises is the walk's.
    #[test]
    fn the_root_help_says_how_deep_the_walk_goes() {
        let depth = lab_core::formats::Limits::default().max_depth;
        let said = format!("up to {depth} directories deep");
        let mut cli = Cli::command();
        for name in ["serve", "import"] {
            let help = cli
                .find_subcommand_mut(name)
                .unwrap_or_else(|| panic!("{name}"))
                .render_long_help()
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            assert!(help.contains(&said), "{name}: {help}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
