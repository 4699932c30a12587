//! Payout rows: creators' bank accounts, holds, runs, their lines, what they carried, and the
//! audit trail of every transition.

use super::{new_id, to_db};
use crate::db::schema::{
    ledger_accounts, ledger_entries, ledger_transactions, payout_audit, payout_bank_accounts,
    payout_carried, payout_connect_accounts, payout_holds, payout_lines, payout_runs,
};
use crate::db::DbConn;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use std::collections::BTreeMap;

// A draw reads the open lines of a page of accounts' creators by subquery.
diesel::allow_tables_to_appear_in_same_query!(payout_lines, ledger_accounts);

#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = payout_bank_accounts)]
pub struct BankAccount {
    pub creator_id: String,
    pub holder_name: String,
    /// Electronic form, checked (`domain::bank_accounts::Iban`); never shown whole.
    pub iban: String,
    pub bic: Option<String>,
    pub town: String,
    pub country: String,
    pub currency: String,
    pub cooling_off_until: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

impl BankAccount {
    pub fn find(conn: &mut DbConn, creator: &str) -> QueryResult<Option<BankAccount>> {
        payout_bank_accounts::table
            .find(creator)
            .select(BankAccount::as_select())
            .first(conn)
            .optional()
    }

    pub fn put(conn: &mut DbConn, account: &BankAccount) -> QueryResult<()> {
        let updated = diesel::update(payout_bank_accounts::table.find(&account.creator_id))
            .set(account)
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(payout_bank_accounts::table)
                .values(account)
                .execute(conn)?;
        }
        Ok(())
    }

    pub fn all_of(
        conn: &mut DbConn,
        creators: &[String],
    ) -> QueryResult<BTreeMap<String, BankAccount>> {
        super::by_creator(
            creators,
            |chunk| {
                payout_bank_accounts::table
                    .filter(payout_bank_accounts::creator_id.eq_any(chunk))
                    .select(BankAccount::as_select())
                    .load(conn)
            },
            |a| &a.creator_id,
        )
    }
}

/// A creator's Stripe Connect (Express) account, as its `account.updated` events say it is.
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = payout_connect_accounts)]
pub struct ConnectAccount {
    pub creator_id: String,
    pub account_id: String,
    /// `capabilities.transfers`: `active`, `inactive` or `pending`.
    pub transfers: String,
    pub details_submitted: bool,
    /// The creator is paid through this account (rather than by bank transfer).
    pub chosen: bool,
    pub cooling_off_until: Option<NaiveDateTime>,
    pub event_created: i64,
    pub updated_at: NaiveDateTime,
}

impl ConnectAccount {
    pub fn find(conn: &mut DbConn, creator: &str) -> QueryResult<Option<ConnectAccount>> {
        payout_connect_accounts::table
            .find(creator)
            .select(ConnectAccount::as_select())
            .first(conn)
            .optional()
    }

    pub fn by_account(conn: &mut DbConn, account: &str) -> QueryResult<Option<ConnectAccount>> {
        payout_connect_accounts::table
            .filter(payout_connect_accounts::account_id.eq(account))
            .select(ConnectAccount::as_select())
            .first(conn)
            .optional()
    }

    pub fn insert(conn: &mut DbConn, row: &ConnectAccount) -> QueryResult<()> {
        diesel::insert_into(payout_connect_accounts::table)
            .values(row)
            .execute(conn)?;
        Ok(())
    }

