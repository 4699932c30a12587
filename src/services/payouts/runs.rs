//! Drawing a payout run, the four-eyes approval, canceling and sending it to the bank.

use super::{run_state, Destination};
use crate::app::AppState;
use crate::config::PayoutSettings;
use crate::db;
use crate::db::models::ledger as ledger_db;
use crate::db::models::payouts::{
    audit, available_accounts_page, available_balances, lock_available, Accounts, BankAccount,
    Carried, ConnectAccount, Hold, Line, Run,
};
use crate::db::models::tax_profiles::TaxProfile;
use crate::db::models::{from_db, new_id, to_db};
use crate::db::DbConn;
use crate::domain::ledger::{self, Account, AccountKind, PayoutStep};
use crate::domain::money::Currency;
use crate::domain::tax::{withheld, Rates};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use diesel::RunQueryDsl;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A run as services hand it to views: where its draft lines stand (what approval concerns),
/// counts and totals of all its lines (read by the database, so a large run is not loaded
/// whole), and what it carried.
pub struct RunDetails {
    pub run: Run,
    /// How many lines are in each state.
    pub state_counts: Vec<(String, i64)>,
    /// (currency, lines, amount, withheld) over the lines not canceled.
    pub totals: Vec<(String, i64, i64, i64)>,
    /// The first carried balances (see `carried_count` for all).
    pub carried: Vec<Carried>,
    pub carried_count: i64,
    /// What approving must quote (see [`Review`]).
    pub digest: String,
    /// Draft lines their creator's available balance no longer covers.
    pub uncovered_lines: i64,
    /// Draft lines something stops being paid now (see [`Standing`]).
    pub blocked_lines: i64,
}

impl RunDetails {
    pub fn state(&self) -> &'static str {
        run_state(self.state_counts.iter().map(|(s, _)| s.as_str()))
    }

    pub fn lines_count(&self) -> i64 {
        self.state_counts.iter().map(|(_, n)| n).sum()
    }
}

/// Carried balances shown with a run (all are counted).
const CARRIED_SHOWN: i64 = 100;

/// Where a draft line stands now: whether the creator's available balance still covers it,
/// and what would stop it being paid (a hold, a change of bank details being cooled off, no
/// valid tax profile where one is required, or a profile that changed the line's withholding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub covered: bool,
    pub blocked: Option<&'static str>,
}

/// The standing of each line of a page of draft lines, by line id.
fn standings(
    conn: &mut DbConn,
    rates: &Rates,
    drafts: &[Line],
    lock: bool,
) -> Result<BTreeMap<String, Standing>, AppError> {
    if drafts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let accounts: Vec<String> = drafts
        .iter()
        .map(available_account)
        .collect::<Result<_, _>>()?;
    if lock {
        lock_available(conn, &accounts)?;
    }
    let balances = available_balances(conn, None, Accounts::Listed(&accounts))?;
    let creators: Vec<String> = drafts.iter().map(|l| l.creator_id.clone()).collect();
    let held = Hold::held_among(conn, &creators)?;
    let accounts = BankAccount::all_of(conn, &creators)?;
    let connects = ConnectAccount::all_of(conn, &creators)?;
    let profiles = TaxProfile::all_of(conn, &creators)?;
    let now = Utc::now();
    Ok(drafts
        .iter()
        .map(|l| {
            let available = balances
                .get(&(l.creator_id.clone(), l.currency.clone()))
                .copied()
                .unwrap_or(0);
            let connect = connects.get(&l.creator_id);
            let cooling = if l.method == "stripe_connect" {
                connect.and_then(|c| c.cooling_off_until)
            } else {
                accounts
                    .get(&l.creator_id)
                    .and_then(|a| a.cooling_off_until)
            }
            .is_some_and(|t| from_db(t) > now);
            let connect_ready = connect.is_some_and(|c| c.transfers == "active" && c.chosen);
            let rate = super::tax::rate_of(rates, profiles.get(&l.creator_id), now);
            let blocked = if held.contains(&l.creator_id) {
                Some("on_hold")
            } else if cooling {
                Some("cooling_off")
            } else if l.method == "stripe_connect" && !connect_ready {
                Some("connect_not_ready")
            } else if rate.is_none() {
                Some("no_tax_profile")
            } else if rate.map(i32::from) != Some(l.withholding_rate_bps) {
                Some("tax_profile_changed")
            } else {
                None
            };
            (
                l.id.clone(),
                Standing {
                    covered: available >= l.amount_minor,
                    blocked,
                },
            )
        })
        .collect())
}

