//! What the bank did with a line: paid it, refused it (failed), or paid it and later sent it
//! back (returned, with the bank's reason code days later). Recording the state a line is
//! already in changes nothing, so finance can repeat a request safely.

use super::runs::post;
use super::statements::{self, Month};
use super::{Destination, LineState};
use crate::app::AppState;
use crate::db;
use crate::db::models::outbox;
use crate::db::models::payouts::{audit, Line};
use crate::domain::bank_accounts::mask;
use crate::domain::ledger::PayoutStep;
use crate::domain::money::{display, Currency};
use crate::error::AppError;
use chrono::Utc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Paid,
    Failed,
    Returned,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "paid" => Self::Paid,
            "failed" => Self::Failed,
            "returned" => Self::Returned,
            _ => return None,
        })
    }

    fn state(self) -> LineState {
        match self {
            Self::Paid => LineState::Paid,
            Self::Failed => LineState::Failed,
            Self::Returned => LineState::Returned,
        }
    }

    /// The states a line may come from, and the posting that moves its money.
    fn from(self) -> (&'static [&'static str], PayoutStep) {
        match self {
            // Only a line that went to the bank in a file can have been paid by it.
            Self::Paid => (&["sent"], PayoutStep::Paid),
            Self::Failed => (&["approved", "sent"], PayoutStep::Failed),
            Self::Returned => (&["paid"], PayoutStep::Returned),
        }
    }
}

/// Tells the creator their payout was paid, with this month's statement attached as CSV
/// (once per line).
pub(super) fn paid_email(
    conn: &mut crate::db::DbConn,
    line: &Line,
    hold_days: i64,
) -> Result<(), AppError> {
    let month = Month::of(Utc::now());
    let key = format!("payout_paid:{}", line.id);
    let amount = display(line.net_minor(), &line.currency);
    let tax = if line.withheld_minor > 0 {
        format!(
            " after {} income tax withheld ({}.{:02} %)",
            display(line.withheld_minor, &line.currency),
            line.withholding_rate_bps / 100,
            line.withholding_rate_bps % 100
        )
    } else {
        String::new()
    };
    let queued = outbox::enqueue_to_user(
        conn,
        &line.creator_id,
        key.clone(),
        "payout_paid",
        format!("Your payout of {amount} was paid"),
        format!(
            "We paid {amount}{tax} into {} (reference {}).\n\nYour statement for {month} is attached.\n",
            match Destination::of(line).stripe_account {
                Some(account) => format!("your Stripe account {account}"),
                None => mask(&Destination::of(line).iban),
            },
            line.id
        ),
    )?;
    // The statement is built only for creators with an address (it costs a few queries).
    if queued {
        let currency =
            Currency::parse(&line.currency).map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
        let statement = statements::of_month(conn, &line.creator_id, &currency, month, hold_days)?;
        outbox::attach(
            conn,
            &key,
            &format!("statement-{month}-{}.csv", line.currency),
            &statements::csv(&statement),
        )?;
    }
    Ok(())
}

