//! Loads everything that may give users entitlements, for many users in one statement: the
//! entitlement cold path is a single round trip to the database.

use super::models::from_db;
use super::DbConn;
use crate::domain::entitlements::{
    Conferred, Holding, Instant, OrderStatus, Source, SourceKind, SubscriptionStatus, Terms,
};
use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp, Untyped};
use diesel::sqlite::Sqlite;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    holder: String,
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    t_from: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    t_until: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    t_trial: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    t_grace: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Text>)]
    ekey: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    value: Option<i64>,
}

/// Placeholders in the statement: `\u{1}U` the requested users, `\u{1}N` the current instant.
const MARK: char = '\u{1}';

/// `member` tests a column against the requested users. The owner of a per-seat subscription
/// holds it through a seat like everyone else.
fn statement(member: &str) -> String {
    format!(
        "SELECT 'subscription' AS kind, s.user_id AS holder, s.id AS id, s.status AS status, \
                s.current_period_start AS t_from, s.current_period_end AS t_until, \
                s.trial_end AS t_trial, s.grace_until AS t_grace, \
                pe.entitlement_key AS ekey, pe.value AS value \
         FROM subscriptions s JOIN products p ON p.id = s.product_id \
              LEFT JOIN plan_entitlements pe ON pe.product_id = s.product_id \
         WHERE s.user_id {member} AND s.status <> 'expired' AND p.per_seat = FALSE \
         UNION ALL \
         SELECT 'seat', a.user_id, s.id, s.status, s.current_period_start, s.current_period_end, \
                s.trial_end, s.grace_until, pe.entitlement_key, pe.value \
         FROM seat_assignments a JOIN subscriptions s ON s.id = a.subscription_id \
              JOIN products p ON p.id = s.product_id \
              LEFT JOIN plan_entitlements pe ON pe.product_id = s.product_id \
         WHERE a.user_id {member} AND s.status <> 'expired' AND p.per_seat = TRUE \
         UNION ALL \
         SELECT 'order', COALESCE(o.recipient_id, o.buyer_id), o.id, o.status, NULL, NULL, NULL, \
                NULL, 'sticker_pack:' || o.product_id, NULL \
         FROM orders o JOIN products p ON p.id = o.product_id \
         WHERE o.status = 'paid' AND p.kind = 'sticker_pack' \
           AND (o.recipient_id {member} OR (o.recipient_id IS NULL AND o.buyer_id {member})) \
           AND NOT EXISTS (SELECT 1 FROM packs k WHERE k.id = o.product_id AND k.state = 'removed') \
         UNION ALL \
         SELECT 'claim', c.user_id, c.pack_id, 'paid', NULL, NULL, NULL, NULL, \
                'sticker_pack:' || c.pack_id, NULL \
         FROM pack_claims c WHERE c.user_id {member} \
           AND NOT EXISTS (SELECT 1 FROM packs k WHERE k.id = c.pack_id AND k.state = 'removed') \
         UNION ALL \
         SELECT 'grant', g.user_id, g.id, NULL, g.starts_at, g.expires_at, NULL, NULL, \
                g.entitlement_key, g.value \
         FROM grants g \
         WHERE g.user_id {member} AND g.revoked_at IS NULL \
           AND (g.expires_at IS NULL OR g.expires_at > {MARK}N) \
         UNION ALL \
         SELECT 'user', u.id, u.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
         FROM users u WHERE u.id {member}"
    )
}

/// The holdings statement as a query diesel may prepare once per connection and reuse
/// (`sql_query` is re-planned on every call, which costs more than running it).
struct HoldingsQuery<'a> {
    sql: &'static str,
    users: &'a [String],
    users_json: String,
    now: NaiveDateTime,
}

impl QueryId for HoldingsQuery<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for HoldingsQuery<'_> {
    type SqlType = Untyped;
}

impl<C> RunQueryDsl<C> for HoldingsQuery<'_> {}

