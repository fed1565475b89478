//! How the libraries' errors become API errors (by variant, never by
//! message text).

use http::StatusCode;

use crate::response::{ApiError, Code};

pub(crate) fn internal(detail: &str) -> ApiError {
    tracing::error!("internal error: {detail}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
        "internal error; see the server log",
    )
}

impl From<lab_registry::Error> for ApiError {
    fn from(e: lab_registry::Error) -> Self {
        use lab_registry::Error as E;
        let msg = e.to_string();
        let (status, code) = match &e {
            E::InvalidId(_) => (StatusCode::BAD_REQUEST, Code::InvalidRunId),
            E::RelativePath => (StatusCode::BAD_REQUEST, Code::PathNotAbsolute),
            E::NonUtf8Path => (StatusCode::BAD_REQUEST, Code::PathNotUtf8),
            E::NotFound => (StatusCode::NOT_FOUND, Code::DirectoryNotFound),
            E::NotADirectory => (StatusCode::BAD_REQUEST, Code::NotADirectory),
            E::OutsideAllowedRoots => (StatusCode::FORBIDDEN, Code::OutsideAllowedRoots),
            E::IsAllowedRoot => (StatusCode::BAD_REQUEST, Code::IsAllowedRoot),
            E::AlreadyRegistered(_) => (StatusCode::CONFLICT, Code::AlreadyRegistered),
            E::IdTaken(_) => (StatusCode::CONFLICT, Code::IdTaken),
            E::UnknownRun => (StatusCode::NOT_FOUND, Code::UnknownRun),
            E::Full => (StatusCode::CONFLICT, Code::RegistryFull),
            _ => return internal(&msg),
        };
        ApiError::new(status, code, msg)
    }
}

impl From<lab_fs::Error> for ApiError {
    fn from(e: lab_fs::Error) -> Self {
        use lab_fs::Error as E;
        let (status, code, message) = match &e {
            E::InvalidName(reason) => (
                StatusCode::BAD_REQUEST,
                Code::InvalidArtifactName,
                format!("invalid artifact name: {reason}"),
            ),
            E::NotAllowed => (
                StatusCode::NOT_FOUND,
                Code::ArtifactNotAllowed,
                "this name is not on the artifact allowlist".to_owned(),
            ),
            E::Escape => (
                StatusCode::FORBIDDEN,
                Code::PathEscapesRun,
                "the artifact resolves outside its run directory".to_owned(),
            ),
            E::NotFound => (
                StatusCode::NOT_FOUND,
                Code::ArtifactNotFound,
                "no such artifact in this run".to_owned(),
            ),
            E::NotAFile => (
                StatusCode::NOT_FOUND,
                Code::NotAFile,
                "the artifact is not a regular file".to_owned(),
            ),
            E::RootMoved => (
                StatusCode::CONFLICT,
                Code::RunRootMoved,
                "the run directory is no longer where it was registered".to_owned(),
            ),
            _ => return internal(&e.to_string()),
        };
        ApiError::new(status, code, message)
    }
}

impl From<lab_core::Error> for ApiError {
    fn from(e: lab_core::Error) -> Self {
        match e {
            lab_core::Error::Registry(e) => e.into(),
            lab_core::Error::Fs(e) => e.into(),
            lab_core::Error::RunUnavailable(why) => {
                ApiError::new(StatusCode::CONFLICT, Code::RunUnavailable, why)
            }
            lab_core::Error::Exports(e) => internal(&format!("exports directory: {e}")),
        }
    }
}

/// The answer to a request for a run whose read is stuck.
pub(crate) fn stuck_error(stuck: lab_core::gate::Stuck) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::RunUnavailable,
        format!("the run cannot be read now: {}", stuck.reason()),
    )
}
