//! One integration-test binary: every test spawns the service on its own port with a database
//! of its own — SQLite always, PostgreSQL too when `TEST_POSTGRES_URL` is set.

mod billing_helpers;
mod helpers;
mod real_parts;

mod auth;
mod authz_matrix;
mod billing;
mod bounds;
mod catalog;
mod connect_stub;
mod crash;
mod database_loss;
mod emails;
mod entitlements;
mod errors;
mod exports;
mod fees;
mod idempotency;
mod ledger;
mod migrations;
mod multi_instance;
mod openapi;
mod operations;
mod pack_reach;
mod packs;
mod payout_connect;
mod payout_tax;
mod payouts;
mod revisions;
mod seats;
mod store;
mod stripe_requests;
mod stripe_shapes;
mod stripe_today;
mod takedowns;
mod tokens;
mod upload_attacks;
mod webhooks;
