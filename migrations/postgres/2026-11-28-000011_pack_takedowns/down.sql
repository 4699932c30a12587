DROP TABLE pack_purges;
DROP TABLE removal_refunds;
DROP TABLE pack_appeals;
DROP TABLE pack_notices;
