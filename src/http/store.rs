//! The store and delivery: packs on sale, what a user owns, free claims, and the images.
//! Ownership gates sending, not seeing: anyone who receives a sticker in a chat must see it,
//! so images are public, content-addressed and cacheable forever.

use super::creator_packs::{cursor_pack, page_of, Cursor};
use super::store_pages::Rendered;
use super::views::{Page, StorePackView};
use crate::app::AppState;
use crate::auth::Caller;
use crate::db;
use crate::db::models::catalog::Price;
use crate::db::models::packs::{self, Pack, Sticker, StoreFilter};
use crate::domain::pack_text::canonical_locale;
use crate::domain::pack_text::check_text;
use crate::domain::regions::Region;
use crate::domain::states::PackState;
use crate::error::AppError;
use crate::services::idempotency::{self, Reply};
use crate::services::packs as pack_service;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::Arc;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/store/packs").route(web::get().to(list)))
        .service(web::resource("/v1/store/packs/{id}").route(web::get().to(show)))
        .service(web::resource("/v1/me/packs").route(web::get().to(mine)))
        .service(web::resource("/v1/me/packs/{id}/claim").route(web::post().to(claim)))
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
    /// Packs with texts in this BCP-47 locale or its language.
    locale: Option<String>,
    /// Packs sold in this region (ISO 3166-1 alpha-2).
    region: Option<String>,
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

/// The packs the caller holds (bought, received, claimed or granted): their entitlement
/// answer says it, cached for the hot path, so every store route agrees on `owned`.
async fn held_packs(state: &AppState, user: &str) -> Result<HashSet<String>, AppError> {
    let held = state.entitlements.of_user(user, chrono::Utc::now()).await?;
    Ok(held
        .held()
        .into_iter()
        .filter_map(|h| h.key.strip_prefix("sticker_pack:").map(str::to_owned))
        .collect())
}

/// GET /v1/store/packs — packs on sale, newest (or most bought) first, filtered by creator,
/// tag, text, locale or sale region. The answer's strong ETag lets a client's `If-None-Match` get a 304.
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
    let locale = q
        .locale
        .map(|l| {
            canonical_locale(&l).ok_or_else(|| {
                AppError::unprocessable("invalid_locale", "locale is a BCP-47 tag (ja, pt-BR)")
            })
        })
        .transpose()?;
    let region = q
        .region
        .map(|r| {
            Region::parse(&r).ok_or_else(|| {
                AppError::unprocessable(
                    "invalid_region",
                    "region is an ISO 3166-1 alpha-2 country code",
                )
            })
        })
        .transpose()?;
    let cursor = Cursor {
        cursor: q.cursor,
        limit: q.limit,
    };
    let (limit, after) = (cursor.limit()?, cursor.after()?);
    let key = format!(
        "{:?}|{:?}|{:?}|{locale:?}|{region:?}|{popular}|{currency:?}|{after:?}|{limit}",
        q.creator, q.tag, q.q
    );
    let rendered = match state.store_pages.get(&key) {
        Some(hit) => hit,
        None => {
            // Read before the page is: a write from now on makes it stale.
            let (generation, started) = (packs::store_generation(), std::time::Instant::now());
            let (creator, tag, text) = (q.creator, q.tag, q.q);
            let page = db::run(&state.pool, move |conn| {
                let after = cursor_pack(conn, after, |p| p.published_at.is_some())?;
                let filter = StoreFilter {
                    creator: creator.as_deref(),
                    tag: tag.as_deref(),
                    text: text.as_deref(),
                    locale: locale.as_deref(),
                    region: region.as_ref().map(Region::as_str),
                    popular,
                };
                let found = Pack::on_sale(conn, &filter, after.as_ref(), limit + 1)?;
                let ids: Vec<String> = found.iter().map(|p| p.id.clone()).collect();
                let stickers = Sticker::of_packs(conn, &ids)?;
                let prices = Price::of_products(conn, &ids)?;
                let archives = packs::archives_of(conn, &ids)?;
                Ok(page_of(found, limit, |p| {
                    StorePackView::new(p, &stickers, &prices, Some(false))
                        .priced_in(currency.as_deref())
                        .with_archive(&archives)
                        .only_language_of(locale.as_deref())
                }))
            })
            .await?;
            let rendered = Arc::new(Rendered::new(page, generation, started));
            state.store_pages.put(key, rendered.clone());
            rendered
        }
    };
    let held = held_packs(&state, &me).await?;
    let owned: Vec<bool> = rendered
        .page
        .items
        .iter()
        .map(|p| held.contains(&p.id))
        .collect();
    let (body, etag) = if owned.contains(&true) {
        let page = Page {
            items: rendered
                .page
                .items
                .iter()
                .zip(&owned)
                .map(|(p, owned)| StorePackView {
                    owned: Some(*owned),
                    ..p.clone()
                })
                .collect(),
            next_cursor: rendered.page.next_cursor.clone(),
        };
        let mine = Rendered::new(page, 0, std::time::Instant::now());
        (mine.body, mine.etag)
    } else {
        (rendered.body.clone(), rendered.etag.clone())
    };
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
    let owned = held_packs(&state, &me).await?.contains(&id);
    let view = db::run(&state.pool, move |conn| {
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

/// GET /v1/me/packs — the packs the caller owns: bought, received, claimed or granted (at most
/// 500).
async fn mine(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, AppError> {
    let me = caller.user()?.to_owned();
    let held = held_packs(&state, &me).await?;
    let views = db::run(&state.pool, move |conn| {
        let mut owned: Vec<String> = held.into_iter().collect();
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
        let new = pack_service::claim_free(&state, &me, caller.country(), &id).await?;
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
