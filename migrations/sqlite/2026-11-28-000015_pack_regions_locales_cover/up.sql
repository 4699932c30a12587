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


-- Store search is a substring match on search_text: an FTS5 trigram index serves terms of 3
-- characters or more (shorter ones scan the packs on sale). Kept by triggers, by pack id (not
-- by rowid, which VACUUM may renumber in a table without an INTEGER PRIMARY KEY).
CREATE VIRTUAL TABLE pack_search USING fts5(pack_id UNINDEXED, search_text, tokenize = 'trigram');
CREATE TRIGGER pack_search_insert AFTER INSERT ON packs BEGIN
    INSERT INTO pack_search (pack_id, search_text) VALUES (new.id, new.search_text);
END;
CREATE TRIGGER pack_search_update AFTER UPDATE OF search_text ON packs BEGIN
    DELETE FROM pack_search WHERE pack_id = old.id;
    INSERT INTO pack_search (pack_id, search_text) VALUES (new.id, new.search_text);
END;
CREATE TRIGGER pack_search_delete AFTER DELETE ON packs BEGIN
    DELETE FROM pack_search WHERE pack_id = old.id;
END;
