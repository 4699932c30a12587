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
    pub claimed_by: Option<String>,
    /// One text attachment: (file name, content).
    pub attachment_name: Option<String>,
    pub attachment: Option<String>,
}

/// Enqueues an email to a user's address, if they have one, in one statement (the address is
/// read by the insert itself). Once per `dedupe_key`: a replayed event enqueues nothing new.
pub fn enqueue_to_user(
    conn: &mut DbConn,
    user_id: &str,
    dedupe_key: String,
    kind: &str,
    subject: String,
    body: String,
) -> QueryResult<bool> {
    use crate::db::schema::users;
    use diesel::dsl::sql;
    use diesel::sql_types::{Integer, Text, Timestamp};
    let now = to_db(Utc::now());
    let source = users::table
        .filter(users::id.eq(user_id))
        .filter(users::email.is_not_null())
        .select((
            new_id("eml").into_sql::<Text>(),
            dedupe_key.into_sql::<Text>(),
            sql::<Text>("email"),
            kind.into_sql::<Text>(),
            subject.into_sql::<Text>(),
            body.into_sql::<Text>(),
            "pending".into_sql::<Text>(),
            0.into_sql::<Integer>(),
            now.into_sql::<Timestamp>(),
            now.into_sql::<Timestamp>(),
        ));
    let columns = (
        outbox_emails::id,
        outbox_emails::dedupe_key,
        outbox_emails::to_address,
        outbox_emails::kind,
        outbox_emails::subject,
        outbox_emails::body,
        outbox_emails::status,
        outbox_emails::attempts,
        outbox_emails::next_attempt_at,
        outbox_emails::created_at,
    );
    let inserted = match conn {
        DbConn::Pg(c) => source
            .insert_into(outbox_emails::table)
            .into_columns(columns)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => source
            .insert_into(outbox_emails::table)
            .into_columns(columns)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(inserted == 1)
}

/// Gives the pending email enqueued under `dedupe_key` a text attachment (a statement's CSV),
/// in the transaction that enqueued it.
pub fn attach(conn: &mut DbConn, dedupe_key: &str, name: &str, content: &str) -> QueryResult<()> {
    diesel::update(
        outbox_emails::table
            .filter(outbox_emails::dedupe_key.eq(dedupe_key))
            .filter(outbox_emails::status.eq("pending")),
    )
    .set((
        outbox_emails::attachment_name.eq(name),
        outbox_emails::attachment.eq(content),
    ))
    .execute(conn)?;
    Ok(())
}

/// Claims up to `limit` due emails for `claimant` until `lease_until` and returns them. Of
/// instances claiming at once, each email goes to exactly one: the claim is one guarded
/// update (row locks on PostgreSQL, the one writer on SQLite), and a claimed email is not due
/// again until its lease ends (a claimant that died meanwhile: at-least-once, see `mailer`).
pub fn claim_due(
    conn: &mut DbConn,
    claimant: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<OutboxEmail>> {
    let due = |now| {
        outbox_emails::table
            .filter(outbox_emails::status.eq("pending"))
            .filter(outbox_emails::next_attempt_at.le(to_db(now)))
    };
    let ids: Vec<String> = due(now)
        .order(outbox_emails::next_attempt_at.asc())
        .limit(limit)
        .select(outbox_emails::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(due(now).filter(outbox_emails::id.eq_any(&ids)))
        .set((
            outbox_emails::claimed_by.eq(claimant),
            outbox_emails::next_attempt_at.eq(to_db(lease_until)),
        ))
        .execute(conn)?;
    outbox_emails::table
        .filter(outbox_emails::id.eq_any(&ids))
        .filter(outbox_emails::claimed_by.eq(claimant))
        .filter(outbox_emails::next_attempt_at.eq(to_db(lease_until)))
        .filter(outbox_emails::status.eq("pending"))
        .order(outbox_emails::created_at.asc())
        .select(OutboxEmail::as_select())
        .load(conn)
}

/// Marks a batch sent in one statement.
pub fn mark_sent(conn: &mut DbConn, ids: &[String]) -> QueryResult<()> {
    diesel::update(outbox_emails::table.filter(outbox_emails::id.eq_any(ids)))
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
