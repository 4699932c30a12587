//! What support and admins write is bounded like what clients write: times within 1970–9999,
//! real currencies, amounts Stripe can charge, quotas that are counts. None of it is a 500.

use crate::both;
use crate::helpers::{assert_problem, spawn, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn support_post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.post(path, &app.support(), &body).await
}

both!(
    timestamps_outside_1970_to_9999_are_refused_and_9999_compares_as_time,
    |b: Backend| async move {
        let app = spawn(b).await;
        // Once a panic (`DateTime + TimeDelta overflowed`), and years PostgreSQL refuses.
        for at in [
            "+262142-12-31T23:59:59Z",
            "-4714-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            let res = support_post(&app, "/v1/admin/grants", json!({"user_id": "t", "entitlement_key": "premium", "reason": "r", "starts_at": at})).await;
            assert_problem(res, StatusCode::BAD_REQUEST, "invalid_body").await;
            let res = support_post(&app, "/v1/admin/subscriptions", json!({"user_id": "t", "price_id": "price_premium_yearly_usd", "current_period_start": at})).await;
            assert_problem(res, StatusCode::BAD_REQUEST, "invalid_body").await;
        }
        // A year starting late in 9999 would end in 10000.
        let res = support_post(&app, "/v1/admin/subscriptions", json!({"user_id": "t", "price_id": "price_premium_monthly_usd", "current_period_start": "9999-12-15T00:00:00Z"})).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_period").await;
        // The last instant accepted is held now (SQLite compares stored times as text).
        let res = support_post(&app, "/v1/admin/grants", json!({"user_id": "far", "entitlement_key": "premium", "reason": "r", "expires_at": "9999-12-31T23:59:59Z"})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(app.keys("far").await, ["premium"]);
    }
);

both!(
    prices_are_real_currencies_and_chargeable_amounts,
    |b: Backend| async move {
        let app = spawn(b).await;
        let admin = app.admin();
        let price = |body: Value| {
            let admin = admin.clone();
            let app = &app;
            async move {
                app.post("/v1/admin/products/prod_premium/prices", &admin, &body)
                    .await
            }
        };
        for currency in ["XXX", "ZZZ", "XTS", "usd"] {
            let res = price(json!({"amount_minor": 100, "currency": currency})).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_currency").await;
        }
        for amount in [0i64, -1, 100_000_000, i64::MAX] {
            let res =
                price(json!({"amount_minor": amount, "currency": "USD", "interval": "month"}))
                    .await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount").await;
        }
        let res =
            price(json!({"amount_minor": 99_999_999, "currency": "CHF", "interval": "year"})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
);

both!(
    quotas_are_counts_from_zero_to_a_trillion,
    |b: Backend| async move {
        let app = spawn(b).await;
        for value in [-1i64, i64::MAX, i64::MIN, 1_000_000_000_001] {
            let res = app
                .client
                .put(app.url("/v1/admin/products/prod_premium/entitlements"))
                .bearer_auth(app.admin())
                .json(&json!({"entitlements": [{"key": "premium"}, {"key": "max_upload_mb", "value": value}]}))
                .send()
                .await
                .unwrap();
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_entitlement").await;
            let res = support_post(&app, "/v1/admin/grants", json!({"user_id": "q", "entitlement_key": "max_upload_mb", "value": value, "reason": "r"})).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_entitlement").await;
        }
        let res = support_post(
            &app,
            "/v1/admin/grants",
            json!({"user_id": "q", "entitlement_key": "max_upload_mb", "value": 0, "reason": "r"}),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
);

both!(a_user_cannot_gift_to_themselves, |b: Backend| async move {
    let app = spawn(b).await;
    let me = app.token("giver", &[]);
    let res = app
        .post(
            "/v1/me/orders",
            &me,
            &json!({"price_id": "price_premium_monthly_usd", "recipient_id": "giver"}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "gift_to_self").await;
});

both!(
    product_texts_and_plan_entitlements_are_bounded,
    |b: Backend| async move {
        let app = spawn(b).await;
        let admin = app.admin();
        let long = "x".repeat(2_001);
        let res = app
            .post(
                "/v1/admin/products",
                &admin,
                &json!({"kind": "plan", "name": "Plus", "description": long}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_description").await;
        for name in ["", "   ", &"n".repeat(201)] {
            let res = app
                .client
                .patch(app.url("/v1/admin/products/prod_premium"))
                .bearer_auth(&admin)
                .json(&json!({"name": name}))
                .send()
                .await
                .unwrap();
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_name").await;
        }
        let put = |entitlements: Value| {
            app.client
                .put(app.url("/v1/admin/products/prod_premium/entitlements"))
                .bearer_auth(&admin)
                .json(&json!({ "entitlements": entitlements }))
                .send()
        };
        let many: Vec<Value> = (0..101).map(|i| json!({"key": format!("k{i}")})).collect();
        let res = put(Value::Array(many)).await.unwrap();
        assert_problem(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_entitlements",
        )
        .await;
        let twice = json!([{"key": "premium"}, {"key": "premium"}]);
        let res = put(twice).await.unwrap();
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_entitlement").await;
    }
);
