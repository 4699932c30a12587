//! Service credentials for messenger servers: long random API keys, stored only as SHA-256.

use super::{new_id, to_db};
use crate::db::schema::service_credentials;
use crate::db::DbConn;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_credentials)]
pub struct ServiceCredential {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ServiceCredential {
    pub fn create(
        conn: &mut DbConn,
        name: &str,
        key_hash: String,
        created_by: &str,
    ) -> QueryResult<ServiceCredential> {
        let cred = ServiceCredential {
            id: new_id("cred"),
            name: name.to_owned(),
            key_hash,
            created_by: created_by.to_owned(),
            created_at: to_db(Utc::now()),
            revoked_at: None,
        };
        diesel::insert_into(service_credentials::table)
            .values(&cred)
            .execute(conn)?;
        Ok(cred)
    }

    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<ServiceCredential>> {
        service_credentials::table
            .order(service_credentials::created_at.asc())
            .select(ServiceCredential::as_select())
            .load(conn)
    }

    /// The live (not revoked) credential with this key hash.
    pub fn live_by_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<ServiceCredential>> {
        service_credentials::table
            .filter(service_credentials::key_hash.eq(hash))
            .filter(service_credentials::revoked_at.is_null())
            .select(ServiceCredential::as_select())
            .first(conn)
            .optional()
    }

    /// Every live credential's (key hash, id): a few per messenger deployment.
    pub fn live_hashes(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
        service_credentials::table
            .filter(service_credentials::revoked_at.is_null())
            .select((service_credentials::key_hash, service_credentials::id))
            .load(conn)
    }

    pub fn revoke(conn: &mut DbConn, id: &str) -> QueryResult<Option<ServiceCredential>> {
        diesel::update(
            service_credentials::table
                .find(id)
                .filter(service_credentials::revoked_at.is_null()),
        )
        .set(service_credentials::revoked_at.eq(to_db(Utc::now())))
        .execute(conn)?;
        service_credentials::table
            .find(id)
            .select(ServiceCredential::as_select())
            .first(conn)
            .optional()
    }
}
