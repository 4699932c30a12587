//! Bank details creators are paid into: IBAN (ISO 13616, checked by its mod-97 check digits),
//! BIC (ISO 9362) and how they are shown (masked: enough to recognise, never enough to reuse).

use super::regions::Region;

/// An IBAN in its electronic form: upper case, no spaces, check digits valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iban(String);

/// IBAN lengths of the SEPA countries (the SWIFT IBAN registry); other countries are held to
/// the general shape (15-34 characters) and the check digits.
#[rustfmt::skip]
const LENGTHS: &[(&str, usize)] = &[
    ("AD", 24), ("AT", 20), ("BE", 16), ("BG", 22), ("CH", 21), ("CY", 28), ("CZ", 24),
    ("DE", 22), ("DK", 18), ("EE", 20), ("ES", 24), ("FI", 18), ("FR", 27), ("GB", 22),
    ("GI", 23), ("GR", 27), ("HR", 21), ("HU", 28), ("IE", 22), ("IS", 26), ("IT", 27),
    ("LI", 21), ("LT", 20), ("LU", 20), ("LV", 21), ("MC", 27), ("MT", 31), ("NL", 18),
    ("NO", 15), ("PL", 28), ("PT", 25), ("RO", 24), ("SE", 24), ("SI", 19), ("SK", 24),
    ("SM", 27), ("VA", 22),
];

impl Iban {
    /// Accepts the paper form too (spaces, any case). The reason is for the creator.
    pub fn parse(text: &str) -> Result<Iban, &'static str> {
        let compact: String = text
            .chars()
            .filter(|c| *c != ' ')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !(15..=34).contains(&compact.len())
            || !compact.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err("an IBAN is 15-34 letters and digits");
        }
        let (country, check) = (&compact[..2], &compact[2..4]);
        if Region::parse(country).is_none() || !check.chars().all(|c| c.is_ascii_digit()) {
            return Err("an IBAN starts with a country code and two check digits");
        }
        // ISO 13616 computes check digits of 02-98 only.
        if ["00", "01", "99"].contains(&check) {
            return Err("the IBAN's check digits do not match (a typo?)");
        }
        if let Some((_, len)) = LENGTHS.iter().find(|(c, _)| *c == country) {
            if compact.len() != *len {
                return Err("the IBAN has the wrong length for its country");
            }
        }
        // ISO 7064 MOD 97-10: the first four characters moved to the end, letters as 10-35.
        let mut rest = 0u32;
        for c in compact[4..].chars().chain(compact[..4].chars()) {
            let value = c.to_digit(36).unwrap_or(0);
            rest = if value >= 10 {
                (rest * 100 + value) % 97
            } else {
                (rest * 10 + value) % 97
            };
        }
        if rest != 1 {
            return Err("the IBAN's check digits do not match (a typo?)");
        }
        Ok(Iban(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country, the check digits and the last four characters, the rest as `*`, in
    /// groups of four as on paper: `DE89 **** **** **** **30 00`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks a stored IBAN (see [`Iban::masked`]); stored IBANs were parsed, but a short one
/// still never shows more than its country and last four.
pub fn mask(iban: &str) -> String {
    let n = iban.chars().count();
    let shown: String = iban
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 4 || i + 4 >= n { c } else { '*' })
        .collect();
    let shown: Vec<char> = shown.chars().collect();
    shown
        .chunks(4)
        .map(|g| g.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A BIC: 4 letters (bank), a country, 2 letters or digits (location), optionally 3 more
/// (branch). Upper-cased.
pub fn parse_bic(text: &str) -> Result<String, &'static str> {
    let bic = text.trim().to_ascii_uppercase();
    let b = bic.as_bytes();
    let shape = (b.len() == 8 || b.len() == 11)
        && b[..6].iter().all(u8::is_ascii_alphabetic)
        && b[6..].iter().all(u8::is_ascii_alphanumeric);
    if !shape || Region::parse(&bic[4..6]).is_none() {
        return Err("a BIC is 8 or 11 characters: bank, country, location, optional branch");
    }
    Ok(bic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked_by_their_check_digits() {
        let iban = Iban::parse("de89 3704 0044 0532 0130 00").unwrap();
        assert_eq!(iban.as_str(), "DE89370400440532013000");
        assert!(Iban::parse("GB82WEST12345698765432").is_ok());
        assert!(Iban::parse("NO9386011117947").is_ok());
        // One digit changed, two swapped: the check digits catch both.
        assert!(Iban::parse("DE89370400440532013001").is_err());
        assert!(Iban::parse("DE89370400440523013000").is_err());
        assert!(Iban::parse("DE8937040044053201300").is_err());
        assert!(Iban::parse("ZZ89370400440532013000").is_err());
        assert!(Iban::parse("DE89-3704-0044-0532-0130-00").is_err());
        assert!(Iban::parse("").is_err());
    }

    #[test]
    fn masked_ibans_show_country_check_digits_and_last_four() {
        let iban = Iban::parse("DE89370400440532013000").unwrap();
        assert_eq!(iban.masked(), "DE89 **** **** **** **30 00");
        assert!(!iban.masked().contains("3704"));
    }

    #[test]
    fn bics_have_eight_or_eleven_characters() {
        assert_eq!(parse_bic("cobadeffxxx").unwrap(), "COBADEFFXXX");
        assert_eq!(parse_bic("DEUTDEFF").unwrap(), "DEUTDEFF");
        assert!(parse_bic("DEUTDEF").is_err());
        assert!(parse_bic("DEUTZZFF").is_err());
        assert!(parse_bic("1EUTDEFF").is_err());
        assert!(parse_bic("DEUTDEFF\u{e9}\u{e9}").is_err());
    }
}
