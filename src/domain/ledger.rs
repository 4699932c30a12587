//! Double-entry postings: pure rules. A posting is a set of signed lines, one per account, that
//! sums to zero in every currency. The database enforces the same (triggers), and never lets
//! a line be changed: corrections are reversals.

use super::money::{split_revenue, Currency};
use std::collections::BTreeMap;

/// Kinds of ledger account. Platform accounts have no owner; creator accounts belong to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccountKind {
    /// Money Stripe holds for us: gross in, refunds out, payouts to the bank out.
    StripeClearing,
    /// What Stripe kept as fees.
    StripeFees,
    PlatformRevenue,
    /// A creator's share during the refund window.
    CreatorPending,
    /// A creator's share that may be paid out.
    CreatorAvailable,
    Payouts,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StripeClearing => "stripe_clearing",
            Self::StripeFees => "stripe_fees",
            Self::PlatformRevenue => "platform_revenue",
            Self::CreatorPending => "creator_pending",
            Self::CreatorAvailable => "creator_available",
            Self::Payouts => "payouts",
        }
    }
}

/// An account: kind, owner (creators only) and currency. Its id is derived from the three.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Account {
    pub kind: AccountKind,
    pub owner: Option<String>,
    pub currency: Currency,
}

impl Account {
    pub fn platform(kind: AccountKind, currency: &Currency) -> Account {
        Account {
            kind,
            owner: None,
            currency: currency.clone(),
        }
    }

    pub fn creator(kind: AccountKind, creator: &str, currency: &Currency) -> Account {
        Account {
            kind,
            owner: Some(creator.to_owned()),
            currency: currency.clone(),
        }
    }

    pub fn id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.kind.as_str(),
            self.owner.as_deref().unwrap_or("platform"),
            self.currency
        )
    }
}

/// One side of a posting: positive debits the account, negative credits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub account: Account,
    pub amount_minor: i64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PostingError {
    #[error("a posting needs at least two non-zero lines")]
    TooFewLines,
    #[error("the posting does not balance in {0}")]
    Unbalanced(String),
}

/// Checks a posting and drops zero lines (a 0 % share, say).
pub fn balanced(lines: Vec<Line>) -> Result<Vec<Line>, PostingError> {
    let lines: Vec<Line> = lines.into_iter().filter(|l| l.amount_minor != 0).collect();
    if lines.len() < 2 {
        return Err(PostingError::TooFewLines);
    }
    let mut sums: BTreeMap<&Currency, i128> = BTreeMap::new();
    for l in &lines {
        *sums.entry(&l.account.currency).or_default() += i128::from(l.amount_minor);
    }
    if let Some((currency, _)) = sums.iter().find(|(_, sum)| **sum != 0) {
        return Err(PostingError::Unbalanced(currency.to_string()));
    }
    Ok(lines)
}

/// A sale of a creator's item: the customer paid `gross`, Stripe kept `fee`. The creator's
/// share is taken from the gross by their rule (floor; the platform gets the remainder) and
/// is pending until the refund window closes; the fee is the platform's cost.
pub fn creator_sale(
    gross: i64,
    fee: i64,
    currency: &Currency,
    creator: &str,
    creator_share_bps: u16,
) -> Result<Vec<Line>, PostingError> {
    let (creator_share, platform_share) = split_revenue(gross, creator_share_bps);
    balanced(vec![
        Line {
            account: Account::platform(AccountKind::StripeClearing, currency),
            amount_minor: gross - fee,
        },
        Line {
            account: Account::platform(AccountKind::StripeFees, currency),
            amount_minor: fee,
        },
        Line {
            account: Account::creator(AccountKind::CreatorPending, creator, currency),
            amount_minor: -creator_share,
        },
        Line {
            account: Account::platform(AccountKind::PlatformRevenue, currency),
            amount_minor: -platform_share,
        },
    ])
}

/// A payment received for the platform alone (a subscription, a platform donation, a gifted
/// period): gross into clearing, the fee as a cost, the rest revenue.
pub fn platform_sale(gross: i64, fee: i64, currency: &Currency) -> Result<Vec<Line>, PostingError> {
    balanced(vec![
        Line {
            account: Account::platform(AccountKind::StripeClearing, currency),
            amount_minor: gross - fee,
        },
        Line {
            account: Account::platform(AccountKind::StripeFees, currency),
            amount_minor: fee,
        },
        Line {
            account: Account::platform(AccountKind::PlatformRevenue, currency),
            amount_minor: -gross,
        },
    ])
}

/// Stripe's fee on a payment learnt after the payment was posted: a platform cost, out of
/// clearing (what Stripe pays out is the gross less its fee). The creator's share is taken
/// from the gross, so a fee never changes it.
pub fn stripe_fee(fee: i64, currency: &Currency) -> Result<Vec<Line>, PostingError> {
    balanced(vec![
        Line {
            account: Account::platform(AccountKind::StripeFees, currency),
            amount_minor: fee,
        },
        Line {
            account: Account::platform(AccountKind::StripeClearing, currency),
            amount_minor: -fee,
        },
    ])
}

/// The creator's part of `amount` taken back from a payment of `gross` of which the creator
/// got `creator_share`: in proportion, rounded down (the platform bears the remainder, as it
/// got the remainder of the split).
pub fn creator_part(amount: i64, gross: i64, creator_share: i64) -> i64 {
    if gross <= 0 {
        return 0;
    }
    let part = i128::from(creator_share) * i128::from(amount) / i128::from(gross);
    i64::try_from(part).unwrap_or(0)
}

