//! A user's own subscriptions, and the seats of the per-seat ones they own.

use super::parse_json;
use super::views::{self, SubscriptionView};
use crate::app::AppState;
use crate::auth::{valid_user_id, Caller};
use crate::db;
use crate::db::models::subscriptions::Subscription;
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use crate::services::seats;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/me/subscriptions")
            .route(web::get().to(mine))
            .route(web::post().to(super::purchases::subscribe)),
    )
    .service(
        web::resource("/v1/me/subscriptions/{id}/seats")
            .route(web::get().to(list_seats))
            .route(web::post().to(assign)),
    )
    .service(
        web::resource("/v1/me/subscriptions/{id}/seats/{user_id}")
            .route(web::delete().to(unassign)),
    );
}

async fn mine(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    let subs = db::run(&state.pool, move |conn| {
        Ok(Subscription::of_user(conn, &user)?)
    })
    .await?;
    let subs: Vec<SubscriptionView> = views::all(&subs);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "subscriptions": subs })))
}

async fn list_seats(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let owner = caller.user()?.to_owned();
    let id = path.into_inner();
    let (sub, seats) = seats::list(&state, &owner, &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "subscription_id": sub.id, "quantity": sub.quantity, "members": seats,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Assign {
    user_id: String,
}

/// POST /v1/me/subscriptions/{id}/seats — gives a member a seat (at most `quantity` seats).
async fn assign(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let owner = caller.user()?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: Assign = parse_json(&body)?;
        if !valid_user_id(&new.user_id) {
            return Err(AppError::unprocessable(
                "invalid_user_id",
                "user ids are 1-128 visible ASCII characters",
            ));
        }
        let seats = seats::assign(&state, &owner, &id, &new.user_id).await?;
        Ok(Reply::created(serde_json::json!({ "members": seats })))
    })
    .await
}

async fn unassign(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let owner = caller.user()?.to_owned();
    let (id, member) = path.into_inner();
    seats::unassign(&state, &owner, &id, &member).await?;
    Ok(HttpResponse::NoContent().finish())
}
