//! Sticker packs as their creator, a moderator and the store see them.

use crate::db::models::catalog::Price;
use crate::db::models::from_db;
use crate::db::models::packs::{Pack, PackEvent, Sticker};
use crate::domain::pack_text::{language_of, Locales};
use crate::domain::states::{PackKind, PackState};
use chrono::{DateTime, Utc};
use serde::Serialize;

fn blob_url(sha: &Option<String>) -> Option<String> {
    sha.as_ref().map(|s| format!("/v1/blobs/{s}"))
}

/// A sticker: its images are blobs (`/v1/blobs/{sha256}`), immutable once published.
#[derive(Clone, Serialize)]
pub struct StickerView {
    pub position: i32,
    /// Permanent, given when the pack is first published; `null` before.
    pub sticker_id: Option<String>,
    pub emoji: Vec<String>,
    pub image_url: String,
    pub thumbnail_url: String,
    pub image_sha256: String,
    pub image_bytes: i64,
    pub frames: i32,
    pub duration_ms: i32,
    /// A moderator's reason code for this sticker when the pack was rejected.
    pub review_reason: Option<String>,
}

impl From<&Sticker> for StickerView {
    fn from(s: &Sticker) -> Self {
        StickerView {
            position: s.position,
            sticker_id: s.sticker_id.clone(),
            emoji: s.emoji.split(' ').map(str::to_owned).collect(),
            image_url: format!("/v1/blobs/{}", s.image_sha256),
            thumbnail_url: format!("/v1/blobs/{}", s.thumbnail_sha256),
            image_sha256: s.image_sha256.clone(),
            image_bytes: s.image_bytes,
            frames: s.frames,
            duration_ms: s.duration_ms,
            review_reason: s.review_reason.clone(),
        }
    }
}

/// A pack as its creator and moderators see it: state and review included.
#[derive(Serialize)]
pub struct PackView {
    pub id: String,
    pub creator_id: String,
    pub state: PackState,
    pub kind: PackKind,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub locales: Locales,
    /// `null`: sold everywhere.
    pub sale_regions: Option<Vec<String>>,
    /// The cover (main image) and its tray icon; `null` until uploaded.
    pub cover_url: Option<String>,
    pub tray_url: Option<String>,
    pub price_tier: Option<String>,
    pub review_note: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub stickers: Vec<StickerView>,
}

impl PackView {
    /// As its creator sees it: which moderator reviews it is not theirs to know.
    pub fn for_creator(p: &Pack, stickers: &[Sticker]) -> Self {
        PackView {
            claimed_by: None,
            claimed_until: None,
            ..Self::new(p, stickers)
        }
    }

    pub fn new(p: &Pack, stickers: &[Sticker]) -> Self {
        PackView {
            id: p.id.clone(),
            creator_id: p.creator_id.clone(),
            state: p.state,
            kind: p.kind,
            title: p.title.clone(),
            description: p.description.clone(),
            tags: p.tags(),
            locales: p.locales(),
            sale_regions: p.sale_regions(),
            cover_url: blob_url(&p.cover_sha256),
            tray_url: blob_url(&p.tray_sha256),
            price_tier: p.price_tier.clone(),
            review_note: p.review_note.clone(),
            claimed_by: p.claimed_by.clone(),
            claimed_until: p.claimed_until.map(from_db),
            submitted_at: p.submitted_at.map(from_db),
            published_at: p.published_at.map(from_db),
            created_at: from_db(p.created_at),
            updated_at: from_db(p.updated_at),
            stickers: stickers
                .iter()
                .filter(|s| s.pack_id == p.id)
                .map(StickerView::from)
                .collect(),
        }
    }
}

