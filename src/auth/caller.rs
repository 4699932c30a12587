use super::user_tokens::UserClaims;
use super::{Role, ServiceKeyCheck};
use crate::app::AppState;
use crate::domain::regions::Region;
use crate::error::AppError;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub enum Caller {
    User {
        id: String,
        roles: Arc<[Role]>,
        /// From the token's `country` claim, when it has one.
        country: Option<Region>,
    },
    Service {
        credential_id: String,
    },
}

impl Caller {
    /// Any signed-in user; returns their id.
    pub fn user(&self) -> Result<&str, AppError> {
        match self {
            Caller::User { id, .. } => Ok(id),
            Caller::Service { .. } => Err(AppError::forbidden(
                "this route is for users; service credentials cannot call it",
            )),
        }
    }

    /// A user holding `role` (admins hold every role).
    pub fn staff(&self, role: Role) -> Result<&str, AppError> {
        let id = self.user()?;
        match self {
            Caller::User { roles, .. } if roles.contains(&role) || roles.contains(&Role::Admin) => {
                Ok(id)
            }
            _ => Err(AppError::forbidden(format!(
                "this route needs the {} role",
                serde_json::to_value(role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ))),
        }
    }

    /// Where the user is, by their token; `None` for services and tokens without `country`.
    pub fn country(&self) -> Option<Region> {
        match self {
            Caller::User { country, .. } => *country,
            Caller::Service { .. } => None,
        }
    }

    /// A messenger server with a service credential.
    pub fn service(&self) -> Result<&str, AppError> {
        match self {
            Caller::Service { credential_id } => Ok(credential_id),
            Caller::User { .. } => {
                Err(AppError::forbidden("this route needs a service credential"))
            }
        }
    }

    /// A stable name for scoping idempotency keys and audit fields.
    pub fn scope(&self) -> String {
        match self {
            Caller::User { id, .. } => format!("user:{id}"),
            Caller::Service { credential_id } => format!("service:{credential_id}"),
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, AppError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| AppError::unauthenticated("missing Authorization: Bearer credentials"))?;
    let value = header
        .to_str()
        .map_err(|_| AppError::unauthenticated("malformed Authorization header"))?;
    value
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AppError::unauthenticated("Authorization must be 'Bearer <token>'"))
}

/// Keeps the user's country on their row, so a gift to them can be checked against a pack's
/// sale regions: once per token and process (a token is verified once, then remembered), so
/// the hot path pays an atomic load. A lost database only delays it to the next request.
async fn record_country(state: &AppState, claims: &Arc<UserClaims>, country: Region) {
    if claims.country_recorded.load(Ordering::Relaxed) {
        return;
    }
    let id = claims.sub.clone();
    let written = crate::db::run(&state.pool, move |conn| {
        Ok(crate::db::models::users::set_country(conn, &id, country)?)
    })
    .await;
    match written {
        Ok(()) => claims.country_recorded.store(true, Ordering::Relaxed),
        Err(e) => tracing::debug!(error = %e, "user country not recorded yet"),
    }
}

impl FromRequest for Caller {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Caller, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
            let token = token?;
            if super::service_keys::looks_like_key(&token) {
                match state
                    .service_keys
                    .check(&state.pool, &state.metrics.service_key_reloads, &token)
                    .await?
                {
                    ServiceKeyCheck::Live(credential_id) => Ok(Caller::Service { credential_id }),
                    ServiceKeyCheck::Unknown => Err(AppError::unauthenticated(
                        "unknown or revoked service credential",
                    )),
                }
            } else {
                let claims = state.user_tokens.verify(&token)?;
                if let Some(country) = claims.country {
                    record_country(&state, &claims, country).await;
                }
                Ok(Caller::User {
                    id: claims.sub.clone(),
                    roles: claims.roles.clone(),
                    country: claims.country,
                })
            }
        })
    }
}
