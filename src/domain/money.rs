//! Money: integer minor units plus an ISO 4217 currency. Never floats.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Active ISO 4217 currencies (2025), sorted: money may be in these and no others. Funds,
/// metals and the testing and no-currency codes (`XXX`, `XTS`, `XAU`, …) are not money.
const ISO_4217: [&str; 157] = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL",
    "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU",
    "UZS", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW",
    "ZWG",
];

/// Stripe's minimum charge per currency in minor units (Stripe's docs, "Minimum and maximum
/// charge amounts"); 50 minor units for currencies the table does not name.
pub fn stripe_minimum(currency: &Currency) -> i64 {
    match currency.as_str() {
        "AED" | "BGN" | "MYR" | "PLN" | "RON" => 200,
        "CZK" => 1500,
        "DKK" => 250,
        "GBP" => 30,
        "HKD" => 400,
        "HUF" => 17500,
        "MXN" => 1000,
        "NOK" | "SEK" => 300,
        "THB" => 1000,
        _ => 50,
    }
}

/// An ISO 4217 alphabetic code, upper case (`USD`, `EUR`, `JPY`), of an active currency.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, String> {
        if ISO_4217.binary_search(&code).is_ok() {
            Ok(Currency(code.to_owned()))
        } else {
            Err(format!(
                "currency must be an active ISO 4217 code in upper case, got {code:?}"
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

/// The number of decimals of a currency's minor unit by ISO 4217 (JPY 0, USD 2, KWD 3): what
/// files for banks and accountants write amounts with.
pub fn iso_exponent(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Minor units as a decimal string with the currency's ISO 4217 exponent: `12.34` (USD),
/// `1000` (JPY), `1.234` (KWD), `-0.05`. Integer arithmetic only.
pub fn decimal(minor: i64, currency: &str) -> String {
    let exponent = iso_exponent(currency);
    if exponent == 0 {
        return minor.to_string();
    }
    let unit = 10u64.pow(exponent);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = exponent as usize
    )
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
    fn decimals_follow_the_iso_exponent() {
        assert_eq!(decimal(1234, "USD"), "12.34");
        assert_eq!(decimal(-5, "EUR"), "-0.05");
        assert_eq!(decimal(1000, "JPY"), "1000");
        assert_eq!(decimal(1234, "KWD"), "1.234");
        assert_eq!(decimal(i64::MIN, "USD"), "-92233720368547758.08");
    }

    #[test]
    fn currency_must_be_three_upper_case_letters() {
        assert!(Currency::parse("USD").is_ok());
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("US1").is_err());
        // Codes of the right shape that are not money.
        for not_money in ["XXX", "XTS", "XAU", "ZZZ", "ABC"] {
            assert!(Currency::parse(not_money).is_err(), "{not_money}");
        }
        assert!(
            ISO_4217.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary search"
        );
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
