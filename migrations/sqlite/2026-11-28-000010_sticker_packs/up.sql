-- Creators register themselves: where they are and the currency they are paid in. Their share
-- is a rule per sales channel: `revenue_share_bps` for sales found in our store,
-- `link_share_bps` for sales through the creator's own link (NULL: the store's share).
ALTER TABLE creators ADD COLUMN country TEXT;
ALTER TABLE creators ADD COLUMN payout_currency TEXT;
ALTER TABLE creators ADD COLUMN link_share_bps INTEGER CHECK (link_share_bps BETWEEN 0 AND 10000);
-- Where the sale was made, and so which of the creator's rules split it; the payment records
-- the rule it was split by.
ALTER TABLE orders ADD COLUMN channel TEXT NOT NULL DEFAULT 'store'
    CHECK (channel IN ('store', 'creator_link'));
ALTER TABLE payments ADD COLUMN share_bps INTEGER;
ALTER TABLE payments ADD COLUMN channel TEXT;

-- A sticker pack, from draft to sale. Its id is the id of the product it is sold as, so the
-- entitlement is `sticker_pack:<id>` like every pack's.
CREATE TABLE packs (
    id TEXT PRIMARY KEY,
    creator_id TEXT NOT NULL REFERENCES creators(user_id),
    state TEXT NOT NULL CHECK (state IN ('draft', 'in_review', 'approved', 'rejected',
                                         'on_sale', 'retired', 'suspended', 'removed')),
    kind TEXT NOT NULL CHECK (kind IN ('static', 'animated')),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    tags TEXT NOT NULL,
    price_tier TEXT,
    review_note TEXT,
    reviewer_id TEXT,
    claimed_by TEXT,
    claimed_until TIMESTAMP,
    submitted_at TIMESTAMP,
    published_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX packs_creator ON packs(creator_id, created_at);
CREATE INDEX packs_state ON packs(state, submitted_at, id);

-- A pack's stickers: our own re-encoding of each upload, content-addressed. `sticker_id` is
-- given when the pack is first published and never changes, nor does its image.
CREATE TABLE pack_stickers (
    pack_id TEXT NOT NULL REFERENCES packs(id),
    position INTEGER NOT NULL CHECK (position BETWEEN 1 AND 120),
    sticker_id TEXT UNIQUE,
    image_sha256 TEXT NOT NULL,
    thumbnail_sha256 TEXT NOT NULL,
    image_bytes BIGINT NOT NULL,
    emoji TEXT NOT NULL,
    frames INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    review_reason TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (pack_id, position)
);
CREATE INDEX pack_stickers_image ON pack_stickers(image_sha256);
CREATE INDEX pack_stickers_thumbnail ON pack_stickers(thumbnail_sha256);

-- Free packs are claimed, not bought: a claim is what the user owns.
CREATE TABLE pack_claims (
    pack_id TEXT NOT NULL REFERENCES packs(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    claimed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (pack_id, user_id)
);
CREATE INDEX pack_claims_user ON pack_claims(user_id);

-- Every change of a pack's state: who, when, from, to, why.
CREATE TABLE pack_events (
    id TEXT PRIMARY KEY,
    pack_id TEXT NOT NULL REFERENCES packs(id),
    actor_id TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    reasons TEXT NOT NULL,
    note TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX pack_events_pack ON pack_events(pack_id, created_at);
