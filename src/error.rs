//! One error type for the whole service, rendered as RFC 9457 `application/problem+json` with a
//! stable machine-readable `code`. Causes are logged, never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Anything the client can fix: bad input, missing or bad credentials, unknown ids.
    #[error("{detail}")]
    Client {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
    /// A dependency (the database) cannot be reached right now.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn client(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        AppError::Client {
            status,
            code,
            detail: detail.into(),
        }
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::client(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::client(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{} not found", what.into()),
        )
    }
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::client(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::client(StatusCode::CONFLICT, code, detail)
    }
}

/// The problem document (RFC 9457) every error answers with.
#[derive(Serialize)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: &'a str,
    pub status: u16,
    pub code: &'a str,
    pub detail: &'a str,
}

pub fn problem_response(status: StatusCode, code: &str, detail: &str) -> HttpResponse {
    let body = Problem {
        type_: format!("/problems/{code}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        code,
        detail,
    };
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(body)
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Client { status, .. } => *status,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AppError::Client {
                status,
                code,
                detail,
            } => problem_response(*status, code, detail),
            AppError::Unavailable(cause) => {
                tracing::warn!(%cause, "dependency unavailable");
                problem_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service is temporarily unavailable; retry later",
                )
            }
            AppError::Internal(cause) => {
                tracing::error!(cause = ?cause, "internal error");
                problem_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an unexpected error occurred",
                )
            }
        }
    }
}

/// The one place database errors become HTTP errors.
impl From<DieselError> for AppError {
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::NotFound => AppError::not_found("resource"),
            DieselError::DatabaseError(kind, info) => match kind {
                DatabaseErrorKind::UniqueViolation => AppError::conflict(
                    "already_exists",
                    "a resource with that identity already exists",
                ),
                DatabaseErrorKind::ForeignKeyViolation => AppError::unprocessable(
                    "unknown_reference",
                    "the request refers to something that does not exist",
                ),
                DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation => {
                    AppError::unprocessable(
                        "invalid",
                        format!("rejected by a constraint: {}", info.message()),
                    )
                }
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::SerializationFailure => {
                    AppError::Unavailable(info.message().to_owned())
                }
                // PostgreSQL refuses NUL in text (e.g. a %00 in a path id): the input's fault.
                _ if info.message().contains("invalid byte sequence") => {
                    AppError::bad_request("invalid_text", "text must not contain NUL characters")
                }
                _ if info.message().contains("database is locked") => {
                    AppError::Unavailable(info.message().to_owned())
                }
                _ => AppError::Internal(anyhow::Error::new(e)),
            },
            _ => AppError::Internal(anyhow::Error::new(e)),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
