-- A notice against a pack (a rights holder's claim, say): a case a moderator decides.
CREATE TABLE pack_notices (
    id TEXT PRIMARY KEY,
    pack_id TEXT NOT NULL REFERENCES packs(id),
    reporter_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    claim TEXT NOT NULL,
    contact TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'actioned', 'dismissed')),
    decided_by TEXT,
    decision_note TEXT,
    created_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP
);
CREATE INDEX pack_notices_state ON pack_notices(state, created_at, id);
CREATE INDEX pack_notices_pack ON pack_notices(pack_id);

-- A creator's appeal (or counter-notice) of a decision on their pack: one per decision, the
-- decision being the pack event it answers.
CREATE TABLE pack_appeals (
    id TEXT PRIMARY KEY,
    pack_id TEXT NOT NULL REFERENCES packs(id),
    event_id TEXT NOT NULL UNIQUE REFERENCES pack_events(id),
    creator_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('appeal', 'counter_notice')),
    against TEXT NOT NULL,
    statement TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'upheld', 'reversed')),
    decided_by TEXT,
    decision_note TEXT,
    created_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP
);
CREATE INDEX pack_appeals_state ON pack_appeals(state, created_at, id);

-- A removed pack's buyers are refunded through Stripe, one order at a time, by the jobs
-- worker: each refund is asked for once (Stripe's idempotency key) and retried with backoff
-- while Stripe cannot be reached.
CREATE TABLE removal_refunds (
    order_id TEXT PRIMARY KEY REFERENCES orders(id),
    pack_id TEXT NOT NULL REFERENCES packs(id),
    state TEXT NOT NULL CHECK (state IN ('pending', 'requested', 'nothing_to_refund', 'failed',
                                         'canceled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TIMESTAMP NOT NULL,
    stripe_refund_id TEXT,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX removal_refunds_due ON removal_refunds(state, next_at);

-- A removed pack's images are purged from the blob store once its appeal window has passed
-- (until then they answer 451 to everyone).
CREATE TABLE pack_purges (
    pack_id TEXT PRIMARY KEY REFERENCES packs(id),
    purge_after TIMESTAMP NOT NULL,
    purged_at TIMESTAMP
);
