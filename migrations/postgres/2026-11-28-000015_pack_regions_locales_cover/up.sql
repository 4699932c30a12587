-- Where a user is, from their identity token's `country` claim (ISO 3166-1 alpha-2), kept
-- so a gift to them can be checked against a pack's sale regions.
ALTER TABLE users ADD COLUMN country TEXT;

-- A pack may be sold only in some regions: a JSON array of ISO 3166-1 alpha-2 codes, NULL for
-- everywhere.
ALTER TABLE packs ADD COLUMN sale_regions TEXT;
-- Per-locale texts: a JSON object of BCP-47 tag -> {title, description, keywords}.
ALTER TABLE packs ADD COLUMN locales TEXT NOT NULL DEFAULT '{}';
-- What store search matches: every title, tag and keyword, folded to lower case, one per line.
-- Filled by the service (Rust's Unicode case rules) for packs older than this column.
ALTER TABLE packs ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
-- The locales the pack has texts in and their languages, space-separated with spaces at both
-- ends (" pt-BR pt "), for the store's locale filter.
ALTER TABLE packs ADD COLUMN locale_tags TEXT NOT NULL DEFAULT '';
-- The pack's cover (its main image) and tray icon, re-encoded like stickers.
ALTER TABLE packs ADD COLUMN cover_sha256 TEXT;
ALTER TABLE packs ADD COLUMN tray_sha256 TEXT;

-- An edit after publication carries per-locale texts and emoji (by permanent sticker id) too.
ALTER TABLE pack_revisions ADD COLUMN locales TEXT NOT NULL DEFAULT '{}';
ALTER TABLE pack_revisions ADD COLUMN emoji TEXT NOT NULL DEFAULT '{}';


-- Store search is a substring match on search_text (trigram GIN, when pg_trgm is there).
DROP INDEX IF EXISTS packs_title_trgm;
DROP INDEX IF EXISTS packs_tags_trgm;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX packs_search_trgm ON packs USING gin (search_text gin_trgm_ops);
    END IF;
END
$$;
