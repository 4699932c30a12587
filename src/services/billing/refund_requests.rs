//! Support refunds an order through Stripe: we ask Stripe for the refund and nothing else;
//! Stripe's events (`refund.created`, `charge.refunded`) post the ledger and revoke what was
//! bought (`refunds`), exactly as for a refund made in Stripe's Dashboard. Never by changing
//! an order's status.

use super::purchases::{gateway, stripe_error};
use crate::app::AppState;
use crate::db::models::orders::Order;
use crate::db::models::payments::Payment;
use crate::db::{self, DbConn};
use crate::error::AppError;
use serde::Serialize;

/// Stripe's answer to a refund request; the refund's effects follow from its events.
#[derive(Debug, Serialize)]
pub struct RefundRequested {
    pub order_id: String,
    pub refund_id: String,
    /// Stripe's status of the refund: `pending`, `succeeded`, `failed`, …
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// Refunds `amount` (all that is left when `None`) of an order paid through Stripe.
pub async fn refund_order(
    state: &AppState,
    order_id: &str,
    amount: Option<i64>,
    reason: Option<&str>,
) -> Result<RefundRequested, AppError> {
    let id = order_id.to_owned();
    let payment = db::run(&state.pool, move |conn| {
        Order::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("order {id}")))?;
        Payment::by_order(conn, &id)?.ok_or_else(|| {
            AppError::conflict(
                "not_refundable",
                "this order was not paid through Stripe; nothing to refund",
            )
        })
    })
    .await?;
    let left = payment.amount_minor - payment.reversed_minor();
    let amount = amount.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(AppError::unprocessable(
            "invalid_amount",
            format!("the refund must be 1 to {left} (what is left of the payment)"),
        ));
    }
    // One refund per order, amount and what was refunded before: a retried request finds the
    // refund the first one made.
    let key = format!("refund-{order_id}-{}-{amount}", payment.reversed_minor());
    let refund = gateway(state)?
        .create_refund(&payment.stripe_charge_id, amount, reason, order_id, &key)
        .await
        .map_err(stripe_error)?;
    Ok(RefundRequested {
        order_id: order_id.to_owned(),
        refund_id: refund.id,
        status: refund.status.unwrap_or_default().as_str().to_owned(),
        amount_minor: amount,
        currency: payment.currency,
    })
}

/// An order's status may be set by hand only for orders made by hand: one paid through Stripe
/// is refunded through Stripe (`refund_order`) and follows Stripe's events.
pub fn ensure_hand_made(conn: &mut DbConn, order_id: &str) -> Result<(), AppError> {
    if Payment::by_order(conn, order_id)?.is_some() {
        return Err(AppError::conflict(
            "paid_through_stripe",
            "this order was paid through Stripe: refund it with POST /v1/admin/orders/{id}/refund",
        ));
    }
    Ok(())
}
