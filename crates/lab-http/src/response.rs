//! Response building: JSON errors with stable codes, and the security
//! headers every response carries.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

/// The body type of every response.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// CSP of the UI page: only our own scripts, styles and media; no inline
/// code; never framed.
pub const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; media-src 'self'; connect-src 'self'; font-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";
/// CSP of everything else: artifacts, JSON, errors. `sandbox` keeps anything
/// a run wrote from running script on the Lab's origin.
pub const SANDBOX_CSP: &str = "sandbox; default-src 'none'; frame-ancestors 'none'";

/// A full in-memory body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// Every error code the API answers with (`{"error": {"code": …}}`), one
/// place; docs/API.md lists each (a tidy test checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// `already_registered`
    AlreadyRegistered,
    /// `artifact_not_allowed`
    ArtifactNotAllowed,
    /// `artifact_not_found`
    ArtifactNotFound,
    /// `bad_argument`
    BadArgument,
    /// `bad_resources`
    BadResources,
    /// `bad_body`
    BadBody,
    /// `bad_content_length`
    BadContentLength,
    /// `bad_filter`
    BadFilter,
    /// `bad_key`
    BadKey,
    /// `bad_query`
    BadQuery,
    /// `bad_signature`
    BadSignature,
    /// `bad_request_target`
    BadRequestTarget,
    /// `bad_token`
    BadToken,
    /// `binding_required`
    BindingRequired,
    /// `body_timeout`
    BodyTimeout,
    /// `body_too_large`
    BodyTooLarge,
    /// `bundle_exists`
    BundleExists,
    /// `bundle_not_found`
    BundleNotFound,
    /// `cross_site_request`
    CrossSiteRequest,
    /// `cwd_not_allowed`
    CwdNotAllowed,
    /// `directory_not_found`
    DirectoryNotFound,
    /// `duplicate_host`
    DuplicateHost,
    /// `env_not_allowed`
    EnvNotAllowed,
    /// `exec_hooks_refused`
    ExecHooksRefused,
    /// `exports_not_configured`
    ExportsNotConfigured,
    /// `host_not_allowed`
    HostNotAllowed,
    /// `id_taken`
    IdTaken,
    /// `id_for_many_runs`
    IdForManyRuns,
    /// `internal`
    Internal,
    /// `invalid_artifact_name`
    InvalidArtifactName,
    /// `invalid_bundle_name`
    InvalidBundleName,
    /// `invalid_json`
    InvalidJson,
    /// `invalid_path`
    InvalidPath,
    /// `invalid_run_id`
    InvalidRunId,
    /// `invalid_workflow`
    InvalidWorkflow,
    /// `is_allowed_root`
    IsAllowedRoot,
    /// `job_not_running`
    JobNotRunning,
    /// `method_not_allowed`
    MethodNotAllowed,
    /// `missing_body`
    MissingBody,
    /// `missing_host`
    MissingHost,
    /// `missing_token`
    MissingToken,
    /// `not_a_directory`
    NotADirectory,
    /// `no_run_found`
    NoRunFound,
    /// `not_a_file`
    NotAFile,
    /// `not_found`
    NotFound,
    /// `not_owner`
    NotOwner,
    /// `origin_not_allowed`
    OriginNotAllowed,
    /// `outside_allowed_roots`
    OutsideAllowedRoots,
    /// `path_escapes_run`
    PathEscapesRun,
    /// `path_not_absolute`
    PathNotAbsolute,
    /// `path_not_utf8`
    PathNotUtf8,
    /// `permission_denied`
    PermissionDenied,
    /// `precondition_failed`
    PreconditionFailed,
    /// `program_not_allowed`
    ProgramNotAllowed,
    /// `range_not_satisfiable`
    RangeNotSatisfiable,
    /// `rate_limited`
    RateLimited,
    /// `registry_full`
    RegistryFull,
    /// `run_root_moved`
    RunRootMoved,
    /// `run_unavailable`
    RunUnavailable,
    /// `export_in_progress`
    ExportInProgress,
    /// `runner_disabled`
    RunnerDisabled,
    /// `runner_unavailable`
    RunnerUnavailable,
    /// `unauthenticated`
    Unauthenticated,
    /// `unknown_job`
    UnknownJob,
    /// `unknown_run`
    UnknownRun,
    /// `unknown_metric`
    UnknownMetric,
    /// `unknown_histogram`
    UnknownHistogram,
    /// `image_not_found`
    ImageNotFound,
    /// `unsupported_media_type`
    UnsupportedMediaType,
}

