//! What a Stripe event changes. Runs inside the transaction that stores the event, so an event
//! is applied exactly once; returns the users whose entitlements may have changed.
//!
//! Out of order: a subscription remembers the `created` of the event it last took its state
//! from, and an older event does not overwrite a newer one. Objects we do not know (another
//! service's customers on the same Stripe account) are ignored.

use crate::db::models::subscriptions::Subscription;
use crate::db::models::{from_db, to_db};
use crate::db::{self, DbConn};
use crate::domain::entitlements::SubscriptionStatus;
use crate::error::AppError;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// Our status for a Stripe subscription's state. Stripe's `canceled` means ended; a user's
/// cancellation shows as `cancel_at_period_end` and lasts to the period's end.
fn status_of(stripe_status: &str, cancel_at_period_end: bool) -> SubscriptionStatus {
    match (stripe_status, cancel_at_period_end) {
        ("trialing", _) => SubscriptionStatus::Trialing,
        ("active", false) => SubscriptionStatus::Active,
        ("active", true) => SubscriptionStatus::Canceled,
        ("past_due", _) => SubscriptionStatus::PastDue,
        // canceled, unpaid, incomplete, incomplete_expired, paused: nothing is owed to the user.
        _ => SubscriptionStatus::Expired,
    }
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_i64().and_then(|t| DateTime::from_timestamp(t, 0))
}

/// A period bound from the subscription, or from its first item (newer API versions).
fn period(object: &Value, field: &str) -> Option<DateTime<Utc>> {
    time(&object[field]).or_else(|| time(&object["items"]["data"][0][field]))
}

pub fn apply(
    conn: &mut DbConn,
    event_type: &str,
    created: i64,
    event: &Value,
    grace_days: i64,
) -> Result<Vec<String>, AppError> {
    match event_type {
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            subscription_changed(conn, created, &event["data"]["object"], grace_days)
        }
        _ => Ok(Vec::new()),
    }
}

fn subscription_changed(
    conn: &mut DbConn,
    created: i64,
    object: &Value,
    grace_days: i64,
) -> Result<Vec<String>, AppError> {
    let Some(stripe_id) = object["id"].as_str() else {
        return Ok(Vec::new());
    };
    let ours = object["metadata"]["kopilka_subscription_id"].as_str();
    let Some(mut sub) = Subscription::by_stripe(conn, stripe_id, ours)? else {
        return Ok(Vec::new());
    };
    if sub.stripe_event_created.is_some_and(|seen| seen > created) {
        return Ok(Vec::new());
    }
    let cancel_at_period_end = object["cancel_at_period_end"].as_bool().unwrap_or(false);
    let status = status_of(
        object["status"].as_str().unwrap_or(""),
        cancel_at_period_end,
    );
    if let (Some(start), Some(end)) = (
        period(object, "current_period_start"),
        period(object, "current_period_end"),
    ) {
        if end > start {
            sub.current_period_start = to_db(start);
            sub.current_period_end = to_db(end);
        }
    }
    sub.trial_end = time(&object["trial_end"]).map(to_db).or(sub.trial_end);
    if let Some(q) = object["quantity"]
        .as_i64()
        .and_then(|q| i32::try_from(q).ok())
    {
        sub.quantity = q.max(1);
    }
    sub.cancel_at_period_end = cancel_at_period_end;
    sub.grace_until = match status {
        // The grace period runs from the failed renewal, i.e. the end of the paid period.
        SubscriptionStatus::PastDue => sub.grace_until.or(Some(to_db(
            from_db(sub.current_period_end).max(Utc::now()) + Duration::days(grace_days),
        ))),
        _ => None,
    };
    sub.status = status.as_str().to_owned();
    sub.stripe_subscription_id = Some(stripe_id.to_owned());
    sub.stripe_event_created = Some(created);
    sub.save(conn)?;
    let affected = Subscription::affected_users(conn, &sub.id)?;
    let refs: Vec<&str> = affected.iter().map(String::as_str).collect();
    db::notify_changed(conn, &refs)?;
    Ok(affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_statuses_map_to_what_the_user_is_owed() {
        assert_eq!(status_of("active", false), SubscriptionStatus::Active);
        assert_eq!(status_of("active", true), SubscriptionStatus::Canceled);
        assert_eq!(status_of("past_due", false), SubscriptionStatus::PastDue);
        assert_eq!(status_of("canceled", false), SubscriptionStatus::Expired);
        assert_eq!(status_of("incomplete", false), SubscriptionStatus::Expired);
    }
}
