DROP INDEX payout_lines_paid;
ALTER TABLE payout_lines DROP CONSTRAINT payout_lines_withheld_within;
ALTER TABLE payout_lines DROP COLUMN paid_at;
ALTER TABLE payout_lines DROP COLUMN withholding_rate_bps;
ALTER TABLE payout_lines DROP COLUMN withheld_minor;
DROP TABLE creator_tax_profiles;
DELETE FROM ledger_account_kinds WHERE kind = 'tax_withheld';
