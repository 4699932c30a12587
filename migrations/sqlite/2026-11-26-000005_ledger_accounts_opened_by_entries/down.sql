DROP TRIGGER ledger_entries_open_account_and_match_currency;
CREATE TRIGGER ledger_entries_match_account_currency
BEFORE INSERT ON ledger_entries
WHEN (SELECT currency FROM ledger_accounts a WHERE a.id = NEW.account_id) IS NOT NEW.currency
BEGIN
    SELECT RAISE(ABORT, 'ledger: entry currency differs from its account');
END;
