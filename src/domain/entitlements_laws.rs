//! The engine's laws, checked on generated holdings that overlap, tie on value, mix quotas with
//! plain flags and end (or never end) close together.
//!
//! The answer can only change at a window edge, so it is constant between two edges. Each law is
//! therefore checked exactly rather than sampled: with `now` at a generated instant and at every
//! edge `e` and `e − 1µs` in turn, and by probing after `now` at every edge `e` and `e − 1µs`
//! (however far off). An instant between two probes answers as the probe before it.

use super::*;
use chrono::{Duration, TimeZone};
use proptest::prelude::*;

fn at(minutes: i64) -> Instant {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::minutes(minutes)
}

fn us() -> Duration {
    Duration::microseconds(1)
}

/// Ten years, in minutes: an edge far beyond the cluster the others fall in.
const FAR: i64 = 10 * 365 * 24 * 60;

/// Few keys, so holdings often confer the same one.
const KEYS: [&str; 3] = ["premium", "max_upload_mb", "integrations"];

/// A plain flag or a small quota, so values often tie.
fn value() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![Just(None), (1i64..4).prop_map(Some)]
}

/// The length of a window in minutes: mostly short, sometimes ten years.
fn length() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 1i64..120, 1 => Just(FAR)]
}

fn terms() -> impl Strategy<Value = Terms> {
    let status = prop::sample::select(SubscriptionStatus::ALL.to_vec());
    prop_oneof![
        (
            status,
            0i64..120,
            length(),
            prop::option::of(0i64..120),
            prop::option::of(-30i64..120),
        )
            .prop_map(|(status, start, len, trial, grace)| Terms::Subscription {
                status,
                period_start: at(start),
                period_end: at(start + len),
                trial_end: trial.map(|t| at(start + t)),
                grace_until: grace.map(|g| at(start + len + g)),
            }),
        prop::sample::select(OrderStatus::ALL.to_vec()).prop_map(|status| Terms::Order { status }),
        (
            0i64..120,
            prop::option::of(length()),
            prop::option::of(0i64..240),
        )
            .prop_map(|(start, len, revoked)| Terms::Grant {
                starts_at: at(start),
                expires_at: len.map(|l| at(start + l)),
                revoked_at: revoked.map(at),
            }),
        // The default plan everyone holds.
        Just(Terms::Always),
    ]
}

fn holding(i: usize) -> impl Strategy<Value = Holding> {
    let confers = prop::collection::vec(
        (prop::sample::select(KEYS.to_vec()), value()).prop_map(|(key, value)| Conferred {
            key: key.to_owned(),
            value,
        }),
        0..3,
    );
    (terms(), confers, any::<bool>()).prop_map(move |(terms, confers, seat)| Holding {
        source: Source {
            kind: match terms {
                Terms::Subscription { .. } if seat => SourceKind::Seat,
                Terms::Subscription { .. } => SourceKind::Subscription,
                Terms::Order { .. } => SourceKind::Order,
                Terms::Grant { .. } => SourceKind::Grant,
                Terms::Always => SourceKind::DefaultPlan,
            },
            id: format!("h{i}"),
        },
        terms,
        confers,
    })
}

fn holdings() -> impl Strategy<Value = Vec<Holding>> {
    holdings_of(0..7)
}

/// Shuffled, so the order of ids says nothing about the order of the input.
fn holdings_of(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Holding>> {
    count
        .prop_flat_map(|n| (0..n).map(holding).collect::<Vec<_>>())
        .prop_shuffle()
}

/// Any instant around the holdings, to the microsecond.
fn instant() -> impl Strategy<Value = Instant> {
    (-10i64..260, 0i64..60_000_000).prop_map(|(m, u)| at(m) + Duration::microseconds(u))
}

/// Every window edge, sorted.
fn edges(held: &[Holding]) -> Vec<Instant> {
    let mut edges: Vec<Instant> = held
        .iter()
        .filter_map(Holding::window)
        .flat_map(|w| [w.from, w.until])
        .flatten()
        .collect();
    edges.sort_unstable();
    edges.dedup();
    edges
}

/// Every edge `e` and `e − 1µs`, sorted.
fn edge_probes(held: &[Holding]) -> Vec<Instant> {
    let mut probes: Vec<Instant> = edges(held)
        .into_iter()
        .flat_map(|e| [e - us(), e])
        .collect();
    probes.sort_unstable();
    probes.dedup();
    probes
}

/// The instants each law takes as `now`: the generated one and every edge probe.
fn nows(held: &[Holding], now: Instant) -> Vec<Instant> {
    let mut nows = edge_probes(held);
    nows.push(now);
    nows
}

fn lookup<'a>(answer: &'a Answer, key: &str) -> Option<&'a Effective> {
    answer.entitlements.iter().find(|e| e.key == key)
}

/// `a` ends no later than `b`; `None` is never.
fn ends_by(a: Option<Instant>, b: Option<Instant>) -> bool {
    match (a, b) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(a), Some(b)) => a <= b,
    }
}

