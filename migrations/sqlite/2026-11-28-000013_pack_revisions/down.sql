DROP TABLE pack_revisions;
