//! Sticker packs from a creator's draft to the store: stickers validated and stored, review,
//! release as a product with the configured tier's prices, and free claims. Every change of
//! state is checked against the state the pack is in under a lock, and written to the audit
//! trail in the same transaction.

use crate::app::AppState;
use crate::db;
use crate::db::models::catalog::{NewPrice, NewProduct, Price, Product};
use crate::db::models::creators::Creator;
use crate::db::models::packs::{self, NewPack, Pack, PackTexts, Sticker};
use crate::db::models::{to_db, users};
use crate::db::DbConn;
use crate::domain::pack_text::{check_emoji, Locales};
use crate::domain::regions::Region;
use crate::domain::states::{PackKind, PackState, ProductKind};
use crate::error::AppError;
use crate::services::changes;
use crate::services::sticker_images::{self, Encoded, Kind, Rules};
use chrono::{Duration, Utc};

/// The pack, if the creator owns it (another creator's pack is "not found", not "forbidden":
/// its existence is not theirs to know).
fn own_pack(conn: &mut DbConn, creator: &str, id: &str) -> Result<Pack, AppError> {
    Pack::lock(conn, id)?
        .filter(|p| p.creator_id == creator)
        .ok_or_else(|| AppError::not_found(format!("pack {id}")))
}

fn editable(pack: &Pack) -> Result<(), AppError> {
    if matches!(pack.state, PackState::Draft | PackState::Rejected) {
        Ok(())
    } else {
        Err(AppError::conflict(
            "pack_not_editable",
            format!(
                "pack {} is {}: stickers change only in a draft or a rejected pack",
                pack.id, pack.state
            ),
        ))
    }
}

pub(crate) fn moved(
    conn: &mut DbConn,
    pack: &Pack,
    actor: &str,
    to: PackState,
    reasons: &[String],
    note: Option<&str>,
) -> Result<String, AppError> {
    Ok(packs::record_event(
        conn, &pack.id, actor, pack.state, to, reasons, note,
    )?)
}

/// The blob store could not be reached: a 503, like a lost database (the error is logged).
pub fn storage_unavailable(e: anyhow::Error) -> AppError {
    tracing::warn!(error = %format!("{e:#}"), "blob store unavailable");
    AppError::Unavailable("sticker storage is unavailable; try again".into())
}

pub fn creator_of(conn: &mut DbConn, user: &str) -> Result<Creator, AppError> {
    Creator::find(conn, user)?
        .ok_or_else(|| AppError::not_found("creator profile (register with POST /v1/creators/me)"))
}

/// What a new draft says about itself (shapes checked at the edge).
pub struct Draft {
    pub kind: PackKind,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub price_tier: Option<String>,
    pub locales: Locales,
    /// `None`: sold everywhere.
    pub sale_regions: Option<Vec<Region>>,
}

pub async fn create(state: &AppState, creator: &str, draft: Draft) -> Result<Pack, AppError> {
    if let Some(t) = &draft.price_tier {
        if !state.settings.packs.price_tiers.contains_key(t) {
            return Err(AppError::unprocessable(
                "invalid_price_tier",
                format!(
                    "price_tier must be one of {:?}, or absent for a free pack",
                    state.settings.packs.price_tiers.keys().collect::<Vec<_>>()
                ),
            ));
        }
    }
    let creator = creator.to_owned();
    db::transaction(&state.pool, move |conn| {
        creator_of(conn, &creator)?;
        Ok(Pack::create(
            conn,
            NewPack {
                creator_id: creator,
                kind: draft.kind,
                title: draft.title,
                description: draft.description,
                tags: draft.tags,
                price_tier: draft.price_tier,
                locales: draft.locales,
                sale_regions: draft.sale_regions,
            },
        )?)
    })
    .await
}

/// Validates and re-encodes one image on a blocking thread, within the pixel budget shared by
/// all uploads, so a burst of large images waits instead of exhausting memory.
async fn encode(state: &AppState, bytes: Vec<u8>, kind: PackKind) -> Result<Encoded, AppError> {
    let rules = Rules {
        max_input_bytes: state.settings.packs.max_upload_bytes,
        ..Rules::default()
    };
    encode_by(state, bytes, kind, rules).await
}

