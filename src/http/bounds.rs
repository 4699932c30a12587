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
