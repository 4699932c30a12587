//! Payments Stripe reports: subscription invoices paid or failed, orders and donations paid —
//! with their ledger postings and emails — and what a reversal of a payment revokes or
//! restores. Runs inside the transaction that stores the event (see `stripe_events`).
//!
//! A payment is recorded once per charge (`ch_…`: refunds and disputes name it), so two
//! events about one charge (`invoice.paid` and `invoice.payment_succeeded`) post once.

use super::stripe_events::Applied;
use super::subscription_events::grace_end;
use crate::db::models::catalog::Product;
use crate::db::models::creators::Creator;
use crate::db::models::donations::Donation;
use crate::db::models::grants::{self, Grant, NewGrant};
use crate::db::models::ledger as ledger_db;
use crate::db::models::orders::Order;
use crate::db::models::payments::Payment;
use crate::db::models::subscriptions::Subscription;
use crate::db::models::{new_id, to_db, users};
use crate::db::DbConn;
use crate::domain::entitlements::SubscriptionStatus;
use crate::domain::ledger::{self, CreatorShare};
use crate::domain::money::{split_revenue, Currency};
use crate::domain::states::{DonationStatus, OrderKind, OrderStatus, SalesChannel};
use crate::error::AppError;
use crate::services::emails;
use crate::stripe::objects::{id_of, ChargeRef, Invoice, Metadata, PaymentIntent, Settlement};
use chrono::{DateTime, Duration, Utc};

pub(super) fn out_of_order(what: &str) -> AppError {
    AppError::conflict(
        "event_out_of_order",
        format!("{what} is not known yet; Stripe will deliver this event again"),
    )
}

pub(super) fn posting_error(e: ledger::PostingError) -> AppError {
    AppError::Internal(anyhow::anyhow!("ledger posting: {e}"))
}

pub(super) fn currency(code: &str) -> Result<Currency, AppError> {
    Currency::parse(&code.to_ascii_uppercase())
        .map_err(|e| AppError::bad_request("invalid_event", e))
}

