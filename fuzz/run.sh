#!/usr/bin/env bash
# Runs every fuzz target (or those named after SECONDS) for SECONDS each, one after another,
# then prints a table of target, executions and crashes.
#
#   fuzz/run.sh SECONDS [TARGET...]
#   MAX_RUNS=10000000 fuzz/run.sh 600     # stop a target at 10M executions or 600 s
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); nightly features come from RUSTC_BOOTSTRAP.
# Targets look for panics, hangs (-timeout) and memory blow-ups (-rss_limit_mb), not memory
# errors, so they build without a sanitizer. Crash inputs land in fuzz/artifacts/<target>/;
# replay one with `cargo fuzz run --sanitizer none <target> <file>`.
set -euo pipefail

seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1 CARGO_INCREMENTAL=0
flags=(--sanitizer none --debug-assertions)

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

cargo fuzz build "${flags[@]}"

# Inputs libFuzzer saved for a target: crashes (panics), timeouts and out-of-memory runs.
findings() {
    find "artifacts/$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
        -o -name 'leak-*' \) | wc -l
}

logs=$(mktemp -d)
rows=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(findings "$t")
    extra=()
    [ -n "${MAX_RUNS:-}" ] && extra+=("-runs=$MAX_RUNS")
    echo "== $t (${seconds}s${MAX_RUNS:+, at most $MAX_RUNS runs})" >&2
    set +e
    cargo fuzz run "${flags[@]}" "$t" -- -max_total_time="$seconds" -rss_limit_mb=512 \
        -timeout=5 -print_final_stats=1 "${extra[@]}" >"$logs/$t.log" 2>&1
    status=$?
    set -e
    # libFuzzer's final stats line, or its "Done N runs" line when stats are missing.
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$logs/$t.log" | grep -oE '[0-9]+$' | tail -1 || true)
    [ -z "$runs" ] && runs=$(grep -oE 'Done [0-9]+ runs' "$logs/$t.log" | grep -oE '[0-9]+' | tail -1 || true)
    after=$(findings "$t")
    crashes=$((after - before))
    [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes="exit $status"
    rows+=("$(printf '%-28s %14s %10s' "$t" "${runs:-?}" "$crashes")")
    cp "$logs/$t.log" "artifacts/$t/last-run.log"
done

printf '%-28s %14s %10s\n' target executions crashes
for r in "${rows[@]}"; do echo "$r"; done
rm -rf "$logs"
