//! Purchases through Stripe: subscriptions, packs and gifts, donations. Each use case writes
//! our record and commits, then calls Stripe (with an idempotency key derived from that
//! record's id), then records Stripe's answer. Webhooks later confirm payment.

use crate::app::AppState;
use crate::config::DonationLimits;
use crate::db::models::catalog::{Price, Product};
use crate::db::models::creators::Creator;
use crate::db::models::donations::{Donation, NewDonation};
use crate::db::models::orders::{NewOrder, Order};
use crate::db::models::packs::Pack;
use crate::db::models::subscriptions::{Subscription, SubscriptionState};
use crate::db::models::{to_db, users};
use crate::db::{self, DbConn};
use crate::domain::regions::Region;
use crate::domain::states::{
    DonationStatus, Interval, OrderKind, OrderStatus, ProductKind, SalesChannel, SubscriptionStatus,
};
use crate::error::AppError;
use crate::services::billing::subscription_events;
use crate::services::changes;
use crate::services::packs::check_sale_region;
use crate::stripe::gateway::{Gateway, GatewayError};
use crate::stripe::objects;
use actix_web::http::StatusCode;
use chrono::{Duration, Utc};

pub fn gateway(state: &AppState) -> Result<&Gateway, AppError> {
    state.stripe.as_ref().ok_or_else(|| {
        AppError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "stripe_not_configured",
            "payments are not configured on this service (no Stripe key)",
        )
    })
}

pub(super) fn stripe_error(e: GatewayError) -> AppError {
    match e {
        GatewayError::Refused { message, .. } => AppError::client(
            StatusCode::PAYMENT_REQUIRED,
            "payment_refused",
            format!("Stripe: {message}"),
        ),
        GatewayError::Unavailable(cause) => {
            tracing::warn!(%cause, "Stripe unavailable");
            AppError::client(
                StatusCode::BAD_GATEWAY,
                "stripe_unavailable",
                "Stripe could not be reached; retry with the same Idempotency-Key",
            )
        }
    }
}

/// Who pays: the user's Stripe customer, created on their first purchase and never twice
/// (a race of two first purchases gets one customer: same Stripe idempotency key).
async fn customer(state: &AppState, user: &str, email: Option<String>) -> Result<String, AppError> {
    let (u, e) = (user.to_owned(), email.clone());
    let known = db::transaction(&state.pool, move |conn| {
        users::ensure(conn, &u)?;
        if let Some(e) = &e {
            users::set_email(conn, &u, e)?;
        }
        Ok(users::stripe_customer(conn, &u)?)
    })
    .await?;
    if let Some(c) = known {
        return Ok(c);
    }
    let created = gateway(state)?
        .create_customer(user, email.as_deref())
        .await
        .map_err(stripe_error)?;
    let u = user.to_owned();
    db::run(&state.pool, move |conn| {
        Ok(users::set_stripe_customer(conn, &u, &created.id)?)
    })
    .await
}

/// What the app needs after starting a purchase (rendered by `http::views::StartedView`).
pub struct Started<T> {
    pub record: T,
    /// Stripe's status of the payment or subscription.
    pub stripe_status: String,
    /// For the app to confirm the payment with Stripe's SDK; absent when nothing is owed now.
    pub client_secret: Option<String>,
}

pub struct Subscribe {
    pub price_id: String,
    pub quantity: i32,
    pub payment_method: Option<String>,
    pub email: Option<String>,
}

fn subscription_price(
    conn: &mut DbConn,
    price_id: &str,
    quantity: i32,
) -> Result<(Price, Product), AppError> {
    let price = Price::find(conn, price_id)?
        .filter(|p| p.active)
        .ok_or_else(|| AppError::not_found(format!("price {price_id}")))?;
    let product = Product::find(conn, &price.product_id)?
        .filter(|p| p.active && p.kind == ProductKind::Plan)
        .ok_or_else(|| {
            AppError::unprocessable("not_a_plan", "that price is not a price of an active plan")
        })?;
    if price.interval.is_none() {
        return Err(AppError::unprocessable(
            "not_recurring",
            "subscriptions need a monthly or yearly price",
        ));
    }
    if !(1..=10_000).contains(&quantity) || (!product.per_seat && quantity != 1) {
        return Err(AppError::unprocessable(
            "invalid_quantity",
            "quantity is 1, or 1-10000 seats for a per-seat plan",
        ));
    }
    Ok((price, product))
}