/// Whether a Stripe object with this customer, metadata and intent is ours (a customer of
/// ours, our ids in its metadata, or an intent one of our orders or donations made). Events
/// about objects of ours we have not recorded yet are retried; others are ignored.
pub(super) fn is_ours(
    conn: &mut DbConn,
    customer: Option<&str>,
    metadata: &Metadata,
    intent: Option<&str>,
) -> Result<bool, AppError> {
    if metadata.keys().any(|k| k.starts_with("kopilka_")) {
        return Ok(true);
    }
    if let Some(c) = customer {
        if users::by_stripe_customer(conn, c)?.is_some() {
            return Ok(true);
        }
    }
    if let Some(pi) = intent {
        if Order::by_payment_intent(conn, pi)?.is_some()
            || Donation::by_payment_intent(conn, pi)?.is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The creator's share of a payment, and where it sits now.
fn creator_share(payment: &Payment) -> Option<CreatorShare<'_>> {
    payment.creator_id.as_deref().map(|creator| CreatorShare {
        creator,
        share: payment.creator_share_minor,
        released: payment.released_at.is_some(),
    })
}

/// Posts `amount` of `payment` going back to the customer (negative: coming back to us),
/// with the shares taken back cumulatively, once by `key`; `false` when it was posted before.
pub(super) fn post_reversal(
    conn: &mut DbConn,
    payment: &Payment,
    amount: i64,
    key: &str,
    what: &str,
) -> Result<bool, AppError> {
    let reversal = ledger::Reversal {
        amount,
        fee: 0,
        gross: payment.amount_minor,
        before: payment.reversed_minor(),
        creator: creator_share(payment),
    };
    let from = currency(&payment.currency)?;
    let lines = ledger::taken_back(reversal, &from).map_err(posting_error)?;
    if !matches!(
        ledger_db::post(conn, key, what, &lines)?,
        ledger_db::Posted::New(_)
    ) {
        return Ok(false);
    }
    // A charge Stripe converted into another currency's balance: what leaves (or comes back)
    // is converted back at the charge's own rate, so clearing in each currency stays what
    // Stripe holds in it (see `fees`).
    if let (Some(to), Some(settled)) = (&payment.settlement_currency, payment.settlement_minor) {
        let back = ledger::settled_part(reversal.before, amount, reversal.gross, settled);
        let lines =
            ledger::conversion(-amount, &from, -back, &currency(to)?).map_err(posting_error)?;
        ledger_db::post(
            conn,
            &format!("fx:{key}"),
            &format!("{what}, converted back"),
            &lines,
        )?;
    }
    Ok(true)
}

/// Who earns from a payment, by which rule: the creator's share for the channel the sale was
/// made through.
struct CreatorRule {
    id: String,
    bps: u16,
    channel: Option<SalesChannel>,
}

fn creator_rule(
    conn: &mut DbConn,
    creator: Option<&str>,
    channel: Option<SalesChannel>,
) -> Result<Option<CreatorRule>, AppError> {
    let Some(id) = creator else { return Ok(None) };
    let found = Creator::find(conn, id)?;
    let bps = match (&found, channel) {
        (None, _) => 0,
        (Some(c), Some(SalesChannel::CreatorLink)) => {
            c.link_share_bps.unwrap_or(c.revenue_share_bps)
        }
        (Some(c), _) => c.revenue_share_bps,
    };
    Ok(Some(CreatorRule {
        id: id.to_owned(),
        bps: u16::try_from(bps.clamp(0, 10_000)).unwrap_or(0),
        channel,
    }))
}

/// Stripe's fee when the event told it in the payment's own currency. A fee in another
/// (settlement) currency is not booked in the payment's currency: the fee job settles it.
fn fee_in(settlement: Option<&Settlement>, currency: &Currency) -> Option<i64> {
    settlement
        .filter(|s| s.currency.is_empty() || s.currency == currency.as_str())
        .map(|s| s.fee)
}

/// Posts a received payment and records it; `None` when this charge was posted before.
fn record_payment(
    conn: &mut DbConn,
    mut payment: Payment,
    settlement: Option<&Settlement>,
    creator: Option<CreatorRule>,
    description: &str,
) -> Result<Option<Payment>, AppError> {
    let currency = currency(&payment.currency)?;
    payment.currency = currency.to_string();
    payment = payment.with_fee(fee_in(settlement, &currency));
    let (gross, fee) = (payment.amount_minor, payment.fee_minor);
    let mut description = description.to_owned();
    let lines = match &creator {
        Some(rule) => {
            payment.creator_share_minor = split_revenue(gross, rule.bps).0;
            payment.share_bps = Some(i32::from(rule.bps));
            payment.channel = rule.channel.map(|c| c.to_string());
            // The posting says which rule split it, so a later change of the rule explains
            // nothing away.
            description.push_str(&format!(
                " (creator share {} bps{})",
                rule.bps,
                rule.channel.map(|c| format!(", {c}")).unwrap_or_default()
            ));
            ledger::creator_sale(gross, fee, &currency, &rule.id, rule.bps)
        }
        None => ledger::platform_sale(gross, fee, &currency),
    }
    .map_err(posting_error)?;
    payment.creator_id = creator.map(|rule| rule.id);
    // The payment's unique charge id is what keeps a charge from being recorded twice; its
    // posting (source key `charge:<id>`) is written only with a new payment row.
    payment.ledger_transaction_id = new_id("ltx");
    let Some(payment) = Payment::record_once(conn, payment)? else {
        return Ok(None);
    };
    let key = format!("charge:{}", payment.stripe_charge_id);
    ledger_db::post_unseen(
        conn,
        &payment.ledger_transaction_id,
        &key,
        &description,
        &lines,
    )?;
    Ok(Some(payment))
}

/// `invoice.paid` / `invoice.payment_succeeded`: a subscription (or monthly donation) paid.
/// `charge` is the charge that paid it (from the event, or fetched from Stripe); `owner` our
/// id from its subscription's metadata, fetched when the invoice does not carry it.
pub fn invoice_paid(
    conn: &mut DbConn,
    created: i64,
    invoice: &Invoice,
    charge: Option<ChargeRef>,
    owner: Option<&str>,
) -> Result<Applied, AppError> {
    let Some(stripe_sub) = invoice.subscription_id() else {
        return Ok(Applied::ignored());
    };
    let amount = invoice.amount_paid;
    // Paid without a charge (from the customer's balance, or nothing to pay): no fee.
    let (charge_id, settlement) = match charge {
        Some(c) => (c.id, c.fee),
        None => (format!("invoice:{}", invoice.id), None),
    };
    let ours = invoice.our_subscription_id().or(owner);
    if let Some((mut sub, holders)) = Subscription::by_stripe(conn, stripe_sub, ours)? {
        sub.stripe_subscription_id = Some(stripe_sub.to_owned());
        // A trial's $0 invoice pays for nothing: the trial stays a trial.
        let trial_invoice = amount == 0 && sub.status == SubscriptionStatus::Trialing;
        if sub.stripe_event_created.is_none_or(|seen| created >= seen) && !trial_invoice {
            sub.status = if sub.cancel_at_period_end {
                SubscriptionStatus::Canceled
            } else {
                SubscriptionStatus::Active
            };
            sub.grace_until = None;
            if let Some((s, e)) = invoice.period() {
                if let (Some(s), Some(e)) = (
                    DateTime::from_timestamp(s, 0),
                    DateTime::from_timestamp(e, 0),
                ) {
                    if to_db(e) >= sub.current_period_end {
                        sub.current_period_start = to_db(s);
                        sub.current_period_end = to_db(e);
                    }
                }
            }
            sub.stripe_event_created = Some(created);
            sub.save(conn)?;
        }
        if amount > 0 {
            let payment = Payment {
                stripe_charge_id: charge_id.clone(),
                stripe_invoice_id: Some(invoice.id.clone()),
                stripe_payment_intent_id: invoice.payment_intent_id().map(str::to_owned),
                user_id: sub.user_id.clone(),
                subscription_id: Some(sub.id.clone()),
                amount_minor: amount,
                currency: invoice.currency.clone(),
                ..Default::default()
            };
            let what = format!("subscription {}", sub.product_id);
            if let Some(p) = record_payment(conn, payment, settlement.as_ref(), None, &what)? {
                emails::receipt(conn, &sub.user_id, &charge_id, &what, amount, &p.currency)?;
            }
        }
        return Ok(Applied::users(holders));
    }
    let donation = match Donation::by_stripe_subscription(conn, stripe_sub)? {
        Some(d) => Some(d),
        None => match ours {
            Some(id) => Donation::find(conn, id)?.filter(|d| d.stripe_subscription_id.is_none()),
            None => None,
        },
    };
    if let Some(donation) = donation {
        Donation::set_stripe(
            conn,
            &donation.id,
            donation.stripe_payment_intent_id.as_deref(),
            Some(stripe_sub),
        )?;
        if amount > 0 {
            let paid = Paid {
                charge: &charge_id,
                settlement,
                amount,
                intent: invoice.payment_intent_id(),
                invoice: Some(&invoice.id),
            };
            donation_paid(conn, &donation, paid)?;
        }
        if donation.status == DonationStatus::Pending {
            Donation::set_status(conn, &donation.id, DonationStatus::Active)?;
        }
        return Ok(Applied::default());
    }
    // One of ours, but a subscription we have not recorded yet (the event overtook the
    // purchase's last write): ask Stripe to deliver it again rather than lose the payment.
    let customer = id_of(&invoice.customer);
    if amount > 0 && (ours.is_some() || is_ours(conn, customer, &Metadata::new(), None)?) {
        return Err(out_of_order(&format!("subscription {stripe_sub}")));
    }
    Ok(Applied::ignored())
}

/// A payment as Stripe reported it.
struct Paid<'a> {
    charge: &'a str,
    settlement: Option<Settlement>,
    amount: i64,
    intent: Option<&'a str>,
    invoice: Option<&'a str>,
}

