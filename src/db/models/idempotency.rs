//! Stored responses of POSTs made with an `Idempotency-Key`.

use super::to_db;
use crate::db::schema::idempotency_keys;
use crate::db::DbConn;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
pub struct StoredKey {
    pub request_hash: String,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
}

/// A claim still without an answer after this long is abandoned (requests take seconds;
/// Stripe calls time out well within it).
pub const ABANDONED_AFTER_SECONDS: i64 = 300;

/// Claims `(scope, key)` for this request. `Ok(None)` means the claim is ours and the request
/// should run; `Ok(Some(stored))` means another request holds or held the key. A key first
/// used before `expired_before` is forgotten (whether or not the purge has run yet).
pub fn claim(
    conn: &mut DbConn,
    scope: &str,
    key: &str,
    request_hash: &str,
    expired_before: NaiveDateTime,
) -> QueryResult<Option<StoredKey>> {
    diesel::delete(
        idempotency_keys::table
            .find((scope, key))
            .filter(idempotency_keys::created_at.lt(expired_before)),
    )
    .execute(conn)?;
    // A claim without an answer long after it was made was abandoned (the process died, or
    // its answer could not be stored): the key runs again rather than "in progress" for a day.
    let abandoned = to_db(Utc::now() - chrono::Duration::seconds(ABANDONED_AFTER_SECONDS));
    diesel::delete(
        idempotency_keys::table
            .find((scope, key))
            .filter(idempotency_keys::status_code.is_null())
            .filter(idempotency_keys::created_at.lt(abandoned)),
    )
    .execute(conn)?;
    let row = (
        idempotency_keys::scope.eq(scope),
        idempotency_keys::key.eq(key),
        idempotency_keys::request_hash.eq(request_hash),
        idempotency_keys::created_at.eq(to_db(Utc::now())),
    );
    // The primary key makes the claim atomic: of concurrent requests exactly one inserts.
    let inserted = crate::db::insert_or_ignore!(conn, idempotency_keys::table, row)?;
    if inserted == 1 {
        return Ok(None);
    }
    find(conn, scope, key)
}

pub fn find(conn: &mut DbConn, scope: &str, key: &str) -> QueryResult<Option<StoredKey>> {
    idempotency_keys::table
        .find((scope, key))
        .select(StoredKey::as_select())
        .first(conn)
        .optional()
}

pub fn complete(
    conn: &mut DbConn,
    scope: &str,
    key: &str,
    status: u16,
    body: &str,
) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find((scope, key)))
        .set((
            idempotency_keys::status_code.eq(i32::from(status)),
            idempotency_keys::response_body.eq(body),
        ))
        .execute(conn)?;
    Ok(())
}

/// Frees a claim whose request failed before producing a response worth replaying.
pub fn release(conn: &mut DbConn, scope: &str, key: &str) -> QueryResult<()> {
    diesel::delete(idempotency_keys::table.find((scope, key))).execute(conn)?;
    Ok(())
}

/// Deletes answers first stored before `before`, oldest first, about `batch` at a time (all
/// of the last batch's instant go together); returns how many went.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
    let last: Option<NaiveDateTime> = idempotency_keys::table
        .filter(idempotency_keys::created_at.lt(before))
        .order(idempotency_keys::created_at.asc())
        .offset(batch - 1)
        .select(idempotency_keys::created_at)
        .first(conn)
        .optional()?;
    let upto = last.unwrap_or(before);
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::created_at.lt(before))
            .filter(idempotency_keys::created_at.le(upto)),
    )
    .execute(conn)
}
