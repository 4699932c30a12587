-- Exactly one signing key is active. Concurrent rotations could leave two (or, on SQLite,
-- none); keys left active beside the newest count as retired when the newest was made.
UPDATE signing_keys
SET retired_at = (SELECT max(created_at) FROM signing_keys WHERE retired_at IS NULL)
WHERE retired_at IS NULL
  AND kid <> (SELECT kid FROM signing_keys WHERE retired_at IS NULL
              ORDER BY created_at DESC, kid DESC LIMIT 1);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;

-- Stored idempotent answers are kept for a day (as Stripe keeps its own); the jobs worker
-- deletes older ones, oldest first.
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);

-- Several instances share one database. An email is sent by the instance that claimed it:
-- the claim pushes `next_attempt_at` past the sending (a lease) and names the claimant.
ALTER TABLE outbox_emails ADD COLUMN claimed_by TEXT;
-- The periodic jobs (releases, reminders, fees, downgrades, Stripe sync, purges) run on one
-- instance at a time: the holder of an unexpired lease.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- Balances without rescans: an account's balance is its checkpoint (the sum of its entries
-- made before `through`) plus its entries made since, read over this index. The jobs worker
-- moves checkpoints forward to ten minutes ago, past any posting still uncommitted.
CREATE TABLE ledger_balances (
    account_id TEXT PRIMARY KEY REFERENCES ledger_accounts(id),
    balance_minor BIGINT NOT NULL,
    through TIMESTAMP NOT NULL
);
CREATE INDEX ledger_entries_account_time ON ledger_entries(account_id, created_at);
