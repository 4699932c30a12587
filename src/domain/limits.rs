//! Bounds on values the service accepts, whoever sends them (clients, support, admins).

/// Years a timestamp may carry: 1970–9999. Outside them PostgreSQL refuses some (before
/// 4713 BC), period arithmetic overflows, and SQLite, which compares stored times as text,
/// misorders years of other than four digits.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// The most a price may be, in minor units: Stripe's own limit (eight digits, $999,999.99).
pub const MAX_AMOUNT_MINOR: i64 = 99_999_999;

/// The largest quota value (messages, megabytes, seats…): far above any plan, far below
/// where sums and JSON numbers lose precision (2^53).
pub const MAX_QUOTA: i64 = 1_000_000_000_000;

/// Whether `value` is a quota the service stores: 0 to `MAX_QUOTA`.
pub fn valid_quota(value: i64) -> bool {
    (0..=MAX_QUOTA).contains(&value)
}
