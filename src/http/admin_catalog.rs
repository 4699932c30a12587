//! The catalog: the public plan list, and products, prices and entitlement definitions
//! managed by admins.

use super::parse_json;
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::db::models::catalog::{
    EntitlementDefinition, NewPrice, NewProduct, PlanEntitlement, Price, Product,
};
use crate::db::{self, DbConn};
use crate::domain::money::Currency;
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/plans").route(web::get().to(plans)))
        .service(
            web::resource("/v1/admin/products")
                .route(web::get().to(list_products))
                .route(web::post().to(create_product)),
        )
        .service(web::resource("/v1/admin/products/{id}").route(web::patch().to(update_product)))
        .service(
            web::resource("/v1/admin/products/{id}/entitlements")
                .route(web::put().to(set_entitlements)),
        )
        .service(
            web::resource("/v1/admin/products/{id}/prices").route(web::post().to(create_price)),
        )
        .service(web::resource("/v1/admin/prices/{id}").route(web::patch().to(update_price)))
        .service(
            web::resource("/v1/admin/entitlement-definitions")
                .route(web::get().to(list_definitions))
                .route(web::post().to(create_definition)),
        );
}

#[derive(Serialize)]
struct ProductView {
    #[serde(flatten)]
    product: Product,
    prices: Vec<Price>,
    entitlements: Vec<PlanEntitlement>,
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

/// GET /v1/plans — public: active plans with their active prices and entitlements.
async fn plans(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let plans = db::run(&state.pool, |conn| {
        let products = Product::active_plans(conn)?;
        views(conn, products, true)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "plans": plans })))
}

async fn list_products(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let products = db::run(&state.pool, |conn| {
        let products = Product::all(conn)?;
        views(conn, products, false)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "products": products })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitlementSpec {
    key: String,
    #[serde(default)]
    value: Option<i64>,
}

/// Entitlement keys are short identifiers: `premium`, `max_upload_mb`, `sticker_pack:abc`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_:.-".contains(&b))
}

