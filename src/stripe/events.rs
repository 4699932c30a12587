//! Stripe's webhook events, typed at the edge: the envelope, and the object of each event type
//! we act on decoded into the tolerant structs of `objects`. Services never read event JSON.

use super::objects::{
    Account, Charge, Dispute, Invoice, PaymentIntent, Refund, Subscription, Transfer,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The envelope every event has. `api_version` is the version Stripe rendered the object in:
/// the account's default for webhooks, which may differ from the version our calls pin.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created: i64,
    pub api_version: Option<String>,
    /// The connected account an event is about (events of Connect endpoints only).
    pub account: Option<String>,
    pub data: Option<EventData>,
}

/// The event's object, kept as the raw JSON text until its type is known: decoded once, into
/// the struct of that type (webhooks are the busiest write path).
#[derive(Clone, Debug, Deserialize)]
pub struct EventData {
    pub object: Box<serde_json::value::RawValue>,
}

/// What an event means to us.
#[derive(Clone, Debug)]
pub enum Change {
    /// `customer.subscription.created/updated/deleted/pending_update_*` (and our own calls'
    /// answers).
    Subscription(Subscription),
    TrialWillEnd(Subscription),
    /// `invoice.paid` / `invoice.payment_succeeded`.
    InvoicePaid(Invoice),
    InvoiceFailed(Invoice),
    /// `invoice.payment_action_required`: the bank wants the customer (3-D Secure).
    InvoiceActionRequired(Invoice),
    IntentSucceeded(PaymentIntent),
    IntentFailed(PaymentIntent),
    /// `charge.refunded`: the charge with its refunded total (and, in older versions, the
    /// refunds themselves).
    ChargeRefunded(Charge),
    /// `refund.created/updated/failed`, `charge.refund.updated`: one refund's state.
    Refund(Refund),
    DisputeCreated(Dispute),
    DisputeFundsWithdrawn(Dispute),
    DisputeFundsReinstated(Dispute),
    DisputeClosed(Dispute),
    /// `account.updated` of a creator's connected account (Connect endpoint).
    AccountUpdated(Account),
    /// `transfer.reversed`: a payout transfer we reversed (in full or in part).
    TransferReversed(Transfer),
    /// Stored and acknowledged, nothing to do.
    Other,
}

impl Event {
    /// The event's object as what the event means; an object that does not decode is an
    /// error (400: a body Stripe would never send).
    pub fn change(&self) -> Result<Change, serde_json::Error> {
        Ok(match self.event_type.as_str() {
            // A pending update applied (the upgrade was paid) or expired (it never was): the
            // subscription as it is now, like any other update.
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted"
            | "customer.subscription.pending_update_applied"
            | "customer.subscription.pending_update_expired" => {
                Change::Subscription(self.object()?)
            }
            "customer.subscription.trial_will_end" => Change::TrialWillEnd(self.object()?),
            "invoice.paid" | "invoice.payment_succeeded" => Change::InvoicePaid(self.object()?),
            "invoice.payment_failed" => Change::InvoiceFailed(self.object()?),
            "invoice.payment_action_required" => Change::InvoiceActionRequired(self.object()?),
            "payment_intent.succeeded" => Change::IntentSucceeded(self.object()?),
            "payment_intent.payment_failed" => Change::IntentFailed(self.object()?),
            "charge.refunded" => Change::ChargeRefunded(self.object()?),
            "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
                Change::Refund(self.object()?)
            }
            "charge.dispute.created" => Change::DisputeCreated(self.object()?),
            "charge.dispute.funds_withdrawn" => Change::DisputeFundsWithdrawn(self.object()?),
            "charge.dispute.funds_reinstated" => Change::DisputeFundsReinstated(self.object()?),
            "charge.dispute.closed" => Change::DisputeClosed(self.object()?),
            "account.updated" => Change::AccountUpdated(self.object()?),
            "transfer.reversed" => Change::TransferReversed(self.object()?),
            _ => Change::Other,
        })
    }

    fn object<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        let object = self.data.as_ref().map_or("{}", |d| d.object.get());
        serde_json::from_str(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_decode_and_others_are_acknowledged() {
        let event: Event = serde_json::from_str(
            r#"{"id":"evt_1","type":"invoice.paid","created":5,"api_version":"2026-09-30.endive",
                "data":{"object":{"id":"in_1","amount_paid":99,"currency":"usd"}}}"#,
        )
        .unwrap();
        assert_eq!(event.api_version.as_deref(), Some("2026-09-30.endive"));
        let Change::InvoicePaid(invoice) = event.change().unwrap() else {
            panic!("an invoice")
        };
        assert_eq!(
            (invoice.amount_paid, invoice.currency.as_str()),
            (99, "usd")
        );
        let other: Event = serde_json::from_str(
            r#"{"id":"evt_2","type":"balance.available","created":5,"data":{"object":{}}}"#,
        )
        .unwrap();
        assert!(matches!(other.change().unwrap(), Change::Other));
        let bad: Event = serde_json::from_str(
            r#"{"id":"evt_3","type":"invoice.paid","created":5,"data":{"object":{"amount_paid":"x"}}}"#,
        )
        .unwrap();
        assert!(bad.change().is_err());
    }
}
