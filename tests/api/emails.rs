//! The email outbox: the zero-set-up file transport, and retries when the SMTP server is away.

use crate::billing_helpers::*;
use crate::both;
use crate::helpers::{eventually, Backend};
use reqwest::StatusCode;
use serde_json::json;

both!(
    without_smtp_emails_are_written_as_eml_files,
    |b: Backend| async move {
        let folder =
            std::env::temp_dir().join(format!("kopilka-eml-{}", uuid::Uuid::new_v4().simple()));
        let f = folder.to_string_lossy().into_owned();
        let app = spawn_billing_with(b, move |s| {
            s.email.transport = kopilka::config::EmailTransport::File;
            s.email.folder = f;
        })
        .await;
        let u = user();
        let pm = card(&app).await;
        post_as(&app, &u, "/v1/me/subscriptions", &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm, "email": email_of(&u)}), StatusCode::CREATED).await;
        let written = eventually(WAIT, || {
            let hit = std::fs::read_dir(&folder)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    std::fs::read_to_string(e.path())
                        .is_ok_and(|t| t.contains(&email_of(&u)) && t.contains("Your receipt"))
                });
            async move { hit }
        })
        .await;
        assert!(written, "the receipt is an .eml file in {folder:?}");
    }
);

both!(
    an_unreachable_smtp_server_is_retried_with_backoff,
    |b: Backend| async move {
        // Nothing listens on this port.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let app = spawn_billing_with(b, move |s| s.email.smtp_port = port).await;
        let u = user();
        let pm = card(&app).await;
        post_as(&app, &u, "/v1/me/subscriptions", &json!({"price_id": "price_premium_monthly_usd", "payment_method": pm, "email": email_of(&u)}), StatusCode::CREATED).await;
        let url = app.db.url.clone();
        let to = email_of(&u);
        let retried = eventually(WAIT, || {
            let pool = kopilka::db::connect(&url, 1).unwrap();
            let mails =
                kopilka::db::models::outbox::to_address(&mut pool.get().unwrap(), &to).unwrap();
            let ok = mails.iter().any(|m| {
                m.status == "pending"
                    && m.attempts >= 1
                    && m.last_error.is_some()
                    && m.next_attempt_at > chrono::Utc::now().naive_utc()
            });
            async move { ok }
        })
        .await;
        assert!(retried, "the receipt waits for its next attempt");
    }
);
