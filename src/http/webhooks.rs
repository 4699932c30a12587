//! `POST /v1/webhooks/stripe`: Stripe's signed events. The signature is the credential; an
//! event is stored once by its id, in the same transaction as its effects.

use crate::app::AppState;
use crate::error::AppError;
use crate::stripe::signature;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/webhooks/stripe").route(web::post().to(stripe)));
}

async fn stripe(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let settings = &state.settings.stripe;
    if settings.webhook_secrets.is_empty() {
        return Err(AppError::client(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "stripe_not_configured",
            "Stripe webhooks are not configured on this service",
        ));
    }
    let secrets: Vec<String> = settings
        .webhook_secrets
        .iter()
        .map(|s| s.expose_secret().to_owned())
        .collect();
    let header = req
        .headers()
        .get("Stripe-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    signature::verify(
        header,
        &body,
        &secrets,
        settings.webhook_tolerance_seconds,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| AppError::bad_request("invalid_signature", e.to_string()))?;

    let payload = std::str::from_utf8(&body)
        .map_err(|_| AppError::bad_request("invalid_body", "the event is not UTF-8"))?
        .to_owned();
    let event: crate::stripe::events::Event = super::parse_json(&body)?;
    let new = crate::services::billing::stripe_events::receive(&state, event, payload).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true, "duplicate": !new })))
}