fn donation_paid(conn: &mut DbConn, donation: &Donation, paid: Paid<'_>) -> Result<(), AppError> {
    let Paid {
        charge,
        settlement,
        amount,
        intent,
        invoice,
    } = paid;
    let creator = creator_rule(conn, donation.creator_id.as_deref(), None)?;
    let payment = Payment {
        stripe_charge_id: charge.to_owned(),
        stripe_payment_intent_id: intent.map(str::to_owned),
        stripe_invoice_id: invoice.map(str::to_owned),
        user_id: donation.donor_id.clone(),
        donation_id: Some(donation.id.clone()),
        amount_minor: amount,
        currency: donation.currency.clone(),
        ..Default::default()
    };
    let what = match &donation.creator_id {
        Some(c) => format!("your donation to {c}"),
        None => "your donation to Kopilka".to_owned(),
    };
    if let Some(p) = record_payment(conn, payment, settlement.as_ref(), creator, &what)? {
        emails::receipt(conn, &donation.donor_id, charge, &what, amount, &p.currency)?;
    }
    Ok(())
}

/// `invoice.payment_failed`: a renewal failed; the subscription is past due and keeps its
/// entitlements for the grace period, counted from the failed attempt `at`.
pub fn invoice_failed(
    conn: &mut DbConn,
    created: i64,
    at: DateTime<Utc>,
    invoice: &Invoice,
    grace_days: i64,
) -> Result<Applied, AppError> {
    let Some(stripe_sub) = invoice.subscription_id() else {
        return Ok(Applied::ignored());
    };
    let Some((mut sub, holders)) = Subscription::by_stripe(conn, stripe_sub, None)? else {
        return Ok(Applied::ignored());
    };
    let key = format!("{}:{}", invoice.id, invoice.attempt_count.max(1));
    // An upgrade's proration (`pending_if_incomplete`): Stripe leaves the subscription on its
    // paid plan with the change pending, so nothing is overdue and nothing changes here.
    if invoice.billing_reason.as_deref() == Some("subscription_update") {
        let what = format!("subscription {}", sub.product_id);
        emails::plan_change_failed(conn, &sub.user_id, &key, &what)?;
        return Ok(Applied::users(Vec::new()));
    }
    if sub.stripe_event_created.is_none_or(|seen| created >= seen)
        && sub.status != SubscriptionStatus::Expired
    {
        sub.status = SubscriptionStatus::PastDue;
        sub.grace_until = Some(grace_end(&sub, at, grace_days));
        sub.stripe_event_created = Some(created);
        sub.save(conn)?;
    }
    emails::payment_failed(
        conn,
        &sub.user_id,
        &key,
        &format!("subscription {}", sub.product_id),
    )?;
    Ok(Applied::users(holders))
}

