DROP INDEX IF EXISTS packs_tags_trgm;
DROP INDEX IF EXISTS packs_title_trgm;
DROP INDEX orders_product;
