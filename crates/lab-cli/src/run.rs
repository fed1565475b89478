//! `lab run`: one job in the foreground, and the runner's settings.

use std::io::Write;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use lab_core::runner::{Exit, JobState};

use crate::{Setup, open_registry, shutdown_signal};

/// The runner settings: allowlists from the config file, the network switch
/// from the command line only; the Lab's files no job may read (the data
/// dir, the config file, `lab serve --key-file`).
pub(crate) fn runner_config(
    ctx: &Setup,
    allow_network: bool,
    allow_workflow_exec: bool,
    timeout: u64,
    key_file: Option<&Path>,
) -> anyhow::Result<lab_core::runner::RunnerConfig> {
    let runner = &ctx.config.runner;
    let backend = match runner.backend.as_deref() {
        None | Some("local") => {
            if runner.slurm.is_some() {
                bail!(
                    "[runner.slurm] is set but [runner] backend is not \"slurm\": add backend = \"slurm\" to run jobs on the cluster, or remove the table"
                );
            }
            lab_core::runner::runner::BackendConfig::Local
        }
        Some("slurm") => {
            let Some(table) = &runner.slurm else {
                bail!(
                    "[runner] backend = \"slurm\" needs a [runner.slurm] table with at least partition = \"NAME\""
                );
            };
            lab_core::runner::runner::BackendConfig::Slurm(
                lab_core::runner::slurm::SlurmConfig::from_toml(table)
                    .map_err(anyhow::Error::msg)?,
            )
        }
        Some(other) => {
            bail!("[runner] backend = {other:?}: the backends are \"local\" and \"slurm\"")
        }
    };
    let defaults = lab_core::runner::Limits::default();
    let mut read_paths = Vec::new();
    for path in &runner.read_paths {
        read_paths.push(std::fs::canonicalize(path).with_context(|| {
            format!(
                "[runner] read_paths entry {} in the config file",
                path.display()
            )
        })?);
    }
    let path = match &runner.path {
        Some(path) => {
            if path.is_empty()
                || path.contains('\0')
                || path.split(':').any(|dir| !dir.starts_with('/'))
            {
                anyhow::bail!(
                    "[runner] path in the config file: absolute directories joined by ':' (e.g. \"/opt/py/bin:/usr/bin:/bin\")"
                );
            }
            path.clone()
        }
        None => lab_core::runner::runner::RUNNER_PATH.to_owned(),
    };
    Ok(lab_core::runner::RunnerConfig {
        path,
        programs: runner.programs.clone(),
        env_allow: runner.env_allow.clone(),
        allow_network,
        allow_workflow_exec,
        limits: lab_core::runner::Limits {
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
            .unwrap_or(lab_core::runner::runner::DEFAULT_LOG_MAX_BYTES),
        lab_secrets: ctx.lab_secrets.clone(),
        data_dir: std::fs::create_dir_all(&ctx.data_dir)
            .and_then(|()| std::fs::canonicalize(&ctx.data_dir))
            .ok(),
        config_file: Some(ctx.config_file.clone()),
        key_file: key_file.map(Path::to_path_buf),
        cgroup: lab_core::runner::cgroup::Wanted {
            memory_max: runner.memory_max,
            pids_max: runner.pids_max,
            cpu_max: runner.cpu_max,
        },
        backend,
    })
}

/// The exit code `lab run` leaves with for a job that ended in `state`
/// (SPEC §3): 0 finished, the job's code if failed, 124 timeout, 130
/// cancelled, 137 oom or killed, 2 refused, 1 node_fail or interrupted.
pub(crate) fn exit_code(state: JobState, exit: &Exit) -> i32 {
    match state {
        JobState::Finished => 0,
        JobState::Failed => match exit {
            Exit::Code(code) if (1..=255).contains(code) => *code,
            _ => 1,
        },
        JobState::Timeout => 124,
        JobState::Cancelled => 130,
        JobState::Oom | JobState::Killed => 137,
        JobState::Refused => 2,
        JobState::NodeFail | JobState::Interrupted | JobState::Queued | JobState::Running => 1,
    }
}

/// `lab run -- PROGRAM ARGS`: one job, in the foreground. Returns the exit
/// code to leave with ([`exit_code`]); a job refused before it starts (the
/// program, its installation, a variable, the cwd, the workflow, this
/// kernel) is one line `lab: refused: WHY` and 2.
pub(crate) fn run_job(ctx: &Setup, job: JobArgs) -> anyhow::Result<i32> {
    let registry = open_registry(ctx)?;
    let (runner, warnings) = lab_core::runner::Runner::new(runner_config(
        ctx,
        job.allow_network,
        job.allow_workflow_exec,
        job.timeout,
        None,
    )?)
    .context("[runner] in the config file")?;
    for warning in warnings {
        eprintln!("lab: warning: {warning}");
    }
    let planned = runner
        .startable()
        .map_err(anyhow::Error::from)
        .and_then(|_| plan_job(&runner, &registry, &job))
        .and_then(|planned| {
            let resources = runner.resources(Some(&job.resources))?;
            runner.backend().check_env(&planned.2)?;
            Ok((planned, resources))
        });
    let ((name, steps, passed, cwd), resources) = match planned {
        Ok(planned) => planned,
        Err(e) => match e.downcast_ref::<lab_core::runner::runner::Error>() {
            Some(refusal) => {
                eprintln!("lab: refused: {}", terminal_safe_str(&refusal.to_string()));
                return Ok(exit_code(JobState::Refused, &Exit::Code(1)));
            }
            None => return Err(e),
        },
    };
    let timeout = std::time::Duration::from_secs(job.timeout);
    let layout = lab_registry::DataDir::new(&ctx.data_dir);
    layout.ensure().context("preparing the data dir")?;
    let run = layout.create_job_run(&registry, &name)?;
    let report = layout.jobs().join(format!("{}.report", run.id));
    // The same record a job of the server has (SPEC §3): the server's
    // Jobs page lists it while it runs, owned by this process.
    let (program, args, exec_path, workflow) = match &job.workflow {
        Some(file) => (
            format!("workflow {name}"),
            vec![
                std::path::absolute(file)
                    .unwrap_or_else(|_| file.clone())
                    .display()
                    .to_string(),
            ],
            None,
            Some(
                std::path::absolute(file)
                    .unwrap_or_else(|_| file.clone())
                    .display()
                    .to_string(),
            ),
        ),
        None => (
            job.argv.first().cloned().unwrap_or_default(),
            job.argv.iter().skip(1).cloned().collect(),
            steps.first().map(|s| s.exec_path.display().to_string()),
            None,
        ),
    };
    let mut record = lab_core::runner::jobs::JobRecord::starting(
        run.id.as_str(),
        program,
        &args,
        passed.iter().map(|(k, _)| k.clone()).collect(),
        runner.network_allowed(),
        lab_core::runner::jobs::Relaunch {
            cwd: workflow.is_none().then(|| cwd.display().to_string()),
            timeout_secs: job.timeout,
            workflow,
        },
        exec_path,
        lab_core::runner::jobs::JobOwner::this_process(),
        &runner.redactor(),
    );
    runner.describe(&mut record, &resources);
    record
        .save(&ctx.data_dir)
        .context("writing the job record")?;
    let run_dir = terminal_safe_str(&run.root.display().to_string());
    eprintln!(
        "lab: job {} in {run_dir} (working directory {}, seen through an overlay)",
        run.id,
        terminal_safe_str(&cwd.display().to_string())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let started = std::time::Instant::now();
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
        let echo = move |stream: lab_core::runner::Stream, bytes: &[u8]| {
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
                lab_core::runner::Stream::Stdout => {
                    std::io::stdout().write_all(&shown(terminals[0]))
                }
                lab_core::runner::Stream::Stderr => {
                    std::io::stderr().write_all(&shown(terminals[1]))
                }
            };
        };
        // What the backend learns (queued on Slurm, why, where it runs)
        // goes into the record, which the server's Jobs page reads.
        let data_dir = ctx.data_dir.clone();
        let shown = std::sync::Mutex::new(record.clone());
        let update = |update: lab_core::runner::backend::Update| {
            let mut record = shown.lock().unwrap_or_else(|p| p.into_inner());
            record.update(&update);
            let _ = record.save(&data_dir);
            if update != (lab_core::runner::backend::Update::Running { node: None }) {
                eprintln!("lab: {}", terminal_safe_str(&describe_update(&update)));
            }
        };
        let job_run = lab_core::runner::backend::JobRun {
            steps: &steps,
            passed: &passed,
            cwd: Some(&cwd),
            timeout,
            resources,
            run_dir: &run.root,
            report: &report,
        };
        let hooks = lab_core::runner::backend::Hooks {
            output: Box::new(echo),
            update: Box::new(update),
        };
        let outcome = runner.run_job(job_run, hooks, cancel_rx).await;
        let latest = shown.lock().unwrap_or_else(|p| p.into_inner()).clone();
        anyhow::Ok((outcome, latest))
    })?;
    let (outcome, latest) = outcome;
    record = latest;
    let seconds = started.elapsed().as_secs_f64();
    record.ended(&outcome);
    if let Err(e) = record.save(&ctx.data_dir) {
        eprintln!("lab: cannot record job {}: {e}", run.id);
    }
    let (state, exit) = match outcome {
        Ok(outcome) => {
            if job.verbose {
                eprintln!(
                    "lab: job {} isolation: {}",
                    run.id,
                    terminal_safe_str(&outcome.isolation.to_string())
                );
            }
            (JobState::of(&outcome.exit), Some(outcome.exit))
        }
        // As the jobs API records it: a job that could not start is refused.
        Err(e) => {
            eprintln!("lab: job {} could not start: {e}", run.id);
            (JobState::Refused, None)
        }
    };
    let detail = match &exit {
        Some(Exit::Code(code)) => format!(" (exit {code})"),
        Some(Exit::Signal(signal)) => format!(" (signal {signal})"),
        Some(Exit::Refused { layer, error }) if layer == "slurm" => {
            terminal_safe_str(&format!(" (Slurm refused it: {error})"))
        }
        Some(Exit::Refused { layer, error }) => {
            terminal_safe_str(&format!(" (the sandbox refused at {layer}: {error})"))
        }
        Some(Exit::Oom) => " (the OOM killer ended it at [runner] memory_max)".to_owned(),
        Some(Exit::NodeFail(why)) => terminal_safe_str(&format!(" ({why})")),
        Some(Exit::TimedOut | Exit::Cancelled) | None => String::new(),
    };
    eprintln!(
        "lab: {} {state}{detail} in {seconds:.1} s — {run_dir}",
        run.id
    );
    Ok(exit_code(state, exit.as_ref().unwrap_or(&Exit::Code(1))))
}

