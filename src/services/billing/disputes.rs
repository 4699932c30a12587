//! Disputes as Stripe runs them. An inquiry (`warning_*`) and a dispute resolved before it
//! became one (`prevented`) move no money and revoke nothing. When Stripe withdraws the funds
//! (`charge.dispute.created` for a real dispute, or `charge.dispute.funds_withdrawn`, e.g. an
//! inquiry that escalated), the amount leaves, shares are taken back cumulatively, and what
//! was bought is revoked — once, keyed `dispute:<id>`. When Stripe gives the funds back
//! (`funds_reinstated`, or the dispute `won`), the amount comes back with the shares and the
//! purchase — once, keyed `dispute:<id>:reinstated`. A lost dispute changes nothing more.
//!
//! Stripe's dispute fees (and a fee it returns, as a negative fee) are read from the dispute's
//! balance transactions and posted each once by the transaction's id (`dispute_fee:txn_…`),
//! whichever event first carries it, in the currency Stripe took it in (the balance's: for a
//! converted charge, the settlement currency, never the payment's).

use super::payments::{
    currency, out_of_order, post_reversal, posting_error, restore, revoke, Reversed,
};
use super::refunds::payment_of;
use super::stripe_events::Applied;
use crate::db::models::ledger as ledger_db;
use crate::db::models::payments::Payment;
use crate::db::DbConn;
use crate::domain::ledger;
use crate::domain::money::Currency;
use crate::error::AppError;
use crate::stripe::objects::{id_of, Charge, Dispute, DisputeStatus};

/// The disputed payment: `charge` is the disputed charge when Stripe told us more of it than
/// the event did (fetched before the transaction).
fn payment(
    conn: &mut DbConn,
    dispute: &Dispute,
    charge: Option<&Charge>,
) -> Result<Option<Payment>, AppError> {
    let id = id_of(&dispute.charge).unwrap_or_default();
    let charge = charge.or_else(|| dispute.charge.as_ref().and_then(|c| c.object()));
    let customer = charge.and_then(|c| id_of(&c.customer));
    let metadata = charge.map(|c| c.metadata.clone()).unwrap_or_default();
    let intent =
        id_of(&dispute.payment_intent).or_else(|| charge.and_then(|c| id_of(&c.payment_intent)));
    match payment_of(conn, id, customer, &metadata, intent)? {
        // Read again under a lock: what was reversed so far must not change under us.
        Some(p) => Ok(Payment::lock(conn, &p.id)?),
        None => Ok(None),
    }
}

/// Posts each dispute fee (or returned fee) of the dispute's balance transactions once.
fn post_fees(
    conn: &mut DbConn,
    dispute: &Dispute,
    payment_currency: &Currency,
) -> Result<(), AppError> {
    for (i, txn) in dispute.balance_transactions.iter().enumerate() {
        if txn.fee == 0 {
            continue;
        }
        // Booked in the currency Stripe took it in (the balance's, after a conversion).
        let fee_currency = if txn.currency.is_empty() {
            payment_currency.clone()
        } else {
            currency(&txn.currency)?
        };
        let lines = ledger::stripe_fee(txn.fee, &fee_currency).map_err(posting_error)?;
        // Stripe names every balance transaction; by position only if one came without.
        let key = if txn.id.is_empty() {
            format!("dispute_fee:{}:{i}", dispute.id)
        } else {
            format!("dispute_fee:{}", txn.id)
        };
        let what = format!("dispute {} fee", dispute.id);
        ledger_db::post(conn, &key, &what, &lines)?;
    }
    Ok(())
}

/// `charge.dispute.created` / `charge.dispute.funds_withdrawn`.
pub fn funds_withdrawn(
    conn: &mut DbConn,
    dispute: &Dispute,
    charge: Option<&Charge>,
) -> Result<Applied, AppError> {
    let Some(payment) = payment(conn, dispute, charge)? else {
        return Ok(Applied::ignored());
    };
    let currency = currency(&payment.currency)?;
    post_fees(conn, dispute, &currency)?;
    if dispute.is_inquiry() || dispute.status == DisputeStatus::Prevented || !dispute.funds_taken()
    {
        return Ok(Applied::default());
    }
    let amount = dispute
        .amount
        .min(payment.amount_minor - payment.reversed_minor())
        .max(0);
    if amount == 0 {
        return Ok(Applied::default());
    }
    let key = format!("dispute:{}", dispute.id);
    let what = format!("dispute {}", dispute.id);
    if !post_reversal(conn, &payment, amount, &key, &what)? {
        return Ok(Applied::default());
    }
    Payment::add_disputed(conn, &payment.id, amount)?;
    Ok(Applied::users(revoke(conn, &payment, Reversed::Disputed)?))
}

/// `charge.dispute.funds_reinstated`, and `charge.dispute.closed` as won.
pub fn funds_reinstated(
    conn: &mut DbConn,
    dispute: &Dispute,
    charge: Option<&Charge>,
) -> Result<Applied, AppError> {
    let Some(payment) = payment(conn, dispute, charge)? else {
        return Ok(Applied::ignored());
    };
    let currency = currency(&payment.currency)?;
    post_fees(conn, dispute, &currency)?;
    let withdrawn = format!("dispute:{}", dispute.id);
    // What left clearing is what the dispute took.
    let taken = -ledger_db::amount_in(conn, &withdrawn, "stripe_clearing")?;
    if taken <= 0 {
        // Nothing was withdrawn: an inquiry, or the withdrawal is still to arrive.
        return if dispute.is_inquiry() || dispute.status == DisputeStatus::Prevented {
            Ok(Applied::default())
        } else {
            Err(out_of_order(&format!(
                "the withdrawal of dispute {}",
                dispute.id
            )))
        };
    }
    let key = format!("{withdrawn}:reinstated");
    let what = format!("dispute {} reinstated", dispute.id);
    if !post_reversal(conn, &payment, -taken, &key, &what)? {
        return Ok(Applied::default());
    }
    Payment::add_disputed(conn, &payment.id, -taken)?;
    let fully_refunded = payment.refunded_minor >= payment.amount_minor;
    let affected = if fully_refunded {
        Vec::new()
    } else {
        restore(conn, &payment)?
    };
    Ok(Applied::users(affected))
}

/// `charge.dispute.closed`: won gives the funds back (if `funds_reinstated` has not already);
/// lost, and an inquiry closed (`warning_closed`), change nothing more — an inquiry took
/// nothing. Fees the closing carries are posted either way.
pub fn closed(
    conn: &mut DbConn,
    dispute: &Dispute,
    charge: Option<&Charge>,
) -> Result<Applied, AppError> {
    if dispute.status == DisputeStatus::Won {
        return funds_reinstated(conn, dispute, charge);
    }
    let Some(payment) = payment(conn, dispute, charge)? else {
        return Ok(Applied::ignored());
    };
    post_fees(conn, dispute, &currency(&payment.currency)?)?;
    Ok(Applied::default())
}
