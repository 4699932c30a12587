-- The API version Stripe rendered each event in, and whether it concerned anything of ours
-- (`ignored`: a refund or dispute of a charge that is not ours, acknowledged and kept).
ALTER TABLE stripe_events ADD COLUMN api_version TEXT;
ALTER TABLE stripe_events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'applied'
    CHECK (outcome IN ('applied', 'ignored'));

-- Money a dispute has taken from a payment (less what a won dispute gave back): with
-- `refunded_minor`, what has been reversed so far, from which the creator's take-back is
-- computed cumulatively.
ALTER TABLE payments ADD COLUMN disputed_minor BIGINT NOT NULL DEFAULT 0;
-- When the creator's share left the hold; until then reversals come out of pending, after it
-- out of available. Each payment is released once, by its own posting.
ALTER TABLE payments ADD COLUMN released_at TIMESTAMP;
-- Payments the old account-wide release job already released (it released everything older
-- than the hold whenever it ran) are marked released, so they are not released twice. This
-- assumes the default hold of 14 days; databases that ran with another `billing.hold_days`
-- before this migration need the same statement with their hold.
UPDATE payments SET released_at = created_at
WHERE creator_id IS NOT NULL
  AND EXISTS (
    SELECT 1 FROM ledger_transactions t
    WHERE t.source_key LIKE 'release:creator_pending:' || payments.creator_id || ':%'
      AND t.created_at >= datetime(payments.created_at, '+14 days'));
CREATE INDEX payments_unreleased ON payments(created_at)
    WHERE creator_id IS NOT NULL AND released_at IS NULL;
-- An invoice is paid once: whichever of its events names the charge (`invoice.paid` or
-- `invoice.payment_succeeded`, one completed from Stripe), the payment is recorded once.
CREATE UNIQUE INDEX payments_invoice ON payments(stripe_invoice_id)
    WHERE stripe_invoice_id IS NOT NULL;

-- A scheduled downgrade Stripe refused or could not take: tried again later with backoff,
-- without holding up the others.
CREATE TABLE downgrade_retries (
    subscription_id TEXT PRIMARY KEY REFERENCES subscriptions(id),
    attempts INTEGER NOT NULL CHECK (attempts > 0),
    retry_at TIMESTAMP NOT NULL,
    last_error TEXT NOT NULL
);
