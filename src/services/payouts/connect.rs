//! Stripe Connect payouts: a creator's Express account (onboarded through Stripe's own
//! pages), kept current by its `account.updated` events; a run's Connect lines are paid by one
//! transfer each, and a transfer we reverse (`transfer.reversed`) returns the money.

use super::outcomes::paid_email;
use super::runs::post;
use crate::app::AppState;
use crate::db;
use crate::db::models::creators::Creator;
use crate::db::models::payouts::{audit, audit_creator, BankAccount, ConnectAccount, Line};
use crate::db::models::{outbox, to_db};
use crate::db::DbConn;
use crate::domain::ledger::PayoutStep;
use crate::error::AppError;
use crate::stripe::gateway::{Gateway, GatewayError};
use crate::stripe::objects::{Account, Transfer};
use chrono::{Duration, Utc};

/// Transfers one `send` makes at most: the rest wait for the next `send` (bounded work).
pub const TRANSFERS_PER_REQUEST: usize = 200;

fn gateway(state: &AppState) -> Result<&Gateway, AppError> {
    state.stripe.as_ref().ok_or_else(|| {
        AppError::client(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "stripe_not_configured",
            "Stripe is not configured on this service",
        )
    })
}

fn stripe_error(e: GatewayError) -> AppError {
    match e {
        GatewayError::Refused { code, message, .. } => AppError::conflict(
            "stripe_refused",
            format!(
                "Stripe refused: {message} ({})",
                code.unwrap_or_else(|| "no code".into())
            ),
        ),
        GatewayError::Unavailable(why) => {
            tracing::warn!(%why, "Stripe unavailable");
            AppError::client(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "stripe_unavailable",
                "Stripe could not be reached; try again",
            )
        }
    }
}

/// The creator's Connect account and, when asked, a fresh onboarding link.
pub struct Setup {
    pub account: ConnectAccount,
    pub link: Option<crate::stripe::objects::AccountLink>,
}

/// `POST /v1/creators/me/payout-account`: creates the creator's Express account the first
/// time (Stripe's idempotency key is the creator's, so racing requests make one account),
/// chooses Connect as their payout method and returns a fresh onboarding link. Switching from
/// bank transfer cools off like a change of bank details, and is emailed.
pub async fn setup(state: &AppState, creator: &str) -> Result<Setup, AppError> {
    let who = creator.to_owned();
    let (profile, existing) = db::run(&state.pool, move |conn| {
        let profile =
            Creator::find(conn, &who)?.ok_or_else(|| AppError::not_found("creator profile"))?;
        Ok((profile, ConnectAccount::find(conn, &who)?))
    })
    .await?;
    let stripe = gateway(state)?;
    let account_id = match &existing {
        Some(a) => a.account_id.clone(),
        None => {
            let country = profile.country.clone().ok_or_else(|| {
                AppError::unprocessable(
                    "country_required",
                    "the creator profile needs a country before a Stripe account is made",
                )
            })?;
            let made: Account = stripe
                .create_connect_account(creator, &country, None)
                .await
                .map_err(stripe_error)?;
            made.id
        }
    };
    let cooling = Duration::hours(state.settings.payouts.cooling_off_hours);
    let chosen = || {
        let (who, id) = (creator.to_owned(), account_id.clone());
        db::transaction(&state.pool, move |conn| choose(conn, &who, &id, cooling))
    };
    // Two first calls at once make one Stripe account (one key) but race to record it: the
    // loser finds the winner's row on a second try.
    let account = match chosen().await {
        Err(AppError::Client {
            code: "already_exists",
            ..
        }) => chosen().await?,
        other => other?,
    };
    let link = stripe
        .create_account_link(
            // The account recorded, whichever racing call recorded it.
            &account.account_id,
            &state.settings.stripe.connect_refresh_url,
            &state.settings.stripe.connect_return_url,
        )
        .await
        .map_err(stripe_error)?;
    Ok(Setup {
        account,
        link: Some(link),
    })
}

