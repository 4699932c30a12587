//! Creators' tax profiles, the withholding rate each gives, and the yearly totals finance
//! files from (1099-MISC for US persons, 1042-S for foreign ones).

use crate::app::AppState;
use crate::db;
use crate::db::models::creators::Creator;
use crate::db::models::payouts::{audit_creator, Line};
use crate::db::models::tax_profiles::TaxProfile;
use crate::db::models::{from_db, to_db};
use crate::domain::regions::Region;
use crate::domain::tax::{mask_tin, w8_expiry, Filed, Rates, Tin, TinKind, MAX_RATE_BPS};
use crate::error::AppError;
use chrono::{DateTime, NaiveDate, Utc};

/// What a creator files.
pub struct TaxDetails {
    pub kind: String,
    pub legal_name: String,
    pub tin: Option<String>,
    pub tin_type: Option<String>,
    pub country: String,
    pub treaty_rate_bps: Option<i64>,
    /// The creator certifies, under penalties of perjury, that what they filed is true.
    pub certify: bool,
}

fn invalid(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::unprocessable(code, message)
}

/// Checks what was filed and makes the row to store, signed `now`.
fn checked(creator: &str, d: &TaxDetails, now: DateTime<Utc>) -> Result<TaxProfile, AppError> {
    if !d.certify {
        return Err(invalid(
            "certification_required",
            "certify must be true: the creator certifies the profile is correct",
        ));
    }
    let legal_name = d.legal_name.trim();
    let n = legal_name.chars().count();
    if n == 0 || n > 100 || legal_name.chars().any(char::is_control) {
        return Err(invalid(
            "invalid_legal_name",
            "legal_name must be 1-100 characters without control characters",
        ));
    }
    let country = Region::parse(&d.country)
        .ok_or_else(|| {
            invalid(
                "invalid_country",
                "country must be an ISO 3166-1 alpha-2 code",
            )
        })?
        .as_str()
        .to_owned();
    let (tin, tin_type, treaty, expires) = match d.kind.as_str() {
        "us_person" => {
            if d.treaty_rate_bps.is_some() {
                return Err(invalid(
                    "invalid_treaty_rate",
                    "a US person claims no treaty rate",
                ));
            }
            let kind = match d.tin_type.as_deref() {
                Some("ssn") => TinKind::Ssn,
                Some("ein") => TinKind::Ein,
                _ => {
                    return Err(invalid(
                        "invalid_tin_type",
                        "a US person gives tin_type ssn or ein",
                    ))
                }
            };
            let tin = Tin::parse(d.tin.as_deref().unwrap_or(""), kind)
                .map_err(|e| invalid("invalid_tin", e))?;
            (Some(tin.digits), Some(kind.as_str().to_owned()), None, None)
        }
        "foreign" => {
            if country == "US" {
                return Err(invalid(
                    "invalid_country",
                    "a foreign person's country is not US; US persons file as us_person",
                ));
            }
            if d.tin_type.as_deref().is_some_and(|t| t != "foreign") {
                return Err(invalid(
                    "invalid_tin_type",
                    "a foreign person's TIN, if given, has tin_type foreign",
                ));
            }
            let tin = match d.tin.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(t) => {
                    if t.len() > 30
                        || !t
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ')
                    {
                        return Err(invalid(
                            "invalid_tin",
                            "a foreign TIN is at most 30 ASCII letters, digits, spaces or dashes",
                        ));
                    }
                    Some(t.to_owned())
                }
            };
            let treaty = match d.treaty_rate_bps {
                None => None,
                Some(r) if (0..=i64::from(MAX_RATE_BPS)).contains(&r) => Some(r as i32),
                Some(_) => {
                    return Err(invalid(
                        "invalid_treaty_rate",
                        format!("treaty_rate_bps is 0-{MAX_RATE_BPS} basis points"),
                    ))
                }
            };
            if treaty.is_some() && tin.is_none() {
                return Err(invalid(
                    "tin_required",
                    "a treaty rate is claimed with the creator's foreign TIN",
                ));
            }
            let tin_type = tin.as_ref().map(|_| "foreign".to_owned());
            (tin, tin_type, treaty, Some(to_db(w8_expiry(now))))
        }
        _ => {
            return Err(invalid(
                "invalid_kind",
                "kind is us_person (form W-9) or foreign (form W-8BEN)",
            ))
        }
    };
    Ok(TaxProfile {
        creator_id: creator.to_owned(),
        kind: d.kind.clone(),
        legal_name: legal_name.to_owned(),
        tin,
        tin_type,
        country,
        treaty_rate_bps: treaty,
        signed_at: to_db(now),
        expires_at: expires,
        // A treaty claim lowers withholding on the creator's word: finance checks it first.
        status: if treaty.is_some() { "pending" } else { "valid" }.into(),
        status_reason: None,
        updated_at: to_db(now),
    })
}

/// What a profile counts as `now` (a rejected or expired one as nothing).
pub fn filed(profile: Option<&TaxProfile>, now: DateTime<Utc>) -> Filed {
    match profile {
        Some(p) if status(p, now) == "valid" => match p.kind.as_str() {
            "us_person" => Filed::UsPerson,
            _ => Filed::Foreign {
                treaty_rate_bps: p.treaty_rate_bps.and_then(|r| u16::try_from(r).ok()),
            },
        },
        _ => Filed::Nothing,
    }
}

