//! Reading the helper's report: the isolation layers in force and the exit.

use std::path::Path;

use crate::exit::Exit;
use crate::protocol::Report;
use crate::record::{Isolation, Refusal};

pub(crate) fn read_report_lines(report: &Path) -> Vec<Report> {
    std::fs::read_to_string(report)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The isolation report and the exit the helper recorded: each layer's
/// typed line folded into one [`Isolation`].
pub(crate) fn read_report(report: &Path) -> (Isolation, Exit) {
    let lines = read_report_lines(report);
    let mut isolation = Isolation::default();
    let mut exit = Exit::Refused {
        layer: "sandbox".into(),
        error: "the sandbox ended without reporting".into(),
    };
    let mut refused = false;
    let mut started = false;
    let mut ended = false;
    for line in lines {
        match line {
            Report::Namespaces {
                user_namespace,
                mount_namespace,
                pid_namespace,
                network_namespace,
                uid_inside,
            } => {
                isolation.user_namespace = Some(user_namespace);
                isolation.mount_namespace = Some(mount_namespace);
                isolation.pid_namespace = Some(pid_namespace);
                isolation.network_namespace = Some(network_namespace);
                isolation.uid_inside = Some(uid_inside);
            }
            Report::Network { network } => isolation.network = Some(network),
            Report::Mounts { mounts } => isolation.mounts = Some(mounts),
            Report::Job {
                landlock_filesystem,
                seccomp,
                no_new_privs,
                capabilities,
                rlimits,
            } => {
                isolation.landlock_filesystem = Some(landlock_filesystem);
                isolation.seccomp = Some(seccomp);
                isolation.no_new_privs = Some(no_new_privs);
                isolation.capabilities = Some(capabilities);
                isolation.rlimits = Some(rlimits);
            }
            Report::Refused { layer, error } => {
                refused = true;
                isolation.refused = Some(Refusal {
                    layer: layer.clone(),
                    error: error.clone(),
                });
                exit = Exit::Refused { layer, error };
            }
            // A refusal is final: the exit init records after it (the job
            // process leaving with REFUSED) does not hide it.
            Report::Exit { code, signal } if !refused => {
                ended = true;
                exit = match (code, signal) {
                    (Some(c), _) => Exit::Code(c),
                    (_, Some(s)) => Exit::Signal(s),
                    _ => exit,
                };
            }
            Report::Killed { signal } if !refused => {
                ended = true;
                exit = Exit::Signal(signal);
            }
            Report::Started => started = true,
            _ => {}
        }
    }
    // Started, then silence: the helper itself was killed (by the OOM
    // killer in the job's cgroup, or SIGKILL) and the job with it. The job
    // ran: that is no refusal.
    if started && !refused && !ended {
        exit = Exit::Signal(9);
    }
    (isolation, exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::REFUSED;

    fn report(lines: &[&str]) -> (Isolation, Exit) {
        let dir =
            std::env::temp_dir().join(format!("lab-report-{}-{}", std::process::id(), lines.len()));
        std::fs::write(&dir, lines.join("\n")).unwrap();
        let parsed = read_report(&dir);
        std::fs::remove_file(&dir).unwrap();
        parsed
    }

    #[test]
    fn a_refused_layer_stays_the_outcome() {
        let (isolation, exit) = report(&[
            r#"{"stage":"namespaces","user_namespace":true}"#,
            r#"{"stage":"refused","layer":"Landlock","error":"EPERM"}"#,
            &format!(r#"{{"stage":"exit","code":{REFUSED}}}"#),
        ]);
        assert_eq!(
            exit,
            Exit::Refused {
                layer: "Landlock".into(),
                error: "EPERM".into()
            }
        );
        assert_eq!(isolation.user_namespace, Some(true));
        assert_eq!(isolation.refused.unwrap().layer, "Landlock");
    }

    #[test]
    fn exits_and_silence_are_read_as_such() {
        assert_eq!(report(&[r#"{"stage":"exit","code":3}"#]).1, Exit::Code(3));
        assert_eq!(
            report(&[r#"{"stage":"exit","signal":9}"#]).1,
            Exit::Signal(9)
        );
        assert!(
            matches!(report(&[]).1, Exit::Refused { .. }),
            "no report is a refusal, never a success"
        );
        // The job started, then the helper fell silent (killed, by the OOM
        // killer in the job's cgroup or SIGKILL): killed, not refused — it
        // ran, and may have changed things.
        assert_eq!(
            report(&[r#"{"stage":"namespaces"}"#, r#"{"stage":"started"}"#]).1,
            Exit::Signal(9)
        );
        assert_eq!(
            report(&[r#"{"stage":"started"}"#, r#"{"stage":"killed","signal":9}"#]).1,
            Exit::Signal(9)
        );
        assert!(matches!(
            report(&[
                r#"{"stage":"started"}"#,
                r#"{"stage":"refused","layer":"mounts","error":"x"}"#
            ])
            .1,
            Exit::Refused { .. }
        ));
    }
}