/// Stripe bills a customer's subscriptions in one currency: a recurring purchase in another
/// currency than the user's live ones is refused rather than failing at Stripe.
fn one_billing_currency(conn: &mut DbConn, user: &str, currency: &str) -> Result<(), AppError> {
    let billed = Subscription::billing_currencies(conn, user)?;
    match billed.iter().find(|c| c.as_str() != currency) {
        Some(other) => Err(AppError::conflict(
            "currency_mismatch",
            format!(
                "you are billed in {other}: Stripe bills one currency per customer; choose a \
                 {other} price, or end what you pay in {other} first"
            ),
        )),
        None => Ok(()),
    }
}

/// Writes Stripe's answer to our call onto our subscription, as a webhook would: as of now,
/// so an event Stripe created before the answer does not undo it, and one created after it
/// does.
fn take_state(
    conn: &mut DbConn,
    object: &objects::Subscription,
    grace_days: i64,
) -> Result<Vec<String>, AppError> {
    let now = Utc::now();
    let applied = subscription_events::changed(conn, now.timestamp(), now, object, grace_days)?;
    Ok(applied.affected)
}

pub async fn subscribe(
    state: &AppState,
    user: &str,
    new: Subscribe,
) -> Result<Started<Subscription>, AppError> {
    let gw = gateway(state)?.clone();
    let (u, price_id, quantity) = (user.to_owned(), new.price_id.clone(), new.quantity);
    // Ours first, owing nothing until Stripe says so (`expired` is our word for incomplete).
    let (sub, price, product) = db::transaction(&state.pool, move |conn| {
        let (price, product) = subscription_price(conn, &price_id, quantity)?;
        users::ensure(conn, &u)?;
        one_billing_currency(conn, &u, &price.currency)?;
        let now = Utc::now();
        let sub = Subscription::create(
            conn,
            &u,
            &product.id,
            &price.id,
            SubscriptionState {
                status: SubscriptionStatus::Expired,
                quantity,
                // Placeholder period until Stripe's answer: it grants nothing (`expired`).
                current_period_start: to_db(now - Duration::seconds(1)),
                current_period_end: to_db(now),
                trial_end: None,
                cancel_at_period_end: false,
                grace_until: None,
            },
        )?;
        Ok((sub, price, product))
    })
    .await?;
    let result = async {
        let customer = customer(state, user, new.email).await?;
        if let Some(pm) = &new.payment_method {
            gw.set_default_payment_method(&customer, pm)
                .await
                .map_err(stripe_error)?;
        }
        let interval = price.interval.unwrap_or(Interval::Month).as_str();
        gw.ensure_plan(
            &product.id,
            &product.name,
            &price.id,
            price.amount_minor,
            &price.currency,
            interval,
        )
        .await
        .map_err(stripe_error)?;
        let trial_end = (price.trial_days > 0)
            .then(|| (Utc::now() + Duration::days(i64::from(price.trial_days))).timestamp());
        let quantity = u64::try_from(sub.quantity).unwrap_or(1);
        gw.create_subscription(&sub.id, &customer, &price.id, quantity, trial_end)
            .await
            .map_err(stripe_error)
    }
    .await;
    let stripe_sub = match result {
        Ok(s) => s,
        // Stripe refused: nothing was bought, so no record of a subscription stays behind.
        Err(e @ AppError::Client { status, .. }) if status == StatusCode::PAYMENT_REQUIRED => {
            let id = sub.id.clone();
            db::run(&state.pool, move |conn| {
                Ok(Subscription::delete_unpaid(conn, &id)?)
            })
            .await?;
            return Err(e);
        }
        // Stripe may have made the subscription before the call timed out: our record stays,
        // and Stripe's events (carrying our id in metadata) or a retry link it.
        Err(e) => return Err(e),
    };
    finish_subscription(state, &sub.id, stripe_sub).await
}