/// A pack's cover, like LINE's main image: a 240 px canvas from a source of 96-512 px, with
/// its 96 px tray icon as the thumbnail.
fn cover_rules(state: &AppState) -> Rules {
    Rules {
        canvas: 240,
        min_side: 96,
        max_source_side: 512,
        thumbnail: 96,
        max_input_bytes: state.settings.packs.max_upload_bytes,
        ..Rules::default()
    }
}

async fn encode_by(
    state: &AppState,
    bytes: Vec<u8>,
    kind: PackKind,
    rules: Rules,
) -> Result<Encoded, AppError> {
    // Permits are millions of 4-byte pixels of decoder memory (`pixel_cost`: the peak a decode
    // holds, canvas and frames included). Unreadable headers are refused before any decoding,
    // so they cost one.
    let budget = state.decode_megapixels;
    // A header claiming more than the rules allow is refused before decoding: it costs one
    // too, or a stream of tiny "bombs" would each wait for the whole budget and hold back
    // every other upload.
    let most = u64::from(rules.max_source_side).pow(2) * u64::from(rules.max_frames);
    let cost = sticker_images::pixel_cost(&bytes)
        .filter(|px| *px <= most)
        .map_or(1, |px| {
            u32::try_from(px.div_ceil(1_000_000)).unwrap_or(u32::MAX)
        })
        .clamp(1, budget);
    let permit = state
        .decode_budget
        .clone()
        .acquire_many_owned(cost)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("decode budget closed: {e}")))?;
    let kind = match kind {
        PackKind::Static => Kind::Static,
        PackKind::Animated => Kind::Animated,
    };
    // The permit goes with the decode: a client that hangs up does not free it early.
    actix_web::rt::task::spawn_blocking(move || {
        let _permit = permit;
        sticker_images::check(&bytes, kind, &rules)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("image check: {e}")))?
    .map_err(|r| AppError::unprocessable(r.code, r.detail))
}

/// Writes an encoded sticker's blobs (before any row names them) and gives the row to write.
async fn store(
    state: &AppState,
    pack_id: &str,
    position: i32,
    emoji: String,
    encoded: Encoded,
) -> Result<Sticker, AppError> {
    let image_bytes = i64::try_from(encoded.image.len()).unwrap_or(i64::MAX);
    let (frames, duration_ms) = (encoded.frames, encoded.duration_ms);
    let (image, thumbnail) = put_blobs(state, encoded).await?;
    Ok(Sticker {
        pack_id: pack_id.to_owned(),
        position,
        sticker_id: None,
        image_sha256: image,
        thumbnail_sha256: thumbnail,
        image_bytes,
        emoji,
        frames: i32::try_from(frames).unwrap_or(i32::MAX),
        duration_ms: i32::try_from(duration_ms).unwrap_or(i32::MAX),
        review_reason: None,
        created_at: to_db(Utc::now()),
    })
}

/// The caller's pack, if they may change its stickers now (checked before an upload is read).
pub async fn editable_own(
    state: &AppState,
    creator: &str,
    pack_id: &str,
) -> Result<Pack, AppError> {
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    db::run(&state.pool, move |conn| {
        let pack = Pack::find(conn, &p)?
            .filter(|k| k.creator_id == c)
            .ok_or_else(|| AppError::not_found(format!("pack {p}")))?;
        editable(&pack)?;
        Ok(pack)
    })
    .await
}

