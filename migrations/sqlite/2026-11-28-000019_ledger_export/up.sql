-- Exports read the ledger in time order, a page at a time (keyset on time and id).
CREATE INDEX ledger_entries_time ON ledger_entries(created_at, id);
