//! The public catalog and its management.

use crate::both;
use crate::helpers::{spawn, Backend};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    demo_catalog_lists_plans_with_prices_and_entitlements,
    |b: Backend| async move {
        let app = spawn(b).await;
        let res = app.client.get(app.url("/v1/plans")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        let plans = body["plans"].as_array().unwrap();
        let ids: Vec<&str> = plans.iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["prod_free", "prod_premium", "prod_team"]);
        let premium = &plans[1];
        let yearly = premium["prices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "price_premium_yearly_usd")
            .unwrap();
        assert_eq!(yearly["amount_minor"], 99);
        assert_eq!(yearly["trial_days"], 365);
        assert_eq!(plans[2]["per_seat"], true);
    }
);

both!(
    changing_a_plans_entitlements_changes_every_holders_answer,
    |b: Backend| async move {
        let app = spawn(b).await;
        app.subscribe("holder-a", "price_premium_monthly_usd", 1)
            .await;
        assert_eq!(app.keys("holder-a").await, ["max_upload_mb", "premium"]);
        let res = app
            .client
            .put(app.url("/v1/admin/products/prod_premium/entitlements"))
            .bearer_auth(app.admin())
            .json(&json!({"entitlements": [{"key": "premium"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(app.keys("holder-a").await, ["premium"]);
    }
);

both!(
    retired_prices_leave_the_public_catalog,
    |b: Backend| async move {
        let app = spawn(b).await;
        let res = app
            .post(
                "/v1/admin/entitlement-definitions",
                &app.admin(),
                &json!({"key": "custom_emoji", "kind": "boolean", "description": "Custom emoji"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let res = app
            .post(
                "/v1/admin/products",
                &app.admin(),
                &json!({"id": "emoji_plus", "kind": "plan",
        "name": "Emoji+", "entitlements": [{"key": "custom_emoji"}]}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let price: Value = app
            .post(
                "/v1/admin/products/emoji_plus/prices",
                &app.admin(),
                &json!({"amount_minor": 199, "currency": "EUR", "interval": "month"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let plans: Value = app.public("/v1/plans").await;
        assert!(plans["plans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "emoji_plus"));
        let res = app
            .patch(
                &format!("/v1/admin/prices/{}", price["id"].as_str().unwrap()),
                &app.admin(),
                &json!({"active": false}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let plans: Value = app.public("/v1/plans").await;
        let emoji = plans["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "emoji_plus")
            .unwrap()
            .clone();
        assert_eq!(emoji["prices"], json!([]));
        // A plan's subscribers get what it confers.
        let res = app
            .post(
                "/v1/admin/products/emoji_plus/prices",
                &app.admin(),
                &json!({"amount_minor": 199, "currency": "EUR", "interval": "month"}),
            )
            .await;
        let price: Value = res.json().await.unwrap();
        app.subscribe("emoji-fan", price["id"].as_str().unwrap(), 1)
            .await;
        assert_eq!(app.keys("emoji-fan").await, ["custom_emoji"]);
    }
);
