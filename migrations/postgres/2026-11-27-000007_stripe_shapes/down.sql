DROP TABLE downgrade_retries;
DROP INDEX payments_invoice;
DROP INDEX payments_unreleased;
ALTER TABLE payments DROP COLUMN released_at;
ALTER TABLE payments DROP COLUMN disputed_minor;
ALTER TABLE stripe_events DROP COLUMN outcome;
ALTER TABLE stripe_events DROP COLUMN api_version;
