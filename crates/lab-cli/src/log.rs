//! Where the libraries' `tracing` events go: stderr, one line each, read as
//! `lab: MESSAGE` — the lines the Lab has always written (`lab: imported
//! tensorboard run X at PATH`, `lab: warning: …`), which people, tests and
//! the audit match. No timestamps, levels, targets or colours: the level is
//! in the words of the message where it matters (`warning:`).
//!
//! `RUST_LOG` narrows what is shown with `tracing-subscriber`'s `Targets`
//! syntax (`warn`, `lab_core=warn,info`; no regex); unset or unreadable, every
//! event at `info` and above is shown.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the process-wide subscriber. Writes happen on the thread that
/// logs, one `write` per line; no thread is started.
pub(crate) fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(default_filter);
    let lines = tracing_subscriber::fmt::layer()
        .event_format(LabLine)
        .with_writer(std::io::stderr);
    // Only fails if a subscriber is already installed, which would then be
    // the one in force.
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(filter)
        .try_init();
}

/// Unless `RUST_LOG` says otherwise: our crates' events from `info`, other
/// libraries' from `warn`, and none of object_store's (its retry notes name
/// URLs and upstream text, never written through our own log lines' care).
fn default_filter() -> Targets {
    let ours = [
        "lab",
        "lab_cli",
        "lab_core",
        "lab_formats",
        "lab_fs",
        "lab_http",
        "lab_redact",
        "lab_registry",
        "lab_runner",
        "lab_s3",
        "lab_stream",
    ];
    ours.into_iter()
        .fold(Targets::new().with_default(LevelFilter::WARN), |t, name| {
            t.with_target(name, LevelFilter::INFO)
        })
        .with_target("object_store", LevelFilter::OFF)
}

/// `lab: {message}`, then any other fields as `name=value`.
struct LabLine;

impl<S, N> FormatEvent<S, N> for LabLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str("lab: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
