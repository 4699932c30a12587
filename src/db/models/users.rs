use super::to_db;
use crate::db::schema::users;
use crate::db::DbConn;
use crate::domain::regions::Region;
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

/// Remembers where the user's receipts go.
pub fn set_email(conn: &mut DbConn, id: &str, email: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::email.eq(email))
        .execute(conn)?;
    Ok(())
}

/// Remembers where the user is (their identity token's `country`), for gifts to them; writes
/// only when it changed. The token seen first most recently wins (tokens say no order).
pub fn set_country(conn: &mut DbConn, id: &str, country: Region) -> QueryResult<()> {
    // A read first: most tokens say what the row says, and a read never waits for SQLite's
    // one writer.
    if self::country(conn, id)? == Some(country) {
        return Ok(());
    }
    ensure(conn, id)?;
    diesel::update(
        users::table.find(id).filter(
            users::country
                .is_null()
                .or(users::country.ne(country.as_str())),
        ),
    )
    .set(users::country.eq(country.as_str()))
    .execute(conn)?;
    Ok(())
}

/// Where the user was when their last token said; `None` when no token said.
pub fn country(conn: &mut DbConn, id: &str) -> QueryResult<Option<Region>> {
    Ok(users::table
        .find(id)
        .select(users::country)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten()
        .and_then(|c| Region::parse(&c)))
}

pub fn stripe_customer(conn: &mut DbConn, id: &str) -> QueryResult<Option<String>> {
    Ok(users::table
        .find(id)
        .select(users::stripe_customer_id)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// Records the user's Stripe customer unless one is recorded already; returns the one kept.
pub fn set_stripe_customer(conn: &mut DbConn, id: &str, customer: &str) -> QueryResult<String> {
    diesel::update(
        users::table
            .find(id)
            .filter(users::stripe_customer_id.is_null()),
    )
    .set(users::stripe_customer_id.eq(customer))
    .execute(conn)?;
    Ok(stripe_customer(conn, id)?.unwrap_or_else(|| customer.to_owned()))
}

/// The user whose Stripe customer this is.
pub fn by_stripe_customer(conn: &mut DbConn, customer: &str) -> QueryResult<Option<String>> {
    users::table
        .filter(users::stripe_customer_id.eq(customer))
        .select(users::id)
        .first(conn)
        .optional()
}
