//! Store pages, kept rendered: the store is read far more often than packs change, and one page
//! costs several queries to build. A page is kept with the write generation it was built at
//! and used while nothing it shows was written in this process since (see
//! `packs::store_touched`), and for at most `MAX_AGE` from its first read: another instance's
//! writes reach this one's readers within that.
//!
//! A page is kept as every user who owns none of its packs sees it (the common case), body and
//! ETag ready; a caller who owns one of them gets it rendered again with their `owned` flags.

use super::views::{Page, StorePackView};
use crate::db::models::packs::store_generation as generation;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How stale a page may be after another instance's write.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Pages kept, and their bytes in all; past either, the cache starts over (a burst of distinct
/// searches costs a rebuild, never memory).
const MAX_PAGES: usize = 2048;
const MAX_BYTES: usize = 32 << 20;

/// A rendered page: its packs, and the body and ETag as seen by a caller owning none of them.
pub struct Rendered {
    pub page: Page<StorePackView>,
    pub body: bytes::Bytes,
    pub etag: String,
    generation: u64,
    built: Instant,
}

impl Rendered {
    /// `generation` and `started`: as they were before the page's reads began.
    pub fn new(page: Page<StorePackView>, generation: u64, started: Instant) -> Rendered {
        let body = bytes::Bytes::from(serde_json::to_vec(&page).unwrap_or_default());
        let etag = format!("\"{}\"", crate::services::blobs::Blobs::sha256_hex(&body));
        Rendered {
            page,
            body,
            etag,
            generation,
            built: started,
        }
    }

    fn fresh(&self, now: Instant) -> bool {
        self.generation == generation() && now.duration_since(self.built) < MAX_AGE
    }
}

#[derive(Default)]
pub struct StorePages {
    pages: Mutex<(HashMap<String, Arc<Rendered>>, usize)>,
}

impl StorePages {
    /// The page for `key`, if it is still fresh.
    pub fn get(&self, key: &str) -> Option<Arc<Rendered>> {
        let pages = self.pages.lock().ok()?;
        pages
            .0
            .get(key)
            .filter(|r| r.fresh(Instant::now()))
            .cloned()
    }

    pub fn put(&self, key: String, rendered: Arc<Rendered>) {
        // Written meanwhile: a later reader builds it again (and never over a fresher page).
        if !rendered.fresh(Instant::now()) {
            return;
        }
        let Ok(mut pages) = self.pages.lock() else {
            return;
        };
        if pages.0.len() >= MAX_PAGES || pages.1 + rendered.body.len() > MAX_BYTES {
            *pages = (HashMap::new(), 0);
        }
        pages.1 += rendered.body.len();
        if let Some(old) = pages.0.insert(key, rendered) {
            pages.1 -= old.body.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_used_until_a_write_or_its_age() {
        let pages = StorePages::default();
        let page = |n| Page {
            items: Vec::new(),
            next_cursor: Some(format!("c{n}")),
        };
        pages.put(
            "k".into(),
            Arc::new(Rendered::new(page(1), generation(), Instant::now())),
        );
        assert!(pages.get("k").is_some());
        crate::db::models::packs::store_touched();
        assert!(pages.get("k").is_none(), "a write makes it stale");
        pages.put(
            "k".into(),
            Arc::new(Rendered::new(
                page(2),
                generation(),
                Instant::now() - MAX_AGE,
            )),
        );
        assert!(pages.get("k").is_none(), "too old");
        let before = generation();
        crate::db::models::packs::store_touched();
        pages.put(
            "k".into(),
            Arc::new(Rendered::new(page(3), before, Instant::now())),
        );
        assert!(
            pages.get("k").is_none(),
            "built from a read a write overtook"
        );
    }
}
