//! Service credentials: `kpk_` + 32 random bytes (base64url). Only their SHA-256 is stored; a
//! short-lived in-process cache keeps the batch-check hot path off the database.

use crate::db::models::credentials::ServiceCredential;
use crate::db::{self, DbPool};
use crate::error::AppError;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

const PREFIX: &str = "kpk_";

/// How long a positive check is trusted before the database is asked again; bounds how long a
/// revoked credential keeps working on other instances.
const TRUST_FOR: Duration = Duration::from_secs(5);

pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// A new random key (shown to the admin once) and the hash to store.
pub fn generate() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash(&key);
    (key, hash)
}

pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub enum ServiceKeyCheck {
    Live(String),
    Unknown,
}

#[derive(Default)]
pub struct ServiceKeys {
    trusted: RwLock<HashMap<String, (String, Instant)>>,
}

impl ServiceKeys {
    pub async fn check(&self, pool: &DbPool, key: &str) -> Result<ServiceKeyCheck, AppError> {
        let hash = hash(key);
        if let Ok(trusted) = self.trusted.read() {
            if let Some((id, at)) = trusted.get(&hash) {
                if at.elapsed() < TRUST_FOR {
                    return Ok(ServiceKeyCheck::Live(id.clone()));
                }
            }
        }
        let lookup = hash.clone();
        let found = db::run(pool, move |conn| {
            Ok(ServiceCredential::live_by_hash(conn, &lookup)?)
        })
        .await?;
        let Ok(mut trusted) = self.trusted.write() else {
            return Err(AppError::Internal(anyhow::anyhow!(
                "credential cache poisoned"
            )));
        };
        match found {
            Some(cred) => {
                trusted.insert(hash, (cred.id.clone(), Instant::now()));
                Ok(ServiceKeyCheck::Live(cred.id))
            }
            None => {
                trusted.remove(&hash);
                Ok(ServiceKeyCheck::Unknown)
            }
        }
    }

    /// Forgets every trusted key, so a revocation on this instance takes effect at once.
    pub fn forget_all(&self) {
        if let Ok(mut trusted) = self.trusted.write() {
            trusted.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_recognisable_unique_and_stored_only_as_hash() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert!(looks_like_key(&a));
        assert_ne!(a, b);
        assert_eq!(ha, hash(&a));
        assert!(!ha.contains(&a[PREFIX.len()..]));
    }
}
