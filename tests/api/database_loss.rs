//! Losing the database is a 503 the client may retry, never a 500: PostgreSQL's backends are
//! killed (`pg_terminate_backend`, as a failover or an operator would) while requests run.

use crate::helpers::{spawn_with, Backend, TestDb};
use diesel::prelude::*;
use diesel::PgConnection;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[actix_web::test]
#[cfg_attr(
    not(kopilka_postgres_tests),
    ignore = "TEST_POSTGRES_URL was not set when the tests were built"
)]
async fn killed_database_connections_answer_503_with_retry_after_then_recover() {
    let db = Arc::new(TestDb::new(Backend::Postgres));
    let (admin, name) = db
        .postgres_admin()
        .map(|(a, n)| (a.to_owned(), n.to_owned()))
        .unwrap();
    // Every request reaches the database: no cached answers.
    let app = spawn_with(db.clone(), |s| s.cache.enabled = false).await;
    let token = app.token("survivor", &[]);
    let ok = app.get("/v1/me/entitlements", &token).await;
    assert_eq!(ok.status(), StatusCode::OK);

    // The killer: every backend of the test's database, again and again for two seconds.
    let killer = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&admin).unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        let mut kills = 0usize;
        while Instant::now() < until {
            let killed: Vec<bool> = diesel::sql_query(format!(
                "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .load::<Killed>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|k| k.killed)
            .collect();
            kills += killed.len();
            std::thread::sleep(Duration::from_millis(20));
        }
        kills
    });
    // Load: readers and writers from several clients at once, while the killer runs.
    let mut clients = Vec::new();
    for i in 0..6 {
        let (client, base, token) = (app.client.clone(), app.address.clone(), token.clone());
        clients.push(actix_web::rt::spawn(async move {
            let mut answers = Vec::new();
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                let res = if i % 2 == 0 {
                    client
                        .get(format!("{base}/v1/me/entitlements"))
                        .bearer_auth(&token)
                        .send()
                        .await
                } else {
                    client.get(format!("{base}/readyz")).send().await
                };
                let res = res.unwrap();
                let status = res.status();
                let retry_after = res.headers().get("retry-after").is_some();
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                answers.push((status, retry_after, body));
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    let kills = killer.join().unwrap();
    assert!(kills > 0, "the killer found no backend to kill");
    for (status, retry_after, body) in &answers {
        assert!(
            *status == StatusCode::OK || *status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} {body}"
        );
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["code"], "database_unavailable", "{body}");
            assert!(retry_after, "a 503 says when to retry: {body}");
        }
    }
    // Once the database is back, so is the service.
    let back = crate::helpers::eventually(Duration::from_secs(30), || async {
        app.get("/v1/me/entitlements", &token).await.status() == StatusCode::OK
    })
    .await;
    assert!(back, "the service recovers after the database does");
}

#[derive(QueryableByName)]
struct Killed {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    killed: bool,
}