/// Replaces a draft's stickers (and its title, description and tags) with an archive's, at
/// once: every image is checked first, so one refusal leaves the draft as it was.
pub async fn replace_from_archive(
    state: &AppState,
    creator: &str,
    pack_id: &str,
    archive: std::fs::File,
) -> Result<Vec<Sticker>, AppError> {
    let pack = editable_own(state, creator, pack_id).await?;
    let max = state.settings.packs.max_stickers;
    let limits = crate::services::pack_archive::ArchiveLimits {
        max_entry_bytes: state.settings.packs.max_upload_bytes as u64,
        ..Default::default()
    };
    let contents = actix_web::rt::task::spawn_blocking(move || {
        crate::services::pack_archive::read(archive, &limits, max)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("archive read: {e}")))??;
    let mut manifest = contents.manifest;
    let mut files = contents.files;
    // The cover may be a sticker's file too: taken before the stickers take theirs.
    let cover = manifest.cover.as_ref().and_then(|c| files.get(c).cloned());
    if manifest.kind != pack.kind {
        return Err(AppError::unprocessable(
            "invalid_manifest",
            format!(
                "the archive's pack is {}, this pack is {}",
                manifest.kind, pack.kind
            ),
        ));
    }
    let mut stickers = Vec::new();
    for (i, s) in manifest.stickers.iter().enumerate() {
        let emoji = check_emoji(&s.emoji)
            .map_err(|d| AppError::unprocessable("invalid_emoji", format!("{}: {d}", s.file)))?;
        let bytes = files.remove(&s.file).unwrap_or_default();
        // A refusal names the sticker it concerns.
        let encoded = encode(state, bytes, pack.kind)
            .await
            .map_err(naming(&s.file))?;
        let position = i32::try_from(i + 1).unwrap_or(i32::MAX);
        stickers.push((position, emoji.join(" "), encoded));
    }
    let cover = match cover {
        Some(bytes) => Some(encode_cover(state, bytes, pack.kind).await?),
        None => None,
    };
    let mut rows = Vec::new();
    for (position, emoji, encoded) in stickers {
        rows.push(store(state, pack_id, position, emoji, encoded).await?);
    }
    let cover = match cover {
        Some(encoded) => Some(put_blobs(state, encoded).await?),
        None => None,
    };
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    let texts = PackTexts {
        title: std::mem::take(&mut manifest.title),
        description: std::mem::take(&mut manifest.description),
        tags: std::mem::take(&mut manifest.tags),
        locales: std::mem::take(&mut manifest.locales),
    };
    db::transaction(&state.pool, move |conn| {
        editable(&own_pack(conn, &c, &p)?)?;
        Sticker::delete_all(conn, &p)?;
        for r in &rows {
            Sticker::put(conn, r)?;
        }
        Pack::set_texts(conn, &p, &texts)?;
        if let Some((cover, tray)) = &cover {
            Pack::set_cover(conn, &p, cover, tray)?;
        }
        Ok(rows)
    })
    .await
}

/// Puts a sticker at `position` of a draft: validated, re-encoded, its blobs written before the
/// row that names them commits.
pub async fn put_sticker(
    state: &AppState,
    creator: &str,
    pack_id: &str,
    position: i32,
    emoji: &str,
    bytes: Vec<u8>,
) -> Result<Sticker, AppError> {
    let max = state.settings.packs.max_stickers;
    if !(1..=max).contains(&position) {
        return Err(AppError::unprocessable(
            "invalid_position",
            format!("position must be 1-{max}"),
        ));
    }
    let pack = editable_own(state, creator, pack_id).await?;
    // Checked once the pack is known to be the caller's: others learn nothing from the answer.
    if emoji.len() > 200 {
        return Err(AppError::unprocessable(
            "invalid_emoji",
            "a sticker has 1-3 emoji",
        ));
    }
    let emoji = check_emoji(emoji).map_err(|d| AppError::unprocessable("invalid_emoji", d))?;
    if bytes.is_empty() {
        return Err(AppError::unprocessable(
            "empty_file",
            "the body is the sticker image; it is empty",
        ));
    }
    let encoded = encode(state, bytes, pack.kind).await?;
    let sticker = store(state, pack_id, position, emoji.join(" "), encoded).await?;
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    db::transaction(&state.pool, move |conn| {
        // The pack may have been submitted while the image was checked.
        editable(&own_pack(conn, &c, &p)?)?;
        Sticker::put(conn, &sticker)?;
        Ok(sticker)
    })
    .await
}

/// The cover of a draft: static, or animated in an animated pack (LINE's main image is an
/// APNG there). Its 96 px first frame is the tray icon.
pub async fn put_cover(
    state: &AppState,
    creator: &str,
    pack_id: &str,
    bytes: Vec<u8>,
) -> Result<Pack, AppError> {
    let pack = editable_own(state, creator, pack_id).await?;
    let encoded = encode_cover(state, bytes, pack.kind).await?;
    let (cover, tray) = put_blobs(state, encoded).await?;
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    db::transaction(&state.pool, move |conn| {
        editable(&own_pack(conn, &c, &p)?)?;
        Pack::set_cover(conn, &p, &cover, &tray)?;
        Pack::find(conn, &p)?.ok_or_else(|| AppError::not_found(format!("pack {p}")))
    })
    .await
}

