//! Stripe's objects as we read them, from our own calls' answers and from webhook events: only
//! the fields we use, every one optional or defaulted, unknown fields ignored. Stripe adds
//! fields every month and emulators lag behind; neither may break a purchase.
//!
//! Two API shapes are read. The version we pin (`stripe.api_version`) keeps an invoice's
//! payments under `payments` (invoice payment objects), its subscription under
//! `parent.subscription_details`, and a subscription's period on `items.data[]`; older versions
//! (and localstripe) put `charge`, `payment_intent` and `subscription` on the invoice and the
//! period on the subscription. Accessors here hide the difference from the services.

use serde::Deserialize;
use std::collections::HashMap;

/// A field Stripe sends as an id, or as the object when asked to expand it.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T: HasId> Expandable<T> {
    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Object(o) => Some(o),
            Expandable::Id(_) => None,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(o) => o.id(),
        }
    }
}

/// Objects an `Expandable` can name.
pub trait HasId {
    fn id(&self) -> &str;
}

macro_rules! has_id {
    ($($t:ty),*) => {$(impl HasId for $t { fn id(&self) -> &str { &self.id } })*};
}
has_id!(
    Customer,
    PaymentIntent,
    Invoice,
    Charge,
    BalanceTransaction,
    Subscription,
    SetupIntent,
    Ref
);

/// Any object, of which we only need the id.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Ref {
    pub id: String,
}

pub type Metadata = HashMap<String, String>;

