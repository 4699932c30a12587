//! Stripe webhooks: signed with Stripe's scheme under any live secret, deduplicated by event id,
//! unknown types stored and acknowledged; bad, stale or missing signatures store nothing.

use crate::both;
use crate::helpers::{assert_problem, spawn, spawn_with, Backend, TestApp, TestDb};
use kopilka::stripe::signature::sign;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

async fn with_secrets(b: Backend) -> TestApp {
    spawn_with(Arc::new(TestDb::new(b)), |s| {
        s.stripe.webhook_secrets =
            vec!["whsec_old".to_owned().into(), "whsec_new".to_owned().into()];
    })
    .await
}

async fn deliver(app: &TestApp, body: &str, signature: Option<String>) -> reqwest::Response {
    crate::stripe_shapes::assert_stripe_shaped(&serde_json::from_str(body).unwrap());
    let mut req = app
        .client
        .post(app.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json");
    if let Some(sig) = signature {
        req = req.header("Stripe-Signature", sig);
    }
    req.body(body.to_owned()).send().await.unwrap()
}

fn event(id: &str) -> String {
    json!({"id": id, "object": "event", "type": "customer.created", "created": 1_800_000_000,
           "data": {"object": {"id": "cus_1", "object": "customer"}}})
    .to_string()
}

fn count(app: &TestApp) -> i64 {
    let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
    kopilka::db::models::stripe_events::count(&mut pool.get().unwrap()).unwrap()
}

both!(signed_events_are_stored_once, |b: Backend| async move {
    let app = with_secrets(b).await;
    let body = event("evt_1");
    let now = chrono::Utc::now().timestamp();
    for secret in ["whsec_new", "whsec_old"] {
        let res = deliver(&app, &body, Some(sign(body.as_bytes(), secret, now))).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = deliver(&app, &body, Some(sign(body.as_bytes(), "whsec_new", now))).await;
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["duplicate"], true);
    assert_eq!(count(&app), 1, "a redelivered event is stored once");
});

both!(
    bad_stale_or_missing_signatures_store_nothing,
    |b: Backend| async move {
        let app = with_secrets(b).await;
        let body = event("evt_2");
        let now = chrono::Utc::now().timestamp();
        let cases = [
            None,
            Some(sign(body.as_bytes(), "whsec_unknown", now)),
            Some(sign(body.as_bytes(), "whsec_new", now - 301)),
            Some(sign(event("evt_other").as_bytes(), "whsec_new", now)),
            Some("t=abc,v1=zz".to_owned()),
        ];
        for sig in cases {
            assert_problem(
                deliver(&app, &body, sig).await,
                StatusCode::BAD_REQUEST,
                "invalid_signature",
            )
            .await;
        }
        assert_eq!(count(&app), 0);
    }
);

both!(
    webhooks_without_secrets_are_unavailable,
    |b: Backend| async move {
        let app = spawn(b).await;
        let body = event("evt_3");
        let sig = sign(body.as_bytes(), "whsec_new", chrono::Utc::now().timestamp());
        assert_problem(
            deliver(&app, &body, Some(sig)).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "stripe_not_configured",
        )
        .await;
    }
);

/// A Stripe subscription event; the Stripe id is derived from ours (one Stripe object each).
fn subscription_event(id: &str, kind: &str, created: i64, ours: &str, status: &str) -> String {
    // One instant for every event of the run, so equal events carry equal periods.
    static NOW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let now = *NOW.get_or_init(|| chrono::Utc::now().timestamp());
    json!({"id": id, "object": "event", "type": kind, "created": created,
           "data": {"object": {"id": format!("stripe_{ours}"), "object": "subscription", "status": status,
               "cancel_at_period_end": false,
               "items": {"object": "list", "has_more": false, "data": [{
                   "id": format!("si_{ours}"), "object": "subscription_item", "quantity": 1,
                   "current_period_start": now - 86_400, "current_period_end": now + 29 * 86_400}]},
               "metadata": {"kopilka_subscription_id": ours}}}})
    .to_string()
}

async fn deliver_signed(app: &TestApp, body: &str) {
    let sig = sign(body.as_bytes(), "whsec_new", chrono::Utc::now().timestamp());
    assert_eq!(deliver(app, body, Some(sig)).await.status(), StatusCode::OK);
}

both!(
    subscription_events_apply_in_any_order_and_once,
    |b: Backend| async move {
        let app = with_secrets(b).await;
        let t = 1_800_000_000;
        let mut finals = Vec::new();
        for (user, order) in [("in-order", [0usize, 1, 2]), ("shuffled", [2, 0, 1])] {
            let sub = app.subscribe(user, "price_premium_monthly_usd", 1).await;
            let ours = sub["id"].as_str().unwrap();
            let events = [
                subscription_event(
                    &format!("evt_{user}_1"),
                    "customer.subscription.created",
                    t,
                    ours,
                    "active",
                ),
                subscription_event(
                    &format!("evt_{user}_2"),
                    "customer.subscription.updated",
                    t + 10,
                    ours,
                    "past_due",
                ),
                subscription_event(
                    &format!("evt_{user}_3"),
                    "customer.subscription.updated",
                    t + 20,
                    ours,
                    "active",
                ),
            ];
            for i in order {
                deliver_signed(&app, &events[i]).await;
                deliver_signed(&app, &events[i]).await; // every event twice
            }
            let overview: Value = app
                .get(&format!("/v1/admin/users/{user}"), &app.support())
                .await
                .json()
                .await
                .unwrap();
            let sub = &overview["subscriptions"][0];
            assert_eq!(
                sub["status"], "active",
                "{user}: the newest event's state wins"
            );
            assert_eq!(app.keys(user).await, ["max_upload_mb", "premium"]);
            finals.push((sub["status"].clone(), sub["current_period_end"].clone()));
        }
        assert_eq!(finals[0], finals[1]);
    }
);

both!(
    past_due_keeps_access_through_grace_and_deletion_ends_it,
    |b: Backend| async move {
        let app = with_secrets(b).await;
        let sub = app
            .subscribe("renewer", "price_premium_monthly_usd", 1)
            .await;
        let ours = sub["id"].as_str().unwrap();
        let t = 1_800_000_000;
        deliver_signed(
            &app,
            &subscription_event(
                "evt_r1",
                "customer.subscription.updated",
                t,
                ours,
                "past_due",
            ),
        )
        .await;
        let overview: Value = app
            .get("/v1/admin/users/renewer", &app.support())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(overview["subscriptions"][0]["status"], "past_due");
        assert!(overview["subscriptions"][0]["grace_until"].is_string());
        assert_eq!(app.keys("renewer").await, ["max_upload_mb", "premium"]);

        deliver_signed(
            &app,
            &subscription_event(
                "evt_r2",
                "customer.subscription.deleted",
                t + 5,
                ours,
                "canceled",
            ),
        )
        .await;
        assert!(
            app.keys("renewer").await.is_empty(),
            "an ended subscription gives nothing"
        );
        // A late, older event does not bring it back.
        deliver_signed(
            &app,
            &subscription_event(
                "evt_r0",
                "customer.subscription.updated",
                t - 5,
                ours,
                "active",
            ),
        )
        .await;
        assert!(app.keys("renewer").await.is_empty());
    }
);

both!(
    events_for_unknown_subscriptions_are_acknowledged_and_ignored,
    |b: Backend| async move {
        let app = with_secrets(b).await;
        let body = subscription_event(
            "evt_x",
            "customer.subscription.updated",
            1_800_000_000,
            "sub_not_ours",
            "active",
        );
        deliver_signed(&app, &body).await;
        assert_eq!(count(&app), 1);
    }
);

// The same event delivered 16 times at once (Stripe retries while a slow first delivery is
// still running) is applied once: one payment, one posting, one receipt.
both!(
    one_event_delivered_sixteen_times_at_once_is_applied_once,
    |b: Backend| async move {
        use crate::billing_helpers::*;
        let app = spawn_unhooked(b, |_| {}).await;
        let (_, pack, price) = creator_pack(&app, 7000, 299).await;
        let buyer = user();
        let order = buy_and_pay(&app, &buyer, &price, None).await;
        let intent = intent_of(&order);
        let found = crate::helpers::eventually(WAIT, || async {
            stripe_all(&app, "/events").await.iter().any(|e| {
                e["type"] == "payment_intent.succeeded"
                    && e["data"]["object"]["id"] == intent.as_str()
            })
        })
        .await;
        assert!(found, "localstripe made the event");
        let succeeded = stripe_all(&app, "/events")
            .await
            .into_iter()
            .find(|e| {
                e["type"] == "payment_intent.succeeded"
                    && e["data"]["object"]["id"] == intent.as_str()
            })
            .unwrap();
        let mut deliveries = Vec::new();
        for _ in 0..16 {
            let (app_url, client, secret, body) = (
                app.url("/v1/webhooks/stripe"),
                app.client.clone(),
                {
                    use secrecy::ExposeSecret;
                    app.settings.stripe.webhook_secrets[0]
                        .expose_secret()
                        .to_owned()
                },
                succeeded.to_string(),
            );
            deliveries.push(actix_web::rt::spawn(async move {
                let sig = sign(body.as_bytes(), &secret, chrono::Utc::now().timestamp());
                client
                    .post(app_url)
                    .header("Stripe-Signature", sig)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
        for d in deliveries {
            let status = d.await.unwrap();
            assert!(
                status == StatusCode::OK || status == StatusCode::CONFLICT,
                "{status}"
            );
        }
        wait_until_holds(&app, &buyer, &format!("sticker_pack:{pack}"), true).await;
        wait_for_outbox_drained(&app, &email_of(&buyer)).await;
        let (payments, postings) = {
            use diesel::prelude::*;
            use kopilka::db::schema::{ledger_transactions as t, payments as p};
            let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
            let mut conn = pool.get().unwrap();
            let payments: i64 = p::table.count().get_result(&mut conn).unwrap();
            let postings: i64 = t::table
                .filter(t::source_key.like("charge:%"))
                .count()
                .get_result(&mut conn)
                .unwrap();
            (payments, postings)
        };
        assert_eq!((payments, postings), (1, 1));
        assert_eq!(count(&app), 1, "stored once");
        assert_eq!(mails_about(&email_of(&buyer), "receipt"), 1);
    }
);
