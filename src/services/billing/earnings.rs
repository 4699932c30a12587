//! Creator earnings: each sale's share is *pending* for the hold period (the refund window),
//! then a release posting moves what is left of it — the share less everything refunds and
//! disputes took back so far — to *available*. Each payment is released once, by its own
//! posting (`release:<charge>`), so the job only reads payments still in their hold. A
//! reversal after the release comes out of available, which may go negative and is recovered
//! from later earnings.

use crate::db::models::ledger::{self as ledger_db, balance};
use crate::db::models::payments::Payment;
use crate::db::schema::ledger_accounts;
use crate::db::DbConn;
use crate::domain::ledger::{self, creator_part, Account, AccountKind};
use crate::domain::money::Currency;
use crate::error::AppError;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::Serialize;

/// Releases the shares of up to `limit` payments made at least `hold_days` ago; returns the
/// payments released.
pub fn release_due(
    conn: &mut DbConn,
    hold_days: i64,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<usize, AppError> {
    let cutoff = crate::db::models::to_db(now - Duration::days(hold_days));
    let mut released = 0;
    for due in Payment::unreleased_before(conn, cutoff, limit)? {
        // Under the payment's lock: a reversal committing meanwhile is either before (and
        // netted here) or after (and comes out of available).
        let Some(payment) = Payment::lock(conn, &due.id)? else {
            continue;
        };
        let Some(creator) = payment.creator_id.as_deref() else {
            continue;
        };
        // Guarded: an instance that got here first released it.
        if !Payment::mark_released(conn, &payment.id)? {
            continue;
        }
        released += 1;
        let taken_back = creator_part(
            0,
            payment.reversed_minor(),
            payment.amount_minor,
            payment.creator_share_minor,
        );
        let amount = payment.creator_share_minor - taken_back;
        if amount == 0 {
            continue;
        }
        let currency = Currency::parse(&payment.currency)
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        let lines = ledger::release(creator, amount, &currency)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
        ledger_db::post(
            conn,
            &format!("release:{}", payment.stripe_charge_id),
            "earnings released after the hold period",
            &lines,
        )?;
    }
    Ok(released)
}

#[derive(Serialize)]
pub struct CurrencyEarnings {
    pub currency: String,
    /// Within the hold period (may still be refunded).
    pub pending_minor: i64,
    /// May be paid out (negative after refunds exceeding new earnings).
    pub available_minor: i64,
}

/// A creator's earnings (rendered by `http::views::EarningsView`).
pub struct Earnings {
    pub creator_id: String,
    pub hold_days: i64,
    pub balances: Vec<CurrencyEarnings>,
    pub recent_sales: Vec<Payment>,
}

pub fn of_creator(conn: &mut DbConn, creator: &str, hold_days: i64) -> Result<Earnings, AppError> {
    let mut currencies: Vec<String> = ledger_accounts::table
        .filter(ledger_accounts::owner_id.eq(creator))
        .select(ledger_accounts::currency)
        .distinct()
        .load(conn)?;
    currencies.sort();
    let mut balances = Vec::new();
    for code in currencies {
        let Ok(currency) = Currency::parse(&code) else {
            continue;
        };
        let pending = balance(
            conn,
            &Account::creator(AccountKind::CreatorPending, creator, &currency).id(),
        )?;
        let available = balance(
            conn,
            &Account::creator(AccountKind::CreatorAvailable, creator, &currency).id(),
        )?;
        balances.push(CurrencyEarnings {
            currency: code,
            pending_minor: -pending,
            available_minor: -available,
        });
    }
    Ok(Earnings {
        creator_id: creator.to_owned(),
        hold_days,
        balances,
        recent_sales: Payment::recent_of_creator(conn, creator, 50)?,
    })
}
