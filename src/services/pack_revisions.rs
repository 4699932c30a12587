//! Editing a pack's texts and emoji. A draft (or a rejected pack) changes at once; a published
//! pack's edit is a revision a moderator reviews, and the store shows the texts it has until
//! the revision is approved. Sale regions are commercial, not content: they change at once.
//! Images never change after publication (a sticker already sent in a chat looks the same
//! forever): stickers are replaced only in a draft.

use crate::app::AppState;
use crate::db;
use crate::db::models::packs::{self, Pack, PackTexts, Sticker};
use crate::db::models::revisions::Revision;
use crate::domain::pack_text::Locales;
use crate::domain::regions::Region;
use crate::domain::states::PackState;
use crate::error::AppError;
use crate::services::changes;
use crate::services::packs::{self as packs_service, not_own};
use std::collections::BTreeMap;

/// An edit; an absent field keeps what the pack has (shapes checked at the edge).
#[derive(Default)]
pub struct Texts {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Replaces every locale's texts.
    pub locales: Option<Locales>,
    /// Sticker position → its new emoji (checked, canonical).
    pub emoji: BTreeMap<i32, String>,
    /// `Some(None)`: sold everywhere again. Commercial, not reviewed: applies at once.
    pub sale_regions: Option<Option<Vec<Region>>>,
}

impl Texts {
    fn words_given(&self) -> bool {
        self.title.is_some()
            || self.description.is_some()
            || self.tags.is_some()
            || self.locales.is_some()
            || !self.emoji.is_empty()
    }
}

pub enum Edited {
    /// Changed at once: a draft or rejected pack, or only its sale regions.
    Applied(Pack),
    /// A published pack's words: the edit waits for review.
    Proposed(Revision),
}

pub async fn edit(
    state: &AppState,
    creator: &str,
    pack_id: &str,
    edit: Texts,
) -> Result<Edited, AppError> {
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    db::transaction(&state.pool, move |conn| {
        let pack = Pack::lock(conn, &p)?
            .filter(|k| k.creator_id == c)
            .ok_or_else(|| AppError::not_found(format!("pack {p}")))?;
        let words = edit.words_given();
        if pack.state == PackState::Removed || (words && pack.state == PackState::InReview) {
            return Err(AppError::conflict(
                "pack_not_editable",
                format!("pack {p} is {}: its texts cannot change now", pack.state),
            ));
        }
        if !words && edit.sale_regions.is_none() {
            return Err(AppError::unprocessable(
                "nothing_changed",
                "the edit changes nothing",
            ));
        }
        if let Some(regions) = &edit.sale_regions {
            Pack::set_sale_regions(conn, &p, regions)?;
        }
        let now = pack.texts();
        let texts = PackTexts {
            title: edit.title.unwrap_or_else(|| now.title.clone()),
            description: edit.description.unwrap_or_else(|| now.description.clone()),
            tags: edit.tags.unwrap_or_else(|| now.tags.clone()),
            locales: edit.locales.unwrap_or_else(|| now.locales.clone()),
        };
        // Only emoji that change; every position named must hold a sticker.
        let stickers = Sticker::of_pack(conn, &p)?;
        let mut emoji = BTreeMap::new();
        for (position, e) in edit.emoji {
            let current = stickers
                .iter()
                .find(|s| s.position == position)
                .ok_or_else(|| {
                    AppError::unprocessable(
                        "unknown_sticker",
                        format!("pack {p} has no sticker at position {position}"),
                    )
                })?;
            if current.emoji != e {
                emoji.insert(position, e);
            }
        }
        let changed = texts != now || !emoji.is_empty();
        match pack.state {
            PackState::Draft | PackState::Rejected => {
                Pack::set_texts(conn, &p, &texts)?;
                for (position, e) in &emoji {
                    Sticker::set_emoji(conn, &p, *position, e)?;
                }
            }
            _ if changed => {
                return Revision::propose(conn, &p, &texts, &emoji)?
                    .map(Edited::Proposed)
                    .ok_or_else(|| {
                        AppError::conflict(
                            "revision_pending",
                            "an edit of this pack is waiting for review; edit again once it is decided",
                        )
                    });
            }
            _ if edit.sale_regions.is_none() => {
                return Err(AppError::unprocessable(
                    "nothing_changed",
                    "the texts and emoji are the pack's current ones",
                ));
            }
            _ => {}
        }
        Ok(Edited::Applied(Pack::find(conn, &p)?.unwrap_or(pack)))
    })
    .await
}

/// A moderator approves (the texts show at once) or rejects a pending revision.
pub async fn decide(
    state: &AppState,
    moderator: &str,
    revision_id: &str,
    approve: bool,
    reasons: Vec<String>,
    note: Option<String>,
) -> Result<Revision, AppError> {
    let (m, id) = (moderator.to_owned(), revision_id.to_owned());
    let decided = changes::transaction(state, move |conn, _changed| {
        let revision = Revision::find(conn, &id)?
            .ok_or_else(|| AppError::not_found(format!("revision {id}")))?;
        let pack = Pack::lock(conn, &revision.pack_id)?
            .ok_or_else(|| AppError::not_found(format!("pack {}", revision.pack_id)))?;
        not_own(&pack, &m)?;
        if pack.state == PackState::Removed {
            return Err(AppError::conflict(
                "pack_not_editable",
                format!("pack {} is removed: its edits are not decided", pack.id),
            ));
        }
        if !Revision::decide(conn, &id, approve, &m, &reasons, note.as_deref())? {
            return Err(AppError::conflict(
                "revision_decided",
                format!("revision {id} is {}", revision.state),
            ));
        }
        let what = if approve { "approved" } else { "rejected" };
        let mut trail = vec![format!("revision_{}_{what}", revision.version)];
        trail.extend(reasons.iter().cloned());
        packs::record_event(
            conn,
            &pack.id,
            &m,
            pack.state,
            pack.state,
            &trail,
            note.as_deref(),
        )?;
        if approve {
            Pack::set_texts(conn, &pack.id, &revision.texts())?;
            let emoji = revision.emoji();
            for (position, e) in &emoji {
                Sticker::set_emoji(conn, &pack.id, *position, e)?;
            }
            // The pack's archive lists each sticker's emoji: it is built again.
            if !emoji.is_empty() {
                packs::drop_archive(conn, &pack.id)?;
            }
        }
        crate::services::emails::pack_decision(
            conn,
            &pack.creator_id,
            &pack.id,
            &pack.title,
            pack.state,
            Some(
                format!(
                    "Your edit (version {}) was {what}. {}",
                    revision.version,
                    note.unwrap_or_default()
                )
                .as_str(),
            ),
        )?;
        Ok(Revision::find(conn, &id)?.unwrap_or(revision))
    })
    .await?;
    // Its archive was dropped with the old emoji; the jobs worker builds it if this fails.
    if decided.state == "approved" && !decided.emoji().is_empty() {
        if let Err(e) = packs_service::build_archive(state, &decided.pack_id).await {
            tracing::warn!(error = %e, pack = %decided.pack_id, "pack archive rebuild deferred");
        }
    }
    Ok(decided)
}
