//! Who may load a blob (`GET /v1/blobs/{sha256}`), decided from the packs that show it and
//! kept per blob until a pack's removal changes it.
//!
//! Only the answers that are the same for everyone are kept: public (a published pack shows
//! it and no removed pack does) and removed (451). A published pack's images never change and
//! it never becomes unpublished, so those answers change only when a pack is removed or its
//! removal reversed; both transactions drop every cached answer (`Changed::everyone`, heard by
//! other instances through `NOTIFY`), and [`crate::app::AppState::changed_everyone`] drops
//! these with them. A blob no published pack shows yet (its creator and moderators preview
//! it) is looked up on every request: publication and new uploads need no hook, and previews
//! are rare.

use crate::auth::{Caller, Role};
use crate::db::models::packs::{self, Sticker};
use crate::db::{self, DbPool};
use crate::domain::states::PackState;
use crate::error::AppError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// Blobs whose answer is kept at most: about 50 bytes each, so a few MiB.
const MAX_KEPT: usize = 100_000;

/// Who may load a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// A pack showing it was removed: gone for everyone (451), whoever else shows it.
    Removed,
    /// A published pack shows it: anyone, cacheable for a year.
    Public { archive: bool },
    /// No published pack shows it: only these creators and moderators (nobody's packs: only
    /// moderators).
    Preview {
        archive: bool,
        creators: Vec<String>,
    },
}

impl Access {
    /// From the packs showing the blob: (state, creator, published).
    pub fn of_packs(packs: &[(PackState, String, bool)], archive: bool) -> Access {
        if packs
            .iter()
            .any(|(state, _, _)| *state == PackState::Removed)
        {
            Access::Removed
        } else if packs.iter().any(|(_, _, published)| *published) {
            Access::Public { archive }
        } else {
            Access::Preview {
                archive,
                creators: packs.iter().map(|(_, c, _)| c.clone()).collect(),
            }
        }
    }

    /// A pack archive (`application/zip`) rather than a sticker image.
    pub fn archive(&self) -> bool {
        matches!(
            self,
            Access::Public { archive: true } | Access::Preview { archive: true, .. }
        )
    }

    /// Whether a preview may be shown to `caller`: a moderator, or a creator of a pack
    /// showing it.
    pub fn may_preview(creators: &[String], caller: Option<&Caller>) -> bool {
        caller.is_some_and(|c| {
            c.staff(Role::Moderator).is_ok()
                || c.user().is_ok_and(|me| creators.iter().any(|c| c == me))
        })
    }
}

/// The kept answers, with a generation bumped by every invalidation: a lookup that started
/// before an invalidation cannot keep what it read.
#[derive(Default)]
pub struct BlobAccess {
    kept: RwLock<HashMap<[u8; 32], Access>>,
    generation: AtomicU64,
}

impl BlobAccess {
    /// Who may load the blob `sha` (64 lowercase hex digits, checked by the caller).
    pub async fn of(&self, pool: &DbPool, sha: &str) -> Result<Access, AppError> {
        let mut name = [0u8; 32];
        if hex::decode_to_slice(sha, &mut name).is_err() {
            return Err(AppError::not_found(format!("blob {sha}")));
        }
        // The generation before the read: an invalidation after this makes the read stale.
        let ticket = self.generation.load(Ordering::Acquire);
        if let Some(access) = self.kept.read().ok().and_then(|m| m.get(&name).cloned()) {
            return Ok(access);
        }
        let s = sha.to_owned();
        // A sticker's image or thumbnail, or a published pack's archive.
        let access = db::run(pool, move |conn| {
            let stickers = Sticker::packs_of_blob(conn, &s)?;
            if !stickers.is_empty() {
                return Ok(Access::of_packs(&stickers, false));
            }
            Ok(Access::of_packs(&packs::packs_of_archive(conn, &s)?, true))
        })
        .await?;
        self.keep(name, &access, ticket);
        Ok(access)
    }

    fn keep(&self, name: [u8; 32], access: &Access, ticket: u64) {
        if matches!(access, Access::Preview { .. }) {
            return;
        }
        let Ok(mut kept) = self.kept.write() else {
            return;
        };
        if self.generation.load(Ordering::Acquire) != ticket {
            return;
        }
        if kept.len() >= MAX_KEPT {
            // Any one: a blob no longer asked for is as likely as any other to be dropped.
            if let Some(victim) = kept.keys().next().copied() {
                kept.remove(&victim);
            }
        }
        kept.insert(name, access.clone());
    }

    /// Call after a change that may alter any blob's answer (a pack removed or reinstated).
    pub fn invalidate_all(&self) {
        if let Ok(mut kept) = self.kept.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            kept.clear();
        }
    }

    /// Answers kept now.
    pub fn len(&self) -> usize {
        self.kept.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(state: PackState, creator: &str, published: bool) -> (PackState, String, bool) {
        (state, creator.to_owned(), published)
    }

    #[test]
    fn a_removal_anywhere_wins_then_publication_then_preview() {
        let published = pack(PackState::OnSale, "a", true);
        let removed = pack(PackState::Removed, "b", true);
        let draft = pack(PackState::Draft, "c", false);

        assert_eq!(
            Access::of_packs(&[published.clone(), removed], false),
            Access::Removed
        );
        assert_eq!(
            Access::of_packs(&[draft.clone(), published], true),
            Access::Public { archive: true }
        );
        assert_eq!(
            Access::of_packs(&[draft], false),
            Access::Preview {
                archive: false,
                creators: vec!["c".into()]
            }
        );
    }

    #[test]
    fn previews_are_not_kept_and_a_read_that_raced_an_invalidation_is_not_kept() {
        let cache = BlobAccess::default();
        let preview = Access::Preview {
            archive: false,
            creators: vec![],
        };

        cache.keep([1; 32], &preview, cache.generation.load(Ordering::Acquire));
        let ticket = cache.generation.load(Ordering::Acquire);
        cache.invalidate_all();
        cache.keep([2; 32], &Access::Removed, ticket);

        assert!(cache.is_empty());
        let ticket = cache.generation.load(Ordering::Acquire);
        cache.keep([3; 32], &Access::Removed, ticket);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn at_most_max_kept_answers_are_held() {
        let cache = BlobAccess::default();
        let ticket = cache.generation.load(Ordering::Acquire);

        for i in 0..MAX_KEPT + 10 {
            let mut name = [0u8; 32];
            name[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.keep(name, &Access::Public { archive: false }, ticket);
        }

        assert_eq!(cache.len(), MAX_KEPT);
    }
}
