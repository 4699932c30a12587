//! `Idempotency-Key` on POSTs: the same key with the same body replays the stored response;
//! with a different body it is refused (422); concurrent duplicates run once — the later ones
//! wait for the first to finish and replay its response.

use crate::auth::Caller;
use crate::db::{self, models::idempotency, DbPool};
use crate::error::{problem_response, AppError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::Duration;

pub const HEADER: &str = "Idempotency-Key";

/// How long a duplicate waits for the first request with its key before giving up with 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);
/// How long an answer is kept, as Stripe keeps its own: a retry within a day replays it; a
/// key reused later runs as new. Older answers are deleted by the jobs worker (`purge`).
pub const RETENTION_HOURS: i64 = 24;
/// Larger answers are not kept (only reads answer that much, e.g. a batch entitlement
/// check): the key is freed and a retry runs again, which derives the same answer.
pub const MAX_STORED_ANSWER_BYTES: usize = 64 * 1024;
const POLL: Duration = Duration::from_millis(25);

/// A successful JSON answer of a POST.
pub struct Reply {
    pub status: StatusCode,
    /// Rendered JSON.
    pub body: String,
}

impl Reply {
    pub fn created(body: impl serde::Serialize) -> Reply {
        Self::json(StatusCode::CREATED, body)
    }
    pub fn ok(body: impl serde::Serialize) -> Reply {
        Self::json(StatusCode::OK, body)
    }
    pub fn json(status: StatusCode, body: impl serde::Serialize) -> Reply {
        Reply {
            status,
            body: serde_json::to_string(&body).unwrap_or_else(|_| "{}".into()),
        }
    }
}

fn respond(status: u16, body: &str, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut res = HttpResponse::build(status);
    res.content_type(content_type);
    if replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    res.body(body.to_owned())
}

fn key_of(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            AppError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1-255 visible ASCII characters",
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// Runs `work` at most once per (caller, key).
pub async fn once<F, Fut>(
    pool: &DbPool,
    caller: &Caller,
    req: &HttpRequest,
    body: &[u8],
    work: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Reply, AppError>>,
{
    let Some(key) = key_of(req)? else {
        let reply = work().await?;
        return Ok(respond(reply.status.as_u16(), &reply.body, false));
    };
    let scope = caller.scope();
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(b" ");
    hasher.update(req.path());
    hasher.update(b"\n");
    hasher.update(body);
    let hash = hex::encode(hasher.finalize());

    let (s, k, h) = (scope.clone(), key.clone(), hash.clone());
    let expired =
        crate::db::models::to_db(chrono::Utc::now() - chrono::Duration::hours(RETENTION_HOURS));
    let held = db::run(pool, move |conn| {
        Ok(idempotency::claim(conn, &s, &k, &h, expired)?)
    })
    .await?;
    if let Some(stored) = held {
        return replay(pool, scope, key, hash, stored).await;
    }

    match work().await {
        Ok(reply) => {
            let text = reply.body;
            let (s, k, t) = (scope, key, text.clone());
            let status = reply.status.as_u16();
            let keep = text.len() <= MAX_STORED_ANSWER_BYTES;
            db::run(pool, move |conn| {
                if keep {
                    Ok(idempotency::complete(conn, &s, &k, status, &t)?)
                } else {
                    Ok(idempotency::release(conn, &s, &k)?)
                }
            })
            .await?;
            Ok(respond(status, &text, false))
        }
        Err(AppError::Client {
            status,
            code,
            detail,
        }) if !status.is_server_error() => {
            // The client's mistake is the answer: replaying it is what the client expects.
            let res = problem_response(status, code, &detail);
            let text = serde_json::json!({
                "type": format!("/problems/{code}"),
                "title": status.canonical_reason().unwrap_or("Error"),
                "status": status.as_u16(), "code": code, "detail": detail,
            })
            .to_string();
            let (s, k) = (scope, key);
            db::run(pool, move |conn| {
                Ok(idempotency::complete(conn, &s, &k, status.as_u16(), &text)?)
            })
            .await?;
            Ok(res)
        }
        Err(other) => {
            // Our failure or a dependency's (a 5xx: Stripe unreachable, say), not an answer:
            // free the key so a retry runs again — with the same Stripe idempotency keys, so
            // whatever the first attempt made at Stripe is found, not made twice.
            let (s, k) = (scope, key);
            let _ = db::run(pool, move |conn| Ok(idempotency::release(conn, &s, &k)?)).await;
            Err(other)
        }
    }
}

async fn replay(
    pool: &DbPool,
    scope: String,
    key: String,
    hash: String,
    mut stored: idempotency::StoredKey,
) -> Result<HttpResponse, AppError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        if stored.request_hash != hash {
            return Err(AppError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            ));
        }
        if let (Some(status), Some(body)) = (stored.status_code, &stored.response_body) {
            return Ok(respond(status as u16, body, true));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(AppError::conflict(
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still being processed; retry later",
            ));
        }
        tokio::time::sleep(POLL).await;
        let (s, k) = (scope.clone(), key.clone());
        match db::run(pool, move |conn| Ok(idempotency::find(conn, &s, &k)?)).await? {
            Some(next) => stored = next,
            // The first request failed on our side and freed the key: the client may retry.
            None => {
                return Err(AppError::conflict(
                    "idempotency_key_in_progress",
                    "the first request with this Idempotency-Key failed; retry",
                ))
            }
        }
    }
}

/// Deletes answers older than the retention (the jobs worker calls this), a batch at a time
/// until none is left, so the purge keeps up with any rate of new keys.
pub async fn purge(pool: &DbPool) -> Result<usize, AppError> {
    const BATCH: i64 = 1_000;
    let before =
        crate::db::models::to_db(chrono::Utc::now() - chrono::Duration::hours(RETENTION_HOURS));
    let mut purged = 0;
    loop {
        let n = db::run(pool, move |conn| {
            Ok(idempotency::purge(conn, before, BATCH)?)
        })
        .await?;
        purged += n;
        if n < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            return Ok(purged);
        }
    }
}

/// For POSTs that only read (a batch check, a signed token): an `Idempotency-Key` is checked
/// like any other, but the answer is not stored. Running such a request again derives the
/// answer as it is now, which is what a retry wants: a replayed day-old answer or expired
/// token would be wrong.
pub async fn read_only<F, Fut>(req: &HttpRequest, work: F) -> Result<HttpResponse, AppError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Reply, AppError>>,
{
    key_of(req)?;
    let reply = work().await?;
    Ok(respond(reply.status.as_u16(), &reply.body, false))
}
