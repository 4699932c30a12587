//! Background work, after commit and off the request path: the email outbox, releasing
//! creator earnings after the hold period, trial-ending reminders, Stripe's fees on payments,
//! refunds owed by removed packs and the purge of their images, and fetching Stripe events
//! whose delivery failed.

use crate::app::AppState;
use crate::db::models::subscriptions::Subscription;
use crate::db::models::{job_leases, outbox};
use crate::db::{self};
use crate::error::AppError;
use crate::services::billing::{earnings, fees, stripe_events, subscription_events};
use crate::services::mailer::Mail;

/// Payments released per transaction.
const RELEASE_BATCH: i64 = 500;
use actix_web::web;
use chrono::{Duration, SubsecRound, Utc};
use std::sync::Arc;
use std::time::Instant;

pub fn spawn(state: web::Data<AppState>, mail: Arc<Mail>) {
    actix_web::rt::spawn(async move {
        let every =
            std::time::Duration::from_millis(state.settings.billing.jobs_interval_ms.max(10));
        let sync_every =
            std::time::Duration::from_secs(state.settings.stripe.sync_interval_seconds);
        let maintain_every =
            std::time::Duration::from_secs(state.settings.billing.maintenance_interval_seconds);
        let mut last_sync = Instant::now();
        let mut last_maintenance: Option<Instant> = None;
        let mut last_gc: Option<Instant> = None;
        let mut tick = tokio::time::interval(every);
        // Who this instance is to the others sharing the database (claims and leases).
        let me = crate::db::models::new_id("instance");
        let mut lease_held_until: Option<Instant> = None;
        loop {
            tick.tick().await;
            if let Err(e) = send_outbox(&state, &mail, &me).await {
                tracing::warn!(error = %e, "outbox");
            }
            if last_maintenance.is_some_and(|t| t.elapsed() < maintain_every) {
                continue;
            }
            last_maintenance = Some(Instant::now());
            // One instance at a time runs the periodic jobs; the lease outlives a run, and a
            // holder that stops renewing it is replaced once it has run out.
            let lease = Duration::seconds(
                i64::try_from(maintain_every.as_secs()).unwrap_or(60).max(1) * 3 + 60,
            );
            let lease_std = lease.to_std().unwrap_or(std::time::Duration::from_secs(60));
            // Renewed only once a third of it has passed: a write per run would cost every
            // instance a transaction each time the jobs look (every 50 ms in tests).
            let renew = lease_held_until.is_none_or(|until: Instant| {
                until.saturating_duration_since(Instant::now()) < lease_std * 2 / 3
            });
            if renew {
                match lead(&state, &me, lease).await {
                    Ok(true) => lease_held_until = Some(Instant::now() + lease_std),
                    Ok(false) => {
                        lease_held_until = None;
                        continue;
                    }
                    Err(e) => {
                        lease_held_until = None;
                        tracing::warn!(error = %e, "jobs lease");
                        continue;
                    }
                }
            }
            if let Err(e) = release_and_remind(&state).await {
                tracing::warn!(error = %e, "earnings release / trial reminders");
            }
            if let Err(e) = crate::services::idempotency::purge(&state.pool).await {
                tracing::warn!(error = %e, "expired idempotency keys");
            }
            if let Err(e) = checkpoint_balances(&state).await {
                tracing::warn!(error = %e, "ledger balance checkpoints");
            }
            // Listing the whole store is not free (S3 bills it): hourly is enough.
            if last_gc
                .is_none_or(|at: Instant| at.elapsed() >= std::time::Duration::from_secs(3600))
            {
                last_gc = Some(Instant::now());
                if let Err(e) = collect_blobs(&state).await {
                    tracing::warn!(error = %format!("{e:#}"), "sticker blob garbage collection");
                }
            }
            if state.stripe.is_some() {
                if let Err(e) = fees::settle_pending(&state, 100).await {
                    tracing::warn!(error = %e, "Stripe fees");
                }
                let lead = Duration::seconds(state.settings.billing.plan_change_lead_seconds);
                if let Err(e) =
                    crate::services::billing::purchases::apply_due_downgrades(&state, lead).await
                {
                    tracing::warn!(error = %e, "scheduled downgrades");
                }
            }
            if let Err(e) = crate::services::takedowns::refund_removed(&state).await {
                tracing::warn!(error = %e, "refunds of removed packs");
            }
            if let Err(e) = crate::services::packs::archive_missing(&state).await {
                tracing::warn!(error = %e, "archives of published packs");
            }
            if let Err(e) = crate::services::takedowns::purge_removed(&state).await {
                tracing::warn!(error = %e, "purge of removed packs' images");
            }
            if state.stripe.is_some() && !sync_every.is_zero() && last_sync.elapsed() >= sync_every
            {
                last_sync = Instant::now();
                if let Err(e) = stripe_events::sync(&state).await {
                    tracing::warn!(error = %e, "stripe sync");
                }
            }
        }
    });
}

