//! Billing as today's Stripe behaves: events in the current API shape (invoices without
//! charges, refunds as their own objects, periods on subscription items), completed from
//! Stripe when they do not carry what we need; grace counted from the failure; refunds that
//! add up; disputes that move money only when Stripe withdraws it; the hold that holds; and
//! events about what is not ours acknowledged and kept.
//!
//! Purchases go through our API to localstripe; what localstripe cannot send is delivered as
//! signed events in the current shape, built from localstripe's own objects.

use crate::billing_helpers::*;
use crate::both;
use crate::helpers::{eventually, Backend, TestApp};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The id of a field localstripe sends as an id or as the object.
fn id_in(v: &Value) -> String {
    v.as_str()
        .or(v["id"].as_str())
        .expect("an id or an object")
        .to_owned()
}

fn id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..14]
    )
}

/// A card subscription to `price` through our API, active at Stripe; returns (our id, the
/// Stripe subscription, its first invoice).
async fn subscribed(app: &TestApp, u: &str, price: &str) -> (String, Value, Value) {
    let pm = card(app).await;
    let started = post_as(
        app,
        u,
        "/v1/me/subscriptions",
        &json!({"price_id": price, "payment_method": pm, "email": email_of(u)}),
        StatusCode::CREATED,
    )
    .await;
    let ours = started["id"].as_str().expect("id").to_owned();
    let sub = stripe_all(app, "/subscriptions")
        .await
        .into_iter()
        .find(|s| s["metadata"]["kopilka_subscription_id"] == ours.as_str())
        .expect("the Stripe subscription");
    let invoice_id = sub["latest_invoice"]
        .as_str()
        .expect("an invoice")
        .to_owned();
    let invoice = stripe(app, "GET", &format!("/invoices/{invoice_id}"), &[]).await;
    (ours, sub, invoice)
}

/// An invoice as today's Stripe sends it in webhooks: its subscription under `parent`, no
/// charge, no payment intent.
fn invoice_today(invoice: &Value, sub: &Value, amount_paid: i64) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "id": invoice["id"], "object": "invoice", "customer": invoice["customer"],
        "currency": invoice["currency"], "amount_paid": amount_paid, "total": amount_paid,
        "status": "paid", "billing_reason": "subscription_cycle", "attempt_count": 1,
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/{}", invoice["id"].as_str().unwrap_or("")),
        "lines": {"object": "list", "has_more": false, "data": [{
            "id": id("il"), "object": "line_item", "period": {"start": now, "end": now + 30 * 86_400},
        }]},
        "parent": {"type": "subscription_details", "subscription_details": {
            "subscription": sub["id"], "metadata": sub["metadata"],
        }},
    })
}

/// A subscription as today's Stripe sends it: its period on the item.
fn subscription_today(sub: &Value, status: &str, start: i64, end: i64) -> Value {
    json!({
        "id": sub["id"], "object": "subscription", "status": status, "customer": sub["customer"],
        "cancel_at_period_end": false, "metadata": sub["metadata"],
        "items": {"object": "list", "has_more": false, "data": [{
            "id": id("si"), "object": "subscription_item", "quantity": 1,
            "current_period_start": start, "current_period_end": end,
            "price": {"id": sub["plan"]["id"], "object": "price"},
        }]},
    })
}

fn charge_today(charge: &Value, amount_refunded: i64) -> Value {
    json!({
        "id": charge["id"], "object": "charge", "amount": charge["amount"],
        "amount_refunded": amount_refunded, "refunded": amount_refunded >= charge["amount"].as_i64().unwrap_or(0),
        "currency": charge["currency"], "customer": charge["customer"],
        "payment_intent": charge["payment_intent"], "metadata": {},
    })
}

fn refund_today(charge: &str, amount: i64, status: &str, refund: &str) -> Value {
    json!({
        "id": refund, "object": "refund", "amount": amount, "charge": charge,
        "currency": "usd", "status": status,
    })
}

fn dispute_today(charge: &str, amount: i64, status: &str, moves: &[(i64, i64)]) -> Value {
    // A dispute's balance transactions keep their ids from one event to the next.
    let bts: Vec<Value> = moves
        .iter()
        .enumerate()
        .map(|(i, (amount, fee))| {
            json!({"id": format!("txn_{}_{i}", &charge[3..]), "object": "balance_transaction",
            "amount": amount, "fee": fee, "net": amount - fee, "currency": "usd"})
        })
        .collect();
    json!({
        "id": format!("dp_{}", &charge[3..]), "object": "dispute", "amount": amount,
        "charge": charge, "currency": "usd", "status": status, "reason": "fraudulent",
        "balance_transactions": bts,
    })
}

