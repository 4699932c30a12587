//! Revisions of a published pack's texts and emoji, reviewed before they show.

use super::packs::PackTexts;
use super::{new_id, to_db};
use crate::db::schema::pack_revisions;
use crate::db::DbConn;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = pack_revisions)]
pub struct Revision {
    pub id: String,
    pub pack_id: String,
    /// 2 for the first edit after publication (the published texts are version 1).
    pub version: i32,
    pub title: String,
    pub description: String,
    /// A JSON array, as on the pack.
    pub tags: String,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    pub reviewer_id: Option<String>,
    /// A JSON array of reason codes.
    pub reasons: String,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
    /// A JSON object, as on the pack.
    pub locales: String,
    /// A JSON object: sticker position → its new emoji (space-separated); only those changed.
    pub emoji: String,
}

impl Revision {
    /// A new pending revision; `None` when one is pending already.
    pub fn propose(
        conn: &mut DbConn,
        pack: &str,
        texts: &PackTexts,
        emoji: &BTreeMap<i32, String>,
    ) -> QueryResult<Option<Revision>> {
        if Revision::pending_of(conn, pack)?.is_some() {
            return Ok(None);
        }
        let last: Option<i32> = pack_revisions::table
            .filter(pack_revisions::pack_id.eq(pack))
            .select(diesel::dsl::max(pack_revisions::version))
            .first(conn)?;
        let revision = Revision {
            id: new_id("rev"),
            pack_id: pack.to_owned(),
            version: last.unwrap_or(1) + 1,
            title: texts.title.clone(),
            description: texts.description.clone(),
            tags: serde_json::to_string(&texts.tags).unwrap_or_else(|_| "[]".into()),
            locales: serde_json::to_string(&texts.locales).unwrap_or_else(|_| "{}".into()),
            emoji: serde_json::to_string(emoji).unwrap_or_else(|_| "{}".into()),
            state: "pending".into(),
            reviewer_id: None,
            reasons: "[]".into(),
            note: None,
            created_at: to_db(Utc::now()),
            decided_at: None,
        };
        diesel::insert_into(pack_revisions::table)
            .values(&revision)
            .execute(conn)?;
        Ok(Some(revision))
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Revision>> {
        pack_revisions::table
            .find(id)
            .select(Revision::as_select())
            .first(conn)
            .optional()
    }

    pub fn pending_of(conn: &mut DbConn, pack: &str) -> QueryResult<Option<Revision>> {
        pack_revisions::table
            .filter(pack_revisions::pack_id.eq(pack))
            .filter(pack_revisions::state.eq("pending"))
            .select(Revision::as_select())
            .first(conn)
            .optional()
    }

    /// Pending revisions, oldest first, after the cursor `(created_at, id)`.
    pub fn pending(
        conn: &mut DbConn,
        after: Option<(NaiveDateTime, String)>,
        limit: i64,
    ) -> QueryResult<Vec<Revision>> {
        let mut q = pack_revisions::table
            .filter(pack_revisions::state.eq("pending"))
            .into_boxed();
        if let Some((at, id)) = after {
            q = q.filter(
                pack_revisions::created_at
                    .gt(at)
                    .or(pack_revisions::created_at
                        .eq(at)
                        .and(pack_revisions::id.gt(id))),
            );
        }
        q.order((pack_revisions::created_at.asc(), pack_revisions::id.asc()))
            .limit(limit)
            .select(Revision::as_select())
            .load(conn)
    }

    /// Decides a pending revision; `false` when it was not pending.
    pub fn decide(
        conn: &mut DbConn,
        id: &str,
        approved: bool,
        moderator: &str,
        reasons: &[String],
        note: Option<&str>,
    ) -> QueryResult<bool> {
        let n = diesel::update(
            pack_revisions::table
                .filter(pack_revisions::id.eq(id))
                .filter(pack_revisions::state.eq("pending")),
        )
        .set((
            pack_revisions::state.eq(if approved { "approved" } else { "rejected" }),
            pack_revisions::reviewer_id.eq(moderator),
            pack_revisions::reasons.eq(serde_json::to_string(reasons).unwrap_or_default()),
            pack_revisions::note.eq(note),
            pack_revisions::decided_at.eq(to_db(Utc::now())),
        ))
        .execute(conn)?;
        Ok(n == 1)
    }

    pub fn tags(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }

    pub fn texts(&self) -> PackTexts {
        PackTexts {
            title: self.title.clone(),
            description: self.description.clone(),
            tags: self.tags(),
            locales: serde_json::from_str(&self.locales).unwrap_or_default(),
        }
    }

    /// Sticker position → new emoji.
    pub fn emoji(&self) -> BTreeMap<i32, String> {
        serde_json::from_str(&self.emoji).unwrap_or_default()
    }
}