/// `invoice.payment_action_required`: the bank asks the customer to authenticate (3-D
/// Secure) a renewal; they are mailed the hosted invoice page, where they can.
pub fn action_required(conn: &mut DbConn, invoice: &Invoice) -> Result<Applied, AppError> {
    let Some(stripe_sub) = invoice.subscription_id() else {
        return Ok(Applied::ignored());
    };
    let Some((sub, _)) = Subscription::by_stripe(conn, stripe_sub, None)? else {
        return Ok(Applied::ignored());
    };
    let link = invoice.hosted_invoice_url.as_deref().unwrap_or_default();
    emails::action_required(
        conn,
        &sub.user_id,
        &invoice.id,
        &format!("subscription {}", sub.product_id),
        link,
    )?;
    Ok(Applied::default())
}

/// `payment_intent.succeeded`: an order (pack, gift) or a one-off donation is paid.
pub fn intent_succeeded(conn: &mut DbConn, intent: &PaymentIntent) -> Result<Applied, AppError> {
    let pi = intent.id.as_str();
    let amount = intent.amount_received.unwrap_or(intent.amount);
    let (charge, settlement) = match intent.charge() {
        Some(c) => (c.id, c.fee),
        None => (format!("intent:{pi}"), None),
    };
    // By the intent's id, or by our id in its metadata when the event overtook our write of
    // the intent's id.
    let order = match Order::by_payment_intent(conn, pi)? {
        Some(o) => Some(o),
        None => match intent.metadata.get("kopilka_order_id") {
            Some(id) => Order::find(conn, id)?.filter(|o| o.stripe_payment_intent_id.is_none()),
            None => None,
        },
    };
    if let Some(order) = order {
        Order::set_payment_intent(conn, &order.id, pi)?;
        return order_paid(conn, order, &charge, settlement, amount, pi);
    }
    let donation = match Donation::by_payment_intent(conn, pi)? {
        Some(d) => Some(d),
        None => match intent.metadata.get("kopilka_donation_id") {
            Some(id) => Donation::find(conn, id)?.filter(|d| d.stripe_payment_intent_id.is_none()),
            None => None,
        },
    };
    let Some(donation) = donation else {
        return Ok(Applied::ignored());
    };
    Donation::set_stripe(conn, &donation.id, Some(pi), None)?;
    if donation.status == DonationStatus::Pending {
        Donation::set_status(conn, &donation.id, DonationStatus::Paid)?;
    }
    let paid = Paid {
        charge: &charge,
        settlement,
        amount,
        intent: Some(pi),
        invoice: None,
    };
    donation_paid(conn, &donation, paid)?;
    Ok(Applied::default())
}

fn order_paid(
    conn: &mut DbConn,
    order: Order,
    charge: &str,
    settlement: Option<Settlement>,
    amount: i64,
    intent: &str,
) -> Result<Applied, AppError> {
    let product = Product::find(conn, &order.product_id)?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("order without product")))?;
    if order.status == OrderStatus::Pending {
        Order::set_status(conn, &order.id, OrderStatus::Paid)?;
        if order.kind == OrderKind::GiftSubscription {
            gift_period(conn, &order)?;
        }
    }
    let creator = creator_rule(conn, product.creator_id.as_deref(), Some(order.channel))?;
    let payment = Payment {
        stripe_charge_id: charge.to_owned(),
        stripe_payment_intent_id: Some(intent.to_owned()),
        user_id: order.buyer_id.clone(),
        order_id: Some(order.id.clone()),
        amount_minor: amount,
        currency: order.currency.clone(),
        ..Default::default()
    };
    let what = match (&order.recipient_id, order.kind) {
        (Some(_), OrderKind::GiftSubscription) => format!("a gift of {}", product.name),
        (Some(_), _) => format!("a gift of the sticker pack {}", product.name),
        (None, _) => format!("the sticker pack {}", product.name),
    };
    if let Some(p) = record_payment(conn, payment, settlement.as_ref(), creator, &what)? {
        emails::receipt(conn, &order.buyer_id, charge, &what, amount, &p.currency)?;
        if let Some(recipient) = &order.recipient_id {
            emails::gift_received(
                conn,
                recipient,
                &order.id,
                &product.name,
                order.message.as_deref(),
            )?;
        }
    }
    Ok(Applied::users(vec![order.holder().to_owned()]))
}

