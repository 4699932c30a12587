//! Receiving Stripe's events: each is decoded at the edge (`stripe::events`), completed from
//! Stripe when it does not carry what we need (outside any transaction), then stored once by
//! its id and applied in one transaction, so an event is applied exactly once. Events about
//! objects that are not ours are stored as `ignored` and acknowledged; only an event about
//! something of ours we have not recorded yet is refused (409) for Stripe to deliver again.

use crate::app::AppState;
use crate::db::models::payments::Payment;
use crate::db::models::stripe_events;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::services::billing::{disputes, payments, refunds, subscription_events};
use crate::services::changes;
use crate::stripe::events::{Change, Event};
use crate::stripe::gateway::{Gateway, GatewayError};
use crate::stripe::objects::{Charge, ChargeRef, Expandable, Invoice, Refund};
use chrono::{DateTime, Utc};

/// What applying an event did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Users whose entitlements may have changed.
    pub affected: Vec<String>,
    /// The event concerned nothing of ours.
    pub ignored: bool,
}

impl Applied {
    pub fn users(affected: Vec<String>) -> Applied {
        Applied {
            affected,
            ignored: false,
        }
    }

    pub fn ignored() -> Applied {
        Applied {
            affected: Vec::new(),
            ignored: true,
        }
    }
}

/// What the event did not carry and Stripe told us before the transaction.
#[derive(Debug, Default)]
pub struct Fetched {
    /// The charge that paid an invoice (current API versions send invoices without it).
    pub invoice_charge: Option<ChargeRef>,
    /// A refunded charge's refunds (current API versions send a charge without them).
    pub refunds: Option<Vec<Refund>>,
    /// A refund as Stripe has it now.
    pub refund: Option<Refund>,
    /// A disputed charge we have not recorded, to tell whether it is ours.
    pub charge: Option<Charge>,
    /// Our id from the metadata of the subscription an invoice bills, when the invoice does
    /// not carry it (API versions before `subscription_details`): without it, an invoice
    /// that overtakes the purchase's last write could not be matched, and an emulator that
    /// does not redeliver would lose the payment.
    pub subscription_owner: Option<String>,
    /// A connected account as Stripe has it now.
    pub account: Option<crate::stripe::objects::Account>,
}

/// Settings an event's effects depend on.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub grace_days: i64,
}

/// Stores and applies one event (a verified webhook body, decoded, with the body as received;
/// or one fetched by `sync`) in one transaction; `false` when it was seen before. Caches of
/// affected users are invalidated.
pub async fn receive(state: &AppState, event: Event, payload: String) -> Result<bool, AppError> {
    if event.id.is_empty()
        || event.id.len() > 255
        || event.event_type.len() > 255
        || event.api_version.as_ref().is_some_and(|v| v.len() > 64)
    {
        return Err(AppError::bad_request(
            "invalid_body",
            "event id, type or api_version out of bounds",
        ));
    }
    let change = event
        .change()
        .map_err(|e| AppError::bad_request("invalid_event", format!("event object: {e}")))?;
    let fetched = fetch_missing(state, &event, &change).await?;
    let rules = Rules {
        grace_days: state.settings.stripe.past_due_grace_days,
    };
    changes::transaction(state, move |conn, changed| {
        let new = stripe_events::record(
            conn,
            &event.id,
            &event.event_type,
            event.created,
            event.api_version.as_deref(),
            &payload,
        )?;
        // Stored and applied together: a redelivery finds the row and applies nothing.
        if !new {
            return Ok(false);
        }
        let applied = apply(conn, &event, change, fetched, rules)?;
        if applied.ignored {
            stripe_events::mark_ignored(conn, &event.id)?;
        }
        changed.users(applied.affected);
        Ok(true)
    })
    .await
}

