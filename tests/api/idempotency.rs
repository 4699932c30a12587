//! `Idempotency-Key`: one execution per key, replayed answers, refused reuse.

use crate::both;
use crate::helpers::{assert_problem, spawn, Backend};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    same_key_same_body_replays_the_first_answer,
    |b: Backend| async move {
        let app = spawn(b).await;
        let body = json!({"user_id": "idem", "entitlement_key": "premium", "reason": "goodwill"});
        let send = || {
            app.client
                .post(app.url("/v1/admin/grants"))
                .bearer_auth(app.support())
                .header("Idempotency-Key", "grant-idem-1")
                .json(&body)
                .send()
        };
        let first = send().await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        let first: Value = first.json().await.unwrap();
        let second = send().await.unwrap();
        assert_eq!(second.status(), StatusCode::CREATED);
        assert_eq!(second.headers()["idempotent-replayed"], "true");
        let second: Value = second.json().await.unwrap();
        assert_eq!(first, second);
        let user: Value = app
            .get("/v1/admin/users/idem", &app.support())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            user["grants"].as_array().unwrap().len(),
            1,
            "one grant, not two"
        );
    }
);

both!(same_key_different_body_is_422, |b: Backend| async move {
    let app = spawn(b).await;
    let post = |user: &'static str| {
        app.client
            .post(app.url("/v1/admin/grants"))
            .bearer_auth(app.support())
            .header("Idempotency-Key", "k-1")
            .json(&json!({"user_id": user, "entitlement_key": "premium", "reason": "r"}))
            .send()
    };
    assert_eq!(post("first").await.unwrap().status(), StatusCode::CREATED);
    assert_problem(
        post("second").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert!(app.keys("second").await.is_empty());
});

both!(
    concurrent_duplicates_execute_once,
    |b: Backend| async move {
        let app = spawn(b).await;
        let body = json!({"user_id": "racer", "entitlement_key": "premium", "reason": "race"});
        let requests = (0..8).map(|_| {
            app.client
                .post(app.url("/v1/admin/grants"))
                .bearer_auth(app.support())
                .header("Idempotency-Key", "race-key")
                .json(&body)
                .send()
        });
        let answers = futures_util::future::join_all(requests).await;
        let mut ids = std::collections::HashSet::new();
        for res in answers {
            let res = res.unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
            let grant: Value = res.json().await.unwrap();
            ids.insert(grant["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(ids.len(), 1, "every duplicate got the one grant");
        let user: Value = app
            .get("/v1/admin/users/racer", &app.support())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(user["grants"].as_array().unwrap().len(), 1);
    }
);

both!(keys_are_scoped_to_the_caller, |b: Backend| async move {
    let app = spawn(b).await;
    let post = |token: String| {
        app.client
            .post(app.url("/v1/me/entitlement-token"))
            .bearer_auth(token)
            .header("Idempotency-Key", "shared-key")
            .send()
    };
    let a: Value = post(app.token("ann", &[]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value = post(app.token("ben", &[]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(
        a["token"], b["token"],
        "another caller's key is not ours to replay"
    );
});
