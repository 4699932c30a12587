DROP INDEX payout_lines_transfer;
ALTER TABLE payout_lines DROP COLUMN reversed_minor;
ALTER TABLE payout_lines DROP COLUMN transfer_attempted_at;
ALTER TABLE payout_lines DROP COLUMN transfer_id;
ALTER TABLE payout_lines DROP COLUMN method;
DROP TABLE payout_connect_accounts;
