//! `POST /v1/admin/orders/{id}/refund` (support): a refund asked of Stripe; its effects follow
//! from Stripe's events, as for any refund.

use super::parse_json;
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::error::AppError;
use crate::services::billing::refund_requests;
use crate::services::idempotency::{self, Reply};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/admin/orders/{id}/refund").route(web::post().to(refund)));
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RefundOrder {
    /// Minor units; all that is left of the payment when absent.
    amount_minor: Option<i64>,
    reason: Option<String>,
}

const REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

async fn refund(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Support)?;
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let asked: RefundOrder = if body.is_empty() {
            RefundOrder::default()
        } else {
            parse_json(&body)?
        };
        if let Some(r) = asked.reason.as_deref().filter(|r| !REASONS.contains(r)) {
            return Err(AppError::unprocessable(
                "invalid_reason",
                format!("reason {r:?} is not one of duplicate, fraudulent, requested_by_customer"),
            ));
        }
        let answer =
            refund_requests::refund_order(&state, &id, asked.amount_minor, asked.reason.as_deref())
                .await?;
        Ok(Reply::json(actix_web::http::StatusCode::ACCEPTED, answer))
    })
    .await
}
