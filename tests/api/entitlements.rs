//! What a user may use, at every boundary: grants, trials, periods, grace, refunds, seats.

use crate::both;
use crate::helpers::{eventually, keys_of, spawn, Backend};
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    new_user_holds_nothing_and_is_recorded,
    |b: Backend| async move {
        let app = spawn(b).await;
        let answer = app.entitlements("newcomer").await;
        assert_eq!(answer["user_id"], "newcomer");
        assert_eq!(answer["entitlements"], json!([]));
        assert_eq!(answer["next_change"], Value::Null);
        // Support can look the user up: they were recorded on first sight.
        let res = app.get("/v1/admin/users/newcomer", &app.support()).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
);

both!(
    lifetime_grant_gives_premium_until_revoked,
    |b: Backend| async move {
        let app = spawn(b).await;
        let grant = app.grant("early-adopter", "premium", None).await;
        let answer = app.entitlements("early-adopter").await;
        assert_eq!(keys_of(&answer), ["premium"]);
        assert_eq!(answer["entitlements"][0]["expires_at"], Value::Null);
        // Clients get key, value and expiry; support sees which holding gave it.
        assert!(answer["entitlements"][0].get("source").is_none());
        let overview: Value = app
            .get("/v1/admin/users/early-adopter", &app.support())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(overview["entitlements"][0]["source"]["kind"], "grant");
        assert_eq!(overview["entitlements"][0]["source"]["id"], grant["id"]);

        let res = app
            .delete(
                &format!("/v1/admin/grants/{}", grant["id"].as_str().unwrap()),
                &app.support(),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(app.keys("early-adopter").await.is_empty());
    }
);

both!(
    expiring_grant_says_when_it_ends_and_cache_age_never_passes_it,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ends = Utc::now() + Duration::seconds(90);
        app.grant("gifted", "premium", Some(ends)).await;
        let res = app
            .get("/v1/me/entitlements", &app.token("gifted", &[]))
            .await;
        let cache_control = res.headers()["cache-control"].to_str().unwrap().to_owned();
        let max_age: i64 = cache_control.rsplit('=').next().unwrap().parse().unwrap();
        assert!(max_age <= 90, "max-age {max_age} passes the grant's end");
        let answer: Value = res.json().await.unwrap();
        let expires = answer["entitlements"][0]["expires_at"].as_str().unwrap();
        let expires: chrono::DateTime<Utc> = expires.parse().unwrap();
        assert!((expires - ends).num_milliseconds().abs() < 1000);
        assert_eq!(
            answer["next_change"],
            answer["entitlements"][0]["expires_at"]
        );
    }
);

both!(
    grant_that_just_ended_is_not_served_from_cache,
    |b: Backend| async move {
        let app = spawn(b).await;
        app.grant(
            "brief",
            "premium",
            Some(Utc::now() + Duration::milliseconds(1500)),
        )
        .await;
        assert_eq!(app.keys("brief").await, ["premium"]);
        // The cache holds the answer, but never past its next change.
        let gone = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
            app.keys("brief").await.is_empty()
        })
        .await;
        assert!(gone, "premium still served after the grant expired");
    }
);

both!(
    etag_is_strong_and_304_when_unchanged,
    |b: Backend| async move {
        let app = spawn(b).await;
        app.grant("etag-user", "premium", None).await;
        let token = app.token("etag-user", &[]);
        let first = app.get("/v1/me/entitlements", &token).await;
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"));
        let again = app
            .client
            .get(app.url("/v1/me/entitlements"))
            .bearer_auth(&token)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);

        let (pack, _) = app.sticker_pack("etag-pack", 99).await;
        app.grant("etag-user", &format!("sticker_pack:{pack}"), None)
            .await;
        let changed = app
            .client
            .get(app.url("/v1/me/entitlements"))
            .bearer_auth(&token)
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    }
);

both!(trial_grants_plan_until_trial_end, |b: Backend| async move {
    let app = spawn(b).await;
    let sub = app.subscribe("trier", "price_premium_yearly_usd", 1).await;
    assert_eq!(sub["status"], "trialing");
    let answer = app.entitlements("trier").await;
    assert_eq!(keys_of(&answer), ["max_upload_mb", "premium"]);
    assert_eq!(answer["entitlements"][0]["value"], 4000);
    assert_eq!(answer["entitlements"][1]["expires_at"], sub["trial_end"]);
    assert_eq!(answer["next_change"], sub["trial_end"]);
});

