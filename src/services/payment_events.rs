//! What Stripe's payment events change: orders and donations paid, subscriptions renewed or
//! past due, refunds and disputes — and the ledger postings and emails that go with them.
//! Runs inside the transaction that stores the event (see `stripe_events`).
//!
//! Every posting is keyed by the Stripe object it comes from (`charge:ch_…`, `refund:re_…`,
//! `dispute:dp_…`), so an event delivered twice, or two events about one charge
//! (`invoice.paid` and `invoice.payment_succeeded`), post once.
//!
//! Order: a refund or dispute of a charge we have not seen paid yet is refused with 409 and
//! not stored; Stripe redelivers it later (and `stripe-sync` fetches it), by which time the
//! payment is there.

use crate::db::models::catalog::Product;
use crate::db::models::creators::Creator;
use crate::db::models::donations::Donation;
use crate::db::models::grants::{self, Grant, NewGrant};
use crate::db::models::ledger::{self as ledger_db, Posted};
use crate::db::models::orders::Order;
use crate::db::models::payments::Payment;
use crate::db::models::subscriptions::Subscription;
use crate::db::models::{from_db, new_id, to_db};
use crate::db::DbConn;
use crate::domain::entitlements::SubscriptionStatus;
use crate::domain::ledger::{self, Line};
use crate::domain::money::{split_revenue, Currency};
use crate::error::AppError;
use crate::services::emails;
use chrono::{Duration, Utc};
use serde_json::Value;

/// An id, whether Stripe sent the object or only its id.
fn id_of(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v["id"].as_str())
}

/// Stripe's fee, when the charge came with its balance transaction expanded (webhooks send
/// only its id: the fee job fetches it then).
fn fee_of(charge: &Value) -> Option<i64> {
    charge["balance_transaction"]["fee"].as_i64()
}

fn currency_of(v: &Value) -> Result<Currency, AppError> {
    let code = v["currency"].as_str().unwrap_or("").to_ascii_uppercase();
    Currency::parse(&code).map_err(|e| AppError::bad_request("invalid_event", e))
}

fn out_of_order(what: &str) -> AppError {
    AppError::conflict(
        "event_out_of_order",
        format!("{what} is not known yet; Stripe will deliver this event again"),
    )
}

fn posting_error(e: ledger::PostingError) -> AppError {
    AppError::Internal(anyhow::anyhow!("ledger posting: {e}"))
}

/// Who earns from a payment: the creator and their share rule, if any.
fn creator_rule(
    conn: &mut DbConn,
    creator: Option<&str>,
) -> Result<Option<(String, u16)>, AppError> {
    let Some(id) = creator else { return Ok(None) };
    let bps = Creator::find(conn, id)?.map_or(0, |c| c.revenue_share_bps);
    Ok(Some((
        id.to_owned(),
        u16::try_from(bps.clamp(0, 10_000)).unwrap_or(0),
    )))
}

/// Posts a received payment and records it; `None` when this charge was posted before.
fn record_payment(
    conn: &mut DbConn,
    mut payment: Payment,
    creator: Option<(String, u16)>,
    description: &str,
) -> Result<Option<Payment>, AppError> {
    let currency = Currency::parse(&payment.currency)
        .map_err(|e| AppError::bad_request("invalid_event", e))?;
    let (gross, fee) = (payment.amount_minor, payment.fee_minor);
    let lines: Vec<Line> = match &creator {
        Some((id, bps)) => {
            payment.creator_share_minor = split_revenue(gross, *bps).0;
            ledger::creator_sale(gross, fee, &currency, id, *bps)
        }
        None => ledger::platform_sale(gross, fee, &currency),
    }
    .map_err(posting_error)?;
    payment.creator_id = creator.map(|(id, _)| id);
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
        description,
        &lines,
    )?;
    Ok(Some(payment))
}

/// The subscription an invoice belongs to (older and newer API shapes).
fn invoice_subscription(invoice: &Value) -> Option<&str> {
    id_of(&invoice["subscription"])
        .or_else(|| id_of(&invoice["parent"]["subscription_details"]["subscription"]))
}

