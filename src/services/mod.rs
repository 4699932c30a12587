//! Use cases that own transactions and caches; handlers stay thin.

pub mod answer_cache;
pub mod entitlements;
pub mod idempotency;
pub mod seed;
pub mod stripe_events;
pub mod tokens;