/// A run's draft lines read a page at a time, by id: the digest an approval quotes, how many
/// stand in the way, and the first that does.
///
/// The digest is SHA-256 over each draft line (id, creator, currency, amount, withholding,
/// destination) and where it stands now (covered by the balance; held, cooling off, lacking a
/// tax profile): an approval quoting it approves exactly what the approver saw. A refund that
/// leaves a line uncovered, or a hold set since, makes it stale; new earnings do not, so a
/// large run stays approvable.
#[derive(Debug, Default)]
pub struct Review {
    pub digest: String,
    pub drafts: i64,
    pub uncovered: i64,
    pub blocked: i64,
    /// The first line (by id) that cannot be paid now: blocked (with why), or not covered.
    first_problem: Option<(Line, Option<&'static str>)>,
}

impl Review {
    /// With `lock`, each page's available accounts are locked before their balances are read
    /// (approval: nothing may post to them until it commits).
    fn of(
        conn: &mut DbConn,
        settings: &PayoutSettings,
        run: &str,
        lock: bool,
    ) -> Result<Review, AppError> {
        let mut hash = Sha256::new();
        let mut review = Review::default();
        let mut after: Option<String> = None;
        loop {
            let page = Line::drafts_page(conn, run, after.as_deref(), settings.page_lines)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let standings = standings(conn, &settings.tax, &page, lock)?;
            for l in page {
                let s = standings.get(&l.id).copied().unwrap_or(Standing {
                    covered: false,
                    blocked: None,
                });
                hash.update(format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    l.id,
                    l.creator_id,
                    l.currency,
                    l.amount_minor,
                    l.withheld_minor,
                    l.withholding_rate_bps,
                    l.destination,
                    s.covered,
                    s.blocked.unwrap_or("-"),
                ));
                review.drafts += 1;
                review.uncovered += i64::from(!s.covered);
                review.blocked += i64::from(s.blocked.is_some());
                if (s.blocked.is_some() || !s.covered) && review.first_problem.is_none() {
                    review.first_problem = Some((l, s.blocked));
                }
            }
        }
        review.digest = hex::encode(hash.finalize());
        Ok(review)
    }

    /// Why approval refuses the run, if anything stands in the way.
    fn refusal(&self) -> Option<AppError> {
        let (l, blocked) = self.first_problem.as_ref()?;
        Some(match blocked {
            Some(why) => AppError::conflict(
                "payout_blocked",
                format!(
                    "line {} cannot be paid now ({why}); cancel the run and draw a new one",
                    l.id
                ),
            ),
            None => AppError::conflict(
                "insufficient_balance",
                format!(
                    "line {} pays {} but {} has less available now; cancel the run and draw a new one",
                    l.id, l.amount_minor, l.creator_id
                ),
            ),
        })
    }
}

fn load(conn: &mut DbConn, settings: &PayoutSettings, id: &str) -> Result<RunDetails, AppError> {
    let run =
        Run::find(conn, id)?.ok_or_else(|| AppError::not_found(format!("payout run {id}")))?;
    let state_counts = Line::state_counts(conn, id)?;
    let totals = Line::totals_of_run(conn, id)?;
    let carried = Carried::of_run(conn, id, CARRIED_SHOWN)?;
    let carried_count = Carried::count_of_run(conn, id)?;
    let review = Review::of(conn, settings, id, false)?;
    Ok(RunDetails {
        run,
        state_counts,
        totals,
        carried,
        carried_count,
        digest: review.digest,
        uncovered_lines: review.uncovered,
        blocked_lines: review.blocked,
    })
}

