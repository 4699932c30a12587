//! The emails Kopilka sends, written to the outbox in the transaction of what caused them.
//! Users without a known address get none (messenger accounts may have no email).

use crate::db::models::outbox;
use crate::db::DbConn;
use crate::domain::money::display;
use diesel::QueryResult;

fn to_user(
    conn: &mut DbConn,
    user: &str,
    dedupe_key: String,
    kind: &str,
    subject: String,
    body: String,
) -> QueryResult<()> {
    outbox::enqueue_to_user(conn, user, dedupe_key, kind, subject, body)?;
    Ok(())
}

/// A receipt for a payment (subscription, pack, gift, donation), once per Stripe charge.
pub fn receipt(
    conn: &mut DbConn,
    user: &str,
    charge: &str,
    what: &str,
    amount: i64,
    currency: &str,
) -> QueryResult<()> {
    let amount = display(amount, currency);
    to_user(
        conn,
        user,
        format!("receipt:{charge}"),
        "receipt",
        format!("Your receipt: {what}"),
        format!("Thank you. We received {amount} for {what}.\n\nPayment reference: {charge}\n"),
    )
}

pub fn payment_failed(conn: &mut DbConn, user: &str, key: &str, what: &str) -> QueryResult<()> {
    to_user(
        conn,
        user,
        format!("payment_failed:{key}"),
        "payment_failed",
        format!("Your payment for {what} failed"),
        format!(
            "We could not take the payment for {what}. Please update your payment method in the app; \
             your access continues during the grace period.\n"
        ),
    )
}

/// An upgrade whose payment failed: the plan stays as it was (Stripe keeps the change pending
/// until it is paid or expires); once per invoice attempt.
pub fn plan_change_failed(conn: &mut DbConn, user: &str, key: &str, what: &str) -> QueryResult<()> {
    to_user(
        conn,
        user,
        format!("plan_change_failed:{key}"),
        "plan_change_failed",
        format!("Your change of {what} could not be paid"),
        format!(
            "We could not take the payment for the change of {what}. You keep your current plan; \
             try again from the app with another payment method.\n"
        ),
    )
}

/// A renewal the bank wants the customer to authenticate (3-D Secure): a link to Stripe's
/// hosted invoice page, where they can; once per invoice.
pub fn action_required(
    conn: &mut DbConn,
    user: &str,
    invoice: &str,
    what: &str,
    link: &str,
) -> QueryResult<()> {
    to_user(
        conn,
        user,
        format!("action_required:{invoice}"),
        "action_required",
        format!("Please confirm your payment for {what}"),
        format!(
            "Your bank asks you to confirm the payment for {what}. Confirm it here:\n\n{link}\n\n\
             Your access continues while you do.\n"
        ),
    )
}

pub fn trial_ending(
    conn: &mut DbConn,
    user: &str,
    subscription: &str,
    ends: &str,
    price: &str,
) -> QueryResult<()> {
    to_user(
        conn,
        user,
        format!("trial_ending:{subscription}:{ends}"),
        "trial_ending",
        "Your free trial ends soon".to_owned(),
        format!(
            "Your trial ends on {ends}. After that you will be charged {price} unless you cancel in the app.\n"
        ),
    )
}

pub fn gift_received(
    conn: &mut DbConn,
    recipient: &str,
    order: &str,
    what: &str,
    message: Option<&str>,
) -> QueryResult<()> {
    let note = message
        .map(|m| format!("\nTheir message: {m}\n"))
        .unwrap_or_default();
    to_user(
        conn,
        recipient,
        format!("gift:{order}"),
        "gift_received",
        format!("You received a gift: {what}"),
        format!("Someone sent you {what}. It is ready in the app.\n{note}"),
    )
}

/// A moderator decided on a creator's pack (sent with every decision: approval, rejection with
/// its reasons, suspension).
pub fn pack_decision(
    conn: &mut DbConn,
    creator: &str,
    pack: &str,
    title: &str,
    to: crate::domain::states::PackState,
    note: Option<&str>,
) -> QueryResult<()> {
    let note = note
        .map(|n| format!("\nThe moderator's note: {n}\n"))
        .unwrap_or_default();
    to_user(
        conn,
        creator,
        format!("pack:{pack}:{to}:{}", chrono::Utc::now().timestamp_micros()),
        "pack_decision",
        format!("Your sticker pack \"{title}\" is {to}"),
        format!(
            "A moderator reviewed your sticker pack \"{title}\" ({pack}): it is now {to}.\n{note}"
        ),
    )
}
