//! A creator's own profile and packs: register, draft, upload stickers, submit, release, retire.

use super::parse_json;
use super::views::{CreatorView, PackView, Page};
use crate::app::AppState;
use crate::auth::{Caller, Role};
use crate::db;
use crate::db::models::creators::Creator;
use crate::db::models::packs::{Pack, Sticker};
use crate::db::models::users;
use crate::domain::money::Currency;
use crate::domain::pack_text::{check_locales, check_tags, check_text, Locales};
use crate::domain::regions;
use crate::domain::states::PackKind;
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use crate::services::packs::{self, Draft};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

/// `upload_limit`: the largest sticker image accepted (the JSON body limit is far smaller).
pub fn routes(cfg: &mut web::ServiceConfig, upload_limit: usize) {
    cfg.service(
        web::resource("/v1/creators/me")
            .route(web::get().to(profile))
            .route(web::post().to(register))
            .route(web::patch().to(update_profile)),
    )
    .service(
        web::resource("/v1/creators/me/packs")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/v1/creators/me/packs/{id}")
            .route(web::get().to(show))
            .route(web::patch().to(super::revisions::edit)),
    )
    .service(
        web::resource("/v1/creators/me/packs/{id}/stickers/{position}")
            .app_data(web::PayloadConfig::new(upload_limit))
            .route(web::put().to(put_sticker))
            .route(web::delete().to(delete_sticker)),
    )
    .service(
        web::resource("/v1/creators/me/packs/{id}/cover")
            .app_data(web::PayloadConfig::new(upload_limit))
            .route(web::put().to(put_cover)),
    )
    .service(web::resource("/v1/creators/me/packs/{id}/archive").route(web::post().to(archive)))
    .service(web::resource("/v1/creators/me/packs/{id}/submit").route(web::post().to(submit)))
    .service(web::resource("/v1/creators/me/packs/{id}/release").route(web::post().to(release)))
    .service(web::resource("/v1/creators/me/packs/{id}/retire").route(web::post().to(retire)));
}

pub(super) fn invalid(code: &'static str) -> impl Fn(String) -> AppError {
    move |detail| AppError::unprocessable(code, detail)
}