async fn encode_cover(
    state: &AppState,
    bytes: Vec<u8>,
    kind: PackKind,
) -> Result<Encoded, AppError> {
    if bytes.is_empty() {
        return Err(AppError::unprocessable(
            "empty_file",
            "the body is the cover image; it is empty",
        ));
    }
    let named = naming("cover");
    match encode_by(state, bytes.clone(), kind, cover_rules(state)).await {
        // A still cover suits an animated pack too.
        Err(AppError::Client { code, .. })
            if kind == PackKind::Animated
                && code == sticker_images::Refusal::STATIC_NOT_ALLOWED =>
        {
            encode_by(state, bytes, PackKind::Static, cover_rules(state))
                .await
                .map_err(named)
        }
        other => other.map_err(named),
    }
}

/// A refusal that names the file (or the cover) it concerns.
fn naming(what: &str) -> impl Fn(AppError) -> AppError + '_ {
    move |e| match e {
        AppError::Client {
            status,
            code,
            detail,
        } => AppError::Client {
            status,
            code,
            detail: format!("{what}: {detail}"),
        },
        other => other,
    }
}

/// Writes an encoded image's blobs (before any row names them): (image, thumbnail) — a
/// sticker's, or a cover and its tray icon.
async fn put_blobs(state: &AppState, encoded: Encoded) -> Result<(String, String), AppError> {
    let image = state
        .blobs
        .put(encoded.image.into())
        .await
        .map_err(storage_unavailable)?;
    let thumbnail = state
        .blobs
        .put(encoded.thumbnail.into())
        .await
        .map_err(storage_unavailable)?;
    Ok((image, thumbnail))
}

pub async fn delete_sticker(
    state: &AppState,
    creator: &str,
    pack_id: &str,
    position: i32,
) -> Result<(), AppError> {
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    db::transaction(&state.pool, move |conn| {
        editable(&own_pack(conn, &c, &p)?)?;
        if Sticker::delete(conn, &p, position)? == 0 {
            return Err(AppError::not_found(format!(
                "sticker {position} of pack {p}"
            )));
        }
        Ok(())
    })
    .await
}

/// Sends a draft (or a rejected pack, corrected) to review.
pub async fn submit(state: &AppState, creator: &str, pack_id: &str) -> Result<Pack, AppError> {
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    db::transaction(&state.pool, move |conn| {
        let pack = own_pack(conn, &c, &p)?;
        editable(&pack)?;
        if Sticker::of_pack(conn, &p)?.is_empty() {
            return Err(AppError::unprocessable(
                "pack_empty",
                "a pack needs at least one sticker before review",
            ));
        }
        moved(conn, &pack, &c, PackState::InReview, &[], None)?;
        Pack::submitted(conn, &p, Utc::now())?;
        Ok(Pack::find(conn, &p)?.unwrap_or(pack))
    })
    .await
}

/// Puts an approved pack on sale: it becomes the product `sticker_pack:<id>` is held through,
/// priced by its tier, and its stickers get their permanent ids.
pub async fn release(state: &AppState, creator: &str, pack_id: &str) -> Result<Pack, AppError> {
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    let tiers = state.settings.packs.price_tiers.clone();
    let pack = changes::transaction(state, move |conn, changed| {
        let pack = own_pack(conn, &c, &p)?;
        if pack.state != PackState::Approved {
            return Err(AppError::conflict(
                "pack_not_approved",
                format!(
                    "pack {p} is {}: only an approved pack is released",
                    pack.state
                ),
            ));
        }
        let prices = match &pack.price_tier {
            Some(t) => tiers.get(t).cloned().ok_or_else(|| {
                AppError::conflict(
                    "price_tier_gone",
                    format!("price tier {t} is no longer configured"),
                )
            })?,
            None => Default::default(),
        };
        if Product::find(conn, &p)?.is_none() {
            Product::create(
                conn,
                NewProduct {
                    id: Some(p.clone()),
                    kind: ProductKind::StickerPack,
                    name: pack.title.clone(),
                    description: pack.description.clone(),
                    creator_id: Some(c.clone()),
                    per_seat: false,
                },
            )?;
            for (currency, amount) in prices {
                Price::create(
                    conn,
                    NewPrice {
                        id: None,
                        product_id: p.clone(),
                        amount_minor: amount,
                        currency: currency.to_uppercase(),
                        interval: None,
                        trial_days: 0,
                    },
                )?;
            }
        } else {
            Product::update(conn, &p, Some(pack.title.clone()), None, Some(true))?;
        }
        Sticker::assign_ids(conn, &p)?;
        moved(conn, &pack, &c, PackState::OnSale, &[], None)?;
        Pack::published(conn, &p, Utc::now())?;
        changed.user(c);
        Ok(Pack::find(conn, &p)?.unwrap_or(pack))
    })
    .await?;
    // The archive needs the permanent ids the release gave; if the blob store fails now, the
    // jobs worker builds it later (`archive_missing`).
    if let Err(e) = build_archive(state, pack_id).await {
        tracing::warn!(pack = pack_id, error = %e, "pack archive not built yet");
    }
    Ok(pack)
}

