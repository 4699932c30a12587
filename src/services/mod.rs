//! Use cases that own transactions and caches; handlers stay thin.

pub mod answer_cache;
pub mod billing;
pub mod blob_access;
pub mod blobs;
pub mod catalog;
pub mod changes;
pub mod creators;
pub mod emails;
pub mod entitlements;
pub mod exports;
pub mod grants;
pub mod hand_made;
pub mod idempotency;
pub mod jobs;
pub mod mailer;
pub mod pack_archive;
pub mod pack_import;
pub mod pack_revisions;
pub mod packs;
pub mod payouts;
pub mod seats;
pub mod seed;
pub mod sticker_images;
pub mod takedowns;
pub mod tokens;