/// Money leaving us for a refund or a dispute of `amount` out of a `gross` payment: clearing
/// pays it out (plus `fee`, a dispute's fee, which is a cost), and the creator's and the
/// platform's shares are taken back in proportion. Stripe keeps its original fee on refunds,
/// so that stays a platform cost.
pub fn taken_back(
    amount: i64,
    fee: i64,
    gross: i64,
    currency: &Currency,
    creator: Option<(&str, i64)>,
) -> Result<Vec<Line>, PostingError> {
    let creator_back = creator.map_or(0, |(_, share)| creator_part(amount, gross, share));
    let mut lines = vec![
        Line {
            account: Account::platform(AccountKind::StripeClearing, currency),
            amount_minor: -(amount + fee),
        },
        Line {
            account: Account::platform(AccountKind::StripeFees, currency),
            amount_minor: fee,
        },
        Line {
            account: Account::platform(AccountKind::PlatformRevenue, currency),
            amount_minor: amount - creator_back,
        },
    ];
    if let Some((id, _)) = creator {
        lines.push(Line {
            account: Account::creator(AccountKind::CreatorPending, id, currency),
            amount_minor: creator_back,
        });
    }
    balanced(lines)
}

/// A won dispute: the disputed amount comes back and the shares are restored (the dispute
/// fee stays a cost).
pub fn dispute_won(
    amount: i64,
    gross: i64,
    currency: &Currency,
    creator: Option<(&str, i64)>,
) -> Result<Vec<Line>, PostingError> {
    let back = taken_back(amount, 0, gross, currency, creator)?;
    reversal(&back)
}

/// Moves `amount` of a creator's share from pending to available (negative moves it back,
/// when refunds after release exceed new earnings).
pub fn release(creator: &str, amount: i64, currency: &Currency) -> Result<Vec<Line>, PostingError> {
    balanced(vec![
        Line {
            account: Account::creator(AccountKind::CreatorPending, creator, currency),
            amount_minor: amount,
        },
        Line {
            account: Account::creator(AccountKind::CreatorAvailable, creator, currency),
            amount_minor: -amount,
        },
    ])
}

/// The reversal of a posting: every line negated (a full refund, a lost dispute).
pub fn reversal(lines: &[Line]) -> Result<Vec<Line>, PostingError> {
    balanced(
        lines
            .iter()
            .map(|l| Line {
                account: l.account.clone(),
                amount_minor: -l.amount_minor,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_70_30_sale_splits_gross_and_books_the_fee() {
        let lines = creator_sale(199, 36, &usd(), "artist", 7000).unwrap();
        let amount = |kind| {
            lines
                .iter()
                .find(|l| l.account.kind == kind)
                .map(|l| l.amount_minor)
        };
        assert_eq!(amount(AccountKind::StripeClearing), Some(163));
        assert_eq!(amount(AccountKind::StripeFees), Some(36));
        assert_eq!(amount(AccountKind::CreatorPending), Some(-139));
        assert_eq!(amount(AccountKind::PlatformRevenue), Some(-60));
    }

    #[test]
    fn unbalanced_or_single_line_postings_are_refused() {
        let line = |amount| Line {
            account: Account::platform(AccountKind::StripeClearing, &usd()),
            amount_minor: amount,
        };
        assert_eq!(balanced(vec![line(5)]), Err(PostingError::TooFewLines));
        assert_eq!(
            balanced(vec![line(5), line(-4)]),
            Err(PostingError::Unbalanced("USD".into()))
        );
    }

    #[test]
    fn a_partial_refund_takes_back_shares_in_proportion_creator_rounded_down() {
        // 70 % of 199 = 139 to the creator; refund 100 of 199: creator gives back 69 (69.8).
        let back = taken_back(100, 0, 199, &usd(), Some(("artist", 139))).unwrap();
        let get = |kind| {
            back.iter()
                .find(|l| l.account.kind == kind)
                .map(|l| l.amount_minor)
        };
        assert_eq!(get(AccountKind::StripeClearing), Some(-100));
        assert_eq!(get(AccountKind::CreatorPending), Some(69));
        assert_eq!(get(AccountKind::PlatformRevenue), Some(31));
    }

    #[test]
    fn a_won_dispute_restores_what_the_dispute_took_but_not_its_fee() {
        let opened = taken_back(199, 1500, 199, &usd(), Some(("artist", 139))).unwrap();
        let won = dispute_won(199, 199, &usd(), Some(("artist", 139))).unwrap();
        let net = |kind| -> i64 {
            opened
                .iter()
                .chain(&won)
                .filter(|l| l.account.kind == kind)
                .map(|l| l.amount_minor)
                .sum()
        };
        assert_eq!(net(AccountKind::CreatorPending), 0);
        assert_eq!(net(AccountKind::PlatformRevenue), 0);
        assert_eq!(net(AccountKind::StripeFees), 1500);
        assert_eq!(net(AccountKind::StripeClearing), -1500);
    }

    proptest! {
        #[test]
        fn refunds_never_take_back_more_than_the_creator_got(
            gross in 1i64..10_000_000, bps in 0u16..=10_000, pct in 0i64..=100,
        ) {
            let (share, _) = split_revenue(gross, bps);
            let amount = gross * pct / 100;
            let part = creator_part(amount, gross, share);
            prop_assert!(part >= 0 && part <= share);
            if amount == gross { prop_assert_eq!(part, share); }
        }

        #[test]
        fn every_sale_and_its_reversal_balance(
            gross in 1i64..10_000_000, fee_pct in 0i64..30, bps in 0u16..=10_000,
        ) {
            let fee = gross * fee_pct / 100;
            let sale = creator_sale(gross, fee, &usd(), "c", bps).unwrap();
            let back = reversal(&sale).unwrap();
            let total: i64 = sale.iter().chain(&back).map(|l| l.amount_minor).sum();
            prop_assert_eq!(total, 0);
        }
    }
}
