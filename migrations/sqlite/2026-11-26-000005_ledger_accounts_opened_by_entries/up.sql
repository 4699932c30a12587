-- An account is opened by its first entry: the entry's check creates it from the account id,
-- `<kind>:<owner>:<currency>` (owner `platform` for the platform's own accounts), so a posting
-- needs no statement of its own to make sure its accounts exist. The checks are unchanged:
-- no entry into a sealed transaction, and an entry's currency is its account's.
DROP TRIGGER ledger_entries_match_account_currency;
CREATE TRIGGER ledger_entries_open_account_and_match_currency
BEFORE INSERT ON ledger_entries
BEGIN
    INSERT OR IGNORE INTO ledger_accounts (id, kind, owner_id, currency, created_at)
    SELECT NEW.account_id,
           substr(NEW.account_id, 1, instr(NEW.account_id, ':') - 1),
           NULLIF(substr(NEW.account_id, instr(NEW.account_id, ':') + 1,
                         length(NEW.account_id) - instr(NEW.account_id, ':') - 4), 'platform'),
           NEW.currency, NEW.created_at
    WHERE substr(NEW.account_id, -4) = ':' || NEW.currency
      AND NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = NEW.account_id);
    SELECT RAISE(ABORT, 'ledger: entry currency differs from its account')
    WHERE (SELECT currency FROM ledger_accounts a WHERE a.id = NEW.account_id) IS NOT NEW.currency;
END;
