-- Paying creators: where their money goes, holds finance puts on them, and payout runs whose
-- lines move through draft -> approved -> sent -> paid (then maybe returned), or failed, or
-- canceled from draft. Money only moves in the ledger; these rows say what was decided.

INSERT INTO ledger_account_kinds (kind, description) VALUES
    ('payouts_in_transit', 'Approved creator payouts the bank (or Stripe) has not settled yet'),
    ('bank_clearing', 'Our bank account''s side of bank-transfer payouts to creators');

-- A creator's bank account (one per creator): the IBAN is kept whole because the bank file
-- needs it, and is masked in every answer. A change starts a cooling-off period.
CREATE TABLE payout_bank_accounts (
    creator_id TEXT PRIMARY KEY REFERENCES creators(user_id),
    holder_name TEXT NOT NULL,
    iban TEXT NOT NULL,
    bic TEXT,
    town TEXT NOT NULL,
    country TEXT NOT NULL,
    currency TEXT NOT NULL,
    cooling_off_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);

-- A hold finance puts on a creator's payouts (a fraud review, a dispute), with its reason.
CREATE TABLE payout_holds (
    creator_id TEXT PRIMARY KEY REFERENCES creators(user_id),
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at TIMESTAMP NOT NULL
);

CREATE TABLE payout_runs (
    id TEXT PRIMARY KEY,
    cutoff TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    approved_by TEXT,
    approved_at TIMESTAMP
);
CREATE INDEX payout_runs_newest ON payout_runs(created_at, id);

-- One line per creator and currency. `destination` is the bank account as it was when the
-- line was drawn (JSON), so a later change of details never redirects money in flight.
CREATE TABLE payout_lines (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES payout_runs(id),
    creator_id TEXT NOT NULL REFERENCES creators(user_id),
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    state TEXT NOT NULL CHECK (state IN ('draft', 'approved', 'sent', 'paid', 'returned', 'failed', 'canceled')),
    destination TEXT NOT NULL,
    reason_code TEXT,
    -- When the line went to the bank in a file (it stays in that run's file from then on).
    sent_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
-- A creator and currency is in at most one open line, whatever the runs.
CREATE UNIQUE INDEX payout_lines_one_open ON payout_lines(creator_id, currency)
    WHERE state IN ('draft', 'approved', 'sent');
CREATE INDEX payout_lines_of_run ON payout_lines(run_id, id);

-- Balances a run did not pay, with the reason, as the run saw them.
CREATE TABLE payout_carried (
    run_id TEXT NOT NULL REFERENCES payout_runs(id),
    creator_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    available_minor BIGINT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (run_id, creator_id, currency)
);

-- Every transition of a run or a line, every bank file handed out (with its SHA-256), and
-- every hold and change of bank details (those name the creator and no run).
CREATE TABLE payout_audit (
    id TEXT PRIMARY KEY,
    run_id TEXT REFERENCES payout_runs(id),
    creator_id TEXT,
    line_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX payout_audit_of_run ON payout_audit(run_id, at, id);
CREATE INDEX payout_audit_of_creator ON payout_audit(creator_id, at, id);

-- An email may carry one text attachment (a creator's statement as CSV).
ALTER TABLE outbox_emails ADD COLUMN attachment_name TEXT;
ALTER TABLE outbox_emails ADD COLUMN attachment TEXT;
