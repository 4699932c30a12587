//! Answers "what may these users use right now?": from the cache when it holds a fresh answer,
//! otherwise from one database round trip for all the users missing from it.

use super::answer_cache::{AnswerCache, CachedAnswer};
use crate::db::{self, holdings, models::users, DbPool};
use crate::domain::entitlements::{effective, Answer, Instant};
use crate::error::AppError;
use crate::metrics::Metrics;
use std::sync::Arc;

pub struct Entitlements {
    pool: DbPool,
    cache: Option<AnswerCache>,
    metrics: Arc<Metrics>,
}

impl Entitlements {
    pub fn new(pool: DbPool, cache_enabled: bool, metrics: Arc<Metrics>) -> Self {
        Entitlements {
            pool,
            cache: cache_enabled.then(AnswerCache::default),
            metrics,
        }
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
        let id = user.to_owned();
        let mut held = db::run(&self.pool, move |conn| {
            let loaded = holdings::load(conn, std::slice::from_ref(&id), now)?;
            if !loaded.known.contains(&id) {
                users::ensure(conn, &id)?;
            }
            Ok(loaded.holdings)
        })
        .await?;
        let answer = effective(&held.remove(user).unwrap_or_default(), now);
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
            let mut held = db::run(&self.pool, move |conn| {
                Ok(holdings::load(conn, &wanted, now)?.holdings)
            })
            .await?;
            for (i, ticket) in missing {
                let id = &ids[i];
                let answer = effective(&held.remove(id).unwrap_or_default(), now);
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
        let id = user.to_owned();
        let mut held = db::run(&self.pool, move |conn| {
            Ok(holdings::load(conn, std::slice::from_ref(&id), now)?.holdings)
        })
        .await?;
        Ok(effective(&held.remove(user).unwrap_or_default(), now))
    }

    /// Call after committing a change to these users' holdings.
    pub fn invalidate<S: AsRef<str>>(&self, users: &[S]) {
        if let Some(cache) = &self.cache {
            for u in users {
                cache.invalidate(u.as_ref());
            }
        }
    }

    /// Call after a change that may touch anyone (a plan's entitlements changed).
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    pub fn cached_users(&self) -> usize {
        self.cache.as_ref().map_or(0, AnswerCache::len)
    }
}
