//! Paying creators. A payout run draws one line per creator and currency whose available
//! balance reaches the minimum; a second finance user approves the exact lines they saw (by
//! digest), which moves the money into transit; the bank file hands the lines to the bank;
//! finance records what the bank did (paid, failed, later returned). Every step posts to the
//! ledger once, by its own key, and goes to the run's audit trail.

pub mod bank_accounts;
pub mod bank_file;
pub mod connect;
pub mod outcomes;
pub mod runs;
pub mod sepa_file;
pub mod statements;
pub mod tax;

use crate::db::models::payouts::Line;
use serde::{Deserialize, Serialize};

/// Where a line is paid: the bank account as it was when the line was drawn, or the creator's
/// Stripe Connect account (the bank fields then empty).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Destination {
    pub holder_name: String,
    pub iban: String,
    pub bic: Option<String>,
    pub town: String,
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_account: Option<String>,
}

impl Destination {
    /// The snapshot for a file to the bank: a damaged one is an error, never a blank account.
    pub fn checked(line: &Line) -> Result<Destination, crate::error::AppError> {
        serde_json::from_str(&line.destination).map_err(|e| {
            crate::error::AppError::Internal(anyhow::anyhow!(
                "payout line {}: unreadable destination: {e}",
                line.id
            ))
        })
    }

    /// The snapshot for showing (masked by the view); blank if damaged.
    pub fn of(line: &Line) -> Destination {
        serde_json::from_str(&line.destination).unwrap_or_default()
    }
}

/// A line's state. `draft → approved → sent → paid`, then maybe `returned`; `failed` from
/// approved or sent; `canceled` from draft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineState {
    Draft,
    Approved,
    Sent,
    Paid,
    Returned,
    Failed,
    Canceled,
}

impl LineState {
    pub fn parse(s: &str) -> Option<LineState> {
        Some(match s {
            "draft" => Self::Draft,
            "approved" => Self::Approved,
            "sent" => Self::Sent,
            "paid" => Self::Paid,
            "returned" => Self::Returned,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Approved => "approved",
            Self::Sent => "sent",
            Self::Paid => "paid",
            Self::Returned => "returned",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// A run's state, derived from its lines' states: the least advanced open step wins; once
/// every line is settled, `paid` if all were paid, else `partially_failed`. A run that drew no
/// line is `empty`.
pub fn run_state<'a>(lines: impl IntoIterator<Item = &'a str>) -> &'static str {
    let states: Vec<LineState> = lines.into_iter().filter_map(LineState::parse).collect();
    let any = |s: LineState| states.contains(&s);
    if states.is_empty() {
        "empty"
    } else if states.iter().all(|s| *s == LineState::Canceled) {
        "canceled"
    } else if any(LineState::Draft) {
        "draft"
    } else if any(LineState::Approved) {
        "approved"
    } else if any(LineState::Sent) {
        "sent"
    } else if any(LineState::Failed) || any(LineState::Returned) {
        "partially_failed"
    } else {
        "paid"
    }
}
