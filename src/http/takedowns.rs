//! Takedowns: anyone signed in files a notice against a published pack; moderators dismiss
//! notices, remove packs (refunds and purge follow) and decide creators' appeals; a creator
//! appeals a decision on their pack once.

use super::creator_packs::{page_by, Cursor};
use super::moderation::check_note;
use super::parse_json;
use super::views::PackView;
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::db;
use crate::db::models::from_db;
use crate::db::models::packs::Sticker;
use crate::db::models::takedowns::{Appeal, Notice, RemovalRefund};
use crate::domain::pack_text::check_text;
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use crate::services::packs::check_reasons;
use crate::services::takedowns::{self, NewAppeal, NewNotice};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/notices").route(web::post().to(file_notice)))
        .service(web::resource("/v1/moderation/notices").route(web::get().to(notices)))
        .service(
            web::resource("/v1/moderation/notices/{id}/dismiss").route(web::post().to(dismiss)),
        )
        .service(web::resource("/v1/moderation/packs/{id}/remove").route(web::post().to(remove)))
        .service(web::resource("/v1/moderation/packs/{id}/refunds").route(web::get().to(refunds)))
        .service(web::resource("/v1/moderation/appeals").route(web::get().to(appeals)))
        .service(
            web::resource("/v1/moderation/appeals/{id}/decide")
                .route(web::post().to(decide_appeal)),
        )
        .service(web::resource("/v1/creators/me/packs/{id}/appeal").route(web::post().to(appeal)));
}

#[derive(Serialize)]
struct NoticeView {
    id: String,
    pack_id: String,
    reporter_id: String,
    reason: String,
    claim: String,
    contact: String,
    state: String,
    decided_by: Option<String>,
    decision_note: Option<String>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}

impl From<&Notice> for NoticeView {
    fn from(n: &Notice) -> Self {
        NoticeView {
            id: n.id.clone(),
            pack_id: n.pack_id.clone(),
            reporter_id: n.reporter_id.clone(),
            reason: n.reason.clone(),
            claim: n.claim.clone(),
            contact: n.contact.clone(),
            state: n.state.clone(),
            decided_by: n.decided_by.clone(),
            decision_note: n.decision_note.clone(),
            created_at: from_db(n.created_at),
            decided_at: n.decided_at.map(from_db),
        }
    }
}

#[derive(Serialize)]
struct AppealView {
    id: String,
    pack_id: String,
    decision_id: String,
    kind: String,
    against: String,
    statement: String,
    state: String,
    decided_by: Option<String>,
    decision_note: Option<String>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}

impl From<&Appeal> for AppealView {
    fn from(a: &Appeal) -> Self {
        AppealView {
            id: a.id.clone(),
            pack_id: a.pack_id.clone(),
            decision_id: a.event_id.clone(),
            kind: a.kind.clone(),
            against: a.against.clone(),
            statement: a.statement.clone(),
            state: a.state.clone(),
            decided_by: a.decided_by.clone(),
            decision_note: a.decision_note.clone(),
            created_at: from_db(a.created_at),
            decided_at: a.decided_at.map(from_db),
        }
    }
}

