//! Billing tests' harness: an app wired to localstripe (its signed webhooks registered to
//! this app) and to the SMTP server; Stripe calls as the mobile SDK or Stripe itself would
//! make them; Stripe-shaped events signed with Stripe's scheme for what localstripe cannot
//! send; and the ledger invariants.

use crate::helpers::{eventually, spawn_with, Backend, TestApp, TestDb};
use crate::real_parts::{mails_to, real_parts};
use kopilka::stripe::signature::sign;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);

/// The API version localstripe speaks (it predates invoice payments and item periods, and
/// refuses the current subscription parameters): test apps pin it, as a deployment on that
/// version would. The current version's requests are checked in `stripe::gateway`'s tests.
pub const LOCALSTRIPE_VERSION: &str = "2020-08-27";

pub async fn spawn_billing(b: Backend) -> TestApp {
    spawn_billing_with(b, |_| {}).await
}

pub async fn spawn_billing_with(
    b: Backend,
    tweak: impl FnOnce(&mut kopilka::config::Settings),
) -> TestApp {
    let app = spawn_unhooked(b, tweak).await;
    hook(&app).await;
    app
}

/// An app wired to localstripe whose webhooks are *not* delivered to it (tests deliver them).
pub async fn spawn_unhooked(
    b: Backend,
    tweak: impl FnOnce(&mut kopilka::config::Settings),
) -> TestApp {
    let parts = real_parts();
    let secret = format!("whsec_{}", uuid::Uuid::new_v4().simple());
    let s2 = secret.clone();
    let app = spawn_with(Arc::new(TestDb::new(b)), move |s| {
        s.stripe.secret_key = Some("sk_test_kopilka".to_owned().into());
        s.stripe.api_base = format!("{}/", parts.stripe_url);
        s.stripe.api_version = LOCALSTRIPE_VERSION.to_owned();
        s.stripe.webhook_secrets = vec![s2.into()];
        s.stripe.sync_interval_seconds = 0;
        s.email.transport = kopilka::config::EmailTransport::Smtp;
        s.email.smtp_host = "127.0.0.1".into();
        s.email.smtp_port = parts.smtp_port;
        s.email.smtp_security = "none".into();
        s.billing.jobs_interval_ms = 50;
        s.billing.maintenance_interval_seconds = 0;
        tweak(s);
    })
    .await;
    app
}

/// Registers the app as a localstripe webhook endpoint.
pub async fn hook(app: &TestApp) {
    use secrecy::ExposeSecret;
    let parts = real_parts();
    let secret = app.settings.stripe.webhook_secrets[0]
        .expose_secret()
        .to_owned();
    let hook = uuid::Uuid::new_v4().simple().to_string();
    app.stripe_hook.set(hook.clone()).expect("hooked once");
    let res = app
        .client
        .post(format!("{}/_config/webhooks/{hook}", parts.stripe_url))
        .form(&[("url", app.url("/v1/webhooks/stripe")), ("secret", secret)])
        .send()
        .await
        .expect("register webhook");
    assert!(
        res.status().is_success(),
        "localstripe webhook registration"
    );
}

/// Stops localstripe delivering to a stopped app's endpoint: it has no way to delete one, and
/// it delivers each event to every endpoint in turn, so hundreds of dead ones would slow every
/// delivery. Re-registered for an event type that never happens.
pub fn silence_hook(hook: &str) {
    use std::io::{Read, Write};
    let url = &real_parts().stripe_url;
    let Some(host) = url.strip_prefix("http://") else {
        return;
    };
    let body = r#"{"url":"http://127.0.0.1:9/","secret":"none","events":["kopilka.never"]}"#;
    let req = format!(
        "POST /_config/webhooks/{hook} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut stream) = std::net::TcpStream::connect(host) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.write_all(req.as_bytes());
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

/// A call straight to Stripe (localstripe), as the app's Stripe SDK or the dashboard makes.
pub async fn stripe(app: &TestApp, method: &str, path: &str, form: &[(&str, &str)]) -> Value {
    let url = format!("{}/v1{path}", real_parts().stripe_url);
    let req = match method {
        "GET" => app.client.get(url),
        _ => app.client.post(url).form(form),
    };
    let res = req
        .basic_auth("sk_test_kopilka", Some(""))
        .send()
        .await
        .expect("localstripe");
    let status = res.status();
    let body: Value = res.json().await.expect("localstripe json");
    assert!(status.is_success(), "localstripe {path}: {body}");
    body
}

/// Every object of a localstripe list (`/events`, `/customers`, …), page by page: one
/// localstripe serves every test, so other tests' objects are many.
pub async fn stripe_all(app: &TestApp, list: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(id) => format!("{list}?limit=100&starting_after={id}"),
            None => format!("{list}?limit=100"),
        };
        let page = stripe(app, "GET", &path, &[]).await;
        let data = page["data"].as_array().expect("a list").clone();
        after = data
            .last()
            .and_then(|o| o["id"].as_str())
            .map(str::to_owned);
        all.extend(data);
        if page["has_more"] != true || after.is_none() {
            return all;
        }
    }
}