async fn deliver_ok(app: &TestApp, event: &Value) {
    let res = deliver(app, event).await;
    let status = res.status();
    assert_eq!(
        status,
        StatusCode::OK,
        "{}: {:?}",
        event["type"],
        res.text().await
    );
}

/// The entitlement's expiry in `user`'s answer.
async fn expiry(app: &TestApp, user: &str, key: &str) -> Option<DateTime<Utc>> {
    let answer = app.entitlements(user).await;
    let e = answer["entitlements"]
        .as_array()?
        .iter()
        .find(|e| e["key"] == key)?
        .clone();
    DateTime::parse_from_rfc3339(e["expires_at"].as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn my_subscription(app: &TestApp, user: &str, ours: &str) -> Value {
    let res = app.get("/v1/me/subscriptions", &app.token(user, &[])).await;
    let body: Value = res.json().await.expect("json");
    body["subscriptions"]
        .as_array()
        .or(body.as_array())
        .and_then(|l| l.iter().find(|s| s["id"] == ours).cloned())
        .unwrap_or_else(|| panic!("subscription {ours} in {body}"))
}

/// The outcome a stored event was taken with.
fn outcome(app: &TestApp, event: &str) -> Option<kopilka::domain::states::EventOutcome> {
    let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
    let mut conn = pool.get().expect("conn");
    kopilka::db::models::stripe_events::outcome(&mut conn, event).expect("outcome")
}

both!(
    an_invoice_in_todays_shape_is_paid_under_its_charge_and_a_refund_keeps_the_subscription,
    |b: Backend| async move {
        let app = spawn_unhooked(b, |_| {}).await;
        let u = user();
        let (ours, sub, invoice) = subscribed(&app, &u, "price_premium_monthly_usd").await;
        let charge_id = id_in(&invoice["charge"]);
        // Today's invoice.paid names no charge: the service asks Stripe which one paid it.
        deliver_ok(
            &app,
            &event("invoice.paid", invoice_today(&invoice, &sub, 499)),
        )
        .await;
        assert_eq!(balance(&app, "platform_revenue:platform:USD").await, -499);
        // The refund is made at Stripe; today's charge.refunded does not list it.
        let refund = stripe(&app, "POST", "/refunds", &[("charge", &charge_id)]).await;
        let charge = stripe(&app, "GET", &format!("/charges/{charge_id}"), &[]).await;
        deliver_ok(&app, &event("charge.refunded", charge_today(&charge, 499))).await;
        assert_eq!(balance(&app, "platform_revenue:platform:USD").await, 0);
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 0);
        // The same refund's own event posts nothing more.
        let again = refund_today(&charge_id, 499, "succeeded", refund["id"].as_str().unwrap());
        deliver_ok(&app, &event("refund.updated", again)).await;
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 0);
        // Stripe keeps billing the subscription: it stays what Stripe says it is.
        assert!(
            holds(&app, &u, "premium").await,
            "a refund does not end the subscription"
        );
        assert_eq!(my_subscription(&app, &u, &ours).await["status"], "active");
    }
);

both!(
    a_failed_yearly_renewal_keeps_access_for_the_grace_counted_from_the_failure,
    |b: Backend| async move {
        let app = spawn_unhooked(b, |_| {}).await;
        let u = user();
        let (_, sub, invoice) = subscribed(&app, &u, "price_premium_monthly_usd").await;
        // Stripe moves the period on a whole year before it charges; the charge fails.
        let now = Utc::now().timestamp();
        let next_year = subscription_today(&sub, "past_due", now, now + 365 * 86_400);
        deliver_ok(&app, &event("customer.subscription.updated", next_year)).await;
        let mut failed = invoice_today(&invoice, &sub, 0);
        failed["status"] = "open".into();
        deliver_ok(&app, &event("invoice.payment_failed", failed)).await;
        let until = expiry(&app, &u, "premium").await.expect("premium in grace");
        let grace = Duration::days(app.settings.stripe.past_due_grace_days);
        assert!(
            until <= Utc::now() + grace + Duration::minutes(5)
                && until > Utc::now() + grace - Duration::minutes(5),
            "grace runs {grace} from the failure, not from the new period's end: {until}"
        );
    }
);

