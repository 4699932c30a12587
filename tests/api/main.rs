//! One integration-test binary: every test spawns the service on its own port with a database
//! of its own — SQLite always, PostgreSQL too when `TEST_POSTGRES_URL` is set.

mod helpers;

mod auth;
mod catalog;
mod entitlements;
mod errors;
mod idempotency;
mod ledger;
mod migrations;
mod multi_instance;
mod openapi;
mod operations;
mod seats;
mod tokens;
mod webhooks;
