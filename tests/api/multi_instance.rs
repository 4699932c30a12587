//! Several instances on one PostgreSQL: a change made through one is seen by the others within
//! a second (LISTEN/NOTIFY), even though each caches answers.

use crate::helpers::{eventually, spawn, spawn_with, Backend};
use std::time::Duration;

#[actix_web::test]
#[cfg_attr(
    not(kopilka_postgres_tests),
    ignore = "TEST_POSTGRES_URL was not set when the tests were built"
)]
async fn change_through_one_instance_reaches_anothers_cache_within_a_second() {
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

/// Two instances on one PostgreSQL share the outbox: every queued email is sent exactly once
/// (each is claimed by one instance), each with a Message-ID derived from its outbox key.
#[actix_web::test]
#[cfg_attr(
    not(kopilka_postgres_tests),
    ignore = "TEST_POSTGRES_URL was not set when the tests were built"
)]
async fn two_instances_send_each_queued_email_once() {
    let parts = crate::real_parts::real_parts();
    let smtp = move |s: &mut kopilka::config::Settings| {
        s.email.transport = kopilka::config::EmailTransport::Smtp;
        s.email.smtp_host = "127.0.0.1".into();
        s.email.smtp_port = parts.smtp_port;
        s.email.smtp_security = "none".into();
        s.billing.jobs_interval_ms = 20;
        s.billing.maintenance_interval_seconds = 1;
    };
    let a = spawn_with(
        std::sync::Arc::new(crate::helpers::TestDb::new(Backend::Postgres)),
        smtp,
    )
    .await;
    let b = spawn_with(a.db.clone(), smtp).await;
    // Queued while both run: they race for every batch.
    const N: usize = 400;
    let to = format!("shared-{}@example.com", uuid::Uuid::new_v4().simple());
    {
        use diesel::prelude::*;
        use kopilka::db::schema::outbox_emails as o;
        let mut conn = diesel::PgConnection::establish(&a.db.url).unwrap();
        let now = chrono::Utc::now().naive_utc();
        for chunk in (0..N).collect::<Vec<_>>().chunks(100) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|i| {
                    (
                        o::id.eq(format!("eml_shared_{i}")),
                        o::dedupe_key.eq(format!("shared:{to}:{i}")),
                        o::to_address.eq(to.clone()),
                        o::kind.eq("test"),
                        o::subject.eq(format!("Shared {i}")),
                        o::body.eq("one of many"),
                        o::status.eq("pending"),
                        o::attempts.eq(0),
                        o::next_attempt_at.eq(now),
                        o::created_at.eq(now),
                    )
                })
                .collect();
            diesel::insert_into(o::table)
                .values(&rows)
                .execute(&mut conn)
                .unwrap();
        }
    }
    let sent = eventually(Duration::from_secs(120), || async {
        crate::real_parts::mails_to(&to).len() >= N
    })
    .await;
    let mails = crate::real_parts::mails_to(&to);
    assert!(sent, "{} of {N} sent", mails.len());
    // A little longer: a duplicate would arrive now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = crate::real_parts::mails_to(&to);
    let mut subjects: Vec<&str> = mails.iter().map(|(s, _)| s.as_str()).collect();
    subjects.sort_unstable();
    let before = subjects.len();
    subjects.dedup();
    assert_eq!((before, subjects.len()), (N, N), "each email once");
    // Message-IDs: one per email, stable for its key.
    let ids: std::collections::BTreeSet<String> = mails
        .iter()
        .filter_map(|(_, text)| {
            text.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .map(|l| l[11..].trim().to_owned())
        })
        .collect();
    assert_eq!(ids.len(), N, "every email has its own Message-ID");
    // One instance leads the periodic jobs.
    {
        use diesel::prelude::*;
        use kopilka::db::schema::job_leases as l;
        let pool = kopilka::db::connect(&a.db.url, 1).unwrap();
        let holders: Vec<String> = l::table
            .select(l::holder)
            .load(&mut pool.get().unwrap())
            .unwrap();
        assert_eq!(holders.len(), 1, "{holders:?}");
    }
    drop(b);
}
