//! The webhook load: signed `invoice.paid` events, as Stripe delivers renewals, posted at a
//! fixed concurrency for a fixed time. Each event renews one of the population's monthly
//! subscriptions (see `population::link_to_stripe`) with a new invoice and charge, so each one
//! the service accepts is a committed subscription change, a payment, a balanced ledger posting
//! and a receipt in the outbox.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The population's monthly Premium subscribers (users `i % 10 ∈ {4, 5}`).
fn monthly_subscribers(users: usize) -> Vec<usize> {
    (0..users).filter(|i| matches!(i % 10, 4 | 5)).collect()
}

fn event(run: &str, n: u64, subscriber: usize, renewal: i64, now: i64) -> String {
    // Every pass over the subscribers renews each one for the next month.
    let start = now + renewal * 30 * 86_400;
    serde_json::json!({
        "id": format!("evt_{run}_{n}"),
        "object": "event",
        "type": "invoice.paid",
        "created": now,
        "data": {"object": {
            "id": format!("in_{run}_{n}"),
            "object": "invoice",
            "customer": format!("cus_bench_{subscriber}"),
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": format!("sub_bench_m{subscriber}"),
                "metadata": {"kopilka_subscription_id": format!("sub_m{subscriber}")},
            }},
            "amount_paid": 499,
            "currency": "usd",
            "payments": {"object": "list", "has_more": false, "data": [{
                "object": "invoice_payment",
                "id": format!("inpay_{run}_{n}"),
                "status": "paid",
                "payment": {"type": "charge", "charge": {
                    "id": format!("ch_{run}_{n}"),
                    "object": "charge",
                    "balance_transaction": {"object": "balance_transaction", "fee": 45},
                }},
            }]},
            "lines": {"object": "list", "data": [{"period": {"start": start, "end": start + 30 * 86_400}}]},
        }},
    })
    .to_string()
}

pub struct Outcome {
    pub accepted: u64,
    pub refused: u64,
    pub seconds: f64,
}

/// Posts events to `url` from `concurrency` tasks for `seconds`. `run` makes ids unique per
/// call, so a warm-up and a measurement never deduplicate each other.
pub fn drive(
    url: &str,
    secret: &str,
    users: usize,
    concurrency: usize,
    seconds: u64,
    run: &str,
) -> anyhow::Result<Outcome> {
    let subscribers = Arc::new(monthly_subscribers(users));
    anyhow::ensure!(!subscribers.is_empty(), "no monthly subscribers to renew");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()?;
        let next = Arc::new(AtomicU64::new(0));
        let (accepted, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, next, subscribers) = (client.clone(), next.clone(), subscribers.clone());
            let (accepted, refused) = (accepted.clone(), refused.clone());
            let (url, secret, run) = (url.to_owned(), secret.to_owned(), run.to_owned());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let count = subscribers.len() as u64;
                    let subscriber = subscribers[(n % count) as usize];
                    let now = chrono::Utc::now().timestamp();
                    let body = event(&run, n, subscriber, (n / count) as i64, now);
                    let signature = kopilka::stripe::signature::sign(body.as_bytes(), &secret, now);
                    let sent = client
                        .post(&url)
                        .header("Stripe-Signature", signature)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => {
                            accepted.fetch_add(1, Ordering::Relaxed)
                        }
                        Ok(r) => {
                            if refused.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!(
                                    "refused: {} {}",
                                    r.status(),
                                    r.text().await.unwrap_or_default()
                                );
                            }
                            0
                        }
                        Err(e) => {
                            if refused.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("failed: {e}");
                            }
                            0
                        }
                    };
                }
            }));
        }
        for task in tasks {
            task.await?;
        }
        Ok(Outcome {
            accepted: accepted.load(Ordering::Relaxed),
            refused: refused.load(Ordering::Relaxed),
            seconds: started.elapsed().as_secs_f64(),
        })
    })
}