    /// Chooses (or leaves) Connect as the creator's payout method.
    pub fn choose(
        conn: &mut DbConn,
        creator: &str,
        chosen: bool,
        cooling_off_until: Option<NaiveDateTime>,
    ) -> QueryResult<usize> {
        diesel::update(payout_connect_accounts::table.find(creator))
            .set((
                payout_connect_accounts::chosen.eq(chosen),
                payout_connect_accounts::cooling_off_until.eq(cooling_off_until),
                payout_connect_accounts::updated_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)
    }

    /// Applies an `account.updated` created at `created`, unless a later one was applied.
    pub fn apply_update(
        conn: &mut DbConn,
        account: &str,
        transfers: &str,
        details_submitted: bool,
        created: i64,
    ) -> QueryResult<usize> {
        diesel::update(
            payout_connect_accounts::table
                .filter(payout_connect_accounts::account_id.eq(account))
                .filter(payout_connect_accounts::event_created.le(created)),
        )
        .set((
            payout_connect_accounts::transfers.eq(transfers),
            payout_connect_accounts::details_submitted.eq(details_submitted),
            payout_connect_accounts::event_created.eq(created),
            payout_connect_accounts::updated_at.eq(to_db(Utc::now())),
        ))
        .execute(conn)
    }

    pub fn all_of(
        conn: &mut DbConn,
        creators: &[String],
    ) -> QueryResult<BTreeMap<String, ConnectAccount>> {
        super::by_creator(
            creators,
            |chunk| {
                payout_connect_accounts::table
                    .filter(payout_connect_accounts::creator_id.eq_any(chunk))
                    .select(ConnectAccount::as_select())
                    .load(conn)
            },
            |a| &a.creator_id,
        )
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = payout_holds)]
pub struct Hold {
    pub creator_id: String,
    pub reason: String,
    pub set_by: String,
    pub set_at: NaiveDateTime,
}

impl Hold {
    pub fn set(conn: &mut DbConn, hold: &Hold) -> QueryResult<()> {
        Self::lift(conn, &hold.creator_id)?;
        diesel::insert_into(payout_holds::table)
            .values(hold)
            .execute(conn)?;
        Ok(())
    }

    pub fn lift(conn: &mut DbConn, creator: &str) -> QueryResult<usize> {
        diesel::delete(payout_holds::table.find(creator)).execute(conn)
    }

    /// Which of these creators are on hold.
    pub fn held_among(
        conn: &mut DbConn,
        creators: &[String],
    ) -> QueryResult<std::collections::HashSet<String>> {
        let mut held = std::collections::HashSet::new();
        for chunk in creators.chunks(1000) {
            held.extend(
                payout_holds::table
                    .filter(payout_holds::creator_id.eq_any(chunk))
                    .select(payout_holds::creator_id)
                    .load::<String>(conn)?,
            );
        }
        Ok(held)
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = payout_runs)]
pub struct Run {
    pub id: String,
    pub cutoff: NaiveDateTime,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub approved_by: Option<String>,
    pub approved_at: Option<NaiveDateTime>,
}

impl Run {
    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Run>> {
        payout_runs::table
            .find(id)
            .select(Run::as_select())
            .first(conn)
            .optional()
    }

