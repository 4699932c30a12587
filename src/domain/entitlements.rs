//! The entitlement engine: a pure function from everything a user holds, and an instant, to what
//! the user may use at that instant — and the earliest instant at which that answer can change.
//!
//! Every holding is reduced to a validity window `[from, until)`; the answer is the union of the
//! entitlements of the holdings whose window contains `now`. The answer can only change at a
//! window edge, so the next edge after `now` bounds every cache of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type Instant = DateTime<Utc>;

pub use super::states::{OrderStatus, SubscriptionStatus};

/// What kind of holding an entitlement comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Subscription,
    Seat,
    Order,
    Grant,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Source {
    pub kind: SourceKind,
    pub id: String,
}

/// One entitlement a holding confers: a key and, for quotas, a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conferred {
    pub key: String,
    pub value: Option<i64>,
}

/// How a holding is valid over time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Terms {
    /// A subscription, held directly or through a seat on a team subscription.
    Subscription {
        status: SubscriptionStatus,
        period_start: Instant,
        period_end: Instant,
        trial_end: Option<Instant>,
        grace_until: Option<Instant>,
    },
    /// A one-off purchase: kept for good once paid, lost on refund or dispute.
    Order { status: OrderStatus },
    /// Access given by hand: from `starts_at` until it expires or is revoked.
    Grant {
        starts_at: Instant,
        expires_at: Option<Instant>,
        revoked_at: Option<Instant>,
    },
}

/// Something a user holds that may confer entitlements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holding {
    pub source: Source,
    pub terms: Terms,
    pub confers: Vec<Conferred>,
}

/// A window `[from, until)`; `None` means unbounded on that side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Option<Instant>,
    pub until: Option<Instant>,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        self.from.is_none_or(|f| f <= t) && self.until.is_none_or(|u| t < u)
    }
}

impl Holding {
    /// When this holding confers its entitlements; `None` when never.
    pub fn window(&self) -> Option<Window> {
        match &self.terms {
            Terms::Subscription {
                status,
                period_start,
                period_end,
                trial_end,
                grace_until,
            } => {
                let until = match status {
                    SubscriptionStatus::Trialing => trial_end.unwrap_or(*period_end),
                    SubscriptionStatus::Active | SubscriptionStatus::Canceled => *period_end,
                    // A failed renewal keeps access until the grace period ends.
                    SubscriptionStatus::PastDue => grace_until.unwrap_or(*period_end),
                    SubscriptionStatus::Expired => return None,
                };
                Some(Window {
                    from: Some(*period_start),
                    until: Some(until),
                })
            }
            Terms::Order { status } => (*status == OrderStatus::Paid).then_some(Window {
                from: None,
                until: None,
            }),
            Terms::Grant {
                starts_at,
                expires_at,
                revoked_at,
            } => {
                let until = match (expires_at, revoked_at) {
                    (Some(e), Some(r)) => Some((*e).min(*r)),
                    (e, r) => e.or(*r),
                };
                Some(Window {
                    from: Some(*starts_at),
                    until,
                })
            }
        }
    }
}

/// One entitlement in effect now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    pub key: String,
    /// For quotas, the largest value any holding confers now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// When the last holding conferring this key ends; `None` for never.
    pub expires_at: Option<Instant>,
    /// The holding that gives the value (or lasts longest).
    pub source: Source,
}

/// The whole answer for one user at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Sorted by key.
    pub entitlements: Vec<Effective>,
    /// The earliest instant after `now` at which the answer may differ; `None` for never.
    pub next_change: Option<Instant>,
}

/// Later end wins; `None` (never ends) is the latest.
fn later(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

/// Orders candidate sources for one key: bigger value first, then longer-lasting, then by source
/// so the choice never depends on input order.
fn better(a: &Effective, b: &Effective) -> bool {
    let ends_later = |x: Option<Instant>, y: Option<Instant>| match (x, y) {
        (None, Some(_)) => true,
        (Some(x), Some(y)) => x > y,
        _ => false,
    };
    if a.value != b.value {
        return a.value > b.value;
    }
    if a.expires_at != b.expires_at {
        return ends_later(a.expires_at, b.expires_at);
    }
    a.source < b.source
}

/// Computes what the holdings grant at `now`.
pub fn effective(holdings: &[Holding], now: Instant) -> Answer {
    let mut by_key: BTreeMap<&str, Effective> = BTreeMap::new();
    let mut next_change: Option<Instant> = None;
    let mut note_edge = |edge: Option<Instant>| {
        if let Some(e) = edge.filter(|e| *e > now) {
            next_change = Some(next_change.map_or(e, |n| n.min(e)));
        }
    };

    for holding in holdings {
        let Some(window) = holding.window() else {
            continue;
        };
        note_edge(window.from);
        note_edge(window.until);
        if !window.contains(now) {
            continue;
        }
        for c in &holding.confers {
            let candidate = Effective {
                key: c.key.clone(),
                value: c.value,
                expires_at: window.until,
                source: holding.source.clone(),
            };
            match by_key.get_mut(c.key.as_str()) {
                None => {
                    by_key.insert(&c.key, candidate);
                }
                Some(held) => {
                    let expires_at = later(held.expires_at, candidate.expires_at);
                    if better(&candidate, held) {
                        *held = candidate;
                    }
                    held.expires_at = expires_at;
                }
            }
        }
    }

    Answer {
        entitlements: by_key.into_values().collect(),
        next_change,
    }
}

#[cfg(test)]
#[path = "entitlements_tests.rs"]
mod tests;
