//! Verification of user JWTs issued by the messenger's identity service.
//!
//! Asymmetric keys (EdDSA, ES256, RS256) come from a JWKS, each bound to its `kid` and
//! algorithm; HS256 is accepted only in development. Verified tokens are remembered until they
//! expire, so a client reusing its token pays for one signature check, not one per request.
//! They are remembered by a 128-bit SHA-256 digest (second preimages are out of reach), not by
//! the token itself, to keep hundreds of bytes per user out of memory.

use super::{valid_user_id, Role};
use crate::domain::regions::Region;
use crate::error::AppError;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

/// Algorithms accepted from a JWKS; anything else in a token header is refused.
const ASYMMETRIC: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

const SHARDS: usize = 32;
/// Upper bound of remembered tokens per shard; a full shard is emptied (cheap, rare).
const SHARD_CAPACITY: usize = 8192;

#[derive(Debug, Deserialize)]
struct RawClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    roles: Vec<String>,
    /// Where the user is (ISO 3166-1 alpha-2), as the identity service knows it (e.g. from
    /// the phone number's country). Anything else is ignored: a malformed claim is the
    /// provider's mistake and must not lock the user out.
    #[serde(default)]
    country: Option<serde_json::Value>,
}

/// What the service keeps of a verified token.
#[derive(Debug)]
pub struct UserClaims {
    pub sub: String,
    pub roles: Arc<[Role]>,
    pub exp: i64,
    pub country: Option<Region>,
    /// Whether `country` was written to the user's row by this process (once per token).
    pub country_recorded: AtomicBool,
}

pub struct UserTokens {
    keys: HashMap<String, (DecodingKey, Validation)>,
    hs256: Option<(DecodingKey, Validation)>,
    verified: Vec<RwLock<HashMap<u128, Arc<UserClaims>>>>,
    hasher: RandomState,
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // `nbf`, when present, is held to the same leeway as `exp`: a token valid only from
    // later is not valid now.
    v.validate_nbf = true;
    v.leeway = 30;
    v
}

impl UserTokens {
    pub fn new(
        issuer: &str,
        audience: &str,
        jwks: Option<&JwkSet>,
        hs256_secret: Option<&str>,
    ) -> anyhow::Result<UserTokens> {
        let mut keys = HashMap::new();
        for jwk in jwks.map(|s| s.keys.as_slice()).unwrap_or_default() {
            let kid = jwk
                .common
                .key_id
                .clone()
                .ok_or_else(|| anyhow::anyhow!("every identity key needs a kid"))?;
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok())
                .filter(|a| ASYMMETRIC.contains(a))
                .ok_or_else(|| {
                    anyhow::anyhow!("identity key {kid}: alg must be EdDSA, ES256 or RS256")
                })?;
            keys.insert(
                kid,
                (
                    DecodingKey::from_jwk(jwk)?,
                    validation(alg, issuer, audience),
                ),
            );
        }
        let hs256 = hs256_secret.map(|s| {
            (
                DecodingKey::from_secret(s.as_bytes()),
                validation(Algorithm::HS256, issuer, audience),
            )
        });
        Ok(UserTokens {
            keys,
            hs256,
            verified: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
        })
    }

    /// The algorithms a user token may be signed with (logged at start).
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = self
            .keys
            .values()
            .filter_map(|(_, v)| v.algorithms.first().copied())
            .collect();
        if self.hs256.is_some() {
            algs.push(Algorithm::HS256);
        }
        algs.sort_by_key(|a| format!("{a:?}"));
        algs.dedup();
        algs
    }

    fn digest(token: &str) -> u128 {
        let d = Sha256::digest(token.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&d[..16]);
        u128::from_le_bytes(first)
    }

    fn shard(&self, digest: u128) -> &RwLock<HashMap<u128, Arc<UserClaims>>> {
        let i = self.hasher.hash_one(digest) as usize % SHARDS;
        &self.verified[i]
    }

    pub fn verify(&self, token: &str) -> Result<Arc<UserClaims>, AppError> {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let digest = Self::digest(token);
        let shard = self.shard(digest);
        if let Some(claims) = shard.read().ok().and_then(|m| m.get(&digest).cloned()) {
            if claims.exp > now {
                return Ok(claims);
            }
        }
        let claims = Arc::new(self.verify_signature(token)?);
        if let Ok(mut m) = shard.write() {
            if m.len() >= SHARD_CAPACITY {
                m.clear();
            }
            m.insert(digest, claims.clone());
        }
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<UserClaims, AppError> {
        let bad = |why: String| AppError::unauthenticated(format!("invalid user token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
        let (key, validation) = if header.alg == Algorithm::HS256 {
            let (key, validation) = self
                .hs256
                .as_ref()
                .ok_or_else(|| bad("HS256 tokens are not accepted here".into()))?;
            (key, validation)
        } else {
            let kid = header
                .kid
                .as_deref()
                .ok_or_else(|| bad("missing kid".into()))?;
            let (key, validation) = self
                .keys
                .get(kid)
                .ok_or_else(|| bad(format!("unknown kid {kid}")))?;
            if !validation.algorithms.contains(&header.alg) {
                return Err(bad("algorithm does not match the key".into()));
            }
            (key, validation)
        };
        let data = jsonwebtoken::decode::<RawClaims>(token, key, validation)
            .map_err(|e| bad(e.to_string()))?;
        let claims = data.claims;
        if !valid_user_id(&claims.sub) {
            return Err(bad("sub must be 1-128 visible ASCII characters".into()));
        }
        let mut roles: Vec<Role> = vec![Role::User];
        roles.extend(claims.roles.iter().filter_map(|r| Role::parse(r)));
        roles.dedup();
        Ok(UserClaims {
            sub: claims.sub,
            roles: roles.into(),
            exp: claims.exp,
            country: claims
                .country
                .as_ref()
                .and_then(|c| c.as_str())
                .and_then(Region::parse),
            country_recorded: AtomicBool::new(false),
        })
    }
}

/// Signs a user token the way the identity service would; for `kopilka dev-token` and tests.
pub fn sign_hs256(
    secret: &str,
    issuer: &str,
    audience: &str,
    sub: &str,
    roles: &[String],
    ttl_seconds: i64,
) -> anyhow::Result<String> {
    sign_hs256_in(secret, issuer, audience, sub, roles, ttl_seconds, None)
}

/// `sign_hs256` with a `country` claim (ISO 3166-1 alpha-2) when given.
pub fn sign_hs256_in(
    secret: &str,
    issuer: &str,
    audience: &str,
    sub: &str,
    roles: &[String],
    ttl_seconds: i64,
    country: Option<&str>,
) -> anyhow::Result<String> {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let mut claims = serde_json::json!({
        "sub": sub, "roles": roles, "iss": issuer, "aud": audience,
        "iat": now, "exp": now + ttl_seconds,
    });
    if let Some(c) = country {
        claims["country"] = c.into();
    }
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}
