//! Grants: entitlements support gives outside a purchase (lifetime grandfathering, a gesture),
//! and their revocation. A grant names a defined entitlement (with a value for quotas) or a
//! sticker pack.

use crate::app::AppState;
use crate::db::models::catalog::{EntitlementDefinition, Product};
use crate::db::models::grants::{Grant, NewGrant};
use crate::db::models::{to_db, users};
use crate::db::DbConn;
use crate::domain::states::ProductKind;
use crate::error::AppError;
use crate::services::changes;
use chrono::{DateTime, Utc};

/// A grant as support asks for it (shapes already checked at the edge).
pub struct GrantRequest {
    pub user_id: String,
    pub entitlement_key: String,
    pub value: Option<i64>,
    pub reason: String,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub granted_by: String,
}

fn check_key(conn: &mut DbConn, key: &str, value: Option<i64>) -> Result<(), AppError> {
    if let Some(pack) = key.strip_prefix("sticker_pack:") {
        return match Product::find(conn, pack)? {
            Some(p) if p.kind == ProductKind::StickerPack && value.is_none() => Ok(()),
            _ => Err(AppError::unprocessable(
                "unknown_entitlement",
                format!("no sticker pack {pack:?}"),
            )),
        };
    }
    let def = EntitlementDefinition::find(conn, key)?.ok_or_else(|| {
        AppError::unprocessable(
            "unknown_entitlement",
            format!("entitlement {key:?} is not defined"),
        )
    })?;
    if value.is_some_and(|v| !crate::domain::limits::valid_quota(v)) {
        return Err(crate::services::catalog::quota_out_of_range(key));
    }
    if (def.kind == "quota") != value.is_some() {
        return Err(AppError::unprocessable(
            "invalid_entitlement",
            format!(
                "{key} is {}: quotas need a value, booleans take none",
                def.kind
            ),
        ));
    }
    Ok(())
}

pub async fn create(state: &AppState, new: GrantRequest) -> Result<Grant, AppError> {
    if new.expires_at.is_some_and(|e| e <= new.starts_at) {
        return Err(AppError::unprocessable(
            "invalid_period",
            "expires_at must be after starts_at",
        ));
    }
    changes::transaction(state, move |conn, changed| {
        check_key(conn, &new.entitlement_key, new.value)?;
        users::ensure(conn, &new.user_id)?;
        let grant = Grant::create(
            conn,
            NewGrant {
                user_id: new.user_id,
                entitlement_key: new.entitlement_key,
                value: new.value,
                reason: new.reason,
                granted_by: new.granted_by,
                starts_at: to_db(new.starts_at),
                expires_at: new.expires_at.map(to_db),
            },
        )?;
        changed.user(grant.user_id.clone());
        Ok(grant)
    })
    .await
}

/// Revokes at once; revoking twice keeps the first revocation.
pub async fn revoke(state: &AppState, id: &str, by: &str) -> Result<Grant, AppError> {
    let (id, by) = (id.to_owned(), by.to_owned());
    changes::transaction(state, move |conn, changed| {
        Grant::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("grant {id}")))?;
        let grant = Grant::revoke(conn, &id, &by)?;
        changed.user(grant.user_id.clone());
        Ok(grant)
    })
    .await
}
