//! Finance's exports of the ledger: every entry (`ledger.csv`) and a balanced daily journal per
//! currency for an ERP (`journal.csv`). Both are RFC 4180 CSV in UTF-8 (with a BOM for Excel
//! when asked), read from the database a page of entries (or a day) at a time and streamed, so
//! their size never decides the service's memory. Entries are only ever added, stamped when
//! they are posted, so the same period asked twice gives the same bytes once it is over.
//! Column lists only ever grow, at the end (documented in the README).

use crate::app::AppState;
use crate::db;
use crate::db::models::ledger::{entries_page, sums_by_kind, ExportedEntry};
use crate::domain::csv::{text, BOM};
use crate::domain::money::decimal;
use crate::error::AppError;
use chrono::{Days, NaiveDate, NaiveDateTime};
use futures_util::Stream;
use std::collections::BTreeMap;

pub const LEDGER_COLUMNS: &str = "entry_id,posted_at,transaction_id,source_key,description,\
account_id,account_kind,owner_id,currency,amount_minor,amount";

pub const JOURNAL_COLUMNS: &str = "external_id,journal_id,date,currency,gl_code,account_kinds,\
memo,debit_minor,credit_minor,debit,credit";

/// Days summed per trip to the database while `journal.csv` streams.
const JOURNAL_DAYS: u64 = 31;
/// The longest period one export covers.
pub const MAX_DAYS: i64 = 366;

/// Whole UTC days, `from` to `to` inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    pub fn parse(from: &str, to: &str) -> Result<Period, AppError> {
        let day = |name: &str, s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .filter(|_| s.len() == 10)
                .filter(|d| (2000..=9998).contains(&chrono::Datelike::year(d)))
                .ok_or_else(|| {
                    AppError::unprocessable(
                        "invalid_period",
                        format!("{name} is a date from 2000 on as YYYY-MM-DD (UTC)"),
                    )
                })
        };
        let (from, to) = (day("from", from)?, day("to", to)?);
        if to < from {
            return Err(AppError::unprocessable(
                "invalid_period",
                "to is on or after from",
            ));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(AppError::unprocessable(
                "invalid_period",
                format!("an export covers at most {MAX_DAYS} days"),
            ));
        }
        Ok(Period { from, to })
    }

    /// Refuses a period that is not over: its last day ended, and postings stamped in it have
    /// committed (`SETTLED_AFTER_MINUTES`). A journal is imported once per external id, so it
    /// is only ever made of days that can no longer change.
    pub fn require_over(self, now: chrono::DateTime<chrono::Utc>) -> Result<(), AppError> {
        let settled = start(next(self.to)).and_utc()
            + chrono::Duration::minutes(crate::db::models::ledger::SETTLED_AFTER_MINUTES);
        if settled > now {
            return Err(AppError::unprocessable(
                "period_not_over",
                format!(
                    "the journal covers days that are over: to is at most yesterday (UTC), and \
                     a day can be exported from {} minutes after it ended",
                    crate::db::models::ledger::SETTLED_AFTER_MINUTES
                ),
            ));
        }
        Ok(())
    }

    /// `[from 00:00, the day after to 00:00)` in UTC, as stored.
    fn bounds(self) -> (NaiveDateTime, NaiveDateTime) {
        (start(self.from), start(next(self.to)))
    }
}

fn start(day: NaiveDate) -> NaiveDateTime {
    day.and_time(chrono::NaiveTime::MIN)
}

fn next(day: NaiveDate) -> NaiveDate {
    day.checked_add_days(Days::new(1)).unwrap_or(day)
}

fn ledger_row(out: &mut String, e: &ExportedEntry) {
    let row = [
        text(&e.id),
        e.created_at
            .and_utc()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
        text(&e.transaction_id),
        text(&e.source_key),
        text(&e.description),
        text(&e.account_id),
        text(&e.kind),
        text(e.owner_id.as_deref().unwrap_or("")),
        text(&e.currency),
        e.amount_minor.to_string(),
        decimal(e.amount_minor, &e.currency),
    ];
    out.push_str(&row.join(","));
    out.push_str("\r\n");
}

