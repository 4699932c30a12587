//! Billing end to end against localstripe and a real SMTP server: purchases through our API,
//! payments confirmed as the app's Stripe SDK would, localstripe's own signed webhooks, and
//! Stripe-shaped signed events for what localstripe cannot send (refunds, disputes, failed
//! renewals, trial reminders).

use crate::billing_helpers::*;
use crate::both;
use crate::helpers::{assert_problem, eventually, spawn, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Our subscription's Stripe object, found by the id we put in its metadata.
async fn stripe_subscription(app: &TestApp, ours: &str) -> Value {
    stripe_all(app, "/subscriptions")
        .await
        .into_iter()
        .find(|s| s["metadata"]["kopilka_subscription_id"] == ours)
        .expect("the Stripe subscription")
}

both!(
    purchases_without_a_stripe_key_answer_503,
    |b: Backend| async move {
        let app = spawn(b).await;
        let res = app
            .post(
                "/v1/me/subscriptions",
                &app.token("ann", &[]),
                &json!({"price_id": "price_premium_monthly_usd"}),
            )
            .await;
        assert_problem(
            res,
            StatusCode::SERVICE_UNAVAILABLE,
            "stripe_not_configured",
        )
        .await;
    }
);

both!(
    a_trial_entitles_at_once_and_charges_nothing,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let u = user();
        let started = post_as(
            &app,
            &u,
            "/v1/me/subscriptions",
            &json!({"price_id": "price_premium_yearly_usd"}),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(started["status"], "trialing", "{started}");
        assert!(
            started["client_secret"].is_null(),
            "nothing to pay during the trial"
        );
        assert!(holds(&app, &u, "premium").await);
        // localstripe's own customer.subscription.created webhook arrives and changes nothing.
        let answer = app.entitlements(&u).await;
        let premium = answer["entitlements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == "premium")
            .cloned()
            .unwrap();
        let until =
            chrono::DateTime::parse_from_rfc3339(premium["expires_at"].as_str().unwrap()).unwrap();
        assert!(
            until > chrono::Utc::now() + chrono::Duration::days(360),
            "the trial lasts a year: {premium}"
        );
    }
);

both!(
    subscribing_with_a_card_activates_posts_revenue_and_mails_a_receipt,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let u = user();
        let pm = card(&app).await;
        let started = post_as(
        &app, &u, "/v1/me/subscriptions",
        &json!({"price_id": "price_premium_monthly_eur", "payment_method": pm, "email": email_of(&u)}),
        StatusCode::CREATED,
    )
    .await;
        assert_eq!(started["stripe_status"], "active", "{started}");
        assert!(holds(&app, &u, "premium").await);
        // invoice.payment_succeeded (localstripe's webhook) posts the payment once.
        wait_for_balance(&app, "platform_revenue:platform:EUR", -499).await;
        assert_eq!(balance(&app, "stripe_clearing:platform:EUR").await, 499);
        let mail = wait_for_mail(&email_of(&u), "Your receipt").await;
        assert!(mail.contains("4.99 EUR"), "{mail}");
    }
);

both!(
    cancel_keeps_access_to_period_end_and_resume_undoes_it,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let u = user();
        let pm = card(&app).await;
        let started = post_as(
            &app,
            &u,
            "/v1/me/subscriptions",
            &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm}),
            StatusCode::CREATED,
        )
        .await;
        let id = started["id"].as_str().unwrap().to_owned();
        // Stripe's first webhook about it (made when Stripe made the subscription, delivered
        // a second later) is applied before we act: what follows does not race it.
        let first = wait_for_first_webhook(&app, &id).await;
        let customer = stripe_subscription(&app, &id).await["customer"]
            .as_str()
            .unwrap()
            .to_owned();
        wait_for_webhooks(&app, &customer).await;
        assert_eq!(our_subscription(&app, &u, &id).await["status"], "active");

        let canceled = post_as(
            &app,
            &u,
            &format!("/v1/me/subscriptions/{id}/cancel"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(canceled["status"], "canceled");
        assert_eq!(canceled["cancel_at_period_end"], true);
        // An update Stripe made before our call, delivered after its answer, does not undo it.
        let before = current_subscription(first["data"]["object"].clone());
        let stale = event_at(
            "customer.subscription.updated",
            before.clone(),
            first["created"].as_i64().unwrap(),
        );
        assert_eq!(deliver(&app, &stale).await.status(), StatusCode::OK);
        wait_for_webhooks(&app, &customer).await;
        let mine = our_subscription(&app, &u, &id).await;
        assert_eq!(mine["status"], "canceled", "{mine}");
        assert_eq!(mine["cancel_at_period_end"], true, "{mine}");
        assert!(
            holds(&app, &u, "premium").await,
            "a canceled subscription lasts to its period end"
        );

        let resumed = post_as(
            &app,
            &u,
            &format!("/v1/me/subscriptions/{id}/resume"),
            &json!({}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(resumed["status"], "active");
        assert_eq!(resumed["cancel_at_period_end"], false);
        let mut canceled_before = before;
        canceled_before["cancel_at_period_end"] = json!(true);
        let stale = event_at(
            "customer.subscription.updated",
            canceled_before,
            first["created"].as_i64().unwrap(),
        );
        assert_eq!(deliver(&app, &stale).await.status(), StatusCode::OK);
        wait_for_webhooks(&app, &customer).await;
        let mine = our_subscription(&app, &u, &id).await;
        assert_eq!(mine["status"], "active", "{mine}");
        assert_eq!(mine["cancel_at_period_end"], false, "{mine}");
        assert!(holds(&app, &u, "premium").await);
        // Someone else cannot cancel it.
        let res = app
            .post(
                &format!("/v1/me/subscriptions/{id}/cancel"),
                &app.token("mallory", &[]),
                &json!({}),
            )
            .await;
        assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
);

both!(
    a_failed_renewal_is_past_due_within_grace_and_payment_restores_it,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let u = user();
        let pm = card(&app).await;
        let started = post_as(&app, &u, "/v1/me/subscriptions", &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm, "email": email_of(&u)}), StatusCode::CREATED).await;
        let id = started["id"].as_str().unwrap();
        let sub = stripe_subscription(&app, id).await;
        let parent = json!({"type": "subscription_details",
                            "subscription_details": {"subscription": sub["id"], "metadata": sub["metadata"]}});
        let failed = json!({"id": "in_failed_1", "object": "invoice", "parent": parent, "attempt_count": 1,
                        "amount_due": 499, "amount_paid": 0, "currency": "usd", "customer": sub["customer"]});
        assert_eq!(
            deliver(&app, &event("invoice.payment_failed", failed))
                .await
                .status(),
            StatusCode::OK
        );
        let mine: Value = app
            .get("/v1/me/subscriptions", &app.token(&u, &[]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(mine["subscriptions"][0]["status"], "past_due");
        assert!(mine["subscriptions"][0]["grace_until"].is_string());
        assert!(
            holds(&app, &u, "premium").await,
            "entitled during the grace period"
        );
        wait_for_mail(&email_of(&u), "payment for").await;
        let payments = json!({"object": "list", "has_more": false, "data": [{"object": "invoice_payment",
                              "id": "inpay_paid_2", "status": "paid", "payment": {"type": "charge", "charge": "ch_renewal_2"}}]});
        let paid = json!({"id": "in_paid_2", "object": "invoice", "parent": parent, "amount_paid": 499,
                      "currency": "usd", "payments": payments, "customer": sub["customer"]});
        assert_eq!(
            deliver(&app, &event("invoice.paid", paid)).await.status(),
            StatusCode::OK
        );
        let mine: Value = app
            .get("/v1/me/subscriptions", &app.token(&u, &[]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(mine["subscriptions"][0]["status"], "active");
        assert!(mine["subscriptions"][0]["grace_until"].is_null());
    }
);

both!(
    the_trial_ending_reminder_is_mailed_once,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let u = user();
        let started = post_as(
            &app,
            &u,
            "/v1/me/subscriptions",
            &json!({"price_id": "price_premium_yearly_usd", "email": email_of(&u)}),
            StatusCode::CREATED,
        )
        .await;
        let sub = stripe_subscription(&app, started["id"].as_str().unwrap()).await;
        let ev = event(
            "customer.subscription.trial_will_end",
            current_subscription(sub),
        );
        for _ in 0..2 {
            assert_eq!(deliver(&app, &ev).await.status(), StatusCode::OK);
        }
        let mail = wait_for_mail(&email_of(&u), "trial ends soon").await;
        assert!(mail.contains("0.99 USD"), "{mail}");
        assert_eq!(crate::real_parts::mails_to(&email_of(&u)).len(), 1);
    }
);

both!(
    a_pack_purchase_grants_the_pack_and_splits_the_sale,
    |b: Backend| async move {
        let app = spawn_billing_with(b, |s| s.billing.hold_days = 0).await;
        let (creator, pack, price) = creator_pack(&app, 7000, 199).await;
        let buyer = user();
        buy_and_pay(&app, &buyer, &price, None).await;
        wait_until_holds(&app, &buyer, &format!("sticker_pack:{pack}"), true).await;
        // 70 % of 199 = 139.3: the creator gets 139, the platform 60.
        wait_for_balance(&app, "platform_revenue:platform:USD", -60).await;
        wait_for_mail(&email_of(&buyer), "Your receipt").await;
        // With no hold, the share becomes available.
        let earnings = app.token(&creator, &["creator"]);
        let ok = eventually(WAIT, || async {
            let e: Value = app
                .get("/v1/creators/me/earnings", &earnings)
                .await
                .json()
                .await
                .unwrap();
            e["balances"][0]["available_minor"] == 139 && e["balances"][0]["pending_minor"] == 0
        })
        .await;
        assert!(ok, "139 becomes available");
        let e: Value = app
            .get("/v1/creators/me/earnings", &earnings)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(e["recent_sales"][0]["creator_share_minor"], 139);
        // Buying it again is refused: the buyer owns it.
        let res = app
            .post(
                "/v1/me/orders",
                &app.token(&buyer, &[]),
                &json!({"price_id": price}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "already_owned").await;
    }
);

both!(
    a_refunded_gift_is_taken_back_from_the_recipient_and_the_creator,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (creator, pack, price) = creator_pack(&app, 5000, 300).await;
        let (buyer, friend) = (user(), user());
        // The friend's address is known from their own (free-trial) subscription.
        let trial = json!({"price_id": "price_premium_yearly_usd", "email": email_of(&friend)});
        post_as(
            &app,
            &friend,
            "/v1/me/subscriptions",
            &trial,
            StatusCode::CREATED,
        )
        .await;
        let order = buy_and_pay(&app, &buyer, &price, Some(&friend)).await;
        let key = format!("sticker_pack:{pack}");
        wait_until_holds(&app, &friend, &key, true).await;
        let gift = wait_for_mail(&email_of(&friend), "You received a gift").await;
        assert!(gift.contains("for you"), "the buyer's message: {gift}");
        assert!(
            !holds(&app, &buyer, &key).await,
            "a gift belongs to its recipient"
        );
        let pending = format!("creator_pending:{creator}:USD");
        wait_for_balance(&app, &pending, -150).await;

        // Support refunds on Stripe; localstripe sends no event for it, so Stripe's is built from
        // its objects.
        let intent = intent_of(&order);
        let refund = stripe(&app, "POST", "/refunds", &[("payment_intent", &intent)]).await;
        let mut charge = stripe(
            &app,
            "GET",
            &format!("/charges/{}", refund["charge"].as_str().unwrap()),
            &[],
        )
        .await;
        charge["amount_refunded"] = json!(300);
        charge["refunded"] = json!(true);
        charge["refunds"] = json!({"object": "list", "data": [refund]});
        assert_eq!(
            deliver(&app, &event("charge.refunded", current_charge(charge)))
                .await
                .status(),
            StatusCode::OK
        );
        wait_until_holds(&app, &friend, &key, false).await;
        assert_eq!(
            balance(&app, &pending).await,
            0,
            "the creator's share is taken back"
        );
        assert_eq!(balance(&app, "platform_revenue:platform:USD").await, 0);
        let orders: Value = app
            .get("/v1/me/orders", &app.token(&buyer, &[]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(orders["orders"][0]["status"], "refunded");
    }
);

both!(
    a_dispute_takes_back_the_sale_and_its_fee_and_a_won_dispute_restores_it,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (creator, pack, price) = creator_pack(&app, 7000, 1000).await;
        let buyer = user();
        let order = buy_and_pay(&app, &buyer, &price, None).await;
        let key = format!("sticker_pack:{pack}");
        wait_until_holds(&app, &buyer, &key, true).await;
        let intent = intent_of(&order);
        let pi = stripe(&app, "GET", &format!("/payment_intents/{intent}"), &[]).await;
        let charge = pi["latest_charge"]["id"]
            .as_str()
            .or(pi["latest_charge"].as_str())
            .unwrap()
            .to_owned();
        let dispute = json!({"id": "dp_1", "object": "dispute", "charge": charge, "amount": 1000, "currency": "usd",
                         "status": "needs_response", "balance_transactions": [{"amount": -2500, "fee": 1500}]});
        assert_eq!(
            deliver(&app, &event("charge.dispute.created", dispute.clone()))
                .await
                .status(),
            StatusCode::OK
        );
        wait_until_holds(&app, &buyer, &key, false).await;
        let pending = format!("creator_pending:{creator}:USD");
        assert_eq!(balance(&app, &pending).await, 0);
        assert_eq!(balance(&app, "stripe_fees:platform:USD").await, 1500);
        let mut closed = dispute;
        closed["status"] = json!("won");
        assert_eq!(
            deliver(&app, &event("charge.dispute.closed", closed))
                .await
                .status(),
            StatusCode::OK
        );
        wait_until_holds(&app, &buyer, &key, true).await;
        assert_eq!(
            balance(&app, &pending).await,
            -700,
            "the creator's share is back"
        );
        assert_eq!(
            balance(&app, "stripe_fees:platform:USD").await,
            1500,
            "the dispute fee stays a cost"
        );
    }
);

both!(
    a_refund_before_its_payment_is_refused_for_redelivery,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        // Ours (our order's id in its metadata), but its payment is not recorded yet.
        let charge = json!({"id": "ch_unknown", "object": "charge", "amount_refunded": 100,
                            "metadata": {"kopilka_order_id": "ord_not_yet"}, "refunds": {"data": []}});
        let res = deliver(&app, &event("charge.refunded", charge)).await;
        assert_problem(res, StatusCode::CONFLICT, "event_out_of_order").await;
    }
);

both!(
    a_gifted_subscription_period_entitles_the_recipient,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (buyer, friend) = (user(), user());
        let order = buy_and_pay(&app, &buyer, "price_premium_monthly_usd", Some(&friend)).await;
        wait_until_holds(&app, &friend, "premium", true).await;
        assert!(!holds(&app, &buyer, "premium").await);
        // A dispute takes the period away; winning it gives it back.
        let intent = intent_of(&order);
        let pi = stripe(&app, "GET", &format!("/payment_intents/{intent}"), &[]).await;
        let charge = pi["latest_charge"]["id"]
            .as_str()
            .or(pi["latest_charge"].as_str())
            .unwrap()
            .to_owned();
        let dispute = json!({"id": "dp_gift", "object": "dispute", "charge": charge, "amount": 499,
                             "currency": "usd", "status": "needs_response", "balance_transactions": []});
        let opened = deliver(&app, &event("charge.dispute.created", dispute.clone())).await;
        assert_eq!(opened.status(), StatusCode::OK);
        wait_until_holds(&app, &friend, "premium", false).await;
        let mut won = dispute;
        won["status"] = json!("won");
        let closed = deliver(&app, &event("charge.dispute.closed", won)).await;
        assert_eq!(closed.status(), StatusCode::OK);
        wait_until_holds(&app, &friend, "premium", true).await;
        // Not as a purchase for oneself.
        let res = app
            .post(
                "/v1/me/orders",
                &app.token(&buyer, &[]),
                &json!({"price_id": "price_premium_monthly_usd"}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "not_giftable").await;
    }
);

both!(
    a_donation_to_a_creator_pays_their_share_and_mails_a_receipt,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (creator, _, _) = creator_pack(&app, 5000, 100).await;
        let donor = user();
        let pm = card(&app).await;
        let d = post_as(
        &app, &donor, "/v1/me/donations",
        &json!({"amount_minor": 500, "currency": "USD", "creator_id": creator, "message": "thanks!", "anonymous": true,
                "payment_method": pm, "email": email_of(&donor)}),
        StatusCode::CREATED,
    )
    .await;
        assert_eq!(d["anonymous"], true);
        let intent = intent_of(&d);
        confirm(&app, &intent).await;
        wait_for_balance(&app, &format!("creator_pending:{creator}:USD"), -250).await;
        wait_for_mail(&email_of(&donor), "Your receipt").await;
        let mine: Value = app
            .get("/v1/me/donations", &app.token(&donor, &[]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(mine["donations"][0]["status"], "paid");
        // Bounds per currency.
        let res = app
            .post(
                "/v1/me/donations",
                &app.token(&donor, &[]),
                &json!({"amount_minor": 5, "currency": "USD"}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "amount_out_of_range").await;
    }
);

both!(
    a_monthly_donation_is_a_subscription_whose_invoices_post,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let donor = user();
        let pm = card(&app).await;
        let d = post_as(
        &app, &donor, "/v1/me/donations",
        &json!({"amount_minor": 300, "currency": "EUR", "recurring": true, "payment_method": pm}),
        StatusCode::CREATED,
    )
    .await;
        assert_eq!(d["recurring"], true);
        // The first invoice (localstripe's invoice.payment_succeeded) posts platform revenue.
        let ok = eventually(WAIT, || async {
            balance(&app, "platform_revenue:platform:EUR").await == -300
        })
        .await;
        assert!(ok, "the first month's donation is posted");
    }
);

both!(
    concurrent_purchases_with_one_key_make_one_order_and_one_payment,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let (_, _, price) = creator_pack(&app, 7000, 199).await;
        let buyer = user();
        let token = app.token(&buyer, &[]);
        let send = || {
            app.client
                .post(app.url("/v1/me/orders"))
                .bearer_auth(&token)
                .header("Idempotency-Key", "buy-cats-once")
                .json(&json!({"price_id": price}))
                .send()
        };
        let answers = futures_util::future::join_all((0..5).map(|_| send())).await;
        let mut ids = std::collections::BTreeSet::new();
        for res in answers {
            let res = res.unwrap();
            assert!(res.status() == StatusCode::CREATED, "{}", res.status());
            let body: Value = res.json().await.unwrap();
            ids.insert(body["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(ids.len(), 1, "one order");
        let orders: Value = app.get("/v1/me/orders", &token).await.json().await.unwrap();
        assert_eq!(orders["orders"].as_array().unwrap().len(), 1);
        let order = ids.into_iter().next().unwrap();
        let mine = stripe_all(&app, "/payment_intents")
            .await
            .iter()
            .filter(|i| i["metadata"]["kopilka_order_id"] == order.as_str())
            .count();
        assert_eq!(mine, 1, "one PaymentIntent on Stripe");
    }
);

both!(replayed_events_change_nothing, |b: Backend| async move {
    let app = spawn_billing(b).await;
    let (_, pack, price) = creator_pack(&app, 7000, 199).await;
    let (buyer, friend) = (user(), user());
    let order = buy_and_pay(&app, &buyer, &price, Some(&friend)).await;
    let pm = card(&app).await;
    post_as(
        &app,
        &buyer,
        "/v1/me/subscriptions",
        &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm}),
        StatusCode::CREATED,
    )
    .await;
    wait_until_holds(&app, &friend, &format!("sticker_pack:{pack}"), true).await;
    wait_for_balance(&app, "platform_revenue:platform:USD", -60 - 499).await;
    let intent = intent_of(&order);
    let refund = stripe(
        &app,
        "POST",
        "/refunds",
        &[("payment_intent", &intent), ("amount", "99")],
    )
    .await;
    let mut charge = stripe(
        &app,
        "GET",
        &format!("/charges/{}", refund["charge"].as_str().unwrap()),
        &[],
    )
    .await;
    charge["amount_refunded"] = json!(99);
    charge["refunds"] = json!({"object": "list", "data": [refund]});
    assert_eq!(
        deliver(&app, &event("charge.refunded", current_charge(charge)))
            .await
            .status(),
        StatusCode::OK
    );

    let snapshot = |app: &TestApp| {
        let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
        let mut conn = pool.get().unwrap();
        use diesel::prelude::*;
        use kopilka::db::schema::*;
        let entries: Vec<(String, i64)> = ledger_entries::table
            .select((ledger_entries::account_id, ledger_entries::amount_minor))
            .order(ledger_entries::id)
            .load(&mut *conn)
            .unwrap();
        let mails: Vec<String> = outbox_emails::table
            .select(outbox_emails::dedupe_key)
            .order(outbox_emails::dedupe_key)
            .load(&mut *conn)
            .unwrap();
        let orders: Vec<(String, String)> = orders::table
            .select((orders::id, orders::status))
            .order(orders::id)
            .load(&mut *conn)
            .unwrap();
        let subs: Vec<(String, String, chrono::NaiveDateTime)> = subscriptions::table
            .select((
                subscriptions::id,
                subscriptions::status,
                subscriptions::current_period_end,
            ))
            .order(subscriptions::id)
            .load(&mut *conn)
            .unwrap();
        let events: Vec<String> = stripe_events::table
            .select(stripe_events::payload)
            .order(stripe_events::created)
            .load(&mut *conn)
            .unwrap();
        (entries, mails, orders, subs, events)
    };
    // Every event that changes state has arrived (localstripe delivers after a second).
    let arrived = |app: &TestApp| {
        let events = snapshot(app).4;
        [
            "payment_intent.succeeded",
            "invoice.payment_succeeded",
            "customer.subscription.created",
            "charge.refunded",
        ]
        .iter()
        .all(|t| {
            events.iter().any(|e| {
                e.contains(&format!("\"type\": \"{t}\""))
                    || e.contains(&format!("\"type\":\"{t}\""))
            })
        })
    };
    let ok = eventually(WAIT, || async { arrived(&app) }).await;
    assert!(ok, "the flow's events arrived");
    let before = snapshot(&app);
    let mut replay: Vec<Value> = before
        .4
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let copies = replay.clone();
    replay.extend(copies.clone());
    replay.extend(copies);
    // A fixed shuffle: deterministic, yet far from delivery order.
    let n = replay.len();
    for i in 0..n {
        replay.swap(i, (i * 7 + 3) % n);
    }
    for ev in &replay {
        // localstripe's events as it sent them, and ours (checked when first delivered).
        let res = forward(&app, ev).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["duplicate"], true);
    }
    let after = snapshot(&app);
    assert_eq!(before.0, after.0, "the same ledger");
    assert_eq!(before.1, after.1, "the same emails");
    assert_eq!(before.2, after.2, "the same orders");
    assert_eq!(before.3, after.3, "the same subscriptions");
});

/// Delivers until accepted: a 409 (an event that overtook the one it depends on) is
/// redelivered later, as Stripe does. The events are localstripe's, as it made them, and ours
/// (checked when built).
async fn deliver_all(app: &TestApp, mut pending: Vec<Value>) {
    for _round in 0..10 {
        let mut later = Vec::new();
        for ev in pending {
            let res = forward(app, &ev).await;
            match res.status() {
                StatusCode::OK => {}
                StatusCode::CONFLICT => later.push(ev),
                s => panic!("event {}: {s}", ev["type"]),
            }
        }
        if later.is_empty() {
            return;
        }
        pending = later;
    }
    panic!("events never accepted");
}

both!(
    a_flows_events_three_times_shuffled_end_where_once_in_order_ends,
    |b: Backend| async move {
        let app = spawn_unhooked(b, |_| {}).await;
        let (creator, pack, price) = creator_pack(&app, 7000, 199).await;
        let buyer = user();
        let pm = card(&app).await;
        post_as(&app, &buyer, "/v1/me/subscriptions", &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm, "email": email_of(&buyer)}), StatusCode::CREATED).await;
        let order = buy_and_pay(&app, &buyer, &price, None).await;
        let intent = intent_of(&order);
        let refund = stripe(
            &app,
            "POST",
            "/refunds",
            &[("payment_intent", &intent), ("amount", "99")],
        )
        .await;
        // The flow's events as Stripe made them (for this buyer's customer), plus the refund's.
        let cus = stripe_all(&app, "/customers")
            .await
            .iter()
            .find(|c| c["metadata"]["kopilka_user_id"] == buyer.as_str())
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let ok = eventually(WAIT, || async {
            customer_events(&app, &cus)
                .await
                .iter()
                .any(|e| e["type"] == "payment_intent.succeeded")
        })
        .await;
        assert!(ok, "localstripe recorded the payment");
        let mut flow = customer_events(&app, &cus).await;
        let mut charge = stripe(
            &app,
            "GET",
            &format!("/charges/{}", refund["charge"].as_str().unwrap()),
            &[],
        )
        .await;
        charge["amount_refunded"] = json!(99);
        charge["refunds"] = json!({"object": "list", "data": [refund]});
        let refunded = event("charge.refunded", current_charge(charge));
        crate::stripe_shapes::assert_stripe_shaped(&refunded);
        flow.push(refunded);
        assert!(flow.len() >= 4, "the flow has its events: {}", flow.len());

        // Three copies, shuffled (deterministically): the refund comes before its payment, the
        // invoice before its subscription.
        let mut replay: Vec<Value> = flow.iter().chain(&flow).chain(&flow).cloned().collect();
        replay.reverse();
        let n = replay.len();
        for i in 0..n {
            replay.swap(i, (i * 5 + 1) % n);
        }
        deliver_all(&app, replay).await;

        // Where one in-order delivery ends: subscription active, pack held (a partial refund keeps
        // it), 499 + 199 in, 99 out; of the pack the creator keeps 139 - 69 and the platform 60 - 30.
        let mine: Value = app
            .get("/v1/me/subscriptions", &app.token(&buyer, &[]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(mine["subscriptions"][0]["status"], "active");
        assert!(holds(&app, &buyer, &format!("sticker_pack:{pack}")).await);
        assert_eq!(
            balance(&app, "stripe_clearing:platform:USD").await,
            499 + 199 - 99
        );
        assert_eq!(
            balance(&app, &format!("creator_pending:{creator}:USD")).await,
            -(139 - 69)
        );
        assert_eq!(
            balance(&app, "platform_revenue:platform:USD").await,
            -(499 + 60 - 30)
        );
        let orders: Value = app
            .get("/v1/me/orders", &app.token(&buyer, &[]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(orders["orders"][0]["status"], "paid");
        let receipts = eventually(WAIT, || async {
            crate::real_parts::mails_to(&email_of(&buyer))
                .iter()
                .filter(|(s, _)| s.contains("Your receipt"))
                .count()
                == 2
        })
        .await;
        assert!(
            receipts,
            "one receipt per payment, however often its events came"
        );
    }
);

both!(
    an_upgrade_switches_now_and_a_downgrade_waits_for_the_period_end,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let u = user();
        let pm = card(&app).await;
        let started = post_as(
            &app,
            &u,
            "/v1/me/subscriptions",
            &json!({"price_id": "price_premium_yearly_usd", "payment_method": pm}),
            StatusCode::CREATED,
        )
        .await;
        let id = started["id"].as_str().unwrap().to_owned();
        // Stripe's first webhook about it is applied before we act.
        let first = wait_for_first_webhook(&app, &id).await;
        let customer = stripe_subscription(&app, &id).await["customer"]
            .as_str()
            .unwrap()
            .to_owned();
        wait_for_webhooks(&app, &customer).await;
        assert_eq!(
            our_subscription(&app, &u, &id).await["price_id"],
            "price_premium_yearly_usd"
        );
        // Yearly (0.99) to monthly (4.99 a month) is dearer: switched now.
        let up = post_as(
            &app,
            &u,
            &format!("/v1/me/subscriptions/{id}/plan"),
            &json!({"price_id": "price_premium_monthly_usd"}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(up["price_id"], "price_premium_monthly_usd", "{up}");
        assert!(up["scheduled_price_id"].is_null());
        // Stripe's yearly state from before the switch, delivered after it, does not undo it;
        // nor do the proration's invoice events the switch made.
        let yearly = current_subscription(first["data"]["object"].clone());
        let created = first["created"].as_i64().unwrap();
        let stale = event_at("customer.subscription.updated", yearly, created);
        assert_eq!(deliver(&app, &stale).await.status(), StatusCode::OK);
        wait_for_webhooks(&app, &customer).await;
        let mine = our_subscription(&app, &u, &id).await;
        assert_eq!(mine["price_id"], "price_premium_monthly_usd", "{mine}");
        assert!(mine["scheduled_price_id"].is_null(), "{mine}");
        assert_eq!(mine["quantity"], up["quantity"], "{mine}");
        // Back to yearly is cheaper: scheduled for the period's end, nothing changes now.
        let down = post_as(
            &app,
            &u,
            &format!("/v1/me/subscriptions/{id}/plan"),
            &json!({"price_id": "price_premium_yearly_usd"}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(down["price_id"], "price_premium_monthly_usd");
        assert_eq!(down["scheduled_price_id"], "price_premium_yearly_usd");
        assert_eq!(down["stripe_status"], "scheduled");
        wait_for_webhooks(&app, &customer).await;
        let mine = our_subscription(&app, &u, &id).await;
        assert_eq!(mine["price_id"], "price_premium_monthly_usd", "{mine}");
        assert_eq!(
            mine["scheduled_price_id"], "price_premium_yearly_usd",
            "{mine}"
        );
        assert!(holds(&app, &u, "premium").await);
        // Another currency is not a plan change.
        let res = app
            .post(
                &format!("/v1/me/subscriptions/{id}/plan"),
                &app.token(&u, &[]),
                &json!({"price_id": "price_premium_monthly_eur"}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch").await;
        // At the period's end Stripe moves the item; its event (created after our answers)
        // switches our price and clears the schedule.
        let mut sub = stripe_subscription(&app, &id).await;
        sub["items"]["data"][0]["plan"]["id"] = json!("price_premium_yearly_usd");
        assert_eq!(
            deliver(
                &app,
                &event("customer.subscription.updated", current_subscription(sub))
            )
            .await
            .status(),
            StatusCode::OK
        );
        let mine = our_subscription(&app, &u, &id).await;
        assert_eq!(mine["price_id"], "price_premium_yearly_usd", "{mine}");
        assert!(mine["scheduled_price_id"].is_null(), "{mine}");
    }
);

both!(
    events_whose_delivery_failed_are_fetched_from_stripe,
    |b: Backend| async move {
        // No webhook reaches this app: only the periodic sync brings the payment in.
        let app = spawn_unhooked(b, |s| s.stripe.sync_interval_seconds = 1).await;
        let (_, pack, price) = creator_pack(&app, 7000, 199).await;
        let buyer = user();
        buy_and_pay(&app, &buyer, &price, None).await;
        wait_until_holds(&app, &buyer, &format!("sticker_pack:{pack}"), true).await;
    }
);

both!(
    a_trial_ending_within_three_days_is_reminded_without_stripes_event,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let res = app
        .post("/v1/admin/products/prod_premium/prices", &app.admin(),
              &json!({"amount_minor": 299, "currency": "USD", "interval": "month", "trial_days": 2}))
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let price: Value = res.json().await.unwrap();
        let u = user();
        post_as(
            &app,
            &u,
            "/v1/me/subscriptions",
            &json!({"price_id": price["id"], "email": email_of(&u)}),
            StatusCode::CREATED,
        )
        .await;
        let mail = wait_for_mail(&email_of(&u), "trial ends soon").await;
        assert!(mail.contains("2.99 USD"), "{mail}");
    }
);

both!(
    the_seat_count_of_a_team_subscription_changes_through_stripe,
    |b: Backend| async move {
        let app = spawn_billing(b).await;
        let owner = user();
        let started = post_as(
            &app,
            &owner,
            "/v1/me/subscriptions",
            &json!({"price_id": "price_team_monthly_usd", "quantity": 2}),
            StatusCode::CREATED,
        )
        .await;
        let id = started["id"].as_str().unwrap().to_owned();
        assert_eq!(started["quantity"], 2);
        // Stripe's first webhook about it (two seats) is applied before we act.
        let first = wait_for_first_webhook(&app, &id).await;
        let customer = stripe_subscription(&app, &id).await["customer"]
            .as_str()
            .unwrap()
            .to_owned();
        wait_for_webhooks(&app, &customer).await;
        assert_eq!(our_subscription(&app, &owner, &id).await["quantity"], 2);
        for member in ["m1", "m2"] {
            let res = app
                .post(
                    &format!("/v1/me/subscriptions/{id}/seats"),
                    &app.token(&owner, &[]),
                    &json!({"user_id": format!("{owner}-{member}")}),
                )
                .await;
            assert_eq!(res.status(), StatusCode::CREATED);
        }
        let res = app
            .post(
                &format!("/v1/me/subscriptions/{id}/quantity"),
                &app.token(&owner, &[]),
                &json!({"quantity": 1}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "seats_assigned").await;
        let more = post_as(
            &app,
            &owner,
            &format!("/v1/me/subscriptions/{id}/quantity"),
            &json!({"quantity": 3}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(more["quantity"], 3, "{more}");
        assert_eq!(
            stripe_subscription(&app, &id).await["items"]["data"][0]["quantity"],
            3,
            "Stripe bills three seats"
        );
        // Stripe's two-seat state from before the change, delivered after it, does not undo it.
        let two = current_subscription(first["data"]["object"].clone());
        let stale = event_at(
            "customer.subscription.updated",
            two,
            first["created"].as_i64().unwrap(),
        );
        assert_eq!(deliver(&app, &stale).await.status(), StatusCode::OK);
        wait_for_webhooks(&app, &customer).await;
        let mine = our_subscription(&app, &owner, &id).await;
        assert_eq!(mine["quantity"], 3, "{mine}");
        assert_eq!(mine["status"], more["status"], "{mine}");
        // A third member fits now.
        let res = app
            .post(
                &format!("/v1/me/subscriptions/{id}/seats"),
                &app.token(&owner, &[]),
                &json!({"user_id": format!("{owner}-m3")}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        // Premium alone is not per seat.
        let u = user();
        let res = app
            .post(
                "/v1/me/subscriptions",
                &app.token(&u, &[]),
                &json!({"price_id": "price_premium_yearly_usd", "quantity": 2}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_quantity").await;
    }
);

/// The payments recorded for our subscription `ours`: (charge, amount).
fn payments_of(app: &TestApp, ours: &str) -> Vec<(String, i64)> {
    use diesel::prelude::*;
    use kopilka::db::schema::payments;
    let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    payments::table
        .filter(payments::subscription_id.eq(ours))
        .select((payments::stripe_charge_id, payments::amount_minor))
        .load(&mut *conn)
        .unwrap()
}

/// The source keys of the payments' postings (`charge:<id>`) in the app's ledger.
fn payment_postings(app: &TestApp) -> Vec<String> {
    use diesel::prelude::*;
    use kopilka::db::schema::ledger_transactions;
    let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    ledger_transactions::table
        .filter(ledger_transactions::source_key.like("charge:%"))
        .select(ledger_transactions::source_key)
        .order(ledger_transactions::source_key)
        .load(&mut *conn)
        .unwrap()
}

both!(
    invoice_paid_and_payment_succeeded_for_one_charge_post_and_mail_once_in_either_order,
    |b: Backend| async move {
        // Only these events arrive: localstripe delivers nothing to this app.
        let app = spawn_unhooked(b, |_| {}).await;
        let orders = [
            ["invoice.paid", "invoice.payment_succeeded"],
            ["invoice.payment_succeeded", "invoice.paid"],
        ];
        let mut paid = Vec::new();
        for kinds in orders {
            let u = user();
            let pm = card(&app).await;
            let started = post_as(
                &app, &u, "/v1/me/subscriptions",
                &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm, "email": email_of(&u)}),
                StatusCode::CREATED,
            )
            .await;
            let ours = started["id"].as_str().unwrap().to_owned();
            let sub = stripe_subscription(&app, &ours).await;
            let invoice_id = sub["latest_invoice"].as_str().unwrap().to_owned();
            let invoice = stripe(&app, "GET", &format!("/invoices/{invoice_id}"), &[]).await;
            let charge = invoice["charge"]
                .as_str()
                .or(invoice["charge"]["id"].as_str())
                .expect("the invoice's charge")
                .to_owned();
            // Stripe sends both for one payment, each its own event.
            let events: Vec<Value> = kinds
                .iter()
                .map(|kind| event(kind, invoice_now(&invoice, &sub, 499)))
                .collect();
            assert_ne!(events[0]["id"], events[1]["id"]);
            for ev in &events {
                let res = deliver(&app, ev).await;
                assert_eq!(res.status(), StatusCode::OK, "{}", ev["type"]);
                let body: Value = res.json().await.unwrap();
                assert_ne!(body["duplicate"], true, "a new event, not a redelivery");
            }
            paid.push((u, ours, charge, kinds));
        }
        for (u, ours, charge, kinds) in &paid {
            assert_eq!(
                payments_of(&app, ours),
                vec![(charge.clone(), 499)],
                "one payment for {charge} ({kinds:?})"
            );
            assert_eq!(our_subscription(&app, u, ours).await["status"], "active");
        }
        let mut charges: Vec<String> = paid.iter().map(|p| format!("charge:{}", p.2)).collect();
        charges.sort();
        assert_eq!(payment_postings(&app), charges, "one posting per charge");
        // Two subscriptions paid once each.
        assert_eq!(
            balance(&app, "platform_revenue:platform:USD").await,
            -2 * 499
        );
        assert_eq!(balance(&app, "stripe_clearing:platform:USD").await, 2 * 499);
        // One receipt each: the first arrives, and once nothing is left to send it is still one.
        for (u, _, _, kinds) in &paid {
            wait_for_mail(&email_of(u), "Your receipt").await;
            wait_for_outbox_drained(&app, &email_of(u)).await;
            assert_eq!(
                mails_about(&email_of(u), "Your receipt"),
                1,
                "one receipt ({kinds:?})"
            );
        }
    }
);

both!(
    a_failed_renewal_past_its_grace_ends_access_and_the_paid_retry_restores_it,
    |b: Backend| async move {
        // No grace at all: the grace ends with the failure itself, so crossing its end needs
        // no waiting (with the default 7 days, `a_failed_yearly_renewal_keeps_access_for_the_
        // grace_counted_from_the_failure` checks the end's date). An event created earlier than
        // the subscription's last answer is ignored, so the failure cannot be dated back.
        let app = spawn_unhooked(b, |s| s.stripe.past_due_grace_days = 0).await;
        let u = user();
        let pm = card(&app).await;
        let started = post_as(
            &app, &u, "/v1/me/subscriptions",
            &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm, "email": email_of(&u)}),
            StatusCode::CREATED,
        )
        .await;
        let ours = started["id"].as_str().unwrap().to_owned();
        assert!(holds(&app, &u, "premium").await);
        let sub = stripe_subscription(&app, &ours).await;
        let invoice_id = sub["latest_invoice"].as_str().unwrap().to_owned();
        let invoice = stripe(&app, "GET", &format!("/invoices/{invoice_id}"), &[]).await;
        // The renewal fails: Stripe moves the subscription to past_due and says why.
        let mut failed = invoice_now(&invoice, &sub, 0);
        failed["status"] = json!("open");
        let res = deliver(&app, &event("invoice.payment_failed", failed)).await;
        assert_eq!(res.status(), StatusCode::OK);
        let mine = our_subscription(&app, &u, &ours).await;
        assert_eq!(mine["status"], "past_due", "{mine}");
        let grace_until = chrono::DateTime::parse_from_rfc3339(
            mine["grace_until"].as_str().expect("a grace end"),
        )
        .unwrap();
        assert!(
            grace_until <= chrono::Utc::now(),
            "the grace has ended: {mine}"
        );
        assert!(
            !holds(&app, &u, "premium").await,
            "past its grace a past-due subscription entitles to nothing"
        );
        let answer = app.entitlements(&u).await;
        assert_eq!(answer["entitlements"], json!([]), "{answer}");
        wait_for_mail(&email_of(&u), "payment for").await;
        // Stripe's retry of the same invoice succeeds: access comes back, paid once.
        let res = deliver(
            &app,
            &event("invoice.paid", invoice_now(&invoice, &sub, 499)),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let mine = our_subscription(&app, &u, &ours).await;
        assert_eq!(mine["status"], "active", "{mine}");
        assert!(mine["grace_until"].is_null(), "{mine}");
        assert!(holds(&app, &u, "premium").await);
        assert_eq!(balance(&app, "platform_revenue:platform:USD").await, -499);
    }
);
