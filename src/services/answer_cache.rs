//! The in-process cache of entitlement answers, one per user.
//!
//! An entry is never served at or after its own `valid_until` (the answer's next change), and
//! every write that touches a user drops their entry. Each shard has a generation number bumped
//! by every invalidation: a reader that started before an invalidation cannot put back what it
//! read, so a stale answer never re-enters the cache.

use crate::domain::entitlements::{Answer, Instant};
use chrono::DateTime;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

const SHARDS: usize = 64;

/// One entitlement as clients see it: no source (support sees that in the user overview).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    pub expires_at: Option<Instant>,
}

/// 32 bytes an entitlement: an interned key and two integers with sentinels, because this
/// cache holds every active user of a messenger.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    key: Arc<str>,
    /// `NONE` when the entitlement is boolean.
    value: i64,
    /// Microseconds since the epoch; `NEVER` when it does not expire.
    expires_us: i64,
}

const NONE: i64 = i64::MIN;
const NEVER: i64 = i64::MAX;

fn to_us(t: Option<Instant>) -> i64 {
    t.map_or(NEVER, |t| t.timestamp_micros())
}

fn from_us(us: i64) -> Option<Instant> {
    (us != NEVER)
        .then(|| DateTime::from_timestamp_micros(us))
        .flatten()
}

/// A user's answer as held in the cache.
#[derive(Debug, PartialEq, Eq)]
pub struct CachedAnswer {
    entries: Box<[Entry]>,
    /// The answer's next change, in microseconds (`NEVER` for none).
    valid_until_us: i64,
    /// A hash of the rendered answer: the strong ETag, the same on every instance.
    pub etag: u64,
}

impl CachedAnswer {
    fn build(answer: &Answer, intern: impl Fn(&str) -> Arc<str>) -> CachedAnswer {
        let mut cached = CachedAnswer {
            entries: answer
                .entitlements
                .iter()
                .map(|e| Entry {
                    key: intern(&e.key),
                    value: e.value.unwrap_or(NONE),
                    expires_us: to_us(e.expires_at),
                })
                .collect(),
            valid_until_us: to_us(answer.next_change),
            etag: 0,
        };
        cached.etag = fnv1a(cached.render(None).as_bytes());
        cached
    }

    /// Without a shared interner (the cache is off).
    pub fn render_uncached(answer: &Answer) -> CachedAnswer {
        Self::build(answer, |k: &str| Arc::from(k))
    }

    pub fn held(&self) -> Vec<Held> {
        self.entries
            .iter()
            .map(|e| Held {
                key: e.key.to_string(),
                value: (e.value != NONE).then_some(e.value),
                expires_at: from_us(e.expires_us),
            })
            .collect()
    }

    /// Whether the answer holds `key` (a fresh answer holds only what is valid now).
    pub fn holds(&self, key: &str) -> bool {
        self.entries.iter().any(|e| &*e.key == key)
    }

    pub fn valid_until(&self) -> Option<Instant> {
        from_us(self.valid_until_us)
    }

    /// `{"user_id":…,"entitlements":[…],"next_change":…}`; without `user_id` when `None`.
    pub fn render(&self, user_id: Option<&str>) -> String {
        // Written by hand: this runs on every entitlement check. Keys are validated identifiers
        // ([a-z0-9_:.-]) and need no escaping; the user id goes through serde_json.
        use std::fmt::Write;
        let mut out = String::with_capacity(64 + 96 * self.entries.len());
        out.push('{');
        if let Some(user) = user_id {
            out.push_str("\"user_id\":");
            out.push_str(&serde_json::to_string(user).unwrap_or_else(|_| "\"\"".into()));
            out.push(',');
        }
        out.push_str("\"entitlements\":[");
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"key\":\"{}\",", e.key);
            if e.value != NONE {
                let _ = write!(out, "\"value\":{},", e.value);
            }
            out.push_str("\"expires_at\":");
            push_instant(&mut out, e.expires_us);
            out.push('}');
        }
        out.push_str("],\"next_change\":");
        push_instant(&mut out, self.valid_until_us);
        out.push('}');
        out
    }

    pub fn etag_header(&self) -> String {
        format!("\"{:016x}\"", self.etag)
    }

    pub fn fresh_at(&self, now: Instant) -> bool {
        now.timestamp_micros() < self.valid_until_us
    }
}

