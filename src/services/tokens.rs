//! Entitlement tokens: short-lived JWTs signed with Kopilka's Ed25519 key, verifiable offline
//! by messenger servers with the keys published at `/.well-known/jwks.json`.
//!
//! Keys live in the database so every instance signs with the same one. A rotated-in key is
//! published at once but signs only `key_publish_ahead_seconds` later (the previous key signs
//! meanwhile), so every verifier holding a cached JWKS, and every instance, knows a key before
//! any token signed with it exists. A retired key stays published until every token it
//! signed has expired.

use crate::db::models::signing_keys::{self, SigningKeyRow};
use crate::db::models::to_db;
use crate::db::DbConn;
use crate::domain::entitlements::Instant;
use crate::services::answer_cache::Held;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{Duration, Utc};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use std::sync::{Arc, RwLock};

pub const ISSUER: &str = "kopilka";
/// The longest any entitlement token lives; also how long a retired key stays published
/// (plus a minute for clocks and instances that have not yet reloaded).
pub const MAX_TTL_SECONDS: i64 = 900;

struct ActiveKey {
    kid: String,
    pair: Ed25519KeyPair,
    header_b64: String,
}

#[derive(Default)]
struct Keys {
    active: Option<Arc<ActiveKey>>,
    /// When the active key starts signing (its creation plus the publish-ahead time).
    active_from: Option<Instant>,
    /// The key retired last: it signs until `active_from`.
    previous: Option<Arc<ActiveKey>>,
    jwks: serde_json::Value,
}

impl Keys {
    fn signing_at(&self, now: Instant) -> Option<Arc<ActiveKey>> {
        match (&self.previous, self.active_from) {
            (Some(previous), Some(from)) if now < from => Some(previous.clone()),
            _ => self.active.clone(),
        }
    }
}

pub struct TokenSigner {
    keys: RwLock<Keys>,
    ttl_seconds: i64,
    publish_ahead: Duration,
}

fn signing_key(row: &SigningKeyRow) -> anyhow::Result<Arc<ActiveKey>> {
    let der = STANDARD.decode(&row.private_key)?;
    let pair = Ed25519KeyPair::from_pkcs8(&der)
        .map_err(|_| anyhow::anyhow!("signing key {} is not Ed25519 PKCS#8", row.kid))?;
    let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": row.kid});
    Ok(Arc::new(ActiveKey {
        kid: row.kid.clone(),
        pair,
        header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
    }))
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    entitlements: &'a [Held],
}

fn new_key() -> anyhow::Result<SigningKeyRow> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow::anyhow!("cannot generate an Ed25519 key"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("generated key does not parse"))?;
    let public = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    Ok(SigningKeyRow {
        // Time for humans, random for uniqueness: two rotations in one millisecond (or on two
        // instances) never collide.
        kid: format!(
            "k{}-{}",
            Utc::now().format("%Y%m%d%H%M%S"),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ),
        private_key: STANDARD.encode(pkcs8.as_ref()),
        public_key: public,
        created_at: to_db(Utc::now()),
        retired_at: None,
    })
}

impl TokenSigner {
    pub fn new(ttl_seconds: u32, publish_ahead_seconds: u32) -> TokenSigner {
        TokenSigner {
            keys: RwLock::default(),
            ttl_seconds: i64::from(ttl_seconds).min(MAX_TTL_SECONDS),
            publish_ahead: Duration::seconds(i64::from(publish_ahead_seconds)),
        }
    }

    /// Makes sure a key is active, then loads the keys to sign with and publish.
    pub fn init(&self, conn: &mut DbConn) -> anyhow::Result<()> {
        if signing_keys::active_count(conn)? == 0 {
            signing_keys::rotate(conn, &new_key()?, true)?;
        }
        self.reload(conn)
    }

    /// Retires the active key and starts signing with a new one; returns the new kid.
    /// A database that is busy or gone is the database's error (503), not ours.
    pub fn rotate(&self, conn: &mut DbConn) -> Result<String, crate::error::AppError> {
        let key = new_key()?;
        signing_keys::rotate(conn, &key, false)?;
        self.reload(conn)?;
        Ok(key.kid)
    }

    /// Re-reads the keys (other instances may have rotated).
    pub fn reload(&self, conn: &mut DbConn) -> anyhow::Result<()> {
        // A retired key may still sign for the publish-ahead time, then its tokens live.
        let since =
            to_db(Utc::now() - self.publish_ahead - Duration::seconds(MAX_TTL_SECONDS + 60));
        let rows = signing_keys::published(conn, since)?;
        let current = rows.iter().find(|r| r.retired_at.is_none());
        let active = current.map(signing_key).transpose()?;
        // The first key ever signs at once: there is no previous one to sign meanwhile.
        let previous = rows
            .iter()
            .filter(|r| r.retired_at.is_some())
            .max_by_key(|r| r.retired_at)
            .map(signing_key)
            .transpose()?;
        let active_from = current.map(|r| r.created_at.and_utc() + self.publish_ahead);
        let jwks = serde_json::json!({
            "keys": rows.iter().map(|r| serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": r.kid, "x": r.public_key,
            })).collect::<Vec<_>>()
        });
        if let Ok(mut keys) = self.keys.write() {
            *keys = Keys {
                active,
                active_from,
                previous,
                jwks,
            };
        }
        Ok(())
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.keys.read().map(|k| k.jwks.clone()).unwrap_or_default()
    }

    /// The key that signs now.
    pub fn active_kid(&self) -> Option<String> {
        self.keys
            .read()
            .ok()
            .and_then(|k| k.signing_at(Utc::now()))
            .map(|a| a.kid.clone())
    }

    /// Signs the user's answer. The token expires after the configured lifetime or at the
    /// answer's next change, whichever is first. Returns the token and its expiry.
    pub fn sign(
        &self,
        user: &str,
        entitlements: &[Held],
        next_change: Option<Instant>,
        now: Instant,
    ) -> anyhow::Result<(String, Instant)> {
        let key = self
            .keys
            .read()
            .ok()
            .and_then(|k| k.signing_at(now))
            .ok_or_else(|| anyhow::anyhow!("no active signing key"))?;
        let mut exp = now + Duration::seconds(self.ttl_seconds);
        if let Some(change) = next_change {
            exp = exp.min(change);
        }
        let claims = Claims {
            iss: ISSUER,
            sub: user,
            iat: now.timestamp(),
            // JWT expiry has whole seconds: round down so it is never past the change.
            exp: exp.timestamp(),
            entitlements,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?);
        let signing_input = format!("{}.{}", key.header_b64, payload);
        let signature = key.pair.sign(signing_input.as_bytes());
        let token = format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        );
        let exp = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or(exp);
        Ok((token, exp))
    }
}
