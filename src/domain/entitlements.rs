//! The entitlement engine: a pure function from everything a user holds, and an instant, to what
//! the user may use at that instant — and the earliest instant at which that answer can change.
//!
//! Every holding is reduced to a validity window `[from, until)`; the answer is the union of the
//! entitlements of the holdings whose window contains `now`. The answer can only change at a
//! window edge, so the next edge after `now` bounds every cache of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
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
    /// The plan everyone holds (the free tier, `entitlements.default_plan`). Last, so on a tie
    /// the user's own holding is named as the source.
    DefaultPlan,
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
    /// Held by everyone at every instant (the default plan).
    Always,
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
    /// When this holding confers its entitlements; `None` when never (an empty window, such as a
    /// grant revoked before it starts, is `None` too).
    pub fn window(&self) -> Option<Window> {
        let window = match &self.terms {
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
            Terms::Always => Some(Window {
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
        };
        window.filter(|w| match (w.from, w.until) {
            (Some(from), Some(until)) => from < until,
            _ => true,
        })
    }
}

/// One entitlement in effect now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    pub key: String,
    /// For quotas, the largest value any holding confers now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// When the last holding conferring this key now ends; `None` for never. The key is held at
    /// every instant of `[now, expires_at)` (it may go on being held after, through a holding
    /// that has not started yet).
    pub expires_at: Option<Instant>,
    /// The holding shown as giving this entitlement: see [`effective`] for how it is picked.
    pub source: Source,
}

/// The whole answer for one user at one instant (default: nothing, never changing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Sorted by key.
    pub entitlements: Vec<Effective>,
    /// The first instant after `now` at which the entitlements differ; `None` for never. The
    /// whole answer is the same at every instant of `[now, next_change)`.
    pub next_change: Option<Instant>,
}

/// How one holding offers one key, while its window contains `now`.
struct Offer<'a> {
    value: Option<i64>,
    /// The end of this holding's own window.
    until: Option<Instant>,
    source: &'a Source,
}

impl Offer<'_> {
    /// The tie-break of [`effective`] as a total order: the greatest offer is shown.
    fn rank(&self, other: &Self) -> Ordering {
        // `(true, None)` (never ends) sorts above every `(false, Some(end))`.
        let end = |o: &Self| (o.until.is_none(), o.until);
        self.value
            .cmp(&other.value)
            .then_with(|| end(self).cmp(&end(other)))
            // The smaller source wins, so it ranks higher.
            .then_with(|| other.source.cmp(self.source))
    }
}

/// Later end wins; `None` (never ends) is the latest.
fn later(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

/// The entitlements in effect at `now`, sorted by key.
fn entitlements_at(holdings: &[Holding], now: Instant) -> Vec<Effective> {
    // Per key: the best offer so far and the latest end of any offer.
    let mut by_key: BTreeMap<&str, (Offer, Option<Instant>)> = BTreeMap::new();
    for holding in holdings {
        let Some(window) = holding.window().filter(|w| w.contains(now)) else {
            continue;
        };
        for c in &holding.confers {
            let offer = Offer {
                value: c.value,
                until: window.until,
                source: &holding.source,
            };
            match by_key.get_mut(c.key.as_str()) {
                None => {
                    by_key.insert(&c.key, (offer, window.until));
                }
                Some((best, expires_at)) => {
                    *expires_at = later(*expires_at, window.until);
                    // Compared with the best offer's own end, never with the merged one: the
                    // pick must not depend on which offers came before it.
                    if offer.rank(best) == Ordering::Greater {
                        *best = offer;
                    }
                }
            }
        }
    }
    by_key
        .into_iter()
        .map(|(key, (best, expires_at))| Effective {
            key: key.to_owned(),
            value: best.value,
            expires_at,
            source: best.source.clone(),
        })
        .collect()
}

/// Computes what the holdings grant at `now`, and when that next changes.
///
/// Each key is shown once: with the largest value any holding in effect confers (a quota beats
/// a plain flag of the same key), the latest end of those holdings as `expires_at`, and as
/// `source` the holding picked by this rule:
/// 1. the bigger value;
/// 2. for equal values, the holding whose own window ends last (never-ending first);
/// 3. then the smallest [`Source`] (by kind, then id).
///
/// The answer therefore never depends on the order of `holdings`.
///
/// `next_change` is exact: the first window edge after `now` at which the entitlements differ
/// (an edge that changes nothing, such as a lesser grant ending, is skipped). Found by
/// evaluating at each edge in turn, at most [`MAX_PROBED_EDGES`] of them: past that (a user
/// with thousands of timed grants) the next unprobed edge is returned, earlier than or at the
/// real change, so caches refresh sooner but never serve a stale answer, and the work stays
/// O(holdings) per probe.
/// Edges evaluated for an exact `next_change` (see [`effective`]).
pub const MAX_PROBED_EDGES: usize = 64;

pub fn effective(holdings: &[Holding], now: Instant) -> Answer {
    let entitlements = entitlements_at(holdings, now);
    let mut edges: Vec<Instant> = holdings
        .iter()
        .filter(|h| !h.confers.is_empty())
        .filter_map(Holding::window)
        .flat_map(|w| [w.from, w.until])
        .flatten()
        .filter(|e| *e > now)
        .collect();
    edges.sort_unstable();
    edges.dedup();
    // Between two edges nothing changes, so the first edge that changes the answer is exact.
    let next_change = edges
        .iter()
        .take(MAX_PROBED_EDGES)
        .find(|e| entitlements_at(holdings, **e) != entitlements)
        .or(edges.get(MAX_PROBED_EDGES))
        .copied();
    Answer {
        entitlements,
        next_change,
    }
}

#[cfg(test)]
#[path = "entitlements_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "entitlements_laws.rs"]
mod laws;
