//! What a Stripe event changes. Runs inside the transaction that stores the event, so an event
//! is applied exactly once; returns the users whose entitlements may have changed.
//!
//! Out of order: a subscription remembers the `created` of the event it last took its state
//! from, and an older event does not overwrite a newer one. Objects we do not know (another
//! service's customers on the same Stripe account) are ignored.

use crate::app::AppState;
use crate::db::models::stripe_events;
use crate::db::models::subscriptions::Subscription;
use crate::db::models::{from_db, to_db};
use crate::db::{self, DbConn};
use crate::domain::entitlements::SubscriptionStatus;
use crate::error::AppError;
use crate::services::{emails, payment_events};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Our status for a Stripe subscription's state. Stripe's `canceled` means ended; a user's
/// cancellation shows as `cancel_at_period_end` and lasts to the period's end.
///
/// `incomplete` with a trial still to run counts as trialing: Stripe itself never reports
/// that combination (a trial starts `trialing`), but emulators such as localstripe do.
fn status_of(
    stripe_status: &str,
    cancel_at_period_end: bool,
    in_trial: bool,
) -> SubscriptionStatus {
    match (stripe_status, cancel_at_period_end) {
        ("incomplete", _) if in_trial => SubscriptionStatus::Trialing,
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

/// What every Stripe event carries; the rest stays in the stored payload.
#[derive(serde::Deserialize)]
struct EventHead {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
}

/// Stores and applies one event (a verified webhook body, or one fetched by `sync`) in one
/// transaction; `false` when it was seen before. Caches of affected users are invalidated.
pub async fn receive(state: &AppState, body: &[u8]) -> Result<bool, AppError> {
    let payload = std::str::from_utf8(body)
        .map_err(|_| AppError::bad_request("invalid_body", "the event is not UTF-8"))?
        .to_owned();
    let whole: Value = crate::http::parse_json(body)?;
    let head = EventHead::deserialize(&whole)
        .map_err(|e| AppError::bad_request("invalid_body", format!("request body: {e}")))?;
    if head.id.is_empty() || head.id.len() > 255 || head.event_type.len() > 255 {
        return Err(AppError::bad_request(
            "invalid_body",
            "event id or type out of bounds",
        ));
    }
    let grace_days = state.settings.stripe.past_due_grace_days;
    let (new, affected) = db::transaction(&state.pool, move |conn| {
        let new = stripe_events::record(conn, &head.id, &head.event_type, head.created, &payload)?;
        // Stored and applied together: a redelivery finds the row and applies nothing.
        let affected = if new {
            apply(conn, &head.event_type, head.created, &whole, grace_days)?
        } else {
            Vec::new()
        };
        // Other instances drop these users' cached answers at commit.
        let refs: Vec<&str> = affected.iter().map(String::as_str).collect();
        db::notify_changed(conn, &refs)?;
        Ok((new, affected))
    })
    .await?;
    state.changed(&affected);
    Ok(new)
}

/// Fetches events created since the newest one we hold (less a margin for events created in
/// the same second) and feeds them through `receive`: recovery for failed deliveries.
/// Returns how many were new.
pub async fn sync(state: &AppState) -> Result<usize, AppError> {
    let gw = crate::services::purchases::gateway(state)?;
    let newest = db::run(&state.pool, |conn| Ok(stripe_events::newest_created(conn)?)).await?;
    let since = newest.unwrap_or(0) - 300;
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = gw
            .list_events(since, after.as_deref())
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        after = page
            .data
            .last()
            .and_then(|e| e["id"].as_str().map(str::to_owned));
        events.extend(page.data);
        if !page.has_more || after.is_none() {
            break;
        }
    }
    events.sort_by_key(|e| e["created"].as_i64().unwrap_or(0));
    let mut new = 0;
    for event in events {
        let body = serde_json::to_vec(&event).map_err(|e| AppError::Internal(e.into()))?;
        match receive(state, &body).await {
            Ok(true) => new += 1,
            Ok(false) => {}
            // Out of order within the page: the next sync gets it.
            Err(e) => tracing::warn!(error = %e, "stripe-sync: event not applied"),
        }
    }
    Ok(new)
}

pub fn apply(
    conn: &mut DbConn,
    event_type: &str,
    created: i64,
    event: &Value,
    grace_days: i64,
) -> Result<Vec<String>, AppError> {
    let object = &event["data"]["object"];
    match event_type {
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            subscription_changed(conn, created, object, grace_days)
        }
        "customer.subscription.trial_will_end" => trial_will_end(conn, object),
        "invoice.paid" | "invoice.payment_succeeded" => {
            payment_events::invoice_paid(conn, created, object)
        }
        "invoice.payment_failed" => {
            payment_events::invoice_failed(conn, created, object, grace_days)
        }
        "payment_intent.succeeded" => payment_events::intent_succeeded(conn, object),
        "payment_intent.payment_failed" => payment_events::intent_failed(conn, object),
        "charge.refunded" => payment_events::charge_refunded(conn, object),
        "charge.dispute.created" => payment_events::dispute_created(conn, object),
        "charge.dispute.closed" => payment_events::dispute_closed(conn, object),
        _ => Ok(Vec::new()),
    }
}

