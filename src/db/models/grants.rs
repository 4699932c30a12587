//! Grants: access given outside a purchase (grandfathering, support gestures).

use super::{new_id, to_db};
use crate::db::schema::grants;
use crate::db::DbConn;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = grants)]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub entitlement_key: String,
    pub value: Option<i64>,
    pub reason: String,
    pub granted_by: String,
    pub starts_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<String>,
    pub created_at: NaiveDateTime,
}

pub struct NewGrant {
    pub user_id: String,
    pub entitlement_key: String,
    pub value: Option<i64>,
    pub reason: String,
    pub granted_by: String,
    pub starts_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
}

impl Grant {
    pub fn create(conn: &mut DbConn, new: NewGrant) -> QueryResult<Grant> {
        let grant = Grant {
            id: new_id("grant"),
            user_id: new.user_id,
            entitlement_key: new.entitlement_key,
            value: new.value,
            reason: new.reason,
            granted_by: new.granted_by,
            starts_at: new.starts_at,
            expires_at: new.expires_at,
            revoked_at: None,
            revoked_by: None,
            created_at: to_db(Utc::now()),
        };
        diesel::insert_into(grants::table)
            .values(&grant)
            .execute(conn)?;
        Ok(grant)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Grant>> {
        grants::table
            .find(id)
            .select(Grant::as_select())
            .first(conn)
            .optional()
    }

    pub fn of_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<Grant>> {
        grants::table
            .filter(grants::user_id.eq(user_id))
            .order(grants::created_at.desc())
            .select(Grant::as_select())
            .load(conn)
    }

    /// Revokes once; revoking again keeps the first revocation.
    pub fn revoke(conn: &mut DbConn, id: &str, by: &str) -> QueryResult<Grant> {
        diesel::update(grants::table.find(id).filter(grants::revoked_at.is_null()))
            .set((
                grants::revoked_at.eq(to_db(Utc::now())),
                grants::revoked_by.eq(by),
            ))
            .execute(conn)?;
        grants::table
            .find(id)
            .select(Grant::as_select())
            .first(conn)
    }
}

/// Gives back what `by` revoked for `reason` and has not expired since (a gift whose dispute was
/// won): new grants with the same terms, so the revocation stays on record. Returns their users.
pub fn reinstate_for(conn: &mut DbConn, reason: &str, by: &str) -> QueryResult<Vec<String>> {
    let now = to_db(Utc::now());
    let revoked: Vec<Grant> = grants::table
        .filter(grants::reason.eq(reason))
        .filter(grants::revoked_by.eq(by))
        .filter(grants::expires_at.is_null().or(grants::expires_at.gt(now)))
        .select(Grant::as_select())
        .load(conn)?;
    let mut users = Vec::new();
    for g in revoked {
        users.push(g.user_id.clone());
        Grant::create(
            conn,
            NewGrant {
                user_id: g.user_id,
                entitlement_key: g.entitlement_key,
                value: g.value,
                reason: g.reason,
                granted_by: g.granted_by,
                starts_at: now,
                expires_at: g.expires_at,
            },
        )?;
    }
    Ok(users)
}

/// Revokes every live grant given for `reason` (a refunded gift's grants); returns their users.
pub fn revoke_for(conn: &mut DbConn, reason: &str, by: &str) -> QueryResult<Vec<String>> {
    let users: Vec<String> = grants::table
        .filter(grants::reason.eq(reason))
        .filter(grants::revoked_at.is_null())
        .select(grants::user_id)
        .load(conn)?;
    diesel::update(
        grants::table
            .filter(grants::reason.eq(reason))
            .filter(grants::revoked_at.is_null()),
    )
    .set((
        grants::revoked_at.eq(to_db(Utc::now())),
        grants::revoked_by.eq(by),
    ))
    .execute(conn)?;
    Ok(users)
}

/// Revokes every live grant of an entitlement (a removed pack's); returns their users.
pub fn revoke_key(conn: &mut DbConn, key: &str, by: &str) -> QueryResult<Vec<String>> {
    let live = grants::table
        .filter(grants::entitlement_key.eq(key))
        .filter(grants::revoked_at.is_null());
    let users: Vec<String> = live.select(grants::user_id).load(conn)?;
    diesel::update(live)
        .set((
            grants::revoked_at.eq(to_db(Utc::now())),
            grants::revoked_by.eq(by),
        ))
        .execute(conn)?;
    Ok(users)
}