/// An assigned ISO 3166-1 alpha-2 code, in upper case.
fn check_country(c: &str) -> Result<(), AppError> {
    if c.bytes().all(|b| b.is_ascii_uppercase()) && regions::Region::parse(c).is_some() {
        Ok(())
    } else {
        Err(AppError::unprocessable(
            "invalid_country",
            "country is an ISO 3166-1 alpha-2 code in upper case (JP, DE)",
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    display_name: String,
    country: String,
    payout_currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilePatch {
    display_name: Option<String>,
    country: Option<String>,
    payout_currency: Option<String>,
}

fn check_profile(
    name: Option<&str>,
    country: Option<&str>,
    currency: Option<&str>,
) -> Result<(), AppError> {
    if let Some(n) = name {
        check_text("display_name", n, 1, 64).map_err(invalid("invalid_name"))?;
    }
    if let Some(c) = country {
        check_country(c)?;
    }
    if let Some(c) = currency {
        Currency::parse(c).map_err(invalid("invalid_currency"))?;
    }
    Ok(())
}

/// Creators registering themselves start at an even split; admins set other deals.
const SELF_REGISTERED_SHARE_BPS: i32 = 5000;

/// POST /v1/creators/me — a user with the creator role registers their profile.
async fn register(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: Profile = parse_json(&body)?;
        check_profile(
            Some(&new.display_name),
            Some(&new.country),
            Some(&new.payout_currency),
        )?;
        let creator = db::transaction(&state.pool, move |conn| {
            if Creator::find(conn, &me)?.is_some() {
                return Err(AppError::conflict(
                    "already_registered",
                    "you have a creator profile; change it with PATCH",
                ));
            }
            users::ensure(conn, &me)?;
            Creator::upsert(conn, &me, &new.display_name, SELF_REGISTERED_SHARE_BPS)?;
            Ok(Creator::set_profile(
                conn,
                &me,
                None,
                Some(&new.country),
                Some(&new.payout_currency),
            )?)
        })
        .await?;
        Ok(Reply::created(CreatorView::from(&creator)))
    })
    .await
}

async fn profile(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    let creator = db::run(&state.pool, move |conn| packs::creator_of(conn, &me)).await?;
    Ok(HttpResponse::Ok().json(CreatorView::from(&creator)))
}

async fn update_profile(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    let patch: ProfilePatch = parse_json(&body)?;
    check_profile(
        patch.display_name.as_deref(),
        patch.country.as_deref(),
        patch.payout_currency.as_deref(),
    )?;
    let creator = db::transaction(&state.pool, move |conn| {
        packs::creator_of(conn, &me)?;
        Ok(Creator::set_profile(
            conn,
            &me,
            patch.display_name.as_deref(),
            patch.country.as_deref(),
            patch.payout_currency.as_deref(),
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(CreatorView::from(&creator)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPack {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    /// A configured tier (`t1`, `t2`, …); absent: free.
    price_tier: Option<String>,
    kind: PackKind,
    #[serde(default)]
    locales: Locales,
    /// ISO 3166-1 alpha-2 codes; absent or null: sold everywhere.
    sale_regions: Option<Vec<String>>,
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new: NewPack = parse_json(&body)?;
        check_text("title", &new.title, 1, 64).map_err(invalid("invalid_title"))?;
        check_text("description", &new.description, 0, 300)
            .map_err(invalid("invalid_description"))?;
        check_tags(&new.tags).map_err(invalid("invalid_tags"))?;
        let locales = check_locales(&new.locales).map_err(invalid("invalid_locales"))?;
        let sale_regions = new
            .sale_regions
            .as_deref()
            .map(regions::sale_regions)
            .transpose()
            .map_err(invalid("invalid_regions"))?;
        let pack = packs::create(
            &state,
            &me,
            Draft {
                kind: new.kind,
                title: new.title,
                description: new.description,
                tags: new.tags,
                price_tier: new.price_tier,
                locales,
                sale_regions,
            },
        )
        .await?;
        Ok(Reply::created(PackView::for_creator(&pack, &[])))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

impl Cursor {
    /// 1-100, 20 when absent.
    pub fn limit(&self) -> Result<i64, AppError> {
        match self.limit {
            None => Ok(20),
            Some(n) if (1..=100).contains(&n) => Ok(n),
            Some(_) => Err(AppError::unprocessable(
                "invalid_limit",
                "limit must be 1-100",
            )),
        }
    }

    pub fn after(&self) -> Result<Option<String>, AppError> {
        match &self.cursor {
            None => Ok(None),
            Some(c)
                if c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Ok(Some(c.clone()))
            }
            Some(_) => Err(AppError::unprocessable(
                "invalid_cursor",
                "cursor is malformed",
            )),
        }
    }
}

/// GET /v1/creators/me/packs — the creator's packs, newest first.
async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<Cursor>,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    let (limit, after) = (query.limit()?, query.after()?);
    let page = db::run(&state.pool, move |conn| {
        packs::creator_of(conn, &me)?;
        let after = cursor_pack(conn, after, |p| p.creator_id == me)?;
        let found = Pack::of_creator(conn, &me, after.as_ref(), limit + 1)?;
        let ids: Vec<String> = found.iter().map(|p| p.id.clone()).collect();
        let stickers = Sticker::of_packs(conn, &ids)?;
        Ok(page_of(found, limit, |p| {
            PackView::for_creator(p, &stickers)
        }))
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The pack a cursor names, if the list it came from could have shown it (`shown`).
pub fn cursor_pack(
    conn: &mut db::DbConn,
    after: Option<String>,
    shown: impl Fn(&Pack) -> bool,
) -> Result<Option<Pack>, AppError> {
    let Some(id) = after else { return Ok(None) };
    Pack::find(conn, &id)?
        .filter(shown)
        .map(Some)
        .ok_or_else(|| AppError::unprocessable("invalid_cursor", "unknown cursor"))
}

/// The first `limit` rows as views, and the cursor of the next page if there is one.
pub fn page_of<V>(rows: Vec<Pack>, limit: i64, view: impl Fn(&Pack) -> V) -> Page<V> {
    page_by(rows, limit, |p| p.id.clone(), view)
}

/// `page_of` for any rows (fetched `limit + 1` at a time): `cursor` names a row.
pub fn page_by<T, V>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
    view: impl FnMut(&T) -> V,
) -> Page<V> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Page {
        next_cursor: if more { rows.last().map(cursor) } else { None },
        items: rows.iter().map(view).collect(),
    }
}

async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    let id = path.into_inner();
    let view = db::run(&state.pool, move |conn| {
        let pack = Pack::find(conn, &id)?
            .filter(|p| p.creator_id == me)
            .ok_or_else(|| AppError::not_found(format!("pack {id}")))?;
        Ok(PackView::for_creator(&pack, &Sticker::of_pack(conn, &id)?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StickerQuery {
    emoji: Option<String>,
}

/// PUT /v1/creators/me/packs/{id}/stickers/{position}?emoji=… — the raw image is the body;
/// its format is read from its bytes (`Content-Type` is only a hint). Idempotent by nature.
async fn put_sticker(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, i32)>,
    query: web::Query<StickerQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    let (id, position) = path.into_inner();
    let emoji = query.into_inner().emoji.unwrap_or_default();
    let sticker = packs::put_sticker(&state, &me, &id, position, &emoji, body.to_vec()).await?;
    Ok(HttpResponse::Ok().json(super::views::StickerView::from(&sticker)))
}

/// PUT /v1/creators/me/packs/{id}/cover — the pack's cover (main image) as the raw body; its
/// 96 px tray icon is made from it. Idempotent by nature.
async fn put_cover(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    let id = path.into_inner();
    let pack = packs::put_cover(&state, &me, &id, body.to_vec()).await?;
    let view = db::run(&state.pool, move |conn| {
        Ok(PackView::for_creator(&pack, &Sticker::of_pack(conn, &id)?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Largest archive accepted (LINE's Creators Market takes 20 MiB).
const MAX_ARCHIVE_BYTES: usize = 20 * 1024 * 1024;

/// POST /v1/creators/me/packs/{id}/archive — a ZIP with `pack.toml` (or `pack.json`) and the
/// images, replacing the draft's stickers at once. Spooled to disk under the cap as it arrives.
async fn archive(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    mut payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    use futures_util::StreamExt;
    use std::io::{Seek, Write};
    let me = caller.staff(Role::Creator)?.to_owned();
    let id = path.into_inner();
    packs::editable_own(&state, &me, &id).await?;
    // Two archives at a time per instance: each may hold 20 MiB on disk and its images in memory.
    let _slot = state
        .archive_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("archive slots closed: {e}")))?;
    let spool_error =
        |e: std::io::Error| AppError::Internal(anyhow::anyhow!("spooling an archive: {e}"));
    let mut file = tempfile::tempfile().map_err(spool_error)?;
    let mut size = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| AppError::bad_request("invalid_body", format!("reading the body: {e}")))?;
        size += chunk.len();
        if size > MAX_ARCHIVE_BYTES {
            return Err(AppError::client(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("an archive is at most {MAX_ARCHIVE_BYTES} bytes"),
            ));
        }
        file.write_all(&chunk).map_err(spool_error)?;
    }
    file.rewind().map_err(spool_error)?;
    let stickers = packs::replace_from_archive(&state, &me, &id, file).await?;
    let view = db::run(&state.pool, move |conn| {
        let pack = Pack::find(conn, &id)?.ok_or_else(|| AppError::not_found("pack"))?;
        Ok(PackView::for_creator(&pack, &stickers))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn delete_sticker(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    let (id, position) = path.into_inner();
    packs::delete_sticker(&state, &me, &id, position).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The three moves a creator makes with a whole pack.
#[derive(Clone, Copy)]
enum Move {
    Submit,
    Release,
    Retire,
}

async fn pack_move(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    id: String,
    action: Move,
) -> Result<HttpResponse, AppError> {
    let me = caller.staff(Role::Creator)?.to_owned();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let pack = match action {
            Move::Submit => packs::submit(&state, &me, &id).await?,
            Move::Release => packs::release(&state, &me, &id).await?,
            Move::Retire => packs::retire(&state, &me, &id).await?,
        };
        let pid = pack.id.clone();
        let stickers = db::run(&state.pool, move |conn| Ok(Sticker::of_pack(conn, &pid)?)).await?;
        Ok(Reply::ok(PackView::for_creator(&pack, &stickers)))
    })
    .await
}

/// POST /v1/creators/me/packs/{id}/submit — a draft (or a rejected pack) goes to review.
async fn submit(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    pack_move(state, caller, req, body, path.into_inner(), Move::Submit).await
}

/// POST /v1/creators/me/packs/{id}/release — an approved pack goes on sale.
async fn release(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    pack_move(state, caller, req, body, path.into_inner(), Move::Release).await
}

/// POST /v1/creators/me/packs/{id}/retire — off the store; buyers keep it.
async fn retire(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    pack_move(state, caller, req, body, path.into_inner(), Move::Retire).await
}
