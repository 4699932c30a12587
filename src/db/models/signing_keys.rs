//! Kopilka's own Ed25519 keys for entitlement tokens, shared by all instances through the database.

use super::to_db;
use crate::db::schema::signing_keys;
use crate::db::DbConn;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    /// PKCS#8 document, base64.
    pub private_key: String,
    /// Raw 32-byte public key, base64url (the JWK `x`).
    pub public_key: String,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

/// Keys still worth publishing: the active one and those retired after `published_since`.
pub fn published(
    conn: &mut DbConn,
    published_since: NaiveDateTime,
) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(
            signing_keys::retired_at
                .is_null()
                .or(signing_keys::retired_at.gt(published_since)),
        )
        .order(signing_keys::created_at.desc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// Retires the active key (if any) and makes `new` the active one, in one transaction that
/// concurrent rotations (on any instance) wait for, so exactly one key is active after each.
/// With `only_if_none`, does nothing when a key is already active (instances starting
/// together); returns whether `new` was made active.
pub fn rotate(conn: &mut DbConn, new: &SigningKeyRow, only_if_none: bool) -> QueryResult<bool> {
    conn.transaction(|conn| {
        match conn {
            // Rotations queue here; each then sees the key the one before it made.
            DbConn::Pg(c) => {
                diesel::sql_query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
                    .execute(c)?;
            }
            // The first write takes SQLite's one write lock (waiting up to busy_timeout).
            DbConn::Sqlite(_) => {}
        }
        let retired =
            diesel::update(signing_keys::table.filter(signing_keys::retired_at.is_null()))
                .set(signing_keys::retired_at.eq(to_db(Utc::now())))
                .execute(conn)?;
        if only_if_none && retired > 0 {
            // Undo the retirement: another instance made the key first.
            return Err(diesel::result::Error::RollbackTransaction);
        }
        diesel::insert_into(signing_keys::table)
            .values(new)
            .execute(conn)?;
        Ok(true)
    })
    .or_else(|e| match e {
        diesel::result::Error::RollbackTransaction => Ok(false),
        e => Err(e),
    })
}

pub fn active_count(conn: &mut DbConn) -> QueryResult<i64> {
    signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .count()
        .get_result(conn)
}
