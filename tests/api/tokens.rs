//! Entitlement tokens verify offline with the published JWKS alone, expire early enough, and
//! survive key rotation.

use crate::both;
use crate::helpers::{spawn, Backend};
use chrono::{Duration, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

async fn jwks(app: &crate::helpers::TestApp) -> JwkSet {
    serde_json::from_value(app.public("/.well-known/jwks.json").await).unwrap()
}

fn verify(token: &str, set: &JwkSet) -> Value {
    let kid = decode_header(token).unwrap().kid.expect("kid in header");
    let jwk = set.find(&kid).expect("kid published");
    let mut v = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_issuer(&["kopilka"]);
    v.validate_aud = false;
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .expect("verifies")
        .claims
}

both!(
    token_lists_entitlements_and_verifies_with_jwks,
    |b: Backend| async move {
        let app = spawn(b).await;
        app.grant("holder", "premium", None).await;
        let res = app
            .client
            .post(app.url("/v1/me/entitlement-token"))
            .bearer_auth(app.token("holder", &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        let claims = verify(body["token"].as_str().unwrap(), &jwks(&app).await);
        assert_eq!(claims["sub"], "holder");
        assert_eq!(claims["entitlements"][0]["key"], "premium");
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!(lifetime > 0 && lifetime <= 900, "lifetime {lifetime}s");
    }
);

both!(
    token_never_outlives_the_next_change,
    |b: Backend| async move {
        let app = spawn(b).await;
        let ends = Utc::now() + Duration::seconds(120);
        app.grant("short", "premium", Some(ends)).await;
        let body: Value = app.entitlement_token("short").await;
        let claims = verify(body["token"].as_str().unwrap(), &jwks(&app).await);
        assert!(claims["exp"].as_i64().unwrap() <= ends.timestamp());
    }
);

both!(
    rotation_keeps_old_tokens_verifiable,
    |b: Backend| async move {
        let app = spawn(b).await;
        let old: Value = app.entitlement_token("r").await;
        let res = app
            .client
            .post(app.url("/v1/admin/signing-keys/rotate"))
            .bearer_auth(app.admin())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let new: Value = app.entitlement_token("r").await;
        assert_ne!(old["kid"], new["kid"]);
        let set = jwks(&app).await;
        assert_eq!(set.keys.len(), 2);
        verify(old["token"].as_str().unwrap(), &set);
        verify(new["token"].as_str().unwrap(), &set);
    }
);
