//! Payout views. Account numbers leave only masked (the bank file is the one exception).

use crate::db::models::from_db;
use crate::db::models::payouts::{AuditEvent, BankAccount, Carried, Line, Run};
use crate::db::models::tax_profiles::TaxProfile;
use crate::domain::bank_accounts::mask;
use crate::domain::tax::Rates;
use crate::services::payouts::runs::RunDetails;
use crate::services::payouts::tax::{self, YearTotal};
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
    /// `bank_transfer` or `stripe_connect` (then `stripe_account` is set, the bank fields empty).
    pub method: String,
    pub stripe_account: Option<String>,
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
    /// What leaves the creator's balance: `net_minor` to the bank, `withheld_minor` to the tax
    /// authority.
    pub amount_minor: i64,
    pub withheld_minor: i64,
    pub withholding_rate_bps: i32,
    pub net_minor: i64,
    pub state: String,
    pub destination: DestinationView,
    pub reason_code: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    /// The Stripe transfer that paid a Connect line, and how much of it was reversed (and
    /// returned to the creator) so far.
    pub transfer_id: Option<String>,
    pub reversed_minor: i64,
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
            withheld_minor: l.withheld_minor,
            withholding_rate_bps: l.withholding_rate_bps,
            net_minor: l.amount_minor - l.withheld_minor,
            state: l.state.clone(),
            destination: DestinationView {
                method: l.method.clone(),
                stripe_account: d.stripe_account,
                holder_name: d.holder_name,
                iban_masked: mask(&d.iban),
                bic: d.bic,
                town: d.town,
                country: d.country,
            },
            reason_code: l.reason_code.clone(),
            paid_at: l.paid_at.map(from_db),
            transfer_id: l.transfer_id.clone(),
            reversed_minor: l.reversed_minor,
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
    pub withheld_minor: i64,
    pub net_minor: i64,
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
    /// Draft lines the creator's available balance no longer covers, and draft lines held,
    /// cooling off, lacking a required tax profile or withholding at a changed rate now:
    /// approval refuses a run with either.
    pub uncovered_lines: i64,
    pub blocked_lines: i64,
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
                .map(|(currency, lines, amount, withheld)| TotalView {
                    currency: currency.clone(),
                    lines: *lines,
                    amount_minor: *amount,
                    withheld_minor: *withheld,
                    net_minor: amount - withheld,
                })
                .collect(),
            carried: d.carried.iter().map(CarriedView::from).collect(),
            carried_count: d.carried_count,
            lines_count: d.lines_count(),
            uncovered_lines: d.uncovered_lines,
            blocked_lines: d.blocked_lines,
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

#[derive(Serialize)]
pub struct TaxProfileView {
    /// `us_person` (form W-9) or `foreign` (form W-8BEN).
    pub kind: String,
    pub form: &'static str,
    pub legal_name: String,
    pub tin_masked: Option<String>,
    pub tin_type: Option<String>,
    pub country: String,
    pub treaty_rate_bps: Option<i32>,
    pub signed_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// `valid`, `pending` (a treaty claim, or a filing after a rejection, waiting for
    /// finance), `rejected` (by finance, see `status_reason`) or `expired`.
    pub status: &'static str,
    pub status_reason: Option<String>,
    /// The rate a payout withholds at now; `null` when payouts are blocked without a valid
    /// profile.
    pub withholding_rate_bps: Option<u16>,
}

impl TaxProfileView {
    pub fn new(p: &TaxProfile, rates: &Rates, now: DateTime<Utc>) -> Self {
        TaxProfileView {
            form: if p.kind == "us_person" {
                "W-9"
            } else {
                "W-8BEN"
            },
            kind: p.kind.clone(),
            legal_name: p.legal_name.clone(),
            tin_masked: tax::masked_tin(p),
            tin_type: p.tin_type.clone(),
            country: p.country.clone(),
            treaty_rate_bps: p.treaty_rate_bps,
            signed_at: from_db(p.signed_at),
            expires_at: p.expires_at.map(from_db),
            status: tax::status(p, now),
            status_reason: p.status_reason.clone(),
            withholding_rate_bps: tax::rate_of(rates, Some(p), now),
        }
    }
}

#[derive(Serialize)]
pub struct TaxTotalView {
    pub creator_id: String,
    pub currency: String,
    pub lines: i64,
    /// Paid out before withholding: the income reported.
    pub paid_minor: i64,
    pub withheld_minor: i64,
    pub net_minor: i64,
    /// The information return it is filed on: `1042-S` for a foreign person, `1099-MISC`
    /// otherwise (a US person, or no profile on file: backup withholding is reported there).
    pub form: &'static str,
    pub profile: Option<TaxProfileView>,
}

impl TaxTotalView {
    pub fn new(t: &YearTotal, rates: &Rates, now: DateTime<Utc>) -> Self {
        TaxTotalView {
            creator_id: t.creator_id.clone(),
            currency: t.currency.clone(),
            lines: t.lines,
            paid_minor: t.paid_minor,
            withheld_minor: t.withheld_minor,
            net_minor: t.paid_minor - t.withheld_minor,
            form: match t.profile.as_ref().map(|p| p.kind.as_str()) {
                Some("foreign") => "1042-S",
                _ => "1099-MISC",
            },
            profile: t
                .profile
                .as_ref()
                .map(|p| TaxProfileView::new(p, rates, now)),
        }
    }
}

#[derive(Serialize)]
pub struct PayoutAccountView {
    pub method: &'static str,
    pub account_id: String,
    /// The account's `capabilities.transfers`: payouts start when it is `active`.
    pub transfers: String,
    pub details_submitted: bool,
    /// Payouts go to this account (the last payout method set up).
    pub chosen: bool,
    pub cooling_off_until: Option<DateTime<Utc>>,
    /// A fresh single-use onboarding link (only in answers to POST); it expires within
    /// minutes: ask again for a new one.
    pub onboarding_url: Option<String>,
    pub onboarding_expires_at: Option<DateTime<Utc>>,
}

impl PayoutAccountView {
    pub fn new(
        a: &crate::db::models::payouts::ConnectAccount,
        link: Option<&crate::stripe::objects::AccountLink>,
    ) -> Self {
        PayoutAccountView {
            method: "stripe_connect",
            account_id: a.account_id.clone(),
            transfers: a.transfers.clone(),
            details_submitted: a.details_submitted,
            chosen: a.chosen,
            cooling_off_until: a.cooling_off_until.map(from_db),
            onboarding_url: link.map(|l| l.url.clone()),
            onboarding_expires_at: link.and_then(|l| DateTime::from_timestamp(l.expires_at, 0)),
        }
    }
}
