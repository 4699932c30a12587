DROP TABLE ledger_entries;
DROP TABLE ledger_transactions;
DROP TABLE ledger_accounts;
DROP FUNCTION ledger_entry_checks();
DROP FUNCTION ledger_transaction_balanced();
DROP FUNCTION ledger_append_only();