/// Every event localstripe holds about `customer`.
pub async fn customer_events(app: &TestApp, customer: &str) -> Vec<Value> {
    let mut events = stripe_all(app, "/events").await;
    events.retain(|e| e["data"]["object"]["customer"] == customer);
    events
}

/// A card payment method, as the app's Stripe SDK creates it.
pub async fn card(app: &TestApp) -> String {
    let pm = stripe(
        app,
        "POST",
        "/payment_methods",
        &[
            ("type", "card"),
            ("card[number]", "4242424242424242"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2034"),
            ("card[cvc]", "123"),
        ],
    )
    .await;
    pm["id"].as_str().expect("pm id").to_owned()
}

pub fn email_of(user: &str) -> String {
    format!("{user}@example.com")
}

pub fn user() -> String {
    format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// POSTs as `user` and expects `status`; returns the body.
pub async fn post_as(
    app: &TestApp,
    user: &str,
    path: &str,
    body: &Value,
    status: StatusCode,
) -> Value {
    let res = app.post(path, &app.token(user, &[]), body).await;
    let got = res.status();
    let body: Value = res.json().await.expect("json");
    assert_eq!(got, status, "{path}: {body}");
    body
}

/// The app confirms the payment with Stripe's SDK.
pub async fn confirm(app: &TestApp, intent_id: &str) {
    stripe(
        app,
        "POST",
        &format!("/payment_intents/{intent_id}/confirm"),
        &[],
    )
    .await;
}

/// Delivers a Stripe-shaped event, signed with the app's webhook secret. It may carry only what
/// Stripe's current API has (`stripe_shapes`).
pub async fn deliver(app: &TestApp, event: &Value) -> reqwest::Response {
    crate::stripe_shapes::assert_stripe_shaped(event);
    forward(app, event).await
}

/// Delivers an event localstripe made (in its older API's shape) as it is, signed with the app's
/// webhook secret.
pub async fn forward(app: &TestApp, event: &Value) -> reqwest::Response {
    use secrecy::ExposeSecret;
    let secret = app.settings.stripe.webhook_secrets[0]
        .expose_secret()
        .to_owned();
    let body = event.to_string();
    let sig = sign(body.as_bytes(), &secret, chrono::Utc::now().timestamp());
    app.client
        .post(app.url("/v1/webhooks/stripe"))
        .header("Stripe-Signature", sig)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("deliver")
}

pub fn event(kind: &str, object: Value) -> Value {
    json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event", "type": kind, "created": chrono::Utc::now().timestamp(),
        "data": {"object": object},
    })
}

/// Removes `keys` from `object`, if it is one.
fn without(object: Option<&mut Value>, keys: &[&str]) {
    if let Some(object) = object.and_then(Value::as_object_mut) {
        for key in keys {
            object.remove(*key);
        }
    }
}

/// A localstripe subscription (an older API's shape) as the current API has it: its period on
/// its item (`current_period_start/end`), its item's plan as a `price` too, and none of the
/// fields Stripe has since removed.
pub fn current_subscription(mut sub: Value) -> Value {
    let period = [
        ("current_period_start", sub["current_period_start"].clone()),
        ("current_period_end", sub["current_period_end"].clone()),
    ];
    #[rustfmt::skip]
    without(Some(&mut sub), &["current_period_start", "current_period_end", "plan", "quantity",
                              "discount", "tax_percent", "trial_from_plan", "trial_period_days"]);
    without(sub.get_mut("items"), &["total_count"]);
    let items = sub.pointer_mut("/items/data").and_then(Value::as_array_mut);
    for item in items.into_iter().flatten() {
        without(Some(&mut *item), &["invoice", "livemode"]);
        for (key, at) in &period {
            if !at.is_null() {
                item[*key] = at.clone();
            }
        }
        without(item.get_mut("plan"), &["name", "statement_descriptor"]);
        let Some(plan) = item.get("plan").filter(|p| p.is_object()) else {
            continue;
        };
        let price = json!({
            "id": plan["id"], "object": "price", "active": plan["active"],
            "billing_scheme": plan["billing_scheme"], "created": plan["created"],
            "currency": plan["currency"], "livemode": plan["livemode"],
            "metadata": plan["metadata"], "nickname": plan["nickname"],
            "product": plan["product"], "type": "recurring", "unit_amount": plan["amount"],
            "recurring": {"interval": plan["interval"], "interval_count": plan["interval_count"],
                          "usage_type": plan["usage_type"]},
        });
        item["price"] = price;
    }
    sub
}

