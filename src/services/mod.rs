//! Use cases that own transactions and caches; handlers stay thin.

pub mod answer_cache;
pub mod billing;
pub mod emails;
pub mod entitlements;
pub mod idempotency;
pub mod jobs;
pub mod mailer;
pub mod seed;
pub mod tokens;
