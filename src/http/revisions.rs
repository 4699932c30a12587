//! Editing a pack's texts, emoji and sale regions: a creator's PATCH (at once for a draft, a revision to review for a
//! published pack), and the moderators' queue of revisions with what each changes.

use super::creator_packs::{invalid, page_by, Cursor};
use super::moderation::check_note;
use super::parse_json;
use super::views::PackView;
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::db;
use crate::db::models::from_db;
use crate::db::models::packs::{Pack, Sticker};
use crate::db::models::revisions::Revision;
use crate::domain::pack_text::{check_emoji, check_locales, check_tags, check_text, Locales};
use crate::domain::regions;
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use crate::services::pack_revisions::{self, Edited, Texts};
use crate::services::packs::check_reasons;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/moderation/revisions").route(web::get().to(queue)))
        .service(web::resource("/v1/moderation/revisions/{id}").route(web::get().to(show)))
        .service(
            web::resource("/v1/moderation/revisions/{id}/approve").route(web::post().to(approve)),
        )
        .service(
            web::resource("/v1/moderation/revisions/{id}/reject").route(web::post().to(reject)),
        );
}

/// One field a revision changes.
#[derive(Serialize)]
struct Change {
    field: &'static str,
    from: serde_json::Value,
    to: serde_json::Value,
}

#[derive(Serialize)]
struct RevisionView {
    id: String,
    pack_id: String,
    version: i32,
    title: String,
    description: String,
    tags: Vec<String>,
    locales: Locales,
    /// Sticker position → its new emoji, for the stickers whose emoji change.
    emoji: BTreeMap<i32, Vec<String>>,
    state: String,
    reviewer_id: Option<String>,
    reasons: Vec<String>,
    note: Option<String>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    /// Against the texts the pack shows now.
    changes: Vec<Change>,
}

impl RevisionView {
    /// Its changes against the pack's texts and its stickers' emoji now.
    fn new(r: &Revision, pack: &Pack, stickers: &[Sticker]) -> RevisionView {
        let mut changes = Vec::new();
        let mut diff = |field, from: serde_json::Value, to: serde_json::Value| {
            if from != to {
                changes.push(Change { field, from, to });
            }
        };
        diff("title", pack.title.clone().into(), r.title.clone().into());
        diff(
            "description",
            pack.description.clone().into(),
            r.description.clone().into(),
        );
        diff("tags", pack.tags().into(), r.tags().into());
        let texts = r.texts();
        diff(
            "locales",
            serde_json::to_value(pack.locales()).unwrap_or_default(),
            serde_json::to_value(&texts.locales).unwrap_or_default(),
        );
        let split = |e: &str| e.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let emoji: BTreeMap<i32, Vec<String>> =
            r.emoji().iter().map(|(p, e)| (*p, split(e))).collect();
        for (position, to) in &emoji {
            let from = stickers
                .iter()
                .find(|s| s.pack_id == pack.id && s.position == *position)
                .map(|s| split(&s.emoji))
                .unwrap_or_default();
            if from == *to {
                continue;
            }
            changes.push(Change {
                field: "emoji",
                from: serde_json::json!({ "position": position, "emoji": from }),
                to: serde_json::json!({ "position": position, "emoji": to }),
            });
        }
        RevisionView {
            id: r.id.clone(),
            pack_id: r.pack_id.clone(),
            version: r.version,
            title: r.title.clone(),
            description: r.description.clone(),
            tags: r.tags(),
            locales: texts.locales,
            emoji,
            state: r.state.clone(),
            reviewer_id: r.reviewer_id.clone(),
            reasons: serde_json::from_str(&r.reasons).unwrap_or_default(),
            note: r.note.clone(),
            created_at: from_db(r.created_at),
            decided_at: r.decided_at.map(from_db),
            changes,
        }
    }
}

