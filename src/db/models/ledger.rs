//! Writing postings to the ledger, and reading balances. The database checks every posting
//! again (triggers): balanced per currency, sealed once written, never updated or deleted.

use super::{new_id, to_db};
use crate::db::schema::{ledger_accounts, ledger_balances, ledger_entries, ledger_transactions};
use crate::db::DbConn;
use crate::domain::ledger::Line;
use chrono::{NaiveDateTime, Utc};
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
    post_unseen_at(conn, id, source_key, description, lines, to_db(Utc::now()))
}

/// [`post_unseen`], stamped `now` (tests and seeds give the past).
pub fn post_unseen_at(
    conn: &mut DbConn,
    id: &str,
    source_key: &str,
    description: &str,
    lines: &[Line],
    now: NaiveDateTime,
) -> QueryResult<()> {
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

/// Earlier than any entry (and a time both backends store).
const BEFORE_ANY_ENTRY: NaiveDateTime = chrono::DateTime::UNIX_EPOCH.naive_utc();

/// Postings commit within this long of their entries' `created_at` (transactions are short
/// and never wait on Stripe or SMTP): checkpoints stop this far behind now.
pub const SETTLED_AFTER_MINUTES: i64 = 10;

/// The sum of an account's entries (debits positive): its checkpoint plus the entries made
/// since, so the work is bounded by what happened since the last checkpoint, never by the
/// account's history.
pub fn balance(conn: &mut DbConn, account_id: &str) -> QueryResult<i64> {
    let (checkpoint, through) = ledger_balances::table
        .find(account_id)
        .select((ledger_balances::balance_minor, ledger_balances::through))
        .first::<(i64, NaiveDateTime)>(conn)
        .optional()?
        .unwrap_or((0, BEFORE_ANY_ENTRY));
    Ok(checkpoint + sum_since(conn, account_id, through, None)?)
}

/// The sum of an account's entries made before `until`: from its checkpoint when that is not
/// later than `until` (then only the entries since are summed), else from the first entry.
pub fn balance_before(
    conn: &mut DbConn,
    account_id: &str,
    until: NaiveDateTime,
) -> QueryResult<i64> {
    let checkpoint = ledger_balances::table
        .find(account_id)
        .select((ledger_balances::balance_minor, ledger_balances::through))
        .first::<(i64, NaiveDateTime)>(conn)
        .optional()?;
    match checkpoint {
        Some((balance, through)) if through <= until => {
            Ok(balance + sum_since(conn, account_id, through, Some(until))?)
        }
        _ => sum_since(conn, account_id, BEFORE_ANY_ENTRY, Some(until)),
    }
}

/// The sum of an account's entries made in `[from, until)` (`until` open when `None`).
/// Summed by the database over `(account_id, created_at)`; the cast keeps one type on both
/// backends (PostgreSQL's SUM of BIGINT is NUMERIC).
fn sum_since(
    conn: &mut DbConn,
    account_id: &str,
    from: NaiveDateTime,
    until: Option<NaiveDateTime>,
) -> QueryResult<i64> {
    let mut q = ledger_entries::table
        .filter(ledger_entries::account_id.eq(account_id))
        .filter(ledger_entries::created_at.ge(from))
        .into_boxed();
    if let Some(until) = until {
        q = q.filter(ledger_entries::created_at.lt(until));
    }
    q.select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT)",
    ))
    .first(conn)
}

