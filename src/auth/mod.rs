//! Who is calling: a user (JWT from the messenger's identity service) or a messenger server
//! (service credential). Every handler states who may call it through the `Caller` methods.

pub mod caller;
pub mod service_keys;
pub mod user_tokens;

pub use caller::Caller;
pub use service_keys::ServiceKeyCheck;

use serde::Serialize;

/// Roles carried in the user token's `roles` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Creator,
    Moderator,
    Support,
    Finance,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "user" => Role::User,
            "creator" => Role::Creator,
            "moderator" => Role::Moderator,
            "support" => Role::Support,
            "finance" => Role::Finance,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// A user id as the identity service issues it (`sub`): 1–128 visible ASCII characters.
/// Checked at the edge so that ids are safe in logs, URLs and notification payloads.
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}