/// A revision with what it changes in its pack now.
fn view_of(conn: &mut db::DbConn, r: &Revision) -> Result<RevisionView, AppError> {
    let pack = Pack::find(conn, &r.pack_id)?.ok_or_else(|| AppError::not_found("pack"))?;
    Ok(RevisionView::new(
        r,
        &pack,
        &Sticker::of_pack(conn, &r.pack_id)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextsBody {
    title: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    /// Every locale's texts (replacing the ones the pack has).
    locales: Option<Locales>,
    /// Sticker position (as a string, JSON keys are) → its new emoji.
    emoji: Option<BTreeMap<String, String>>,
    /// `null`: sold everywhere.
    #[serde(default, deserialize_with = "present")]
    sale_regions: Option<Option<Vec<String>>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Emoji edits by position, checked: at most `max` stickers, 1-3 RGI emoji each.
pub(super) fn checked_emoji(
    emoji: BTreeMap<String, String>,
    max: i32,
) -> Result<BTreeMap<i32, String>, AppError> {
    if emoji.len() > usize::try_from(max).unwrap_or(0) {
        return Err(AppError::unprocessable(
            "invalid_emoji",
            format!("at most {max} stickers' emoji at once"),
        ));
    }
    let mut out = BTreeMap::new();
    for (position, e) in emoji {
        let p: i32 = position
            .parse()
            .ok()
            .filter(|p: &i32| (1..=max).contains(p) && p.to_string() == position)
            .ok_or_else(|| {
                AppError::unprocessable(
                    "invalid_position",
                    format!("emoji keys are sticker positions 1-{max}"),
                )
            })?;
        if e.len() > 200 {
            return Err(AppError::unprocessable(
                "invalid_emoji",
                "a sticker has 1-3 emoji",
            ));
        }
        let found = check_emoji(&e)
            .map_err(|d| AppError::unprocessable("invalid_emoji", format!("sticker {p}: {d}")))?;
        out.insert(p, found.join(" "));
    }
    Ok(out)
}

/// PATCH /v1/creators/me/packs/{id} — 200 with the pack (a draft or rejected pack), or 202
/// with the revision a moderator will review (a published pack).
pub async fn edit(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let b: TextsBody = parse_json(&body)?;
        if let Some(t) = &b.title {
            check_text("title", t, 1, 64).map_err(invalid("invalid_title"))?;
        }
        if let Some(d) = &b.description {
            check_text("description", d, 0, 300).map_err(invalid("invalid_description"))?;
        }
        if let Some(tags) = &b.tags {
            check_tags(tags).map_err(invalid("invalid_tags"))?;
        }
        let locales = b
            .locales
            .as_ref()
            .map(check_locales)
            .transpose()
            .map_err(invalid("invalid_locales"))?;
        let sale_regions = match b.sale_regions {
            None => None,
            Some(None) => Some(None),
            Some(Some(r)) => Some(Some(
                regions::sale_regions(&r).map_err(invalid("invalid_regions"))?,
            )),
        };
        let emoji = checked_emoji(
            b.emoji.unwrap_or_default(),
            state.settings.packs.max_stickers,
        )?;
        let texts = Texts {
            title: b.title,
            description: b.description,
            tags: b.tags,
            locales,
            emoji,
            sale_regions,
        };
        match pack_revisions::edit(&state, &me, &id, texts).await? {
            Edited::Applied(pack) => {
                let pid = pack.id.clone();
                let stickers =
                    db::run(&state.pool, move |conn| Ok(Sticker::of_pack(conn, &pid)?)).await?;
                Ok(Reply::ok(PackView::for_creator(&pack, &stickers)))
            }
            Edited::Proposed(revision) => {
                let view = db::run(&state.pool, move |conn| view_of(conn, &revision)).await?;
                Ok(Reply::json(StatusCode::ACCEPTED, view))
            }
        }
    })
    .await
}

/// GET /v1/moderation/revisions — pending revisions, oldest first.
async fn queue(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<Cursor>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Moderator)?;
    let (limit, after) = (query.limit()?, query.after()?);
    let page = db::run(&state.pool, move |conn| {
        let after = match after {
            Some(id) => Some(
                Revision::find(conn, &id)?
                    .map(|r| (r.created_at, r.id))
                    .ok_or_else(|| AppError::unprocessable("invalid_cursor", "unknown cursor"))?,
            ),
            None => None,
        };
        let rows = Revision::pending(conn, after, limit + 1)?;
        let ids: Vec<String> = rows.iter().map(|r| r.pack_id.clone()).collect();
        let packs = Pack::many(conn, &ids)?;
        let stickers = Sticker::of_packs(conn, &ids)?;
        // Every revision's pack exists (a foreign key): the page's cursor and items agree.
        let mut page = page_by(
            rows,
            limit,
            |r| r.id.clone(),
            |r| {
                packs
                    .iter()
                    .find(|p| p.id == r.pack_id)
                    .map(|pack| RevisionView::new(r, pack, &stickers))
            },
        );
        Ok(super::views::Page {
            items: page.items.drain(..).flatten().collect(),
            next_cursor: page.next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// GET /v1/moderation/revisions/{id} — the revision and what it changes.
async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    caller.staff(Role::Moderator)?;
    let id = path.into_inner();
    let view = db::run(&state.pool, move |conn| {
        let r = Revision::find(conn, &id)?
            .ok_or_else(|| AppError::not_found(format!("revision {id}")))?;
        view_of(conn, &r)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Verdict {
    #[serde(default)]
    reasons: Vec<String>,
    note: Option<String>,
}

async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    id: String,
    approve: bool,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Moderator)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let v: Verdict = if body.is_empty() {
            Verdict::default()
        } else {
            parse_json(&body)?
        };
        check_reasons(&v.reasons)?;
        if !approve && v.reasons.is_empty() {
            return Err(AppError::unprocessable(
                "reason_required",
                "a rejection gives at least one reason code",
            ));
        }
        check_note(&v.note)?;
        let revision = pack_revisions::decide(&state, &me, &id, approve, v.reasons, v.note).await?;
        let view = db::run(&state.pool, move |conn| view_of(conn, &revision)).await?;
        Ok(Reply::ok(view))
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
    decide(state, caller, req, body, path.into_inner(), true).await
}

async fn reject(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    decide(state, caller, req, body, path.into_inner(), false).await
}