pub async fn get(state: &AppState, id: &str) -> Result<RunDetails, AppError> {
    let (id, settings) = (id.to_owned(), state.settings.payouts.clone());
    db::run(&state.pool, move |conn| load(conn, &settings, &id)).await
}

/// How a creator is paid: through their Connect account when they chose it, else to their
/// bank account.
enum Payee<'a> {
    Bank(&'a BankAccount),
    Connect(&'a ConnectAccount),
    Nobody,
}

impl<'a> Payee<'a> {
    fn of(bank: Option<&'a BankAccount>, connect: Option<&'a ConnectAccount>) -> Payee<'a> {
        match (connect, bank) {
            (Some(c), _) if c.chosen => Payee::Connect(c),
            (_, Some(b)) => Payee::Bank(b),
            _ => Payee::Nobody,
        }
    }

    /// What stops paying `currency` to this payee now, if anything.
    fn blocked(&self, currency: &str, now: DateTime<Utc>) -> Option<&'static str> {
        let cooling = |t: Option<chrono::NaiveDateTime>| t.is_some_and(|t| from_db(t) > now);
        match self {
            Payee::Nobody => Some("no_bank_account"),
            Payee::Bank(a) if a.currency != currency => Some("no_account_in_currency"),
            Payee::Bank(a) if cooling(a.cooling_off_until) => Some("cooling_off"),
            Payee::Connect(c) if cooling(c.cooling_off_until) => Some("cooling_off"),
            Payee::Connect(c) if c.transfers != "active" => Some("connect_not_ready"),
            _ => None,
        }
    }
}

/// Why a balance is not paid in this run, or `None` when it is.
fn carried_reason(
    available: i64,
    minimum: Option<i64>,
    held: bool,
    open: bool,
    payee_blocked: Option<&'static str>,
    rate: Option<u16>,
) -> Option<&'static str> {
    Some(if available < 0 {
        "negative"
    } else if minimum.is_none() {
        "no_minimum"
    } else if minimum.is_some_and(|m| available < m) {
        "below_minimum"
    } else if held {
        "on_hold"
    } else if open {
        "in_open_run"
    } else if let Some(why) = payee_blocked {
        why
    } else if rate.is_none() {
        "no_tax_profile"
    } else {
        return None;
    })
}