/// Moves up to `limit` accounts' checkpoints forward to `through` (the jobs worker passes
/// `SETTLED_AFTER_MINUTES` ago): each adds the entries made since its last one. Returns how
/// many moved; an account is moved in its own short statement pair.
pub fn checkpoint(conn: &mut DbConn, through: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    // Accounts with entries after their checkpoint (or none yet) and before `through`.
    let behind: Vec<(String, Option<NaiveDateTime>)> = ledger_accounts::table
        .left_join(ledger_balances::table)
        .filter(diesel::dsl::exists(
            ledger_entries::table
                .filter(ledger_entries::account_id.eq(ledger_accounts::id))
                .filter(ledger_entries::created_at.lt(through))
                .filter(
                    ledger_balances::through
                        .is_null()
                        .or(ledger_entries::created_at
                            .nullable()
                            .ge(ledger_balances::through.nullable())),
                ),
        ))
        .limit(limit)
        .select((ledger_accounts::id, ledger_balances::through.nullable()))
        .load(conn)?;
    for (account, since) in &behind {
        let since = since.unwrap_or(BEFORE_ANY_ENTRY);
        let added = sum_since(conn, account, since, Some(through))?;
        let row = (
            ledger_balances::account_id.eq(account),
            ledger_balances::balance_minor.eq(added),
            ledger_balances::through.eq(through),
        );
        if crate::db::insert_or_ignore!(conn, ledger_balances::table, row)? == 0 {
            // Only from where it was: a concurrent run that moved it first is not added twice.
            diesel::update(
                ledger_balances::table
                    .find(account)
                    .filter(ledger_balances::through.eq(since)),
            )
            .set((
                ledger_balances::balance_minor.eq(ledger_balances::balance_minor + added),
                ledger_balances::through.eq(through),
            ))
            .execute(conn)?;
        }
    }
    Ok(behind.len())
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

/// An entry as the ledger export shows it, with its transaction and account.
#[derive(Debug, Queryable)]
pub struct ExportedEntry {
    pub id: String,
    pub created_at: NaiveDateTime,
    pub transaction_id: String,
    pub source_key: String,
    pub description: String,
    pub account_id: String,
    pub kind: String,
    pub owner_id: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
}

/// Entries made in `[from, to)` (of one account, if given) by time then id, after the
/// (time, id) cursor: the next `limit`.
pub fn entries_page(
    conn: &mut DbConn,
    (from, to): (NaiveDateTime, NaiveDateTime),
    account: Option<&str>,
    after: Option<&(NaiveDateTime, String)>,
    limit: i64,
) -> QueryResult<Vec<ExportedEntry>> {
    let mut q = ledger_entries::table
        .inner_join(ledger_transactions::table)
        .inner_join(ledger_accounts::table)
        .filter(ledger_entries::created_at.ge(from))
        .filter(ledger_entries::created_at.lt(to))
        .order((ledger_entries::created_at, ledger_entries::id))
        .limit(limit)
        .select((
            ledger_entries::id,
            ledger_entries::created_at,
            ledger_entries::transaction_id,
            ledger_transactions::source_key,
            ledger_transactions::description,
            ledger_entries::account_id,
            ledger_accounts::kind,
            ledger_accounts::owner_id,
            ledger_entries::currency,
            ledger_entries::amount_minor,
        ))
        .into_boxed();
    if let Some(account) = account {
        q = q.filter(ledger_entries::account_id.eq(account.to_owned()));
    }
    if let Some((at, id)) = after {
        // The first filter lets the (created_at, id) index seek to the cursor; the second
        // skips what is behind it at that very time.
        q = q.filter(ledger_entries::created_at.ge(*at)).filter(
            ledger_entries::created_at
                .gt(*at)
                .or(ledger_entries::created_at
                    .eq(*at)
                    .and(ledger_entries::id.gt(id.clone()))),
        );
    }
    q.load(conn)
}

/// What the entries made in `[from, to)` add up to per account kind and currency: (kind,
/// currency, sum), by kind then currency.
pub fn sums_by_kind(
    conn: &mut DbConn,
    (from, to): (NaiveDateTime, NaiveDateTime),
) -> QueryResult<Vec<(String, String, i64)>> {
    ledger_entries::table
        .inner_join(ledger_accounts::table)
        .filter(ledger_entries::created_at.ge(from))
        .filter(ledger_entries::created_at.lt(to))
        .group_by((ledger_accounts::kind, ledger_accounts::currency))
        .order((ledger_accounts::kind, ledger_accounts::currency))
        .select((
            ledger_accounts::kind,
            ledger_accounts::currency,
            diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CAST(COALESCE(SUM(ledger_entries.amount_minor), 0) AS BIGINT)",
            ),
        ))
        .load(conn)
}
