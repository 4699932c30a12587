//! Subscriptions and the seats of per-seat (team) subscriptions.

use super::{new_id, to_db};
use crate::db::schema::{seat_assignments, subscriptions};
use crate::db::DbConn;
use crate::domain::states::{DonationStatus, SubscriptionStatus};
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = subscriptions, treat_none_as_null = true)]
pub struct Subscription {
    pub id: String,
    pub user_id: String,
    pub product_id: String,
    pub price_id: String,
    pub status: SubscriptionStatus,
    pub quantity: i32,
    pub current_period_start: NaiveDateTime,
    pub current_period_end: NaiveDateTime,
    pub trial_end: Option<NaiveDateTime>,
    pub cancel_at_period_end: bool,
    pub grace_until: Option<NaiveDateTime>,
    pub canceled_at: Option<NaiveDateTime>,
    pub stripe_subscription_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub stripe_event_created: Option<i64>,
    /// A downgrade to apply at the end of the paid period.
    pub scheduled_price_id: Option<String>,
}

/// The fields that describe where a subscription stands; set together.
pub struct SubscriptionState {
    pub status: SubscriptionStatus,
    pub quantity: i32,
    pub current_period_start: NaiveDateTime,
    pub current_period_end: NaiveDateTime,
    pub trial_end: Option<NaiveDateTime>,
    pub cancel_at_period_end: bool,
    pub grace_until: Option<NaiveDateTime>,
}

