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
