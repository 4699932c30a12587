DROP TABLE pack_archives;
