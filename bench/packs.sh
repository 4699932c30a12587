#!/usr/bin/env bash
# Sticker-pack benchmarks: validating and storing a pack of 40 different stickers against
# decoding them with `image` alone; peak RSS of 8 concurrent uploads of the worst animated pack
# the limits allow; GET /v1/store/packs against a bare actix route with the same body; and
# GET /v1/blobs/{sha256} against actix-files serving the same file. Every figure against its
# baseline in the same run. The service runs on SQLite with the demo catalog (its sample
# packs). Usage: bash bench/packs.sh (writes target/bench-packs.md)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-3}
PORT=18191; BASE_PORT=18192; FILES_PORT=18193
if [ "$(nproc)" -ge 2 ]; then LOAD="taskset -c 0"; SERVE="taskset -c 1"; else LOAD=""; SERVE=""; fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --bin kopilka --bin kopilka-bench
bin=${CARGO_TARGET_DIR:-target}/release

validate=$($bin/kopilka-bench validate-packs --stickers 40 --rounds 5)
echo "$validate"

export KOPILKA__DATABASE__URL="$work/kopilka.db" KOPILKA__HTTP__PORT=$PORT
export KOPILKA__PACKS__BLOBS__DIR="$work/blobs" RUST_LOG=warn
$SERVE $bin/kopilka serve &
svc=$!; pids+=("$svc")
api="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do curl -sf "$api/healthz" >/dev/null && break; sleep 0.1; done
creator=$($bin/kopilka dev-token --sub bench-creator --role creator)
user=$($bin/kopilka dev-token --sub bench-user)
# The sample packs are published at start: wait for the store to list them.
for _ in $(seq 1 300); do
  n=$(curl -sf "$api/v1/store/packs" -H "Authorization: Bearer $user" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
  [ "$n" -ge 3 ] && break; sleep 0.2
done

# Peak RSS: 8 archives of the worst animated pack at once (the service lets two archives in
# at a time and weighs decodes by pixels; the others wait their turn). The worst the limits
# allow: 40 stickers of 20 frames at 2896 px a side. 4096 px is a source's largest side, but a
# 20-frame animation of more than ~2900 px needs more decoder memory than one sticker may take
# (422 image_too_large), and its ZIP entry expands more than 100:1 (422 archive_bomb).
# Every archive's stickers are decoded one after another and a decode this size takes the
# whole pixel budget, so the peak is reached with a few stickers an archive: STICKERS (3) keeps
# the run short; 40 gives the same peak, in half an hour.
SIDE=${SIDE:-2896}
STICKERS=${STICKERS:-3}
$bin/kopilka-bench worst-animated --stickers "$STICKERS" --side "$SIDE" --out "$work/worst.zip"
curl -sf -XPOST "$api/v1/creators/me" -H "Authorization: Bearer $creator" -H 'Content-Type: application/json' \
  -d '{"display_name":"Bench","country":"DE","payout_currency":"EUR"}' >/dev/null
hwm_before=$(awk '/VmHWM/ {print $2}' "/proc/$svc/status")
start=$(date +%s.%N)
for i in $(seq 1 8); do
  id=$(curl -sf -XPOST "$api/v1/creators/me/packs" -H "Authorization: Bearer $creator" -H 'Content-Type: application/json' \
    -d "{\"title\":\"Worst $i\",\"kind\":\"animated\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -s -o "$work/upload.$i.json" -w '%{http_code}\n' -XPOST "$api/v1/creators/me/packs/$id/archive" \
    -H "Authorization: Bearer $creator" -H 'Content-Type: application/zip' --data-binary @"$work/worst.zip" > "$work/status.$i" &
done
wait $(jobs -p | grep -v "^$svc$") 2>/dev/null || true
for i in $(seq 1 8); do while [ ! -s "$work/status.$i" ]; do sleep 0.2; done; done
upload_s=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
hwm_after=$(awk '/VmHWM/ {print $2}' "/proc/$svc/status")
statuses=$(cat "$work"/status.* | sort | uniq -c | awk '{print $1 "×" $2}' | paste -sd' ')
zip_bytes=$(stat -c %s "$work/worst.zip")

# The store page against a bare actix route with a body of the same size.
body_bytes=$(curl -sf "$api/v1/store/packs" -H "Authorization: Bearer $user" | wc -c)
$SERVE $bin/kopilka-bench baseline --port $BASE_PORT --bytes "$body_bytes" &
pids+=("$!")
# A sticker image, served by us and by actix-files from a copy.
sha=$(curl -sf "$api/v1/store/packs" -H "Authorization: Bearer $user" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["stickers"][0]["image_sha256"])')
mkdir -p "$work/files" && cp "$(find "$work/blobs" -name "$sha" | head -1)" "$work/files/sticker.png"
blob_bytes=$(stat -c %s "$work/files/sticker.png")
$SERVE $bin/kopilka-bench files --dir "$work/files" --port $FILES_PORT &
pids+=("$!")
for p in $BASE_PORT $FILES_PORT; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$p/" && break; sleep 0.1; done
done
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
for r in $(seq 1 "$ROUNDS"); do
  $LOAD wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:$BASE_PORT/baseline" > "$work/base.$r.txt"
  $LOAD wrk -t1 -c64 -d"${DURATION}s" -H "Authorization: Bearer $user" "$api/v1/store/packs" > "$work/store.$r.txt"
  $LOAD wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:$FILES_PORT/files/sticker.png" > "$work/files.$r.txt"
  $LOAD wrk -t1 -c64 -d"${DURATION}s" "$api/v1/blobs/$sha" > "$work/blob.$r.txt"
done
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
each() { for r in $(seq 1 "$ROUNDS"); do rps "$work/$1.$r.txt"; done; }
base=$(median $(each base)); store=$(median $(each store))
files=$(median $(each files)); blob=$(median $(each blob))
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
{
  echo "| measure | figure | baseline (same run) | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| validate + re-encode + store a pack of 40 different stickers | ${validate#validate+store: } | | | ≥ 0.5 |"
  echo "| peak RSS, 8 concurrent archive uploads of the worst animated pack ($zip_bytes-byte ZIP, ${STICKERS} × ${SIDE}² × 20 frames each) | $hwm_after KiB (before: $hwm_before KiB) | answers: $statuses in $upload_s s | | ≤ 262144 KiB |"
  echo "| GET /v1/store/packs, 64 conns, $body_bytes-byte page | $store req/s | bare actix route, same body size: $base req/s | $(ratio "$store" "$base") | ≥ 0.3 |"
  echo "| GET /v1/blobs/{sha256}, 64 conns, $blob_bytes-byte sticker | $blob req/s | actix-files, same file: $files req/s | $(ratio "$blob" "$files") | ≥ 0.7 |"
} | tee "${CARGO_TARGET_DIR:-target}/bench-packs.md"
