#!/usr/bin/env bash
# The webhook benchmark: signed Stripe `invoice.paid` events per second that the release build
# turns into committed subscription renewals, payments, balanced ledger postings and receipts
# in the outbox, on PostgreSQL with fsync on — against pgbench's TPC-B at the same concurrency,
# alternating with it in the same run. Prints a table (also written to
# target/bench-webhooks.md). Usage: bash bench/webhooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-16}
PG=postgres://postgres@127.0.0.1:5432
PORT=18183
SECRET=whsec_bench
DB=kopilka_webhooks
work=$(mktemp -d); echo "work: $work"
# The receipts go to .eml files (the default transport) in memory: every event queues one, and
# creating tens of thousands of files on this disk's ext4, where earlier runs deleted as many,
# costs more CPU than the events do (the allocator scans recently deleted inodes). In
# production they leave over SMTP, to another machine.
mail=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$mail"; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

# Acknowledged events must be durable: refuse to measure a server that does not flush commits.
fsync=$(psql -tAq "$PG/postgres" -c 'SHOW fsync')
sync_commit=$(psql -tAq "$PG/postgres" -c 'SHOW synchronous_commit')
if [ "$fsync" != on ] || [ "$sync_commit" = off ]; then
  echo "PostgreSQL runs with fsync=$fsync synchronous_commit=$sync_commit: commits are not durable"; exit 1
fi

cargo build --release --bin kopilka --bin kopilka-bench
bin=${CARGO_TARGET_DIR:-target}/release

psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
$bin/kopilka-bench seed --database-url "$PG/$DB" --users "$USERS"
# Statistics for what the seed filled; the billing tables stay as a fresh deployment leaves them
# (never analyzed). Analyzing them empty would record "0 rows", and the generic plans the service
# prepares per connection would scan them sequentially until autovacuum's next analyze.
psql -q "$PG/$DB" -c "VACUUM ANALYZE users, subscriptions, grants, seat_assignments, orders, products, prices"
psql -q "$PG/postgres" -c 'DROP DATABASE IF EXISTS kopilka_pgbench WITH (FORCE)' -c 'CREATE DATABASE kopilka_pgbench'
pgbench -q -i -s 10 -h 127.0.0.1 -U postgres kopilka_pgbench >/dev/null 2>&1

# One database connection per concurrent delivery, as pgbench has one per client.
DATABASE_URL="$PG/$DB" KOPILKA__HTTP__PORT=$PORT KOPILKA__STRIPE__WEBHOOK_SECRETS=$SECRET \
KOPILKA__DATABASE__POOL_SIZE=${POOL_SIZE:-$CONCURRENCY} KOPILKA__EMAIL__FOLDER="$mail" RUST_LOG=warn \
  $bin/kopilka serve &
svc=$!; pids+=("$svc")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "service did not start"; exit 1; }

drive() { # $1 = run id, $2 = seconds
  $bin/kopilka-bench webhooks --url "http://127.0.0.1:$PORT/v1/webhooks/stripe" --secret "$SECRET" \
    --users "$USERS" --concurrency "$CONCURRENCY" --seconds "$2" --run "$1"
}
drive warm 3 > "$work/warm.txt"
for r in $(seq 1 "$ROUNDS"); do
  drive "r$r" "$DURATION" > "$work/hooks.$r.txt"
  pgbench -c "$CONCURRENCY" -j 2 -T "$DURATION" -h 127.0.0.1 -U postgres kopilka_pgbench > "$work/pgbench.$r.txt" 2>&1
done
# Let the outbox worker write the last receipts before counting them.
sleep 3
kill "$svc"; wait "$svc" 2>/dev/null || true

# What was acknowledged is what was written: one payment per accepted event, every ledger
# transaction balanced, a receipt queued per payment.
accepted=$(cat "$work"/warm.txt "$work"/hooks.*.txt | awk '{s += $1} END {print s}')
refused=$(cat "$work"/warm.txt "$work"/hooks.*.txt | awk '{s += $2} END {print s}')
q() { psql -tAq "$PG/$DB" -c "$1"; }
payments=$(q "SELECT count(*) FROM payments")
postings=$(q "SELECT count(*) FROM ledger_transactions")
unbalanced=$(q "SELECT count(*) FROM (SELECT 1 FROM ledger_entries GROUP BY transaction_id, currency HAVING sum(amount_minor) <> 0) x")
receipts=$(q "SELECT count(*) FROM outbox_emails")
sent=$(q "SELECT count(*) FROM outbox_emails WHERE status = 'sent'")
renewed=$(q "SELECT count(*) FROM subscriptions WHERE stripe_event_created IS NOT NULL")
if [ "$payments" != "$accepted" ] || [ "$unbalanced" != 0 ] || [ "$refused" != 0 ]; then
  echo "mismatch: accepted=$accepted refused=$refused payments=$payments unbalanced=$unbalanced"; exit 1
fi

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
hooks=$(median $(for r in $(seq 1 "$ROUNDS"); do awk '{printf "%.1f", $1 / $3}' "$work/hooks.$r.txt"; echo; done))
tps=$(median $(for r in $(seq 1 "$ROUNDS"); do awk '/^tps/ {print $3; exit}' "$work/pgbench.$r.txt"; done))
{
  echo "| measure | figure | baseline (same run) | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| signed invoice.paid webhooks applied, $CONCURRENCY concurrent deliveries | $hooks events/s | pgbench TPC-B, $CONCURRENCY clients: $tps tps | $(python3 -c "print(f'{$hooks/$tps:.2f}')") | ≥ 0.3 |"
  echo "| written, checked after the run | $accepted events accepted → $payments payments, $postings ledger transactions ($unbalanced unbalanced), $receipts receipts ($sent sent), $renewed subscriptions renewed | | | |"
  echo "| PostgreSQL | fsync=$fsync, synchronous_commit=$sync_commit | | | |"
} | tee "${CARGO_TARGET_DIR:-target}/bench-webhooks.md"