/// One line for what a backend learnt of a `lab run` job.
fn describe_update(update: &lab_core::runner::backend::Update) -> String {
    use lab_core::runner::backend::Update;
    match update {
        Update::Submitted { slurm_job_id } => format!("submitted to Slurm as job {slurm_job_id}"),
        Update::Queued { reason, position } => format!(
            "queued{}{}",
            reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            position
                .map(|p| format!(", position {p} in the partition's queue"))
                .unwrap_or_default()
        ),
        Update::Running { node: Some(node) } => format!("running on {node}"),
        Update::Running { node: None } => "running".to_owned(),
    }
}

/// What a job request or workflow plans to: its name, steps, variables and
/// canonical cwd. A refusal is a `lab_core::runner::runner::Error` inside the
/// `anyhow::Error`.
#[allow(clippy::type_complexity)]
fn plan_job(
    runner: &lab_core::runner::Runner,
    registry: &lab_registry::Registry,
    job: &JobArgs,
) -> anyhow::Result<(
    String,
    Vec<lab_core::runner::runner::StepPlan>,
    Vec<lab_core::runner::runner::EnvVar>,
    PathBuf,
)> {
    Ok(match &job.workflow {
        Some(file) => {
            let file = std::path::absolute(file).context("resolving the workflow path")?;
            let planned = lab_core::runner::jobs::plan_workflow_job(
                runner,
                registry,
                &file,
                job.confirm_exec_hooks,
            )?;
            (planned.name, planned.steps, Vec::new(), planned.cwd)
        }
        None => {
            let Some((program, args)) = job.argv.split_first() else {
                bail!(
                    "nothing to run: give the program after `--`, e.g. `lab run -- python3 train.py`"
                );
            };
            // The job starts where `lab run` was invoked (SPEC §3).
            let here = std::env::current_dir().context("reading the current directory")?;
            // A relative path (`.venv/bin/python`) means what it means to
            // the caller's shell: from here.
            let program = if program.contains('/') && !program.starts_with('/') {
                here.join(program).to_string_lossy().into_owned()
            } else {
                program.clone()
            };
            let request = lab_core::runner::JobRequest {
                program,
                args: args.to_vec(),
                env: job.env.clone(),
                timeout_secs: Some(job.timeout),
                cwd: None,
                resources: None,
            };
            // PROGRAM as the caller's shell finds it (an activated venv or
            // conda env first), allowed by its canonical path, run by the
            // path found (SPEC §3).
            let caller_path = std::env::var("PATH").ok();
            let found = runner.resolve_for_caller(&request.program, caller_path.as_deref())?;
            for shim in found.passed_over() {
                eprintln!(
                    "lab: note: passing over {} (a version manager's shim, which picks the real program at run time from files the sandbox does not show); running {}",
                    terminal_safe_str(&shim.display().to_string()),
                    terminal_safe_str(&found.program().exec_path.display().to_string()),
                );
            }
            let (step, passed, _) = runner.plan_found(&request, &found)?;
            let cwd = runner.check_cwd(&here, registry.allowed_roots())?;
            (
                lab_core::runner::runner::step_name(&step),
                vec![step],
                passed,
                cwd,
            )
        }
    })
}

