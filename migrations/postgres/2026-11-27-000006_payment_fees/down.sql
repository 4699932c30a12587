DROP INDEX payments_fee_unsettled;
ALTER TABLE payments DROP COLUMN fee_settled_at;
