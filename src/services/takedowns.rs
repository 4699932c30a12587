//! Takedowns: notices against packs, removal of infringing or illegal packs (blocked for
//! everyone at once, buyers refunded through Stripe by the jobs worker, the creator's share
//! clawed back by the refunds' own ledger reversals, images purged after the appeal window),
//! and creators' appeals. Every decision is written to the pack's audit trail and mailed to
//! the creator, in the transaction that makes it.

use crate::app::AppState;
use crate::db;
use crate::db::models::catalog::Product;
use crate::db::models::grants;
use crate::db::models::packs::{self, Pack, Sticker};
use crate::db::models::takedowns::{self, Appeal, Notice, RemovalRefund};
use crate::db::models::to_db;
use crate::db::DbConn;
use crate::domain::states::PackState;
use crate::error::AppError;
use crate::services::billing::refund_requests;
use crate::services::changes;
use crate::services::packs::{check_reasons, moved, not_own};
use chrono::{Duration, Utc};

/// Refunds asked of Stripe per run of the jobs worker.
const REFUNDS_PER_RUN: i64 = 50;
/// A refund Stripe could not be asked for is tried again this often, doubling, at most 6 h;
/// after this many attempts it is `failed` and left to finance.
const REFUND_ATTEMPTS: i32 = 12;

/// States a pack is removed from: anything a moderator has seen (a draft nobody has).
const REMOVABLE: &[PackState] = &[
    PackState::InReview,
    PackState::Approved,
    PackState::Rejected,
    PackState::OnSale,
    PackState::Retired,
    PackState::Suspended,
];

/// Packs a notice may be filed against: those anyone could have seen.
const NOTICEABLE: &[PackState] = &[PackState::OnSale, PackState::Retired, PackState::Suspended];

pub struct NewNotice {
    pub pack_id: String,
    pub reason: String,
    pub claim: String,
    pub contact: String,
}

/// Files a notice against a published pack.
pub async fn file_notice(
    state: &AppState,
    reporter: &str,
    new: NewNotice,
) -> Result<Notice, AppError> {
    check_reasons(std::slice::from_ref(&new.reason))?;
    let r = reporter.to_owned();
    db::transaction(&state.pool, move |conn| {
        let pack = Pack::find(conn, &new.pack_id)?
            .filter(|p| NOTICEABLE.contains(&p.state))
            .ok_or_else(|| AppError::not_found(format!("pack {}", new.pack_id)))?;
        Ok(Notice::create(
            conn,
            &pack.id,
            &r,
            &new.reason,
            &new.claim,
            &new.contact,
        )?)
    })
    .await
}

/// A moderator dismisses a notice (the pack stays as it is).
pub async fn dismiss_notice(
    state: &AppState,
    moderator: &str,
    id: &str,
    note: Option<String>,
) -> Result<Notice, AppError> {
    let (m, id) = (moderator.to_owned(), id.to_owned());
    db::transaction(&state.pool, move |conn| {
        let notice =
            Notice::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("notice {id}")))?;
        if notice.state != "open" {
            return Err(AppError::conflict(
                "notice_decided",
                format!("notice {id} is {}", notice.state),
            ));
        }
        Notice::decide(
            conn,
            &notice.pack_id,
            Some(id.as_str()),
            "dismissed",
            &m,
            note.as_deref(),
        )?;
        Ok(Notice::find(conn, &id)?.unwrap_or(notice))
    })
    .await
}

/// Removes a pack: off the store and blocked for everyone, its buyers' refunds queued, its
/// grants revoked, its open notices actioned, its images purged after the appeal window.
pub async fn remove(
    state: &AppState,
    moderator: &str,
    pack_id: &str,
    reasons: Vec<String>,
    note: Option<String>,
    notice: Option<String>,
) -> Result<Pack, AppError> {
    check_reasons(&reasons)?;
    if reasons.is_empty() {
        return Err(AppError::unprocessable(
            "invalid_reason",
            "a removal gives at least one reason",
        ));
    }
    let (m, p) = (moderator.to_owned(), pack_id.to_owned());
    let purge_after = Utc::now() + Duration::days(state.settings.packs.removal_purge_days);
    changes::transaction(state, move |conn, changed| {
        let pack = Pack::lock(conn, &p)?.ok_or_else(|| AppError::not_found(format!("pack {p}")))?;
        not_own(&pack, &m)?;
        if !REMOVABLE.contains(&pack.state) {
            return Err(AppError::conflict(
                "invalid_transition",
                format!("pack {p} is {}: it cannot be removed", pack.state),
            ));
        }
        if let Some(n) = &notice {
            if !Notice::find(conn, n)?.is_some_and(|x| x.pack_id == p && x.state == "open") {
                return Err(AppError::unprocessable(
                    "invalid_notice",
                    format!("notice {n} is not an open notice against pack {p}"),
                ));
            }
        }
        if Product::find(conn, &p)?.is_some() {
            Product::update(conn, &p, None, None, Some(false))?;
        }
        moved(
            conn,
            &pack,
            &m,
            PackState::Removed,
            &reasons,
            note.as_deref(),
        )?;
        Pack::reviewed(
            conn,
            &p,
            PackState::Removed,
            &m,
            note.as_deref(),
            Utc::now(),
        )?;
        RemovalRefund::queue_for_pack(conn, &p)?;
        grants::revoke_key(conn, &format!("sticker_pack:{p}"), &format!("removal:{p}"))?;
        Notice::decide(conn, &p, None, "actioned", &m, note.as_deref())?;
        takedowns::schedule_purge(conn, &p, purge_after)?;
        statement(conn, &pack, PackState::Removed, &reasons, note.as_deref())?;
        // Buyers, claimers and grantees alike: rare enough to drop every cached answer.
        changed.everyone();
        Ok(Pack::find(conn, &p)?.unwrap_or(pack))
    })
    .await
}