/// Records the account (once) and makes Connect the creator's payout method.
fn choose(
    conn: &mut DbConn,
    creator: &str,
    account_id: &str,
    cooling: Duration,
) -> Result<ConnectAccount, AppError> {
    let now = Utc::now();
    if ConnectAccount::find(conn, creator)?.is_none() {
        ConnectAccount::insert(
            conn,
            &ConnectAccount {
                creator_id: creator.to_owned(),
                account_id: account_id.to_owned(),
                transfers: "inactive".into(),
                details_submitted: false,
                chosen: false,
                cooling_off_until: None,
                event_created: 0,
                updated_at: to_db(now),
            },
        )?;
        audit_creator(
            conn,
            creator,
            creator,
            "connect_account_created",
            account_id,
        )?;
    }
    let account = ConnectAccount::find(conn, creator)?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("connect account vanished")))?;
    if account.chosen {
        return Ok(account);
    }
    // Leaving a bank account for Connect redirects future payouts: cool off and tell them.
    let switching = BankAccount::find(conn, creator)?.is_some();
    let until = switching.then(|| to_db(now + cooling));
    ConnectAccount::choose(conn, creator, true, until)?;
    audit_creator(
        conn,
        creator,
        creator,
        "payout_method_changed",
        "stripe_connect",
    )?;
    outbox::enqueue_to_user(
        conn,
        creator,
        format!("payout_method:{creator}:{}", now.timestamp_micros()),
        "payout_method_changed",
        "Your payouts now go to your Stripe account".to_owned(),
        format!(
            "Your earnings will be paid to the Stripe account {account_id}.\n\n{}If you did not \
             make this change, contact support at once.\n",
            until.map_or(String::new(), |t| format!(
                "For your safety, payouts wait until {}. ",
                t.and_utc().format("%Y-%m-%d %H:%M UTC")
            ))
        ),
    )?;
    Ok(ConnectAccount::find(conn, creator)?.unwrap_or(account))
}

pub async fn get(state: &AppState, creator: &str) -> Result<ConnectAccount, AppError> {
    let creator = creator.to_owned();
    db::run(&state.pool, move |conn| {
        ConnectAccount::find(conn, &creator)?
            .ok_or_else(|| AppError::not_found("Stripe payout account"))
    })
    .await
}

/// Applies `account.updated` (in the event's transaction). Returns false when the account is
/// not one of ours; an event older than the last applied one changes nothing.
pub fn account_updated(
    conn: &mut DbConn,
    account: &Account,
    created: i64,
) -> Result<bool, AppError> {
    let Some(row) = ConnectAccount::by_account(conn, &account.id)? else {
        return Ok(false);
    };
    let applied = ConnectAccount::apply_update(
        conn,
        &account.id,
        account.transfers(),
        account.details_submitted,
        created,
    )?;
    if applied == 1 && row.transfers != account.transfers() {
        audit_creator(
            conn,
            &row.creator_id,
            "stripe",
            "connect_transfers_capability",
            &format!("{} -> {}", row.transfers, account.transfers()),
        )?;
    }
    Ok(true)
}

/// Applies `transfer.reversed` (in the event's transaction), by the transfer's cumulative
/// `amount_reversed`, so partial reversals arriving in any order each move their part once:
/// a part goes back from the Stripe balance to the creator's available balance; once all of
/// the line's net is reversed the line is `returned` (reason `transfer_reversed`) and its tax
/// is released too. Returns false when the transfer is not one of ours.
pub fn transfer_reversed(conn: &mut DbConn, transfer: &Transfer) -> Result<bool, AppError> {
    let Some(line) = Line::by_transfer(conn, &transfer.id)? else {
        return Ok(false);
    };
    let net = line.net_minor();
    let total = transfer.amount_reversed.clamp(0, net);
    let before = line.reversed_minor;
    if total <= before || !Line::reversed_to(conn, &line.id, total)? {
        return Ok(true);
    }
    let currency = crate::domain::money::Currency::parse(&line.currency)
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
    let at = to_db(Utc::now());
    if total < net {
        let lines =
            crate::domain::ledger::payout_reversal(&line.creator_id, total - before, &currency)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
        crate::db::models::ledger::post(
            conn,
            &format!("payout:reversed:{}:{total}", line.id),
            &format!("payout line {} partly reversed", line.id),
            &lines,
        )?;
        audit(
            conn,
            &line.run_id,
            Some(&line.id),
            "stripe",
            "transfer_partially_reversed",
            &format!("{total} of {net} reversed"),
        )?;
    } else if Line::move_state(
        conn,
        &line.id,
        &["paid"],
        "returned",
        Some("transfer_reversed"),
        at,
    )? {
        // What earlier partial reversals gave back is not given twice.
        let rest = Line {
            amount_minor: line.amount_minor - before,
            ..line.clone()
        };
        post(conn, PayoutStep::Returned, &rest)?;
        audit(
            conn,
            &line.run_id,
            Some(&line.id),
            "stripe",
            "outcome",
            "paid -> returned (transfer_reversed)",
        )?;
    }
    Ok(true)
}

