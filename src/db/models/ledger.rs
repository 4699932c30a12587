//! Writing postings to the ledger, and reading balances. The database checks every posting
//! again (triggers): balanced per currency, sealed once written, never updated or deleted.

use super::{new_id, to_db};
use crate::db::schema::{ledger_accounts, ledger_entries, ledger_transactions};
use crate::db::DbConn;
use crate::domain::ledger::Line;
use chrono::Utc;
use diesel::prelude::*;

#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    /// Written now, under this transaction id.
    New(String),
    /// This source was posted before; nothing was written.
    Already,
}

/// Posts `lines` (already balanced, see `domain::ledger::balanced`) once per `source_key`.
/// Must run inside a database transaction: entries are written before the transaction row
/// that seals them.
pub fn post(
    conn: &mut DbConn,
    source_key: &str,
    description: &str,
    lines: &[Line],
) -> QueryResult<Posted> {
    let seen = ledger_transactions::table
        .filter(ledger_transactions::source_key.eq(source_key))
        .select(ledger_transactions::id)
        .first::<String>(conn)
        .optional()?;
    if seen.is_some() {
        return Ok(Posted::Already);
    }
    let id = new_id("ltx");
    post_unseen(conn, &id, source_key, description, lines)?;
    Ok(Posted::New(id))
}

/// Posts `lines` as transaction `id` when the caller already knows `source_key` was never
/// posted (a payment's own unique row says so); the key's uniqueness still refuses a second.
pub fn post_unseen(
    conn: &mut DbConn,
    id: &str,
    source_key: &str,
    description: &str,
    lines: &[Line],
) -> QueryResult<()> {
    let now = to_db(Utc::now());
    // One statement for the entries, whatever their number (webhooks post at Stripe's pace);
    // an account is opened by its first entry (see the ledger migrations).
    let entries: Vec<_> = lines
        .iter()
        .map(|line| {
            (
                ledger_entries::id.eq(new_id("le")),
                ledger_entries::transaction_id.eq(id),
                ledger_entries::account_id.eq(line.account.id()),
                ledger_entries::amount_minor.eq(line.amount_minor),
                ledger_entries::currency.eq(line.account.currency.as_str()),
                ledger_entries::created_at.eq(now),
            )
        })
        .collect();
    crate::db::insert_rows!(conn, ledger_entries::table, &entries)?;
    diesel::insert_into(ledger_transactions::table)
        .values((
            ledger_transactions::id.eq(id),
            ledger_transactions::source_key.eq(source_key),
            ledger_transactions::description.eq(description),
            ledger_transactions::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The sum of an account's entries (debits positive). Summed here: `SUM(BIGINT)` is NUMERIC
/// on PostgreSQL and INTEGER on SQLite, and exact integers are what we want on both.
pub fn balance(conn: &mut DbConn, account_id: &str) -> QueryResult<i64> {
    // Summed by the database over the account's index, not loaded entry by entry; the cast
    // keeps one type on both backends (PostgreSQL's SUM of BIGINT is NUMERIC).
    ledger_entries::table
        .filter(ledger_entries::account_id.eq(account_id))
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT)",
        ))
        .first(conn)
}

/// The sum of one posting's entries on accounts of `kind` (0 if it was never posted).
pub fn amount_in(conn: &mut DbConn, source_key: &str, kind: &str) -> QueryResult<i64> {
    let amounts: Vec<i64> = ledger_entries::table
        .inner_join(ledger_transactions::table)
        .inner_join(ledger_accounts::table)
        .filter(ledger_transactions::source_key.eq(source_key))
        .filter(ledger_accounts::kind.eq(kind))
        .select(ledger_entries::amount_minor)
        .load(conn)?;
    Ok(amounts.iter().sum())
}
