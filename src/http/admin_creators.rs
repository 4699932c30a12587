//! Creators and their revenue-share rules, set by admins.

use super::parse_json;
use super::views::CreatorView;
use crate::app::AppState;
use crate::auth::{valid_user_id, Caller, Role};
use crate::db;
use crate::db::models::creators::Creator;
use crate::error::AppError;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/admin/creators/{user_id}")
            .route(web::get().to(show))
            .route(web::put().to(put)),
    );
}

async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let id = path.into_inner();
    let creator = db::run(&state.pool, move |conn| {
        Creator::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("creator {id}")))
    })
    .await?;
    Ok(HttpResponse::Ok().json(CreatorView::from(&creator)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutCreator {
    display_name: String,
    /// The creator's share of sales found in our store.
    revenue_share_bps: i32,
    /// Their share of sales through their own link; absent: the store's share.
    link_share_bps: Option<i32>,
}

/// PUT /v1/admin/creators/{user_id} — registers a creator or changes their deal.
async fn put(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let id = path.into_inner();
    let new: PutCreator = parse_json(&body)?;
    if !valid_user_id(&id) {
        return Err(AppError::unprocessable(
            "invalid_user_id",
            "user ids are 1-128 visible ASCII characters",
        ));
    }
    if !(0..=10_000).contains(&new.revenue_share_bps)
        || new
            .link_share_bps
            .is_some_and(|b| !(0..=10_000).contains(&b))
    {
        return Err(AppError::unprocessable(
            "invalid_revenue_share",
            "revenue_share_bps and link_share_bps are the creator's shares in basis points, 0-10000",
        ));
    }
    if new.display_name.trim().is_empty() || new.display_name.len() > 200 {
        return Err(AppError::unprocessable(
            "invalid_name",
            "display_name must be 1-200 characters",
        ));
    }
    let creator = crate::services::creators::put(
        &state,
        &id,
        &new.display_name,
        new.revenue_share_bps,
        new.link_share_bps,
    )
    .await?;
    Ok(HttpResponse::Ok().json(CreatorView::from(&creator)))
}
