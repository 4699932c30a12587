//! The store and delivery: packs on sale, what a user owns, free claims, and the images.
//! Ownership gates sending, not seeing: anyone who receives a sticker in a chat must see it,
//! so images are public, content-addressed and cacheable forever.

use super::creator_packs::{cursor_pack, page_of, Cursor};
use super::views::StorePackView;
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::models::catalog::Price;
use crate::db::models::orders;
use crate::db::models::packs::{self, Pack, Sticker, StoreFilter};
use crate::domain::pack_text::check_text;
use crate::domain::states::PackState;
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use crate::services::packs::{self as pack_service, storage_unavailable};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::collections::HashSet;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/store/packs").route(web::get().to(list)))
        .service(web::resource("/v1/store/packs/{id}").route(web::get().to(show)))
        .service(web::resource("/v1/me/packs").route(web::get().to(mine)))
        .service(web::resource("/v1/me/packs/{id}/claim").route(web::post().to(claim)))
        .service(web::resource("/v1/blobs/{sha256}").route(web::get().to(blob)))
        .service(
            web::resource("/v1/packs/{id}/stickers/{sticker_id}").route(web::get().to(sticker)),
        );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreQuery {
    creator: Option<String>,
    tag: Option<String>,
    /// Searched in titles and tags.
    q: Option<String>,
    /// `new` (the default) or `popular`.
    sort: Option<String>,
    /// The currency the caller pays in: each pack's `price` in it.
    currency: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `?currency=` as an ISO 4217 code (any case).
fn asked_currency(currency: Option<String>) -> Result<Option<String>, AppError> {
    currency
        .map(|c| {
            crate::domain::money::Currency::parse(&c.to_ascii_uppercase())
                .map(|_| c.to_ascii_uppercase())
                .map_err(|e| AppError::unprocessable("invalid_currency", e))
        })
        .transpose()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowQuery {
    currency: Option<String>,
}

fn owned_set(conn: &mut db::DbConn, user: &str) -> Result<HashSet<String>, AppError> {
    let mut owned: HashSet<String> = orders::packs_held(conn, user)?.into_iter().collect();
    owned.extend(packs::claimed_by(conn, user)?);
    Ok(owned)
}

/// GET /v1/store/packs — packs on sale, newest (or most bought) first, filtered by creator,
/// tag or text. The answer's strong ETag lets a client's `If-None-Match` get a 304.
async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<StoreQuery>,
) -> Result<HttpResponse, AppError> {
    let me = caller.user()?.to_owned();
    let q = query.into_inner();
    if q.creator
        .as_ref()
        .is_some_and(|c| !crate::auth::valid_user_id(c))
    {
        return Err(AppError::unprocessable(
            "invalid_user_id",
            "creator is a user id",
        ));
    }
    for (field, value) in [("tag", &q.tag), ("q", &q.q)] {
        if let Some(v) = value {
            check_text(field, v, 1, 64).map_err(|d| AppError::unprocessable("invalid_query", d))?;
        }
    }
    let popular = match q.sort.as_deref() {
        None | Some("new") => false,
        Some("popular") => true,
        Some(_) => {
            return Err(AppError::unprocessable(
                "invalid_sort",
                "sort must be new or popular",
            ))
        }
    };
    let currency = asked_currency(q.currency)?;
    let cursor = Cursor {
        cursor: q.cursor,
        limit: q.limit,
    };
    let (limit, after) = (cursor.limit()?, cursor.after()?);
    let (creator, tag, text) = (q.creator, q.tag, q.q);
    let page = db::run(&state.pool, move |conn| {
        let after = cursor_pack(conn, after, |p| p.published_at.is_some())?;
        let filter = StoreFilter {
            creator: creator.as_deref(),
            tag: tag.as_deref(),
            text: text.as_deref(),
            popular,
        };
        let found = Pack::on_sale(conn, &filter, after.as_ref(), limit + 1)?;
        let ids: Vec<String> = found.iter().map(|p| p.id.clone()).collect();
        let stickers = Sticker::of_packs(conn, &ids)?;
        let prices = Price::of_products(conn, &ids)?;
        let archives = packs::archives_of(conn, &ids)?;
        let owned = owned_set(conn, &me)?;
        Ok(page_of(found, limit, |p| {
            StorePackView::new(p, &stickers, &prices, Some(owned.contains(&p.id)))
                .priced_in(currency.as_deref())
                .with_archive(&archives)
        }))
    })
    .await?;
    let body = serde_json::to_vec(&page)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("store page: {e}")))?;
    let etag = format!("\"{}\"", crate::services::blobs::Blobs::sha256_hex(&body));
    // Private: `owned` is the caller's. A client revalidates and gets a 304 while nothing
    // on the page changed.
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"));
    if fresh {
        return Ok(res.finish());
    }
    Ok(res.content_type("application/json").body(body))
}

