//! What the API answers with: one view per thing it shows, built from rows (`From<&Row>`), so
//! a new column stays out of answers until a view names it. Timestamps are `DateTime<Utc>`
//! here and leave the service as RFC 3339 UTC (serde's form for them).

mod catalog;
mod creators;
mod grants;
mod keys;
mod packs;
mod payouts;
mod purchases;

pub use catalog::{EntitlementDefinitionView, PriceView, ProductView};
pub use creators::{CreatorView, EarningsView};
pub use grants::GrantView;
pub use keys::{NewServiceCredentialView, ServiceCredentialView};
pub use packs::{PackEventView, PackView, Page, StickerView, StorePackView};
pub use payouts::{
    AuditView, BankAccountView, LineView, PayoutAccountView, RunSummaryView, RunView,
    TaxProfileView, TaxTotalView,
};
pub use purchases::{DonationView, OrderView, StartedView, SubscriptionView};

/// Maps a list of rows to their views.
pub fn all<'a, R: 'a, V: From<&'a R>>(rows: &'a [R]) -> Vec<V> {
    rows.iter().map(V::from).collect()
}
