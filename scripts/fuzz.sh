#!/usr/bin/env bash
# Runs every fuzz target for a set number of executions:
#
#   scripts/fuzz.sh [RUNS] [TARGET...]     (RUNS defaults to 1000000)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Seeds come from the repository (the shipped model files, the policy
# presets, a small simulated event file); what the fuzzer learns is kept in
# fuzz/corpus/ (not committed). A crash stops the script with a non-zero
# status and leaves its input in fuzz/artifacts/<target>/; each one found so
# far is fixed and has a regression test beside the code it broke.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-1000000}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(event_conversion model_file policy_file wal_record)
fi

seeds="$(mktemp -d)"
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds"/{event_conversion,model_file,policy_file,wal_record}
cp models/*.json "$seeds/model_file/"
cp src/policy/presets.toml "$seeds/policy_file/"
cargo run --quiet -- simulate --debtors 3 --months 2 --seed 7 \
    --out "$seeds/events.jsonl" > /dev/null
# The first byte picks the input's form: odd for JSON lines.
{ printf '1'; head -c 16000 "$seeds/events.jsonl"; } > "$seeds/event_conversion/json-lines"

cargo +nightly fuzz build -O
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    echo "== $target: $runs executions"
    log="$seeds/$target.log"
    status=0
    cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" "$seeds/$target" -- \
        -runs="$runs" -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 \
        > "$log" 2>&1 || status=$?
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
    if [ "$status" -ne 0 ]; then
        grep -E -A20 "panicked|ERROR" "$log" | head -40 >&2
        echo "$target: crashed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
