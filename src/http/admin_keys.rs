//! Admin-only keys: service credentials for messenger servers, and rotation of the key that
//! signs entitlement tokens.

use super::parse_json;
use super::views::{self, NewServiceCredentialView, ServiceCredentialView};
use crate::app::AppState;
use crate::auth::{service_keys, Caller, Role};
use crate::db;
use crate::db::models::credentials::ServiceCredential;
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/admin/service-credentials")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/v1/admin/service-credentials/{id}").route(web::delete().to(revoke)))
    .service(web::resource("/v1/admin/signing-keys/rotate").route(web::post().to(rotate)));
}

async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let creds = db::run(&state.pool, |conn| Ok(ServiceCredential::all(conn)?)).await?;
    let creds: Vec<ServiceCredentialView> = views::all(&creds);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "service_credentials": creds })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCredential {
    name: String,
}

/// POST /v1/admin/service-credentials — the key is in this answer only; we keep its hash.
async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let by = caller.staff(Role::Admin)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: CreateCredential = parse_json(&body)?;
        if new.name.trim().is_empty() || new.name.len() > 200 {
            return Err(AppError::unprocessable(
                "invalid_name",
                "name must be 1-200 characters",
            ));
        }
        let (key, hash) = service_keys::generate();
        let cred = db::run(&state.pool, move |conn| {
            Ok(ServiceCredential::create(conn, &new.name, hash, &by)?)
        })
        .await?;
        // Usable at once here; other instances see it within their snapshot's few seconds.
        state.service_keys.forget_all();
        Ok(Reply::created(NewServiceCredentialView {
            credential: ServiceCredentialView::from(&cred),
            api_key: key,
        }))
    })
    .await
}

async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    let id = path.into_inner();
    let cred = db::run(&state.pool, move |conn| {
        ServiceCredential::revoke(conn, &id)?
            .ok_or_else(|| AppError::not_found(format!("service credential {id}")))
    })
    .await?;
    state.service_keys.forget_all();
    Ok(HttpResponse::Ok().json(ServiceCredentialView::from(&cred)))
}

/// POST /v1/admin/signing-keys/rotate — new tokens get a new key; the old key stays published
/// until the tokens it signed have expired.
async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Admin)?;
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let s = state.clone();
        let kid = db::run(&state.pool, move |conn| s.signer.rotate(conn)).await?;
        Ok(Reply::created(serde_json::json!({ "kid": kid })))
    })
    .await
}
