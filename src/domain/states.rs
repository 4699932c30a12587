//! The states and kinds our records go through, as enums: compared as values, never as
//! strings. Each is stored as text (with a `CHECK` of the same words in the migrations) and
//! serialized as that word in API answers.

/// Defines a state enum with its stored word per variant: `as_str`, `parse`, `ALL`, serde as
/// the word, and the diesel mapping to a text column on either backend.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let s = String::from_sql(bytes)?;
                Self::parse(&s)
                    .ok_or_else(|| format!("not a {}: {s:?}", stringify!($name)).into())
            }
        }
    };
}

text_enum! {
    /// Lifecycle of a subscription (see PRODUCT.md).
    SubscriptionStatus {
        Trialing => "trialing",
        Active => "active",
        /// A renewal failed: entitled until the grace period ends.
        PastDue => "past_due",
        /// By the user: entitled until the period's end.
        Canceled => "canceled",
        Expired => "expired",
    }
}

text_enum! {
    /// Lifecycle of a one-off purchase.
    OrderStatus {
        Pending => "pending",
        Paid => "paid",
        Refunded => "refunded",
        Disputed => "disputed",
    }
}

text_enum! {
    /// What an order bought.
    OrderKind {
        /// A sticker pack, for the buyer or as a gift.
        Pack => "pack",
        /// A plan's period, paid once, given to a recipient.
        GiftSubscription => "gift_subscription",
    }
}

text_enum! {
    /// Where a sale was made, and so which of the creator's rules splits it.
    SalesChannel {
        /// Found in our store: the creator's `revenue_share_bps`.
        Store => "store",
        /// Through the creator's own share link (`?ref=<creator>`): their `link_share_bps`.
        CreatorLink => "creator_link",
    }
}

text_enum! {
    /// A sticker pack's life: drafted, reviewed, sold, and perhaps taken off the store.
    PackState {
        Draft => "draft",
        InReview => "in_review",
        Approved => "approved",
        Rejected => "rejected",
        /// In the store: buyable (or claimable when free).
        OnSale => "on_sale",
        /// Off the store by its creator; buyers keep it.
        Retired => "retired",
        /// Off the store by a moderator; buyers keep it.
        Suspended => "suspended",
        /// Infringing or illegal: blocked for everyone, buyers refunded.
        Removed => "removed",
    }
}

text_enum! {
    /// Whether a pack's stickers are still images or animations (every sticker matches).
    PackKind {
        Static => "static",
        Animated => "animated",
    }
}

text_enum! {
    /// Lifecycle of a donation: one-off ones are `paid`; monthly ones `active` until
    /// `canceled`.
    DonationStatus {
        Pending => "pending",
        Active => "active",
        Paid => "paid",
        Canceled => "canceled",
        Refunded => "refunded",
        Disputed => "disputed",
    }
}

text_enum! {
    /// How often a recurring price bills.
    Interval {
        Month => "month",
        Year => "year",
    }
}

text_enum! {
    /// What a product is.
    ProductKind {
        Plan => "plan",
        StickerPack => "sticker_pack",
        DonationTarget => "donation_target",
    }
}

text_enum! {
    /// How a stored Stripe event was taken.
    EventOutcome {
        /// Its effects were applied (or it had none to apply).
        Applied => "applied",
        /// It concerned nothing of ours: kept and acknowledged.
        Ignored => "ignored",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + serde::Serialize + std::fmt::Display,
    {
        for v in all {
            let word = v.to_string();
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(word));
        }
    }

    #[test]
    fn each_state_is_stored_and_answered_as_its_word() {
        round_trips(SubscriptionStatus::ALL);
        round_trips(OrderStatus::ALL);
        round_trips(OrderKind::ALL);
        round_trips(DonationStatus::ALL);
        round_trips(Interval::ALL);
        round_trips(SalesChannel::ALL);
        round_trips(PackState::ALL);
        round_trips(PackKind::ALL);
        round_trips(ProductKind::ALL);
        round_trips(EventOutcome::ALL);
        assert_eq!(
            SubscriptionStatus::parse("past_due"),
            Some(SubscriptionStatus::PastDue)
        );
        assert_eq!(
            OrderKind::parse("gift_subscription"),
            Some(OrderKind::GiftSubscription)
        );
        assert_eq!(SubscriptionStatus::parse("paused"), None);
    }
}
