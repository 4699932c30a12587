//! Support's hand on what users hold: grants, and subscriptions and orders made by hand until
//! Stripe drives them. Every write tells the caches of the users it touches.

use super::admin_catalog::valid_key;
use super::parse_json;
use crate::app::AppState;
use crate::auth::{valid_user_id, Caller, Role};
use crate::db::models::catalog::{EntitlementDefinition, Price, Product};
use crate::db::models::grants::{Grant, NewGrant};
use crate::db::models::orders::{NewOrder, Order};
use crate::db::models::subscriptions::{Subscription, SubscriptionState};
use crate::db::models::{from_db, to_db, users};
use crate::db::{self, DbConn};
use crate::domain::entitlements::{OrderStatus, SubscriptionStatus};
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Months, Utc};
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
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// A grant names a defined entitlement (with a value for quotas) or a sticker pack.
fn check_grant_key(conn: &mut DbConn, key: &str, value: Option<i64>) -> Result<(), AppError> {
    if let Some(pack) = key.strip_prefix("sticker_pack:") {
        return match Product::find(conn, pack)? {
            Some(p) if p.kind == "sticker_pack" && value.is_none() => Ok(()),
            _ => Err(AppError::unprocessable(
                "unknown_entitlement",
                format!("no sticker pack {pack:?}"),
            )),
        };
    }
    let def = EntitlementDefinition::find(conn, key)?.ok_or_else(|| {
        AppError::unprocessable(
            "unknown_entitlement",
            format!("entitlement {key:?} is not defined"),
        )
    })?;
    if (def.kind == "quota") != value.is_some() {
        return Err(AppError::unprocessable(
            "invalid_entitlement",
            format!(
                "{key} is {}: quotas need a value, booleans take none",
                def.kind
            ),
        ));
    }
    Ok(())
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
        let starts_at = new.starts_at.unwrap_or_else(Utc::now);
        if new.expires_at.is_some_and(|e| e <= starts_at) {
            return Err(AppError::unprocessable(
                "invalid_period",
                "expires_at must be after starts_at",
            ));
        }
        let user = new.user_id.clone();
        let grant = db::transaction(&state.pool, move |conn| {
            check_grant_key(conn, &new.entitlement_key, new.value)?;
            users::ensure(conn, &new.user_id)?;
            let grant = Grant::create(
                conn,
                NewGrant {
                    user_id: new.user_id,
                    entitlement_key: new.entitlement_key,
                    value: new.value,
                    reason: new.reason,
                    granted_by: by,
                    starts_at: to_db(starts_at),
                    expires_at: new.expires_at.map(to_db),
                },
            )?;
            db::notify_changed(conn, &[&grant.user_id])?;
            Ok(grant)
        })
        .await?;
        state.changed(&[user]);
        Ok(Reply::created(grant))
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
    let grant = db::transaction(&state.pool, move |conn| {
        Grant::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("grant {id}")))?;
        let grant = Grant::revoke(conn, &id, &by)?;
        db::notify_changed(conn, &[&grant.user_id])?;
        Ok(grant)
    })
    .await?;
    state.changed(&[&grant.user_id]);
    Ok(HttpResponse::Ok().json(grant))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubscription {
    user_id: String,
    price_id: String,
    #[serde(default = "one")]
    quantity: i32,
    #[serde(default)]
    current_period_start: Option<DateTime<Utc>>,
}

fn one() -> i32 {
    1
}