/// Checks a plan's entitlements against their definitions: quotas need a value, booleans none.
fn check_specs(
    conn: &mut DbConn,
    specs: &[EntitlementSpec],
) -> Result<Vec<(String, Option<i64>)>, AppError> {
    let mut out = Vec::new();
    for spec in specs {
        let def = EntitlementDefinition::find(conn, &spec.key)?.ok_or_else(|| {
            AppError::unprocessable(
                "unknown_entitlement",
                format!("entitlement {:?} is not defined", spec.key),
            )
        })?;
        match (def.kind.as_str(), spec.value) {
            ("quota", None) => {
                return Err(AppError::unprocessable(
                    "invalid_entitlement",
                    format!("{} is a quota and needs a value", spec.key),
                ))
            }
            ("boolean", Some(_)) => {
                return Err(AppError::unprocessable(
                    "invalid_entitlement",
                    format!("{} is boolean and takes no value", spec.key),
                ))
            }
            _ => out.push((spec.key.clone(), spec.value)),
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProduct {
    #[serde(default)]
    id: Option<String>,
    kind: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    per_seat: bool,
    #[serde(default)]
    creator_id: Option<String>,
    #[serde(default)]
    entitlements: Vec<EntitlementSpec>,
}

async fn create_product(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: CreateProduct = parse_json(&body)?;
        if !["plan", "sticker_pack", "donation_target"].contains(&new.kind.as_str()) {
            return Err(AppError::unprocessable(
                "invalid_kind",
                "kind must be plan, sticker_pack or donation_target",
            ));
        }
        if new.name.trim().is_empty() || new.name.len() > 200 {
            return Err(AppError::unprocessable(
                "invalid_name",
                "name must be 1-200 characters",
            ));
        }
        if new.id.as_deref().is_some_and(|id| !valid_key(id)) {
            return Err(AppError::unprocessable(
                "invalid_id",
                "id must be 1-64 characters of a-z, 0-9, _ : . -",
            ));
        }
        let view = db::transaction(&state.pool, move |conn| {
            let ents = check_specs(conn, &new.entitlements)?;
            let product = Product::create(
                conn,
                NewProduct {
                    id: new.id,
                    kind: new.kind,
                    name: new.name,
                    description: new.description,
                    creator_id: new.creator_id,
                    per_seat: new.per_seat,
                },
            )?;
            Product::set_entitlements(conn, &product.id, &ents)?;
            Ok(views(conn, vec![product], false)?.remove(0))
        })
        .await?;
        Ok(Reply::created(view))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateProduct {
    name: Option<String>,
    description: Option<String>,
    active: Option<bool>,
}

async fn update_product(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let change: UpdateProduct = parse_json(&body)?;
    let id = path.into_inner();
    let view = db::transaction(&state.pool, move |conn| {
        Product::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("product {id}")))?;
        let product = Product::update(conn, &id, change.name, change.description, change.active)?;
        Ok(views(conn, vec![product], false)?.remove(0))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetEntitlements {
    entitlements: Vec<EntitlementSpec>,
}

/// PUT /v1/admin/products/{id}/entitlements — changes what every holder of the plan gets.
async fn set_entitlements(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let set: SetEntitlements = parse_json(&body)?;
    let id = path.into_inner();
    let view = db::transaction(&state.pool, move |conn| {
        let product = Product::find(conn, &id)?
            .ok_or_else(|| AppError::not_found(format!("product {id}")))?;
        let ents = check_specs(conn, &set.entitlements)?;
        Product::set_entitlements(conn, &id, &ents)?;
        db::notify_changed(conn, &["*"])?;
        Ok(views(conn, vec![product], false)?.remove(0))
    })
    .await?;
    state.entitlements.invalidate_all();
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePrice {
    amount_minor: i64,
    currency: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    trial_days: i32,
}

async fn create_price(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let product_id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: CreatePrice = parse_json(&body)?;
        let currency = Currency::parse(&new.currency)
            .map_err(|e| AppError::unprocessable("invalid_currency", e))?;
        if new.amount_minor < 0 {
            return Err(AppError::unprocessable(
                "invalid_amount",
                "amount_minor must be >= 0",
            ));
        }
        if new
            .interval
            .as_deref()
            .is_some_and(|i| i != "month" && i != "year")
        {
            return Err(AppError::unprocessable(
                "invalid_interval",
                "interval must be month or year",
            ));
        }
        if !(0..=730).contains(&new.trial_days) || (new.trial_days > 0 && new.interval.is_none()) {
            return Err(AppError::unprocessable(
                "invalid_trial",
                "trial_days must be 0-730, and only recurring prices have trials",
            ));
        }
        let price = db::transaction(&state.pool, move |conn| {
            Product::find(conn, &product_id)?
                .ok_or_else(|| AppError::not_found(format!("product {product_id}")))?;
            Ok(Price::create(
                conn,
                NewPrice {
                    id: None,
                    product_id,
                    amount_minor: new.amount_minor,
                    currency: currency.to_string(),
                    interval: new.interval,
                    trial_days: new.trial_days,
                },
            )?)
        })
        .await?;
        Ok(Reply::created(price))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePrice {
    active: bool,
}

async fn update_price(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let change: UpdatePrice = parse_json(&body)?;
    let id = path.into_inner();
    let price = db::transaction(&state.pool, move |conn| {
        Price::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("price {id}")))?;
        Ok(Price::set_active(conn, &id, change.active)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(price))
}

async fn list_definitions(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let defs = db::run(&state.pool, |conn| Ok(EntitlementDefinition::all(conn)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "entitlement_definitions": defs })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateDefinition {
    key: String,
    kind: String,
    #[serde(default)]
    description: String,
}

async fn create_definition(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: CreateDefinition = parse_json(&body)?;
        if !valid_key(&new.key) || new.key.starts_with("sticker_pack:") {
            return Err(AppError::unprocessable(
                "invalid_key",
                "key must be 1-64 characters of a-z, 0-9, _ : . - (sticker_pack: is reserved)",
            ));
        }
        if new.kind != "boolean" && new.kind != "quota" {
            return Err(AppError::unprocessable(
                "invalid_kind",
                "kind must be boolean or quota",
            ));
        }
        let def = db::run(&state.pool, move |conn| {
            Ok(EntitlementDefinition::create(
                conn,
                new.key,
                new.kind,
                new.description,
            )?)
        })
        .await?;
        Ok(Reply::created(def))
    })
    .await
}
