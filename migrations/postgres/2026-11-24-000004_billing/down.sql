ALTER TABLE subscriptions DROP COLUMN scheduled_price_id;
DROP TABLE outbox_emails;
DROP TABLE payments;
DROP TABLE donations;
ALTER TABLE orders DROP COLUMN message;
ALTER TABLE orders DROP COLUMN gift_days;
ALTER TABLE orders DROP COLUMN kind;
ALTER TABLE users DROP COLUMN email;
