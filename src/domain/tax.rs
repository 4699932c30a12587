//! Income tax withheld from creator payouts: who files what, which rate applies, and how the
//! amount is rounded. The rules are the US ones a platform paying royalties follows: a US
//! person gives a TIN (form W-9) and nothing is withheld; a foreign person certifies their
//! country (form W-8BEN) and is withheld at the statutory 30 % or the lower rate their treaty
//! gives; without a valid form the payout is withheld at the backup rate (24 %) or blocked.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// A US taxpayer identification number: an SSN (`123-45-6789`) or an EIN (`12-3456789`),
/// stored as its nine digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tin {
    pub digits: String,
    pub kind: TinKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TinKind {
    Ssn,
    Ein,
}

impl TinKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ssn => "ssn",
            Self::Ein => "ein",
        }
    }
}

/// EIN prefixes the IRS never assigns (its published list of valid campus prefixes leaves
/// these out).
const UNASSIGNED_EIN_PREFIXES: [u32; 15] = [0, 7, 8, 9, 17, 18, 19, 28, 29, 49, 69, 70, 78, 79, 89];

impl Tin {
    /// Reads `kind`'s TIN: nine digits, dashes where the form puts them or none. An SSN never
    /// has area 000, 666 or 9xx, group 00 or serial 0000; an EIN never has an unassigned prefix.
    pub fn parse(value: &str, kind: TinKind) -> Result<Tin, String> {
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        let dashes_ok = match kind {
            TinKind::Ssn => matches!(value.len(), 9 | 11),
            TinKind::Ein => matches!(value.len(), 9 | 10),
        };
        let shape_ok = digits.len() == 9
            && dashes_ok
            && value.chars().all(|c| c.is_ascii_digit() || c == '-')
            && match (kind, value.len()) {
                (TinKind::Ssn, 11) => value.as_bytes()[3] == b'-' && value.as_bytes()[6] == b'-',
                (TinKind::Ein, 10) => value.as_bytes()[2] == b'-',
                _ => !value.contains('-'),
            };
        if !shape_ok {
            return Err(match kind {
                TinKind::Ssn => "an SSN is nine digits: 123-45-6789 or 123456789".into(),
                TinKind::Ein => "an EIN is nine digits: 12-3456789 or 123456789".into(),
            });
        }
        let num = |r: std::ops::Range<usize>| digits[r].parse::<u32>().unwrap_or(0);
        let valid = match kind {
            TinKind::Ssn => {
                let area = num(0..3);
                area != 0 && area != 666 && area < 900 && num(3..5) != 0 && num(5..9) != 0
            }
            TinKind::Ein => !UNASSIGNED_EIN_PREFIXES.contains(&num(0..2)),
        };
        if !valid {
            return Err(format!(
                "{} is not a number the IRS issues",
                kind.as_str().to_uppercase()
            ));
        }
        Ok(Tin { digits, kind })
    }
}

/// A TIN as answers show it: all but the last four digits hidden.
pub fn mask_tin(tin: &str) -> String {
    let chars: Vec<char> = tin.chars().collect();
    let shown = chars.len().min(4);
    let hidden = chars.len() - shown;
    "*".repeat(hidden) + &chars[hidden..].iter().collect::<String>()
}

/// A W-8BEN stays valid until the last day of the third calendar year after it was signed
/// (signed on 2026-11-28: valid through 2029-12-31); returns the first instant it is not.
pub fn w8_expiry(signed: DateTime<Utc>) -> DateTime<Utc> {
    let first_of = NaiveDate::from_ymd_opt(signed.year() + 4, 1, 1).unwrap_or(NaiveDate::MAX);
    Utc.from_utc_datetime(&first_of.and_time(chrono::NaiveTime::MIN))
}

/// What the creator filed, as withholding needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filed {
    /// A valid W-9.
    UsPerson,
    /// A valid W-8BEN with the treaty rate it claims (`None`: no treaty benefit).
    Foreign { treaty_rate_bps: Option<u16> },
    /// No profile, a rejected one, or an expired W-8BEN.
    Nothing,
}

/// What a payout does without a valid profile (`payouts.tax.without_profile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WithoutProfile {
    Withhold,
    Block,
}

/// The rates (`[payouts.tax]`).
#[derive(Clone, Copy, Debug, serde::Deserialize)]
pub struct Rates {
    pub without_profile: WithoutProfile,
    /// US backup withholding: 24 %.
    pub backup_rate_bps: u16,
    /// Royalties to a foreign person without a treaty benefit: 30 %.
    pub foreign_rate_bps: u16,
}

