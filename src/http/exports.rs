//! Finance's exports of the ledger as CSV, streamed (see `services::exports`).

use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::services::exports::{self, Period};
use actix_web::{web, HttpResponse};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/admin/exports/ledger.csv").route(web::get().to(ledger)))
        .service(web::resource("/v1/admin/exports/journal.csv").route(web::get().to(journal)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerQuery {
    from: String,
    to: String,
    account: Option<String>,
    bom: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    from: String,
    to: String,
    bom: Option<bool>,
}

/// A CSV download. Its first chunk is read before answering, so a database that cannot be
/// reached is a 503, not a broken 200; a failure later ends the stream early (the client sees
/// a truncated download, never a file that looks whole).
async fn csv(
    name: String,
    stream: impl Stream<Item = Result<bytes::Bytes, AppError>> + 'static,
) -> Result<HttpResponse, AppError> {
    let mut stream = Box::pin(stream);
    let first = stream.next().await.transpose()?.unwrap_or_default();
    let body = futures_util::stream::once(async move { Ok(first) })
        .chain(stream)
        .map(|chunk| {
            chunk.map_err(|e| {
                tracing::error!(error = %e, "an export failed while streaming");
                std::io::Error::other(e.to_string())
            })
        });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body))
}

/// GET /v1/admin/exports/ledger.csv?from=&to=[&account=][&bom=true] — every entry of the
/// period (UTC days, both included), by time.
async fn ledger(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<LedgerQuery>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let q = query.into_inner();
    let period = Period::parse(&q.from, &q.to)?;
    if let Some(account) = &q.account {
        if account.is_empty() || account.len() > 200 || account.chars().any(char::is_control) {
            return Err(AppError::unprocessable(
                "invalid_account",
                "account is a ledger account id of 1-200 characters",
            ));
        }
    }
    let name = format!("ledger-{}-{}.csv", period.from, period.to);
    csv(
        name,
        exports::ledger_csv(&state, period, q.account, q.bom.unwrap_or(false)),
    )
    .await
}

/// GET /v1/admin/exports/journal.csv?from=&to=[&bom=true] — the balanced daily journal per
/// currency, for an ERP.
async fn journal(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<JournalQuery>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let q = query.into_inner();
    let period = Period::parse(&q.from, &q.to)?;
    period.require_over(chrono::Utc::now())?;
    let name = format!("journal-{}-{}.csv", period.from, period.to);
    csv(
        name,
        exports::journal_csv(&state, period, q.bom.unwrap_or(false)),
    )
    .await
}
