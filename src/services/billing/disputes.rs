//! Disputes as Stripe runs them. An inquiry (`warning_*`) moves no money and revokes nothing.
//! When Stripe withdraws the funds (`charge.dispute.created` for a real dispute, or
//! `charge.dispute.funds_withdrawn`, e.g. an inquiry that escalated), the amount and the
//! dispute fee leave, shares are taken back cumulatively, and what was bought is revoked —
//! once, keyed `dispute:<id>`. When Stripe gives the funds back (`funds_reinstated`, or the
//! dispute `won`), the amount comes back with the shares and the purchase, and a dispute fee
//! Stripe returned comes back too — once, keyed `dispute:<id>:reinstated`. A lost dispute
//! changes nothing more.

use super::payments::{creator_share, currency, posting_error, restore, revoke};
use super::refunds::payment_of;
use super::stripe_events::Applied;
use crate::db::models::ledger::{self as ledger_db, Posted};
use crate::db::models::payments::Payment;
use crate::db::DbConn;
use crate::domain::ledger::{self, Reversal};
use crate::error::AppError;
use crate::stripe::objects::{id_of, Dispute, DisputeStatus};

fn payment(conn: &mut DbConn, dispute: &Dispute) -> Result<Option<Payment>, AppError> {
    let charge = id_of(&dispute.charge).unwrap_or_default();
    let charge_object = dispute.charge.as_ref().and_then(|c| c.object());
    let customer = charge_object.and_then(|c| id_of(&c.customer));
    let metadata = charge_object
        .map(|c| c.metadata.clone())
        .unwrap_or_default();
    let intent = id_of(&dispute.payment_intent)
        .or_else(|| charge_object.and_then(|c| id_of(&c.payment_intent)));
    payment_of(conn, charge, customer, &metadata, intent)
}

/// Fees on the dispute's balance transactions that took money (withdrawals), and the fee
/// returned on those that gave money back (a negative fee).
fn fees(dispute: &Dispute) -> (i64, i64) {
    let taken = dispute
        .balance_transactions
        .iter()
        .filter(|t| t.amount < 0)
        .map(|t| t.fee.max(0))
        .sum();
    let returned = dispute
        .balance_transactions
        .iter()
        .filter(|t| t.amount > 0)
        .map(|t| (-t.fee).max(0))
        .sum();
    (taken, returned)
}

/// `charge.dispute.created` / `charge.dispute.funds_withdrawn`.
pub fn funds_withdrawn(conn: &mut DbConn, dispute: &Dispute) -> Result<Applied, AppError> {
    let Some(payment) = payment(conn, dispute)? else {
        return Ok(Applied::ignored());
    };
    if dispute.is_inquiry() && dispute.balance_transactions.is_empty() {
        return Ok(Applied::default());
    }
    let amount = dispute
        .amount
        .min(payment.amount_minor - payment.reversed_minor())
        .max(0);
    let (fee, _) = fees(dispute);
    if amount == 0 && fee == 0 {
        return Ok(Applied::default());
    }
    let lines = ledger::taken_back(
        Reversal {
            amount,
            fee,
            gross: payment.amount_minor,
            before: payment.reversed_minor(),
            creator: creator_share(&payment),
        },
        &currency(&payment.currency)?,
    )
    .map_err(posting_error)?;
    let key = format!("dispute:{}", dispute.id);
    let what = format!("dispute {}", dispute.id);
    match ledger_db::post(conn, &key, &what, &lines)? {
        Posted::New(_) => {
            Payment::add_disputed(conn, &payment.id, amount)?;
            Ok(Applied::users(revoke(conn, &payment, "disputed")?))
        }
        Posted::Already => Ok(Applied::default()),
    }
}

/// `charge.dispute.funds_reinstated`, and `charge.dispute.closed` as won.
pub fn funds_reinstated(conn: &mut DbConn, dispute: &Dispute) -> Result<Applied, AppError> {
    let Some(payment) = payment(conn, dispute)? else {
        return Ok(Applied::ignored());
    };
    let withdrawn = format!("dispute:{}", dispute.id);
    let fee = ledger_db::amount_in(conn, &withdrawn, "stripe_fees")?;
    // What left clearing, less the fee, is what the dispute took.
    let taken = -ledger_db::amount_in(conn, &withdrawn, "stripe_clearing")? - fee;
    if taken <= 0 && fee <= 0 {
        // Nothing was withdrawn: an inquiry, or the withdrawal is still to arrive.
        return if dispute.is_inquiry() {
            Ok(Applied::default())
        } else {
            Err(super::payments::out_of_order(&format!(
                "the withdrawal of dispute {}",
                dispute.id
            )))
        };
    }
    let (_, fee_returned) = fees(dispute);
    let lines = ledger::taken_back(
        Reversal {
            amount: -taken,
            fee: -fee_returned.min(fee),
            gross: payment.amount_minor,
            before: payment.reversed_minor(),
            creator: creator_share(&payment),
        },
        &currency(&payment.currency)?,
    )
    .map_err(posting_error)?;
    let key = format!("{withdrawn}:reinstated");
    let what = format!("dispute {} reinstated", dispute.id);
    match ledger_db::post(conn, &key, &what, &lines)? {
        Posted::New(_) => {
            Payment::add_disputed(conn, &payment.id, -taken)?;
            let fully_refunded = payment.refunded_minor >= payment.amount_minor;
            let affected = if fully_refunded {
                Vec::new()
            } else {
                restore(conn, &payment)?
            };
            Ok(Applied::users(affected))
        }
        Posted::Already => Ok(Applied::default()),
    }
}

/// `charge.dispute.closed`: won gives the funds back (if `funds_reinstated` has not already);
/// lost, and an inquiry closed (`warning_closed`), change nothing — an inquiry took nothing.
pub fn closed(conn: &mut DbConn, dispute: &Dispute) -> Result<Applied, AppError> {
    match dispute.status {
        DisputeStatus::Won => funds_reinstated(conn, dispute),
        _ => match payment(conn, dispute)? {
            Some(_) => Ok(Applied::default()),
            None => Ok(Applied::ignored()),
        },
    }
}
