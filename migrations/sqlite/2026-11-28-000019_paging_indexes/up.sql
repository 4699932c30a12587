-- Exports read the ledger in time order, a page at a time (keyset on time and id).
CREATE INDEX ledger_entries_time ON ledger_entries(created_at, id);
-- A payout run is drawn a page of creators at a time: which of them are in an open line is
-- read by creator (the partial unique index cannot be proved usable for a bound list of states).
CREATE INDEX payout_lines_creator ON payout_lines(creator_id, currency);
