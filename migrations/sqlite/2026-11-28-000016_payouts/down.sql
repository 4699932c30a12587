ALTER TABLE outbox_emails DROP COLUMN attachment;
ALTER TABLE outbox_emails DROP COLUMN attachment_name;
DROP TABLE payout_audit;
DROP TABLE payout_carried;
DROP TABLE payout_lines;
DROP TABLE payout_runs;
DROP TABLE payout_holds;
DROP TABLE payout_bank_accounts;
DELETE FROM ledger_account_kinds WHERE kind IN ('payouts_in_transit', 'bank_clearing');
