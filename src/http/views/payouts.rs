//! Payout views. Account numbers leave only masked (the bank file is the one exception).

use crate::db::models::from_db;
use crate::db::models::payouts::{AuditEvent, BankAccount, Carried, Line, Run};
use crate::domain::bank_accounts::mask;
use crate::services::payouts::runs::RunDetails;
use crate::services::payouts::{run_state, Destination};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Serialize)]
pub struct BankAccountView {
    pub method: &'static str,
    pub holder_name: String,
    pub iban_masked: String,
    pub bic: Option<String>,
    pub town: String,
    pub country: String,
    pub currency: String,
    pub cooling_off_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<&BankAccount> for BankAccountView {
    fn from(a: &BankAccount) -> Self {
        BankAccountView {
            method: "bank_transfer",
            holder_name: a.holder_name.clone(),
            iban_masked: mask(&a.iban),
            bic: a.bic.clone(),
            town: a.town.clone(),
            country: a.country.clone(),
            currency: a.currency.clone(),
            cooling_off_until: a.cooling_off_until.map(from_db),
            updated_at: from_db(a.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct DestinationView {
    pub holder_name: String,
    pub iban_masked: String,
    pub bic: Option<String>,
    pub town: String,
    pub country: String,
}

#[derive(Serialize)]
pub struct LineView {
    pub id: String,
    pub run_id: String,
    pub creator_id: String,
    pub currency: String,
    pub amount_minor: i64,
    pub state: String,
    pub destination: DestinationView,
    pub reason_code: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Line> for LineView {
    fn from(l: &Line) -> Self {
        let d = Destination::of(l);
        LineView {
            id: l.id.clone(),
            run_id: l.run_id.clone(),
            creator_id: l.creator_id.clone(),
            currency: l.currency.clone(),
            amount_minor: l.amount_minor,
            state: l.state.clone(),
            destination: DestinationView {
                holder_name: d.holder_name,
                iban_masked: mask(&d.iban),
                bic: d.bic,
                town: d.town,
                country: d.country,
            },
            reason_code: l.reason_code.clone(),
            updated_at: from_db(l.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct CarriedView {
    pub creator_id: String,
    pub currency: String,
    pub available_minor: i64,
    pub reason: String,
}

impl From<&Carried> for CarriedView {
    fn from(c: &Carried) -> Self {
        CarriedView {
            creator_id: c.creator_id.clone(),
            currency: c.currency.clone(),
            available_minor: c.available_minor,
            reason: c.reason.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct TotalView {
    pub currency: String,
    pub lines: i64,
    pub amount_minor: i64,
}

#[derive(Serialize)]
pub struct RunView {
    pub id: String,
    pub state: &'static str,
    pub cutoff: DateTime<Utc>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub digest: String,
    /// Per currency, over the lines not canceled; never summed across currencies.
    pub totals: Vec<TotalView>,
    /// The first 100 carried balances, by creator; `carried_count` counts them all.
    pub carried: Vec<CarriedView>,
    pub carried_count: i64,
    pub lines_count: i64,
    /// Draft lines the creator's available balance no longer covers, and draft lines held
    /// or cooling off now: approval refuses a run with either.
    pub uncovered_lines: usize,
    pub blocked_lines: usize,
}

impl From<&RunDetails> for RunView {
    fn from(d: &RunDetails) -> Self {
        RunView {
            id: d.run.id.clone(),
            state: d.state(),
            cutoff: from_db(d.run.cutoff),
            created_by: d.run.created_by.clone(),
            created_at: from_db(d.run.created_at),
            approved_by: d.run.approved_by.clone(),
            approved_at: d.run.approved_at.map(from_db),
            digest: d.digest.clone(),
            totals: d
                .totals
                .iter()
                .map(|(currency, lines, amount)| TotalView {
                    currency: currency.clone(),
                    lines: *lines,
                    amount_minor: *amount,
                })
                .collect(),
            carried: d.carried.iter().map(CarriedView::from).collect(),
            carried_count: d.carried_count,
            lines_count: d.lines_count(),
            uncovered_lines: d.standings.values().filter(|s| !s.covered).count(),
            blocked_lines: d.standings.values().filter(|s| s.blocked.is_some()).count(),
        }
    }
}

#[derive(Serialize)]
pub struct RunSummaryView {
    pub id: String,
    pub state: &'static str,
    pub cutoff: DateTime<Utc>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub lines_count: i64,
}

impl RunSummaryView {
    pub fn new(run: &Run, states: &[(String, i64)]) -> Self {
        RunSummaryView {
            id: run.id.clone(),
            state: run_state(states.iter().map(|(s, _)| s.as_str())),
            cutoff: from_db(run.cutoff),
            created_by: run.created_by.clone(),
            created_at: from_db(run.created_at),
            lines_count: states.iter().map(|(_, n)| n).sum(),
        }
    }
}

#[derive(Serialize)]
pub struct AuditView {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub line_id: Option<String>,
    pub detail: String,
}

impl From<&AuditEvent> for AuditView {
    fn from(e: &AuditEvent) -> Self {
        AuditView {
            at: from_db(e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            line_id: e.line_id.clone(),
            detail: e.detail.clone(),
        }
    }
}
