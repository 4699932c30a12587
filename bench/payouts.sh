#!/usr/bin/env bash
# The payout benchmark: a payout run for CREATORS creators end to end on PostgreSQL with fsync
# on — draw, read (digest), approve (one balanced posting per line), send, both bank files,
# record the whole file paid (a second posting per line) — against pgbench's TPC-B doing the
# same number of transactions in the same run. Also the service's RSS before and after.
# Usage: bash bench/payouts.sh  (CREATORS=100000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
CREATORS=${CREATORS:-100000}
PG=postgres://postgres@127.0.0.1:5432
PORT=18184
DB=kopilka_payouts
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

fsync=$(psql -tAq "$PG/postgres" -c 'SHOW fsync')
if [ "$fsync" != on ]; then echo "PostgreSQL runs with fsync=$fsync"; exit 1; fi

cargo build --release --bin kopilka --bin kopilka-bench
bin=${CARGO_TARGET_DIR:-target}/release
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
$bin/kopilka-bench seed-payouts --database-url "$PG/$DB" --creators "$CREATORS"
psql -q "$PG/$DB" -c "VACUUM ANALYZE"
psql -q "$PG/postgres" -c 'DROP DATABASE IF EXISTS kopilka_pgbench WITH (FORCE)' -c 'CREATE DATABASE kopilka_pgbench'
pgbench -q -i -s 10 -h 127.0.0.1 -U postgres kopilka_pgbench >/dev/null 2>&1

mail=$(mktemp -d)
DATABASE_URL="$PG/$DB" KOPILKA__HTTP__PORT=$PORT KOPILKA__EMAIL__FOLDER="$mail" \
KOPILKA__PAYOUTS__MAX_LINES=$CREATORS RUST_LOG=warn $bin/kopilka serve &
svc=$!; pids+=("$svc")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$svc/status"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$svc/status"; }
fay=$(DATABASE_URL="$PG/$DB" $bin/kopilka dev-token --sub finance-fay --role finance)
fred=$(DATABASE_URL="$PG/$DB" $bin/kopilka dev-token --sub finance-fred --role finance)
api() { # method path token [body]
  curl -sf -X "$1" "http://127.0.0.1:$PORT$2" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' ${4:+-d "$4"}
}
now() { date +%s.%N; }
rss_before=$(rss)
declare -A took
t=$(now); run=$(api POST /v1/admin/payout-runs "$fay" '{}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'); took[draw]=$(echo "$(now) - $t" | bc)
t=$(now); digest=$(api GET "/v1/admin/payout-runs/$run" "$fred" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["digest"]); print(r["lines_count"], file=sys.stderr)'); took[read]=$(echo "$(now) - $t" | bc)
t=$(now); api POST "/v1/admin/payout-runs/$run/approve" "$fred" "{\"digest\": \"$digest\"}" >/dev/null; took[approve]=$(echo "$(now) - $t" | bc)
t=$(now); api POST "/v1/admin/payout-runs/$run/send" "$fay" '{}' >/dev/null; took[send]=$(echo "$(now) - $t" | bc)
t=$(now); api GET "/v1/admin/payout-runs/$run/sepa.xml" "$fay" > "$mail/sepa.xml"; api GET "/v1/admin/payout-runs/$run/bank-file.csv" "$fay" > "$mail/bank.csv"; took[files]=$(echo "$(now) - $t" | bc)
t=$(now); api POST "/v1/admin/payout-runs/$run/outcome" "$fay" '{"outcome": "paid"}' >/dev/null; took[paid]=$(echo "$(now) - $t" | bc)
rss_after=$(rss); peak=$(hwm)
total=$(echo "${took[draw]} + ${took[read]} + ${took[approve]} + ${took[send]} + ${took[files]} + ${took[paid]}" | bc)
q() { psql -tAq "$PG/$DB" -c "$1"; }
lines=$(q "SELECT count(*) FROM payout_lines WHERE state = 'paid'")
postings=$(q "SELECT count(*) FROM ledger_transactions WHERE source_key LIKE 'payout:%'")
unbalanced=$(q "SELECT count(*) FROM (SELECT 1 FROM ledger_entries GROUP BY transaction_id, currency HAVING sum(amount_minor) <> 0) x")
transit=$(q "SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE account_id LIKE 'payouts_in_transit:%'")
sepa_txs=$(grep -o '<CdtTrfTxInf>' "$mail/sepa.xml" | wc -l); csv_rows=$(($(wc -l < "$mail/bank.csv") - 1))
kill "$svc"; wait "$svc" 2>/dev/null || true
if [ "$lines" != "$CREATORS" ] || [ "$unbalanced" != 0 ] || [ "$transit" != 0 ] || [ $((sepa_txs + csv_rows)) != "$CREATORS" ]; then
  echo "mismatch: paid lines=$lines postings=$postings unbalanced=$unbalanced in transit=$transit sepa=$sepa_txs csv=$csv_rows"; exit 1
fi
# pgbench: as many TPC-B transactions as the run posted, 8 clients.
per_client=$((postings / 8))
pg_out=$(pgbench -c 8 -j 2 -t "$per_client" -h 127.0.0.1 -U postgres kopilka_pgbench 2>&1)
pg_tps=$(echo "$pg_out" | awk -F'= ' '/^tps/ {print $2}' | awk '{print $1}' | head -1)
ours=$(echo "$postings / $total" | bc -l)
printf '| step | seconds |\n|---|---|\n'
for s in draw read approve send files paid; do printf '| %s | %.2f |\n' "$s" "${took[$s]}"; done
printf '\n%s creators, %s lines paid, %s postings in %.1f s: %.0f postings/s; pgbench TPC-B, the same %s transactions, 8 clients: %.0f tps; ratio %.2f\n' \
  "$CREATORS" "$lines" "$postings" "$total" "$ours" "$postings" "$pg_tps" "$(echo "$ours / $pg_tps" | bc -l)"
printf 'service RSS: %s KiB before the run, %s KiB after, peak %s KiB; SEPA file %s transactions, CSV %s rows; 0 unbalanced, transit 0\n' \
  "$rss_before" "$rss_after" "$peak" "$sepa_txs" "$csv_rows"
