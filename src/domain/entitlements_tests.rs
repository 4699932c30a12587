//! Laws of the entitlement engine, checked on generated holdings (proptest), plus examples.

use super::*;
use chrono::{Duration, TimeZone};
use proptest::prelude::*;

fn t0() -> Instant {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn at(minutes: i64) -> Instant {
    t0() + Duration::minutes(minutes)
}

const KEYS: [&str; 4] = [
    "premium",
    "max_upload_mb",
    "sticker_pack:cats",
    "integrations",
];

fn conferred() -> impl Strategy<Value = Vec<Conferred>> {
    prop::collection::vec(
        (0..KEYS.len(), prop::option::of(0i64..5000)).prop_map(|(k, v)| Conferred {
            key: KEYS[k].to_owned(),
            value: v,
        }),
        0..3,
    )
}

fn status() -> impl Strategy<Value = SubscriptionStatus> {
    prop::sample::select(SubscriptionStatus::ALL.to_vec())
}

fn terms() -> impl Strategy<Value = Terms> {
    prop_oneof![
        (
            status(),
            0i64..500,
            1i64..500,
            prop::option::of(0i64..500),
            prop::option::of(0i64..900)
        )
            .prop_map(|(status, start, len, trial, grace)| Terms::Subscription {
                status,
                period_start: at(start),
                period_end: at(start + len),
                trial_end: trial.map(|t| at(start + t)),
                grace_until: grace.map(at),
            }),
        prop::sample::select(OrderStatus::ALL.to_vec()).prop_map(|status| Terms::Order { status }),
        (
            0i64..500,
            prop::option::of(1i64..500),
            prop::option::of(0i64..900)
        )
            .prop_map(|(start, len, revoked)| Terms::Grant {
                starts_at: at(start),
                expires_at: len.map(|l| at(start + l)),
                revoked_at: revoked.map(at),
            }),
    ]
}

fn holding(i: usize) -> impl Strategy<Value = Holding> {
    (terms(), conferred()).prop_map(move |(terms, confers)| Holding {
        source: Source {
            kind: match terms {
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
    (0usize..6).prop_flat_map(|n| (0..n).map(holding).collect::<Vec<_>>())
}

fn lookup<'a>(answer: &'a Answer, key: &str) -> Option<&'a Effective> {
    answer.entitlements.iter().find(|e| e.key == key)
}

proptest! {
    #[test]
    fn adding_a_grant_never_removes_an_entitlement(
        held in holdings(), extra in holding(99), now in 0i64..1000,
    ) {
        let now = at(now);
        let before = effective(&held, now);
        let mut more = held.clone();
        more.push(extra);
        let after = effective(&more, now);
        for e in &before.entitlements {
            let kept = lookup(&after, &e.key);
            prop_assert!(kept.is_some(), "{} lost", e.key);
            let kept = kept.unwrap_or(e);
            prop_assert!(kept.value >= e.value, "{} quota shrank", e.key);
            let lasts_as_long = match (kept.expires_at, e.expires_at) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => a >= b,
            };
            prop_assert!(lasts_as_long, "{} ends earlier", e.key);
        }
    }

    #[test]
    fn nothing_is_granted_at_or_after_its_expiry(held in holdings(), now in 0i64..1000) {
        let now = at(now);
        let answer = effective(&held, now);
        for e in &answer.entitlements {
            if let Some(exp) = e.expires_at {
                prop_assert!(exp > now);
            }
        }
        // No holding confers anything at or after the end of its own window.
        for h in &held {
            if let Some(Window { until: Some(end), .. }) = h.window() {
                for later in [end, end + Duration::minutes(1), end + Duration::days(400)] {
                    prop_assert!(effective(std::slice::from_ref(h), later).entitlements.is_empty());
                }
            }
        }
    }

    #[test]
    fn answer_is_identical_between_two_boundaries(
        held in holdings(), now in 0i64..1000, a in 0u32..1000, b in 0u32..1000,
    ) {
        let now = at(now);
        let answer = effective(&held, now);
        // Pick two instants in [now, next_change) (or the next 1000 minutes when nothing changes).
        let span = answer.next_change.map_or(1000 * 60, |n| (n - now).num_seconds());
        prop_assume!(span > 0);
        for pick in [a, b] {
            let t = now + Duration::seconds(i64::from(pick) % span);
            let later = effective(&held, t);
            prop_assert_eq!(&later.entitlements, &answer.entitlements);
            prop_assert_eq!(later.next_change, answer.next_change);
        }
    }

    #[test]
    fn next_change_is_in_the_future(held in holdings(), now in 0i64..1000) {
        let now = at(now);
        if let Some(n) = effective(&held, now).next_change {
            prop_assert!(n > now);
        }
    }
}

fn sub(status: SubscriptionStatus, grace: Option<Instant>) -> Holding {
    Holding {
        source: Source {
            kind: SourceKind::Subscription,
            id: "s".into(),
        },
        terms: Terms::Subscription {
            status,
            period_start: at(0),
            period_end: at(100),
            trial_end: Some(at(50)),
            grace_until: grace,
        },
        confers: vec![Conferred {
            key: "premium".into(),
            value: None,
        }],
    }
}

#[test]
fn trial_ends_at_trial_end_and_active_at_period_end() {
    let trial = effective(&[sub(SubscriptionStatus::Trialing, None)], at(10));
    assert_eq!(trial.entitlements[0].expires_at, Some(at(50)));
    let active = effective(&[sub(SubscriptionStatus::Active, None)], at(10));
    assert_eq!(active.entitlements[0].expires_at, Some(at(100)));
    assert!(effective(&[sub(SubscriptionStatus::Active, None)], at(100))
        .entitlements
        .is_empty());
}

#[test]
fn past_due_lasts_through_grace_and_expired_gives_nothing() {
    let grace = effective(&[sub(SubscriptionStatus::PastDue, Some(at(150)))], at(120));
    assert_eq!(grace.entitlements[0].expires_at, Some(at(150)));
    assert!(effective(&[sub(SubscriptionStatus::Expired, None)], at(10))
        .entitlements
        .is_empty());
}

#[test]
fn refunded_order_gives_nothing_and_paid_order_lasts_for_ever() {
    let order = |status| Holding {
        source: Source {
            kind: SourceKind::Order,
            id: "o".into(),
        },
        terms: Terms::Order { status },
        confers: vec![Conferred {
            key: "sticker_pack:cats".into(),
            value: None,
        }],
    };
    let paid = effective(&[order(OrderStatus::Paid)], at(10));
    assert_eq!(paid.entitlements[0].expires_at, None);
    assert_eq!(paid.next_change, None);
    assert!(effective(&[order(OrderStatus::Refunded)], at(10))
        .entitlements
        .is_empty());
}

#[test]
fn quota_takes_the_largest_value_and_the_latest_end() {
    let grant = |id: &str, value, until| Holding {
        source: Source {
            kind: SourceKind::Grant,
            id: id.into(),
        },
        terms: Terms::Grant {
            starts_at: at(0),
            expires_at: Some(at(until)),
            revoked_at: None,
        },
        confers: vec![Conferred {
            key: "max_upload_mb".into(),
            value: Some(value),
        }],
    };
    let answer = effective(&[grant("small", 100, 500), grant("big", 4000, 60)], at(10));
    let e = &answer.entitlements[0];
    assert_eq!(e.value, Some(4000));
    assert_eq!(e.source.id, "big");
    assert_eq!(e.expires_at, Some(at(500)));
    // At 60 the big grant ends: the answer changes then.
    assert_eq!(answer.next_change, Some(at(60)));
    assert_eq!(
        effective(&[grant("small", 100, 500), grant("big", 4000, 60)], at(60)).entitlements[0]
            .value,
        Some(100)
    );
}

fn grant(id: &str, value: Option<i64>, until: Option<i64>) -> Holding {
    Holding {
        source: Source {
            kind: SourceKind::Grant,
            id: id.into(),
        },
        terms: Terms::Grant {
            starts_at: at(0),
            expires_at: until.map(at),
            revoked_at: None,
        },
        confers: vec![Conferred {
            key: "max_upload_mb".into(),
            value,
        }],
    }
}

#[test]
fn equal_values_show_the_longest_lasting_holding_in_any_input_order() {
    let (a, b, c) = (
        grant("a", Some(5), Some(100)),
        grant("b", Some(10), Some(50)),
        grant("c", Some(10), Some(80)),
    );
    let orders = [
        [&a, &b, &c],
        [&a, &c, &b],
        [&b, &a, &c],
        [&b, &c, &a],
        [&c, &a, &b],
        [&c, &b, &a],
    ];
    for order in orders {
        let held: Vec<Holding> = order.into_iter().cloned().collect();
        let e = &effective(&held, at(10)).entitlements[0];
        assert_eq!(e.value, Some(10));
        assert_eq!(
            e.source.id,
            "c",
            "order {:?}",
            held.iter().map(|h| &h.source.id)
        );
        assert_eq!(e.expires_at, Some(at(100)));
    }
}

#[test]
fn equal_value_and_end_show_the_smallest_source() {
    let held = [grant("b", None, None), grant("a", None, None)];
    assert_eq!(effective(&held, at(10)).entitlements[0].source.id, "a");
}

#[test]
fn a_lesser_grant_ending_is_not_a_change() {
    // The small grant ends at 60 but the big one decides the answer until 500.
    let held = [
        grant("big", Some(10), Some(500)),
        grant("small", Some(1), Some(60)),
    ];
    assert_eq!(effective(&held, at(10)).next_change, Some(at(500)));
}

#[test]
fn a_grant_revoked_before_it_starts_has_no_window_and_no_edges() {
    let mut revoked = grant("r", None, Some(100));
    revoked.terms = Terms::Grant {
        starts_at: at(50),
        expires_at: Some(at(100)),
        revoked_at: Some(at(20)),
    };
    assert_eq!(revoked.window(), None);
    assert_eq!(effective(&[revoked], at(10)).next_change, None);
}

#[test]
fn thousands_of_edges_that_change_nothing_give_an_early_next_change_not_a_scan() {
    // A lifetime grant of 5,000 MB, and 5,000 smaller grants ending one after another: none
    // of their ends changes the answer. Only the first `MAX_PROBED_EDGES` ends are evaluated;
    // the next one is returned, earlier than the (never) change, so caches refresh early.
    let mut held = vec![grant("lifetime", Some(5_000), None)];
    held.extend((0..5_000).map(|i| grant(&format!("g{i:04}"), Some(10), Some(100 + i))));
    let answer = effective(&held, at(1));
    assert_eq!(answer.entitlements.len(), 1);
    assert_eq!(answer.entitlements[0].value, Some(5_000));
    let probed = i64::try_from(MAX_PROBED_EDGES).unwrap();
    assert_eq!(answer.next_change, Some(at(100 + probed)));
    // With few holdings it stays exact: nothing changes, so there is no next change.
    let few = &held[..10];
    assert_eq!(effective(few, at(1)).next_change, None);
}
