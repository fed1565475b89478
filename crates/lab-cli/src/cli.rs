//! The command line: clap's types, in one place.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Lab: browse, watch, compare and export experiment runs, safely, from a
/// browser on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "lab", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    /// Where the registry, exports and job runs live
    /// [default: $XDG_DATA_HOME/lab or ~/.local/share/lab]
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Config file [default: lab.toml in the data dir, if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// An allowed import root (repeatable); run directories directly under
    /// it are imported when the server starts
    #[arg(long = "root", global = true, value_name = "DIR")]
    pub(crate) roots: Vec<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// Forget a remembered allowed root (one a `lab serve --root` remembered
    /// for later commands); its runs stay registered, its files untouched
    ForgetRoot {
        /// The root, as it was given
        dir: PathBuf,
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
        /// Also print the isolation layers in force when the job ends
        #[arg(long, short)]
        verbose: bool,
        /// Program and arguments, after `--`; PROGRAM is looked up in your
        /// PATH (an activated venv first) and its real path must be on
        /// [runner] programs
        #[arg(last = true, value_name = "PROGRAM ARGS")]
        argv: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port), or unix:PATH for a
    /// Unix socket (mode 0600, in a 0700 directory) [default: 127.0.0.1:7878]
    #[arg(long, value_name = "ADDR")]
    pub(crate) bind: Option<String>,
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