/// Builds a published pack's archive and records it, unless its emoji changed while it was
/// built (an approved edit): then it is built again from the new ones, so a slow build never
/// records an archive that says old emoji.
pub async fn build_archive(state: &AppState, pack_id: &str) -> Result<(), AppError> {
    for _ in 0..3 {
        if build_archive_once(state, pack_id).await? {
            return Ok(());
        }
    }
    Err(AppError::conflict(
        "pack_changing",
        "the pack's emoji kept changing while its archive was built; the jobs worker builds it later",
    ))
}

/// What an archive says of each sticker.
fn said(stickers: &[Sticker]) -> Vec<(Option<String>, String)> {
    stickers
        .iter()
        .map(|s| (s.sticker_id.clone(), s.emoji.clone()))
        .collect()
}

async fn build_archive_once(state: &AppState, pack_id: &str) -> Result<bool, AppError> {
    let p = pack_id.to_owned();
    let stickers = db::run(&state.pool, move |conn| Ok(Sticker::of_pack(conn, &p)?)).await?;
    let built_from = said(&stickers);
    let mut published = Vec::with_capacity(stickers.len());
    for s in stickers {
        let Some(sticker_id) = s.sticker_id else {
            return Err(AppError::conflict(
                "pack_not_published",
                "stickers have no ids yet",
            ));
        };
        let image = state
            .blobs
            .get(&s.image_sha256)
            .await
            .map_err(storage_unavailable)?
            .ok_or_else(|| {
                storage_unavailable(anyhow::anyhow!("blob {} missing", s.image_sha256))
            })?;
        published.push(crate::services::pack_archive::Published {
            sticker_id,
            emoji: s.emoji,
            image: image.to_vec(),
        });
    }
    let id = pack_id.to_owned();
    let zip = actix_web::rt::task::spawn_blocking(move || {
        crate::services::pack_archive::build(&id, &published)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("pack archive: {e}")))?
    .map_err(|e| AppError::Internal(anyhow::anyhow!("pack archive: {e}")))?;
    let bytes = i64::try_from(zip.len()).unwrap_or(i64::MAX);
    // Written before the row that names it, like every blob.
    let sha = state
        .blobs
        .put(zip.into())
        .await
        .map_err(storage_unavailable)?;
    let p = pack_id.to_owned();
    db::transaction(&state.pool, move |conn| {
        // Under the pack's lock, which an emoji edit's approval takes too.
        Pack::lock(conn, &p)?;
        if said(&Sticker::of_pack(conn, &p)?) != built_from {
            return Ok(false);
        }
        packs::set_archive(conn, &p, &sha, bytes)?;
        Ok(true)
    })
    .await
}

/// Archives of published packs that have none (the blob store failed at their release).
pub async fn archive_missing(state: &AppState) -> Result<usize, AppError> {
    // Not those just released: their release is building theirs.
    let before = Utc::now() - Duration::minutes(1);
    let ids = db::run(&state.pool, move |conn| {
        Ok(packs::without_archive(conn, before, 10)?)
    })
    .await?;
    for id in &ids {
        build_archive(state, id).await?;
    }
    Ok(ids.len())
}

