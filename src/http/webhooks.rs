//! `POST /v1/webhooks/stripe`: Stripe's signed events. The signature is the credential; an
//! event is stored once by its id, in the same transaction as its effects.

use crate::app::AppState;
use crate::error::AppError;
use crate::stripe::signature;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/webhooks/stripe").route(web::post().to(stripe)))
        .service(web::resource("/v1/webhooks/stripe-connect").route(web::post().to(connect)));
}

async fn stripe(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let secrets = &state.settings.stripe.webhook_secrets;
    receive(&state, &req, &body, secrets, false).await
}

/// `POST /v1/webhooks/stripe-connect`: the Connect endpoint (events of creators' connected
/// accounts, each naming its `account`), signed with that endpoint's own secret.
async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let secrets = &state.settings.stripe.connect_webhook_secrets;
    receive(&state, &req, &body, secrets, true).await
}

async fn receive(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
    secrets: &[secrecy::SecretString],
    connect: bool,
) -> Result<HttpResponse, AppError> {
    let settings = &state.settings.stripe;
    if secrets.is_empty() {
        return Err(AppError::client(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "stripe_not_configured",
            "Stripe webhooks are not configured on this service",
        ));
    }
    let secrets: Vec<String> = secrets
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
        body,
        &secrets,
        settings.webhook_tolerance_seconds,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| AppError::bad_request("invalid_signature", e.to_string()))?;

    let payload = std::str::from_utf8(body)
        .map_err(|_| AppError::bad_request("invalid_body", "the event is not UTF-8"))?
        .to_owned();
    let event: crate::stripe::events::Event = super::parse_json(body)?;
    if event
        .account
        .as_ref()
        .is_some_and(|a| a.is_empty() || a.len() > 255)
    {
        return Err(AppError::bad_request(
            "invalid_body",
            "event account out of bounds",
        ));
    }
    if connect != event.account.is_some() {
        return Err(AppError::bad_request(
            "invalid_event",
            if connect {
                "the Connect endpoint takes events of connected accounts (with `account`)"
            } else {
                "events of connected accounts come to /v1/webhooks/stripe-connect"
            },
        ));
    }
    let new = crate::services::billing::stripe_events::receive(state, event, payload).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true, "duplicate": !new })))
}
