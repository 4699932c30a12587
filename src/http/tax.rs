//! Tax profiles (creators file theirs; finance reads, rejects or accepts them) and the yearly
//! totals finance files information returns from.

use super::parse_json;
use super::payouts::limit;
use super::views::{TaxProfileView, TaxTotalView};
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use crate::services::payouts::tax::{self, TaxDetails};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, Utc};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/creators/me/tax-profile")
            .route(web::get().to(get_own))
            .route(web::put().to(put_own)),
    )
    .service(web::resource("/v1/admin/creators/{id}/tax-profile").route(web::get().to(get_any)))
    .service(
        web::resource("/v1/admin/creators/{id}/tax-profile/status")
            .route(web::post().to(set_status)),
    )
    .service(web::resource("/v1/admin/tax/creator-totals").route(web::get().to(creator_totals)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    kind: String,
    legal_name: String,
    tin: Option<String>,
    tin_type: Option<String>,
    country: String,
    treaty_rate_bps: Option<i64>,
    certify: bool,
}

fn view(state: &AppState, p: &crate::db::models::tax_profiles::TaxProfile) -> TaxProfileView {
    TaxProfileView::new(p, &state.settings.payouts.tax, Utc::now())
}

/// PUT /v1/creators/me/tax-profile — the creator files (or re-files) a W-9 or a W-8BEN.
async fn put_own(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let creator = caller.staff(Role::Creator)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: ProfileBody = parse_json(&body)?;
        let profile = tax::put(
            &state,
            &creator,
            TaxDetails {
                kind: b.kind,
                legal_name: b.legal_name,
                tin: b.tin,
                tin_type: b.tin_type,
                country: b.country,
                treaty_rate_bps: b.treaty_rate_bps,
                certify: b.certify,
            },
        )
        .await?;
        Ok(Reply::ok(view(&state, &profile)))
    })
    .await
}

async fn get_own(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, AppError> {
    let creator = caller.staff(Role::Creator)?;
    let profile = tax::get(&state, creator).await?;
    Ok(HttpResponse::Ok().json(view(&state, &profile)))
}

async fn get_any(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let profile = tax::get(&state, &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view(&state, &profile)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    reason: String,
}

/// POST /v1/admin/creators/{id}/tax-profile/status — finance rejects a profile (payouts then
/// withhold at the backup rate, or stop) or accepts it again, with the reason.
async fn set_status(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let actor = caller.staff(Role::Finance)?.to_owned();
    let creator = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: StatusBody = parse_json(&body)?;
        let valid = match b.status.as_str() {
            "valid" => true,
            "rejected" => false,
            _ => {
                return Err(AppError::unprocessable(
                    "invalid_status",
                    "status is valid or rejected",
                ))
            }
        };
        let reason = super::bounds::reason(&b.reason)?;
        // It is shown to the creator on their profile.
        if reason.chars().any(char::is_control) {
            return Err(AppError::unprocessable(
                "invalid_reason",
                "reason must be without control characters",
            ));
        }
        let profile = tax::set_status(&state, &actor, &creator, valid, reason).await?;
        Ok(Reply::ok(view(&state, &profile)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotalsQuery {
    year: i32,
    after: Option<String>,
    limit: Option<i64>,
}

/// GET /v1/admin/tax/creator-totals?year= — per creator and currency, what the bank paid in
/// the year (UTC) and what was withheld, with each creator's profile.
async fn creator_totals(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<TotalsQuery>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Finance)?;
    let q = query.into_inner();
    if !(2000..=Utc::now().year() + 1).contains(&q.year) {
        return Err(AppError::unprocessable(
            "invalid_year",
            "year is a calendar year from 2000 to next year",
        ));
    }
    let limit = limit(q.limit, 100, 1000)?;
    // The cursor is `<creator>:<currency>` from the previous page's `next`.
    let after = match q.after.as_deref() {
        None => None,
        Some(a) => match a.rsplit_once(':') {
            Some((creator, currency))
                if !creator.is_empty() && a.len() <= 300 && currency.len() == 3 =>
            {
                Some((creator.to_owned(), currency.to_owned()))
            }
            _ => {
                return Err(AppError::unprocessable(
                    "invalid_cursor",
                    "after is the `next` of the previous page",
                ))
            }
        },
    };
    let (totals, next) = tax::creator_totals(&state, q.year, after, limit).await?;
    let now = Utc::now();
    let rates = state.settings.payouts.tax;
    let rows: Vec<TaxTotalView> = totals
        .iter()
        .map(|t| TaxTotalView::new(t, &rates, now))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "year": q.year,
        "totals": rows,
        "next": next.map(|(c, k)| format!("{c}:{k}")),
    })))
}