/// The lines and carried balances of a page of creators' available accounts (`drawn` lines
/// are already in the run).
fn draw_page(
    conn: &mut DbConn,
    settings: &PayoutSettings,
    run: &Run,
    page: &[(String, Option<String>, String)],
    drawn: i64,
    now: DateTime<Utc>,
) -> Result<(Vec<Line>, Vec<Carried>), AppError> {
    // The page is in the database's order of ids, so its first and last bound it.
    let (Some((first, _, _)), Some((last, _, _))) = (page.first(), page.last()) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let range = Accounts::Between(first, last);
    let as_of = available_balances(conn, Some(run.cutoff), range)?;
    let current = available_balances(conn, None, range)?;
    let creators: Vec<String> = page
        .iter()
        .filter_map(|(_, owner, _)| owner.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let held = Hold::held_among(conn, &creators)?;
    let open = Line::open_among_accounts(conn, first, last)?;
    let accounts = BankAccount::all_of(conn, &creators)?;
    let connects = ConnectAccount::all_of(conn, &creators)?;
    let profiles = TaxProfile::all_of(conn, &creators)?;
    let (mut lines, mut carried) = (Vec::new(), Vec::new());
    for ((creator, currency), then) in &as_of {
        let available = (*then).min(
            current
                .get(&(creator.clone(), currency.clone()))
                .copied()
                .unwrap_or(0),
        );
        if available == 0 {
            continue;
        }
        let payee = Payee::of(accounts.get(creator), connects.get(creator));
        let rate = super::tax::rate_of(&settings.tax, profiles.get(creator), now);
        let mut reason = carried_reason(
            available,
            settings.minimum(currency),
            held.contains(creator),
            open.contains(&(creator.clone(), currency.clone())),
            payee.blocked(currency, now),
            rate,
        );
        if reason.is_none() && drawn + lines.len() as i64 >= settings.max_lines {
            reason = Some("run_full");
        }
        let (method, destination) = match (&payee, reason) {
            (Payee::Bank(a), None) => (
                "bank_transfer",
                Destination {
                    holder_name: a.holder_name.clone(),
                    iban: a.iban.clone(),
                    bic: a.bic.clone(),
                    town: a.town.clone(),
                    country: a.country.clone(),
                    stripe_account: None,
                },
            ),
            (Payee::Connect(c), None) => (
                "stripe_connect",
                Destination {
                    stripe_account: Some(c.account_id.clone()),
                    ..Destination::default()
                },
            ),
            (_, reason) => {
                carried.push(Carried {
                    run_id: run.id.clone(),
                    creator_id: creator.clone(),
                    currency: currency.clone(),
                    available_minor: available,
                    reason: reason.unwrap_or("no_bank_account").to_owned(),
                });
                continue;
            }
        };
        let rate = rate.unwrap_or(0);
        lines.push(Line {
            // The line's id is its SEPA `EndToEndId`: at most 35 characters of SEPA's
            // Latin set, which has `-` but no `_`.
            id: format!("pl-{}", uuid::Uuid::new_v4().simple()),
            run_id: run.id.clone(),
            creator_id: creator.clone(),
            currency: currency.clone(),
            amount_minor: available,
            state: "draft".into(),
            destination: serde_json::to_string(&destination)
                .map_err(|e| AppError::Internal(e.into()))?,
            reason_code: None,
            sent_at: None,
            updated_at: to_db(now),
            withheld_minor: withheld(available, rate),
            withholding_rate_bps: i32::from(rate),
            paid_at: None,
            method: method.to_owned(),
            transfer_id: None,
            transfer_attempted_at: None,
            reversed_minor: 0,
        });
    }
    Ok((lines, carried))
}

/// Draws a run as of `cutoff`: a line for each creator and currency whose available balance
/// (as of the cutoff, and never more than now) reaches the minimum and may be paid; every
/// other non-zero balance is carried with its reason.
pub async fn create(
    state: &AppState,
    actor: &str,
    cutoff: DateTime<Utc>,
) -> Result<RunDetails, AppError> {
    let settings = state.settings.payouts.clone();
    let actor = actor.to_owned();
    db::transaction(&state.pool, move |conn| {
        // One run is drawn at a time (SQLite's writer lock does the same there); the unique
        // index on open lines is the backstop.
        if let DbConn::Pg(c) = conn {
            diesel::sql_query("SELECT pg_advisory_xact_lock(7411000)").execute(c)?;
        }
        let now = Utc::now();
        let run = Run {
            id: new_id("prun"),
            cutoff: to_db(cutoff),
            created_by: actor.clone(),
            created_at: to_db(now),
            approved_by: None,
            approved_at: None,
        };
        diesel::insert_into(crate::db::schema::payout_runs::table)
            .values(&run)
            .execute(conn)?;
        let (mut drawn, mut carried) = (0, 0);
        let mut after: Option<String> = None;
        loop {
            let accounts = available_accounts_page(conn, after.as_deref(), settings.page_lines)?;
            let Some((last, _, _)) = accounts.last() else {
                break;
            };
            after = Some(last.clone());
            let (lines, carry) = draw_page(conn, &settings, &run, &accounts, drawn, now)?;
            Line::insert_all(conn, &lines)?;
            Carried::insert_all(conn, &carry)?;
            drawn += lines.len() as i64;
            carried += carry.len();
        }
        audit(
            conn,
            &run.id,
            None,
            &actor,
            "create",
            &format!(
                "cut-off {}; {drawn} lines, {carried} carried",
                cutoff.to_rfc3339(),
            ),
        )?;
        load(conn, &settings, &run.id)
    })
    .await
}

/// Approves a run's draft lines: never by whoever drew it, and only as they were when the
/// approver read them (`digest`). Each balance is re-read under a lock, so nothing that
/// changed it after the draft can be paid out; then each line moves out of the creator's
/// available balance into transit.
pub async fn approve(
    state: &AppState,
    actor: &str,
    id: &str,
    quoted: &str,
) -> Result<RunDetails, AppError> {
    let (actor, id, quoted) = (actor.to_owned(), id.to_owned(), quoted.to_owned());
    let settings = state.settings.payouts.clone();
    db::transaction(&state.pool, move |conn| {
        let run = Run::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("payout run {id}")))?;
        if run.created_by == actor {
            return Err(AppError::conflict(
                "self_approval",
                "a payout run is approved by a finance user other than the one who drew it",
            ));
        }
        if let Some(own) = Line::draft_pays(conn, &id, &actor)? {
            return Err(AppError::conflict(
                "self_payment",
                format!("line {own} pays the approver; another finance user approves this run"),
            ));
        }
        let review = Review::of(conn, &settings, &id, true)?;
        if review.drafts == 0 {
            return Err(AppError::conflict("invalid_state", "the run has no draft lines to approve"));
        }
        if review.digest != quoted {
            return Err(AppError::conflict(
                "digest_mismatch",
                "the run's lines, or where they stand (balances, holds), changed since this digest was read; read the run again",
            ));
        }
        if let Some(refusal) = review.refusal() {
            return Err(refusal);
        }
        // The accounts stay locked: page by page, each line moves into transit. Every line
        // reviewed must move (a cancel may have come between): else nothing does.
        let (mut after, mut moved): (Option<String>, i64) = (None, 0);
        loop {
            let page = Line::drafts_page(conn, &id, after.as_deref(), settings.page_lines)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for l in &page {
                if !Line::move_state(conn, &l.id, &["draft"], "approved", None, to_db(Utc::now()))? {
                    return Err(AppError::conflict("invalid_state", format!("line {} is no longer a draft", l.id)));
                }
                post(conn, PayoutStep::Approved, l)?;
                moved += 1;
            }
        }
        if moved != review.drafts {
            return Err(AppError::conflict(
                "invalid_state",
                "the run's draft lines changed while it was approved (canceled?); read the run again",
            ));
        }
        Run::approved(conn, &id, &actor)?;
        audit(conn, &id, None, &actor, "approve", &format!("digest {quoted}; {} lines", review.drafts))?;
        load(conn, &settings, &id)
    })
    .await
}

