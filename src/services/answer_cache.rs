//! The in-process cache of entitlement answers, one per user.
//!
//! An entry is never served at or after its own `valid_until` (the answer's next change), and
//! every write that touches a user drops their entry. Each shard has a generation number bumped
//! by every invalidation: a reader that started before an invalidation cannot put back what it
//! read, so a stale answer never re-enters the cache.

use crate::domain::entitlements::{Answer, Instant};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

const SHARDS: usize = 64;

/// An answer as served: its JSON, its strong ETag and how long it holds.
#[derive(Debug, PartialEq, Eq)]
pub struct CachedAnswer {
    /// `{"entitlements":[…],"next_change":…}`, rendered once.
    pub body: Box<str>,
    /// A hash of `body`, the strong ETag.
    pub etag: u64,
    pub valid_until: Option<Instant>,
}

impl CachedAnswer {
    pub fn render(answer: &Answer) -> CachedAnswer {
        let body = serde_json::to_string(answer).unwrap_or_else(|_| "{}".into());
        let etag = fnv1a(body.as_bytes());
        CachedAnswer {
            body: body.into_boxed_str(),
            etag,
            valid_until: answer.next_change,
        }
    }

    pub fn answer(&self) -> Answer {
        serde_json::from_str(&self.body).unwrap_or(Answer {
            entitlements: Vec::new(),
            next_change: self.valid_until,
        })
    }

    pub fn etag_header(&self) -> String {
        format!("\"{:016x}\"", self.etag)
    }

    pub fn fresh_at(&self, now: Instant) -> bool {
        self.valid_until.is_none_or(|until| now < until)
    }
}

/// 64-bit FNV-1a: stable across processes, so every instance gives the same ETag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Shard {
    generation: AtomicU64,
    entries: RwLock<HashMap<Box<str>, Arc<CachedAnswer>>>,
}

/// Proof of when a read started, to be shown when storing its result.
#[derive(Clone, Copy)]
pub struct Ticket(u64);

pub struct AnswerCache {
    shards: Vec<Shard>,
    hasher: RandomState,
    /// Most users hold nothing: they all share this one entry.
    empty: Arc<CachedAnswer>,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    generation: AtomicU64::new(0),
                    entries: RwLock::default(),
                })
                .collect(),
            hasher: RandomState::new(),
            empty: Arc::new(CachedAnswer::render(&Answer {
                entitlements: Vec::new(),
                next_change: None,
            })),
        }
    }
}

impl AnswerCache {
    fn shard(&self, user: &str) -> &Shard {
        &self.shards[self.hasher.hash_one(user) as usize % SHARDS]
    }

    /// A fresh cached answer, or a ticket to present with the answer computed instead.
    pub fn get(&self, user: &str, now: Instant) -> Result<Arc<CachedAnswer>, Ticket> {
        let shard = self.shard(user);
        let ticket = Ticket(shard.generation.load(Ordering::Acquire));
        match shard.entries.read().ok().and_then(|m| m.get(user).cloned()) {
            Some(entry) if entry.fresh_at(now) => Ok(entry),
            _ => Err(ticket),
        }
    }

    /// Renders `answer` and stores it unless the user was invalidated since `ticket`.
    pub fn put(&self, user: &str, answer: &Answer, ticket: Ticket) -> Arc<CachedAnswer> {
        let entry = if *answer == self.empty_answer() {
            self.empty.clone()
        } else {
            Arc::new(CachedAnswer::render(answer))
        };
        let shard = self.shard(user);
        if let Ok(mut m) = shard.entries.write() {
            if shard.generation.load(Ordering::Acquire) == ticket.0 {
                m.insert(user.into(), entry.clone());
            }
        }
        entry
    }

    fn empty_answer(&self) -> Answer {
        Answer {
            entitlements: Vec::new(),
            next_change: None,
        }
    }

    pub fn invalidate(&self, user: &str) {
        let shard = self.shard(user);
        if let Ok(mut m) = shard.entries.write() {
            shard.generation.fetch_add(1, Ordering::AcqRel);
            m.remove(user);
        }
    }

    pub fn invalidate_all(&self) {
        for shard in &self.shards {
            if let Ok(mut m) = shard.entries.write() {
                shard.generation.fetch_add(1, Ordering::AcqRel);
                m.clear();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.entries.read().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::entitlements::{Effective, Source, SourceKind};
    use chrono::{Duration, Utc};

    fn premium_until(until: Instant) -> Answer {
        Answer {
            entitlements: vec![Effective {
                key: "premium".into(),
                value: None,
                expires_at: Some(until),
                source: Source {
                    kind: SourceKind::Grant,
                    id: "g1".into(),
                },
            }],
            next_change: Some(until),
        }
    }

    #[test]
    fn an_answer_is_not_served_at_or_after_its_next_change() {
        let cache = AnswerCache::default();
        let now = Utc::now();
        let until = now + Duration::seconds(10);
        let Err(ticket) = cache.get("alice", now) else {
            panic!("empty cache hit")
        };
        cache.put("alice", &premium_until(until), ticket);
        assert!(cache.get("alice", now).is_ok());
        assert!(cache.get("alice", until).is_err());
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_stored() {
        let cache = AnswerCache::default();
        let now = Utc::now();
        let Err(ticket) = cache.get("bob", now) else {
            panic!("empty cache hit")
        };
        cache.invalidate("bob");
        cache.put("bob", &premium_until(now + Duration::hours(1)), ticket);
        assert!(cache.get("bob", now).is_err());
    }

    #[test]
    fn users_holding_nothing_share_one_entry() {
        let cache = AnswerCache::default();
        let now = Utc::now();
        let empty = Answer {
            entitlements: vec![],
            next_change: None,
        };
        let a = cache.put("a", &empty, cache.get("a", now).err().unwrap());
        let b = cache.put("b", &empty, cache.get("b", now).err().unwrap());
        assert!(Arc::ptr_eq(&a, &b));
    }
}
