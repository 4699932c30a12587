-- An account is opened by its first entry: the entry's check creates it from the account id,
-- `<kind>:<owner>:<currency>` (owner `platform` for the platform's own accounts), so a posting
-- needs no statement of its own to make sure its accounts exist. The checks are unchanged:
-- no entry into a sealed transaction, and an entry's currency is its account's.
CREATE OR REPLACE FUNCTION ledger_entry_checks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    account_currency TEXT;
    v_kind TEXT := split_part(NEW.account_id, ':', 1);
    v_owner TEXT := substr(NEW.account_id, length(v_kind) + 2,
                           length(NEW.account_id) - length(v_kind) - 5);
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = NEW.transaction_id) THEN
        RAISE EXCEPTION 'ledger: transaction already sealed';
    END IF;
    SELECT a.currency INTO account_currency FROM ledger_accounts a WHERE a.id = NEW.account_id;
    IF NOT FOUND AND right(NEW.account_id, 4) = ':' || NEW.currency THEN
        INSERT INTO ledger_accounts (id, kind, owner_id, currency, created_at)
        VALUES (NEW.account_id, v_kind, NULLIF(v_owner, 'platform'), NEW.currency, NEW.created_at)
        ON CONFLICT (id) DO NOTHING;
        SELECT a.currency INTO account_currency FROM ledger_accounts a WHERE a.id = NEW.account_id;
    END IF;
    IF account_currency IS DISTINCT FROM NEW.currency THEN
        RAISE EXCEPTION 'ledger: entry currency differs from its account';
    END IF;
    RETURN NEW;
END $$;
