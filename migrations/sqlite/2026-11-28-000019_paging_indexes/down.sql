DROP INDEX payout_lines_creator;
DROP INDEX ledger_entries_time;
