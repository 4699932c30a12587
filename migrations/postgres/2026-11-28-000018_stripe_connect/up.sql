-- Stripe Connect payouts: a creator's Express account, as its `account.updated` events say
-- it is. `chosen`: the creator is paid through it (the last payout method set up wins; a
-- switch to it cools off like a change of bank details).

CREATE TABLE payout_connect_accounts (
    creator_id TEXT PRIMARY KEY REFERENCES creators(user_id),
    account_id TEXT NOT NULL UNIQUE,
    -- capabilities.transfers: active, inactive or pending (what makes the creator payable).
    transfers TEXT NOT NULL,
    details_submitted BOOLEAN NOT NULL DEFAULT FALSE,
    chosen BOOLEAN NOT NULL DEFAULT FALSE,
    cooling_off_until TIMESTAMP,
    -- `created` of the last account.updated applied: an older one arriving late changes nothing.
    event_created BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMP NOT NULL
);

-- How a line is paid, and the Stripe transfer that paid it (Connect lines).
ALTER TABLE payout_lines ADD COLUMN method TEXT NOT NULL DEFAULT 'bank_transfer' CHECK (method IN ('bank_transfer', 'stripe_connect'));
ALTER TABLE payout_lines ADD COLUMN transfer_id TEXT;
-- When the first transfer attempt was made: a retry more than a day later (when Stripe may have
-- forgotten the idempotency key) first looks for the transfer that attempt may have made.
ALTER TABLE payout_lines ADD COLUMN transfer_attempted_at TIMESTAMP;
-- How much of a Connect line's transfer was reversed so far (and returned to the creator).
ALTER TABLE payout_lines ADD COLUMN reversed_minor BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX payout_lines_transfer ON payout_lines(transfer_id) WHERE transfer_id IS NOT NULL;
