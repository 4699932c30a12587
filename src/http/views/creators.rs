//! Creators: their profile, and their earnings with recent sales.

use crate::db::models::creators::Creator;
use crate::db::models::from_db;
use crate::db::models::payments::Payment;
use crate::services::billing::earnings::{CurrencyEarnings, Earnings};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A creator's profile, without their Stripe account.
#[derive(Serialize)]
pub struct CreatorView {
    pub user_id: String,
    pub display_name: String,
    /// The creator's share of each sale in basis points (7000 = 70 %).
    pub revenue_share_bps: i32,
    /// The share of sales through the creator's own link; `null`: the store's share.
    pub link_share_bps: Option<i32>,
    pub country: Option<String>,
    pub payout_currency: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Creator> for CreatorView {
    fn from(c: &Creator) -> Self {
        CreatorView {
            user_id: c.user_id.clone(),
            display_name: c.display_name.clone(),
            revenue_share_bps: c.revenue_share_bps,
            link_share_bps: c.link_share_bps,
            country: c.country.clone(),
            payout_currency: c.payout_currency.clone(),
            created_at: from_db(c.created_at),
        }
    }
}

/// A payment as its creator sees it: what was paid and their share, not who paid or the fee.
#[derive(Serialize)]
pub struct SaleView {
    pub id: String,
    pub order_id: Option<String>,
    pub donation_id: Option<String>,
    pub subscription_id: Option<String>,
    pub amount_minor: i64,
    pub creator_share_minor: i64,
    pub currency: String,
    pub refunded_minor: i64,
    pub created_at: DateTime<Utc>,
}

impl From<&Payment> for SaleView {
    fn from(p: &Payment) -> Self {
        SaleView {
            id: p.id.clone(),
            order_id: p.order_id.clone(),
            donation_id: p.donation_id.clone(),
            subscription_id: p.subscription_id.clone(),
            amount_minor: p.amount_minor,
            creator_share_minor: p.creator_share_minor,
            currency: p.currency.clone(),
            refunded_minor: p.refunded_minor,
            created_at: from_db(p.created_at),
        }
    }
}

/// A creator's earnings: balances per currency (already a view) and recent sales.
#[derive(Serialize)]
pub struct EarningsView {
    pub creator_id: String,
    pub hold_days: i64,
    pub balances: Vec<CurrencyEarnings>,
    pub recent_sales: Vec<SaleView>,
}

impl From<Earnings> for EarningsView {
    fn from(e: Earnings) -> Self {
        EarningsView {
            recent_sales: super::all(&e.recent_sales),
            creator_id: e.creator_id,
            hold_days: e.hold_days,
            balances: e.balances,
        }
    }
}