fn currency_of(line: &Line) -> Result<Currency, AppError> {
    Currency::parse(&line.currency).map_err(|e| AppError::Internal(anyhow::anyhow!(e)))
}

fn available_account(line: &Line) -> Result<String, AppError> {
    Ok(Account::creator(
        AccountKind::CreatorAvailable,
        &line.creator_id,
        &currency_of(line)?,
    )
    .id())
}

/// Posts a step of a line. Callers have just moved the line's state with a guarded update, so
/// the step was never posted: no lookup first (the key's uniqueness still refuses a second).
pub(super) fn post(conn: &mut DbConn, step: PayoutStep, line: &Line) -> Result<(), AppError> {
    let via = if line.method == "stripe_connect" {
        ledger::PayoutVia::Stripe
    } else {
        ledger::PayoutVia::Bank
    };
    let lines = ledger::payout(
        step,
        via,
        &line.creator_id,
        line.amount_minor,
        line.withheld_minor,
        &currency_of(line)?,
    )
    .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let name = match step {
        PayoutStep::Approved => "approved",
        PayoutStep::Paid => "paid",
        PayoutStep::Failed => "failed",
        PayoutStep::Returned => "returned",
    };
    ledger_db::post_unseen(
        conn,
        &crate::db::models::new_id("ltx"),
        &format!("payout:{name}:{}", line.id),
        &format!("payout line {} {name}", line.id),
        &lines,
    )?;
    Ok(())
}

