DROP INDEX ledger_entries_time;
