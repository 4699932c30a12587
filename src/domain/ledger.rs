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
    /// Approved payouts not yet settled: what the bank (or Stripe) has been told to pay.
    PayoutsInTransit,
    /// Our bank account's side of bank-transfer payouts: what left it for creators.
    BankClearing,
    /// Income tax withheld from creator payouts, owed to the tax authority.
    TaxWithheld,
    /// Stripe's currency conversions: a charge's currency comes in here and its settlement
    /// currency goes out, so each currency of a conversion still sums to zero.
    FxConversion,
}

impl AccountKind {
    pub const ALL: [AccountKind; 10] = [
        Self::StripeClearing,
        Self::StripeFees,
        Self::PlatformRevenue,
        Self::CreatorPending,
        Self::CreatorAvailable,
        Self::Payouts,
        Self::PayoutsInTransit,
        Self::BankClearing,
        Self::TaxWithheld,
        Self::FxConversion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StripeClearing => "stripe_clearing",
            Self::StripeFees => "stripe_fees",
            Self::PlatformRevenue => "platform_revenue",
            Self::CreatorPending => "creator_pending",
            Self::CreatorAvailable => "creator_available",
            Self::Payouts => "payouts",
            Self::PayoutsInTransit => "payouts_in_transit",
            Self::BankClearing => "bank_clearing",
            Self::TaxWithheld => "tax_withheld",
            Self::FxConversion => "fx_conversion",
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

/// Stripe's fee on a payment learnt after the payment was posted, or a fee Stripe charged the
/// platform for its services (Connect's among them): a platform cost, out of clearing (what
/// Stripe pays out is the gross less its fee). The creator's share is taken from the gross, so
/// a fee never changes it. A negative `fee` is one Stripe gave back.
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

/// The creator's part when what has been reversed of a `gross` payment (of which the creator
/// got `creator_share`) goes from `before` to `before + amount`: cumulative, so rounding never
/// drifts. The creator has returned `floor(share × reversed / gross)` at every point, whatever
/// the refunds that made it up; the platform bears the remainder, as it got the remainder of
/// the split. A negative `amount` (a failed refund, a won dispute) gives back the same way.
pub fn creator_part(before: i64, amount: i64, gross: i64, creator_share: i64) -> i64 {
    if gross <= 0 {
        return 0;
    }
    let returned = |reversed: i64| {
        let r = i128::from(reversed.clamp(0, gross));
        i128::from(creator_share) * r / i128::from(gross)
    };
    i64::try_from(returned(before + amount) - returned(before)).unwrap_or(0)
}

/// A creator's share of a payment, and whether it has left the hold (then reversals come out
/// of their available balance, otherwise out of pending).
#[derive(Clone, Copy, Debug)]
pub struct CreatorShare<'a> {
    pub creator: &'a str,
    pub share: i64,
    pub released: bool,
}

impl CreatorShare<'_> {
    fn account(&self, currency: &Currency) -> Account {
        let kind = if self.released {
            AccountKind::CreatorAvailable
        } else {
            AccountKind::CreatorPending
        };
        Account::creator(kind, self.creator, currency)
    }
}

/// Part of a payment going back to the customer (a refund, a dispute's withdrawal) or coming
/// back to us (negative: a failed refund, a dispute won or reinstated).
#[derive(Clone, Copy, Debug)]
pub struct Reversal<'a> {
    /// Moving to the customer now; negative when it comes back.
    pub amount: i64,
    /// A dispute's fee charged now (negative: Stripe returned it).
    pub fee: i64,
    /// The payment's gross.
    pub gross: i64,
    /// Reversed before this one (refunds and disputes not won).
    pub before: i64,
    pub creator: Option<CreatorShare<'a>>,
}

/// Money leaving (or coming back) for a reversal: clearing pays it out, plus a dispute fee as
/// a cost; the creator's and the platform's shares are taken back cumulatively
/// (`creator_part`). Stripe keeps its original processing fee on refunds, so that stays a
/// platform cost.
pub fn taken_back(r: Reversal<'_>, currency: &Currency) -> Result<Vec<Line>, PostingError> {
    let creator_back = r
        .creator
        .map_or(0, |c| creator_part(r.before, r.amount, r.gross, c.share));
    let mut lines = vec![
        Line {
            account: Account::platform(AccountKind::StripeClearing, currency),
            amount_minor: -(r.amount + r.fee),
        },
        Line {
            account: Account::platform(AccountKind::StripeFees, currency),
            amount_minor: r.fee,
        },
        Line {
            account: Account::platform(AccountKind::PlatformRevenue, currency),
            amount_minor: r.amount - creator_back,
        },
    ];
    if let Some(c) = r.creator {
        lines.push(Line {
            account: c.account(currency),
            amount_minor: creator_back,
        });
    }
    balanced(lines)
}