both!(
    past_due_keeps_access_until_its_grace_ends_and_not_after,
    |b: Backend| async move {
        let app = spawn(b).await;
        let sub = app.subscribe("payer", "price_premium_monthly_usd", 1).await;
        let id = sub["id"].as_str().unwrap();
        // The grace ends in two seconds; nobody marks the subscription expired.
        let grace = Utc::now() + Duration::seconds(2);
        let period_end = Utc::now() - Duration::minutes(1);
        let res = app
            .patch(
                &format!("/v1/admin/subscriptions/{id}"),
                &app.support(),
                &json!({"status": "past_due", "current_period_start": Utc::now() - Duration::days(30),
                        "current_period_end": period_end, "grace_until": grace}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let answer = app.entitlements("payer").await;
        assert_eq!(keys_of(&answer), ["max_upload_mb", "premium"]);
        // The cached answer is not served past the grace end: premium goes when it ends.
        let gone = eventually(Duration::seconds(10).to_std().unwrap(), || async {
            app.keys("payer").await.is_empty()
        })
        .await;
        assert!(gone, "access ends with the grace");
        assert!(Utc::now() >= grace, "and not before");
    }
);

both!(
    canceled_subscription_lasts_to_period_end,
    |b: Backend| async move {
        let app = spawn(b).await;
        let sub = app
            .subscribe("leaver", "price_premium_monthly_usd", 1)
            .await;
        let id = sub["id"].as_str().unwrap();
        let res = app
            .patch(
                &format!("/v1/admin/subscriptions/{id}"),
                &app.support(),
                &json!({"status": "canceled"}),
            )
            .await;
        let canceled: Value = res.json().await.unwrap();
        assert!(canceled["canceled_at"].is_string());
        let answer = app.entitlements("leaver").await;
        assert_eq!(keys_of(&answer), ["max_upload_mb", "premium"]);
        assert_eq!(
            answer["entitlements"][1]["expires_at"],
            sub["current_period_end"]
        );
    }
);

both!(quotas_merge_by_maximum, |b: Backend| async move {
    let app = spawn(b).await;
    app.subscribe("mixer", "price_free_usd", 1).await; // max_upload_mb 100
    app.subscribe("mixer", "price_premium_monthly_usd", 1).await; // max_upload_mb 4000
    let answer = app.entitlements("mixer").await;
    let upload = answer["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "max_upload_mb")
        .unwrap()
        .clone();
    assert_eq!(upload["value"], 4000);
});

both!(
    refunded_pack_is_no_longer_held_and_gift_goes_to_recipient,
    |b: Backend| async move {
        let app = spawn(b).await;
        let (pack, price) = app.sticker_pack("cats", 199).await;
        let key = format!("sticker_pack:{pack}");

        let res = app
            .post(
                "/v1/admin/orders",
                &app.support(),
                &json!({"buyer_id": "giver", "recipient_id": "friend", "price_id": price}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let gift: Value = res.json().await.unwrap();
        assert_eq!(gift["amount_minor"], 199);
        assert_eq!(app.keys("friend").await, vec![key]);
        assert!(
            app.keys("giver").await.is_empty(),
            "the giver does not get the gift"
        );

        let res = app
            .patch(
                &format!("/v1/admin/orders/{}", gift["id"].as_str().unwrap()),
                &app.support(),
                &json!({"status": "refunded"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            app.keys("friend").await.is_empty(),
            "a refund of a gift revokes the recipient's pack"
        );
    }
);

both!(
    support_sees_what_produced_a_users_answer,
    |b: Backend| async move {
        let app = spawn(b).await;
        app.grant("looked-up", "premium", None).await;
        let res = app.get("/v1/admin/users/looked-up", &app.support()).await;
        let body: Value = res.json().await.unwrap();
        assert_eq!(keys_of(&body), ["premium"]);
        assert_eq!(body["grants"].as_array().unwrap().len(), 1);
        // A plain user cannot look at others.
        let res = app
            .get("/v1/admin/users/looked-up", &app.token("nosy", &[]))
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
);

both!(
    batch_check_answers_each_user_in_order_and_filters_features,
    |b: Backend| async move {
        let app = spawn(b).await;
        app.grant("batch-a", "premium", None).await;
        app.subscribe("batch-b", "price_free_usd", 1).await;
        let key = app.service_key().await;
        let res = app
            .post(
                "/v1/entitlements/check",
                &key,
                &json!({"user_ids": ["batch-b", "never-seen", "batch-a"]}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0]["user_id"], "batch-b");
        assert_eq!(
            keys_of(&results[0]),
            ["integrations", "max_upload_mb", "search_history_messages"]
        );
        assert_eq!(results[1]["entitlements"], json!([]));
        assert_eq!(keys_of(&results[2]), ["premium"]);

        let res = app
        .post("/v1/entitlements/check", &key,
              &json!({"user_ids": ["batch-a", "batch-b"], "features": ["premium", "max_upload_mb"]}))
        .await;
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["results"][0]["features"]["premium"]["granted"], true);
        assert_eq!(
            body["results"][0]["features"]["max_upload_mb"]["granted"],
            false
        );
        assert_eq!(
            body["results"][1]["features"]["max_upload_mb"],
            json!({"granted": true, "value": 100, "expires_at": body["results"][1]["features"]["max_upload_mb"]["expires_at"]})
        );
        assert_eq!(body["results"][1]["features"]["premium"]["granted"], false);
    }
);

/// An app serving the demo's Free plan to everyone, as `cargo run` does.
async fn with_free_tier(b: Backend) -> crate::helpers::TestApp {
    crate::helpers::spawn_with(std::sync::Arc::new(crate::helpers::TestDb::new(b)), |s| {
        s.entitlements.default_plan = Some("prod_free".into())
    })
    .await
}

fn value_of(answer: &Value, key: &str) -> Value {
    answer["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == key)
        .map_or(Value::Null, |e| e["value"].clone())
}

const FREE: [&str; 3] = ["integrations", "max_upload_mb", "search_history_messages"];

both!(
    the_free_tier_is_part_of_every_answer_merged_by_maximum,
    |b: Backend| async move {
        let app = with_free_tier(b).await;
        // Holding nothing is holding the Free plan (Slack's free tier: 10,000 searchable
        // messages, 5 integrations, 100 MB uploads).
        let nobody = app.entitlements("nobody").await;
        assert_eq!(keys_of(&nobody), FREE);
        assert_eq!(value_of(&nobody, "search_history_messages"), 10_000);
        assert_eq!(value_of(&nobody, "max_upload_mb"), 100);
        assert_eq!(nobody["next_change"], Value::Null);
        // A premium grant adds to the Free plan; it takes nothing away.
        app.grant("granted", "premium", None).await;
        assert_eq!(
            app.keys("granted").await,
            [
                "integrations",
                "max_upload_mb",
                "premium",
                "search_history_messages"
            ]
        );
        // Quotas merge by maximum: Premium's 4,000 MB over Free's 100.
        app.subscribe("subscriber", "price_premium_monthly_usd", 1)
            .await;
        let answer = app.entitlements("subscriber").await;
        assert_eq!(value_of(&answer, "max_upload_mb"), 4_000);
        assert_eq!(value_of(&answer, "integrations"), 5);
        // Support sees where each came from.
        let res = app.get("/v1/admin/users/subscriber", &app.support()).await;
        let overview: Value = res.json().await.unwrap();
        let source = |key: &str| {
            overview["entitlements"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["key"] == key)
                .unwrap()["source"]
                .clone()
        };
        assert_eq!(
            source("integrations"),
            json!({"kind": "default_plan", "id": "prod_free"})
        );
        assert_eq!(source("max_upload_mb")["kind"], "subscription");
        // Messenger servers get it too, for users never seen.
        let key = app.service_key().await;
        let res = app
            .post(
                "/v1/entitlements/check",
                &key,
                &json!({"user_ids": ["never-seen"]}),
            )
            .await;
        let body: Value = res.json().await.unwrap();
        assert_eq!(keys_of(&body["results"][0]), FREE);
    }
);

both!(
    the_free_tiers_entitlements_changed_reach_every_cached_answer_at_once,
    |b: Backend| async move {
        let app = with_free_tier(b).await;
        for u in ["cached-1", "cached-2"] {
            assert_eq!(app.keys(u).await, FREE);
            assert_eq!(app.keys(u).await, FREE, "served from the cache");
        }
        let res = app
            .client
            .put(app.url("/v1/admin/products/prod_free/entitlements"))
            .bearer_auth(app.admin())
            .json(&json!({"entitlements": [{"key": "max_upload_mb", "value": 250}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        for u in ["cached-1", "cached-2", "new-after"] {
            let answer = app.entitlements(u).await;
            assert_eq!(keys_of(&answer), ["max_upload_mb"], "{u}");
            assert_eq!(value_of(&answer, "max_upload_mb"), 250);
        }
        // Retiring the default plan takes it out of every answer at once, cached or new.
        let res = app
            .client
            .patch(app.url("/v1/admin/products/prod_free"))
            .bearer_auth(app.admin())
            .json(&json!({"active": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        for u in ["cached-1", "new-after-retiring"] {
            assert!(app.keys(u).await.is_empty(), "{u}");
        }
    }
);
