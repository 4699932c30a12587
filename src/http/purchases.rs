//! Purchases by the signed-in user: subscribe, cancel or resume, change seats; buy or gift
//! packs and subscription periods; donate. Every POST honours `Idempotency-Key`.

use super::parse_json;
use super::views::{self, DonationView, OrderView, StartedView, SubscriptionView};
use crate::app::AppState;
use crate::auth::{valid_user_id, Caller};
use crate::db;
use crate::db::models::donations::Donation;
use crate::db::models::orders::Order;
use crate::error::AppError;
use crate::services::billing::purchases::{self, Buy, Donate, Subscribe};
use crate::services::idempotency::{self, Reply};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/me/subscriptions/{id}/cancel").route(web::post().to(cancel_or_resume)),
    )
    .service(
        web::resource("/v1/me/subscriptions/{id}/resume").route(web::post().to(cancel_or_resume)),
    )
    .service(web::resource("/v1/me/subscriptions/{id}/quantity").route(web::post().to(quantity)))
    .service(web::resource("/v1/me/subscriptions/{id}/plan").route(web::post().to(change_plan)))
    .service(
        web::resource("/v1/me/orders")
            .route(web::get().to(my_orders))
            .route(web::post().to(buy)),
    )
    .service(
        web::resource("/v1/me/donations")
            .route(web::get().to(my_donations))
            .route(web::post().to(donate)),
    )
    .service(web::resource("/v1/me/donations/{id}/cancel").route(web::post().to(cancel_donation)));
}

/// POST /v1/me/donations/{id}/cancel — the donor ends their monthly donation.
async fn cancel_donation(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let donation = crate::services::billing::donations::cancel(&state, &user, &id).await?;
        Ok(Reply::ok(DonationView::from(&donation)))
    })
    .await
}

fn check_email(email: &Option<String>) -> Result<(), AppError> {
    match email {
        Some(e) if e.len() > 254 || e.parse::<lettre::Address>().is_err() => Err(
            AppError::unprocessable("invalid_email", "email must be a valid address"),
        ),
        _ => Ok(()),
    }
}

fn check_text(field: &str, value: &Option<String>, max: usize) -> Result<(), AppError> {
    match value {
        Some(v) if v.chars().count() > max => Err(AppError::unprocessable(
            "too_long",
            format!("{field} is at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

fn check_payment_method(pm: &Option<String>) -> Result<(), AppError> {
    match pm {
        Some(p)
            if p.is_empty()
                || p.len() > 255
                || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            Err(AppError::unprocessable(
                "invalid_payment_method",
                "payment_method is a Stripe id such as pm_…",
            ))
        }
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    price_id: String,
    #[serde(default = "one")]
    quantity: i32,
    /// A payment method the app collected with Stripe's SDK; becomes the default.
    payment_method: Option<String>,
    /// Where receipts go.
    email: Option<String>,
}

fn one() -> i32 {
    1
}

/// POST /v1/me/subscriptions — subscribe to a plan's price.
pub async fn subscribe(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: NewSubscription = parse_json(&body)?;
        check_email(&new.email)?;
        check_payment_method(&new.payment_method)?;
        let started = purchases::subscribe(
            &state,
            &user,
            Subscribe {
                price_id: new.price_id,
                quantity: new.quantity,
                payment_method: new.payment_method,
                email: new.email,
            },
        )
        .await?;
        let view: StartedView<SubscriptionView> = started.into();
        Ok(Reply::created(view))
    })
    .await
}

/// POST …/cancel (to the period's end) and …/resume: one handler, the path says which.
async fn cancel_or_resume(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    let id = path.into_inner();
    let cancel = req.path().ends_with("/cancel");
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let started = purchases::set_canceled(&state, &user, &id, cancel).await?;
        Ok(Reply::ok(StartedView::<SubscriptionView>::from(started)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewQuantity {
    quantity: i32,
}

async fn quantity(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: NewQuantity = parse_json(&body)?;
        let started = purchases::set_quantity(&state, &user, &id, new.quantity).await?;
        Ok(Reply::ok(StartedView::<SubscriptionView>::from(started)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPlan {
    price_id: String,
}

async fn change_plan(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: NewPlan = parse_json(&body)?;
        let started = purchases::change_plan(&state, &user, &id, &new.price_id).await?;
        Ok(Reply::ok(StartedView::<SubscriptionView>::from(started)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    price_id: String,
    /// Makes it a gift to this user.
    recipient_id: Option<String>,
    message: Option<String>,
    email: Option<String>,
    payment_method: Option<String>,
    /// The creator whose share link the buyer came through (`?ref=<creator>`).
    #[serde(rename = "ref")]
    referrer: Option<String>,
}

async fn buy(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: NewOrder = parse_json(&body)?;
        check_email(&new.email)?;
        check_payment_method(&new.payment_method)?;
        check_text("message", &new.message, 500)?;
        for r in new.recipient_id.iter().chain(&new.referrer) {
            if !valid_user_id(r) {
                return Err(AppError::unprocessable(
                    "invalid_user_id",
                    "user ids are 1-128 visible ASCII characters",
                ));
            }
        }
        let started = purchases::buy(
            &state,
            &user,
            Buy {
                price_id: new.price_id,
                payment_method: new.payment_method,
                recipient_id: new.recipient_id,
                message: new.message,
                email: new.email,
                referrer: new.referrer,
                buyer_region: caller.country(),
            },
        )
        .await?;
        Ok(Reply::created(StartedView::<OrderView>::from(started)))
    })
    .await
}

async fn my_orders(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    let orders = db::run(&state.pool, move |conn| Ok(Order::of_user(conn, &user)?)).await?;
    let orders: Vec<OrderView> = views::all(&orders);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "orders": orders })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDonation {
    amount_minor: i64,
    currency: String,
    /// To this creator; to the platform when absent.
    creator_id: Option<String>,
    #[serde(default)]
    recurring: bool,
    message: Option<String>,
    #[serde(default)]
    anonymous: bool,
    email: Option<String>,
    payment_method: Option<String>,
}

async fn donate(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: NewDonation = parse_json(&body)?;
        check_email(&new.email)?;
        check_payment_method(&new.payment_method)?;
        check_text("message", &new.message, 500)?;
        crate::domain::money::Currency::parse(&new.currency)
            .map_err(|e| AppError::unprocessable("invalid_currency", e))?;
        if let Some(c) = &new.creator_id {
            if !valid_user_id(c) {
                return Err(AppError::not_found(format!("creator {c}")));
            }
        }
        let started = purchases::donate(
            &state,
            &user,
            Donate {
                amount_minor: new.amount_minor,
                currency: new.currency,
                creator_id: new.creator_id,
                recurring: new.recurring,
                message: new.message,
                anonymous: new.anonymous,
                email: new.email,
                payment_method: new.payment_method,
            },
        )
        .await?;
        Ok(Reply::created(StartedView::<DonationView>::from(started)))
    })
    .await
}

async fn my_donations(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    let list = db::run(&state.pool, move |conn| {
        Ok(Donation::of_donor(conn, &user)?)
    })
    .await?;
    let list: Vec<DonationView> = views::all(&list);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "donations": list })))
}
