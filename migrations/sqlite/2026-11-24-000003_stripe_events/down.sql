ALTER TABLE subscriptions DROP COLUMN stripe_event_created;
DROP TABLE stripe_events;
