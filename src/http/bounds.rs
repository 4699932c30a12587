//! Bounds on what clients send that the JSON types alone do not give.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Deserializer};

use crate::domain::limits::YEARS;

/// `Option<DateTime<Utc>>` within `YEARS` (use with `#[serde(default, deserialize_with)]`).
pub fn optional_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let t = Option::<DateTime<Utc>>::deserialize(d)?;
    match t {
        Some(t) if !YEARS.contains(&t.year()) => Err(serde::de::Error::custom(format!(
            "timestamp {t} is outside the years {}-{}",
            YEARS.start(),
            YEARS.end()
        ))),
        t => Ok(t),
    }
}

/// A reason staff give for an action (a hold, a review): trimmed, 1-500 characters.
pub fn reason(text: &str) -> Result<String, crate::error::AppError> {
    let reason = text.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(crate::error::AppError::unprocessable(
            "invalid_reason",
            "reason must be 1-500 characters",
        ));
    }
    Ok(reason.to_owned())
}

/// Headers a request may carry: below actix's own parser limits (96 headers, a 128 KiB head),
/// so that a request over ours gets a problem document. Beyond actix's limits its parser
/// answers 431 before any of our code runs, with an empty body.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Why a request's headers are too large, if they are.
pub fn headers_too_large(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    let count = headers.len();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (count > MAX_HEADERS || bytes > MAX_HEADER_BYTES).then(|| {
        format!(
            "request headers: at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes, got {count} and {bytes}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct T {
        #[serde(default, deserialize_with = "optional_time")]
        at: Option<DateTime<Utc>>,
    }

    #[test]
    fn times_outside_the_years_are_refused() {
        for bad in [
            "+262142-12-31T23:59:59Z",
            "1969-12-31T23:59:59Z",
            "-4714-01-01T00:00:00Z",
        ] {
            let json = format!(r#"{{"at": "{bad}"}}"#);
            assert!(serde_json::from_str::<T>(&json).is_err(), "{bad}");
        }
        for good in ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
            let json = format!(r#"{{"at": "{good}"}}"#);
            assert!(
                serde_json::from_str::<T>(&json).unwrap().at.is_some(),
                "{good}"
            );
        }
        assert!(serde_json::from_str::<T>("{}").unwrap().at.is_none());
        assert!(serde_json::from_str::<T>(r#"{"at": null}"#)
            .unwrap()
            .at
            .is_none());
    }
}