both!(
    refunds_and_disputes_of_charges_not_ours_are_acknowledged_and_kept_as_ignored,
    |b: Backend| async move {
        let app = spawn_unhooked(b, |_| {}).await;
        let foreign = json!({"id": id("ch"), "currency": "usd", "amount": 1000,
            "customer": id("cus"), "payment_intent": id("pi")});
        let refunded = event("charge.refunded", charge_today(&foreign, 1000));
        deliver_ok(&app, &refunded).await;
        let ch = foreign["id"].as_str().unwrap();
        let disputed = event(
            "charge.dispute.created",
            dispute_today(ch, 1000, "needs_response", &[(-1000, 1500)]),
        );
        deliver_ok(&app, &disputed).await;
        let refund = event(
            "refund.created",
            refund_today(ch, 1000, "succeeded", &id("re")),
        );
        deliver_ok(&app, &refund).await;
        for e in [&refunded, &disputed, &refund] {
            assert_eq!(
                outcome(&app, e["id"].as_str().unwrap()),
                Some(kopilka::domain::states::EventOutcome::Ignored)
            );
        }
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 0);
        // A charge of one of our customers that we have not recorded yet is retried.
        let u = user();
        let (_, _, invoice) = subscribed(&app, &u, "price_premium_monthly_usd").await;
        let ours = stripe(
            &app,
            "GET",
            &format!("/charges/{}", id_in(&invoice["charge"])),
            &[],
        )
        .await;
        let early = event("charge.refunded", charge_today(&ours, 499));
        assert_eq!(deliver(&app, &early).await.status(), StatusCode::CONFLICT);
        assert_eq!(
            outcome(&app, early["id"].as_str().unwrap()),
            None,
            "not stored: retried"
        );
    }
);

/// A 1.99 USD pack of a creator at 70 %, bought and paid; returns (creator, pack, buyer,
/// charge id).
async fn pack_sold(app: &TestApp) -> (String, String, String, String) {
    let (creator, pack, price) = creator_pack(app, 7000, 199).await;
    let buyer = user();
    let order = buy_and_pay(app, &buyer, &price, None).await;
    wait_until_holds(app, &buyer, &format!("sticker_pack:{pack}"), true).await;
    let intent = stripe(
        app,
        "GET",
        &format!("/payment_intents/{}", intent_of(&order)),
        &[],
    )
    .await;
    let charge = intent["latest_charge"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            intent["charges"]["data"][0]["id"]
                .as_str()
                .map(str::to_owned)
        })
        .expect("the intent's charge");
    (creator, pack, buyer, charge)
}

both!(
    partial_refunds_take_back_the_creators_whole_share_and_a_failed_one_gives_it_back,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (creator, pack, buyer, charge) = pack_sold(&app).await;
        let pending = format!("creator_pending:{creator}:USD");
        wait_for_balance(&app, &pending, -139).await;
        let (first, second) = (id("re"), id("re"));
        deliver_ok(
            &app,
            &event(
                "refund.created",
                refund_today(&charge, 99, "succeeded", &first),
            ),
        )
        .await;
        deliver_ok(
            &app,
            &event(
                "refund.created",
                refund_today(&charge, 100, "succeeded", &second),
            ),
        )
        .await;
        // Floored one by one the creator would keep 1¢ of a fully refunded sale.
        assert_eq!(balance(&app, &pending).await, 0);
        assert_eq!(balance(&app, "platform_revenue:platform:USD").await, 0);
        wait_until_holds(&app, &buyer, &format!("sticker_pack:{pack}"), false).await;
        // The second refund fails at the bank: its money, share and the pack come back.
        deliver_ok(
            &app,
            &event(
                "refund.failed",
                refund_today(&charge, 100, "failed", &second),
            ),
        )
        .await;
        // The creator returned ⌊139 · 99 / 199⌋ = 69 for the refund that stands.
        assert_eq!(balance(&app, &pending).await, -(139 - 69));
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 100);
        wait_until_holds(&app, &buyer, &format!("sticker_pack:{pack}"), true).await;
    }
);

