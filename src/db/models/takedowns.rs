//! Takedowns: notices against packs, creators' appeals of decisions, the refunds a removal
//! owes its buyers, and the purge of a removed pack's images.

use super::{new_id, to_db};
use crate::db::schema::{pack_appeals, pack_notices, pack_purges, removal_refunds};
use crate::db::DbConn;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = pack_notices)]
pub struct Notice {
    pub id: String,
    pub pack_id: String,
    pub reporter_id: String,
    pub reason: String,
    pub claim: String,
    pub contact: String,
    /// `open`, `actioned` (the pack was removed or suspended) or `dismissed`.
    pub state: String,
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    pub created_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
}

impl Notice {
    pub fn create(
        conn: &mut DbConn,
        pack: &str,
        reporter: &str,
        reason: &str,
        claim: &str,
        contact: &str,
    ) -> QueryResult<Notice> {
        let notice = Notice {
            id: new_id("ntc"),
            pack_id: pack.to_owned(),
            reporter_id: reporter.to_owned(),
            reason: reason.to_owned(),
            claim: claim.to_owned(),
            contact: contact.to_owned(),
            state: "open".into(),
            decided_by: None,
            decision_note: None,
            created_at: to_db(Utc::now()),
            decided_at: None,
        };
        diesel::insert_into(pack_notices::table)
            .values(&notice)
            .execute(conn)?;
        Ok(notice)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Notice>> {
        pack_notices::table
            .find(id)
            .select(Notice::as_select())
            .first(conn)
            .optional()
    }

    /// Notices in `state`, oldest first, after the cursor `(created_at, id)`.
    pub fn in_state(
        conn: &mut DbConn,
        state: &str,
        after: Option<(NaiveDateTime, String)>,
        limit: i64,
    ) -> QueryResult<Vec<Notice>> {
        let mut q = pack_notices::table
            .filter(pack_notices::state.eq(state.to_owned()))
            .into_boxed();
        if let Some((at, id)) = after {
            q = q.filter(
                pack_notices::created_at
                    .gt(at)
                    .or(pack_notices::created_at.eq(at).and(pack_notices::id.gt(id))),
            );
        }
        q.order((pack_notices::created_at.asc(), pack_notices::id.asc()))
            .limit(limit)
            .select(Notice::as_select())
            .load(conn)
    }

    /// Decides the open notice `id` (`None` if it was not open), or every open notice of a
    /// pack when `id` is `None`.
    pub fn decide(
        conn: &mut DbConn,
        pack: &str,
        id: Option<&str>,
        state: &str,
        moderator: &str,
        note: Option<&str>,
    ) -> QueryResult<usize> {
        let set = (
            pack_notices::state.eq(state),
            pack_notices::decided_by.eq(moderator),
            pack_notices::decision_note.eq(note),
            pack_notices::decided_at.eq(to_db(Utc::now())),
        );
        let open = pack_notices::state.eq("open");
        match id {
            Some(id) => diesel::update(
                pack_notices::table
                    .filter(pack_notices::id.eq(id))
                    .filter(pack_notices::pack_id.eq(pack))
                    .filter(open),
            )
            .set(set)
            .execute(conn),
            None => diesel::update(
                pack_notices::table
                    .filter(pack_notices::pack_id.eq(pack))
                    .filter(open),
            )
            .set(set)
            .execute(conn),
        }
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = pack_appeals)]
pub struct Appeal {
    pub id: String,
    pub pack_id: String,
    /// The decision appealed (a pack event): one appeal per decision.
    pub event_id: String,
    pub creator_id: String,
    /// `appeal` or `counter_notice`.
    pub kind: String,
    /// The state the decision put the pack in.
    pub against: String,
    pub statement: String,
    /// `open`, `upheld` (the decision stands) or `reversed`.
    pub state: String,
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    pub created_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
}

impl Appeal {
    /// `None` when this decision was appealed before.
    pub fn create(conn: &mut DbConn, appeal: &Appeal) -> QueryResult<Option<Appeal>> {
        let n = crate::db::insert_or_ignore!(conn, pack_appeals::table, appeal)?;
        Ok((n == 1).then(|| appeal.clone()))
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Appeal>> {
        pack_appeals::table
            .find(id)
            .select(Appeal::as_select())
            .first(conn)
            .optional()
    }

    pub fn in_state(
        conn: &mut DbConn,
        state: &str,
        after: Option<(NaiveDateTime, String)>,
        limit: i64,
    ) -> QueryResult<Vec<Appeal>> {
        let mut q = pack_appeals::table
            .filter(pack_appeals::state.eq(state.to_owned()))
            .into_boxed();
        if let Some((at, id)) = after {
            q = q.filter(
                pack_appeals::created_at
                    .gt(at)
                    .or(pack_appeals::created_at.eq(at).and(pack_appeals::id.gt(id))),
            );
        }
        q.order((pack_appeals::created_at.asc(), pack_appeals::id.asc()))
            .limit(limit)
            .select(Appeal::as_select())
            .load(conn)
    }

    /// Decides an open appeal; `false` when it was decided already.
    pub fn decide(
        conn: &mut DbConn,
        id: &str,
        state: &str,
        moderator: &str,
        note: Option<&str>,
    ) -> QueryResult<bool> {
        let n = diesel::update(
            pack_appeals::table
                .filter(pack_appeals::id.eq(id))
                .filter(pack_appeals::state.eq("open")),
        )
        .set((
            pack_appeals::state.eq(state),
            pack_appeals::decided_by.eq(moderator),
            pack_appeals::decision_note.eq(note),
            pack_appeals::decided_at.eq(to_db(Utc::now())),
        ))
        .execute(conn)?;
        Ok(n == 1)
    }
}

/// A refund a removal owes the buyer of one order.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = removal_refunds)]
pub struct RemovalRefund {
    pub order_id: String,
    pub pack_id: String,
    pub state: String,
    pub attempts: i32,
    pub next_at: NaiveDateTime,
    pub stripe_refund_id: Option<String>,
    pub last_error: Option<String>,
}

impl RemovalRefund {
    /// Queues a refund for every paid order of the pack, once per order (a pack removed again
    /// after a reversal asks again for the refunds the reversal canceled).
    pub fn queue_for_pack(conn: &mut DbConn, pack: &str) -> QueryResult<usize> {
        use crate::db::schema::orders;
        use crate::domain::entitlements::OrderStatus;
        let now = to_db(Utc::now());
        let paid: Vec<String> = orders::table
            .filter(orders::product_id.eq(pack))
            .filter(orders::status.eq(OrderStatus::Paid))
            .select(orders::id)
            .load(conn)?;
        let known: std::collections::HashSet<String> = removal_refunds::table
            .filter(removal_refunds::pack_id.eq(pack))
            .select(removal_refunds::order_id)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let rows: Vec<_> = paid
            .iter()
            .filter(|id| !known.contains(*id))
            .map(|id| {
                (
                    removal_refunds::order_id.eq(id),
                    removal_refunds::pack_id.eq(pack),
                    removal_refunds::state.eq("pending"),
                    removal_refunds::attempts.eq(0),
                    removal_refunds::next_at.eq(now),
                    removal_refunds::created_at.eq(now),
                    removal_refunds::updated_at.eq(now),
                )
            })
            .collect();
        let mut n = 0;
        // In chunks: SQLite binds at most 32,766 values per statement.
        for chunk in rows.chunks(1000) {
            n += crate::db::insert_rows!(conn, removal_refunds::table, chunk.to_vec())?;
        }
        n += diesel::update(
            removal_refunds::table
                .filter(removal_refunds::pack_id.eq(pack))
                .filter(removal_refunds::state.eq("canceled")),
        )
        .set((
            removal_refunds::state.eq("pending"),
            removal_refunds::next_at.eq(now),
            removal_refunds::updated_at.eq(now),
        ))
        .execute(conn)?;
        Ok(n)
    }