/// One change of a pack's state, for moderators' audit trail.
#[derive(Serialize)]
pub struct PackEventView {
    pub id: String,
    pub actor_id: String,
    pub from: String,
    pub to: String,
    pub reasons: Vec<String>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<&PackEvent> for PackEventView {
    fn from(e: &PackEvent) -> Self {
        PackEventView {
            id: e.id.clone(),
            actor_id: e.actor_id.clone(),
            from: e.from_state.clone(),
            to: e.to_state.clone(),
            reasons: serde_json::from_str(&e.reasons).unwrap_or_default(),
            note: e.note.clone(),
            at: from_db(e.created_at),
        }
    }
}

/// A pack in the store: what a buyer sees, with its prices (one-off) and whether they own it.
#[derive(Clone, Serialize)]
pub struct StorePackView {
    pub id: String,
    pub creator_id: String,
    pub kind: PackKind,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Texts per BCP-47 locale, for apps in other languages.
    pub locales: Locales,
    /// `null`: sold everywhere.
    pub sale_regions: Option<Vec<String>>,
    /// The cover (main image); `null` when the creator gave none.
    pub cover_url: Option<String>,
    /// The tray icon: the cover's, else the first sticker's thumbnail.
    pub tray_url: Option<String>,
    pub free: bool,
    pub prices: Vec<StorePriceView>,
    /// The price in the currency asked for (`?currency=`); `null` when none was asked, the
    /// pack is free, or it is not sold in that currency.
    pub price: Option<StorePriceView>,
    /// The whole pack as one ZIP (`/v1/blobs/{sha256}`), once built at publication.
    pub archive_url: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    /// `null` when the caller is not a signed-in user.
    pub owned: Option<bool>,
    pub stickers: Vec<StickerView>,
}

#[derive(Clone, Serialize)]
pub struct StorePriceView {
    pub price_id: String,
    pub amount_minor: i64,
    pub currency: String,
}

impl StorePackView {
    pub fn new(p: &Pack, stickers: &[Sticker], prices: &[Price], owned: Option<bool>) -> Self {
        StorePackView {
            id: p.id.clone(),
            creator_id: p.creator_id.clone(),
            kind: p.kind,
            title: p.title.clone(),
            description: p.description.clone(),
            tags: p.tags(),
            locales: p.locales(),
            sale_regions: p.sale_regions(),
            cover_url: blob_url(&p.cover_sha256),
            tray_url: blob_url(&p.tray_sha256).or_else(|| {
                stickers
                    .iter()
                    .filter(|s| s.pack_id == p.id)
                    .min_by_key(|s| s.position)
                    .map(|s| format!("/v1/blobs/{}", s.thumbnail_sha256))
            }),
            free: p.price_tier.is_none(),
            prices: prices
                .iter()
                .filter(|x| x.product_id == p.id && x.active)
                .map(|x| StorePriceView {
                    price_id: x.id.clone(),
                    amount_minor: x.amount_minor,
                    currency: x.currency.clone(),
                })
                .collect(),
            price: None,
            archive_url: None,
            published_at: p.published_at.map(from_db),
            owned,
            stickers: stickers
                .iter()
                .filter(|s| s.pack_id == p.id)
                .map(|s| StickerView {
                    // Review notes are the creator's and the moderators', not the store's.
                    review_reason: None,
                    ..StickerView::from(s)
                })
                .collect(),
        }
    }
}

impl StorePackView {
    /// A list shows texts in the language asked for only (`?locale=`), none without one: a
    /// pack may carry 40 locales, the pack's own page shows them all.
    pub fn only_language_of(mut self, locale: Option<&str>) -> Self {
        self.locales
            .retain(|tag, _| locale.is_some_and(|l| language_of(tag) == language_of(l)));
        self
    }

    /// With `price` set to the price in `currency`, if asked for and sold in it.
    /// With `archive_url` set from the packs' archives `(pack id, SHA-256)`.
    pub fn with_archive(mut self, archives: &[(String, String)]) -> Self {
        self.archive_url = archives
            .iter()
            .find(|(pack, _)| *pack == self.id)
            .map(|(_, sha)| format!("/v1/blobs/{sha}"));
        self
    }

    pub fn priced_in(mut self, currency: Option<&str>) -> Self {
        self.price = currency.and_then(|c| self.prices.iter().find(|p| p.currency == c).cloned());
        self
    }
}

/// A page of a list and the cursor of the next (`null`: the last page).
#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
