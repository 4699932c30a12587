//! Answers "what may these users use right now?": from the cache when it holds a fresh answer,
//! otherwise from one database round trip for all the users missing from it. Every answer
//! includes the default plan (the free tier), which everyone holds.

use super::answer_cache::{AnswerCache, CachedAnswer};
use crate::db::models::catalog::Product;
use crate::db::{self, holdings, models::users, DbConn, DbPool};
use crate::domain::entitlements::{
    effective, Answer, Conferred, Holding, Instant, Source, SourceKind, Terms,
};
use crate::error::AppError;
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub struct Entitlements {
    pool: DbPool,
    cache: Option<AnswerCache>,
    metrics: Arc<Metrics>,
    default_plan: Option<String>,
    /// The default plan as a holding, read once and kept until a catalog change.
    default_holding: RwLock<Option<Arc<Holding>>>,
    /// Bumped by every invalidation: a holding read before it is not kept after it.
    generation: AtomicU64,
}

impl Entitlements {
    pub fn new(
        pool: DbPool,
        cache_enabled: bool,
        metrics: Arc<Metrics>,
        default_plan: Option<String>,
    ) -> Self {
        Entitlements {
            pool,
            cache: cache_enabled.then(AnswerCache::default),
            metrics,
            default_plan,
            default_holding: RwLock::default(),
            generation: AtomicU64::new(0),
        }
    }

    fn known_default(&self) -> Option<Arc<Holding>> {
        self.default_holding.read().ok()?.clone()
    }

    /// The default plan as known now, or what to read of it (its id, and the generation it
    /// is read under) when it is not known.
    fn default_now(&self) -> Result<Option<Arc<Holding>>, (String, u64)> {
        let Some(plan) = self.default_plan.clone() else {
            return Ok(None);
        };
        // The generation first: an invalidation after this makes the read below stale.
        let generation = self.generation.load(Ordering::Acquire);
        match self.known_default() {
            Some(known) => Ok(Some(known)),
            None => Err((plan, generation)),
        }
    }

    /// Keeps the default plan's holding read under `generation`, unless invalidated since.
    fn remember_default(&self, holding: &Arc<Holding>, generation: u64) {
        if let Ok(mut slot) = self.default_holding.write() {
            if self.generation.load(Ordering::Acquire) == generation {
                *slot = Some(holding.clone());
            }
        }
    }

    /// Each of `users`' answer at `now`: their holdings and the default plan read in one unit
    /// of work, and computed there too (on the blocking pool, never on a web worker).
    async fn answers(
        &self,
        users: Vec<String>,
        now: Instant,
        ensure_user: bool,
    ) -> Result<HashMap<String, Answer>, AppError> {
        // Taken before the load: an answer always has the default plan, as it was either
        // before or after a catalog change, never none.
        let default = self.default_now();
        let (answers, read) = db::run(&self.pool, move |conn| {
            let loaded = holdings::load(conn, &users, now)?;
            if ensure_user {
                for id in &users {
                    if !loaded.known.contains(id) {
                        users::ensure(conn, id)?;
                    }
                }
            }
            let (default, read) = match default {
                Ok(known) => (known, None),
                Err((plan, generation)) => {
                    let holding = Arc::new(default_holding(conn, &plan)?);
                    (Some(holding.clone()), Some((holding, generation)))
                }
            };
            let mut held = loaded.holdings;
            let answers = users
                .into_iter()
                .map(|id| {
                    let mut theirs = held.remove(&id).unwrap_or_default();
                    theirs.extend(default.as_deref().cloned());
                    let answer = effective(&theirs, now);
                    (id, answer)
                })
                .collect();
            Ok((answers, read))
        })
        .await?;
        if let Some((holding, generation)) = read {
            self.remember_default(&holding, generation);
        }
        Ok(answers)
    }

    /// The caller's own answer; records the user on first sight.
    pub async fn of_user(&self, user: &str, now: Instant) -> Result<Arc<CachedAnswer>, AppError> {
        let ticket = match self.cache.as_ref().map(|c| c.get(user, now)) {
            Some(Ok(hit)) => {
                self.metrics.cache_hits.inc();
                return Ok(hit);
            }
            Some(Err(ticket)) => Some(ticket),
            None => None,
        };
        self.metrics.cache_misses.inc();
        let mut answers = self.answers(vec![user.to_owned()], now, true).await?;
        let answer = answers.remove(user).unwrap_or_default();
        Ok(match (&self.cache, ticket) {
            (Some(cache), Some(ticket)) => cache.put(user, &answer, ticket),
            _ => Arc::new(CachedAnswer::render_uncached(&answer)),
        })
    }

    /// Answers for many users, in the order asked. Unknown users hold nothing.
    pub async fn of_users(
        &self,
        ids: &[String],
        now: Instant,
    ) -> Result<Vec<Arc<CachedAnswer>>, AppError> {
        let mut out: Vec<Option<Arc<CachedAnswer>>> = vec![None; ids.len()];
        let mut missing = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match self.cache.as_ref().map(|c| c.get(id, now)) {
                Some(Ok(hit)) => out[i] = Some(hit),
                Some(Err(ticket)) => missing.push((i, Some(ticket))),
                None => missing.push((i, None)),
            }
        }
        self.metrics
            .cache_hits
            .inc_by((ids.len() - missing.len()) as u64);
        self.metrics.cache_misses.inc_by(missing.len() as u64);
        if !missing.is_empty() {
            let wanted: Vec<String> = missing.iter().map(|(i, _)| ids[*i].clone()).collect();
            let mut answers = self.answers(wanted, now, false).await?;
            for (i, ticket) in missing {
                let id = &ids[i];
                let answer = answers.remove(id).unwrap_or_default();
                out[i] = Some(match (&self.cache, ticket) {
                    (Some(cache), Some(ticket)) => cache.put(id, &answer, ticket),
                    _ => Arc::new(CachedAnswer::render_uncached(&answer)),
                });
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// The full answer with the source of each entitlement, straight from the database (for
    /// support; never cached).
    pub async fn explain(&self, user: &str, now: Instant) -> Result<Answer, AppError> {
        let mut answers = self.answers(vec![user.to_owned()], now, false).await?;
        Ok(answers.remove(user).unwrap_or_default())
    }

    /// Call after committing a change to these users' holdings.
    pub fn invalidate<S: AsRef<str>>(&self, users: &[S]) {
        if let Some(cache) = &self.cache {
            for u in users {
                cache.invalidate(u.as_ref());
            }
        }
    }

    /// Call after a change that may touch anyone (a plan's entitlements changed, the default
    /// plan's included).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut slot) = self.default_holding.write() {
            *slot = None;
        }
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    pub fn cached_users(&self) -> usize {
        self.cache.as_ref().map_or(0, AnswerCache::len)
    }
}

/// The default plan as everyone's holding: its entitlements, held always. A plan that does not
/// exist (or was retired) confers nothing.
fn default_holding(conn: &mut DbConn, plan: &str) -> Result<Holding, AppError> {
    let active = Product::find(conn, plan)?.is_some_and(|p| p.active);
    let confers = if active {
        Product::entitlements_of(conn, &[plan.to_owned()])?
            .into_iter()
            .map(|pe| Conferred {
                key: pe.entitlement_key,
                value: pe.value,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Holding {
        source: Source {
            kind: SourceKind::DefaultPlan,
            id: plan.to_owned(),
        },
        terms: Terms::Always,
        confers,
    })
}
