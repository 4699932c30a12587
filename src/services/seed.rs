//! The demo catalog written on first start, so a newcomer's `cargo run` has plans to look at.

use crate::db::models::catalog::{EntitlementDefinition, NewPrice, NewProduct, Price, Product};
use crate::db::DbConn;
use crate::domain::states::{Interval, ProductKind};
use diesel::Connection;

type PriceSpec = (&'static str, i64, &'static str, Option<&'static str>, i32);

struct PlanSpec {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    per_seat: bool,
    entitlements: &'static [(&'static str, Option<i64>)],
    prices: &'static [PriceSpec],
}

const DEFINITIONS: &[(&str, &str, &str)] = &[
    (
        "premium",
        "boolean",
        "Premium features: larger uploads, custom themes, no limits on pins",
    ),
    (
        "max_upload_mb",
        "quota",
        "Largest file a user may send, in megabytes",
    ),
    (
        "search_history_messages",
        "quota",
        "How many past messages search reaches",
    ),
    (
        "integrations",
        "quota",
        "How many bots and integrations a workspace may connect",
    ),
];

const PLANS: &[PlanSpec] = &[
    PlanSpec {
        id: "prod_free",
        name: "Free",
        description: "What everyone has; the limits clients apply when nothing else is held",
        per_seat: false,
        entitlements: &[
            ("max_upload_mb", Some(100)),
            ("search_history_messages", Some(10_000)),
            ("integrations", Some(5)),
        ],
        prices: &[("price_free_usd", 0, "USD", Some("month"), 0)],
    },
    PlanSpec {
        id: "prod_premium",
        name: "Premium",
        description:
            "Premium for one person, monthly or yearly; the yearly plan starts with a free year",
        per_seat: false,
        entitlements: &[("premium", None), ("max_upload_mb", Some(4_000))],
        prices: &[
            ("price_premium_monthly_usd", 499, "USD", Some("month"), 0),
            ("price_premium_monthly_eur", 499, "EUR", Some("month"), 0),
            ("price_premium_yearly_usd", 99, "USD", Some("year"), 365),
            ("price_premium_yearly_eur", 99, "EUR", Some("year"), 365),
        ],
    },
    PlanSpec {
        id: "prod_team",
        name: "Team",
        description: "Per-seat plan for workspaces: the owner assigns seats to members",
        per_seat: true,
        entitlements: &[
            ("premium", None),
            ("max_upload_mb", Some(4_000)),
            ("search_history_messages", Some(1_000_000_000)),
            ("integrations", Some(100)),
        ],
        prices: &[("price_team_monthly_usd", 600, "USD", Some("month"), 14)],
    },
];

/// Writes the demo catalog unless any product exists. Returns whether it wrote.
pub fn demo_catalog(conn: &mut DbConn) -> anyhow::Result<bool> {
    if !Product::all(conn)?.is_empty() {
        return Ok(false);
    }
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        for (key, kind, description) in DEFINITIONS {
            EntitlementDefinition::create(
                conn,
                (*key).into(),
                (*kind).into(),
                (*description).into(),
            )?;
        }
        for plan in PLANS {
            Product::create(
                conn,
                NewProduct {
                    id: Some(plan.id.into()),
                    kind: ProductKind::Plan,
                    name: plan.name.into(),
                    description: plan.description.into(),
                    creator_id: None,
                    per_seat: plan.per_seat,
                },
            )?;
            let ents: Vec<(String, Option<i64>)> = plan
                .entitlements
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect();
            Product::set_entitlements(conn, plan.id, &ents)?;
            for (id, amount, currency, interval, trial_days) in plan.prices {
                Price::create(
                    conn,
                    NewPrice {
                        id: Some((*id).into()),
                        product_id: plan.id.into(),
                        amount_minor: *amount,
                        currency: (*currency).into(),
                        interval: interval.and_then(Interval::parse),
                        trial_days: *trial_days,
                    },
                )?;
            }
        }
        Ok(())
    })?;
    Ok(true)
}