/// An instant as serde writes `DateTime<Utc>` (RFC 3339, UTC, shortest exact fraction), or null.
fn push_instant(out: &mut String, us: i64) {
    match from_us(us) {
        Some(t) => {
            out.push('"');
            out.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
            out.push('"');
        }
        None => out.push_str("null"),
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
    // Ids up to 24 bytes live inline in the key: no allocation per user.
    entries: RwLock<HashMap<CompactString, Arc<CachedAnswer>>>,
}

/// Proof of when a read started, to be shown when storing its result.
#[derive(Clone, Copy)]
pub struct Ticket(u64);

pub struct AnswerCache {
    shards: Vec<Shard>,
    hasher: RandomState,
    /// Answers that never change (most users hold only the free tier, or nothing, or a
    /// lifetime grant): each is kept once, shared by every user it is the answer of.
    constants: RwLock<HashMap<u64, Arc<CachedAnswer>>>,
    keys: RwLock<HashSet<Arc<str>>>,
}

/// Distinct never-changing answers shared at most; beyond, each user keeps their own copy.
const MAX_CONSTANTS: usize = 1024;

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
            constants: RwLock::default(),
            keys: RwLock::default(),
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

    /// Entitlement keys repeat across millions of users: keep one copy of each.
    fn intern(&self, key: &str) -> Arc<str> {
        if let Some(k) = self.keys.read().ok().and_then(|s| s.get(key).cloned()) {
            return k;
        }
        let k: Arc<str> = Arc::from(key);
        if let Ok(mut set) = self.keys.write() {
            if let Some(existing) = set.get(key) {
                return existing.clone();
            }
            set.insert(k.clone());
        }
        k
    }

    /// Stores `answer` unless the user was invalidated since `ticket`.
    pub fn put(&self, user: &str, answer: &Answer, ticket: Ticket) -> Arc<CachedAnswer> {
        let built = CachedAnswer::build(answer, |k| self.intern(k));
        let entry = if answer.next_change.is_none() {
            self.shared(built)
        } else {
            Arc::new(built)
        };
        let shard = self.shard(user);
        if let Ok(mut m) = shard.entries.write() {
            if shard.generation.load(Ordering::Acquire) == ticket.0 {
                m.insert(CompactString::from(user), entry.clone());
            }
        }
        entry
    }

    /// The one shared copy of a never-changing answer (by its ETag, checked equal).
    fn shared(&self, built: CachedAnswer) -> Arc<CachedAnswer> {
        if let Some(found) = self
            .constants
            .read()
            .ok()
            .and_then(|m| m.get(&built.etag).cloned())
        {
            if *found == built {
                return found;
            }
        }
        let built = Arc::new(built);
        if let Ok(mut m) = self.constants.write() {
            if m.len() < MAX_CONSTANTS {
                m.entry(built.etag).or_insert_with(|| built.clone());
            }
        }
        built
    }

    pub fn invalidate(&self, user: &str) {
        let shard = self.shard(user);
        if let Ok(mut m) = shard.entries.write() {
            shard.generation.fetch_add(1, Ordering::AcqRel);
            m.remove(user);
        }
    }

    pub fn invalidate_all(&self) {
        if let Ok(mut m) = self.constants.write() {
            m.clear();
        }
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
    fn rendering_by_hand_matches_serde() {
        #[derive(Serialize)]
        struct View<'a> {
            user_id: &'a str,
            entitlements: Vec<Held>,
            next_change: Option<Instant>,
        }
        let until = Utc::now() + Duration::seconds(10);
        let mut answer = premium_until(until);
        answer.entitlements.push(Effective {
            key: "max_upload_mb".into(),
            value: Some(4000),
            expires_at: None,
            source: Source {
                kind: SourceKind::Grant,
                id: "g2".into(),
            },
        });
        for a in [
            answer,
            Answer {
                entitlements: vec![],
                next_change: None,
            },
        ] {
            let cached = CachedAnswer::render_uncached(&a);
            let by_serde = serde_json::to_string(&View {
                user_id: "a\"b",
                entitlements: cached.held(),
                next_change: cached.valid_until(),
            })
            .unwrap();
            assert_eq!(cached.render(Some("a\"b")), by_serde);
        }
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

    #[test]
    fn users_with_the_same_lasting_answer_share_one_entry_and_changing_ones_do_not() {
        let cache = AnswerCache::default();
        let now = Utc::now();
        let mut free = premium_until(now);
        free.entitlements[0].expires_at = None;
        free.next_change = None;
        let a = cache.put("a", &free, cache.get("a", now).err().unwrap());
        let b = cache.put("b", &free, cache.get("b", now).err().unwrap());
        assert!(Arc::ptr_eq(&a, &b), "the free tier is held once");
        let until = now + Duration::seconds(60);
        let c = cache.put(
            "c",
            &premium_until(until),
            cache.get("c", now).err().unwrap(),
        );
        let d = cache.put(
            "d",
            &premium_until(until),
            cache.get("d", now).err().unwrap(),
        );
        assert!(
            !Arc::ptr_eq(&c, &d),
            "answers that change are each their own"
        );
        // A catalog change forgets the shared copies with everything else.
        cache.invalidate_all();
        let e = cache.put("e", &free, cache.get("e", now).err().unwrap());
        assert!(!Arc::ptr_eq(&a, &e));
    }
}