async fn finish_subscription(
    state: &AppState,
    id: &str,
    (_, typed): (serde_json::Value, objects::Subscription),
) -> Result<Started<Subscription>, AppError> {
    let grace = state.settings.stripe.past_due_grace_days;
    let id = id.to_owned();
    let object = typed.clone();
    let sub = changes::transaction(state, move |conn, changed| {
        changed.users(take_state(conn, &object, grace)?);
        Subscription::find(conn, &id)?.ok_or_else(|| AppError::not_found("subscription"))
    })
    .await?;
    Ok(Started {
        record: sub,
        stripe_status: typed.status.as_str().to_owned(),
        client_secret: typed.client_secret(),
    })
}

/// The id of the Stripe subscription's one item (plan and seat changes name it).
async fn item_of(gw: &Gateway, stripe_id: &str) -> Result<String, AppError> {
    let (_, current) = gw
        .retrieve_subscription(stripe_id)
        .await
        .map_err(stripe_error)?;
    Ok(current
        .items
        .data
        .first()
        .map(|i| i.id.clone())
        .unwrap_or_default())
}

/// The caller's own subscription that Stripe bills; others' are "not found".
async fn own_stripe_subscription(
    state: &AppState,
    user: &str,
    id: &str,
) -> Result<(Subscription, String), AppError> {
    let (u, i) = (user.to_owned(), id.to_owned());
    db::run(&state.pool, move |conn| {
        let sub = Subscription::find(conn, &i)?
            .filter(|s| s.user_id == u)
            .ok_or_else(|| AppError::not_found(format!("subscription {i}")))?;
        let stripe_id = sub.stripe_subscription_id.clone().ok_or_else(|| {
            AppError::unprocessable(
                "not_billed_by_stripe",
                "this subscription was granted, not bought; support changes it",
            )
        })?;
        Ok((sub, stripe_id))
    })
    .await
}

/// Cancel at period end (`cancel = true`: access lasts to the period's end) or resume.
pub async fn set_canceled(
    state: &AppState,
    user: &str,
    id: &str,
    cancel: bool,
) -> Result<Started<Subscription>, AppError> {
    let (sub, stripe_id) = own_stripe_subscription(state, user, id).await?;
    if sub.status == SubscriptionStatus::Expired {
        return Err(AppError::conflict(
            "subscription_ended",
            "the subscription has ended",
        ));
    }
    let key = format!(
        "{}-{}-{}",
        if cancel { "cancel" } else { "resume" },
        sub.id,
        sub.updated_at.and_utc().timestamp_micros()
    );
    let answer = gateway(state)?
        .set_cancel_at_period_end(&stripe_id, cancel, &key)
        .await
        .map_err(stripe_error)?;
    finish_subscription(state, &sub.id, answer).await
}

/// A new seat count for a per-seat subscription (never below the seats assigned).
pub async fn set_quantity(
    state: &AppState,
    user: &str,
    id: &str,
    quantity: i32,
) -> Result<Started<Subscription>, AppError> {
    let (sub, stripe_id) = own_stripe_subscription(state, user, id).await?;
    let sid = sub.id.clone();
    let price_id = sub.price_id.clone();
    db::run(&state.pool, move |conn| {
        subscription_price(conn, &price_id, quantity)?;
        let taken = Subscription::seat_holders(conn, &sid)?.len();
        if usize::try_from(quantity).unwrap_or(0) < taken {
            return Err(AppError::conflict(
                "seats_assigned",
                format!("{taken} seats are assigned; free some first"),
            ));
        }
        Ok(())
    })
    .await?;
    let gw = gateway(state)?;
    let item = item_of(gw, &stripe_id).await?;
    let key = format!(
        "quantity-{}-{}-{quantity}",
        sub.id,
        sub.updated_at.and_utc().timestamp_micros()
    );
    let answer = gw
        .set_quantity(
            &stripe_id,
            &item,
            &sub.price_id,
            u64::try_from(quantity).unwrap_or(1),
            &key,
        )
        .await
        .map_err(stripe_error)?;
    finish_subscription(state, &sub.id, answer).await
}