/// The charge that paid an invoice and its fee if told; without a charge (paid from the
/// customer's balance, say) there is no fee to fetch.
fn invoice_charge(invoice: &Value) -> (String, Option<i64>) {
    let charge = &invoice["charge"];
    let charge = if charge.is_null() {
        &invoice["payments"]["data"][0]["payment"]["charge"]
    } else {
        charge
    };
    match id_of(charge) {
        Some(id) => (id.to_owned(), fee_of(charge)),
        None => (
            format!("invoice:{}", invoice["id"].as_str().unwrap_or("")),
            Some(0),
        ),
    }
}

/// `invoice.paid` / `invoice.payment_succeeded`: a subscription (or monthly donation) paid.
pub fn invoice_paid(
    conn: &mut DbConn,
    created: i64,
    invoice: &Value,
) -> Result<Vec<String>, AppError> {
    let Some(stripe_sub) = invoice_subscription(invoice) else {
        return Ok(Vec::new());
    };
    let amount = invoice["amount_paid"].as_i64().unwrap_or(0);
    let (charge, fee) = invoice_charge(invoice);
    // Our id rides in the subscription's metadata, which newer API versions copy onto the
    // invoice: it links an invoice that overtook our write of the Stripe id.
    let ours = invoice["subscription_details"]["metadata"]["kopilka_subscription_id"]
        .as_str()
        .or_else(|| {
            invoice["parent"]["subscription_details"]["metadata"]["kopilka_subscription_id"]
                .as_str()
        });
    if let Some((mut sub, holders)) = Subscription::by_stripe(conn, stripe_sub, ours)? {
        sub.stripe_subscription_id = Some(stripe_sub.to_owned());
        if sub.stripe_event_created.is_none_or(|seen| created >= seen) {
            sub.status = if sub.cancel_at_period_end {
                SubscriptionStatus::Canceled
            } else {
                SubscriptionStatus::Active
            }
            .as_str()
            .to_owned();
            sub.grace_until = None;
            let period = &invoice["lines"]["data"][0]["period"];
            let (start, end) = (period["start"].as_i64(), period["end"].as_i64());
            if let (Some(s), Some(e)) = (start, end) {
                if let (Some(s), Some(e)) = (
                    chrono::DateTime::from_timestamp(s, 0),
                    chrono::DateTime::from_timestamp(e, 0),
                ) {
                    if e > s && to_db(e) >= sub.current_period_end {
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
                stripe_charge_id: charge.clone(),
                stripe_invoice_id: invoice["id"].as_str().map(str::to_owned),
                user_id: sub.user_id.clone(),
                subscription_id: Some(sub.id.clone()),
                amount_minor: amount,
                currency: currency_of(invoice)?.to_string(),
                ..Default::default()
            }
            .with_fee(fee);
            let what = format!("subscription {}", sub.product_id);
            if record_payment(conn, payment, None, &what)?.is_some() {
                emails::receipt(
                    conn,
                    &sub.user_id,
                    &charge,
                    &what,
                    amount,
                    invoice["currency"].as_str().unwrap_or(""),
                )?;
            }
        }
        return Ok(holders);
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
            donation_paid(conn, &donation, &charge, fee, amount, invoice)?;
        }
        if donation.status == "pending" {
            Donation::set_status(conn, &donation.id, "active")?;
        }
        return Ok(Vec::new());
    }
    // One of our customers, but a subscription we have not recorded yet (the event overtook
    // the purchase's last write): ask Stripe to deliver it again rather than lose the payment.
    if let Some(customer) = id_of(&invoice["customer"]) {
        if crate::db::models::users::by_stripe_customer(conn, customer)?.is_some() && amount > 0 {
            return Err(out_of_order(&format!("subscription {stripe_sub}")));
        }
    }
    Ok(Vec::new())
}

fn donation_paid(
    conn: &mut DbConn,
    donation: &Donation,
    charge: &str,
    fee: Option<i64>,
    amount: i64,
    object: &Value,
) -> Result<(), AppError> {
    let creator = creator_rule(conn, donation.creator_id.as_deref())?;
    let payment = Payment {
        stripe_charge_id: charge.to_owned(),
        stripe_payment_intent_id: object["payment_intent"].as_str().map(str::to_owned),
        user_id: donation.donor_id.clone(),
        donation_id: Some(donation.id.clone()),
        amount_minor: amount,
        currency: currency_of(object)?.to_string(),
        ..Default::default()
    }
    .with_fee(fee);
    let what = match &donation.creator_id {
        Some(c) => format!("your donation to {c}"),
        None => "your donation to Kopilka".to_owned(),
    };
    if record_payment(conn, payment, creator, &what)?.is_some() {
        emails::receipt(
            conn,
            &donation.donor_id,
            charge,
            &what,
            amount,
            &donation.currency,
        )?;
    }
    Ok(())
}

/// `invoice.payment_failed`: a renewal failed; the subscription is past due and keeps its
/// entitlements for the grace period.
pub fn invoice_failed(
    conn: &mut DbConn,
    created: i64,
    invoice: &Value,
    grace_days: i64,
) -> Result<Vec<String>, AppError> {
    let Some(stripe_sub) = invoice_subscription(invoice) else {
        return Ok(Vec::new());
    };
    let Some((mut sub, holders)) = Subscription::by_stripe(conn, stripe_sub, None)? else {
        return Ok(Vec::new());
    };
    if sub.stripe_event_created.is_none_or(|seen| created >= seen) && sub.status != "expired" {
        sub.status = SubscriptionStatus::PastDue.as_str().to_owned();
        sub.grace_until = sub.grace_until.or(Some(to_db(
            from_db(sub.current_period_end).max(Utc::now()) + Duration::days(grace_days),
        )));
        sub.stripe_event_created = Some(created);
        sub.save(conn)?;
    }
    let key = format!(
        "{}:{}",
        invoice["id"].as_str().unwrap_or(""),
        invoice["attempt_count"].as_i64().unwrap_or(1)
    );
    emails::payment_failed(
        conn,
        &sub.user_id,
        &key,
        &format!("subscription {}", sub.product_id),
    )?;
    Ok(holders)
}

fn intent_charge(intent: &Value) -> (String, Option<i64>) {
    let charge = &intent["latest_charge"];
    let charge = if charge.is_null() {
        &intent["charges"]["data"][0]
    } else {
        charge
    };
    match id_of(charge) {
        Some(id) => (id.to_owned(), fee_of(charge)),
        None => (
            format!("intent:{}", intent["id"].as_str().unwrap_or("")),
            Some(0),
        ),
    }
}

/// `payment_intent.succeeded`: an order (pack, gift) or a one-off donation is paid.
pub fn intent_succeeded(conn: &mut DbConn, intent: &Value) -> Result<Vec<String>, AppError> {
    let pi = intent["id"].as_str().unwrap_or("");
    let amount = intent["amount_received"]
        .as_i64()
        .or_else(|| intent["amount"].as_i64())
        .unwrap_or(0);
    let (charge, fee) = intent_charge(intent);
    // By the intent's id, or by our id in its metadata when the event overtook our write of
    // the intent's id.
    let order = match Order::by_payment_intent(conn, pi)? {
        Some(o) => Some(o),
        None => match intent["metadata"]["kopilka_order_id"].as_str() {
            Some(id) => Order::find(conn, id)?.filter(|o| o.stripe_payment_intent_id.is_none()),
            None => None,
        },
    };
    if let Some(order) = order {
        Order::set_payment_intent(conn, &order.id, pi)?;
        return order_paid(conn, order, &charge, fee, amount, intent);
    }
    let donation = match Donation::by_payment_intent(conn, pi)? {
        Some(d) => Some(d),
        None => match intent["metadata"]["kopilka_donation_id"].as_str() {
            Some(id) => Donation::find(conn, id)?.filter(|d| d.stripe_payment_intent_id.is_none()),
            None => None,
        },
    };
    if let Some(donation) = donation {
        Donation::set_stripe(conn, &donation.id, Some(pi), None)?;
        if donation.status == "pending" {
            Donation::set_status(conn, &donation.id, "paid")?;
        }
        donation_paid(conn, &donation, &charge, fee, amount, intent)?;
    }
    Ok(Vec::new())
}

fn order_paid(
    conn: &mut DbConn,
    order: Order,
    charge: &str,
    fee: Option<i64>,
    amount: i64,
    intent: &Value,
) -> Result<Vec<String>, AppError> {
    let product = Product::find(conn, &order.product_id)?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("order without product")))?;
    let first_time = order.status == "pending";
    if first_time {
        Order::set_status(conn, &order.id, "paid")?;
        if order.kind == "gift_subscription" {
            gift_period(conn, &order)?;
        }
    }
    let creator = creator_rule(conn, product.creator_id.as_deref())?;
    let payment = Payment {
        stripe_charge_id: charge.to_owned(),
        stripe_payment_intent_id: intent["id"].as_str().map(str::to_owned),
        user_id: order.buyer_id.clone(),
        order_id: Some(order.id.clone()),
        amount_minor: amount,
        currency: currency_of(intent)?.to_string(),
        ..Default::default()
    }
    .with_fee(fee);
    let what = match (&order.recipient_id, order.kind.as_str()) {
        (Some(_), "gift_subscription") => format!("a gift of {}", product.name),
        (Some(_), _) => format!("a gift of the sticker pack {}", product.name),
        (None, _) => format!("the sticker pack {}", product.name),
    };
    if record_payment(conn, payment, creator, &what)?.is_some() {
        emails::receipt(
            conn,
            &order.buyer_id,
            charge,
            &what,
            amount,
            &order.currency,
        )?;
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
    Ok(vec![order.holder().to_owned()])
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
pub fn intent_failed(conn: &mut DbConn, intent: &Value) -> Result<Vec<String>, AppError> {
    let pi = intent["id"].as_str().unwrap_or("");
    if let Some(order) = Order::by_payment_intent(conn, pi)? {
        emails::payment_failed(conn, &order.buyer_id, pi, &format!("order {}", order.id))?;
    }
    Ok(Vec::new())
}

/// Revokes what a payment bought (full refund, or a dispute opened).
fn revoke_purchase(
    conn: &mut DbConn,
    payment: &Payment,
    status: &str,
) -> Result<Vec<String>, AppError> {
    let mut affected = Vec::new();
    if let Some(order_id) = &payment.order_id {
        if let Some(order) = Order::find(conn, order_id)? {
            Order::set_status(conn, order_id, status)?;
            affected.push(order.holder().to_owned());
            affected.extend(grants::revoke_for(conn, &gift_reason(order_id), "stripe")?);
        }
    }
    if let Some(id) = &payment.donation_id {
        Donation::set_status(conn, id, status)?;
    }
    if let Some(id) = &payment.subscription_id {
        if let Some(mut sub) = Subscription::find(conn, id)? {
            sub.status = SubscriptionStatus::Expired.as_str().to_owned();
            sub.grace_until = None;
            sub.save(conn)?;
            affected.extend(Subscription::affected_users(conn, id)?);
        }
    }
    Ok(affected)
}

fn creator_of(payment: &Payment) -> Option<(&str, i64)> {
    payment
        .creator_id
        .as_deref()
        .map(|c| (c, payment.creator_share_minor))
}

/// `charge.refunded`: each refund posts its reversal once; a full refund revokes the purchase.
pub fn charge_refunded(conn: &mut DbConn, charge: &Value) -> Result<Vec<String>, AppError> {
    let id = charge["id"].as_str().unwrap_or("");
    let Some(payment) = Payment::by_charge(conn, id)? else {
        return Err(out_of_order(&format!("the payment of charge {id}")));
    };
    let currency = Currency::parse(&payment.currency)
        .map_err(|e| AppError::bad_request("invalid_event", e))?;
    let mut refunds: Vec<(String, i64)> = charge["refunds"]["data"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|r| {
                    r["status"]
                        .as_str()
                        .is_none_or(|s| s == "succeeded" || s == "pending")
                })
                .filter_map(|r| {
                    Some((
                        format!("refund:{}", r["id"].as_str()?),
                        r["amount"].as_i64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let total = charge["amount_refunded"].as_i64().unwrap_or(0);
    if refunds.is_empty() && total > payment.refunded_minor {
        // No refund list: post what is new since the last refund we saw.
        refunds.push((
            format!("refund:{id}:{total}"),
            total - payment.refunded_minor,
        ));
    }
    let mut refunded = payment.refunded_minor;
    for (key, amount) in refunds {
        let amount = amount.min(payment.amount_minor - refunded);
        if amount <= 0 {
            continue;
        }
        let lines = ledger::taken_back(
            amount,
            0,
            payment.amount_minor,
            &currency,
            creator_of(&payment),
        )
        .map_err(posting_error)?;
        if let Posted::New(_) = ledger_db::post(conn, &key, &format!("refund of {id}"), &lines)? {
            Payment::add_refunded(conn, &payment.id, amount)?;
            refunded += amount;
        }
    }
    if refunded >= payment.amount_minor && payment.refunded_minor < payment.amount_minor {
        return revoke_purchase(conn, &payment, "refunded");
    }
    Ok(Vec::new())
}

fn dispute_payment(conn: &mut DbConn, dispute: &Value) -> Result<Payment, AppError> {
    let charge = id_of(&dispute["charge"]).unwrap_or("");
    Payment::by_charge(conn, charge)?
        .ok_or_else(|| out_of_order(&format!("the payment of charge {charge}")))
}

/// `charge.dispute.created`: the disputed amount and the dispute fee leave; shares are taken
/// back in proportion; what was bought is revoked.
pub fn dispute_created(conn: &mut DbConn, dispute: &Value) -> Result<Vec<String>, AppError> {
    let payment = dispute_payment(conn, dispute)?;
    let id = dispute["id"].as_str().unwrap_or("");
    let currency = Currency::parse(&payment.currency)
        .map_err(|e| AppError::bad_request("invalid_event", e))?;
    let amount = dispute["amount"]
        .as_i64()
        .unwrap_or(payment.amount_minor)
        .min(payment.amount_minor - payment.refunded_minor);
    let fee: i64 = dispute["balance_transactions"]
        .as_array()
        .map(|l| l.iter().filter_map(|t| t["fee"].as_i64()).sum())
        .unwrap_or(0);
    if amount <= 0 && fee <= 0 {
        return Ok(Vec::new());
    }
    let lines = ledger::taken_back(
        amount.max(0),
        fee,
        payment.amount_minor,
        &currency,
        creator_of(&payment),
    )
    .map_err(posting_error)?;
    match ledger_db::post(
        conn,
        &format!("dispute:{id}"),
        &format!("dispute {id}"),
        &lines,
    )? {
        Posted::New(_) => revoke_purchase(conn, &payment, "disputed"),
        Posted::Already => Ok(Vec::new()),
    }
}

/// `charge.dispute.closed`: won gives back what the dispute took (not its fee) and restores
/// the purchase (a pack, or what is left of a gifted period); lost leaves it revoked. A
/// subscription invoice's won dispute leaves the subscription to Stripe's next subscription
/// event.
pub fn dispute_closed(conn: &mut DbConn, dispute: &Value) -> Result<Vec<String>, AppError> {
    if dispute["status"].as_str() != Some("won") {
        return Ok(Vec::new());
    }
    let payment = dispute_payment(conn, dispute)?;
    let id = dispute["id"].as_str().unwrap_or("");
    let opened = format!("dispute:{id}");
    let amount = ledger_db::amount_in(conn, &opened, "stripe_clearing")?;
    let fee = ledger_db::amount_in(conn, &opened, "stripe_fees")?;
    // What left clearing, less the fee, is what the dispute took.
    let taken = -amount - fee;
    if taken <= 0 {
        return Err(out_of_order(&format!("dispute {id}")));
    }
    let currency = Currency::parse(&payment.currency)
        .map_err(|e| AppError::bad_request("invalid_event", e))?;
    let lines = ledger::dispute_won(taken, payment.amount_minor, &currency, creator_of(&payment))
        .map_err(posting_error)?;
    let Posted::New(_) = ledger_db::post(
        conn,
        &format!("dispute:{id}:won"),
        &format!("dispute {id} won"),
        &lines,
    )?
    else {
        return Ok(Vec::new());
    };
    let mut affected = Vec::new();
    if let Some(order_id) = &payment.order_id {
        if let Some(order) = Order::find(conn, order_id)? {
            Order::set_status(conn, order_id, "paid")?;
            affected.push(order.holder().to_owned());
            affected.extend(grants::reinstate_for(
                conn,
                &gift_reason(order_id),
                "stripe",
            )?);
        }
    }
    if let Some(id) = &payment.donation_id {
        Donation::set_status(conn, id, "paid")?;
    }
    Ok(affected)
}
