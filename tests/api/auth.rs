//! Who may call what: user tokens (asymmetric in production, HS256 in development), roles,
//! service credentials.

use crate::both;
use crate::helpers::{assert_problem, spawn, spawn_with, Backend, TestDb};
use base64::Engine;
use reqwest::StatusCode;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;
use std::sync::Arc;

both!(
    requests_without_valid_token_are_401,
    |b: Backend| async move {
        let app = spawn(b).await;
        let res = app
            .client
            .get(app.url("/v1/me/entitlements"))
            .send()
            .await
            .unwrap();
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        let res = app.get("/v1/me/entitlements", "not-a-jwt").await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        // Signed with another secret.
        let forged = kopilka::auth::user_tokens::sign_hs256(
            "someone-elses-secret",
            &app.settings.auth.issuer,
            &app.settings.auth.audience,
            "mallory",
            &[],
            600,
        )
        .unwrap();
        let res = app.get("/v1/me/entitlements", &forged).await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        // Expired.
        let expired = kopilka::auth::user_tokens::sign_hs256(
            kopilka::config::DEV_HS256_SECRET,
            &app.settings.auth.issuer,
            &app.settings.auth.audience,
            "late",
            &[],
            -600,
        )
        .unwrap();
        let res = app.get("/v1/me/entitlements", &expired).await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        // For another audience.
        let other = kopilka::auth::user_tokens::sign_hs256(
            kopilka::config::DEV_HS256_SECRET,
            &app.settings.auth.issuer,
            "another-service",
            "alice",
            &[],
            600,
        )
        .unwrap();
        let res = app.get("/v1/me/entitlements", &other).await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
);

both!(roles_guard_staff_routes, |b: Backend| async move {
    let app = spawn(b).await;
    let user = app.token("plain", &[]);
    let grant = json!({"user_id": "plain", "entitlement_key": "premium", "reason": "please"});
    assert_problem(
        app.post("/v1/admin/grants", &user, &grant).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let finance = app.token("fin", &["finance"]);
    assert_problem(
        app.post("/v1/admin/grants", &finance, &grant).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // Support may grant, but not manage the catalog or credentials.
    assert_eq!(
        app.post("/v1/admin/grants", &app.support(), &grant)
            .await
            .status(),
        StatusCode::CREATED
    );
    let res = app
        .post(
            "/v1/admin/service-credentials",
            &app.support(),
            &json!({"name": "x"}),
        )
        .await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    // Admins hold every role.
    let res = app.post("/v1/admin/grants", &app.admin(), &grant).await;
    assert_eq!(res.status(), StatusCode::CREATED);
});

both!(
    service_credentials_check_users_but_are_not_users,
    |b: Backend| async move {
        let app = spawn(b).await;
        let key = app.service_key().await;
        let res = app
            .post("/v1/entitlements/check", &key, &json!({"user_ids": ["a"]}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_problem(
            app.get("/v1/me/entitlements", &key).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        // A user token cannot batch-check others.
        let res = app
            .post(
                "/v1/entitlements/check",
                &app.token("a", &[]),
                &json!({"user_ids": ["b"]}),
            )
            .await;
        assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        // Unknown keys are refused.
        let res = app
            .post(
                "/v1/entitlements/check",
                "kpk_made-up",
                &json!({"user_ids": ["a"]}),
            )
            .await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
);

both!(
    revoked_service_credential_stops_working,
    |b: Backend| async move {
        let app = spawn(b).await;
        let key = app.service_key().await;
        let list: serde_json::Value = app
            .get("/v1/admin/service-credentials", &app.admin())
            .await
            .json()
            .await
            .unwrap();
        let cred = &list["service_credentials"][0];
        assert!(
            cred.get("key_hash").is_none() && cred.get("api_key").is_none(),
            "keys are never listed"
        );
        let id = cred["id"].as_str().unwrap();
        assert_eq!(
            app.delete(&format!("/v1/admin/service-credentials/{id}"), &app.admin())
                .await
                .status(),
            StatusCode::OK
        );
        let res = app
            .post("/v1/entitlements/check", &key, &json!({"user_ids": ["a"]}))
            .await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
);

// Production: user tokens are EdDSA-signed by the identity service, verified with its JWKS;
// HS256 is refused.
both!(
    production_verifies_asymmetric_tokens_by_kid,
    |b: Backend| async move {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "id-1", "x": x}]});
        let db = Arc::new(TestDb::new(b));
        let app = spawn_with(db, |s| {
            s.environment = kopilka::config::Environment::Production;
            s.auth.jwks_json = Some(jwks.to_string());
        })
        .await;
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"sub": "prod-user", "iss": app.settings.auth.issuer, "aud": app.settings.auth.audience,
                        "exp": now + 600, "roles": ["user"]});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("id-1".into());
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref()),
        )
        .unwrap();
        let res = app.get("/v1/me/entitlements", &token).await;
        assert_eq!(res.status(), StatusCode::OK);

        header.kid = Some("id-unknown".into());
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref()),
        )
        .unwrap();
        assert_problem(
            app.get("/v1/me/entitlements", &token).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        // The development secret means nothing in production.
        let hs = app.token("prod-user", &[]);
        assert_problem(
            app.get("/v1/me/entitlements", &hs).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
);

/// An Ed25519 identity key as the identity service publishes it, and its signing half.
fn identity_key() -> (serde_json::Value, Vec<u8>) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let jwks =
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "id-1", "x": x}]});
    (jwks, pkcs8.as_ref().to_vec())
}

