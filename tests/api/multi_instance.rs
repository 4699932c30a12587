//! Several instances on one PostgreSQL: a change made through one is seen by the others within
//! a second (LISTEN/NOTIFY), even though each caches answers.

use crate::helpers::{eventually, postgres_url, spawn, spawn_with, Backend};
use std::time::Duration;

#[actix_web::test]
async fn change_through_one_instance_reaches_anothers_cache_within_a_second() {
    if postgres_url().is_none() {
        eprintln!("TEST_POSTGRES_URL not set: multi-instance test not run");
        return;
    }
    let a = spawn(Backend::Postgres).await;
    let b = spawn_with(a.db.clone(), |_| {}).await;
    // b caches "nothing" for the user.
    assert!(b.keys("roamer").await.is_empty());
    assert!(b.keys("roamer").await.is_empty());
    a.grant("roamer", "premium", None).await;
    let seen = eventually(Duration::from_secs(1), || async {
        b.keys("roamer").await == ["premium"]
    })
    .await;
    assert!(
        seen,
        "instance b still serves its stale cached answer after 1 s"
    );
}
