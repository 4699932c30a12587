//! What users buy: subscriptions, orders (packs, gifts), donations, and a purchase just
//! started with what the app needs to confirm it.

use crate::db::models::donations::Donation;
use crate::db::models::from_db;
use crate::db::models::orders::Order;
use crate::db::models::subscriptions::Subscription;
use crate::domain::states::{DonationStatus, OrderKind, OrderStatus, SubscriptionStatus};
use crate::services::billing::purchases::Started;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Serialize)]
pub struct SubscriptionView {
    pub id: String,
    pub user_id: String,
    pub product_id: String,
    pub price_id: String,
    pub status: SubscriptionStatus,
    pub quantity: i32,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    pub trial_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub grace_until: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A downgrade to apply at the end of the paid period.
    pub scheduled_price_id: Option<String>,
}

impl From<&Subscription> for SubscriptionView {
    fn from(s: &Subscription) -> Self {
        SubscriptionView {
            id: s.id.clone(),
            user_id: s.user_id.clone(),
            product_id: s.product_id.clone(),
            price_id: s.price_id.clone(),
            status: s.status,
            quantity: s.quantity,
            current_period_start: from_db(s.current_period_start),
            current_period_end: from_db(s.current_period_end),
            trial_end: s.trial_end.map(from_db),
            cancel_at_period_end: s.cancel_at_period_end,
            grace_until: s.grace_until.map(from_db),
            canceled_at: s.canceled_at.map(from_db),
            created_at: from_db(s.created_at),
            updated_at: from_db(s.updated_at),
            scheduled_price_id: s.scheduled_price_id.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct OrderView {
    pub id: String,
    pub buyer_id: String,
    pub recipient_id: Option<String>,
    pub product_id: String,
    pub price_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: OrderStatus,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub kind: OrderKind,
    pub gift_days: Option<i32>,
    pub message: Option<String>,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            id: o.id.clone(),
            buyer_id: o.buyer_id.clone(),
            recipient_id: o.recipient_id.clone(),
            product_id: o.product_id.clone(),
            price_id: o.price_id.clone(),
            amount_minor: o.amount_minor,
            currency: o.currency.clone(),
            status: o.status,
            paid_at: o.paid_at.map(from_db),
            created_at: from_db(o.created_at),
            updated_at: from_db(o.updated_at),
            kind: o.kind,
            gift_days: o.gift_days,
            message: o.message.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct DonationView {
    pub id: String,
    pub donor_id: String,
    pub creator_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub recurring: bool,
    pub message: Option<String>,
    pub anonymous: bool,
    pub status: DonationStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Donation> for DonationView {
    fn from(d: &Donation) -> Self {
        DonationView {
            id: d.id.clone(),
            donor_id: d.donor_id.clone(),
            creator_id: d.creator_id.clone(),
            amount_minor: d.amount_minor,
            currency: d.currency.clone(),
            recurring: d.recurring,
            message: d.message.clone(),
            anonymous: d.anonymous,
            status: d.status,
            created_at: from_db(d.created_at),
            updated_at: from_db(d.updated_at),
        }
    }
}

/// A purchase just started: the record's view, with Stripe's status and the secret the app
/// confirms the payment with.
#[derive(Serialize)]
pub struct StartedView<V> {
    #[serde(flatten)]
    pub record: V,
    pub stripe_status: String,
    pub client_secret: Option<String>,
}

impl<R, V: for<'a> From<&'a R>> From<Started<R>> for StartedView<V> {
    fn from(s: Started<R>) -> Self {
        StartedView {
            record: V::from(&s.record),
            stripe_status: s.stripe_status,
            client_secret: s.client_secret,
        }
    }
}