/// Where a streaming export has got to.
enum Cursor<T> {
    Start,
    After(T),
    Done,
}

/// `ledger.csv` for the period (one account's entries, if given): one row per entry, by time.
/// Amounts are signed: positive debits the account, negative credits it.
pub fn ledger_csv(
    state: &AppState,
    period: Period,
    account: Option<String>,
    bom: bool,
) -> impl Stream<Item = Result<bytes::Bytes, AppError>> {
    let pool = state.pool.clone();
    let page_size = state.settings.accounting.export_page_entries;
    futures_util::stream::try_unfold(Cursor::Start, move |cursor| {
        let (pool, account) = (pool.clone(), account.clone());
        async move {
            let (mut out, after) = match cursor {
                Cursor::Done => return Ok(None),
                Cursor::Start => {
                    let bom = if bom { BOM } else { "" };
                    (format!("{bom}{LEDGER_COLUMNS}\r\n"), None)
                }
                Cursor::After(after) => (String::new(), Some(after)),
            };
            // Formatted where it is read, on the blocking thread, not the server's.
            let (out, next) = db::run(&pool, move |conn| {
                let page = entries_page(
                    conn,
                    period.bounds(),
                    account.as_deref(),
                    after.as_ref(),
                    page_size,
                )?;
                for e in &page {
                    ledger_row(&mut out, e);
                }
                let next = match page.last() {
                    Some(last) if page.len() as i64 == page_size => {
                        Cursor::After((last.created_at, last.id.clone()))
                    }
                    _ => Cursor::Done,
                };
                Ok((out, next))
            })
            .await?;
            Ok(Some((bytes::Bytes::from(out), next)))
        }
    })
}

/// The journal of one day in one currency: net per GL code, debit or credit.
fn journal_rows(
    out: &mut String,
    gl_codes: &BTreeMap<String, String>,
    day: NaiveDate,
    sums: &[(String, String, i64)],
) -> Result<(), AppError> {
    // currency → GL code → (net, the account kinds booked to it)
    let mut books: BTreeMap<&str, BTreeMap<&str, (i64, Vec<&str>)>> = BTreeMap::new();
    for (kind, currency, sum) in sums {
        let code = gl_codes.get(kind).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("no GL code for account kind {kind}"))
        })?;
        let (net, kinds) = books
            .entry(currency)
            .or_default()
            .entry(code)
            .or_insert((0, Vec::new()));
        *net += sum;
        kinds.push(kind);
    }
    for (currency, codes) in books {
        let total: i64 = codes.values().map(|(net, _)| net).sum();
        if total != 0 {
            return Err(AppError::Internal(anyhow::anyhow!(
                "the ledger's {currency} entries of {day} do not balance ({total})"
            )));
        }
        let journal = format!("kopilka-{day}-{currency}");
        for (code, (net, kinds)) in codes.into_iter().filter(|(_, (net, _))| *net != 0) {
            let (debit, credit) = if net > 0 { (net, 0) } else { (0, -net) };
            let row = [
                text(&format!("{journal}-{code}")),
                text(&journal),
                day.to_string(),
                text(currency),
                text(code),
                text(&kinds.join(" ")),
                text(&format!("Kopilka ledger {day} {currency}")),
                debit.to_string(),
                credit.to_string(),
                decimal(debit, currency),
                decimal(credit, currency),
            ];
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        }
    }
    Ok(())
}

