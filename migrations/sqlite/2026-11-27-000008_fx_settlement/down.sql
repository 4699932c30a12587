-- Runs in diesel's transaction: the kinds table stays referenced by name only.
ALTER TABLE payments DROP COLUMN settlement_minor;
ALTER TABLE payments DROP COLUMN settlement_currency;
