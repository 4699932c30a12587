CREATE OR REPLACE FUNCTION ledger_entry_checks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.id = NEW.transaction_id) THEN
        RAISE EXCEPTION 'ledger: transaction already sealed';
    END IF;
    IF (SELECT currency FROM ledger_accounts a WHERE a.id = NEW.account_id) IS DISTINCT FROM NEW.currency THEN
        RAISE EXCEPTION 'ledger: entry currency differs from its account';
    END IF;
    RETURN NEW;
END $$;
