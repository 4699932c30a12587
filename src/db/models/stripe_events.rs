//! Stripe events as received, deduplicated by Stripe's event id.

use super::to_db;
use crate::db::schema::stripe_events;
use crate::db::DbConn;
use crate::domain::states::EventOutcome;
use chrono::Utc;
use diesel::prelude::*;

/// Stores the event; `false` when it was stored before (a redelivery), in which case its
/// effects were applied then and must not be applied again.
pub fn record(
    conn: &mut DbConn,
    id: &str,
    event_type: &str,
    created: i64,
    api_version: Option<&str>,
    payload: &str,
) -> QueryResult<bool> {
    let row = (
        stripe_events::id.eq(id),
        stripe_events::api_version.eq(api_version),
        stripe_events::type_.eq(event_type),
        stripe_events::created.eq(created),
        stripe_events::payload.eq(payload),
        stripe_events::received_at.eq(to_db(Utc::now())),
    );
    let inserted = crate::db::insert_or_ignore!(conn, stripe_events::table, row)?;
    Ok(inserted == 1)
}

/// Marks a stored event as not concerning anything of ours (kept, acknowledged, not retried).
pub fn mark_ignored(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::update(stripe_events::table.find(id))
        .set(stripe_events::outcome.eq(EventOutcome::Ignored))
        .execute(conn)?;
    Ok(())
}

/// How an event was taken; `None` when it is not stored.
pub fn outcome(conn: &mut DbConn, id: &str) -> QueryResult<Option<EventOutcome>> {
    stripe_events::table
        .find(id)
        .select(stripe_events::outcome)
        .first(conn)
        .optional()
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    stripe_events::table.count().get_result(conn)
}

/// The `created` of the newest event we hold.
pub fn newest_created(conn: &mut DbConn) -> QueryResult<Option<i64>> {
    // The Connect endpoint's events (connected accounts' `account.updated`) arrive apart from
    // the platform's: they must not move the platform's window forward.
    stripe_events::table
        .filter(stripe_events::type_.ne("account.updated"))
        .select(diesel::dsl::max(stripe_events::created))
        .first(conn)
}
