//! Subscriptions and orders support makes and moves by hand (before Stripe drives them, or for
//! what was sold elsewhere). Orders paid through Stripe are not moved by hand: they are refunded
//! through Stripe (`billing::refund_requests`).

use crate::app::AppState;
use crate::db::models::catalog::{Price, Product};
use crate::db::models::orders::{NewOrder, Order};
use crate::db::models::subscriptions::{Subscription, SubscriptionState};
use crate::db::models::{from_db, to_db, users};
use crate::domain::states::{
    Interval, OrderKind, OrderStatus, ProductKind, SalesChannel, SubscriptionStatus,
};
use crate::error::AppError;
use crate::services::billing::refund_requests;
use crate::services::changes;
use chrono::{DateTime, Datelike, Months, Utc};

fn add_interval(t: DateTime<Utc>, interval: Interval) -> DateTime<Utc> {
    let months = match interval {
        Interval::Year => 12,
        Interval::Month => 1,
    };
    t.checked_add_months(Months::new(months)).unwrap_or(t)
}

/// Starts a subscription by hand: trialing when the price has a trial, active otherwise, with
/// the first period computed from the price.
pub async fn create_subscription(
    state: &AppState,
    user_id: &str,
    price_id: &str,
    quantity: i32,
    start: DateTime<Utc>,
) -> Result<Subscription, AppError> {
    let (user_id, price_id) = (user_id.to_owned(), price_id.to_owned());
    changes::transaction(state, move |conn, changed| {
        let price = Price::find(conn, &price_id)?.ok_or_else(|| {
            AppError::unprocessable("unknown_price", format!("no price {price_id}"))
        })?;
        let product = Product::find(conn, &price.product_id)?
            .ok_or_else(|| AppError::not_found("product"))?;
        let Some(interval) = price.interval.filter(|_| product.kind == ProductKind::Plan) else {
            return Err(AppError::unprocessable(
                "not_recurring",
                "subscriptions need a recurring plan price",
            ));
        };
        if quantity > 1 && !product.per_seat {
            return Err(AppError::unprocessable(
                "invalid_quantity",
                "only per-seat plans take a quantity",
            ));
        }
        let (status, trial_end, end) = if price.trial_days > 0 {
            let t = chrono::Duration::try_days(i64::from(price.trial_days))
                .and_then(|d| start.checked_add_signed(d))
                .ok_or_else(|| {
                    AppError::unprocessable("invalid_period", "the trial ends too late")
                })?;
            (SubscriptionStatus::Trialing, Some(t), t)
        } else {
            (
                SubscriptionStatus::Active,
                None,
                add_interval(start, interval),
            )
        };
        if end.year() > *crate::domain::limits::YEARS.end() {
            return Err(AppError::unprocessable(
                "invalid_period",
                "the first period would end after the year 9999",
            ));
        }
        users::ensure(conn, &user_id)?;
        let sub = Subscription::create(
            conn,
            &user_id,
            &product.id,
            &price.id,
            SubscriptionState {
                status,
                quantity,
                current_period_start: to_db(start),
                current_period_end: to_db(end),
                trial_end: trial_end.map(to_db),
                cancel_at_period_end: false,
                grace_until: None,
            },
        )?;
        changed.user(sub.user_id.clone());
        Ok(sub)
    })
    .await
}

/// A change support makes to a subscription; absent fields stay.
#[derive(Default)]
pub struct SubscriptionChange {
    pub status: Option<SubscriptionStatus>,
    pub quantity: Option<i32>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub trial_end: Option<DateTime<Utc>>,
    pub grace_until: Option<DateTime<Utc>>,
    pub cancel_at_period_end: Option<bool>,
}

/// Moves a subscription through its lifecycle by hand.
pub async fn update_subscription(
    state: &AppState,
    id: &str,
    change: SubscriptionChange,
) -> Result<Subscription, AppError> {
    let id = id.to_owned();
    changes::transaction(state, move |conn, changed| {
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
        let seated = Subscription::seat_holders(conn, &sub.id)?.len();
        if i64::try_from(seated).unwrap_or(i64::MAX) > i64::from(sub.quantity) {
            return Err(AppError::conflict(
                "seats_in_use",
                "remove seat holders before lowering the quantity",
            ));
        }
        sub.save(conn)?;
        changed.users(sub.holders(conn)?);
        Ok(sub)
    })
    .await
}

/// Records a one-off purchase (a pack) by hand.
pub async fn create_order(
    state: &AppState,
    buyer_id: &str,
    recipient_id: Option<&str>,
    price_id: &str,
    status: OrderStatus,
) -> Result<Order, AppError> {
    let (buyer_id, price_id) = (buyer_id.to_owned(), price_id.to_owned());
    let recipient_id = recipient_id.map(str::to_owned);
    changes::transaction(state, move |conn, changed| {
        let price = Price::find(conn, &price_id)?.ok_or_else(|| {
            AppError::unprocessable("unknown_price", format!("no price {price_id}"))
        })?;
        let product = Product::find(conn, &price.product_id)?
            .ok_or_else(|| AppError::not_found("product"))?;
        if product.kind == ProductKind::Plan || price.interval.is_some() {
            return Err(AppError::unprocessable(
                "not_one_off",
                "orders need a one-off price of a pack or donation target",
            ));
        }
        users::ensure(conn, &buyer_id)?;
        if let Some(r) = &recipient_id {
            users::ensure(conn, r)?;
        }
        let order = Order::create(
            conn,
            NewOrder {
                buyer_id,
                recipient_id,
                product_id: product.id,
                price_id: price.id,
                amount_minor: price.amount_minor,
                currency: price.currency,
                status,
                kind: OrderKind::Pack,
                gift_days: None,
                message: None,
                channel: SalesChannel::Store,
            },
        )?;
        changed.user(order.holder().to_owned());
        Ok(order)
    })
    .await
}

/// Sets a hand-made order's status (one paid through Stripe is refunded through Stripe).
pub async fn update_order(
    state: &AppState,
    id: &str,
    status: OrderStatus,
) -> Result<Order, AppError> {
    let id = id.to_owned();
    changes::transaction(state, move |conn, changed| {
        Order::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("order {id}")))?;
        refund_requests::ensure_hand_made(conn, &id)?;
        let order = Order::set_status(conn, &id, status)?;
        changed.user(order.holder().to_owned());
        Ok(order)
    })
    .await
}