/// Yearly cost of a price at a quantity: how upgrades are told from downgrades.
fn yearly(price: &Price, quantity: i32) -> i64 {
    let per_year = if price.interval == Some(Interval::Year) {
        1
    } else {
        12
    };
    price.amount_minor * per_year * i64::from(quantity)
}

/// Another plan or billing interval. Dearer (per year): switched now, the proration invoiced
/// and charged at once. Cheaper: scheduled, applied at the end of the paid period (the user
/// keeps what they paid for; the billing anchor stays). Asking for the current price again
/// drops a scheduled downgrade.
pub async fn change_plan(
    state: &AppState,
    user: &str,
    id: &str,
    price_id: &str,
) -> Result<Started<Subscription>, AppError> {
    let (sub, stripe_id) = own_stripe_subscription(state, user, id).await?;
    let (current, new_id) = (sub.clone(), price_id.to_owned());
    let (old, new, product, quantity) = db::run(&state.pool, move |conn| {
        let old = Price::find(conn, &current.price_id)?
            .ok_or_else(|| AppError::not_found("current price"))?;
        let per_seat = Price::find(conn, &new_id)?
            .and_then(|p| Product::find(conn, &p.product_id).ok().flatten())
            .is_some_and(|p| p.per_seat);
        let quantity = if per_seat { current.quantity } else { 1 };
        let (new, product) = subscription_price(conn, &new_id, quantity)?;
        if new.currency != old.currency {
            return Err(AppError::unprocessable(
                "currency_mismatch",
                "a plan change keeps the subscription's currency",
            ));
        }
        Ok((old, new, product, quantity))
    })
    .await?;
    if sub.status == SubscriptionStatus::Expired {
        return Err(AppError::conflict(
            "subscription_ended",
            "the subscription has ended",
        ));
    }
    let gw = gateway(state)?;
    // Whether it starts now or at the period's end, the new price must exist at Stripe.
    if new.id != old.id {
        let interval = new.interval.unwrap_or(Interval::Month).as_str();
        gw.ensure_plan(
            &product.id,
            &product.name,
            &new.id,
            new.amount_minor,
            &new.currency,
            interval,
        )
        .await
        .map_err(stripe_error)?;
    }
    if new.id == old.id || yearly(&new, quantity) <= yearly(&old, sub.quantity) {
        let scheduled = (new.id != old.id).then(|| new.id.clone());
        let sid = sub.id.clone();
        let sub = db::run(&state.pool, move |conn| {
            Ok(Subscription::set_scheduled_price(
                conn,
                &sid,
                scheduled.as_deref(),
            )?)
        })
        .await?;
        return Ok(Started {
            stripe_status: "scheduled".into(),
            record: sub,
            client_secret: None,
        });
    }
    let item = item_of(gw, &stripe_id).await?;
    let key = format!(
        "plan-{}-{}-{}",
        sub.id,
        sub.updated_at.and_utc().timestamp_micros(),
        new.id
    );
    let answer = gw
        .change_plan(
            &stripe_id,
            &item,
            &new.id,
            u64::try_from(quantity).unwrap_or(1),
            true,
            &key,
        )
        .await
        .map_err(stripe_error)?;
    let u = user.to_owned();
    let customer = db::run(&state.pool, move |conn| {
        Ok(users::stripe_customer(conn, &u)?)
    })
    .await?;
    // Current API versions invoiced and charged the proration with the update itself.
    if let (Some(customer), false) = (customer, gw.version().current_shapes()) {
        gw.invoice_now(&customer, &stripe_id, &format!("{key}-invoice"))
            .await
            .map_err(stripe_error)?;
    }
    finish_subscription(state, &sub.id, answer).await
}

