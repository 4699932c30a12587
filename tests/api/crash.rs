//! Killed mid-write and restarted, the service loses and doubles nothing: signed renewals are
//! delivered from several tasks while the process is killed with SIGKILL twice; Stripe then
//! delivers every event again (as it does until it gets a 2xx). Each event ends as exactly
//! one stored event, one payment and one balanced ledger posting.

use crate::helpers::{eventually, Backend, TestDb};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use kopilka::stripe::signature::sign;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "whsec_crash";
const EVENTS: usize = 1_000;

/// `n` monthly subscribers linked to Stripe, as the webhook benchmark's population.
fn seed(url: &str, n: usize) {
    let pool = kopilka::db::connect(url, 1).unwrap();
    let mut conn = pool.get().unwrap();
    kopilka::db::migrate(&mut conn).unwrap();
    kopilka::services::seed::demo_catalog(&mut conn).unwrap();
    drop(conn);
    let mut pg = PgConnection::establish(url).unwrap();
    let last = n - 1;
    pg.batch_execute(&format!(
        "INSERT INTO users (id, created_at, email, stripe_customer_id)
           SELECT 'u' || i, now(), 'u' || i || '@crash.example', 'cus_crash_' || i
           FROM generate_series(0, {last}) i;
         INSERT INTO subscriptions (id, user_id, product_id, price_id, status, quantity,
             current_period_start, current_period_end, cancel_at_period_end,
             stripe_subscription_id, created_at, updated_at)
           SELECT 'sub_' || i, 'u' || i, 'prod_premium', 'price_premium_monthly_usd', 'active', 1,
                  now() - interval '10 days', now() + interval '20 days', FALSE,
                  'sub_crash_' || i, now(), now()
           FROM generate_series(0, {last}) i;"
    ))
    .unwrap();
}

/// A renewal of subscriber `i`, in today's shape.
fn renewal(i: usize, now: i64) -> String {
    let start = now + 20 * 86_400;
    let event = serde_json::json!({
        "id": format!("evt_crash_{i}"), "object": "event", "type": "invoice.paid", "created": now,
        "data": {"object": {
            "id": format!("in_crash_{i}"), "object": "invoice", "customer": format!("cus_crash_{i}"),
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": format!("sub_crash_{i}"),
                "metadata": {"kopilka_subscription_id": format!("sub_{i}")},
            }},
            "amount_paid": 499, "currency": "usd",
            "payments": {"object": "list", "has_more": false, "data": [{
                "object": "invoice_payment", "id": format!("inpay_crash_{i}"), "status": "paid",
                "payment": {"type": "charge", "charge": {"id": format!("ch_crash_{i}"), "object": "charge",
                    "balance_transaction": {"object": "balance_transaction", "fee": 45}}},
            }]},
            "lines": {"object": "list", "data": [{"object": "line_item",
                "period": {"start": start, "end": start + 30 * 86_400}}]},
        }},
    });
    crate::stripe_shapes::assert_stripe_shaped(&event);
    event.to_string()
}

fn start(url: &str, port: u16, mail: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kopilka"))
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("KOPILKA__HTTP__PORT", port.to_string())
        .env("KOPILKA__STRIPE__WEBHOOK_SECRETS", SECRET)
        .env("KOPILKA__EMAIL__FOLDER", mail)
        .env("KOPILKA__DATABASE__POOL_SIZE", "4")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the service")
}

async fn ready(client: &reqwest::Client, base: &str) -> bool {
    eventually(Duration::from_secs(30), || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await
}

/// Delivers `events` from 8 tasks; returns how many were acknowledged (2xx).
async fn deliver_all(client: &reqwest::Client, base: &str, events: Arc<Vec<String>>) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url, events, next, acked) = (
            client.clone(),
            format!("{base}/v1/webhooks/stripe"),
            events.clone(),
            next.clone(),
            acked.clone(),
        );
        tasks.push(actix_web::rt::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(body) = events.get(i) else { break };
                let sig = sign(body.as_bytes(), SECRET, chrono::Utc::now().timestamp());
                let res = client
                    .post(&url)
                    .header("Stripe-Signature", sig)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                if res.is_ok_and(|r| r.status().is_success()) {
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    acked.load(Ordering::SeqCst)
}

#[actix_web::test]
#[cfg_attr(
    not(kopilka_postgres_tests),
    ignore = "TEST_POSTGRES_URL was not set when the tests were built"
)]
async fn killed_twice_mid_delivery_then_redelivered_every_event_is_applied_exactly_once() {
    let db = TestDb::new(Backend::Postgres);
    seed(&db.url, EVENTS);
    let mail =
        std::env::temp_dir().join(format!("kopilka-crash-{}", uuid::Uuid::new_v4().simple()));
    let mail = mail.to_string_lossy().into_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let events: Arc<Vec<String>> = Arc::new((0..EVENTS).map(|i| renewal(i, now)).collect());

    let mut service = start(&db.url, port, &mail);
    assert!(ready(&client, &base).await, "the service starts");
    // Deliveries run while the service is killed twice, each time mid-stream.
    let delivering = {
        let (client, base, events) = (client.clone(), base.clone(), events.clone());
        actix_web::rt::spawn(async move { deliver_all(&client, &base, events).await })
    };
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        service.kill().unwrap();
        service.wait().unwrap();
        service = start(&db.url, port, &mail);
        assert!(ready(&client, &base).await, "the service restarts");
    }
    let first = delivering.await.unwrap();
    // Stripe delivers again whatever it did not see acknowledged; here: everything.
    let second = deliver_all(&client, &base, events.clone()).await;
    service.kill().unwrap();
    service.wait().unwrap();
    let _ = std::fs::remove_dir_all(&mail);
    assert_eq!(
        second, EVENTS,
        "every redelivery acknowledged (first pass: {first})"
    );

    let mut pg = PgConnection::establish(&db.url).unwrap();
    let count = |sql: &str, pg: &mut PgConnection| -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(sql).get_result::<N>(pg).unwrap().n
    };
    let n = EVENTS as i64;
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM stripe_events WHERE id LIKE 'evt_crash_%'",
            &mut pg
        ),
        n
    );
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM payments WHERE stripe_charge_id LIKE 'ch_crash_%'",
            &mut pg
        ),
        n
    );
    assert_eq!(count("SELECT count(*) AS n FROM ledger_transactions WHERE source_key LIKE 'charge:ch_crash_%'", &mut pg), n);
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM outbox_emails WHERE dedupe_key LIKE 'receipt:ch_crash_%'",
            &mut pg
        ),
        n
    );
    crate::billing_helpers::assert_ledger_invariants(&db.url);
}
