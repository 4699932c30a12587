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
    a_rotated_in_key_is_published_before_it_signs,
    |b: Backend| async move {
        let app = spawn(b).await;
        let old: Value = app.entitlement_token("p").await;
        let res = app
            .client
            .post(app.url("/v1/admin/signing-keys/rotate"))
            .bearer_auth(app.admin())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let rotated: Value = res.json().await.unwrap();
        // Published at once, so verifiers and other instances know it before it signs...
        let set = jwks(&app).await;
        assert!(set.find(rotated["kid"].as_str().unwrap()).is_some());
        // ...while the previous key signs on for the publish-ahead time (360 s).
        let next: Value = app.entitlement_token("p").await;
        assert_eq!(next["kid"], old["kid"]);
        verify(next["token"].as_str().unwrap(), &set);
    }
);

both!(
    rotation_keeps_old_tokens_verifiable,
    |b: Backend| async move {
        // Signing with the new key at once (no publish-ahead) to see the switch.
        let app =
            crate::helpers::spawn_with(std::sync::Arc::new(crate::helpers::TestDb::new(b)), |s| {
                s.tokens.key_publish_ahead_seconds = 0
            })
            .await;
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

both!(
    concurrent_rotations_each_succeed_and_leave_exactly_one_active_key,
    |b: Backend| async move {
        let app = spawn(b).await;
        let mut rotations = Vec::new();
        for _ in 0..8 {
            let (client, url, admin) = (
                app.client.clone(),
                app.url("/v1/admin/signing-keys/rotate"),
                app.admin(),
            );
            rotations.push(actix_web::rt::spawn(async move {
                let res = client.post(url).bearer_auth(admin).send().await.unwrap();
                let status = res.status();
                (status, res.json::<Value>().await.unwrap_or_default())
            }));
        }
        let mut kids = Vec::new();
        for r in rotations {
            let (status, body) = r.await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
            kids.push(body["kid"].as_str().unwrap().to_owned());
        }
        kids.sort();
        kids.dedup();
        assert_eq!(kids.len(), 8, "every rotation made its own key: {kids:?}");
        let active = {
            let pool = kopilka::db::connect(&app.db.url, 1).unwrap();
            let mut conn = pool.get().unwrap();
            kopilka::db::models::signing_keys::active_count(&mut conn).unwrap()
        };
        assert_eq!(active, 1);
        // Tokens are still issued, signed by a published key.
        let token: Value = app.entitlement_token("after").await;
        verify(token["token"].as_str().unwrap(), &jwks(&app).await);
    }
);
