//! Creator earnings: each sale's share is *pending* for the hold period (the refund window),
//! then a release posting moves it to *available*. Refunds after release come out of the
//! pending account, and the next release nets them, so a balance may go negative and is
//! recovered from later earnings.

use crate::db::models::ledger::{self as ledger_db, balance};
use crate::db::models::payments::Payment;
use crate::db::schema::{ledger_accounts, ledger_entries, ledger_transactions};
use crate::db::DbConn;
use crate::domain::ledger::{self, Account, AccountKind};
use crate::domain::money::Currency;
use crate::error::AppError;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

const RELEASE: &str = "release:";

/// Releases every creator's shares older than `hold_days`; returns the postings made.
pub fn release_due(
    conn: &mut DbConn,
    hold_days: i64,
    now: DateTime<Utc>,
) -> Result<usize, AppError> {
    let cutoff = crate::db::models::to_db(now - Duration::days(hold_days));
    let accounts: Vec<(String, Option<String>, String)> = ledger_accounts::table
        .filter(ledger_accounts::kind.eq(AccountKind::CreatorPending.as_str()))
        .select((
            ledger_accounts::id,
            ledger_accounts::owner_id,
            ledger_accounts::currency,
        ))
        .load(conn)?;
    let mut posted = 0;
    for (account, owner, currency) in accounts {
        let Some(creator) = owner else { continue };
        let entries: Vec<(i64, NaiveDateTime, String)> = ledger_entries::table
            .inner_join(ledger_transactions::table)
            .filter(ledger_entries::account_id.eq(&account))
            .select((
                ledger_entries::amount_minor,
                ledger_entries::created_at,
                ledger_transactions::source_key,
            ))
            .load(conn)?;
        let (mut due, mut released) = (0i64, 0i64);
        for (amount, at, key) in entries {
            if key.starts_with(RELEASE) {
                released += amount;
            } else if at <= cutoff {
                due += amount;
            }
        }
        // Shares are credits (negative); releases debit the pending account.
        let move_now = -due - released;
        if move_now == 0 {
            continue;
        }
        let currency =
            Currency::parse(&currency).map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        let lines = ledger::release(&creator, move_now, &currency)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
        let key = format!("{RELEASE}{account}:{}", cutoff.and_utc().timestamp_micros());
        if let ledger_db::Posted::New(_) = ledger_db::post(
            conn,
            &key,
            "earnings released after the hold period",
            &lines,
        )? {
            posted += 1;
        }
    }
    Ok(posted)
}

#[derive(Serialize)]
pub struct CurrencyEarnings {
    pub currency: String,
    /// Within the hold period (may still be refunded).
    pub pending_minor: i64,
    /// May be paid out (negative after refunds exceeding new earnings).
    pub available_minor: i64,
}

#[derive(Serialize)]
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
