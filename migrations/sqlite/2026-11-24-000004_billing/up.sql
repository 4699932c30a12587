-- Billing through Stripe: where receipts go, what a one-off order bought, donations, the
-- payments Stripe reported (linking a charge to its ledger posting), and the email outbox.

-- Where receipts go; set by the user's purchases (optional: messenger accounts may have none).
ALTER TABLE users ADD COLUMN email TEXT;

-- 'pack' grants a sticker pack; 'gift_subscription' grants a plan's entitlements for
-- gift_days to the recipient when paid.
ALTER TABLE orders ADD COLUMN kind TEXT NOT NULL DEFAULT 'pack'
    CHECK (kind IN ('pack', 'gift_subscription'));
ALTER TABLE orders ADD COLUMN gift_days INTEGER;
ALTER TABLE orders ADD COLUMN message TEXT;

-- Donations: one-off (a PaymentIntent) or monthly (a Stripe subscription), to the platform
-- (creator_id NULL) or to a creator.
CREATE TABLE donations (
    id TEXT PRIMARY KEY,
    donor_id TEXT NOT NULL REFERENCES users(id),
    creator_id TEXT REFERENCES creators(user_id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    recurring BOOLEAN NOT NULL DEFAULT 0,
    message TEXT,
    anonymous BOOLEAN NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'paid', 'canceled', 'refunded', 'disputed')),
    stripe_payment_intent_id TEXT UNIQUE,
    stripe_subscription_id TEXT UNIQUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX donations_donor ON donations(donor_id);
CREATE INDEX donations_creator ON donations(creator_id);

-- Every successful Stripe charge we posted: what it paid for and its ledger posting, so a
-- refund or dispute of the charge reverses the right lines in proportion.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    stripe_charge_id TEXT NOT NULL UNIQUE,
    stripe_payment_intent_id TEXT,
    stripe_invoice_id TEXT,
    user_id TEXT NOT NULL REFERENCES users(id),
    order_id TEXT REFERENCES orders(id),
    donation_id TEXT REFERENCES donations(id),
    subscription_id TEXT REFERENCES subscriptions(id),
    creator_id TEXT,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    fee_minor BIGINT NOT NULL CHECK (fee_minor >= 0),
    creator_share_minor BIGINT NOT NULL CHECK (creator_share_minor >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    refunded_minor BIGINT NOT NULL DEFAULT 0,
    ledger_transaction_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX payments_user ON payments(user_id);
CREATE INDEX payments_creator ON payments(creator_id);

-- Emails to send, written in the transaction of what caused them; sent after commit by a
-- worker, with retries. The dedupe key makes a replayed event enqueue nothing new.
CREATE TABLE outbox_emails (
    id TEXT PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    to_address TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_emails_due ON outbox_emails(status, next_attempt_at);

-- A downgrade waits for the end of the paid period: the price to switch to then.
ALTER TABLE subscriptions ADD COLUMN scheduled_price_id TEXT REFERENCES prices(id);