/// The id an optional expandable field names, if any.
pub fn id_of<T: HasId>(field: &Option<Expandable<T>>) -> Option<&str> {
    field
        .as_ref()
        .map(Expandable::id)
        .filter(|id| !id.is_empty())
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct List<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Customer {
    pub id: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PaymentIntent {
    pub id: String,
    pub status: String,
    pub client_secret: Option<String>,
    pub amount: i64,
    pub amount_received: Option<i64>,
    pub currency: String,
    pub customer: Option<Expandable<Customer>>,
    pub latest_charge: Option<Expandable<Charge>>,
    /// Older API versions: the intent's charges as a list.
    pub charges: Option<List<Charge>>,
    pub metadata: Metadata,
}

impl PaymentIntent {
    /// The charge that paid the intent (both shapes).
    pub fn charge(&self) -> Option<ChargeRef> {
        match &self.latest_charge {
            Some(c) => Some(ChargeRef::of(c)),
            None => self.charges.as_ref()?.data.first().map(|c| ChargeRef {
                id: c.id.clone(),
                fee: c.settlement(),
            }),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SetupIntent {
    pub id: String,
    pub client_secret: Option<String>,
    pub status: String,
}

/// A charge named by an event, with Stripe's fee when its balance transaction came expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRef {
    pub id: String,
    pub fee: Option<Settlement>,
}

impl ChargeRef {
    fn of(charge: &Expandable<Charge>) -> ChargeRef {
        ChargeRef {
            id: charge.id().to_owned(),
            fee: charge.object().and_then(Charge::settlement),
        }
    }
}

/// What Stripe's balance received for a payment, in the balance's own (settlement) currency,
/// which may differ from the currency the customer paid in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub fee: i64,
    pub net: i64,
    pub amount: i64,
    /// Upper-case ISO 4217 code; empty when Stripe did not say (then: the charge's currency).
    pub currency: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Invoice {
    pub id: String,
    pub status: Option<String>,
    pub customer: Option<Expandable<Customer>>,
    pub currency: String,
    pub amount_paid: i64,
    pub total: i64,
    pub attempt_count: i64,
    pub billing_reason: Option<String>,
    pub hosted_invoice_url: Option<String>,
    /// Current API: the client secret that confirms the invoice's payment (when included).
    pub confirmation_secret: Option<ConfirmationSecret>,
    pub lines: List<InvoiceLine>,
    /// Current API: the payments made towards this invoice (included when expanded).
    pub payments: Option<List<InvoicePayment>>,
    /// Current API: what the invoice was made for.
    pub parent: Option<InvoiceParent>,
    /// Older API versions.
    pub subscription: Option<Expandable<Ref>>,
    pub subscription_details: Option<SubscriptionDetails>,
    pub charge: Option<Expandable<Charge>>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfirmationSecret {
    pub client_secret: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct InvoiceLine {
    pub period: Option<Period>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Period {
    pub start: i64,
    pub end: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct InvoiceParent {
    pub subscription_details: Option<SubscriptionDetails>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscriptionDetails {
    pub subscription: Option<Expandable<Ref>>,
    pub metadata: Option<Metadata>,
}

/// An invoice payment object (current API): one payment towards an invoice.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct InvoicePayment {
    pub id: String,
    pub status: String,
    pub payment: InvoicePaymentDetails,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct InvoicePaymentDetails {
    pub charge: Option<Expandable<Charge>>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
}

impl Invoice {
    /// The Stripe subscription the invoice bills (both shapes).
    pub fn subscription_id(&self) -> Option<&str> {
        id_of(&self.subscription).or_else(|| {
            let details = self.parent.as_ref()?.subscription_details.as_ref()?;
            id_of(&details.subscription)
        })
    }

    /// Our subscription's id, from the subscription's metadata Stripe copies onto its invoices.
    pub fn our_subscription_id(&self) -> Option<&str> {
        let current = self
            .parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref());
        [current, self.subscription_details.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|d| d.metadata.as_ref()?.get("kopilka_subscription_id"))
            .map(String::as_str)
    }

    /// The paid payment's charge, when the invoice says (older shape, or `payments` included).
    pub fn charge(&self) -> Option<ChargeRef> {
        if let Some(c) = &self.charge {
            return Some(ChargeRef::of(c));
        }
        if let Some(pi) = self.payment_intent.as_ref().and_then(Expandable::object) {
            return pi.charge();
        }
        self.paid_payment().and_then(|p| {
            p.charge.as_ref().map(ChargeRef::of).or_else(|| {
                p.payment_intent
                    .as_ref()
                    .and_then(Expandable::object)
                    .and_then(PaymentIntent::charge)
            })
        })
    }

    /// The PaymentIntent that paid the invoice, when only that is named.
    pub fn payment_intent_id(&self) -> Option<&str> {
        id_of(&self.payment_intent)
            .or_else(|| self.paid_payment().and_then(|p| id_of(&p.payment_intent)))
    }

    fn paid_payment(&self) -> Option<&InvoicePaymentDetails> {
        let payments = &self.payments.as_ref()?.data;
        // A canceled or failed attempt paid nothing.
        payments
            .iter()
            .find(|p| p.status == "paid")
            .map(|p| &p.payment)
    }

    /// The billed period of the invoice's first line.
    pub fn period(&self) -> Option<(i64, i64)> {
        let p = self.lines.data.first()?.period.as_ref()?;
        (p.end > p.start).then_some((p.start, p.end))
    }
}

/// Stripe's subscription states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Incomplete,
    IncompleteExpired,
    Paused,
    #[default]
    #[serde(other)]
    Unknown,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Paused => "paused",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Subscription {
    pub id: String,
    pub status: SubscriptionStatus,
    pub customer: Option<Expandable<Customer>>,
    /// Older API versions; the current one keeps the period on each item.
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub latest_invoice: Option<Expandable<Invoice>>,
    pub pending_setup_intent: Option<Expandable<SetupIntent>>,
    /// An update waiting for its payment (`payment_behavior=pending_if_incomplete`).
    pub pending_update: Option<serde_json::Value>,
    pub items: List<SubscriptionItem>,
    pub metadata: Metadata,
    /// The schedule Stripe runs it by (a downgrade to another interval, set for period end).
    pub schedule: Option<Expandable<Ref>>,
}

/// A subscription schedule: the phases a subscription moves through.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscriptionSchedule {
    pub id: String,
    pub phases: Vec<SchedulePhase>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SchedulePhase {
    pub start_date: i64,
    pub end_date: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscriptionItem {
    pub id: String,
    pub quantity: Option<i64>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub price: Option<Ref>,
    pub plan: Option<Ref>,
}

impl Subscription {
    /// The client secret the app confirms the first payment with, when one is owed; for a
    /// trial, the pending SetupIntent's, so the card is set up for the renewals.
    pub fn client_secret(&self) -> Option<String> {
        let invoice = self.latest_invoice.as_ref().and_then(Expandable::object);
        if let Some(secret) = invoice
            .filter(|i| i.status.as_deref() != Some("paid"))
            .and_then(|i| i.confirmation_secret.as_ref()?.client_secret.clone())
        {
            return Some(secret);
        }
        let intent = self
            .latest_invoice
            .as_ref()
            .and_then(Expandable::object)
            .and_then(|invoice| {
                invoice
                    .payment_intent
                    .as_ref()
                    .and_then(Expandable::object)
                    .or_else(|| {
                        let p = invoice.paid_payment()?;
                        p.payment_intent.as_ref()?.object()
                    })
            });
        if let Some(intent) = intent {
            if intent.status != "succeeded" {
                return intent.client_secret.clone();
            }
        }
        let setup = self.pending_setup_intent.as_ref()?.object()?;
        (setup.status != "succeeded")
            .then(|| setup.client_secret.clone())
            .flatten()
    }

    /// The current period (older shape on the subscription, current shape on its items).
    pub fn period(&self) -> Option<(i64, i64)> {
        let item = self.items.data.first();
        let start = self
            .current_period_start
            .or_else(|| item?.current_period_start)?;
        let end = self
            .current_period_end
            .or_else(|| item?.current_period_end)?;
        (end > start).then_some((start, end))
    }

    /// Seats: the item's quantity.
    pub fn quantity(&self) -> Option<i64> {
        self.items.data.first()?.quantity
    }

    /// The plan (our price id) the subscription's item is on.
    pub fn plan_id(&self) -> Option<&str> {
        let item = self.items.data.first()?;
        item.plan
            .as_ref()
            .or(item.price.as_ref())
            .map(|r| r.id.as_str())
    }

    pub fn item_id(&self) -> Option<&str> {
        self.items.data.first().map(|i| i.id.as_str())
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub customer: Option<Expandable<Customer>>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
    pub metadata: Metadata,
    /// Not included by default since 2022-11-15 (older versions and emulators include it);
    /// current ones send refunds as their own events, and we fetch the list when it is absent.
    pub refunds: Option<List<Refund>>,
    /// Absent until the charge is settled into the balance (asynchronous payment methods).
    pub balance_transaction: Option<Expandable<BalanceTransaction>>,
}

impl Charge {
    pub fn settlement(&self) -> Option<Settlement> {
        self.balance_transaction
            .as_ref()?
            .object()
            .map(BalanceTransaction::settlement)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct BalanceTransaction {
    pub id: String,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
    pub currency: String,
}

impl BalanceTransaction {
    pub fn settlement(&self) -> Settlement {
        Settlement {
            fee: self.fee,
            net: self.net,
            amount: self.amount,
            currency: self.currency.to_ascii_uppercase(),
        }
    }
}

/// Stripe's refund states; a `failed` or `canceled` refund gives the money back to us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    RequiresAction,
    Succeeded,
    Failed,
    Canceled,
    #[default]
    #[serde(other)]
    Unknown,
}

/// What a refund's state means for our books.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The money left, or is leaving, our balance.
    Made,
    /// It came back (failed or canceled).
    Undone,
    /// A state we do not know (or none): nothing to do yet.
    Unknown,
}

impl Refund {
    pub fn outcome(&self) -> RefundOutcome {
        match self.status {
            Some(
                RefundStatus::Pending | RefundStatus::Succeeded | RefundStatus::RequiresAction,
            ) => RefundOutcome::Made,
            Some(RefundStatus::Failed | RefundStatus::Canceled) => RefundOutcome::Undone,
            Some(RefundStatus::Unknown) | None => RefundOutcome::Unknown,
        }
    }
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::RequiresAction => "requires_action",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// Nullable in Stripe's schema.
    pub status: Option<RefundStatus>,
    pub customer: Option<Expandable<Customer>>,
    pub charge: Option<Expandable<Charge>>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    WarningNeedsResponse,
    WarningUnderReview,
    WarningClosed,
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
    /// Resolved before it became a dispute (e.g. Visa's rapid dispute resolution refunds the
    /// payment instead): no dispute money moves.
    Prevented,
    #[default]
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: DisputeStatus,
    pub charge: Option<Expandable<Charge>>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
    /// Money moved by the dispute: withdrawn (amount and fee), and reinstated if won.
    pub balance_transactions: Vec<BalanceTransaction>,
}

impl Dispute {
    /// An inquiry (`warning_*`) moves no money: Stripe withdraws nothing unless it escalates.
    pub fn is_inquiry(&self) -> bool {
        matches!(
            self.status,
            DisputeStatus::WarningNeedsResponse
                | DisputeStatus::WarningUnderReview
                | DisputeStatus::WarningClosed
        )
    }

    /// Whether Stripe took the disputed funds: a withdrawal among its balance transactions,
    /// or — when they are not included — a real dispute's state.
    pub fn funds_taken(&self) -> bool {
        if !self.balance_transactions.is_empty() {
            return self.balance_transactions.iter().any(|t| t.amount < 0);
        }
        matches!(
            self.status,
            DisputeStatus::NeedsResponse
                | DisputeStatus::UnderReview
                | DisputeStatus::Lost
                | DisputeStatus::Won
        )
    }
}

/// Stripe's error body: `{"error": {"type", "code", "message"}}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApiError {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// A connected (Express) account: whether it may receive transfers yet.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Account {
    pub id: String,
    pub capabilities: Option<AccountCapabilities>,
    pub details_submitted: bool,
}

impl Account {
    /// `capabilities.transfers` (`active`, `inactive`, `pending`); `inactive` when absent.
    pub fn transfers(&self) -> &str {
        self.capabilities
            .as_ref()
            .and_then(|c| c.transfers.as_deref())
            .unwrap_or("inactive")
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AccountCapabilities {
    pub transfers: Option<String>,
}

/// A single-use onboarding link (it expires within minutes).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct AccountLink {
    pub url: String,
    pub expires_at: i64,
}

/// A transfer to a connected account.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Transfer {
    pub id: String,
    pub amount: i64,
    pub amount_reversed: i64,
    pub currency: String,
    pub destination: Option<String>,
    pub reversed: bool,
    pub metadata: std::collections::HashMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expanded_invoice_yields_the_intents_client_secret() {
        let sub: Subscription = serde_json::from_str(
            r#"{"id":"sub_1","status":"incomplete","brand_new_field":{"x":1},
                "latest_invoice":{"id":"in_1","payment_intent":
                  {"id":"pi_1","status":"requires_action","client_secret":"pi_1_secret"}}}"#,
        )
        .unwrap();
        assert_eq!(sub.client_secret().as_deref(), Some("pi_1_secret"));
        let paid: Subscription =
            serde_json::from_str(r#"{"id":"sub_2","latest_invoice":"in_2"}"#).unwrap();
        assert_eq!(paid.client_secret(), None);
        assert_eq!(paid.status, SubscriptionStatus::Unknown);
    }

    #[test]
    fn a_trial_yields_its_pending_setup_intents_secret() {
        let sub: Subscription = serde_json::from_str(
            r#"{"id":"sub_1","status":"trialing","latest_invoice":{"id":"in_1","payments":{"data":[]}},
                "pending_setup_intent":{"id":"seti_1","status":"requires_payment_method",
                  "client_secret":"seti_1_secret"}}"#,
        )
        .unwrap();
        assert_eq!(sub.client_secret().as_deref(), Some("seti_1_secret"));
    }

    #[test]
    fn both_invoice_shapes_name_their_subscription_and_charge() {
        let old: Invoice = serde_json::from_str(
            r#"{"id":"in_1","subscription":"sub_1","charge":"ch_1","payment_intent":"pi_1",
                "subscription_details":{"metadata":{"kopilka_subscription_id":"s1"}}}"#,
        )
        .unwrap();
        let new: Invoice = serde_json::from_str(
            r#"{"id":"in_1","parent":{"type":"subscription_details","subscription_details":
                  {"subscription":"sub_1","metadata":{"kopilka_subscription_id":"s1"}}},
                "payments":{"data":[{"id":"inpay_1","status":"paid",
                  "payment":{"type":"payment_intent","payment_intent":
                    {"id":"pi_1","latest_charge":{"id":"ch_1","balance_transaction":
                      {"id":"txn_1","amount":1000,"fee":59,"net":941,"currency":"eur"}}}}}]}}"#,
        )
        .unwrap();
        for invoice in [&old, &new] {
            assert_eq!(invoice.subscription_id(), Some("sub_1"));
            assert_eq!(invoice.our_subscription_id(), Some("s1"));
            assert_eq!(invoice.charge().map(|c| c.id).as_deref(), Some("ch_1"));
            assert_eq!(invoice.payment_intent_id(), Some("pi_1"));
        }
        let fee = new.charge().and_then(|c| c.fee).unwrap();
        assert_eq!((fee.fee, fee.currency.as_str()), (59, "EUR"));
        let bare: Invoice = serde_json::from_str(
            r#"{"id":"in_2","parent":{"subscription_details":{"subscription":"sub_1"}}}"#,
        )
        .unwrap();
        assert_eq!(bare.charge(), None);
    }

    #[test]
    fn both_subscription_shapes_give_period_seats_and_plan() {
        let old: Subscription = serde_json::from_str(
            r#"{"id":"sub_1","status":"active","current_period_start":10,"current_period_end":20,
                "items":{"data":[{"id":"si_1","quantity":3,"plan":{"id":"price_a"}}]}}"#,
        )
        .unwrap();
        let new: Subscription = serde_json::from_str(
            r#"{"id":"sub_1","status":"active","items":{"data":[{"id":"si_1","quantity":3,
                "current_period_start":10,"current_period_end":20,"price":{"id":"price_a"}}]}}"#,
        )
        .unwrap();
        for s in [old, new] {
            assert_eq!(s.period(), Some((10, 20)));
            assert_eq!(s.quantity(), Some(3));
            assert_eq!(s.plan_id(), Some("price_a"));
            assert_eq!(s.status, SubscriptionStatus::Active);
        }
    }
}
