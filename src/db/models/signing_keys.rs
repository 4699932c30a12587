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

/// Retires the active key (if any) and makes `new` the active one.
pub fn rotate(conn: &mut DbConn, new: &SigningKeyRow) -> QueryResult<()> {
    diesel::update(signing_keys::table.filter(signing_keys::retired_at.is_null()))
        .set(signing_keys::retired_at.eq(to_db(Utc::now())))
        .execute(conn)?;
    diesel::insert_into(signing_keys::table)
        .values(new)
        .execute(conn)?;
    Ok(())
}

pub fn active_count(conn: &mut DbConn) -> QueryResult<i64> {
    signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .count()
        .get_result(conn)
}