/// A localstripe refund as the current API has it (no `date`, no `livemode`).
pub fn current_refund(mut refund: Value) -> Value {
    without(Some(&mut refund), &["date", "livemode"]);
    refund
}

/// A localstripe charge as the current API has it (no `invoice`; its refunds, when included,
/// current too).
pub fn current_charge(mut charge: Value) -> Value {
    without(Some(&mut charge), &["invoice"]);
    without(charge.get_mut("refunds"), &["total_count"]);
    let refunds = charge
        .pointer_mut("/refunds/data")
        .and_then(Value::as_array_mut);
    for refund in refunds.into_iter().flatten() {
        *refund = current_refund(refund.take());
    }
    charge
}

pub async fn holds(app: &TestApp, user: &str, key: &str) -> bool {
    app.keys(user).await.iter().any(|k| k == key)
}

pub async fn wait_until_holds(app: &TestApp, user: &str, key: &str, wanted: bool) {
    let ok = eventually(WAIT, || async { holds(app, user, key).await == wanted }).await;
    assert!(
        ok,
        "{user} should {}hold {key}",
        if wanted { "" } else { "not " }
    );
}

pub fn finance(app: &TestApp) -> String {
    app.token("finance-fay", &["finance"])
}

/// A ledger account's balance (debits positive), or 0 if it has no entries yet.
pub async fn balance(app: &TestApp, account: &str) -> i64 {
    let res = app
        .get(
            &format!("/v1/admin/ledger/accounts/{account}"),
            &finance(app),
        )
        .await;
    if res.status() == StatusCode::NOT_FOUND {
        return 0;
    }
    let body: Value = res.json().await.expect("json");
    body["balance_minor"].as_i64().expect("balance")
}

pub async fn wait_for_balance(app: &TestApp, account: &str, want: i64) {
    let ok = eventually(WAIT, || async { balance(app, account).await == want }).await;
    assert!(
        ok,
        "{account} should reach {want}, is {}",
        balance(app, account).await
    );
}

/// Waits for an email to `to` whose subject contains `subject`.
pub async fn wait_for_mail(to: &str, subject: &str) -> String {
    let mut found = String::new();
    let ok = eventually(WAIT, || {
        let hit = mails_to(to).into_iter().find(|(s, _)| s.contains(subject));
        if let Some((_, text)) = &hit {
            found = text.clone();
        }
        async move { hit.is_some() }
    })
    .await;
    assert!(
        ok,
        "no email {subject:?} to {to}; got {:?}",
        mails_to(to).iter().map(|m| &m.0).collect::<Vec<_>>()
    );
    found
}

/// The PaymentIntent a purchase answered with (its id is the client secret's prefix).
pub fn intent_of(started: &Value) -> String {
    let secret = started["client_secret"].as_str().expect("client_secret");
    secret.split("_secret_").next().unwrap_or(secret).to_owned()
}

/// Buys `price` for `buyer` (a gift when `recipient` is given) and pays it on localstripe;
/// returns the order.
pub async fn buy_and_pay(
    app: &TestApp,
    buyer: &str,
    price: &str,
    recipient: Option<&str>,
) -> Value {
    let pm = card(app).await;
    let order = post_as(
        app, buyer, "/v1/me/orders",
        &json!({"price_id": price, "recipient_id": recipient, "payment_method": pm, "email": email_of(buyer), "message": "for you"}),
        StatusCode::CREATED,
    )
    .await;
    assert!(order["client_secret"].is_string(), "{order}");
    let intent = intent_of(&order);
    confirm(app, &intent).await;
    order
}