fn add_interval(t: DateTime<Utc>, interval: &str) -> DateTime<Utc> {
    let months = if interval == "year" { 12 } else { 1 };
    t.checked_add_months(Months::new(months)).unwrap_or(t)
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
        let sub = db::transaction(&state.pool, move |conn| {
            let price = Price::find(conn, &new.price_id)?.ok_or_else(|| {
                AppError::unprocessable("unknown_price", format!("no price {}", new.price_id))
            })?;
            let product = Product::find(conn, &price.product_id)?
                .ok_or_else(|| AppError::not_found("product"))?;
            let Some(interval) = price.interval.as_deref().filter(|_| product.kind == "plan")
            else {
                return Err(AppError::unprocessable(
                    "not_recurring",
                    "subscriptions need a recurring plan price",
                ));
            };
            if new.quantity > 1 && !product.per_seat {
                return Err(AppError::unprocessable(
                    "invalid_quantity",
                    "only per-seat plans take a quantity",
                ));
            }
            let (status, trial_end, end) = if price.trial_days > 0 {
                let t = start + chrono::Duration::days(i64::from(price.trial_days));
                (SubscriptionStatus::Trialing, Some(t), t)
            } else {
                (
                    SubscriptionStatus::Active,
                    None,
                    add_interval(start, interval),
                )
            };
            users::ensure(conn, &new.user_id)?;
            let sub = Subscription::create(
                conn,
                &new.user_id,
                &product.id,
                &price.id,
                SubscriptionState {
                    status: status.as_str().into(),
                    quantity: new.quantity,
                    current_period_start: to_db(start),
                    current_period_end: to_db(end),
                    trial_end: trial_end.map(to_db),
                    cancel_at_period_end: false,
                    grace_until: None,
                },
            )?;
            db::notify_changed(conn, &[&sub.user_id])?;
            Ok(sub)
        })
        .await?;
        state.changed(&[&sub.user_id]);
        Ok(Reply::created(sub))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSubscription {
    status: Option<String>,
    quantity: Option<i32>,
    current_period_start: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    trial_end: Option<DateTime<Utc>>,
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
    if let Some(s) = &change.status {
        SubscriptionStatus::parse(s).ok_or_else(|| {
            AppError::unprocessable(
                "invalid_status",
                "status must be trialing, active, past_due, canceled or expired",
            )
        })?;
    }
    if change.quantity.is_some_and(|q| !(1..=10_000).contains(&q)) {
        return Err(AppError::unprocessable(
            "invalid_quantity",
            "quantity must be 1-10000",
        ));
    }
    let id = path.into_inner();
    let (sub, affected) = db::transaction(&state.pool, move |conn| {
        let mut sub = Subscription::find(conn, &id)?
            .ok_or_else(|| AppError::not_found(format!("subscription {id}")))?;
        if let Some(v) = change.status {
            sub.status = v;
        }
        if let Some(v) = change.quantity {
            sub.quantity = v;
        }
        if let Some(v) = change.current_period_start {
            sub.current_period_start = to_db(v);
        }
        if let Some(v) = change.current_period_end {
            sub.current_period_end = to_db(v);
        }
        if let Some(v) = change.trial_end {
            sub.trial_end = Some(to_db(v));
        }
        if let Some(v) = change.grace_until {
            sub.grace_until = Some(to_db(v));
        }
        if let Some(v) = change.cancel_at_period_end {
            sub.cancel_at_period_end = v;
        }
        if from_db(sub.current_period_end) <= from_db(sub.current_period_start) {
            return Err(AppError::unprocessable(
                "invalid_period",
                "the period must end after it starts",
            ));
        }
        if (Subscription::seat_holders(conn, &sub.id)?.len() as i32) > sub.quantity {
            return Err(AppError::conflict(
                "seats_in_use",
                "remove seat holders before lowering the quantity",
            ));
        }
        sub.save(conn)?;
        let affected = sub.holders(conn)?;
        let refs: Vec<&str> = affected.iter().map(String::as_str).collect();
        db::notify_changed(conn, &refs)?;
        Ok((sub, affected))
    })
    .await?;
    state.changed(&affected);
    Ok(HttpResponse::Ok().json(sub))
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
        OrderStatus::parse(&new.status).ok_or_else(|| {
            AppError::unprocessable(
                "invalid_status",
                "status must be pending, paid, refunded or disputed",
            )
        })?;
        let order = db::transaction(&state.pool, move |conn| {
            let price = Price::find(conn, &new.price_id)?.ok_or_else(|| {
                AppError::unprocessable("unknown_price", format!("no price {}", new.price_id))
            })?;
            let product = Product::find(conn, &price.product_id)?
                .ok_or_else(|| AppError::not_found("product"))?;
            if product.kind == "plan" || price.interval.is_some() {
                return Err(AppError::unprocessable(
                    "not_one_off",
                    "orders need a one-off price of a pack or donation target",
                ));
            }
            users::ensure(conn, &new.buyer_id)?;
            if let Some(r) = &new.recipient_id {
                users::ensure(conn, r)?;
            }
            let order = Order::create(
                conn,
                NewOrder {
                    buyer_id: new.buyer_id,
                    recipient_id: new.recipient_id,
                    product_id: product.id,
                    price_id: price.id,
                    amount_minor: price.amount_minor,
                    currency: price.currency,
                    status: new.status,
                    kind: "pack".into(),
                    gift_days: None,
                    message: None,
                },
            )?;
            db::notify_changed(conn, &[order.holder()])?;
            Ok(order)
        })
        .await?;
        state.changed(&[order.holder()]);
        Ok(Reply::created(order))
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
    OrderStatus::parse(&change.status).ok_or_else(|| {
        AppError::unprocessable(
            "invalid_status",
            "status must be pending, paid, refunded or disputed",
        )
    })?;
    let id = path.into_inner();
    let order = db::transaction(&state.pool, move |conn| {
        Order::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("order {id}")))?;
        crate::services::billing::refund_requests::ensure_hand_made(conn, &id)?;
        let order = Order::set_status(conn, &id, &change.status)?;
        db::notify_changed(conn, &[order.holder()])?;
        Ok(order)
    })
    .await?;
    state.changed(&[order.holder()]);
    Ok(HttpResponse::Ok().json(order))
}
