//! A creator's bank details: checked, stored whole (the bank file needs them), shown masked.
//! A change emails the creator and holds their payouts for the cooling-off period, so a
//! stolen session cannot quietly redirect earnings.

use crate::app::AppState;
use crate::db;
use crate::db::models::creators::Creator;
use crate::db::models::outbox;
use crate::db::models::payouts::{audit_creator, BankAccount, ConnectAccount};
use crate::db::models::to_db;
use crate::domain::bank_accounts::{mask, parse_bic, Iban};
use crate::domain::money::Currency;
use crate::domain::regions::Region;
use crate::domain::sepa::transliterate;
use crate::error::AppError;
use chrono::{Duration, Utc};

/// What a creator gives.
pub struct BankDetails {
    pub holder_name: String,
    pub iban: String,
    pub bic: Option<String>,
    pub town: String,
    pub country: String,
    pub currency: String,
}

fn text(value: &str, max: usize, code: &'static str, what: &str) -> Result<String, AppError> {
    let trimmed = value.trim();
    let n = trimmed.chars().count();
    if n == 0 || n > max || trimmed.chars().any(char::is_control) {
        return Err(AppError::unprocessable(
            code,
            format!("{what} must be 1-{max} characters without control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks the details and makes the row to store (`cooling_off_until` set by `put`).
fn checked(creator: &str, d: &BankDetails) -> Result<BankAccount, AppError> {
    let holder_name = text(&d.holder_name, 70, "invalid_holder_name", "holder_name")?;
    let town = text(&d.town, 35, "invalid_town", "town")?;
    // The bank file carries these in SEPA's Latin set: what cannot be written there (only
    // symbols, or too long once `ü` is `ue`) would reach the bank garbled or cut.
    for (value, max, code, what) in [
        (&holder_name, 70, "invalid_holder_name", "holder_name"),
        (&town, 35, "invalid_town", "town"),
    ] {
        let latin = transliterate(value, usize::MAX);
        if latin == "NOTPROVIDED"
            || latin.chars().count() > max
            || !latin.chars().any(char::is_alphanumeric)
        {
            return Err(AppError::unprocessable(
                code,
                format!(
                    "{what} must have letters a bank can read, at most {max} once transliterated"
                ),
            ));
        }
    }
    let iban = Iban::parse(&d.iban).map_err(|e| AppError::unprocessable("invalid_iban", e))?;
    let bic = match d.bic.as_deref() {
        Some(b) => Some(parse_bic(b).map_err(|e| AppError::unprocessable("invalid_bic", e))?),
        None => None,
    };
    let country = Region::parse(&d.country)
        .ok_or_else(|| {
            AppError::unprocessable(
                "invalid_country",
                "country must be an ISO 3166-1 alpha-2 code",
            )
        })?
        .as_str()
        .to_owned();
    let currency = Currency::parse(&d.currency.to_ascii_uppercase())
        .map_err(|e| AppError::unprocessable("invalid_currency", e))?;
    Ok(BankAccount {
        creator_id: creator.to_owned(),
        holder_name,
        iban: iban.as_str().to_owned(),
        bic,
        town,
        country,
        currency: currency.as_str().to_owned(),
        cooling_off_until: None,
        updated_at: to_db(Utc::now()),
    })
}

/// Stores a creator's bank details. A change of earlier details starts the cooling-off period
/// and emails the creator (the email names only the masked account).
pub async fn put(
    state: &AppState,
    creator: &str,
    details: BankDetails,
) -> Result<BankAccount, AppError> {
    let mut account = checked(creator, &details)?;
    let cooling = Duration::hours(state.settings.payouts.cooling_off_hours);
    db::transaction(&state.pool, move |conn| {
        if Creator::find(conn, &account.creator_id)?.is_none() {
            return Err(AppError::not_found("creator profile"));
        }
        let before = BankAccount::find(conn, &account.creator_id)?;
        // Giving bank details leaves Connect: that redirects payouts like a change does.
        let leaving_connect =
            ConnectAccount::find(conn, &account.creator_id)?.is_some_and(|c| c.chosen);
        if leaving_connect {
            ConnectAccount::choose(conn, &account.creator_id, false, None)?;
        }
        let changed = leaving_connect
            || before.as_ref().is_some_and(|b| {
                (
                    &b.holder_name,
                    &b.iban,
                    &b.bic,
                    &b.town,
                    &b.country,
                    &b.currency,
                ) != (
                    &account.holder_name,
                    &account.iban,
                    &account.bic,
                    &account.town,
                    &account.country,
                    &account.currency,
                )
            });
        account.cooling_off_until = if changed {
            Some(to_db(Utc::now() + cooling))
        } else {
            before.as_ref().and_then(|b| b.cooling_off_until)
        };
        if before.is_some() && !changed {
            return Ok(before.unwrap_or(account));
        }
        BankAccount::put(conn, &account)?;
        let (subject, action) = if changed {
            (
                "Your payout bank details were changed",
                "bank_details_changed",
            )
        } else {
            ("Your payout bank details were added", "bank_details_added")
        };
        let wait = match account.cooling_off_until {
            Some(t) => format!(
                "For your safety, payouts wait until {}. ",
                t.and_utc().format("%Y-%m-%d %H:%M UTC")
            ),
            None => String::new(),
        };
        let masked = mask(&account.iban);
        audit_creator(
            conn,
            &account.creator_id,
            &account.creator_id,
            action,
            &format!("{masked} ({})", account.currency),
        )?;
        outbox::enqueue_to_user(
            conn,
            &account.creator_id,
            format!(
                "{action}:{}:{}",
                account.creator_id,
                account.updated_at.and_utc().timestamp_micros()
            ),
            action,
            subject.to_owned(),
            format!(
                "The bank account your earnings are paid into is now {masked} ({}).\n\n\
                 {wait}If you did not make this change, contact support at once.\n",
                account.currency
            ),
        )?;
        Ok(account)
    })
    .await
}

pub async fn get(state: &AppState, creator: &str) -> Result<BankAccount, AppError> {
    let creator = creator.to_owned();
    db::run(&state.pool, move |conn| {
        if Creator::find(conn, &creator)?.is_none() {
            return Err(AppError::not_found("creator profile"));
        }
        BankAccount::find(conn, &creator)?.ok_or_else(|| AppError::not_found("bank account"))
    })
    .await
}
