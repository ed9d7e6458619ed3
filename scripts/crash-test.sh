#!/usr/bin/env bash
# Kills a real mora server with SIGKILL while it ingests, restarts it on the
# same data directory and checks that every acknowledged event survives and
# none counts twice; repeated for N cycles (100 by default).
#
#   scripts/crash-test.sh [CYCLES] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export CRASH_TEST_CYCLES="${1:-100}"
if [[ $# -ge 2 ]]; then
    export CRASH_TEST_SEED="$2"
fi
cargo test --test crash -- --nocapture
