//! `POST /v1/webhooks/stripe`: Stripe's signed events. The signature is the credential; an
//! event is stored once by its id, in the same transaction as its effects.

use crate::app::AppState;
use crate::db::{self, models::stripe_events};
use crate::error::AppError;
use crate::services::stripe_events::apply;
use crate::stripe::signature;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/webhooks/stripe").route(web::post().to(stripe)));
}

/// What every Stripe event carries; the rest stays in the stored payload.
#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
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
    let event: Event = super::parse_json(&body)?;
    let whole: serde_json::Value = super::parse_json(&body)?;
    let grace_days = settings.past_due_grace_days;
    if event.id.is_empty() || event.id.len() > 255 || event.event_type.len() > 255 {
        return Err(AppError::bad_request(
            "invalid_body",
            "event id or type out of bounds",
        ));
    }
    let (new, affected) = db::transaction(&state.pool, move |conn| {
        let new =
            stripe_events::record(conn, &event.id, &event.event_type, event.created, &payload)?;
        // Stored and applied together: a redelivery finds the row and applies nothing.
        let affected = if new {
            apply(conn, &event.event_type, event.created, &whole, grace_days)?
        } else {
            Vec::new()
        };
        Ok((new, affected))
    })
    .await?;
    state.changed(&affected);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true, "duplicate": !new })))
}
