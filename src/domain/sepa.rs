//! SEPA's rules that a generic XML schema does not check: the Latin character set banks
//! accept in text, and the TARGET2 calendar execution dates must fall on.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// Whether `c` is in the SEPA Latin character set (EPC guidance: a-z, A-Z, 0-9 and
/// `/ - ? : ( ) . , ' +` and space).
pub fn latin(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/-?:().,'+ ".contains(c)
}

/// Text as SEPA accepts it: German umlauts and ß as banks spell them (`Müller` → `Mueller`),
/// `&` as `+`, other letters by their closest ASCII (`Łódź` → `Lodz`, `山田` → `Shan Tian`),
/// anything else dropped;
/// runs of spaces collapsed; at most `max` characters. A name made only of characters
/// outside the set becomes `NOTPROVIDED`, which banks accept as a placeholder.
pub fn transliterate(text: &str, max: usize) -> String {
    let mut ascii = String::new();
    for c in text.chars() {
        match c {
            'ä' => ascii.push_str("ae"),
            'ö' => ascii.push_str("oe"),
            'ü' => ascii.push_str("ue"),
            'Ä' => ascii.push_str("Ae"),
            'Ö' => ascii.push_str("Oe"),
            'Ü' => ascii.push_str("Ue"),
            'ß' => ascii.push_str("ss"),
            '&' => ascii.push('+'),
            c if latin(c) => ascii.push(c),
            c if c.is_whitespace() => ascii.push(' '),
            // Letters only: an emoji's name is no part of a person's.
            c if c.is_alphabetic() => ascii.push_str(deunicode::deunicode_char(c).unwrap_or("")),
            _ => {}
        }
    }
    let words: Vec<String> = ascii
        .split(' ')
        .map(|w| w.chars().filter(|c| latin(*c)).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    let out: String = words.join(" ").chars().take(max).collect();
    match out.trim_end() {
        "" => "NOTPROVIDED".to_owned(),
        t => t.to_owned(),
    }
}

/// Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm).
fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let (b, c) = (year / 100, year % 100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

/// Whether TARGET2 (the euro's settlement system) settles on `day`: not on weekends, New
/// Year's Day, Good Friday, Easter Monday, 1 May, 25 and 26 December.
pub fn target_business_day(day: NaiveDate) -> bool {
    if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        return false;
    }
    if matches!(
        (day.month(), day.day()),
        (1, 1) | (5, 1) | (12, 25) | (12, 26)
    ) {
        return false;
    }
    match easter(day.year()) {
        Some(e) => day != e - Duration::days(2) && day != e + Duration::days(1),
        None => true,
    }
}

/// The first TARGET business day after `day`: when a file handed over on `day` is executed.
pub fn next_business_day(day: NaiveDate) -> NaiveDate {
    let mut next = day + Duration::days(1);
    while !target_business_day(next) {
        next += Duration::days(1);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn names_are_transliterated_into_the_latin_set() {
        assert_eq!(transliterate("Müller & Söhne", 70), "Mueller + Soehne");
        assert_eq!(transliterate("Łódź  Café", 70), "Lodz Cafe");
        assert_eq!(transliterate("Straße <b>", 70), "Strasse b");
        assert!(transliterate("山田", 70).chars().all(latin));
        assert_eq!(transliterate("😀", 70), "NOTPROVIDED");
        assert_eq!(transliterate("abcdef", 3), "abc");
    }

    #[test]
    fn easter_falls_where_the_calendars_say() {
        assert_eq!(easter(2024), Some(date(2024, 3, 31)));
        assert_eq!(easter(2025), Some(date(2025, 4, 20)));
        assert_eq!(easter(2026), Some(date(2026, 4, 5)));
        assert_eq!(easter(2027), Some(date(2027, 3, 28)));
    }

    #[test]
    fn execution_dates_skip_weekends_and_target_holidays() {
        // Friday 2026-11-27 → Monday 30th.
        assert_eq!(next_business_day(date(2026, 11, 27)), date(2026, 11, 30));
        // Thursday 24 December 2026 → Monday 28th (25th, 26th and the weekend closed).
        assert_eq!(next_business_day(date(2026, 12, 24)), date(2026, 12, 28));
        // Thursday 2 April 2026 → Tuesday 7th (Good Friday, Easter Monday).
        assert_eq!(next_business_day(date(2026, 4, 2)), date(2026, 4, 7));
        // Thursday 30 April 2026 → Monday 4 May.
        assert_eq!(next_business_day(date(2026, 4, 30)), date(2026, 5, 4));
        assert!(!target_business_day(date(2027, 1, 1)));
    }
}
