//! HTTP: routes, request parsing and the problem safety net. Handlers are thin: check who may
//! call, parse, call a model or service, answer.

mod admin_catalog;
mod admin_creators;
mod admin_holdings;
mod admin_keys;
mod admin_refunds;
mod blobs;
mod bounds;
mod creator_packs;
mod earnings;
mod entitlements;
mod exports;
mod health;
mod moderation;
mod payouts;
mod purchases;
mod revisions;
mod seats;
pub mod server;
mod statements;
mod store;
pub mod store_pages;
mod takedowns;
mod tax;
mod views;
mod webhooks;

use crate::app::AppState;
use crate::error::{problem_response, AppError};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::web;
use serde::de::DeserializeOwned;

pub fn configure(cfg: &mut web::ServiceConfig, state: &web::Data<AppState>) {
    cfg.app_data(web::PayloadConfig::new(state.settings.http.max_body_bytes))
        .service(
            web::scope("")
                .wrap(from_fn(problems_only))
                .configure(health::routes)
                .configure(entitlements::routes)
                .configure(seats::routes)
                .configure(purchases::routes)
                .configure(earnings::routes)
                .configure(|c| creator_packs::routes(c, state.settings.packs.max_upload_bytes))
                .configure(moderation::routes)
                .configure(takedowns::routes)
                .configure(revisions::routes)
                .configure(store::routes)
                .configure(blobs::routes)
                .configure(webhooks::routes)
                .configure(admin_catalog::routes)
                .configure(admin_creators::routes)
                .configure(admin_holdings::routes)
                .configure(admin_refunds::routes)
                .configure(payouts::routes)
                .configure(exports::routes)
                .configure(statements::routes)
                .configure(tax::routes)
                // No default service here: resources would inherit it and answer 404 where
                // actix answers 405; `problems_only` turns both into problems.
                .configure(admin_keys::routes),
        );
}

/// Parses a JSON body; any mistake is a 400 problem that says where.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    // PostgreSQL text cannot hold NUL; refuse it here rather than fail at the database.
    if body.windows(6).any(|w| w == b"\\u0000") {
        return Err(AppError::bad_request(
            "invalid_body",
            "request body: NUL characters are not allowed in strings",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request("invalid_body", format!("request body: {e}")))
}

/// Safety net: any error answer that is not already a problem document (actix's own 404, 405,
/// 413 for oversize bodies, …) is rewritten as one, so clients see one error shape everywhere.
async fn problems_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(detail) = bounds::headers_too_large(req.headers()) {
        let problem = problem_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            &detail,
        );
        return Ok(req.into_response(problem.map_into_boxed_body()));
    }
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return Ok(res);
    }
    let detail = match (res.response().error(), status) {
        (Some(e), _) => e.to_string(),
        (None, StatusCode::NOT_FOUND) => "route not found".to_owned(),
        (None, _) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let mut problem = problem_response(status, code, &detail);
    // A 405 must still say which methods the resource allows.
    if let Some(allow) = res.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    Ok(res.into_response(problem.map_into_boxed_body()))
}