pub fn subscription_changed(
    conn: &mut DbConn,
    created: i64,
    object: &Value,
    grace_days: i64,
) -> Result<Vec<String>, AppError> {
    let Some(stripe_id) = object["id"].as_str() else {
        return Ok(Vec::new());
    };
    let ours = object["metadata"]["kopilka_subscription_id"].as_str();
    let Some((mut sub, holders)) = Subscription::by_stripe(conn, stripe_id, ours)? else {
        return Ok(Vec::new());
    };
    if sub.stripe_event_created.is_some_and(|seen| seen > created) {
        return Ok(Vec::new());
    }
    let cancel_at_period_end = object["cancel_at_period_end"].as_bool().unwrap_or(false);
    let stripe_status = object["status"].as_str().unwrap_or("");
    let in_trial = time(&object["trial_end"]).is_some_and(|end| end > Utc::now());
    let status = status_of(stripe_status, cancel_at_period_end, in_trial);
    // Stripe never moves a subscription back to `incomplete`: at an equal timestamp, such an
    // event is the creation snapshot arriving after the payment that activated it.
    if stripe_status == "incomplete" && !in_trial && sub.status != "expired" {
        return Ok(Vec::new());
    }
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
    // A plan change (upgrade now, or a downgrade applied at period end) moves the item.
    let item = &object["items"]["data"][0];
    let plan = item["plan"]["id"]
        .as_str()
        .or_else(|| item["price"]["id"].as_str())
        .or_else(|| object["plan"]["id"].as_str());
    if let Some(plan) = plan.filter(|p| *p != sub.price_id) {
        if let Some(price) = crate::db::models::catalog::Price::find(conn, plan)? {
            sub.price_id = price.id;
            sub.product_id = price.product_id;
        }
    }
    if sub.scheduled_price_id.as_deref() == Some(sub.price_id.as_str()) {
        sub.scheduled_price_id = None;
    }
    sub.status = status.as_str().to_owned();
    sub.stripe_subscription_id = Some(stripe_id.to_owned());
    sub.stripe_event_created = Some(created);
    sub.save(conn)?;
    Ok(holders)
}

/// `customer.subscription.trial_will_end` (three days before): the reminder, once per trial
/// end (the periodic job sends the same one when Stripe does not).
fn trial_will_end(conn: &mut DbConn, object: &Value) -> Result<Vec<String>, AppError> {
    let Some(stripe_id) = object["id"].as_str() else {
        return Ok(Vec::new());
    };
    if let Some((sub, _)) = Subscription::by_stripe(conn, stripe_id, None)? {
        trial_reminder(conn, &sub)?;
    }
    Ok(Vec::new())
}

/// Enqueues the trial-ending reminder for `sub` (deduplicated by subscription and trial end).
pub fn trial_reminder(conn: &mut DbConn, sub: &Subscription) -> Result<(), AppError> {
    let Some(end) = sub.trial_end else {
        return Ok(());
    };
    let price = crate::db::models::catalog::Price::find(conn, &sub.price_id)?;
    let price = price
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
        assert_eq!(
            status_of("active", false, false),
            SubscriptionStatus::Active
        );
        assert_eq!(
            status_of("active", true, false),
            SubscriptionStatus::Canceled
        );
        assert_eq!(
            status_of("past_due", false, false),
            SubscriptionStatus::PastDue
        );
        assert_eq!(
            status_of("canceled", false, false),
            SubscriptionStatus::Expired
        );
        assert_eq!(
            status_of("incomplete", false, false),
            SubscriptionStatus::Expired
        );
        assert_eq!(
            status_of("incomplete", false, true),
            SubscriptionStatus::Trialing
        );
    }
}
