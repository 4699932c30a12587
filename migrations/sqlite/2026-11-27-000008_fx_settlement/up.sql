PRAGMA foreign_keys = OFF;
BEGIN;
-- Account kinds are rows rather than a CHECK, so the kinds later issues add (payouts in
-- transit, tax payable, deferred revenue) are an INSERT, not a table rebuild.
CREATE TABLE ledger_account_kinds (
    kind TEXT PRIMARY KEY,
    description TEXT NOT NULL
);
INSERT INTO ledger_account_kinds (kind, description) VALUES
    ('stripe_clearing', 'Money Stripe holds for us, per settlement currency'),
    ('stripe_fees', 'What Stripe kept as fees'),
    ('platform_revenue', 'The platform''s part of sales'),
    ('creator_pending', 'A creator''s share during the refund window'),
    ('creator_available', 'A creator''s share that may be paid out'),
    ('payouts', 'Money paid out to creators'),
    ('fx_conversion', 'Currency conversion by Stripe: a charge''s currency in, its settlement currency out');

DROP TRIGGER ledger_entries_open_account_and_match_currency;
CREATE TABLE ledger_accounts_rebuilt (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL REFERENCES ledger_account_kinds(kind),
    owner_id TEXT,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    created_at TIMESTAMP NOT NULL
);
INSERT INTO ledger_accounts_rebuilt (id, kind, owner_id, currency, created_at)
    SELECT id, kind, owner_id, currency, created_at FROM ledger_accounts;
DROP TABLE ledger_accounts;
ALTER TABLE ledger_accounts_rebuilt RENAME TO ledger_accounts;
-- As in 2026-11-26-000005: an account is opened by its first entry.
CREATE TRIGGER ledger_entries_open_account_and_match_currency
BEFORE INSERT ON ledger_entries
BEGIN
    INSERT OR IGNORE INTO ledger_accounts (id, kind, owner_id, currency, created_at)
    SELECT NEW.account_id,
           substr(NEW.account_id, 1, instr(NEW.account_id, ':') - 1),
           NULLIF(substr(NEW.account_id, instr(NEW.account_id, ':') + 1,
                         length(NEW.account_id) - instr(NEW.account_id, ':') - 4), 'platform'),
           NEW.currency, NEW.created_at
    WHERE substr(NEW.account_id, -4) = ':' || NEW.currency
      AND NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = NEW.account_id);
    SELECT RAISE(ABORT, 'ledger: entry currency differs from its account')
    WHERE (SELECT currency FROM ledger_accounts a WHERE a.id = NEW.account_id) IS NOT NEW.currency;
END;

-- A charge settled in another currency (a EUR sale paid into a USD Stripe balance): the
-- settlement currency and the gross in it, from the charge's balance transaction. `fee_minor`
-- is in the settlement currency then. NULL: settled in the payment's currency, or not known yet.
ALTER TABLE payments ADD COLUMN settlement_currency TEXT CHECK (length(settlement_currency) = 3);
ALTER TABLE payments ADD COLUMN settlement_minor BIGINT;
COMMIT;
PRAGMA foreign_keys = ON;