/// The most any rate may be (the statutory 30 %): below it a line always pays something.
pub const MAX_RATE_BPS: u16 = 3000;

impl Rates {
    pub fn check(&self) -> Result<(), String> {
        if self.backup_rate_bps > MAX_RATE_BPS || self.foreign_rate_bps > MAX_RATE_BPS {
            return Err(format!(
                "payouts.tax rates must be at most {MAX_RATE_BPS} basis points"
            ));
        }
        Ok(())
    }

    /// The rate a payout to someone who filed `filed` withholds at, or `None` when it may not
    /// be paid at all.
    pub fn rate(&self, filed: Filed) -> Option<u16> {
        match filed {
            Filed::UsPerson => Some(0),
            Filed::Foreign { treaty_rate_bps } => {
                Some(treaty_rate_bps.unwrap_or(self.foreign_rate_bps))
            }
            Filed::Nothing => match self.without_profile {
                WithoutProfile::Withhold => Some(self.backup_rate_bps),
                WithoutProfile::Block => None,
            },
        }
    }
}

/// Tax withheld from a payout of `amount` minor units at `rate_bps`: rounded half up to the
/// minor unit (the IRS rounds withholding to the cent; JPY lines to the yen), computed in
/// 128 bits so no amount overflows. Always less than `amount` for rates up to [`MAX_RATE_BPS`].
pub fn withheld(amount: i64, rate_bps: u16) -> i64 {
    let w = (i128::from(amount) * i128::from(rate_bps) + 5000) / 10_000;
    i64::try_from(w).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tins_are_nine_digits_the_irs_issues() {
        assert_eq!(
            Tin::parse("123-45-6789", TinKind::Ssn).unwrap().digits,
            "123456789"
        );
        assert!(Tin::parse("123456789", TinKind::Ssn).is_ok());
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "12-3456789",
            "1234-5-6789",
            "12345678",
            "1234567890",
            "123 45 6789",
            "١٢٣٤٥٦٧٨٩",
        ] {
            assert!(Tin::parse(bad, TinKind::Ssn).is_err(), "{bad}");
        }
        assert!(Tin::parse("12-3456789", TinKind::Ein).is_ok());
        assert!(Tin::parse("07-3456789", TinKind::Ein).is_err());
        assert!(Tin::parse("123-45-6789", TinKind::Ein).is_err());
    }

    #[test]
    fn masks_keep_the_last_four() {
        assert_eq!(mask_tin("123456789"), "*****6789");
        assert_eq!(mask_tin("12"), "12");
    }

    #[test]
    fn a_w8_expires_after_the_third_calendar_year() {
        let signed = Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap();
        assert_eq!(
            w8_expiry(signed),
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn rates_follow_what_was_filed() {
        let rates = Rates {
            without_profile: WithoutProfile::Withhold,
            backup_rate_bps: 2400,
            foreign_rate_bps: 3000,
        };
        assert_eq!(rates.rate(Filed::UsPerson), Some(0));
        assert_eq!(
            rates.rate(Filed::Foreign {
                treaty_rate_bps: Some(0)
            }),
            Some(0)
        );
        assert_eq!(
            rates.rate(Filed::Foreign {
                treaty_rate_bps: None
            }),
            Some(3000)
        );
        assert_eq!(rates.rate(Filed::Nothing), Some(2400));
        let block = Rates {
            without_profile: WithoutProfile::Block,
            ..rates
        };
        assert_eq!(block.rate(Filed::Nothing), None);
    }

    #[test]
    fn withholding_rounds_half_up_and_never_takes_everything() {
        assert_eq!(withheld(10_000, 2400), 2400);
        assert_eq!(withheld(5, 3000), 2); // 1.5 rounds up
        assert_eq!(withheld(5, 2999), 1);
        assert_eq!(withheld(1_005, 1000), 101); // 100.5
        assert_eq!(withheld(i64::MAX, 0), 0);
        assert!(withheld(i64::MAX, 3000) < i64::MAX);
        for amount in 1..2_000 {
            for rate in [0, 1, 1500, 2400, 2999, MAX_RATE_BPS] {
                assert!(withheld(amount, rate) < amount, "{amount} at {rate}");
            }
        }
    }
}