    /// Newest first, after the run `after` (a cursor from the previous page).
    pub fn page(conn: &mut DbConn, after: Option<&Run>, limit: i64) -> QueryResult<Vec<Run>> {
        let mut q = payout_runs::table
            .select(Run::as_select())
            .order((payout_runs::created_at.desc(), payout_runs::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(
                payout_runs::created_at
                    .lt(a.created_at)
                    .or(payout_runs::created_at
                        .eq(a.created_at)
                        .and(payout_runs::id.lt(a.id.clone()))),
            );
        }
        q.load(conn)
    }

    pub fn approved(conn: &mut DbConn, id: &str, by: &str) -> QueryResult<()> {
        diesel::update(payout_runs::table.find(id))
            .set((
                payout_runs::approved_by.eq(by),
                payout_runs::approved_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// (creator, currency, lines, amount, withheld) of the lines paid in a period.
pub type PaidTotal = (String, String, i64, i64, i64);

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = payout_lines)]
pub struct Line {
    pub id: String,
    pub run_id: String,
    pub creator_id: String,
    pub currency: String,
    pub amount_minor: i64,
    pub state: String,
    /// The bank account when the line was drawn (JSON of `Destination`).
    pub destination: String,
    pub reason_code: Option<String>,
    pub sent_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
    /// Income tax kept back from `amount_minor` (the bank pays the rest), at this rate.
    pub withheld_minor: i64,
    pub withholding_rate_bps: i32,
    pub paid_at: Option<NaiveDateTime>,
    /// `bank_transfer` or `stripe_connect`.
    pub method: String,
    /// The Stripe transfer that paid a Connect line.
    pub transfer_id: Option<String>,
    pub transfer_attempted_at: Option<NaiveDateTime>,
    /// How much of a Connect line's transfer was reversed so far.
    pub reversed_minor: i64,
}

impl Line {
    /// What the bank pays: the line less the tax withheld.
    pub fn net_minor(&self) -> i64 {
        self.amount_minor - self.withheld_minor
    }

    pub fn insert_all(conn: &mut DbConn, lines: &[Line]) -> QueryResult<()> {
        for chunk in lines.chunks(500) {
            crate::db::insert_rows!(conn, payout_lines::table, chunk)?;
        }
        Ok(())
    }

    pub fn find(conn: &mut DbConn, run: &str, id: &str) -> QueryResult<Option<Line>> {
        payout_lines::table
            .find(id)
            .filter(payout_lines::run_id.eq(run))
            .select(Line::as_select())
            .first(conn)
            .optional()
    }

    pub fn page(
        conn: &mut DbConn,
        run: &str,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<Line>> {
        let mut q = payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .order(payout_lines::id)
            .limit(limit)
            .select(Line::as_select())
            .into_boxed();
        if let Some(after) = after {
            q = q.filter(payout_lines::id.gt(after.to_owned()));
        }
        q.load(conn)
    }

    /// Moves a line from one of `from` to `to`; false when it was in none of them (another
    /// request moved it first).
    pub fn move_state(
        conn: &mut DbConn,
        id: &str,
        from: &[&str],
        to: &str,
        reason_code: Option<&str>,
        at: NaiveDateTime,
    ) -> QueryResult<bool> {
        let moved = diesel::update(
            payout_lines::table
                .find(id)
                .filter(payout_lines::state.eq_any(from)),
        )
        .set((
            payout_lines::state.eq(to),
            payout_lines::reason_code.eq(reason_code),
            payout_lines::updated_at.eq(at),
        ))
        .execute(conn)?;
        if moved == 1 && to == "paid" {
            diesel::update(payout_lines::table.find(id))
                .set(payout_lines::paid_at.eq(at))
                .execute(conn)?;
        }
        Ok(moved == 1)
    }

    /// A run's Connect lines sent but not yet transferred, by id (the first `limit`): what
    /// processing transfers.
    pub fn untransferred(conn: &mut DbConn, run: &str, limit: i64) -> QueryResult<Vec<Line>> {
        payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .filter(payout_lines::method.eq("stripe_connect"))
            .filter(payout_lines::state.eq("sent"))
            .filter(payout_lines::transfer_id.is_null())
            .order(payout_lines::id)
            .limit(limit)
            .select(Line::as_select())
            .load(conn)
    }

    /// How many of a run's Connect lines are sent but not yet transferred.
    pub fn untransferred_count(conn: &mut DbConn, run: &str) -> QueryResult<i64> {
        payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .filter(payout_lines::method.eq("stripe_connect"))
            .filter(payout_lines::state.eq("sent"))
            .filter(payout_lines::transfer_id.is_null())
            .count()
            .get_result(conn)
    }

    /// How many of a run's approved lines are paid by `method`.
    pub fn approved_by(conn: &mut DbConn, run: &str, method: &str) -> QueryResult<i64> {
        payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .filter(payout_lines::state.eq("approved"))
            .filter(payout_lines::method.eq(method))
            .count()
            .get_result(conn)
    }

    pub fn by_transfer(conn: &mut DbConn, transfer: &str) -> QueryResult<Option<Line>> {
        payout_lines::table
            .filter(payout_lines::transfer_id.eq(transfer))
            .select(Line::as_select())
            .first(conn)
            .optional()
    }

    /// Records the first transfer attempt of a line (later attempts keep the first time).
    pub fn attempting_transfer(
        conn: &mut DbConn,
        id: &str,
        at: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(
            payout_lines::table
                .find(id)
                .filter(payout_lines::transfer_attempted_at.is_null()),
        )
        .set(payout_lines::transfer_attempted_at.eq(at))
        .execute(conn)
    }

    /// Raises the reversed amount of a line to `total` (never lowers it); whether it moved.
    pub fn reversed_to(conn: &mut DbConn, id: &str, total: i64) -> QueryResult<bool> {
        let moved = diesel::update(
            payout_lines::table
                .find(id)
                .filter(payout_lines::reversed_minor.lt(total)),
        )
        .set((
            payout_lines::reversed_minor.eq(total),
            payout_lines::updated_at.eq(to_db(Utc::now())),
        ))
        .execute(conn)?;
        Ok(moved == 1)
    }

    pub fn set_transfer(conn: &mut DbConn, id: &str, transfer: &str) -> QueryResult<usize> {
        diesel::update(
            payout_lines::table
                .find(id)
                .filter(payout_lines::transfer_id.is_null()),
        )
        .set(payout_lines::transfer_id.eq(transfer))
        .execute(conn)
    }

    /// Approved lines of a run become sent, now; how many.
    pub fn send_approved(conn: &mut DbConn, run: &str) -> QueryResult<usize> {
        Self::move_all(conn, run, "approved", "sent")
    }

    /// Every line of a run in state `from` moves to `to`, now (and is sent now, if `to` is
    /// `sent`); how many.
    fn move_all(conn: &mut DbConn, run: &str, from: &str, to: &str) -> QueryResult<usize> {
        let now = to_db(Utc::now());
        let lines = payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .filter(payout_lines::state.eq(from));
        let moved = (payout_lines::state.eq(to), payout_lines::updated_at.eq(now));
        if to == "sent" {
            diesel::update(lines)
                .set((moved, payout_lines::sent_at.eq(now)))
                .execute(conn)
        } else {
            diesel::update(lines).set(moved).execute(conn)
        }
    }

    /// The bank-transfer lines of a run that went to the bank (what its bank files hold) in
    /// the given states (any when empty), by id after `after`: the next `limit` of them.
    pub fn sent_page(
        conn: &mut DbConn,
        run: &str,
        states: &[&str],
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<Line>> {
        let mut q = payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .filter(payout_lines::method.eq("bank_transfer"))
            .filter(payout_lines::sent_at.is_not_null())
            .order(payout_lines::id)
            .limit(limit)
            .select(Line::as_select())
            .into_boxed();
        if !states.is_empty() {
            q = q.filter(payout_lines::state.eq_any(states.to_vec()));
        }
        if let Some(after) = after {
            q = q.filter(payout_lines::id.gt(after.to_owned()));
        }
        q.load(conn)
    }

    /// How many of the lines in a run's bank files are in `state`.
    pub fn sent_in_state(conn: &mut DbConn, run: &str, state: &str) -> QueryResult<i64> {
        payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .filter(payout_lines::method.eq("bank_transfer"))
            .filter(payout_lines::sent_at.is_not_null())
            .filter(payout_lines::state.eq(state))
            .count()
            .get_result(conn)
    }

    /// A run's draft lines by id after `after`: the next `limit` of them.
    pub fn drafts_page(
        conn: &mut DbConn,
        run: &str,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<Line>> {
        let mut q = payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .filter(payout_lines::state.eq("draft"))
            .order(payout_lines::id)
            .limit(limit)
            .select(Line::as_select())
            .into_boxed();
        if let Some(after) = after {
            q = q.filter(payout_lines::id.gt(after.to_owned()));
        }
        q.load(conn)
    }

    /// Whether a draft line of the run pays `creator`.
    pub fn draft_pays(conn: &mut DbConn, run: &str, creator: &str) -> QueryResult<Option<String>> {
        payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .filter(payout_lines::state.eq("draft"))
            .filter(payout_lines::creator_id.eq(creator))
            .select(payout_lines::id)
            .first(conn)
            .optional()
    }

    /// Cancels a run's draft lines; how many.
    pub fn cancel_drafts(conn: &mut DbConn, run: &str) -> QueryResult<usize> {
        Self::move_all(conn, run, "draft", "canceled")
    }

    /// A creator's lines in `currency` that changed in `[from, until)`, by id (at most `limit`).
    pub fn of_creator_changed(
        conn: &mut DbConn,
        creator: &str,
        currency: &str,
        from: NaiveDateTime,
        until: NaiveDateTime,
        limit: i64,
    ) -> QueryResult<Vec<Line>> {
        payout_lines::table
            .filter(payout_lines::creator_id.eq(creator))
            .filter(payout_lines::currency.eq(currency))
            .filter(payout_lines::updated_at.ge(from))
            .filter(payout_lines::updated_at.lt(until))
            .order(payout_lines::id)
            .limit(limit)
            .select(Line::as_select())
            .load(conn)
    }

    /// (currency, lines, amount, withheld) of a run's lines that are not canceled, by currency.
    pub fn totals_of_run(
        conn: &mut DbConn,
        run: &str,
    ) -> QueryResult<Vec<(String, i64, i64, i64)>> {
        payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .filter(payout_lines::state.ne("canceled"))
            .group_by(payout_lines::currency)
            .order(payout_lines::currency)
            .select((
                payout_lines::currency,
                diesel::dsl::count_star(),
                diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT)",
                ),
                diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "CAST(COALESCE(SUM(withheld_minor), 0) AS BIGINT)",
                ),
            ))
            .load(conn)
    }

    /// Per creator and currency, after the (creator, currency) cursor: the lines the bank paid
    /// in `[from, until)` (returned ones are not: that money never arrived), at most `limit`
    /// groups as (creator, currency, lines, amount, withheld).
    pub fn paid_totals(
        conn: &mut DbConn,
        from: NaiveDateTime,
        until: NaiveDateTime,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> QueryResult<Vec<PaidTotal>> {
        let mut q = payout_lines::table
            .filter(payout_lines::state.eq("paid"))
            .filter(payout_lines::paid_at.ge(from))
            .filter(payout_lines::paid_at.lt(until))
            .group_by((payout_lines::creator_id, payout_lines::currency))
            .order((payout_lines::creator_id, payout_lines::currency))
            .limit(limit)
            .select((
                payout_lines::creator_id,
                payout_lines::currency,
                diesel::dsl::count_star(),
                diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT)",
                ),
                diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "CAST(COALESCE(SUM(withheld_minor), 0) AS BIGINT)",
                ),
            ))
            .into_boxed();
        if let Some((creator, currency)) = after {
            q = q.filter(
                payout_lines::creator_id
                    .gt(creator.to_owned())
                    .or(payout_lines::creator_id
                        .eq(creator.to_owned())
                        .and(payout_lines::currency.gt(currency.to_owned()))),
            );
        }
        q.load(conn)
    }

    /// How many lines of a run are in each state.
    pub fn state_counts(conn: &mut DbConn, run: &str) -> QueryResult<Vec<(String, i64)>> {
        payout_lines::table
            .filter(payout_lines::run_id.eq(run))
            .group_by(payout_lines::state)
            .select((payout_lines::state, diesel::dsl::count_star()))
            .load(conn)
    }

    /// Which creators and currencies of the available accounts from `first` to `last` (ids,
    /// in the database's order: a draw's page) are in an open line (draft, approved or sent) of
    /// any run, and perhaps a few more. Read by the range of the page's creators (its bounds in
    /// the database's own order, by subquery), so a scan costs two comparisons a line whatever
    /// the planner believes of a table the draw is filling.
    pub fn open_among_accounts(
        conn: &mut DbConn,
        first: &str,
        last: &str,
    ) -> QueryResult<std::collections::HashSet<(String, String)>> {
        let page = || {
            ledger_accounts::table
                .filter(ledger_accounts::kind.eq("creator_available"))
                .filter(ledger_accounts::id.ge(first.to_owned()))
                .filter(ledger_accounts::id.le(last.to_owned()))
        };
        let lowest = page()
            .select(diesel::dsl::min(ledger_accounts::owner_id))
            .single_value();
        let highest = page()
            .select(diesel::dsl::max(ledger_accounts::owner_id))
            .single_value();
        Ok(payout_lines::table
            .filter(payout_lines::creator_id.nullable().ge(lowest))
            .filter(payout_lines::creator_id.nullable().le(highest))
            .filter(payout_lines::state.eq_any(["draft", "approved", "sent"]))
            .select((payout_lines::creator_id, payout_lines::currency))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect())
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = payout_carried)]
pub struct Carried {
    pub run_id: String,
    pub creator_id: String,
    pub currency: String,
    pub available_minor: i64,
    pub reason: String,
}

impl Carried {
    pub fn insert_all(conn: &mut DbConn, rows: &[Carried]) -> QueryResult<()> {
        for chunk in rows.chunks(500) {
            crate::db::insert_rows!(conn, payout_carried::table, chunk)?;
        }
        Ok(())
    }

