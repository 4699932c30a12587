//! Money views: a creator's own earnings, and any ledger account for finance.

use super::views::EarningsView;
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::db;
use crate::db::schema::{ledger_accounts, ledger_entries, ledger_transactions};
use crate::error::AppError;
use crate::services::billing::earnings;
use actix_web::{web, HttpResponse};
use diesel::prelude::*;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/creators/me/earnings").route(web::get().to(mine)))
        .service(web::resource("/v1/admin/ledger/accounts/{id}").route(web::get().to(account)));
}

/// GET /v1/creators/me/earnings — pending and available per currency, recent sales.
async fn mine(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, AppError> {
    let creator = caller.staff(Role::Creator)?.to_owned();
    let hold = state.settings.billing.hold_days;
    let found = db::run(&state.pool, move |conn| {
        if crate::db::models::creators::Creator::find(conn, &creator)?.is_none() {
            return Err(AppError::not_found("creator profile"));
        }
        earnings::of_creator(conn, &creator, hold)
    })
    .await?;
    Ok(HttpResponse::Ok().json(EarningsView::from(found)))
}

/// GET /v1/admin/ledger/accounts/{id} — an account's balance and latest entries (finance).
async fn account(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let id = path.into_inner();
    let body = db::run(&state.pool, move |conn| {
        let (kind, owner, currency): (String, Option<String>, String) = ledger_accounts::table
            .find(&id)
            .select((
                ledger_accounts::kind,
                ledger_accounts::owner_id,
                ledger_accounts::currency,
            ))
            .first(conn)
            .optional()?
            .ok_or_else(|| AppError::not_found(format!("ledger account {id}")))?;
        let balance = crate::db::models::ledger::balance(conn, &id)?;
        let entries: Vec<(String, i64, chrono::NaiveDateTime, String, String)> =
            ledger_entries::table
                .inner_join(ledger_transactions::table)
                .filter(ledger_entries::account_id.eq(&id))
                .order(ledger_entries::created_at.desc())
                .limit(100)
                .select((
                    ledger_entries::transaction_id,
                    ledger_entries::amount_minor,
                    ledger_entries::created_at,
                    ledger_transactions::source_key,
                    ledger_transactions::description,
                ))
                .load(conn)?;
        let entries: Vec<_> = entries
            .into_iter()
            .map(|(txn, amount, at, source, description)| {
                serde_json::json!({
                    "transaction_id": txn, "amount_minor": amount,
                    "created_at": at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "source": source, "description": description,
                })
            })
            .collect();
        Ok(serde_json::json!({
            "id": id, "kind": kind, "owner_id": owner, "currency": currency,
            "balance_minor": balance, "entries": entries,
        }))
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}
