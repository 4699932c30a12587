//! Service credentials: `kpk_` + 32 random bytes (base64url). Only their SHA-256 is stored.
//! Each instance keeps a snapshot of every live credential's hash, re-read at most every few
//! seconds by one request at a time: a check, known key or not, costs no database work, so a
//! flood of invented `kpk_` keys costs hashing and nothing else.

use crate::db::models::credentials::ServiceCredential;
use crate::db::{self, DbPool};
use crate::error::AppError;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const PREFIX: &str = "kpk_";

/// How long a snapshot of the live credentials is trusted: bounds how long a credential
/// revoked (or created) on another instance keeps working (or waits) on this one.
const TRUST_FOR: Duration = Duration::from_secs(5);

/// `kpk_` and 43 base64url characters (32 bytes): anything else is refused unhashed.
fn well_formed(key: &str) -> bool {
    key.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

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

/// Live credentials by key hash, and when they were read.
struct Snapshot {
    live: HashMap<String, String>,
    read_at: Instant,
}

#[derive(Default)]
pub struct ServiceKeys {
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// One reload at a time; the others wait for it rather than query too.
    reloading: tokio::sync::Mutex<()>,
    /// Bumped by `forget_all`: a reload that started before it does not store what it read.
    generation: std::sync::atomic::AtomicU64,
}

impl ServiceKeys {
    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let snapshot = self.snapshot.read().ok()?.clone()?;
        (snapshot.read_at.elapsed() < TRUST_FOR).then_some(snapshot)
    }

    pub async fn check(
        &self,
        pool: &DbPool,
        reloads: &prometheus::IntCounter,
        key: &str,
    ) -> Result<ServiceKeyCheck, AppError> {
        if !well_formed(key) {
            return Ok(ServiceKeyCheck::Unknown);
        }
        let snapshot = match self.fresh() {
            Some(s) => s,
            None => {
                let _one = self.reloading.lock().await;
                match self.fresh() {
                    Some(s) => s,
                    None => {
                        reloads.inc();
                        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
                        let live =
                            db::run(pool, |conn| Ok(ServiceCredential::live_hashes(conn)?)).await?;
                        let s = Arc::new(Snapshot {
                            live: live.into_iter().collect(),
                            read_at: Instant::now(),
                        });
                        if let Ok(mut slot) = self.snapshot.write() {
                            let now = self.generation.load(std::sync::atomic::Ordering::Acquire);
                            if now == generation {
                                *slot = Some(s.clone());
                            }
                        }
                        s
                    }
                }
            }
        };
        Ok(match snapshot.live.get(&hash(key)) {
            Some(id) => ServiceKeyCheck::Live(id.clone()),
            None => ServiceKeyCheck::Unknown,
        })
    }

    /// Drops the snapshot, so a credential created or revoked on this instance counts at once.
    pub fn forget_all(&self) {
        if let Ok(mut slot) = self.snapshot.write() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            *slot = None;
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
        assert!(well_formed(&a) && well_formed(&b));
        assert!(!well_formed("kpk_short") && !well_formed(&format!("{a}x")));
        assert_ne!(a, b);
        assert_eq!(ha, hash(&a));
        assert!(!ha.contains(&a[PREFIX.len()..]));
    }
}
