//! Leases for work one instance at a time should do (the periodic jobs): whoever holds an
//! unexpired lease does it; a holder that dies lets its lease run out and another takes over.

use super::to_db;
use crate::db::schema::job_leases;
use crate::db::DbConn;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// Takes or renews the lease `name` for `holder` until `until`; `true` when `holder` has it.
/// One guarded statement each way, so of instances asking at once exactly one gets it.
pub fn acquire(
    conn: &mut DbConn,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> QueryResult<bool> {
    let row = (
        job_leases::name.eq(name),
        job_leases::holder.eq(holder),
        job_leases::expires_at.eq(to_db(until)),
    );
    if crate::db::insert_or_ignore!(conn, job_leases::table, row)? == 1 {
        return Ok(true);
    }
    let taken = diesel::update(
        job_leases::table.find(name).filter(
            job_leases::holder
                .eq(holder)
                .or(job_leases::expires_at.lt(to_db(now))),
        ),
    )
    .set((
        job_leases::holder.eq(holder),
        job_leases::expires_at.eq(to_db(until)),
    ))
    .execute(conn)?;
    Ok(taken == 1)
}
