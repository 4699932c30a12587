//! Payments Stripe reported as succeeded: which charge paid for what, and the ledger posting
//! it made. Refunds and disputes of a charge find their payment here.

use super::{new_id, to_db};
use crate::db::schema::payments;
use crate::db::DbConn;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Default, Queryable, Selectable, Insertable)]
#[diesel(table_name = payments, treat_none_as_default_value = false)]
pub struct Payment {
    pub id: String,
    pub stripe_charge_id: String,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_invoice_id: Option<String>,
    pub user_id: String,
    pub order_id: Option<String>,
    pub donation_id: Option<String>,
    pub subscription_id: Option<String>,
    pub creator_id: Option<String>,
    pub amount_minor: i64,
    pub fee_minor: i64,
    pub creator_share_minor: i64,
    pub currency: String,
    pub refunded_minor: i64,
    pub ledger_transaction_id: String,
    pub created_at: NaiveDateTime,
    /// When `fee_minor` became Stripe's actual fee; `None` while it is still to be fetched.
    pub fee_settled_at: Option<NaiveDateTime>,
    /// Taken by disputes, less what won disputes gave back.
    pub disputed_minor: i64,
    /// When the creator's share left the hold (`None`: still pending, or no creator).
    pub released_at: Option<NaiveDateTime>,
    /// Settled into another currency's balance (`fee_minor` is in it then), with the gross in
    /// it; `None` when settled in `currency` or not known yet.
    pub settlement_currency: Option<String>,
    pub settlement_minor: Option<i64>,
    /// The creator's rule this payment was split by (basis points), and the sales channel that
    /// chose it (`None` for payments that are not sales through a channel).
    pub share_bps: Option<i32>,
    pub channel: Option<String>,
}

impl Payment {
    /// The fee as the event told it: known when the charge came with its balance transaction,
    /// else `None`, and the fee job asks Stripe later (`services::billing::fees`).
    pub fn with_fee(mut self, fee: Option<i64>) -> Payment {
        self.fee_minor = fee.unwrap_or(0);
        self.fee_settled_at = fee.map(|_| to_db(Utc::now()));
        self
    }

    /// Stores a new payment (`id` and `created_at` are set here) once per charge: `None` when
    /// the charge was recorded before.
    pub fn record_once(conn: &mut DbConn, mut p: Payment) -> QueryResult<Option<Payment>> {
        p.id = new_id("pay");
        p.created_at = to_db(Utc::now());
        let inserted = crate::db::insert_or_ignore!(conn, payments::table, &p)?;
        Ok((inserted == 1).then_some(p))
    }

    /// Payments whose fee is still to be fetched from Stripe, oldest first.
    pub fn fee_unsettled(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<Payment>> {
        payments::table
            .filter(payments::fee_settled_at.is_null())
            .order(payments::created_at.asc())
            .limit(limit)
            .select(Payment::as_select())
            .load(conn)
    }

    /// Sets Stripe's fee on a payment whose fee was unsettled; `false` when it was settled
    /// already (another instance's job got there first).
    /// `converted`: settled into another currency's balance, with the gross in it.
    pub fn settle_fee(
        conn: &mut DbConn,
        id: &str,
        fee: i64,
        converted: Option<(&str, i64)>,
    ) -> QueryResult<bool> {
        let n = diesel::update(
            payments::table
                .find(id)
                .filter(payments::fee_settled_at.is_null()),
        )
        .set((
            payments::fee_minor.eq(fee),
            payments::fee_settled_at.eq(to_db(Utc::now())),
            payments::settlement_currency.eq(converted.map(|c| c.0)),
            payments::settlement_minor.eq(converted.map(|c| c.1)),
        ))
        .execute(conn)?;
        Ok(n == 1)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Payment>> {
        payments::table
            .find(id)
            .select(Payment::as_select())
            .first(conn)
            .optional()
    }

    /// The payment, locked until the end of the transaction: reversals and the release read
    /// what was reversed so far and write after it, so two of them for one payment must not
    /// interleave (PostgreSQL `FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` already serializes).
    pub fn lock(conn: &mut DbConn, id: &str) -> QueryResult<Option<Payment>> {
        match conn {
            DbConn::Pg(c) => payments::table
                .find(id)
                .select(Payment::as_select())
                .for_update()
                .first(c)
                .optional(),
            DbConn::Sqlite(c) => payments::table
                .find(id)
                .select(Payment::as_select())
                .first(c)
                .optional(),
        }
    }

    /// The Stripe payment of an order (one per order: an order is paid once).
    pub fn by_order(conn: &mut DbConn, order: &str) -> QueryResult<Option<Payment>> {
        payments::table
            .filter(payments::order_id.eq(order))
            .select(Payment::as_select())
            .first(conn)
            .optional()
    }

    pub fn by_charge(conn: &mut DbConn, charge: &str) -> QueryResult<Option<Payment>> {
        payments::table
            .filter(payments::stripe_charge_id.eq(charge))
            .select(Payment::as_select())
            .first(conn)
            .optional()
    }

    /// What has gone back to the customer so far: refunds and disputes not won.
    pub fn reversed_minor(&self) -> i64 {
        self.refunded_minor + self.disputed_minor
    }

    /// Adds `amount` (negative: a failed refund given back) to what was refunded.
    pub fn add_refunded(conn: &mut DbConn, id: &str, amount: i64) -> QueryResult<()> {
        diesel::update(payments::table.find(id))
            .set(payments::refunded_minor.eq(payments::refunded_minor + amount))
            .execute(conn)?;
        Ok(())
    }

    /// Adds `amount` (negative: given back by a won dispute) to what disputes took.
    pub fn add_disputed(conn: &mut DbConn, id: &str, amount: i64) -> QueryResult<()> {
        diesel::update(payments::table.find(id))
            .set(payments::disputed_minor.eq(payments::disputed_minor + amount))
            .execute(conn)?;
        Ok(())
    }

    /// Creator payments still in their hold that were made at or before `cutoff`, oldest
    /// first.
    pub fn unreleased_before(
        conn: &mut DbConn,
        cutoff: NaiveDateTime,
        limit: i64,
    ) -> QueryResult<Vec<Payment>> {
        payments::table
            .filter(payments::creator_id.is_not_null())
            .filter(payments::released_at.is_null())
            .filter(payments::created_at.le(cutoff))
            .order(payments::created_at.asc())
            .limit(limit)
            .select(Payment::as_select())
            .load(conn)
    }

    /// Marks the payment's share released; `false` when it was already.
    pub fn mark_released(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
        let n = diesel::update(
            payments::table
                .find(id)
                .filter(payments::released_at.is_null()),
        )
        .set(payments::released_at.eq(to_db(Utc::now())))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// A creator's most recent sales and donations received.
    pub fn recent_of_creator(
        conn: &mut DbConn,
        creator: &str,
        limit: i64,
    ) -> QueryResult<Vec<Payment>> {
        payments::table
            .filter(payments::creator_id.eq(creator))
            .order(payments::created_at.desc())
            .limit(limit)
            .select(Payment::as_select())
            .load(conn)
    }
}
