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
    /// The database cannot be reached right now (connection lost, pool exhausted, locked).
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    /// Another dependency (Stripe, when an event needs it) cannot be reached right now.
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
            AppError::Unavailable(_) | AppError::DatabaseUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
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
                retry_later(problem_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service is temporarily unavailable; retry later",
                ))
            }
            AppError::DatabaseUnavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                retry_later(problem_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database cannot be reached right now; retry later",
                ))
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

/// A 503 says when to come back: soon (connections are re-made on the next checkout).
fn retry_later(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    res
}

const RETRY_AFTER_SECONDS: &str = "2";

/// Whether a database error is about the connection rather than the statement: the server
/// went away (restarted, `pg_terminate_backend`, network cut) or the pool has none to give.
fn connection_lost(message: &str) -> bool {
    const SIGNS: [&str; 7] = [
        "terminating connection",
        "server closed the connection",
        "connection refused",
        "could not connect",
        "no connection to the server",
        "connection reset",
        "the database system is",
    ];
    let m = message.to_ascii_lowercase();
    SIGNS.iter().any(|s| m.contains(s))
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
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::SerializationFailure => {
                    AppError::DatabaseUnavailable(info.message().to_owned())
                }
                _ if connection_lost(info.message()) => {
                    AppError::DatabaseUnavailable(info.message().to_owned())
                }
                // PostgreSQL refuses NUL in text (e.g. a %00 in a path id): the input's fault.
                _ if info.message().contains("invalid byte sequence") => {
                    AppError::bad_request("invalid_text", "text must not contain NUL characters")
                }
                // PostgreSQL broke a lock cycle by failing this transaction: nothing was
                // written, a retry succeeds.
                _ if info.message().contains("deadlock detected") => {
                    AppError::DatabaseUnavailable(info.message().to_owned())
                }
                _ if info.message().contains("database is locked") => {
                    AppError::DatabaseUnavailable(info.message().to_owned())
                }
                _ => AppError::Internal(anyhow::Error::new(e)),
            },
            // A transaction that could not be finished or rolled back on a dead connection.
            DieselError::BrokenTransactionManager | DieselError::RollbackErrorOnCommit { .. } => {
                AppError::DatabaseUnavailable(e.to_string())
            }
            _ if connection_lost(&e.to_string()) => AppError::DatabaseUnavailable(e.to_string()),
            _ => AppError::Internal(anyhow::Error::new(e)),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
