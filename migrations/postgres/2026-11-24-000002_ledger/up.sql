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

CREATE FUNCTION ledger_entry_checks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = NEW.transaction_id) THEN
        RAISE EXCEPTION 'ledger: transaction already sealed';
    END IF;
    IF (SELECT currency FROM ledger_accounts a WHERE a.id = NEW.account_id) IS DISTINCT FROM NEW.currency THEN
        RAISE EXCEPTION 'ledger: entry currency differs from its account';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_entries_checks BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_checks();

CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = NEW.id) < 2
       OR EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = NEW.id
                  GROUP BY e.currency HAVING sum(e.amount_minor) <> 0) THEN
        RAISE EXCEPTION 'ledger: transaction does not balance';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_transactions_balanced AFTER INSERT ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
