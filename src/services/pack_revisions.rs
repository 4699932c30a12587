//! Editing a pack's texts. A draft (or a rejected pack) changes at once; a published pack's
//! edit is a revision a moderator reviews, and the store shows the texts it has until the
//! revision is approved. Images never change after publication (a sticker already sent in a
//! chat looks the same forever): stickers are replaced only in a draft.

use crate::app::AppState;
use crate::db;
use crate::db::models::packs::{self, Pack};
use crate::db::models::revisions::Revision;
use crate::domain::states::PackState;
use crate::error::AppError;
use crate::services::changes;
use crate::services::packs::not_own;

/// New texts; an absent field keeps the current one (shapes checked at the edge).
pub struct Texts {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
}

pub enum Edited {
    /// A draft or rejected pack, changed.
    Applied(Pack),
    /// A published pack: the edit waits for review.
    Proposed(Revision),
}

pub async fn edit(
    state: &AppState,
    creator: &str,
    pack_id: &str,
    texts: Texts,
) -> Result<Edited, AppError> {
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    db::transaction(&state.pool, move |conn| {
        let pack = Pack::lock(conn, &p)?
            .filter(|k| k.creator_id == c)
            .ok_or_else(|| AppError::not_found(format!("pack {p}")))?;
        let title = texts.title.unwrap_or_else(|| pack.title.clone());
        let description = texts.description.unwrap_or_else(|| pack.description.clone());
        let tags = texts.tags.unwrap_or_else(|| pack.tags());
        match pack.state {
            PackState::Draft | PackState::Rejected => {
                Pack::set_texts(conn, &p, &title, &description, &tags)?;
                Ok(Edited::Applied(Pack::find(conn, &p)?.unwrap_or(pack)))
            }
            PackState::Approved | PackState::OnSale | PackState::Retired | PackState::Suspended => {
                if title == pack.title && description == pack.description && tags == pack.tags() {
                    return Err(AppError::unprocessable(
                        "nothing_changed",
                        "the texts are the pack's current ones",
                    ));
                }
                Revision::propose(conn, &p, &title, &description, &tags)?
                    .map(Edited::Proposed)
                    .ok_or_else(|| {
                        AppError::conflict(
                            "revision_pending",
                            "an edit of this pack is waiting for review; edit again once it is decided",
                        )
                    })
            }
            PackState::InReview | PackState::Removed => Err(AppError::conflict(
                "pack_not_editable",
                format!("pack {p} is {}: its texts cannot change now", pack.state),
            )),
        }
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
    changes::transaction(state, move |conn, _changed| {
        let revision = Revision::find(conn, &id)?
            .ok_or_else(|| AppError::not_found(format!("revision {id}")))?;
        let pack = Pack::lock(conn, &revision.pack_id)?
            .ok_or_else(|| AppError::not_found(format!("pack {}", revision.pack_id)))?;
        not_own(&pack, &m)?;
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
            Pack::set_texts(
                conn,
                &pack.id,
                &revision.title,
                &revision.description,
                &revision.tags(),
            )?;
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
    .await
}
