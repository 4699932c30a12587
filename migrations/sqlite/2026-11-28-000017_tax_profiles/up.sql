-- Tax profiles and withholding at payout. A creator files a profile (a US person with a TIN,
-- the IRS form W-9; or a foreign person with a country and a claimed treaty rate, form
-- W-8BEN, which expires at the end of the third calendar year after signing); finance may
-- reject one (a TIN the IRS does not match). A treaty claim, and any filing after a rejection,
-- waits for finance (`pending`). A payout withholds by the profile, or at the backup rate (or
-- is blocked, by configuration) without a valid one.

INSERT INTO ledger_account_kinds (kind, description) VALUES
    ('tax_withheld', 'Income tax withheld from creator payouts, owed to the tax authority');

CREATE TABLE creator_tax_profiles (
    creator_id TEXT PRIMARY KEY REFERENCES creators(user_id),
    kind TEXT NOT NULL CHECK (kind IN ('us_person', 'foreign')),
    legal_name TEXT NOT NULL,
    -- US persons: 9 digits (an SSN or an EIN, per tin_type); foreign persons may give their
    -- own country's TIN. Kept whole for filing; every answer masks it.
    tin TEXT,
    tin_type TEXT CHECK (tin_type IN ('ssn', 'ein', 'foreign')),
    country TEXT NOT NULL,
    -- The rate a foreign person claims under a treaty (basis points); NULL: the statutory rate.
    treaty_rate_bps INTEGER CHECK (treaty_rate_bps BETWEEN 0 AND 3000),
    signed_at TIMESTAMP NOT NULL,
    -- W-8BEN only.
    expires_at TIMESTAMP,
    status TEXT NOT NULL CHECK (status IN ('valid', 'pending', 'rejected')),
    status_reason TEXT,
    updated_at TIMESTAMP NOT NULL,
    CHECK (kind <> 'us_person' OR (tin IS NOT NULL AND tin_type IN ('ssn', 'ein'))),
    CHECK (kind <> 'foreign' OR tin_type IS NULL OR tin_type = 'foreign')
);

-- What a line withholds (part of amount_minor; the bank pays the rest) at which rate, and
-- when the bank paid it (the tax year it is reported in).
ALTER TABLE payout_lines ADD COLUMN withheld_minor BIGINT NOT NULL DEFAULT 0 CHECK (withheld_minor >= 0 AND withheld_minor < amount_minor);
ALTER TABLE payout_lines ADD COLUMN withholding_rate_bps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payout_lines ADD COLUMN paid_at TIMESTAMP;

-- Lines paid before this migration: paid when their `payout:paid:` posting was made.
UPDATE payout_lines SET paid_at = (
    SELECT t.created_at FROM ledger_transactions t WHERE t.source_key = 'payout:paid:' || payout_lines.id
) WHERE state IN ('paid', 'returned');
CREATE INDEX payout_lines_paid ON payout_lines(paid_at, creator_id, currency) WHERE paid_at IS NOT NULL;
