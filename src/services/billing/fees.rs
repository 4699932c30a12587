//! Stripe's fee on each payment. Webhooks name a charge's balance transaction but not its
//! amounts, so a payment is posted gross with no fee, and this job asks Stripe for the fee
//! afterwards (outside any database transaction) and posts it on its own: Stripe fees debited,
//! clearing credited, keyed `fee:<charge>` so it is posted once whatever runs the job.
//!
//! A charge settled into a balance in another currency (a EUR sale, a USD Stripe balance) is
//! converted first (`fx:<charge>`: clearing in EUR to the FX account, the balance
//! transaction's USD amount from it into USD clearing), and its fee is booked in USD, the
//! currency Stripe took it in. Refunds and disputes of it later convert back at the charge's
//! own rate (`payments::post_reversal`); the difference to the rate Stripe applies on the day
//! of a refund is left for reconciliation with Stripe's balance to show.

use super::payments::{currency, posting_error};
use crate::app::AppState;
use crate::db::models::ledger as ledger_db;
use crate::db::models::new_id;
use crate::db::models::payments::Payment;
use crate::db::{self, DbConn};
use crate::domain::ledger;
use crate::error::AppError;
use crate::stripe::gateway::GatewayError;

/// Fetches and posts the fees of up to `limit` payments whose fee is unsettled; returns how
/// many it settled. A charge whose balance transaction Stripe has not made yet (asynchronous
/// payment methods) waits for the next run.
pub async fn settle_pending(state: &AppState, limit: i64) -> Result<usize, AppError> {
    let gw = crate::services::billing::purchases::gateway(state)?;
    let due = db::run(&state.pool, move |conn| {
        Ok(Payment::fee_unsettled(conn, limit)?)
    })
    .await?;
    let mut settled = 0;
    for payment in due {
        // `invoice:…` / `intent:…`: paid without a charge (from a customer balance): no fee.
        let settlement = if payment.stripe_charge_id.contains(':') {
            Settled::default()
        } else {
            match gw.charge_settlement(&payment.stripe_charge_id).await {
                Ok(Some(s)) if s.currency.is_empty() || s.currency == payment.currency => Settled {
                    fee: s.fee,
                    converted: None,
                },
                // Settled into another currency's balance: converted there, fee booked there.
                Ok(Some(s)) => Settled {
                    fee: s.fee,
                    converted: Some((s.currency, s.amount)),
                },
                Ok(None) => continue,
                Err(GatewayError::Refused { status: 404, .. }) => {
                    tracing::warn!(charge = %payment.stripe_charge_id, "fee: Stripe does not know this charge; settled at 0");
                    Settled::default()
                }
                // Stripe unreachable: the next run tries again.
                Err(e @ GatewayError::Unavailable(_)) => {
                    return Err(AppError::Unavailable(e.to_string()))
                }
                // Refused for this charge alone: the others still settle.
                Err(e) => {
                    tracing::warn!(charge = %payment.stripe_charge_id, error = %e, "fee: Stripe refused; tried again next run");
                    continue;
                }
            }
        };
        let id = payment.id.clone();
        if db::transaction(&state.pool, move |conn| settle(conn, &id, &settlement)).await? {
            settled += 1;
        }
    }
    Ok(settled)
}

/// How a charge settled in Stripe's balance.
#[derive(Clone, Debug, Default)]
pub struct Settled {
    /// In the settlement currency.
    pub fee: i64,
    /// Settled in another currency than the charge's: that currency and the gross in it.
    pub converted: Option<(String, i64)>,
}

/// Records the settlement on the payment and posts it (the conversion first, then the fee in
/// the currency it was paid in); `false` when it was settled already.
pub fn settle(conn: &mut DbConn, payment_id: &str, s: &Settled) -> Result<bool, AppError> {
    // Under the payment's lock: a refund posted meanwhile is either already in
    // `reversed_minor` (and converted here) or converts itself after this commits.
    let Some(payment) = Payment::lock(conn, payment_id)? else {
        return Ok(false);
    };
    let converted = s.converted.as_ref().map(|(c, a)| (c.as_str(), *a));
    if !Payment::settle_fee(conn, &payment.id, s.fee, converted)? {
        return Ok(false);
    }
    let charge = &payment.stripe_charge_id;
    let mut fee_currency = currency(&payment.currency)?;
    if let Some((to, settled)) = converted {
        let to = currency(to)?;
        // What was reversed before the conversion was known left in the charge's currency;
        // the rest is converted at the charge's rate.
        let reversed = payment.reversed_minor();
        let gross = payment.amount_minor;
        let lines = ledger::conversion(
            gross - reversed,
            &fee_currency,
            settled - ledger::settled_part(0, reversed, gross, settled),
            &to,
        )
        .map_err(posting_error)?;
        let what = format!("Stripe converted {charge} into {to}");
        ledger_db::post(conn, &format!("fx:{charge}"), &what, &lines)?;
        fee_currency = to;
    }
    if s.fee > 0 {
        let lines = ledger::stripe_fee(s.fee, &fee_currency).map_err(posting_error)?;
        // The guarded update above is the once-check, as a payment's unique row is for its
        // sale; the key's uniqueness would still refuse a second posting.
        let key = format!("fee:{charge}");
        let what = format!("Stripe fee on {charge}");
        ledger_db::post_unseen(conn, &new_id("ltx"), &key, &what, &lines)?;
    }
    Ok(true)
}
