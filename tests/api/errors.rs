//! Bad input always gets a 4xx problem document; nothing half-written.

use crate::both;
use crate::helpers::{assert_problem, spawn, Backend};
use reqwest::StatusCode;
use serde_json::json;

both!(
    malformed_and_mistyped_bodies_are_400,
    |b: Backend| async move {
        let app = spawn(b).await;
        let res = app
            .client
            .post(app.url("/v1/admin/grants"))
            .bearer_auth(app.support())
            .header("content-type", "application/json")
            .body("{\"user_id\": ")
            .send()
            .await
            .unwrap();
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_body").await;
        let res = app
            .post(
                "/v1/admin/grants",
                &app.support(),
                &json!({"user_id": 7, "entitlement_key": "premium", "reason": "x"}),
            )
            .await;
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_body").await;
        let res = app
            .post(
                "/v1/admin/grants",
                &app.support(),
                &json!({"user_id": "u", "entitlement_key": "premium", "reason": "x", "extra": 1}),
            )
            .await;
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_body").await;
    }
);

both!(oversize_bodies_are_413, |b: Backend| async move {
    let app = spawn(b).await;
    let key = app.service_key().await;
    let big = "x".repeat(app.settings.http.max_body_bytes + 1);
    let res = app
        .client
        .post(app.url("/v1/entitlements/check"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
});

both!(unknown_ids_and_routes_are_404, |b: Backend| async move {
    let app = spawn(b).await;
    assert_problem(
        app.delete("/v1/admin/grants/grant_nope", &app.support())
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.patch(
            "/v1/admin/orders/ord_nope",
            &app.support(),
            &json!({"status": "paid"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/nothing-here", &app.support()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app.client.put(app.url("/v1/plans")).send().await.unwrap();
    assert_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
});

both!(too_many_users_in_a_batch_is_422, |b: Backend| async move {
    let app = spawn(b).await;
    let key = app.service_key().await;
    let ids: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let res = app
        .post("/v1/entitlements/check", &key, &json!({"user_ids": ids}))
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "batch_too_large").await;
    let res = app
        .post(
            "/v1/entitlements/check",
            &key,
            &json!({"user_ids": ["has space"]}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_user_id").await;
});

both!(
    rejected_writes_leave_nothing_behind,
    |b: Backend| async move {
        let app = spawn(b).await;
        // A product whose entitlements are not all defined is refused whole: no product remains.
        let res = app
            .post(
                "/v1/admin/products",
                &app.admin(),
                &json!({
        "id": "half", "kind": "plan", "name": "Half",
        "entitlements": [{"key": "premium"}, {"key": "no_such_thing"}]}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "unknown_entitlement").await;
        let list: serde_json::Value = app
            .get("/v1/admin/products", &app.admin())
            .await
            .json()
            .await
            .unwrap();
        assert!(list["products"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != "half"));
        // Quotas need a value.
        let res = app
            .post(
                "/v1/admin/grants",
                &app.support(),
                &json!({"user_id": "u", "entitlement_key": "max_upload_mb", "reason": "x"}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_entitlement").await;
        // Orders need one-off prices.
        let res = app
            .post(
                "/v1/admin/orders",
                &app.support(),
                &json!({"buyer_id": "u", "price_id": "price_premium_monthly_usd"}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "not_one_off").await;
        let res = app
            .post(
                "/v1/admin/products/prod_premium/prices",
                &app.admin(),
                &json!({"amount_minor": 100, "currency": "usd"}),
            )
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_currency").await;
    }
);

// One request once grew the process past 20 GB: 1,000 users × 20,000 distinct features
// (≈200 KiB, under the body limit). Every list in the check is bounded before any work.
both!(
    a_check_is_bounded_in_features_and_cells,
    |b: Backend| async move {
        let app = spawn(b).await;
        let key = app.service_key().await;
        let ids: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
        let features: Vec<String> = (0..20_000).map(|i| format!("f{i}")).collect();
        let check = |body: serde_json::Value| {
            let key = key.clone();
            let app = &app;
            async move { app.post("/v1/entitlements/check", &key, &body).await }
        };
        let res = check(json!({"user_ids": ids, "features": features})).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "too_many_features").await;
        // 100 features is the most; 1,000 users × 100 features is over the cells bound.
        let hundred: Vec<String> = (0..100).map(|i| format!("f{i}")).collect();
        let res = check(json!({"user_ids": ids, "features": hundred})).await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "batch_too_large").await;
        let res = check(json!({"user_ids": ids[..200], "features": hundred})).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["results"].as_array().unwrap().len(), 200);
        // A feature key is a key, not a payload.
        let long = "x".repeat(65);
        for bad in [long.as_str(), "", "has space"] {
            let res = check(json!({"user_ids": ["u1"], "features": [bad]})).await;
            assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_feature").await;
        }
    }
);

// Headers over the limit once got a 431 with an empty body: now a problem like any other.
both!(oversize_headers_are_431_problems, |b: Backend| async move {
    let app = spawn(b).await;
    let big = "x".repeat(40 * 1024);
    let res = app
        .client
        .get(app.url("/v1/me/entitlements"))
        .header("x-padding", big)
        .send()
        .await
        .unwrap();
    assert_problem(
        res,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    )
    .await;
    let mut many = app.client.get(app.url("/healthz"));
    for i in 0..70 {
        many = many.header(format!("x-h{i}"), "v");
    }
    let res = many.send().await.unwrap();
    assert_problem(
        res,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    )
    .await;

    // Past the HTTP parser's own limits (96 headers, a 128 KiB head) and for a head it cannot
    // parse at all, the parser answers before any middleware: still a problem document.
    let many_headers: String = (0..100).map(|i| format!("x-h{i}: v\r\n")).collect();
    let huge_head = format!("x-padding: {}\r\n", "x".repeat(140 * 1024));
    for (head, status, code) in [
        (many_headers.as_str(), 431, "headers_too_large"),
        (huge_head.as_str(), 431, "headers_too_large"),
        ("not a header line\r\n", 400, "bad_request"),
    ] {
        let raw = format!("GET /healthz HTTP/1.1\r\nhost: localhost\r\n{head}\r\n");
        let answer = raw_exchange(&app.address, raw.as_bytes()).await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(
            head.contains("content-type: application/problem+json"),
            "{head}"
        );
        let problem: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(problem["code"], code);
        assert_eq!(problem["status"], status);
    }
    // The service is still there.
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
});

/// Writes `request` on a fresh connection and reads the answer until the server closes it.
async fn raw_exchange(address: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    // The server may answer and close before it has read everything: a failed write is fine.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}
