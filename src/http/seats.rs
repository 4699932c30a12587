//! A user's own subscriptions, and the seats of the per-seat ones they own.

use super::parse_json;
use crate::app::AppState;
use crate::auth::{valid_user_id, Caller};
use crate::db::models::catalog::Product;
use crate::db::models::subscriptions::Subscription;
use crate::db::models::users;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
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
    Ok(HttpResponse::Ok().json(serde_json::json!({ "subscriptions": subs })))
}

/// The caller's own per-seat subscription; someone else's is "not found", not "forbidden",
/// so ids of other users' subscriptions cannot be probed.
fn owned_team(conn: &mut DbConn, id: &str, owner: &str) -> Result<Subscription, AppError> {
    let sub = Subscription::find(conn, id)?
        .filter(|s| s.user_id == owner)
        .ok_or_else(|| AppError::not_found(format!("subscription {id}")))?;
    let per_seat = Product::find(conn, &sub.product_id)?.is_some_and(|p| p.per_seat);
    if !per_seat {
        return Err(AppError::unprocessable(
            "not_per_seat",
            "only per-seat subscriptions have seats",
        ));
    }
    Ok(sub)
}

async fn list_seats(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let owner = caller.user()?.to_owned();
    let id = path.into_inner();
    let (sub, seats) = db::run(&state.pool, move |conn| {
        let sub = owned_team(conn, &id, &owner)?;
        let seats = Subscription::seat_holders(conn, &id)?;
        Ok((sub, seats))
    })
    .await?;
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
        let member = new.user_id.clone();
        let seats = db::transaction(&state.pool, move |conn| {
            let sub = owned_team(conn, &id, &owner)?;
            let seats = Subscription::seat_holders(conn, &id)?;
            if seats.contains(&new.user_id) {
                return Err(AppError::conflict(
                    "seat_taken",
                    "that member already has a seat",
                ));
            }
            if seats.len() as i32 >= sub.quantity {
                return Err(AppError::conflict(
                    "no_free_seat",
                    format!(
                        "all {} seats are assigned; raise the quantity first",
                        sub.quantity
                    ),
                ));
            }
            users::ensure(conn, &new.user_id)?;
            Subscription::assign_seat(conn, &id, &new.user_id)?;
            db::notify_changed(conn, &[&new.user_id])?;
            Ok(Subscription::seat_holders(conn, &id)?)
        })
        .await?;
        state.changed(&[member]);
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
    let m = member.clone();
    db::transaction(&state.pool, move |conn| {
        owned_team(conn, &id, &owner)?;
        if !Subscription::remove_seat(conn, &id, &m)? {
            return Err(AppError::not_found(format!("seat of {m}")));
        }
        db::notify_changed(conn, &[&m])?;
        Ok(())
    })
    .await?;
    state.changed(&[member]);
    Ok(HttpResponse::NoContent().finish())
}
