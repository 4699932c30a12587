#!/usr/bin/env bash
# The benchmark: 100,000 users on PostgreSQL, the release build driven by wrk at 64 connections,
# every figure against a baseline measured in the same run. Prints a table (also written to
# target/bench-results.md). Usage: bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-1}
PG=postgres://postgres@127.0.0.1:5432
PORT=18181
BASE_PORT=18182
# Load generators on core 0, the servers under test on core 1: neither steals the other's CPU,
# which otherwise dominates the latency tail on a 2-core machine. PostgreSQL is not pinned.
if [ "$(nproc)" -ge 2 ]; then LOAD="taskset -c 0"; SERVE="taskset -c 1"; else LOAD=""; SERVE=""; fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --bin kopilka --bin kopilka-bench
bin=${CARGO_TARGET_DIR:-target}/release

psql -q "$PG/postgres" -c 'DROP DATABASE IF EXISTS kopilka_bench WITH (FORCE)' -c 'CREATE DATABASE kopilka_bench'
$bin/kopilka-bench seed --database-url "$PG/kopilka_bench" --users "$USERS"
# Settle the fresh tables now rather than under autovacuum during the measurements.
psql -q "$PG/kopilka_bench" -c "VACUUM ANALYZE"
$bin/kopilka-bench tokens --users "$USERS" --out "$work"

start_service() { # $1 = cache enabled (true/false), $2 = how to pin it
  DATABASE_URL="$PG/kopilka_bench" KOPILKA__HTTP__PORT=$PORT KOPILKA__ENVIRONMENT=production \
  KOPILKA__AUTH__JWKS_FILE="$work/identity-jwks.json" KOPILKA__CACHE__ENABLED=$1 \
  KOPILKA__DATABASE__POOL_SIZE=${POOL_SIZE:-4} RUST_LOG=warn ${2:-} $bin/kopilka serve &
  svc=$!; pids+=("$svc")
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "service did not start"; exit 1
}
stop_service() { kill "$svc"; wait "$svc" 2>/dev/null || true; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# wrk's "Requests/sec" and latency percentiles.
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
pct() { awk -v p="$2" '$1 == p"%" {print $2}' "$1"; }

start_service true "$SERVE"
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
$SERVE $bin/kopilka-bench baseline --port $BASE_PORT --bytes "$answer_bytes" &
pids+=("$!")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$BASE_PORT/baseline" >/dev/null && break; sleep 0.1; done

# Warm-up: every user's token verified once, as clients reuse theirs.
$LOAD wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" -s bench/me.lua "http://127.0.0.1:$PORT" -- "$work/tokens.txt" > /dev/null
# Baseline and service alternate, ROUNDS times; each figure is the median over the rounds, so a
# noisy moment of the machine weighs on both sides alike.
for r in $(seq 1 "$ROUNDS"); do
  $LOAD wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" --latency "http://127.0.0.1:$BASE_PORT/baseline" > "$work/baseline.$r.txt"
  $LOAD wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" --latency -s bench/me.lua "http://127.0.0.1:$PORT" -- "$work/tokens.txt" > "$work/me.$r.txt"
done
$LOAD wrk -t"$WRK_THREADS" -c64 -d"${DURATION}s" -s bench/batch.lua "http://127.0.0.1:$PORT/v1/entitlements/check" -- "$work/batch.json" "$key" > "$work/batch.txt"
rss_tokens=$(rss_kib "$svc")
stop_service

sign_rate=$($bin/kopilka-bench sign-rate --seconds 3)

# Cold path: no answer cache, every check reads PostgreSQL; against pgbench -S at 64 clients.
# Nothing pinned here: the service and PostgreSQL both need CPU, as PostgreSQL alone does for
# pgbench.
start_service false ''
# Warm-up long enough for every user's token to be verified once at cold-path speed: the
# measurement is of the database path, not of signature checks.
wrk -t2 -c64 -d"$((USERS / 4000 + 5))s" -s bench/me.lua "http://127.0.0.1:$PORT" -- "$work/tokens.txt" > /dev/null
psql -q "$PG/postgres" -c 'DROP DATABASE IF EXISTS kopilka_pgbench WITH (FORCE)' -c 'CREATE DATABASE kopilka_pgbench'
pgbench -q -i -s 10 -h 127.0.0.1 -U postgres kopilka_pgbench >/dev/null 2>&1
for r in $(seq 1 "$ROUNDS"); do
  wrk -t2 -c64 -d"${DURATION}s" --latency -s bench/me.lua "http://127.0.0.1:$PORT" -- "$work/tokens.txt" > "$work/cold.$r.txt"
  pgbench -S -c 64 -j 2 -T "$DURATION" -h 127.0.0.1 -U postgres kopilka_pgbench > "$work/pgbench.$r.txt" 2>&1
done
stop_service

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
each() { for r in $(seq 1 "$ROUNDS"); do "$1" "$work/$2.$r.txt" ${3:-}; done; }
pg_tps_of() { awk '/^tps/ {print $3; exit}' "$1"; }
ms() { python3 -c "import sys; v=sys.argv[1]; print(float(v[:-2]) if v.endswith('ms') else float(v[:-2])/1000 if v.endswith('us') else float(v[:-1])*1000)" "$1"; }
pct_ms() { ms "$(pct "$1" "$2")"; }
base=$(median $(each rps baseline)); me=$(median $(each rps me))
me_p50=$(median $(each pct_ms me 50)); me_p99=$(median $(each pct_ms me 99))
base_p50=$(median $(each pct_ms baseline 50)); base_p99=$(median $(each pct_ms baseline 99))
cold=$(median $(each rps cold)); pg_tps=$(median $(each pg_tps_of pgbench))
batch=$(rps "$work/batch.txt")
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
{
  echo "| measure | figure | baseline (same run) | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| GET /v1/me/entitlements, cached, EdDSA user JWTs, 64 conns | $me req/s | bare actix JSON route, $answer_bytes-byte body: $base req/s | $(ratio "$me" "$base") | ≥ 0.5 |"
  echo "| latency p50 / p99 (ms) | $me_p50 / $me_p99 | baseline p50 / p99: $base_p50 / $base_p99 | | p99 ≤ 5 ms |"
  echo "| POST /v1/entitlements/check, 1,000 users a request | $(python3 -c "print(int($batch*1000))") user-checks/s | | | ≥ 500,000 |"
  echo "| entitlement tokens signed, one thread | $sign_rate /s per core | | | ≥ 20,000 |"
  echo "| cold path: no cache, PostgreSQL, 64 conns | $cold req/s | pgbench -S, 64 clients: $pg_tps tps | $(ratio "$cold" "$pg_tps") | ≥ 0.5 |"
  echo "| resident memory per cached answer | $bytes_per_user bytes | RSS $rss_before → $rss_after KiB for $((USERS - 1000)) users | | ≤ 200 |"
  echo "| RSS after the token runs (answers + verified tokens) | $rss_tokens KiB | | | |"
} | tee "${CARGO_TARGET_DIR:-target}/bench-results.md"
