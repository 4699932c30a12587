//! Stripe's objects as we read them: only the fields we use, every one optional or defaulted,
//! unknown fields ignored. Stripe adds fields every month and emulators lag behind; neither
//! may break a purchase.

use serde::Deserialize;

/// A field Stripe sends as an id, or as the object when asked to expand it.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T> Expandable<T> {
    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Object(o) => Some(o),
            Expandable::Id(_) => None,
        }
    }
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
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Invoice {
    pub id: String,
    pub status: Option<String>,
    pub payment_intent: Option<Expandable<PaymentIntent>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscriptionItem {
    pub id: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct List<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Subscription {
    pub id: String,
    pub status: String,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub latest_invoice: Option<Expandable<Invoice>>,
    pub items: List<SubscriptionItem>,
}

impl Subscription {
    /// The client secret the app confirms the first payment with, when one is owed.
    pub fn client_secret(&self) -> Option<String> {
        let invoice = self.latest_invoice.as_ref()?.object()?;
        let intent = invoice.payment_intent.as_ref()?.object()?;
        (intent.status != "succeeded")
            .then(|| intent.client_secret.clone())
            .flatten()
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Charge {
    pub id: String,
    /// Absent until the charge is settled into the balance (asynchronous payment methods).
    pub balance_transaction: Option<Expandable<BalanceTransaction>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct BalanceTransaction {
    pub id: String,
    pub fee: i64,
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
        assert_eq!(paid.status, "");
    }
}
