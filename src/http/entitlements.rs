//! The hot path: a user's own entitlements, batch checks for messenger servers, and signed
//! entitlement tokens with the keys to verify them.

use super::parse_json;
use crate::app::AppState;
use crate::auth::{valid_user_id, Caller};
use crate::error::AppError;
use crate::services::answer_cache::CachedAnswer;
use crate::services::idempotency::{self, Reply};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_BATCH: usize = 1000;
/// Feature keys one check may ask about, and their length: a catalog has tens of them.
pub const MAX_FEATURES: usize = 100;
pub const MAX_FEATURE_KEY: usize = 64;
/// Users × features one check may answer: bounds the work and the answer (≈ 60 bytes a cell,
/// so at most ≈ 3 MB), whatever the two lists' lengths.
pub const MAX_CELLS: usize = 20_000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/me/entitlements").route(web::get().to(mine)))
        .service(web::resource("/v1/me/entitlement-token").route(web::post().to(token)))
        .service(web::resource("/v1/entitlements/check").route(web::post().to(check)))
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)));
}

fn with_user(user: &str, answer: &CachedAnswer) -> String {
    answer.render(Some(user))
}

/// Seconds a client may reuse the answer: the configured bound, and never past its next change.
fn max_age(state: &AppState, answer: &CachedAnswer, now: DateTime<Utc>) -> i64 {
    let bound = i64::from(state.settings.cache.max_age_seconds);
    match answer.valid_until() {
        Some(until) => (until - now).num_seconds().clamp(0, bound),
        None => bound,
    }
}

fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t == etag
        })
}

/// GET /v1/me/entitlements — the caller's effective entitlements (user token).
async fn mine(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?;
    let now = Utc::now();
    let answer = state.entitlements.of_user(user, now).await?;
    let etag = answer.etag_header();
    let cache_control = format!("private, max-age={}", max_age(&state, &answer, now));
    let not_modified = if_none_match(&req, &etag);
    let mut res = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control));
    if not_modified {
        return Ok(res.finish());
    }
    Ok(res
        .content_type("application/json")
        .body(with_user(user, &answer)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRequest {
    user_ids: Vec<String>,
    /// When given, each answer says only whether these keys are held.
    #[serde(default)]
    features: Option<Vec<String>>,
}

/// The bounds of a check's `features` (see the constants): refused before any work is done.
fn check_features(features: &[String], users: usize) -> Result<(), AppError> {
    if features.len() > MAX_FEATURES {
        return Err(AppError::unprocessable(
            "too_many_features",
            format!(
                "at most {MAX_FEATURES} features per request, got {}",
                features.len()
            ),
        ));
    }
    if let Some(bad) = features.iter().find(|f| {
        f.is_empty() || f.len() > MAX_FEATURE_KEY || !f.bytes().all(|b| b.is_ascii_graphic())
    }) {
        let shown: String = bad.chars().take(MAX_FEATURE_KEY).collect();
        return Err(AppError::unprocessable(
            "invalid_feature",
            format!("feature {shown:?} must be 1-{MAX_FEATURE_KEY} visible ASCII characters"),
        ));
    }
    if users.saturating_mul(features.len()) > MAX_CELLS {
        return Err(AppError::unprocessable(
            "batch_too_large",
            format!(
                "users × features must be at most {MAX_CELLS}, got {users} × {}",
                features.len()
            ),
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct FeatureState {
    granted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
}

/// POST /v1/entitlements/check — answers for up to 1,000 users (service credential).
async fn check(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    caller.service()?;
    idempotency::read_only(&req, || async {
        let ask: CheckRequest = parse_json(&body)?;
        if ask.user_ids.len() > MAX_BATCH {
            return Err(AppError::unprocessable(
                "batch_too_large",
                format!(
                    "at most {MAX_BATCH} user_ids per request, got {}",
                    ask.user_ids.len()
                ),
            ));
        }
        if let Some(bad) = ask.user_ids.iter().find(|u| !valid_user_id(u)) {
            return Err(AppError::unprocessable(
                "invalid_user_id",
                format!("user id {bad:?} must be 1-128 visible ASCII characters"),
            ));
        }
        if let Some(features) = &ask.features {
            check_features(features, ask.user_ids.len())?;
        }
        let now = Utc::now();
        let answers = state.entitlements.of_users(&ask.user_ids, now).await?;
        let Some(features) = &ask.features else {
            let parts: Vec<String> = ask
                .user_ids
                .iter()
                .zip(&answers)
                .map(|(u, a)| with_user(u, a))
                .collect();
            return Ok(Reply {
                status: actix_web::http::StatusCode::OK,
                body: format!("{{\"results\":[{}]}}", parts.join(",")),
            });
        };
        let results: Vec<serde_json::Value> = ask
            .user_ids
            .iter()
            .zip(&answers)
            .map(|(u, a)| {
                let held_now = a.held();
                let states: BTreeMap<&str, FeatureState> = features
                    .iter()
                    .map(|f| {
                        let held = held_now.iter().find(|e| &e.key == f);
                        (
                            f.as_str(),
                            FeatureState {
                                granted: held.is_some(),
                                value: held.and_then(|e| e.value),
                                expires_at: held.and_then(|e| e.expires_at),
                            },
                        )
                    })
                    .collect();
                serde_json::json!({
                    "user_id": u, "features": states, "next_change": a.valid_until(),
                })
            })
            .collect();
        Ok(Reply::ok(serde_json::json!({ "results": results })))
    })
    .await
}

#[derive(Serialize)]
struct TokenReply {
    token: String,
    expires_at: DateTime<Utc>,
    kid: Option<String>,
}

/// POST /v1/me/entitlement-token — a signed, short-lived copy of the caller's answer.
async fn token(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let user = caller.user()?.to_owned();
    idempotency::read_only(&req, || async {
        let now = Utc::now();
        let answer = state.entitlements.of_user(&user, now).await?;
        let (token, expires_at) =
            state
                .signer
                .sign(&user, &answer.held(), answer.valid_until(), now)?;
        Ok(Reply::created(TokenReply {
            token,
            expires_at,
            kid: state.signer.active_kid(),
        }))
    })
    .await
}

/// GET /.well-known/jwks.json — Kopilka's public keys for entitlement tokens (public).
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.signer.jwks())
}