/// Pushes the SQL, binding each placeholder as `bind_users` or the instant says.
fn walk<'b, DB>(
    sql: &'b str,
    mut out: AstPass<'_, 'b, DB>,
    mut bind_users: impl FnMut(&mut AstPass<'_, 'b, DB>) -> QueryResult<()>,
    now: &'b NaiveDateTime,
) -> QueryResult<()>
where
    DB: Backend + diesel::sql_types::HasSqlType<Timestamp>,
    NaiveDateTime: diesel::serialize::ToSql<Timestamp, DB>,
{
    let mut pieces = sql.split(MARK);
    out.push_sql(pieces.next().unwrap_or_default());
    for piece in pieces {
        match piece.as_bytes().first() {
            Some(b'U') => bind_users(&mut out)?,
            _ => out.push_bind_param::<Timestamp, _>(now)?,
        }
        out.push_sql(&piece[1..]);
    }
    Ok(())
}

impl QueryFragment<Pg> for HoldingsQuery<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let users = self.users;
        walk(
            self.sql,
            out,
            |o| o.push_bind_param::<Array<Text>, _>(users),
            &self.now,
        )
    }
}

impl QueryFragment<Sqlite> for HoldingsQuery<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        let json = &self.users_json;
        walk(
            self.sql,
            out,
            |o| o.push_bind_param::<Text, _>(json),
            &self.now,
        )
    }
}

fn load_rows(conn: &mut DbConn, users: &[String], now: NaiveDateTime) -> QueryResult<Vec<Row>> {
    // Built once: the statement cache is keyed by this text.
    static PG: OnceLock<String> = OnceLock::new();
    static SQLITE: OnceLock<String> = OnceLock::new();
    match conn {
        DbConn::Pg(c) => HoldingsQuery {
            sql: PG.get_or_init(|| statement(&format!("= ANY({MARK}U)"))),
            users,
            users_json: String::new(),
            now,
        }
        .load(c),
        DbConn::Sqlite(c) => HoldingsQuery {
            sql: SQLITE
                .get_or_init(|| statement(&format!("IN (SELECT value FROM json_each({MARK}U))"))),
            users,
            users_json: serde_json::to_string(users).unwrap_or_else(|_| "[]".into()),
            now,
        }
        .load(c),
    }
}

/// What the database holds for a set of users.
#[derive(Default)]
pub struct Loaded {
    /// Everything each user holds; users holding nothing are absent.
    pub holdings: HashMap<String, Vec<Holding>>,
    /// The users already recorded.
    pub known: HashSet<String>,
}

/// Everything each of `users` holds, in one statement.
pub fn load(conn: &mut DbConn, users: &[String], now: Instant) -> QueryResult<Loaded> {
    let rows = load_rows(conn, users, now.naive_utc())?;
    let mut known = HashSet::new();
    let mut out: HashMap<String, Vec<Holding>> = HashMap::new();
    for row in rows {
        if row.kind == "user" {
            known.insert(row.holder);
            continue;
        }
        let Some(holding) = to_holding(&row) else {
            continue;
        };
        let held = out.entry(row.holder).or_default();
        let conferred = row.ekey.map(|key| Conferred {
            key,
            value: row.value,
        });
        match held.iter_mut().find(|h| h.source == holding.source) {
            Some(existing) => existing.confers.extend(conferred),
            None => {
                let mut holding = holding;
                holding.confers.extend(conferred);
                held.push(holding);
            }
        }
    }
    Ok(Loaded {
        holdings: out,
        known,
    })
}

fn to_holding(row: &Row) -> Option<Holding> {
    let (kind, terms) = match row.kind.as_str() {
        "subscription" | "seat" => (
            if row.kind == "seat" {
                SourceKind::Seat
            } else {
                SourceKind::Subscription
            },
            Terms::Subscription {
                status: SubscriptionStatus::parse(row.status.as_deref()?)?,
                period_start: from_db(row.t_from?),
                period_end: from_db(row.t_until?),
                trial_end: row.t_trial.map(from_db),
                grace_until: row.t_grace.map(from_db),
            },
        ),
        // A free pack claimed is an order of nothing: named by the pack's id.
        "order" | "claim" => (
            SourceKind::Order,
            Terms::Order {
                status: OrderStatus::parse(row.status.as_deref()?)?,
            },
        ),
        "grant" => (
            SourceKind::Grant,
            Terms::Grant {
                starts_at: from_db(row.t_from?),
                expires_at: row.t_until.map(from_db),
                revoked_at: None,
            },
        ),
        _ => return None,
    };
    Some(Holding {
        source: Source {
            kind,
            id: row.id.clone(),
        },
        terms,
        confers: Vec::new(),
    })
}
