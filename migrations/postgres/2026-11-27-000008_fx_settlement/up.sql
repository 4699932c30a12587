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
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_fkey
    FOREIGN KEY (kind) REFERENCES ledger_account_kinds(kind);

-- A charge settled in another currency (a EUR sale paid into a USD Stripe balance): the
-- settlement currency and the gross in it, from the charge's balance transaction. `fee_minor`
-- is in the settlement currency then. NULL: settled in the payment's currency, or not known yet.
ALTER TABLE payments ADD COLUMN settlement_currency TEXT CHECK (length(settlement_currency) = 3);
ALTER TABLE payments ADD COLUMN settlement_minor BIGINT;