/// Pays a run's sent Connect lines, one transfer each (at most [`TRANSFERS_PER_REQUEST`]):
/// a created transfer makes the line paid, one Stripe refuses for the creator's account's
/// reasons failed at once (its money back to the creator). When Stripe cannot be reached, or
/// refuses for the platform's reasons (its key, its balance), the rest stay `sent`, and the
/// next `send` tries them again under the same keys (so nothing is paid twice); a retry more
/// than a day after the first attempt first looks for that attempt's transfer. Returns how
/// many are left, and whether Stripe could not be reached.
pub async fn transfer_sent(
    state: &AppState,
    actor: &str,
    run: &str,
) -> Result<(usize, bool), AppError> {
    let run_id = run.to_owned();
    let (lines, waiting) = db::run(&state.pool, move |conn| {
        Ok((
            Line::untransferred(conn, &run_id, TRANSFERS_PER_REQUEST as i64)?,
            Line::untransferred_count(conn, &run_id)?,
        ))
    })
    .await?;
    if lines.is_empty() {
        return Ok((0, false));
    }
    let stripe = gateway(state)?;
    let hold_days = state.settings.billing.hold_days;
    let mut left = usize::try_from(waiting).unwrap_or(usize::MAX);
    for line in lines {
        let destination = super::Destination::of(&line)
            .stripe_account
            .unwrap_or_default();
        let (id, now) = (line.id.clone(), Utc::now());
        db::run(&state.pool, move |conn| {
            Ok(Line::attempting_transfer(conn, &id, to_db(now))?)
        })
        .await?;
        // Stripe keeps an idempotency key for at least a day: an attempt older than that may
        // have made a transfer the key no longer finds, so look for it first.
        let stale = line
            .transfer_attempted_at
            .is_some_and(|t| now - crate::db::models::from_db(t) > Duration::hours(23));
        let found = if stale {
            match earlier_transfer(stripe, &line).await {
                Ok(found) => found,
                Err(GatewayError::Unavailable(_)) => return Ok((left, true)),
                Err(e) => return Err(stripe_error(e)),
            }
        } else {
            None
        };
        let answer = match found {
            Some(transfer) => Ok(transfer),
            None => {
                stripe
                    .create_transfer(
                        &line.id,
                        &line.run_id,
                        &destination,
                        line.net_minor(),
                        &line.currency,
                    )
                    .await
            }
        };
        let actor = actor.to_owned();
        match answer {
            // The platform's own trouble (its key, its balance): nothing is wrong with the
            // creator's line, which stays `sent` for the next send.
            Err(GatewayError::Refused {
                status,
                code,
                message,
            }) if matches!(status, 401 | 403)
                || code.as_deref() == Some("balance_insufficient") =>
            {
                tracing::warn!(status, ?code, %message, "Stripe refused a payout transfer for the platform's reasons");
                return Err(AppError::conflict(
                    "stripe_refused",
                    format!(
                        "Stripe refused the platform's transfer ({}): {message}; {left} Connect lines are left to transfer",
                        code.unwrap_or_else(|| status.to_string())
                    ),
                ));
            }
            Ok(transfer) => {
                db::transaction(&state.pool, move |conn| {
                    let at = to_db(Utc::now());
                    Line::set_transfer(conn, &line.id, &transfer.id)?;
                    if Line::move_state(conn, &line.id, &["sent"], "paid", None, at)? {
                        post(conn, PayoutStep::Paid, &line)?;
                        audit(
                            conn,
                            &line.run_id,
                            Some(&line.id),
                            &actor,
                            "outcome",
                            &format!("sent -> paid (transfer {})", transfer.id),
                        )?;
                        paid_email(conn, &line, hold_days)?;
                    }
                    Ok(())
                })
                .await?;
            }
            Err(GatewayError::Refused { code, message, .. }) => {
                let code = code.unwrap_or_else(|| "refused".into());
                db::transaction(&state.pool, move |conn| {
                    let at = to_db(Utc::now());
                    if Line::move_state(conn, &line.id, &["sent"], "failed", Some(&code), at)? {
                        post(conn, PayoutStep::Failed, &line)?;
                        audit(
                            conn,
                            &line.run_id,
                            Some(&line.id),
                            &actor,
                            "outcome",
                            &format!(
                                "sent -> failed ({code}: {})",
                                message.chars().take(300).collect::<String>()
                            ),
                        )?;
                    }
                    Ok(())
                })
                .await?;
            }
            Err(GatewayError::Unavailable(why)) => {
                tracing::warn!(%why, "Stripe unavailable: Connect lines left to transfer");
                return Ok((left, true));
            }
        }
        left -= 1;
    }
    Ok((left, false))
}

