//! Kopilka: the monetization backend of a messenger.
//!
//! `http` (routes) → `services` (use cases, caches) → `db` (storage, both backends);
//! `domain` holds the pure rules (entitlements, money); `auth` says who is calling.

// Outside tests a failure is an error value, never a panic (clippy.toml allows them in tests).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod services;
pub mod stripe;
