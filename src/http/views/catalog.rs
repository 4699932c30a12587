//! The catalog: products with their prices and entitlements, and entitlement definitions.

use crate::db::models::catalog::{EntitlementDefinition, PlanEntitlement, Price, Product};
use crate::db::models::from_db;
use crate::domain::states::{Interval, ProductKind};
use crate::services::catalog;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A product's own fields (no Stripe ids).
#[derive(Serialize)]
pub struct ProductFields {
    pub id: String,
    pub kind: ProductKind,
    pub name: String,
    pub description: String,
    pub creator_id: Option<String>,
    pub per_seat: bool,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&Product> for ProductFields {
    fn from(p: &Product) -> Self {
        ProductFields {
            id: p.id.clone(),
            kind: p.kind,
            name: p.name.clone(),
            description: p.description.clone(),
            creator_id: p.creator_id.clone(),
            per_seat: p.per_seat,
            active: p.active,
            created_at: from_db(p.created_at),
        }
    }
}

/// A product as clients and admins see it: with its prices and entitlements.
#[derive(Serialize)]
pub struct ProductView {
    #[serde(flatten)]
    pub product: ProductFields,
    pub prices: Vec<PriceView>,
    pub entitlements: Vec<PlanEntitlementView>,
}

impl From<&catalog::ProductView> for ProductView {
    fn from(v: &catalog::ProductView) -> Self {
        ProductView {
            product: ProductFields::from(&v.product),
            prices: super::all(&v.prices),
            entitlements: super::all(&v.entitlements),
        }
    }
}

#[derive(Serialize)]
pub struct PriceView {
    pub id: String,
    pub product_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub interval: Option<Interval>,
    pub trial_days: i32,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&Price> for PriceView {
    fn from(p: &Price) -> Self {
        PriceView {
            id: p.id.clone(),
            product_id: p.product_id.clone(),
            amount_minor: p.amount_minor,
            currency: p.currency.clone(),
            interval: p.interval,
            trial_days: p.trial_days,
            active: p.active,
            created_at: from_db(p.created_at),
        }
    }
}

/// An entitlement a plan confers, within its product (so without the product id).
#[derive(Serialize)]
pub struct PlanEntitlementView {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
}

impl From<&PlanEntitlement> for PlanEntitlementView {
    fn from(e: &PlanEntitlement) -> Self {
        PlanEntitlementView {
            key: e.entitlement_key.clone(),
            value: e.value,
        }
    }
}

#[derive(Serialize)]
pub struct EntitlementDefinitionView {
    pub key: String,
    pub kind: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

impl From<&EntitlementDefinition> for EntitlementDefinitionView {
    fn from(d: &EntitlementDefinition) -> Self {
        EntitlementDefinitionView {
            key: d.key.clone(),
            kind: d.kind.clone(),
            description: d.description.clone(),
            created_at: from_db(d.created_at),
        }
    }
}
