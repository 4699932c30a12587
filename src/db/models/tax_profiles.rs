//! Creators' tax profiles (forms W-9 and W-8BEN as filed).

use crate::db::schema::creator_tax_profiles;
use crate::db::DbConn;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = creator_tax_profiles)]
#[diesel(treat_none_as_null = true)]
pub struct TaxProfile {
    pub creator_id: String,
    /// `us_person` (W-9) or `foreign` (W-8BEN).
    pub kind: String,
    pub legal_name: String,
    /// Kept whole for filing; never shown whole.
    pub tin: Option<String>,
    pub tin_type: Option<String>,
    pub country: String,
    pub treaty_rate_bps: Option<i32>,
    pub signed_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    /// `valid` or `rejected` (by finance; see `status_reason`).
    pub status: String,
    pub status_reason: Option<String>,
    pub updated_at: NaiveDateTime,
}

impl TaxProfile {
    pub fn find(conn: &mut DbConn, creator: &str) -> QueryResult<Option<TaxProfile>> {
        creator_tax_profiles::table
            .find(creator)
            .select(TaxProfile::as_select())
            .first(conn)
            .optional()
    }

    pub fn put(conn: &mut DbConn, profile: &TaxProfile) -> QueryResult<()> {
        let updated = diesel::update(creator_tax_profiles::table.find(&profile.creator_id))
            .set(profile)
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(creator_tax_profiles::table)
                .values(profile)
                .execute(conn)?;
        }
        Ok(())
    }

    pub fn set_status(
        conn: &mut DbConn,
        creator: &str,
        status: &str,
        reason: Option<&str>,
        at: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(creator_tax_profiles::table.find(creator))
            .set((
                creator_tax_profiles::status.eq(status),
                creator_tax_profiles::status_reason.eq(reason),
                creator_tax_profiles::updated_at.eq(at),
            ))
            .execute(conn)
    }

    pub fn all_of(
        conn: &mut DbConn,
        creators: &[String],
    ) -> QueryResult<BTreeMap<String, TaxProfile>> {
        super::by_creator(
            creators,
            |chunk| {
                creator_tax_profiles::table
                    .filter(creator_tax_profiles::creator_id.eq_any(chunk))
                    .select(TaxProfile::as_select())
                    .load(conn)
            },
            |a| &a.creator_id,
        )
    }
}
