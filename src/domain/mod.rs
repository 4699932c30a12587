//! Pure types and rules: no I/O here.

pub mod bank_accounts;
pub mod csv;
pub mod entitlements;
pub mod ledger;
pub mod limits;
pub mod money;
pub mod pack_text;
pub mod regions;
pub mod sepa;
pub mod states;
pub mod tax;
