//! Service credentials for messenger servers, never with their key hash.

use crate::db::models::credentials::ServiceCredential;
use crate::db::models::from_db;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Serialize)]
pub struct ServiceCredentialView {
    pub id: String,
    pub name: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ServiceCredential> for ServiceCredentialView {
    fn from(c: &ServiceCredential) -> Self {
        ServiceCredentialView {
            id: c.id.clone(),
            name: c.name.clone(),
            created_by: c.created_by.clone(),
            created_at: from_db(c.created_at),
            revoked_at: c.revoked_at.map(from_db),
        }
    }
}

/// A credential just made: the only answer that carries its API key.
#[derive(Serialize)]
pub struct NewServiceCredentialView {
    #[serde(flatten)]
    pub credential: ServiceCredentialView,
    pub api_key: String,
}
