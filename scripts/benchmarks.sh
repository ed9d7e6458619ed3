#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md, section by section, and keeps each
# bench's output in bench-results/<name>.txt (not committed):
#
#   scripts/benchmarks.sh            # everything, the largest rows included
#   scripts/benchmarks.sh --quick    # without the 5- and 10-million-debtor rows
#
# Everything runs one after the other, since client and server share the
# machine's cores. The full run needs about 9 GB of memory (the
# 10-million-debtor rows); BENCHMARKS.md gives the time each part took.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true
out=bench-results
mkdir -p "$out"

run() {
    local name="$1"
    shift
    echo "== $name: $*"
    env "$@" 2>&1 | grep -vE '^\s+(Compiling|Finished|Running|Downloaded)' | tee "$out/$name.txt"
}

run memory cargo bench --bench state_memory
for n in 1000000 5000000 10000000; do
    if $quick && [ "$n" -gt 1000000 ]; then continue; fi
    run "memory-$n" MORA_MEMORY_DEBTORS="$n" cargo bench --bench state_memory
done
if $quick; then
    run server-memory cargo bench --bench server_memory
else
    run server-memory MORA_SERVER_MEMORY_DEBTORS=10000000 cargo bench --bench server_memory
fi
run hot-paths cargo bench --bench hot_paths
run load-16 cargo bench --bench load
run load-1 MORA_BENCH_CONCURRENCY=1 cargo bench --bench load
if $quick; then
    run growth cargo bench --bench growth
else
    run growth MORA_GROWTH_MAX_DEBTORS=10000000 cargo bench --bench growth
fi
run durability cargo bench --bench durability
run durability-5-rounds MORA_DURABILITY_ROUNDS=5 MORA_DURABILITY_DEBTORS=1000 \
    MORA_DURABILITY_LOG_DEBTORS=1000 cargo bench --bench durability
if ! $quick; then
    run durability-10m MORA_DURABILITY_DEBTORS=10000000 MORA_DURABILITY_INGEST=0 \
        MORA_DURABILITY_LOG_DEBTORS=1000000 cargo bench --bench durability
fi
run overload cargo bench --bench overload
run model-swap cargo bench --bench model_swap
run contact-quality MORA_QUALITY_SEED=11 cargo bench --bench contact_quality

cargo build --release --quiet
simulated="$(mktemp -d)"
trap 'rm -rf "$simulated"' EXIT
run simulator /usr/bin/time -v ./target/release/mora simulate --debtors 1000000 --seed 42 \
    --out "$simulated/events.jsonl.gz"
run binary ls -l target/release/mora
echo "Results in $out/"