/// Pages of a run's transfers read at most when looking for an earlier attempt's transfer.
const TRANSFER_PAGES: usize = 100;

/// The transfer an earlier attempt for `line` made, if any (by its `kopilka_payout_line`
/// metadata, among the run's transfer group).
async fn earlier_transfer(stripe: &Gateway, line: &Line) -> Result<Option<Transfer>, GatewayError> {
    let mut after: Option<String> = None;
    for _ in 0..TRANSFER_PAGES {
        let page = stripe
            .list_transfers(&line.run_id, after.as_deref())
            .await?;
        if let Some(t) = page
            .data
            .iter()
            .find(|t| t.metadata.get("kopilka_payout_line") == Some(&line.id))
        {
            return Ok(Some(t.clone()));
        }
        after = page.data.last().map(|t| t.id.clone());
        if !page.has_more || after.is_none() {
            break;
        }
    }
    Ok(None)
}

/// Pages of `stripe_fee` balance transactions one sync reads at most (100 each).
const FEE_PAGES: usize = 20;

/// Books Stripe's own fees (Connect's per-account and per-payout fees are debited from the
/// platform's balance as `stripe_fee` balance transactions) created in the last `days` as
/// platform costs: `stripe_fees` debited, `stripe_clearing` credited, each once by its
/// transaction's id. Returns (seen, newly booked); a repeat books nothing twice.
pub async fn book_stripe_fees(state: &AppState, days: i64) -> Result<(usize, usize), AppError> {
    let stripe = gateway(state)?;
    let since = (Utc::now() - Duration::days(days)).timestamp();
    let mut fees = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..FEE_PAGES {
        let page = stripe
            .list_stripe_fees(since, after.as_deref())
            .await
            .map_err(stripe_error)?;
        after = page.data.last().map(|t| t.id.clone());
        fees.extend(page.data);
        if !page.has_more || after.is_none() {
            break;
        }
    }
    let seen = fees.len();
    let booked = db::transaction(&state.pool, move |conn| {
        let mut booked = 0;
        for fee in &fees {
            let currency = crate::domain::money::Currency::parse(
                &fee.currency.to_ascii_uppercase(),
            )
            .map_err(|e| AppError::Internal(anyhow::anyhow!("Stripe fee {}: {e}", fee.id)))?;
            // A fee is a negative amount; a fee refunded by Stripe a positive one.
            let cost = -fee.amount;
            if cost == 0 {
                continue;
            }
            let lines = crate::domain::ledger::stripe_fee(cost, &currency)
                .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
            let posted = crate::db::models::ledger::post(
                conn,
                &format!("stripe_fee:{}", fee.id),
                "Stripe fee (Connect and other services)",
                &lines,
            )?;
            if matches!(posted, crate::db::models::ledger::Posted::New(_)) {
                booked += 1;
            }
        }
        Ok(booked)
    })
    .await?;
    Ok((seen, booked))
}