proptest! {
    /// Law: the answer, every field of it, is the same for any order of the same holdings.
    #[test]
    fn answer_does_not_depend_on_input_order(
        (held, shuffled) in holdings().prop_flat_map(|h| (Just(h.clone()), Just(h).prop_shuffle())),
        now in instant(),
    ) {
        let mut reversed = held.clone();
        reversed.reverse();
        for now in nows(&held, now) {
            let answer = effective(&held, now);
            prop_assert_eq!(&effective(&shuffled, now), &answer, "shuffled, at {}", now);
            prop_assert_eq!(&effective(&reversed, now), &answer, "reversed, at {}", now);
        }
    }

    /// The tie-break, restated over the holdings in effect: `source` confers the shown value and
    /// no holding in effect beats it by value, then by its own end (never ending is last), then
    /// by a smaller source; `expires_at` is the latest end of them all.
    #[test]
    fn source_is_the_biggest_value_then_the_longest_lasting_then_the_smallest_source(
        held in holdings(), now in instant(),
    ) {
        for now in nows(&held, now) {
            for e in effective(&held, now).entitlements {
                let offers: Vec<(Option<i64>, Option<Instant>, &Source)> = held
                    .iter()
                    .filter_map(|h| h.window().filter(|w| w.contains(now)).map(|w| (h, w)))
                    .flat_map(|(h, w)| {
                        h.confers
                            .iter()
                            .filter(|c| c.key == e.key)
                            .map(move |c| (c.value, w.until, &h.source))
                    })
                    .collect();
                let shown = offers
                    .iter()
                    .filter(|(v, _, s)| *v == e.value && **s == e.source)
                    .map(|(_, until, _)| *until)
                    .reduce(|a, b| if ends_by(a, b) { b } else { a });
                prop_assert!(shown.is_some(), "{} at {}: source does not confer it", e.key, now);
                let shown = shown.unwrap();
                for (v, until, s) in &offers {
                    prop_assert!(*v <= e.value, "{} at {}: a bigger value", e.key, now);
                    prop_assert!(ends_by(*until, e.expires_at), "{}: ends after expires_at", e.key);
                    if *v == e.value {
                        prop_assert!(ends_by(*until, shown), "{}: one lasts longer", e.key);
                        if *until == shown {
                            prop_assert!(e.source <= **s, "{}: a smaller source", e.key);
                        }
                    }
                }
                let latest = offers.iter().map(|(_, u, _)| *u).reduce(|a, b| if ends_by(a, b) { b } else { a });
                prop_assert_eq!(latest, Some(e.expires_at));
            }
        }
    }

    /// Law: `expires_at` is honest — the key is held at every instant of `[now, expires_at)`.
    /// Probed at every edge and edge − 1µs in that span and at `expires_at − 1µs`.
    #[test]
    fn expires_at_is_held_at_every_instant_before_it(held in holdings(), now in instant()) {
        let probes = edge_probes(&held);
        for now in nows(&held, now) {
            for e in effective(&held, now).entitlements {
                prop_assert!(e.expires_at.is_none_or(|x| x > now), "{} expired at {}", e.key, now);
                let before_end = e.expires_at.map(|x| x - us());
                let within = probes
                    .iter()
                    .copied()
                    .filter(|p| *p > now && e.expires_at.is_none_or(|x| *p < x))
                    .chain(before_end);
                for p in within {
                    prop_assert!(
                        lookup(&effective(&held, p), &e.key).is_some(),
                        "{} said to last until {:?} at {} but gone at {}", e.key, e.expires_at, now, p
                    );
                }
            }
        }
    }

    /// Law: removing a holding never adds anything — no new key, no bigger value, no later
    /// `expires_at`.
    #[test]
    fn removing_a_holding_never_adds_anything(
        held in holdings_of(1..7), which in any::<prop::sample::Index>(), now in instant(),
    ) {
        let mut fewer = held.clone();
        fewer.remove(which.index(held.len()));
        for now in nows(&held, now) {
            let before = effective(&held, now);
            for e in effective(&fewer, now).entitlements {
                let had = lookup(&before, &e.key);
                prop_assert!(had.is_some(), "{} appeared at {}", e.key, now);
                let had = had.unwrap();
                prop_assert!(e.value <= had.value, "{} grew at {}", e.key, now);
                prop_assert!(ends_by(e.expires_at, had.expires_at), "{} lasts longer", e.key);
            }
        }
    }

    /// Law: `next_change` is tight. It is an edge after `now`; at every edge probe before it the
    /// whole answer (`next_change` included) is the answer at `now`, so it is no later than the
    /// first change; and at `next_change` the entitlements differ, so it is no earlier. `None`:
    /// no probe, however far off, differs.
    #[test]
    fn next_change_is_the_first_instant_the_answer_differs(held in holdings(), now in instant()) {
        let edges = edges(&held);
        let probes = edge_probes(&held);
        for now in nows(&held, now) {
            let answer = effective(&held, now);
            if let Some(change) = answer.next_change {
                prop_assert!(change > now && edges.contains(&change), "{} not an edge", change);
                prop_assert_ne!(
                    &effective(&held, change).entitlements, &answer.entitlements,
                    "nothing changes at next_change {} (now {})", change, now
                );
            }
            for p in probes.iter().copied().filter(|p| *p > now) {
                if answer.next_change.is_some_and(|c| p >= c) {
                    break;
                }
                prop_assert_eq!(&effective(&held, p), &answer, "changed at {} (now {})", p, now);
            }
        }
    }
}
