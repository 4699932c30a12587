//! Per-seat plans: the owner assigns seats; each member gets the plan's entitlements.

use crate::both;
use crate::helpers::{assert_problem, spawn, Backend};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    seat_holders_get_the_plan_and_lose_it_when_removed,
    |b: Backend| async move {
        let app = spawn(b).await;
        let sub = app
            .subscribe("team-owner", "price_team_monthly_usd", 2)
            .await;
        let id = sub["id"].as_str().unwrap();
        let owner = app.token("team-owner", &[]);
        // Owning a per-seat subscription gives nothing by itself.
        assert!(app.keys("team-owner").await.is_empty());

        for member in ["team-owner", "member-1"] {
            let res = app
                .post(
                    &format!("/v1/me/subscriptions/{id}/seats"),
                    &owner,
                    &json!({"user_id": member}),
                )
                .await;
            assert_eq!(res.status(), StatusCode::CREATED);
        }
        assert!(app.keys("member-1").await.contains(&"premium".to_owned()));
        assert!(app
            .keys("team-owner")
            .await
            .contains(&"integrations".to_owned()));

        let res = app
            .post(
                &format!("/v1/me/subscriptions/{id}/seats"),
                &owner,
                &json!({"user_id": "member-2"}),
            )
            .await;
        assert_problem(res, StatusCode::CONFLICT, "no_free_seat").await;

        let res = app
            .get(&format!("/v1/me/subscriptions/{id}/seats"), &owner)
            .await;
        let seats: Value = res.json().await.unwrap();
        assert_eq!(seats["members"], json!(["team-owner", "member-1"]));

        let res = app
            .delete(&format!("/v1/me/subscriptions/{id}/seats/member-1"), &owner)
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert!(app.keys("member-1").await.is_empty());
    }
);

both!(only_the_owner_manages_seats, |b: Backend| async move {
    let app = spawn(b).await;
    let sub = app
        .subscribe("real-owner", "price_team_monthly_usd", 3)
        .await;
    let id = sub["id"].as_str().unwrap();
    let res = app
        .post(
            &format!("/v1/me/subscriptions/{id}/seats"),
            &app.token("intruder", &[]),
            &json!({"user_id": "intruder"}),
        )
        .await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    assert!(app.keys("intruder").await.is_empty());

    let mine = app
        .get("/v1/me/subscriptions", &app.token("intruder", &[]))
        .await;
    let mine: Value = mine.json().await.unwrap();
    assert_eq!(mine["subscriptions"], json!([]));
});