/// A bank's reason code (ISO 20022 external status reason, e.g. SEPA `AC01`, `AC04`, `MD07`):
/// four upper-case letters or digits.
pub fn valid_reason_code(code: &str) -> bool {
    code.len() == 4
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

pub async fn record(
    state: &AppState,
    actor: &str,
    run: &str,
    line: &str,
    outcome: Outcome,
    reason_code: Option<String>,
) -> Result<Line, AppError> {
    check_reason(outcome, reason_code.as_deref())?;
    let (actor, run, id) = (actor.to_owned(), run.to_owned(), line.to_owned());
    let hold_days = state.settings.billing.hold_days;
    db::transaction(&state.pool, move |conn| {
        let line = Line::find(conn, &run, &id)?
            .ok_or_else(|| AppError::not_found(format!("payout line {id} of run {run}")))?;
        apply(
            conn,
            &actor,
            line,
            outcome,
            reason_code.as_deref(),
            hold_days,
        )
    })
    .await
}

/// Records one outcome for every line of a run's bank files that can take it (the bank paid,
/// or refused, a whole file); returns how many lines moved. Lines already in that state stay.
pub async fn record_file(
    state: &AppState,
    actor: &str,
    run: &str,
    outcome: Outcome,
    reason_code: Option<String>,
) -> Result<usize, AppError> {
    check_reason(outcome, reason_code.as_deref())?;
    if outcome == Outcome::Returned {
        return Err(AppError::unprocessable(
            "invalid_outcome",
            "a return comes line by line, days later; a whole file is paid or failed",
        ));
    }
    let (actor, run) = (actor.to_owned(), run.to_owned());
    let page_lines = state.settings.payouts.page_lines;
    let hold_days = state.settings.billing.hold_days;
    db::transaction(&state.pool, move |conn| {
        crate::db::models::payouts::Run::find(conn, &run)?
            .ok_or_else(|| AppError::not_found(format!("payout run {run}")))?;
        let (from, _) = outcome.from();
        let to = outcome.state().as_str();
        let mut moved = 0;
        let mut after: Option<String> = None;
        loop {
            let page = Line::sent_page(conn, &run, from, after.as_deref(), page_lines)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for line in page {
                // A line whose own outcome was recorded meanwhile is left as it is.
                match apply(
                    conn,
                    &actor,
                    line,
                    outcome,
                    reason_code.as_deref(),
                    hold_days,
                ) {
                    Ok(_) => moved += 1,
                    Err(AppError::Client {
                        code: "invalid_transition",
                        ..
                    }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // Recording a file's outcome again moves nothing and is no error.
        if moved == 0 && Line::sent_in_state(conn, &run, to)? == 0 {
            return Err(AppError::conflict(
                "invalid_state",
                "no line of the run's bank files can take this outcome",
            ));
        }
        Ok(moved)
    })
    .await
}

fn check_reason(outcome: Outcome, reason_code: Option<&str>) -> Result<(), AppError> {
    if outcome != Outcome::Paid && reason_code.is_none() {
        return Err(AppError::unprocessable(
            "reason_required",
            "a failed or returned line needs the bank's reason code (e.g. AC04)",
        ));
    }
    if reason_code.is_some_and(|c| !valid_reason_code(c)) {
        return Err(AppError::unprocessable(
            "invalid_reason_code",
            "reason_code is four upper-case letters or digits (e.g. AC01, AC04, MD07)",
        ));
    }
    Ok(())
}

/// Moves one line (in the caller's transaction): its state, its posting, the audit trail and,
/// once paid, the creator's email.
fn apply(
    conn: &mut crate::db::DbConn,
    actor: &str,
    line: Line,
    outcome: Outcome,
    reason_code: Option<&str>,
    hold_days: i64,
) -> Result<Line, AppError> {
    let to = outcome.state().as_str();
    if line.state == to {
        return Ok(line);
    }
    if line.method == "stripe_connect" {
        return Err(AppError::conflict(
            "invalid_transition",
            format!(
                "line {} is paid through Stripe Connect: its transfer settles it (a reversal \
                 made in Stripe returns it)",
                line.id
            ),
        ));
    }
    let (from, step) = outcome.from();
    let at = crate::db::models::to_db(Utc::now());
    if !from.contains(&line.state.as_str())
        || !Line::move_state(conn, &line.id, from, to, reason_code, at)?
    {
        return Err(AppError::conflict(
            "invalid_transition",
            format!("line {} is {}; it cannot become {to}", line.id, line.state),
        ));
    }
    post(conn, step, &line)?;
    let detail = match reason_code {
        Some(code) => format!("{} -> {to} ({code})", line.state),
        None => format!("{} -> {to}", line.state),
    };
    audit(
        conn,
        &line.run_id,
        Some(&line.id),
        actor,
        "outcome",
        &detail,
    )?;
    if outcome == Outcome::Paid {
        paid_email(conn, &line, hold_days)?;
    }
    Ok(Line {
        state: to.to_owned(),
        reason_code: reason_code.map(str::to_owned),
        updated_at: at,
        paid_at: if outcome == Outcome::Paid {
            Some(at)
        } else {
            line.paid_at
        },
        ..line
    })
}