/// `bytes` with every control byte but newline, tab and carriage return
/// shown as `\xNN` (ESC, BEL, C1 controls in UTF-8 included), for a
/// terminal.
pub(crate) fn terminal_safe(bytes: &[u8]) -> Vec<u8> {
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
pub(crate) fn terminal_safe_str(text: &str) -> String {
    String::from_utf8_lossy(&terminal_safe(text.as_bytes())).into_owned()
}

/// What `lab run` was asked.
pub(crate) struct JobArgs {
    pub(crate) workflow: Option<PathBuf>,
    pub(crate) argv: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) timeout: u64,
    pub(crate) allow_network: bool,
    pub(crate) allow_workflow_exec: bool,
    pub(crate) confirm_exec_hooks: bool,
    /// `--cpus`, `--mem-mb`, `--gpus`.
    pub(crate) resources: lab_core::runner::Resources,
    /// `--verbose`: also print the isolation layers in force.
    pub(crate) verbose: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_run_exit_codes_follow_the_job_state() {
        for (state, exit, code) in [
            (JobState::Finished, Exit::Code(0), 0),
            (JobState::Failed, Exit::Code(3), 3),
            (JobState::Failed, Exit::Code(255), 255),
            (JobState::Failed, Exit::Code(256), 1),
            (JobState::Failed, Exit::Code(-1), 1),
            (JobState::Timeout, Exit::TimedOut, 124),
            (JobState::Cancelled, Exit::Cancelled, 130),
            (JobState::Killed, Exit::Signal(9), 137),
            (JobState::Killed, Exit::Signal(15), 137),
            (JobState::Oom, Exit::Signal(9), 137),
            (
                JobState::Refused,
                Exit::Refused {
                    layer: "seccomp".into(),
                    error: "x".into(),
                },
                2,
            ),
            (JobState::NodeFail, Exit::Code(0), 1),
            (JobState::Interrupted, Exit::Code(0), 1),
        ] {
            assert_eq!(exit_code(state, &exit), code, "{state} {exit:?}");
        }
    }

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
