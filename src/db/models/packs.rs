//! Sticker packs, their stickers, claims of free packs, and the audit trail of their states.

use super::{new_id, to_db};
use crate::db::schema::{pack_archives, pack_claims, pack_events, pack_stickers, packs};
use crate::db::DbConn;
use crate::domain::pack_text::{fold, language_of, locale_tags, search_text, Locales};
use crate::domain::regions::Region;
use crate::domain::states::{PackKind, PackState};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = packs)]
pub struct Pack {
    pub id: String,
    pub creator_id: String,
    pub state: PackState,
    pub kind: PackKind,
    pub title: String,
    pub description: String,
    /// A JSON array of tags (at most a handful; searched, never joined on).
    pub tags: String,
    /// A key of the configured price tiers; `None` for a free pack.
    pub price_tier: Option<String>,
    pub review_note: Option<String>,
    pub reviewer_id: Option<String>,
    /// The moderator reviewing it now, until `claimed_until`.
    pub claimed_by: Option<String>,
    pub claimed_until: Option<NaiveDateTime>,
    pub submitted_at: Option<NaiveDateTime>,
    pub published_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// A JSON array of ISO 3166-1 alpha-2 codes; `None`: sold everywhere.
    pub sale_regions: Option<String>,
    /// A JSON object: canonical BCP-47 tag → `LocaleTexts`.
    pub locales: String,
    /// Titles, tags and keywords folded (`pack_text::fold`), one per line: what store search
    /// matches.
    pub search_text: String,
    /// ` ja pt-BR pt `: the locales it has texts in and their languages.
    pub locale_tags: String,
    /// The cover (main image) and its tray icon; `None` until one is uploaded.
    pub cover_sha256: Option<String>,
    pub tray_sha256: Option<String>,
}

/// Bumped by every write of a pack, a price, an order or an archive in this process: once as
/// it is written and once more after its unit of work commits (`db::run`), so a store page
/// read before the commit is never used after it.
static STORE_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// This thread's unit of work wrote something the store shows.
    static STORE_DIRTY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Something the store shows may have changed.
