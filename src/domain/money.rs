//! Money: integer minor units plus an ISO 4217 currency. Never floats.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 alphabetic code, upper case (`USD`, `EUR`, `JPY`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, String> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(code.to_owned()))
        } else {
            Err(format!(
                "currency must be an ISO 4217 code of three upper-case letters, got {code:?}"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount of money in the currency's minor unit (cents for USD, yen for JPY).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

/// An amount for people to read: `4.99 USD`, `500 JPY` (zero-decimal currencies as Stripe
/// lists them).
pub fn display(minor: i64, currency: &str) -> String {
    const ZERO_DECIMAL: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
        "XAF", "XOF", "XPF",
    ];
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&code.as_str()) {
        return format!("{minor} {code}");
    }
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} {code}", abs / 100, abs % 100)
}

/// Splits `gross` between creator and platform by the creator's share in basis points.
/// The creator gets the floor; the remainder (at most one minor unit short of a whole share)
/// goes to the platform, so the two parts always add up to `gross` exactly.
pub fn split_revenue(gross: i64, creator_share_bps: u16) -> (i64, i64) {
    let creator = (i128::from(gross) * i128::from(creator_share_bps)).div_euclid(10_000);
    let creator = i64::try_from(creator).unwrap_or(0);
    (creator, gross - creator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_display_in_major_units() {
        assert_eq!(display(499, "usd"), "4.99 USD");
        assert_eq!(display(-5, "EUR"), "-0.05 EUR");
        assert_eq!(display(500, "JPY"), "500 JPY");
    }

    #[test]
    fn currency_must_be_three_upper_case_letters() {
        assert!(Currency::parse("USD").is_ok());
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("US1").is_err());
    }

    #[test]
    fn split_gives_creator_the_floor_and_always_sums_to_gross() {
        assert_eq!(split_revenue(99, 7000), (69, 30));
        assert_eq!(split_revenue(100, 5000), (50, 50));
        for gross in 0..1000 {
            for bps in [0, 1, 3333, 5000, 7000, 10000] {
                let (c, p) = split_revenue(gross, bps);
                assert_eq!(c + p, gross);
                assert!(c >= 0 && p >= 0);
            }
        }
    }
}
