//! Refunds as Stripe reports them: `charge.refunded` (with the charge's refunds, fetched when
//! the API version does not include them) and each refund's own events (`refund.created`,
//! `refund.updated`, `refund.failed`, `charge.refund.updated`). Each refund posts once, keyed
//! by its id (`refund:re_…`), whichever event brings it first; a refund that fails afterwards
//! is undone by its own posting (`refund:re_…:failed`).
//!
//! Shares are taken back cumulatively (`domain::ledger::creator_part`); a full refund of a
//! one-off purchase revokes it; a refunded subscription invoice leaves the subscription to
//! Stripe's subscription events (Stripe keeps billing it).

use super::payments::{is_ours, out_of_order, post_reversal, restore, revoke, Reversed};
use super::stripe_events::Applied;
use crate::db::models::ledger as ledger_db;
use crate::db::models::payments::Payment;
use crate::db::DbConn;
use crate::error::AppError;
use crate::stripe::objects::{id_of, Charge, Metadata, Refund, RefundOutcome, RefundStatus};

/// The payment a refund or dispute of `charge` reverses. `Err(409)` when the charge is ours
/// but not recorded yet (Stripe delivers the event again); `Ok(None)` when it is not ours.
pub(super) fn payment_of(
    conn: &mut DbConn,
    charge: &str,
    customer: Option<&str>,
    metadata: &Metadata,
    intent: Option<&str>,
) -> Result<Option<Payment>, AppError> {
    if let Some(payment) = Payment::by_charge(conn, charge)? {
        return Ok(Some(payment));
    }
    if is_ours(conn, customer, metadata, intent)? {
        return Err(out_of_order(&format!("the payment of charge {charge}")));
    }
    Ok(None)
}

/// `charge.refunded`: every refund of the charge posts once.
pub fn charge_refunded(
    conn: &mut DbConn,
    charge: &Charge,
    fetched: Option<Vec<Refund>>,
) -> Result<Applied, AppError> {
    let intent = id_of(&charge.payment_intent);
    let customer = id_of(&charge.customer);
    let Some(payment) = payment_of(conn, &charge.id, customer, &charge.metadata, intent)? else {
        return Ok(Applied::ignored());
    };
    let refunds: Vec<Refund> = match charge.refunds.as_ref().map(|l| l.data.clone()).or(fetched) {
        Some(list) => list,
        // Neither the event nor Stripe listed them (Stripe not configured): what is new since
        // the refunds we know, as one.
        None => vec![Refund {
            id: format!("{}:{}", charge.id, charge.amount_refunded),
            amount: charge.amount_refunded - payment.refunded_minor,
            status: Some(RefundStatus::Succeeded),
            ..Default::default()
        }],
    };
    let mut affected = Vec::new();
    for refund in refunds
        .iter()
        .filter(|r| r.outcome() == RefundOutcome::Made)
    {
        affected.extend(refund_made(conn, &payment.id, refund)?);
    }
    Ok(Applied::users(affected))
}

/// `refund.*` / `charge.refund.updated`: a refund made, or one that failed or was canceled.
/// `refund` is the refund as Stripe has it now (fetched before the transaction when it could
/// be), so a late snapshot of a refund that failed since cannot post it again.
pub fn refund_changed(conn: &mut DbConn, refund: &Refund) -> Result<Applied, AppError> {
    let Some(charge) = id_of(&refund.charge) else {
        return Ok(Applied::ignored());
    };
    let charge_object = refund.charge.as_ref().and_then(|c| c.object());
    let customer =
        id_of(&refund.customer).or_else(|| charge_object.and_then(|c| id_of(&c.customer)));
    let metadata = charge_object
        .map(|c| c.metadata.clone())
        .unwrap_or_default();
    let intent = id_of(&refund.payment_intent);
    let Some(payment) = payment_of(conn, charge, customer, &metadata, intent)? else {
        return Ok(Applied::ignored());
    };
    let affected = match refund.outcome() {
        RefundOutcome::Made => refund_made(conn, &payment.id, refund)?,
        RefundOutcome::Undone => refund_failed(conn, &payment.id, refund)?,
        RefundOutcome::Unknown => Vec::new(),
    };
    Ok(Applied::users(affected))
}

/// Posts one refund (at most what is left of the payment) once, keyed by its id; a refund
/// that makes the payment fully refunded revokes the purchase.
fn refund_made(
    conn: &mut DbConn,
    payment_id: &str,
    refund: &Refund,
) -> Result<Vec<String>, AppError> {
    // Read fresh: an earlier refund of this event changed it.
    let Some(payment) = Payment::lock(conn, payment_id)? else {
        return Ok(Vec::new());
    };
    let amount = refund
        .amount
        .min(payment.amount_minor - payment.reversed_minor());
    if amount <= 0 || refund.id.is_empty() {
        return Ok(Vec::new());
    }
    let key = format!("refund:{}", refund.id);
    let what = format!("refund of {}", payment.stripe_charge_id);
    if !post_reversal(conn, &payment, amount, &key, &what)? {
        return Ok(Vec::new());
    }
    Payment::add_refunded(conn, &payment.id, amount)?;
    if payment.refunded_minor + amount >= payment.amount_minor {
        return revoke(conn, &payment, Reversed::Refunded);
    }
    Ok(Vec::new())
}

/// A refund that failed (or was canceled) after we posted it: the money came back, so its
/// posting is undone — shares given back cumulatively — and a purchase it revoked is restored.
fn refund_failed(
    conn: &mut DbConn,
    payment_id: &str,
    refund: &Refund,
) -> Result<Vec<String>, AppError> {
    let Some(payment) = Payment::lock(conn, payment_id)? else {
        return Ok(Vec::new());
    };
    let made = format!("refund:{}", refund.id);
    // What left clearing for this refund.
    let amount = -ledger_db::amount_in(conn, &made, "stripe_clearing")?;
    if amount <= 0 {
        // Never posted (it failed before any event said it was made): nothing to undo.
        return Ok(Vec::new());
    }
    let key = format!("{made}:failed");
    let what = format!("failed refund of {}", payment.stripe_charge_id);
    if !post_reversal(conn, &payment, -amount, &key, &what)? {
        return Ok(Vec::new());
    }
    Payment::add_refunded(conn, &payment.id, -amount)?;
    if payment.refunded_minor >= payment.amount_minor && payment.disputed_minor == 0 {
        return restore(conn, &payment);
    }
    Ok(Vec::new())
}
