//! Creator statements: per creator, currency and month (UTC), what they were owed at the start,
//! every movement, and what they are owed at the end, all read from the ledger (the creator's
//! pending and available accounts), so opening + movements = closing and a month's closing is
//! the next month's opening by construction. Movements are grouped by what posted them (the
//! source key of their ledger transaction).

use crate::db::models::ledger::balance_before;
use crate::db::models::payments::Payment;
use crate::db::models::payouts::Line;
use crate::db::schema::{ledger_entries, ledger_transactions, payments, payout_lines};
use crate::db::DbConn;
use crate::domain::bank_accounts::mask;
use crate::domain::ledger::{creator_part, Account, AccountKind};
use crate::domain::money::Currency;
use crate::error::AppError;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// A month, UTC: `2026-11`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// `yyyy-mm`, 2000-01 to 2999-12.
    pub fn parse(text: &str) -> Option<Month> {
        let (y, m) = text.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        ((2000..=2999).contains(&year) && (1..=12).contains(&month))
            .then_some(Month { year, month })
    }

    pub fn of(t: DateTime<Utc>) -> Month {
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    pub fn start(self) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .unwrap_or(NaiveDate::MIN)
            .and_time(chrono::NaiveTime::MIN)
    }

    pub fn next(self) -> Month {
        match self.month {
            12 => Month {
                year: self.year + 1,
                month: 1,
            },
            m => Month {
                year: self.year,
                month: m + 1,
            },
        }
    }

    pub fn end(self) -> NaiveDateTime {
        self.next().start()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A payout in the month (approved, paid, failed or returned in it): its line, reference (the
/// line id, the bank's `EndToEndId`), where it went (masked) and its state now.
#[derive(Serialize)]
pub struct PayoutItem {
    pub line_id: String,
    pub run_id: String,
    /// Out of the balance: `net_minor` to the bank, `withheld_minor` income tax.
    pub amount_minor: i64,
    pub withheld_minor: i64,
    pub net_minor: i64,
    pub state: String,
    pub destination: String,
    pub reason_code: Option<String>,
}

/// A sale still in its hold at the month's end, and when it is (or was) released; its share is
/// net of everything refunded or disputed so far (not only before the month's end).
#[derive(Serialize)]
pub struct PendingItem {
    pub charge: String,
    pub share_minor: i64,
    pub releases_at: DateTime<Utc>,
}

/// A statement; amounts are what the platform owes the creator (positive) in minor units.
#[derive(Serialize)]
pub struct Statement {
    pub creator_id: String,
    pub currency: String,
    pub month: String,
    pub opening_minor: i64,
    pub opening_pending_minor: i64,
    pub opening_available_minor: i64,
    pub sales_count: i64,
    pub sales_gross_minor: i64,
    pub sales_share_minor: i64,
    /// Refunds and disputes taken back (negative), or given back (a dispute won).
    pub refunds_and_disputes_minor: i64,
    /// Moved from pending to available (no change to the total).
    pub released_minor: i64,
    /// Paid out (negative), and returned or failed payouts coming back (positive), net of
    /// the tax withheld from them.
    pub payouts_minor: i64,
    /// Income tax withheld at payout (negative), and released again when a payout failed or
    /// came back (positive).
    pub withheld_minor: i64,
    /// Anything else posted to the creator's accounts (corrections).
    pub other_minor: i64,
    pub closing_minor: i64,
    pub closing_pending_minor: i64,
    pub closing_available_minor: i64,
    /// A negative available balance at the end, carried into later months.
    pub carried_negative_minor: i64,
    pub payouts: Vec<PayoutItem>,
    pub pending: Vec<PendingItem>,
}

/// The most sales a statement lists the pending of (all are in the totals).
const PENDING_SHOWN: i64 = 500;

pub fn of_month(
    conn: &mut DbConn,
    creator: &str,
    currency: &Currency,
    month: Month,
    hold_days: i64,
) -> Result<Statement, AppError> {
    let pending_id = Account::creator(AccountKind::CreatorPending, creator, currency).id();
    let available_id = Account::creator(AccountKind::CreatorAvailable, creator, currency).id();
    let (start, end) = (month.start(), month.end());
    // Owed is the negation of the accounts' (credit) balances.
    let opening_pending = -balance_before(conn, &pending_id, start)?;
    let opening_available = -balance_before(conn, &available_id, start)?;
    // The month's movements, by what posted them: one row per (kind of source, account).
    let moves: Vec<(String, String, i64)> = ledger_entries::table
        .inner_join(ledger_transactions::table)
        .filter(ledger_entries::account_id.eq_any([&pending_id, &available_id]))
        .filter(ledger_entries::created_at.ge(start))
        .filter(ledger_entries::created_at.lt(end))
        .select((
            ledger_transactions::source_key,
            ledger_entries::account_id,
            ledger_entries::amount_minor,
        ))
        .load(conn)?;
    let mut by_kind: BTreeMap<&str, i64> = BTreeMap::new();
    let mut charges = Vec::new();
    let mut payout_lines_seen = Vec::new();
    for (source, account, amount) in &moves {
        let owed = -amount;
        let kind = source.split(':').next().unwrap_or("");
        match kind {
            "charge" => {
                charges.push(source["charge:".len()..].to_owned());
            }
            "payout" => {
                if let Some(line) = source.rsplit(':').next() {
                    payout_lines_seen.push(line.to_owned());
                }
            }
            "release" if account == &available_id => {
                *by_kind.entry("released").or_default() += owed;
                continue;
            }
            "release" => continue,
            _ => {}
        }
        *by_kind.entry(kind).or_default() += owed;
    }
    let mut gross = 0;
    for chunk in charges.chunks(1000) {
        let amounts: Vec<i64> = payments::table
            .filter(payments::stripe_charge_id.eq_any(chunk))
            .select(payments::amount_minor)
            .load(conn)?;
        gross += amounts.iter().sum::<i64>();
    }
    payout_lines_seen.sort();
    payout_lines_seen.dedup();
    let mut lines: BTreeMap<String, Line> = BTreeMap::new();
    for chunk in payout_lines_seen.chunks(1000) {
        let found: Vec<Line> = payout_lines::table
            .filter(payout_lines::id.eq_any(chunk))
            .select(Line::as_select())
            .load(conn)?;
        lines.extend(found.into_iter().map(|l| (l.id.clone(), l)));
    }
    // Lines paid in the month too: paying moves no money of the creator's (that happened at
    // approval), but the statement of the month the bank paid shows it.
    for l in Line::of_creator_changed(conn, creator, currency.as_str(), start, end, PENDING_SHOWN)?
    {
        lines.entry(l.id.clone()).or_insert(l);
    }
    // Each payout posting moves its whole line; the tax withheld from it is shown apart.
    let mut withheld_total = 0;
    for (source, _, amount) in &moves {
        if let Some(line) = source
            .strip_prefix("payout:")
            .and_then(|rest| rest.rsplit(':').next())
            .and_then(|id| lines.get(id))
        {
            withheld_total += line.withheld_minor * (-amount).signum();
        }
    }
    let payouts = lines
        .into_values()
        .map(|l| {
            let d = super::Destination::of(&l);
            let net_minor = l.net_minor();
            PayoutItem {
                destination: match &d.stripe_account {
                    Some(account) => format!("Stripe account {account}"),
                    None => format!("{} {}", d.holder_name, mask(&d.iban)),
                },
                line_id: l.id,
                run_id: l.run_id,
                amount_minor: l.amount_minor,
                withheld_minor: l.withheld_minor,
                net_minor,
                state: l.state,
                reason_code: l.reason_code,
            }
        })
        .collect();
    let still_pending: Vec<Payment> = payments::table
        .filter(payments::creator_id.eq(creator))
        .filter(payments::currency.eq(currency.as_str()))
        .filter(payments::created_at.lt(end))
        .filter(
            payments::released_at
                .is_null()
                .or(payments::released_at.ge(end)),
        )
        .order(payments::created_at)
        .limit(PENDING_SHOWN)
        .select(Payment::as_select())
        .load(conn)?;
    let pending = still_pending
        .iter()
        .map(|p| PendingItem {
            charge: p.stripe_charge_id.clone(),
            share_minor: p.creator_share_minor
                - creator_part(0, p.reversed_minor(), p.amount_minor, p.creator_share_minor),
            releases_at: (p.created_at + Duration::days(hold_days)).and_utc(),
        })
        // A sale refunded in full leaves nothing to release.
        .filter(|p| p.share_minor != 0)
        .collect();
    let get = |k: &str| by_kind.get(k).copied().unwrap_or(0);
    let sales_share = get("charge");
    let refunds = get("refund") + get("dispute");
    let payouts_total = get("payout") - withheld_total;
    let known = sales_share + refunds + payouts_total + withheld_total;
    let all: i64 = moves.iter().map(|(_, _, a)| -a).sum();
    let other = all - known;
    let closing_pending = -balance_before(conn, &pending_id, end)?;
    let closing_available = -balance_before(conn, &available_id, end)?;
    Ok(Statement {
        creator_id: creator.to_owned(),
        currency: currency.as_str().to_owned(),
        month: month.to_string(),
        opening_minor: opening_pending + opening_available,
        opening_pending_minor: opening_pending,
        opening_available_minor: opening_available,
        sales_count: charges.len() as i64,
        sales_gross_minor: gross,
        sales_share_minor: sales_share,
        refunds_and_disputes_minor: refunds,
        released_minor: get("released"),
        payouts_minor: payouts_total,
        withheld_minor: withheld_total,
        other_minor: other,
        closing_minor: closing_pending + closing_available,
        closing_pending_minor: closing_pending,
        closing_available_minor: closing_available,
        carried_negative_minor: closing_available.min(0),
        payouts,
        pending,
    })
}

/// The months and currencies a creator has statements for: from the month of their first
/// entry to this month, newest first, at most `limit` months.
pub fn months(
    conn: &mut DbConn,
    creator: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<(String, Vec<String>)>, AppError> {
    use crate::db::schema::ledger_accounts;
    let accounts: Vec<(String, String)> = ledger_accounts::table
        .filter(ledger_accounts::owner_id.eq(creator))
        .select((ledger_accounts::id, ledger_accounts::currency))
        .load(conn)?;
    let mut first: Option<NaiveDateTime> = None;
    for (id, _) in &accounts {
        let earliest: Option<NaiveDateTime> = ledger_entries::table
            .filter(ledger_entries::account_id.eq(id))
            .select(diesel::dsl::min(ledger_entries::created_at))
            .first(conn)?;
        first = match (first, earliest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let mut currencies: Vec<String> = accounts.into_iter().map(|(_, c)| c).collect();
    currencies.sort();
    currencies.dedup();
    let Some(first) = first else {
        return Ok(Vec::new());
    };
    let first = Month::of(first.and_utc());
    let mut month = Month::of(now);
    let mut out = Vec::new();
    while month >= first && out.len() < limit {
        out.push((month.to_string(), currencies.clone()));
        month = match month.month {
            1 => Month {
                year: month.year - 1,
                month: 12,
            },
            m => Month {
                year: month.year,
                month: m - 1,
            },
        };
    }
    Ok(out)
}

/// CSV columns of a statement (one row per figure, then the payouts and pending sales);
/// they only ever grow.
pub fn csv(s: &Statement) -> String {
    let mut out = String::from("section,item,reference,amount_minor,currency,detail\r\n");
    let mut row = |section: &str, item: &str, reference: &str, amount: i64, detail: &str| {
        out.push_str(&format!(
            "{section},{item},{reference},{amount},{},{}\r\n",
            s.currency,
            crate::domain::csv::text(detail)
        ));
    };
    row("balance", "opening", &s.month, s.opening_minor, "");
    row(
        "movement",
        "sales",
        "",
        s.sales_share_minor,
        &format!("{} sales, gross {}", s.sales_count, s.sales_gross_minor),
    );
    row(
        "movement",
        "refunds_and_disputes",
        "",
        s.refunds_and_disputes_minor,
        "",
    );
    row("movement", "payouts", "", s.payouts_minor, "");
    row("movement", "withheld", "", s.withheld_minor, "");
    row("movement", "other", "", s.other_minor, "");
    row("balance", "closing", &s.month, s.closing_minor, "");
    row(
        "balance",
        "closing_pending",
        &s.month,
        s.closing_pending_minor,
        "",
    );
    row(
        "balance",
        "closing_available",
        &s.month,
        s.closing_available_minor,
        "",
    );
    row("info", "released", "", s.released_minor, "");
    row("info", "carried_negative", "", s.carried_negative_minor, "");
    for p in &s.payouts {
        row(
            "payout",
            &p.state,
            &p.line_id,
            p.amount_minor,
            &if p.withheld_minor > 0 {
                format!("{}; {} withheld", p.destination, p.withheld_minor)
            } else {
                p.destination.clone()
            },
        );
    }
    for p in &s.pending {
        row(
            "pending",
            "releases_at",
            &p.charge,
            p.share_minor,
            &p.releases_at.to_rfc3339(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_strictly_and_follow_each_other() {
        let m = Month::parse("2026-12").unwrap();
        assert_eq!(m.next().to_string(), "2027-01");
        assert_eq!(m.end(), Month::parse("2027-01").unwrap().start());
        for bad in [
            "2026-13",
            "2026-00",
            "26-01",
            "2026-1",
            "2026/01",
            "+026-01",
            "１２３４-01",
        ] {
            assert!(Month::parse(bad).is_none(), "{bad}");
        }
    }
}