both!(
    an_inquiry_moves_nothing_and_reinstated_funds_come_back_with_the_dispute_fee,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (creator, pack, buyer, charge) = pack_sold(&app).await;
        let pending = format!("creator_pending:{creator}:USD");
        wait_for_balance(&app, &pending, -139).await;
        let key = format!("sticker_pack:{pack}");
        let inquiry = dispute_today(&charge, 199, "warning_needs_response", &[]);
        deliver_ok(&app, &event("charge.dispute.created", inquiry)).await;
        assert!(
            holds(&app, &buyer, &key).await,
            "an inquiry revokes nothing"
        );
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 199);
        // It escalates: Stripe withdraws the amount and its fee.
        let withdrawn = dispute_today(&charge, 199, "needs_response", &[(-199, 1500)]);
        deliver_ok(&app, &event("charge.dispute.funds_withdrawn", withdrawn)).await;
        wait_until_holds(&app, &buyer, &key, false).await;
        assert_eq!(
            balance(&app, "stripe_clearing:platform:USD").await,
            199 - 199 - 1500
        );
        assert_eq!(balance(&app, &pending).await, 0);
        // Won: the funds come back, and so does the fee Stripe returned.
        let reinstated = dispute_today(&charge, 199, "won", &[(-199, 1500), (199, -1500)]);
        deliver_ok(
            &app,
            &event("charge.dispute.funds_reinstated", reinstated.clone()),
        )
        .await;
        deliver_ok(&app, &event("charge.dispute.closed", reinstated)).await;
        wait_until_holds(&app, &buyer, &key, true).await;
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 199);
        assert_eq!(balance(&app, "stripe_fees:platform:USD").await, 0);
        assert_eq!(balance(&app, &pending).await, -139);
    }
);

both!(
    the_hold_releases_the_sale_less_what_was_refunded_inside_it,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (creator, _, _, charge) = pack_sold(&app).await;
        wait_for_balance(&app, &format!("creator_pending:{creator}:USD"), -139).await;
        deliver_ok(
            &app,
            &event(
                "refund.created",
                refund_today(&charge, 99, "succeeded", &id("re")),
            ),
        )
        .await;
        // Through db::transaction, as the job runs it: on SQLite a plain deferred transaction
        // fails at once if the service's own writers commit between its read and its write.
        let pool = kopilka::db::connect(&app.db.url, 1).expect("connect");
        let hold = app.settings.billing.hold_days;
        let later = Utc::now() + Duration::days(hold + 1);
        let run = || async {
            kopilka::db::transaction(&pool, move |c| {
                kopilka::services::billing::earnings::release_due(c, hold, later, 500)
            })
            .await
            .expect("release")
        };
        assert_eq!(run().await, 1);
        assert_eq!(run().await, 0, "released once");
        drop(pool);
        // 139 less the 69 the refund took back (⌊139 · 99 / 199⌋).
        assert_eq!(
            balance(&app, &format!("creator_available:{creator}:USD")).await,
            -70
        );
        assert_eq!(
            balance(&app, &format!("creator_pending:{creator}:USD")).await,
            0
        );
        // A refund after the release comes out of what is available.
        deliver_ok(
            &app,
            &event(
                "refund.created",
                refund_today(&charge, 100, "succeeded", &id("re")),
            ),
        )
        .await;
        assert_eq!(
            balance(&app, &format!("creator_available:{creator}:USD")).await,
            0
        );
    }
);

both!(
    a_trials_zero_invoice_leaves_it_a_trial,
    |b: Backend| async move {
        let app = spawn_unhooked(b, |_| {}).await;
        let u = user();
        let started = post_as(
            &app,
            &u,
            "/v1/me/subscriptions",
            &json!({"price_id": "price_premium_yearly_usd"}),
            StatusCode::CREATED,
        )
        .await;
        let ours = started["id"].as_str().unwrap().to_owned();
        assert_eq!(started["status"], "trialing");
        let sub = stripe_all(&app, "/subscriptions")
            .await
            .into_iter()
            .find(|s| s["metadata"]["kopilka_subscription_id"] == ours.as_str())
            .expect("the Stripe subscription");
        let invoice = json!({"id": id("in"), "customer": sub["customer"], "currency": "usd"});
        let mut zero = invoice_today(&invoice, &sub, 0);
        zero["billing_reason"] = "subscription_create".into();
        deliver_ok(&app, &event("invoice.paid", zero)).await;
        assert_eq!(my_subscription(&app, &u, &ours).await["status"], "trialing");
    }
);