/// Takes a pack off the store; whoever owns it keeps it.
pub async fn retire(state: &AppState, creator: &str, pack_id: &str) -> Result<Pack, AppError> {
    let (c, p) = (creator.to_owned(), pack_id.to_owned());
    db::transaction(&state.pool, move |conn| {
        let pack = own_pack(conn, &c, &p)?;
        if pack.state != PackState::OnSale {
            return Err(AppError::conflict(
                "pack_not_on_sale",
                format!("pack {p} is {}: only a pack on sale is retired", pack.state),
            ));
        }
        Product::update(conn, &p, None, None, Some(false))?;
        moved(conn, &pack, &c, PackState::Retired, &[], None)?;
        Pack::set_state(conn, &p, PackState::Retired, Utc::now())?;
        Ok(Pack::find(conn, &p)?.unwrap_or(pack))
    })
    .await
}

/// A moderator's decision on a pack under review.
pub enum Decision {
    Approve,
    Reject {
        /// Reason codes (from `REJECT_REASONS`) per sticker position, and for the whole pack.
        stickers: Vec<(i32, String)>,
        reasons: Vec<String>,
    },
    Suspend {
        reasons: Vec<String>,
    },
}

/// Reason codes a moderator gives (version 1 of the list; codes are never reused).
pub const REJECT_REASONS: &[&str] = &[
    "intellectual_property",
    "violence",
    "sexual_content",
    "hate",
    "flashing_images",
    "personal_information",
    "low_quality",
    "text_only",
    "misleading_metadata",
    "other",
];

