#!/usr/bin/env bash
# Fuzzes the upload validators with libFuzzer (cargo-fuzz): `sticker_image` (one uploaded image,
# static and animated rules) and `pack_archive` (one ZIP upload), one after the other, each for a
# bounded time from its committed seeds (fuzz/seeds/, made by fuzz/seeds.py). Not part of CI.
#
# usage: bash bench/fuzz.sh [SECONDS_PER_TARGET (default 300)] [extra libFuzzer flags...]
#   FUZZ_TARGETS="pack_archive" bash bench/fuzz.sh 60 -max_len=16384
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Builds into
# fuzz/target (never locks the main build); set CARGO_BUILD_JOBS=1 to build on one core.
# One core while fuzzing (-jobs=1 -workers=1). What it learns goes to fuzz/corpus/<target>/, a crash
# to fuzz/artifacts/<target>/, the whole libFuzzer output to fuzz/logs/<target>.log (all ignored
# by git). Prints per target: executions, exec/s, and the artifacts found. Exits 1 on a finding.
# Panics that sticker_images::check catches around its decoders are logged (`kopilka-fuzz: panic`)
# and counted, not crashes; KOPILKA_FUZZ_STRICT_PANICS=1 makes every panic a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
[ $# -gt 0 ] && shift
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [libFuzzer flags...]" >&2; exit 2 ;; esac
root=$PWD
targets=(${FUZZ_TARGETS:-sticker_image pack_archive})
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="$root/fuzz/target"

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz --locked" >&2; exit 2; }
[ -d fuzz/seeds ] || python3 fuzz/seeds.py
cargo +nightly fuzz build --fuzz-dir fuzz >&2  # every target, release with debug assertions, ASan
bin=$CARGO_TARGET_DIR/$triple/release

status=0
summary=()
for t in "${targets[@]}"; do
    [ -x "$bin/$t" ] || { echo "no fuzz target $t in $bin" >&2; exit 2; }
    corpus=$root/fuzz/corpus/$t artifacts=$root/fuzz/artifacts/$t logs=$root/fuzz/logs
    mkdir -p "$corpus" "$artifacts" "$logs"
    log=$logs/$t.log
    before=$(find "$artifacts" -type f | sort)
    echo "== $t: ${secs}s (log: ${log#"$root"/})" >&2
    # -jobs/-workers run the fuzzing in one child whose output is fuzz-0.log in the working
    # directory (copied to our output when it ends): run from the logs folder.
    rc=0
    (cd "$logs" && "$bin/$t" "$corpus" "$root/fuzz/seeds/$t" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -jobs=1 -workers=1 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$@") >"$log" 2>&1 || rc=$?
    rm -f "$logs/fuzz-0.log"
    stat() { grep -o "stat::$1: *[0-9]*" "$log" | tail -n 1 | grep -o '[0-9]*$' || true; }
    execs=$(stat number_of_executed_units)
    rate=$(stat average_exec_per_sec)
    if [ -z "$execs" ]; then # no final stats (killed?): the last progress line, "#N ... exec/s: R"
        execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#' || true)
        rate=$(grep -o 'exec/s: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
    fi
    new=$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) | sed '/^$/d')
    findings=$(echo "$new" | grep -E '/(crash|oom|timeout|leak)-' || true)
    slow=$(echo "$new" | grep -c '/slow-unit-' || true)
    panics=$(grep -c '^kopilka-fuzz: panic at' "$log" || true)
    line="$t: ${execs:-?} executions, ${rate:-?} exec/s, corpus $(find "$corpus" -type f | wc -l) inputs"
    line+=", $slow slow units, $panics caught panic locations, libFuzzer exit $rc"
    if [ -n "$findings" ]; then
        status=1
        line+=$'\n'"  FINDINGS: $(echo "$findings" | sed "s|$root/||" | tr '\n' ' ')"
        line+=$'\n'"  $(grep -m1 -E '^(kopilka-fuzz: panic at|==[0-9]+==ERROR|SUMMARY)' "$log" || true)"
        line+=$'\n'"  minimize: cargo +nightly fuzz tmin --fuzz-dir fuzz $t <artifact>"
    elif [ "$rc" -ne 0 ]; then
        status=1
        line+=$'\n'"  libFuzzer failed without an artifact: see ${log#"$root"/}"
    else
        line+=", no findings"
    fi
    [ "$panics" -gt 0 ] && line+=$'\n'"  $(grep '^kopilka-fuzz: panic at' "$log" | cut -c1-200 | tr '\n' ' ')"
    summary+=("$line")
done
printf '%s\n' "${summary[@]}"
exit "$status"