fn text(code: &'static str, field: &str, value: &str, max: usize) -> Result<(), AppError> {
    check_text(field, value, 1, max).map_err(|d| AppError::unprocessable(code, d))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticeBody {
    pack_id: String,
    /// A reason code of the moderation list (`intellectual_property`, …).
    reason: String,
    claim: String,
    contact: String,
}

/// POST /v1/notices — anyone signed in reports a published pack.
async fn file_notice(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let me = caller.user()?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: NoticeBody = parse_json(&body)?;
        if b.pack_id.is_empty() || b.pack_id.len() > 64 {
            return Err(AppError::unprocessable(
                "invalid_pack",
                "pack_id is 1-64 characters",
            ));
        }
        text("invalid_claim", "claim", &b.claim, 4000)?;
        if b.contact.len() > 254 || b.contact.parse::<lettre::Address>().is_err() {
            return Err(AppError::unprocessable(
                "invalid_email",
                "contact must be an email address",
            ));
        }
        let notice = takedowns::file_notice(
            &state,
            &me,
            NewNotice {
                pack_id: b.pack_id,
                reason: b.reason,
                claim: b.claim,
                contact: b.contact,
            },
        )
        .await?;
        Ok(Reply::created(NoticeView::from(&notice)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

impl ListQuery {
    fn parse(self) -> Result<(String, Option<String>, i64), AppError> {
        let state = self.state.unwrap_or_else(|| "open".into());
        let cursor = Cursor {
            cursor: self.cursor,
            limit: self.limit,
        };
        Ok((state, cursor.after()?, cursor.limit()?))
    }
}

fn one_of(state: &str, allowed: &[&str]) -> Result<(), AppError> {
    if allowed.contains(&state) {
        Ok(())
    } else {
        Err(AppError::unprocessable(
            "invalid_state",
            format!("state must be one of {allowed:?}"),
        ))
    }
}

/// GET /v1/moderation/notices?state=open — oldest first.
async fn notices(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Moderator)?;
    let (wanted, after, limit) = query.into_inner().parse()?;
    one_of(&wanted, &["open", "actioned", "dismissed"])?;
    let page = db::run(&state.pool, move |conn| {
        let after = match after {
            Some(id) => Some(
                Notice::find(conn, &id)?
                    .map(|n| (n.created_at, n.id))
                    .ok_or_else(|| AppError::unprocessable("invalid_cursor", "unknown cursor"))?,
            ),
            None => None,
        };
        let rows = Notice::in_state(conn, &wanted, after, limit + 1)?;
        Ok(page_by(
            rows,
            limit,
            |n| n.id.clone(),
            |n| NoticeView::from(n),
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: Option<String>,
}

fn note_body(body: &[u8]) -> Result<NoteBody, AppError> {
    let b: NoteBody = if body.is_empty() {
        NoteBody::default()
    } else {
        parse_json(body)?
    };
    check_note(&b.note)?;
    Ok(b)
}

/// POST /v1/moderation/notices/{id}/dismiss — the pack stays as it is.
async fn dismiss(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Moderator)?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b = note_body(&body)?;
        let notice = takedowns::dismiss_notice(&state, &me, &id, b.note).await?;
        Ok(Reply::ok(NoticeView::from(&notice)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    reasons: Vec<String>,
    note: Option<String>,
    notice_id: Option<String>,
}

/// POST /v1/moderation/packs/{id}/remove — blocked for everyone, buyers refunded.
async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Moderator)?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: RemoveBody = parse_json(&body)?;
        check_reasons(&b.reasons)?;
        check_note(&b.note)?;
        if b.notice_id
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.len() > 64)
        {
            return Err(AppError::unprocessable(
                "invalid_notice",
                "notice_id is 1-64 characters",
            ));
        }
        let pack = takedowns::remove(&state, &me, &id, b.reasons, b.note, b.notice_id).await?;
        let pid = pack.id.clone();
        let stickers = db::run(&state.pool, move |conn| Ok(Sticker::of_pack(conn, &pid)?)).await?;
        Ok(Reply::ok(PackView::new(&pack, &stickers)))
    })
    .await
}

#[derive(Serialize)]
struct RemovalRefundView {
    order_id: String,
    /// `pending`, `requested` (Stripe has it; its events do the rest), `nothing_to_refund`,
    /// `failed` (left to finance) or `canceled` (the removal was reversed).
    state: String,
    attempts: i32,
    stripe_refund_id: Option<String>,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
}

/// GET /v1/moderation/packs/{id}/refunds — a removed pack's refunds, by order.
async fn refunds(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<Cursor>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Moderator)?;
    let id = path.into_inner();
    let (after, limit) = (query.after()?, query.limit()?);
    let page = db::run(&state.pool, move |conn| {
        crate::db::models::packs::Pack::find(conn, &id)?
            .filter(|p| p.submitted_at.is_some())
            .ok_or_else(|| AppError::not_found(format!("pack {id}")))?;
        let rows = RemovalRefund::of_pack(conn, &id, after.as_deref(), limit + 1)?;
        Ok(page_by(
            rows,
            limit,
            |r| r.order_id.clone(),
            |r| RemovalRefundView {
                order_id: r.order_id.clone(),
                state: r.state.clone(),
                attempts: r.attempts,
                stripe_refund_id: r.stripe_refund_id.clone(),
                last_error: r.last_error.clone(),
                next_attempt_at: from_db(r.next_at),
            },
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// GET /v1/moderation/appeals?state=open — oldest first.
async fn appeals(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Moderator)?;
    let (wanted, after, limit) = query.into_inner().parse()?;
    one_of(&wanted, &["open", "upheld", "reversed"])?;
    let page = db::run(&state.pool, move |conn| {
        let after = match after {
            Some(id) => Some(
                Appeal::find(conn, &id)?
                    .map(|a| (a.created_at, a.id))
                    .ok_or_else(|| AppError::unprocessable("invalid_cursor", "unknown cursor"))?,
            ),
            None => None,
        };
        let rows = Appeal::in_state(conn, &wanted, after, limit + 1)?;
        Ok(page_by(
            rows,
            limit,
            |a| a.id.clone(),
            |a| AppealView::from(a),
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppealDecision {
    /// `upheld` (the decision stands) or `reversed`.
    outcome: String,
    note: Option<String>,
}

/// POST /v1/moderation/appeals/{id}/decide
async fn decide_appeal(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Moderator)?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: AppealDecision = parse_json(&body)?;
        let reverse = match b.outcome.as_str() {
            "upheld" => false,
            "reversed" => true,
            _ => {
                return Err(AppError::unprocessable(
                    "invalid_outcome",
                    "outcome must be upheld or reversed",
                ))
            }
        };
        check_note(&b.note)?;
        let appeal = takedowns::decide_appeal(&state, &me, &id, reverse, b.note).await?;
        Ok(Reply::ok(AppealView::from(&appeal)))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppealBody {
    /// `appeal` (the default) or `counter_notice`.
    kind: Option<String>,
    statement: String,
}

/// POST /v1/creators/me/packs/{id}/appeal — once per decision.
async fn appeal(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: AppealBody = parse_json(&body)?;
        let kind = b.kind.unwrap_or_else(|| "appeal".into());
        if kind != "appeal" && kind != "counter_notice" {
            return Err(AppError::unprocessable(
                "invalid_kind",
                "kind must be appeal or counter_notice",
            ));
        }
        text("invalid_statement", "statement", &b.statement, 4000)?;
        let appeal = takedowns::appeal(
            &state,
            &me,
            &id,
            NewAppeal {
                kind,
                statement: b.statement,
            },
        )
        .await?;
        Ok(Reply::created(AppealView::from(&appeal)))
    })
    .await
}
