DROP INDEX signing_keys_one_active;
DROP INDEX idempotency_keys_created;
DROP TABLE job_leases;
ALTER TABLE outbox_emails DROP COLUMN claimed_by;
DROP INDEX ledger_entries_account_time;
DROP TABLE ledger_balances;
