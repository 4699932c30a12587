//! Support's hand on what users hold: grants, and subscriptions and orders made by hand until
//! Stripe drives them. Every write tells the caches of the users it touches.

use super::admin_catalog::valid_key;
use super::bounds::optional_time;
use super::parse_json;
use super::views::{self, GrantView, OrderView, SubscriptionView};
use crate::app::AppState;
use crate::auth::{valid_user_id, Caller, Role};
use crate::db;
use crate::db::models::grants::Grant;
use crate::db::models::subscriptions::Subscription;
use crate::domain::entitlements::{OrderStatus, SubscriptionStatus};
use crate::error::AppError;
use crate::services::grants::{self, GrantRequest};
use crate::services::hand_made::{self, SubscriptionChange};
use crate::services::idempotency::{self, Reply};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/admin/users/{id}").route(web::get().to(user_overview)))
        .service(web::resource("/v1/admin/grants").route(web::post().to(create_grant)))
        .service(web::resource("/v1/admin/grants/{id}").route(web::delete().to(revoke_grant)))
        .service(
            web::resource("/v1/admin/subscriptions").route(web::post().to(create_subscription)),
        )
        .service(
            web::resource("/v1/admin/subscriptions/{id}")
                .route(web::patch().to(update_subscription)),
        )
        .service(web::resource("/v1/admin/orders").route(web::post().to(create_order)))
        .service(web::resource("/v1/admin/orders/{id}").route(web::patch().to(update_order)));
}

fn order_status(status: &str) -> Result<OrderStatus, AppError> {
    OrderStatus::parse(status).ok_or_else(|| {
        AppError::unprocessable(
            "invalid_status",
            "status must be pending, paid, refunded or disputed",
        )
    })
}

fn check_user_id(id: &str) -> Result<(), AppError> {
    if valid_user_id(id) {
        Ok(())
    } else {
        Err(AppError::unprocessable(
            "invalid_user_id",
            "user ids are 1-128 visible ASCII characters",
        ))
    }
}

/// GET /v1/admin/users/{id} — what support sees: the answer and what produced it.
async fn user_overview(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Support)?;
    let id = path.into_inner();
    check_user_id(&id)?;
    let answer = state.entitlements.explain(&id, Utc::now()).await?;
    let (grants, subscriptions) = db::run(&state.pool, move |conn| {
        Ok((
            Grant::of_user(conn, &id)?,
            Subscription::of_user(conn, &id)?,
        ))
    })
    .await?;
    let grants: Vec<GrantView> = views::all(&grants);
    let subscriptions: Vec<SubscriptionView> = views::all(&subscriptions);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "entitlements": answer.entitlements, "next_change": answer.next_change,
        "grants": grants, "subscriptions": subscriptions,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGrant {
    user_id: String,
    entitlement_key: String,
    #[serde(default)]
    value: Option<i64>,
    reason: String,
    #[serde(default, deserialize_with = "optional_time")]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "optional_time")]
    expires_at: Option<DateTime<Utc>>,
}

async fn create_grant(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let by = caller.staff(Role::Support)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: CreateGrant = parse_json(&body)?;
        check_user_id(&new.user_id)?;
        if !valid_key(&new.entitlement_key) {
            return Err(AppError::unprocessable(
                "invalid_key",
                "entitlement_key is malformed",
            ));
        }
        if new.reason.trim().is_empty() || new.reason.len() > 500 {
            return Err(AppError::unprocessable(
                "invalid_reason",
                "reason must be 1-500 characters",
            ));
        }
        let grant = grants::create(
            &state,
            GrantRequest {
                starts_at: new.starts_at.unwrap_or_else(Utc::now),
                user_id: new.user_id,
                entitlement_key: new.entitlement_key,
                value: new.value,
                reason: new.reason,
                expires_at: new.expires_at,
                granted_by: by,
            },
        )
        .await?;
        Ok(Reply::created(GrantView::from(&grant)))
    })
    .await
}

