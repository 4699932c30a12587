//! Delivery of what we encoded: sticker images, thumbnails and pack archives, by content
//! address. Public and cacheable for a year once a pack is published; gone (451) once removed.

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::services::blob_access::Access;
use crate::services::packs::storage_unavailable;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/blobs/{sha256}").route(web::get().to(blob)));
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
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let sha = path.into_inner();
    if !valid_sha(&sha) {
        return Err(AppError::not_found("blob"));
    }
    let access = state.blob_access.of(&state.pool, &sha).await?;
    let public = match &access {
        Access::Removed => {
            return Err(AppError::client(
                StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
                "removed",
                "this sticker was removed",
            ))
        }
        Access::Public { .. } => true,
        Access::Preview { creators, .. } => {
            // Only previews look at the caller: a public blob costs no token check.
            let caller = Option::<Caller>::extract(&req).await.ok().flatten();
            if !Access::may_preview(creators, caller.as_ref()) {
                return Err(AppError::not_found(format!("blob {sha}")));
            }
            false
        }
    };
    let cache = if public {
        "public, max-age=31536000, immutable"
    } else {
        "private, no-store"
    };
    let content_type = if access.archive() {
        "application/zip"
    } else {
        "image/png"
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
    let gone = || AppError::not_found(format!("blob {sha}"));
    // The size only when a range needs it (kept in memory after the first look); a whole
    // blob is one read, from memory when it is small and hot.
    if let Some(range) = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        let size = state
            .blobs
            .cached_size(&sha)
            .await
            .map_err(storage_unavailable)?
            .ok_or_else(gone)?;
        match single_range(range, size) {
            Some(Err(())) => return Ok(not_satisfiable(size)),
            Some(Ok((start, end))) => {
                let bytes = state
                    .blobs
                    .cached_get_range(&sha, start..end)
                    .await
                    .map_err(storage_unavailable)?
                    .ok_or_else(gone)?;
                return Ok(HttpResponse::PartialContent()
                    .insert_header((header::ETAG, etag))
                    .insert_header((header::CACHE_CONTROL, cache))
                    .insert_header((
                        header::CONTENT_RANGE,
                        format!("bytes {start}-{}/{size}", end - 1),
                    ))
                    .content_type(content_type)
                    .body(bytes));
            }
            None => {}
        }
    }
    let bytes = state
        .blobs
        .cached_get(&sha)
        .await
        .map_err(storage_unavailable)?
        .ok_or_else(gone)?;
    Ok(res.content_type(content_type).body(bytes))
}

fn not_satisfiable(size: u64) -> HttpResponse {
    HttpResponse::RangeNotSatisfiable()
        .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
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
        )
}
