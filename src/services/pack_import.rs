//! A pack from a folder in the upload layout (`pack.toml` and the images it names), through
//! the same validation and review as an upload: `kopilka import-packs sticker-packs/` and the
//! demo catalog of `cargo run` publish the sample packs this way.

use crate::app::AppState;
use crate::db;
use crate::db::models::creators::Creator;
use crate::db::models::packs::Pack;
use crate::db::models::users;
use crate::domain::pack_text::{check_locales, check_tags, check_text, Locales};
use crate::domain::states::{PackKind, PackState};
use crate::error::AppError;
use crate::services::packs::{self, Decision, Draft};
use serde::Deserialize;
use std::path::Path;

/// `pack.toml`: what the pack says about itself and each sticker's file and emoji, in order.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub kind: PackKind,
    #[serde(default)]
    pub tags: Vec<String>,
    pub price_tier: Option<String>,
    /// The cover (main image, and the tray icon made from it): a file of the archive, a
    /// sticker's or its own.
    pub cover: Option<String>,
    /// Texts per BCP-47 locale: `[locales.ja]` title, description, keywords.
    #[serde(default)]
    pub locales: Locales,
    pub stickers: Vec<ManifestSticker>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSticker {
    pub file: String,
    pub emoji: String,
}

/// A file name inside a pack: a plain name, never a path.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && !name.contains(['/', '\\', ':', '\0'])
}

impl Manifest {
    pub fn parse(text: &str, max_stickers: i32) -> Result<Manifest, AppError> {
        let m: Manifest = toml::from_str(text)
            .map_err(|e| AppError::unprocessable("invalid_manifest", format!("pack.toml: {e}")))?;
        m.checked(max_stickers)
    }

    /// `pack.json`: the same fields as `pack.toml`.
    pub fn from_json(text: &str, max_stickers: i32) -> Result<Manifest, AppError> {
        let m: Manifest = serde_json::from_str(text)
            .map_err(|e| AppError::unprocessable("invalid_manifest", format!("pack.json: {e}")))?;
        m.checked(max_stickers)
    }

    fn checked(self, max_stickers: i32) -> Result<Manifest, AppError> {
        let m = self;
        let bad =
            |d: String| AppError::unprocessable("invalid_manifest", format!("pack.toml: {d}"));
        check_text("title", &m.title, 1, 64).map_err(bad)?;
        check_text("description", &m.description, 0, 300).map_err(bad)?;
        check_tags(&m.tags).map_err(bad)?;
        let n = m.stickers.len();
        if n == 0 || n > usize::try_from(max_stickers).unwrap_or(0) {
            return Err(bad(format!(
                "a pack has 1-{max_stickers} stickers, got {n}"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for s in &m.stickers {
            if !plain_name(&s.file) || !seen.insert(s.file.to_lowercase()) {
                return Err(bad(format!(
                    "sticker file {:?}: a plain name, each once",
                    s.file
                )));
            }
        }
        if let Some(c) = &m.cover {
            if !plain_name(c) {
                return Err(bad(format!("cover {c:?}: a plain file name")));
            }
        }
        let locales = check_locales(&m.locales).map_err(bad)?;
        Ok(Manifest { locales, ..m })
    }
}

/// The creator the sample packs are published as.
pub const SAMPLES_CREATOR: &str = "kopilka-samples";
/// The reviewer named in their audit trail.
const SAMPLES_REVIEWER: &str = "kopilka-import";

/// Imports every pack folder under `dir` not imported before (same creator and title), and
/// puts it on sale; returns the titles imported.
pub async fn import_dir(state: &AppState, dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut folders: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("pack.toml").is_file())
        .collect();
    folders.sort();
    db::transaction(&state.pool, |conn| {
        users::ensure(conn, SAMPLES_CREATOR)?;
        if Creator::find(conn, SAMPLES_CREATOR)?.is_none() {
            Creator::upsert(conn, SAMPLES_CREATOR, "Kopilka Samples", 7000)?;
        }
        Ok(())
    })
    .await?;
    let mut imported = Vec::new();
    for folder in folders {
        let text = std::fs::read_to_string(folder.join("pack.toml"))?;
        let manifest = Manifest::parse(&text, state.settings.packs.max_stickers)
            .map_err(|e| anyhow::anyhow!("{}: {e}", folder.display()))?;
        let title = manifest.title.clone();
        let exists = db::run(&state.pool, {
            let title = title.clone();
            move |conn| {
                Ok(Pack::of_creator(conn, SAMPLES_CREATOR, None, 1000)?
                    .into_iter()
                    .any(|p| p.title == title && p.state != PackState::Removed))
            }
        })
        .await?;
        if exists {
            continue;
        }
        import_one(state, &folder, manifest)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", folder.display()))?;
        imported.push(title);
    }
    Ok(imported)
}

async fn import_one(state: &AppState, folder: &Path, m: Manifest) -> Result<(), AppError> {
    let pack = packs::create(
        state,
        SAMPLES_CREATOR,
        Draft {
            kind: m.kind,
            title: m.title,
            description: m.description,
            tags: m.tags,
            price_tier: m.price_tier,
            locales: m.locales,
            sale_regions: None,
        },
    )
    .await?;
    if let Some(c) = &m.cover {
        let bytes = std::fs::read(folder.join(c))
            .map_err(|e| AppError::unprocessable("invalid_manifest", format!("{c}: {e}")))?;
        packs::put_cover(state, SAMPLES_CREATOR, &pack.id, bytes).await?;
    }
    for (i, s) in m.stickers.iter().enumerate() {
        let bytes = std::fs::read(folder.join(&s.file))
            .map_err(|e| AppError::unprocessable("invalid_manifest", format!("{}: {e}", s.file)))?;
        let position = i32::try_from(i + 1).unwrap_or(i32::MAX);
        packs::put_sticker(state, SAMPLES_CREATOR, &pack.id, position, &s.emoji, bytes).await?;
    }
    packs::submit(state, SAMPLES_CREATOR, &pack.id).await?;
    packs::decide(state, SAMPLES_REVIEWER, &pack.id, Decision::Approve, None).await?;
    packs::release(state, SAMPLES_CREATOR, &pack.id).await?;
    Ok(())
}
