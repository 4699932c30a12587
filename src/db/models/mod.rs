//! Rows and the SQL that reads and writes them, next to each other (one file per concept).

pub mod catalog;
pub mod creators;
pub mod credentials;
pub mod donations;
pub mod grants;
pub mod idempotency;
pub mod job_leases;
pub mod ledger;
pub mod orders;
pub mod outbox;
pub mod packs;
pub mod payments;
pub mod payouts;
pub mod revisions;
pub mod signing_keys;
pub mod stripe_events;
pub mod subscriptions;
pub mod takedowns;
pub mod tax_profiles;
pub mod users;

use chrono::{DateTime, NaiveDateTime, Utc};

/// Rows keyed by creator, read `creators` 1,000 at a time (bounded statements, whatever the
/// number of creators): `load` reads one chunk's rows.
pub fn by_creator<T>(
    creators: &[String],
    mut load: impl FnMut(&[String]) -> diesel::QueryResult<Vec<T>>,
    creator_of: impl Fn(&T) -> &str,
) -> diesel::QueryResult<std::collections::BTreeMap<String, T>> {
    let mut found = std::collections::BTreeMap::new();
    for chunk in creators.chunks(1000) {
        for row in load(chunk)? {
            found.insert(creator_of(&row).to_owned(), row);
        }
    }
    Ok(found)
}

/// Timestamps are stored as UTC without a zone (the one timestamp type both backends share),
/// at microsecond precision (PostgreSQL's), so both backends give back what they were given.
pub fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    use chrono::SubsecRound;
    t.trunc_subsecs(6).naive_utc()
}

pub fn from_db(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A new application-generated id with a readable prefix (`sub_…`, `ord_…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