    /// Refunds due now, oldest first.
    pub fn due(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<RemovalRefund>> {
        removal_refunds::table
            .filter(removal_refunds::state.eq("pending"))
            .filter(removal_refunds::next_at.le(to_db(Utc::now())))
            .order((
                removal_refunds::next_at.asc(),
                removal_refunds::order_id.asc(),
            ))
            .limit(limit)
            .select(RemovalRefund::as_select())
            .load(conn)
    }

    pub fn done(
        conn: &mut DbConn,
        order: &str,
        state: &str,
        refund: Option<&str>,
        error: Option<&str>,
    ) -> QueryResult<()> {
        diesel::update(removal_refunds::table.find(order))
            .set((
                removal_refunds::state.eq(state),
                removal_refunds::stripe_refund_id.eq(refund),
                removal_refunds::last_error.eq(error),
                removal_refunds::updated_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// Stripe could not be reached: tried again at `next`.
    pub fn retry(
        conn: &mut DbConn,
        order: &str,
        next: DateTime<Utc>,
        error: &str,
    ) -> QueryResult<()> {
        diesel::update(removal_refunds::table.find(order))
            .set((
                removal_refunds::attempts.eq(removal_refunds::attempts + 1),
                removal_refunds::next_at.eq(to_db(next)),
                removal_refunds::last_error.eq(error),
                removal_refunds::updated_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// A reversed removal: refunds not yet asked for are not asked for.
    pub fn cancel_pending(conn: &mut DbConn, pack: &str) -> QueryResult<usize> {
        diesel::update(
            removal_refunds::table
                .filter(removal_refunds::pack_id.eq(pack))
                .filter(removal_refunds::state.eq("pending")),
        )
        .set((
            removal_refunds::state.eq("canceled"),
            removal_refunds::updated_at.eq(to_db(Utc::now())),
        ))
        .execute(conn)
    }

    /// A pack's refunds, by order id, after `after`.
    pub fn of_pack(
        conn: &mut DbConn,
        pack: &str,
        after: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<RemovalRefund>> {
        let mut q = removal_refunds::table
            .filter(removal_refunds::pack_id.eq(pack.to_owned()))
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(removal_refunds::order_id.gt(a.to_owned()));
        }
        q.order(removal_refunds::order_id.asc())
            .limit(limit)
            .select(RemovalRefund::as_select())
            .load(conn)
    }
}

/// Schedules the purge of a removed pack's images.
pub fn schedule_purge(conn: &mut DbConn, pack: &str, after: DateTime<Utc>) -> QueryResult<()> {
    // A pack removed again after a reversal starts a new window.
    cancel_purge(conn, pack)?;
    diesel::insert_into(pack_purges::table)
        .values((
            pack_purges::pack_id.eq(pack),
            pack_purges::purge_after.eq(to_db(after)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Removed packs whose images are due to be purged.
pub fn purges_due(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<String>> {
    pack_purges::table
        .filter(pack_purges::purged_at.is_null())
        .filter(pack_purges::purge_after.le(to_db(Utc::now())))
        .order(pack_purges::purge_after.asc())
        .limit(limit)
        .select(pack_purges::pack_id)
        .load(conn)
}

pub fn purged(conn: &mut DbConn, pack: &str) -> QueryResult<()> {
    diesel::update(pack_purges::table.find(pack))
        .set(pack_purges::purged_at.eq(to_db(Utc::now())))
        .execute(conn)?;
    Ok(())
}

/// A reversed removal: the images stay.
pub fn cancel_purge(conn: &mut DbConn, pack: &str) -> QueryResult<()> {
    diesel::delete(pack_purges::table.filter(pack_purges::pack_id.eq(pack))).execute(conn)?;
    Ok(())
}