/// The creator's statement of reasons: the decision, its reason codes, the note, and how to
/// appeal.
fn statement(
    conn: &mut DbConn,
    pack: &Pack,
    to: PackState,
    reasons: &[String],
    note: Option<&str>,
) -> Result<(), AppError> {
    let mut text = format!("Reasons: {}.", reasons.join(", "));
    if let Some(n) = note {
        text.push_str(&format!(" {n}"));
    }
    text.push_str(&format!(
        " You may appeal this decision once: POST /v1/creators/me/packs/{}/appeal.",
        pack.id
    ));
    crate::services::emails::pack_decision(
        conn,
        &pack.creator_id,
        &pack.id,
        &pack.title,
        to,
        Some(text.as_str()),
    )?;
    Ok(())
}

pub struct NewAppeal {
    /// `appeal` or `counter_notice`.
    pub kind: String,
    pub statement: String,
}

/// The creator appeals the decision that put their pack in its state (rejected, suspended or
/// removed), once per decision.
pub async fn appeal(
    state: &AppState,
    creator: &str,
    pack_id: &str,
    new: NewAppeal,
) -> Result<Appeal, AppError> {
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    db::transaction(&state.pool, move |conn| {
        let pack = Pack::lock(conn, &p)?
            .filter(|k| k.creator_id == c)
            .ok_or_else(|| AppError::not_found(format!("pack {p}")))?;
        if !matches!(
            pack.state,
            PackState::Rejected | PackState::Suspended | PackState::Removed
        ) {
            return Err(AppError::conflict(
                "nothing_to_appeal",
                format!(
                    "pack {p} is {}: only a rejection, suspension or removal is appealed",
                    pack.state
                ),
            ));
        }
        let decision = packs::events_of(conn, &p)?
            .into_iter()
            .rev()
            .find(|e| e.to_state == pack.state.as_str())
            .ok_or_else(|| AppError::conflict("nothing_to_appeal", "no decision to appeal"))?;
        let appeal = Appeal {
            id: crate::db::models::new_id("apl"),
            pack_id: p.clone(),
            event_id: decision.id,
            creator_id: c,
            kind: new.kind,
            against: pack.state.as_str().to_owned(),
            statement: new.statement,
            state: "open".into(),
            decided_by: None,
            decision_note: None,
            created_at: to_db(Utc::now()),
            decided_at: None,
        };
        Appeal::create(conn, &appeal)?.ok_or_else(|| {
            AppError::conflict(
                "already_appealed",
                "this decision was appealed before; a decision is appealed once",
            )
        })
    })
    .await
}

/// A moderator (not the one who decided, and never the pack's creator) decides an appeal.
/// Upheld: nothing changes. Reversed: a rejection goes back to review, a suspension back on
/// sale, a removal to `retired` (refunds already asked of Stripe stand, those not yet asked
/// are canceled, so their buyers keep the pack; the images are kept).
pub async fn decide_appeal(
    state: &AppState,
    moderator: &str,
    id: &str,
    reverse: bool,
    note: Option<String>,
) -> Result<Appeal, AppError> {
    let (m, id) = (moderator.to_owned(), id.to_owned());
    changes::transaction(state, move |conn, changed| {
        let appeal =
            Appeal::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("appeal {id}")))?;
        let pack = Pack::lock(conn, &appeal.pack_id)?
            .ok_or_else(|| AppError::not_found(format!("pack {}", appeal.pack_id)))?;
        not_own(&pack, &m)?;
        if appeal.state != "open" {
            return Err(AppError::conflict(
                "appeal_decided",
                format!("appeal {id} is {}", appeal.state),
            ));
        }
        let decided_by_me = packs::events_of(conn, &pack.id)?
            .iter()
            .any(|e| e.id == appeal.event_id && e.actor_id == m);
        if decided_by_me {
            return Err(AppError::forbidden(
                "an appeal is decided by another moderator than the one who made the decision",
            ));
        }
        let outcome = if reverse { "reversed" } else { "upheld" };
        Appeal::decide(conn, &id, outcome, &m, note.as_deref())?;
        let still = pack.state.as_str() == appeal.against;
        if reverse && still {
            let to = match pack.state {
                PackState::Rejected => PackState::InReview,
                PackState::Suspended => PackState::OnSale,
                _ => PackState::Retired,
            };
            let reasons = vec![format!("appeal_{outcome}")];
            moved(conn, &pack, &m, to, &reasons, note.as_deref())?;
            Pack::reviewed(conn, &pack.id, to, &m, note.as_deref(), Utc::now())?;
            if to == PackState::OnSale {
                Product::update(conn, &pack.id, None, None, Some(true))?;
            }
            if pack.state == PackState::Removed {
                RemovalRefund::cancel_pending(conn, &pack.id)?;
                takedowns::cancel_purge(conn, &pack.id)?;
                changed.everyone();
            }
            crate::services::emails::pack_decision(
                conn,
                &pack.creator_id,
                &pack.id,
                &pack.title,
                to,
                Some(format!("Your appeal was granted. {}", note.unwrap_or_default()).as_str()),
            )?;
        } else {
            crate::services::emails::pack_decision(
                conn,
                &pack.creator_id,
                &pack.id,
                &pack.title,
                pack.state,
                Some(
                    format!(
                        "Your appeal was considered; the decision stands. {}",
                        note.unwrap_or_default()
                    )
                    .as_str(),
                ),
            )?;
        }
        Ok(Appeal::find(conn, &id)?.unwrap_or(appeal))
    })
    .await
}

