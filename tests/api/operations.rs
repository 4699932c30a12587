//! Running the service: health, readiness, metrics, the CLI, and creators' deals.

use crate::both;
use crate::helpers::{assert_problem, spawn, Backend};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;

both!(health_and_readiness_answer, |b: Backend| async move {
    let app = spawn(b).await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "ready");
});

both!(
    metrics_count_requests_by_route_and_cache_hits,
    |b: Backend| async move {
        let app = spawn(b).await;
        app.entitlements("metered").await; // miss
        app.entitlements("metered").await; // hit
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(
        r#"kopilka_http_requests_total{method="GET",route="/v1/me/entitlements",status="200"} 2"#
    ), "{text}");
        assert!(
            text.contains("kopilka_entitlement_cache_hits_total 1"),
            "{text}"
        );
        assert!(
            text.contains("kopilka_entitlement_cache_misses_total 1"),
            "{text}"
        );
        assert!(text.contains("kopilka_http_request_duration_seconds_bucket"));
    }
);

both!(
    admins_set_a_creators_revenue_share,
    |b: Backend| async move {
        let app = spawn(b).await;
        let put = |bps: i64| {
            app.client
                .put(app.url("/v1/admin/creators/artist"))
                .bearer_auth(app.admin())
                .json(&json!({"display_name": "The Artist", "revenue_share_bps": bps}))
                .send()
        };
        let created: Value = put(7000).await.unwrap().json().await.unwrap();
        assert_eq!(created["revenue_share_bps"], 7000);
        let changed: Value = put(5000).await.unwrap().json().await.unwrap();
        assert_eq!(changed["revenue_share_bps"], 5000);
        let shown: Value = app
            .get("/v1/admin/creators/artist", &app.admin())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(shown["display_name"], "The Artist");
        assert_problem(
            put(10_001).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_revenue_share",
        )
        .await;
        assert_problem(
            app.get("/v1/admin/creators/nobody", &app.admin()).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        // A product can belong to the creator; an unknown creator is refused.
        let res = app
            .post(
                "/v1/admin/products",
                &app.admin(),
                &json!({"kind": "sticker_pack", "name": "Art", "creator_id": "artist"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let res = app
            .post(
                "/v1/admin/products",
                &app.admin(),
                &json!({"kind": "sticker_pack", "name": "Art", "creator_id": "ghost"}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "unknown_reference").await;
    }
);

#[test]
fn dev_token_works_in_development_and_refuses_production_keys_only() {
    let bin = env!("CARGO_BIN_EXE_kopilka");
    let out = Command::new(bin)
        .args(["dev-token", "--sub", "alice", "--role", "support"])
        .env("DATABASE_URL", "unused.db")
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.trim().split('.').count(), 3);

    let out = Command::new(bin)
        .args(["dev-token", "--sub", "alice"])
        .env("KOPILKA__ENVIRONMENT", "production")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("production keys only"));
}

#[test]
fn settings_never_print_secrets() {
    let mut settings = crate::helpers::test_settings("postgres://kopilka:hunter2@db/kopilka");
    settings.auth.hs256_secret = Some("very-secret-value".to_owned().into());
    let printed = format!("{settings:?}");
    assert!(
        !printed.contains("hunter2") && !printed.contains("very-secret-value"),
        "{printed}"
    );
}