impl Code {
    /// The snake_case string clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::AlreadyRegistered => "already_registered",
            Code::ArtifactNotAllowed => "artifact_not_allowed",
            Code::ArtifactNotFound => "artifact_not_found",
            Code::BadArgument => "bad_argument",
            Code::BadResources => "bad_resources",
            Code::BadBody => "bad_body",
            Code::BadContentLength => "bad_content_length",
            Code::BadFilter => "bad_filter",
            Code::BadKey => "bad_key",
            Code::BadQuery => "bad_query",
            Code::BadSignature => "bad_signature",
            Code::BadRequestTarget => "bad_request_target",
            Code::BadToken => "bad_token",
            Code::BindingRequired => "binding_required",
            Code::BodyTimeout => "body_timeout",
            Code::BodyTooLarge => "body_too_large",
            Code::BundleExists => "bundle_exists",
            Code::BundleNotFound => "bundle_not_found",
            Code::CrossSiteRequest => "cross_site_request",
            Code::CwdNotAllowed => "cwd_not_allowed",
            Code::DirectoryNotFound => "directory_not_found",
            Code::DuplicateHost => "duplicate_host",
            Code::EnvNotAllowed => "env_not_allowed",
            Code::ExecHooksRefused => "exec_hooks_refused",
            Code::ExportsNotConfigured => "exports_not_configured",
            Code::HostNotAllowed => "host_not_allowed",
            Code::IdTaken => "id_taken",
            Code::Internal => "internal",
            Code::InvalidArtifactName => "invalid_artifact_name",
            Code::InvalidBundleName => "invalid_bundle_name",
            Code::InvalidJson => "invalid_json",
            Code::InvalidPath => "invalid_path",
            Code::InvalidRunId => "invalid_run_id",
            Code::InvalidWorkflow => "invalid_workflow",
            Code::IsAllowedRoot => "is_allowed_root",
            Code::JobNotRunning => "job_not_running",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::MissingBody => "missing_body",
            Code::MissingHost => "missing_host",
            Code::MissingToken => "missing_token",
            Code::NotADirectory => "not_a_directory",
            Code::NoRunFound => "no_run_found",
            Code::NotAFile => "not_a_file",
            Code::NotFound => "not_found",
            Code::NotOwner => "not_owner",
            Code::OriginNotAllowed => "origin_not_allowed",
            Code::OutsideAllowedRoots => "outside_allowed_roots",
            Code::PathEscapesRun => "path_escapes_run",
            Code::PathNotAbsolute => "path_not_absolute",
            Code::PathNotUtf8 => "path_not_utf8",
            Code::PermissionDenied => "permission_denied",
            Code::PreconditionFailed => "precondition_failed",
            Code::ProgramNotAllowed => "program_not_allowed",
            Code::RangeNotSatisfiable => "range_not_satisfiable",
            Code::RateLimited => "rate_limited",
            Code::RegistryFull => "registry_full",
            Code::RunRootMoved => "run_root_moved",
            Code::RunUnavailable => "run_unavailable",
            Code::ExportInProgress => "export_in_progress",
            Code::RunnerDisabled => "runner_disabled",
            Code::RunnerUnavailable => "runner_unavailable",
            Code::Unauthenticated => "unauthenticated",
            Code::UnknownJob => "unknown_job",
            Code::UnknownRun => "unknown_run",
            Code::UnknownMetric => "unknown_metric",
            Code::UnknownHistogram => "unknown_histogram",
            Code::ImageNotFound => "image_not_found",
            Code::IdForManyRuns => "id_for_many_runs",
            Code::UnsupportedMediaType => "unsupported_media_type",
        }
    }
}

/// An error answer: status, stable snake_case code, and a message that never
/// holds a path or internal detail.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: Code,
    /// Human-readable message.
    pub message: Cow<'static, str>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404 for a route that does not exist.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, "no such resource")
    }

    /// 401 for a request without a valid credential.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            "sign in with the link `lab serve` printed (…/#key=…), or send Authorization: Bearer KEY",
        )
    }

    /// 405 with the methods the route does allow.
    pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
        let mut response = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::MethodNotAllowed,
            format!("this resource allows {allow}"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        response
    }

    /// The JSON response.
    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({
            "error": { "code": self.code.as_str(), "message": self.message }
        });
        let mut response = json_response(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lab\""),
            );
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A JSON response with `Cache-Control: no-store`.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Adds the headers SPEC §5 requires on every response and removes any
/// `Access-Control-*` header, whatever produced the response.
pub fn secure(headers: &mut HeaderMap) {
    let names: Vec<header::HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX_CSP),
        );
    }
}