    pub fn count_of_run(conn: &mut DbConn, run: &str) -> QueryResult<i64> {
        payout_carried::table
            .filter(payout_carried::run_id.eq(run))
            .count()
            .get_result(conn)
    }

    /// What a run carried, at most `limit` rows, by creator.
    pub fn of_run(conn: &mut DbConn, run: &str, limit: i64) -> QueryResult<Vec<Carried>> {
        payout_carried::table
            .filter(payout_carried::run_id.eq(run))
            .order((payout_carried::creator_id, payout_carried::currency))
            .limit(limit)
            .select(Carried::as_select())
            .load(conn)
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = payout_audit)]
pub struct AuditEvent {
    pub id: String,
    pub run_id: Option<String>,
    pub creator_id: Option<String>,
    pub line_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub at: NaiveDateTime,
}

/// Writes one audit event (in the transaction of the change it records).
pub fn audit(
    conn: &mut DbConn,
    run: &str,
    line: Option<&str>,
    actor: &str,
    action: &str,
    detail: &str,
) -> QueryResult<()> {
    diesel::insert_into(payout_audit::table)
        .values(AuditEvent {
            id: new_id("pa"),
            run_id: Some(run.to_owned()),
            creator_id: None,
            line_id: line.map(str::to_owned),
            actor: actor.to_owned(),
            action: action.to_owned(),
            detail: detail.to_owned(),
            at: to_db(Utc::now()),
        })
        .execute(conn)?;
    Ok(())
}

/// Writes one audit event about a creator's payouts (a hold, a change of bank details).
pub fn audit_creator(
    conn: &mut DbConn,
    creator: &str,
    actor: &str,
    action: &str,
    detail: &str,
) -> QueryResult<()> {
    diesel::insert_into(payout_audit::table)
        .values(AuditEvent {
            id: new_id("pa"),
            run_id: None,
            creator_id: Some(creator.to_owned()),
            line_id: None,
            actor: actor.to_owned(),
            action: action.to_owned(),
            detail: detail.to_owned(),
            at: to_db(Utc::now()),
        })
        .execute(conn)?;
    Ok(())
}

impl AuditEvent {
    /// Oldest first, at most `limit`.
    pub fn of_run(conn: &mut DbConn, run: &str, limit: i64) -> QueryResult<Vec<AuditEvent>> {
        payout_audit::table
            .filter(payout_audit::run_id.eq(run))
            .order((payout_audit::at, payout_audit::id))
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(conn)
    }
}

/// Creators' available accounts by id after `after`, the next `limit`: (id, creator,
/// currency). A payout run is drawn a page of them at a time.
pub fn available_accounts_page(
    conn: &mut DbConn,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<(String, Option<String>, String)>> {
    let mut q = ledger_accounts::table
        .filter(ledger_accounts::kind.eq("creator_available"))
        .order(ledger_accounts::id)
        .limit(limit)
        .select((
            ledger_accounts::id,
            ledger_accounts::owner_id,
            ledger_accounts::currency,
        ))
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(ledger_accounts::id.gt(after.to_owned()));
    }
    q.load(conn)
}

/// Which available accounts a balance read covers: these ids, or (a draw's page) every id from
/// the first to the last in the database's own order.
#[derive(Clone, Copy)]
pub enum Accounts<'a> {
    Listed(&'a [String]),
    Between(&'a str, &'a str),
}

/// The available balance of each of these accounts by (creator, currency) (credit positive:
/// what we owe them), from the entries made before `until` (all when `None`) and every payout
/// posting whenever it was made: what was already paid out (or is in transit) is never owed
/// again, however early the cut-off. A thousand listed accounts per statement, each read by
/// index (entries and accounts alike).
pub fn available_balances(
    conn: &mut DbConn,
    until: Option<NaiveDateTime>,
    accounts: Accounts,
) -> QueryResult<BTreeMap<(String, String), i64>> {
    let mut found = BTreeMap::new();
    let mut add = |rows: Vec<(Option<String>, String, i64)>| {
        for (owner, currency, sum) in rows {
            if let Some(owner) = owner {
                *found.entry((owner, currency)).or_insert(0) -= sum;
            }
        }
    };
    match accounts {
        Accounts::Listed(ids) => {
            for chunk in ids.chunks(1000) {
                add(balance_rows(conn, until, Accounts::Listed(chunk), false)?);
                if until.is_some() {
                    add(balance_rows(conn, until, Accounts::Listed(chunk), true)?);
                }
            }
        }
        range => {
            add(balance_rows(conn, until, range, false)?);
            if until.is_some() {
                add(balance_rows(conn, until, range, true)?);
            }
        }
    }
    Ok(found)
}

/// Keeps a balance query to the accounts asked for, on entries and accounts alike (so both are
/// read by index).
macro_rules! only_accounts {
    ($q:expr, $accounts:expr) => {
        match $accounts {
            Accounts::Listed(ids) => $q
                .filter(ledger_entries::account_id.eq_any(ids.to_vec()))
                .filter(ledger_accounts::id.eq_any(ids.to_vec())),
            Accounts::Between(first, last) => $q
                .filter(ledger_entries::account_id.ge(first.to_owned()))
                .filter(ledger_entries::account_id.le(last.to_owned()))
                .filter(ledger_accounts::id.ge(first.to_owned()))
                .filter(ledger_accounts::id.le(last.to_owned())),
        }
    };
}

/// The sum per (creator, currency) column of a balance query.
type BalanceRow = (Option<String>, String, i64);

fn summed() -> diesel::expression::SqlLiteral<diesel::sql_types::BigInt> {
    diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "CAST(COALESCE(SUM(ledger_entries.amount_minor), 0) AS BIGINT)",
    )
}

/// Sums per (creator, currency) of the accounts' entries made before `until` (all when
/// `None`), or with `payouts_since`, of the payout postings made since `until`: two statements
/// rather than one with an `OR`, so the first never joins the ledger's transactions.
fn balance_rows(
    conn: &mut DbConn,
    until: Option<NaiveDateTime>,
    accounts: Accounts,
    payouts_since: bool,
) -> QueryResult<Vec<BalanceRow>> {
    let group = (ledger_accounts::owner_id, ledger_accounts::currency);
    if payouts_since {
        let Some(until) = until else {
            return Ok(Vec::new());
        };
        let q = ledger_entries::table
            .inner_join(ledger_accounts::table)
            .inner_join(ledger_transactions::table)
            .filter(ledger_accounts::kind.eq("creator_available"))
            .filter(ledger_entries::created_at.ge(until))
            .filter(ledger_transactions::source_key.like("payout:%"))
            .group_by(group)
            .select((
                ledger_accounts::owner_id,
                ledger_accounts::currency,
                summed(),
            ))
            .into_boxed();
        return only_accounts!(q, accounts).load(conn);
    }
    let mut q = ledger_entries::table
        .inner_join(ledger_accounts::table)
        .filter(ledger_accounts::kind.eq("creator_available"))
        .group_by(group)
        .select((
            ledger_accounts::owner_id,
            ledger_accounts::currency,
            summed(),
        ))
        .into_boxed();
    if let Some(until) = until {
        q = q.filter(ledger_entries::created_at.lt(until));
    }
    only_accounts!(q, accounts).load(conn)
}

/// Locks the creators' available accounts (PostgreSQL; SQLite's writer already excludes every
/// other), so no posting to them commits until this transaction does: an entry's foreign key
/// needs a lock on its account row that conflicts with this one.
pub fn lock_available(conn: &mut DbConn, account_ids: &[String]) -> QueryResult<()> {
    // One order for every locker, so two never wait on each other.
    let ids: std::collections::BTreeSet<&String> = account_ids.iter().collect();
    let ids: Vec<&String> = ids.into_iter().collect();
    if let DbConn::Pg(c) = conn {
        for chunk in ids.chunks(1000) {
            ledger_accounts::table
                .filter(ledger_accounts::id.eq_any(chunk))
                .order(ledger_accounts::id)
                .select(ledger_accounts::id)
                .for_update()
                .load::<String>(c)?;
        }
    }
    Ok(())
}