impl Subscription {
    pub fn create(
        conn: &mut DbConn,
        user_id: &str,
        product_id: &str,
        price_id: &str,
        state: SubscriptionState,
    ) -> QueryResult<Subscription> {
        let now = to_db(Utc::now());
        let sub = Subscription {
            id: new_id("sub"),
            user_id: user_id.to_owned(),
            product_id: product_id.to_owned(),
            price_id: price_id.to_owned(),
            status: state.status,
            quantity: state.quantity,
            current_period_start: state.current_period_start,
            current_period_end: state.current_period_end,
            trial_end: state.trial_end,
            cancel_at_period_end: state.cancel_at_period_end,
            grace_until: state.grace_until,
            canceled_at: None,
            stripe_subscription_id: None,
            created_at: now,
            updated_at: now,
            stripe_event_created: None,
            scheduled_price_id: None,
        };
        diesel::insert_into(subscriptions::table)
            .values(&sub)
            .execute(conn)?;
        Ok(sub)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Subscription>> {
        subscriptions::table
            .find(id)
            .select(Subscription::as_select())
            .first(conn)
            .optional()
    }

    /// The subscription Stripe knows by `stripe_id`, or (first sight) the one we named in the
    /// Stripe subscription's metadata — with its holders (owner and seat holders, see
    /// `holders`), read in the same query: every webhook about it invalidates their caches.
    pub fn by_stripe(
        conn: &mut DbConn,
        stripe_id: &str,
        ours: Option<&str>,
    ) -> QueryResult<Option<(Subscription, Vec<String>)>> {
        let rows: Vec<(Subscription, Option<String>)> = subscriptions::table
            .left_join(seat_assignments::table)
            .filter(subscriptions::stripe_subscription_id.eq(stripe_id))
            .select((
                Subscription::as_select(),
                seat_assignments::user_id.nullable(),
            ))
            .load(conn)?;
        let mut holders: Vec<String> = rows.iter().filter_map(|(_, u)| u.clone()).collect();
        if let Some((sub, _)) = rows.into_iter().next() {
            holders.push(sub.user_id.clone());
            return Ok(Some((sub, holders)));
        }
        let Some(id) = ours else { return Ok(None) };
        match Self::find(conn, id)?.filter(|s| s.stripe_subscription_id.is_none()) {
            Some(sub) => {
                let holders = sub.holders(conn)?;
                Ok(Some((sub, holders)))
            }
            None => Ok(None),
        }
    }

    /// Currencies Stripe bills the user in: their live Stripe subscriptions' and monthly
    /// donations' (Stripe keeps one currency per customer for recurring billing).
    pub fn billing_currencies(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<String>> {
        use crate::db::schema::{donations, prices};
        let price_ids: Vec<String> = subscriptions::table
            .filter(subscriptions::user_id.eq(user_id))
            .filter(subscriptions::stripe_subscription_id.is_not_null())
            .filter(subscriptions::status.ne(SubscriptionStatus::Expired))
            .select(subscriptions::price_id)
            .load(conn)?;
        let mut currencies: Vec<String> = prices::table
            .filter(prices::id.eq_any(&price_ids))
            .select(prices::currency)
            .load(conn)?;
        currencies.extend(
            donations::table
                .filter(donations::donor_id.eq(user_id))
                .filter(donations::recurring.eq(true))
                .filter(donations::stripe_subscription_id.is_not_null())
                .filter(donations::status.eq_any([DonationStatus::Pending, DonationStatus::Active]))
                .select(donations::currency)
                .load::<String>(conn)?,
        );
        currencies.sort();
        currencies.dedup();
        Ok(currencies)
    }

    /// A subscription Stripe holds for one of our users that we have no record of (lost, or
    /// never written): ours again, as a placeholder that Stripe's state then fills.
    pub fn adopt(
        conn: &mut DbConn,
        user_id: &str,
        product_id: &str,
        price_id: &str,
        stripe_id: &str,
    ) -> QueryResult<Subscription> {
        let now = Utc::now();
        let mut sub = Self::create(
            conn,
            user_id,
            product_id,
            price_id,
            SubscriptionState {
                status: SubscriptionStatus::Expired,
                quantity: 1,
                // Until Stripe's state is applied: grants nothing.
                current_period_start: to_db(now - chrono::Duration::seconds(1)),
                current_period_end: to_db(now),
                trial_end: None,
                cancel_at_period_end: false,
                grace_until: None,
            },
        )?;
        sub.stripe_subscription_id = Some(stripe_id.to_owned());
        Ok(sub)
    }

    pub fn of_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<Subscription>> {
        subscriptions::table
            .filter(subscriptions::user_id.eq(user_id))
            .order(subscriptions::created_at.desc())
            .select(Subscription::as_select())
            .load(conn)
    }

    /// Trialing subscriptions whose trial ends before `before` (and has not ended).
    pub fn trials_ending_before(
        conn: &mut DbConn,
        before: chrono::DateTime<Utc>,
    ) -> QueryResult<Vec<Subscription>> {
        subscriptions::table
            .filter(subscriptions::status.eq(SubscriptionStatus::Trialing))
            .filter(subscriptions::trial_end.le(to_db(before)))
            .filter(subscriptions::trial_end.gt(to_db(Utc::now())))
            .select(Subscription::as_select())
            .load(conn)
    }

    /// Stripe-billed subscriptions with a downgrade due: their period ends before `before`.
    /// Scheduled downgrades of live subscriptions whose period ends before `before`, oldest
    /// first, skipping those waiting for a retry after `now`. An ended or canceled
    /// subscription has nothing to downgrade: it leaves the queue.
    pub fn downgrades_due(
        conn: &mut DbConn,
        before: chrono::DateTime<Utc>,
        now: chrono::DateTime<Utc>,
        limit: i64,
    ) -> QueryResult<Vec<Subscription>> {
        use crate::db::schema::downgrade_retries;
        let waiting = downgrade_retries::table
            .filter(downgrade_retries::subscription_id.eq(subscriptions::id))
            .filter(downgrade_retries::retry_at.gt(to_db(now)));
        subscriptions::table
            .filter(diesel::dsl::not(diesel::dsl::exists(waiting)))
            .filter(subscriptions::scheduled_price_id.is_not_null())
            .filter(subscriptions::stripe_subscription_id.is_not_null())
            .filter(subscriptions::current_period_end.le(to_db(before)))
            .filter(subscriptions::status.ne(SubscriptionStatus::Expired))
            .filter(subscriptions::status.ne(SubscriptionStatus::Canceled))
            .order(subscriptions::current_period_end.asc())
            .limit(limit)
            .select(Subscription::as_select())
            .load(conn)
    }

    /// A downgrade that failed: tried again after a backoff that doubles per attempt (`billing.retry_base_seconds`,
    /// then twice that, … at most six hours).
    pub fn downgrade_failed(
        conn: &mut DbConn,
        id: &str,
        error: &str,
        now: chrono::DateTime<Utc>,
        base: chrono::Duration,
    ) -> QueryResult<i32> {
        use crate::db::schema::downgrade_retries as r;
        let attempts = r::table
            .find(id)
            .select(r::attempts)
            .first::<i32>(conn)
            .optional()?
            .unwrap_or(0)
            + 1;
        let wait = (base * (1i32 << (attempts - 1).clamp(0, 20))).min(chrono::Duration::hours(6));
        let retry_at = to_db(now + wait);
        let error: String = error.chars().take(500).collect();
        diesel::delete(r::table.find(id)).execute(conn)?;
        diesel::insert_into(r::table)
            .values((
                r::subscription_id.eq(id),
                r::attempts.eq(attempts),
                r::retry_at.eq(retry_at),
                r::last_error.eq(error),
            ))
            .execute(conn)?;
        Ok(attempts)
    }

    /// How many times the subscription's downgrade has failed so far.
    pub fn downgrade_attempts(conn: &mut DbConn, id: &str) -> QueryResult<i32> {
        use crate::db::schema::downgrade_retries as r;
        Ok(r::table
            .find(id)
            .select(r::attempts)
            .first::<i32>(conn)
            .optional()?
            .unwrap_or(0))
    }

    /// The downgrade went through (or is no longer wanted): no retry pending.
    pub fn downgrade_settled(conn: &mut DbConn, id: &str) -> QueryResult<()> {
        use crate::db::schema::downgrade_retries as r;
        diesel::delete(r::table.find(id)).execute(conn)?;
        Ok(())
    }

    pub fn set_scheduled_price(
        conn: &mut DbConn,
        id: &str,
        price: Option<&str>,
    ) -> QueryResult<Subscription> {
        diesel::update(subscriptions::table.find(id))
            .set((
                subscriptions::scheduled_price_id.eq(price),
                subscriptions::updated_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)?;
        subscriptions::table
            .find(id)
            .select(Subscription::as_select())
            .first(conn)
    }

    /// Removes a subscription whose purchase failed before Stripe billed anything.
    pub fn delete_unpaid(conn: &mut DbConn, id: &str) -> QueryResult<()> {
        diesel::delete(
            subscriptions::table
                .find(id)
                .filter(subscriptions::stripe_subscription_id.is_null()),
        )
        .execute(conn)?;
        Ok(())
    }

    /// Writes the whole row back (status changes, period moves, cancellation).
    pub fn save(&mut self, conn: &mut DbConn) -> QueryResult<()> {
        self.updated_at = to_db(Utc::now());
        if self.status == SubscriptionStatus::Canceled && self.canceled_at.is_none() {
            self.canceled_at = Some(self.updated_at);
        }
        diesel::update(subscriptions::table.find(&self.id))
            .set(&*self)
            .execute(conn)?;
        Ok(())
    }

    pub fn seat_holders(conn: &mut DbConn, id: &str) -> QueryResult<Vec<String>> {
        seat_assignments::table
            .filter(seat_assignments::subscription_id.eq(id))
            .order(seat_assignments::assigned_at.asc())
            .select(seat_assignments::user_id)
            .load(conn)
    }

    pub fn assign_seat(conn: &mut DbConn, id: &str, user_id: &str) -> QueryResult<()> {
        diesel::insert_into(seat_assignments::table)
            .values((
                seat_assignments::subscription_id.eq(id),
                seat_assignments::user_id.eq(user_id),
                seat_assignments::assigned_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// Returns whether the user held a seat.
    pub fn remove_seat(conn: &mut DbConn, id: &str, user_id: &str) -> QueryResult<bool> {
        let n = diesel::delete(
            seat_assignments::table
                .filter(seat_assignments::subscription_id.eq(id))
                .filter(seat_assignments::user_id.eq(user_id)),
        )
        .execute(conn)?;
        Ok(n > 0)
    }

    /// Everyone whose entitlements depend on this subscription, when it is at hand.
    pub fn holders(&self, conn: &mut DbConn) -> QueryResult<Vec<String>> {
        let mut users = Self::seat_holders(conn, &self.id)?;
        users.push(self.user_id.clone());
        Ok(users)
    }

    /// Everyone whose entitlements depend on this subscription: its owner and seat holders.
    pub fn affected_users(conn: &mut DbConn, id: &str) -> QueryResult<Vec<String>> {
        let mut users = Self::seat_holders(conn, id)?;
        if let Some(sub) = Self::find(conn, id)? {
            users.push(sub.user_id);
        }
        Ok(users)
    }
}
