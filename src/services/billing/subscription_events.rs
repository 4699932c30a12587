//! What Stripe's subscription state changes: `customer.subscription.*` events and the
//! subscriptions our own calls get back. Stripe is the source of truth for a subscription's
//! state; we keep the newest state we were told.
//!
//! Out of order: a subscription remembers the `created` of the event (or the time of the
//! answer) it last took its state from, and an older one does not overwrite a newer one.
//! Subscriptions we do not know (another service's customers on the same account) are
//! ignored.

use super::stripe_events::Applied;
use crate::db::models::catalog::{Price, Product};
use crate::db::models::donations::Donation;
use crate::db::models::subscriptions::Subscription;
use crate::db::models::users;
use crate::db::models::{from_db, to_db};
use crate::db::DbConn;
use crate::domain::entitlements::SubscriptionStatus;
use crate::domain::states::{DonationStatus, ProductKind};
use crate::error::AppError;
use crate::services::emails;
use crate::stripe::objects::{self, SubscriptionStatus as Stripe};
use chrono::{DateTime, Duration, Utc};

/// Our status for a Stripe subscription's state. Stripe's `canceled` means ended; a user's
/// cancellation shows as `cancel_at_period_end` and lasts to the period's end.
///
/// `incomplete` with a trial still to run counts as trialing: Stripe itself never reports
/// that combination (a trial starts `trialing`), but emulators such as localstripe do.
fn status_of(stripe: Stripe, cancel_at_period_end: bool, in_trial: bool) -> SubscriptionStatus {
    match (stripe, cancel_at_period_end) {
        (Stripe::Incomplete, _) if in_trial => SubscriptionStatus::Trialing,
        (Stripe::Trialing, _) => SubscriptionStatus::Trialing,
        (Stripe::Active, false) => SubscriptionStatus::Active,
        (Stripe::Active, true) => SubscriptionStatus::Canceled,
        (Stripe::PastDue, _) => SubscriptionStatus::PastDue,
        // canceled, unpaid, incomplete, incomplete_expired, paused: nothing is owed to the user.
        _ => SubscriptionStatus::Expired,
    }
}

fn time(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t, 0))
}

/// The end of the grace a failed renewal gives, counted from the failure `at` — never from
/// the period's end, which Stripe has already moved a whole period on when it charges.
pub fn grace_end(sub: &Subscription, at: DateTime<Utc>, grace_days: i64) -> chrono::NaiveDateTime {
    sub.grace_until
        .unwrap_or_else(|| to_db(at + Duration::days(grace_days)))
}

/// Applies Stripe's state of a subscription, told at `created` (an event's, or the time of
/// our call's answer) about something that happened at `at`.
pub fn changed(
    conn: &mut DbConn,
    created: i64,
    at: DateTime<Utc>,
    object: &objects::Subscription,
    grace_days: i64,
) -> Result<Applied, AppError> {
    if object.id.is_empty() {
        return Ok(Applied::ignored());
    }
    let ours = object
        .metadata
        .get("kopilka_subscription_id")
        .map(String::as_str);
    let found = match Subscription::by_stripe(conn, &object.id, ours)? {
        Some(found) => Some(found),
        None if Donation::by_stripe_subscription(conn, &object.id)?.is_some() => None,
        None => adopt(conn, object)?,
    };
    let Some((mut sub, holders)) = found else {
        return donation_changed(conn, object);
    };
    if sub.stripe_event_created.is_some_and(|seen| seen > created) {
        return Ok(Applied::default());
    }
    let in_trial = time(object.trial_end).is_some_and(|end| end > Utc::now());
    let status = status_of(object.status, object.cancel_at_period_end, in_trial);
    // Stripe never moves a subscription back to `incomplete`: at an equal timestamp, such an
    // event is the creation snapshot arriving after the payment that activated it.
    if object.status == Stripe::Incomplete && !in_trial && sub.status != SubscriptionStatus::Expired
    {
        return Ok(Applied::default());
    }
    if let Some((start, end)) = object.period() {
        if let (Some(start), Some(end)) = (time(Some(start)), time(Some(end))) {
            sub.current_period_start = to_db(start);
            sub.current_period_end = to_db(end);
        }
    }
    sub.trial_end = time(object.trial_end).map(to_db).or(sub.trial_end);
    if let Some(q) = object.quantity().and_then(|q| i32::try_from(q).ok()) {
        sub.quantity = q.max(1);
    }
    sub.cancel_at_period_end = object.cancel_at_period_end;
    sub.grace_until = match status {
        SubscriptionStatus::PastDue => Some(grace_end(&sub, at, grace_days)),
        _ => None,
    };
    // A plan change (an upgrade Stripe applied after its payment, or a downgrade applied at
    // period end) moves the item; a pending update is not applied yet.
    if let Some(plan) = object.plan_id().filter(|p| *p != sub.price_id) {
        if let Some(price) = Price::find(conn, plan)? {
            sub.price_id = price.id;
            sub.product_id = price.product_id;
        }
    }
    if sub.scheduled_price_id.as_deref() == Some(sub.price_id.as_str()) {
        sub.scheduled_price_id = None;
    }
    sub.status = status;
    sub.stripe_subscription_id = Some(object.id.clone());
    sub.stripe_event_created = Some(created);
    sub.save(conn)?;
    Ok(Applied::users(holders))
}

