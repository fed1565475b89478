//! The routes of SPEC §4, parsed once from a request's method and raw path.
//!
//! [`Resource::parse`] says what a raw path names, whatever the method (or
//! nothing: 404); [`Resource::route`] says what the method asks of it (or
//! which methods it answers: 405 with `Allow`). Both are pure. The guard
//! asks them what kind of request it checks (the login shell and its
//! assets, signing in, an element load); the router waits for the first
//! walk by the [`Resource`] and matches on the [`Route`].
//!
//! Parameters are slices of the raw path, still percent-encoded: each is
//! decoded, exactly once, by the handler that owns it (a run id is not
//! decoded at all; an artifact or metric name, an image's event file are).
//! Nothing is normalised: `//`, a trailing `/`, `.`, `..` and `%2F` stay
//! what they are, and a name that holds them is refused where it is read.
//!
//! ```text
//! GET /api/runs/demo/artifacts/videos/a%20b.mp4
//!   → Route::Artifact { run: "demo", raw_name: "videos/a%20b.mp4" }
//! ```

use std::time::Duration;

use http::Method;

/// Where the API lives. Sec-Fetch-Site is checked on every path below it,
/// routed or not.
pub(crate) const API: &str = "/api/";

/// What a raw path names (SPEC §4), whatever the method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resource<'a> {
    /// `/`: the page, or the login shell without a credential.
    Page,
    /// `/assets/{name}`: a static asset of the UI (`name` may hold `/`).
    Asset { name: &'a str },
    /// `/api/session`.
    Session,
    /// `/api/columns`.
    Columns,
    /// `/api/experiments`.
    Experiments,
    /// `/api/status`.
    Status,
    /// `/api/runs`.
    Runs,
    /// `/api/runs/{run}`.
    Run { run: &'a str },
    /// `/api/runs/{run}/artifacts/{raw_name}`: the rest of the path.
    Artifact { run: &'a str, raw_name: &'a str },
    /// `/api/runs/{run}/metrics/{raw_name}`: the rest of the path.
    Metric { run: &'a str, raw_name: &'a str },
    /// `/api/runs/{run}/histograms/{raw_name}`: the rest of the path.
    Histogram { run: &'a str, raw_name: &'a str },
    /// `/api/runs/{run}/images/{file}/{offset}/{n}`.
    Image {
        run: &'a str,
        file: &'a str,
        offset: &'a str,
        n: &'a str,
    },
    /// `/api/runs/{run}/export`.
    Export { run: &'a str },
    /// `/api/exports`.
    Exports,
    /// `/api/exports/{file}`.
    Bundle { file: &'a str },
    /// `/api/jobs`.
    Jobs,
    /// `/api/jobs/{job}`.
    Job { job: &'a str },
    /// `/api/jobs/{job}/log`.
    JobLog { job: &'a str },
    /// `/api/jobs/{job}/cancel`.
    JobCancel { job: &'a str },
}

/// What a request asks of a [`Resource`]: one variant per handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `GET|HEAD /`.
    Page,
    /// `GET|HEAD /assets/{name}`.
    Asset { name: &'a str },
    /// `POST /api/session`: sign in with the key.
    SignIn,
    /// `DELETE /api/session`.
    SignOut,
    /// `GET|HEAD /api/columns`.
    Columns,
    /// `GET|HEAD /api/experiments`.
    Experiments,
    /// `GET|HEAD /api/status`.
    Status,
    /// `GET|HEAD /api/runs`.
    ListRuns,
    /// `POST /api/runs`.
    ImportRun,
    /// `GET|HEAD /api/runs/{run}`.
    ShowRun { run: &'a str },
    /// `DELETE /api/runs/{run}`.
    ForgetRun { run: &'a str },
    /// `GET|HEAD /api/runs/{run}/artifacts/{raw_name}`.
    Artifact { run: &'a str, raw_name: &'a str },
    /// `GET|HEAD /api/runs/{run}/metrics/{raw_name}`.
    Metric { run: &'a str, raw_name: &'a str },
    /// `GET|HEAD /api/runs/{run}/histograms/{raw_name}`.
    Histogram { run: &'a str, raw_name: &'a str },
    /// `GET|HEAD /api/runs/{run}/images/{file}/{offset}/{n}`.
    Image {
        run: &'a str,
        file: &'a str,
        offset: &'a str,
        n: &'a str,
    },
    /// `POST /api/runs/{run}/export`.
    ExportRun { run: &'a str },
    /// `GET|HEAD /api/exports`.
    ListExports,
    /// `GET|HEAD /api/exports/{file}`.
    Bundle { file: &'a str },
    /// `GET|HEAD /api/jobs`.
    ListJobs,
    /// `POST /api/jobs`.
    StartJob,
    /// `GET|HEAD /api/jobs/{job}`.
    ShowJob { job: &'a str },
    /// `GET /api/jobs/{job}/log`: server-sent events.
    JobLog { job: &'a str },
    /// `POST /api/jobs/{job}/cancel`.
    CancelJob { job: &'a str },
}

/// Why a request has no route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteError {
    /// The path names nothing: 404 `not_found`.
    NotFound,
    /// The path names a resource that does not answer this method: 405
    /// with these methods in `Allow`.
    MethodNotAllowed {
        /// The `Allow` header's value.
        allow: &'static str,
    },
}

const READ: &str = "GET, HEAD";

impl<'a> Resource<'a> {
    /// What `path` (the raw request path, without the query) names.
    pub(crate) fn parse(path: &'a str) -> Result<Self, RouteError> {
        if path == "/" {
            return Ok(Resource::Page);
        }
        if let Some(name) = path.strip_prefix("/assets/") {
            return Ok(Resource::Asset { name });
        }
        let Some(api) = path.strip_prefix(API) else {
            return Err(RouteError::NotFound);
        };
        let segments: Vec<&str> = api.split('/').collect();
        // Everything after `runs/{run}/{kind}/`, slashes included.
        let rest = |run: &str, kind: &str| &api["runs/".len() + run.len() + 1 + kind.len() + 1..];
        Ok(match segments.as_slice() {
            ["session"] => Resource::Session,
            ["columns"] => Resource::Columns,
            ["experiments"] => Resource::Experiments,
            ["status"] => Resource::Status,
            ["runs"] => Resource::Runs,
            ["runs", run] => Resource::Run { run },
            ["runs", run, kind @ "artifacts", _, ..] => Resource::Artifact {
                run,
                raw_name: rest(run, kind),
            },
            ["runs", run, kind @ "metrics", _, ..] => Resource::Metric {
                run,
                raw_name: rest(run, kind),
            },
            ["runs", run, kind @ "histograms", _, ..] => Resource::Histogram {
                run,
                raw_name: rest(run, kind),
            },
            ["runs", run, "images", file, offset, n] => Resource::Image {
                run,
                file,
                offset,
                n,
            },
            ["runs", run, "export"] => Resource::Export { run },
            ["exports"] => Resource::Exports,
            ["exports", file] => Resource::Bundle { file },
            ["jobs"] => Resource::Jobs,
            ["jobs", job] => Resource::Job { job },
            ["jobs", job, "log"] => Resource::JobLog { job },
            ["jobs", job, "cancel"] => Resource::JobCancel { job },
            _ => return Err(RouteError::NotFound),
        })
    }

    /// What `method` asks of this resource, or which methods it answers.
    pub(crate) fn route(self, method: &Method) -> Result<Route<'a>, RouteError> {
        let read = *method == Method::GET || *method == Method::HEAD;
        let refuse = |allow| Err(RouteError::MethodNotAllowed { allow });
        match self {
            Resource::Page if read => Ok(Route::Page),
            Resource::Asset { name } if read => Ok(Route::Asset { name }),
            Resource::Session if *method == Method::POST => Ok(Route::SignIn),
            Resource::Session if *method == Method::DELETE => Ok(Route::SignOut),
            Resource::Session => refuse("POST, DELETE"),
            Resource::Columns if read => Ok(Route::Columns),
            Resource::Experiments if read => Ok(Route::Experiments),
            Resource::Status if read => Ok(Route::Status),
            Resource::Runs if read => Ok(Route::ListRuns),
            Resource::Runs if *method == Method::POST => Ok(Route::ImportRun),
            Resource::Runs => refuse("GET, HEAD, POST"),
            Resource::Run { run } if read => Ok(Route::ShowRun { run }),
            Resource::Run { run } if *method == Method::DELETE => Ok(Route::ForgetRun { run }),
            Resource::Run { .. } => refuse("GET, HEAD, DELETE"),
            Resource::Artifact { run, raw_name } if read => Ok(Route::Artifact { run, raw_name }),
            Resource::Metric { run, raw_name } if read => Ok(Route::Metric { run, raw_name }),
            Resource::Histogram { run, raw_name } if read => Ok(Route::Histogram { run, raw_name }),
            Resource::Image {
                run,
                file,
                offset,
                n,
            } if read => Ok(Route::Image {
                run,
                file,
                offset,
                n,
            }),
            Resource::Export { run } if *method == Method::POST => Ok(Route::ExportRun { run }),
            Resource::Export { .. } => refuse("POST"),
            Resource::Exports if read => Ok(Route::ListExports),
            Resource::Bundle { file } if read => Ok(Route::Bundle { file }),
            Resource::Jobs if read => Ok(Route::ListJobs),
            Resource::Jobs if *method == Method::POST => Ok(Route::StartJob),
            Resource::Jobs => refuse("GET, HEAD, POST"),
            Resource::Job { job } if read => Ok(Route::ShowJob { job }),
            Resource::JobLog { job } if *method == Method::GET => Ok(Route::JobLog { job }),
            Resource::JobLog { .. } => refuse("GET"),
            Resource::JobCancel { job } if *method == Method::POST => Ok(Route::CancelJob { job }),
            Resource::JobCancel { .. } => refuse("POST"),
            Resource::Page
            | Resource::Asset { .. }
            | Resource::Columns
            | Resource::Experiments
            | Resource::Status
            | Resource::Artifact { .. }
            | Resource::Metric { .. }
            | Resource::Histogram { .. }
            | Resource::Image { .. }
            | Resource::Exports
            | Resource::Bundle { .. }
            | Resource::Job { .. } => refuse(READ),
        }
    }

    /// Whether a page's element loads this resource without headers, so
    /// with the cookie and a URL signature only (SPEC §5): an artifact, a
    /// TensorBoard image, a bundle download, a job's log stream — each
    /// with no empty segment where a name goes. The signature is over the
    /// raw path itself.
    pub(crate) fn is_element(self) -> bool {
        match self {
            Resource::Artifact { run, raw_name } => {
                !run.is_empty() && raw_name.split('/').next().is_some_and(|s| !s.is_empty())
            }
            Resource::Image {
                run,
                file,
                offset,
                n,
            } => ![run, file, offset, n].iter().any(|s| s.is_empty()),
            Resource::Bundle { file } => !file.is_empty(),
            Resource::JobLog { job } => !job.is_empty(),
            _ => false,
        }
    }

    /// How long a request for this resource waits for the first walk of
    /// the allowed roots right after the server started: what names runs
    /// no longer than the gate's limit; the status page, which says how
    /// the walk goes, no longer than 0.75 s.
    pub(crate) fn first_walk_wait(self) -> Option<Duration> {
        match self {
            Resource::Runs
            | Resource::Run { .. }
            | Resource::Artifact { .. }
            | Resource::Metric { .. }
            | Resource::Histogram { .. }
            | Resource::Image { .. }
            | Resource::Export { .. }
            | Resource::Columns
            | Resource::Experiments
            | Resource::Exports
            | Resource::Bundle { .. } => Some(lab_core::gate::STUCK_AFTER),
            Resource::Status => Some(Duration::from_millis(750)),
            _ => None,
        }
    }
}

impl Route<'_> {
    /// Whether a request without a credential may reach this route: the
    /// login shell, its assets, and signing in.
    pub(crate) fn is_public(self) -> bool {
        matches!(self, Route::Page | Route::Asset { .. } | Route::SignIn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `method path` as the guard and the router do and compares
    /// with `expected`.
    fn check(method: &str, path: &str, expected: Result<Route<'_>, RouteError>) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let route = Resource::parse(path).and_then(|r| r.route(&method));
        assert_eq!(route, expected, "{method} {path}");
    }

    fn refused(allow: &'static str) -> Result<Route<'static>, RouteError> {
        Err(RouteError::MethodNotAllowed { allow })
    }

    const NOT_FOUND: Result<Route<'static>, RouteError> = Err(RouteError::NotFound);

    #[test]
    fn every_route_parses_from_its_method_and_raw_path() {
        let long_name = format!("{}.txt", "a/".repeat(4096));
        let long_path = format!("/api/runs/demo/artifacts/{long_name}");
        let long_junk = format!("/api/{}", "x".repeat(10_000));
        let table: &[(&str, &str, Result<Route<'_>, RouteError>)] = &[
            // The page and its assets, open to anyone.
            ("GET", "/", Ok(Route::Page)),
            ("HEAD", "/", Ok(Route::Page)),
            ("POST", "/", refused("GET, HEAD")),
            ("OPTIONS", "/", refused("GET, HEAD")),
            ("GET", "//", NOT_FOUND),
            ("GET", "/index.html", NOT_FOUND),
            ("GET", "/assets/app.js", Ok(Route::Asset { name: "app.js" })),
            (
                "HEAD",
                "/assets/app.css",
                Ok(Route::Asset { name: "app.css" }),
            ),
            ("GET", "/assets/", Ok(Route::Asset { name: "" })),
            ("GET", "/assets/../x", Ok(Route::Asset { name: "../x" })),
            ("GET", "/assets/a/b.js", Ok(Route::Asset { name: "a/b.js" })),
            ("GET", "/assets/a%2Fb", Ok(Route::Asset { name: "a%2Fb" })),
            ("DELETE", "/assets/app.js", refused("GET, HEAD")),
            ("GET", "/assets", NOT_FOUND),
            // The session.
            ("POST", "/api/session", Ok(Route::SignIn)),
            ("DELETE", "/api/session", Ok(Route::SignOut)),
            ("GET", "/api/session", refused("POST, DELETE")),
            ("PUT", "/api/session", refused("POST, DELETE")),
            ("POST", "/api/session/", NOT_FOUND),
            ("POST", "/api//session", NOT_FOUND),
            ("POST", "/API/session", NOT_FOUND),
            // Columns and status.
            ("GET", "/api/columns", Ok(Route::Columns)),
            ("HEAD", "/api/columns", Ok(Route::Columns)),
            ("POST", "/api/columns", refused("GET, HEAD")),
            ("GET", "/api/experiments", Ok(Route::Experiments)),
            ("HEAD", "/api/experiments", Ok(Route::Experiments)),
            ("DELETE", "/api/experiments", refused("GET, HEAD")),
            ("GET", "/api/experiments/x", Err(RouteError::NotFound)),
            ("GET", "/api/status", Ok(Route::Status)),
            ("DELETE", "/api/status", refused("GET, HEAD")),
            ("GET", "/api/status/", NOT_FOUND),
            // Runs.
            ("GET", "/api/runs", Ok(Route::ListRuns)),
            ("HEAD", "/api/runs", Ok(Route::ListRuns)),
            ("POST", "/api/runs", Ok(Route::ImportRun)),
            ("DELETE", "/api/runs", refused("GET, HEAD, POST")),
            ("OPTIONS", "/api/runs", refused("GET, HEAD, POST")),
            ("GET", "/api/runs/demo", Ok(Route::ShowRun { run: "demo" })),
            ("HEAD", "/api/runs/demo", Ok(Route::ShowRun { run: "demo" })),
            (
                "DELETE",
                "/api/runs/demo",
                Ok(Route::ForgetRun { run: "demo" }),
            ),
            ("POST", "/api/runs/demo", refused("GET, HEAD, DELETE")),
            // A trailing slash is an empty id, refused by the handler.
            ("GET", "/api/runs/", Ok(Route::ShowRun { run: "" })),
            ("GET", "/api/runs/..", Ok(Route::ShowRun { run: ".." })),
            (
                "GET",
                "/api/runs/a%2Fb",
                Ok(Route::ShowRun { run: "a%2Fb" }),
            ),
            ("GET", "/api/runs/demo/", NOT_FOUND),
            ("GET", "/api/runs//demo", NOT_FOUND),
            ("GET", "/api/runs/demo/nothing", NOT_FOUND),
            // Artifacts: the rest of the path, raw.
            (
                "GET",
                "/api/runs/demo/artifacts/notes.md",
                Ok(Route::Artifact {
                    run: "demo",
                    raw_name: "notes.md",
                }),
            ),
            (
                "HEAD",
                "/api/runs/demo/artifacts/videos/a%20b.mp4",
                Ok(Route::Artifact {
                    run: "demo",
                    raw_name: "videos/a%20b.mp4",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/artifacts/videos%2Fa.mp4",
                Ok(Route::Artifact {
                    run: "demo",
                    raw_name: "videos%2Fa.mp4",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/artifacts/../../etc/passwd",
                Ok(Route::Artifact {
                    run: "demo",
                    raw_name: "../../etc/passwd",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/artifacts/%2e%2e/x",
                Ok(Route::Artifact {
                    run: "demo",
                    raw_name: "%2e%2e/x",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/artifacts//x",
                Ok(Route::Artifact {
                    run: "demo",
                    raw_name: "/x",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/artifacts/dir/",
                Ok(Route::Artifact {
                    run: "demo",
                    raw_name: "dir/",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/artifacts/",
                Ok(Route::Artifact {
                    run: "demo",
                    raw_name: "",
                }),
            ),
            (
                "GET",
                "/api/runs//artifacts/x",
                Ok(Route::Artifact {
                    run: "",
                    raw_name: "x",
                }),
            ),
            (
                "GET",
                &long_path,
                Ok(Route::Artifact {
                    run: "demo",
                    raw_name: &long_name,
                }),
            ),
            ("GET", "/api/runs/demo/artifacts", NOT_FOUND),
            ("POST", "/api/runs/demo/artifacts/x", refused("GET, HEAD")),
            ("DELETE", "/api/runs/demo/artifacts/x", refused("GET, HEAD")),
            // Metrics, alike.
            (
                "GET",
                "/api/runs/demo/metrics/train%2Floss",
                Ok(Route::Metric {
                    run: "demo",
                    raw_name: "train%2Floss",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/metrics/train/loss",
                Ok(Route::Metric {
                    run: "demo",
                    raw_name: "train/loss",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/metrics/",
                Ok(Route::Metric {
                    run: "demo",
                    raw_name: "",
                }),
            ),
            ("PUT", "/api/runs/demo/metrics/loss", refused("GET, HEAD")),
            ("GET", "/api/runs/demo/metrics", NOT_FOUND),
            // Histograms, alike.
            (
                "GET",
                "/api/runs/demo/histograms/layer1%2Fweights",
                Ok(Route::Histogram {
                    run: "demo",
                    raw_name: "layer1%2Fweights",
                }),
            ),
            (
                "HEAD",
                "/api/runs/demo/histograms/layer1/weights",
                Ok(Route::Histogram {
                    run: "demo",
                    raw_name: "layer1/weights",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/histograms/",
                Ok(Route::Histogram {
                    run: "demo",
                    raw_name: "",
                }),
            ),
            ("POST", "/api/runs/demo/histograms/w", refused("GET, HEAD")),
            ("GET", "/api/runs/demo/histograms", NOT_FOUND),
            // TensorBoard images: exactly three segments after `images`.
            (
                "GET",
                "/api/runs/demo/images/events.out.tfevents.1/0/1",
                Ok(Route::Image {
                    run: "demo",
                    file: "events.out.tfevents.1",
                    offset: "0",
                    n: "1",
                }),
            ),
            (
                "HEAD",
                "/api/runs/demo/images/a%2Fb/x/y",
                Ok(Route::Image {
                    run: "demo",
                    file: "a%2Fb",
                    offset: "x",
                    n: "y",
                }),
            ),
            (
                "GET",
                "/api/runs/demo/images///",
                Ok(Route::Image {
                    run: "demo",
                    file: "",
                    offset: "",
                    n: "",
                }),
            ),
            ("POST", "/api/runs/demo/images/f/0/1", refused("GET, HEAD")),
            ("GET", "/api/runs/demo/images/f/0", NOT_FOUND),
            ("GET", "/api/runs/demo/images/f/0/1/", NOT_FOUND),
            // Exports.
            (
                "POST",
                "/api/runs/demo/export",
                Ok(Route::ExportRun { run: "demo" }),
            ),
            ("GET", "/api/runs/demo/export", refused("POST")),
            ("HEAD", "/api/runs/demo/export", refused("POST")),
            ("POST", "/api/runs/demo/export/", NOT_FOUND),
            ("GET", "/api/exports", Ok(Route::ListExports)),
            ("POST", "/api/exports", refused("GET, HEAD")),
            (
                "GET",
                "/api/exports/demo.tar",
                Ok(Route::Bundle { file: "demo.tar" }),
            ),
            (
                "HEAD",
                "/api/exports/demo.tar",
                Ok(Route::Bundle { file: "demo.tar" }),
            ),
            ("GET", "/api/exports/", Ok(Route::Bundle { file: "" })),
            ("GET", "/api/exports/..", Ok(Route::Bundle { file: ".." })),
            (
                "GET",
                "/api/exports/a%2Fb.tar",
                Ok(Route::Bundle { file: "a%2Fb.tar" }),
            ),
            ("DELETE", "/api/exports/demo.tar", refused("GET, HEAD")),
            ("GET", "/api/exports/a/b.tar", NOT_FOUND),
            // Jobs.
            ("GET", "/api/jobs", Ok(Route::ListJobs)),
            ("POST", "/api/jobs", Ok(Route::StartJob)),
            ("PATCH", "/api/jobs", refused("GET, HEAD, POST")),
            (
                "GET",
                "/api/jobs/demo-1",
                Ok(Route::ShowJob { job: "demo-1" }),
            ),
            (
                "HEAD",
                "/api/jobs/demo-1",
                Ok(Route::ShowJob { job: "demo-1" }),
            ),
            ("DELETE", "/api/jobs/demo-1", refused("GET, HEAD")),
            (
                "GET",
                "/api/jobs/demo-1/log",
                Ok(Route::JobLog { job: "demo-1" }),
            ),
            ("HEAD", "/api/jobs/demo-1/log", refused("GET")),
            ("POST", "/api/jobs/demo-1/log", refused("GET")),
            (
                "POST",
                "/api/jobs/demo-1/cancel",
                Ok(Route::CancelJob { job: "demo-1" }),
            ),
            ("GET", "/api/jobs/demo-1/cancel", refused("POST")),
            ("GET", "/api/jobs/demo-1/other", NOT_FOUND),
            // Unknown methods are refused with the route's Allow.
            ("BREW", "/api/runs/demo", refused("GET, HEAD, DELETE")),
            ("TRACE", "/", refused("GET, HEAD")),
            // What names nothing.
            ("GET", "", NOT_FOUND),
            ("GET", "/api", NOT_FOUND),
            ("GET", "/api/", NOT_FOUND),
            ("GET", "/api/nothing", NOT_FOUND),
            ("GET", "/api/runs%2Fdemo", NOT_FOUND),
            ("GET", "/api/%2e%2e/runs", NOT_FOUND),
            ("GET", "/api/../api/runs", NOT_FOUND),
            ("GET", "/apiruns", NOT_FOUND),
            ("GET", "/favicon.ico", NOT_FOUND),
            ("GET", &long_junk, NOT_FOUND),
        ];
        for (method, path, expected) in table {
            check(method, path, *expected);
        }
    }

    /// Whether `method path` is an element load, as the guard asks it.
    fn element(method: &str, path: &str) -> bool {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let read = method == Method::GET || method == Method::HEAD;
        read && Resource::parse(path).is_ok_and(Resource::is_element)
    }

    #[test]
    fn element_loads_are_reads_of_artifacts_images_bundles_and_job_logs_with_every_name() {
        let table: &[(&str, &str, bool)] = &[
            ("GET", "/api/runs/demo/artifacts/notes.md", true),
            ("HEAD", "/api/runs/demo/artifacts/videos/a%20b.mp4", true),
            ("GET", "/api/runs/demo/artifacts/dir/", true),
            (
                "GET",
                "/api/runs/demo/images/events.out.tfevents.1/0/1",
                true,
            ),
            ("GET", "/api/exports/demo.tar", true),
            ("GET", "/api/jobs/demo-1/log", true),
            // The router refuses HEAD on a log stream, after the guard.
            ("HEAD", "/api/jobs/demo-1/log", true),
            ("DELETE", "/api/runs/demo/artifacts/notes.md", false),
            ("POST", "/api/jobs/demo-1/log", false),
            ("GET", "/api/runs/demo/artifacts/", false),
            ("GET", "/api/runs/demo/artifacts//x", false),
            ("GET", "/api/runs//artifacts/x", false),
            ("GET", "/api/runs/demo/images/f//1", false),
            ("GET", "/api/exports/", false),
            ("GET", "/api/jobs//log", false),
            ("GET", "/api/runs/demo/metrics/loss", false),
            ("GET", "/api/runs/demo/histograms/w", false),
            ("GET", "/api/runs/demo", false),
            ("GET", "/api/runs", false),
            ("GET", "/", false),
            ("GET", "/assets/app.js", false),
        ];
        for (method, path, expected) in table {
            assert_eq!(element(method, path), *expected, "{method} {path}");
        }
    }
}
