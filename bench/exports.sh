#!/usr/bin/env bash
# The export benchmark: ledger.csv over HTTP for ENTRIES ledger entries on PostgreSQL against
# psql's \copy of the same columns, formatting and order in the same run, and the service's
# peak RSS while exporting a tenth of them, then all of them.
# Usage: bash bench/exports.sh  (ENTRIES=1000000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-1000000}
PG=postgres://postgres@127.0.0.1:5432
PORT=18185
DB=kopilka_exports
DAYS=100
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

cargo build --release --bin kopilka
bin=${CARGO_TARGET_DIR:-target}/release
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
DATABASE_URL="$PG/$DB" $bin/kopilka migrate >/dev/null
# ENTRIES/2 balanced sales over DAYS days from 2026-01-01 (an even spread), each a debit of
# Stripe clearing and a credit of one of 1,000 creators' pending accounts. Seeded in SQL with
# the ledger's row triggers off (the rows balance by construction).
psql -q -v ON_ERROR_STOP=1 "$PG/$DB" <<SQL
SET session_replication_role = replica;
INSERT INTO ledger_accounts (id, kind, owner_id, currency, created_at)
  SELECT 'creator_pending:cr-' || i || ':EUR', 'creator_pending', 'cr-' || i, 'EUR', timestamp '2026-01-01'
  FROM generate_series(1, 1000) i
  UNION ALL SELECT 'stripe_clearing:platform:EUR', 'stripe_clearing', NULL, 'EUR', timestamp '2026-01-01';
CREATE TEMP TABLE s AS
  SELECT i, timestamp '2026-01-01' + (i * interval '1 second' * ($DAYS * 86400 / ($ENTRIES / 2))) AS at,
         100 + i % 9900 AS amount
  FROM generate_series(1, $ENTRIES / 2) i;
INSERT INTO ledger_transactions (id, source_key, description, created_at)
  SELECT 'ltx_' || i, 'bench:sale:' || i, 'sale ' || i || ', "Müller" pack', at FROM s;
INSERT INTO ledger_entries (id, transaction_id, account_id, amount_minor, currency, created_at)
  SELECT 'le_' || i || '_d', 'ltx_' || i, 'stripe_clearing:platform:EUR', amount, 'EUR', at FROM s
  UNION ALL
  SELECT 'le_' || i || '_c', 'ltx_' || i, 'creator_pending:cr-' || (i % 1000 + 1) || ':EUR', -amount, 'EUR', at FROM s;
SQL
psql -q "$PG/$DB" -c "VACUUM ANALYZE"

DATABASE_URL="$PG/$DB" KOPILKA__HTTP__PORT=$PORT RUST_LOG=warn $bin/kopilka serve &
svc=$!; pids+=("$svc")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
hwm() { awk '/VmHWM/ {print $2}' "/proc/$svc/status"; }
fay=$(DATABASE_URL="$PG/$DB" $bin/kopilka dev-token --sub finance-fay --role finance)
last=$(date -d "2026-01-01 + $((DAYS - 1)) days" +%F)
tenth=$(date -d "2026-01-01 + $((DAYS / 10 - 1)) days" +%F)
now() { date +%s.%N; }
ours() { # to
  curl -sf -o /tmp/kopilka-ledger.csv "http://127.0.0.1:$PORT/v1/admin/exports/ledger.csv?from=2026-01-01&to=$1" \
    -H "Authorization: Bearer $fay"
}
theirs() { # to (exclusive day)
  psql -q "$PG/$DB" -c "\\copy (SELECT e.id, to_char(e.created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), e.transaction_id, t.source_key, t.description, e.account_id, a.kind, coalesce(a.owner_id, ''), e.currency, e.amount_minor, to_char(e.amount_minor / 100.0, 'FM999999999999990.00') FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id JOIN ledger_accounts a ON a.id = e.account_id WHERE e.created_at >= '2026-01-01' AND e.created_at < '$1' ORDER BY e.created_at, e.id) TO STDOUT WITH (FORMAT csv, HEADER)" > /tmp/psql-ledger.csv
}
rss_start=$(hwm)
ours "$tenth"; rss_tenth=$(hwm); rows_tenth=$(($(wc -l < /tmp/kopilka-ledger.csv) - 1))
end=$(date -d "$last + 1 day" +%F)
declare -a o p
for round in 1 2 3; do
  t=$(now); ours "$last"; o+=($(echo "$(now) - $t" | bc))
  t=$(now); theirs "$end"; p+=($(echo "$(now) - $t" | bc))
done
rss_all=$(hwm)
rows=$(($(wc -l < /tmp/kopilka-ledger.csv) - 1)); prow=$(($(wc -l < /tmp/psql-ledger.csv) - 1))
if [ "$rows" != "$ENTRIES" ] || [ "$prow" != "$ENTRIES" ]; then echo "rows: ours $rows, psql $prow, expected $ENTRIES"; exit 1; fi
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
om=$(median "${o[@]}"); pm=$(median "${p[@]}")
printf 'ledger.csv, %s entries: ours %s s (rounds %s), psql \\copy %s s (rounds %s); ours/psql %.2f (target <= 2)\n' \
  "$rows" "$om" "${o[*]}" "$pm" "${p[*]}" "$(echo "$om / $pm" | bc -l)"
printf 'bytes: ours %s, psql %s\n' "$(stat -c %s /tmp/kopilka-ledger.csv)" "$(stat -c %s /tmp/psql-ledger.csv)"
printf 'service peak RSS: %s KiB at start, %s KiB after %s rows, %s KiB after %s rows: growth %s KiB\n' \
  "$rss_start" "$rss_tenth" "$rows_tenth" "$rss_all" "$rows" "$((rss_all - rss_tenth))"