/// A subscription of ours (our customer, one of our plans) that we hold no record of: the
/// record is made again from Stripe's state rather than the event failing forever.
fn adopt(
    conn: &mut DbConn,
    object: &objects::Subscription,
) -> Result<Option<(Subscription, Vec<String>)>, AppError> {
    let Some(customer) = objects::id_of(&object.customer) else {
        return Ok(None);
    };
    let Some(user) = users::by_stripe_customer(conn, customer)? else {
        return Ok(None);
    };
    let Some(price) = object
        .plan_id()
        .map(|p| Price::find(conn, p))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    let is_plan =
        Product::find(conn, &price.product_id)?.is_some_and(|p| p.kind == ProductKind::Plan);
    if !is_plan {
        return Ok(None);
    }
    tracing::warn!(stripe = %object.id, %user, "a Stripe subscription of ours had no record: made again");
    let sub = Subscription::adopt(conn, &user, &price.product_id, &price.id, &object.id)?;
    Ok(Some((sub, vec![user])))
}

/// A monthly donation's subscription: ended at Stripe (`canceled`, `incomplete_expired`,
/// `unpaid`), it ends ours.
fn donation_changed(
    conn: &mut DbConn,
    object: &objects::Subscription,
) -> Result<Applied, AppError> {
    let Some(donation) = Donation::by_stripe_subscription(conn, &object.id)? else {
        return Ok(Applied::ignored());
    };
    let ended = matches!(
        object.status,
        Stripe::Canceled | Stripe::IncompleteExpired | Stripe::Unpaid
    );
    if ended && donation.status != DonationStatus::Canceled {
        super::donations::ended(conn, &donation.id)?;
    }
    Ok(Applied::default())
}

/// `customer.subscription.trial_will_end` (three days before): the reminder, once per trial
/// end (the periodic job sends the same one when Stripe does not).
pub fn trial_will_end(
    conn: &mut DbConn,
    object: &objects::Subscription,
) -> Result<Applied, AppError> {
    match Subscription::by_stripe(conn, &object.id, None)? {
        Some((sub, _)) => {
            trial_reminder(conn, &sub)?;
            Ok(Applied::default())
        }
        None => Ok(Applied::ignored()),
    }
}

/// Enqueues the trial-ending reminder for `sub` (deduplicated by subscription and trial end).
pub fn trial_reminder(conn: &mut DbConn, sub: &Subscription) -> Result<(), AppError> {
    let Some(end) = sub.trial_end else {
        return Ok(());
    };
    let price = Price::find(conn, &sub.price_id)?
        .map(|p| {
            let per = p.interval.map(|i| format!(" a {i}")).unwrap_or_default();
            format!(
                "{}{per}",
                crate::domain::money::display(
                    p.amount_minor * i64::from(sub.quantity),
                    &p.currency
                )
            )
        })
        .unwrap_or_default();
    emails::trial_ending(
        conn,
        &sub.user_id,
        &sub.id,
        &from_db(end).format("%Y-%m-%d").to_string(),
        &price,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_statuses_map_to_what_the_user_is_owed() {
        use SubscriptionStatus as Ours;
        assert_eq!(status_of(Stripe::Active, false, false), Ours::Active);
        assert_eq!(status_of(Stripe::Active, true, false), Ours::Canceled);
        assert_eq!(status_of(Stripe::PastDue, false, false), Ours::PastDue);
        assert_eq!(status_of(Stripe::Canceled, false, false), Ours::Expired);
        assert_eq!(status_of(Stripe::Incomplete, false, false), Ours::Expired);
        assert_eq!(status_of(Stripe::Incomplete, false, true), Ours::Trialing);
        assert_eq!(status_of(Stripe::Unknown, false, false), Ours::Expired);
    }
}