pub fn store_touched() {
    STORE_DIRTY.with(|d| d.set(true));
    STORE_GENERATION.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

/// Called when a unit of work ends (committed or not): readers from now on see its writes.
pub fn store_unit_done() {
    if STORE_DIRTY.with(|d| d.replace(false)) {
        STORE_GENERATION.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

pub fn store_generation() -> u64 {
    STORE_GENERATION.load(std::sync::atomic::Ordering::Acquire)
}

/// What the store lists.
#[derive(Debug, Default)]
pub struct StoreFilter<'a> {
    pub creator: Option<&'a str>,
    /// One of the pack's tags, exactly.
    pub tag: Option<&'a str>,
    /// A substring of a title, tag or keyword, any case.
    pub text: Option<&'a str>,
    /// Packs with texts in this canonical BCP-47 tag or in its language.
    pub locale: Option<&'a str>,
    /// Packs sold in this region (ISO 3166-1 alpha-2).
    pub region: Option<&'a str>,
    /// Most distinct paying buyers first (else newest publication first).
    pub popular: bool,
}

/// A pack's distinct paying buyers: paid orders (a refunded one is no longer paid) with money,
/// not the creator's own. Gifts count their buyer. Free claims are not purchases.
const BUYERS: &str = "(SELECT COUNT(DISTINCT o.buyer_id) FROM orders o \
     WHERE o.product_id = packs.id AND o.status = 'paid' AND o.amount_minor > 0 \
       AND o.buyer_id <> packs.creator_id)";

fn buyers(conn: &mut DbConn, pack: &Pack) -> QueryResult<i64> {
    use crate::db::schema::orders;
    use crate::domain::states::OrderStatus;
    orders::table
        .filter(orders::product_id.eq(&pack.id))
        .filter(orders::status.eq(OrderStatus::Paid))
        .filter(orders::amount_minor.gt(0))
        .filter(orders::buyer_id.ne(&pack.creator_id))
        .select(diesel::dsl::count(orders::buyer_id).aggregate_distinct())
        .first(conn)
}

/// `%`, `_` and the escape character itself, escaped for `LIKE … ESCAPE '\'`.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A pack's words: what a creator edits after publication, through review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackTexts {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub locales: Locales,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = pack_stickers)]
pub struct Sticker {
    pub pack_id: String,
    pub position: i32,
    /// Given at first publication; never changes afterwards, nor does the image.
    pub sticker_id: Option<String>,
    pub image_sha256: String,
    pub thumbnail_sha256: String,
    pub image_bytes: i64,
    /// The sticker's emoji, separated by spaces.
    pub emoji: String,
    pub frames: i32,
    pub duration_ms: i32,
    pub review_reason: Option<String>,
    pub created_at: NaiveDateTime,
}

pub struct NewPack {
    pub creator_id: String,
    pub kind: PackKind,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub price_tier: Option<String>,
    pub locales: Locales,
    pub sale_regions: Option<Vec<Region>>,
}

fn regions_json(regions: &Option<Vec<Region>>) -> Option<String> {
    regions.as_ref().map(|r| {
        serde_json::to_string(&r.iter().map(Region::as_str).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into())
    })
}

impl Pack {
    pub fn create(conn: &mut DbConn, new: NewPack) -> QueryResult<Pack> {
        let now = to_db(Utc::now());
        let pack = Pack {
            id: new_id("pack"),
            creator_id: new.creator_id,
            state: PackState::Draft,
            kind: new.kind,
            search_text: search_text(&new.title, &new.tags, &new.locales),
            locale_tags: locale_tags(&new.locales),
            title: new.title,
            description: new.description,
            tags: serde_json::to_string(&new.tags).unwrap_or_else(|_| "[]".into()),
            locales: serde_json::to_string(&new.locales).unwrap_or_else(|_| "{}".into()),
            sale_regions: regions_json(&new.sale_regions),
            cover_sha256: None,
            tray_sha256: None,
            price_tier: new.price_tier,
            review_note: None,
            reviewer_id: None,
            claimed_by: None,
            claimed_until: None,
            submitted_at: None,
            published_at: None,
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(packs::table)
            .values(&pack)
            .execute(conn)?;
        Ok(pack)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Pack>> {
        packs::table
            .find(id)
            .select(Pack::as_select())
            .first(conn)
            .optional()
    }

    /// Reads the pack for a change: on PostgreSQL the row stays locked until the transaction
    /// ends, so two changes of one pack (two uploads, a submit racing an upload) go one by one.
    /// SQLite's single writer already serializes them.
    pub fn lock(conn: &mut DbConn, id: &str) -> QueryResult<Option<Pack>> {
        match conn {
            DbConn::Pg(c) => packs::table
                .find(id)
                .select(Pack::as_select())
                .for_update()
                .first(c)
                .optional(),
            DbConn::Sqlite(c) => packs::table
                .find(id)
                .select(Pack::as_select())
                .first(c)
                .optional(),
        }
    }

    /// The packs of these ids (at most 500 asked at once).
    pub fn many(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<Pack>> {
        packs::table
            .filter(packs::id.eq_any(&ids[..ids.len().min(500)]))
            .select(Pack::as_select())
            .load(conn)
    }

    pub fn tags(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }

    pub fn locales(&self) -> Locales {
        serde_json::from_str(&self.locales).unwrap_or_default()
    }

    /// `None`: sold everywhere.
    pub fn sale_regions(&self) -> Option<Vec<String>> {
        self.sale_regions
            .as_deref()
            .map(|r| serde_json::from_str(r).unwrap_or_default())
    }

    /// Whether a user in `region` (`None`: not known) may buy it.
    pub fn sold_in(&self, region: Option<Region>) -> bool {
        match (self.sale_regions(), region) {
            (None, _) => true,
            (Some(regions), Some(r)) => regions.iter().any(|x| x == r.as_str()),
            (Some(_), None) => false,
        }
    }

    /// The creator's packs, newest first, after the cursor (a pack id) if any.
    pub fn of_creator(
        conn: &mut DbConn,
        creator: &str,
        after: Option<&Pack>,
        limit: i64,
    ) -> QueryResult<Vec<Pack>> {
        let mut q = packs::table
            .filter(packs::creator_id.eq(creator))
            .select(Pack::as_select())
            .order((packs::created_at.desc(), packs::id.desc()))
            .limit(limit)
            .into_boxed();
        if let Some(a) = after {
            q = q.filter(
                packs::created_at.lt(a.created_at).or(packs::created_at
                    .eq(a.created_at)
                    .and(packs::id.lt(a.id.clone()))),
            );
        }
        q.load(conn)
    }

    /// Packs in a state, oldest submission first, after the cursor if any.
    pub fn in_state(
        conn: &mut DbConn,
        state: PackState,
        after: Option<&Pack>,
        limit: i64,
    ) -> QueryResult<Vec<Pack>> {
        let mut q = packs::table
            .filter(packs::state.eq(state))
            .select(Pack::as_select())
            .order((packs::submitted_at.asc(), packs::id.asc()))
            .limit(limit)
            .into_boxed();
        if let Some(a) = after {
            let at = a.submitted_at.unwrap_or(a.created_at);
            q = q.filter(
                packs::submitted_at
                    .gt(at)
                    .or(packs::submitted_at.eq(at).and(packs::id.gt(a.id.clone()))),
            );
        }
        q.load(conn)
    }

    /// Packs on sale matching `filter`, in its order, after the cursor if any.
    pub fn on_sale(
        conn: &mut DbConn,
        filter: &StoreFilter,
        after: Option<&Pack>,
        limit: i64,
    ) -> QueryResult<Vec<Pack>> {
        use diesel::dsl::sql;
        use diesel::sql_types::{BigInt, Bool, Text};
        let mut q = packs::table
            .filter(packs::state.eq(PackState::OnSale))
            .select(Pack::as_select())
            .limit(limit)
            .into_boxed();
        if let Some(c) = filter.creator {
            q = q.filter(packs::creator_id.eq(c.to_owned()));
        }
        if let Some(tag) = filter.tag {
            // Tags are a JSON array: a tag is found as its JSON string, quotes included.
            let needle = serde_json::to_string(tag).unwrap_or_default();
            q = q.filter(
                packs::tags
                    .like(format!("%{}%", escape_like(&needle)))
                    .escape('\\'),
            );
        }
        if let Some(text) = filter.text {
            let text = fold(text);
            let pattern = format!("%{}%", escape_like(&text));
            let sqlite = matches!(conn, DbConn::Sqlite(_));
            if sqlite && text.chars().count() >= 3 {
                // The trigram index finds the candidates; LIKE keeps the exact substring rule.
                let phrase = format!("\"{}\"", text.replace('"', "\"\""));
                q = q.filter(
                    sql::<Bool>(
                        "packs.id IN (SELECT pack_id FROM pack_search WHERE pack_search MATCH ",
                    )
                    .bind::<Text, _>(phrase)
                    .sql(")"),
                );
            }
            q = q.filter(packs::search_text.like(pattern).escape('\\'));
        }
        if let Some(locale) = filter.locale {
            // `ja-JP` finds texts in `ja-JP` or in `ja`; `pt` finds `pt`, `pt-BR`, `pt-PT`.
            let tag = |t: &str| format!("% {} %", escape_like(t));
            q = q.filter(
                packs::locale_tags
                    .like(tag(locale))
                    .escape('\\')
                    .or(packs::locale_tags
                        .like(tag(language_of(locale)))
                        .escape('\\')),
            );
        }
        if let Some(region) = filter.region {
            let code = format!("%\"{}\"%", escape_like(region));
            q = q.filter(
                packs::sale_regions
                    .is_null()
                    .or(packs::sale_regions.like(code).escape('\\')),
            );
        }
        if filter.popular {
            q = q.order((sql::<BigInt>(BUYERS).desc(), packs::id.desc()));
            if let Some(a) = after {
                let n = buyers(conn, a)?;
                q = q.filter(
                    sql::<Bool>("(")
                        .sql(BUYERS)
                        .sql(" < ")
                        .bind::<BigInt, _>(n)
                        .sql(" OR (")
                        .sql(BUYERS)
                        .sql(" = ")
                        .bind::<BigInt, _>(n)
                        .sql(" AND packs.id < ")
                        .bind::<Text, _>(a.id.clone())
                        .sql("))"),
                );
            }
        } else {
            q = q.order((packs::published_at.desc(), packs::id.desc()));
            if let Some(a) = after {
                let at = a.published_at.unwrap_or(a.created_at);
                q = q.filter(
                    packs::published_at
                        .lt(at)
                        .or(packs::published_at.eq(at).and(packs::id.lt(a.id.clone()))),
                );
            }
        }
        q.load(conn)
    }

    pub fn set_state(
        conn: &mut DbConn,
        id: &str,
        state: PackState,
        at: DateTime<Utc>,
    ) -> QueryResult<()> {
        store_touched();
        diesel::update(packs::table.find(id))
            .set((packs::state.eq(state), packs::updated_at.eq(to_db(at))))
            .execute(conn)?;
        Ok(())
    }

    pub fn submitted(conn: &mut DbConn, id: &str, at: DateTime<Utc>) -> QueryResult<()> {
        // A new review starts clean: the last one's reasons per sticker are in the history.
        diesel::update(pack_stickers::table.filter(pack_stickers::pack_id.eq(id)))
            .set(pack_stickers::review_reason.eq(None::<String>))
            .execute(conn)?;
        store_touched();
        diesel::update(packs::table.find(id))
            .set((
                packs::state.eq(PackState::InReview),
                packs::submitted_at.eq(to_db(at)),
                packs::review_note.eq(None::<String>),
                packs::reviewer_id.eq(None::<String>),
                packs::claimed_by.eq(None::<String>),
                packs::claimed_until.eq(None::<NaiveDateTime>),
                packs::updated_at.eq(to_db(at)),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn reviewed(
        conn: &mut DbConn,
        id: &str,
        state: PackState,
        reviewer: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> QueryResult<()> {
        store_touched();
        diesel::update(packs::table.find(id))
            .set((
                packs::state.eq(state),
                packs::reviewer_id.eq(reviewer),
                packs::review_note.eq(note),
                packs::claimed_by.eq(None::<String>),
                packs::claimed_until.eq(None::<NaiveDateTime>),
                packs::updated_at.eq(to_db(at)),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn claim(
        conn: &mut DbConn,
        id: &str,
        moderator: &str,
        until: DateTime<Utc>,
    ) -> QueryResult<()> {
        store_touched();
        diesel::update(packs::table.find(id))
            .set((
                packs::claimed_by.eq(moderator),
                packs::claimed_until.eq(to_db(until)),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn set_texts(conn: &mut DbConn, id: &str, texts: &PackTexts) -> QueryResult<()> {
        store_touched();
        diesel::update(packs::table.find(id))
            .set((
                packs::title.eq(&texts.title),
                packs::description.eq(&texts.description),
                packs::tags.eq(serde_json::to_string(&texts.tags).unwrap_or_else(|_| "[]".into())),
                packs::locales
                    .eq(serde_json::to_string(&texts.locales).unwrap_or_else(|_| "{}".into())),
                packs::search_text.eq(search_text(&texts.title, &texts.tags, &texts.locales)),
                packs::locale_tags.eq(locale_tags(&texts.locales)),
                packs::updated_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn set_sale_regions(
        conn: &mut DbConn,
        id: &str,
        regions: &Option<Vec<Region>>,
    ) -> QueryResult<()> {
        store_touched();
        diesel::update(packs::table.find(id))
            .set((
                packs::sale_regions.eq(regions_json(regions)),
                packs::updated_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn set_cover(conn: &mut DbConn, id: &str, cover: &str, tray: &str) -> QueryResult<()> {
        store_touched();
        diesel::update(packs::table.find(id))
            .set((
                packs::cover_sha256.eq(cover),
                packs::tray_sha256.eq(tray),
                packs::updated_at.eq(to_db(Utc::now())),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// Packs older than `search_text` get theirs (by Rust's Unicode case rules, which SQL's
    /// `lower` lacks), in one pass (a text that folds to nothing stays empty; it is not
    /// visited again until the next start); returns how many.
    pub fn backfill_search_text(conn: &mut DbConn) -> QueryResult<usize> {
        let stale: Vec<Pack> = packs::table
            .filter(packs::search_text.eq(""))
            .select(Pack::as_select())
            .load(conn)?;
        for p in &stale {
            let texts = p.texts();
            diesel::update(packs::table.find(&p.id))
                .set((
                    packs::search_text.eq(search_text(&texts.title, &texts.tags, &texts.locales)),
                    packs::locale_tags.eq(locale_tags(&texts.locales)),
                ))
                .execute(conn)?;
        }
        Ok(stale.len())
    }

    /// The texts it shows now.
    pub fn texts(&self) -> PackTexts {
        PackTexts {
            title: self.title.clone(),
            description: self.description.clone(),
            tags: self.tags(),
            locales: self.locales(),
        }
    }

    pub fn published(conn: &mut DbConn, id: &str, at: DateTime<Utc>) -> QueryResult<()> {
        store_touched();
        diesel::update(packs::table.find(id))
            .set((
                packs::state.eq(PackState::OnSale),
                packs::published_at.eq(to_db(at)),
                packs::updated_at.eq(to_db(at)),
            ))
            .execute(conn)?;
        Ok(())
    }
}

impl Sticker {
    pub fn of_pack(conn: &mut DbConn, pack: &str) -> QueryResult<Vec<Sticker>> {
        pack_stickers::table
            .filter(pack_stickers::pack_id.eq(pack))
            .select(Sticker::as_select())
            .order(pack_stickers::position.asc())
            .load(conn)
    }

    pub fn of_packs(conn: &mut DbConn, packs: &[String]) -> QueryResult<Vec<Sticker>> {
        pack_stickers::table
            .filter(pack_stickers::pack_id.eq_any(packs))
            .select(Sticker::as_select())
            .order((pack_stickers::pack_id.asc(), pack_stickers::position.asc()))
            .load(conn)
    }

    /// Puts the sticker at its position, replacing what was there.
    pub fn put(conn: &mut DbConn, sticker: &Sticker) -> QueryResult<()> {
        diesel::delete(
            pack_stickers::table
                .filter(pack_stickers::pack_id.eq(&sticker.pack_id))
                .filter(pack_stickers::position.eq(sticker.position)),
        )
        .execute(conn)?;
        diesel::insert_into(pack_stickers::table)
            .values(sticker)
            .execute(conn)?;
        Ok(())
    }

    pub fn delete_all(conn: &mut DbConn, pack: &str) -> QueryResult<usize> {
        diesel::delete(pack_stickers::table.filter(pack_stickers::pack_id.eq(pack))).execute(conn)
    }

    pub fn delete(conn: &mut DbConn, pack: &str, position: i32) -> QueryResult<usize> {
        diesel::delete(
            pack_stickers::table
                .filter(pack_stickers::pack_id.eq(pack))
                .filter(pack_stickers::position.eq(position)),
        )
        .execute(conn)
    }

    /// Changes a sticker's emoji (its image never changes).
    pub fn set_emoji(
        conn: &mut DbConn,
        pack: &str,
        position: i32,
        emoji: &str,
    ) -> QueryResult<usize> {
        store_touched();
        diesel::update(
            pack_stickers::table
                .filter(pack_stickers::pack_id.eq(pack))
                .filter(pack_stickers::position.eq(position)),
        )
        .set(pack_stickers::emoji.eq(emoji))
        .execute(conn)
    }

    /// Gives every sticker of the pack its permanent id, once.
    pub fn assign_ids(conn: &mut DbConn, pack: &str) -> QueryResult<()> {
        for s in Self::of_pack(conn, pack)? {
            if s.sticker_id.is_none() {
                diesel::update(
                    pack_stickers::table
                        .filter(pack_stickers::pack_id.eq(pack))
                        .filter(pack_stickers::position.eq(s.position)),
                )
                .set(pack_stickers::sticker_id.eq(new_id("stk")))
                .execute(conn)?;
            }
        }
        Ok(())
    }

    pub fn find(conn: &mut DbConn, sticker_id: &str) -> QueryResult<Option<Sticker>> {
        pack_stickers::table
            .filter(pack_stickers::sticker_id.eq(sticker_id))
            .select(Sticker::as_select())
            .first(conn)
            .optional()
    }

    /// The packs a blob belongs to: (state, creator, ever published), at most 1,000 (empty
    /// when no sticker uses it).
    pub fn packs_of_blob(
        conn: &mut DbConn,
        sha: &str,
    ) -> QueryResult<Vec<(PackState, String, bool)>> {
        let rows: Vec<(PackState, String, Option<NaiveDateTime>)> = pack_stickers::table
            .inner_join(packs::table)
            .filter(
                pack_stickers::image_sha256
                    .eq(sha)
                    .or(pack_stickers::thumbnail_sha256.eq(sha)),
            )
            .select((packs::state, packs::creator_id, packs::published_at))
            .limit(1000)
            .load(conn)?;
        // A pack's cover and tray icon are served the same way.
        let covers: Vec<(PackState, String, Option<NaiveDateTime>)> = packs::table
            .filter(packs::cover_sha256.eq(sha).or(packs::tray_sha256.eq(sha)))
            .select((packs::state, packs::creator_id, packs::published_at))
            .limit(1000)
            .load(conn)?;
        Ok(rows
            .into_iter()
            .chain(covers)
            .map(|(state, creator, published)| (state, creator, published.is_some()))
            .collect())
    }

    /// Every blob a sticker refers to (for garbage collection).
    pub fn referenced_blobs(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
        let mut all: Vec<(String, String)> = pack_stickers::table
            .select((pack_stickers::image_sha256, pack_stickers::thumbnail_sha256))
            .load(conn)?;
        // Packs' archives are blobs too.
        let archives: Vec<String> = pack_archives::table
            .select(pack_archives::sha256)
            .load(conn)?;
        all.extend(archives.into_iter().map(|a| (a.clone(), a)));
        // And their covers.
        let covers: Vec<(Option<String>, Option<String>)> = packs::table
            .filter(packs::cover_sha256.is_not_null())
            .select((packs::cover_sha256, packs::tray_sha256))
            .load(conn)?;
        all.extend(
            covers
                .into_iter()
                .filter_map(|(c, t)| Some((c?, t.unwrap_or_default()))),
        );
        Ok(all)
    }
}

/// The archives of these packs: (pack id, SHA-256).
pub fn archives_of(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    pack_archives::table
        .filter(pack_archives::pack_id.eq_any(&ids[..ids.len().min(500)]))
        .select((pack_archives::pack_id, pack_archives::sha256))
        .load(conn)
}

/// Forgets a pack's archive (its emoji changed): the next build makes a new one, and the old
/// blob goes to garbage collection.
pub fn drop_archive(conn: &mut DbConn, pack: &str) -> QueryResult<usize> {
    store_touched();
    diesel::delete(pack_archives::table.filter(pack_archives::pack_id.eq(pack))).execute(conn)
}

/// Records a pack's archive (built once; a second build of the same pack is ignored).
pub fn set_archive(conn: &mut DbConn, pack: &str, sha: &str, bytes: i64) -> QueryResult<()> {
    store_touched();
    crate::db::insert_or_ignore!(
        conn,
        pack_archives::table,
        (
            pack_archives::pack_id.eq(pack),
            pack_archives::sha256.eq(sha),
            pack_archives::bytes.eq(bytes),
            pack_archives::built_at.eq(to_db(Utc::now())),
        )
    )?;
    Ok(())
}

/// The packs whose archive is this blob: (state, creator, published), as `packs_of_blob`.
pub fn packs_of_archive(
    conn: &mut DbConn,
    sha: &str,
) -> QueryResult<Vec<(PackState, String, bool)>> {
    let rows: Vec<(PackState, String, Option<NaiveDateTime>)> = pack_archives::table
        .inner_join(packs::table)
        .filter(pack_archives::sha256.eq(sha))
        .select((packs::state, packs::creator_id, packs::published_at))
        .limit(1000)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(state, creator, published)| (state, creator, published.is_some()))
        .collect())
}

/// Packs published before `before` (not removed) that have no archive yet, at most `limit`.
pub fn without_archive(
    conn: &mut DbConn,
    before: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<String>> {
    packs::table
        .left_join(pack_archives::table)
        .filter(pack_archives::pack_id.is_null())
        .filter(packs::published_at.lt(to_db(before)))
        .filter(packs::state.ne(PackState::Removed))
        .select(packs::id)
        .order(packs::published_at.asc())
        .limit(limit)
        .load(conn)
}

/// Free packs a user claimed.
pub fn claim_free(conn: &mut DbConn, pack: &str, user: &str) -> QueryResult<bool> {
    let inserted = crate::db::insert_or_ignore!(
        conn,
        pack_claims::table,
        (
            pack_claims::pack_id.eq(pack),
            pack_claims::user_id.eq(user),
            pack_claims::claimed_at.eq(to_db(Utc::now())),
        )
    )?;
    Ok(inserted == 1)
}

pub fn claimed_by(conn: &mut DbConn, user: &str) -> QueryResult<Vec<String>> {
    pack_claims::table
        .filter(pack_claims::user_id.eq(user))
        .select(pack_claims::pack_id)
        .load(conn)
}

/// One change of a pack's state, for the audit trail.
pub fn record_event(
    conn: &mut DbConn,
    pack: &str,
    actor: &str,
    from: PackState,
    to: PackState,
    reasons: &[String],
    note: Option<&str>,
) -> QueryResult<String> {
    let id = new_id("pev");
    diesel::insert_into(pack_events::table)
        .values((
            pack_events::id.eq(&id),
            pack_events::pack_id.eq(pack),
            pack_events::actor_id.eq(actor),
            pack_events::from_state.eq(from.as_str()),
            pack_events::to_state.eq(to.as_str()),
            pack_events::reasons.eq(serde_json::to_string(reasons).unwrap_or_default()),
            pack_events::note.eq(note),
            pack_events::created_at.eq(to_db(Utc::now())),
        ))
        .execute(conn)?;
    Ok(id)
}

#[derive(Clone, Debug, Queryable)]
pub struct PackEvent {
    pub id: String,
    pub actor_id: String,
    pub from_state: String,
    pub to_state: String,
    pub reasons: String,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn events_of(conn: &mut DbConn, pack: &str) -> QueryResult<Vec<PackEvent>> {
    pack_events::table
        .filter(pack_events::pack_id.eq(pack))
        .order((pack_events::created_at.asc(), pack_events::id.asc()))
        .select((
            pack_events::id,
            pack_events::actor_id,
            pack_events::from_state,
            pack_events::to_state,
            pack_events::reasons,
            pack_events::note,
            pack_events::created_at,
        ))
        .limit(500)
        .load(conn)
}
