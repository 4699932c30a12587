//! Use cases that own transactions and caches; handlers stay thin.

pub mod answer_cache;
pub mod earnings;
pub mod emails;
pub mod entitlements;
pub mod fees;
pub mod idempotency;
pub mod jobs;
pub mod mailer;
pub mod payment_events;
pub mod purchases;
pub mod seed;
pub mod stripe_events;
pub mod tokens;
