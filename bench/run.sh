#!/usr/bin/env bash
# The benchmark: 100,000 users on PostgreSQL, the release build driven by wrk at 64 connections,
# every figure against a baseline measured in the same run. Prints a table (also written to
# target/bench-results.md). Usage: bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
DURATION=${DURATION:-10}
# wrk threads; on 2 cores one thread cannot saturate the service, two share its cores.
WRK_THREADS=${WRK_THREADS:-2}
PG=postgres://postgres@127.0.0.1:5432
PORT=18181
BASE_PORT=18182
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --bin kopilka --bin kopilka-bench
bin=target/release

psql -q "$PG/postgres" -c 'DROP DATABASE IF EXISTS kopilka_bench WITH (FORCE)' -c 'CREATE DATABASE kopilka_bench'
$bin/kopilka-bench seed --database-url "$PG/kopilka_bench" --users "$USERS"
$bin/kopilka-bench tokens --users "$USERS" --out "$work"

start_service() { # $1 = cache enabled (true/false)
  DATABASE_URL="$PG/kopilka_bench" KOPILKA__HTTP__PORT=$PORT KOPILKA__ENVIRONMENT=production \
  KOPILKA__AUTH__JWKS_FILE="$work/identity-jwks.json" KOPILKA__CACHE__ENABLED=$1 \
  KOPILKA__DATABASE__POOL_SIZE=${POOL_SIZE:-4} RUST_LOG=warn $bin/kopilka serve &
  svc=$!; pids+=("$svc")
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "service did not start"; exit 1
}
stop_service() { kill "$svc"; wait "$svc" 2>/dev/null || true; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# wrk's "Requests/sec" and latency percentiles.
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
pct() { awk -v p="$2" '$1 == p"%" {print $2}' "$1"; }

start_service true
admin=$(cat "$work/admin-token")
key=$(curl -sf -XPOST "http://127.0.0.1:$PORT/v1/admin/service-credentials" -H "Authorization: Bearer $admin" \
  -H 'Content-Type: application/json' -d '{"name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')

# Memory per cached user: fill the answer cache through batch checks (no user tokens involved).
$bin/kopilka-bench batch-body --users 1000 --first 0 > "$work/batch.json"
curl -sf -XPOST "http://127.0.0.1:$PORT/v1/entitlements/check" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' --data @"$work/batch.json" >/dev/null
rss_before=$(rss_kib "$svc")
for first in $(seq 1000 1000 $((USERS - 1000))); do
  $bin/kopilka-bench batch-body --users 1000 --first "$first" > "$work/b.json"
  curl -sf -XPOST "http://127.0.0.1:$PORT/v1/entitlements/check" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' --data @"$work/b.json" >/dev/null
done
rss_after=$(rss_kib "$svc")
bytes_per_user=$(( (rss_after - rss_before) * 1024 / (USERS - 1000) ))

# The answer a typical premium user gets sizes the baseline's body.
answer_bytes=$(curl -s "http://127.0.0.1:$PORT/v1/me/entitlements" -H "Authorization: Bearer $(sed -n 5p "$work/tokens.txt")" | wc -c)
$bin/kopilka-bench baseline --port $BASE_PORT --bytes "$answer_bytes" &
pids+=("$!")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$BASE_PORT/baseline" >/dev/null && break; sleep 0.1; done

wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" --latency "http://127.0.0.1:$BASE_PORT/baseline" > "$work/baseline.txt"
# Warm-up: every user's token verified once, as clients reuse theirs.
wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" -s bench/me.lua "http://127.0.0.1:$PORT" -- "$work/tokens.txt" > /dev/null
wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" --latency -s bench/me.lua "http://127.0.0.1:$PORT" -- "$work/tokens.txt" > "$work/me.txt"
wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" -s bench/batch.lua "http://127.0.0.1:$PORT/v1/entitlements/check" -- "$work/batch.json" "$key" > "$work/batch.txt"
rss_tokens=$(rss_kib "$svc")
stop_service

sign_rate=$($bin/kopilka-bench sign-rate --seconds 3)

# Cold path: no answer cache, every check reads PostgreSQL; against pgbench -S at 64 clients.
start_service false
wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" -s bench/me.lua "http://127.0.0.1:$PORT" -- "$work/tokens.txt" > /dev/null
wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" --latency -s bench/me.lua "http://127.0.0.1:$PORT" -- "$work/tokens.txt" > "$work/cold.txt"
stop_service
psql -q "$PG/postgres" -c 'DROP DATABASE IF EXISTS kopilka_pgbench WITH (FORCE)' -c 'CREATE DATABASE kopilka_pgbench'
pgbench -q -i -s 10 -h 127.0.0.1 -U postgres kopilka_pgbench >/dev/null 2>&1
pgbench -S -c 64 -j 2 -T "$DURATION" -h 127.0.0.1 -U postgres kopilka_pgbench > "$work/pgbench.txt" 2>&1
pg_tps=$(awk '/^tps/ {print $3; exit}' "$work/pgbench.txt")

base=$(rps "$work/baseline.txt"); me=$(rps "$work/me.txt"); batch=$(rps "$work/batch.txt"); cold=$(rps "$work/cold.txt")
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
{
  echo "| measure | figure | baseline (same run) | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| GET /v1/me/entitlements, cached, EdDSA user JWTs, 64 conns | $me req/s | bare actix JSON route, $answer_bytes-byte body: $base req/s | $(ratio "$me" "$base") | ≥ 0.5 |"
  echo "| latency p50 / p99 (same run) | $(pct "$work/me.txt" 50) / $(pct "$work/me.txt" 99) | baseline p50 / p99: $(pct "$work/baseline.txt" 50) / $(pct "$work/baseline.txt" 99) | | p99 ≤ 5 ms |"
  echo "| POST /v1/entitlements/check, 1,000 users a request | $(python3 -c "print(int($batch*1000))") user-checks/s | | | ≥ 500,000 |"
  echo "| entitlement tokens signed, one thread | $sign_rate /s per core | | | ≥ 20,000 |"
  echo "| cold path: no cache, PostgreSQL, 64 conns | $cold req/s | pgbench -S, 64 clients: $pg_tps tps | $(ratio "$cold" "$pg_tps") | ≥ 0.5 |"
  echo "| resident memory per cached answer | $bytes_per_user bytes | RSS $rss_before → $rss_after KiB for $((USERS - 1000)) users | | ≤ 200 |"
  echo "| RSS after the token runs (answers + verified tokens) | $rss_tokens KiB | | | |"
} | tee target/bench-results.md