/// A creator with a pack priced `amount` USD; returns (creator, product, price).
pub async fn creator_pack(app: &TestApp, share_bps: i32, amount: i64) -> (String, String, String) {
    let creator = user();
    let res = app
        .client
        .put(app.url(&format!("/v1/admin/creators/{creator}")))
        .bearer_auth(app.admin())
        .json(&json!({"display_name": "Artist", "revenue_share_bps": share_bps}))
        .send()
        .await
        .expect("creator");
    assert!(res.status().is_success(), "creator: {:?}", res.text().await);
    let product = format!("pack_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let res = app
        .post(
            "/v1/admin/products",
            &app.admin(),
            &json!({"id": product, "kind": "sticker_pack", "name": "Cats", "creator_id": creator}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
    let res = app
        .post(
            &format!("/v1/admin/products/{product}/prices"),
            &app.admin(),
            &json!({"amount_minor": amount, "currency": "USD"}),
        )
        .await;
    let price: Value = res.json().await.expect("price");
    (
        creator,
        product,
        price["id"].as_str().expect("price id").to_owned(),
    )
}

/// Every ledger transaction balances per currency, every entry is sealed by its transaction,
/// and each entry's currency is its account's.
pub fn assert_ledger_invariants(db_url: &str) {
    use diesel::prelude::*;
    use kopilka::db::schema::{ledger_accounts, ledger_entries, ledger_transactions};
    use std::collections::{BTreeMap, BTreeSet};
    let pool = kopilka::db::connect(db_url, 1).expect("connect");
    let mut conn = pool.get().expect("conn");
    let entries: Vec<(String, String, String, i64)> = ledger_entries::table
        .select((
            ledger_entries::transaction_id,
            ledger_entries::account_id,
            ledger_entries::currency,
            ledger_entries::amount_minor,
        ))
        .load(&mut *conn)
        .expect("entries");
    let sealed: BTreeSet<String> = ledger_transactions::table
        .select(ledger_transactions::id)
        .load::<String>(&mut *conn)
        .expect("transactions")
        .into_iter()
        .collect();
    let accounts: BTreeMap<String, String> = ledger_accounts::table
        .select((ledger_accounts::id, ledger_accounts::currency))
        .load::<(String, String)>(&mut *conn)
        .expect("accounts")
        .into_iter()
        .collect();
    let mut sums: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (txn, account, currency, amount) in &entries {
        assert!(sealed.contains(txn), "entry of unsealed transaction {txn}");
        assert_eq!(
            accounts.get(account),
            Some(currency),
            "entry currency differs from account {account}"
        );
        *sums.entry((txn.clone(), currency.clone())).or_default() += amount;
    }
    for ((txn, currency), sum) in sums {
        assert_eq!(sum, 0, "transaction {txn} does not balance in {currency}");
    }
}

/// The events the app has stored: (id, type, created, payload as received).
pub fn stored_events(app: &TestApp) -> Vec<(String, String, i64, String)> {
    use diesel::prelude::*;
    use kopilka::db::schema::stripe_events;
    let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
    let mut conn = pool.get().expect("conn");
    stripe_events::table
        .select((
            stripe_events::id,
            stripe_events::type_,
            stripe_events::created,
            stripe_events::payload,
        ))
        .order(stripe_events::created)
        .load(&mut *conn)
        .expect("stripe events")
}

/// Waits until the app has stored (and so applied: an event is stored in the transaction of
/// its effects) localstripe's `customer.subscription.created` for our subscription `ours`,
/// the subscription's first webhook, sent about a second after Stripe made it. Returns the
/// event as localstripe sent it.
pub async fn wait_for_first_webhook(app: &TestApp, ours: &str) -> Value {
    let mut found: Option<Value> = None;
    let ok = eventually(WAIT, || {
        found = stored_events(app)
            .into_iter()
            .filter(|(_, kind, _, _)| kind == "customer.subscription.created")
            .map(|(_, _, _, payload)| serde_json::from_str::<Value>(&payload).expect("payload"))
            .find(|e| e["data"]["object"]["metadata"]["kopilka_subscription_id"] == ours);
        let done = found.is_some();
        async move { done }
    })
    .await;
    assert!(
        ok,
        "localstripe's customer.subscription.created for {ours} was never applied"
    );
    found.expect("found")
}

/// Waits until the app has stored every event localstripe holds about `customer`: whatever
/// webhooks our calls so far made Stripe send have been applied. (localstripe makes its events
/// within the call that causes them and delivers each a second later.)
pub async fn wait_for_webhooks(app: &TestApp, customer: &str) {
    let sent: Vec<(String, String)> = customer_events(app, customer)
        .await
        .iter()
        .map(|e| {
            let id = e["id"].as_str().expect("event id").to_owned();
            (id, e["type"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    let missing = || {
        let stored: std::collections::BTreeSet<String> =
            stored_events(app).into_iter().map(|e| e.0).collect();
        sent.iter()
            .filter(|(id, _)| !stored.contains(id))
            .cloned()
            .collect::<Vec<_>>()
    };
    let ok = eventually(WAIT, || {
        let done = missing().is_empty();
        async move { done }
    })
    .await;
    assert!(ok, "localstripe's events never applied: {:?}", missing());
}

/// Our subscription `ours` as its owner `user` reads it (`GET /v1/me/subscriptions`).
pub async fn our_subscription(app: &TestApp, user: &str, ours: &str) -> Value {
    let res = app.get("/v1/me/subscriptions", &app.token(user, &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    body["subscriptions"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["id"] == ours).cloned())
        .unwrap_or_else(|| panic!("subscription {ours} in {body}"))
}

/// An event of `kind` that Stripe created at `created` (unix seconds), not now.
pub fn event_at(kind: &str, object: Value, created: i64) -> Value {
    let mut e = event(kind, object);
    e["created"] = created.into();
    e
}

/// An invoice as today's Stripe sends it in webhooks (as `stripe_today` builds it): its
/// subscription under `parent`, no charge and no payment intent (the service asks Stripe
/// which charge paid it).
pub fn invoice_now(invoice: &Value, sub: &Value, amount_paid: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    let line = format!("il_{}", &uuid::Uuid::new_v4().simple().to_string()[..14]);
    json!({
        "id": invoice["id"], "object": "invoice", "customer": invoice["customer"],
        "currency": invoice["currency"], "amount_paid": amount_paid, "total": amount_paid,
        "status": "paid", "billing_reason": "subscription_create", "attempt_count": 1,
        "lines": {"object": "list", "has_more": false, "data": [{
            "id": line, "object": "line_item", "period": {"start": now, "end": now + 30 * 86_400},
        }]},
        "parent": {"type": "subscription_details", "subscription_details": {
            "subscription": sub["id"], "metadata": sub["metadata"],
        }},
    })
}

/// How many emails whose subject contains `subject` the SMTP server received for `to`.
pub fn mails_about(to: &str, subject: &str) -> usize {
    mails_to(to)
        .iter()
        .filter(|(s, _)| s.contains(subject))
        .count()
}

/// Waits until the app's outbox holds nothing still to send to `to`.
pub async fn wait_for_outbox_drained(app: &TestApp, to: &str) {
    let pending = || {
        let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
        let mut conn = pool.get().expect("conn");
        kopilka::db::models::outbox::to_address(&mut conn, to)
            .expect("outbox")
            .into_iter()
            .filter(|m| m.status == "pending")
            .count()
    };
    let ok = eventually(WAIT, || {
        let done = pending() == 0;
        async move { done }
    })
    .await;
    assert!(ok, "{} emails to {to} never sent", pending());
}

/// Starts a one-worker HTTP server in front of localstripe, where `handle` answers every
/// request (with `state`); returns the base URL to give the app as `stripe.api_base`. Tests
/// change what Stripe would answer (fees, outages, schedules localstripe lacks) this way.
pub fn stripe_proxy<S, F, Fut>(state: S, handle: F) -> String
where
    S: Clone + Send + 'static,
    F: Fn(actix_web::HttpRequest, actix_web::web::Bytes, actix_web::web::Data<S>) -> Fut
        + Clone
        + Send
        + 'static,
    Fut: std::future::Future<Output = actix_web::HttpResponse> + 'static,
{
    use actix_web::{web, App, HttpServer};
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .default_service(web::to(handle.clone()))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind proxy");
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    format!("http://127.0.0.1:{port}/")
}

/// Passes a request the proxy received on to localstripe, as it came.
pub async fn relay(
    req: &actix_web::HttpRequest,
    body: &actix_web::web::Bytes,
) -> reqwest::Response {
    let url = format!("{}{}", real_parts().stripe_url, req.uri());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method");
    let mut out = reqwest::Client::new()
        .request(method, url)
        .body(body.to_vec());
    for (name, value) in req.headers() {
        if name != "host" && name != "content-length" {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    out.send().await.expect("localstripe")
}

/// localstripe's answer as the proxy's.
pub async fn relayed(res: reqwest::Response) -> actix_web::HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(res.status().as_u16()).expect("status");
    actix_web::HttpResponse::build(status).body(res.bytes().await.expect("localstripe body"))
}
