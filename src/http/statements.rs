//! Creator statements: a creator reads their own, finance reads any creator's. JSON, or CSV
//! with `format=csv`.

use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::db;
use crate::db::models::creators::Creator;
use crate::domain::money::Currency;
use crate::error::AppError;
use crate::services::payouts::statements::{self, Month};
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/creators/me/statements").route(web::get().to(my_months)))
        .service(web::resource("/v1/creators/me/statements/{month}").route(web::get().to(mine)))
        .service(
            web::resource("/v1/admin/creators/{id}/statements/{month}")
                .route(web::get().to(of_creator)),
        );
}

/// Months listed at most (ten years).
const MONTHS_SHOWN: usize = 120;

async fn my_months(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, AppError> {
    let creator = caller.staff(Role::Creator)?.to_owned();
    let months = db::run(&state.pool, move |conn| {
        if Creator::find(conn, &creator)?.is_none() {
            return Err(AppError::not_found("creator profile"));
        }
        statements::months(conn, &creator, Utc::now(), MONTHS_SHOWN)
    })
    .await?;
    let months: Vec<_> = months
        .into_iter()
        .map(|(month, currencies)| serde_json::json!({"month": month, "currencies": currencies}))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "months": months })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementQuery {
    currency: Option<String>,
    format: Option<String>,
}

async fn mine(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<StatementQuery>,
) -> Result<HttpResponse, AppError> {
    let creator = caller.staff(Role::Creator)?.to_owned();
    statement(&state, creator, &path.into_inner(), query.into_inner()).await
}

async fn of_creator(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    query: web::Query<StatementQuery>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let (creator, month) = path.into_inner();
    statement(&state, creator, &month, query.into_inner()).await
}

async fn statement(
    state: &AppState,
    creator: String,
    month: &str,
    q: StatementQuery,
) -> Result<HttpResponse, AppError> {
    let month = Month::parse(month)
        .filter(|m| *m <= Month::of(Utc::now()))
        .ok_or_else(|| {
            AppError::unprocessable("invalid_month", "month is yyyy-mm, not after this month")
        })?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(AppError::unprocessable(
                "invalid_format",
                "format is json or csv",
            ))
        }
    };
    let asked = match q.currency {
        Some(c) => Some(
            Currency::parse(&c.to_ascii_uppercase())
                .map_err(|e| AppError::unprocessable("invalid_currency", e))?,
        ),
        None => None,
    };
    let hold_days = state.settings.billing.hold_days;
    let found = db::run(&state.pool, move |conn| {
        if Creator::find(conn, &creator)?.is_none() {
            return Err(AppError::not_found(format!("creator {creator}")));
        }
        let currency = match asked {
            Some(c) => c,
            None => {
                let months = statements::months(conn, &creator, Utc::now(), 1)?;
                let currencies = months
                    .into_iter()
                    .next()
                    .map(|(_, c)| c)
                    .unwrap_or_default();
                match currencies.as_slice() {
                    [only] => {
                        Currency::parse(only).map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?
                    }
                    _ => {
                        return Err(AppError::unprocessable(
                            "currency_required",
                            format!(
                                "the creator has balances in {currencies:?}: say which currency"
                            ),
                        ))
                    }
                }
            }
        };
        statements::of_month(conn, &creator, &currency, month, hold_days)
    })
    .await?;
    if csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!(
                    "attachment; filename=\"statement-{}-{}.csv\"",
                    found.month, found.currency
                ),
            ))
            .body(statements::csv(&found)));
    }
    Ok(HttpResponse::Ok().json(found))
}