/// Blobs no sticker names, older than a day (a blob is written before its row commits, so a
/// younger one may belong to an upload in flight), are deleted, at most 1,000 a run.
async fn collect_blobs(state: &AppState) -> anyhow::Result<usize> {
    let referenced = db::run(&state.pool, |conn| {
        Ok(crate::db::models::packs::Sticker::referenced_blobs(conn)?)
    })
    .await?;
    let referenced: std::collections::HashSet<String> = referenced
        .into_iter()
        .flat_map(|(image, thumbnail)| [image, thumbnail])
        .collect();
    state
        .blobs
        .collect_garbage(&referenced, Utc::now() - Duration::days(1), 1000)
        .await
}

/// Whether this instance holds (took or renewed) the periodic jobs' lease.
async fn lead(state: &AppState, me: &str, lease: Duration) -> Result<bool, AppError> {
    let me = me.to_owned();
    db::run(&state.pool, move |conn| {
        let now = Utc::now();
        Ok(job_leases::acquire(
            conn,
            "periodic_jobs",
            &me,
            now,
            now + lease,
        )?)
    })
    .await
}

/// How long a claimed email is this instance's to send: longer than a whole batch can take
/// (`OUTBOX_BATCH` emails at the SMTP timeout of 10 s each), so no other instance claims an
/// email while it is still being sent.
const OUTBOX_LEASE_SECONDS: i64 = 600;
const OUTBOX_BATCH: i64 = 50;

/// Sends what is due and this instance claimed, a batch at a time until nothing is; a failure
/// is retried with exponential backoff, then marked failed. Each batch's outcome is written in
/// one transaction: at webhook rates, a commit per email would cost as much as the events did.
pub async fn send_outbox(state: &AppState, mail: &Arc<Mail>, me: &str) -> Result<usize, AppError> {
    const BATCH: i64 = OUTBOX_BATCH;
    let max = state.settings.email.max_attempts;
    let mut sent = 0;
    loop {
        let claimant = me.to_owned();
        let due = db::transaction(&state.pool, move |conn| {
            let now = Utc::now();
            let until = (now + Duration::seconds(OUTBOX_LEASE_SECONDS)).trunc_subsecs(3);
            Ok(outbox::claim_due(conn, &claimant, now, until, BATCH)?)
        })
        .await?;
        let full = due.len() as i64 == BATCH;
        let m = mail.clone();
        // (id, attempts so far, the error if sending failed)
        let results = web::block(move || {
            due.into_iter()
                .map(|e| {
                    let attachment = e.attachment_name.as_deref().zip(e.attachment.as_deref());
                    let result = m.send(
                        &e.dedupe_key,
                        &e.to_address,
                        &e.subject,
                        &e.body,
                        attachment,
                    );
                    (e.id, e.attempts + 1, result.err())
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
        sent += results.len();
        db::transaction(&state.pool, move |conn| {
            let ok: Vec<String> = results
                .iter()
                .filter(|(_, _, error)| error.is_none())
                .map(|(id, ..)| id.clone())
                .collect();
            if !ok.is_empty() {
                outbox::mark_sent(conn, &ok)?;
            }
            for (id, attempts, error) in &results {
                if let Some(error) = error {
                    let next = (*attempts < max)
                        .then(|| Utc::now() + Duration::seconds(1 << (*attempts).min(12)));
                    outbox::mark_failed(conn, id, error, next)?;
                }
            }
            Ok(())
        })
        .await?;
        if !full {
            return Ok(sent);
        }
    }
}

/// Moves every account's balance checkpoint to `SETTLED_AFTER_MINUTES` ago, a batch of
/// accounts per transaction until none is behind.
async fn checkpoint_balances(state: &AppState) -> Result<(), AppError> {
    const BATCH: i64 = 200;
    let through = crate::db::models::to_db(
        Utc::now() - Duration::minutes(crate::db::models::ledger::SETTLED_AFTER_MINUTES),
    );
    loop {
        let moved = db::transaction(&state.pool, move |conn| {
            Ok(crate::db::models::ledger::checkpoint(conn, through, BATCH)?)
        })
        .await?;
        if moved < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            return Ok(());
        }
    }
}

async fn release_and_remind(state: &AppState) -> Result<(), AppError> {
    let hold = state.settings.billing.hold_days;
    let remind = state.settings.billing.trial_reminder_days;
    // In batches, each its own short transaction, until nothing is due.
    loop {
        let released = db::transaction(&state.pool, move |conn| {
            earnings::release_due(conn, hold, Utc::now(), RELEASE_BATCH)
        })
        .await?;
        if released < usize::try_from(RELEASE_BATCH).unwrap_or(usize::MAX) {
            break;
        }
    }
    db::transaction(&state.pool, move |conn| {
        for sub in Subscription::trials_ending_before(conn, Utc::now() + Duration::days(remind))? {
            subscription_events::trial_reminder(conn, &sub)?;
        }
        Ok(())
    })
    .await
}