/// A gifted subscription period: the plan's entitlements as grants to the recipient.
fn gift_period(conn: &mut DbConn, order: &Order) -> Result<(), AppError> {
    let now = Utc::now();
    let days = i64::from(order.gift_days.unwrap_or(30));
    for pe in Product::entitlements_of(conn, std::slice::from_ref(&order.product_id))? {
        Grant::create(
            conn,
            NewGrant {
                user_id: order.holder().to_owned(),
                entitlement_key: pe.entitlement_key,
                value: pe.value,
                reason: gift_reason(&order.id),
                granted_by: order.buyer_id.clone(),
                starts_at: to_db(now),
                expires_at: Some(to_db(now + Duration::days(days))),
            },
        )?;
    }
    Ok(())
}

fn gift_reason(order: &str) -> String {
    format!("gift order {order}")
}

/// `payment_intent.payment_failed`: nothing is owed; the buyer hears of it.
pub fn intent_failed(conn: &mut DbConn, intent: &PaymentIntent) -> Result<Applied, AppError> {
    match Order::by_payment_intent(conn, &intent.id)? {
        Some(order) => {
            let what = format!("order {}", order.id);
            emails::payment_failed(conn, &order.buyer_id, &intent.id, &what)?;
            Ok(Applied::default())
        }
        None => Ok(Applied::ignored()),
    }
}

/// Why a payment's purchase is taken back.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reversed {
    Refunded,
    Disputed,
}

/// The one-off donation a payment paid, if it paid one.
fn one_off_donation(conn: &mut DbConn, payment: &Payment) -> Result<Option<Donation>, AppError> {
    match &payment.donation_id {
        Some(id) => Ok(Donation::find(conn, id)?.filter(|d| !d.recurring)),
        None => Ok(None),
    }
}

/// Revokes what a one-off payment bought (a full refund, or a dispute's withdrawal). A
/// subscription invoice's payment revokes nothing here: Stripe keeps billing the
/// subscription, and its state follows Stripe's subscription events.
pub(super) fn revoke(
    conn: &mut DbConn,
    payment: &Payment,
    why: Reversed,
) -> Result<Vec<String>, AppError> {
    let (order_status, donation_status) = match why {
        Reversed::Refunded => (OrderStatus::Refunded, DonationStatus::Refunded),
        Reversed::Disputed => (OrderStatus::Disputed, DonationStatus::Disputed),
    };
    let mut affected = Vec::new();
    if let Some(order_id) = &payment.order_id {
        if let Some(order) = Order::find(conn, order_id)? {
            Order::set_status(conn, order_id, order_status)?;
            affected.push(order.holder().to_owned());
            affected.extend(grants::revoke_for(conn, &gift_reason(order_id), "stripe")?);
        }
    }
    // A monthly donation's month refunded or disputed does not end the donation: Stripe
    // keeps billing it until the donor or Stripe ends it.
    if let Some(d) = one_off_donation(conn, payment)? {
        Donation::set_status(conn, &d.id, donation_status)?;
    }
    Ok(affected)
}

/// Gives back what `revoke` took (a won dispute, a failed refund): the pack, or what is left
/// of a gifted period.
pub(super) fn restore(conn: &mut DbConn, payment: &Payment) -> Result<Vec<String>, AppError> {
    let mut affected = Vec::new();
    if let Some(order_id) = &payment.order_id {
        if let Some(order) = Order::find(conn, order_id)?.filter(|o| o.status != OrderStatus::Paid)
        {
            Order::set_status(conn, order_id, OrderStatus::Paid)?;
            affected.push(order.holder().to_owned());
            affected.extend(grants::reinstate_for(
                conn,
                &gift_reason(order_id),
                "stripe",
            )?);
        }
    }
    if let Some(d) = one_off_donation(conn, payment)? {
        Donation::set_status(conn, &d.id, DonationStatus::Paid)?;
    }
    Ok(affected)
}
