-- The double-entry ledger. Entries are written first, then their transaction row "seals" them:
-- the transaction's insert checks that its entries sum to zero per currency, and nothing may be
-- added to a sealed transaction. Entries and transactions are never updated or deleted.

-- Account ids are derived: `<kind>:<owner or platform>:<currency>`, one account each.
CREATE TABLE ledger_accounts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('stripe_clearing', 'stripe_fees', 'platform_revenue',
                                       'creator_pending', 'creator_available', 'payouts')),
    owner_id TEXT,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE ledger_transactions (
    id TEXT PRIMARY KEY,
    -- What the posting comes from (e.g. a Stripe charge and what happened to it): posting the
    -- same source twice is refused by this key, so replays cannot post twice.
    source_key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE ledger_entries (
    id TEXT PRIMARY KEY,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions(id) DEFERRABLE INITIALLY DEFERRED,
    account_id TEXT NOT NULL REFERENCES ledger_accounts(id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor <> 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ledger_entries_transaction ON ledger_entries(transaction_id);
CREATE INDEX ledger_entries_account ON ledger_entries(account_id);

CREATE TRIGGER ledger_entries_only_into_open_transactions
BEFORE INSERT ON ledger_entries
WHEN EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = NEW.transaction_id)
BEGIN
    SELECT RAISE(ABORT, 'ledger: transaction already sealed');
END;

CREATE TRIGGER ledger_entries_match_account_currency
BEFORE INSERT ON ledger_entries
WHEN (SELECT currency FROM ledger_accounts a WHERE a.id = NEW.account_id) IS NOT NEW.currency
BEGIN
    SELECT RAISE(ABORT, 'ledger: entry currency differs from its account');
END;

CREATE TRIGGER ledger_transactions_balanced
AFTER INSERT ON ledger_transactions
WHEN (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = NEW.id) < 2
  OR EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = NEW.id
             GROUP BY e.currency HAVING sum(e.amount_minor) <> 0)
BEGIN
    SELECT RAISE(ABORT, 'ledger: transaction does not balance');
END;

CREATE TRIGGER ledger_entries_append_only_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger: entries are append-only'); END;
CREATE TRIGGER ledger_entries_append_only_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger: entries are append-only'); END;
CREATE TRIGGER ledger_transactions_append_only_update BEFORE UPDATE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'ledger: transactions are append-only'); END;
CREATE TRIGGER ledger_transactions_append_only_delete BEFORE DELETE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'ledger: transactions are append-only'); END;
