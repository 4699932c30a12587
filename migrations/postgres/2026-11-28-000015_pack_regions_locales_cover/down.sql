DROP INDEX IF EXISTS packs_search_trgm;
ALTER TABLE pack_revisions DROP COLUMN emoji;
ALTER TABLE pack_revisions DROP COLUMN locales;
ALTER TABLE packs DROP COLUMN tray_sha256;
ALTER TABLE packs DROP COLUMN cover_sha256;
ALTER TABLE packs DROP COLUMN locale_tags;
ALTER TABLE packs DROP COLUMN search_text;
ALTER TABLE packs DROP COLUMN locales;
ALTER TABLE packs DROP COLUMN sale_regions;
ALTER TABLE users DROP COLUMN country;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX packs_title_trgm ON packs USING gin (lower(title) gin_trgm_ops);
        CREATE INDEX packs_tags_trgm ON packs USING gin (lower(tags) gin_trgm_ops);
    END IF;
END
$$;
