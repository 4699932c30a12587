-- After publication a pack's images never change; its texts do, through a revision a
-- moderator reviews. The pack shows its current texts until a revision is approved. One
-- revision of a pack is pending at a time.
CREATE TABLE pack_revisions (
    id TEXT PRIMARY KEY,
    pack_id TEXT NOT NULL REFERENCES packs(id),
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    tags TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    reviewer_id TEXT,
    reasons TEXT NOT NULL DEFAULT '[]',
    note TEXT,
    created_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP,
    UNIQUE (pack_id, version)
);
CREATE UNIQUE INDEX pack_revisions_one_pending ON pack_revisions(pack_id) WHERE state = 'pending';
CREATE INDEX pack_revisions_state ON pack_revisions(state, created_at, id);
