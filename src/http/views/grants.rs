//! Grants: access support gave outside a purchase.

use crate::db::models::from_db;
use crate::db::models::grants::Grant;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Serialize)]
pub struct GrantView {
    pub id: String,
    pub user_id: String,
    pub entitlement_key: String,
    pub value: Option<i64>,
    pub reason: String,
    pub granted_by: String,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Grant> for GrantView {
    fn from(g: &Grant) -> Self {
        GrantView {
            id: g.id.clone(),
            user_id: g.user_id.clone(),
            entitlement_key: g.entitlement_key.clone(),
            value: g.value,
            reason: g.reason.clone(),
            granted_by: g.granted_by.clone(),
            starts_at: from_db(g.starts_at),
            expires_at: g.expires_at.map(from_db),
            revoked_at: g.revoked_at.map(from_db),
            revoked_by: g.revoked_by.clone(),
            created_at: from_db(g.created_at),
        }
    }
}