pub fn check_reasons(reasons: &[String]) -> Result<(), AppError> {
    if reasons.len() > 20 {
        return Err(AppError::unprocessable(
            "invalid_reason",
            "at most 20 reasons",
        ));
    }
    for r in reasons {
        if !REJECT_REASONS.contains(&r.as_str()) {
            return Err(AppError::unprocessable(
                "invalid_reason",
                format!("reason {r:?} is not one of {REJECT_REASONS:?}"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn not_own(pack: &Pack, moderator: &str) -> Result<(), AppError> {
    if pack.creator_id == moderator {
        return Err(AppError::forbidden("nobody reviews their own pack"));
    }
    Ok(())
}

/// Claims a pack under review for a while, so two moderators never review one pack.
pub async fn claim(state: &AppState, moderator: &str, pack_id: &str) -> Result<Pack, AppError> {
    let (m, p) = (moderator.to_owned(), pack_id.to_owned());
    let minutes = state.settings.packs.review_claim_minutes;
    db::transaction(&state.pool, move |conn| {
        let pack = Pack::lock(conn, &p)?.ok_or_else(|| AppError::not_found(format!("pack {p}")))?;
        not_own(&pack, &m)?;
        if pack.state != PackState::InReview {
            return Err(AppError::conflict(
                "pack_not_in_review",
                format!("pack {p} is {}", pack.state),
            ));
        }
        claimed_by_other(&pack, &m)?;
        Pack::claim(conn, &p, &m, Utc::now() + Duration::minutes(minutes))?;
        Ok(Pack::find(conn, &p)?.unwrap_or(pack))
    })
    .await
}

fn claimed_by_other(pack: &Pack, moderator: &str) -> Result<(), AppError> {
    let now = to_db(Utc::now());
    match (&pack.claimed_by, pack.claimed_until) {
        (Some(other), Some(until)) if other != moderator && until > now => Err(AppError::conflict(
            "pack_claimed",
            format!("another moderator ({other}) is reviewing this pack"),
        )),
        _ => Ok(()),
    }
}

pub async fn decide(
    state: &AppState,
    moderator: &str,
    pack_id: &str,
    decision: Decision,
    note: Option<String>,
) -> Result<Pack, AppError> {
    let (m, p) = (moderator.to_owned(), pack_id.to_owned());
    changes::transaction(state, move |conn, changed| {
        let pack = Pack::lock(conn, &p)?.ok_or_else(|| AppError::not_found(format!("pack {p}")))?;
        not_own(&pack, &m)?;
        let (to, reasons, from_ok): (PackState, Vec<String>, &[PackState]) = match &decision {
            Decision::Approve => (PackState::Approved, vec![], &[PackState::InReview]),
            Decision::Reject { stickers, reasons } => {
                let stickers_now = Sticker::of_pack(conn, &p)?;
                for (position, reason) in stickers {
                    if !stickers_now.iter().any(|s| s.position == *position) {
                        return Err(AppError::unprocessable(
                            "invalid_position",
                            format!("pack {p} has no sticker at position {position}"),
                        ));
                    }
                    set_sticker_reason(conn, &p, *position, reason)?;
                }
                let mut all = reasons.clone();
                all.extend(stickers.iter().map(|(pos, r)| format!("{pos}:{r}")));
                (PackState::Rejected, all, &[PackState::InReview])
            }
            Decision::Suspend { reasons } => {
                (PackState::Suspended, reasons.clone(), &[PackState::OnSale])
            }
        };
        if !from_ok.contains(&pack.state) {
            return Err(AppError::conflict(
                "invalid_transition",
                format!("pack {p} is {}: it cannot become {to}", pack.state),
            ));
        }
        if pack.state == PackState::InReview {
            claimed_by_other(&pack, &m)?;
        }
        if to == PackState::Suspended {
            // Off the store; buyers keep it.
            Product::update(conn, &p, None, None, Some(false))?;
            changed.user(pack.creator_id.clone());
        }
        moved(conn, &pack, &m, to, &reasons, note.as_deref())?;
        Pack::reviewed(conn, &p, to, &m, note.as_deref(), Utc::now())?;
        crate::services::emails::pack_decision(
            conn,
            &pack.creator_id,
            &p,
            &pack.title,
            to,
            note.as_deref(),
        )?;
        Ok(Pack::find(conn, &p)?.unwrap_or(pack))
    })
    .await
}

fn set_sticker_reason(
    conn: &mut DbConn,
    pack: &str,
    position: i32,
    reason: &str,
) -> Result<(), AppError> {
    use crate::db::schema::pack_stickers;
    use diesel::prelude::*;
    diesel::update(
        pack_stickers::table
            .filter(pack_stickers::pack_id.eq(pack))
            .filter(pack_stickers::position.eq(position)),
    )
    .set(pack_stickers::review_reason.eq(reason))
    .execute(conn)?;
    Ok(())
}

/// A free pack on sale, claimed by the caller (claiming twice is fine).
/// Whether a pack may go to someone in `region` (`None`: not known): for the buyer's own copy
/// or, `gift`, for the recipient's. A pack limited to some regions is not sold where the user's
/// region is not known. A refused gift says neither where the recipient is nor whether that is
/// known: one answer for both, so a gift attempt cannot look up someone's country.
pub fn check_sale_region(pack: &Pack, region: Option<Region>, gift: bool) -> Result<(), AppError> {
    if pack.sold_in(region) {
        return Ok(());
    }
    Err(match (gift, region) {
        (true, _) => AppError::unprocessable(
            "not_sold_to_recipient",
            format!(
                "pack {} is sold only in some regions, and cannot be gifted to this user",
                pack.id
            ),
        ),
        (false, Some(r)) => AppError::unprocessable(
            "not_sold_in_region",
            format!("pack {} is not sold in {r}, your region", pack.id),
        ),
        (false, None) => AppError::unprocessable(
            "region_unknown",
            format!(
                "pack {} is sold only in some regions, and your region is not known \
                 (your messenger app tells us when you next sign in)",
                pack.id
            ),
        ),
    })
}

/// Claims a free pack for `user` (in `region`, by their token).
pub async fn claim_free(
    state: &AppState,
    user: &str,
    region: Option<Region>,
    pack_id: &str,
) -> Result<bool, AppError> {
    let (u, p) = (user.to_owned(), pack_id.to_owned());
    changes::transaction(state, move |conn, changed| {
        // Locked: a claim never commits after the pack left the store.
        let pack = Pack::lock(conn, &p)?
            .filter(|k| k.state == PackState::OnSale)
            .ok_or_else(|| AppError::not_found(format!("pack {p}")))?;
        if pack.price_tier.is_some() {
            return Err(AppError::unprocessable(
                "not_free",
                "this pack is sold: buy it with POST /v1/me/orders",
            ));
        }
        let region = match region {
            Some(r) => Some(r),
            None => users::country(conn, &u)?,
        };
        check_sale_region(&pack, region, false)?;
        users::ensure(conn, &u)?;
        let new = packs::claim_free(conn, &p, &u)?;
        changed.user(u);
        Ok(new)
    })
    .await
}