/// DELETE /v1/admin/grants/{id} — revokes at once; revoking twice keeps the first revocation.
async fn revoke_grant(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let by = caller.staff(Role::Support)?.to_owned();
    let id = path.into_inner();
    let grant = grants::revoke(&state, &id, &by).await?;
    Ok(HttpResponse::Ok().json(GrantView::from(&grant)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubscription {
    user_id: String,
    price_id: String,
    #[serde(default = "one")]
    quantity: i32,
    #[serde(default, deserialize_with = "optional_time")]
    current_period_start: Option<DateTime<Utc>>,
}

fn one() -> i32 {
    1
}

/// POST /v1/admin/subscriptions — starts a subscription by hand: trialing when the price has
/// a trial, active otherwise, with the first period computed from the price.
async fn create_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Support)?;
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: CreateSubscription = parse_json(&body)?;
        check_user_id(&new.user_id)?;
        if !(1..=10_000).contains(&new.quantity) {
            return Err(AppError::unprocessable(
                "invalid_quantity",
                "quantity must be 1-10000",
            ));
        }
        let start = new.current_period_start.unwrap_or_else(Utc::now);
        let sub = hand_made::create_subscription(
            &state,
            &new.user_id,
            &new.price_id,
            new.quantity,
            start,
        )
        .await?;
        Ok(Reply::created(SubscriptionView::from(&sub)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSubscription {
    status: Option<String>,
    quantity: Option<i32>,
    #[serde(default, deserialize_with = "optional_time")]
    current_period_start: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "optional_time")]
    current_period_end: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "optional_time")]
    trial_end: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "optional_time")]
    grace_until: Option<DateTime<Utc>>,
    cancel_at_period_end: Option<bool>,
}

/// PATCH /v1/admin/subscriptions/{id} — moves a subscription through its lifecycle by hand.
async fn update_subscription(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Support)?;
    let change: UpdateSubscription = parse_json(&body)?;
    let status = match &change.status {
        Some(s) => Some(SubscriptionStatus::parse(s).ok_or_else(|| {
            AppError::unprocessable(
                "invalid_status",
                "status must be trialing, active, past_due, canceled or expired",
            )
        })?),
        None => None,
    };
    if change.quantity.is_some_and(|q| !(1..=10_000).contains(&q)) {
        return Err(AppError::unprocessable(
            "invalid_quantity",
            "quantity must be 1-10000",
        ));
    }
    let id = path.into_inner();
    let change = SubscriptionChange {
        status,
        quantity: change.quantity,
        current_period_start: change.current_period_start,
        current_period_end: change.current_period_end,
        trial_end: change.trial_end,
        grace_until: change.grace_until,
        cancel_at_period_end: change.cancel_at_period_end,
    };
    let sub = hand_made::update_subscription(&state, &id, change).await?;
    Ok(HttpResponse::Ok().json(SubscriptionView::from(&sub)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrder {
    buyer_id: String,
    #[serde(default)]
    recipient_id: Option<String>,
    price_id: String,
    #[serde(default = "paid")]
    status: String,
}

fn paid() -> String {
    "paid".into()
}

/// POST /v1/admin/orders — records a one-off purchase (a pack, a gift, a donation) by hand.
async fn create_order(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Support)?;
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: CreateOrder = parse_json(&body)?;
        check_user_id(&new.buyer_id)?;
        if let Some(r) = &new.recipient_id {
            check_user_id(r)?;
        }
        let status = order_status(&new.status)?;
        let order = hand_made::create_order(
            &state,
            &new.buyer_id,
            new.recipient_id.as_deref(),
            &new.price_id,
            status,
        )
        .await?;
        Ok(Reply::created(OrderView::from(&order)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateOrder {
    status: String,
}

/// PATCH /v1/admin/orders/{id} — marks a hand-made order paid, refunded or disputed (one paid
/// through Stripe is refunded through Stripe: `POST /v1/admin/orders/{id}/refund`).
async fn update_order(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Support)?;
    let change: UpdateOrder = parse_json(&body)?;
    let status = order_status(&change.status)?;
    let order = hand_made::update_order(&state, &path.into_inner(), status).await?;
    Ok(HttpResponse::Ok().json(OrderView::from(&order)))
}