/// Cancels a run's draft lines (nothing has moved yet).
pub async fn cancel(state: &AppState, actor: &str, id: &str) -> Result<RunDetails, AppError> {
    let (actor, id) = (actor.to_owned(), id.to_owned());
    let settings = state.settings.payouts.clone();
    db::transaction(&state.pool, move |conn| {
        Run::find(conn, &id)?.ok_or_else(|| AppError::not_found(format!("payout run {id}")))?;
        let canceled = Line::cancel_drafts(conn, &id)?;
        if canceled == 0 {
            return Err(AppError::conflict(
                "invalid_state",
                "the run has no draft lines to cancel",
            ));
        }
        audit(
            conn,
            &id,
            None,
            &actor,
            "cancel",
            &format!("{canceled} lines"),
        )?;
        load(conn, &settings, &id)
    })
    .await
}

/// Hands the approved lines on: bank-transfer lines become `sent` and stay in the run's bank
/// file; Connect lines become `sent` and are then transferred (see `connect::transfer_sent`).
/// Sending again transfers the Connect lines a previous send could not.
pub async fn send(state: &AppState, actor: &str, id: &str) -> Result<RunDetails, AppError> {
    let (who, run) = (actor.to_owned(), id.to_owned());
    let stripe = state.stripe.is_some();
    let sent = db::transaction(&state.pool, move |conn| {
        Run::find(conn, &run)?.ok_or_else(|| AppError::not_found(format!("payout run {run}")))?;
        // Connect lines go nowhere without Stripe: refuse before anything is marked sent.
        if !stripe && Line::approved_by(conn, &run, "stripe_connect")? > 0 {
            return Err(AppError::client(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "stripe_not_configured",
                "the run has Stripe Connect lines and Stripe is not configured on this service",
            ));
        }
        let sent = Line::send_approved(conn, &run)?;
        let waiting = Line::untransferred_count(conn, &run)?;
        if sent == 0 && waiting == 0 {
            return Err(AppError::conflict(
                "invalid_state",
                "the run has no approved lines to send",
            ));
        }
        if sent > 0 {
            audit(conn, &run, None, &who, "send", &format!("{sent} lines"))?;
        }
        Ok(sent)
    })
    .await?;
    let (left, unreachable) = super::connect::transfer_sent(state, actor, id).await?;
    if unreachable && sent == 0 {
        return Err(AppError::client(
            actix_web::http::StatusCode::BAD_GATEWAY,
            "stripe_unavailable",
            format!("Stripe could not be reached; {left} Connect lines are still to be transferred: send again"),
        ));
    }
    get(state, id).await
}

/// Runs, newest first.
pub async fn page(
    state: &AppState,
    after: Option<String>,
    limit: i64,
) -> Result<(Vec<(Run, Vec<(String, i64)>)>, Option<String>), AppError> {
    db::run(&state.pool, move |conn| {
        let after = match after {
            Some(a) => Some(Run::find(conn, &a)?.ok_or_else(|| {
                AppError::unprocessable("invalid_cursor", "after names no payout run")
            })?),
            None => None,
        };
        let runs = Run::page(conn, after.as_ref(), limit + 1)?;
        let more = runs.len() as i64 > limit;
        let mut out = Vec::new();
        for r in runs.into_iter().take(limit as usize) {
            let states = Line::state_counts(conn, &r.id)?;
            out.push((r, states));
        }
        let next = if more {
            out.last().map(|(r, _)| r.id.clone())
        } else {
            None
        };
        Ok((out, next))
    })
    .await
}
