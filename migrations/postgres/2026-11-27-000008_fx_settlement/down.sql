ALTER TABLE payments DROP COLUMN settlement_minor;
ALTER TABLE payments DROP COLUMN settlement_currency;
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_fkey;
DELETE FROM ledger_account_kinds WHERE kind = 'fx_conversion';
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check
    CHECK (kind IN ('stripe_clearing', 'stripe_fees', 'platform_revenue',
                    'creator_pending', 'creator_available', 'payouts'));
DROP TABLE ledger_account_kinds;