/// What an event needs from Stripe before it can be applied.
enum Need<'a> {
    InvoiceCharge(&'a Invoice),
    /// The metadata of an invoice's subscription (the invoice does not carry it).
    SubscriptionOwner(&'a str),
    Refunds(&'a str),
    /// A refund's state now: a late snapshot must not undo or redo what happened since.
    Refund(&'a str),
    /// The disputed charge (its customer and metadata say whether it is ours).
    DisputedCharge(&'a str),
    /// A connected account as it is now: events of one second may arrive in any order.
    Account(&'a str),
}

fn needs(change: &Change) -> Vec<Need<'_>> {
    match change {
        Change::InvoicePaid(i) if i.amount_paid > 0 => {
            let mut needs = Vec::new();
            if i.charge().is_none() {
                needs.push(Need::InvoiceCharge(i));
            }
            if let (None, Some(sub)) = (i.our_subscription_id(), i.subscription_id()) {
                needs.push(Need::SubscriptionOwner(sub));
            }
            needs
        }
        Change::ChargeRefunded(c) if c.refunds.is_none() => vec![Need::Refunds(&c.id)],
        Change::Refund(r) if !r.id.is_empty() => vec![Need::Refund(&r.id)],
        Change::DisputeCreated(d)
        | Change::DisputeFundsWithdrawn(d)
        | Change::DisputeFundsReinstated(d)
        | Change::DisputeClosed(d) => match &d.charge {
            Some(Expandable::Id(id)) => vec![Need::DisputedCharge(id)],
            _ => Vec::new(),
        },
        Change::AccountUpdated(a) if !a.id.is_empty() => vec![Need::Account(&a.id)],
        _ => Vec::new(),
    }
}

/// Asks Stripe for what an event needs and does not carry. Only for events not stored yet
/// (and disputes of charges not recorded), so a redelivery costs no call. Stripe not
/// answering is 503: the event is not stored and Stripe delivers it again.
async fn fetch_missing(
    state: &AppState,
    event: &Event,
    change: &Change,
) -> Result<Fetched, AppError> {
    let mut fetched = Fetched::default();
    let needs = needs(change);
    if needs.is_empty() {
        return Ok(fetched);
    }
    let Some(gw) = state.stripe.as_ref() else {
        return Ok(fetched);
    };
    let (id, charge) = (
        event.id.clone(),
        needs.iter().find_map(|n| match n {
            Need::DisputedCharge(c) => Some((*c).to_owned()),
            _ => None,
        }),
    );
    let skip = db::run(&state.pool, move |conn| {
        let seen = stripe_events::outcome(conn, &id)?.is_some();
        let recorded = match charge {
            Some(c) => Payment::by_charge(conn, &c)?.is_some(),
            None => false,
        };
        Ok(seen || recorded)
    })
    .await?;
    if skip {
        return Ok(fetched);
    }
    for need in needs {
        match need {
            Need::InvoiceCharge(invoice) => {
                fetched.invoice_charge = gw
                    .invoice_charge(&invoice.id, invoice.payment_intent_id())
                    .await
                    .map_err(unavailable)?;
            }
            Need::SubscriptionOwner(sub) => {
                let found = not_found_is_none(gw.retrieve_subscription(sub).await)?;
                fetched.subscription_owner =
                    found.and_then(|(_, s)| s.metadata.get("kopilka_subscription_id").cloned());
            }
            Need::Refunds(charge) => fetched.refunds = Some(refunds_of(gw, charge).await?),
            Need::Refund(id) => {
                fetched.refund = not_found_is_none(gw.retrieve_refund(id).await)?;
            }
            Need::Account(id) => {
                fetched.account = not_found_is_none(gw.retrieve_account(id).await)?;
            }
            Need::DisputedCharge(id) => {
                fetched.charge = not_found_is_none(gw.retrieve_charge(id).await)?;
            }
        }
    }
    Ok(fetched)
}

/// Stripe's 404: not an object it has under our key (not ours), so nothing to learn.
fn not_found_is_none<T>(r: Result<T, GatewayError>) -> Result<Option<T>, AppError> {
    match r {
        Ok(t) => Ok(Some(t)),
        Err(GatewayError::Refused { status: 404, .. }) => Ok(None),
        Err(e) => Err(unavailable(e)),
    }
}

async fn refunds_of(gw: &Gateway, charge: &str) -> Result<Vec<Refund>, AppError> {
    Ok(not_found_is_none(gw.list_refunds(charge).await)?.unwrap_or_default())
}

fn unavailable(e: GatewayError) -> AppError {
    AppError::Unavailable(format!("fetching what the event does not carry: {e}"))
}

/// Fetches events created since the newest one we hold (less a margin for events created in
/// the same second) and feeds them through `receive`: recovery for failed deliveries.
/// Returns how many were new.
pub async fn sync(state: &AppState) -> Result<usize, AppError> {
    let gw = crate::services::billing::purchases::gateway(state)?;
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
    for value in events {
        let payload = value.to_string();
        let event = match serde_json::from_value::<Event>(value) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "stripe-sync: unreadable event skipped");
                continue;
            }
        };
        match receive(state, event, payload).await {
            Ok(true) => new += 1,
            Ok(false) => {}
            // Out of order within the page: the next sync gets it.
            Err(e) => tracing::warn!(error = %e, "stripe-sync: event not applied"),
        }
    }
    Ok(new)
}

/// When the event happened (Stripe's `created`), for grace periods that count from it.
fn happened(event: &Event) -> DateTime<Utc> {
    DateTime::from_timestamp(event.created, 0)
        .filter(|t| *t <= Utc::now())
        .unwrap_or_else(Utc::now)
}

pub fn apply(
    conn: &mut DbConn,
    event: &Event,
    change: Change,
    fetched: Fetched,
    rules: Rules,
) -> Result<Applied, AppError> {
    let created = event.created;
    let at = happened(event);
    // A connected account's own events (its charges, refunds, …) are not ours to apply.
    if event.account.is_some() && !matches!(change, Change::AccountUpdated(_)) {
        return Ok(Applied::ignored());
    }
    match change {
        Change::Subscription(sub) => {
            subscription_events::changed(conn, created, at, &sub, rules.grace_days)
        }
        Change::TrialWillEnd(sub) => subscription_events::trial_will_end(conn, &sub),
        Change::InvoicePaid(invoice) => {
            let charge = invoice.charge().or(fetched.invoice_charge);
            let owner = fetched.subscription_owner.as_deref();
            payments::invoice_paid(conn, created, &invoice, charge, owner)
        }
        Change::InvoiceFailed(invoice) => {
            payments::invoice_failed(conn, created, at, &invoice, rules.grace_days)
        }
        Change::InvoiceActionRequired(invoice) => payments::action_required(conn, &invoice),
        Change::IntentSucceeded(intent) => payments::intent_succeeded(conn, &intent),
        Change::IntentFailed(intent) => payments::intent_failed(conn, &intent),
        Change::ChargeRefunded(charge) => refunds::charge_refunded(conn, &charge, fetched.refunds),
        Change::Refund(refund) => {
            refunds::refund_changed(conn, fetched.refund.as_ref().unwrap_or(&refund))
        }
        Change::DisputeCreated(d) | Change::DisputeFundsWithdrawn(d) => {
            disputes::funds_withdrawn(conn, &d, fetched.charge.as_ref())
        }
        Change::DisputeFundsReinstated(d) => {
            disputes::funds_reinstated(conn, &d, fetched.charge.as_ref())
        }
        Change::DisputeClosed(d) => disputes::closed(conn, &d, fetched.charge.as_ref()),
        Change::AccountUpdated(account) => {
            // Only a Connect endpoint's event names its account; the account must be ours.
            let now = fetched.account.as_ref().unwrap_or(&account);
            let ours = event.account.as_deref() == Some(account.id.as_str())
                && crate::services::payouts::connect::account_updated(conn, now, created)?;
            Ok(if ours {
                Applied::default()
            } else {
                Applied::ignored()
            })
        }
        Change::TransferReversed(transfer) => {
            let ours = crate::services::payouts::connect::transfer_reversed(conn, &transfer)?;
            Ok(if ours {
                Applied::default()
            } else {
                Applied::ignored()
            })
        }
        Change::Other => Ok(Applied::default()),
    }
}