/// Moves `amount` of a creator's share from pending to available (a payment's share, less
/// what was taken back during its hold).
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

/// A step of a creator payout of `amount` (positive), of which `withheld` is income tax kept
/// back for the tax authority: money leaves one account for the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayoutStep {
    /// Approved: out of the creator's available balance; the tax into `tax_withheld`, the rest
    /// into transit.
    Approved,
    /// The bank paid it: out of transit, out of our bank.
    Paid,
    /// Refused before it was paid: back from transit (and the tax) to the creator's balance.
    Failed,
    /// Paid, then sent back by the creator's bank: back from our bank to the creator, whose
    /// tax is released too (a payment that never arrived is not income).
    Returned,
}

/// How a payout leaves the platform: from our bank account (`bank_clearing`), or as a Stripe
/// Connect transfer out of the Stripe balance (`stripe_clearing`: a transfer is a negative
/// balance transaction, its reversal a positive one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayoutVia {
    Bank,
    Stripe,
}

/// The posting of a payout step (see [`PayoutStep`]).
pub fn payout(
    step: PayoutStep,
    via: PayoutVia,
    creator: &str,
    amount: i64,
    withheld: i64,
    currency: &Currency,
) -> Result<Vec<Line>, PostingError> {
    let available = Account::creator(AccountKind::CreatorAvailable, creator, currency);
    let transit = Account::platform(AccountKind::PayoutsInTransit, currency);
    let bank = Account::platform(
        match via {
            PayoutVia::Bank => AccountKind::BankClearing,
            PayoutVia::Stripe => AccountKind::StripeClearing,
        },
        currency,
    );
    let tax = Account::platform(AccountKind::TaxWithheld, currency);
    let net = amount - withheld;
    let line = |account: Account, amount_minor: i64| Line {
        account,
        amount_minor,
    };
    balanced(match step {
        PayoutStep::Approved => vec![
            line(available, amount),
            line(transit, -net),
            line(tax, -withheld),
        ],
        PayoutStep::Paid => vec![line(transit, net), line(bank, -net)],
        PayoutStep::Failed => vec![
            line(transit, net),
            line(tax, withheld),
            line(available, -amount),
        ],
        PayoutStep::Returned => vec![
            line(bank, net),
            line(tax, withheld),
            line(available, -amount),
        ],
    })
}

/// Part of a Connect payout's transfer reversed (`amount` of its net): back from the Stripe
/// balance to the creator's available balance. A full reversal is [`PayoutStep::Returned`].
pub fn payout_reversal(
    creator: &str,
    amount: i64,
    currency: &Currency,
) -> Result<Vec<Line>, PostingError> {
    balanced(vec![
        Line {
            account: Account::platform(AccountKind::StripeClearing, currency),
            amount_minor: amount,
        },
        Line {
            account: Account::creator(AccountKind::CreatorAvailable, creator, currency),
            amount_minor: -amount,
        },
    ])
}

/// Stripe converting `amount` of clearing in `from` into `settled` in `to` (a EUR charge paid
/// into a USD balance); negative amounts convert back (a refund of a converted charge). Each
/// currency balances through its FX account, so clearing per currency is what Stripe holds.
pub fn conversion(
    amount: i64,
    from: &Currency,
    settled: i64,
    to: &Currency,
) -> Result<Vec<Line>, PostingError> {
    balanced(vec![
        Line {
            account: Account::platform(AccountKind::StripeClearing, from),
            amount_minor: -amount,
        },
        Line {
            account: Account::platform(AccountKind::FxConversion, from),
            amount_minor: amount,
        },
        Line {
            account: Account::platform(AccountKind::FxConversion, to),
            amount_minor: -settled,
        },
        Line {
            account: Account::platform(AccountKind::StripeClearing, to),
            amount_minor: settled,
        },
    ])
}

