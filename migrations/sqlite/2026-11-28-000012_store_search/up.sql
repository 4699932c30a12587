-- "Popular" counts a pack's distinct paying buyers from its orders. Store search is a
-- substring match on titles and tags (no word breaks needed: Japanese, Thai and Chinese
-- work); on SQLite, the development store, it scans the packs on sale.
CREATE INDEX orders_product ON orders(product_id, status);
