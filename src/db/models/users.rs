use super::to_db;
use crate::db::schema::users;
use crate::db::DbConn;
use diesel::prelude::*;

/// Records a user the first time we see their `sub`; a no-op afterwards, also under races
/// (`ON CONFLICT DO NOTHING` never aborts a surrounding PostgreSQL transaction).
pub fn ensure(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    let row = (
        users::id.eq(id),
        users::created_at.eq(to_db(chrono::Utc::now())),
    );
    crate::db::insert_or_ignore!(conn, users::table, row)?;
    Ok(())
}

pub fn exists(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    Ok(users::table
        .find(id)
        .select(users::id)
        .first::<String>(conn)
        .optional()?
        .is_some())
}