/// `valid`, `pending` (waiting for finance), `rejected` (by finance) or `expired` (a W-8BEN
/// past its third calendar year).
pub fn status(p: &TaxProfile, now: DateTime<Utc>) -> &'static str {
    if p.status == "rejected" {
        "rejected"
    } else if p.status == "pending" {
        "pending"
    } else if p.expires_at.is_some_and(|t| from_db(t) <= now) {
        "expired"
    } else {
        "valid"
    }
}

/// The rate a payout to `creator` withholds at now, or `None` when it may not be paid.
pub fn rate_of(rates: &Rates, profile: Option<&TaxProfile>, now: DateTime<Utc>) -> Option<u16> {
    rates.rate(filed(profile, now))
}

/// The profile as answers show it: the TIN masked.
pub fn masked_tin(p: &TaxProfile) -> Option<String> {
    p.tin.as_deref().map(mask_tin)
}

/// Files (or re-files) a creator's tax profile. A filing after finance rejected the last one
/// waits for finance (`pending`), so re-sending a rejected profile never undoes the rejection.
pub async fn put(
    state: &AppState,
    creator: &str,
    details: TaxDetails,
) -> Result<TaxProfile, AppError> {
    let mut profile = checked(creator, &details, Utc::now())?;
    db::transaction(&state.pool, move |conn| {
        if Creator::find(conn, &profile.creator_id)?.is_none() {
            return Err(AppError::not_found("creator profile"));
        }
        let before = TaxProfile::find(conn, &profile.creator_id)?;
        if before.is_some_and(|b| b.status != "valid") {
            profile.status = "pending".into();
        }
        TaxProfile::put(conn, &profile)?;
        let detail = match profile.kind.as_str() {
            "us_person" => format!(
                "W-9, {} {}",
                profile.tin_type.as_deref().unwrap_or("-"),
                masked_tin(&profile).unwrap_or_default()
            ),
            _ => format!(
                "W-8BEN, {}, treaty rate {}",
                profile.country,
                profile
                    .treaty_rate_bps
                    .map_or("none".to_owned(), |r| format!("{r} bps"))
            ),
        };
        audit_creator(
            conn,
            &profile.creator_id,
            &profile.creator_id,
            "tax_profile_filed",
            &detail,
        )?;
        Ok(profile)
    })
    .await
}

pub async fn get(state: &AppState, creator: &str) -> Result<TaxProfile, AppError> {
    let creator = creator.to_owned();
    db::run(&state.pool, move |conn| {
        if Creator::find(conn, &creator)?.is_none() {
            return Err(AppError::not_found("creator profile"));
        }
        TaxProfile::find(conn, &creator)?.ok_or_else(|| AppError::not_found("tax profile"))
    })
    .await
}

/// Finance accepts a profile again or rejects it (a TIN the IRS did not match, a treaty claim
/// that does not hold), with the reason; audited.
pub async fn set_status(
    state: &AppState,
    actor: &str,
    creator: &str,
    valid: bool,
    reason: String,
) -> Result<TaxProfile, AppError> {
    if actor == creator {
        return Err(AppError::conflict(
            "self_review",
            "a tax profile is accepted or rejected by a finance user other than its creator",
        ));
    }
    let (actor, creator) = (actor.to_owned(), creator.to_owned());
    db::transaction(&state.pool, move |conn| {
        let status = if valid { "valid" } else { "rejected" };
        let reason_kept = (!valid).then_some(reason.as_str());
        if TaxProfile::set_status(conn, &creator, status, reason_kept, to_db(Utc::now()))? == 0 {
            return Err(AppError::not_found("tax profile"));
        }
        audit_creator(
            conn,
            &creator,
            &actor,
            if valid {
                "tax_profile_accepted"
            } else {
                "tax_profile_rejected"
            },
            &reason,
        )?;
        TaxProfile::find(conn, &creator)?.ok_or_else(|| AppError::not_found("tax profile"))
    })
    .await
}

/// One creator's payouts in a currency over a tax year.
pub struct YearTotal {
    pub creator_id: String,
    pub currency: String,
    pub lines: i64,
    /// What was paid out before withholding (the income reported).
    pub paid_minor: i64,
    pub withheld_minor: i64,
    pub profile: Option<TaxProfile>,
}

/// The payouts the bank paid in `year` (UTC), per creator and currency, with each creator's
/// profile as it is now: a page after the (creator, currency) cursor.
pub async fn creator_totals(
    state: &AppState,
    year: i32,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<(Vec<YearTotal>, Option<(String, String)>), AppError> {
    let start = |y: i32| {
        NaiveDate::from_ymd_opt(y, 1, 1)
            .map(|d| d.and_time(chrono::NaiveTime::MIN))
            .ok_or_else(|| invalid("invalid_year", "year is 2000-9998"))
    };
    let (from, until) = (start(year)?, start(year + 1)?);
    db::run(&state.pool, move |conn| {
        let rows = Line::paid_totals(
            conn,
            from,
            until,
            after.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
            limit + 1,
        )?;
        let more = rows.len() as i64 > limit;
        let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
        let creators: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let profiles = TaxProfile::all_of(conn, &creators)?;
        let next = if more {
            rows.last().map(|r| (r.0.clone(), r.1.clone()))
        } else {
            None
        };
        let totals = rows
            .into_iter()
            .map(|(creator, currency, lines, paid, withheld)| YearTotal {
                profile: profiles.get(&creator).cloned(),
                creator_id: creator,
                currency,
                lines,
                paid_minor: paid,
                withheld_minor: withheld,
            })
            .collect();
        Ok((totals, next))
    })
    .await
}
