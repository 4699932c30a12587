-- "Popular" counts a pack's distinct paying buyers from its orders.
CREATE INDEX orders_product ON orders(product_id, status);

-- Store search is a substring match on titles and tags (it needs no word breaks, so it works
-- for Japanese, Thai and Chinese). pg_trgm's GIN indexes serve it; without the extension
-- (a database user who may not create one) the search still works, by scanning packs on sale.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm not available: store search scans packs on sale';
END
$$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX packs_title_trgm ON packs USING gin (lower(title) gin_trgm_ops);
        CREATE INDEX packs_tags_trgm ON packs USING gin (lower(tags) gin_trgm_ops);
    END IF;
END
$$;
