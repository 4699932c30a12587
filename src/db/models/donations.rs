//! Donations: one-off or monthly, to the platform or to a creator.

use super::{new_id, to_db};
use crate::db::schema::donations;
use crate::db::DbConn;
use crate::domain::states::DonationStatus;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = donations)]
pub struct Donation {
    pub id: String,
    pub donor_id: String,
    /// `None`: to the platform.
    pub creator_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    /// Monthly (a Stripe subscription) rather than once.
    pub recurring: bool,
    pub message: Option<String>,
    /// Hidden from the creator's view of their supporters.
    pub anonymous: bool,
    pub status: DonationStatus,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub struct NewDonation {
    pub donor_id: String,
    pub creator_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub recurring: bool,
    pub message: Option<String>,
    pub anonymous: bool,
}

impl Donation {
    pub fn create(conn: &mut DbConn, new: NewDonation) -> QueryResult<Donation> {
        let now = to_db(Utc::now());
        let d = Donation {
            id: new_id("don"),
            donor_id: new.donor_id,
            creator_id: new.creator_id,
            amount_minor: new.amount_minor,
            currency: new.currency,
            recurring: new.recurring,
            message: new.message,
            anonymous: new.anonymous,
            status: DonationStatus::Pending,
            stripe_payment_intent_id: None,
            stripe_subscription_id: None,
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(donations::table)
            .values(&d)
            .execute(conn)?;
        Ok(d)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Donation>> {
        donations::table
            .find(id)
            .select(Donation::as_select())
            .first(conn)
            .optional()
    }

    pub fn by_payment_intent(conn: &mut DbConn, pi: &str) -> QueryResult<Option<Donation>> {
        donations::table
            .filter(donations::stripe_payment_intent_id.eq(pi))
            .select(Donation::as_select())
            .first(conn)
            .optional()
    }

    pub fn by_stripe_subscription(conn: &mut DbConn, sub: &str) -> QueryResult<Option<Donation>> {
        donations::table
            .filter(donations::stripe_subscription_id.eq(sub))
            .select(Donation::as_select())
            .first(conn)
            .optional()
    }

    pub fn set_stripe(
        conn: &mut DbConn,
        id: &str,
        payment_intent: Option<&str>,
        subscription: Option<&str>,
    ) -> QueryResult<()> {
        diesel::update(donations::table.find(id))
            .set((
                donations::stripe_payment_intent_id.eq(payment_intent),
                donations::stripe_subscription_id.eq(subscription),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn set_status(conn: &mut DbConn, id: &str, status: DonationStatus) -> QueryResult<()> {
        diesel::update(donations::table.find(id))
            .set((
                donations::status.eq(status),
                donations::updated_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn of_donor(conn: &mut DbConn, donor: &str) -> QueryResult<Vec<Donation>> {
        donations::table
            .filter(donations::donor_id.eq(donor))
            .order(donations::created_at.desc())
            .select(Donation::as_select())
            .load(conn)
    }
}
