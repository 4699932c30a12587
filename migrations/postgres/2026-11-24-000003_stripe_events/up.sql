-- Every Stripe event we accepted, by Stripe's id: a redelivered event finds its row and
-- changes nothing. Events of types we do not act on are stored and acknowledged too.
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    -- Stripe's `created` (seconds since the epoch): orders events of one object.
    created BIGINT NOT NULL,
    payload TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX stripe_events_created ON stripe_events(created);

-- The `created` of the Stripe event whose state a subscription last took: an older event
-- arriving late is not applied over a newer one.
ALTER TABLE subscriptions ADD COLUMN stripe_event_created BIGINT;