/// `journal.csv` for the period: for each day and currency, one journal that balances, with a
/// line per GL code (account kinds mapped by `accounting.gl_codes`) carrying the day's net as
/// a debit or a credit, and an external id stable across exports.
pub fn journal_csv(
    state: &AppState,
    period: Period,
    bom: bool,
) -> impl Stream<Item = Result<bytes::Bytes, AppError>> {
    let pool = state.pool.clone();
    let gl_codes = state.settings.accounting.gl_codes.clone();
    futures_util::stream::try_unfold(Cursor::Start, move |cursor| {
        let (pool, gl_codes) = (pool.clone(), gl_codes.clone());
        async move {
            let (mut out, first) = match cursor {
                Cursor::Done => return Ok(None),
                Cursor::Start => {
                    let bom = if bom { BOM } else { "" };
                    (format!("{bom}{JOURNAL_COLUMNS}\r\n"), period.from)
                }
                Cursor::After(day) => (String::new(), day),
            };
            let last = first
                .checked_add_days(Days::new(JOURNAL_DAYS - 1))
                .unwrap_or(period.to)
                .min(period.to);
            let out = db::run(&pool, move |conn| {
                let mut day = first;
                while day <= last {
                    let sums = sums_by_kind(conn, (start(day), start(next(day))))?;
                    journal_rows(&mut out, &gl_codes, day, &sums)?;
                    day = next(day);
                }
                Ok(out)
            })
            .await?;
            let next = if last < period.to {
                Cursor::After(next(last))
            } else {
                Cursor::Done
            };
            Ok(Some((bytes::Bytes::from(out), next)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_whole_days_of_at_most_a_year() {
        let p = Period::parse("2026-01-01", "2026-12-31").expect("a year");
        assert_eq!(
            p.bounds().1,
            start(NaiveDate::from_ymd_opt(2027, 1, 1).expect("date"))
        );
        assert!(
            Period::parse("2024-01-01", "2024-12-31").is_ok(),
            "366 days"
        );
        assert!(
            Period::parse("2026-01-01", "2027-01-01").is_ok(),
            "366 days"
        );
        assert!(
            Period::parse("2026-01-01", "2027-01-02").is_err(),
            "367 days"
        );
        assert!(Period::parse("2026-02-01", "2026-01-31").is_err());
        assert!(Period::parse("2026-02-30", "2026-03-01").is_err());
        assert!(Period::parse("1999-12-31", "2000-01-01").is_err());
        assert!(Period::parse("2026-1-1", "2026-01-02").is_err());
    }

    #[test]
    fn a_day_nets_each_gl_code_and_refuses_an_unbalanced_one() {
        let codes: BTreeMap<String, String> = [
            ("stripe_clearing", "1100"),
            ("platform_revenue", "4000"),
            ("creator_pending", "2100"),
            ("creator_available", "2100"),
        ]
        .into_iter()
        .map(|(k, c)| (k.to_owned(), c.to_owned()))
        .collect();
        let day = NaiveDate::from_ymd_opt(2026, 11, 3).expect("date");
        let sums = vec![
            ("creator_available".to_owned(), "JPY".to_owned(), -300),
            ("creator_pending".to_owned(), "JPY".to_owned(), -400),
            ("platform_revenue".to_owned(), "JPY".to_owned(), -300),
            ("stripe_clearing".to_owned(), "JPY".to_owned(), 1000),
        ];
        let mut out = String::new();
        journal_rows(&mut out, &codes, day, &sums).expect("balanced");
        assert_eq!(
            out,
            "kopilka-2026-11-03-JPY-1100,kopilka-2026-11-03-JPY,2026-11-03,JPY,1100,stripe_clearing,Kopilka ledger 2026-11-03 JPY,1000,0,1000,0\r\n\
             kopilka-2026-11-03-JPY-2100,kopilka-2026-11-03-JPY,2026-11-03,JPY,2100,creator_available creator_pending,Kopilka ledger 2026-11-03 JPY,0,700,0,700\r\n\
             kopilka-2026-11-03-JPY-4000,kopilka-2026-11-03-JPY,2026-11-03,JPY,4000,platform_revenue,Kopilka ledger 2026-11-03 JPY,0,300,0,300\r\n"
        );
        let mut out = String::new();
        let unbalanced = &sums[1..];
        assert!(journal_rows(&mut out, &codes, day, unbalanced).is_err());
    }
}
