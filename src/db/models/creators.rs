//! Creators: users who sell sticker packs, each with their own revenue-share rule.

use super::to_db;
use crate::db::schema::creators;
use crate::db::DbConn;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = creators)]
pub struct Creator {
    pub user_id: String,
    pub display_name: String,
    /// The creator's share of each sale in basis points (7000 = 70 %); the platform keeps the rest.
    pub revenue_share_bps: i32,
    pub stripe_account_id: Option<String>,
    pub created_at: NaiveDateTime,
    /// ISO 3166-1 alpha-2, given when the creator registers.
    pub country: Option<String>,
    pub payout_currency: Option<String>,
    /// The share of sales through the creator's own link; `None`: the store's share.
    pub link_share_bps: Option<i32>,
}

impl Creator {
    pub fn find(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<Creator>> {
        creators::table
            .find(user_id)
            .select(Creator::as_select())
            .first(conn)
            .optional()
    }

    /// Registers the user as a creator, or changes their name and revenue share.
    pub fn upsert(
        conn: &mut DbConn,
        user_id: &str,
        display_name: &str,
        revenue_share_bps: i32,
    ) -> QueryResult<Creator> {
        if Self::find(conn, user_id)?.is_some() {
            diesel::update(creators::table.find(user_id))
                .set((
                    creators::display_name.eq(display_name),
                    creators::revenue_share_bps.eq(revenue_share_bps),
                ))
                .execute(conn)?;
        } else {
            diesel::insert_into(creators::table)
                .values(&Creator {
                    user_id: user_id.to_owned(),
                    display_name: display_name.to_owned(),
                    revenue_share_bps,
                    stripe_account_id: None,
                    created_at: to_db(Utc::now()),
                    country: None,
                    payout_currency: None,
                    link_share_bps: None,
                })
                .execute(conn)?;
        }
        creators::table
            .find(user_id)
            .select(Creator::as_select())
            .first(conn)
    }

    /// Changes what the creator says about themselves (absent fields stay).
    pub fn set_profile(
        conn: &mut DbConn,
        user_id: &str,
        display_name: Option<&str>,
        country: Option<&str>,
        payout_currency: Option<&str>,
    ) -> QueryResult<Creator> {
        if let Some(n) = display_name {
            diesel::update(creators::table.find(user_id))
                .set(creators::display_name.eq(n))
                .execute(conn)?;
        }
        if let Some(c) = country {
            diesel::update(creators::table.find(user_id))
                .set(creators::country.eq(c))
                .execute(conn)?;
        }
        if let Some(c) = payout_currency {
            diesel::update(creators::table.find(user_id))
                .set(creators::payout_currency.eq(c))
                .execute(conn)?;
        }
        creators::table
            .find(user_id)
            .select(Creator::as_select())
            .first(conn)
    }

    pub fn set_link_share(
        conn: &mut DbConn,
        user_id: &str,
        bps: Option<i32>,
    ) -> QueryResult<Creator> {
        diesel::update(creators::table.find(user_id))
            .set(creators::link_share_bps.eq(bps))
            .execute(conn)?;
        creators::table
            .find(user_id)
            .select(Creator::as_select())
            .first(conn)
    }
}