/// Applies downgrades whose period ends within `lead` (the job calls this).
pub async fn apply_due_downgrades(state: &AppState, lead: Duration) -> Result<usize, AppError> {
    let now = Utc::now();
    let due = db::run(&state.pool, move |conn| {
        Ok(Subscription::downgrades_due(
            conn,
            now + lead,
            now,
            DOWNGRADE_BATCH,
        )?)
    })
    .await?;
    let gw = gateway(state)?;
    let base = Duration::seconds(state.settings.billing.retry_base_seconds.max(1));
    let mut applied = 0;
    for sub in due {
        let id = sub.id.clone();
        // One failing downgrade never holds up the others: it is retried with backoff.
        let outcome = apply_downgrade(state, gw, sub)
            .await
            .map_err(|e| e.to_string());
        if outcome.is_ok() {
            applied += 1;
        }
        db::run(&state.pool, move |conn| {
            match outcome {
                Ok(()) => Subscription::downgrade_settled(conn, &id)?,
                Err(error) => {
                    let attempts = Subscription::downgrade_failed(conn, &id, &error, Utc::now(), base)?;
                    tracing::warn!(subscription = %id, attempts, %error, "downgrade failed; retried later");
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(applied)
}

/// Downgrades per run of the jobs worker.
const DOWNGRADE_BATCH: i64 = 100;

async fn apply_downgrade(
    state: &AppState,
    gw: &Gateway,
    sub: Subscription,
) -> Result<(), AppError> {
    let (Some(stripe_id), Some(price)) = (
        sub.stripe_subscription_id.clone(),
        sub.scheduled_price_id.clone(),
    ) else {
        return Ok(());
    };
    let (ids, new_price) = (sub.id.clone(), price.clone());
    let (attempts, interval_changes) = db::run(&state.pool, move |conn| {
        let now = sub_price(conn, &ids)?;
        let changes = interval_of(conn, &new_price)? != interval_of(conn, &now)?;
        Ok((Subscription::downgrade_attempts(conn, &ids)?, changes))
    })
    .await?;
    // Stripe replays a key's first answer, a refusal included: each retry is a new request.
    let key = format!(
        "downgrade-{}-{}-{attempts}",
        sub.id,
        sub.current_period_end.and_utc().timestamp()
    );
    let quantity = u64::try_from(sub.quantity).unwrap_or(1);
    let (_, current) = gw
        .retrieve_subscription(&stripe_id)
        .await
        .map_err(stripe_error)?;
    if interval_changes {
        // Yearly to monthly: a plain update would move the billing date to now; Stripe's
        // schedule switches exactly at the paid period's end. Our record follows the
        // `customer.subscription.updated` Stripe sends then; until then Stripe holds the change.
        let schedule = current.schedule.as_ref().map(|s| s.id().to_owned());
        gw.schedule_plan_at_period_end(
            &stripe_id,
            schedule.as_deref(),
            &sub.price_id,
            &price,
            quantity,
            sub.current_period_end.and_utc().timestamp(),
            &key,
        )
        .await
        .map_err(stripe_error)?;
        let id = sub.id.clone();
        return db::run(&state.pool, move |conn| {
            Subscription::set_scheduled_price(conn, &id, None)?;
            Ok(())
        })
        .await;
    }
    let item = current
        .items
        .data
        .first()
        .map(|i| i.id.clone())
        .unwrap_or_default();
    let answer = gw
        .change_plan(&stripe_id, &item, &price, quantity, false, &key)
        .await
        .map_err(stripe_error)?;
    finish_subscription(state, &sub.id, answer).await?;
    Ok(())
}

fn interval_of(conn: &mut DbConn, price: &str) -> Result<Option<Interval>, AppError> {
    Ok(Price::find(conn, price)?.and_then(|p| p.interval))
}

/// The price a subscription is billed at now.
fn sub_price(conn: &mut DbConn, id: &str) -> Result<String, AppError> {
    Ok(Subscription::find(conn, id)?
        .map(|s| s.price_id)
        .unwrap_or_default())
}

pub struct Buy {
    pub price_id: String,
    pub payment_method: Option<String>,
    pub recipient_id: Option<String>,
    pub message: Option<String>,
    pub email: Option<String>,
    /// The creator whose share link led here (`?ref=<creator>`): a sale of their own pack
    /// through it is split by their `creator_link` rule.
    pub referrer: Option<String>,
    /// Where the buyer is, by their token (a pack may be sold only in some regions).
    pub buyer_region: Option<Region>,
}

/// A sticker pack for oneself or as a gift, or a gifted subscription period (a plan's
/// monthly or yearly price paid once: the recipient gets that many days of the plan).
pub async fn buy(state: &AppState, user: &str, new: Buy) -> Result<Started<Order>, AppError> {
    if new.recipient_id.as_deref() == Some(user) {
        return Err(AppError::unprocessable(
            "gift_to_self",
            "a gift is for someone else; buy it for yourself without a recipient",
        ));
    }
    let gw = gateway(state)?.clone();
    let u = user.to_owned();
    let (payment_method, email) = (new.payment_method.clone(), new.email.clone());
    let order = db::transaction(&state.pool, move |conn| {
        let price = Price::find(conn, &new.price_id)?
            .filter(|p| p.active)
            .ok_or_else(|| AppError::not_found(format!("price {}", new.price_id)))?;
        let product = Product::find(conn, &price.product_id)?
            .filter(|p| p.active)
            .ok_or_else(|| AppError::not_found(format!("price {}", new.price_id)))?;
        let (kind, gift_days) = match (product.kind, price.interval) {
            (ProductKind::StickerPack, None) => (OrderKind::Pack, None),
            (ProductKind::Plan, Some(interval)) if new.recipient_id.is_some() && !product.per_seat => {
                (OrderKind::GiftSubscription, Some(if interval == Interval::Year { 365 } else { 30 }))
            }
            (ProductKind::Plan, Some(_)) => {
                return Err(AppError::unprocessable("not_giftable", "a plan can be bought here only as a gift (recipient_id) and not per seat; subscribe instead"))
            }
            _ => return Err(AppError::unprocessable("not_for_sale", "that price is not a one-off price of a sticker pack")),
        };
        if price.amount_minor <= 0 {
            return Err(AppError::unprocessable("free_item", "free items need no purchase"));
        }
        users::ensure(conn, &u)?;
        if let Some(r) = &new.recipient_id {
            users::ensure(conn, r)?;
        }
        let holder = new.recipient_id.as_deref().unwrap_or(&u);
        if kind == OrderKind::Pack {
            if let Some(pack) = Pack::find(conn, &product.id)? {
                // A gift goes where its recipient is; their region is the one their own
                // token last told us.
                let region = match (&new.recipient_id, new.buyer_region) {
                    (Some(r), _) => users::country(conn, r)?,
                    (None, Some(region)) => Some(region),
                    (None, None) => users::country(conn, &u)?,
                };
                check_sale_region(&pack, region, new.recipient_id.is_some())?;
            }
        }
        if kind == OrderKind::Pack && Order::holds_pack(conn, holder, &product.id)? {
            return Err(AppError::conflict("already_owned", "that user already has this pack"));
        }
        Ok(Order::create(
            conn,
            NewOrder {
                buyer_id: u.clone(),
                recipient_id: new.recipient_id,
                product_id: product.id,
                price_id: price.id,
                amount_minor: price.amount_minor,
                currency: price.currency,
                status: OrderStatus::Pending,
                kind,
                gift_days,
                message: new.message,
                channel: match (&product.creator_id, &new.referrer) {
                    (Some(c), Some(r)) if c == r => SalesChannel::CreatorLink,
                    _ => SalesChannel::Store,
                },
            },
        )?)
    })
    .await?;
    let cus = customer(state, user, email).await?;
    let intent = gw
        .create_payment_intent(
            "kopilka_order_id",
            &order.id,
            &cus,
            order.amount_minor,
            &order.currency,
            payment_method.as_deref(),
        )
        .await
        .map_err(stripe_error)?;
    let (id, pi) = (order.id.clone(), intent.id.clone());
    let order = db::run(&state.pool, move |conn| {
        Order::set_payment_intent(conn, &id, &pi)?;
        Order::find(conn, &id)?.ok_or_else(|| AppError::not_found("order"))
    })
    .await?;
    Ok(Started {
        record: order,
        stripe_status: intent.status,
        client_secret: intent.client_secret,
    })
}

pub struct Donate {
    pub amount_minor: i64,
    pub currency: String,
    pub creator_id: Option<String>,
    pub recurring: bool,
    pub message: Option<String>,
    pub anonymous: bool,
    pub email: Option<String>,
    pub payment_method: Option<String>,
}

fn limits_for(state: &AppState, currency: &str) -> Option<DonationLimits> {
    state
        .settings
        .billing
        .donation_limits
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(currency))
        .map(|(_, l)| *l)
}

pub async fn donate(
    state: &AppState,
    user: &str,
    new: Donate,
) -> Result<Started<Donation>, AppError> {
    let gw = gateway(state)?.clone();
    let limits = limits_for(state, &new.currency).ok_or_else(|| {
        AppError::unprocessable(
            "unsupported_currency",
            format!("donations in {} are not accepted", new.currency),
        )
    })?;
    if new.amount_minor < limits.min || new.amount_minor > limits.max {
        return Err(AppError::unprocessable(
            "amount_out_of_range",
            format!(
                "donations in {} are between {} and {} (minor units)",
                new.currency, limits.min, limits.max
            ),
        ));
    }
    let u = user.to_owned();
    let (creator, amount, currency, recurring) = (
        new.creator_id.clone(),
        new.amount_minor,
        new.currency.to_ascii_uppercase(),
        new.recurring,
    );
    let (message, anonymous) = (new.message.clone(), new.anonymous);
    let c = currency.clone();
    let donation = db::transaction(&state.pool, move |conn| {
        if let Some(c) = &creator {
            if Creator::find(conn, c)?.is_none() {
                return Err(AppError::not_found(format!("creator {c}")));
            }
        }
        users::ensure(conn, &u)?;
        if recurring {
            one_billing_currency(conn, &u, &c)?;
        }
        Ok(Donation::create(
            conn,
            NewDonation {
                donor_id: u,
                creator_id: creator,
                amount_minor: amount,
                currency: c,
                recurring,
                message,
                anonymous,
            },
        )?)
    })
    .await?;
    let cus = customer(state, user, new.email).await?;
    let (pi, sub, stripe_status, client_secret) = if recurring {
        if let Some(pm) = &new.payment_method {
            gw.set_default_payment_method(&cus, pm)
                .await
                .map_err(stripe_error)?;
        }
        let target = donation.creator_id.as_deref().unwrap_or("platform");
        let plan = format!(
            "donation_{target}_{amount}_{}_month",
            currency.to_ascii_lowercase()
        );
        gw.ensure_plan(
            "kopilka_donations",
            "Donations",
            &plan,
            amount,
            &currency,
            "month",
        )
        .await
        .map_err(stripe_error)?;
        let (_, s) = gw
            .create_subscription(&donation.id, &cus, &plan, 1, None)
            .await
            .map_err(stripe_error)?;
        let secret = s.client_secret();
        (None, Some(s.id), s.status.as_str().to_owned(), secret)
    } else {
        let i = gw
            .create_payment_intent(
                "kopilka_donation_id",
                &donation.id,
                &cus,
                amount,
                &currency,
                new.payment_method.as_deref(),
            )
            .await
            .map_err(stripe_error)?;
        (Some(i.id), None, i.status, i.client_secret)
    };
    let id = donation.id.clone();
    let status = stripe_status.clone();
    // A monthly donation Stripe already charged is running.
    let running = recurring && stripe_status == objects::SubscriptionStatus::Active.as_str();
    let donation = db::run(&state.pool, move |conn| {
        Donation::set_stripe(conn, &id, pi.as_deref(), sub.as_deref())?;
        if running {
            Donation::set_status(conn, &id, DonationStatus::Active)?;
        }
        Donation::find(conn, &id)?.ok_or_else(|| AppError::not_found("donation"))
    })
    .await?;
    Ok(Started {
        record: donation,
        stripe_status: status,
        client_secret,
    })
}
