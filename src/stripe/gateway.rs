//! The Stripe gateway: the few calls Kopilka makes. Requests are async-stripe's typed request
//! builders; we send them ourselves so that every attempt of a call carries *our* idempotency
//! key (derived from our record's id, so a retried purchase can never create a second Stripe
//! object) and so that answers are read into the tolerant structs of `objects`.
//!
//! Never call this inside a database transaction: write, commit, call, record the result.

use super::objects::{self, ErrorBody};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::time::Duration;
use stripe_client_core::{RequestBuilder, StripeMethod, StripeRequest};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Stripe refused the request (4xx): a declined card, a bad payment method, …
    #[error("Stripe refused the request ({status}): {message}")]
    Refused {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Stripe could not be reached or failed (network, timeout, 5xx) after every retry.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Clone)]
pub struct Gateway {
    http: reqwest::Client,
    base: String,
    secret: String,
    attempts: u32,
    version: ApiVersion,
}

/// The Stripe API version every call pins (`Stripe-Version`), from `stripe.api_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiVersion(String);

impl ApiVersion {
    pub fn new(version: &str) -> ApiVersion {
        ApiVersion(version.trim().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// From `2025-03-31.basil` on, invoices lost `payment_intent`/`charge` (payments are
    /// invoice payment objects and the client secret is `confirmation_secret`) and the
    /// subscription's period moved to its items. Older versions (and localstripe) take the
    /// older parameters.
    pub fn current_shapes(&self) -> bool {
        self.0.as_str() >= "2025-03-31"
    }
}

fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Stripe's currency for our ISO code; one it does not list is refused, never charged as
/// another currency.
fn currency(code: &str) -> Result<stripe_types::Currency, GatewayError> {
    code.to_ascii_lowercase()
        .parse()
        .map_err(|_| GatewayError::Refused {
            status: 400,
            code: Some("unsupported_currency".into()),
            message: format!("Stripe does not take {code}"),
        })
}

impl Gateway {
    /// `base` is Stripe's API root (`https://api.stripe.com/`) or an emulator's.
    pub fn new(
        secret: &str,
        base: &str,
        version: ApiVersion,
        timeout: Duration,
        attempts: u32,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Gateway {
            http,
            base: base.trim_end_matches('/').to_owned(),
            secret: secret.to_owned(),
            attempts: attempts.max(1),
            version,
        })
    }

    pub fn version(&self) -> &ApiVersion {
        &self.version
    }

    /// Sends one request, retrying network errors, timeouts, 429 and 5xx with exponential
    /// backoff; every attempt carries the same idempotency key.
    async fn send<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<T, GatewayError> {
        let mut url = format!("{}/v1{}", self.base, req.path);
        if let Some(q) = &req.query {
            url.push('?');
            url.push_str(q);
        }
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
            }
            let mut http = match req.method {
                StripeMethod::Get => self.http.get(&url),
                StripeMethod::Post => self.http.post(&url),
                StripeMethod::Delete => self.http.delete(&url),
            }
            .bearer_auth(&self.secret)
            .header("Stripe-Version", self.version.as_str());
            if let Some(key) = idempotency_key {
                http = http.header("Idempotency-Key", key);
            }
            if let Some(body) = &req.body {
                http = http
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.clone());
            }
            let res = match http.send().await {
                Ok(res) => res,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let status = res.status().as_u16();
            let bytes = match res.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            if (200..300).contains(&status) {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    GatewayError::Unavailable(format!("unreadable answer from Stripe: {e}"))
                });
            }
            let error = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error)
                .unwrap_or_default();
            let message = error
                .message
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            // `idempotency_key_in_use`: our first attempt with this key is still running at
            // Stripe (it timed out on our side); the same key later gets its answer.
            if status == 429
                || status >= 500
                || error.code.as_deref() == Some("idempotency_key_in_use")
            {
                last = format!("{status}: {message}");
                continue;
            }
            return Err(GatewayError::Refused {
                status,
                code: error.code,
                message,
            });
        }
        Err(GatewayError::Unavailable(last))
    }

    /// A subscription answer both as sent (for the same code path as webhooks) and typed.
    async fn send_subscription(
        &self,
        req: RequestBuilder,
        key: Option<&str>,
    ) -> Result<(serde_json::Value, objects::Subscription), GatewayError> {
        let value: serde_json::Value = self.send(req, key).await?;
        let typed = serde_json::from_value(value.clone())
            .map_err(|e| GatewayError::Unavailable(format!("unreadable subscription: {e}")))?;
        Ok((value, typed))
    }

    pub async fn create_customer(
        &self,
        user_id: &str,
        email: Option<&str>,
    ) -> Result<objects::Customer, GatewayError> {
        let mut req = stripe_core::customer::CreateCustomer::new()
            .metadata(metadata(&[("kopilka_user_id", user_id)]));
        if let Some(email) = email {
            req = req.email(email);
        }
        // One customer per user, even if two first purchases race: Stripe answers the same
        // key with the same customer.
        self.send(req.build(), Some(&format!("customer-{user_id}")))
            .await
    }

    /// Attaches a payment method the app collected and makes it the customer's default.
    pub async fn set_default_payment_method(
        &self,
        customer: &str,
        payment_method: &str,
    ) -> Result<(), GatewayError> {
        let attach = stripe_payment::payment_method::AttachPaymentMethod::new(payment_method)
            .customer(customer);
        let _: serde_json::Value = self.send(attach.build(), None).await?;
        let settings = stripe_core::customer::UpdateCustomerInvoiceSettings {
            default_payment_method: Some(payment_method.to_owned()),
            ..Default::default()
        };
        let update =
            stripe_core::customer::UpdateCustomer::new(customer).invoice_settings(settings);
        let _: serde_json::Value = self.send(update.build(), None).await?;
        Ok(())
    }

    /// Makes sure Stripe knows our product and our recurring price (as a Stripe plan whose
    /// id is our price id, so no mapping table is needed). "Already exists" is success.
    pub async fn ensure_plan(
        &self,
        product_id: &str,
        product_name: &str,
        price_id: &str,
        amount_minor: i64,
        currency_code: &str,
        interval: &str,
    ) -> Result<(), GatewayError> {
        let product = stripe_product::product::CreateProduct::new(product_name).id(product_id);
        already_exists_is_ok(
            self.send::<serde_json::Value>(product.build(), Some(&format!("product-{product_id}")))
                .await,
        )?;
        let interval = if interval == "year" {
            stripe_shared::PlanInterval::Year
        } else {
            stripe_shared::PlanInterval::Month
        };
        let plan = stripe_billing::plan::CreatePlan::new(currency(currency_code)?, interval)
            .id(price_id)
            .amount(amount_minor)
            .product(stripe_billing::plan::CreatePlanProduct::Id(
                product_id.to_owned(),
            ));
        already_exists_is_ok(
            self.send::<serde_json::Value>(plan.build(), Some(&format!("plan-{price_id}")))
                .await,
        )
    }

    /// A subscription to `plan` (our price id), linked back to our record by metadata.
    ///
    /// Current API versions: nothing is charged until the app confirms the first payment
    /// (`default_incomplete`, 3-D Secure included) with the client secret of the first
    /// invoice's `confirmation_secret`; the card it confirms with becomes the subscription's
    /// default (`save_default_payment_method`), so renewals can be charged off-session. A trial
    /// has nothing to pay now: its `pending_setup_intent` sets the card up instead.
    pub async fn create_subscription(
        &self,
        ours: &str,
        customer: &str,
        plan: &str,
        quantity: u64,
        trial_end: Option<i64>,
    ) -> Result<(serde_json::Value, objects::Subscription), GatewayError> {
        let req = self.subscription_request(ours, customer, plan, quantity, trial_end);
        self.send_subscription(req.build(), Some(&format!("subscription-{ours}")))
            .await
    }

    fn subscription_request(
        &self,
        ours: &str,
        customer: &str,
        plan: &str,
        quantity: u64,
        trial_end: Option<i64>,
    ) -> stripe_billing::subscription::CreateSubscription {
        use stripe_billing::subscription::{
            CreateSubscription, CreateSubscriptionItems, CreateSubscriptionPaymentBehavior,
            CreateSubscriptionPaymentSettings,
            CreateSubscriptionPaymentSettingsSaveDefaultPaymentMethod as SaveDefault,
        };
        let item = CreateSubscriptionItems {
            plan: Some(plan.to_owned()),
            quantity: Some(quantity),
            ..Default::default()
        };
        let mut req = CreateSubscription::new()
            .customer(customer)
            .items(vec![item])
            .metadata(metadata(&[("kopilka_subscription_id", ours)]));
        req = if self.version.current_shapes() {
            req.payment_behavior(CreateSubscriptionPaymentBehavior::DefaultIncomplete)
                .payment_settings(CreateSubscriptionPaymentSettings {
                    save_default_payment_method: Some(SaveDefault::OnSubscription),
                    ..Default::default()
                })
                .expand(vec![
                    "latest_invoice.confirmation_secret".to_owned(),
                    "pending_setup_intent".to_owned(),
                ])
        } else {
            req.expand(vec!["latest_invoice.payment_intent".to_owned()])
        };
        if let Some(end) = trial_end {
            req = req.trial_end(
                stripe_billing::subscription::CreateSubscriptionTrialEnd::Timestamp(end),
            );
        }
        req
    }

    /// Cancel at period end (`true`) or resume (`false`). `version` distinguishes repeated
    /// toggles so each gets its own idempotency key.
    pub async fn set_cancel_at_period_end(
        &self,
        stripe_id: &str,
        cancel: bool,
        key: &str,
    ) -> Result<(serde_json::Value, objects::Subscription), GatewayError> {
        let req = stripe_billing::subscription::UpdateSubscription::new(stripe_id)
            .cancel_at_period_end(cancel);
        self.send_subscription(req.build(), Some(key)).await
    }

    /// A new seat count on the subscription's one item.
    pub async fn set_quantity(
        &self,
        stripe_id: &str,
        item_id: &str,
        plan: &str,
        quantity: u64,
        key: &str,
    ) -> Result<(serde_json::Value, objects::Subscription), GatewayError> {
        use stripe_billing::subscription::{UpdateSubscription, UpdateSubscriptionItems};
        let item = UpdateSubscriptionItems {
            id: Some(item_id.to_owned()),
            plan: Some(plan.to_owned()),
            quantity: Some(quantity),
            ..Default::default()
        };
        let req = UpdateSubscription::new(stripe_id).items(vec![item]);
        self.send_subscription(req.build(), Some(key)).await
    }

    /// Moves the subscription's item to another plan. `prorate_now` (an upgrade): on current
    /// API versions the proration is invoiced and charged at once and the update waits for the
    /// payment (`always_invoice` + `pending_if_incomplete`: a failed payment leaves the old
    /// plan); older versions take Stripe's default prorations, invoiced by `invoice_now`.
    /// Otherwise no proration (a downgrade applied at the period's end).
    pub async fn change_plan(
        &self,
        stripe_id: &str,
        item_id: &str,
        plan: &str,
        quantity: u64,
        prorate_now: bool,
        key: &str,
    ) -> Result<(serde_json::Value, objects::Subscription), GatewayError> {
        use stripe_billing::subscription::{
            UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionPaymentBehavior,
            UpdateSubscriptionProrationBehavior,
        };
        let pending = prorate_now && self.version.current_shapes();
        // A pending update takes only `price` and `quantity` (our plan ids are Stripe price
        // ids too); older versions know the item's `plan`.
        let item = UpdateSubscriptionItems {
            id: Some(item_id.to_owned()),
            plan: (!pending).then(|| plan.to_owned()),
            price: pending.then(|| plan.to_owned()),
            quantity: Some(quantity),
            ..Default::default()
        };
        let mut req = UpdateSubscription::new(stripe_id).items(vec![item]);
        if !prorate_now {
            req = req.proration_behavior(UpdateSubscriptionProrationBehavior::None);
        } else if pending {
            // The proration is invoiced and charged now; the answer carries its client
            // secret for the app when the bank asks the customer to confirm.
            req = req
                .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
                .payment_behavior(UpdateSubscriptionPaymentBehavior::PendingIfIncomplete)
                .expand(vec!["latest_invoice.confirmation_secret".to_owned()]);
        }
        self.send_subscription(req.build(), Some(key)).await
    }

    /// Moves the subscription to `new_price` at `period_end` exactly, through a subscription
    /// schedule: the way to keep the billing date when the interval changes (a plain update
    /// to a monthly price resets the anchor to the moment of the update). The current phase
    /// keeps `current_price` until `period_end`; the next bills `new_price` from then, with
    /// no proration (the year was paid); the schedule then releases the subscription.
    /// `schedule` is the one Stripe already attached (a retry after the first step).
    #[allow(clippy::too_many_arguments)]
    pub async fn schedule_plan_at_period_end(
        &self,
        stripe_id: &str,
        schedule: Option<&str>,
        current_price: &str,
        new_price: &str,
        quantity: u64,
        period_end: i64,
        key: &str,
    ) -> Result<(), GatewayError> {
        use stripe_billing::subscription_schedule::{
            CreateSubscriptionSchedule, UpdateSubscriptionSchedule,
            UpdateSubscriptionSchedulePhases, UpdateSubscriptionSchedulePhasesEndDate,
            UpdateSubscriptionSchedulePhasesItems,
            UpdateSubscriptionSchedulePhasesProrationBehavior,
            UpdateSubscriptionSchedulePhasesStartDate, UpdateSubscriptionScheduleProrationBehavior,
        };
        let created: objects::SubscriptionSchedule = match schedule {
            Some(id) => {
                let req =
                    RequestBuilder::new(StripeMethod::Get, format!("/subscription_schedules/{id}"));
                self.send(req, None).await?
            }
            None => {
                let req = CreateSubscriptionSchedule::new().from_subscription(stripe_id);
                self.send(req.build(), Some(&format!("{key}-schedule")))
                    .await?
            }
        };
        // The current phase must keep the start Stripe gave it.
        let start = created.phases.first().map(|p| p.start_date).unwrap_or(0);
        let item = |price: &str| UpdateSubscriptionSchedulePhasesItems {
            price: Some(price.to_owned()),
            quantity: Some(quantity),
            ..UpdateSubscriptionSchedulePhasesItems::new()
        };
        let mut now = UpdateSubscriptionSchedulePhases::new(vec![item(current_price)]);
        now.start_date = Some(UpdateSubscriptionSchedulePhasesStartDate::Timestamp(start));
        now.end_date = Some(UpdateSubscriptionSchedulePhasesEndDate::Timestamp(
            period_end,
        ));
        let mut next = UpdateSubscriptionSchedulePhases::new(vec![item(new_price)]);
        next.proration_behavior = Some(UpdateSubscriptionSchedulePhasesProrationBehavior::None);
        let req = UpdateSubscriptionSchedule::new(created.id.as_str())
            .phases(vec![now, next])
            .end_behavior(stripe_shared::SubscriptionScheduleEndBehavior::Release)
            .proration_behavior(UpdateSubscriptionScheduleProrationBehavior::None);
        let _: objects::SubscriptionSchedule = self
            .send(req.build(), Some(&format!("{key}-phases")))
            .await?;
        Ok(())
    }

    /// Invoices the subscription's pending items (an upgrade's proration) and pays it now.
    pub async fn invoice_now(
        &self,
        customer: &str,
        stripe_sub: &str,
        key: &str,
    ) -> Result<(), GatewayError> {
        let form = std::collections::BTreeMap::from([
            ("customer", customer),
            ("subscription", stripe_sub),
        ]);
        let create = RequestBuilder::new(StripeMethod::Post, "/invoices").form(&form);
        let invoice: objects::Invoice = self.send(create, Some(key)).await?;
        let pay = RequestBuilder::new(StripeMethod::Post, format!("/invoices/{}/pay", invoice.id));
        match self
            .send::<serde_json::Value>(pay, Some(&format!("{key}-pay")))
            .await
        {
            // Nothing to pay (credit exceeds the charge): Stripe says so; that is fine.
            Err(GatewayError::Refused { message, .. }) if message.contains("already paid") => {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    pub async fn retrieve_subscription(
        &self,
        stripe_id: &str,
    ) -> Result<(serde_json::Value, objects::Subscription), GatewayError> {
        let req = RequestBuilder::new(StripeMethod::Get, format!("/subscriptions/{stripe_id}"));
        self.send_subscription(req, None).await
    }

    /// A one-off payment for our record `ours` (an order or a donation).
    pub async fn create_payment_intent(
        &self,
        ours_kind: &str,
        ours: &str,
        customer: &str,
        amount_minor: i64,
        currency_code: &str,
        payment_method: Option<&str>,
    ) -> Result<objects::PaymentIntent, GatewayError> {
        let mut req = stripe_core::payment_intent::CreatePaymentIntent::new(
            amount_minor,
            currency(currency_code)?,
        )
        .customer(customer)
        .metadata(metadata(&[(ours_kind, ours)]));
        if let Some(pm) = payment_method {
            req = req.payment_method(pm);
        }
        self.send(req.build(), Some(&format!("payment-{ours}")))
            .await
    }

    /// What Stripe's balance got for a charge (fee and net in the settlement currency), from
    /// its balance transaction; `None` while the charge has none yet.
    pub async fn charge_settlement(
        &self,
        charge: &str,
    ) -> Result<Option<objects::Settlement>, GatewayError> {
        let req = stripe_core::charge::RetrieveCharge::new(charge)
            .expand(vec!["balance_transaction".to_owned()]);
        let charge: objects::Charge = self.send(req.build(), None).await?;
        Ok(charge.settlement())
    }

    /// The charge that paid an invoice whose event did not name it (current API versions send
    /// invoices without their payments): the invoice with its payments' intents expanded, then
    /// the intent itself if the charge is still not named.
    pub async fn invoice_charge(
        &self,
        invoice: &str,
        intent: Option<&str>,
    ) -> Result<Option<objects::ChargeRef>, GatewayError> {
        #[derive(serde::Serialize)]
        struct Expand {
            expand: [&'static str; 1],
        }
        let pi_id = match intent {
            Some(pi) => pi.to_owned(),
            None => {
                let mut req =
                    RequestBuilder::new(StripeMethod::Get, format!("/invoices/{invoice}"));
                // Older versions name the charge on the invoice itself.
                if self.version.current_shapes() {
                    req = req.query(&Expand {
                        expand: ["payments.data.payment.payment_intent"],
                    });
                }
                let found: objects::Invoice = self.send(req, None).await?;
                if let Some(charge) = found.charge() {
                    return Ok(Some(charge));
                }
                match found.payment_intent_id() {
                    Some(pi) => pi.to_owned(),
                    None => return Ok(None),
                }
            }
        };
        let req = RequestBuilder::new(StripeMethod::Get, format!("/payment_intents/{pi_id}"));
        let pi: objects::PaymentIntent = self.send(req, None).await?;
        Ok(pi.charge())
    }

    /// Ends a subscription now (a monthly donation the donor stops).
    pub async fn cancel_subscription(
        &self,
        stripe_id: &str,
    ) -> Result<objects::Subscription, GatewayError> {
        let req = RequestBuilder::new(StripeMethod::Delete, format!("/subscriptions/{stripe_id}"));
        self.send(req, None).await
    }

    /// Refunds `amount` of a charge; `key` names this refund, so a retried request makes it
    /// once. Our order's id rides in its metadata.
    pub async fn create_refund(
        &self,
        charge: &str,
        amount: i64,
        reason: Option<&str>,
        order: &str,
        key: &str,
    ) -> Result<objects::Refund, GatewayError> {
        #[derive(serde::Serialize)]
        struct Form<'a> {
            charge: &'a str,
            amount: i64,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
            metadata: HashMap<&'a str, &'a str>,
        }
        let form = Form {
            charge,
            amount,
            reason,
            metadata: HashMap::from([("kopilka_order_id", order)]),
        };
        let req = RequestBuilder::new(StripeMethod::Post, "/refunds").form(&form);
        self.send(req, Some(key)).await
    }

    /// Creates the creator's Express account (controller properties: the platform pays
    /// Connect's fees and bears losses, Stripe collects requirements and hosts the dashboard)
    /// asking for the `transfers` capability. The key is the creator's, so a retry (or a
    /// concurrent request) finds the account the first attempt made.
    pub async fn create_connect_account(
        &self,
        creator: &str,
        country: &str,
        email: Option<&str>,
    ) -> Result<objects::Account, GatewayError> {
        use stripe_connect::account::*;
        let controller = CreateAccountController {
            fees: Some(CreateAccountControllerFees {
                payer: Some(CreateAccountControllerFeesPayer::Application),
            }),
            losses: Some(CreateAccountControllerLosses {
                payments: Some(CreateAccountControllerLossesPayments::Application),
            }),
            requirement_collection: Some(CreateAccountControllerRequirementCollection::Stripe),
            stripe_dashboard: Some(CreateAccountControllerStripeDashboard {
                type_: Some(CreateAccountControllerStripeDashboardType::Express),
            }),
        };
        let mut capabilities = CreateAccountCapabilities::new();
        capabilities.transfers = Some(CreateAccountCapabilitiesTransfers {
            requested: Some(true),
        });
        let mut req = CreateAccount::new()
            .controller(controller)
            .capabilities(capabilities)
            .country(country)
            .metadata(metadata(&[("kopilka_creator_id", creator)]));
        if let Some(email) = email {
            req = req.email(email);
        }
        self.send(
            req.build(),
            Some(&format!("kopilka-connect-account-{creator}")),
        )
        .await
    }

    /// A fresh onboarding link (single use, expiring within minutes: never reuse one).
    pub async fn create_account_link(
        &self,
        account: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<objects::AccountLink, GatewayError> {
        use stripe_connect::account_link::*;
        let req = CreateAccountLink::new(account, CreateAccountLinkType::AccountOnboarding)
            .refresh_url(refresh_url)
            .return_url(return_url);
        let key = format!("kopilka-account-link-{}", uuid::Uuid::new_v4().simple());
        self.send(req.build(), Some(&key)).await
    }

    pub async fn retrieve_account(&self, id: &str) -> Result<objects::Account, GatewayError> {
        self.send(
            RequestBuilder::new(StripeMethod::Get, format!("/accounts/{id}")),
            None,
        )
        .await
    }

    /// Transfers a payout line to the creator's connected account; the key is the line's, so
    /// a retry after a timeout finds the transfer the first attempt made.
    pub async fn create_transfer(
        &self,
        line: &str,
        run: &str,
        destination: &str,
        amount: i64,
        currency_code: &str,
    ) -> Result<objects::Transfer, GatewayError> {
        let req =
            stripe_connect::transfer::CreateTransfer::new(currency(currency_code)?, destination)
                .amount(amount)
                .transfer_group(run)
                .metadata(metadata(&[("kopilka_payout_line", line)]));
        self.send(req.build(), Some(&format!("kopilka-payout-{line}")))
            .await
    }

    pub async fn retrieve_refund(&self, id: &str) -> Result<objects::Refund, GatewayError> {
        self.send(
            RequestBuilder::new(StripeMethod::Get, format!("/refunds/{id}")),
            None,
        )
        .await
    }

    pub async fn retrieve_charge(&self, id: &str) -> Result<objects::Charge, GatewayError> {
        self.send(
            RequestBuilder::new(StripeMethod::Get, format!("/charges/{id}")),
            None,
        )
        .await
    }

    /// The refunds of a charge (current API versions send `charge.refunded` without them).
    pub async fn list_refunds(&self, charge: &str) -> Result<Vec<objects::Refund>, GatewayError> {
        #[derive(serde::Serialize)]
        struct Query<'a> {
            charge: &'a str,
            limit: u8,
        }
        let req =
            RequestBuilder::new(StripeMethod::Get, "/refunds").query(&Query { charge, limit: 100 });
        let list: objects::List<objects::Refund> = self.send(req, None).await?;
        Ok(list.data)
    }

    /// One page of events created after `created_after` (oldest first is not guaranteed by
    /// Stripe: callers sort).
    /// One page (100, newest first) of the transfers of a `transfer_group` (a payout run).
    pub async fn list_transfers(
        &self,
        group: &str,
        starting_after: Option<&str>,
    ) -> Result<objects::List<objects::Transfer>, GatewayError> {
        let mut req = stripe_connect::transfer::ListTransfer::new()
            .transfer_group(group)
            .limit(100);
        if let Some(after) = starting_after {
            req = req.starting_after(after);
        }
        self.send(req.build(), None).await
    }

    /// One page (100, newest first) of the platform's `stripe_fee` balance transactions
    /// created since `since`: what Stripe charges for its services (Connect's monthly
    /// active-account and payout fees among them).
    pub async fn list_stripe_fees(
        &self,
        since: i64,
        starting_after: Option<&str>,
    ) -> Result<objects::List<objects::BalanceTransaction>, GatewayError> {
        let bounds = stripe_types::RangeBoundsTs {
            gte: Some(since),
            ..Default::default()
        };
        let mut req = stripe_core::balance_transaction::ListBalanceTransaction::new()
            .type_("stripe_fee")
            .created(stripe_types::RangeQueryTs::Bounds(bounds))
            .limit(100);
        if let Some(after) = starting_after {
            req = req.starting_after(after);
        }
        self.send(req.build(), None).await
    }

    pub async fn list_events(
        &self,
        created_after: i64,
        starting_after: Option<&str>,
    ) -> Result<objects::List<serde_json::Value>, GatewayError> {
        let bounds = stripe_types::RangeBoundsTs {
            gt: Some(created_after),
            ..Default::default()
        };
        let mut req = stripe_core::event::ListEvent::new()
            .created(stripe_types::RangeQueryTs::Bounds(bounds))
            .limit(100);
        if let Some(after) = starting_after {
            req = req.starting_after(after);
        }
        self.send(req.build(), None).await
    }
}

fn already_exists_is_ok(r: Result<serde_json::Value, GatewayError>) -> Result<(), GatewayError> {
    match r {
        Ok(_) => Ok(()),
        // Stripe: 400 resource_already_exists; emulators: 409.
        Err(GatewayError::Refused {
            status,
            code,
            message,
        }) if status == 409
            || code.as_deref() == Some("resource_already_exists")
            || message.contains("already exists") =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(version: &str) -> Gateway {
        let timeout = Duration::from_secs(1);
        Gateway::new(
            "sk_test",
            "http://127.0.0.1:9/",
            ApiVersion::new(version),
            timeout,
            1,
        )
        .unwrap()
    }

    fn form_of(req: RequestBuilder) -> String {
        let body = req.body.unwrap_or_default();
        body.replace("%5B", "[").replace("%5D", "]")
    }

    #[test]
    fn current_versions_subscribe_default_incomplete_and_save_the_card_for_renewals() {
        let gw = gateway(stripe_client_core::VERSION.as_str());
        assert!(gw.version().current_shapes());
        let form = form_of(
            gw.subscription_request("s1", "cus_1", "plan_1", 1, None)
                .build(),
        );
        assert!(
            form.contains("payment_behavior=default_incomplete"),
            "{form}"
        );
        assert!(
            form.contains("payment_settings[save_default_payment_method]=on_subscription"),
            "{form}"
        );
        assert!(
            form.contains("latest_invoice.confirmation_secret"),
            "{form}"
        );
        assert!(form.contains("pending_setup_intent"), "{form}");
        assert!(!form.contains("latest_invoice.payment_intent"), "{form}");
    }

    #[test]
    fn the_default_configuration_pins_the_version_async_stripe_is_generated_for() {
        let pinned = format!("api_version = \"{}\"", stripe_client_core::VERSION.as_str());
        assert!(include_str!("../../config/default.toml").contains(&pinned));
    }

    #[test]
    fn older_versions_keep_the_older_parameters() {
        let gw = gateway("2020-08-27");
        assert!(!gw.version().current_shapes());
        let form = form_of(
            gw.subscription_request("s1", "cus_1", "plan_1", 1, None)
                .build(),
        );
        assert!(!form.contains("payment_behavior"), "{form}");
        assert!(form.contains("latest_invoice.payment_intent"), "{form}");
    }
}
