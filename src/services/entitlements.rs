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

    /// What to read of the default plan with the holdings: its id when not known yet.
    fn default_to_read(&self) -> Option<(String, u64)> {
        let plan = self.default_plan.clone()?;
        if self.known_default().is_some() {
            return None;
        }
        Some((plan, self.generation.load(Ordering::Acquire)))
    }

    /// Keeps the default plan's holding read with `generation`, unless invalidated since.
    fn remember_default(&self, read: Option<(Holding, u64)>) -> Option<Arc<Holding>> {
        let Some((holding, generation)) = read else {
            return self.known_default();
        };
        let holding = Arc::new(holding);
        if let Ok(mut slot) = self.default_holding.write() {
            if self.generation.load(Ordering::Acquire) == generation {
                *slot = Some(holding.clone());
            }
        }
        Some(holding)
    }

    /// `held` with the default plan added (everyone holds it).
    fn with_default(held: Vec<Holding>, default: Option<&Arc<Holding>>) -> Vec<Holding> {
        let mut held = held;
        if let Some(d) = default {
            held.push(Holding::clone(d));
        }
        held
    }

    /// Reads everything `users` hold, and the default plan when it is not known yet, in one
    /// unit of work.
    async fn load(
        &self,
        users: Vec<String>,
        now: Instant,
        ensure_user: bool,
    ) -> Result<(HashMap<String, Vec<Holding>>, Option<Arc<Holding>>), AppError> {
        let default = self.default_to_read();
        let (held, read) = db::run(&self.pool, move |conn| {
            let loaded = holdings::load(conn, &users, now)?;
            if ensure_user {
                for id in &users {
                    if !loaded.known.contains(id) {
                        users::ensure(conn, id)?;
                    }
                }
            }
            let read = match default {
                Some((plan, generation)) => Some((default_holding(conn, &plan)?, generation)),
                None => None,
            };
            Ok((loaded.holdings, read))
        })
        .await?;
        Ok((held, self.remember_default(read)))
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
        let (mut held, default) = self.load(vec![user.to_owned()], now, true).await?;
        let mine = Self::with_default(held.remove(user).unwrap_or_default(), default.as_ref());
        let answer = effective(&mine, now);
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
            let (mut held, default) = self.load(wanted, now, false).await?;
            for (i, ticket) in missing {
                let id = &ids[i];
                let theirs =
                    Self::with_default(held.remove(id).unwrap_or_default(), default.as_ref());
                let answer = effective(&theirs, now);
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
        let (mut held, default) = self.load(vec![user.to_owned()], now, false).await?;
        let theirs = Self::with_default(held.remove(user).unwrap_or_default(), default.as_ref());
        Ok(effective(&theirs, now))
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