/// Asks Stripe for the refunds removals owe (jobs worker, one instance at a time). Each
/// refund's Stripe idempotency key is made from the order and what was refunded before, so a
/// run that dies after asking asks again for the same refund. Its effects (the order revoked,
/// the ledger reversed, the creator's share clawed back) follow from Stripe's events, as for
/// any refund.
pub async fn refund_removed(state: &AppState) -> Result<usize, AppError> {
    // Without Stripe too: orders made by hand (no Stripe payment) are settled as having
    // nothing to refund through Stripe.
    let due = db::run(&state.pool, |conn| {
        Ok(RemovalRefund::due(conn, REFUNDS_PER_RUN)?)
    })
    .await?;
    let mut asked = 0;
    for r in due {
        // Stripe's reasons (duplicate, fraudulent, requested_by_customer) do not fit a takedown.
        let result = refund_requests::refund_order(state, &r.order_id, None, None).await;
        let order = r.order_id.clone();
        let attempts = r.attempts;
        db::run(&state.pool, move |conn| {
            match result {
                Ok(done) => RemovalRefund::done(
                    conn,
                    &order,
                    "requested",
                    Some(done.refund_id.as_str()),
                    None,
                )?,
                // Stripe refused it (a disputed charge, say): finance looks at it.
                Err(AppError::Client {
                    code: "payment_refused",
                    detail,
                    ..
                }) => RemovalRefund::done(conn, &order, "failed", None, Some(detail.as_str()))?,
                // Not paid through Stripe, or refunded already: nothing is owed through Stripe.
                Err(AppError::Client { status, detail, .. }) if status.is_client_error() => {
                    RemovalRefund::done(
                        conn,
                        &order,
                        "nothing_to_refund",
                        None,
                        Some(detail.as_str()),
                    )?
                }
                Err(e) if attempts + 1 >= REFUND_ATTEMPTS => {
                    RemovalRefund::done(conn, &order, "failed", None, Some(e.to_string().as_str()))?
                }
                Err(e) => {
                    let wait = 30i64 << attempts.clamp(0, 10);
                    let next = Utc::now() + Duration::seconds(wait.min(6 * 3600));
                    RemovalRefund::retry(conn, &order, next, &e.to_string())?
                }
            }
            Ok(())
        })
        .await?;
        asked += 1;
    }
    Ok(asked)
}

/// Deletes the images of removed packs whose appeal window has passed, unless another pack
/// that is not removed shows the same image.
pub async fn purge_removed(state: &AppState) -> Result<usize, AppError> {
    let due = db::run(&state.pool, |conn| Ok(takedowns::purges_due(conn, 10)?)).await?;
    let mut purged = 0;
    for pack in due {
        let p = pack.clone();
        let orphans = db::run(&state.pool, move |conn| {
            let mut shas = Vec::new();
            let mut candidates: Vec<String> = Sticker::of_pack(conn, &p)?
                .into_iter()
                .flat_map(|s| [s.image_sha256, s.thumbnail_sha256])
                .collect();
            // Its cover and tray icon too.
            if let Some(pack) = Pack::find(conn, &p)? {
                candidates.extend(pack.cover_sha256.into_iter().chain(pack.tray_sha256));
            }
            for sha in candidates {
                let shown_elsewhere = Sticker::packs_of_blob(conn, &sha)?
                    .iter()
                    .any(|(state, _, _)| *state != PackState::Removed);
                if !shown_elsewhere {
                    shas.push(sha);
                }
            }
            // Its archive is its own.
            shas.extend(
                packs::archives_of(conn, std::slice::from_ref(&p))?
                    .into_iter()
                    .map(|(_, sha)| sha),
            );
            Ok(shas)
        })
        .await?;
        for sha in orphans {
            state
                .blobs
                .delete(&sha)
                .await
                .map_err(crate::services::packs::storage_unavailable)?;
        }
        db::run(&state.pool, move |conn| Ok(takedowns::purged(conn, &pack)?)).await?;
        purged += 1;
    }
    Ok(purged)
}