/// GET /v1/store/packs/{id} — a pack on sale (or one the caller owns, retired or suspended).
async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, AppError> {
    let me = caller.user()?.to_owned();
    let id = path.into_inner();
    let currency = asked_currency(query.into_inner().currency)?;
    let view = db::run(&state.pool, move |conn| {
        let owned = owned_set(conn, &me)?.contains(&id);
        let pack = Pack::find(conn, &id)?
            .filter(|p| {
                p.state == PackState::OnSale
                    || (owned && matches!(p.state, PackState::Retired | PackState::Suspended))
            })
            .ok_or_else(|| AppError::not_found(format!("pack {id}")))?;
        let stickers = Sticker::of_pack(conn, &id)?;
        let prices = Price::of_products(conn, std::slice::from_ref(&id))?;
        let archives = packs::archives_of(conn, std::slice::from_ref(&id))?;
        Ok(StorePackView::new(&pack, &stickers, &prices, Some(owned))
            .priced_in(currency.as_deref())
            .with_archive(&archives))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Packs one answer of `GET /v1/me/packs` lists (the first, by id).
const MAX_OWNED_LISTED: usize = 500;

/// GET /v1/me/packs — the packs the caller owns: bought, received, claimed (at most 500).
async fn mine(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, AppError> {
    let me = caller.user()?.to_owned();
    let views = db::run(&state.pool, move |conn| {
        let mut owned: Vec<String> = owned_set(conn, &me)?.into_iter().collect();
        owned.sort();
        owned.truncate(MAX_OWNED_LISTED);
        let mut found: Vec<Pack> = Pack::many(conn, &owned)?
            .into_iter()
            .filter(|p| p.state != PackState::Removed)
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<String> = found.iter().map(|p| p.id.clone()).collect();
        let stickers = Sticker::of_packs(conn, &ids)?;
        let prices = Price::of_products(conn, &ids)?;
        let archives = packs::archives_of(conn, &ids)?;
        Ok(found
            .iter()
            .map(|p| StorePackView::new(p, &stickers, &prices, Some(true)).with_archive(&archives))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": views })))
}

/// POST /v1/me/packs/{id}/claim — a free pack, without Stripe.
async fn claim(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let me = caller.user()?.to_owned();
    let id = path.into_inner();
    idempotency::once(&state.pool, &caller, &req, &body, || async {
        let new = pack_service::claim_free(&state, &me, &id).await?;
        Ok(Reply::json(
            if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            serde_json::json!({ "pack_id": id, "owned": true }),
        ))
    })
    .await
}

fn valid_sha(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One `bytes=a-b` range (or `a-`, `-n`) within `size`; `None` for anything else, which is
/// answered whole (RFC 9110 lets a server ignore a Range it does not support).
fn single_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (a, "") => (a.parse().ok()?, size),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.saturating_add(1).min(size),
        ),
    };
    if start >= size || start >= end {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

/// GET /v1/blobs/{sha256} — an image we encoded; immutable, so cacheable for a year once its
/// pack is published. An image of a removed pack is gone for everyone (451), even if another
/// pack holds the same bytes; one never published is seen only by its creator and moderators.
async fn blob(
    state: web::Data<AppState>,
    caller: Option<Caller>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let sha = path.into_inner();
    if !valid_sha(&sha) {
        return Err(AppError::not_found("blob"));
    }
    let s = sha.clone();
    // A sticker's image or thumbnail, or a published pack's archive.
    let (packs, archive) = db::run(&state.pool, move |conn| {
        let stickers = Sticker::packs_of_blob(conn, &s)?;
        if !stickers.is_empty() {
            return Ok((stickers, false));
        }
        Ok((packs::packs_of_archive(conn, &s)?, true))
    })
    .await?;
    if packs
        .iter()
        .any(|(state, _, _)| *state == PackState::Removed)
    {
        return Err(AppError::client(
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            "removed",
            "this sticker was removed",
        ));
    }
    let public = packs.iter().any(|(_, _, published)| *published);
    let may_preview = caller.as_ref().is_some_and(|c| {
        c.staff(crate::auth::Role::Moderator).is_ok()
            || c.user()
                .is_ok_and(|me| packs.iter().any(|(_, creator, _)| creator == me))
    });
    if !public && !may_preview {
        return Err(AppError::not_found(format!("blob {sha}")));
    }
    let cache = if public {
        "public, max-age=31536000, immutable"
    } else {
        "private, no-store"
    };
    let etag = format!("\"{sha}\"");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ACCEPT_RANGES, "bytes"));
    if matches {
        return Ok(res.finish());
    }
    let Some(stat) = state.blobs.stat(&sha).await.map_err(storage_unavailable)? else {
        return Err(AppError::not_found(format!("blob {sha}")));
    };
    res.content_type(if archive {
        "application/zip"
    } else {
        "image/png"
    });
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| single_range(v, stat.size));
    match range {
        Some(Err(())) => Ok(HttpResponse::RangeNotSatisfiable()
            .insert_header((header::CONTENT_RANGE, format!("bytes */{}", stat.size)))
            .content_type("application/problem+json")
            .body(
                serde_json::to_vec(&crate::error::Problem {
                    type_: "/problems/range_not_satisfiable".into(),
                    title: "Range Not Satisfiable",
                    status: 416,
                    code: "range_not_satisfiable",
                    detail: "the range is outside the blob",
                })
                .unwrap_or_default(),
            )),
        Some(Ok((start, end))) => {
            let bytes = state
                .blobs
                .get_range(&sha, start..end)
                .await
                .map_err(storage_unavailable)?
                .ok_or_else(|| AppError::not_found(format!("blob {sha}")))?;
            Ok(HttpResponse::PartialContent()
                .insert_header((header::ETAG, etag))
                .insert_header((header::CACHE_CONTROL, cache))
                .insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes {start}-{}/{}", end - 1, stat.size),
                ))
                .content_type("image/png")
                .body(bytes))
        }
        None => {
            let bytes = state
                .blobs
                .get(&sha)
                .await
                .map_err(storage_unavailable)?
                .ok_or_else(|| AppError::not_found(format!("blob {sha}")))?;
            Ok(res.body(bytes))
        }
    }
}

/// GET /v1/packs/{id}/stickers/{sticker_id} — where a sticker's image is (302 to its blob),
/// so a CDN caches the image once however many chats show it.
async fn sticker(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (pack, sticker) = path.into_inner();
    if sticker.len() > 64 || pack.len() > 64 {
        return Err(AppError::not_found("sticker"));
    }
    let found = db::run(&state.pool, move |conn| {
        let published = Pack::find(conn, &pack)?.is_some_and(|p| p.published_at.is_some());
        Ok(Sticker::find(conn, &sticker)?.filter(|s| s.pack_id == pack && published))
    })
    .await?
    .ok_or_else(|| AppError::not_found("sticker"))?;
    Ok(HttpResponse::Found()
        .insert_header((
            header::LOCATION,
            format!("/v1/blobs/{}", found.image_sha256),
        ))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .finish())
}
