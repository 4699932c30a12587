//! The catalog: the public plan list, and products, prices and entitlement definitions
//! managed by admins.

use super::parse_json;
use super::views::{self, EntitlementDefinitionView, PriceView, ProductView};
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::db;
use crate::db::models::catalog::{EntitlementDefinition, NewProduct};
use crate::domain::money::Currency;
use crate::domain::states::{Interval, ProductKind};
use crate::error::AppError;
use crate::services::catalog::{self, PriceRequest};
use crate::services::idempotency::{self, Reply};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

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

/// GET /v1/plans — public: active plans with their active prices and entitlements.
async fn plans(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let plans: Vec<ProductView> = views::all(&catalog::plans(&state).await?);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "plans": plans })))
}

async fn list_products(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let products: Vec<ProductView> = views::all(&catalog::all_products(&state).await?);
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

fn specs(specs: Vec<EntitlementSpec>) -> Vec<(String, Option<i64>)> {
    specs.into_iter().map(|s| (s.key, s.value)).collect()
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
        let kind = ProductKind::parse(&new.kind).ok_or_else(|| {
            AppError::unprocessable(
                "invalid_kind",
                "kind must be plan, sticker_pack or donation_target",
            )
        })?;
        if new.id.as_deref().is_some_and(|id| !valid_key(id)) {
            return Err(AppError::unprocessable(
                "invalid_id",
                "id must be 1-64 characters of a-z, 0-9, _ : . -",
            ));
        }
        let product = NewProduct {
            id: new.id,
            kind,
            name: new.name,
            description: new.description,
            creator_id: new.creator_id,
            per_seat: new.per_seat,
        };
        let view = catalog::create_product(&state, product, specs(new.entitlements)).await?;
        Ok(Reply::created(ProductView::from(&view)))
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
    let view = catalog::update_product(&state, &id, change.name, change.description, change.active)
        .await?;
    Ok(HttpResponse::Ok().json(ProductView::from(&view)))
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
    let view = catalog::set_entitlements(&state, &id, specs(set.entitlements)).await?;
    Ok(HttpResponse::Ok().json(ProductView::from(&view)))
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
        let interval = match new.interval.as_deref() {
            Some(i) => Some(Interval::parse(i).ok_or_else(|| {
                AppError::unprocessable("invalid_interval", "interval must be month or year")
            })?),
            None => None,
        };
        if !(0..=730).contains(&new.trial_days) || (new.trial_days > 0 && new.interval.is_none()) {
            return Err(AppError::unprocessable(
                "invalid_trial",
                "trial_days must be 0-730, and only recurring prices have trials",
            ));
        }
        let price = catalog::create_price(
            &state,
            &product_id,
            PriceRequest {
                amount_minor: new.amount_minor,
                currency,
                interval,
                trial_days: new.trial_days,
            },
        )
        .await?;
        Ok(Reply::created(PriceView::from(&price)))
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
    let price = catalog::set_price_active(&state, &id, change.active).await?;
    Ok(HttpResponse::Ok().json(PriceView::from(&price)))
}

async fn list_definitions(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let defs = db::run(&state.pool, |conn| Ok(EntitlementDefinition::all(conn)?)).await?;
    let defs: Vec<EntitlementDefinitionView> = views::all(&defs);
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
        Ok(Reply::created(EntitlementDefinitionView::from(&def)))
    })
    .await
}
