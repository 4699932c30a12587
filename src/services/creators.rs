//! Creators and their revenue-share rule (set by admins).

use crate::app::AppState;
use crate::db;
use crate::db::models::creators::Creator;
use crate::db::models::users;
use crate::error::AppError;

/// Makes `id` a creator with this name and share, or changes them.
pub async fn put(
    state: &AppState,
    id: &str,
    display_name: &str,
    revenue_share_bps: i32,
    link_share_bps: Option<i32>,
) -> Result<Creator, AppError> {
    let (id, name) = (id.to_owned(), display_name.to_owned());
    db::transaction(&state.pool, move |conn| {
        users::ensure(conn, &id)?;
        Creator::upsert(conn, &id, &name, revenue_share_bps)?;
        Ok(Creator::set_link_share(conn, &id, link_share_bps)?)
    })
    .await
}
