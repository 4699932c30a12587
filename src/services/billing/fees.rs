//! Stripe's fee on each payment. Webhooks name a charge's balance transaction but not its
//! amounts, so a payment is posted gross with no fee, and this job asks Stripe for the fee
//! afterwards (outside any database transaction) and posts it on its own: Stripe fees debited,
//! clearing credited, keyed `fee:<charge>` so it is posted once whatever runs the job.

use crate::app::AppState;
use crate::db::models::ledger as ledger_db;
use crate::db::models::new_id;
use crate::db::models::payments::Payment;
use crate::db::{self, DbConn};
use crate::domain::ledger;
use crate::domain::money::Currency;
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
        let fee = if payment.stripe_charge_id.contains(':') {
            0
        } else {
            match gw.charge_settlement(&payment.stripe_charge_id).await {
                // Settled in the payment's currency: the fee is booked there.
                Ok(Some(s)) if s.currency.is_empty() || s.currency == payment.currency => s.fee,
                // Settled in another currency: never booked as if it were the payment's
                // (the ledger has no FX accounts yet to book it in its own currency).
                Ok(Some(s)) => {
                    tracing::warn!(charge = %payment.stripe_charge_id, settlement = %s.currency, "fee: settled in another currency; not booked in the payment's");
                    0
                }
                Ok(None) => continue,
                Err(GatewayError::Refused { status: 404, .. }) => {
                    tracing::warn!(charge = %payment.stripe_charge_id, "fee: Stripe does not know this charge; settled at 0");
                    0
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
        if db::transaction(&state.pool, move |conn| settle(conn, &payment, fee)).await? {
            settled += 1;
        }
    }
    Ok(settled)
}

/// Records `fee` on the payment and posts it; `false` when the fee was settled already.
pub fn settle(conn: &mut DbConn, payment: &Payment, fee: i64) -> Result<bool, AppError> {
    if !Payment::settle_fee(conn, &payment.id, fee)? {
        return Ok(false);
    }
    if fee > 0 {
        let currency = Currency::parse(&payment.currency)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("payment currency: {e}")))?;
        let lines = ledger::stripe_fee(fee, &currency)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("fee posting: {e}")))?;
        // The guarded update above is the once-check, as a payment's unique row is for its
        // sale; the key's uniqueness would still refuse a second posting.
        let key = format!("fee:{}", payment.stripe_charge_id);
        let what = format!("Stripe fee on {}", payment.stripe_charge_id);
        ledger_db::post_unseen(conn, &new_id("ltx"), &key, &what, &lines)?;
    }
    Ok(true)
}
