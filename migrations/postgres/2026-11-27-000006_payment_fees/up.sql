-- Stripe's fee on a payment. A webhook names the charge's balance transaction without its
-- amounts, so a payment is recorded gross and its fee fetched afterwards (services/fees.rs);
-- until then `fee_settled_at` is NULL. Payments recorded before this column existed never had
-- their fee fetched, so they start unsettled too.
ALTER TABLE payments ADD COLUMN fee_settled_at TIMESTAMP;
CREATE INDEX payments_fee_unsettled ON payments(created_at) WHERE fee_settled_at IS NULL;