both!(
    a_renewal_the_bank_wants_confirmed_mails_the_hosted_invoice_link,
    |b: Backend| async move {
        let app = spawn_unhooked(b, |_| {}).await;
        let u = user();
        let (_, sub, invoice) = subscribed(&app, &u, "price_premium_monthly_usd").await;
        let mut pending = invoice_today(&invoice, &sub, 0);
        pending["status"] = "open".into();
        let link = pending["hosted_invoice_url"].as_str().unwrap().to_owned();
        deliver_ok(
            &app,
            &event("invoice.payment_action_required", pending.clone()),
        )
        .await;
        deliver_ok(&app, &event("invoice.payment_action_required", pending)).await;
        let mail = wait_for_mail(&email_of(&u), "Please confirm your payment").await;
        assert!(mail.contains(&link), "{mail}");
        let sent = eventually(WAIT, || async {
            crate::real_parts::mails_to(&email_of(&u))
                .iter()
                .filter(|(s, _)| s.contains("Please confirm"))
                .count()
                == 1
        })
        .await;
        assert!(sent, "one email per invoice");
    }
);

both!(
    a_subscription_of_ours_without_a_record_is_made_again_from_stripes_state,
    |b: Backend| async move {
        let app = spawn_unhooked(b, |_| {}).await;
        let u = user();
        let (ours, sub, _) = subscribed(&app, &u, "price_premium_monthly_usd").await;
        // A second subscription Stripe holds for our customer, whose record we lost.
        let customer = id_in(&sub["customer"]);
        let lost = stripe(
            &app,
            "POST",
            "/subscriptions",
            &[
                ("customer", customer.as_str()),
                ("items[0][plan]", "price_premium_monthly_usd"),
                ("metadata[kopilka_subscription_id]", "sub_lost"),
            ],
        )
        .await;
        let now = Utc::now().timestamp();
        let created = subscription_today(&lost, "active", now, now + 30 * 86_400);
        deliver_ok(&app, &event("customer.subscription.created", created)).await;
        let res = app.get("/v1/me/subscriptions", &app.token(&u, &[])).await;
        let mine: Value = res.json().await.unwrap();
        let subs = mine["subscriptions"].as_array().unwrap();
        assert_eq!(subs.len(), 2, "{mine}");
        let adopted = subs.iter().find(|s| s["id"] != ours.as_str()).unwrap();
        assert_eq!(adopted["status"], "active", "{adopted}");
    }
);

both!(
    an_unpaid_upgrade_leaves_the_paid_plan_and_its_applied_update_switches_it,
    |b: Backend| async move {
        let app = spawn_unhooked(b, |_| {}).await;
        let u = user();
        let (ours, sub, invoice) = subscribed(&app, &u, "price_premium_monthly_usd").await;
        let now = Utc::now().timestamp();
        let paid = subscription_today(&sub, "active", now, now + 30 * 86_400);
        deliver_ok(&app, &event("customer.subscription.updated", paid.clone())).await;
        let before = expiry(&app, &u, "premium").await;
        // The upgrade's proration invoice fails: Stripe keeps the update pending and the
        // subscription on its paid plan, active — not past due.
        let mut proration = invoice_today(&invoice, &sub, 0);
        proration["id"] = id("in").into();
        proration["status"] = "open".into();
        proration["billing_reason"] = "subscription_update".into();
        deliver_ok(&app, &event("invoice.payment_failed", proration)).await;
        let mine = my_subscription(&app, &u, &ours).await;
        assert_eq!(mine["status"], "active", "{mine}");
        assert!(mine["grace_until"].is_null(), "{mine}");
        assert_eq!(expiry(&app, &u, "premium").await, before);
        wait_for_mail(&email_of(&u), "could not be paid").await;
        // Paid at last: Stripe applies the update and says so.
        let mut applied = subscription_today(&sub, "active", now, now + 30 * 86_400);
        applied["items"]["data"][0]["price"]["id"] = "price_premium_yearly_usd".into();
        let applied = event_at(
            "customer.subscription.pending_update_applied",
            applied,
            now + 5,
        );
        deliver_ok(&app, &applied).await;
        let mine = my_subscription(&app, &u, &ours).await;
        assert_eq!(mine["price_id"], "price_premium_yearly_usd", "{mine}");
    }
);
