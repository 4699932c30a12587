//! The catalog: products (plans, sticker packs, donation targets), their prices and the
//! entitlements a plan grants. Changing a plan's entitlements changes every holder's answer.

use crate::app::AppState;
use crate::db::models::catalog::{
    EntitlementDefinition, NewPrice, NewProduct, PlanEntitlement, Price, Product,
};
use crate::db::{self, DbConn};
use crate::domain::limits;
use crate::domain::money::Currency;
use crate::domain::states::Interval;
use crate::error::AppError;
use crate::services::changes;

/// A product with its prices and entitlements (rendered by `http::views::ProductView`).
pub struct ProductView {
    pub product: Product,
    pub prices: Vec<Price>,
    pub entitlements: Vec<PlanEntitlement>,
}

fn views(
    conn: &mut DbConn,
    products: Vec<Product>,
    active_prices_only: bool,
) -> Result<Vec<ProductView>, AppError> {
    let ids: Vec<String> = products.iter().map(|p| p.id.clone()).collect();
    let prices = Price::of_products(conn, &ids)?;
    let ents = Product::entitlements_of(conn, &ids)?;
    Ok(products
        .into_iter()
        .map(|product| ProductView {
            prices: prices
                .iter()
                .filter(|p| p.product_id == product.id && (p.active || !active_prices_only))
                .cloned()
                .collect(),
            entitlements: ents
                .iter()
                .filter(|e| e.product_id == product.id)
                .cloned()
                .collect(),
            product,
        })
        .collect())
}

fn view(conn: &mut DbConn, product: Product) -> Result<ProductView, AppError> {
    views(conn, vec![product], false)?
        .pop()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a product without its view")))
}

/// Active plans with their active prices and entitlements (public).
pub async fn plans(state: &AppState) -> Result<Vec<ProductView>, AppError> {
    db::run(&state.pool, |conn| {
        let products = Product::active_plans(conn)?;
        views(conn, products, true)
    })
    .await
}

pub async fn all_products(state: &AppState) -> Result<Vec<ProductView>, AppError> {
    db::run(&state.pool, |conn| {
        let products = Product::all(conn)?;
        views(conn, products, false)
    })
    .await
}

/// Entitlements one plan may confer, and the lengths of a product's texts.
pub const MAX_PLAN_ENTITLEMENTS: usize = 100;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// A product's name and description within their bounds.
fn check_texts(name: Option<&str>, description: Option<&str>) -> Result<(), AppError> {
    if name.is_some_and(|n| n.trim().is_empty() || n.chars().count() > MAX_NAME_CHARS) {
        return Err(AppError::unprocessable(
            "invalid_name",
            format!("name must be 1-{MAX_NAME_CHARS} characters"),
        ));
    }
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
        return Err(AppError::unprocessable(
            "invalid_description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn quota_out_of_range(key: &str) -> AppError {
    AppError::unprocessable(
        "invalid_entitlement",
        format!("{key}: a quota is 0 to {}", limits::MAX_QUOTA),
    )
}

/// Checks a plan's entitlements against their definitions: quotas need a value, booleans none.
fn check_specs(
    conn: &mut DbConn,
    specs: &[(String, Option<i64>)],
) -> Result<Vec<(String, Option<i64>)>, AppError> {
    if specs.len() > MAX_PLAN_ENTITLEMENTS {
        return Err(AppError::unprocessable(
            "too_many_entitlements",
            format!("at most {MAX_PLAN_ENTITLEMENTS} entitlements per plan"),
        ));
    }
    let mut keys: Vec<&str> = specs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        return Err(AppError::unprocessable(
            "invalid_entitlement",
            format!("{} is listed twice", w[0]),
        ));
    }
    for (key, value) in specs {
        let def = EntitlementDefinition::find(conn, key)?.ok_or_else(|| {
            AppError::unprocessable(
                "unknown_entitlement",
                format!("entitlement {key:?} is not defined"),
            )
        })?;
        match (def.kind.as_str(), value) {
            ("quota", None) => {
                return Err(AppError::unprocessable(
                    "invalid_entitlement",
                    format!("{key} is a quota and needs a value"),
                ))
            }
            ("boolean", Some(_)) => {
                return Err(AppError::unprocessable(
                    "invalid_entitlement",
                    format!("{key} is boolean and takes no value"),
                ))
            }
            (_, Some(v)) if !limits::valid_quota(*v) => return Err(quota_out_of_range(key)),
            _ => {}
        }
    }
    Ok(specs.to_vec())
}

pub async fn create_product(
    state: &AppState,
    new: NewProduct,
    entitlements: Vec<(String, Option<i64>)>,
) -> Result<ProductView, AppError> {
    check_texts(Some(&new.name), Some(&new.description))?;
    db::transaction(&state.pool, move |conn| {
        let ents = check_specs(conn, &entitlements)?;
        let product = Product::create(conn, new)?;
        Product::set_entitlements(conn, &product.id, &ents)?;
        view(conn, product)
    })
    .await
}

pub async fn update_product(
    state: &AppState,
    id: &str,
    name: Option<String>,
    description: Option<String>,
    active: Option<bool>,
) -> Result<ProductView, AppError> {
    check_texts(name.as_deref(), description.as_deref())?;
    let id = id.to_owned();
    changes::transaction(state, move |conn, changed| {
        Product::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("product {id}")))?;
        // Retiring or reviving a product (the default plan among them) changes answers.
        if active.is_some() {
            changed.everyone();
        }
        let product = Product::update(conn, &id, name, description, active)?;
        view(conn, product)
    })
    .await
}

/// Changes what every holder of the product gets.
pub async fn set_entitlements(
    state: &AppState,
    id: &str,
    entitlements: Vec<(String, Option<i64>)>,
) -> Result<ProductView, AppError> {
    let id = id.to_owned();
    changes::transaction(state, move |conn, changed| {
        let product = Product::find(conn, &id)?
            .ok_or_else(|| AppError::not_found(format!("product {id}")))?;
        let ents = check_specs(conn, &entitlements)?;
        Product::set_entitlements(conn, &id, &ents)?;
        changed.everyone();
        view(conn, product)
    })
    .await
}

/// A price for a product (shapes checked at the edge).
pub struct PriceRequest {
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Option<Interval>,
    pub trial_days: i32,
}

pub async fn create_price(
    state: &AppState,
    product_id: &str,
    new: PriceRequest,
) -> Result<Price, AppError> {
    // Stripe charges at least one minor unit and at most eight digits; something free has no
    // price.
    if !(1..=limits::MAX_AMOUNT_MINOR).contains(&new.amount_minor) {
        return Err(AppError::unprocessable(
            "invalid_amount",
            format!("amount_minor must be 1 to {}", limits::MAX_AMOUNT_MINOR),
        ));
    }
    let product_id = product_id.to_owned();
    db::transaction(&state.pool, move |conn| {
        Product::find(conn, &product_id)?
            .ok_or_else(|| AppError::not_found(format!("product {product_id}")))?;
        Ok(Price::create(
            conn,
            NewPrice {
                id: None,
                product_id,
                amount_minor: new.amount_minor,
                currency: new.currency.to_string(),
                interval: new.interval,
                trial_days: new.trial_days,
            },
        )?)
    })
    .await
}

pub async fn set_price_active(state: &AppState, id: &str, active: bool) -> Result<Price, AppError> {
    let id = id.to_owned();
    db::transaction(&state.pool, move |conn| {
        Price::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("price {id}")))?;
        Ok(Price::set_active(conn, &id, active)?)
    })
    .await
}