/// What `reversed` of a `gross` payment settled as `settled` comes to in the settlement
/// currency, at the charge's own rate: cumulative like `creator_part`, so a full reversal
/// converts back exactly what came in, whatever the refunds that made it up.
pub fn settled_part(before: i64, amount: i64, gross: i64, settled: i64) -> i64 {
    if gross <= 0 {
        return 0;
    }
    let at = |reversed: i64| {
        i64::try_from((i128::from(settled) * i128::from(reversed)).div_euclid(i128::from(gross)))
            .unwrap_or(0)
    };
    at(before + amount) - at(before)
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

    fn share(creator_share: i64) -> Option<CreatorShare<'static>> {
        Some(CreatorShare {
            creator: "artist",
            share: creator_share,
            released: false,
        })
    }

    fn sum_of(lines: &[Line], kind: AccountKind) -> i64 {
        lines
            .iter()
            .filter(|l| l.account.kind == kind)
            .map(|l| l.amount_minor)
            .sum()
    }

    fn refund(amount: i64, before: i64, gross: i64, creator_share: i64) -> Vec<Line> {
        let r = Reversal {
            amount,
            fee: 0,
            gross,
            before,
            creator: share(creator_share),
        };
        taken_back(r, &usd()).unwrap()
    }

    #[test]
    fn a_partial_refund_takes_back_shares_in_proportion_creator_rounded_down() {
        // 70 % of 199 = 139 to the creator; refund 100 of 199: creator gives back 69 (69.8).
        let back = refund(100, 0, 199, 139);
        assert_eq!(sum_of(&back, AccountKind::StripeClearing), -100);
        assert_eq!(sum_of(&back, AccountKind::CreatorPending), 69);
        assert_eq!(sum_of(&back, AccountKind::PlatformRevenue), 31);
    }

    #[test]
    fn refunds_of_99_then_100_take_back_the_whole_share() {
        // Floored one by one: 69 + 69 = 138 of 139. Cumulative: 69 (⌊139·99/199⌋), then
        // ⌊139·199/199⌋ − 69 = 70: all 139 come back.
        let first = refund(99, 0, 199, 139);
        let second = refund(100, 99, 199, 139);
        let creator = sum_of(&first, AccountKind::CreatorPending)
            + sum_of(&second, AccountKind::CreatorPending);
        let platform = sum_of(&first, AccountKind::PlatformRevenue)
            + sum_of(&second, AccountKind::PlatformRevenue);
        assert_eq!((creator, platform), (139, 60));
    }

    #[test]
    fn after_release_a_refund_comes_out_of_available() {
        let r = Reversal {
            amount: 199,
            fee: 0,
            gross: 199,
            before: 0,
            creator: Some(CreatorShare {
                creator: "artist",
                share: 139,
                released: true,
            }),
        };
        let back = taken_back(r, &usd()).unwrap();
        assert_eq!(sum_of(&back, AccountKind::CreatorAvailable), 139);
        assert_eq!(sum_of(&back, AccountKind::CreatorPending), 0);
    }

    /// A dispute of `amount` opened (with its fee) and later won (amount back, fee kept).
    fn dispute_then_won(gross: i64, amount: i64, fee: i64, creator_share: i64) -> Vec<Line> {
        let opened = Reversal {
            amount,
            fee,
            gross,
            before: 0,
            creator: share(creator_share),
        };
        let won = Reversal {
            amount: -amount,
            fee: 0,
            gross,
            before: amount,
            creator: share(creator_share),
        };
        let mut lines = taken_back(opened, &usd()).unwrap();
        lines.extend(taken_back(won, &usd()).unwrap());
        lines
    }

    #[test]
    fn a_won_dispute_restores_what_the_dispute_took_but_not_its_fee() {
        let lines = dispute_then_won(199, 199, 1500, 139);
        assert_eq!(sum_of(&lines, AccountKind::CreatorPending), 0);
        assert_eq!(sum_of(&lines, AccountKind::PlatformRevenue), 0);
        assert_eq!(sum_of(&lines, AccountKind::StripeFees), 1500);
        assert_eq!(sum_of(&lines, AccountKind::StripeClearing), -1500);
    }

    fn sums_per_currency(lines: &[Line]) -> BTreeMap<Currency, i64> {
        let mut sums = BTreeMap::new();
        for l in lines {
            *sums.entry(l.account.currency.clone()).or_default() += l.amount_minor;
        }
        sums
    }

    /// Cut points splitting `gross` into refunds of any sizes.
    fn splits() -> impl Strategy<Value = (i64, Vec<i64>)> {
        (1i64..1_000_000)
            .prop_flat_map(|gross| (Just(gross), proptest::collection::vec(0..=gross, 0..8)))
    }

    proptest! {
        #[test]
        fn refunds_never_take_back_more_than_the_creator_got(
            gross in 1i64..10_000_000, bps in 0u16..=10_000, pct in 0i64..=100,
        ) {
            let (share, _) = split_revenue(gross, bps);
            let amount = gross * pct / 100;
            let part = creator_part(0, amount, gross, share);
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

        #[test]
        fn take_backs_over_any_split_of_the_gross_add_up_to_the_share(
            (gross, mut cuts) in splits(), bps in 0u16..=10_000,
        ) {
            let (creator_share, platform_share) = split_revenue(gross, bps);
            cuts.push(0);
            cuts.push(gross);
            cuts.sort_unstable();
            let (mut creator, mut platform) = (0, 0);
            // Equal cut points make no refund (Stripe has no refunds of 0).
            cuts.dedup();
            for w in cuts.windows(2) {
                let lines = refund(w[1] - w[0], w[0], gross, creator_share);
                creator += sum_of(&lines, AccountKind::CreatorPending);
                platform += sum_of(&lines, AccountKind::PlatformRevenue);
            }
            prop_assert_eq!(creator, creator_share);
            prop_assert_eq!(platform, platform_share);
        }

        #[test]
        fn every_posting_constructor_balances_per_currency(
            gross in 1i64..10_000_000, fee in 0i64..100_000, bps in 0u16..=10_000,
            amount in -10_000_000i64..10_000_000, before in 0i64..10_000_000,
            dispute_fee in -5_000i64..5_000, released: bool,
        ) {
            let (creator_share, _) = split_revenue(gross, bps);
            let creator = Some(CreatorShare { creator: "c", share: creator_share, released });
            let r = Reversal { amount, fee: dispute_fee, gross, before: before.min(gross), creator };
            let postings = [
                creator_sale(gross, fee, &usd(), "c", bps),
                platform_sale(gross, fee, &usd()),
                stripe_fee(fee, &usd()),
                taken_back(r, &usd()),
                release("c", amount, &usd()),
                conversion(amount, &usd(), fee, &Currency::parse("EUR").unwrap()),
            ];
            for lines in postings.into_iter().flatten() {
                prop_assert!(sums_per_currency(&lines).values().all(|s| *s == 0));
            }
        }

        #[test]
        fn reversals_of_a_converted_charge_over_any_split_convert_back_all_that_came_in(
            (gross, mut cuts) in splits(), settled in 0i64..20_000_000,
        ) {
            cuts.push(0);
            cuts.push(gross);
            cuts.sort_unstable();
            let back: i64 = cuts.windows(2).map(|w| settled_part(w[0], w[1] - w[0], gross, settled)).sum();
            prop_assert_eq!(back, settled);
            // A failed refund converts back what its refund converted.
            let (before, amount) = (cuts[cuts.len() / 2], gross - cuts[cuts.len() / 2]);
            prop_assert_eq!(
                settled_part(before + amount, -amount, gross, settled),
                -settled_part(before, amount, gross, settled)
            );
        }

        #[test]
        fn reversing_a_reversal_restores_the_original(
            gross in 1i64..10_000_000, fee_pct in 0i64..30, bps in 0u16..=10_000,
        ) {
            let sale = creator_sale(gross, gross * fee_pct / 100, &usd(), "c", bps).unwrap();
            let twice = reversal(&reversal(&sale).unwrap()).unwrap();
            prop_assert_eq!(twice, sale);
        }

        #[test]
        fn a_dispute_opened_then_won_nets_to_its_fee_alone(
            gross in 1i64..10_000_000, pct in 1i64..=100, fee in 0i64..5_000, bps in 0u16..=10_000,
        ) {
            let (creator_share, _) = split_revenue(gross, bps);
            let amount = (gross * pct / 100).max(1);
            let lines = dispute_then_won(gross, amount, fee, creator_share);
            let mut net: BTreeMap<AccountKind, i64> = BTreeMap::new();
            for l in &lines {
                *net.entry(l.account.kind).or_default() += l.amount_minor;
            }
            net.retain(|_, v| *v != 0);
            let expected: BTreeMap<AccountKind, i64> = if fee == 0 {
                BTreeMap::new()
            } else {
                BTreeMap::from([(AccountKind::StripeFees, fee), (AccountKind::StripeClearing, -fee)])
            };
            prop_assert_eq!(net, expected);
        }
    }
}
