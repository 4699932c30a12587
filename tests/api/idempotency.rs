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
    // A token is never replayed (a stored one would expire while its key lives a day): the
    // same caller and key get a fresh one.
    let again = post(app.token("ann", &[])).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert!(again.headers().get("idempotent-replayed").is_none());
});

/// The stored answers' first-use times, by key.
fn stored_keys(app: &crate::helpers::TestApp) -> Vec<(String, chrono::NaiveDateTime)> {
    use diesel::prelude::*;
    use kopilka::db::schema::idempotency_keys as k;
    let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    k::table
        .select((k::key, k::created_at))
        .load(&mut conn)
        .unwrap()
}

/// Moves a stored answer's first use `hours` into the past.
fn age(app: &crate::helpers::TestApp, key: &str, hours: i64) {
    use diesel::prelude::*;
    use kopilka::db::schema::idempotency_keys as k;
    let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let then = chrono::Utc::now().naive_utc() - chrono::Duration::hours(hours);
    diesel::update(k::table.filter(k::key.eq(key)))
        .set(k::created_at.eq(then))
        .execute(&mut conn)
        .unwrap();
}

both!(
    answers_are_kept_a_day_then_the_key_runs_as_new_and_the_row_is_purged,
    |b: Backend| async move {
        let app =
            crate::helpers::spawn_with(std::sync::Arc::new(crate::helpers::TestDb::new(b)), |s| {
                s.billing.maintenance_interval_seconds = 1;
            })
            .await;
        let grant = |user: &str, key: &str| {
            app.client
                .post(app.url("/v1/admin/grants"))
                .bearer_auth(app.support())
                .header("Idempotency-Key", key)
                .json(&json!({"user_id": user, "entitlement_key": "premium", "reason": "goodwill"}))
                .send()
        };
        assert_eq!(
            grant("day-1", "k-day").await.unwrap().status(),
            StatusCode::CREATED
        );
        // 23 hours on: still the same key, so another body is refused.
        age(&app, "k-day", 23);
        let reused = grant("day-2", "k-day").await.unwrap();
        assert_problem(
            reused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
        )
        .await;
        // 25 hours on: forgotten, so the key runs as new.
        age(&app, "k-day", 25);
        let again = grant("day-2", "k-day").await.unwrap();
        assert_eq!(again.status(), StatusCode::CREATED);
        assert!(again.headers().get("idempotent-replayed").is_none());
        // Rows past the retention are deleted by the jobs worker.
        assert_eq!(
            grant("day-3", "k-old").await.unwrap().status(),
            StatusCode::CREATED
        );
        age(&app, "k-old", 25);
        let purged = crate::helpers::eventually(std::time::Duration::from_secs(30), || async {
            !stored_keys(&app).iter().any(|(k, _)| k == "k-old")
        })
        .await;
        assert!(purged, "{:?}", stored_keys(&app));
        assert!(
            stored_keys(&app).iter().any(|(k, _)| k == "k-day"),
            "fresh answers stay"
        );
    }
);

both!(
    an_answer_too_large_to_keep_is_not_stored_and_a_retry_derives_it_again,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ids: Vec<String> = (0..1000)
            .map(|i| format!("large-answer-user-{i:04}"))
            .collect();
        let key = app.service_key().await;
        let check = || {
            app.client
                .post(app.url("/v1/entitlements/check"))
                .bearer_auth(&key)
                .header("Idempotency-Key", "big-check")
                .json(&json!({"user_ids": ids}))
                .send()
        };
        let first = check().await.unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let first = first.text().await.unwrap();
        assert!(
            first.len() > kopilka::services::idempotency::MAX_STORED_ANSWER_BYTES,
            "the answer is {} bytes",
            first.len()
        );
        assert!(stored_keys(&app).is_empty(), "not kept whole");
        let second = check().await.unwrap();
        assert_eq!(second.status(), StatusCode::OK);
        assert_eq!(second.text().await.unwrap(), first);
    }
);

// A claim left without an answer (the process died mid-request, or its answer could not be
// stored) is abandoned after five minutes: the key runs again instead of 409 for a day.
both!(
    an_abandoned_claim_runs_again_after_five_minutes,
    |b: Backend| async move {
        let app = spawn(b).await;
        let grant = || {
            app.client
                .post(app.url("/v1/admin/grants"))
                .bearer_auth(app.support())
                .header("Idempotency-Key", "k-abandoned")
                .json(&json!({"user_id": "ab", "entitlement_key": "premium", "reason": "r"}))
                .send()
        };
        assert_eq!(grant().await.unwrap().status(), StatusCode::CREATED);
        // As if that request had died before its answer was stored, six minutes ago.
        {
            use diesel::prelude::*;
            use kopilka::db::schema::idempotency_keys as k;
            let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
            let then = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(6);
            diesel::update(k::table.filter(k::key.eq("k-abandoned")))
                .set((
                    k::status_code.eq(None::<i32>),
                    k::response_body.eq(None::<String>),
                    k::created_at.eq(then),
                ))
                .execute(&mut pool.get().unwrap())
                .unwrap();
        }
        let again = grant().await.unwrap();
        assert_eq!(again.status(), StatusCode::CREATED);
        assert!(again.headers().get("idempotent-replayed").is_none());
    }
);