// Asymmetric keys configured but `environment` left at its default: the public development
// secret still signs nothing that is accepted (it once minted an admin's service key).
both!(
    with_identity_keys_hs256_is_refused_whatever_the_environment,
    |b: Backend| async move {
        let (jwks, _) = identity_key();
        let db = Arc::new(TestDb::new(b));
        let app = spawn_with(db, |s| {
            assert_eq!(s.environment, kopilka::config::Environment::Development);
            s.auth.jwks_json = Some(jwks.to_string());
        })
        .await;
        let admin = app.token("mallory", &["admin"]);
        assert_problem(
            app.post(
                "/v1/admin/service-credentials",
                &admin,
                &json!({"name": "x"}),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        assert_problem(
            app.get("/v1/me/entitlements", &app.token("u", &[])).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
);

#[test]
fn a_configuration_mixing_hs256_and_identity_keys_does_not_start() {
    let db = TestDb::new(Backend::Sqlite);
    let mut settings = crate::helpers::test_settings(&db.url);
    settings.auth.jwks_json = Some(identity_key().0.to_string());
    settings.auth.hs256_secret = Some(secrecy::SecretString::from("a-secret"));
    let err = kopilka::app::build_state(settings)
        .err()
        .expect("refused to start");
    assert!(err.to_string().contains("HS256"), "{err}");
}

// `nbf`: a token valid only from later is refused until then (30 s leeway, as for `exp`).
both!(a_token_not_valid_yet_is_refused, |b: Backend| async move {
    let app = spawn(b).await;
    let now = chrono::Utc::now().timestamp();
    let token = |nbf: i64| {
        let claims = json!({"sub": "later", "iss": app.settings.auth.issuer,
                "aud": app.settings.auth.audience, "exp": now + 7200, "nbf": nbf});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(kopilka::config::DEV_HS256_SECRET.as_bytes()),
        )
        .unwrap()
    };
    assert_problem(
        app.get("/v1/me/entitlements", &token(now + 3600)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    for fine in [now - 60, now + 10] {
        let res = app.get("/v1/me/entitlements", &token(fine)).await;
        assert_eq!(res.status(), StatusCode::OK, "nbf {fine} (now {now})");
    }
});

/// The value of a counter in `/metrics`.
async fn counter(app: &crate::helpers::TestApp, name: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0, |v| v.trim().parse().unwrap())
}

// A flood of invented `kpk_` keys once cost a database transaction each: now the live
// credentials are read at most once per few seconds, whatever arrives.
both!(
    a_flood_of_unknown_service_keys_does_not_reach_the_database,
    |b: Backend| async move {
        let app = spawn(b).await;
        let live = app.service_key().await;
        let before = counter(&app, "kopilka_service_key_reloads_total").await;
        for i in 0..300 {
            let bogus = format!("kpk_{:043}", i);
            let res = app
                .post(
                    "/v1/entitlements/check",
                    &bogus,
                    &json!({"user_ids": ["a"]}),
                )
                .await;
            assert_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        }
        let res = app
            .post("/v1/entitlements/check", &live, &json!({"user_ids": ["a"]}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let reloads = counter(&app, "kopilka_service_key_reloads_total").await - before;
        assert!(reloads <= 2, "{reloads} reads for 301 checks");
    }
);
