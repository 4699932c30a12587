//! The email outbox: rows written in the transaction of what caused them, sent after commit.

use super::{new_id, to_db};
use crate::db::schema::outbox_emails;
use crate::db::DbConn;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = outbox_emails)]
pub struct OutboxEmail {
    pub id: String,
    pub dedupe_key: String,
    pub to_address: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// An email to send once per `dedupe_key` (a replayed event enqueues nothing new).
pub struct Email<'a> {
    pub dedupe_key: String,
    pub to: &'a str,
    pub kind: &'a str,
    pub subject: String,
    pub body: String,
}

pub fn enqueue(conn: &mut DbConn, email: Email<'_>) -> QueryResult<bool> {
    let now = to_db(Utc::now());
    let row = (
        outbox_emails::id.eq(new_id("eml")),
        outbox_emails::dedupe_key.eq(email.dedupe_key),
        outbox_emails::to_address.eq(email.to),
        outbox_emails::kind.eq(email.kind),
        outbox_emails::subject.eq(email.subject),
        outbox_emails::body.eq(email.body),
        outbox_emails::status.eq("pending"),
        outbox_emails::attempts.eq(0),
        outbox_emails::next_attempt_at.eq(now),
        outbox_emails::created_at.eq(now),
    );
    Ok(crate::db::insert_or_ignore!(conn, outbox_emails::table, row)? == 1)
}

pub fn due(conn: &mut DbConn, now: DateTime<Utc>, limit: i64) -> QueryResult<Vec<OutboxEmail>> {
    outbox_emails::table
        .filter(outbox_emails::status.eq("pending"))
        .filter(outbox_emails::next_attempt_at.le(to_db(now)))
        .order(outbox_emails::next_attempt_at.asc())
        .limit(limit)
        .select(OutboxEmail::as_select())
        .load(conn)
}

pub fn mark_sent(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::update(outbox_emails::table.find(id))
        .set((
            outbox_emails::status.eq("sent"),
            outbox_emails::sent_at.eq(to_db(Utc::now())),
            outbox_emails::attempts.eq(outbox_emails::attempts + 1),
        ))
        .execute(conn)?;
    Ok(())
}

/// A failed attempt: try again at `next`, or give up (`failed`) when `next` is `None`.
pub fn mark_failed(
    conn: &mut DbConn,
    id: &str,
    error: &str,
    next: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    let status = if next.is_some() { "pending" } else { "failed" };
    diesel::update(outbox_emails::table.find(id))
        .set((
            outbox_emails::status.eq(status),
            outbox_emails::attempts.eq(outbox_emails::attempts + 1),
            outbox_emails::last_error.eq(error),
            outbox_emails::next_attempt_at.eq(to_db(next.unwrap_or_else(Utc::now))),
        ))
        .execute(conn)?;
    Ok(())
}

/// Emails by kind for one address (operators and tests look here).
pub fn to_address(conn: &mut DbConn, to: &str) -> QueryResult<Vec<OutboxEmail>> {
    outbox_emails::table
        .filter(outbox_emails::to_address.eq(to))
        .order(outbox_emails::created_at.asc())
        .select(OutboxEmail::as_select())
        .load(conn)
}
