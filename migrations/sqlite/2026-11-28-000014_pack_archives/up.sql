-- The whole pack as one ZIP (its stickers' images and a manifest of their permanent ids and
-- emoji), built once at publication and stored as a blob like the images.
CREATE TABLE pack_archives (
    pack_id TEXT PRIMARY KEY REFERENCES packs(id),
    sha256 TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    built_at TIMESTAMP NOT NULL
);
CREATE INDEX pack_archives_sha ON pack_archives(sha256);
