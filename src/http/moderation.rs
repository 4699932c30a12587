//! The review queue: moderators claim a pack under review, then approve or reject it (reason
//! codes per sticker); packs on sale can be suspended. Nobody reviews their own pack.

use super::creator_packs::{cursor_pack, page_of, Cursor};
use super::parse_json;
use super::views::{PackEventView, PackView};
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::db;
use crate::db::models::packs::{self, Pack, Sticker};
use crate::domain::pack_text::check_text;
use crate::domain::states::PackState;
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use crate::services::packs::{self as pack_service, check_reasons, Decision};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/moderation/packs").route(web::get().to(queue)))
        .service(web::resource("/v1/moderation/packs/{id}").route(web::get().to(show)))
        .service(web::resource("/v1/moderation/packs/{id}/claim").route(web::post().to(claim)))
        .service(web::resource("/v1/moderation/packs/{id}/approve").route(web::post().to(approve)))
        .service(web::resource("/v1/moderation/packs/{id}/reject").route(web::post().to(reject)))
        .service(web::resource("/v1/moderation/packs/{id}/suspend").route(web::post().to(suspend)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// GET /v1/moderation/packs?state=in_review — oldest submission first.
async fn queue(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Moderator)?;
    let q = query.into_inner();
    let wanted = match q.state.as_deref() {
        None => PackState::InReview,
        Some(s) => PackState::parse(s).ok_or_else(|| {
            AppError::unprocessable(
                "invalid_state",
                format!(
                    "state must be one of {:?}",
                    PackState::ALL
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                ),
            )
        })?,
    };
    // Drafts are the creator's until submitted.
    if wanted == PackState::Draft {
        return Err(AppError::unprocessable(
            "invalid_state",
            "drafts are not reviewed until submitted",
        ));
    }
    let cursor = Cursor {
        cursor: q.cursor,
        limit: q.limit,
    };
    let (limit, after) = (cursor.limit()?, cursor.after()?);
    let page = db::run(&state.pool, move |conn| {
        let after = cursor_pack(conn, after, |_| true)?;
        let found = Pack::in_state(conn, wanted, after.as_ref(), limit + 1)?;
        let ids: Vec<String> = found.iter().map(|p| p.id.clone()).collect();
        let stickers = Sticker::of_packs(conn, &ids)?;
        Ok(page_of(found, limit, |p| PackView::new(p, &stickers)))
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Serialize)]
struct Review {
    #[serde(flatten)]
    pack: PackView,
    history: Vec<PackEventView>,
}

/// GET /v1/moderation/packs/{id} — the pack, its stickers and its history.
async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Moderator)?;
    let id = path.into_inner();
    let review = db::run(&state.pool, move |conn| {
        // A draft is the creator's until it is submitted.
        let pack = Pack::find(conn, &id)?
            .filter(|p| p.submitted_at.is_some())
            .ok_or_else(|| AppError::not_found(format!("pack {id}")))?;
        let stickers = Sticker::of_pack(conn, &id)?;
        let history = packs::events_of(conn, &id)?;
        Ok(Review {
            pack: PackView::new(&pack, &stickers),
            history: history.iter().map(PackEventView::from).collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(review))
}

async fn answer(state: &AppState, pack: Pack) -> Result<Reply, AppError> {
    let pid = pack.id.clone();
    let stickers = db::run(&state.pool, move |conn| Ok(Sticker::of_pack(conn, &pid)?)).await?;
    Ok(Reply::ok(PackView::new(&pack, &stickers)))
}

/// POST /v1/moderation/packs/{id}/claim — reserve a pack for review for a while.
async fn claim(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Moderator)?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let pack = pack_service::claim(&state, &me, &id).await?;
        answer(&state, pack).await
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Verdict {
    #[serde(default)]
    reasons: Vec<String>,
    /// Reason codes per sticker position.
    #[serde(default)]
    stickers: Vec<StickerVerdict>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StickerVerdict {
    position: i32,
    reason: String,
}

fn verdict(body: &[u8]) -> Result<Verdict, AppError> {
    let v: Verdict = if body.is_empty() {
        Verdict::default()
    } else {
        parse_json(body)?
    };
    check_reasons(&v.reasons)?;
    if v.stickers.len() > 120 {
        return Err(AppError::unprocessable(
            "invalid_reason",
            "at most 120 sticker verdicts",
        ));
    }
    let codes: Vec<String> = v.stickers.iter().map(|s| s.reason.clone()).collect();
    check_reasons(&codes)?;
    check_note(&v.note)?;
    Ok(v)
}

/// A moderator's note for the creator: 1-2000 characters of plain text.
pub(super) fn check_note(note: &Option<String>) -> Result<(), AppError> {
    match note {
        Some(n) => {
            check_text("note", n, 1, 2000).map_err(|d| AppError::unprocessable("invalid_note", d))
        }
        None => Ok(()),
    }
}

async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    id: String,
    kind: PackState,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Moderator)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let v = verdict(&body)?;
        let decision = match kind {
            PackState::Approved => Decision::Approve,
            PackState::Rejected => {
                if v.reasons.is_empty() && v.stickers.is_empty() {
                    return Err(AppError::unprocessable(
                        "reason_required",
                        "a rejection gives at least one reason code, for the pack or a sticker",
                    ));
                }
                Decision::Reject {
                    stickers: v
                        .stickers
                        .iter()
                        .map(|s| (s.position, s.reason.clone()))
                        .collect(),
                    reasons: v.reasons.clone(),
                }
            }
            _ => {
                if v.reasons.is_empty() {
                    return Err(AppError::unprocessable(
                        "reason_required",
                        "a suspension gives at least one reason code",
                    ));
                }
                Decision::Suspend {
                    reasons: v.reasons.clone(),
                }
            }
        };
        let pack = pack_service::decide(&state, &me, &id, decision, v.note).await?;
        answer(&state, pack).await
    })
    .await
}

async fn approve(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    decide(
        state,
        caller,
        req,
        body,
        path.into_inner(),
        PackState::Approved,
    )
    .await
}

async fn reject(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    decide(
        state,
        caller,
        req,
        body,
        path.into_inner(),
        PackState::Rejected,
    )
    .await
}

async fn suspend(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    decide(
        state,
        caller,
        req,
        body,
        path.into_inner(),
        PackState::Suspended,
    )
    .await
}
